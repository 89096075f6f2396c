"""Every model of a project: read from ``[tool.exportkit]`` (or exportkit.toml), run in parallel
processes, one combined result.

:func:`models` lists them (for a test suite to parametrize over, e.g. under pytest-xdist);
:func:`run_project` runs them all and writes the combined ``--json`` / ``--junit`` files.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from exportkit.options import Options
from exportkit.project.config import KEYS, ProjectModel, config_file, read_models
from exportkit.project.results import CiResult, ModelError, ModelRun, Verdict
from exportkit.project.runner import ExportFn, default_jobs, run_models

__all__ = [
    "KEYS",
    "CiResult",
    "ModelError",
    "ModelRun",
    "ProjectModel",
    "Verdict",
    "default_jobs",
    "models",
    "run_project",
]


def models(
    project: str | Path = ".", *, options: Options | None = None
) -> tuple[ProjectModel, ...]:
    """The models a project configures, in the order written (see :func:`read_models`).

    Raises:
        ConfigError: no config, or a key or value that cannot be right (exit 2).
    """
    return read_models(project, options=options)


def run_project(
    project: str | Path,
    export: ExportFn,
    *,
    jobs: int | None = None,
    options: Options | None = None,
    json: str | Path | None = None,
    junit: str | Path | None = None,
    on_result: Callable[[ModelRun], None] | None = None,
) -> CiResult:
    """Run every model of a project, ``jobs`` at a time, each in its own process.

    Args:
        project: the project folder, or its pyproject.toml / exportkit.toml.
        export: runs one model: :func:`exportkit.export` (a stage never imports the front door).
        jobs: parallel worker processes (default: the cores this process may use).
        options: under every model's own keys (``Options(cache=False)``).
        json: write the combined report here.
        junit: write JUnit XML here: a suite per model, a case per check.
        on_result: called with each model's result as it finishes.

    Returns:
        Each model's verdict, time, file and report; ``passed`` when all passed.

    Raises:
        ConfigError: the config cannot be right (nothing was run).
        RunnerError: the worker processes broke.
    """
    from exportkit.errors import UsageError
    from exportkit.onnxfile import write_atomic

    if jobs is not None and jobs < 1:
        raise UsageError(
            f"-j {jobs} must be 1 or more", hint="write -j 2, or leave -j out for one per core"
        )
    config = config_file(project)[0].resolve()
    found = read_models(project, options=options)
    if options is not None and not options.cache:  # --no-cache wins over the config's keys
        found = tuple(replace(m, options=replace(m.options, cache=False)) for m in found)
    start = time.perf_counter()
    jobs = min(jobs or default_jobs(), len(found))
    runs = run_models(found, export, jobs=jobs, on_result=on_result)
    result = CiResult(config, jobs, time.perf_counter() - start, runs)
    if json is not None or junit is not None:
        from exportkit.report.ci import render_ci_json, render_ci_junit

        if json is not None:
            write_atomic(json, render_ci_json(result), parents=True)
        if junit is not None:
            write_atomic(junit, render_ci_junit(result), parents=True)
    return result
