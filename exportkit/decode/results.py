"""What the decode stage hands back: the state pairs and each chained step's verdict; pure data."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from exportkit.validate import Divergence, OutputCheck, ValidationResult

__all__ = ["DecodeResult", "PrefillFile", "StatePair", "StepResult"]


@dataclass(frozen=True)
class StatePair:
    """One piece of state: the ONNX ``input`` a step reads and the ``output`` the step writes
    for the next one. ``axis`` is the dim that grows by the step's length (the past length),
    None for state of a fixed size (an RNN's hidden state). ``inferred``: paired by name.
    ``prefill_only``: the output comes from the prefill graph alone (an encoder-decoder's
    cross-attention cache); later steps read the input and return no new value of it."""

    input: str
    output: str
    axis: int | None = None
    inferred: bool = False
    prefill_only: bool = False

    def flag(self) -> str:
        """The ``--state`` line that declares this pair."""
        return f"--state {self.input}={self.output}"


@dataclass(frozen=True)
class StepResult:
    """One chained step: ONNX fed its own previous outputs, eager PyTorch its own.

    ``step`` 0 is the prefill (the prompt on an empty past). ``past_length`` is the length of
    the state read (0 for the prefill; None when no state grows). ``token_agreement`` says whether
    both pick the same greedy next token (None for a model without token logits); ``token_tie``
    that they differ only where PyTorch's own top two scores are within the logits' tolerance of
    each other (a tie either side may break: not a failure). ``max_abs_diff`` is the largest
    difference over every output of the step.
    """

    step: int
    past_length: int | None
    max_abs_diff: float
    token_agreement: bool | None
    passed: bool
    outputs: tuple[OutputCheck, ...] = ()
    error: str | None = None
    divergence: Divergence | None = None
    token_tie: bool = False

    @property
    def verdict(self) -> Literal["pass", "FAIL"]:
        return "pass" if self.passed else "FAIL"


@dataclass(frozen=True)
class PrefillFile:
    """An encoder-decoder's prefill graph, written beside the step graph as
    ``<stem>.prefill.onnx`` (its external data beside it): it computes the cross-attention cache
    from the encoder's output. ``validation``: the file kept against eager PyTorch on single
    calls (None when it was not judged)."""

    path: Path
    files: tuple[Path, ...]
    validation: ValidationResult | None = None
    simplified: bool = False  # the simplified file passed and was kept, as for the step graph

    @property
    def passed(self) -> bool:
        return self.validation is None or self.validation.passed


@dataclass(frozen=True)
class DecodeResult:
    """The chained validation of a stateful file: its pairs, each step, and the first failure.

    ``prefill`` says how step 0 ran: ``empty past`` (the graph took a zero-length past) or
    ``eager prompt`` (the graph refused one, so eager PyTorch's prefill state is the first past).
    """

    pairs: tuple[StatePair, ...]
    steps: tuple[StepResult, ...]
    prefill: Literal["empty past", "eager prompt", "initial state", "prefill graph"]
    seconds: float = 0.0
    notes: tuple[str, ...] = ()
    prefill_file: PrefillFile | None = None

    @property
    def passed(self) -> bool:
        first = self.prefill_file is None or self.prefill_file.passed
        return first and bool(self.steps) and all(s.passed for s in self.steps)

    @property
    def first_failure(self) -> StepResult | None:
        return next((s for s in self.steps if not s.passed), None)
