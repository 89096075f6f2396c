"""GraphSummary -> terminal table, JSON, Markdown, CSV or HTML (pure functions returning str).

The JSON document (``schema_version`` 1) is built from the result dataclasses field by field;
its schema is described in docs/summary.md.
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from exportkit.report.comparison import render_comparison
from exportkit.report.jsondoc import SCHEMA_VERSION, dump_document, fields_of, to_jsonable
from exportkit.report.rows import (
    COLUMNS,
    DEFAULT_COLUMNS,
    HEADERS,
    NUMERIC,
    Row,
    check_columns,
    parse_columns,
    row_cells,
    summary_facts,
    summary_rows,
    summary_totals,
)
from exportkit.summary.results import GraphSummary

__all__ = [
    "COLUMNS",
    "DEFAULT_COLUMNS",
    "FORMATS",
    "SCHEMA_VERSION",
    "Row",
    "parse_columns",
    "render_comparison",
    "render_csv",
    "render_html",
    "render_json",
    "render_markdown",
    "render_summary",
    "render_table",
    "summary_rows",
    "to_jsonable",
]

Format = Literal["table", "json", "markdown", "csv", "html"]
FORMATS: tuple[str, ...] = ("table", "json", "markdown", "csv", "html")
# -------------------------------------------------------------------------------------- formats


def render_table(
    summary: GraphSummary,
    *,
    depth: int | None = None,
    columns: Sequence[str] | None = None,
    color: bool = False,
    width: int = 120,
    times: Mapping[str, tuple[float, float | None]] | None = None,
) -> str:
    """The terminal view: facts, the module/node tree, totals and warnings; with ``times``
    (module path -> onnxruntime ms, eager ms), a time column (ms and share) and eager's.

    With ``color`` the table is drawn by rich (ANSI escapes, ``width`` columns); without, it is
    plain aligned text, stable enough for golden files and pipes.
    """
    cols = check_columns(columns)
    rows = summary_rows(summary, depth)
    body = [row_cells(r, cols, indent=True) for r in rows]
    if times:
        from exportkit.report.variants import time_columns

        cols, body = time_columns(
            cols, body, [r.path if r.kind == "module" else None for r in rows], times
        )
    if color:
        return _rich_table(summary, cols, body, rows, width)
    lines = [f"{label + ':':<13}{value}" for label, value in summary_facts(summary)]
    lines.append("")
    lines.extend(_plain_grid(cols, body))
    lines.append("")
    lines.extend(f"{label + ':':<13}{value}" for label, value in summary_totals(summary))
    lines.extend(f"warning: {w}" for w in summary.warnings)
    return "\n".join(lines) + "\n"


def _plain_grid(cols: Sequence[str], body: list[list[str]]) -> list[str]:
    headers = [HEADERS[c] for c in cols]
    widths = [max([len(h), *(len(r[i]) for r in body)]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        parts = [
            c.rjust(w) if col in NUMERIC else c.ljust(w)
            for c, w, col in zip(cells, widths, cols, strict=True)
        ]
        return "  ".join(parts).rstrip()

    rule = "=" * (sum(widths) + 2 * (len(widths) - 1))
    return [rule, line(headers), rule, *(line(r) for r in body), rule]


def _rich_table(
    summary: GraphSummary, cols: Sequence[str], body: list[list[str]], rows: list[Row], width: int
) -> str:
    from rich.console import Console
    from rich.table import Table

    console = Console(file=io.StringIO(), force_terminal=True, width=width, color_system="standard")
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    for label, value in summary_facts(summary):
        facts.add_row(label, value)
    console.print(facts)
    table = Table(show_lines=False, header_style="bold")
    for col in cols:
        table.add_column(HEADERS[col], justify="right" if col in NUMERIC else "left")
    for row, cells in zip(rows, body, strict=True):
        table.add_row(*cells, style="bold" if row.kind == "module" and row.level <= 1 else None)
    console.print(table)
    totals = Table.grid(padding=(0, 2))
    totals.add_column(style="bold")
    totals.add_column()
    for label, value in summary_totals(summary):
        totals.add_row(label, value)
    console.print(totals)
    for w in summary.warnings:
        console.print(f"[yellow]warning:[/yellow] {w}", highlight=False)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    return str(out)


def render_markdown(
    summary: GraphSummary, *, depth: int | None = None, columns: Sequence[str] | None = None
) -> str:
    """A Markdown fact list, a table of the tree (full module paths) and totals."""
    cols = check_columns(columns)
    rows = summary_rows(summary, depth)

    def esc(text: str) -> str:
        return text.replace("|", "\\|")

    lines = [f"- **{label}**: {esc(value)}" for label, value in summary_facts(summary)]
    lines.append("")
    lines.append("| " + " | ".join(HEADERS[c] for c in cols) + " |")
    lines.append("|" + "|".join("---:" if c in NUMERIC else "---" for c in cols) + "|")
    for r in rows:
        cells = row_cells(r, cols, indent=False)
        if "name" in cols:
            i = cols.index("name")
            cells[i] = ("&nbsp;" * 2 * r.level) + (
                f"`{cells[i]}`" if r.kind == "node" else cells[i]
            )
        lines.append("| " + " | ".join(esc(c) for c in cells) + " |")
    lines.append("")
    lines.extend(f"- **{label}**: {esc(value)}" for label, value in summary_totals(summary))
    lines.extend(f"- **Warning**: {esc(w)}" for w in summary.warnings)
    return "\n".join(lines) + "\n"


def render_csv(
    summary: GraphSummary, *, depth: int | None = None, columns: Sequence[str] | None = None
) -> str:
    """One CSV row per tree row: ``level,kind`` then the chosen columns, plain numbers.

    Names are full module paths or node names; unknown MACs are empty cells.
    """
    cols = check_columns(columns)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["level", "kind", *cols])
    for r in summary_rows(summary, depth):
        cells = row_cells(r, cols, indent=False)
        for i, col in enumerate(cols):
            if col == "params":
                cells[i] = str(r.params)
            elif col == "macs":
                cells[i] = "" if r.macs is None else str(r.macs)
            elif col == "nodes":
                cells[i] = str(r.nodes) if r.kind == "module" else ""
        writer.writerow([r.level, r.kind, *cells])
    return buf.getvalue()


def render_html(
    summary: GraphSummary, *, depth: int | None = None, columns: Sequence[str] | None = None
) -> str:
    """A self-contained HTML fragment (facts, tree table, totals) for notebooks and reports."""
    cols = check_columns(columns)
    e = html.escape
    parts = ["<div class='exportkit-summary'>", "<table>"]
    parts += [f"<tr><th style='text-align:left'>{e(k)}</th><td>{e(v)}</td></tr>"
              for k, v in summary_facts(summary)]  # fmt: skip
    parts.append("</table><table><thead><tr>")
    parts += [f"<th>{e(HEADERS[c])}</th>" for c in cols]
    parts.append("</tr></thead><tbody>")
    for r in summary_rows(summary, depth):
        cells = row_cells(r, cols, indent=False)
        tds = []
        for col, cell in zip(cols, cells, strict=True):
            if col == "name":
                text = r.name
                style = f"text-align:left;padding-left:{0.3 + 1.2 * r.level:.1f}em"
                cell_html = f"<code>{e(text)}</code>" if r.kind == "node" else f"<b>{e(text)}</b>"
                tds.append(f"<td style='{style}' title='{e(r.path)}'>{cell_html}</td>")
            else:
                align = "right" if col in NUMERIC else "left"
                tds.append(f"<td style='text-align:{align}'>{e(cell)}</td>")
        parts.append("<tr>" + "".join(tds) + "</tr>")
    parts.append("</tbody></table><table>")
    parts += [f"<tr><th style='text-align:left'>{e(k)}</th><td>{e(v)}</td></tr>"
              for k, v in summary_totals(summary)]  # fmt: skip
    parts.append("</table>")
    parts += [f"<p><b>warning:</b> {e(w)}</p>" for w in summary.warnings]
    parts.append("</div>")
    return "\n".join(parts)


def render_json(summary: GraphSummary) -> str:
    """The whole summary as JSON: ``schema_version``, ``kind``, then every GraphSummary field.

    Depth and column choices do not apply: every module and node is included.
    """
    doc: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "kind": "exportkit.graph_summary"}
    doc.update(fields_of(summary))
    doc["node_count"] = summary.node_count
    return dump_document(doc)


def render_summary(
    summary: GraphSummary,
    fmt: Format = "table",
    *,
    depth: int | None = None,
    columns: Sequence[str] | None = None,
    color: bool = False,
    width: int = 120,
    times: Mapping[str, tuple[float, float | None]] | None = None,
) -> str:
    """Render in one of ``FORMATS``; the CLI's single entry point."""
    if fmt == "table":
        return render_table(
            summary, depth=depth, columns=columns, color=color, width=width, times=times
        )
    if fmt == "json":
        return render_json(summary)
    if fmt == "markdown":
        return render_markdown(summary, depth=depth, columns=columns)
    if fmt == "csv":
        return render_csv(summary, depth=depth, columns=columns)
    if fmt == "html":
        return render_html(summary, depth=depth, columns=columns)
    raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")
