"""An exporter's failure in one line: the telling line of pages of trace, the operator, a hint."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from exportkit.export.results import ExportAttempt
from exportkit.inputs import ExampleInputs
from exportkit.opsets import Exporter

if TYPE_CHECKING:
    from torch import nn

__all__ = ["detail", "failed_attempt", "hint"]

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_NO_FUNCTION = re.compile(
    r"No ONNX function found for <OpOverload\(op='([^']+)', overload='([^']+)'\)>"
)
_TS_NAMESPACE = re.compile(r"unrecognized namespace ([\w.]+::\w+)")
_TS_UNSUPPORTED = re.compile(r"Exporting the operator '([^']+)' to ONNX opset version (\d+)")
_SPECIALIZED = re.compile(r"static shape of (\d+) for dimension inputs\['(\w+)'\]\.shape\[(\d+)\]")
_SUMMARY_LINE = re.compile(r"^<class '([\w.]+)'>: (.*)$")


def _texts(exc: BaseException) -> list[str]:
    """The messages of an exception and its causes, outermost first, without color codes."""
    out = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        out.append(_ANSI.sub("", str(current)).strip())
        current = current.__cause__ or current.__context__
    return out


def _failure(exc: BaseException) -> tuple[str, str | None]:
    """The most telling line of an exporter failure (they run to pages), and the operator."""
    texts = _texts(exc)
    lines = [ln.strip() for t in texts for ln in t.splitlines() if ln.strip()]
    for text in texts:
        found = _NO_FUNCTION.search(text)
        if found:
            op = f"{found.group(1)}.{found.group(2)}"
            return f"unsupported operator {op}: the exporter has no ONNX translation for it", op
        found = _TS_NAMESPACE.search(text)
        if found:
            op = found.group(1)
            return f"unsupported operator {op}: no ONNX symbolic is registered for it", op
        found = _TS_UNSUPPORTED.search(text)
        if found:
            op = found.group(1)
            return f"unsupported operator {op}: not supported at opset {found.group(2)}", op
    for ln in lines:
        found = _SPECIALIZED.search(ln)
        if found:
            size, name, axis = found.groups()
            return (
                f"{name} dim {axis} was asked to be dynamic, but the model fixes it at {size} "
                "(tracing inferred a static shape)"
            ), None
    for ln in lines:
        if "Unsupported" in ln or "not supported" in ln or "No decompositions" in ln:
            return ln, None
    for ln in lines:  # the dynamo exporter's "## Exception summary" names the root cause
        found = _SUMMARY_LINE.match(ln)
        if found:
            return f"{found.group(1).rpartition('.')[2]}: {found.group(2)}", None
    innermost = [ln for ln in texts[-1].splitlines() if ln.strip()] if texts else []
    return (innermost[0].strip() if innermost else type(exc).__name__), None


def failed_attempt(
    module: nn.Module, inputs: ExampleInputs, which: str, start: float, exc: Exception
) -> ExportAttempt:
    """Record a failure: its telling line, the operator, and where the model calls it."""
    from exportkit.diagnose import locate_op

    seconds = time.perf_counter() - start
    line, op = _failure(exc)
    where = locate_op(module, inputs, op) if op else None
    if where is not None:
        line = f"{line}; used in {where.describe()}"
    return ExportAttempt(which, False, seconds, line, op, where)


def detail(attempts: Sequence[ExportAttempt]) -> str:
    return "; ".join(f"{a.exporter}: {a.error}" for a in attempts)


def hint(exporter: Exporter, attempts: Sequence[ExportAttempt]) -> str:
    ops = {a.operator for a in attempts if a.operator}
    if exporter != "auto":
        other = "torchscript" if exporter == "dynamo" else "dynamo"
        return f"try --exporter {other}, or another --opset (e.g. --opset 18)"
    if any(not op.startswith(("aten", "prim")) for op in ops):
        return (
            f"custom operator ({', '.join(sorted(ops))}): give it an ONNX translation "
            "(torch.onnx.export's custom_translation_table for dynamo, "
            "torch.onnx.register_custom_op_symbolic for TorchScript), or implement it with "
            "standard torch ops"
        )
    if ops:
        return (
            f"no exporter converts {', '.join(sorted(ops))}: try another --opset, or replace that "
            "call in the model (a custom autograd Function with a symbolic, or an ONNX-friendly "
            "rewrite); --debug shows the exporters' full errors"
        )
    return "try another --opset, or rewrite the failing operation; --debug shows the full errors"
