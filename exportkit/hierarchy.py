"""Which PyTorch module each ONNX node came from, and carrying that over simplification.

Two sources, in order of preference:

* the dynamo exporter's node metadata: ``pkg.torch.onnx.name_scopes`` (``['', 'layer1',
  'layer1.0', 'layer1.0.conv1', 'conv2d']``: root, modules, then the FX node) with
  ``pkg.torch.onnx.class_hierarchy`` alongside, or the ``namespace`` string
  (``': __main__.Net/layer1: torch.nn.Sequential/conv2d: aten.conv2d.default'``);
* TorchScript-style node names: ``/layer1/layer1.0/conv1/Conv`` (modules, then the op).
"""

from __future__ import annotations

import ast
from collections.abc import Sequence

import onnx

from exportkit.onnxfile import set_props

__all__ = ["SCOPE_KEYS", "Scope", "ScopeReader", "carry_metadata", "common_scope"]

NAME_SCOPES = "pkg.torch.onnx.name_scopes"
CLASS_HIERARCHY = "pkg.torch.onnx.class_hierarchy"
NAMESPACE = "namespace"
#: Set by onnxscript's rewriter (the dynamo exporter's optimizer) on nodes it fused.
REWRITE_RULE = "pkg.onnxscript.rewriter.rule_name"
#: metadata_props keys that carry the module hierarchy of a node.
SCOPE_KEYS = (NAME_SCOPES, CLASS_HIERARCHY, NAMESPACE)

_MISSING = object()

#: A node's modules, outermost first: (dotted module path, class name or None).
Scope = tuple[tuple[str, str | None], ...]


def _parse_list(text: str) -> list[str] | None:
    """Parse the exporter's ``"['', 'a', 'a.b']"``; fast path for plain names, else literal_eval."""
    text = text.strip()
    if not (text.startswith("[") and text.endswith("]")):
        return None
    body = text[1:-1].strip()
    if not body:
        return []
    parts = body.split(", ")
    if all(len(p) >= 2 and p[0] == p[-1] == "'" and "'" not in p[1:-1] for p in parts):
        return [p[1:-1] for p in parts]
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


def _qualify(parent: str, part: str) -> str:
    """TorchScript names mix ``layer1.0`` (already qualified) and ``conv1`` (relative).

    Qualified parts are relative to the module being exported: under a wrapper
    (``/model/blocks/blocks.0``) ``blocks.0`` extends ``blocks``, the end of ``model.blocks``.
    """
    if not parent or part.startswith(parent + "."):
        return part
    if "." in part:
        atoms = parent.split(".")
        for i in range(1, len(atoms)):
            if part.startswith(".".join(atoms[i:]) + "."):
                return ".".join([*atoms[:i], part])
    return f"{parent}.{part}"


class ScopeReader:
    """Reads node scopes, caching the parse of repeated metadata strings."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str | None, str, str], object] = {}
        self._name_cache: dict[str, Scope] = {}
        #: Whether the node last read by from_metadata was fused by the exporter's rewriter.
        self.fused = False

    def from_metadata(self, node: onnx.NodeProto) -> tuple[Scope, str | None] | None:
        """(scope, root class) from the node's metadata, or None if it has none."""
        self.fused = False
        if not node.metadata_props:
            return None
        scopes = classes = namespace = ""
        for prop in node.metadata_props:
            key = prop.key
            if key == NAME_SCOPES:
                scopes = prop.value
            elif key == CLASS_HIERARCHY:
                classes = prop.value
            elif key == NAMESPACE:
                namespace = prop.value
            elif key == REWRITE_RULE:
                self.fused = True
        if not (scopes or namespace):
            return None
        # The last entry names the node itself and differs on every node: cache on the rest.
        key = (
            scopes.rpartition(", ")[0] if scopes else None,
            classes.rpartition(", ")[0],
            namespace.rpartition("/")[0],
        )
        found = self._cache.get(key, _MISSING)
        if found is _MISSING:
            found = _scope_from_metadata(*key)
            self._cache[key] = found
        return found  # type: ignore[return-value]

    def from_name(self, name: str) -> Scope | None:
        """Scope from a TorchScript-style name ``/a/a.0/conv/Conv``; None if not that style."""
        if not name.startswith("/"):
            return None
        parts = name.split("/")[1:-1]
        key = "/".join(parts)
        cached = self._name_cache.get(key)
        if cached is None:
            out: list[tuple[str, str | None]] = []
            parent = ""
            for part in parts:
                if not part:
                    continue
                parent = _qualify(parent, part)
                out.append((parent, None))
            cached = tuple(out)
            self._name_cache[key] = cached
        return cached

    def scope(
        self, node: onnx.NodeProto, name: str | None = None
    ) -> tuple[Scope, str | None, str] | None:
        """(scope, root class, source: ``"metadata"`` or ``"names"``); None if neither.

        ``name`` is ``node.name`` when the caller has read it already.
        """
        meta = self.from_metadata(node)
        if meta is not None:
            return meta[0], meta[1], "metadata"
        named = self.from_name(node.name if name is None else name)
        if named is not None:
            return named, None, "names"
        return None


def _scope_from_metadata(
    scopes_head: str | None, classes_head: str, namespace_head: str
) -> tuple[Scope, str | None] | None:
    """Scope from the metadata strings without their last entry (the node itself)."""
    if scopes_head is not None:
        names = _parse_list(scopes_head + "]") if scopes_head else []
        if names is not None:
            cls = _parse_list(classes_head + "]") if classes_head else None
            if cls is None or len(cls) != len(names):
                cls = [""] * len(names)
            # The first entry is the root module ('').
            scope = tuple((n, c or None) for n, c in zip(names[1:], cls[1:], strict=True) if n)
            return scope, (cls[0] or None) if cls else None
    if namespace_head:
        pairs = [e.split(": ", 1) if ": " in e else [e, ""] for e in namespace_head.split("/")]
        scope = tuple((n, c or None) for n, c in pairs[1:] if n)
        return scope, pairs[0][1] or None
    return None


def common_scope(scopes: Sequence[Scope]) -> Scope:
    """The longest scope prefix shared by all ``scopes``."""
    if not scopes:
        return ()
    first = scopes[0]
    n = len(first)
    for s in scopes[1:]:
        n = min(n, len(s))
        for i in range(n):
            if s[i][0] != first[i][0]:
                n = i
                break
    return first[:n]


def _scope_props(node: onnx.NodeProto, scope: Scope, root_class: str | None) -> dict[str, str]:
    """Metadata in the dynamo exporter's format for ``node`` placed in ``scope``."""
    names = ["", *(p for p, _ in scope), node.name or node.op_type]
    classes = [root_class or "", *(c or "" for _, c in scope), node.op_type]
    parts = [f"{p}: {c or ''}" for p, c in scope]
    namespace = "/".join([f": {root_class or ''}", *parts, f"{names[-1]}: {node.op_type}"])
    return {NAME_SCOPES: repr(names), CLASS_HIERARCHY: repr(classes), NAMESPACE: namespace}


def carry_metadata(original: onnx.ModelProto, simplified: onnx.ModelProto) -> int:
    """Give the nodes of a simplified graph the module hierarchy of the original graph, in place.

    onnxsim and onnxslim drop every node's ``metadata_props``. For each node of ``simplified``
    that lost its hierarchy, in order of preference:

    1. the original node with the same name, else the one that produced one of its outputs:
       its metadata is copied as is;
    2. a fused or new node that reads values of the original graph (weights, graph inputs,
       intermediate values) goes to the innermost module shared by the original readers of
       those values: a Gemm that fused ``fc``'s MatMul and Add lands in ``fc``;
    3. otherwise the innermost module shared by its nearest placed producers and consumers.

    Nodes placed by 2 or 3 get ``pkg.torch.onnx.name_scopes``, ``pkg.torch.onnx.class_hierarchy``
    and ``namespace`` in the dynamo exporter's format. TorchScript-style originals (hierarchy in
    node names such as ``/layer1/conv/Conv``) work the same way; renamed nodes get metadata.

    Neither model needs its weights loaded. Save ``simplified`` afterwards to keep the result.

    Args:
        original: the graph before simplification (e.g. ``onnx.load(p, load_external_data=False)``).
        simplified: the simplified graph; its nodes' ``metadata_props`` are modified.

    Returns:
        The number of nodes of ``simplified`` whose metadata was written.
    """
    reader = ScopeReader()
    orig_nodes = list(original.graph.node)
    by_name = {n.name: n for n in orig_nodes if n.name}
    by_output: dict[str, onnx.NodeProto] = {}
    readers: dict[str, list[Scope]] = {}
    root_class: str | None = None
    any_scope = False
    for n in orig_nodes:
        for out in n.output:
            if out:
                by_output.setdefault(out, n)
        found = reader.scope(n)
        if found is None:
            continue
        any_scope = True
        root_class = root_class or found[1]
        for inp in n.input:
            if inp:
                readers.setdefault(inp, []).append(found[0])
    if not any_scope:
        return 0

    placed: dict[int, Scope] = {}  # id(simplified node) -> scope
    pending: list[onnx.NodeProto] = []
    written = 0
    for node in simplified.graph.node:
        own = reader.scope(node)
        if own is not None and (own[2] == "metadata" or node.name in by_name or own[0]):
            placed[id(node)] = own[0]
            continue
        source = by_name.get(node.name) if node.name else None
        if source is None:
            source = next((by_output[o] for o in node.output if o in by_output), None)
        src_scope = reader.scope(source) if source is not None else None
        if source is not None and src_scope is not None:
            if src_scope[2] == "metadata":
                set_props(node.metadata_props, {p.key: p.value for p in source.metadata_props})
            else:
                set_props(node.metadata_props, _scope_props(node, src_scope[0], root_class))
            placed[id(node)] = src_scope[0]
            written += 1
            continue
        shared = [s for inp in node.input for s in readers.get(inp, ())]
        if shared:
            scope = common_scope(shared)
            set_props(node.metadata_props, _scope_props(node, scope, root_class))
            placed[id(node)] = scope
            written += 1
        else:
            pending.append(node)

    if pending:
        written += _place_by_neighbours(simplified, pending, placed, root_class)
    return written


def _place_by_neighbours(
    simplified: onnx.ModelProto,
    pending: list[onnx.NodeProto],
    placed: dict[int, Scope],
    root_class: str | None,
) -> int:
    producer: dict[str, onnx.NodeProto] = {}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for n in simplified.graph.node:
        for out in n.output:
            producer[out] = n
        for inp in n.input:
            consumers.setdefault(inp, []).append(n)

    written = 0
    while pending:  # each round places nodes next to placed ones; stop when a round places none
        still: list[onnx.NodeProto] = []
        for node in pending:
            near = [placed[id(p)] for p in (producer.get(i) for i in node.input)
                    if p is not None and id(p) in placed]  # fmt: skip
            near += [placed[id(c)] for o in node.output for c in consumers.get(o, ())
                     if id(c) in placed]  # fmt: skip
            if not near:
                still.append(node)
                continue
            scope = common_scope(near)
            set_props(node.metadata_props, _scope_props(node, scope, root_class))
            placed[id(node)] = scope
            written += 1
        if len(still) == len(pending):
            break
        pending = still
    return written
