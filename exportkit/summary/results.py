"""The typed results of a graph summary: plain frozen dataclasses, no rendering."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = [
    "Dim",
    "GraphSummary",
    "ModuleInfo",
    "NodeInfo",
    "TensorInfo",
]

#: One dimension of a shape: an ``int`` when static, the symbol's name (``"batch"``) when
#: symbolic, ``None`` when nothing is known about it.
Dim = int | str | None


@dataclass(frozen=True, slots=True)
class TensorInfo:
    """A named value of the graph with its element type and shape.

    ``dtype`` is a numpy-style name (``"float32"``) or ``None`` when unknown; ``shape`` is
    ``None`` when even the rank is unknown.
    """

    name: str
    dtype: str | None
    shape: tuple[Dim, ...] | None


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """One node of the main graph.

    ``params`` counts the elements of the parameters this node is the first to read (shared
    weights count once, at their first reader). ``macs`` is ``None`` when it cannot be counted
    (unknown op, symbolic or unknown shapes); ops that do no multiply-accumulate work (Relu,
    Reshape, Add, ...) count 0.
    """

    name: str
    op_type: str
    domain: str
    module: str
    inputs: tuple[str, ...]
    outputs: tuple[TensorInfo, ...]
    params: int
    macs: int | None


@dataclass(frozen=True, slots=True)
class ModuleInfo:
    """One PyTorch module of the hierarchy (the root ``""`` is the whole model).

    ``params`` counts the parameter elements its own nodes read plus its children's ``params``,
    as PyTorch users count them: a tensor the file stores once for several modules (tied
    weights, or identical constants an exporter deduplicated, such as freshly initialised norm
    weights) counts in every module that reads it, and ``shared_params`` says how many of
    ``params`` are such tensors. The root's ``params`` is the file's count, each stored tensor
    once (``GraphSummary.shared_params`` says how many more the modules count).
    ``macs`` is the sum of the countable MACs of every node under it; ``unknown_macs`` is how
    many of those nodes could not be counted (so ``macs`` is a lower bound when it is not 0).
    ``outputs`` are the values computed inside the module and read outside it. ``children``
    are in the order the module's code runs; ``first_node`` is the index of the node where the
    module starts (its first node by its own hierarchy), which orders modules among nodes.
    """

    path: str
    class_name: str | None
    depth: int
    parent: str | None
    node_count: int
    params: int
    macs: int
    unknown_macs: int
    outputs: tuple[TensorInfo, ...]
    children: tuple[str, ...]
    nodes: tuple[int, ...]
    first_node: int
    shared_params: int = 0


@dataclass(frozen=True)
class GraphSummary:
    """What ``summarize`` found in one ONNX file.

    ``hierarchy`` says where the module tree came from: ``"metadata"`` (the dynamo exporter's
    node metadata), ``"names"`` (TorchScript-style node names such as ``/layer1/conv1/Conv``)
    or ``"none"`` (a flat list of nodes under the root). ``modules`` is the tree in pre-order,
    root first. ``macs`` is the sum over nodes whose MACs are known; ``unknown_macs`` counts the
    others. ``param_bytes`` maps a dtype name to the bytes of parameters of that dtype.
    ``warnings`` are things the reader should know (unknown ops, failed shape inference, ...).
    ``params`` counts each stored tensor once, as the file holds it; ``shared_params`` is how
    many more elements the module rows count because several modules read one stored tensor
    (tied weights, or identical tensors the exporter stored once), so ``params +
    shared_params`` is what summing the modules' parameters gives.
    """

    path: str
    ir_version: int
    opsets: Mapping[str, int]
    producer: str
    graph_name: str
    file_bytes: int
    external_data_bytes: int
    external_data_files: tuple[str, ...]
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    nodes: tuple[NodeInfo, ...]
    modules: tuple[ModuleInfo, ...]
    hierarchy: str
    params: int
    param_bytes: Mapping[str, int]
    macs: int
    unknown_macs: int
    op_histogram: Mapping[str, int]
    symbolic_dims: tuple[str, ...]
    bound_dims: Mapping[str, int] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    shared_params: int = 0

    @property
    def node_count(self) -> int:
        """Number of nodes in the main graph."""
        return len(self.nodes)

    @property
    def total_bytes(self) -> int:
        """The .onnx file plus its external data."""
        return self.file_bytes + self.external_data_bytes

    def module(self, path: str) -> ModuleInfo:
        """The module with this dotted path (``""`` is the root); KeyError if absent."""
        for info in self.modules:
            if info.path == path:
                return info
        raise KeyError(path)

    def find_module(self, module: str, node: str | None = None) -> str | None:
        """This summary's path for the PyTorch module ``module``, found through its node ``node``.

        With the dynamo exporter's metadata the paths are the same. TorchScript node names of a
        wrapped model give paths such as ``model.blocks.2.branch`` for ``blocks.2.branch``: the module is
        then the nearest module enclosing ``node`` whose last name is the same.
        """
        paths = {m.path for m in self.modules}
        found = next((n for n in self.nodes if node is not None and n.name == node), None)
        if found is None or module == "":
            return module if module in paths else None
        last = module.rsplit(".", 1)[-1]
        path = found.module
        while path:
            if path == module or path.rsplit(".", 1)[-1] == last:
                return path
            path = path.rpartition(".")[0]
        return module if module in paths else found.module

    def nodes_under(self, path: str) -> tuple[NodeInfo, ...]:
        """The nodes of the module ``path`` and of every module inside it."""
        prefix = path + "."
        return tuple(
            n for n in self.nodes if not path or n.module == path or n.module.startswith(prefix)
        )

    def _repr_html_(self) -> str:
        """The summary table as HTML, in a notebook (the renderer is registered by the front door)."""
        from exportkit.display import html

        return html(self)
