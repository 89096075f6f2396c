"""A pipeline Report -> one self-contained HTML page: no script, no network, everything inline.

Open it anywhere (a CI artifact, a mail attachment, a pull request's files): the verdict, the
stages and their times, the validation per output and per case with error histograms, the
``--baseline`` rules, the three-way parity, where the export diverges (module and source line),
the module tree with params and MACs as bars, and the graph drawn by Graphviz with the diverging
module in red.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from exportkit.report.baseline import baseline_html
from exportkit.report.charts import bar, error_histogram_svg
from exportkit.report.graph import GraphPicture, draw_graph
from exportkit.report.pipeline import parity_word
from exportkit.report.text import format_bytes, format_count

if TYPE_CHECKING:
    from exportkit.results import Report
    from exportkit.summary.results import GraphSummary
    from exportkit.validate import Divergence, ValidationResult

__all__ = ["diverging_node", "render_html"]

e = html.escape

_STYLE = """
body { font: 14px/1.45 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0;
       color: #222; background: #fafafa; }
main { max-width: 1200px; margin: 0 auto; padding: 16px 24px 48px; }
h1 { font-size: 20px; margin: 8px 0; } h2 { font-size: 16px; margin: 28px 0 8px;
     border-bottom: 1px solid #ddd; padding-bottom: 4px; }
.verdict { display: inline-block; padding: 2px 12px; border-radius: 4px; color: #fff;
           font-weight: bold; letter-spacing: 0.05em; }
.pass { background: #2e7d32; } .fail { background: #c62828; }
table { border-collapse: collapse; background: #fff; }
td, th { padding: 3px 10px; border-bottom: 1px solid #eee; text-align: left; vertical-align: middle; }
th { background: #f0f0f0; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.bad td { background: #fdecea; } .ok { color: #2e7d32; } .bad-word { color: #c62828; font-weight: bold; }
code, pre { font-family: SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
pre { background: #fff; border: 1px solid #e4e4e4; padding: 8px; overflow-x: auto; }
.divergence { border-left: 4px solid #c62828; background: #fff; padding: 8px 14px; }
.facts td:first-child { color: #666; white-space: nowrap; }
.histograms { display: flex; flex-wrap: wrap; gap: 20px; }
.histograms figure { margin: 0; background: #fff; padding: 6px; border: 1px solid #eee; }
.histograms figcaption { font-size: 12px; color: #444; }
.graph { background: #fff; border: 1px solid #e4e4e4; overflow-x: auto; }
.note { color: #666; }
"""


def diverging_node(divergence: Divergence | None) -> str | None:
    """The ONNX node name where a divergence was found, if any."""
    return divergence.onnx_node if divergence is not None and divergence.onnx_node else None


def _table(
    head: Sequence[str], rows: Iterable[tuple[Sequence[str], bool]], numeric: set[int]
) -> str:
    """Cells are HTML already; a row flagged True is drawn as a failure."""
    out = ["<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr>"]
    for cells, bad in rows:
        tds = "".join(
            f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>"
            for i, c in enumerate(cells)
        )
        out.append(f'<tr class="bad">{tds}</tr>' if bad else f"<tr>{tds}</tr>")
    out.append("</table>")
    return "".join(out)


def _word(ok: bool | None, result: ValidationResult | None = None) -> str:
    text = parity_word(ok, result)
    kind = {"match": "ok", "not checked": "note"}.get(text, "bad-word")
    return f'<span class="{kind}">{text}</span>'


def _agrees(word: str) -> str:
    return '<span class="bad-word">NO</span>' if word == "NO" else word


def _header(report: Report) -> str:
    verdict = "PASS" if report.passed else "FAIL"
    facts = [("model", e(report.model))]
    facts += [
        (f"input {i.name}", e(f"{'x'.join(map(str, i.shape)) or 'scalar'} {i.dtype}"))
        for i in report.inputs
    ]
    if report.export is not None:
        facts.append(("exporter", e(f"{report.export.exporter} (opset {report.export.opset})")))
        for a in report.export.attempts:
            if not a.ok:
                facts.append(("", e(f"{a.exporter} failed: {a.error}")))
        for fd in report.export.frozen_dims:
            facts.append(
                ("FROZEN", e(f"{fd.input} dim {fd.axis} ({fd.label}) exported as fixed {fd.size}"))
            )
    if report.simplify is not None:
        s = report.simplify
        kept = "kept" if s.kept else f"not kept: {s.reason}"
        facts.append(
            ("simplify", e(f"{s.simplifier}: {s.nodes_before} -> {s.nodes_after} nodes, {kept}"))
        )
    facts.append(("files", e(", ".join(str(f) for f in report.files))))
    facts += [("note", e(n)) for n in report.input_notes]
    rows = "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in facts)
    cls = "pass" if report.passed else "fail"
    return (
        f'<h1>exportkit <span class="verdict {cls}" id="verdict">{verdict}</span> '
        f"{e(report.model)}</h1>"
        f'<table class="facts">{rows}</table>'
    )


def _stages(report: Report) -> str:
    total = sum(t.seconds for t in report.stages) or 1.0
    rows = [
        (
            [e(t.stage), e(t.status), f"{t.seconds:.2f} s", bar(t.seconds, total), e(t.detail)],
            t.status == "failed",
        )
        for t in report.stages
    ]
    return "<h2>Stages</h2>" + _table(["stage", "status", "time", "", "detail"], rows, {2})


def _validation(result: ValidationResult, title: str) -> str:
    parts = [f"<h2>{e(title)}</h2>"]
    cases = ", ".join(t.label for t in result.trials)
    parts.append(
        f'<p class="note">onnxruntime vs eager PyTorch, {len(result.trials)} cases: {e(cases)}</p>'
    )
    head = ["output", "dtype", "max abs", "max rel", "mean abs", "out of tol", "atol", "rtol",
            "passes at atol", "verdict"]  # fmt: skip
    rows = []
    for name, c in result.worst().items():
        exact = c.atol == 0 and c.rtol == 0
        cells = [f"<code>{e(name)}</code>", e(c.dtype), f"{c.max_abs:.2e}",
                 "" if exact else f"{c.max_rel:.2e}", f"{c.mean_abs:.2e}", f"{c.frac_out:.2%}",
                 "exact" if exact else f"{c.atol:g}", "" if exact else f"{c.rtol:g}",
                 "" if exact else f"{c.atol_needed:.1e}",
                 '<span class="note">unproven</span>' if c.passed and name in result.unproven
                 else _word(c.passed)]  # fmt: skip
        rows.append((cells, not c.passed))
    parts.append("<h3>Per output (worst case)</h3>")
    parts.append(_table(head, rows, {2, 3, 4, 5, 6, 7, 8}))
    case_rows = []
    for t in result.trials:
        shapes = ", ".join(
            f"{n} {'x'.join(map(str, s)) or 'scalar'}" for n, s in t.input_shapes.items()
        )
        if t.error:
            why = "PyTorch fails here" if t.pytorch_failed else "onnxruntime fails here"
            case_rows.append(
                ([e(t.label), e(shapes), "", "", "", e(f"{why}: {t.error}")], not t.pytorch_failed)
            )
        for c in t.outputs:
            what = "; ".join(c.findings) or ("ok" if c.passed else "mismatch")
            case_rows.append(
                (
                    [
                        e(t.label),
                        e(shapes),
                        f"<code>{e(c.name)}</code>",
                        f"{c.max_abs:.2e}",
                        f"{c.frac_out:.2%}",
                        e(what),
                    ],
                    not c.passed,
                )
            )
    parts.append("<h3>Per case</h3>")
    parts.append(
        _table(["case", "inputs", "output", "max abs", "out of tol", "finding"], case_rows, {3, 4})
    )
    parts.append(_histograms(result))
    return "".join(parts)


def _histograms(result: ValidationResult) -> str:
    """Per output, the elements of every case by decade of abs difference."""
    totals: dict[str, list[int]] = {}
    atol: dict[str, float] = {}
    for t in result.trials:
        for c in t.outputs:
            if not c.error_histogram:
                continue
            acc = totals.setdefault(c.name, [0] * len(c.error_histogram))
            for i, n in enumerate(c.error_histogram):
                acc[i] += n
            atol[c.name] = c.atol
    if not totals:
        return ""
    figures = [
        f"<figure><figcaption><code>{e(name)}</code>: elements by |onnx - torch|, all cases; "
        f"shaded: beyond atol {atol[name]:g}</figcaption>"
        f"{error_histogram_svg(counts, atol=atol[name], title=f'{name} error histogram')}</figure>"
        for name, counts in totals.items()
    ]
    return '<h3>Error histograms</h3><div class="histograms">' + "".join(figures) + "</div>"


def _steps(report: Report) -> str:
    """``--steps``: the state pairs, one row per chained step, the first failing step's module."""
    from exportkit.report.steps import agrees_word, prefill_text, start_text, step_finding

    flags = " ".join(p.flag() for p in report.state_pairs)
    start = start_text(report.state_pairs, report.steps)
    parts = [
        '<h2 id="steps">Decode steps</h2>',
        f'<p class="note">{e(start)}; each next step fed its own previous outputs, eager '
        f"PyTorch its own. State pairs: <code>{e(flags)}</code></p>",
    ]
    if report.prefill is not None:
        parts.append(
            f'<p class="note">Prefill file: <code>{e(prefill_text(report.prefill))}</code></p>'
        )
    first = next((s for s in report.steps if not s.passed), None)
    verdict = {True: '<span class="ok">pass</span>', False: '<span class="bad-word">FAIL</span>'}
    rows = []
    for s in report.steps:
        where = ""
        if s is first and s.divergence is not None and s.divergence.location is not None:
            loc = s.divergence.location
            where = f"<code>{e(loc.module or 'the model itself')}</code> ({e(loc.cls)})"
        elif s is first:
            where = "not placed"
        diff = "--" if s.max_abs_diff == float("inf") else f"{s.max_abs_diff:.2e}"
        rows.append(
            (
                [str(s.step), "--" if s.past_length is None else str(s.past_length), diff,
                 _agrees(agrees_word(s.token_agreement, s.token_tie)), verdict[s.passed],
                 e(step_finding(s)), where],
                not s.passed,
            )
        )  # fmt: skip
    head = ["step", "past length", "max abs diff", "token agrees", "verdict", "finding",
            "first failing step diverges at"]  # fmt: skip
    parts.append(_table(head, rows, {0, 1, 2}))
    if first is not None:
        parts.append(f'<p id="first-failing-step">Step {first.step} fails first.</p>')
    return "".join(parts)


def _parity(report: Report) -> str:
    p = report.parity
    if p is None:
        return ""
    drift = {
        "none": "no drift",
        "model": "PyTorch itself fails at some sizes (not an export drift)",
    }
    rows = [
        (["PyTorch vs export", _word(p.exported, report.validation_raw)], not p.exported),
        (
            ["PyTorch vs simplified", _word(p.simplified, report.validation_simplified)],
            p.simplified is False,
        ),
        (["drift", e(drift.get(p.drift, f"caused by the {p.drift}"))], p.drift not in drift),
        (["kept", e(f"the {p.kept} file: {p.reason}")], False),
    ]
    return "<h2>Three-way parity</h2>" + _table(["", ""], rows, set())


def _divergences(report: Report) -> str:
    shown: list[Divergence] = []
    parts = []
    for which, result in (
        ("export", report.validation_raw or report.validation),
        ("simplified file", report.validation_simplified),
    ):
        div = result.divergence if result is not None else None
        if div is None or div in shown:
            continue
        shown.append(div)
        loc = div.location
        if loc is None:
            facts = [("module", "unknown")]
        else:
            facts = [
                ("module", f"<code>{e(loc.module or 'the model itself')}</code> ({e(loc.cls)})"),
                ("source", f"<code>{e(loc.source)}</code>" if loc.source else "unknown"),
            ]
        if loc is not None and loc.code:
            facts.append(("code", f"<code>{e(loc.code)}</code>"))
        facts += [("finding", e(div.detail)), ("case", e(div.trial))]
        if div.onnx_node:
            op = f" ({div.onnx_op})" if div.onnx_op else ""
            facts.append(("ONNX node", f"<code>{e(div.onnx_node)}</code>{e(op)}"))
        if div.kind == "values":
            facts.append(("before it", e(f"the {div.matched} modules compared before it matched")))
        rows = "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in facts)
        parts.append(
            f'<h2 id="divergence">Where the {e(which)} diverges from PyTorch</h2>'
            f'<div class="divergence"><table class="facts">{rows}</table></div>'
        )
    return "".join(parts)


def _modules(summary: GraphSummary, diverging: str | None) -> str:
    root = summary.modules[0] if summary.modules else None
    if root is None:
        return ""
    rows = []
    for m in summary.modules:
        name = m.path.rsplit(".", 1)[-1] if m.path else (summary.graph_name or "model")
        indent = "&nbsp;" * 4 * m.depth
        hit = diverging is not None and m.path == diverging
        cls = (m.class_name or "").rsplit(".", 1)[-1]
        macs = f"{format_count(m.macs)}{'+?' if m.unknown_macs else ''}"
        rows.append(
            (
                [
                    f"{indent}<code>{e(name)}</code>",
                    e(cls),
                    f"{m.node_count:,}",
                    format_count(m.params),
                    bar(m.params, root.params),
                    macs,
                    bar(m.macs, root.macs, colour="#f58518"),
                ],
                hit,
            )
        )
    totals = (
        f'<p class="note">{summary.node_count:,} nodes, {format_count(summary.params)} params '
        f"({format_bytes(sum(summary.param_bytes.values()))}), {format_count(summary.macs)} MACs; "
        f"hierarchy from {e(summary.hierarchy)}</p>"
    )
    head = ["module", "class", "nodes", "params", "", "MACs", ""]
    return "<h2>Module tree</h2>" + totals + _table(head, rows, {2, 3, 5})


def _graph(picture: GraphPicture | None) -> str:
    if picture is None:
        return ""
    if picture.svg is None:
        return f'<h2>Graph</h2><p class="note" id="graph-missing">Graph not drawn: {e(picture.missing or "")}</p>'
    folded = (
        ""
        if picture.folded_at is None
        else f"; too large to draw node by node, so each module at depth {picture.folded_at} "
        "is one box"
    )
    return (
        f'<h2>Graph</h2><p class="note">drawn by {e(picture.renderer)} in {picture.seconds:.2f} s'
        f"{e(folded)}; the diverging module is boxed in red, its nodes orange, the diverging "
        "node red</p>"
        f'<div class="graph" id="graph">{picture.svg}</div>'
    )


def render_html(
    report: Report, *, summary: GraphSummary | None = None, picture: GraphPicture | None = None
) -> str:
    """The whole report as one HTML page that needs nothing else to open.

    Args:
        report: The run's report.
        summary: The graph summary to show when the report has none (``check``); the report's
            own otherwise.
        picture: The drawn graph; drawn here with Graphviz when None (see ``draw_graph``).
    """
    summary = summary if summary is not None else report.summary
    div = report.validation.divergence if report.validation is not None else None
    module = None
    if div is not None and div.location is not None and summary is not None:
        module = summary.find_module(div.location.module, diverging_node(div))
    if picture is None and summary is not None:
        picture = draw_graph(summary, diverging_module=module, diverging_node=diverging_node(div))
    body: list[Any] = [_header(report), _stages(report)]
    if report.validation is not None:
        body.append(_validation(report.validation, "Validation"))
    if report.variants:  # --variant: the deployment matrix, as the text report draws it
        from exportkit.report.variants import render_variants

        matrix = "\n".join(render_variants(report.variants))
        body.append(f'<h2>Variants</h2><pre id="variants">{e(matrix)}</pre>')
    if report.steps:
        body.append(_steps(report))
    body.append(baseline_html(report))
    body.append(_parity(report))
    body.append(_divergences(report))
    if summary is not None:
        body.append(_modules(summary, module))
        body.append(_graph(picture))
    versions = ", ".join(f"{k} {v}" for k, v in report.versions.items())
    body.append(f'<p class="note">schema {report.schema_version}; {e(versions)}</p>')
    title = f"exportkit {'PASS' if report.passed else 'FAIL'}: {report.model}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{e(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main>{''.join(body)}</main></body></html>\n"
    )
