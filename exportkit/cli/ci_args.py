"""``exportkit ci`` and the cache flag: the ci command's arguments, its parser, and
``--no-cache`` (also on export and view), each an add/parse pair."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = [
    "CACHE",
    "CI",
    "EPILOG_CI",
    "add_cache_options",
    "add_ci_options",
    "add_ci_parser",
    "parse_cache_options",
    "parse_ci_options",
]

EPILOG_CI = """config (pyproject.toml):
  [tool.exportkit]
  atol = 1e-4                      # top-level keys: defaults for every model
  [[tool.exportkit.models]]
  spec = "models/net.py:Net"
  input = ["x:2x3x224x224"]
  dynamic = ["batch"]
  [[tool.exportkit.models]]
  spec = "hf:models/tiny_bert"
  output = "onnx/bert.onnx"
  rtol = {logits = 1e-3}

examples:
  exportkit ci
  exportkit ci path/to/project -j 2 --json ci.json --junit ci.xml
"""


def add_cache_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--no-cache",
        dest="cache",
        action="store_false",
        help="run every stage even when an unchanged passing run is in the cache "
        "($EXPORTKIT_CACHE, default ~/.cache/exportkit)",
    )


def parse_cache_options(args: argparse.Namespace) -> dict[str, Any]:
    return {"cache": args.cache}


def add_ci_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "project",
        nargs="?",
        default=".",
        metavar="PROJECT",
        help="the project folder (default .), or its pyproject.toml / exportkit.toml",
    )
    p.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=None,
        metavar="N",
        help="models run at once, each in its own process (default: one per core)",
    )
    p.add_argument(
        "--json", metavar="FILE", help="write every model's verdict and report as one JSON file"
    )
    p.add_argument(
        "--junit", metavar="FILE", help="write JUnit XML: a suite per model, a case per check"
    )


def parse_ci_options(args: argparse.Namespace) -> dict[str, Any]:
    return {}  # the project, -j and the combined files are the ci verb's own arguments


def add_ci_parser(sub: Any, fmt: type[argparse.HelpFormatter], exit_codes: str) -> Any:
    """The ``ci`` subcommand's parser on ``sub`` (the subparsers action)."""
    return sub.add_parser(
        "ci",
        help="export and validate every model of a project's [tool.exportkit] config",
        description="Read [[tool.exportkit.models]] from pyproject.toml (or [[models]] from "
        "exportkit.toml), run each model as 'export' would, in parallel processes, and print "
        "a line per model and a final table. Exit 1 when any model fails, 2 on a bad config.",
        epilog=EPILOG_CI + exit_codes,
        formatter_class=fmt,
    )


# The add/parse pairs, as cli.args.GROUPS lists them.
CACHE = (add_cache_options, parse_cache_options)
CI = (add_ci_options, parse_ci_options)
