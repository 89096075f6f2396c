"""Run the cases through onnxruntime (CPU) and compare every output with eager PyTorch."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from exportkit.errors import RuntimeStageError
from exportkit.inputs import ExampleInputs
from exportkit.validate.cases import Case, make_cases, to_numpy
from exportkit.validate.compare import OutputCheck, Tolerances, compare_arrays

if TYPE_CHECKING:
    from torch import nn

    from exportkit.validate.localize import Divergence

__all__ = ["Trial", "ValidationResult", "check_onnx", "feeds_for", "session", "validate"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Trial:
    """One set of inputs run through both sides."""

    label: str
    input_shapes: Mapping[str, tuple[int, ...]]
    outputs: tuple[OutputCheck, ...]
    error: str | None = None
    pytorch_failed: bool = False  # the eager model itself fails here: nothing to compare

    @property
    def passed(self) -> bool:
        return self.error is None and all(o.passed for o in self.outputs)


@dataclass(frozen=True)
class ValidationResult:
    """The verdict for one ONNX file: every trial, and where it first diverges when known."""

    path: Path
    trials: tuple[Trial, ...]
    seconds: float
    divergence: Divergence | None = None

    @property
    def passed(self) -> bool:
        return bool(self.trials) and all(t.passed for t in self.trials)

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


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message, or its type."""
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    return lines[0] if lines else type(exc).__name__


def session(path: Path) -> Any:
    """An onnxruntime CPU session on the file (external data is found beside it).

    Raises:
        RuntimeStageError: onnxruntime cannot load the file.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 4  # failures come back as exceptions; no stderr noise
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise RuntimeStageError(
            f"onnxruntime cannot load {path.name}: {first_line(exc)}",
            hint="the file may use an op or opset onnxruntime lacks; try another --opset",
        ) from exc


def feeds_for(sess: Any, inputs: ExampleInputs) -> dict[str, Any] | str:
    """The session's feeds from the inputs (by name, else by position), or why they do not fit."""
    wanted = [spec.name for spec in sess.get_inputs()]
    given = inputs.tensors
    if all(name in given for name in wanted):
        return {name: to_numpy(given[name]) for name in wanted}
    if len(wanted) == len(given):  # a file exported elsewhere, with its own input names
        return {name: to_numpy(t) for name, t in zip(wanted, given.values())}
    missing = [n for n in wanted if n not in given]
    return f"the ONNX file wants inputs {', '.join(missing)}; given: {', '.join(given)}"


def _run_trial(sess: Any, case: Case, tolerances: Tolerances) -> Trial:
    shapes = {n: tuple(int(d) for d in t.shape) for n, t in case.inputs.tensors.items()}
    if case.error:
        return Trial(case.label, shapes, (), case.error, pytorch_failed=True)
    feeds = feeds_for(sess, case.inputs)
    if isinstance(feeds, str):
        return Trial(case.label, shapes, (), feeds)
    try:
        actual = sess.run(None, feeds)
    except Exception as exc:
        return Trial(case.label, shapes, (), f"onnxruntime failed: {first_line(exc)}")
    names = [o.name for o in sess.get_outputs()]
    if len(actual) != len(case.expected):
        error = f"onnxruntime gave {len(actual)} outputs, PyTorch {len(case.expected)}"
        return Trial(case.label, shapes, (), error)
    checks = tuple(
        compare_arrays(name, exp, act, tolerances)
        for name, exp, act in zip(names, case.expected, actual)
    )
    return Trial(case.label, shapes, checks)


def check_onnx(
    path: str | Path, cases: Sequence[Case], *, tolerances: Tolerances | None = None
) -> ValidationResult:
    """Run every case through onnxruntime and compare with PyTorch's outputs.

    Raises:
        RuntimeStageError: onnxruntime cannot load the file.
    """
    path = Path(path)
    start = time.perf_counter()
    sess = session(path)
    trials = tuple(_run_trial(sess, case, tolerances or Tolerances()) for case in cases)
    return ValidationResult(path, trials, time.perf_counter() - start)


def validate(
    module: nn.Module,
    path: str | Path,
    inputs: ExampleInputs,
    *,
    tolerances: Tolerances | None = None,
    sizes: bool = True,
    locate: bool = True,
) -> ValidationResult:
    """Compare the ONNX file at ``path`` with the eager ``module`` on ``inputs`` and more draws.

    Args:
        module: the eager PyTorch model (the ground truth).
        path: the ONNX file.
        inputs: the export's example inputs.
        tolerances: atol/rtol; dtype-aware defaults when None.
        sizes: also check each dynamic dim at other sizes.
        locate: on a mismatch, find the first PyTorch module whose output diverges.

    Returns:
        The result; a mismatch is ``passed=False``, not an exception.

    Raises:
        RuntimeStageError: onnxruntime cannot load the file.
        ForwardError: the model raised on the export inputs.
    """
    from exportkit.validate.localize import localize

    tolerances = tolerances or Tolerances()
    cases = make_cases(module, inputs, sizes=sizes)
    result = check_onnx(path, cases, tolerances=tolerances)
    if locate and not result.passed:
        result = replace(result, divergence=localize(module, path, cases, result, tolerances))
    return result
