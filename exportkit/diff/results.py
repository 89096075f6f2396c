"""The typed results of comparing two ONNX files: plain frozen dataclasses, no rendering."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from exportkit.summary.histogram import OpCountChange
from exportkit.summary.results import TensorInfo
from exportkit.validate.compare import OutputCheck

__all__ = [
    "ContractDiff",
    "DiffResult",
    "ModuleChange",
    "NumbersDiff",
    "StructureDiff",
    "TensorChange",
    "WeightChange",
    "WeightsDiff",
]

Status = Literal["same", "added", "removed", "changed"]


@dataclass(frozen=True, slots=True)
class TensorChange:
    """One graph input or output, matched by name.

    ``findings`` say what changed in words (``dtype float32 -> float16``, ``dim 0: dynamic
    'batch' -> fixed 2``); ``lost_dynamic`` lists the axes whose symbolic dim became fixed.
    """

    name: str
    kind: Literal["input", "output"]
    status: Status
    a: TensorInfo | None
    b: TensorInfo | None
    findings: tuple[str, ...] = ()
    lost_dynamic: tuple[int, ...] = ()


@dataclass(frozen=True)
class ContractDiff:
    """What a caller of the model sees: inputs, outputs, opset imports, IR version, producer.

    ``opsets`` maps each domain to its version in A and in B (None: not imported). The producer
    is informational: two exports by different torch versions may be equivalent.
    """

    inputs: tuple[TensorChange, ...]
    outputs: tuple[TensorChange, ...]
    opsets: Mapping[str, tuple[int | None, int | None]]
    ir_version: tuple[int, int]
    producer: tuple[str, str]

    @property
    def same(self) -> bool:
        """Same inputs, outputs, opset imports and IR version."""
        tensors = all(t.status == "same" for t in (*self.inputs, *self.outputs))
        opsets = all(a == b for a, b in self.opsets.values())
        return tensors and opsets and self.ir_version[0] == self.ir_version[1]


@dataclass(frozen=True, slots=True)
class ModuleChange:
    """One PyTorch module of either file, matched by its dotted path (``""`` is the root).

    ``nodes``, ``params`` and ``macs`` are (A, B) totals over the module's subtree (``macs``
    None where nodes' MACs are unknown). ``ops`` lists the op types whose count differs under
    it. ``own`` is whether the module's own nodes changed (not only its children's).
    ``weights_changed`` counts the weights read under it whose values differ.
    """

    path: str
    class_name: str | None
    depth: int
    status: Status
    own: bool
    nodes: tuple[int, int]
    params: tuple[int, int]
    macs: tuple[int | None, int | None]
    ops: tuple[OpCountChange, ...]
    children: tuple[str, ...]
    weights_changed: int = 0


@dataclass(frozen=True)
class StructureDiff:
    """The module trees side by side, root first in pre-order, and the whole-graph op counts.

    ``hierarchy`` is each file's source of the module tree (``metadata``, ``names``, ``none``);
    when only one file has one, both are compared as flat graphs under the root (``note``).
    Node counts leave out Identity nodes that only pass on a stored weight (the TorchScript
    exporter adds them where it stored identical tensors once; they come and go with values).
    """

    modules: tuple[ModuleChange, ...]
    ops: tuple[OpCountChange, ...]
    node_count: tuple[int, int]
    hierarchy: tuple[str, str]
    note: str | None = None
    unbound: tuple[str, ...] = ()  # symbolic dims that leave some MACs unknown (bind: --dim)

    @property
    def same(self) -> bool:
        """Every module has the same op types, counts, params and MACs on both sides."""
        return all(m.status == "same" for m in self.modules)

    @property
    def changed(self) -> tuple[ModuleChange, ...]:
        """The modules added, removed, or changed in their own nodes (not only below)."""
        return tuple(m for m in self.modules if m.status in ("added", "removed") or m.own)


@dataclass(frozen=True, slots=True)
class WeightChange:
    """One weight tensor matched across the files: by name, else by the module and op it feeds,
    else by the op, input slot and shape that read it (``position``).

    ``name`` is the name in A (B for an added weight), ``other`` the name in B when it differs.
    ``max_abs`` is the largest absolute difference (None when shapes differ or one is absent).
    """

    name: str
    other: str | None
    module: str
    status: Literal["equal", "changed", "added", "removed"]
    matched_by: Literal["name", "module", "position", "none"]
    shape: tuple[tuple[int, ...] | None, tuple[int, ...] | None]
    dtype: tuple[str | None, str | None]
    max_abs: float | None = None


@dataclass(frozen=True)
class WeightsDiff:
    """Every weight compared, and the modules whose weights changed.

    ``changed_modules`` names, for each changed weight, the outermost module all of whose
    weights changed (a retrained block, not each of its layers); ``equal`` and ``changed``
    count tensors.
    """

    weights: tuple[WeightChange, ...]
    changed_modules: tuple[str, ...]
    equal: int
    changed: int

    @property
    def same(self) -> bool:
        """Every weight has an equal counterpart."""
        return all(w.status == "equal" for w in self.weights)


@dataclass(frozen=True)
class NumbersDiff:
    """Both files run by onnxruntime on the same seeded inputs; outputs compared as validation does.

    ``inputs`` are ``--input`` lines that rebuild what was fed. ``outputs`` compare A (the
    expected side) with B. ``first_module`` is the first module (in A's execution order) whose
    output values differ, when both files carry the module hierarchy, with ``first_value``
    (the value's name in A) and its comparison. ``error`` says why nothing could be compared.
    """

    inputs: tuple[str, ...]
    outputs: tuple[OutputCheck, ...]
    error: str | None = None
    first_module: str | None = None
    first_value: str | None = None
    first_check: OutputCheck | None = None

    @property
    def passed(self) -> bool:
        """Both ran and every output is within tolerance."""
        return self.error is None and bool(self.outputs) and all(o.passed for o in self.outputs)


@dataclass(frozen=True)
class DiffResult:
    """What ``diff`` found between file A (the reference) and file B.

    ``weights`` and ``numbers`` are None when they were not compared (the files' external
    weight data is then never read).
    """

    a: str
    b: str
    contract: ContractDiff
    structure: StructureDiff
    weights: WeightsDiff | None
    numbers: NumbersDiff | None

    @property
    def equivalent(self) -> bool:
        """Same contract and structure, and outputs within tolerance (equal weights when the
        outputs were not compared)."""
        if not (self.contract.same and self.structure.same):
            return False
        if self.numbers is not None:
            return self.numbers.passed
        return self.weights is None or self.weights.same

    def _repr_html_(self) -> str:
        """The diff as HTML, in a notebook (the renderer is registered by the front door)."""
        from exportkit.display import html

        return html(self)
