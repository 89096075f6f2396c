"""The inputs to validate on, with the eager model's outputs on each: export size, fresh draw, resized."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from exportkit.errors import ForwardError
from exportkit.inputs import ExampleInputs, run_model

if TYPE_CHECKING:
    import numpy as np
    from torch import nn

    from exportkit.diagnose import Location

__all__ = ["Case", "flat_outputs", "make_cases", "to_numpy"]


@dataclass(frozen=True)
class Case:
    """Inputs plus the eager model's flattened outputs on them (computed once, shared by files).

    ``error`` says why there is nothing to compare (PyTorch itself fails on these inputs), and
    ``error_at`` where in the model it failed.
    """

    label: str
    inputs: ExampleInputs
    expected: tuple[np.ndarray, ...]
    error: str | None = None
    error_at: Location | None = None


def to_numpy(value: Any) -> np.ndarray:
    """A tensor (bfloat16 widened to float32) or array-like as a numpy array."""
    import numpy as np
    import torch

    if isinstance(value, torch.Tensor):
        t = value.detach().cpu()
        if t.dtype == torch.bfloat16:
            t = t.float()
        return t.numpy()
    return np.asarray(value)


def flat_outputs(outputs: Any) -> tuple[np.ndarray, ...]:
    """The leaves of a model's output structure, in the exporters' order."""
    from torch.utils._pytree import tree_leaves

    from exportkit.outputs import plain_outputs

    leaves = tree_leaves(plain_outputs(outputs))
    return tuple(to_numpy(leaf) for leaf in leaves if leaf is not None)


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

    Raises:
        ForwardError: the model raised on the export inputs themselves.
    """
    from exportkit.diagnose import locate_exception

    if reference is None:
        reference = run_model(module, inputs)
    cases = [Case("export inputs", inputs, flat_outputs(reference))]
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
            cases.append(Case(label, case_inputs, flat_outputs(run_model(module, case_inputs))))
        except ForwardError as exc:
            # The eager model itself does not run here: the dim is not really dynamic.
            cause = exc.__cause__
            lines = str(cause).strip().splitlines() if cause is not None else []
            what = f"{type(cause).__name__}: {lines[0] if lines else ''}" if cause else exc.message
            where = locate_exception(module, cause) if cause is not None else None
            at = f" in {where.describe()}" if where is not None else ""
            error = f"PyTorch itself fails at {label}{at}: {what}"
            cases.append(Case(label, case_inputs, (), error, where))
    return cases
