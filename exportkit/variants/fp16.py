"""float16 files: onnxruntime's converter, and the nodes kept in float32 when values overflow.

An intermediate past float16's largest value (65504) becomes inf, and an inf that feeds a
normalization or a division either turns into NaN or silently zeroes a signal. The float file is
run with every intermediate exposed; nodes that make or read such values stay float32 (the
converter's ``node_block_list``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from exportkit.variants.files import (
    expose_all,
    exposed_session,
    needs_external,
    save_model,
    variant_path,
)
from exportkit.variants.results import BlockedNode, Made, VariantTrial
from exportkit.variants.runner import feeds, run_trials

if TYPE_CHECKING:
    import onnx

    from exportkit.validate import Case, Tolerances

__all__ = ["FLOAT16_MAX", "convert_fp16", "make_fp16", "module_of", "overflowing_nodes"]

FLOAT16_MAX = 65504.0


def convert_fp16(
    float_path: Path, target: Path, *, block: Sequence[str] = (), keep_io_types: bool = True
) -> Path:
    """Write the float16 conversion of ``float_path`` to ``target`` (nodes in ``block`` stay float32)."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    from exportkit.quiet import captured

    model = onnx.load(str(float_path))
    with captured("onnxruntime float16 converter"):  # its warnings go to --debug
        converted = convert_float_to_float16(
            model,
            keep_io_types=keep_io_types,
            node_block_list=list(block) or None,
            disable_shape_infer=needs_external(model),  # shape inference serializes it
        )
    if block:
        _drop_round_trips(converted, set(block))
    return save_model(converted, target)


def _drop_round_trips(model: onnx.ModelProto, block: set[str]) -> int:
    """Remove the float32 -> float16 -> float32 casts the converter puts between two blocked
    nodes: the value would pass through float16 (and overflow) on its way to a float32 node."""
    import onnx

    graph = model.graph
    made_by = {o: n for n in graph.node for o in n.output}
    readers: dict[str, list[onnx.NodeProto]] = {}
    for n in graph.node:
        for i in n.input:
            readers.setdefault(i, []).append(n)
    outputs = {o.name for o in graph.output}

    def cast_to(node: onnx.NodeProto) -> int | None:
        if node.op_type != "Cast":
            return None
        return next((a.i for a in node.attribute if a.name == "to"), None)

    drop: set[int] = set()
    rename: dict[str, str] = {}
    for node in graph.node:
        if cast_to(node) != onnx.TensorProto.FLOAT16 or node.output[0] in outputs:
            continue
        source = made_by.get(node.input[0])
        users = readers.get(node.output[0], [])
        if source is None or source.name not in block or not users:
            continue
        if not all(
            cast_to(u) == onnx.TensorProto.FLOAT and u.output[0] not in outputs for u in users
        ):
            continue
        drop.add(id(node))
        for u in users:
            drop.add(id(u))
            rename[u.output[0]] = node.input[0]
    if not drop:
        return 0
    kept = [n for n in graph.node if id(n) not in drop]
    for n in kept:
        for k, name in enumerate(n.input):
            if name in rename:
                n.input[k] = rename[name]
    del graph.node[:]
    graph.node.extend(kept)
    return len(drop)


def module_of(node: onnx.NodeProto) -> str:
    """The PyTorch module path a node came from ("" for the model itself, "?" when unknown)."""
    from exportkit.hierarchy import ScopeReader

    found = ScopeReader().scope(node)
    if found is None:
        return "?"
    scope = found[0]
    return scope[-1][0] if scope else ""


def overflowing_nodes(float_path: Path, cases: Sequence[Case]) -> tuple[BlockedNode, ...]:
    """Nodes that make or read a float value beyond float16's range on any case, graph order.

    Reading matters as much as making: a value kept float32 by its producer is cast back to
    float16 in front of a float16 consumer.
    """
    import numpy as np
    import onnx

    proto = onnx.load(str(float_path), load_external_data=False)
    nodes = list(proto.graph.node)
    expose_all(proto)
    peak: dict[str, float] = {}
    with exposed_session(float_path, proto) as sess:
        names = [o.name for o in sess.get_outputs()]
        for case in cases:
            if case.error is not None:
                continue
            for name, value in zip(names, sess.run(None, feeds(sess, case.inputs))):
                if isinstance(value, np.ndarray) and value.dtype.kind == "f" and value.size:
                    m = float(np.nanmax(np.abs(value.astype(np.float64))))
                    peak[name] = max(peak.get(name, 0.0), m)
    hot = {v for v, m in peak.items() if m > FLOAT16_MAX}
    out = []
    for node in nodes:
        touched = [peak[v] for v in (*node.output, *node.input) if v in hot]
        if touched:
            out.append(BlockedNode(node.name, node.op_type, module_of(node), max(touched)))
    return tuple(out)


def _first_finding(trials: Sequence[VariantTrial]) -> str:
    for t in trials:
        if t.error:
            return f"{t.label}: {t.error}"
        for o in t.outputs:
            if not o.passed:
                why = o.findings[0] if o.findings else "values differ"
                return f"{o.name} at {t.label}: {why}"
    return "no case ran"


def make_fp16(float_path: Path, cases: Sequence[Case], tolerances: Tolerances) -> Made:
    """The float16 file, float32 inputs/outputs kept; mixed precision when values overflow."""
    target = variant_path(float_path, "fp16")
    method = "float16, float32 inputs/outputs"
    convert_fp16(float_path, target)
    trials = run_trials(target, cases, tolerances=tolerances)
    passed = bool(trials) and all(t.passed for t in trials)
    # When it passes, the scan is only a warning for GPU providers: the export inputs suffice.
    hot = overflowing_nodes(float_path, cases[:1] if passed else cases)
    if passed:
        notes: tuple[str, ...] = ()
        if hot:  # CPU runs many float16 nodes in float32 (no float16 kernel): GPUs do not
            modules = ", ".join(dict.fromkeys(n.module or "(model)" for n in hot))
            notes = (
                f"{len(hot)} nodes make or read values beyond ±65504 in the float file ({modules}); "
                "they pass here because onnxruntime's CPU provider computes them in float32; a GPU "
                "provider computes them in float16: check there with --provider",
            )
        return Made(target, method, "tolerance", trials, tolerances, notes=notes)
    if not hot:
        note = "no value of the float file leaves float16's range: the error is precision"
        return Made(target, method, "tolerance", trials, tolerances, notes=(note,))
    unnamed = sum(1 for n in hot if not n.node)
    convert_fp16(float_path, target, block=[n.node for n in hot if n.node])
    fixed = run_trials(target, cases, tolerances=tolerances)
    modules = ", ".join(dict.fromkeys(n.module or "(model)" for n in hot))
    note = (
        f"plain float16 failed ({_first_finding(trials)}); {len(hot)} nodes that make or read "
        f"values beyond ±65504 kept in float32, in {modules}"
    )
    kept = [note]
    if unnamed:
        kept.append(f"{unnamed} of them have no name and could not be kept in float32")
    return Made(
        target, f"{method}, {len(hot)} nodes float32", "tolerance", fixed, tolerances,
        blocked=hot, notes=tuple(kept),
    )  # fmt: skip
