"""GraphSummary -> terminal table, JSON, Markdown, CSV or HTML (pure functions returning str).

The JSON document (``schema_version`` 1) is built from the result dataclasses field by field;
its schema is described in docs/summary.md.
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from exportkit.onnxfile import op_key
from exportkit.report.comparison import render_comparison
from exportkit.report.jsondoc import SCHEMA_VERSION, dump_document, fields_of, to_jsonable
from exportkit.report.text import (
    format_bytes,
    format_count,
    format_shape,
    format_tensor,
)
from exportkit.summary.results import GraphSummary, ModuleInfo, TensorInfo

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
#: Every column a row can show, in display order.
COLUMNS: tuple[str, ...] = ("name", "type", "shape", "dtype", "params", "macs", "nodes")
DEFAULT_COLUMNS: tuple[str, ...] = ("name", "type", "shape", "dtype", "params", "macs")
_HEADERS = {
    "name": "Module / node",
    "type": "Type",
    "shape": "Output shape",
    "dtype": "Dtype",
    "params": "Params",
    "macs": "MACs",
    "nodes": "Nodes",
    "time": "Time (ORT)",  # --profile only (exportkit.report.variants.time_columns)
    "eager": "Eager",
}
_NUMERIC = frozenset(("params", "macs", "nodes", "time", "eager"))
_MAX_OUTPUTS = 3


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the tree view: a module (aggregated over its subtree) or a node."""

    level: int
    kind: Literal["module", "node"]
    name: str
    path: str
    type: str
    outputs: tuple[TensorInfo, ...]
    params: int
    macs: int | None
    unknown_macs: int
    nodes: int
    shared: int = 0


# ---------------------------------------------------------------------------------------- rows


def summary_rows(summary: GraphSummary, depth: int | None = None) -> list[Row]:
    """The tree in display order: modules, and nodes as leaves, down to ``depth`` levels.

    The root (level 0) is the whole model, top-level modules are level 1, and a node sits one
    level below its module. Rows at the depth limit aggregate everything beneath them.
    """
    if not summary.modules:
        return []
    mods = {m.path: m for m in summary.modules}
    rows: list[Row] = []
    root_name = Path(summary.path).name

    def visit(mod: ModuleInfo) -> None:
        rows.append(_module_row(mod, root_name))
        if depth is not None and mod.depth >= depth:
            return
        items: list[tuple[int, str | int]] = [(mods[c].first_node, c) for c in mod.children]
        items.extend((i, i) for i in mod.nodes)
        for _, item in sorted(items, key=lambda kv: (kv[0], isinstance(kv[1], int))):
            if isinstance(item, str):
                visit(mods[item])
            else:
                rows.append(_node_row(summary, item, mod.depth + 1))

    visit(mods[""])
    return rows


def _short_class(name: str | None) -> str:
    return name.rsplit(".", 1)[-1] if name else ""


def _module_row(mod: ModuleInfo, root_name: str) -> Row:
    if mod.path == "":
        name = root_name
    elif mod.parent and mod.path.startswith(mod.parent + "."):
        name = mod.path[len(mod.parent) + 1 :]
    else:
        name = mod.path
    macs = None if mod.unknown_macs and not mod.macs else mod.macs
    return Row(
        mod.depth, "module", name, mod.path, _short_class(mod.class_name), mod.outputs,
        mod.params, macs, mod.unknown_macs, mod.node_count, mod.shared_params,
    )  # fmt: skip


def _node_row(summary: GraphSummary, index: int, level: int) -> Row:
    node = summary.nodes[index]
    full = node.name or f"#{index}"
    name = full.rsplit("/", 1)[-1] if full.startswith("/") else full
    op = op_key(node.domain, node.op_type)
    unknown = 1 if node.macs is None else 0
    return Row(level, "node", name, full, op, node.outputs, node.params, node.macs, unknown, 1)


# ----------------------------------------------------------------------------------- formatting


def _params_cell(row: Row) -> str:
    if not row.params:
        return "--"
    if not row.shared:
        return f"{row.params:,}"
    if row.shared == row.params:
        return f"{row.params:,} shared"
    return f"{row.params:,} ({row.shared:,} shared)"


def _macs_cell(row: Row) -> str:
    if row.macs is None:
        return "?"
    if row.macs == 0:
        return "--" if not row.unknown_macs else "?"
    text = f"{row.macs:,}"
    return f"≥{text}" if row.unknown_macs else text


def _cells(row: Row, columns: Sequence[str], *, indent: bool) -> list[str]:
    outs = row.outputs[:_MAX_OUTPUTS]
    more = len(row.outputs) - len(outs)
    out: list[str] = []
    for col in columns:
        if col == "name":
            out.append(("  " * row.level + row.name) if indent else (row.path or row.name))
        elif col == "type":
            out.append(row.type)
        elif col == "shape":
            text = "; ".join(format_shape(t.shape) for t in outs)
            out.append(text + (f"; +{more} more" if more else ""))
        elif col == "dtype":
            dtypes = [t.dtype or "?" for t in outs]
            out.append(dtypes[0] if len(set(dtypes)) == 1 else "; ".join(dtypes))
        elif col == "params":
            out.append(_params_cell(row))
        elif col == "macs":
            out.append(_macs_cell(row))
        elif col == "nodes":
            out.append(f"{row.nodes:,}" if row.kind == "module" else "")
    return out


def parse_columns(text: str) -> tuple[str, ...]:
    """``"name,type, macs"`` -> ``("name", "type", "macs")``; UsageError on an unknown column."""
    return _check_columns([c.strip() for c in text.split(",") if c.strip()])


def _check_columns(columns: Sequence[str] | None) -> tuple[str, ...]:
    if columns is None:
        return DEFAULT_COLUMNS
    bad = [c for c in columns if c not in COLUMNS] or ([] if columns else ["(none)"])
    if bad:
        from exportkit.errors import UsageError

        raise UsageError(
            f"unknown summary column {bad[0]!r}; columns are: {', '.join(COLUMNS)}",
            hint="for example --columns name,type,shape,params",
        )
    return tuple(columns)


def _macs_total(summary: GraphSummary) -> str:
    if summary.unknown_macs and not summary.macs:
        return f"unknown ({_nodes(summary.unknown_macs)} not countable)"
    text = f"{format_count(summary.macs)} ({summary.macs:,})"
    if summary.unknown_macs:
        text = f"≥{text}, {_nodes(summary.unknown_macs)} not countable"
    return text


def _nodes(n: int) -> str:
    return "1 node" if n == 1 else f"{n:,} nodes"


def _facts(summary: GraphSummary) -> list[tuple[str, str]]:
    """(label, value) lines shown above and below the table, shared by every text format."""
    opsets = ", ".join(f"{d} {v}" for d, v in summary.opsets.items())
    size = format_bytes(summary.file_bytes)
    if summary.external_data_files:
        files = ", ".join(summary.external_data_files[:3])
        if len(summary.external_data_files) > 3:
            files += f", +{len(summary.external_data_files) - 3} more"
        size += f" + {format_bytes(summary.external_data_bytes)} external data ({files})"
    hierarchy = {
        "metadata": "PyTorch modules (exporter metadata)",
        "names": "PyTorch modules (node names)",
        "none": "none (flat node list)",
    }.get(summary.hierarchy, summary.hierarchy)
    facts = [
        ("Model", summary.path),
        ("Producer", summary.producer or "?"),
        ("IR / opsets", f"IR {summary.ir_version}; {opsets}"),
        ("Size", size),
        ("Hierarchy", hierarchy),
    ]
    facts += [("Input", format_tensor(t)) for t in summary.inputs]
    facts += [("Output", format_tensor(t)) for t in summary.outputs]
    if summary.bound_dims:
        facts.append(("Bound dims", ", ".join(f"{k}={v}" for k, v in summary.bound_dims.items())))
    return facts


def _totals(summary: GraphSummary) -> list[tuple[str, str]]:
    ops = ", ".join(f"{k} {v}" for k, v in summary.op_histogram.items())
    return [
        ("Params", _params_total(summary)),
        ("MACs", _macs_total(summary)),
        ("Nodes", f"{summary.node_count:,}"),
        ("Ops", ops or "none"),
    ]


def _params_total(summary: GraphSummary) -> str:
    by_dtype = ", ".join(f"{format_bytes(b)} {d}" for d, b in summary.param_bytes.items())
    text = f"{summary.params:,}" + (f" ({by_dtype})" if by_dtype else "")
    if summary.shared_params:
        text += (
            f"; modules share stored tensors: {summary.params + summary.shared_params:,} "
            f"counted per module ({summary.shared_params:,} more: tied weights, or identical "
            "tensors the exporter stored once)"
        )
    return text


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
    cols = _check_columns(columns)
    rows = summary_rows(summary, depth)
    body = [_cells(r, cols, indent=True) for r in rows]
    if times:
        from exportkit.report.variants import time_columns

        cols, body = time_columns(
            cols, body, [r.path if r.kind == "module" else None for r in rows], times
        )
    if color:
        return _rich_table(summary, cols, body, rows, width)
    lines = [f"{label + ':':<13}{value}" for label, value in _facts(summary)]
    lines.append("")
    lines.extend(_plain_grid(cols, body))
    lines.append("")
    lines.extend(f"{label + ':':<13}{value}" for label, value in _totals(summary))
    lines.extend(f"warning: {w}" for w in summary.warnings)
    return "\n".join(lines) + "\n"


def _plain_grid(cols: Sequence[str], body: list[list[str]]) -> list[str]:
    headers = [_HEADERS[c] for c in cols]
    widths = [max([len(h), *(len(r[i]) for r in body)]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        parts = [
            c.rjust(w) if col in _NUMERIC else c.ljust(w)
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
    for label, value in _facts(summary):
        facts.add_row(label, value)
    console.print(facts)
    table = Table(show_lines=False, header_style="bold")
    for col in cols:
        table.add_column(_HEADERS[col], justify="right" if col in _NUMERIC else "left")
    for row, cells in zip(rows, body, strict=True):
        table.add_row(*cells, style="bold" if row.kind == "module" and row.level <= 1 else None)
    console.print(table)
    totals = Table.grid(padding=(0, 2))
    totals.add_column(style="bold")
    totals.add_column()
    for label, value in _totals(summary):
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
    cols = _check_columns(columns)
    rows = summary_rows(summary, depth)

    def esc(text: str) -> str:
        return text.replace("|", "\\|")

    lines = [f"- **{label}**: {esc(value)}" for label, value in _facts(summary)]
    lines.append("")
    lines.append("| " + " | ".join(_HEADERS[c] for c in cols) + " |")
    lines.append("|" + "|".join("---:" if c in _NUMERIC else "---" for c in cols) + "|")
    for r in rows:
        cells = _cells(r, cols, indent=False)
        if "name" in cols:
            i = cols.index("name")
            cells[i] = ("&nbsp;" * 2 * r.level) + (
                f"`{cells[i]}`" if r.kind == "node" else cells[i]
            )
        lines.append("| " + " | ".join(esc(c) for c in cells) + " |")
    lines.append("")
    lines.extend(f"- **{label}**: {esc(value)}" for label, value in _totals(summary))
    lines.extend(f"- **Warning**: {esc(w)}" for w in summary.warnings)
    return "\n".join(lines) + "\n"


def render_csv(
    summary: GraphSummary, *, depth: int | None = None, columns: Sequence[str] | None = None
) -> str:
    """One CSV row per tree row: ``level,kind`` then the chosen columns, plain numbers.

    Names are full module paths or node names; unknown MACs are empty cells.
    """
    cols = _check_columns(columns)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["level", "kind", *cols])
    for r in summary_rows(summary, depth):
        cells = _cells(r, cols, indent=False)
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
    cols = _check_columns(columns)
    e = html.escape
    parts = ["<div class='exportkit-summary'>", "<table>"]
    parts += [f"<tr><th style='text-align:left'>{e(k)}</th><td>{e(v)}</td></tr>"
              for k, v in _facts(summary)]  # fmt: skip
    parts.append("</table><table><thead><tr>")
    parts += [f"<th>{e(_HEADERS[c])}</th>" for c in cols]
    parts.append("</tr></thead><tbody>")
    for r in summary_rows(summary, depth):
        cells = _cells(r, cols, indent=False)
        tds = []
        for col, cell in zip(cols, cells, strict=True):
            if col == "name":
                text = r.name
                style = f"text-align:left;padding-left:{0.3 + 1.2 * r.level:.1f}em"
                cell_html = f"<code>{e(text)}</code>" if r.kind == "node" else f"<b>{e(text)}</b>"
                tds.append(f"<td style='{style}' title='{e(r.path)}'>{cell_html}</td>")
            else:
                align = "right" if col in _NUMERIC else "left"
                tds.append(f"<td style='text-align:{align}'>{e(cell)}</td>")
        parts.append("<tr>" + "".join(tds) + "</tr>")
    parts.append("</tbody></table><table>")
    parts += [f"<tr><th style='text-align:left'>{e(k)}</th><td>{e(v)}</td></tr>"
              for k, v in _totals(summary)]  # fmt: skip
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
