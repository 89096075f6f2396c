"""A pipeline Report -> GitHub-flavoured Markdown, for a pull request or a CI step summary.

Short on purpose: the verdict in the heading, one table row per output, one per ``--baseline``
rule, where it diverges with its source line, the parity; stages and the per-case table fold away in ``<details>``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from exportkit.report.baseline import baseline_markdown
from exportkit.report.pipeline import parity_word

if TYPE_CHECKING:
    from exportkit.errors import ExportkitError
    from exportkit.results import Report
    from exportkit.validate import Divergence, ValidationResult

__all__ = ["render_markdown", "render_markdown_error"]


def _cell(text: str) -> str:
    """Text safe inside a table cell: pipes escaped, newlines as spaces."""
    return text.replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    """Inline code; a text holding a backtick is fenced with two."""
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def _outputs(result: ValidationResult) -> list[str]:
    lines = [
        "| output | dtype | max abs | out of tol | atol | rtol | verdict |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for name, c in result.worst().items():
        exact = c.atol == 0 and c.rtol == 0
        verdict = "✅ ok" if c.passed else "❌ **FAIL**"
        if c.passed and name in result.unproven:
            verdict = "⚠️ unproven (cannot fail at this tolerance)"
        lines.append(
            f"| {_cell(_code(name))} | {c.dtype} | {c.max_abs:.2e} | {c.frac_out:.2%} | "
            f"{'exact' if exact else f'{c.atol:g}'} | {'' if exact else f'{c.rtol:g}'} | {verdict} |"
        )
    return lines


def _cases(result: ValidationResult) -> list[str]:
    lines = ["| case | output | max abs | finding |", "|---|---|---:|---|"]
    for t in result.trials:
        if t.error:
            lines.append(f"| {_cell(t.label)} | | | {_cell(t.error)} |")
        for c in t.outputs:
            finding = "; ".join(c.findings) or "ok"
            lines.append(
                f"| {_cell(t.label)} | {_cell(_code(c.name))} | {c.max_abs:.2e} | {_cell(finding)} |"
            )
    return lines


def _divergence(div: Divergence, which: str) -> list[str]:
    loc = div.location
    if loc is None:
        lines = [f"**Where the {which} diverges:** unknown", ""]
    else:
        where = f" at {_code(loc.source)}" if loc.source else ""
        lines = [
            f"**Where the {which} diverges:** {_code(loc.module or 'the model itself')} "
            f"({loc.cls}){where}",
            "",
        ]
    if loc is not None and loc.code:
        lines += ["```python", loc.code, "```", ""]
    lines.append(f"> {div.detail}")
    facts = [f"case: {div.trial}"]
    if div.onnx_node:
        op = f" ({div.onnx_op})" if div.onnx_op else ""
        facts.append(f"ONNX node: {_code(div.onnx_node)}{op}")
    lines += [">", f"> {'; '.join(facts)}", ""]
    return lines


def render_markdown(report: Report) -> str:
    """The report as Markdown that reads well in a pull request (and in ``GITHUB_STEP_SUMMARY``)."""
    verdict = "✅ PASS" if report.passed else "❌ FAIL"
    lines = [f"### exportkit {verdict}: {_code(report.model)}", ""]
    facts = []
    if report.export is not None:
        facts.append(f"exporter **{report.export.exporter}** (opset {report.export.opset})")
    if report.simplify is not None:
        s = report.simplify
        facts.append(f"{s.simplifier} {'kept' if s.kept else 'not kept'}")
    if report.output is not None:
        facts.append(f"file {_code(str(report.output))}")
    if facts:
        lines += [", ".join(facts), ""]
    if report.export is not None:
        for fd in report.export.frozen_dims:
            lines.append(
                f"- ❌ **FROZEN**: {_code(fd.input)} dim {fd.axis} ({fd.label}) was asked to be "
                f"dynamic but was exported as fixed size {fd.size}"
            )
    if report.validation is not None:
        lines += [*_outputs(report.validation), ""]
    if report.steps:
        from exportkit.report.steps import render_steps

        lines += ["```", *render_steps(report.state_pairs, report.steps, report.prefill), "```", ""]
    if report.variants:
        from exportkit.report.variants import render_variants

        lines += ["```", *render_variants(report.variants), "```", ""]
    lines += baseline_markdown(report)
    shown: list[Divergence] = []
    for which, result in (
        ("export", report.validation_raw or report.validation),
        ("simplified file", report.validation_simplified),
    ):
        div = result.divergence if result is not None else None
        if div is not None and div not in shown:
            shown.append(div)
            lines += _divergence(div, which)
    if report.parity is not None:
        p = report.parity
        raw = parity_word(p.exported, report.validation_raw)
        simplified = parity_word(p.simplified, report.validation_simplified)
        raw, simplified = (
            w if w in ("match", "not checked") else f"**{w}**" for w in (raw, simplified)
        )
        lines += [
            f"Parity: PyTorch vs export {raw}; PyTorch vs simplified "
            f"{simplified}; drift: {p.drift}; kept the {p.kept} file ({p.reason}).",
            "",
        ]
    details = ["| stage | status | time | detail |", "|---|---|---:|---|"]
    details += [
        f"| {t.stage} | {t.status} | {t.seconds:.2f} s | {_cell(t.detail)} |" for t in report.stages
    ]
    if report.validation is not None:
        details += ["", *_cases(report.validation)]
    lines += ["<details><summary>Stages and cases</summary>", "", *details, "", "</details>", ""]
    return "\n".join(lines)


def render_markdown_error(model: str, error: ExportkitError) -> str:
    """A run that stopped at a stage: the error and its hint, as a step-summary entry."""
    lines = [f"### exportkit ❌ error: {_code(model)}", "", f"> {error.message}"]
    if error.hint:
        lines += [">", f"> hint: {error.hint}"]
    return "\n".join([*lines, ""]) + "\n"
