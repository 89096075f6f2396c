"""The module tree of a graph: each node's place in it, its parameters and MACs, node by node."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import onnx

from exportkit.hierarchy import Scope, ScopeReader, common_scope
from exportkit.summary.graph import dtype_name
from exportkit.summary.macs import ZERO_MAC_OPS, Shape, node_macs, resolve_shape
from exportkit.summary.results import ModuleInfo, NodeInfo, TensorInfo

__all__ = ["PARAM_DTYPES", "TreeBuilder", "element_count"]

#: Initializer dtypes that hold parameters; int32/int64/bool initializers are shapes and indices.
PARAM_DTYPES = frozenset(
    {"float32", "float16", "bfloat16", "float64", "complex64", "complex128", "float8e4m3fn",
     "float8e4m3fnuz", "float8e5m2", "float8e5m2fnuz", "float8e8m0", "float4e2m1", "int8", "uint8",
     "int4", "uint4"}
)  # fmt: skip
_STANDARD_DOMAINS = frozenset({"", "ai.onnx"})
# Standard ops with graph attributes; nodes of other domains are checked for them too.
_SUBGRAPH_OPS = frozenset({"If", "Loop", "Scan", "SequenceMap"})
_KNOWN_DOMAINS = frozenset(
    {"", "ai.onnx", "ai.onnx.ml", "ai.onnx.preview.training", "com.microsoft",
     "com.microsoft.nchwc"}
)  # fmt: skip


def element_count(dims: Iterator[int] | list[int]) -> int:
    """Product of a shape's dims (1 for a scalar)."""
    count = 1
    for d in dims:
        count *= d
    return count


def _subgraph_names(node: onnx.NodeProto) -> Iterator[str]:
    """Names read inside a node's subgraphs (If/Loop/Scan bodies), recursively."""
    for attr in node.attribute:
        graphs = [attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs)
        for g in graphs:
            for t in g.initializer:
                yield t.name
            for inner in g.node:
                yield from inner.input
                yield from _subgraph_names(inner)


#: A node's (scope, root class, source, fused by the exporter's rewriter).
_Found = tuple[Scope, str | None, str, bool]


class _Fields:
    """The fields of a node the summary reads, each read from the protobuf once (per access)."""

    __slots__ = ("domain", "input", "name", "op_type", "output", "proto")

    def __init__(self, proto: onnx.NodeProto) -> None:
        self.proto = proto
        self.name: str = proto.name
        self.op_type: str = proto.op_type
        self.domain: str = proto.domain
        self.input: tuple[str, ...] = tuple(proto.input)
        self.output: tuple[str, ...] = tuple(proto.output)

    @property
    def attribute(self) -> Sequence[onnx.AttributeProto]:
        attributes: Sequence[onnx.AttributeProto] = self.proto.attribute
        return attributes


@dataclass
class _Module:
    path: str
    class_name: str | None
    depth: int
    parent: str | None
    children: list[str] = field(default_factory=list)
    nodes: list[int] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    first: int | None = None  # first node placed here by its own hierarchy, not inherited


class TreeBuilder:
    """Accumulates NodeInfo rows and the module tree, node by node."""

    def __init__(
        self,
        values: dict[str, TensorInfo],
        params: dict[str, tuple[int, str]],
        dims: dict[str, int],
    ) -> None:
        self.values = values
        self.params = params
        self.dims = dims
        self.nodes: list[NodeInfo] = []
        self.chains: list[tuple[str, ...]] = []
        self.seen_params: set[str] = set()
        self.constant_params: list[tuple[int, str]] = []
        self.unknown_macs = 0
        self.unknown_domains: dict[str, dict[str, None]] = {}
        self.reader = ScopeReader()
        self.source_counts = {"metadata": 0, "names": 0}
        self.root_class: str | None = None
        self.mods: dict[str, _Module] = {"": _Module("", None, 0, None)}
        self._shapes: dict[str, Shape | None] = {}
        self._scopes: dict[Scope, tuple[str, tuple[str, ...]]] = {}
        self.found: list[_Found | None] = []
        self.fields: list[_Fields] = []
        self.inherited: set[int] = set()
        self.alias: dict[str, str] = {}
        #: parameter -> indices of the nodes that read it (an exporter may store one tensor for
        #: several identical parameters, e.g. freshly initialised norm weights).
        self.readers: dict[str, list[int]] = {}
        self.node_constants: dict[int, int] = {}
        #: Elements counted again for each extra module that reads a stored tensor.
        self.shared_params = 0

    def shape_of(self, name: str) -> Shape | None:
        try:
            return self._shapes[name]
        except KeyError:
            info = self.values.get(name)
            shape = resolve_shape(info.shape, self.dims) if info is not None else None
            self._shapes[name] = shape
            return shape

    def prepare(self, nodes: Sequence[onnx.NodeProto]) -> None:
        """Read every node's scope; place nodes without one; find aliases of weights.

        A node with no hierarchy of its own in a graph that has one (a weight the TorchScript
        exporter deduplicated behind an ``Identity``, a ``Split`` the exporter's optimizer
        added) goes to the module shared by its readers, else by its producers.
        """
        read = self.reader.scope
        found: list[_Found | None] = []
        fields = self.fields = [_Fields(node) for node in nodes]
        for row in fields:
            own = read(row.proto, row.name)
            found.append(None if own is None else (*own, self.reader.fused))
        self.found = found
        for row in fields:  # Identity(weight): its readers read the weight
            if row.op_type == "Identity" and row.domain in _STANDARD_DOMAINS and row.input:
                src = self.alias.get(row.input[0], row.input[0])
                if src in self.params and row.output:
                    self.alias[row.output[0]] = src
        if all(f is None for f in found) or all(f is not None for f in found):
            return
        readers: dict[str, list[int]] = {}
        producer: dict[str, int] = {}
        for i, row in enumerate(fields):
            for name in row.input:
                readers.setdefault(name, []).append(i)
            for name in row.output:
                producer[name] = i
        placed = {i for i, f in enumerate(found) if f is not None}
        for i in range(len(nodes) - 1, -1, -1):  # readers come later: resolve them first
            if found[i] is None:
                near = [f for o in fields[i].output for j in readers.get(o, ()) if (f := found[j])]
                if near:
                    found[i] = (common_scope([f[0] for f in near]), None, near[0][2], False)
        for i, node in enumerate(fields):
            if found[i] is None:
                near = [f for n in node.input if (j := producer.get(n)) is not None
                        if (f := found[j])]  # fmt: skip
                if near:
                    found[i] = (common_scope([f[0] for f in near]), None, near[0][2], False)
        self.inherited = {i for i, f in enumerate(found) if f is not None} - placed

    def add(self, index: int) -> None:
        """Place node ``index`` (of the nodes given to ``prepare``) and count what it reads."""
        node = self.fields[index]
        path = self._place(node, index)
        inputs = node.input
        op_type, domain = node.op_type, node.domain
        params, seen, alias, readers = self.params, self.seen_params, self.alias, self.readers
        count = 0
        if not (alias and node.output and node.output[0] in alias):
            for name in inputs:
                name = alias.get(name, name)
                if name in params:
                    readers.setdefault(name, []).append(index)
                    if name not in seen:
                        seen.add(name)
                        count += params[name][0]
        standard = domain in _STANDARD_DOMAINS
        if (op_type in _SUBGRAPH_OPS or not standard) and node.proto.attribute:
            for name in _subgraph_names(node.proto):
                if name in params:
                    readers.setdefault(name, []).append(index)
                    if name not in seen:
                        seen.add(name)
                        count += params[name][0]
        if op_type == "Constant" and standard:
            constant = self._constant_params(node.proto)
            if constant:
                self.node_constants[index] = constant
                count += constant
        if domain not in _KNOWN_DOMAINS:
            self.unknown_domains.setdefault(domain, {}).setdefault(op_type)
        macs = 0 if standard and op_type in ZERO_MAC_OPS else node_macs(node, self.shape_of)
        if macs is None:
            self.unknown_macs += 1
        values = self.values
        outputs = tuple(values.get(o) or TensorInfo(o, None, None) for o in node.output if o)
        self.nodes.append(NodeInfo(node.name, op_type, domain, path, inputs, outputs, count, macs))

    def _constant_params(self, node: onnx.NodeProto) -> int:
        for attr in node.attribute:
            if attr.name == "value" and attr.type == onnx.AttributeProto.TENSOR:
                dtype = dtype_name(attr.t.data_type)
                if dtype in PARAM_DTYPES and len(attr.t.dims) >= 1:
                    numel = element_count(list(attr.t.dims))
                    self.constant_params.append((numel, dtype or ""))
                    return numel
        return 0

    def _fused_scope(self, node: _Fields, scope: Scope) -> Scope:
        """A node the exporter's rewriter fused (Conv+BatchNorm) carries the metadata of one of
        the nodes it replaced; it belongs to the module shared by the owners of its weights
        (parameter names are module paths) and that metadata."""
        for name in node.input:
            if name not in self.params:
                continue
            owner = name.rpartition(".")[0]
            keep = 0
            while keep < len(scope) and (
                owner == scope[keep][0] or owner.startswith(scope[keep][0] + ".")
            ):
                keep += 1
            scope = scope[:keep]
        return scope

    def _place(self, node: _Fields, index: int) -> str:
        found = self.found[index]
        scope: Scope = ()
        if found is not None:
            scope, root_class, source, fused = found
            if index not in self.inherited:
                self.source_counts[source] += 1
            if root_class and self.root_class is None:
                self.root_class = root_class
            if fused and source == "metadata" and scope:
                scope = self._fused_scope(node, scope)
        known = self._scopes.get(scope)
        if known is None:
            parent = ""
            for path, cls in scope:
                mod = self.mods.get(path)
                if mod is None:
                    mod = _Module(path, cls, self.mods[parent].depth + 1, parent)
                    self.mods[path] = mod
                    self.mods[parent].children.append(path)
                elif mod.class_name is None and cls:
                    mod.class_name = cls
                parent = path
            known = self._scopes[scope] = (parent, tuple(p for p, _ in scope))
        self.mods[known[0]].nodes.append(index)
        self.chains.append(known[1])
        if index not in self.inherited:
            for path in reversed(known[1]):
                mod = self.mods[path]
                if mod.first is not None:
                    break  # ancestors were set by an earlier node
                mod.first = index
        return known[0]

    @property
    def source(self) -> str:
        if self.source_counts["metadata"]:
            return "metadata"
        if len(self.mods) > 1:
            return "names"
        return "none"

    def warnings(self) -> list[str]:
        out = []
        for domain, ops in sorted(self.unknown_domains.items()):
            count = sum(1 for n in self.nodes if n.domain == domain)
            uses = "1 node uses" if count == 1 else f"{count} nodes use"
            out.append(
                f"{uses} ops from unknown domain {domain!r} ({', '.join(ops)}): "
                "their output shapes and MACs may be unknown"
            )
        return out

    def modules(self, graph: onnx.GraphProto, outputs: bool = True) -> tuple[ModuleInfo, ...]:
        """The module tree, root first in pre-order (``outputs=False``: no module outputs)."""
        self.mods[""].class_name = self.root_class
        if outputs:
            self._module_outputs(graph)
        out: list[ModuleInfo] = []
        first: dict[str, int] = {}
        # Methods, not closures: a recursive closure is a cycle that keeps the builder alive.
        self._order("", first)
        owned, shared_own, distinct = self._attributed_params()
        self._visit("", out, first, (owned, shared_own, distinct))
        return tuple(out)

    def _order(self, path: str, first: dict[str, int]) -> int:
        """Where a module starts: its first node by its own hierarchy, else any node."""
        mod = self.mods[path]
        starts = [self._order(c, first) for c in mod.children]
        mod.children.sort(key=first.__getitem__)
        fallback = min([*mod.nodes, *starts], default=len(self.nodes))
        first[path] = mod.first if mod.first is not None else fallback
        return first[path]

    def _visit(
        self,
        path: str,
        out: list[ModuleInfo],
        first: dict[str, int],
        attributed: tuple[dict[str, int], dict[str, int], int],
    ) -> tuple[int, int, int, int, int]:
        """Append the ModuleInfo of ``path`` and its subtree to ``out`` in pre-order."""
        owned, shared_own, distinct = attributed
        mod = self.mods[path]
        slot = len(out)
        out.append(None)  # type: ignore[arg-type]  # filled after the children
        own = [self.nodes[i] for i in mod.nodes]
        count = len(own)
        macs = sum(n.macs for n in own if n.macs is not None)
        unknown = sum(1 for n in own if n.macs is None)
        params, shared = owned.get(path, 0), shared_own.get(path, 0)
        for child in mod.children:
            c, m, u, p, s = self._visit(child, out, first, attributed)
            count, macs, unknown = count + c, macs + m, unknown + u
            params, shared = params + p, shared + s
        outputs = tuple(self.values.get(t) or TensorInfo(t, None, None) for t in mod.outputs)
        out[slot] = ModuleInfo(
            path=path,
            class_name=mod.class_name,
            depth=mod.depth,
            parent=mod.parent,
            node_count=count,
            params=distinct if path == "" else params,
            macs=macs,
            unknown_macs=unknown,
            outputs=outputs,
            children=tuple(mod.children),
            nodes=tuple(mod.nodes),
            first_node=first[path],
            shared_params=0 if path == "" else shared,
        )
        return count, macs, unknown, params, shared

    def _attributed_params(self) -> tuple[dict[str, int], dict[str, int], int]:
        """Per module, the parameter elements its own nodes read (a tensor the exporter stored
        once for several modules counts in each), how many of those other modules read too,
        and the elements of distinct tensors read anywhere (the file's count)."""
        owned: dict[str, int] = {}
        shared: dict[str, int] = {}
        distinct = 0
        nodes = self.nodes
        for index, constant in self.node_constants.items():
            path = nodes[index].module
            owned[path] = owned.get(path, 0) + constant
            distinct += constant
        for name, indices in self.readers.items():
            numel = self.params[name][0]
            distinct += numel
            modules = {nodes[i].module for i in indices}
            for path in modules:
                owned[path] = owned.get(path, 0) + numel
            if len(modules) > 1:
                self.shared_params += numel * (len(modules) - 1)
                for path in modules:
                    shared[path] = shared.get(path, 0) + numel
        return owned, shared, distinct

    def _module_outputs(self, graph: onnx.GraphProto) -> None:
        """A value is an output of each module that computes it and has a reader outside."""
        graph_outputs = {v.name for v in graph.output}
        producer_chain: dict[str, tuple[str, ...]] = {}
        shared: dict[str, int] = {}  # value -> depth of the module shared with all readers
        for node, chain in zip(self.nodes, self.chains, strict=True):
            for name in node.inputs:
                pchain = producer_chain.get(name)
                if pchain is None or pchain is chain:  # one scope, one tuple: nothing to narrow
                    continue
                n = 0
                limit = min(len(pchain), len(chain), shared[name])
                while n < limit and pchain[n] == chain[n]:
                    n += 1
                shared[name] = n
            for o in node.outputs:
                producer_chain[o.name] = chain
                shared[o.name] = len(chain)  # no reader outside yet
        for name in graph_outputs:
            if name in shared:
                shared[name] = 0
        self.mods[""].outputs.extend(v.name for v in graph.output)
        for name, chain in producer_chain.items():
            for path in chain[shared[name] :]:
                self.mods[path].outputs.append(name)
