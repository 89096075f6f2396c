"""What the variant stage found: per file, per output metrics, latency, blocked nodes, divergence."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from exportkit.perf import Latency
    from exportkit.perf.profile import ModuleTime
    from exportkit.validate import Divergence, Tolerances

__all__ = [
    "BlockedNode",
    "Int8Mode",
    "Judge",
    "Made",
    "OutputMetrics",
    "Thresholds",
    "VariantName",
    "VariantResult",
    "VariantStep",
    "VariantTrial",
]

VariantName = Literal["float", "fp16", "int8", "ort-opt"]
Int8Mode = Literal["auto", "dynamic", "static"]
#: How a variant is judged: allclose tolerances (float16, optimized float) or metrics (int8).
Judge = Literal["tolerance", "metrics"]


@dataclass(frozen=True)
class Thresholds:
    """Pass marks for quantized outputs: cosine similarity, SQNR in dB, top-1 agreement."""

    cosine: float = 0.99
    sqnr_db: float = 20.0
    top1: float = 0.9


@dataclass(frozen=True)
class OutputMetrics:
    """One output of a variant against eager PyTorch float32 on one case (or the worst case).

    ``cosine`` is the cosine similarity of the flattened outputs, ``sqnr_db`` the
    signal-to-quantization-noise ratio ``10 log10(sum(ref^2) / sum((ref - out)^2))`` (inf when
    equal), ``top1`` the share of rows whose arg-max agrees, for outputs that look like class
    scores (else None), counted over the rows PyTorch decides by more than three times the file's
    RMS error (at most the noise the SQNR mark accepts): ``near_ties`` counts the rows left out
    (``top1`` is None when all were).
    ``atol``/``rtol`` are set when the output was judged by tolerance.
    """

    name: str
    passed: bool
    max_abs: float = 0.0
    cosine: float = 1.0
    sqnr_db: float = math.inf
    top1: float | None = None
    atol: float | None = None
    rtol: float | None = None
    findings: tuple[str, ...] = ()
    near_ties: int = 0


@dataclass(frozen=True)
class VariantTrial:
    """One validation case run through a variant: its label and each output's metrics."""

    label: str
    outputs: tuple[OutputMetrics, ...]
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.error is None and all(o.passed for o in self.outputs)


@dataclass(frozen=True)
class VariantStep:
    """One chained decode step of a variant of a stateful graph: the variant fed its own
    previous outputs, eager PyTorch (float32) its own cache, both the same next token.

    The fields are those of the float file's steps (``exportkit.decode.StepResult``), with each
    output measured as the variant is judged (``outputs``: cosine, SQNR, top-1, max abs).
    ``accumulated``: the step failed, yet run once on its own inputs the file is within its
    marks: the difference came in through the state, grown over the earlier steps.
    """

    step: int
    past_length: int | None
    max_abs_diff: float
    token_agreement: bool | None
    passed: bool
    outputs: tuple[OutputMetrics, ...] = ()
    error: str | None = None
    divergence: Divergence | None = None
    token_tie: bool = False  # the tokens differ only where PyTorch's top two are a tie
    accumulated: bool = False


@dataclass(frozen=True)
class BlockedNode:
    """A node kept in float32 in the fp16 file because its values leave float16's range."""

    node: str
    op_type: str
    module: str  # the PyTorch module path ("" is the model itself, None-like "?" when unknown)
    max_abs: float


@dataclass(frozen=True)
class VariantResult:
    """One file (the float file or a variant) validated and timed on one execution provider.

    ``method`` says how the file was made (``float16, float32 inputs/outputs``, ``dynamic
    (MatMul/Gemm weights)``, ``static QDQ, per-channel``...). ``error`` is set when the variant
    could not be made or run at all; ``divergence`` names the first PyTorch module where a
    failing variant departs from eager PyTorch, when it can be placed.
    """

    name: VariantName
    path: Path | None
    provider: str
    passed: bool
    judge: Judge
    method: str = ""
    trials: tuple[VariantTrial, ...] = ()
    size_bytes: int = 0
    latency_ms: Latency | None = None
    eager_latency_ms: Latency | None = None
    blocked: tuple[BlockedNode, ...] = ()
    divergence: Divergence | None = None
    notes: tuple[str, ...] = ()
    error: str | None = None
    seconds: float = 0.0
    module_times: tuple[ModuleTime, ...] = ()
    thresholds: Thresholds | None = None
    #: Per output, its worst case: the lowest cosine/SQNR/top-1, the largest max abs.
    metrics: Mapping[str, OutputMetrics] = field(default_factory=dict)
    #: --steps on a stateful graph: the prefill and each chained step (``passed`` includes them).
    steps: tuple[VariantStep, ...] = ()

    def __post_init__(self) -> None:
        if self.trials and not self.metrics:
            object.__setattr__(self, "metrics", worst_metrics(self.trials))

    @property
    def speedup(self) -> float | None:
        """Eager PyTorch p50 over this file's p50 (above 1: faster than eager)."""
        if self.latency_ms is None or self.eager_latency_ms is None or not self.latency_ms.p50:
            return None
        return self.eager_latency_ms.p50 / self.latency_ms.p50


def _min_opt(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    return a if b is None else min(a, b)


def worst_metrics(trials: tuple[VariantTrial, ...]) -> dict[str, OutputMetrics]:
    """Per output over all trials: the worst of each metric, failed if any case failed."""
    out: dict[str, OutputMetrics] = {}
    for trial in trials:
        for m in trial.outputs:
            seen = out.get(m.name)
            if seen is None:
                out[m.name] = m
                continue
            worse = min((seen, m), key=lambda x: (x.passed, x.sqnr_db, -x.max_abs))
            out[m.name] = OutputMetrics(
                m.name,
                seen.passed and m.passed,
                max(seen.max_abs, m.max_abs),
                min(seen.cosine, m.cosine),
                min(seen.sqnr_db, m.sqnr_db),
                _min_opt(seen.top1, m.top1),
                m.atol,
                m.rtol,
                worse.findings,  # the worst case's own words (each case has its own figures)
                max(seen.near_ties, m.near_ties),
            )
    return out


@dataclass(frozen=True)
class Made:
    """A variant file as built (internal to the stage), with how it is judged and its trials on the CPU provider."""

    path: Path
    method: str
    judge: Judge
    trials: tuple[VariantTrial, ...]
    tolerances: Tolerances | None = None
    thresholds: Thresholds | None = None
    blocked: tuple[BlockedNode, ...] = ()
    notes: tuple[str, ...] = ()
