"""The flag groups of comparing files: ``diff``'s own flags and ``--baseline`` on export/check."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = [
    "add_baseline_options",
    "add_diff_options",
    "parse_baseline_options",
    "parse_diff_options",
]


def add_baseline_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("baseline (CI)")
    g.add_argument(
        "--baseline",
        metavar="OLD.onnx|OLD.json",
        default=None,
        help="after the checks, fail (exit 1) on a regression against an earlier file or "
        "--json report: changed inputs/outputs, a dim that lost its dynamic name, new op types, "
        "opset or IR above --max-opset, output drift, node count or latency growth. "
        "Example: --baseline release/model.onnx",
    )
    g.add_argument(
        "--allow-op", dest="allow_ops", action="append", default=[], metavar="OP",
        help="an op type the baseline may not have (repeat). Example: --allow-op LayerNormalization",
    )  # fmt: skip
    g.add_argument(
        "--max-opset", type=int, default=None, metavar="N",
        help="highest opset (and the IR version it needs) allowed; default the baseline's",
    )  # fmt: skip
    g.add_argument(
        "--max-node-growth", type=float, default=10.0, metavar="PCT",
        help="fail when the node count grows by more than PCT percent (default 10)",
    )  # fmt: skip
    g.add_argument(
        "--max-latency-growth", type=float, default=25.0, metavar="PCT",
        help="fail when onnxruntime latency (best of 20 runs) grows by more than PCT percent "
        "and 50 us (default 25); not measured against a --json report",
    )  # fmt: skip
    g.add_argument(
        "--drift-atol", type=float, default=None, metavar="VALUE",
        help="absolute tolerance for the outputs against the baseline (default: as --atol)",
    )  # fmt: skip


def parse_baseline_options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "baseline": None if args.baseline is None else Path(args.baseline),
        "allow_ops": tuple(args.allow_ops),
        "max_opset": args.max_opset,
        "max_node_growth": args.max_node_growth / 100,
        "max_latency_growth": args.max_latency_growth / 100,
        "drift_atol": args.drift_atol,
    }


def add_diff_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--html",
        metavar="FILE",
        help="also write the diff as one self-contained HTML page. Example: --html diff.html",
    )
    p.add_argument(
        "--format",
        choices=("table", "json", "markdown"),
        default="table",
        help="table (default) for people, json for machines, markdown for a pull-request comment",
    )
    p.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="NAME:SHAPE[:DTYPE][:RANGE] | NAME=FILE",
        help="an input for the numbers, as export takes it; other inputs are drawn from A's "
        "shapes (symbolic dims 2, or the size B fixes). Example: --input x:1x3x224x224",
    )
    p.add_argument(
        "--atol", action="append", default=[], metavar="[OUTPUT=]VALUE",
        help="absolute tolerance on the outputs, as check takes it. Example: --atol 1e-3",
    )  # fmt: skip
    p.add_argument(
        "--rtol", action="append", default=[], metavar="[OUTPUT=]VALUE",
        help="relative tolerance on the outputs, as --atol",
    )  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="seed of the drawn inputs (default 0)")
    p.add_argument(
        "--dim", action="append", default=[], metavar="NAME=VALUE",
        help="give a symbolic dimension a value so the modules' MACs that depend on it are "
        "counted (as summary takes it). Repeat per dim. Example: --dim batch=1",
    )  # fmt: skip
    p.add_argument(
        "--no-numbers",
        dest="numbers",
        action="store_false",
        help="do not run the files on onnxruntime (structure, contract and weights only)",
    )
    p.add_argument(
        "--no-weights",
        dest="weights",
        action="store_false",
        help="do not compare weight values; with --no-numbers no weight data is read at all",
    )


def parse_diff_options(args: argparse.Namespace) -> dict[str, Any]:
    from exportkit.summary import parse_dims
    from exportkit.validate import Tolerances

    return {
        "tolerances": Tolerances.parse(args.atol, args.rtol),
        "seed": args.seed,
        "dims": parse_dims(args.dim),
        "html": None if args.html is None else Path(args.html),
    }
