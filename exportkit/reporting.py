"""The report files a run leaves (``--json``, ``--junit``) and the findings written into the model.

Written when the run ends, each atomically; the JUnit file is written for a failed run too, so CI
always gets a result that names the failure.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from exportkit.errors import ExportkitError, OutputPathError
from exportkit.options import Options
from exportkit.results import Report

__all__ = ["failure_reports", "write_reports", "write_text"]


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename; mode follows the umask.

    Raises:
        OutputPathError: the file cannot be written.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            umask = os.umask(0)
            os.umask(umask)
            os.fchmod(fd, 0o666 & ~umask)
            with os.fdopen(fd, "w") as f:
                f.write(text)
            Path(tmp).replace(path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise OutputPathError(
            f"cannot write {str(path)!r}: {exc.strerror}", hint="choose another path"
        ) from None


def write_reports(report: Report, options: Options) -> None:
    """The report files ``options`` asks for, and ``--annotate``'s findings in the model."""
    from exportkit.report.pipeline import render_json, render_junit

    if options.json is not None:
        write_text(options.json, render_json(report))
    if options.junit is not None:
        write_text(options.junit, render_junit(report))
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
                write_text(options.junit, render_junit_error(str(model), exc))
        raise
