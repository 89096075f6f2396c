"""Two module trees side by side: modules added, removed or changed (op counts, params, MACs)."""

from __future__ import annotations

from dataclasses import dataclass

from exportkit.diff.results import ModuleChange, Status, StructureDiff
from exportkit.summary.histogram import OpCountChange, compare_histograms
from exportkit.summary.results import GraphSummary, ModuleInfo

__all__ = ["compare_structure"]


@dataclass
class _Side:
    modules: dict[str, ModuleInfo]
    own: dict[str, dict[str, int]]  # module -> op histogram of its own nodes
    subtree: dict[str, dict[str, int]]  # module -> op histogram of its whole subtree


def _op_key(domain: str, op_type: str) -> str:
    return op_type if domain in ("", "ai.onnx") else f"{domain}::{op_type}"


def _weight_aliases(summary: GraphSummary) -> set[int]:
    """Identity nodes that only pass on a stored tensor: the TorchScript exporter adds one per
    extra reader of a tensor it stored once, so they come and go with weight values."""
    made = {o.name for n in summary.nodes for o in n.outputs}
    made.update(t.name for t in summary.inputs)
    return {
        i for i, n in enumerate(summary.nodes)
        if n.op_type == "Identity" and n.domain in ("", "ai.onnx") and n.inputs
        and n.inputs[0] not in made
    }  # fmt: skip


def _side(summary: GraphSummary, flat: bool) -> _Side:
    nodes = summary.nodes
    aliases = _weight_aliases(summary)
    if flat:  # compared as one flat graph: the root holds every node
        root = summary.modules[0]
        hist: dict[str, int] = {}
        for i, n in enumerate(nodes):
            if i in aliases:
                continue
            key = _op_key(n.domain, n.op_type)
            hist[key] = hist.get(key, 0) + 1
        params = root.params + summary.shared_params
        flat_root = ModuleInfo(
            "", root.class_name, 0, None, len(nodes) - len(aliases), params, root.macs,
            root.unknown_macs, root.outputs, (), tuple(range(len(nodes))), 0,
        )  # fmt: skip
        return _Side({"": flat_root}, {"": hist}, {"": dict(hist)})
    modules = {m.path: m for m in summary.modules}
    own: dict[str, dict[str, int]] = {}
    for m in summary.modules:
        h: dict[str, int] = {}
        for i in m.nodes:
            if i in aliases:
                continue
            n = nodes[i]
            key = _op_key(n.domain, n.op_type)
            h[key] = h.get(key, 0) + 1
        own[m.path] = h
    subtree: dict[str, dict[str, int]] = {}
    for m in reversed(summary.modules):  # pre-order reversed: children before parents
        h = dict(own[m.path])
        for child in m.children:
            for key, count in subtree[child].items():
                h[key] = h.get(key, 0) + count
        subtree[m.path] = h
    if "" in modules:  # the root counts shared tensors in each module, as the rows do
        root = modules[""]
        modules[""] = ModuleInfo(
            root.path, root.class_name, root.depth, root.parent, root.node_count,
            root.params + summary.shared_params, root.macs, root.unknown_macs, root.outputs,
            root.children, root.nodes, root.first_node, root.shared_params,
        )  # fmt: skip
    return _Side(modules, own, subtree)


def _macs(m: ModuleInfo | None) -> int | None:
    if m is None:
        return 0
    return None if m.unknown_macs else m.macs


def _visit(path: str, sa: _Side, sb: _Side, out: list[ModuleChange]) -> Status:
    """Append the ModuleChange of ``path`` and its subtree to ``out`` in pre-order."""
    ma, mb = sa.modules.get(path), sb.modules.get(path)
    slot = len(out)
    out.append(None)  # type: ignore[arg-type]  # filled after the children
    children = list(mb.children if mb else ())
    children += [c for c in (ma.children if ma else ()) if c not in children]
    child_status = [_visit(c, sa, sb, out) for c in children]
    ha = sa.subtree.get(path, {})
    hb = sb.subtree.get(path, {})
    ops: tuple[OpCountChange, ...] = ()
    if ha != hb:  # most modules are the same: no need to list their unchanged ops
        whole_ops = compare_histograms(ha, hb, before_bytes=0, after_bytes=0).ops
        ops = tuple(c for c in whole_ops if c.delta)
    params = (ma.params if ma else 0, mb.params if mb else 0)
    macs = (_macs(ma), _macs(mb))
    status: Status
    if ma is None or mb is None:
        status = "added" if ma is None else "removed"
        own = True
    else:
        known = macs[0] is not None and macs[1] is not None
        differs = bool(ops) or params[0] != params[1] or (known and macs[0] != macs[1])
        status = "changed" if differs else "same"
        own_ops = sa.own.get(path, {}) != sb.own.get(path, {})
        own = own_ops or (differs and all(s == "same" for s in child_status))
    ref = mb or ma
    assert ref is not None
    out[slot] = ModuleChange(
        path=path,
        class_name=(mb.class_name if mb else None) or (ma.class_name if ma else None),
        depth=ref.depth,
        status=status,
        own=own and status != "same",
        nodes=(sum(ha.values()), sum(hb.values())),
        params=params,
        macs=macs,
        ops=ops,
        children=tuple(children),
    )
    return status


def compare_structure(a: GraphSummary, b: GraphSummary) -> StructureDiff:
    """Match modules by dotted path and compare their subtrees.

    A tensor the exporter stored once for several modules counts in each (see
    ``ModuleInfo.params``), so deduplicated weights are no structural change. When only one
    file carries a module hierarchy, both are compared as flat graphs.
    """
    hierarchy = (a.hierarchy, b.hierarchy)
    flat = (a.hierarchy == "none") != (b.hierarchy == "none")
    note = None
    if flat:
        which = "A" if a.hierarchy == "none" else "B"
        note = f"{which} carries no module hierarchy: the files are compared as flat graphs"
    sa, sb = _side(a, flat), _side(b, flat)
    out: list[ModuleChange] = []
    _visit("", sa, sb, out)  # a function, not a closure: a recursive closure is a cycle
    whole = compare_histograms(sa.subtree[""], sb.subtree[""], before_bytes=0, after_bytes=0)
    file_params = (a.params, b.params)
    if not note and file_params[0] != file_params[1] and out[0].params[0] == out[0].params[1]:
        note = (
            f"A stores {file_params[0]:,} parameter elements, B {file_params[1]:,}: the same "
            "parameters per module; one file stores identical tensors once for several modules"
        )
    return StructureDiff(
        modules=tuple(out),
        ops=tuple(c for c in whole.ops if c.delta),
        node_count=(sum(sa.subtree[""].values()), sum(sb.subtree[""].values())),
        hierarchy=hierarchy,
        note=note,
        unbound=tuple(
            dict.fromkeys(
                d
                for side in (a, b)
                if side.unknown_macs
                for d in side.symbolic_dims
                if d not in side.bound_dims
            )
        ),
    )
