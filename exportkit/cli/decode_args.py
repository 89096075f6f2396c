"""The decoder flags (``--steps``, ``--state``) as one add/parse pair."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["DECODE", "add_decode_options", "parse_decode_options"]


def add_decode_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("decoders and state")
    g.add_argument(
        "--steps",
        type=int,
        default=0,
        metavar="N",
        help="validate the prefill and N chained decode steps, each fed its own previous "
        "outputs, against eager PyTorch; a transformers causal LM is exported with its "
        "key/value cache as named tensors. Example: --steps 4",
    )
    g.add_argument(
        "--state",
        action="append",
        default=[],
        metavar="INPUT=OUTPUT",
        help="an input that takes an output of the previous step (names as the report shows "
        "them); inferred by name when left out (past*/present*, state*/new_state*, h0/hn). "
        "Repeat per state. Example: --state past_k=output.1",
    )


def parse_decode_options(args: argparse.Namespace) -> dict[str, Any]:
    from exportkit.decode.state import parse_state

    return {"steps": args.steps, "state": tuple(parse_state(s) for s in args.state)}


DECODE = (add_decode_options, parse_decode_options)
