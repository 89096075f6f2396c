"""``exportkit summary``'s flags (``--format``, ``--depth``, ``--columns``, ``--dim``) as one
add/parse pair."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_summary_options", "parse_summary_options"]


def add_summary_options(p: argparse.ArgumentParser) -> None:
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


def parse_summary_options(args: argparse.Namespace) -> dict[str, Any]:
    from exportkit.summary import parse_dims

    return {"dims": parse_dims(args.dim)}
