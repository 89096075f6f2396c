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
    "FirstStep",
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
class FirstStep:
    """Step 0 on a graph of its own (an encoder-decoder's prefill): its eager module, its file
    (None: eager PyTorch's prefill is the first state, for ``check`` of a step graph alone) and
    its example inputs (the encoder's output among them)."""

    module: nn.Module
    path: Path | None
    inputs: Mapping[str, torch.Tensor]


@dataclass(frozen=True)
class ChainStep:
    """One step as run. ``feeds`` are the file's inputs under the model's names; ``actual`` is
    None when onnxruntime failed (``error`` says why), ``expected`` empty when eager PyTorch
    itself failed (``eager_error``). ``layout`` names state that came back in another layout.
    ``prefill``: the step ran on the prefill graph (:class:`FirstStep`), not the step graph."""

    step: int
    past: int | None
    feeds: Mapping[str, np.ndarray]
    expected: tuple[np.ndarray, ...] = ()
    actual: tuple[np.ndarray, ...] | None = None
    error: str | None = None
    eager_error: Exception | None = None
    layout: tuple[str, ...] = ()
    prefill: bool = False


class _NoFile(Exception):
    """The prefill graph has no file (``check`` of a step graph alone)."""


class _File:
    """An onnxruntime session fed by the model's input names, floats cast to the file's types."""

    def __init__(self, path: Path, model_inputs: Sequence[str]) -> None:
        from exportkit.validate.fit import match_names
        from exportkit.validate.session import session

        self.sess = session(path)
        spelled = match_names([i.name for i in self.sess.get_inputs()], list(model_inputs))
        self.to_file = {m: f for f, m in (spelled or {}).items() if m != f}
        self.types = {i.name: _NUMPY.get(i.type) for i in self.sess.get_inputs()}

    def run(self, feeds: Mapping[str, np.ndarray]) -> tuple[np.ndarray, ...]:
        named = {}
        for n, a in feeds.items():
            name = self.to_file.get(n, n)
            dtype = self.types.get(name)
            named[name] = a.astype(dtype) if dtype and a.dtype.kind == "f" else a
        return tuple(self.sess.run(None, named))


def next_token(logits: np.ndarray) -> np.ndarray:
    """The greedy next token of each row (the last position's arg-max)."""
    token: np.ndarray = logits[:, -1, :].argmax(-1)
    return token


class Chain:
    """The prefill and ``steps`` chained steps of a file and of the eager module; iterate it.

    ``names`` are the model's output names (the file's outputs are matched by position),
    ``to_file`` maps a model input name to the file's spelling of it (Optimum's
    ``past_key_values.0.key``), ``prefill`` and ``notes`` say how step 0 ran once iterated.
    Iteration stops after a step where either side failed. With ``first``, step 0 runs the
    prefill graph; its outputs give every pair's first value, and a pair whose output only the
    prefill writes (``prefill_only``) is carried unchanged after it.
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
        first: FirstStep | None = None,
    ) -> None:
        import torch

        from exportkit.export import output_names

        self.module, self.example, self.pairs = module, example, tuple(pairs)
        self.steps, self.seed, self.first = steps, seed, first
        self.file = _File(Path(path), list(example.tensors))
        self.to_file = self.file.to_file
        with torch.no_grad():
            self.names = output_names(module(**example.tensors))
            self.first_names = (
                output_names(first.module(**first.inputs)) if first is not None else self.names
            )
        self.first_file = (
            _File(Path(first.path), list(first.inputs))
            if first is not None and first.path is not None
            else None
        )
        if token_output not in self.names:
            token_input = token_output = None
        self.token_input, self.token_output = token_input, token_output
        grows = any(p.axis is not None for p in pairs)
        self.prefill: Literal["empty past", "eager prompt", "initial state", "prefill graph"] = (
            "prefill graph" if first is not None else "empty past" if grows else "initial state"
        )
        self.notes: list[str] = []

    def shown_pairs(self) -> tuple[StatePair, ...]:
        """The pairs under the file's input names (as the report shows them)."""
        return tuple(replace(p, input=self.to_file.get(p.input, p.input)) for p in self.pairs)

    def __iter__(self) -> Iterator[ChainStep]:
        from exportkit.errors import first_line

        pairs, example, first = self.pairs, self.example, self.first
        state_names = {p.input for p in pairs}
        grows = [p for p in pairs if p.axis is not None]
        eager_state = _initial_state(example, pairs)
        onnx_state: dict[str, Any] = {n: t.numpy() for n, t in eager_state.items()}
        if self.token_input is not None:
            # Other inputs (an encoder's output) stay as in the example at every step.
            free = {n: t for n, t in example.tensors.items() if n not in state_names}
            free = {**(first.inputs if first is not None else {}), **free}
            free[self.token_input] = _prompt(example, self.token_input, PROMPT, self.seed + 7)
        else:
            free = _free_inputs(example, state_names, 0, self.seed)
        before: dict[str, tuple[int | str, ...]] = {}
        for step in range(self.steps + 1):
            on_first = first is not None and step == 0  # the prefill graph reads no state
            module = first.module if first is not None and on_first else self.module
            names = self.first_names if on_first else self.names
            wanted = first.inputs if first is not None and on_first else example.tensors
            chosen = {n: t for n, t in free.items() if n in wanted}
            feeds = {n: t.numpy() for n, t in chosen.items()} | ({} if on_first else onnx_state)
            past = 0 if on_first else _past_length(feeds, grows)
            layout = tuple(_layout_breaks(pairs, before, eager_state)) if step else ()
            try:
                eager_out = eager_outputs(module, chosen if on_first else chosen | eager_state)
            except Exception as exc:  # the model's own failure: a finding of this step
                yield ChainStep(step, past, feeds, eager_error=exc, layout=layout, prefill=on_first)
                return
            before = {n: tuple(t.shape) for n, t in eager_state.items()}
            if on_first:  # the step graph reads the prefill's outputs as its example lays them out
                before = {p.input: _as_read(example, p.input) for p in pairs}
            try:
                file = self.first_file if on_first else self.file
                if file is None:
                    raise _NoFile
                actual = file.run(feeds)
            except Exception as exc:
                refused = bool(grows) and "invalid dimensions for input" in str(exc)
                if step == 0 and (isinstance(exc, _NoFile) or (refused and not on_first)):
                    # No prefill file, or the graph refuses a zero-length past: start from eager
                    # PyTorch's prefill.
                    self.prefill = "eager prompt"
                    self.notes.append(
                        "no prefill file beside the step graph: eager PyTorch's prefill is its "
                        "first past"
                        if isinstance(exc, _NoFile)
                        else f"the file does not take an empty past ({first_line(exc)})"
                    )
                    eager_state = _carried(pairs, names, eager_out, eager_state, to_torch)
                    onnx_state = {n: t.numpy() for n, t in eager_state.items()}
                    free = self._advance(free, eager_out, state_names, step, names)
                    continue
                error = f"onnxruntime failed: {first_line(exc)}"
                yield ChainStep(
                    step, past, feeds, eager_out, None, error, layout=layout, prefill=on_first
                )
                return
            yield ChainStep(step, past, feeds, eager_out, actual, layout=layout, prefill=on_first)
            eager_state = _carried(pairs, names, eager_out, eager_state, to_torch)
            onnx_state = _carried(pairs, names, actual, onnx_state, lambda a: a)
            free = self._advance(free, eager_out, state_names, step, names)

    def _advance(
        self,
        free: dict[str, torch.Tensor],
        eager_out: Sequence[np.ndarray],
        state: set[str],
        step: int,
        names: Sequence[str],
    ) -> dict[str, torch.Tensor]:
        """The next step's non-state inputs: eager's greedy token, or fresh draws."""
        if self.token_input is not None and self.token_output is not None:
            token = next_token(eager_out[names.index(self.token_output)])
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
    before: Mapping[str, tuple[int | str, ...]],
    state: Mapping[str, torch.Tensor],
) -> list[str]:
    """Each state that came back in another layout than it went in (only its growing axis and,
    after a prefill graph, its dynamic dims (given by label) may change), as a sentence."""
    breaks = []
    for p in pairs:
        went, came = before.get(p.input), tuple(state[p.input].shape)
        if went is None:
            continue
        same = len(went) == len(came) and all(
            a == b for i, (a, b) in enumerate(zip(went, came)) if i != p.axis and isinstance(a, int)
        )
        if not same:
            where = (
                f"the step graph reads {p.input} as {' x '.join(map(str, went))}"
                if any(isinstance(a, str) for a in went)
                else f"{p.input} went in {'x'.join(map(str, went))}"
            )
            breaks.append(
                f"{p.output} came out {'x'.join(map(str, came))} where {where}: the state's "
                "layout changes between input and output"
            )
    return breaks


def _carried(
    pairs: Sequence[StatePair],
    names: Sequence[str],
    outputs: Sequence[Any],
    state: Mapping[str, Any],
    convert: Any,
) -> dict[str, Any]:
    """The next step's state: each pair's output where the graph wrote it, else as it was (a
    cross-attention cache the step graph only reads)."""
    index = {n: i for i, n in enumerate(names)}
    return {
        p.input: convert(outputs[index[p.output]]) if p.output in index else state[p.input]
        for p in pairs
    }


def _as_read(example: ExampleInputs, name: str) -> tuple[int | str, ...]:
    """How the step graph reads a state input: its example shape, dynamic dims by their label."""
    dims = example.dynamic.get(name, {})
    return tuple(dims.get(i, d) for i, d in enumerate(example.tensors[name].shape))


def _past_length(feeds: Mapping[str, Any], grows: Sequence[StatePair]) -> int | None:
    """The length of the past a step reads (None when no state grows)."""
    for pair in grows:
        if pair.axis is not None:
            return int(feeds[pair.input].shape[pair.axis])
    return None


def to_torch(array: np.ndarray) -> torch.Tensor:
    """A tensor of its own (onnxruntime's arrays are read-only views)."""
    import torch

    return torch.from_numpy(array.copy())
