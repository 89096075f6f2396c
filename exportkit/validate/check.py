"""Run the cases through onnxruntime (CPU), compare every output with eager PyTorch, and on a
mismatch name where the file first diverges: ``validate`` is the one verb for both."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from exportkit.validate.cases import Case
from exportkit.validate.compare import Tolerances, compare_arrays
from exportkit.validate.localize import localize
from exportkit.validate.results import RunFailure, Trial, ValidationResult
from exportkit.validate.session import run_session, session

if TYPE_CHECKING:
    from torch import nn

__all__ = ["check_onnx", "validate"]


def _run_trial(sess: Any, case: Case, tolerances: Tolerances) -> Trial:
    shapes = {n: tuple(int(d) for d in t.shape) for n, t in case.inputs.tensors.items()}
    if case.error:
        return Trial(case.label, shapes, (), RunFailure("pytorch", case.error))
    actual = run_session(sess, case.inputs)
    if isinstance(actual, RunFailure):
        return Trial(case.label, shapes, (), actual)
    names = [o.name for o in sess.get_outputs()]
    if len(actual) != len(case.expected):
        message = f"onnxruntime gave {len(actual)} outputs, PyTorch {len(case.expected)}"
        return Trial(case.label, shapes, (), RunFailure("outputs", message))
    checks = tuple(
        compare_arrays(name, exp, act, tolerances)
        for name, exp, act in zip(names, case.expected, actual)
    )
    return Trial(case.label, shapes, checks)


def check_onnx(
    path: str | Path,
    cases: Sequence[Case],
    *,
    tolerances: Tolerances | None = None,
    strict: bool = False,
) -> ValidationResult:
    """Run every case through onnxruntime and compare with PyTorch's outputs (no localization).

    Raises:
        RuntimeStageError: onnxruntime cannot load the file.
    """
    path = Path(path)
    start = time.perf_counter()
    sess = session(path)
    trials = tuple(_run_trial(sess, case, tolerances or Tolerances()) for case in cases)
    return ValidationResult(
        path, trials, time.perf_counter() - start, unproven=_unproven(trials), strict=strict
    )


def _unproven(trials: Sequence[Trial]) -> tuple[str, ...]:
    """The outputs whose check could not have failed in any trial that compared them."""
    seen: dict[str, bool] = {}
    for trial in trials:
        for check in trial.outputs:
            seen[check.name] = seen.get(check.name, True) and check.unproven
    return tuple(name for name, unproven in seen.items() if unproven)


def _mismatch(result: ValidationResult) -> bool:
    return not result.passed


def validate(
    module: nn.Module,
    path: str | Path,
    cases: Sequence[Case],
    tolerances: Tolerances | None = None,
    *,
    locate: Callable[[ValidationResult], bool] | None = None,
    strict: bool = False,
) -> ValidationResult:
    """Compare the ONNX file at ``path`` with the eager ``module`` on ``cases``; on a mismatch
    (or whenever ``locate`` says so) name the first module where the file diverges.

    Args:
        module: the eager PyTorch model (the ground truth).
        path: the ONNX file.
        cases: the inputs and PyTorch's outputs on them (``make_cases``), shared between files.
        tolerances: atol/rtol; dtype-aware defaults when None.
        locate: whether to localize, given the result; None localizes every mismatch. Pass
            ``lambda result: False`` to skip localization.
        strict: an output whose check could not have failed (``unproven``) fails validation.

    Returns:
        The result; a mismatch is ``passed=False``, not an exception. Localization never
        raises: when it cannot place the mismatch, ``divergence`` stays None.

    Raises:
        RuntimeStageError: onnxruntime cannot load the file.
    """
    tolerances = tolerances or Tolerances()
    result = check_onnx(path, cases, tolerances=tolerances, strict=strict)
    if (locate or _mismatch)(result):
        result = replace(result, divergence=localize(module, path, cases, result, tolerances))
    return result
