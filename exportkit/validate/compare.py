"""One output compared allclose-style: tolerances, per-output statistics and findings."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from exportkit.errors import InputSpecError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["DEFAULT_TOLERANCES", "ERROR_BIN_EDGES", "OutputCheck", "Tolerances", "compare_arrays"]

# (atol, rtol) by dtype; integer and bool outputs are compared exactly.
DEFAULT_TOLERANCES: dict[str, tuple[float, float]] = {
    "float64": (1e-7, 1e-6),
    "float32": (1e-4, 1e-3),
    "float16": (1e-2, 1e-2),
    "bfloat16": (2e-2, 2e-2),
}

#: Edges of ``OutputCheck.error_histogram``: decades of ``|onnx - torch|`` from 1e-9 to 10. Bin 0
#: counts differences below 1e-9 (exact matches included), bin k those in [edge k-1, edge k),
#: the last bin those of 10 and more (NaN or Inf on one side included).
ERROR_BIN_EDGES: tuple[float, ...] = tuple(10.0**k for k in range(-9, 2))


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

    ``magnitude`` is the largest finite ``|torch|``. ``unproven``: the check could not have
    failed, whatever the file computes: the output is empty or ``constant``, or every value lies
    within atol of zero and the values do not agree at their own scale either (``own_scale``:
    compared as if divided by ``magnitude``, ``|ort - torch| <= atol * magnitude + rtol * |torch|``,
    which tiny values that are rounding residue fail). ``error_histogram`` counts the elements
    per decade of abs difference (``ERROR_BIN_EDGES``); empty when the shapes differ.
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
    magnitude: float = 0.0
    actual_shape: tuple[int, ...] | None = None  # onnxruntime's, when it differs from ``shape``
    constant: bool = False
    unproven: bool = False
    own_scale: bool = False
    error_histogram: tuple[int, ...] = ()


def compare_arrays(
    name: str, expected: np.ndarray, actual: np.ndarray, tolerances: Tolerances
) -> OutputCheck:
    """Compare onnxruntime's ``actual`` with PyTorch's ``expected`` for the output ``name``."""
    import numpy as np

    dtype = str(expected.dtype)
    atol, rtol = tolerances.for_output(name, dtype)
    shape = tuple(int(d) for d in expected.shape)
    if expected.shape != actual.shape:
        finding = f"shape {tuple(actual.shape)} from onnxruntime, {shape} from PyTorch"
        actual_shape = tuple(int(d) for d in actual.shape)
        return OutputCheck(
            name, shape, dtype, atol, rtol, False, findings=(finding,), actual_shape=actual_shape
        )
    findings: list[str] = []
    warnings: list[str] = []
    e = expected.astype(np.float64)
    a = actual.astype(np.float64)
    for side, arr in (("PyTorch", e), ("onnxruntime", a)):
        nan, inf = int(np.isnan(arr).sum()), int(np.isinf(arr).sum())
        if nan or inf:
            findings.append(f"{side} output has {nan} NaN and {inf} Inf values")
    constant = e.size > 1 and bool(np.all(e == e.flat[0]))
    if constant:
        warnings.append(
            f"constant output (every value {e.flat[0] + 0.0:g}): parity on it proves nothing"
        )
    if e.size == 0:
        return OutputCheck(
            name, shape, dtype, atol, rtol, not findings, findings=tuple(findings), unproven=True
        )
    finite = np.isfinite(e) & np.isfinite(a)
    same_nonfinite = (e == a) | (np.isnan(e) & np.isnan(a))
    diff = np.where(finite, np.abs(a - e), np.where(same_nonfinite, 0.0, np.inf))
    scale = np.abs(np.where(finite, e, 0.0))
    magnitude = float(scale.max())
    out = diff > atol + rtol * scale
    unproven, own_scale = constant and not out.any() and not findings, False
    if not constant and magnitude <= atol and not out.any() and not findings:
        # Every value is within atol of zero: a file that outputs zeros would pass as well.
        # Judge the values at their own scale; rounding residue (1e-14 after a fresh
        # BatchNorm) does not agree there, and the output stays unproven.
        own_scale = magnitude > 0 and not bool((diff > atol * magnitude + rtol * scale).any())
        unproven = not own_scale
        if own_scale:
            warnings.append(
                f"every value is within atol {atol:g} of zero: compared at its own scale "
                "(relative to its largest value), where it matches"
            )
    frac_out = float(out.mean())
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(scale > 0, diff / scale, np.where(diff > 0, np.inf, 0.0))
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
        atol_needed=float(max(0.0, (diff - rtol * scale).max())),
        findings=tuple(findings),
        warnings=tuple(warnings),
        magnitude=magnitude,
        constant=constant,
        unproven=unproven,
        own_scale=own_scale,
        error_histogram=tuple(
            int(n)
            for n in np.bincount(
                np.digitize(diff, ERROR_BIN_EDGES).ravel(), minlength=len(ERROR_BIN_EDGES) + 1
            )
        ),
    )
    if out.any():
        kind = "values differ" if dtype in DEFAULT_TOLERANCES else "integer values differ"
        finding = f"{kind}: {frac_out:.2%} of elements out of tolerance"
        check = replace(check, findings=(*check.findings, finding))
    return check
