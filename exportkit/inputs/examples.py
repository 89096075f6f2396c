"""ExampleInputs: the named tensors a model is exported with, and how to redraw them at other sizes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from exportkit.inputs.spec import TensorSpec

if TYPE_CHECKING:
    import torch

__all__ = ["INT_DEFAULT_RANGE", "ExampleInputs", "draw", "fit_fixed"]

INT_DEFAULT_RANGE = (0, 10)


@dataclass(frozen=True)
class ExampleInputs:
    """Named example tensors in ``forward``'s order, how to redraw them, and their dynamic dims.

    ``dynamic`` maps input name -> {axis: label}; inputs sharing a label share one symbolic size.
    ``source`` says where the inputs came from: ``given`` (``--input``), ``declared``
    (``example_inputs()``), ``config`` (a HuggingFace config), ``archive`` (a torch.export
    archive's own example inputs) or ``inferred`` (from forward's signature and first layers).
    ``fixed`` holds real data (``--input x=data.npy``): :meth:`resample` never redraws it; on a
    dynamic dim it is sliced (smaller size) or tiled cyclically (larger size).
    """

    tensors: Mapping[str, torch.Tensor]
    specs: Mapping[str, TensorSpec]
    dynamic: Mapping[str, Mapping[int, str]] = field(default_factory=dict)
    source: str = "given"
    seed: int = 0
    notes: tuple[str, ...] = ()
    fixed: Mapping[str, torch.Tensor] = field(default_factory=dict)

    @property
    def labels(self) -> dict[str, int]:
        """Each dynamic label with its size in these tensors."""
        return {
            label: int(self.tensors[name].shape[axis])
            for name, axes in self.dynamic.items()
            for axis, label in axes.items()
        }

    def describe(self) -> list[str]:
        """``--input`` lines that rebuild these inputs (shape, dtype, and integer ranges)."""
        return [self.specs[name].describe(name) for name in self.tensors]

    def resample(self, sizes: Mapping[str, int], *, seed: int) -> ExampleInputs:
        """Fresh seeded draws with dynamic labels set to ``sizes`` (other dims unchanged).

        Fixed inputs (real data) keep their values: sliced or tiled on resized dynamic dims.
        """
        specs = {}
        for name, spec in self.specs.items():
            shape = list(spec.shape)
            for axis, label in self.dynamic.get(name, {}).items():
                if label in sizes:
                    shape[axis] = sizes[label]
            specs[name] = replace(spec, shape=tuple(shape))
        drawn = draw({n: s for n, s in specs.items() if n not in self.fixed}, seed)
        tensors = {
            n: fit_fixed(self.fixed[n], specs[n].shape) if n in self.fixed else drawn[n]
            for n in specs
        }
        return replace(self, tensors=tensors, specs=specs, seed=seed)


def torch_dtype(name: str) -> torch.dtype:
    """``"int64"`` -> ``torch.int64``."""
    import torch

    dtype = getattr(torch, name)
    assert isinstance(dtype, torch.dtype)
    return dtype


def draw(specs: Mapping[str, TensorSpec], seed: int) -> dict[str, torch.Tensor]:
    """Seeded random tensors: floats ~ N(0,1) (or uniform in a range), integers in [low, high)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    out = {}
    for name, spec in specs.items():
        dtype = torch_dtype(spec.dtype)
        if spec.dtype == "bool":
            low, high = (
                (0, 2) if spec.low is None or spec.high is None else (int(spec.low), int(spec.high))
            )
            out[name] = torch.randint(low, high, spec.shape, generator=gen).bool()
        elif dtype.is_floating_point:
            if spec.low is not None and spec.high is not None:
                t = torch.rand(spec.shape, generator=gen) * (spec.high - spec.low) + spec.low
            else:
                t = torch.randn(spec.shape, generator=gen)
            out[name] = t.to(dtype)
        else:
            low, high = (
                (int(spec.low), int(spec.high))
                if spec.low is not None and spec.high is not None
                else INT_DEFAULT_RANGE
            )
            out[name] = torch.randint(low, high, spec.shape, generator=gen, dtype=dtype)
    return out


def fit_fixed(tensor: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Real data at another size: slice each dim that shrinks, tile cyclically each that grows."""
    import torch

    out = tensor
    for axis, (have, want) in enumerate(zip(tensor.shape, shape)):
        if want == have:
            continue
        index = torch.arange(want) % have
        out = out.index_select(axis, index)
    return out
