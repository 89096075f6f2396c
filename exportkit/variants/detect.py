"""What kind of file this is: float, float16 (any float16 weight or cast) or int8 (QDQ or
integer ops), so ``exportkit check`` judges a file made elsewhere by the right metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

__all__ = ["FileKind", "detect_kind"]

FileKind = Literal["float", "fp16", "int8"]

_QUANT_OPS = {
    "QuantizeLinear",
    "DequantizeLinear",
    "DynamicQuantizeLinear",
    "MatMulInteger",
    "ConvInteger",
    "QLinearConv",
    "QLinearMatMul",
    "DynamicQuantizeMatMul",
    "MatMulIntegerToFloat",
}


def detect_kind(path: Path) -> FileKind:
    """``int8`` when the graph quantizes (QDQ pairs, integer matmuls/convs), else ``fp16`` when
    weights or casts are float16, else ``float``. Reads the graph only, not the weights."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    graph = model.graph
    if any(n.op_type in _QUANT_OPS for n in graph.node):
        return "int8"
    half = onnx.TensorProto.FLOAT16
    if any(t.data_type == half for t in graph.initializer):
        return "fp16"
    for node in graph.node:
        if node.op_type == "Cast" and any(a.name == "to" and a.i == half for a in node.attribute):
            return "fp16"
    values = [*graph.input, *graph.output, *graph.value_info]
    if any(v.type.tensor_type.elem_type == half for v in values):
        return "fp16"
    return "float"
