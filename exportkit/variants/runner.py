"""Run validation cases through a file on one execution provider and measure every output."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from exportkit.perf import CPU, session
from exportkit.variants.metrics import measure
from exportkit.variants.results import Thresholds, VariantTrial

if TYPE_CHECKING:
    from exportkit.inputs import ExampleInputs
    from exportkit.validate import Case, Tolerances

__all__ = ["feeds", "first_line", "open_session", "run_trials"]

_NUMPY = {"tensor(float16)": "float16", "tensor(float)": "float32", "tensor(double)": "float64"}


def first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    return lines[0] if lines else type(exc).__name__


def open_session(path: Path, provider: str = CPU) -> Any:
    """A session, or raise the loader's error (callers turn it into a finding)."""
    return session(str(path), provider)


def feeds(sess: Any, inputs: ExampleInputs) -> dict[str, Any]:
    """Inputs by name (else by position), cast to the file's input types (float16 inputs)."""
    import torch

    wanted = sess.get_inputs()
    given = dict(inputs.tensors)
    if all(i.name in given for i in wanted):
        pairs = [(i, given[i.name]) for i in wanted]
    elif len(wanted) == len(given):
        pairs = list(zip(wanted, given.values()))
    else:
        names = ", ".join(i.name for i in wanted)
        raise ValueError(f"the file wants inputs {names}; given: {', '.join(given)}")
    out = {}
    for info, tensor in pairs:
        t = tensor.detach().cpu()
        array = (t.float() if t.dtype == torch.bfloat16 else t).numpy()
        dtype = _NUMPY.get(info.type)
        out[info.name] = array.astype(dtype) if dtype and array.dtype.kind == "f" else array
    return out


def run_trials(
    path: Path,
    cases: Sequence[Case],
    *,
    provider: str = CPU,
    tolerances: Tolerances | None = None,
    thresholds: Thresholds | None = None,
    sess: Any = None,
) -> tuple[VariantTrial, ...]:
    """Every case PyTorch runs on, through the file: allclose with ``tolerances`` when given,
    else cosine/SQNR/top-1 against ``thresholds``."""
    if sess is None:
        try:
            sess = open_session(path, provider)
        except Exception as exc:
            return (VariantTrial("load", (), f"onnxruntime cannot load it: {first_line(exc)}"),)
    names = [o.name for o in sess.get_outputs()]
    trials = []
    for case in cases:
        if case.error is not None or not case.expected:
            continue  # PyTorch itself fails here: the float file's report says so
        try:
            actual = sess.run(None, feeds(sess, case.inputs))
        except Exception as exc:
            trials.append(VariantTrial(case.label, (), f"onnxruntime failed: {first_line(exc)}"))
            continue
        if len(actual) != len(case.expected):
            error = f"onnxruntime gave {len(actual)} outputs, PyTorch {len(case.expected)}"
            trials.append(VariantTrial(case.label, (), error))
            continue
        outputs = tuple(
            measure(n, e, a, tolerances=tolerances, thresholds=thresholds)
            for n, e, a in zip(names, case.expected, actual)
        )
        trials.append(VariantTrial(case.label, outputs))
    return tuple(trials)


def output_arrays(sess: Any, inputs: ExampleInputs) -> Mapping[str, Any]:
    """The file's outputs on ``inputs`` by name."""
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, feeds(sess, inputs))))
