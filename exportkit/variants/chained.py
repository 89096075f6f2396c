"""A variant of a stateful graph validated over chained decode steps, as the float file is: the
prefill, then each step fed the variant's own previous outputs by the state pairs, against eager
PyTorch (float32) with its own cache; each step measured as the variant is judged (float16 by
tolerance, int8 by cosine, SQNR and top-1), its greedy next token compared, the first failing
step placed at a PyTorch module."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from exportkit.variants.metrics import FP16_TOLERANCES, measure
from exportkit.variants.results import Thresholds, VariantResult, VariantStep

if TYPE_CHECKING:
    from torch import nn

    from exportkit.decode import StatePair
    from exportkit.inputs import ExampleInputs
    from exportkit.validate import Divergence, Tolerances

__all__ = ["chain_variant"]


def chain_variant(
    row: VariantResult,
    model: nn.Module,
    example: ExampleInputs,
    pairs: Sequence[StatePair],
    *,
    steps: int,
    float_path: Path | None = None,
    tolerances: Tolerances | None = None,
    seed: int = 0,
    locate: bool = True,
) -> VariantResult:
    """``row`` with its chained steps (``steps``), failed when one fails.

    Args:
        row: a variant as validated at the export's cases (the float file's row is returned as
            it is: the decode stage chains it).
        model: the eager model, exported by keyword with ``example``'s names.
        example: the export's inputs; pairs: the state pairs (model input names).
        steps: decode steps after the prefill.
        float_path: the float file, to place an int8 step's divergence against its values.
        tolerances: for tolerance-judged variants (float16 default 1e-2/1e-2).
        seed: seed of the prompt (the same as the float file's chain).
        locate: name the PyTorch module where the first failing step diverges.
    """
    if row.name == "float" or row.path is None or row.error is not None or not pairs:
        return row
    from exportkit.decode.chain import Chain, token_input
    from exportkit.decode.seq2seq import first_step, prefill_path
    from exportkit.decode.steps import token_agrees, token_tie
    from exportkit.errors import first_line
    from exportkit.validate import Tolerances

    metrics = row.judge == "metrics"
    tol = tolerances or (FP16_TOLERANCES if row.name == "fp16" else Tolerances())
    limits = row.thresholds or Thresholds()
    ids = token_input(example, pairs)
    # An encoder-decoder's step 0 runs its (float) prefill file; the variant runs the steps.
    first = first_step(model, prefill_path(float_path) if float_path else None, seed)
    try:
        chain = Chain(model, row.path, example, pairs, steps=steps, token_input=ids,
                      token_output="logits" if ids is not None else None, seed=seed,
                      first=first)  # fmt: skip
    except Exception as exc:  # the row's own trials say it cannot load
        step = VariantStep(0, None, math.inf, None, False, error=first_line(exc))
        return replace(row, steps=(step,), passed=False)
    found: list[VariantStep] = []
    feeds: list[Mapping[str, Any]] = []
    for run in chain:
        if run.eager_error is not None:
            error = (
                f"PyTorch itself fails on its own previous outputs: {first_line(run.eager_error)}"
            )
            found.append(VariantStep(run.step, run.past, math.inf, None, False, error=error))
            break
        feeds.append({} if run.prefill else run.feeds)  # the prefill file is not this variant
        if run.actual is None:
            found.append(VariantStep(run.step, run.past, math.inf, None, False, error=run.error))
            break
        names = chain.first_names if run.prefill else chain.names
        outputs = tuple(
            measure(n, e, a, tolerances=None if metrics else tol, thresholds=limits)
            for n, e, a in zip(names, run.expected, run.actual)
        )
        agrees = token_agrees(names, run.expected, run.actual, chain.token_output)
        tie = False
        if agrees is False and not metrics and chain.token_output in names:
            judged = outputs[names.index(chain.token_output)]
            tie = token_tie(names, run.expected, run.actual, chain.token_output,
                            judged.atol or 0.0, judged.rtol or 0.0)  # fmt: skip
        # int8 judges token scores by top-1 agreement against its threshold (every row of the
        # step), so one flipped greedy token is a figure there, not a verdict by itself; a file
        # judged by tolerance fails on a flip unless PyTorch's own top two are a tie there.
        passed = all(o.passed for o in outputs) and (metrics or agrees is not False or tie)
        broken = "; ".join(run.layout) or None
        diff = max((o.max_abs for o in outputs), default=0.0)
        found.append(VariantStep(run.step, run.past, diff, agrees, passed and not broken,
                                 outputs, broken, token_tie=tie))  # fmt: skip
    failed = next((i for i, s in enumerate(found) if not s.passed), None)
    placeable = failed is not None and failed < len(feeds) and bool(feeds[failed])
    if locate and failed is not None and placeable and found[failed].error is None:
        found[failed] = _placed(row, model, float_path, found[failed], feeds[failed], tol, limits)
    passed = row.passed and bool(found) and failed is None
    divergence = row.divergence
    if divergence is None and failed is not None:
        divergence = found[failed].divergence
    return replace(row, steps=tuple(found), passed=passed, divergence=divergence)


def _placed(
    row: VariantResult,
    model: nn.Module,
    float_path: Path | None,
    step: VariantStep,
    feeds: Mapping[str, Any],
    tolerances: Tolerances,
    thresholds: Thresholds,
) -> VariantStep:
    """The failing step, run once more on its own inputs against eager PyTorch on the same
    inputs: within its marks there, the difference was carried in through the state
    (``accumulated``); else where it departs (eager localization for float files, the float
    file's values for quantized ones)."""
    from exportkit.decode.steps import locate_step, step_case
    from exportkit.variants.runner import run_trials

    assert row.path is not None
    metrics = row.judge == "metrics"
    case = step_case(model, step.step, feeds)
    once = run_trials(row.path, [case], tolerances=None if metrics else tolerances,
                      thresholds=thresholds)  # fmt: skip
    if once and once[0].passed:
        return replace(step, accumulated=True)
    where: Divergence | None = None
    if not metrics:
        where = locate_step(model, row.path, step.step, feeds, tolerances)
    elif float_path is not None:
        from exportkit.variants.locate import against_float

        where = against_float(float_path, row.path, [case], thresholds)
    return replace(step, divergence=where)
