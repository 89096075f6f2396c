"""What validation finds, as typed facts: each trial, why one could not be compared, where a
wrong export first diverges. Renderers (report/, viewer/) read these fields; nothing here
formats a fact that a reader has to parse back."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from exportkit.diagnose import Location
from exportkit.validate.compare import OutputCheck

__all__ = [
    "Divergence",
    "DivergenceKind",
    "FailureKind",
    "RunFailure",
    "Trial",
    "ValidationResult",
]

# Why a trial has no output comparison: PyTorch itself fails on the inputs, the file's inputs
# do not take them, onnxruntime fails while running, or the two sides give different counts.
FailureKind = Literal["pytorch", "inputs", "run", "outputs"]

DivergenceKind = Literal["values", "onnxruntime error", "pytorch error", "unknown"]


@dataclass(frozen=True)
class RunFailure:
    """Why a trial could not be compared.

    ``node`` is the ONNX node onnxruntime failed in and ``status`` onnxruntime's own status
    message for it (the part after the node name), both read once where the failure is caught.
    """

    kind: FailureKind
    message: str
    node: str | None = None
    status: str | None = None


@dataclass(frozen=True)
class Trial:
    """One set of inputs run through both sides."""

    label: str
    input_shapes: Mapping[str, tuple[int, ...]]
    outputs: tuple[OutputCheck, ...]
    failure: RunFailure | None = None

    @property
    def passed(self) -> bool:
        return self.failure is None and all(o.passed for o in self.outputs)

    @property
    def error(self) -> str | None:
        """The failure's message (what the text report and JUnit show)."""
        return self.failure.message if self.failure is not None else None

    @property
    def pytorch_failed(self) -> bool:
        """The eager model itself fails here: nothing to compare."""
        return self.failure is not None and self.failure.kind == "pytorch"


@dataclass(frozen=True)
class Divergence:
    """The first place the ONNX graph departs from eager PyTorch.

    ``kind`` is ``values`` (a module's output differs beyond tolerance while its inputs matched),
    ``onnxruntime error`` (a node failed to run), ``pytorch error`` (the eager model itself fails
    at a size the export was asked to support: the dim is not really dynamic) or ``unknown`` (no
    module could be blamed on values that compare; ``detail`` says why, ``location`` is None).
    ``check`` holds the diff of the diverging module output; ``onnx_node`` and ``onnx_op`` the
    graph node that made it; ``onnx_values`` the graph values it was compared with; ``matched``
    the modules compared before it that agreed.
    """

    kind: DivergenceKind
    trial: str
    location: Location | None
    detail: str
    check: OutputCheck | None = None
    onnx_node: str | None = None
    onnx_op: str | None = None
    onnx_values: tuple[str, ...] = ()
    inputs_matched: bool | None = None
    matched: int = 0
    compared: int = 0
    unmapped: tuple[str, ...] = field(default=())

    def describe(self) -> str:
        """The blamed module and line, or that the place is unknown."""
        if self.location is None:
            return "an unknown place"
        return self.location.describe()


@dataclass(frozen=True)
class ValidationResult:
    """The verdict for one ONNX file: every trial, and where it first diverges when known.

    ``unproven`` names the outputs whose check could not have failed (every reference value
    within the tolerance of zero, or constant) in every trial; with ``strict`` they fail it.
    """

    path: Path
    trials: tuple[Trial, ...]
    seconds: float
    divergence: Divergence | None = None
    unproven: tuple[str, ...] = ()
    strict: bool = False

    @property
    def passed(self) -> bool:
        return self.matched and not (self.strict and self.unproven)

    @property
    def matched(self) -> bool:
        """Every trial ran and every output was within tolerance (unproven ones too)."""
        return bool(self.trials) and all(t.passed for t in self.trials)

    @property
    def verdict(self) -> str:
        """``pass``, ``MISMATCH``, or ``unproven (--strict)``: every output within tolerance, but
        ``strict`` fails one whose check could not have failed."""
        if self.passed:
            return "pass"
        return "unproven (--strict)" if self.matched else "MISMATCH"

    def worst(self) -> dict[str, OutputCheck]:
        """Per output, the check with the largest max abs diff over all trials."""
        out: dict[str, OutputCheck] = {}
        for trial in self.trials:
            for check in trial.outputs:
                if check.name not in out or (not check.passed, check.max_abs) > (
                    not out[check.name].passed,
                    out[check.name].max_abs,
                ):
                    out[check.name] = check
        return out
