"""Before/after of two graphs (e.g. around simplification): op counts and size, as text."""

from __future__ import annotations

from typing import Any, Literal

from exportkit.report.jsondoc import SCHEMA_VERSION, dump_document, fields_of
from exportkit.report.text import format_bytes
from exportkit.summary.histogram import GraphComparison

__all__ = ["render_comparison"]


def render_comparison(
    comparison: GraphComparison, format: Literal["table", "markdown", "json"] = "table"
) -> str:
    """Node counts per op type before and after (e.g. simplification), and the size change."""
    if format == "json":
        doc: dict[str, Any] = {"schema_version": SCHEMA_VERSION}
        doc["kind"] = "exportkit.graph_comparison"
        doc.update(fields_of(comparison))
        return dump_document(doc)
    c = comparison
    size = (
        f"{format_bytes(c.before_bytes)} -> {format_bytes(c.after_bytes)}"
        f" ({_pct(c.before_bytes, c.after_bytes)})"
    )
    nodes = f"{c.before_nodes:,} -> {c.after_nodes:,} ({_pct(c.before_nodes, c.after_nodes)})"
    changed = [op for op in c.ops if op.delta]
    same = len(c.ops) - len(changed)
    body = [[op.op_type, f"{op.before:,}", f"{op.after:,}", f"{op.delta:+,}"] for op in changed]
    if format == "markdown":
        lines = [f"- **Nodes**: {nodes}", f"- **Size**: {size}", ""]
        if body:
            lines += ["| Op | Before | After | Change |", "|---|---:|---:|---:|"]
            lines += ["| " + " | ".join(r) + " |" for r in body]
        if same:
            lines.append(f"\n{_op_types(same)} unchanged.")
        return "\n".join(lines) + "\n"
    lines = [f"Nodes: {nodes}", f"Size:  {size}"]
    if body:
        headers = ["Op", "Before", "After", "Change"]
        widths = [max(len(h), *(len(r[i]) for r in body)) for i, h in enumerate(headers)]
        fmt = [str.ljust, str.rjust, str.rjust, str.rjust]
        for r in [headers, *body]:
            lines.append("  ".join(f(x, w) for f, x, w in zip(fmt, r, widths, strict=True)))
    if same:
        lines.append(f"{_op_types(same)} unchanged")
    return "\n".join(lines) + "\n"


def _op_types(n: int) -> str:
    return "1 op type" if n == 1 else f"{n} op types"


def _pct(before: int, after: int) -> str:
    if before == 0:
        return "n/a"
    return f"{(after - before) / before * 100:+.1f}%"
