"""The simplifier policy: simplify only a validated export, validate the simplified file, and
keep it only when it is no worse than the export (three-way parity says which side drifted).

Simplifiers have changed outputs and check nothing by default; the verdict decides here, as it
does for the exporter fallback (exportkit.fallback).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from exportkit.export import ExportResult
from exportkit.options import Options
from exportkit.simplify import SimplifyResult, simplify_model
from exportkit.stages import Stages
from exportkit.validate import Parity, ValidationResult, three_way

__all__ = ["Choice", "simplify_checked"]


@dataclass(frozen=True)
class Choice:
    """The simplifier's result (None when skipped), the validation of the file kept, the
    simplified file's own validation, and the three-way parity that decided."""

    simplify: SimplifyResult | None
    final: ValidationResult
    simplified: ValidationResult | None
    parity: Parity


def simplify_checked(
    stages: Stages,
    validated: Callable[..., ValidationResult],
    raw: ExportResult,
    raw_check: ValidationResult,
    work: Path,
    options: Options,
) -> Choice:
    """Simplify the validated export, validate that, and keep the simplified only if no worse."""
    if options.simplifier == "none":
        stages.skip("simplify", "--simplifier none")
        return Choice(
            None, raw_check, None, three_way(raw_check, None, why_none="--simplifier none")
        )
    from exportkit.errors import SimplifyError

    try:
        with stages.run("simplify") as detail:
            dst = work / "simplified" / raw.path.name
            simp = simplify_model(raw.path, dst, simplifier=options.simplifier)
            detail.append(f"{options.simplifier}: {simp.nodes_before} -> {simp.nodes_after} nodes")
            if simp.output_lines:
                detail.append(f"{simp.output_lines} lines it printed kept for --debug")
    except SimplifyError as exc:
        failed = SimplifyResult(
            simplifier=options.simplifier,
            path=raw.path,
            seconds=0.0,
            ops_before={},
            ops_after={},
            bytes_before=0,
            bytes_after=0,
            kept=False,
            reason=str(exc),
        )
        return Choice(failed, raw_check, None, three_way(raw_check, None, why_none=exc.message))
    # Localize the simplified file only where it fails and the export did not.
    simp_check = validated(
        "validate simplified", simp.path, lambda r: bool(three_way(raw_check, r).new_failures)
    )
    parity = three_way(raw_check, simp_check)
    if parity.kept == "exported":
        return Choice(
            replace(simp, kept=False, reason=parity.reason), raw_check, simp_check, parity
        )
    if simp_check.divergence is None and raw_check.divergence is not None:
        # Both fail alike: the drift came from the exporter and was located on the export.
        simp_check = replace(simp_check, divergence=raw_check.divergence)
    return Choice(simp, simp_check, simp_check, parity)
