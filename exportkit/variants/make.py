"""The variant stage's verb: make each deployment file from the validated float file, validate it
against eager PyTorch at the export's cases, time it, and say where a failing one diverges."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from exportkit.errors import UsageError
from exportkit.inputs import ExampleInputs
from exportkit.perf import CPU, Latency, eager_latency, onnx_latency, resolve_providers
from exportkit.validate import Tolerances
from exportkit.variants.files import file_size
from exportkit.variants.metrics import FP16_TOLERANCES
from exportkit.variants.results import (
    Int8Mode,
    Judge,
    Made,
    Thresholds,
    VariantName,
    VariantResult,
    VariantTrial,
)
from exportkit.variants.runner import feeds, first_line, open_session, run_trials

if TYPE_CHECKING:
    from torch import nn

    from exportkit.validate import Case, Divergence

__all__ = ["VARIANTS", "judge_file", "make_variants"]

logger = logging.getLogger(__name__)

VARIANTS: tuple[VariantName, ...] = ("fp16", "int8", "ort-opt")


def _names(names: Sequence[str]) -> tuple[VariantName, ...]:
    out: list[VariantName] = []
    for name in names:
        found = next((v for v in VARIANTS if v == name.strip().lower()), None)
        if found is None:
            raise UsageError(
                f"unknown variant {name!r}; exportkit makes: {', '.join(VARIANTS)}",
                hint="write --variant fp16, --variant int8 or --variant ort-opt (repeatable)",
            )
        if found not in out:
            out.append(found)
    return tuple(out)


def _cases(model: nn.Module, given: Sequence[Case] | ExampleInputs) -> list[Case]:
    from exportkit.validate import make_cases

    if isinstance(given, ExampleInputs):
        return make_cases(model, given)
    return list(given)


def _build(
    name: VariantName,
    float_path: Path,
    cases: Sequence[Case],
    *,
    int8: Int8Mode,
    calibrate: str | None,
    thresholds: Thresholds,
    fp16_tolerances: Tolerances,
) -> Made:
    if name == "fp16":
        from exportkit.variants.fp16 import make_fp16

        return make_fp16(float_path, cases, fp16_tolerances)
    if name == "int8":
        from exportkit.variants.int8 import make_int8

        return make_int8(float_path, cases, mode=int8, calibrate=calibrate, thresholds=thresholds)
    from exportkit.variants.ortopt import make_ort_opt

    return make_ort_opt(float_path, cases, Tolerances())


def make_variants(
    float_path: str | Path,
    cases_or_inputs: Sequence[Case] | ExampleInputs,
    names: Sequence[str],
    *,
    model: nn.Module,
    int8: Int8Mode = "auto",
    calibrate: str | None = None,
    providers: Sequence[str] = (),
    thresholds: Thresholds | None = None,
    tolerances: Tolerances | None = None,
    latency: bool = True,
    profile: bool = False,
    budget_s: float = 1.0,
    locate: bool = True,
) -> tuple[VariantResult, ...]:
    """Make, validate and time each variant of the float file; the float file is the first row.

    Args:
        float_path: the final, validated float32 file; variants go beside it as
            ``<stem>.<variant>.onnx``.
        cases_or_inputs: the export's validation cases (or its example inputs, to make them).
        names: the variants to make: ``fp16``, ``int8``, ``ort-opt``.
        model: the eager PyTorch model (float32): the ground truth and the latency baseline.
        int8: ``dynamic`` (quantize_dynamic), ``static`` (QDQ, per-channel, calibrated) or
            ``auto`` (by what the graph holds).
        calibrate: a data file for static calibration (``data.npz``, ``NAME=FILE`` forms of
            ``--input``); else the cases' inputs.
        providers: execution providers besides CPU, each another row per file.
        thresholds: pass marks for int8 (cosine, SQNR, top-1).
        tolerances: allclose tolerances for fp16 and ort-opt files (default 1e-2/1e-2).
        latency: time each file and eager PyTorch at the export size.
        profile: onnxruntime's profiler per node, mapped to PyTorch modules.
        budget_s: seconds of timed runs per file (after warm-up).
        locate: name the first PyTorch module where a failing variant diverges.

    Returns:
        One row per file and provider: the float file, then each variant.

    Raises:
        UsageError: an unknown variant, or a provider that is not installed (exit 2).
    """
    float_path = Path(float_path)
    wanted = _names(names)
    provs = resolve_providers(providers)
    cases = _cases(model, cases_or_inputs)
    limits = thresholds or Thresholds()
    tol16 = tolerances or FP16_TOLERANCES
    float_tolerances = Tolerances()  # validate's dtype defaults, as the export was judged
    export_inputs = cases[0].inputs
    eager = eager_latency(model, export_inputs.tensors, budget_s=budget_s) if latency else None
    # Eager per-module times before any onnxruntime session exists (its threads spin after runs).
    threads = eager.threads if eager is not None else None
    eager_modules = _eager_modules(model, export_inputs, threads) if profile else None
    rows: list[VariantResult] = []
    for provider in provs:
        start = time.perf_counter()
        trials = run_trials(float_path, cases, provider=provider, tolerances=float_tolerances)
        row = _row("float", float_path, provider, "float32 (the validated export)", "tolerance",
                   trials, eager, start, inputs=export_inputs if latency else None,
                   budget_s=budget_s)  # fmt: skip
        if provider != CPU:
            row = replace(row, notes=_placement(float_path, provider, cases))
        rows.append(row)
    for name in wanted:
        start = time.perf_counter()
        try:
            made = _build(
                name, float_path, cases, int8=int8, calibrate=calibrate, thresholds=limits,
                fp16_tolerances=tol16,
            )  # fmt: skip
        except UsageError:
            raise
        except Exception as exc:
            logger.debug("variant %s failed", name, exc_info=True)
            error = f"could not make it: {first_line(exc)}"
            rows.append(VariantResult(name, None, CPU, False, "tolerance", error=error))
            continue
        for provider in provs:
            trials = made.trials
            if provider != CPU:
                trials = run_trials(made.path, cases, provider=provider,
                                    tolerances=made.tolerances, thresholds=made.thresholds)  # fmt: skip
            row = _row(name, made.path, provider, made.method, made.judge, trials, eager, start,
                       inputs=export_inputs if latency else None, budget_s=budget_s)  # fmt: skip
            notes = (
                made.notes
                if provider == CPU
                else (*made.notes, *_placement(made.path, provider, cases))
            )
            row = replace(row, blocked=made.blocked, notes=notes, thresholds=made.thresholds)
            if not row.passed and locate and provider == CPU:
                row = replace(row, divergence=_locate(model, float_path, made, cases))
            rows.append(row)
            start = time.perf_counter()
    if profile:
        rows = _profiled(rows, eager_modules or {}, export_inputs)
    return tuple(rows)


def _placement(path: Path, provider: str, cases: Sequence[Case]) -> tuple[str, ...]:
    """Which provider really ran the nodes (one profiled run); empty when it cannot run."""
    from exportkit.perf.profile import node_providers

    try:
        counts = node_providers(path, feeds(open_session(path, provider), cases[0].inputs),
                                provider=provider)  # fmt: skip
    except Exception:  # the row's own trials say why it cannot run
        return ()
    ran = counts.get(provider, 0)
    total = sum(counts.values())
    short = provider.removesuffix("ExecutionProvider")
    text = f"{short} ran {ran} of {total} nodes"
    if ran < total:
        text += "; the CPU provider ran the rest"
    return (text,)


def _eager_modules(
    model: nn.Module, inputs: ExampleInputs, threads: int | None
) -> dict[str, float]:
    from exportkit.perf.profile import eager_module_ms

    return eager_module_ms(model, inputs.tensors, threads=threads)


def _profiled(
    rows: Sequence[VariantResult], eager: dict[str, float], inputs: ExampleInputs
) -> list[VariantResult]:
    """Each file's time per PyTorch module (onnxruntime's profiler), eager's beside it."""
    from exportkit.perf.profile import module_times, onnx_module_ms, onnx_node_ms

    out = []
    for row in rows:
        if row.path is None or row.error is not None:
            out.append(row)
            continue
        sess = open_session(row.path, row.provider)
        nodes = onnx_node_ms(row.path, feeds(sess, inputs), provider=row.provider)
        times = module_times(onnx_module_ms(row.path, nodes), eager)
        out.append(replace(row, module_times=times))
    return out


def _row(
    name: VariantName,
    path: Path,
    provider: str,
    method: str,
    judge: Judge,
    trials: tuple[VariantTrial, ...],
    eager: Latency | None,
    start: float,
    *,
    inputs: ExampleInputs | None,
    budget_s: float,
) -> VariantResult:
    passed = bool(trials) and all(t.passed for t in trials)
    timing = None
    error = next((t.error for t in trials if t.label == "load" and t.error), None)
    if inputs is not None and error is None and trials:
        sess = open_session(path, provider)
        timing = onnx_latency(path, feeds(sess, inputs), provider=provider, budget_s=budget_s)
    return VariantResult(
        name, path, provider, passed, judge, method, trials, file_size(path), timing, eager,
        error=error, seconds=time.perf_counter() - start,
    )  # fmt: skip


def _locate(
    model: nn.Module, float_path: Path, made: Made, cases: Sequence[Case]
) -> Divergence | None:
    """Where a failing variant first departs: eager localization for float files, the float
    file's values for quantized ones (their names line up)."""
    if made.judge == "metrics":
        from exportkit.variants.locate import against_float

        return against_float(float_path, made.path, cases, made.thresholds or Thresholds())
    from exportkit.validate import OutputCheck, RunFailure, Trial, ValidationResult, localize

    trials = tuple(
        Trial(
            t.label,
            {},
            tuple(
                OutputCheck(o.name, (), "float32", o.atol or 0.0, o.rtol or 0.0, o.passed)
                for o in t.outputs
            ),
            RunFailure("run", t.error) if t.error else None,
        )
        for t in made.trials
    )
    result = ValidationResult(made.path, trials, 0.0)
    return localize(model, made.path, cases, result, made.tolerances)


def judge_file(
    path: str | Path,
    cases_or_inputs: Sequence[Case] | ExampleInputs,
    *,
    model: nn.Module,
    providers: Sequence[str] = (),
    thresholds: Thresholds | None = None,
    tolerances: Tolerances | None = None,
    latency: bool = True,
    budget_s: float = 1.0,
) -> tuple[VariantResult, ...]:
    """A float16 or int8 file made elsewhere, judged as ``make_variants`` judges its own: the
    kind is read from the graph (float16 weights or casts; QDQ or integer ops).

    Returns:
        One row per provider; empty for a plain float file (validate judges those).

    Raises:
        UsageError: a provider that is not installed.
    """
    from exportkit.variants.detect import detect_kind

    path = Path(path)
    provs = resolve_providers(providers)
    kind = detect_kind(path)
    if kind == "float":
        return ()
    cases = _cases(model, cases_or_inputs)
    limits = thresholds or Thresholds()
    tol = tolerances or FP16_TOLERANCES
    inputs = cases[0].inputs if latency else None
    eager = eager_latency(model, cases[0].inputs.tensors, budget_s=budget_s) if latency else None
    judge: Judge = "tolerance" if kind == "fp16" else "metrics"
    method = f"made elsewhere; {'float16 content' if kind == 'fp16' else 'quantized (int8) ops'}"
    rows = []
    for provider in provs:
        start = time.perf_counter()
        trials = run_trials(
            path, cases, provider=provider, tolerances=tol if kind == "fp16" else None,
            thresholds=limits,
        )  # fmt: skip
        row = _row(kind, path, provider, method, judge, trials, eager, start, inputs=inputs,
                   budget_s=budget_s)  # fmt: skip
        row = replace(row, thresholds=limits if judge == "metrics" else None)
        if not row.passed and provider == CPU and kind == "fp16":
            made = Made(path, method, judge, trials, tol)
            row = replace(row, divergence=_locate(model, path, made, cases))
        rows.append(row)
    return tuple(rows)
