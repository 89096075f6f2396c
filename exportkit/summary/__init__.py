"""Graph summary of any ONNX file: shapes, params, MACs, grouped by the PyTorch module tree.

Imports only onnx, numpy and the standard library: never torch, onnxruntime or a simplifier.
"""

from __future__ import annotations

from exportkit.hierarchy import carry_metadata
from exportkit.summary.build import parse_dims, summarize
from exportkit.summary.histogram import (
    GraphComparison,
    OpCountChange,
    compare,
    compare_histograms,
    op_histogram,
)
from exportkit.summary.results import Dim, GraphSummary, ModuleInfo, NodeInfo, TensorInfo

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
