"""A CiResult -> the live line per model, the final table, combined JSON and JUnit XML."""

from __future__ import annotations

import json
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from exportkit.project.results import CiResult, ModelRun
from exportkit.report.jsondoc import SCHEMA_VERSION, to_jsonable
from exportkit.report.junit import junit_cases
from exportkit.report.pipeline import render_json

__all__ = ["render_ci_json", "render_ci_junit", "render_ci_line", "render_ci_table"]

_WORD = {"pass": "PASS", "fail": "FAIL", "error": "ERROR"}


def _time(run: ModelRun) -> str:
    return f"{run.seconds:.1f} s" + (" (cached)" if run.cached else "")


def _show(path: Path | None, root: Path | None) -> str:
    """A path relative to the project folder when it lies inside it."""
    if path is None:
        return ""
    if root is not None and root in path.parents:
        return str(path.relative_to(root))
    return str(path)


def render_ci_line(run: ModelRun, root: Path | None = None) -> str:
    """One line as a model finishes: verdict, name, time, and the file or the reason."""
    what = run.reason if not run.passed else _show(run.output, root)
    return f"{_WORD[run.verdict]:<5} {run.name}  {_time(run)}  {what}".rstrip()


def render_ci_table(result: CiResult) -> str:
    """Every model in config order: model, verdict, time, output, reason; then the totals."""
    rows = [("model", "verdict", "time", "output", "reason")]
    for run in result.models:
        output = _show(run.output, result.config.parent)
        rows.append((run.name, _WORD[run.verdict], _time(run), output, run.reason))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:4], widths)) + "  " + r[4] for r in rows]
    failed = len(result.failed)
    lines.append("")
    lines.append(
        f"{len(result.models) - failed} passed, {failed} failed of {len(result.models)} models "
        f"in {result.seconds:.1f} s (-j {result.jobs}); {result.config}"
    )
    return "\n".join(line.rstrip() for line in lines) + "\n"


def render_ci_json(result: CiResult) -> str:
    """The whole run: each model's verdict and full report (as ``exportkit export --json``)."""
    models = []
    for run in result.models:
        data = to_jsonable(run)
        if run.report is not None:
            data["report"] = json.loads(render_json(run.report))  # as `exportkit export --json`
        models.append(data)
    doc = {
        "schema_version": SCHEMA_VERSION,
        "passed": result.passed,
        "config": str(result.config),
        "jobs": result.jobs,
        "seconds": result.seconds,
        "models": models,
    }
    return json.dumps(doc, indent=2) + "\n"


def _error_case(run: ModelRun) -> str:
    assert run.error is not None
    body = escape(run.error.traceback or (f"hint: {run.error.hint}" if run.error.hint else ""))
    return (
        f'    <testcase classname={quoteattr(run.name)} name="export">'
        f"<error type={quoteattr(run.error.kind)} message={quoteattr(run.error.message)}>"
        f"{body}</error></testcase>"
    )


def render_ci_junit(result: CiResult) -> str:
    """JUnit XML: a test suite per model, a test case per check (trial and output)."""
    suites = []
    for run in result.models:
        if run.report is not None:
            cases, failures = junit_cases(run.report, classname=run.name)
            cases = [f"  {c}" for c in cases]
            errors = 0
        else:
            cases, failures, errors = [_error_case(run)], 0, 1
        suites.append(
            f'  <testsuite name={quoteattr(run.name)} tests="{len(cases)}" '
            f'failures="{failures}" errors="{errors}" time="{run.seconds:.3f}">'
        )
        suites += cases
        suites.append("  </testsuite>")
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<testsuites name="exportkit ci">\n'
        + "\n".join(suites)
        + "\n</testsuites>\n"
    )
