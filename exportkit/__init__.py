"""exportkit: PyTorch -> ONNX you can trust and look at.

The verbs: :func:`export` (the whole pipeline), :func:`check` (an ONNX file made elsewhere against
its PyTorch model), :func:`summarize` (any ONNX file, no torch needed), :func:`view` (Netron) and
:data:`ci` (every model of a project's ``[tool.exportkit]`` config, in parallel). Each takes one :class:`Options`; its fields can also be given as flat keywords
(``export(model, dynamic=["batch"], atol=1e-3)``). The CLI is a thin layer over these verbs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from exportkit import display as _display
from exportkit.errors import ExportkitError
from exportkit.export import ExportResult
from exportkit.inputs import DynamicSpec, ExampleInputs, InputSpec
from exportkit.options import Options
from exportkit.options import build_options as _build_options
from exportkit.results import InputInfo, ProgressFn, Report, StageEvent, StageTiming
from exportkit.simplify import SimplifyResult
from exportkit.validate import Divergence, Parity, Tolerances, ValidationResult

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from torch import nn
    from typing_extensions import Unpack

    from exportkit.diff import DiffResult
    from exportkit.inputs.spec import InputSpec as _InputSpec
    from exportkit.options import OptionKeywords
    from exportkit.project import CiResult, ModelRun, ProjectModel
    from exportkit.resolve import InputsArg
    from exportkit.summary import GraphSummary
    from exportkit.viewer import ViewHandle

__version__ = "0.1.0"

__all__ = [
    "DiffResult",
    "Divergence",
    "DynamicSpec",
    "ExampleInputs",
    "ExportResult",
    "ExportkitError",
    "GraphSummary",
    "InputInfo",
    "InputSpec",
    "Options",
    "Parity",
    "ProgressFn",
    "Report",
    "SimplifyResult",
    "StageEvent",
    "StageTiming",
    "Tolerances",
    "ValidationResult",
    "ViewHandle",
    "__version__",
    "check",
    "ci",
    "diff",
    "export",
    "summarize",
    "view",
]


def _report_html(report: Report) -> str:
    from exportkit.report.html import render_html

    return render_html(report)


def _summary_html(summary: GraphSummary) -> str:
    from exportkit.report.summary import render_html

    return render_html(summary)


def _diff_html(result: DiffResult) -> str:
    from exportkit.report.diff import render_html

    return render_html(result)


_display.register_html("exportkit.results.Report", _report_html)
_display.register_html("exportkit.diff.results.DiffResult", _diff_html)
_display.register_html("exportkit.summary.results.GraphSummary", _summary_html)


def __getattr__(name: str) -> object:
    # Result types of the torch-free stages, imported on first use so `import exportkit` stays light.
    if name == "GraphSummary":
        from exportkit.summary import GraphSummary

        return GraphSummary
    if name == "DiffResult":
        from exportkit.diff import DiffResult

        return DiffResult
    if name == "ViewHandle":
        from exportkit.viewer import ViewHandle

        return ViewHandle
    raise AttributeError(f"module 'exportkit' has no attribute {name!r}")


def export(
    model: str | nn.Module,
    inputs: InputsArg = None,
    path: str | Path | None = None,
    *,
    options: Options | None = None,
    progress: ProgressFn | None = None,
    **keywords: Unpack[OptionKeywords],
) -> Report:
    """Export a model to ONNX, validate it against PyTorch, simplify it, validate again, summarize.

    Args:
        model: an ``nn.Module`` or a spec such as ``"model.py:Net"``.
        inputs: ``["x:2x3x224x224"]`` specs, a dict of name -> tensor, a tuple of tensors, or None
            (the model's ``example_inputs()``, its config's, or inferred).
        path: the ``.onnx`` file to write (default ``exportkit_out/<Model>/<Model>.onnx``). It
            only ever receives a file that passed; a failing one is kept as
            ``<stem>.failed.onnx`` beside it.
        options: how to export, validate and report (see :class:`Options`).
        progress: called with a :class:`StageEvent` as each stage starts and ends.
        **keywords: :class:`Options` fields, applied over ``options``; ``atol``/``rtol`` set
            the global tolerances, ``dynamic`` takes strings such as ``"batch"``.

    Returns:
        The report; ``report.passed`` is the verdict, ``report.output`` the file written.

    Raises:
        ExportkitError: a stage failed; ``exit_code`` and ``hint`` say what to do.
    """
    from exportkit.cache import cached_export
    from exportkit.reporting import check_report_paths, failure_reports, write_reports

    options = _build_options(options, **keywords)
    check_report_paths(options, path)
    with failure_reports(model, options):
        report = cached_export(
            model,
            inputs,
            path,
            options,
            lambda: _run_export(model, inputs, path, options, progress),
            progress,
        )
        write_reports(report, options)
    return report


def _run_export(
    model: str | nn.Module,
    inputs: InputsArg,
    path: str | Path | None,
    options: Options,
    progress: ProgressFn | None,
) -> Report:
    # The pipeline (and every stage it imports) loads only when the cache has no result.
    from exportkit.pipeline import run_export

    return run_export(model, inputs, path, options=options, progress=progress)


def check(
    path: str | Path,
    model: str | nn.Module,
    inputs: InputsArg = None,
    *,
    options: Options | None = None,
    progress: ProgressFn | None = None,
    **keywords: Unpack[OptionKeywords],
) -> Report:
    """Validate an ONNX file made elsewhere against its PyTorch model (arguments as :func:`export`).

    Raises:
        ExportkitError: the model or the file cannot be loaded, or the file is not the model's.
    """
    from exportkit.pipeline import run_check
    from exportkit.reporting import check_report_paths, failure_reports, write_reports

    options = _build_options(options, **keywords)
    check_report_paths(options)
    with failure_reports(model, options):
        report = run_check(path, model, inputs, options=options, progress=progress)
        write_reports(report, options)
    return report


def summarize(
    path: str | Path, *, options: Options | None = None, **keywords: Unpack[OptionKeywords]
) -> GraphSummary:
    """The graph summary of any ONNX file; never imports torch.

    ``dims`` (an :class:`Options` field) gives symbolic dims values (``{"batch": 1}``) so MACs
    that depend on them are counted. See :func:`exportkit.summary.summarize`.
    """
    from exportkit.summary import summarize as _summarize

    return _summarize(path, dims=_build_options(options, **keywords).dims)


def diff(
    a: str | Path,
    b: str | Path,
    *,
    inputs: Sequence[_InputSpec | str] | None = None,
    tolerances: Tolerances | None = None,
    numbers: bool = True,
    weights: bool = True,
    seed: int = 0,
    dims: Mapping[str, int] | None = None,
) -> DiffResult:
    """Compare ONNX file ``b`` with ``a`` (the reference) by PyTorch module; never imports torch
    unless ``numbers`` draws inputs.

    ``result.equivalent`` is the verdict: same inputs/outputs, opsets and module structure, and
    outputs within ``tolerances`` on the same seeded ``inputs``. Without ``numbers`` and
    ``weights`` neither file's external weight data is read. ``dims`` binds symbolic dims
    (``{"batch": 1}``) so MACs that depend on them are counted. See :func:`exportkit.diff.diff`.

    Raises:
        OnnxFileError: a file is missing, not ONNX, or misses its external data.
        InputSpecError: an ``inputs`` spec that fits no input of ``a``.
    """
    from exportkit.diff import diff as _diff

    return _diff(
        a, b, inputs=inputs, tolerances=tolerances, numbers=numbers, weights=weights, seed=seed,
        dims=dims,
    )  # fmt: skip


def view(
    model: str | Path | nn.Module | Report,
    inputs: InputsArg = None,
    path: str | Path | None = None,
    *,
    options: Options | None = None,
    progress: ProgressFn | None = None,
    **keywords: Unpack[OptionKeywords],
) -> ViewHandle:
    """Serve a model in Netron without blocking: an ``.onnx`` file, a finished :class:`Report`
    (its file, with the findings in the properties), or a model, exported first (to ``path``).

    ``host``, ``port`` and ``browser`` (open a web browser where one can open) are
    :class:`Options` fields. The handle's ``report`` is the export's report, if one ran.

    Returns:
        A handle with ``.url``, ``.stop()`` and ``.wait()``; a context manager; inline in Jupyter.
    """
    from exportkit import viewer
    from exportkit.viewer.findings import view_target

    options = _build_options(options, **keywords)
    viewer.check_port(options.host, options.port)  # before a long export, not after
    report = None
    if isinstance(model, Report):
        report = model
    elif not (isinstance(model, (str, Path)) and str(model).lower().endswith(".onnx")):
        spec = str(model) if isinstance(model, Path) else model
        report = export(spec, inputs, path, options=options, progress=progress)
    if report is None:
        handle = viewer.serve(
            Path(str(model)), host=options.host, port=options.port, browser=options.browser
        )
    else:
        if report.output is None:
            raise ExportkitError(f"{report.model}: the run wrote no file to view")
        model_props, node_props = viewer.report_findings(report)  # shown in Netron's properties
        served = report.output
        variant = view_target(report)  # --variant: the first variant file, its own findings
        if variant is not None:
            served, model_props, node_props = variant
        handle = viewer.serve(
            served,
            host=options.host,
            port=options.port,
            browser=options.browser,
            model_props=model_props,
            node_props=node_props,
        )
    handle.report = report
    return handle


class _Ci:
    """``exportkit.ci(project, jobs=2)`` runs every model a project configures;
    ``exportkit.ci.models(project)`` lists them (to parametrize a test suite over)."""

    def __call__(
        self,
        project: str | Path = ".",
        *,
        jobs: int | None = None,
        options: Options | None = None,
        json: str | Path | None = None,
        junit: str | Path | None = None,
        on_result: Callable[[ModelRun], None] | None = None,
    ) -> CiResult:
        """Run the models of ``[[tool.exportkit.models]]`` in parallel processes.

        Args:
            project: the project folder, or its pyproject.toml / exportkit.toml.
            jobs: worker processes (default: one per core).
            options: :class:`Options` under every model's own keys; ``cache=False`` here
                wins over the config (``--no-cache``).
            json: the combined JSON report: every model's verdict and report.
            junit: JUnit XML: a test suite per model, a test case per check.
            on_result: called with each model's :class:`~exportkit.project.ModelRun` as it ends.

        Returns:
            Every model's verdict, time, file and report; ``passed`` when all passed.

        Raises:
            ConfigError: the config cannot be right (exit 2; nothing was run).
            RunnerError: the worker processes broke (exit 3).
        """
        from exportkit.project import run_project

        return run_project(
            project,
            export,
            jobs=jobs,
            options=options,
            json=json,
            junit=junit,
            on_result=on_result,
        )

    @staticmethod
    def models(
        project: str | Path = ".", *, options: Options | None = None
    ) -> tuple[ProjectModel, ...]:
        """The models a project configures; ``export(m.spec, m.inputs, m.output,
        options=m.options)`` runs one."""
        from exportkit.project import models

        return models(project, options=options)


ci = _Ci()
