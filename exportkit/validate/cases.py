"""The inputs to validate on, with the eager model's outputs on each: export size, fresh draw, resized."""

from __future__ import annotations

from dataclasses import dataclass, replace
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


def _other_sizes(size: int) -> list[list[int]]:
    """For each resized check, the sizes to try in order, never the export size.

    The first is 1 (or size + 3); when PyTorch itself cannot run there, powers of two below the
    export size (or twice it) follow, for models that need a minimum size or a multiple of their
    stride, as convolutional and windowed-attention models do on their spatial dims.
    """
    small = [1, *(2**k for k in range(1, 16) if 2**k < size)]
    return [[s for s in options if s != size] for options in (small, [size + 3, 2 * size])]


def _resized(labels: dict[str, int]) -> list[list[dict[str, int]]]:
    """Per resized check, the label -> size targets to try, in order; labels move together."""
    checks = []
    for k in range(2):
        options = {label: _other_sizes(size)[k] for label, size in labels.items()}
        if not all(options.values()):
            continue
        tries: list[dict[str, int]] = []
        for j in range(max(len(o) for o in options.values())):
            target = {label: o[min(j, len(o) - 1)] for label, o in options.items()}
            if target not in tries:
                tries.append(target)
        checks.append(tries)
    return checks


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
        sizes: also try every dynamic label at 1 and at a larger size (fresh seeded draws);
            where PyTorch itself cannot run there, the nearest sizes it runs at (the label says).
        reference: the model's outputs on ``inputs``, if already computed.

    Raises:
        ForwardError: the model raised on the export inputs themselves.
    """
    if reference is None:
        reference = run_model(module, inputs)
    cases = [Case("export inputs", inputs, flat_outputs(reference))]
    fresh = inputs.resample(inputs.labels, seed=inputs.seed + 1)
    cases.append(_case(module, "fresh draw", fresh))
    if sizes and inputs.dynamic:
        for k, tries in enumerate(_resized(inputs.labels)):
            first: Case | None = None
            for target in tries:
                text = ", ".join(f"{name}={v}" for name, v in target.items())
                case = _case(module, text, inputs.resample(target, seed=inputs.seed + 2 + k))
                if case.error is None:
                    if first is not None:  # say where PyTorch itself could not run
                        case = replace(case, label=f"{text} (PyTorch fails at {first.label})")
                    break
                first = first or case
            cases.append(case if case.error is None else (first or case))
    return cases


def _case(module: nn.Module, label: str, case_inputs: ExampleInputs) -> Case:
    """The eager outputs on ``case_inputs``, or why PyTorch itself cannot run on them."""
    from exportkit.diagnose import locate_exception

    try:
        return Case(label, case_inputs, flat_outputs(run_model(module, case_inputs)))
    except ForwardError as exc:
        # The eager model itself does not run here: the dim is not really dynamic.
        cause = exc.__cause__
        lines = str(cause).strip().splitlines() if cause is not None else []
        what = f"{type(cause).__name__}: {lines[0] if lines else ''}" if cause else exc.message
        where = locate_exception(module, cause) if cause is not None else None
        at = f" in {where.describe()}" if where is not None else ""
        error = f"PyTorch itself fails at {label}{at}: {what}"
        return Case(label, case_inputs, (), error, where)
