"""Where a quantized file departs: its values against the float file's, node by node (the
quantizers keep the float graph's value names), placed at the PyTorch module of the first node
whose output falls below the thresholds while its inputs did not."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from exportkit.variants.files import expose_all, exposed_session
from exportkit.variants.metrics import cosine, sqnr_db
from exportkit.variants.results import Thresholds
from exportkit.variants.runner import feeds

if TYPE_CHECKING:
    import numpy as np

    from exportkit.validate import Case, Divergence

__all__ = ["against_float"]

logger = logging.getLogger(__name__)


def _values(path: Path, names: set[str], case: Case) -> dict[str, np.ndarray]:
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    expose_all(proto, names)
    with exposed_session(path, proto) as sess:
        out = [o.name for o in sess.get_outputs()]
        return dict(zip(out, sess.run(None, feeds(sess, case.inputs))))


def _round_trips(proto: Any) -> dict[str, str]:
    """Value name -> the output of the QuantizeLinear -> DequantizeLinear pair the quantizer put
    after it: the value the quantized graph goes on with. Under a name it keeps, the raw value
    can mean something else: a Relu fused into its Conv leaves the pre-activation under the
    Relu's output name, the clipping done by QuantizeLinear."""
    readers: dict[str, list[Any]] = {}
    for node in proto.graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    out = {}
    for node in proto.graph.node:
        if node.op_type != "QuantizeLinear" or not node.input or not node.output:
            continue
        dq = next(
            (r for r in readers.get(node.output[0], []) if r.op_type == "DequantizeLinear"), None
        )
        if dq is not None and dq.output:
            out[node.input[0]] = dq.output[0]
    return out


def _scope(node: Any) -> tuple[str, str]:
    """(module path, its class) of a node, from the exporter's hierarchy."""
    from exportkit.hierarchy import ScopeReader

    found = ScopeReader().scope(node)
    if not found or not found[0]:
        return "", (found[1] if found else None) or node.op_type
    path, cls = found[0][-1]
    return path, (cls or node.op_type).rpartition(".")[2]


def against_float(
    float_path: Path, variant: Path, cases: Sequence[Case], thresholds: Thresholds
) -> Divergence | None:
    """The first module whose values in ``variant`` fall below ``thresholds`` against the float
    file while the values entering it were still above; None when it cannot be placed.
    Never raises (a diagnosis, not a verdict)."""
    try:
        return _against_float(float_path, variant, cases, thresholds)
    except Exception as exc:
        logger.warning("could not locate the divergence in %s: %s", variant.name, exc)
        logger.debug("localization failed", exc_info=True)
        return None


def _against_float(
    float_path: Path, variant: Path, cases: Sequence[Case], thresholds: Thresholds
) -> Divergence | None:
    import numpy as np
    import onnx

    from exportkit.diagnose import Location
    from exportkit.validate import Divergence

    case = next((c for c in cases if c.error is None and c.expected), None)
    if case is None:
        return None
    fproto = onnx.load(str(float_path), load_external_data=False)
    vproto = onnx.load(str(variant), load_external_data=False)
    made = {o for n in vproto.graph.node for o in n.output if o}
    common = {o for n in fproto.graph.node for o in n.output if o in made}
    ref = _values(float_path, common, case)
    trips = {name: dq for name, dq in _round_trips(vproto).items() if name in common}
    got = _values(variant, common | set(trips.values()), case)
    got.update({name: got[dq] for name, dq in trips.items() if dq in got})

    def good(name: str) -> bool | None:
        e, a = ref.get(name), got.get(name)
        if e is None or a is None or e.dtype.kind != "f" or e.shape != a.shape or e.size < 2:
            return None
        e64, a64 = e.astype(np.float64), a.astype(np.float64)
        if not np.isfinite(a64).all():
            return False
        return cosine(e64, a64) >= thresholds.cosine and sqnr_db(e64, a64) >= thresholds.sqnr_db

    compared = matched = 0
    for node in fproto.graph.node:
        verdicts = [good(o) for o in node.output]
        if not any(v is not None for v in verdicts):
            continue
        compared += 1
        if all(v is not False for v in verdicts):
            matched += 1
            continue
        entering = [good(i) for i in node.input if i in common]
        if any(v is False for v in entering):
            continue  # already off before this node: an earlier one is to blame (reported)
        value = next(o for o, v in zip(node.output, verdicts) if v is False)
        e, a = ref[value].astype(np.float64), got[value].astype(np.float64)
        module, cls = _scope(node)
        detail = (
            f"its output {value} against the float file: cosine {cosine(e, a):.4f}, "
            f"SQNR {sqnr_db(e, a):.1f} dB (thresholds {thresholds.cosine:g}, "
            f"{thresholds.sqnr_db:g} dB) while its inputs were within them"
        )
        return Divergence(
            kind="values", trial=case.label, location=Location(module, cls), detail=detail,
            onnx_node=node.name, onnx_op=node.op_type, onnx_values=(value,),
            inputs_matched=True, matched=matched, compared=compared,
        )  # fmt: skip
    return None
