"""Graph summary of any ONNX file: shapes, params, MACs, grouped by the PyTorch module tree.

Imports only onnx, numpy and the standard library: never torch, onnxruntime or a simplifier.
The result types and the histogram comparison import without onnx (a cached report is rendered
without it); the functions that read graphs load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from exportkit.summary.histogram import (
    GraphComparison,
    OpCountChange,
    compare,
    compare_histograms,
    op_histogram,
)
from exportkit.summary.results import Dim, GraphSummary, ModuleInfo, NodeInfo, TensorInfo

if TYPE_CHECKING:
    from exportkit.hierarchy import carry_metadata
    from exportkit.summary.build import parse_dims, summarize

__all__ = [
    "Dim",
    "GraphComparison",
    "GraphSummary",
    "ModuleInfo",
    "NodeInfo",
    "OpCountChange",
    "TensorInfo",
    "carry_metadata",
    "compare",
    "compare_histograms",
    "op_histogram",
    "parse_dims",
    "summarize",
]

_LAZY = {
    "parse_dims": "exportkit.summary.build",
    "summarize": "exportkit.summary.build",
    "carry_metadata": "exportkit.hierarchy",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'exportkit.summary' has no attribute {name!r}")
