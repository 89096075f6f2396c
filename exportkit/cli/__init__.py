"""argv -> Options -> a public verb -> rendered report -> exit code.

The only module that talks to the terminal. Each option group is an add/parse pair: ``add``
puts its flags on a parser, ``parse`` turns them into :class:`~exportkit.Options` fields.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import exportkit
from exportkit.cli.args import build_parser, options_from
from exportkit.errors import (
    EXIT_FAILED_CHECK,
    EXIT_INTERRUPTED,
    EXIT_OK,
    ExportkitError,
    UsageError,
)
from exportkit.options import Options
from exportkit.results import ProgressFn, Report

__all__ = ["build_parser", "main", "run"]


class _Progress:
    """Stage lines on stderr: a live spinner on a terminal, plain lines otherwise."""

    def __init__(self) -> None:
        from rich.console import Console

        # On a terminal the status draws on its own copy of fd 2: third-party output captured
        # there while a stage runs (exportkit.quiet) does not take the spinner with it.
        tty = sys.stderr is not None and sys.stderr.isatty()
        file = os.fdopen(os.dup(2), "w", encoding="utf-8") if tty else None
        self.console = Console(file=file, stderr=True, highlight=False)
        self.status: Any = None

    def __call__(self, event: Any) -> None:
        if event.status == "start":
            if self.console.is_terminal:
                self.status = self.console.status(f"{event.stage} ...")
                self.status.start()
            return
        if self.status is not None:
            self.status.stop()
            self.status = None
        mark = {"ok": "[green]✓[/]", "failed": "[red]✗[/]", "skipped": "[dim]-[/]"}[event.status]
        detail = f"  [dim]{event.detail}[/]" if event.detail else ""
        self.console.print(f"{mark} {event.stage:<20} {event.seconds:6.2f} s{detail}")

    def close(self) -> None:
        if self.status is not None:
            self.status.stop()


T = TypeVar("T")


def _run(verb: Callable[[ProgressFn], T]) -> T:
    progress = _Progress()
    try:
        return verb(progress)
    finally:
        progress.close()


def _finish(report: Report) -> int:
    """Print the report; the exit code is its verdict."""
    from exportkit.report.pipeline import render_text, verdict_reason

    summary_text = None
    if report.summary is not None:
        from exportkit.report.summary import render_summary
        from exportkit.report.variants import summary_times

        times = summary_times(report.variants)  # --profile: a time column per module
        summary_text = render_summary(report.summary, fmt="table", times=times)
    sys.stdout.write(render_text(report, summary=summary_text))
    if report.passed:
        return EXIT_OK
    sys.stdout.flush()
    print(f"FAIL: {verdict_reason(report)}", file=sys.stderr)  # the last word on stderr
    return EXIT_FAILED_CHECK


def _cmd_export(args: argparse.Namespace, options: Options) -> int:
    return _finish(
        _run(
            lambda p: exportkit.export(
                args.model, args.input, args.output, options=options, progress=p
            )
        )
    )


def _cmd_check(args: argparse.Namespace, options: Options) -> int:
    return _finish(
        _run(
            lambda p: exportkit.check(
                args.file, args.model, args.input, options=options, progress=p
            )
        )
    )


def _cmd_summary(args: argparse.Namespace, options: Options) -> int:
    import shutil

    from exportkit.report.summary import parse_columns, render_summary

    columns = parse_columns(args.columns) if args.columns else None
    if args.depth is not None and args.depth < 0:
        raise UsageError(f"--depth must be 0 or more, not {args.depth}", hint="e.g. --depth 2")
    summary = exportkit.summarize(args.file, options=options)
    color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    width = shutil.get_terminal_size().columns
    text = render_summary(
        summary, fmt=args.format, depth=args.depth, columns=columns, color=color, width=width
    )
    sys.stdout.write(text)
    return EXIT_OK


def _cmd_view(args: argparse.Namespace, options: Options) -> int:
    from exportkit import viewer

    viewer.check_host(options.host)  # exit 2 before the warning below and before any export
    if not viewer.is_loopback(options.host):
        print(
            f"warning: listening on {options.host}: anyone who can reach this machine can open "
            "the model; leave --host out to keep it on 127.0.0.1",
            file=sys.stderr,
        )
    handle = _run(
        lambda p: exportkit.view(args.model, args.input, args.output, options=options, progress=p)
    )
    code = EXIT_OK if handle.report is None else _finish(handle.report)
    for warning in handle.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    with handle.stop_on_signals():  # a signal sent once the URL is seen still stops cleanly
        print(f"Netron: {handle.url}  (Ctrl-C to stop)", flush=True)
        tunnel = viewer.ssh_tunnel_hint(handle.port) if viewer.is_loopback(options.host) else None
        if tunnel:
            print(f"over SSH: run on your machine:  {tunnel}  then open {handle.url}", flush=True)
        handle.wait()  # returns on Ctrl-C or SIGTERM, server stopped
    return code


def _cmd_diff(args: argparse.Namespace, options: Options) -> int:
    from exportkit.report.diff import render_diff

    if options.html is not None:
        from exportkit.reporting import check_report_paths

        check_report_paths(options)  # before the diff runs: a path that cannot be written is exit 2
    result = exportkit.diff(
        args.a, args.b, inputs=args.input, tolerances=options.tolerances,
        numbers=args.numbers, weights=args.weights, seed=options.seed, dims=options.dims,
    )  # fmt: skip
    if options.html is not None:
        from exportkit.onnxfile import write_atomic
        from exportkit.report.diff import render_html

        write_atomic(options.html, render_html(result), parents=True)
    sys.stdout.write(render_diff(result, args.format))
    return EXIT_OK if result.equivalent else EXIT_FAILED_CHECK


def _cmd_ci(args: argparse.Namespace, options: Options) -> int:
    from exportkit.project.config import config_file
    from exportkit.report.ci import render_ci_line, render_ci_table

    root = config_file(args.project)[0].resolve().parent

    def line(run: Any) -> None:
        print(render_ci_line(run, root), flush=True)

    result = exportkit.ci(
        args.project,
        jobs=args.jobs,
        options=options,
        json=args.json,
        junit=args.junit,
        on_result=line,
    )
    print()
    sys.stdout.write(render_ci_table(result))
    if result.passed:
        return EXIT_OK
    sys.stdout.flush()
    names = ", ".join(run.name for run in result.failed)
    print(f"FAIL: {len(result.failed)} of {len(result.models)} models: {names}", file=sys.stderr)
    return EXIT_FAILED_CHECK


COMMANDS: dict[str, Callable[[argparse.Namespace, Options], int]] = {
    "export": _cmd_export,
    "view": _cmd_view,
    "summary": _cmd_summary,
    "check": _cmd_check,
    "diff": _cmd_diff,
    "ci": _cmd_ci,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI in-process; returns the exit code (see ``exportkit --help``)."""
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args, options_from(args))
    except ExportkitError as exc:
        if debug:
            raise
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
