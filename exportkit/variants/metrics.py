"""One variant output against eager PyTorch: allclose for float files, cosine/SQNR/top-1 for int8."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from exportkit.validate import Tolerances
from exportkit.validate.compare import compare_arrays
from exportkit.variants.results import OutputMetrics, Thresholds

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "FP16_TOLERANCES",
    "TIE_NOISE",
    "cosine",
    "looks_like_scores",
    "measure",
    "sqnr_db",
    "top1",
]

#: float16 files are judged as float16 outputs are today (validate's default for float16).
FP16_TOLERANCES = Tolerances(atol=1e-2, rtol=1e-2)

#: A top-1 flip counts only where PyTorch's margin exceeds this many times the file's RMS error.
TIE_NOISE = 3.0

_SCORE_NAMES = ("logit", "score", "prob", "class")
_FEATURE_NAMES = ("hidden", "pool", "embed", "feature", "state")


def cosine(expected: np.ndarray, actual: np.ndarray) -> float:
    """Cosine similarity of the flattened arrays (1.0 when both are zero)."""
    import numpy as np

    e = expected.astype(np.float64).ravel()
    a = actual.astype(np.float64).ravel()
    ne, na = float(np.linalg.norm(e)), float(np.linalg.norm(a))
    if ne == 0.0 and na == 0.0:
        return 1.0
    if ne == 0.0 or na == 0.0:
        return 0.0
    return float(np.dot(e, a) / (ne * na))


def sqnr_db(expected: np.ndarray, actual: np.ndarray) -> float:
    """Signal-to-quantization-noise ratio in dB; inf when equal, -inf for a zero signal."""
    import numpy as np

    e = expected.astype(np.float64)
    noise = float(np.sum((e - actual.astype(np.float64)) ** 2))
    signal = float(np.sum(e**2))
    if noise == 0.0:
        return math.inf
    if signal == 0.0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)


def looks_like_scores(name: str, expected: np.ndarray) -> bool:
    """Class scores: float, at least 2-D, a last dim of 2 or more, and named so (``logits``), or
    batch x classes not named as features (``pooler_output``, ``hidden``, ``embeddings``)."""
    if expected.dtype.kind != "f" or expected.ndim < 2 or expected.shape[-1] < 2:
        return False
    lower = name.lower()
    if any(word in lower for word in _SCORE_NAMES):
        return True
    return expected.ndim == 2 and not any(word in lower for word in _FEATURE_NAMES)


def top1(expected: np.ndarray, actual: np.ndarray, tie: float = 0.0) -> tuple[float | None, int]:
    """The share of decisive rows (all but the last dim) whose arg-max agrees, and how many rows
    were near-ties: rows where PyTorch's own top score beats the file's choice by ``tie`` or
    less. A flip there is noise the other measures judge (cosine, SQNR), not a changed decision;
    None when every row is a near-tie."""
    import numpy as np

    e = expected.reshape(-1, expected.shape[-1])
    a = actual.reshape(-1, actual.shape[-1])
    if not len(e):
        return 1.0, 0
    rows = np.arange(len(e))
    chosen = a.argmax(-1)
    margin = e[rows, e.argmax(-1)] - e[rows, chosen]  # 0 where they agree
    near = (margin > 0) & (margin <= tie)
    decisive = ~near
    if not decisive.any():
        return None, int(near.sum())
    return float(np.mean(margin[decisive] == 0)), int(near.sum())


def _tie_band(expected: np.ndarray, actual: np.ndarray, sqnr_db: float) -> float:
    """How close PyTorch's top two scores may be for a flip to count as noise: three times the
    file's RMS error, but never more than the noise ``sqnr_db`` accepts, so a file whose errors
    are gross cannot excuse its own flips."""
    import numpy as np

    if not expected.size:
        return 0.0
    noise = float(np.sqrt(np.mean((expected - actual) ** 2)))
    accepted = float(np.sqrt(np.mean(expected**2))) * 10.0 ** (-sqnr_db / 20.0)
    return float(min(TIE_NOISE * noise, accepted))


def measure(
    name: str,
    expected: np.ndarray,
    actual: np.ndarray,
    *,
    tolerances: Tolerances | None = None,
    thresholds: Thresholds | None = None,
) -> OutputMetrics:
    """Every metric for one output; judged by ``tolerances`` (allclose) or else ``thresholds``.

    Integer and bool outputs are compared exactly either way. Non-finite values where PyTorch's
    are finite always fail.
    """
    import numpy as np

    if expected.shape != actual.shape:
        finding = (
            f"shape {tuple(actual.shape)} from onnxruntime, {tuple(expected.shape)} from PyTorch"
        )
        return OutputMetrics(name, False, math.inf, 0.0, -math.inf, findings=(finding,))
    floating = expected.dtype.kind == "f"
    judged = tolerances if tolerances is not None or not floating else None
    check = compare_arrays(name, expected, actual, judged or Tolerances())
    if not floating or not expected.size:
        return OutputMetrics(name, check.passed, check.max_abs, findings=check.findings)
    e, a = expected.astype(np.float64), actual.astype(np.float64)
    finite = bool(np.isfinite(a).all() or not np.isfinite(e).all())
    both = np.isfinite(e) & np.isfinite(a)
    cos = cosine(e[both], a[both]) if finite else 0.0
    snr = sqnr_db(e[both], a[both]) if finite else -math.inf
    limits = thresholds or Thresholds()
    agree, ties = None, 0
    if finite and looks_like_scores(name, expected):
        agree, ties = top1(e, a, _tie_band(e[both], a[both], limits.sqnr_db))
    if judged is not None:
        return OutputMetrics(
            name, check.passed, check.max_abs, cos, snr, agree, check.atol, check.rtol,
            check.findings, ties,
        )  # fmt: skip
    findings = [f for f in check.findings if "NaN" in f or "Inf" in f]
    if cos < limits.cosine:
        findings.append(f"cosine {cos:.4f} below {limits.cosine:g}")
    if snr < limits.sqnr_db:
        findings.append(f"SQNR {snr:.1f} dB below {limits.sqnr_db:g} dB")
    if agree is not None and agree < limits.top1:
        findings.append(f"top-1 agreement {agree:.1%} below {limits.top1:.0%}")
    return OutputMetrics(
        name, not findings, check.max_abs, cos, snr, agree, findings=tuple(findings), near_ties=ties
    )
