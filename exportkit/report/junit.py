"""A pipeline Report -> JUnit XML: a test case per trial and output, frozen dim, unproven
output, decode step, variant and baseline rule, so CI shows which check broke."""

from __future__ import annotations

from typing import TYPE_CHECKING
from xml.sax.saxutils import escape, quoteattr

from exportkit.report.pipeline import render_divergence

if TYPE_CHECKING:
    from exportkit.errors import ExportkitError
    from exportkit.results import Report

__all__ = ["junit_cases", "render_junit", "render_junit_error"]


def render_junit(report: Report) -> str:
    """JUnit XML: one test case per trial and output, failures carrying the findings."""
    cases, failures = junit_cases(report)
    head = (
        f'<?xml version="1.0" encoding="utf-8"?>\n<testsuite name="exportkit" '
        f'tests="{len(cases)}" failures="{failures}">'
    )
    return "\n".join([head, *cases, "</testsuite>"]) + "\n"


def junit_cases(report: Report, classname: str | None = None) -> tuple[list[str], int]:
    """The ``<testcase>`` lines of a report (classname: the model; ``exportkit ci`` names it by
    its config) and how many failed."""
    model = quoteattr(classname or report.model)
    cases = []
    failures = 0
    trials = report.validation.trials if report.validation else ()
    div = report.validation.divergence if report.validation else None
    where = escape("\n".join(["", *render_divergence(div)])) if div is not None else ""
    for trial in trials:
        if trial.error:
            failures += 1
            cases.append(
                f"  <testcase classname={model} name={quoteattr(trial.label)}>"
                f"<failure message={quoteattr(trial.error)}>{where}</failure></testcase>"
            )
        for check in trial.outputs:
            name = quoteattr(f"{trial.label}: {check.name}")
            if check.passed:
                cases.append(f"  <testcase classname={model} name={name}/>")
            else:
                failures += 1
                msg = quoteattr("; ".join(check.findings) or "mismatch")
                cases.append(
                    f"  <testcase classname={model} name={name}>"
                    f"<failure message={msg}>max abs {check.max_abs:.3e}{where}</failure></testcase>"
                )
    if report.export is not None:
        for fd in report.export.frozen_dims:
            failures += 1
            msg = quoteattr(
                f"{fd.input} dim {fd.axis} ({fd.label}) exported as fixed size {fd.size}"
            )
            cases.append(
                f"  <testcase classname={model} name={quoteattr('dynamic ' + fd.label)}>"
                f"<failure message={msg}/></testcase>"
            )
    validation = report.validation
    for output in validation.unproven if validation is not None else ():
        msg = quoteattr(f"{output}: the check could not have failed (unproven)")
        if validation is not None and validation.strict:
            failures += 1
            verdict = f"<failure message={msg}/>"
        else:
            verdict = f"<skipped message={msg}/>"
        cases.append(
            f"  <testcase classname={model} name={quoteattr('unproven ' + output)}>"
            f"{verdict}</testcase>"
        )
    if report.steps:
        from exportkit.report.steps import steps_junit_cases

        more, failed = steps_junit_cases(report.model, report.steps, report.prefill)
        cases, failures = [*cases, *more], failures + failed
    if report.variants:
        from exportkit.report.variants import variant_junit_cases

        more, failed = variant_junit_cases(classname or report.model, report.variants)
        cases, failures = [*cases, *more], failures + failed
    for rule in report.baseline:
        name = quoteattr(f"baseline: {rule.rule}")
        if rule.passed:
            skipped = f"<skipped message={quoteattr(rule.detail)}/>" if rule.skipped else ""
            cases.append(f"  <testcase classname={model} name={name}>{skipped}"
                         "</testcase>")  # fmt: skip
        else:
            failures += 1
            cases.append(
                f"  <testcase classname={model} name={name}>"
                f"<failure message={quoteattr(rule.detail)}/></testcase>"
            )
    return cases, failures


def render_junit_error(model: str, error: ExportkitError) -> str:
    """JUnit XML for a run that stopped at a stage: one test case in error, with the hint."""
    body = escape(f"hint: {error.hint}") if error.hint else ""
    return (
        f'<?xml version="1.0" encoding="utf-8"?>\n<testsuite name="exportkit" tests="1" '
        f'failures="0" errors="1">\n  <testcase classname={quoteattr(model)} name="export">'
        f"<error type={quoteattr(type(error).__name__)} message={quoteattr(error.message)}>"
        f"{body}</error></testcase>\n</testsuite>\n"
    )
