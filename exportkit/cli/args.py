"""The command line's flags: each option group an add/parse pair, and the parser they make.

``add`` puts a group's flags on a subcommand's parser; ``parse`` turns them into
:class:`~exportkit.Options` fields. :func:`options_from` is the whole translation argv -> Options.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from exportkit import __version__
from exportkit.cli.ci_args import CACHE, CI, add_ci_parser
from exportkit.cli.compare_args import (
    add_baseline_options,
    add_diff_options,
    parse_baseline_options,
    parse_diff_options,
)
from exportkit.cli.decode_args import DECODE
from exportkit.cli.summary_args import add_summary_options, parse_summary_options
from exportkit.cli.variant_args import add_variant_options, parse_variant_options
from exportkit.errors import UsageError
from exportkit.inputs.spec import DTYPES
from exportkit.options import Options, parse_model_kwargs

__all__ = ["GROUPS", "build_parser", "options_from"]

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


def _parse_model_options(args: argparse.Namespace) -> dict[str, Any]:
    from exportkit.inputs import DynamicSpec

    return {
        "dynamic": tuple(DynamicSpec.parse(d) for d in args.dynamic),
        "model_kwargs": parse_model_kwargs(args.kwargs),
        "weights": args.weights,
        "strict_weights": args.strict_weights,
        "seed": args.seed,
    }


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


def _parse_export_options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "exporter": args.exporter,
        "opset": args.opset,
        "simplifier": args.simplifier,
        "annotate": args.annotate,
    }


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
        "--strict",
        action="store_true",
        help="an output that cannot prove anything (its values all within the tolerance, or "
        "constant) fails the run instead of being reported as unproven",
    )
    g.add_argument(
        "--json", metavar="FILE", help="write the whole report as JSON. Example: --json report.json"
    )
    g.add_argument(
        "--junit",
        metavar="FILE",
        help="write a JUnit XML result for CI. Example: --junit junit.xml",
    )
    g.add_argument(
        "--html",
        metavar="FILE",
        help="write the report as one self-contained HTML page (graph drawn by Graphviz's dot "
        "when installed). Example: --html report.html",
    )
    g.add_argument(
        "--markdown",
        metavar="FILE",
        help="write a Markdown summary for a pull request (also appended to $GITHUB_STEP_SUMMARY "
        "when set). Example: --markdown summary.md",
    )


def _parse_check_options(args: argparse.Namespace) -> dict[str, Any]:
    from exportkit.validate import Tolerances

    return {
        "tolerances": Tolerances.parse(args.atol, args.rtol),
        "sizes": args.sizes,
        "strict": args.strict,
        "json": None if args.json is None else Path(args.json),
        "junit": None if args.junit is None else Path(args.junit),
        "html": None if args.html is None else Path(args.html),
        "markdown": None if args.markdown is None else Path(args.markdown),
    }


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
        help="address to bind (default 127.0.0.1; any other address exposes the model to the "
        "network)",
    )
    g.add_argument(
        "--no-browser",
        action="store_true",
        help="print the URL, do not open a browser (one opens only where a display exists; "
        "over SSH the ssh -L line to reach the URL is printed)",
    )


def _parse_view_options(args: argparse.Namespace) -> dict[str, Any]:
    return {"host": args.host, "port": args.port, "browser": not args.no_browser}


class _Parser(argparse.ArgumentParser):
    """argparse's own errors become exportkit's: one error line, one hint, exit 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, hint=f"run '{self.prog} --help' for the usage")


Group = tuple[
    Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], dict[str, Any]]
]
MODEL: Group = (_add_model_options, _parse_model_options)
EXPORT: Group = (_add_export_options, _parse_export_options)
CHECK: Group = (_add_check_options, _parse_check_options)
VIEW: Group = (_add_view_options, _parse_view_options)
SUMMARY: Group = (add_summary_options, parse_summary_options)
DIFF: Group = (add_diff_options, parse_diff_options)
VARIANTS: Group = (add_variant_options, parse_variant_options)
BASELINE: Group = (add_baseline_options, parse_baseline_options)
GROUPS: dict[str, tuple[Group, ...]] = {
    "export": (MODEL, EXPORT, CHECK, DECODE, VARIANTS, BASELINE, CACHE),
    "view": (MODEL, EXPORT, CHECK, DECODE, VIEW, VARIANTS, CACHE),
    "summary": (SUMMARY,),
    "check": (MODEL, CHECK, DECODE, VARIANTS, BASELINE),
    "diff": (DIFF,),
    "ci": (CI, CACHE),
}


def options_from(args: argparse.Namespace) -> Options:
    """The Options the parsed command line asks for: each of its groups parses its own flags."""
    fields: dict[str, Any] = {}
    for _, parse in GROUPS[args.command]:
        fields.update(parse(args))
    return Options(**fields)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="exportkit",
        description="PyTorch -> ONNX you can trust and look at: export, simplify, validate against "
        "onnxruntime, summarize, view in Netron.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"exportkit {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=_Parser
    )
    fmt = argparse.RawDescriptionHelpFormatter
    commands = {
        "export": sub.add_parser(
            "export",
            help="export a model to ONNX, simplify, validate, summarize",
            description="Load a model, build example inputs, export to ONNX, simplify, check "
            "onnxruntime against PyTorch, and print the graph summary. Exit 1 when the export is "
            "wrong.",
            epilog=EPILOG_EXPORT + EXIT_CODES,
            formatter_class=fmt,
        ),
        "view": sub.add_parser(
            "view",
            help="export (as 'export') and open the graph in Netron, or view an .onnx file",
            description="Run the export pipeline and serve the final graph in Netron until "
            "Ctrl-C, or serve an existing .onnx file.",
            epilog="examples:\n  exportkit view examples/simple_net.py:SimpleNet --input x:2x10\n"
            "  exportkit view model.onnx --port 8080 --no-browser\n" + EXIT_CODES,
            formatter_class=fmt,
        ),
        "summary": sub.add_parser(
            "summary",
            help="print the graph summary of any ONNX file (no torch needed)",
            description="Shapes, types, parameters and MACs of every node of an ONNX file.",
            epilog="examples:\n  exportkit summary model.onnx\n"
            "  exportkit summary model.onnx --format json\n"
            "  exportkit summary model.onnx --depth 2 --columns name,type,shape,params,macs\n"
            "  exportkit summary model.onnx --dim batch=1\n" + EXIT_CODES,
            formatter_class=fmt,
        ),
        "check": sub.add_parser(
            "check",
            help="validate an ONNX file made elsewhere against the PyTorch model",
            description="Run the PyTorch model and the ONNX file on the same inputs; exit 0 when "
            "they match, 1 when they do not.",
            epilog="examples:\n  exportkit check model.onnx model.py:Net --input x:1x3x224x224\n"
            + EXIT_CODES,
            formatter_class=fmt,
        ),
        "diff": sub.add_parser(
            "diff",
            help="compare two ONNX files by PyTorch module (contract, structure, weights, numbers)",
            description="Compare B with A: inputs and outputs (dims by name), opsets, the module "
            "tree (ops, params, MACs), weights, and outputs on the same seeded inputs. Exit 0 "
            "when they are equivalent, 1 when they differ.",
            epilog="examples:\n  exportkit diff old.onnx new.onnx\n"
            "  exportkit diff old.onnx new.onnx --format markdown > comment.md\n"
            "  exportkit diff fp32.onnx fp16.onnx --atol 1e-2\n"
            "  exportkit diff a.onnx b.onnx --no-numbers --no-weights   # structure only\n"
            "\nexit codes:\n  0  equivalent     1  they differ     2  bad input\n",
            formatter_class=fmt,
        ),
        "ci": add_ci_parser(sub, fmt, EXIT_CODES),
    }
    commands["diff"].add_argument("a", metavar="A.onnx", help="the reference file")
    commands["diff"].add_argument("b", metavar="B.onnx", help="the file compared with it")
    commands["export"].add_argument("model", metavar="SPEC", help=SPEC_HELP)
    commands["view"].add_argument(
        "model", metavar="SPEC|FILE.onnx", help="a model spec, or an .onnx file to view"
    )
    commands["summary"].add_argument("file", metavar="FILE.onnx", help="the ONNX file")
    commands["check"].add_argument("file", metavar="FILE.onnx", help="the ONNX file to check")
    commands["check"].add_argument("model", metavar="SPEC", help=SPEC_HELP)
    for name, command in commands.items():
        for add, _ in GROUPS[name]:
            add(command)
    return parser
