"""The exporter fallback policy: exporters report success on wrong numbers; the verdict decides.

With ``--exporter auto`` a dynamo file that fails validation where eager PyTorch runs is not the
last word: the TorchScript exporter gets its turn, the file that passes is kept, and the attempts
say why dynamo lost.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from exportkit.errors import ExportError
from exportkit.export import ExportAttempt, Exporter, ExportResult
from exportkit.stages import Stages
from exportkit.validate import ValidationResult

__all__ = ["ExportFn", "ValidateFn", "export_validated"]

# (exporter, folder name) -> the written file; (stage name, file) -> its validation.
ExportFn = Callable[[Exporter, str], ExportResult]
ValidateFn = Callable[[str, Path], ValidationResult]


def _exporter_at_fault(check: ValidationResult) -> bool:
    """The file fails somewhere the eager model itself runs: another exporter may do better."""
    return any(not t.passed and not t.pytorch_failed for t in check.trials)


def _failed_cases(check: ValidationResult) -> str:
    return ", ".join(t.label for t in check.trials if not t.passed and not t.pytorch_failed)


def export_validated(
    stages: Stages, export: ExportFn, validate: ValidateFn, exporter: Exporter
) -> tuple[ExportResult, ValidationResult]:
    """Export with ``exporter`` and validate; under ``auto``, retry a wrong dynamo file with
    TorchScript and keep whichever file passes (dynamo's when neither does)."""
    with stages.run("export") as detail:
        first = export(exporter, "exported")
        detail.append(first.exporter)
    first_check = validate("validate", first.path)
    if exporter != "auto" or first.exporter != "dynamo" or not _exporter_at_fault(first_check):
        return first, first_check
    wrong = ExportAttempt(
        "dynamo",
        False,
        first.attempts[-1].seconds,
        f"wrote a file that fails validation ({_failed_cases(first_check)}); tried torchscript",
    )
    try:
        with stages.run("export torchscript") as detail:
            second = export("torchscript", "exported-torchscript")
            detail.append("dynamo's file failed validation")
    except ExportError as exc:
        tried = ExportAttempt("torchscript", False, 0.0, exc.message)
        return replace(first, attempts=(*first.attempts, tried)), first_check
    second_check = validate("validate torchscript", second.path)
    if second_check.passed:
        attempts = (*first.attempts[:-1], wrong, *second.attempts)
        return replace(second, attempts=attempts), second_check
    worse = ExportAttempt(
        "torchscript",
        False,
        second.attempts[-1].seconds,
        f"its file fails validation too ({_failed_cases(second_check) or 'PyTorch-side'}); "
        "kept dynamo's",
    )
    return replace(first, attempts=(*first.attempts, worse)), first_check
