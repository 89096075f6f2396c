"""Localization's judging: which ONNX value stands for a module's tensor, whether they differ,
and who is to blame. A module is blamed only on values that compare soundly (same shape and
dtype, or a size the graph froze at the export inputs), judged at the value's own scale."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from exportkit.validate.compare import OutputCheck, Tolerances, compare_arrays
from exportkit.validate.eager import Call
from exportkit.validate.probe import Boundary, StaticShape

if TYPE_CHECKING:
    import numpy as np

__all__ = ["Blame", "Matcher", "Verdict", "diverges"]

Shape = tuple[int, ...]
Verdict = tuple[OutputCheck, str]  # the comparison and the ONNX value it was made with


def diverges(check: OutputCheck) -> bool:
    """The scale-aware rule: a value differs when it fails allclose and its largest difference
    is beyond ``atol + rtol * magnitude`` too (12 on values of 1e5 is rounding, not a fault), or
    when the graph computed another shape (a size frozen at export)."""
    if check.passed:
        return False
    if check.actual_shape is not None:
        return True
    return not check.max_abs <= check.atol + check.rtol * check.magnitude


def _fits(declared: StaticShape | None, shape: Shape | None) -> bool:
    """Whether a declared shape (sizes and symbols) admits ``shape``."""
    if declared is None or shape is None or len(declared) != len(shape):
        return False
    return all(not isinstance(d, int) or d == n for d, n in zip(declared, shape))


def _text(shape: Shape) -> str:
    return "x".join(map(str, shape)) or "scalar"


@dataclass(frozen=True)
class Blame:
    culprit: str  # the module to blame
    entry: str  # the outermost call under it whose inputs already differ (or the culprit)
    inputs_ok: bool | None
    bad_input: Verdict | None


@dataclass
class Matcher:
    """The ONNX values of one case, and how each module call's tensors compare with them.

    ``export_shapes`` holds, per index into ``recorded``, the shapes of that call's outputs and
    inputs at the export inputs; ``static`` the shapes the graph declares for its values. A
    value of another shape is compared only when the graph declares it with the module's shape
    at export (a size frozen there), never a value mapped to the wrong module.
    ``unsound`` collects the comparisons refused for shape or dtype, to say why none was made.
    """

    actual: Mapping[str, np.ndarray]
    bounds: Boundary
    recorded: Sequence[Call]
    tol: Tolerances
    repeated: set[str]
    export_shapes: Mapping[int, tuple[list[Shape], list[Shape]]]
    static: Callable[[], Mapping[str, StaticShape]]
    order: Sequence[int] = ()  # indices into ``recorded``, in the order PyTorch finished them
    unsound: list[str] = field(default_factory=list)
    at_scale: list[str] = field(default_factory=list)
    rtol: float = 0.0  # the rtol the values in ``at_scale`` were judged with

    def _best(
        self, label: str, expected: np.ndarray, names: Sequence[str], frozen: Shape | None
    ) -> Verdict | None:
        """The closest ONNX value with ``expected``'s shape and dtype; else, when exactly one
        value stands for ``expected``, that value if its shape is the export-time one."""
        present = [n for n in names if n in self.actual]
        best: Verdict | None = None
        for name in present:
            value = self.actual[name]
            if value.shape != expected.shape or value.dtype != expected.dtype:
                continue
            check = compare_arrays(label, expected, value, self.tol)
            if best is None or (diverges(check), check.max_abs) < (
                diverges(best[0]),
                best[0].max_abs,
            ):
                best = (check, name)
        if best is not None or not present:
            return best
        value = self.actual[present[0]]
        declared = self.static().get(present[0]) if frozen is not None else None
        sound = value.dtype == expected.dtype and _fits(declared, frozen)
        if len(present) == 1 and sound:
            return compare_arrays(label, expected, value, self.tol), present[0]
        if len(self.unsound) < 8:
            self.unsound.append(
                f"{label}: PyTorch {_text(expected.shape)} {expected.dtype}, the ONNX value "
                f"{present[0]} {_text(value.shape)} {value.dtype}"
            )
        return None

    def verdicts(
        self, label: str, arrays: Sequence[np.ndarray], names: Sequence[str], frozen: list[Shape]
    ) -> list[Verdict]:
        single = len(arrays) == 1
        found = []
        for k, a in enumerate(arrays):
            shape = frozen[k] if single and k < len(frozen) else None
            verdict = self._best(label, a, names, shape)
            if verdict is not None:
                found.append(verdict)
        return found

    def _mapped(self, index: int) -> bool:
        names = self.bounds.outputs.get(self.recorded[index].path, ())
        return any(n in self.actual for n in names)

    def _fused(self, index: int, step: int) -> int | None:
        """The call just after (``step`` 1) or before (-1) ``index`` under the same caller, when
        one reads the other's output and it has no ONNX values of its own: an exporter that
        folded the two (a BatchNorm into the Conv before it) left one scope for both."""
        import numpy as np

        if index not in self.order:
            return None
        k = list(self.order).index(index) + step
        if not 0 <= k < len(self.order) or self._mapped(self.order[k]):
            return None
        other = self.order[k]
        first, second = sorted((index, other))
        made, read = self.recorded[first].outputs, self.recorded[second].inputs
        if self.recorded[first].parent != self.recorded[second].parent or not made or not read:
            return None
        linked = made[0].shape == read[0].shape and np.array_equal(made[0], read[0])
        return other if linked else None

    def outputs(self, index: int) -> list[Verdict]:
        """How call ``recorded[index]``'s outputs compare with the values leaving its scope
        (or, when its scope also holds the next call folded into it, with that call's)."""
        call = self.recorded[index]
        names = self.bounds.outputs.get(call.path, ())
        label = call.path or "the model"
        known = self.verdicts(
            label, call.outputs, names, self.export_shapes.get(index, ([], []))[0]
        )
        folded = self._fused(index, 1) if any(diverges(v[0]) for v in known) else None
        if folded is not None:
            frozen = self.export_shapes.get(folded, ([], []))[0]
            other = self.verdicts(label, self.recorded[folded].outputs, names, frozen)
            if other and not any(diverges(v[0]) for v in other):
                return other
        return known

    def first_bad(self, known: Sequence[Verdict], path: str) -> Verdict | None:
        """The first differing comparison; for a repeated module, only when none matched."""
        bad = next((v for v in known if diverges(v[0])), None)
        if path in self.repeated and any(not diverges(v[0]) for v in known):
            return None
        rounding = [v[0] for v in known if not v[0].passed]
        if bad is None and rounding and path not in self.at_scale:
            self.at_scale.append(path)
            self.rtol = rounding[0].rtol
        return bad

    def _input_verdicts(self, index: int, names: Sequence[str]) -> list[Verdict]:
        frozen = self.export_shapes.get(index, ([], []))[1]
        # Constant inputs (zero initial states) are often folded into the graph: not comparable.
        varying = [
            (a, frozen[k] if k < len(frozen) else None)
            for k, a in enumerate(self.recorded[index].inputs)
            if a.size > 1 and not (a == a.flat[0]).all()
        ]
        shapes = [s for _, s in varying if s is not None]
        use = shapes if len(shapes) == len(varying) else []
        return self.verdicts("input", [a for a, _ in varying], names, use)

    def _inputs(self, index: int) -> tuple[bool | None, Verdict | None]:
        """Whether the call's inputs match (None: none compared), and the first that does not.
        When the call before it was folded into its scope, the scope's inputs are that call's."""
        path = self.recorded[index].path
        names = self.bounds.inputs.get(path, ())
        known = self._input_verdicts(index, names)
        bad = self.first_bad(known, path)
        folded = self._fused(index, -1) if bad is not None or not known else None
        if folded is not None:
            other = self._input_verdicts(folded, names)
            if other and self.first_bad(other, path) is None:
                return True, None
        return (bad is None if known else None), bad

    def blame(self, index: int) -> Blame:
        """The call itself when its inputs matched; else the innermost caller whose did."""
        inputs_ok, bad_input = self._inputs(index)
        call = self.recorded[index]
        culprit = entry = call.path
        parent = call.parent if inputs_ok is False else None
        while parent is not None:
            caller = self.recorded[parent]
            culprit = caller.path
            agree, bad = self._inputs(parent)
            if agree is False:
                entry, bad_input = caller.path, bad
            parent = caller.parent if agree is False else None
        return Blame(culprit, entry, inputs_ok, bad_input)


def export_shapes(
    recorded: Sequence[Call], at_export: Sequence[Call]
) -> dict[int, tuple[list[Shape], list[Shape]]]:
    """Per call, its output and input shapes at the export inputs, when both runs made the
    same calls (else none: a different shape is then never a sound comparison)."""
    if [c.path for c in recorded] != [c.path for c in at_export]:
        return {}
    return {
        i: ([tuple(a.shape) for a in c.outputs], [tuple(a.shape) for a in c.inputs])
        for i, c in enumerate(at_export)
    }
