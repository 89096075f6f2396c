"""Deployment variants -> the text matrix (one row per file and provider), JUnit test cases."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape, quoteattr

from exportkit.report.steps import agrees_word

if TYPE_CHECKING:
    from exportkit.variants import OutputMetrics, VariantResult, VariantStep

__all__ = [
    "render_variants",
    "summary_times",
    "time_columns",
    "variant_junit_cases",
    "variants_reason",
    "worst_text",
]


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.2f} {unit}"
        value /= 1024
    return f"{n} B"


def _ms(value: float | None) -> str:
    if value is None:
        return "--"
    return f"{value:.3f} ms" if value < 10 else f"{value:.1f} ms"


def _db(value: float) -> str:
    return "inf dB" if math.isinf(value) and value > 0 else f"{value:.1f} dB"


def worst_text(row: VariantResult) -> str:
    """The one metric that says most: max abs (tolerance-judged) or the lowest SQNR (int8);
    a failing chained step's when the export's cases pass."""
    if row.error:
        return row.error
    step = _failed_step(row)
    if step is not None and all(m.passed for m in row.metrics.values()):
        return f"chained step {step.step}: {_step_finding(step, row.judge)}"
    return _worst(list(row.metrics.values()), row.judge)


def _failed_step(row: VariantResult) -> VariantStep | None:
    return next((s for s in row.steps if not s.passed), None)


def _step_finding(step: VariantStep, judge: str) -> str:
    if step.error:
        return step.error
    failed = [m for m in step.outputs if not m.passed]
    if failed:
        return f"{failed[0].name}: {'; '.join(failed[0].findings) or 'values differ'}"
    if step.token_agreement is False and not step.token_tie:
        return "the greedy next token differs"
    return _worst(step.outputs, judge)


def _worst(metrics: Sequence[OutputMetrics], judge: str) -> str:
    if not metrics:
        return "--"
    if judge == "tolerance":
        worst = max(metrics, key=lambda m: (not m.passed, m.max_abs))
        return f"{worst.name}: max abs {worst.max_abs:.2e}"
    worst = min(metrics, key=lambda m: (m.passed, m.sqnr_db))
    text = f"{worst.name}: cos {worst.cosine:.4f}, SQNR {_db(worst.sqnr_db)}"
    if worst.top1 is not None:
        text += f", top-1 {worst.top1:.0%}"
    if worst.near_ties:
        text += f" ({worst.near_ties} near-tie{'s' if worst.near_ties > 1 else ''} not counted)"
    return text


def _provider(name: str) -> str:
    return name.removesuffix("ExecutionProvider")


def render_variants(rows: Sequence[VariantResult]) -> list[str]:
    """The matrix, then per variant how it was made, what was kept float32, where it diverges."""
    if not rows:
        return []
    chained = any(r.steps for r in rows)
    lines = [
        "variants  each file against eager PyTorch (float32) at the export's cases; "
        "latency at the export size"
        + ("; steps: chained decode steps, each file fed its own outputs" if chained else "")
    ]
    table = [
        ["  file", "provider", "verdict", "worst", "size", "p50", "p90", "vs eager", "peak mem"]
    ]
    if chained:
        table[0].insert(3, "steps")
    for r in rows:
        lat = r.latency_ms
        speed = r.speedup
        row_cells = [
            f"  {r.name}",
            _provider(r.provider),
            "pass" if r.passed else "FAIL",
            worst_text(r),
            _size(r.size_bytes) if r.size_bytes else "--",
            _ms(lat.p50 if lat else None),
            _ms(lat.p90 if lat else None),
            f"{speed:.2f}x" if speed is not None else "--",
            _size(lat.peak_memory_bytes) if lat and lat.peak_memory_bytes is not None else "--",
        ]
        if chained:
            row_cells.insert(3, _steps_cell(r))
        table.append(row_cells)
    widths = [max(len(t[i]) for t in table) for i in range(len(table[0]))]
    right = (False,) * (5 if chained else 4) + (True,) * 5  # text left, figures right
    for t in table:
        cells = (c.rjust(w) if r else c.ljust(w) for c, w, r in zip(t, widths, right))
        lines.append("  ".join(cells).rstrip())
    eager = next((r.eager_latency_ms for r in rows if r.eager_latency_ms), None)
    if eager is not None:
        threads = (
            f" ({eager.threads} thread{'s' if eager.threads != 1 else ''})" if eager.threads else ""
        )
        lines.append(f"  eager PyTorch{threads}: p50 {_ms(eager.p50)}, p90 {_ms(eager.p90)}")
    lines += _details(rows)
    return lines


def _steps_cell(row: VariantResult) -> str:
    if not row.steps:
        return "see steps" if row.name == "float" else "--"
    failed = _failed_step(row)
    return f"{len(row.steps)} pass" if failed is None else f"FAIL at {failed.step}"


def _step_lines(label: str, row: VariantResult) -> list[str]:
    """The variant's chained steps: one row each, then the first failing step."""
    out = [f"{label}: chained steps (prefill, then each fed its own outputs; eager its own)"]
    table = [["step", "past", "max abs diff", "worst", "token agrees", "verdict"]]
    for s in row.steps:
        agrees = agrees_word(s.token_agreement, s.token_tie)
        diff = "--" if math.isinf(s.max_abs_diff) else f"{s.max_abs_diff:.2e}"
        past = "--" if s.past_length is None else str(s.past_length)
        worst = s.error or _worst(s.outputs, row.judge)
        table.append([str(s.step), past, diff, worst, agrees, "pass" if s.passed else "FAIL"])
    widths = [max(len(t[i]) for t in table) for i in range(len(table[0]))]
    for t in table:
        cells = (c.ljust(w) if i == 3 else c.rjust(w) for i, (c, w) in enumerate(zip(t, widths)))
        out.append("      " + "  ".join(cells).rstrip())
    failed = _failed_step(row)
    if failed is not None:
        past = "" if failed.past_length is None else f" (past {failed.past_length})"
        where = f"; diverges at {failed.divergence.describe()}" if failed.divergence else ""
        if failed.accumulated:
            where = (
                "; run once on that step's own inputs it is within its marks: the difference "
                "is carried in the state, grown over the earlier steps"
            )
        out.append(
            f"{label}: step {failed.step}{past} fails first: "
            f"{_step_finding(failed, row.judge)}{where}"
        )
    return out


def _details(rows: Sequence[VariantResult]) -> list[str]:
    lines: list[str] = []
    floats = {r.provider: r for r in rows if r.name == "float"}
    for r in rows:
        label = f"  {r.name} ({_provider(r.provider)})"
        if r.name != "float" and r.path is not None:
            lines.append(f"{label}: {r.path}; {r.method}")
        for note in r.notes:
            lines.append(f"{label}: {note}")
        if r.blocked:
            kept = ", ".join(
                f"{b.node} ({b.op_type}) in {b.module or 'the model'}" for b in r.blocked
            )
            lines.append(f"{label}: kept in float32: {kept}")
        base = floats.get(r.provider)
        slower = (
            r.name != "float" and base is not None and r.latency_ms and base.latency_ms
            and r.latency_ms.p50 > base.latency_ms.p50 * 1.05
        )  # fmt: skip
        if slower and r.latency_ms and base and base.latency_ms:
            lines.append(
                f"{label}: SLOWER than the float file on this machine "
                f"(p50 {_ms(r.latency_ms.p50)} vs {_ms(base.latency_ms.p50)})"
            )
        if not r.passed:
            failed = [f for m in r.metrics.values() for f in m.findings[:2]]
            if failed:
                lines.append(f"{label}: FAIL: {'; '.join(failed[:3])}")
            if r.divergence is not None:
                d = r.divergence
                lines.append(f"{label}: first diverges at {d.describe()}: {d.detail}")
            lines.append(f"{label}: not a result; the float file stays the one to ship")
        if r.steps:
            lines += _step_lines(label, r)
        if r.module_times:
            lines += _times(label, r)
    return lines


def _times(label: str, row: VariantResult) -> list[str]:
    """The modules that take most of the time (top 8), onnxruntime beside eager PyTorch."""
    top = sorted((t for t in row.module_times if t.module), key=lambda t: -t.time_ms)[:8]
    out = [f"{label}: time by module (onnxruntime profiler, per call; eager PyTorch beside it)"]
    for t in top:
        eager = f", eager {_ms(t.eager_ms)}" if t.eager_ms is not None else ""
        out.append(f"      {t.module:<30} {_ms(t.time_ms):>10} {t.share:6.1%}{eager}")
    return out


def variants_reason(rows: Sequence[VariantResult]) -> list[str]:
    """Why failing variants fail, one phrase each (for the run's last line)."""
    out = []
    for r in rows:
        if r.passed:
            continue
        where = f", first diverges at {r.divergence.describe()}" if r.divergence else ""
        out.append(f"variant {r.name} ({_provider(r.provider)}) fails: {worst_text(r)}{where}")
    return out


def variant_junit_cases(model: str, rows: Sequence[VariantResult]) -> tuple[list[str], int]:
    """One JUnit test case per variant row; the number that failed."""
    cases, failures = [], 0
    for r in rows:
        name = quoteattr(f"variant {r.name} ({_provider(r.provider)})")
        head = f"  <testcase classname={quoteattr(model)} name={name}"
        if r.passed:
            cases.append(f"{head}/>")
            continue
        failures += 1
        body = [f"{r.path}: {r.method}", *r.notes]
        step = _failed_step(r)
        if step is not None:
            body.append(f"chained step {step.step} fails first: {_step_finding(step, r.judge)}")
        if r.divergence is not None:
            body.append(f"first diverges at {r.divergence.describe()}: {r.divergence.detail}")
        msg = quoteattr(worst_text(r))
        cases.append(
            f"{head}><failure message={msg}>{escape(chr(10).join(body))}</failure></testcase>"
        )
    return cases, failures


def summary_times(rows: Sequence[VariantResult]) -> dict[str, tuple[float, float | None]]:
    """``--profile`` on the float file (CPU): module path -> (onnxruntime ms, eager ms)."""
    row = next((r for r in rows if r.name == "float" and r.module_times), None)
    if row is None:
        return {}
    return {t.module: (t.time_ms, t.eager_ms) for t in row.module_times}


def time_columns(
    cols: Sequence[str],
    body: list[list[str]],
    paths: Sequence[str | None],
    times: Mapping[str, tuple[float, float | None]],
) -> tuple[tuple[str, ...], list[list[str]]]:
    """The summary table with a time column (ms and share of the model) and eager's beside it;
    ``paths`` holds each row's module path (None for node rows, left blank)."""
    total = times.get("", (0.0, None))[0] or 1.0
    out = []
    for cells, path in zip(body, paths):
        found = times.get(path) if path is not None else None
        if found is None:
            out.append([*cells, "", ""])
            continue
        ms, eager = found
        out.append(
            [*cells, f"{_ms(ms)} {ms / total:4.0%}", _ms(eager) if eager is not None else ""]
        )
    return (*cols, "time", "eager"), out
