"""A pipeline Report -> terminal text and JSON (versioned); JUnit XML is report/junit.py."""

from __future__ import annotations

import json
import math
import shlex
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from exportkit.report.jsondoc import to_jsonable

if TYPE_CHECKING:
    from exportkit.results import Report
    from exportkit.validate import Divergence, Parity, Trial, ValidationResult

__all__ = [
    "render_json",
    "render_text",
    "to_jsonable",
    "verdict_reason",
]


def render_json(report: Report) -> str:
    """The whole report as JSON; ``schema_version`` comes first."""
    data = to_jsonable(report)
    _module_times(data, report)
    unproven = list(report.validation.unproven) if report.validation is not None else []
    data = {
        "schema_version": data.pop("schema_version"),
        "passed": report.passed,
        "unproven": unproven,
        **data,
    }
    return json.dumps(data, indent=2) + "\n"


def _module_times(data: dict[str, Any], report: Report) -> None:
    """``--profile``: each summary module gains ``time_ms`` (onnxruntime) and ``eager_ms``."""
    from exportkit.report.variants import summary_times

    times = summary_times(report.variants)
    summary = data.get("summary")
    if not times or not isinstance(summary, dict):
        return
    for module in summary.get("modules", ()):
        if module.get("path") in times:
            module["time_ms"], module["eager_ms"] = times[module["path"]]


def _shape(shape: tuple[int, ...], dynamic: Mapping[int, str]) -> str:
    return (
        " x ".join(dynamic.get(i, str(d)) if i in dynamic else str(d) for i, d in enumerate(shape))
        or "scalar"
    )


def _case_text(trial: Trial) -> str:
    shapes = ", ".join(
        f"{n} {'x'.join(map(str, s)) or 'scalar'}" for n, s in trial.input_shapes.items()
    )
    return f"{trial.label} [{shapes}]"


def _table(rows: Sequence[Sequence[str]], numeric: Sequence[bool]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            c.rjust(w) if num else c.ljust(w) for c, w, num in zip(r, widths, numeric)
        ).rstrip()
        for r in rows
    ]


def render_validation(result: ValidationResult) -> str:
    """One row per output with its worst case, then what failed in which case and why."""
    trials = result.trials
    cases = ", ".join(t.label for t in trials)
    lines = [f"validation  onnxruntime vs eager PyTorch, {len(trials)} cases: {cases}"]
    rows = [
        [
            "  output",
            "dtype",
            "max abs",
            "max rel",
            "mean abs",
            "out of tol",
            "atol",
            "rtol",
            "passes at atol",
            "verdict",
        ]
    ]
    for name, check in result.worst().items():
        exact = check.atol == 0 and check.rtol == 0
        rows.append(
            [
                f"  {name}",
                check.dtype,
                f"{check.max_abs:.2e}",
                "" if exact else f"{check.max_rel:.2e}",
                f"{check.mean_abs:.2e}",
                f"{check.frac_out:.2%}",
                "exact" if exact else f"{check.atol:g}",
                "" if exact else f"{check.rtol:g}",
                "" if exact else f"{check.atol_needed:.1e}",
                "FAIL" if not check.passed else "unproven" if name in result.unproven else "ok",
            ]
        )
    if len(rows) > 1:
        lines += _table(rows, [False, False, True, True, True, True, True, True, True, False])
    warned: set[tuple[str, str]] = set()
    for trial in trials:
        for check in trial.outputs:
            for w in check.warnings:
                if (check.name, w) not in warned:
                    warned.add((check.name, w))
                    lines.append(f"  ~ {check.name}: {w}")
    lines += _unproven_lines(result)
    for trial in trials:
        if trial.passed:
            continue
        lines.append(f"  FAIL {_case_text(trial)}")
        if trial.error:
            lines.append(f"       {trial.error}")
        for check in trial.outputs:
            for f in check.findings:
                lines.append(f"       {check.name}: {f} (max abs {check.max_abs:.2e})")
    lines += _magnitude_lines(result)
    return "\n".join(lines)


def _unproven_lines(result: ValidationResult) -> list[str]:
    """Outputs whose check could not have failed, why, and what to do about it."""
    lines = []
    for name in result.unproven:
        checks = [c for t in result.trials for c in t.outputs if c.name == name]
        if all(c.constant for c in checks):
            why = "constant in every case"
        elif all(math.prod(c.shape) == 0 for c in checks):
            why = "empty in every case"
        else:
            magnitude = max(c.magnitude for c in checks)
            own = max(c.max_abs / c.magnitude if c.magnitude else 0.0 for c in checks)
            why = (
                f"every value within atol {checks[0].atol:g} of zero (max |value| "
                f"{magnitude:.2g}); at its own scale the values differ by up to {own:.1e} of "
                "their magnitude, as rounding residue may"
            )
        lines.append(f"  UNPROVEN {name}: {why}; its check could not have failed")
    if result.unproven:
        lines.append(
            "  hint: check with real weights (--weights FILE), or calibrate the normalization "
            "statistics (run real batches in train mode) before exporting"
            + ("" if result.strict else "; --strict makes unproven outputs fail")
        )
    return lines


def _magnitude_lines(result: ValidationResult) -> list[str]:
    """For an output that fails only at elements far below its magnitude: say so."""
    lines = []
    for name, check in result.worst().items():
        large = check.magnitude > 1 and check.max_abs <= check.atol + check.rtol * check.magnitude
        if check.passed or not large:
            continue
        lines.append(
            f"  ~ {name}: values reach {check.magnitude:.2g}; its largest difference "
            f"({check.max_abs:.2g}) is {check.max_abs / check.magnitude:.1e} of that: the failure "
            "is relative error on values of that magnitude, at elements much smaller"
        )
        lines.append(
            "    hint: random weights without trained normalization reach such values; try real "
            f"weights (--weights FILE), or --rtol/--atol (it passes at --atol {check.atol_needed:.1e})"
        )
    return lines


def render_divergence(div: Divergence) -> list[str]:
    """Where the export first departs from PyTorch, as report lines."""
    lines = [f"diverges  at {div.describe()}", f"          {div.detail}"]
    facts = [f"trial: {div.trial}"]
    if div.onnx_node:
        op = f" ({div.onnx_op})" if div.onnx_op else ""
        facts.append(f"ONNX node: {div.onnx_node}{op}")
    if div.kind == "values":
        facts.append(f"the {div.matched} modules compared before it matched")
    lines.append(f"          ({'; '.join(facts)})")
    return lines


def parity_word(ok: bool | None, result: ValidationResult | None) -> str:
    """How a file compares with PyTorch: ``match``, ``MISMATCH``, ``unproven (--strict)`` (within
    tolerance, failed only because an output could not have failed), ``not checked``."""
    if ok is None:
        return "not checked"
    if not ok and result is not None:
        return result.verdict
    return "match" if ok else "MISMATCH"


def render_parity(
    parity: Parity,
    raw: ValidationResult | None = None,
    simplified: ValidationResult | None = None,
) -> list[str]:
    """PyTorch vs raw export vs simplified: which step drifted and which file was kept."""
    drift = {
        "none": "no drift",
        "model": "PyTorch itself fails at some sizes (not an export drift)",
    }.get(parity.drift, f"drift caused by the {parity.drift}")
    return [
        f"parity    PyTorch vs export: {parity_word(parity.exported, raw)}; "
        f"PyTorch vs simplified: {parity_word(parity.simplified, simplified)}; {drift}",
        f"          kept the {parity.kept} file: {parity.reason}",
    ]


def _params_note(report: Report) -> list[str]:
    """The file's parameter count next to PyTorch's, and why they differ."""
    file_params = getattr(report.summary, "params", None)
    if report.torch_params is None or file_params is None or file_params == report.torch_params:
        return []
    shared = getattr(report.summary, "shared_params", 0)
    why = []
    if shared:
        why.append(f"the file stores a tensor read by several modules once ({shared:,} elements "
                   "counted again per module: tied weights, or identical tensors such as fresh "
                   "norm weights the exporter deduplicated)")  # fmt: skip
    if file_params + shared != report.torch_params:
        why.append("the exporter folded, added or copied constants (e.g. BatchNorm into Conv, "
                   "GroupNorm's scale and bias, a transposed tied weight)")  # fmt: skip
    return [f"params    PyTorch {report.torch_params:,}, the file {file_params:,}: "
            + "; ".join(why)]  # fmt: skip


def render_text(report: Report, *, summary: str | None = None) -> str:
    """The report for a terminal: inputs, export, simplification, validation, summary, verdict."""
    lines = [f"model     {report.model}"]
    for info in report.inputs:
        lines.append(f"input     {info.name}: {_shape(info.shape, info.dynamic)} {info.dtype}")
    lines += [f"note      {n}" for n in report.input_notes]
    if report.input_source != "given" and report.input_lines:
        pinned = " ".join(f"--input {shlex.quote(line)}" for line in report.input_lines)
        lines.append(f"inputs    {report.input_source}; to pin them: {pinned}")
    if report.export is not None:
        ex = report.export
        lines.append(f"exporter  {ex.exporter} (opset {ex.opset})")
        for a in ex.attempts:
            if not a.ok:
                lines.append(f"          {a.exporter} failed: {a.error}")
        for fd in ex.frozen_dims:
            lines.append(
                f"FROZEN    {fd.input} dim {fd.axis} ({fd.label}) was asked to be dynamic but was "
                f"exported as fixed size {fd.size}"
            )
    if report.simplify is not None:
        s = report.simplify
        verdict = "kept" if s.kept else f"not kept: {s.reason}"
        lines.append(f"simplify  {s.simplifier}, {verdict}")
        if s.ops_before:
            from exportkit.report.comparison import render_comparison
            from exportkit.summary.histogram import compare_histograms

            comparison = compare_histograms(
                s.ops_before, s.ops_after, before_bytes=s.bytes_before, after_bytes=s.bytes_after
            )
            lines += [f"          {line}" for line in render_comparison(comparison).splitlines()]
    if summary:
        lines += ["", summary.rstrip()]
    lines += _params_note(report)
    if report.validation is not None:
        lines += ["", render_validation(report.validation)]
    if report.parity is not None:
        lines += [
            "",
            *render_parity(report.parity, report.validation_raw, report.validation_simplified),
        ]
    shown = []
    for which, result in (
        ("export", report.validation_raw or report.validation),
        ("simplified file", report.validation_simplified),
    ):
        if result is not None and result.divergence is not None and result.divergence not in shown:
            shown.append(result.divergence)
            lines += ["", f"where the {which} diverges from PyTorch"]
            lines += render_divergence(result.divergence)
    if report.steps or report.state_pairs:
        from exportkit.report.steps import render_steps

        lines += ["", *render_steps(report.state_pairs, report.steps, report.prefill)]
    if report.variants:
        from exportkit.report.variants import render_variants

        lines += ["", *render_variants(report.variants)]
    if report.baseline:
        lines += ["", f"baseline  {report.baseline_path}"]
        lines += [
            f"  {'ok  ' if r.passed else 'FAIL'}  {r.rule}: {r.detail}" for r in report.baseline
        ]
    lines.append("")
    if report.cached:
        lines.append(
            "cached    unchanged since a passing run: files and report restored (--no-cache runs it again)"
        )
    lines.append(f"files     {', '.join(str(f) for f in report.files)}")
    lines.append(f"verdict   {'PASS' if report.passed else 'FAIL'}{_unproven_note(report)}")
    return "\n".join(lines) + "\n"


def verdict_reason(report: Report) -> str:
    """Why a run failed, in one line: the failing outputs and cases, where it diverges."""
    reasons = []
    result = report.validation
    if result is not None:
        failed = [
            f"{check.name} ({trial.label})"
            for trial in result.trials
            for check in trial.outputs
            if not check.passed
        ]
        errors = [f"{t.label}: {t.error}" for t in result.trials if t.error]
        if failed:
            more = f" and {len(failed) - 3} more" if len(failed) > 3 else ""
            reasons.append(f"outputs differ from PyTorch: {', '.join(failed[:3])}{more}")
        reasons += errors[:1]
        if result.divergence is not None:
            reasons.append(f"first diverges at {result.divergence.describe()}")
        if result.unproven and result.strict:
            reasons.append(f"--strict: unproven outputs {', '.join(result.unproven)}")
    if report.export is not None:
        reasons += [
            f"{fd.input} dim {fd.axis} ({fd.label}) exported as fixed size {fd.size}"
            for fd in report.export.frozen_dims
        ]
    if report.steps:
        from exportkit.report.steps import steps_reason

        reasons += steps_reason(report.steps, report.prefill)
    if report.variants:
        from exportkit.report.variants import variants_reason

        reasons += variants_reason(report.variants)
    reasons += [f"baseline {r.rule}: {r.detail}" for r in report.baseline if not r.passed]
    if report.output is not None and report.target is not None and report.output != report.target:
        reasons.append(f"failing file kept as {report.output}; {report.target} not changed")
    return "; ".join(reasons) or "see the report"


def _unproven_note(report: Report) -> str:
    validation = report.validation
    if validation is None or not validation.unproven:
        return ""
    strict = " (--strict)" if validation.strict else ""
    return f", unproven{strict}: {', '.join(validation.unproven)}"
