"""The pipeline's --baseline step and the fingerprint a ``--json`` report carries for it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from exportkit.inputs import InputSpec
from exportkit.options import Options
from exportkit.stages import Stages

__all__ = ["check_against_baseline", "fingerprint_for"]


def fingerprint_for(path: Path, inputs: Sequence[InputSpec], options: Options) -> dict[str, Any]:
    """--json: the fingerprint a later run's --baseline needs (contract, ops, output statistics)."""
    from exportkit.diff.baseline import fingerprint

    if options.json is None:
        return {}
    return {"fingerprint": fingerprint(path, seed=options.seed, inputs=inputs)}


def check_against_baseline(
    stages: Stages, path: Path, inputs: Sequence[InputSpec], options: Options
) -> dict[str, Any]:
    """--baseline: each rule of the file at ``path`` against the earlier file or report."""
    from exportkit.diff.baseline import check_baseline

    found: dict[str, Any] = {}
    if options.baseline is not None:
        tol = options.tolerances
        with stages.run("baseline"):
            result = check_baseline(
                path, options.baseline, allow_ops=options.allow_ops, max_opset=options.max_opset,
                tolerances=tol if options.drift_atol is None else replace(tol, atol=options.drift_atol),
                max_node_growth=options.max_node_growth, seed=options.seed,
                max_latency_growth=options.max_latency_growth, inputs=inputs,
            )  # fmt: skip
        found.update(baseline=result.rules, baseline_path=result.path)
    return found
