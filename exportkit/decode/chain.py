"""The chained steps as run, before any judgment: the ONNX file fed its own previous outputs,
eager PyTorch its own, both given the same new input at each step.

:class:`Chain` yields one :class:`ChainStep` per step (the feeds, eager's outputs and the file's);
``validate_steps`` judges them by tolerance, the variant stage by its own metrics. Step 0 is
the prefill (a prompt on an empty past, or the model's initial state); for a language model
each next step feeds both sides eager PyTorch's greedy token.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import numpy as np
    import torch
    from torch import nn

    from exportkit.decode.results import StatePair
    from exportkit.inputs import ExampleInputs

__all__ = [
    "DEFAULT_STEPS",
    "PROMPT",
    "TOKEN_INPUTS",
    "Chain",
    "ChainStep",
    "eager_outputs",
    "next_token",
    "to_torch",
    "token_input",
]

PROMPT = 5  # prefill length: none of the export's example sizes
DEFAULT_STEPS = 3  # with --state but no --steps
TOKEN_INPUTS = ("input_ids", "decoder_input_ids")
_NUMPY = {"tensor(float16)": "float16", "tensor(float)": "float32", "tensor(double)": "float64"}


def token_input(example: ExampleInputs, pairs: Sequence[StatePair]) -> str | None:
    """A language model's ids input (batch x seq, not state), or None."""
    state = {p.input for p in pairs}
    for name in TOKEN_INPUTS:
        ids = example.tensors.get(name)
        if ids is not None and ids.dim() == 2 and name not in state:
            return name
    return None


@dataclass(frozen=True)
class ChainStep:
    """One step as run. ``feeds`` are the file's inputs under the model's names; ``actual`` is
    None when onnxruntime failed (``error`` says why), ``expected`` empty when eager PyTorch
    itself failed (``eager_error``). ``layout`` names state that came back in another layout."""

    step: int
    past: int | None
    feeds: Mapping[str, np.ndarray]
    expected: tuple[np.ndarray, ...] = ()
    actual: tuple[np.ndarray, ...] | None = None
    error: str | None = None
    eager_error: Exception | None = None
    layout: tuple[str, ...] = ()


def next_token(logits: np.ndarray) -> np.ndarray:
    """The greedy next token of each row (the last position's arg-max)."""
    token: np.ndarray = logits[:, -1, :].argmax(-1)
    return token


class Chain:
    """The prefill and ``steps`` chained steps of a file and of the eager module; iterate it.

    ``names`` are the model's output names (the file's outputs are matched by position),
    ``to_file`` maps a model input name to the file's spelling of it (Optimum's
    ``past_key_values.0.key``), ``prefill`` and ``notes`` say how step 0 ran once iterated.
    Iteration stops after a step where either side failed.
    """

    def __init__(
        self,
        module: nn.Module,
        path: str | Path,
        example: ExampleInputs,
        pairs: Sequence[StatePair],
        *,
        steps: int,
        token_input: str | None = None,
        token_output: str | None = None,
        seed: int = 0,
    ) -> None:
        import torch

        from exportkit.export import output_names
        from exportkit.validate.fit import match_names
        from exportkit.validate.session import session

        self.module, self.example, self.pairs = module, example, tuple(pairs)
        self.steps, self.seed = steps, seed
        self.sess = session(Path(path))
        spelled = match_names([i.name for i in self.sess.get_inputs()], list(example.tensors))
        self.to_file = {m: f for f, m in (spelled or {}).items() if m != f}
        self.types = {i.name: _NUMPY.get(i.type) for i in self.sess.get_inputs()}
        with torch.no_grad():
            self.names = output_names(module(**example.tensors))
        if token_output not in self.names:
            token_input = token_output = None
        self.token_input, self.token_output = token_input, token_output
        grows = any(p.axis is not None for p in pairs)
        self.prefill: Literal["empty past", "eager prompt", "initial state"] = (
            "empty past" if grows else "initial state"
        )
        self.notes: list[str] = []

    def shown_pairs(self) -> tuple[StatePair, ...]:
        """The pairs under the file's input names (as the report shows them)."""
        return tuple(replace(p, input=self.to_file.get(p.input, p.input)) for p in self.pairs)

    def _run(self, feeds: Mapping[str, np.ndarray]) -> tuple[np.ndarray, ...]:
        named = {}
        for n, a in feeds.items():
            name = self.to_file.get(n, n)
            dtype = self.types.get(name)
            named[name] = a.astype(dtype) if dtype and a.dtype.kind == "f" else a
        return tuple(self.sess.run(None, named))

    def __iter__(self) -> Iterator[ChainStep]:
        from exportkit.errors import first_line

        pairs, names, example = self.pairs, self.names, self.example
        state_names = {p.input for p in pairs}
        out_index = {p.input: names.index(p.output) for p in pairs}
        grows = [p for p in pairs if p.axis is not None]
        eager_state = _initial_state(example, pairs)
        onnx_state: dict[str, Any] = {n: t.numpy() for n, t in eager_state.items()}
        if self.token_input is not None:
            # Other inputs (an encoder's output) stay as in the example at every step.
            free = {n: t for n, t in example.tensors.items() if n not in state_names}
            free[self.token_input] = _prompt(example, self.token_input, PROMPT, self.seed + 7)
        else:
            free = _free_inputs(example, state_names, 0, self.seed)
        before: dict[str, tuple[int, ...]] = {}
        for step in range(self.steps + 1):
            feeds = {n: t.numpy() for n, t in free.items()} | onnx_state
            past = _past_length(feeds, grows)
            layout = tuple(_layout_breaks(pairs, before, eager_state)) if step else ()
            try:
                eager_out = eager_outputs(self.module, {**free, **eager_state})
            except Exception as exc:  # the model's own failure: a finding of this step
                yield ChainStep(step, past, feeds, eager_error=exc, layout=layout)
                return
            before = {n: tuple(t.shape) for n, t in eager_state.items()}
            try:
                actual = self._run(feeds)
            except Exception as exc:
                if step == 0 and grows and "invalid dimensions for input" in str(exc):
                    # The graph refuses a zero-length past: start from eager PyTorch's prefill.
                    self.prefill = "eager prompt"
                    self.notes.append(f"the file does not take an empty past ({first_line(exc)})")
                    onnx_state = {p.input: eager_out[out_index[p.input]] for p in pairs}
                    eager_state = {n: to_torch(a) for n, a in onnx_state.items()}
                    free = self._advance(free, eager_out, state_names, step)
                    continue
                error = f"onnxruntime failed: {first_line(exc)}"
                yield ChainStep(step, past, feeds, eager_out, None, error, layout=layout)
                return
            yield ChainStep(step, past, feeds, eager_out, actual, layout=layout)
            eager_state = {p.input: to_torch(eager_out[out_index[p.input]]) for p in pairs}
            onnx_state = {p.input: actual[out_index[p.input]] for p in pairs}
            free = self._advance(free, eager_out, state_names, step)

    def _advance(
        self,
        free: dict[str, torch.Tensor],
        eager_out: Sequence[np.ndarray],
        state: set[str],
        step: int,
    ) -> dict[str, torch.Tensor]:
        """The next step's non-state inputs: eager's greedy token, or fresh draws."""
        if self.token_input is not None and self.token_output is not None:
            token = next_token(eager_out[self.names.index(self.token_output)])
            return {**free, self.token_input: to_torch(token[:, None].astype("int64"))}
        return _free_inputs(self.example, state, step + 1, self.seed)


def eager_outputs(module: nn.Module, tensors: Mapping[str, torch.Tensor]) -> tuple[np.ndarray, ...]:
    """The eager module's outputs, flattened, on keyword inputs."""
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


def _past_length(feeds: Mapping[str, np.ndarray], grows: Sequence[StatePair]) -> int | None:
    """The length of the past a step reads (None when no state grows)."""
    for pair in grows:
        if pair.axis is not None:
            return int(feeds[pair.input].shape[pair.axis])
    return None


def to_torch(array: np.ndarray) -> torch.Tensor:
    """A tensor of its own (onnxruntime's arrays are read-only views)."""
    import torch

    return torch.from_numpy(array.copy())
