"""Parity of an ONNX file with the eager PyTorch model, on onnxruntime (CPU), at several sizes."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from exportkit.errors import ForwardError, InputSpecError, RuntimeStageError
from exportkit.inputs import ExampleInputs, run_model

if TYPE_CHECKING:
    import numpy as np
    from torch import nn

__all__ = [
    "Case",
    "OutputCheck",
    "Tolerances",
    "Trial",
    "ValidationResult",
    "check_onnx",
    "make_cases",
    "validate",
]

logger = logging.getLogger(__name__)

# (atol, rtol) by dtype; integer and bool outputs are compared exactly.
DEFAULT_TOLERANCES: dict[str, tuple[float, float]] = {
    "float64": (1e-7, 1e-6),
    "float32": (1e-4, 1e-3),
    "float16": (1e-2, 1e-2),
    "bfloat16": (2e-2, 2e-2),
}


@dataclass(frozen=True)
class Tolerances:
    """``--atol``/``--rtol``: global values and per-output overrides; None means dtype default."""

    atol: float | None = None
    rtol: float | None = None
    per_output_atol: Mapping[str, float] = field(default_factory=dict)
    per_output_rtol: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def parse(cls, atol: Sequence[str] = (), rtol: Sequence[str] = ()) -> Tolerances:
        """From ``--atol 1e-4 --atol logits=1e-3`` style values.

        Raises:
            InputSpecError: a value is not a number.
        """

        def split(values: Sequence[str], flag: str) -> tuple[float | None, dict[str, float]]:
            glob: float | None = None
            per: dict[str, float] = {}
            for text in values:
                name, sep, num = text.rpartition("=")
                try:
                    value = float(num)
                except ValueError:
                    raise InputSpecError(
                        f"{flag} {text!r} is not a number",
                        hint=f"write {flag} 1e-4, or {flag} OUTPUT=1e-3 for one output",
                    ) from None
                if value < 0 or math.isnan(value):
                    raise InputSpecError(f"{flag} {text!r} must be >= 0", hint=f"write {flag} 1e-4")
                if sep:
                    per[name] = value
                else:
                    glob = value
            return glob, per

        a, pa = split(atol, "--atol")
        r, pr = split(rtol, "--rtol")
        return cls(a, r, pa, pr)

    def for_output(self, name: str, dtype: str) -> tuple[float, float]:
        """The (atol, rtol) for one output; (0, 0) for integer and bool outputs."""
        default = DEFAULT_TOLERANCES.get(dtype, (0.0, 0.0))
        atol = self.per_output_atol.get(name, self.atol if self.atol is not None else default[0])
        rtol = self.per_output_rtol.get(name, self.rtol if self.rtol is not None else default[1])
        if dtype not in DEFAULT_TOLERANCES:
            return 0.0, 0.0
        return atol, rtol


@dataclass(frozen=True)
class OutputCheck:
    """One output compared: allclose-style ``|ort - torch| <= atol + rtol * |torch|``.

    ``atol_needed`` is the smallest atol that would pass with this rtol. ``findings`` fail the
    check (mismatch, NaN/Inf, shape); ``warnings`` do not (for example a constant output).
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    atol: float
    rtol: float
    passed: bool
    max_abs: float = 0.0
    max_rel: float = 0.0
    mean_abs: float = 0.0
    frac_out: float = 0.0
    atol_needed: float = 0.0
    findings: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Trial:
    """One set of inputs run through both sides."""

    label: str
    input_shapes: Mapping[str, tuple[int, ...]]
    outputs: tuple[OutputCheck, ...]
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.error is None and all(o.passed for o in self.outputs)


@dataclass(frozen=True)
class ValidationResult:
    """The verdict for one ONNX file: every trial, and where it first diverges when known."""

    path: Path
    trials: tuple[Trial, ...]
    seconds: float
    divergence: Any = None

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


@dataclass(frozen=True)
class Case:
    """Inputs plus the eager model's flattened outputs on them (computed once, shared by files)."""

    label: str
    inputs: ExampleInputs
    expected: tuple[np.ndarray, ...]
    error: str | None = None


def _numpy(value: Any) -> np.ndarray:
    import numpy as np
    import torch

    if isinstance(value, torch.Tensor):
        t = value.detach().cpu()
        if t.dtype == torch.bfloat16:
            t = t.float()
        return t.numpy()
    return np.asarray(value)


def _flat_outputs(outputs: Any) -> tuple[np.ndarray, ...]:
    from torch.utils._pytree import tree_leaves

    return tuple(_numpy(leaf) for leaf in tree_leaves(outputs) if leaf is not None)


def _other_sizes(size: int) -> list[int]:
    """Sizes besides the export size: 1 and one more, never equal to the export size."""
    return [s for s in (1, size + 3) if s != size]


def make_cases(
    module: nn.Module,
    inputs: ExampleInputs,
    *,
    sizes: bool = True,
    reference: Any = None,
) -> list[Case]:
    """The inputs to validate on: the export inputs, a fresh draw, and each dynamic dim resized.

    Args:
        module: the eager model; its outputs on each case are the ground truth.
        inputs: the export's example inputs.
        sizes: also try every dynamic label at 1 and one more size (fresh seeded draws).
        reference: the model's outputs on ``inputs``, if already computed.
    """
    if reference is None:
        reference = run_model(module, inputs)
    cases = [Case("export inputs", inputs, _flat_outputs(reference))]
    sets: list[tuple[str, ExampleInputs]] = []
    sets.append(("fresh draw", inputs.resample(inputs.labels, seed=inputs.seed + 1)))
    if sizes and inputs.dynamic:
        labels = inputs.labels
        for k, extra in enumerate(zip(*(_other_sizes(v) for v in labels.values()))):
            target = dict(zip(labels, extra))
            text = ", ".join(f"{k}={v}" for k, v in target.items())
            sets.append((text, inputs.resample(target, seed=inputs.seed + 2 + k)))
    for label, case_inputs in sets:
        try:
            cases.append(Case(label, case_inputs, _flat_outputs(run_model(module, case_inputs))))
        except ForwardError as exc:
            # The eager model itself does not run here: the dim is not really dynamic.
            cause = exc.message.rpartition(": ")[2] if exc.__cause__ else exc.message
            cases.append(Case(label, case_inputs, (), f"PyTorch itself fails at {label}: {cause}"))
    return cases


def _session(path: Path) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RuntimeStageError(
            f"onnxruntime cannot load {path.name}: {first}",
            hint="the file may use an op or opset onnxruntime lacks; try another --opset",
        ) from exc


def _compare(
    name: str, expected: np.ndarray, actual: np.ndarray, tolerances: Tolerances
) -> OutputCheck:
    import numpy as np

    dtype = str(expected.dtype)
    atol, rtol = tolerances.for_output(name, dtype)
    shape = tuple(int(d) for d in expected.shape)
    if expected.shape != actual.shape:
        return OutputCheck(
            name,
            shape,
            dtype,
            atol,
            rtol,
            False,
            findings=(f"shape {tuple(actual.shape)} from onnxruntime, {shape} from PyTorch",),
        )
    findings: list[str] = []
    warnings: list[str] = []
    e = expected.astype(np.float64)
    a = actual.astype(np.float64)
    for side, arr in (("PyTorch", e), ("onnxruntime", a)):
        nan, inf = int(np.isnan(arr).sum()), int(np.isinf(arr).sum())
        if nan or inf:
            findings.append(f"{side} output has {nan} NaN and {inf} Inf values")
    if e.size > 1 and np.all(e == e.flat[0]):
        warnings.append(f"constant output (every value {e.flat[0]:g}): parity on it proves nothing")
    if e.size == 0:
        return OutputCheck(name, shape, dtype, atol, rtol, not findings, findings=tuple(findings))
    finite = np.isfinite(e) & np.isfinite(a)
    same_nonfinite = (e == a) | (np.isnan(e) & np.isnan(a))
    diff = np.where(finite, np.abs(a - e), np.where(same_nonfinite, 0.0, np.inf))
    bound = atol + rtol * np.abs(np.where(finite, e, 0.0))
    out = diff > bound
    frac_out = float(out.mean())
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(np.abs(e) > 0, diff / np.abs(e), np.where(diff > 0, np.inf, 0.0))
    check = OutputCheck(
        name,
        shape,
        dtype,
        atol,
        rtol,
        passed=not findings and not out.any(),
        max_abs=float(diff.max()),
        max_rel=float(rel.max()),
        mean_abs=float(diff.mean()),
        frac_out=frac_out,
        atol_needed=float(max(0.0, (diff - rtol * np.abs(np.where(finite, e, 0.0))).max())),
        findings=tuple(findings),
        warnings=tuple(warnings),
    )
    if out.any():
        kind = "values differ" if dtype in DEFAULT_TOLERANCES else "integer values differ"
        check = _with_finding(check, f"{kind}: {frac_out:.2%} of elements out of tolerance")
    return check


def _with_finding(check: OutputCheck, finding: str) -> OutputCheck:
    from dataclasses import replace

    return replace(check, findings=(*check.findings, finding))


def _run_trial(session: Any, case: Case, tolerances: Tolerances) -> Trial:
    shapes = {n: tuple(int(d) for d in t.shape) for n, t in case.inputs.tensors.items()}
    if case.error:
        return Trial(case.label, shapes, (), case.error)
    wanted = [spec.name for spec in session.get_inputs()]
    given = case.inputs.tensors
    if all(name in given for name in wanted):
        feeds = {name: _numpy(given[name]) for name in wanted}
    elif len(wanted) == len(given):  # a file exported elsewhere, with its own input names
        feeds = {name: _numpy(t) for name, t in zip(wanted, given.values())}
    else:
        missing = [n for n in wanted if n not in given]
        return Trial(
            case.label,
            shapes,
            (),
            f"the ONNX file wants inputs {', '.join(missing)}; given: {', '.join(given)}",
        )
    try:
        actual = session.run(None, feeds)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return Trial(case.label, shapes, (), f"onnxruntime failed: {first}")
    names = [o.name for o in session.get_outputs()]
    if len(actual) != len(case.expected):
        return Trial(
            case.label,
            shapes,
            (),
            f"onnxruntime gave {len(actual)} outputs, PyTorch {len(case.expected)}",
        )
    checks = tuple(
        _compare(name, exp, act, tolerances) for name, exp, act in zip(names, case.expected, actual)
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
    session = _session(path)
    trials = tuple(_run_trial(session, case, tolerances or Tolerances()) for case in cases)
    return ValidationResult(path, trials, time.perf_counter() - start)


def validate(
    module: nn.Module,
    path: str | Path,
    inputs: ExampleInputs,
    *,
    tolerances: Tolerances | None = None,
    sizes: bool = True,
) -> ValidationResult:
    """Compare the ONNX file at ``path`` with the eager ``module`` on ``inputs`` and more draws.

    Args:
        module: the eager PyTorch model (the ground truth).
        path: the ONNX file.
        inputs: the export's example inputs.
        tolerances: atol/rtol; dtype-aware defaults when None.
        sizes: also check each dynamic dim at other sizes.

    Returns:
        The result; a mismatch is ``passed=False``, not an exception.

    Raises:
        RuntimeStageError: onnxruntime cannot load the file.
        ForwardError: the model raised on one of the inputs.
    """
    return check_onnx(path, make_cases(module, inputs, sizes=sizes), tolerances=tolerances)
