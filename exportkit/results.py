"""What a run hands back: the Report and the progress events; pure data, no renderer, no stage."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from exportkit.decode import PrefillFile, StatePair, StepResult
    from exportkit.diff.baseline import BaselineRule, Fingerprint
    from exportkit.export import ExportResult
    from exportkit.simplify import SimplifyResult
    from exportkit.validate import Parity, ValidationResult
    from exportkit.variants import VariantResult

__all__ = [
    "SCHEMA_VERSION",
    "InputInfo",
    "InputSource",
    "ProgressFn",
    "Report",
    "StageEvent",
    "StageStatus",
    "StageTiming",
]

SCHEMA_VERSION = 1

StageStatus = Literal["start", "ok", "failed", "skipped"]
# Where the inputs came from (see ExampleInputs.source).
InputSource = Literal["given", "declared", "config", "archive", "inferred"]


@dataclass(frozen=True)
class StageEvent:
    """Progress of one stage, for a live display: ``start`` then ``ok``/``failed``/``skipped``."""

    stage: str
    status: StageStatus
    seconds: float = 0.0
    detail: str = ""


ProgressFn = Callable[[StageEvent], None]


@dataclass(frozen=True)
class StageTiming:
    """How a stage ended and how long it took."""

    stage: str
    status: Literal["ok", "failed", "skipped"]
    seconds: float
    detail: str = ""


@dataclass(frozen=True)
class InputInfo:
    """One example input as exported."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    dynamic: Mapping[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Report:
    """Everything one run found: each stage's result, the final file, and the verdict.

    ``output`` is the file the run stands behind: the ``-o`` target when it passed; when it did
    not, the failing file kept beside it (``<stem>.failed.onnx``), so the earlier good file at
    the target is untouched and the failure can still be viewed. ``target`` is the ``-o`` path.
    """

    model: str
    output: Path | None
    files: tuple[Path, ...]
    inputs: tuple[InputInfo, ...]
    input_notes: tuple[str, ...]
    stages: tuple[StageTiming, ...]
    export: ExportResult | None
    simplify: SimplifyResult | None
    validation: ValidationResult | None
    validation_raw: ValidationResult | None
    summary: Any  # a GraphSummary; typed loosely so the result never imports the summary stage
    versions: Mapping[str, str]
    validation_simplified: ValidationResult | None = None
    parity: Parity | None = None
    schema_version: int = SCHEMA_VERSION
    input_source: str = "given"
    # ``--input`` lines that rebuild the inputs (shown to copy when they were not given).
    input_lines: tuple[str, ...] = ()
    target: Path | None = None
    # --variant/--profile: the float file and each variant, validated and timed (exportkit.variants);
    # for ``check`` of a float16 or int8 file, that file judged as a variant (validation is None).
    variants: tuple[VariantResult, ...] = ()
    # --baseline: each rule's verdict against ``baseline_path``; empty without --baseline
    baseline: tuple[BaselineRule, ...] = ()
    baseline_path: str | None = None
    # with --json: contract, op counts and outputs on seeded inputs, for a later --baseline
    fingerprint: Fingerprint | None = None
    # sum(p.numel() for p in model.parameters()): compared with the file's count in the report
    torch_params: int | None = None
    # --steps/--state: the state pairs, and the prefill and each chained decode step
    state_pairs: tuple[StatePair, ...] = ()
    steps: tuple[StepResult, ...] = ()
    # --steps on an encoder-decoder: the prefill graph written beside the output, validated
    prefill: PrefillFile | None = None
    # Restored from the cache: an unchanged repeat of a passing run (see exportkit.cache).
    cached: bool = False

    def _repr_html_(self) -> str:
        """The HTML report, in a notebook (the renderer is registered by the front door)."""
        from exportkit.display import html

        return html(self)

    @property
    def passed(self) -> bool:
        """Every check passed: the final file matches PyTorch, no dynamic dim came out fixed,
        every variant asked for passed, every chained decode step passed, and no --baseline
        rule broke."""
        frozen = bool(self.export and self.export.frozen_dims)
        judged = self.validation is not None or bool(self.variants)
        valid = self.validation is None or self.validation.passed
        variants = all(v.passed for v in self.variants)
        steps = all(s.passed for s in self.steps)
        rules = all(r.passed for r in self.baseline)
        steps = steps and (self.prefill is None or self.prefill.passed)
        return judged and valid and not frozen and variants and steps and rules
