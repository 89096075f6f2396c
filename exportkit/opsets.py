"""Which ONNX opsets an exporter can write that the installed onnx and onnxruntime also run.

Checked before any work (``require_opset``) and again on the written file
(``check_written_opset``): torch.onnx's dynamo exporter builds at opset 18 and converts down,
staying at 18 without a word where the conversion fails.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Literal

from exportkit.errors import ExportError, UsageError

if TYPE_CHECKING:
    import onnx

__all__ = ["check_written_opset", "require_opset", "supported_opsets"]

Exporter = Literal["auto", "dynamo", "torchscript"]


@functools.cache
def _runtime_max_opset() -> int:
    """The highest default-domain opset the installed onnxruntime loads (probed: it has no API)."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    info = helper.make_tensor_value_info
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "probe",
        [info("x", TensorProto.FLOAT, [1])],
        [info("y", TensorProto.FLOAT, [1])],
    )
    for opset in range(onnx.defs.onnx_opset_version(), 6, -1):
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        model.ir_version = min(model.ir_version, 10)
        try:
            ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        except Exception:  # onnxruntime raises its own Fail type for an unknown opset
            continue
        return opset
    return 7


def supported_opsets(exporter: Exporter) -> range:
    """Opsets ``exporter`` can write that the installed onnx and onnxruntime also support."""
    from torch.onnx import _constants

    low = getattr(_constants, "ONNX_MIN_OPSET", 7)
    high = min(__import__("onnx").defs.onnx_opset_version(), _runtime_max_opset())
    if exporter == "torchscript":
        high = min(high, getattr(_constants, "ONNX_MAX_OPSET", high))
    elif exporter == "dynamo":
        # torch.onnx's dynamo exporter builds at 18 and converts down, silently staying at 18
        # where the conversion fails; below 18 only the file's own opset tells (checked after).
        low = max(low, 18)
    return range(low, high + 1)


def require_opset(exporter: Exporter, opset: int | None) -> None:
    """Refuse, before any work, an opset the exporter or the runtime cannot handle.

    Raises:
        UsageError: ``opset`` is outside :func:`supported_opsets`.
    """
    if opset is None:
        return
    ok = supported_opsets(exporter)
    if opset not in ok:
        raise UsageError(
            f"--opset {opset} is outside what --exporter {exporter} and the installed "
            f"onnx/onnxruntime support ({ok.start}..{ok.stop - 1})",
            hint=f"leave --opset out for the exporter's default, or write --opset {ok.stop - 1}"
            + (" (below 18: --exporter torchscript)" if exporter == "dynamo" else ""),
        )


def check_written_opset(model: onnx.ModelProto, opset: int | None) -> None:
    """The exporter wrote the opset asked for (dynamo falls back to 18 without a word)."""
    got = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is not None and got != opset:
        raise ExportError(f"asked for opset {opset}, the exporter wrote opset {got}")
