"""Chained decode steps (``--steps``/``--state``) -> report lines, JUnit cases, a failure reason."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape, quoteattr

if TYPE_CHECKING:
    from exportkit.decode import PrefillFile, StatePair, StepResult

__all__ = [
    "agrees_word",
    "prefill_text",
    "render_steps",
    "start_text",
    "step_finding",
    "steps_junit_cases",
    "steps_reason",
]


def _diff(value: float) -> str:
    return "--" if math.isinf(value) else f"{value:.2e}"


def agrees_word(agreement: bool | None, tie: bool) -> str:
    """A step's token agreement as the tables show it: ``yes``, ``tie``, ``NO`` or ``--``."""
    if agreement is None:
        return "--"
    return "yes" if agreement else "tie" if tie else "NO"


def step_finding(step: StepResult) -> str:
    """What a step found, in a phrase (``ok`` for a passing one)."""
    if step.error:
        return step.error
    failed = [c for c in step.outputs if not c.passed]
    if failed:
        first = failed[0]
        more = f" and {len(failed) - 1} more" if len(failed) > 1 else ""
        finding = "; ".join(first.findings) or "mismatch"
        return f"{first.name}{more}: {finding}"
    if step.token_agreement is False:
        return (
            "a tie in PyTorch's top two tokens, broken the other way"
            if step.token_tie
            else ("the greedy next token differs")
        )
    return "ok"


def start_text(pairs: Sequence[StatePair], steps: Sequence[StepResult]) -> str:
    """Where step 0 starts: an encoder-decoder's prefill graph, an empty past, the example's
    state, or eager's prefill."""
    if steps and steps[0].step != 0:
        return "eager PyTorch's prefill as the first past (the file refuses an empty one)"
    if any(p.prefill_only for p in pairs):
        return "step 0: the prefill graph (no past; it returns the cross-attention cache)"
    if any(p.axis is not None for p in pairs):
        return "step 0: the prefill on an empty past"
    return "step 0 from the example's state"


def prefill_text(prefill: PrefillFile) -> str:
    """An encoder-decoder's prefill file and its single-call verdict, in a phrase."""
    check = prefill.validation
    if check is None:
        return str(prefill.path)
    worst = max((c.max_abs for c in check.worst().values()), default=0.0)
    verdict = "pass" if check.passed else "MISMATCH"
    simplified = ", simplified" if prefill.simplified else ""
    return (
        f"{prefill.path}{simplified}: {verdict} on {len(check.trials)} single calls "
        f"(max abs diff {_diff(worst)}), then step 0 below"
    )


def render_steps(
    pairs: Sequence[StatePair], steps: Sequence[StepResult], prefill: PrefillFile | None = None
) -> list[str]:
    """The state pairs (the ``--state`` lines when inferred), an encoder-decoder's prefill file,
    then one row per step, then where the first failing step diverges from PyTorch."""
    how = "inferred by name" if pairs and all(p.inferred for p in pairs) else "declared"
    once = sum(p.prefill_only for p in pairs)
    only = f" ({once} written by the prefill graph only)" if once else ""
    lines = [
        f"state     {len(pairs)} pairs{only}, {how}; to pin them: "
        + " ".join(p.flag() for p in pairs)
    ]
    if prefill is not None:
        lines.append(f"prefill   {prefill_text(prefill)}")
    lines.append(
        f"steps     {start_text(pairs, steps)}; each next step fed its own previous outputs, "
        "eager its own"
    )
    rows = [["step", "past", "max abs diff", "token agrees", "verdict"]]
    for s in steps:
        past = "--" if s.past_length is None else str(s.past_length)
        rows.append(
            [
                str(s.step),
                past,
                _diff(s.max_abs_diff),
                agrees_word(s.token_agreement, s.token_tie),
                s.verdict.lower(),
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines += ["  " + "  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in rows]
    failed = next((s for s in steps if not s.passed), None)
    if failed is not None:
        lines.append(f"  step {failed.step} fails first: {step_finding(failed)}")
        if failed.divergence is not None:
            div = failed.divergence
            lines += [
                "",
                f"where step {failed.step} diverges from PyTorch",
                f"diverges  at {div.describe()}",
                f"          {div.detail}",
            ]
    return lines


def steps_reason(steps: Sequence[StepResult], prefill: PrefillFile | None = None) -> list[str]:
    reasons = []
    check = prefill.validation if prefill is not None else None
    if prefill is not None and check is not None and not check.passed:
        where = f", diverges at {check.divergence.describe()}" if check.divergence else ""
        reasons.append(f"the prefill file {prefill.path.name} differs from PyTorch{where}")
    failed = next((s for s in steps if not s.passed), None)
    if failed is None:
        return reasons
    where = f", diverges at {failed.divergence.describe()}" if failed.divergence else ""
    return [*reasons, f"decode step {failed.step} fails first ({step_finding(failed)}){where}"]


def steps_junit_cases(
    model: str, steps: Sequence[StepResult], prefill: PrefillFile | None = None
) -> tuple[list[str], int]:
    """One JUnit test case per step (and one for a prefill file's validation); the number
    that failed."""
    cases, failures = [], 0
    if prefill is not None and prefill.validation is not None:
        head = f"  <testcase classname={quoteattr(model)} name={quoteattr('prefill file')}"
        if prefill.passed:
            cases.append(f"{head}/>")
        else:
            failures += 1
            msg = quoteattr(f"{prefill.path.name} differs from PyTorch")
            cases.append(f"{head}><failure message={msg}/></testcase>")
    for s in steps:
        past = "" if s.past_length is None else f" (past {s.past_length})"
        head = f"  <testcase classname={quoteattr(model)} name={quoteattr(f'decode step {s.step}{past}')}"
        if s.passed:
            cases.append(f"{head}/>")
            continue
        failures += 1
        body = ""
        if s.divergence is not None:
            body = escape(f"first diverges at {s.divergence.describe()}: {s.divergence.detail}")
        msg = quoteattr(f"max abs diff {_diff(s.max_abs_diff)}; {step_finding(s)}")
        cases.append(f"{head}><failure message={msg}>{body}</failure></testcase>")
    return cases, failures
