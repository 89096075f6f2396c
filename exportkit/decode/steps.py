"""Chained decode steps: the ONNX file fed its own previous outputs, eager PyTorch its own.

``validate_steps`` is the verb. Step 0 is the prefill (a prompt on an empty past, or the
model's initial state); each next step feeds both sides the same new input (for a language
model, eager PyTorch's greedy token) and each side its own state, by the pairs. The first
failing step is localized as today's validation does, on that step's ONNX inputs.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from exportkit.decode.results import DecodeResult, StatePair, StepResult

if TYPE_CHECKING:
    import numpy as np
    import torch
    from torch import nn

    from exportkit.inputs import ExampleInputs
    from exportkit.validate import OutputCheck, Tolerances

__all__ = ["PROMPT", "validate_steps"]

PROMPT = 5  # prefill length: none of the export's example sizes


def _eager(module: nn.Module, tensors: Mapping[str, torch.Tensor]) -> tuple[np.ndarray, ...]:
    import torch

    from exportkit.validate.cases import flat_outputs

    with torch.no_grad():
        return flat_outputs(module(**tensors))


def _prompt(example: ExampleInputs, token_input: str, length: int, seed: int) -> torch.Tensor:
    from exportkit.inputs.examples import draw

    spec = example.specs[token_input]
    shape = (spec.shape[0], length)
    return draw({token_input: replace(spec, shape=shape)}, seed)[token_input]


def _free_inputs(
    example: ExampleInputs, state: set[str], step: int, seed: int
) -> dict[str, torch.Tensor]:
    """Fresh seeded non-state inputs for a step of a model without tokens (same shapes)."""
    free = {n for n in example.tensors if n not in state}
    if step == 0:
        return {n: example.tensors[n] for n in free}
    drawn = example.resample(example.labels, seed=seed + 100 + step).tensors
    return {n: drawn[n] for n in free}


def _initial_state(example: ExampleInputs, pairs: Sequence[StatePair]) -> dict[str, torch.Tensor]:
    """An empty past (length 0 on the growing axis); fixed-size state as the example holds it."""
    out = {}
    for pair in pairs:
        t = example.tensors[pair.input]
        if pair.axis is not None:
            t = t.narrow(pair.axis, 0, 0).contiguous()
        out[pair.input] = t
    return out


def _next_token(logits: np.ndarray) -> np.ndarray:
    token: np.ndarray = logits[:, -1, :].argmax(-1)
    return token


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
    agrees = None
    if token_output is not None:
        i = names.index(token_output)
        if expected[i].shape == actual[i].shape:
            agrees = bool((_next_token(expected[i]) == _next_token(actual[i])).all())
        else:
            agrees = False
    diff = max((c.max_abs if c.actual_shape is None else float("inf") for c in checks), default=0.0)
    passed = all(c.passed for c in checks) and agrees is not False
    return StepResult(step, past, diff, agrees, passed, checks)


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
) -> DecodeResult:
    """Run the prefill and ``steps`` chained steps on the file and on the eager module, compare.

    Args:
        module: the eager model (exported by keyword with ``example``'s names).
        path: the ONNX file; its inputs and outputs carry the names of ``pairs``.
        example: the export's inputs (shapes, dtypes, ranges of the non-state inputs).
        pairs: the state pairs; a pair with a growing ``axis`` starts empty (prefill).
        steps: how many decode steps follow the prefill.
        tolerances: per-output atol/rtol, as for the single-call validation.
        token_input, token_output: for a language model, the ids input and the logits output;
            each step then feeds both sides eager PyTorch's greedy next token.
        seed: seed of the prompt and of fresh non-state inputs.
        locate: name the PyTorch module where the first failing step diverges.

    Raises:
        RuntimeStageError: onnxruntime cannot load the file.
    """
    from exportkit.errors import first_line
    from exportkit.export import output_names
    from exportkit.validate import Tolerances
    from exportkit.validate.fit import match_names
    from exportkit.validate.session import session

    start = time.perf_counter()
    tolerances = tolerances or Tolerances()
    import torch

    sess = session(Path(path))
    # The file's own spelling of each input (Optimum's past_key_values.0.key): model name -> file's.
    spelled = match_names([i.name for i in sess.get_inputs()], list(example.tensors)) or {}
    to_file = {model: file for file, model in spelled.items() if model != file}
    # Outputs by the model's names (as the report shows them), matched to the file's by position.
    with torch.no_grad():
        names = output_names(module(**example.tensors))
    if token_output not in names:
        token_input = token_output = None
    state_names = {p.input for p in pairs}
    out_index = {p.input: names.index(p.output) for p in pairs}
    grows = [p for p in pairs if p.axis is not None]
    eager_state = _initial_state(example, pairs)
    onnx_state = {n: t.numpy() for n, t in eager_state.items()}
    prefill: Any = "empty past" if grows else "initial state"
    notes: list[str] = []
    if token_input is not None:
        # Other inputs (an encoder's output) stay as in the example at every step.
        free = {n: t for n, t in example.tensors.items() if n not in state_names}
        free[token_input] = _prompt(example, token_input, PROMPT, seed + 7)
    else:
        free = _free_inputs(example, state_names, 0, seed)
    results: list[StepResult] = []
    step_inputs: list[dict[str, Any]] = []
    before: dict[str, tuple[int, ...]] = {}
    for step in range(steps + 1):
        feeds = {n: t.numpy() for n, t in free.items()} | onnx_state
        past = _past_length(feeds, grows)
        layout = _layout_breaks(pairs, before, eager_state) if step else []
        try:
            eager_out = _eager(module, {**free, **eager_state})
        except Exception as exc:  # the model's own failure: a finding of this step
            results.append(_eager_failure(module, step, past, exc, layout))
            break
        before = {n: tuple(t.shape) for n, t in eager_state.items()}
        try:
            actual = sess.run(None, {to_file.get(n, n): a for n, a in feeds.items()})
        except Exception as exc:
            if step == 0 and grows and "invalid dimensions for input" in str(exc):
                # The graph refuses a zero-length past: start from eager PyTorch's prefill.
                prefill = "eager prompt"
                notes.append(f"the file does not take an empty past ({first_line(exc)})")
                onnx_state = {p.input: eager_out[out_index[p.input]] for p in pairs}
                eager_state = {n: _torch(a) for n, a in onnx_state.items()}
                free = _advance(
                    free,
                    token_input,
                    token_output,
                    names,
                    eager_out,
                    example,
                    state_names,
                    step,
                    seed,
                )
                continue
            error = f"onnxruntime failed: {first_line(exc)}"
            results.append(StepResult(step, past, float("inf"), None, False, error=error))
            step_inputs.append(feeds)
            break
        judged = _judge(step, past, names, eager_out, actual, tolerances, token_output)
        if layout:
            judged = replace(judged, passed=False, error="; ".join(layout))
        results.append(judged)
        step_inputs.append(feeds)
        eager_state = {p.input: _torch(eager_out[out_index[p.input]]) for p in pairs}
        onnx_state = {p.input: actual[out_index[p.input]] for p in pairs}
        free = _advance(
            free, token_input, token_output, names, eager_out, example, state_names, step, seed
        )
    failed = next((i for i, r in enumerate(results) if not r.passed), None)
    if locate and failed is not None and failed < len(step_inputs):
        results[failed] = _localized(module, path, results[failed], step_inputs[failed], tolerances)
    shown = tuple(replace(p, input=to_file.get(p.input, p.input)) for p in pairs)  # the file's
    return DecodeResult(shown, tuple(results), prefill, time.perf_counter() - start, tuple(notes))


def _layout_breaks(
    pairs: Sequence[StatePair],
    before: Mapping[str, tuple[int, ...]],
    state: Mapping[str, torch.Tensor],
) -> list[str]:
    """Each state that came back in another layout than it went in (only its growing axis may
    change), as a sentence."""
    breaks = []
    for p in pairs:
        went, came = before.get(p.input), tuple(state[p.input].shape)
        if went is None:
            continue
        same = len(went) == len(came) and all(
            a == b for i, (a, b) in enumerate(zip(went, came)) if i != p.axis
        )
        if not same:
            breaks.append(
                f"{p.output} came out {'x'.join(map(str, came))} where {p.input} went in "
                f"{'x'.join(map(str, went))}: the state's layout changes between input and output"
            )
    return breaks


def _eager_failure(
    module: nn.Module, step: int, past: int | None, exc: Exception, layout: Sequence[str]
) -> StepResult:
    """Eager PyTorch itself cannot take its own previous outputs: where it raised, and why."""
    from exportkit.diagnose import locate_exception
    from exportkit.errors import first_line
    from exportkit.validate import Divergence

    where = locate_exception(module, exc)
    at = f" in {where.describe()}" if where is not None else ""
    error = f"PyTorch itself fails{at} on its own previous outputs: {first_line(exc)}"
    if layout:
        error = "; ".join(layout) + f"; {error}"
    div = Divergence("pytorch error", f"step {step}", where, error) if where is not None else None
    return StepResult(step, past, float("inf"), None, False, error=error, divergence=div)


def _past_length(feeds: Mapping[str, np.ndarray], grows: Sequence[StatePair]) -> int | None:
    """The length of the past a step reads (None when no state grows)."""
    for pair in grows:
        if pair.axis is not None:
            return int(feeds[pair.input].shape[pair.axis])
    return None


def _torch(array: np.ndarray) -> torch.Tensor:
    import torch

    return torch.from_numpy(array.copy())


def _advance(
    free: dict[str, torch.Tensor],
    token_input: str | None,
    token_output: str | None,
    names: Sequence[str],
    eager_out: Sequence[np.ndarray],
    example: ExampleInputs,
    state: set[str],
    step: int,
    seed: int,
) -> dict[str, torch.Tensor]:
    """The next step's non-state inputs: eager's greedy token, or fresh draws."""
    if token_input is not None and token_output is not None:
        token = _next_token(eager_out[names.index(token_output)])
        return {**free, token_input: _torch(token[:, None].astype("int64"))}
    return _free_inputs(example, state, step + 1, seed)


def _localized(
    module: nn.Module,
    path: str | Path,
    result: StepResult,
    feeds: Mapping[str, np.ndarray],
    tolerances: Tolerances,
) -> StepResult:
    """The step's ONNX inputs as a validation case, so today's localization names the module."""
    from exportkit.inputs import ExampleInputs
    from exportkit.inputs.make import spec_of
    from exportkit.validate import Case, validate

    tensors = {n: _torch(a) for n, a in feeds.items()}
    inputs = ExampleInputs(tensors=tensors, specs={n: spec_of(t) for n, t in tensors.items()})
    case = Case(f"step {result.step}", inputs, _eager(module, tensors))
    check = validate(module, path, [case], tolerances)
    return replace(result, divergence=check.divergence)
