"""Weights of two files side by side: matched by name, else by the module and op they feed, else
by the op, input slot and shape that read them."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import onnx

from exportkit.diff.results import WeightChange, WeightsDiff
from exportkit.summary.graph import dtype_name
from exportkit.summary.results import GraphSummary
from exportkit.summary.tree import PARAM_DTYPES

if TYPE_CHECKING:
    import numpy as np

__all__ = ["compare_weights"]

#: Where a weight is read: (module path, op type, input slot).
_Key = tuple[str, str, int]


@dataclass
class _Weights:
    folder: Path
    tensors: dict[str, onnx.TensorProto]
    keys: dict[str, list[_Key]] = field(default_factory=dict)  # weight -> where it is read
    by_key: dict[_Key, list[str]] = field(default_factory=dict)  # where -> weights, in order
    modules: dict[str, list[str]] = field(default_factory=dict)  # weight -> reader modules


def _read(path: Path, summary: GraphSummary) -> _Weights:
    """The file's weight tensors (data left where it is) and where each is read."""
    model = onnx.load(str(path), load_external_data=False)
    tensors = {}
    for t in model.graph.initializer:
        if dtype_name(t.data_type) in PARAM_DTYPES and len(t.dims) >= 1 and all(t.dims):
            tensors[t.name] = t
    side = _Weights(path.parent, tensors)
    alias: dict[str, str] = {}
    for node, info in zip(model.graph.node, summary.nodes, strict=True):
        if node.op_type == "Identity" and node.input and node.output:
            source = alias.get(node.input[0], node.input[0])
            if source in tensors:  # a weight the TorchScript exporter reads through Identity
                alias[node.output[0]] = source
                continue
        for slot, name in enumerate(node.input):
            name = alias.get(name, name)
            if name not in tensors:
                continue
            key = (info.module, info.op_type, slot)
            keys = side.keys.setdefault(name, [])
            if key not in keys:
                keys.append(key)
                side.by_key.setdefault(key, []).append(name)
            mods = side.modules.setdefault(name, [])
            if info.module not in mods:
                mods.append(info.module)
    return side


def _array(t: onnx.TensorProto, folder: Path) -> np.ndarray:
    from onnx import numpy_helper

    array = numpy_helper.to_array(t, base_dir=str(folder))
    if t.data_location == onnx.TensorProto.EXTERNAL:
        t.ClearField("raw_data")  # loaded for this comparison only: do not keep it in memory
    return array


def _compare(ta: onnx.TensorProto, tb: onnx.TensorProto, wa: _Weights, wb: _Weights) -> float:
    """Largest absolute difference (0.0: equal); inf when shapes differ."""
    import numpy as np

    if list(ta.dims) != list(tb.dims):
        return float("inf")
    inline = onnx.TensorProto.DEFAULT
    if (
        ta.data_type == tb.data_type
        and ta.data_location == tb.data_location == inline
        and ta.HasField("raw_data")
        and tb.HasField("raw_data")
        and ta.raw_data == tb.raw_data
    ):
        return 0.0
    a = _array(ta, wa.folder).astype(np.float64)
    b = _array(tb, wb.folder).astype(np.float64)
    if a.size == 0:
        return 0.0
    diff = np.abs(a - b)
    same_nan = np.isnan(a) & np.isnan(b)
    return float(np.where(same_nan, 0.0, diff).max())


_Pair = tuple[str | None, str | None]


def _pairs(wa: _Weights, wb: _Weights) -> dict[_Pair, tuple[str, list[str]]]:
    """(name in A, name in B) -> (matched by, modules where they are read), each pair once;
    unmatched names paired with None.

    A name matches when both files read the tensor in the same place (or one reads it
    nowhere): generic names such as ``onnx::Mul_48`` mean different tensors in two exports.
    Renamed tensors, and one tensor stored for several modules in one file only, match by
    the place they are read: (module, op type, input slot), in order.
    """
    pairs: dict[_Pair, tuple[str, list[str]]] = {}
    matched_a: set[str] = set()
    matched_b: set[str] = set()
    for name in wa.tensors:
        if name not in wb.tensors:
            continue
        ka, kb = wa.keys.get(name, []), wb.keys.get(name, [])
        common = [k for k in ka if k in kb]
        if common or not ka or not kb:
            mods = list(dict.fromkeys(k[0] for k in (common or ka or kb)))
            pairs[(name, name)] = ("name", mods)
            matched_a.add(name)
            matched_b.add(name)
    for key, names_b in wb.by_key.items():
        names_a = wa.by_key.get(key, [])
        for na, nb in zip(names_a, names_b, strict=False):
            if (na, nb) in pairs and pairs[(na, nb)][0] == "name":
                continue
            if na in matched_a and nb in matched_b and (na, nb) not in pairs:
                continue  # both already matched elsewhere by name
            _, mods = pairs.setdefault((na, nb), ("module", []))
            if key[0] not in mods:
                mods.append(key[0])
            matched_a.add(na)
            matched_b.add(nb)
    for na, nb in _by_position(wa, wb, matched_a, matched_b):
        modules = list(dict.fromkeys([*wa.modules.get(na, []), *wb.modules.get(nb, [])]))
        pairs[(na, nb)] = ("position", modules)
        matched_a.add(na)
        matched_b.add(nb)
    for name in wa.tensors:
        if name not in matched_a:
            pairs[(name, None)] = ("none", list(wa.modules.get(name, [])))
    for name in wb.tensors:
        if name not in matched_b:
            pairs[(None, name)] = ("none", list(wb.modules.get(name, [])))
    return pairs


def _by_position(
    wa: _Weights, wb: _Weights, matched_a: set[str], matched_b: set[str]
) -> list[tuple[str, str]]:
    """Weights still unmatched, paired by what reads them, in graph order: the op type, the input
    slot, the shape and dtype. Two exporters name one weight differently and may credit its node
    to another module (dynamo reads a Conv folded with its BatchNorm in the BatchNorm's module)."""
    out: list[tuple[str, str]] = []
    waiting: dict[tuple[object, ...], list[str]] = {}
    for name, t in wa.tensors.items():
        if name not in matched_a and wa.keys.get(name):
            _, op, slot = wa.keys[name][0]
            waiting.setdefault((op, slot, tuple(t.dims), t.data_type), []).append(name)
    for name, t in wb.tensors.items():
        if name in matched_b or not wb.keys.get(name):
            continue
        _, op, slot = wb.keys[name][0]
        queue = waiting.get((op, slot, tuple(t.dims), t.data_type))
        if queue:
            out.append((queue.pop(0), name))
    return out


def _dtype(t: onnx.TensorProto | None) -> str | None:
    return dtype_name(t.data_type) if t is not None else None


def compare_weights(
    path_a: str | os.PathLike[str],
    path_b: str | os.PathLike[str],
    a: GraphSummary,
    b: GraphSummary,
) -> tuple[WeightsDiff, dict[str, int]]:
    """Every weight of A and B compared; and per module path, how many changed beneath it."""
    wa, wb = _read(Path(path_a), a), _read(Path(path_b), b)
    parents = {m.path: m.parent for m in (*a.modules, *b.modules)}
    changes: list[WeightChange] = []
    total: dict[str, int] = {}
    changed: dict[str, int] = {}
    own_changed: set[str] = set()
    for (na, nb), (how, modules) in _pairs(wa, wb).items():
        ta = wa.tensors.get(na) if na else None
        tb = wb.tensors.get(nb) if nb else None
        module = modules[0] if modules else ""
        if ta is not None and tb is not None:
            max_abs: float | None = _compare(ta, tb, wa, wb)
            same = max_abs == 0.0 and ta.data_type == tb.data_type
            status = "equal" if same else "changed"
            if max_abs == float("inf"):
                max_abs = None
        else:
            max_abs = None
            status = "removed" if tb is None else "added"
        changes.append(
            WeightChange(
                name=na or nb or "",
                other=nb if na is not None and nb != na else None,
                module=module,
                status=status,  # type: ignore[arg-type]
                matched_by=how,  # type: ignore[arg-type]
                shape=(tuple(ta.dims) if ta else None, tuple(tb.dims) if tb else None),
                dtype=(_dtype(ta), _dtype(tb)),
                max_abs=max_abs,
            )
        )
        counted: set[str] = set()
        for m in modules or [""]:
            if status != "equal":
                own_changed.add(m)
            path: str | None = m
            while path is not None and path not in counted:
                counted.add(path)
                total[path] = total.get(path, 0) + 1
                if status != "equal":
                    changed[path] = changed.get(path, 0) + 1
                path = parents.get(path) if path else None
    names = _changed_modules(a if a.modules else b, total, changed, own_changed)
    diff = WeightsDiff(
        weights=tuple(changes),
        changed_modules=names,
        equal=sum(1 for c in changes if c.status == "equal"),
        changed=sum(1 for c in changes if c.status != "equal"),
    )
    return diff, changed


def _changed_modules(
    summary: GraphSummary, total: dict[str, int], changed: dict[str, int], own: set[str]
) -> tuple[str, ...]:
    """The outermost modules all of whose weights changed, and modules whose own nodes read a
    changed weight while some of their children's weights did not change."""
    if not changed:
        return ()
    children = {m.path: m.children for m in summary.modules}
    out: list[str] = []

    def visit(path: str) -> None:
        count = changed.get(path, 0)
        if not count:
            return
        if count == total.get(path, 0):
            out.append(path)
            return
        for child in children.get(path, ()):
            visit(child)
        if path in own:
            out.append(path)

    visit("")
    if out == [""]:
        return ("",)  # every weight changed
    extra = sorted(m for m in own if m not in children and m not in out)  # only in B
    return tuple(out + extra)
