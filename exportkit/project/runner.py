"""Run a project's models in parallel processes, each model's export in a fresh ``spawn`` worker.

Spawn, not fork: a forked child of a process that has started torch's thread pools can hang.
Each worker gets an even share of the cores for torch's threads. A model whose run raises an
ExportkitError is an ``error`` verdict with that message; so is an exportkit bug (its traceback
kept), so that one model never hides the others' results. Only a broken pool stops the run.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from exportkit.errors import ExportkitError, RunnerError
from exportkit.project.config import ProjectModel
from exportkit.project.results import ModelError, ModelRun
from exportkit.results import Report

__all__ = ["default_jobs", "run_models"]

_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
#: The front door's export verb: (spec, inputs, output, options=...) -> Report.
ExportFn = Callable[..., Report]


def default_jobs() -> int:
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _init_worker(threads: int) -> None:
    for name in _THREAD_VARS:
        os.environ.setdefault(name, str(threads))


def _run_one(export: ExportFn, model: ProjectModel) -> dict[str, Any]:
    """In the worker: export and validate one model; a plain dict crosses back to the parent."""
    from exportkit.report.pipeline import render_json, verdict_reason

    start = time.perf_counter()
    try:
        report = export(model.spec, model.inputs, model.output, options=model.options)
    except ExportkitError as exc:
        error = ModelError(type(exc).__name__, exc.message, exc.hint, exc.exit_code)
        return {"seconds": time.perf_counter() - start, "error": error}
    except Exception as exc:  # a bug: keep its traceback, and the other models' results
        text = "".join(traceback.format_exception(exc))
        error = ModelError(type(exc).__name__, str(exc) or type(exc).__name__, None, 3, text)
        return {"seconds": time.perf_counter() - start, "error": error}
    return {
        "seconds": time.perf_counter() - start,
        "report": render_json(report),
        "reason": "" if report.passed else verdict_reason(report),
    }


def _outcome(model: ProjectModel, found: dict[str, Any]) -> ModelRun:
    from exportkit.report.load import load_report

    error: ModelError | None = found.get("error")
    if error is not None:
        return ModelRun(
            model.name,
            model.spec,
            model.table,
            verdict="error",
            seconds=found["seconds"],
            output=None,
            reason=f"{error.kind}: {error.message}",
            error=error,
        )
    report = load_report(found["report"])
    return ModelRun(
        model.name,
        model.spec,
        model.table,
        verdict="pass" if report.passed else "fail",
        seconds=found["seconds"],
        output=report.output,
        reason=found["reason"],
        cached=report.cached,
        report=report,
    )


def run_models(
    models: Sequence[ProjectModel],
    export: ExportFn,
    *,
    jobs: int | None = None,
    on_result: Callable[[ModelRun], None] | None = None,
) -> tuple[ModelRun, ...]:
    """Run every model with ``export`` (:func:`exportkit.export`, importable by the spawned
    workers), ``jobs`` at a time; ``on_result`` hears of each as it finishes.

    Returns:
        One ModelRun per model, in the order given.

    Raises:
        RunnerError: the worker pool broke (a worker was killed, or could not start).
    """
    jobs = max(1, min(jobs or default_jobs(), len(models)))
    threads = max(1, default_jobs() // jobs)
    done: dict[int, ModelRun] = {}
    context = multiprocessing.get_context("spawn")
    try:
        with cf.ProcessPoolExecutor(
            jobs, mp_context=context, initializer=_init_worker, initargs=(threads,)
        ) as pool:
            futures = {pool.submit(_run_one, export, m): i for i, m in enumerate(models)}
            for future in cf.as_completed(futures):
                index = futures[future]
                done[index] = _outcome(models[index], future.result())
                if on_result is not None:
                    on_result(done[index])
    except cf.process.BrokenProcessPool as exc:
        missing = [m.name for i, m in enumerate(models) if i not in done]
        raise RunnerError(
            f"a worker process died while running {', '.join(missing)} ({exc})",
            hint="run with -j 1 to see which model takes the process down (out of memory?)",
        ) from exc
    return tuple(done[i] for i in range(len(models)))
