"""The report files a run leaves (``--json``, ``--junit``) and the findings written into the model.

Written when the run ends, each atomically; the JUnit file is written for a failed run too, so CI
always gets a result that names the failure.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from exportkit.errors import ExportkitError
from exportkit.onnxfile import write_atomic
from exportkit.options import Options
from exportkit.results import Report

__all__ = ["failure_reports", "write_reports"]


def write_reports(report: Report, options: Options) -> None:
    """The report files ``options`` asks for, and ``--annotate``'s findings in the model."""
    from exportkit.report.pipeline import render_json, render_junit

    if options.json is not None:
        write_atomic(options.json, render_json(report), parents=True)
    if options.junit is not None:
        write_atomic(options.junit, render_junit(report), parents=True)
    if options.annotate and report.output is not None and report.export is not None:
        from exportkit.viewer import annotate, report_findings

        model_props, node_props = report_findings(report)
        annotate(report.output, report.output, model_props=model_props, node_props=node_props)


@contextlib.contextmanager
def failure_reports(model: object, options: Options) -> Iterator[None]:
    """On an ExportkitError, still give CI a JUnit file naming the failure, then re-raise."""
    try:
        yield
    except ExportkitError as exc:
        if options.junit is not None:
            from exportkit.report.pipeline import render_junit_error

            with contextlib.suppress(ExportkitError):
                write_atomic(options.junit, render_junit_error(str(model), exc), parents=True)
        raise
