"""What a summary table shows: its columns, the module and node rows, each cell, facts and totals.

The renderers in :mod:`exportkit.report.summary` lay these out as a table, Markdown, CSV or HTML.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from exportkit.onnxfile import op_key
from exportkit.report.text import format_bytes, format_count, format_shape, format_tensor
from exportkit.summary.results import GraphSummary, ModuleInfo, TensorInfo

__all__ = [
    "COLUMNS",
    "DEFAULT_COLUMNS",
    "HEADERS",
    "NUMERIC",
    "Row",
    "check_columns",
    "parse_columns",
    "row_cells",
    "summary_facts",
    "summary_rows",
    "summary_totals",
]

#: Every column a row can show, in display order.
COLUMNS: tuple[str, ...] = ("name", "type", "shape", "dtype", "params", "macs", "nodes")
DEFAULT_COLUMNS: tuple[str, ...] = ("name", "type", "shape", "dtype", "params", "macs")
HEADERS = {
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
NUMERIC = frozenset(("params", "macs", "nodes", "time", "eager"))
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


def row_cells(row: Row, columns: Sequence[str], *, indent: bool) -> list[str]:
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
    return check_columns([c.strip() for c in text.split(",") if c.strip()])


def check_columns(columns: Sequence[str] | None) -> tuple[str, ...]:
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


def summary_facts(summary: GraphSummary) -> list[tuple[str, str]]:
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


def summary_totals(summary: GraphSummary) -> list[tuple[str, str]]:
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
