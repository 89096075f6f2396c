"""The ``--baseline`` rules of a Report as the HTML and Markdown reports show them: one row per
rule (rule, verdict, detail), as JSON and JUnit give each rule its own entry."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from exportkit.diff.baseline import BaselineRule
    from exportkit.results import Report

__all__ = ["baseline_html", "baseline_markdown", "rule_verdict"]


def rule_verdict(rule: BaselineRule) -> str:
    """``pass``, ``FAIL``, or ``skipped`` (a rule with nothing to measure passes)."""
    if not rule.passed:
        return "FAIL"
    return "skipped" if rule.skipped else "pass"


def _summary(report: Report) -> str:
    failed = sum(1 for r in report.baseline if not r.passed)
    total = len(report.baseline)
    return f"{failed} of {total} rules fail" if failed else f"all {total} rules pass"


def baseline_html(report: Report) -> str:
    """A ``Baseline`` section: the baseline file, then a table with failing rules in red."""
    if not report.baseline:
        return ""
    e = html.escape
    words = {
        "pass": '<span class="ok">pass</span>',
        "FAIL": '<span class="bad-word">FAIL</span>',
        "skipped": '<span class="note">skipped</span>',
    }
    rows = []
    for r in report.baseline:
        cells = f"<td>{e(r.rule)}</td><td>{words[rule_verdict(r)]}</td><td>{e(r.detail)}</td>"
        rows.append(f"<tr>{cells}</tr>" if r.passed else f'<tr class="bad">{cells}</tr>')
    return (
        '<h2 id="baseline">Baseline</h2>'
        f'<p class="note">against <code>{e(report.baseline_path or "?")}</code>: '
        f"{e(_summary(report))}</p>"
        '<table id="baseline-rules"><tr><th>rule</th><th>verdict</th><th>detail</th></tr>'
        + "".join(rows)
        + "</table>"
    )


def baseline_markdown(report: Report) -> list[str]:
    """A bold ``Baseline`` line naming the file, then a table (empty without ``--baseline``)."""
    if not report.baseline:
        return []
    words = {"pass": "✅ pass", "FAIL": "❌ **FAIL**", "skipped": "➖ skipped"}
    path = (report.baseline_path or "?").replace("`", "'")
    lines = [
        f"**Baseline** `{path}`: {_summary(report)}",
        "",
        "| rule | verdict | detail |",
        "|---|---|---|",
    ]
    for r in report.baseline:
        detail = r.detail.replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {r.rule} | {words[rule_verdict(r)]} | {detail} |")
    return [*lines, ""]
