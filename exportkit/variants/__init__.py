"""Deployment variants of the validated float file: float16, int8, onnxruntime-optimized.

``make_variants`` is the stage's verb: each variant is written beside the float file as
``<stem>.<variant>.onnx``, validated against eager PyTorch at the export's cases (float16 by
tolerance, int8 by cosine similarity, SQNR and top-1 agreement), timed, and, when it fails,
placed at the first PyTorch module where it diverges.
"""

from __future__ import annotations

from exportkit.variants.make import VARIANTS, make_variants
from exportkit.variants.metrics import FP16_TOLERANCES
from exportkit.variants.results import (
    BlockedNode,
    Int8Mode,
    OutputMetrics,
    Thresholds,
    VariantName,
    VariantResult,
    VariantStep,
    VariantTrial,
)

__all__ = [
    "FP16_TOLERANCES",
    "VARIANTS",
    "BlockedNode",
    "Int8Mode",
    "OutputMetrics",
    "Thresholds",
    "VariantName",
    "VariantResult",
    "VariantStep",
    "VariantTrial",
    "make_variants",
]
