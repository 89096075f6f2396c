"""The report files a run leaves (``--json``, ``--junit``, ``--html``, ``--markdown``, the GitHub
step summary) and the findings written into the model.

Written when the run ends, each atomically; the JUnit file and the step summary are written for a
run that failed at a stage too, so CI always gets a result that names the failure.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from exportkit.errors import ExportkitError, OutputPathError, UsageError
from exportkit.onnxfile import write_atomic
from exportkit.options import Options
from exportkit.results import Report

__all__ = [
    "STEP_SUMMARY",
    "append_step_summary",
    "check_report_paths",
    "failure_reports",
    "write_reports",
]

logger = logging.getLogger(__name__)

#: GitHub Actions' job summary file: Markdown appended here shows on the run's page.
STEP_SUMMARY = "GITHUB_STEP_SUMMARY"


def write_reports(report: Report, options: Options) -> None:
    """The report files ``options`` asks for, and ``--annotate``'s findings in the model."""
    from exportkit.report.junit import render_junit
    from exportkit.report.pipeline import render_json

    if options.json is not None:
        write_atomic(options.json, render_json(report), parents=True)
    if options.junit is not None:
        write_atomic(options.junit, render_junit(report), parents=True)
    if options.html is not None:
        from exportkit.report.html import render_html

        summary = report.summary
        if summary is None and report.output is not None and report.output.is_file():
            from exportkit.summary import summarize  # `check` has no summary stage

            summary = summarize(report.output)
        write_atomic(options.html, render_html(report, summary=summary), parents=True)
    if options.markdown is not None or os.environ.get(STEP_SUMMARY):
        from exportkit.report.markdown import render_markdown

        text = render_markdown(report)
        if options.markdown is not None:
            write_atomic(options.markdown, text, parents=True)
        append_step_summary(text)
    if options.annotate and report.output is not None and report.export is not None:
        from exportkit.viewer import annotate, report_findings

        model_props, node_props = report_findings(report)
        annotate(report.output, report.output, model_props=model_props, node_props=node_props)


def check_report_paths(options: Options, output: str | os.PathLike[str] | None = None) -> None:
    """Refuse, before any work, a ``--json``/``--junit``/``--html``/``--markdown`` path that
    cannot be written, or that is another output's path.

    Raises:
        OutputPathError: a folder, a path under a file or an unwritable folder, or a clash.
    """
    seen: dict[Path, str] = {} if output is None else {Path(output).resolve(): "-o"}
    examples = {"--json": "report.json", "--junit": "junit.xml", "--html": "report.html"}
    for flag, path in (
        ("--json", options.json),
        ("--junit", options.junit),
        ("--html", options.html),
        ("--markdown", options.markdown),
    ):
        if path is None:
            continue
        hint = f"write {flag} path/to/{examples.get(flag, 'summary.md')}"
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
    """On a stage failure, still give CI a JUnit file (and the step summary a line) naming it,
    then re-raise; bad input (exit 2) touches no file."""
    try:
        yield
    except ExportkitError as exc:
        if options.junit is not None and not isinstance(exc, UsageError):
            from exportkit.report.junit import render_junit_error

            with contextlib.suppress(ExportkitError):
                write_atomic(options.junit, render_junit_error(str(model), exc), parents=True)
        if os.environ.get(STEP_SUMMARY) and not isinstance(exc, UsageError):
            from exportkit.report.markdown import render_markdown_error

            append_step_summary(render_markdown_error(str(model), exc))
        raise


def append_step_summary(text: str) -> None:
    """Append Markdown to ``$GITHUB_STEP_SUMMARY`` when it is set (GitHub Actions); a file that
    cannot be written is logged, never fatal: the run's own verdict matters more."""
    path = os.environ.get(STEP_SUMMARY)
    if not path:
        return
    try:
        with Path(path).open("a", encoding="utf-8") as f:
            f.write(text if text.endswith("\n") else text + "\n")
    except OSError as exc:
        logger.warning("cannot append to %s=%s: %s", STEP_SUMMARY, path, exc.strerror)
