"""Chained decode steps judged against eager PyTorch: the ONNX file fed its own previous
outputs, eager PyTorch its own (run by :class:`exportkit.decode.chain.Chain`).

``validate_steps`` is the verb. Each step's outputs are compared as the single-call validation
compares them, plus the greedy next-token agreement for a language model. The first failing step
is localized as today's validation does, on that step's ONNX inputs.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from exportkit.decode.chain import PROMPT, Chain, FirstStep, eager_outputs, next_token, to_torch
from exportkit.decode.results import DecodeResult, StatePair, StepResult

if TYPE_CHECKING:
    import numpy as np
    from torch import nn

    from exportkit.inputs import ExampleInputs
    from exportkit.validate import Case, Divergence, OutputCheck, Tolerances

__all__ = [
    "PROMPT",
    "FirstStep",
    "locate_step",
    "step_case",
    "token_agrees",
    "token_tie",
    "validate_steps",
]


def token_agrees(
    names: Sequence[str],
    expected: Sequence[np.ndarray],
    actual: Sequence[np.ndarray],
    token_output: str | None,
) -> bool | None:
    """Whether both sides pick the same greedy next token (None without token logits)."""
    if token_output is None:
        return None
    i = names.index(token_output)
    if expected[i].shape != actual[i].shape:
        return False
    return bool((next_token(expected[i]) == next_token(actual[i])).all())


def token_tie(
    names: Sequence[str],
    expected: Sequence[np.ndarray],
    actual: Sequence[np.ndarray],
    token_output: str | None,
    atol: float,
    rtol: float,
) -> bool:
    """The greedy tokens differ only in rows where PyTorch's own top score beats the file's
    choice by no more than the logits' tolerance lets the two scores move (``atol + rtol *
    |score|`` each): a tie either side may break, which the logits' comparison judges."""
    import numpy as np

    if token_output is None:
        return False
    i = names.index(token_output)
    if expected[i].shape != actual[i].shape:
        return False
    e = expected[i][:, -1, :].astype(np.float64)
    rows = np.arange(len(e))
    best, chosen = next_token(expected[i]), next_token(actual[i])
    if (best == chosen).all():
        return False
    top, picked = e[rows, best], e[rows, chosen]
    allowed = 2 * atol + rtol * (np.abs(top) + np.abs(picked))
    return bool((top - picked <= allowed).all())


def _judge(
    step: int,
    past: int | None,
    names: Sequence[str],
    expected: Sequence[np.ndarray],
    actual: Sequence[np.ndarray],
    tolerances: Tolerances,
    token_output: str | None,
) -> StepResult:
    from exportkit.validate.compare import compare_arrays

    checks: tuple[OutputCheck, ...] = tuple(
        compare_arrays(n, e, a, tolerances) for n, e, a in zip(names, expected, actual)
    )
    agrees = token_agrees(names, expected, actual, token_output)
    tie = False
    if agrees is False and token_output is not None:
        atol, rtol = tolerances.for_output(
            token_output, str(expected[names.index(token_output)].dtype)
        )
        tie = token_tie(names, expected, actual, token_output, atol, rtol)
    diff = max((c.max_abs if c.actual_shape is None else float("inf") for c in checks), default=0.0)
    passed = all(c.passed for c in checks) and (agrees is not False or tie)
    return StepResult(step, past, diff, agrees, passed, checks, token_tie=tie)


def validate_steps(
    module: nn.Module,
    path: str | Path,
    example: ExampleInputs,
    pairs: Sequence[StatePair],
    *,
    steps: int,
    tolerances: Tolerances | None = None,
    token_input: str | None = None,
    token_output: str | None = None,
    seed: int = 0,
    locate: bool = True,
    first: FirstStep | None = None,
) -> DecodeResult:
    """Run the prefill and ``steps`` chained steps on the file and on the eager module, compare.

    Args:
        module: the eager model (exported by keyword with ``example``'s names).
        path: the ONNX file; its inputs and outputs carry the names of ``pairs`` (inputs may be
            spelled with other separators, as Optimum spells ``past_key_values.0.key``).
        example: the export's inputs (shapes, dtypes, ranges of the non-state inputs).
        pairs: the state pairs; a pair with a growing ``axis`` starts empty (prefill).
        steps: how many decode steps follow the prefill.
        tolerances: per-output atol/rtol, as for the single-call validation.
        token_input, token_output: for a language model, the ids input and the logits output;
            each step then feeds both sides eager PyTorch's greedy next token.
        seed: seed of the prompt and of fresh non-state inputs.
        locate: name the PyTorch module where the first failing step diverges.
        first: step 0 on a graph of its own (an encoder-decoder's prefill), whose outputs give
            every pair's first value; pairs it alone writes are carried unchanged after it.

    Raises:
        RuntimeStageError: onnxruntime cannot load the file.
    """
    from exportkit.validate import Tolerances

    start = time.perf_counter()
    tolerances = tolerances or Tolerances()
    chain = Chain(module, path, example, pairs, steps=steps, token_input=token_input,
                  token_output=token_output, seed=seed, first=first)  # fmt: skip
    results: list[StepResult] = []
    step_inputs: list[tuple[nn.Module, Path | None, Mapping[str, Any]]] = []
    for run in chain:
        graph, file = (first.module, first.path) if first and run.prefill else (module, path)
        if run.eager_error is not None:
            results.append(_eager_failure(graph, run.step, run.past, run.eager_error, run.layout))
            break
        step_inputs.append((graph, Path(file) if file is not None else None, run.feeds))
        if run.actual is None:
            results.append(
                StepResult(run.step, run.past, float("inf"), None, False, error=run.error)
            )
            break
        names = chain.first_names if run.prefill else chain.names
        judged = _judge(run.step, run.past, names, run.expected, run.actual, tolerances,
                        chain.token_output)  # fmt: skip
        if run.layout:
            judged = replace(judged, passed=False, error="; ".join(run.layout))
        results.append(judged)
    failed = next((i for i, r in enumerate(results) if not r.passed), None)
    if locate and failed is not None and failed < len(step_inputs):
        graph, file, feeds = step_inputs[failed]
        if file is not None:
            found = locate_step(graph, file, results[failed].step, feeds, tolerances)
            results[failed] = replace(results[failed], divergence=found)
    return DecodeResult(chain.shown_pairs(), tuple(results), chain.prefill,
                        time.perf_counter() - start, tuple(chain.notes))  # fmt: skip


def _eager_failure(
    module: nn.Module, step: int, past: int | None, exc: Exception, layout: Sequence[str]
) -> StepResult:
    """Eager PyTorch itself cannot take its own previous outputs: where it raised, and why."""
    from exportkit.diagnose import locate_exception
    from exportkit.errors import first_line
    from exportkit.validate import Divergence

    where = locate_exception(module, exc, deepest=True)
    at = f" in {where.describe()}" if where is not None else ""
    error = f"PyTorch itself fails{at} on its own previous outputs: {first_line(exc)}"
    if layout:
        error = "; ".join(layout) + f"; {error}"
    div = Divergence("pytorch error", f"step {step}", where, error) if where is not None else None
    return StepResult(step, past, float("inf"), None, False, error=error, divergence=div)


def step_case(module: nn.Module, step: int, feeds: Mapping[str, np.ndarray]) -> Case:
    """A step's ONNX inputs (model names) as a validation case, eager's outputs expected."""
    from exportkit.inputs import ExampleInputs
    from exportkit.inputs.make import spec_of
    from exportkit.validate import Case

    tensors = {n: to_torch(a) for n, a in feeds.items()}
    inputs = ExampleInputs(tensors=tensors, specs={n: spec_of(t) for n, t in tensors.items()})
    return Case(f"step {step}", inputs, eager_outputs(module, tensors))


def locate_step(
    module: nn.Module,
    path: str | Path,
    step: int,
    feeds: Mapping[str, np.ndarray],
    tolerances: Tolerances,
) -> Divergence | None:
    """Where the file departs from eager PyTorch on a step's inputs (today's localization)."""
    from exportkit.validate import validate

    check = validate(module, path, [step_case(module, step, feeds)], tolerances)
    return check.divergence
