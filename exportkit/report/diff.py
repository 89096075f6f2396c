"""DiffResult -> terminal table, JSON or Markdown (pure functions returning str).

The tree marks each module row: ``~`` changed, ``+`` only in B, ``-`` only in A, ``w`` same
structure but weights changed. Markdown shows only changed rows and their parents, to fit a
pull-request comment.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from exportkit.diff.results import DiffResult, ModuleChange, TensorChange
from exportkit.report.jsondoc import SCHEMA_VERSION, dump_document, fields_of
from exportkit.report.text import format_count, format_tensor
from exportkit.summary.histogram import OpCountChange

__all__ = [
    "FORMATS",
    "render_diff",
    "render_html",
    "render_json",
    "render_markdown",
    "render_table",
]

Format = Literal["table", "json", "markdown"]
FORMATS: tuple[str, ...] = ("table", "json", "markdown")
_HEADERS = ("", "Module", "Type", "Nodes", "Params", "MACs", "Op changes", "Weights")
_NUMERIC = frozenset({3, 4, 5})
_MARK = {"same": " ", "changed": "~", "added": "+", "removed": "-"}


def verdict(result: DiffResult) -> str:
    """``equivalent`` or ``differ: contract, structure, numbers``."""
    if result.equivalent:
        return "equivalent"
    parts = []
    if not result.contract.same:
        parts.append("contract")
    if not result.structure.same:
        parts.append("structure")
    if result.weights is not None and not result.weights.same:
        parts.append("weights")
    if result.numbers is not None and not result.numbers.passed:
        parts.append("numbers")
    return "differ: " + ", ".join(parts)


def _pair(a: Any, b: Any, fmt: Callable[[Any], str] = str) -> str:
    if a == b:
        return fmt(a)
    return f"{fmt(a)} -> {fmt(b)}"


def _count(n: int | None) -> str:
    return "?" if n is None else f"{n:,}"


def _macs(n: int | None) -> str:
    return "?" if n is None else ("--" if n == 0 else format_count(n))


def _ops(ops: Sequence[OpCountChange], limit: int = 4) -> str:
    parts = [f"{c.op_type} {c.delta:+d}" for c in ops[:limit]]
    if len(ops) > limit:
        parts.append(f"+{len(ops) - limit} more")
    return ", ".join(parts)


def _mark(m: ModuleChange) -> str:
    if m.status == "same" and m.weights_changed:
        return "w"
    return _MARK[m.status]


def _rows(result: DiffResult, changed_only: bool) -> list[tuple[ModuleChange, list[str]]]:
    modules = result.structure.modules
    keep: dict[str, bool] = {}
    for m in reversed(modules):  # pre-order reversed: children first
        own = m.status != "same" or bool(m.weights_changed)
        keep[m.path] = own or any(keep.get(c, False) for c in m.children)
    out = []
    root = Path(result.b).name
    for m in modules:
        if changed_only and m.path and not keep[m.path]:
            continue
        name = ("  " * m.depth) + (m.path.rpartition(".")[2] if m.path else root)
        cls = (m.class_name or "").rsplit(".", 1)[-1]
        weights = f"{m.weights_changed} changed" if m.weights_changed else ""
        cells = [
            _mark(m), name, cls, _pair(m.nodes[0], m.nodes[1], _count),
            _pair(m.params[0], m.params[1], _count), _pair(m.macs[0], m.macs[1], _macs),
            _ops(m.ops), weights,
        ]  # fmt: skip
        out.append((m, cells))
    return out


def _grid(body: list[list[str]]) -> list[str]:
    widths = [max([len(h), *(len(r[i]) for r in body)]) for i, h in enumerate(_HEADERS)]

    def line(cells: Sequence[str]) -> str:
        parts = [c.rjust(w) if i in _NUMERIC else c.ljust(w)
                 for i, (c, w) in enumerate(zip(cells, widths, strict=True))]  # fmt: skip
        return "  ".join(parts).rstrip()

    rule = "=" * (sum(widths) + 2 * (len(widths) - 1))
    return [rule, line(_HEADERS), rule, *(line(r) for r in body), rule]


def _tensor_lines(changes: Sequence[TensorChange]) -> list[str]:
    out = []
    for t in changes:
        if t.status == "same":
            continue
        if t.status == "added":
            assert t.b is not None
            out.append(f"{t.kind} added: {format_tensor(t.b)}")
        elif t.status == "removed":
            assert t.a is not None
            out.append(f"{t.kind} removed: {format_tensor(t.a)}")
        else:
            out.append(f"{t.kind} {t.name}: " + "; ".join(t.findings))
    return out


def _facts(result: DiffResult) -> list[tuple[str, str]]:
    c = result.contract
    facts = [("A", result.a), ("B", result.b), ("Verdict", verdict(result))]
    lines = _tensor_lines(c.inputs) + _tensor_lines(c.outputs)
    for domain, (va, vb) in c.opsets.items():
        if va != vb:
            lines.append(f"opset {domain}: {'-' if va is None else va} -> "
                         f"{'-' if vb is None else vb}")  # fmt: skip
    if c.ir_version[0] != c.ir_version[1]:
        lines.append(f"IR version {c.ir_version[0]} -> {c.ir_version[1]}")
    facts.append(("Contract", "same inputs, outputs, opsets and IR version" if c.same else
                   f"{len(lines)} change{'s' if len(lines) != 1 else ''}"))  # fmt: skip
    facts += [("", line) for line in lines]
    if c.producer[0] != c.producer[1]:
        facts.append(("Producer", _pair(c.producer[0] or "?", c.producer[1] or "?")))
    s = result.structure
    text = f"nodes {_pair(s.node_count[0], s.node_count[1], _count)}"
    if s.ops:
        text += f"; ops {_ops(s.ops, 8)}"
    changed = [m.path or "(root)" for m in s.changed]
    if changed:
        text += f"; modules changed: {', '.join(changed[:8])}"
        text += f", +{len(changed) - 8} more" if len(changed) > 8 else ""
    facts.append(("Structure", ("same; " if s.same else "") + text))
    if s.note:
        facts.append(("", s.note))
    if s.unbound:
        names = ", ".join(s.unbound)
        facts.append(("", f"MACs marked ? depend on {names}: --dim {s.unbound[0]}=1 counts them"))
    facts += _weight_facts(result) + _number_facts(result)
    return facts


def _weight_facts(result: DiffResult) -> list[tuple[str, str]]:
    w = result.weights
    if w is None:
        return [("Weights", "not compared")]
    if w.same:
        return [("Weights", f"all {w.equal:,} equal")]
    kinds = [c.status for c in w.weights]
    how = ", ".join(
        f"{kinds.count(status):,} {label}"
        for status, label in (
            ("changed", "changed"),
            ("removed", "only in A"),
            ("added", "only in B"),
        )
        if status in kinds
    )
    where = ", ".join(m or "every module" for m in w.changed_modules) or "?"
    facts = [("Weights", f"{w.changed:,} of {w.changed + w.equal:,} differ ({how}); in: {where}")]
    for c in [c for c in w.weights if c.status != "equal"][:10]:
        name = c.name if c.other is None else f"{c.name} / {c.other}"
        what = c.status if c.max_abs is None else f"max abs diff {c.max_abs:.3g}"
        if c.dtype[0] != c.dtype[1] and c.dtype[0] and c.dtype[1]:
            what += f", {c.dtype[0]} -> {c.dtype[1]}"
        facts.append(("", f"{name} ({c.module or 'root'}): {what}"))
    return facts


def _number_facts(result: DiffResult) -> list[tuple[str, str]]:
    n = result.numbers
    if n is None:
        return [("Numbers", "not compared")]
    facts = [("Inputs", " ".join(f"--input {line}" for line in n.inputs))]
    if n.error:
        return [*facts, ("Numbers", n.error)]
    facts.append(("Numbers", "outputs within tolerance" if n.passed else "outputs differ"))
    for o in n.outputs:
        state = "ok" if o.passed else "DIFFERS"
        facts.append(("", f"{o.name}: {state}, max abs diff {o.max_abs:.3g} "
                      f"(atol {o.atol:g}, rtol {o.rtol:g})"))  # fmt: skip
    if n.first_module is not None and n.first_check is not None:
        facts.append(("First diff", f"{n.first_module} (value {n.first_value}, max abs diff "
                      f"{n.first_check.max_abs:.3g})"))  # fmt: skip
    return facts


def render_table(result: DiffResult, *, changed_only: bool = False) -> str:
    """The terminal view: verdict, contract, the module tree side by side, weights, numbers."""
    lines = [f"{label + ':' if label else '':<14}{value}" for label, value in _facts(result)]
    lines.append("")
    lines.extend(_grid([cells for _, cells in _rows(result, changed_only)]))
    lines.append("marks: ~ changed, + only in B, - only in A, w weights changed; "
                 "values are A -> B where they differ")  # fmt: skip
    return "\n".join(lines) + "\n"


def render_markdown(result: DiffResult, *, changed_only: bool = True) -> str:
    """A pull-request comment: verdict first, facts as a list, changed modules as a table."""

    def esc(text: str) -> str:
        return text.replace("|", "\\|")

    head = "equivalent" if result.equivalent else "differ"
    lines = [f"### exportkit diff: {head}", ""]
    for label, value in _facts(result):
        lines.append(f"- **{label}**: {esc(value)}" if label else f"  - {esc(value)}")
    rows = _rows(result, changed_only)
    if len(rows) > 1 or not changed_only:
        lines += ["", "| | " + " | ".join(_HEADERS[1:]) + " |",
                  "|---|---|---|---:|---:|---:|---|---|"]  # fmt: skip
        for m, cells in rows:
            cells = list(cells)
            cells[1] = "&nbsp;" * 2 * m.depth + (f"`{m.path}`" if m.path else Path(result.b).name)
            cells[0] = f"`{cells[0]}`" if cells[0].strip() else ""
            lines.append("| " + " | ".join(esc(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


_STYLE = (
    "body{font:14px system-ui,sans-serif;margin:2em;color:#222}"
    "table{border-collapse:collapse}td,th{padding:2px 10px;text-align:left}"
    "td.n{text-align:right;font-variant-numeric:tabular-nums}tr.changed{background:#fff3cd}"
    "tr.added{background:#d4edda}tr.removed{background:#f8d7da}tr.weights{background:#e8f0fe}"
    "h1.equivalent{color:#1a7f37}h1.differ{color:#cf222e}dt{font-weight:600}dd{margin:0 0 .4em 1.5em}"
)


def render_html(result: DiffResult, *, changed_only: bool = False) -> str:
    """One self-contained page (no script, nothing fetched): verdict, facts, the module tree
    side by side with changed rows coloured."""
    from html import escape as e

    head = "equivalent" if result.equivalent else "differ"
    facts = "".join(
        (f"<dt>{e(label)}</dt>" if label else "") + f"<dd>{e(value)}</dd>"
        for label, value in _facts(result)
    )
    rows = []
    for m, cells in _rows(result, changed_only):
        kind = "weights" if _mark(m) == "w" else m.status
        tds = "".join(
            f"<td class='n'>{e(c)}</td>" if i in _NUMERIC else f"<td>{e(c)}</td>"
            for i, c in enumerate(cells)
        )
        rows.append(f"<tr class='{kind}'>{tds.replace('<td>  ', '<td>&nbsp;&nbsp;')}</tr>")
    header = "".join(f"<th>{e(h)}</th>" for h in _HEADERS)
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>exportkit diff: {head}</title>"
        f"<style>{_STYLE}</style></head><body><h1 class='{head}'>exportkit diff: {head}</h1>"
        f"<dl>{facts}</dl><table><tr>{header}</tr>{''.join(rows)}</table>"
        "<p>marks: ~ changed, + only in B, - only in A, w weights changed; values are A -&gt; B "
        "where they differ</p></body></html>\n"
    )


def render_json(result: DiffResult) -> str:
    """Every field of the DiffResult, with ``schema_version``, ``kind`` and ``equivalent``."""
    doc: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "kind": "exportkit.diff"}
    doc["equivalent"] = result.equivalent
    doc["verdict"] = verdict(result)
    doc.update(fields_of(result))
    return dump_document(doc)


def render_diff(result: DiffResult, fmt: Format = "table") -> str:
    """Render in one of ``FORMATS``; the CLI's single entry point."""
    if fmt == "table":
        return render_table(result)
    if fmt == "json":
        return render_json(result)
    if fmt == "markdown":
        return render_markdown(result)
    raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")
