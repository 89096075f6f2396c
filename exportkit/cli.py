"""argv -> pipeline -> rendered report -> exit code. The only module that talks to the terminal."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from exportkit import __version__
from exportkit.errors import (
    EXIT_FAILED_CHECK,
    EXIT_INTERRUPTED,
    EXIT_OK,
    ExportkitError,
    InputSpecError,
    OutputPathError,
    UsageError,
)
from exportkit.inputs.spec import DTYPES

__all__ = ["main", "run"]

EPILOG_EXPORT = """examples:
  exportkit export examples/simple_net.py:SimpleNet --input x:2x10 -o out/simple_net.onnx
  exportkit export examples/conv_net.py:ConvNet --dynamic batch --json report.json
  exportkit export model.py:Net --input ids:2x16:int64 --dynamic ids:1=seq --atol 1e-3
"""

EXIT_CODES = """
exit codes:
  0  success          1  validation mismatch (the export is wrong)
  2  bad input        3  a stage failed        130  interrupted
"""


SPEC_HELP = (
    "the model: path/to/file.py:Name or package.module:Name, optionally with literal arguments "
    "Name(depth=3); model.pt (TorchScript); model.pt2 (torch.export); hf:path/to/folder "
    "(a HuggingFace config.json, built offline)"
)


def _add_model_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model and inputs")
    g.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="NAME:SHAPE[:DTYPE][:RANGE] | NAME=FILE",
        help="an example input, by forward() parameter name; shape 2x3x224x224 or 2,3,224,224; "
        f"dtype {', '.join(DTYPES)} (default float32); range [low,high) for the values "
        "(integers default to [0,10)); or real data from a .npy/.npz/.pt file. Repeat per input. "
        "Without --input: the model's example_inputs(), inputs its config or archive knows, "
        "else inferred from its first layers (printed, to copy). "
        "Example: --input input_ids:2x16:int64:[0,30522) --input mask:2x16:bool --input x=batch.npy",
    )
    g.add_argument(
        "--dynamic",
        action="append",
        default=[],
        metavar="batch|NAME:AXIS[=LABEL]",
        help="make a dimension dynamic: 'batch' is dim 0 of every input; ids:1=seq names one. "
        "Example: --dynamic batch --dynamic ids:1=seq",
    )
    g.add_argument(
        "--kwargs",
        metavar="JSON",
        default=None,
        help="constructor keyword arguments as JSON (for hf: specs, config attributes). "
        "Example: --kwargs '{\"depth\": 3}'",
    )
    g.add_argument(
        "--weights",
        metavar="FILE",
        default=None,
        help="load a state dict into the built model: torch.save(model.state_dict()) file, a "
        "checkpoint dict holding one (state_dict, model_state_dict, model ...), or .safetensors. "
        "Example: --weights checkpoints/best.pt",
    )
    g.add_argument(
        "--strict-weights",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="missing or unexpected weight keys are an error (default); --no-strict-weights loads "
        "the keys that match and reports the rest",
    )
    g.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed for every random input draw and for the initial weights of a model built without --weights (default 0)",
    )


def _add_export_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("export")
    g.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        help="the .onnx file to write (default exportkit_out/<Model>/<Model>.onnx). "
        "Example: -o out/net.onnx",
    )
    g.add_argument(
        "--exporter",
        choices=("auto", "dynamo", "torchscript"),
        default="auto",
        help="auto (default): dynamo, then torchscript when dynamo fails or writes a file that fails validation",
    )
    g.add_argument(
        "--opset",
        type=int,
        default=None,
        help="ONNX opset (default: the exporter's). Example: --opset 18",
    )
    g.add_argument(
        "--simplifier",
        choices=("onnxsim", "onnxslim", "none"),
        default="onnxsim",
        help="simplify with onnxsim (default) or onnxslim; kept only if it still matches PyTorch",
    )
    g.add_argument(
        "--annotate",
        action="store_true",
        help="write the findings (verdict, max diff per output, exporter, simplifier) into the "
        "output file's metadata, where Netron shows them",
    )


def _add_check_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("validation")
    g.add_argument(
        "--atol",
        action="append",
        default=[],
        metavar="[OUTPUT=]VALUE",
        help="absolute tolerance, for all outputs or one. Default by dtype: float32 1e-4, float16 1e-2; "
        "integers exact. Example: --atol 1e-5 --atol logits=1e-3",
    )
    g.add_argument(
        "--rtol",
        action="append",
        default=[],
        metavar="[OUTPUT=]VALUE",
        help="relative tolerance, as --atol. Default by dtype: float32 1e-3, float16 1e-2",
    )
    g.add_argument(
        "--no-sizes",
        dest="sizes",
        action="store_false",
        help="validate at the export size only (default: each dynamic dim also at 1 and another size)",
    )
    g.add_argument(
        "--json", metavar="FILE", help="write the whole report as JSON. Example: --json report.json"
    )
    g.add_argument(
        "--junit",
        metavar="FILE",
        help="write a JUnit XML result for CI. Example: --junit junit.xml",
    )


def _add_view_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("viewer")
    g.add_argument(
        "--port",
        type=int,
        default=None,
        help="port to serve on (default: a free one); a taken port is an error (exit 2), never "
        "moved. Example: --port 8080",
    )
    g.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1; any other address exposes the model to the network)",
    )
    g.add_argument(
        "--no-browser",
        action="store_true",
        help="print the URL, do not open a browser (one opens only where a display exists; "
        "over SSH the ssh -L line to reach the URL is printed)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="exportkit",
        description="PyTorch -> ONNX you can trust and look at: export, simplify, validate against "
        "onnxruntime, summarize, view in Netron.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"exportkit {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    fmt = argparse.RawDescriptionHelpFormatter

    p = sub.add_parser(
        "export",
        help="export a model to ONNX, simplify, validate, summarize",
        description="Load a model, build example inputs, export to ONNX, simplify, check onnxruntime "
        "against PyTorch, and print the graph summary. Exit 1 when the export is wrong.",
        epilog=EPILOG_EXPORT + EXIT_CODES,
        formatter_class=fmt,
    )
    p.add_argument("model", metavar="SPEC", help=SPEC_HELP)
    _add_model_options(p)
    _add_export_options(p)
    _add_check_options(p)

    p = sub.add_parser(
        "view",
        help="export (as 'export') and open the graph in Netron, or view an .onnx file",
        description="Run the export pipeline and serve the final graph in Netron until Ctrl-C, or serve "
        "an existing .onnx file.",
        epilog="examples:\n  exportkit view examples/simple_net.py:SimpleNet --input x:2x10\n"
        "  exportkit view model.onnx --port 8080 --no-browser\n" + EXIT_CODES,
        formatter_class=fmt,
    )
    p.add_argument("model", metavar="SPEC|FILE.onnx", help="a model spec, or an .onnx file to view")
    _add_model_options(p)
    _add_export_options(p)
    _add_check_options(p)
    _add_view_options(p)

    p = sub.add_parser(
        "summary",
        help="print the graph summary of any ONNX file (no torch needed)",
        description="Shapes, types, parameters and MACs of every node of an ONNX file.",
        epilog="examples:\n  exportkit summary model.onnx\n  exportkit summary model.onnx --format json\n"
        "  exportkit summary model.onnx --depth 2 --columns name,type,shape,params,macs\n"
        "  exportkit summary model.onnx --dim batch=1\n" + EXIT_CODES,
        formatter_class=fmt,
    )
    p.add_argument("file", metavar="FILE.onnx", help="the ONNX file")
    p.add_argument(
        "--format",
        choices=("table", "json", "markdown", "csv"),
        default="table",
        help="table (default) for people, json for machines (every module and node, "
        "whatever --depth and --columns say), markdown, csv",
    )
    p.add_argument(
        "--depth",
        type=int,
        default=None,
        metavar="N",
        help="show the module tree down to N levels (0: the model only, 1: its top-level "
        "modules, ...); deeper rows are folded into their parent. Default: every node. "
        "Example: --depth 2",
    )
    p.add_argument(
        "--columns",
        default=None,
        metavar="COL,COL",
        help="columns to show, from name,type,shape,dtype,params,macs,nodes "
        "(default: name,type,shape,dtype,params,macs). Example: --columns name,params,macs",
    )
    p.add_argument(
        "--dim",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="give a symbolic dimension a value so MACs that depend on it can be counted. "
        "Repeat per dim. Example: --dim batch=1",
    )

    p = sub.add_parser(
        "check",
        help="validate an ONNX file made elsewhere against the PyTorch model",
        description="Run the PyTorch model and the ONNX file on the same inputs; exit 0 when they "
        "match, 1 when they do not.",
        epilog="examples:\n  exportkit check model.onnx model.py:Net --input x:1x3x224x224\n"
        + EXIT_CODES,
        formatter_class=fmt,
    )
    p.add_argument("file", metavar="FILE.onnx", help="the ONNX file to check")
    p.add_argument("model", metavar="SPEC", help=SPEC_HELP)
    _add_model_options(p)
    _add_check_options(p)
    return parser


class _Progress:
    """Stage lines on stderr: a live spinner on a terminal, plain lines otherwise."""

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(stderr=True, highlight=False)
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


def _write_atomic(path: str, text: str) -> None:
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        Path(tmp).replace(target)
    except OSError as exc:
        raise OutputPathError(
            f"cannot write {path!r}: {exc.strerror}", hint="choose another path"
        ) from None


def _options(args: argparse.Namespace) -> Any:
    from exportkit.inputs import DynamicSpec
    from exportkit.pipeline import Options
    from exportkit.validate import Tolerances

    kwargs = {}
    if args.kwargs:
        try:
            kwargs = json.loads(args.kwargs)
        except json.JSONDecodeError as exc:
            raise InputSpecError(
                f"--kwargs is not valid JSON: {exc.msg}", hint="write --kwargs '{\"depth\": 3}'"
            ) from None
        if not isinstance(kwargs, dict):
            raise InputSpecError(
                "--kwargs must be a JSON object", hint="write --kwargs '{\"depth\": 3}'"
            )
    extra = {}
    if getattr(args, "exporter", None):
        extra = {"exporter": args.exporter, "opset": args.opset, "simplifier": args.simplifier}
    return Options(
        tolerances=Tolerances.parse(args.atol, args.rtol),
        dynamic=tuple(DynamicSpec.parse(d) for d in args.dynamic),
        seed=args.seed,
        sizes=args.sizes,
        model_kwargs=kwargs,
        weights=args.weights,
        strict_weights=args.strict_weights,
        **extra,
    )


def _finish(report: Any, args: argparse.Namespace) -> int:
    from exportkit.report.pipeline import render_json, render_junit, render_text

    summary_text = None
    if report.summary is not None:
        from exportkit.report.summary import render_summary

        summary_text = render_summary(report.summary, fmt="table")
    sys.stdout.write(render_text(report, summary=summary_text))
    if args.json:
        _write_atomic(args.json, render_json(report))
    if args.junit:
        _write_atomic(args.junit, render_junit(report))
    if getattr(args, "annotate", False) and report.output is not None:
        from exportkit.viewer import annotate, report_findings

        model_props, node_props = report_findings(report)
        annotate(report.output, report.output, model_props=model_props, node_props=node_props)
    return EXIT_OK if report.passed else EXIT_FAILED_CHECK


def _export_report(args: argparse.Namespace) -> Any:
    from exportkit.pipeline import run_export

    progress = _Progress()
    try:
        return run_export(
            args.model, args.input, args.output, options=_options(args), progress=progress
        )
    finally:
        progress.close()


def _cmd_export(args: argparse.Namespace) -> int:
    return _finish(_export_report(args), args)


def _cmd_check(args: argparse.Namespace) -> int:
    from exportkit.pipeline import run_check

    progress = _Progress()
    try:
        report = run_check(
            args.file, args.model, args.input, options=_options(args), progress=progress
        )
    finally:
        progress.close()
    return _finish(report, args)


def _cmd_summary(args: argparse.Namespace) -> int:
    import shutil

    from exportkit.report.summary import parse_columns, render_summary
    from exportkit.summary import parse_dims, summarize

    columns = parse_columns(args.columns) if args.columns else None
    if args.depth is not None and args.depth < 0:
        raise UsageError(f"--depth must be 0 or more, not {args.depth}", hint="e.g. --depth 2")
    summary = summarize(args.file, dims=parse_dims(args.dim))
    color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    width = shutil.get_terminal_size().columns
    text = render_summary(
        summary, fmt=args.format, depth=args.depth, columns=columns, color=color, width=width
    )
    sys.stdout.write(text)
    return EXIT_OK


def _cmd_view(args: argparse.Namespace) -> int:
    from exportkit import viewer

    if not viewer.is_loopback(args.host):
        print(
            f"warning: listening on {args.host}: anyone who can reach this machine can open the "
            "model; leave --host out to keep it on 127.0.0.1",
            file=sys.stderr,
        )
    viewer.check_port(args.host, args.port)  # before a long export, not after
    code = EXIT_OK
    path = Path(args.model)
    model_props: dict[str, str] | None = None
    node_props: dict[str, dict[str, str]] | None = None
    if path.suffix.lower() != ".onnx":
        report = _export_report(args)
        code = _finish(report, args)
        if report.output is None:
            return code
        path = Path(report.output)
        model_props, node_props = viewer.report_findings(report)
    handle = viewer.serve(
        path, host=args.host, port=args.port, model_props=model_props, node_props=node_props
    )
    for warning in handle.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    with handle.stop_on_signals():  # a signal sent once the URL is seen still stops cleanly
        print(f"Netron: {handle.url}  (Ctrl-C to stop)", flush=True)
        tunnel = viewer.ssh_tunnel_hint(handle.port) if viewer.is_loopback(args.host) else None
        if tunnel:
            print(f"over SSH: run on your machine:  {tunnel}  then open {handle.url}", flush=True)
        if not args.no_browser and viewer.browser_available():
            import webbrowser

            webbrowser.open(handle.url)
        handle.wait()  # returns on Ctrl-C or SIGTERM, server stopped
    return code


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "export": _cmd_export,
    "view": _cmd_view,
    "summary": _cmd_summary,
    "check": _cmd_check,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI in-process; returns the exit code (see ``exportkit --help``)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return COMMANDS[args.command](args)
    except ExportkitError as exc:
        if args.debug:
            raise
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        if getattr(args, "junit", None):  # CI still gets a result file naming the failure
            from exportkit.report.pipeline import render_junit_error

            with contextlib.suppress(ExportkitError):
                _write_atomic(args.junit, render_junit_error(args.model, exc))
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
