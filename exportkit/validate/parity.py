"""Three-way parity: PyTorch vs the raw export vs the simplified export, and who caused a drift."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from exportkit.validate.results import ValidationResult

__all__ = ["Parity", "three_way"]

Drift = Literal["none", "model", "exporter", "simplifier", "exporter and simplifier"]


@dataclass(frozen=True)
class Parity:
    """Which file matches PyTorch, which step caused a drift, and which file was kept and why.

    ``drift`` is ``model`` when the only failures are sizes where PyTorch itself fails (the
    dims asked to be dynamic are not): no export could match there.

    ``simplified`` is None when no simplified file was validated (``--simplifier none``, or the
    simplifier failed). ``new_failures`` lists the ``trial: output`` checks that only the
    simplified file fails.
    """

    exported: bool
    simplified: bool | None
    drift: Drift
    kept: Literal["exported", "simplified"]
    reason: str
    new_failures: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Failure:
    """One failed check: a trial that could not run (``output`` None) or one output of it."""

    trial: str
    output: str | None
    pytorch: bool  # the eager model itself fails: no export could match
    why: str

    def text(self) -> str:
        """``trial: output`` as ``Parity.new_failures`` lists it."""
        side = "(PyTorch)" if self.pytorch else "(run)"
        return f"{self.trial}: {self.output or side}"


def _failures(result: ValidationResult) -> dict[tuple[str, str | None], _Failure]:
    """(trial, output) -> the failure, for every failed check and every failed trial."""
    out: dict[tuple[str, str | None], _Failure] = {}
    for trial in result.trials:
        if trial.failure is not None:
            failure = trial.failure
            out[trial.label, None] = _Failure(
                trial.label, None, failure.kind == "pytorch", failure.message
            )
        for check in trial.outputs:
            if not check.passed:
                why = f"max abs {check.max_abs:.3g}"
                out[trial.label, check.name] = _Failure(trial.label, check.name, False, why)
    return out


def three_way(
    raw: ValidationResult, simplified: ValidationResult | None, *, why_none: str = ""
) -> Parity:
    """Judge the raw and simplified files against PyTorch; keep the simplified only if no worse.

    Args:
        raw: the raw export's validation.
        simplified: the simplified file's validation, or None when there is none.
        why_none: why there is no simplified file (shown as the reason).
    """
    before = _failures(raw)
    exporter = any(not f.pytorch for f in before.values())
    blame: Drift = "exporter" if exporter else "model" if before else "none"
    if simplified is None:
        return Parity(raw.passed, None, blame, "exported", why_none or "not simplified")
    after = _failures(simplified)
    new = [f for k, f in after.items() if k not in before]
    if exporter and new:
        drift: Drift = "exporter and simplifier"
    elif exporter:
        drift = "exporter"
    elif new:
        drift = "simplifier"
    else:
        drift = blame  # "model" or "none"
    if new:
        shown = "; ".join(f"{f.text()} ({f.why})" for f in new[:3])
        more = f" and {len(new) - 3} more" if len(new) > 3 else ""
        reason = (
            f"the simplified file fails where the export passes: {shown}{more}; kept the export"
        )
        listed = tuple(f.text() for f in new)
        return Parity(raw.passed, simplified.passed, drift, "exported", reason, listed)
    if simplified.passed:
        reason = "the simplified file matches PyTorch"
    else:
        reason = "the simplified file is no worse than the export (both fail the same checks)"
    return Parity(raw.passed, simplified.passed, drift, "simplified", reason)
