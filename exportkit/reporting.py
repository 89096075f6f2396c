"""The report files a run leaves (``--json``, ``--junit``) and the findings written into the model.

Written when the run ends, each atomically; the JUnit file is written for a failed run too, so CI
always gets a result that names the failure.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from exportkit.errors import ExportkitError, OutputPathError, UsageError
from exportkit.onnxfile import write_atomic
from exportkit.options import Options
from exportkit.results import Report

__all__ = ["check_report_paths", "failure_reports", "write_reports"]


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


def check_report_paths(options: Options, output: str | os.PathLike[str] | None = None) -> None:
    """Refuse, before any work, a ``--json``/``--junit`` path that cannot be written, or that is
    another output's path.

    Raises:
        OutputPathError: a folder, a path under a file or an unwritable folder, or a clash.
    """
    seen: dict[Path, str] = {} if output is None else {Path(output).resolve(): "-o"}
    for flag, path in (("--json", options.json), ("--junit", options.junit)):
        if path is None:
            continue
        hint = f"write {flag} path/to/{'report.json' if flag == '--json' else 'junit.xml'}"
        if path.resolve() in seen:
            raise OutputPathError(
                f"{flag} {str(path)!r} is also the {seen[path.resolve()]} path",
                hint="give each output file a path of its own",
            )
        seen[path.resolve()] = flag
        if path.is_dir():
            raise OutputPathError(f"{flag} {str(path)!r} is a folder", hint=hint)
        folder = path.parent  # the nearest existing folder above it must take new files
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if not folder.is_dir():
            raise OutputPathError(
                f"{flag} {str(path)!r} cannot be written: {str(folder)!r} is a file", hint=hint
            )
        if not os.access(folder, os.W_OK):
            raise OutputPathError(
                f"{flag} {str(path)!r} cannot be written: permission denied in {str(folder)!r}",
                hint=hint,
            )


@contextlib.contextmanager
def failure_reports(model: object, options: Options) -> Iterator[None]:
    """On a stage failure, still give CI a JUnit file naming it, then re-raise; bad input (exit 2)
    touches no file."""
    try:
        yield
    except ExportkitError as exc:
        if options.junit is not None and not isinstance(exc, UsageError):
            from exportkit.report.pipeline import render_junit_error

            with contextlib.suppress(ExportkitError):
                write_atomic(options.junit, render_junit_error(str(model), exc), parents=True)
        raise
