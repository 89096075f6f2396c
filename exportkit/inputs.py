"""Example inputs: ``x:2x3x224x224:float32`` specs, declared inputs, dynamic dims, seeded draws."""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from exportkit.errors import ForwardError, InputSpecError

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "DTYPES",
    "DynamicSpec",
    "ExampleInputs",
    "InputSpec",
    "TensorSpec",
    "forward_parameters",
    "make_inputs",
    "run_model",
]

logger = logging.getLogger(__name__)

DTYPES = ("float32", "float64", "float16", "bfloat16", "int64", "int32", "int8", "uint8", "bool")
_INT_DEFAULT_RANGE = (0, 10)
_DIM_SPLIT = re.compile(r"[x,]")


@dataclass(frozen=True)
class TensorSpec:
    """How to draw one input: shape, dtype and value range [low, high)."""

    shape: tuple[int, ...]
    dtype: str = "float32"
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class InputSpec:
    """One ``--input``: ``NAME:SHAPE[:DTYPE]`` (shape ``2x3x224x224`` or ``2,3,224,224``)."""

    name: str
    tensor: TensorSpec

    @classmethod
    def parse(cls, text: str) -> InputSpec:
        """Parse ``x:2x10``, ``ids:2x16:int64``.

        Raises:
            InputSpecError: the text is not of that form.
        """
        parts = text.split(":")
        example = "write --input NAME:SHAPE[:DTYPE], for example x:2x3x224x224:float32"
        if len(parts) < 2 or not parts[0].isidentifier():
            raise InputSpecError(
                f"cannot parse --input {text!r}: expected NAME:SHAPE", hint=example
            )
        name, shape_text, *rest = parts
        shape = _parse_shape(shape_text, text, example)
        dtype = rest[0] if rest else "float32"
        if dtype not in DTYPES:
            raise InputSpecError(
                f"--input {text!r} has unknown dtype {dtype!r}; known: {', '.join(DTYPES)}",
                hint=example,
            )
        if len(rest) > 1:
            raise InputSpecError(f"cannot parse --input {text!r}: too many ':' parts", hint=example)
        return cls(name, TensorSpec(shape, dtype))


def _parse_shape(shape_text: str, text: str, example: str) -> tuple[int, ...]:
    if shape_text.strip() in ("", "scalar"):
        return ()
    try:
        dims = tuple(int(d) for d in _DIM_SPLIT.split(shape_text.strip()))
    except ValueError:
        raise InputSpecError(
            f"cannot parse shape {shape_text!r} in --input {text!r}", hint=example
        ) from None
    if any(d < 0 for d in dims):
        raise InputSpecError(f"negative dimension in --input {text!r}", hint=example)
    return dims


@dataclass(frozen=True)
class DynamicSpec:
    """One ``--dynamic``: ``batch`` (dim 0 of every input) or ``NAME:AXIS[=label]``."""

    input: str | None
    axis: int
    label: str

    @classmethod
    def parse(cls, text: str) -> DynamicSpec:
        """Parse ``batch``, ``x:0``, ``ids:1=seq``.

        Raises:
            InputSpecError: the text is not of that form.
        """
        hint = "write --dynamic batch, or --dynamic NAME:AXIS[=label], for example ids:1=seq"
        if text == "batch":
            return cls(None, 0, "batch")
        spec, _, label = text.partition("=")
        name, sep, axis_text = spec.partition(":")
        if not sep or not name.isidentifier():
            raise InputSpecError(f"cannot parse --dynamic {text!r}", hint=hint)
        try:
            axis = int(axis_text)
        except ValueError:
            raise InputSpecError(
                f"--dynamic {text!r}: axis {axis_text!r} is not a number", hint=hint
            ) from None
        if label and not label.isidentifier():
            raise InputSpecError(
                f"--dynamic {text!r}: label {label!r} is not an identifier", hint=hint
            )
        return cls(name, axis, label or ("batch" if axis == 0 else f"{name}_dim{axis}"))


@dataclass(frozen=True)
class ExampleInputs:
    """Named example tensors in ``forward``'s order, how to redraw them, and their dynamic dims.

    ``dynamic`` maps input name -> {axis: label}; inputs sharing a label share one symbolic size.
    """

    tensors: Mapping[str, torch.Tensor]
    specs: Mapping[str, TensorSpec]
    dynamic: Mapping[str, Mapping[int, str]] = field(default_factory=dict)
    source: str = "given"
    seed: int = 0
    notes: tuple[str, ...] = ()

    @property
    def labels(self) -> dict[str, int]:
        """Each dynamic label with its size in these tensors."""
        return {
            label: int(self.tensors[name].shape[axis])
            for name, axes in self.dynamic.items()
            for axis, label in axes.items()
        }

    def describe(self) -> list[str]:
        """``--input`` lines that rebuild these inputs."""
        return [
            f"{name}:{'x'.join(str(d) for d in t.shape) or 'scalar'}:{self.specs[name].dtype}"
            for name, t in self.tensors.items()
        ]

    def resample(self, sizes: Mapping[str, int], *, seed: int) -> ExampleInputs:
        """Fresh seeded draws with dynamic labels set to ``sizes`` (other dims unchanged)."""
        specs = {}
        for name, spec in self.specs.items():
            shape = list(spec.shape)
            for axis, label in self.dynamic.get(name, {}).items():
                if label in sizes:
                    shape[axis] = sizes[label]
            specs[name] = replace(spec, shape=tuple(shape))
        return replace(self, tensors=_draw(specs, seed), specs=specs, seed=seed)


def _torch_dtype(name: str) -> torch.dtype:
    import torch

    dtype = getattr(torch, name)
    assert isinstance(dtype, torch.dtype)
    return dtype


def _draw(specs: Mapping[str, TensorSpec], seed: int) -> dict[str, torch.Tensor]:
    """Seeded random tensors: floats ~ N(0,1) (or uniform in a range), integers in [low, high)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    out = {}
    for name, spec in specs.items():
        dtype = _torch_dtype(spec.dtype)
        if spec.dtype == "bool":
            out[name] = torch.randint(0, 2, spec.shape, generator=gen).bool()
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
                else _INT_DEFAULT_RANGE
            )
            out[name] = torch.randint(low, high, spec.shape, generator=gen, dtype=dtype)
    return out


def forward_parameters(module: nn.Module) -> list[inspect.Parameter]:
    """``forward``'s parameters, without ``self``."""
    return list(inspect.signature(module.forward).parameters.values())


def _signature_text(module: nn.Module) -> str:
    return f"forward{inspect.signature(module.forward)}"


def _check_names(module: nn.Module, names: Sequence[str]) -> None:
    params = forward_parameters(module)
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return
    known = {p.name for p in params if p.kind is not p.VAR_POSITIONAL}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise InputSpecError(
            f"input {unknown[0]!r} is not a parameter of {type(module).__name__}.{_signature_text(module)}",
            hint=f"name inputs after forward's parameters: {', '.join(sorted(known)) or '(none)'}",
        )


def _ordered(module: nn.Module, names: Sequence[str]) -> list[str]:
    order = {p.name: i for i, p in enumerate(forward_parameters(module))}
    return sorted(names, key=lambda n: order.get(n, len(order)))


def _from_declared(module: nn.Module, declared: Any) -> tuple[dict[str, torch.Tensor], str]:
    """Accept a tensor, a tuple of tensors (positional) or a dict (by name) from example_inputs()."""
    import torch

    value = declared() if callable(declared) else declared
    params = [
        p
        for p in forward_parameters(module)
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if isinstance(value, torch.Tensor):
        value = (value,)
    if isinstance(value, Mapping):
        return dict(value), "declared"
    if isinstance(value, (tuple, list)):
        if len(value) > len(params):
            raise InputSpecError(
                f"example_inputs() gave {len(value)} values but {_signature_text(module)} takes "
                f"{len(params)} positional parameters",
                hint="return a dict of name -> tensor from example_inputs()",
            )
        return {p.name: v for p, v in zip(params, value)}, "declared"
    raise InputSpecError(
        f"example_inputs() returned a {type(value).__name__}",
        hint="return a tensor, a tuple of tensors, or a dict of name -> tensor",
    )


def _spec_of(t: torch.Tensor) -> TensorSpec:
    dtype = str(t.dtype).removeprefix("torch.")
    low = high = None
    if not t.dtype.is_floating_point and dtype != "bool" and t.numel():
        low, high = int(t.min()), int(t.max()) + 1
    return TensorSpec(tuple(t.shape), dtype, low, high)


def _resolve_dynamic(
    specs: Mapping[str, TensorSpec], dynamic: Sequence[DynamicSpec]
) -> tuple[dict[str, dict[int, str]], dict[str, TensorSpec], list[str]]:
    """Map --dynamic onto inputs; move example sizes of 1 on dynamic dims (exporters freeze them)."""
    out: dict[str, dict[int, str]] = {}
    for d in dynamic:
        targets = list(specs) if d.input is None else [d.input]
        for name in targets:
            if name not in specs:
                raise InputSpecError(
                    f"--dynamic names input {name!r}, but the inputs are: {', '.join(specs)}",
                    hint="use one of the input names, or --dynamic batch for dim 0 of every input",
                )
            rank = len(specs[name].shape)
            if d.input is None and rank == 0:
                continue
            if not -rank <= d.axis < rank:
                raise InputSpecError(
                    f"--dynamic {name}:{d.axis}: input {name!r} has only {rank} dims",
                    hint=f"axes of {name!r} are 0..{rank - 1}",
                )
            out.setdefault(name, {})[d.axis % rank] = d.label
    notes = []
    specs = dict(specs)
    for name, axes in out.items():
        shape = list(specs[name].shape)
        for axis, label in axes.items():
            if shape[axis] == 1:
                shape[axis] = 2
                notes.append(
                    f"{name}: example size 1 on dynamic dim {axis} ({label}) changed to 2, "
                    "since exporters silently freeze size-1 dims"
                )
        specs[name] = replace(specs[name], shape=tuple(shape))
    return out, specs, notes


def make_inputs(
    module: nn.Module,
    given: Sequence[InputSpec] = (),
    *,
    dynamic: Sequence[DynamicSpec] = (),
    declared: Callable[[], Any] | None = None,
    seed: int = 0,
) -> ExampleInputs:
    """Build example inputs for ``module``: from ``--input`` specs, else ``example_inputs()``.

    Args:
        module: the model; inputs are matched to its ``forward`` parameters by name.
        given: ``--input`` specs; when empty, ``declared`` is used.
        dynamic: dims to export as dynamic.
        declared: the model's ``example_inputs`` callable, if any.
        seed: seed for every random draw.

    Raises:
        InputSpecError: no inputs given or declared, or names that are not forward's parameters.
    """
    notes: list[str] = []
    if given:
        specs = {s.name: s.tensor for s in given}
        _check_names(module, list(specs))
        source = "given"
        fixed: dict[str, torch.Tensor] = {}
    elif declared is not None:
        fixed, source = _from_declared(module, declared)
        _check_names(module, list(fixed))
        specs = {n: _spec_of(t) for n, t in fixed.items()}
    else:
        params = [p.name for p in forward_parameters(module)]
        example = " ".join(f"--input {p}:2x..." for p in params) or "--input x:2x3"
        raise InputSpecError(
            f"no example inputs for {type(module).__name__}.{_signature_text(module)}",
            hint=f"pass {example}, or define example_inputs() on the model",
        )
    order = _ordered(module, list(specs))
    specs = {n: specs[n] for n in order}
    dyn, resolved, notes = _resolve_dynamic(specs, dynamic)
    reuse = fixed and resolved == specs  # declared tensors unchanged by --dynamic
    tensors = {n: fixed[n] for n in order} if reuse else _draw(resolved, seed)
    return ExampleInputs(tensors, resolved, dyn, source, seed, tuple(notes))


def run_model(module: nn.Module, inputs: ExampleInputs) -> Any:
    """Run the model on the inputs by keyword, as the exporters do.

    Raises:
        ForwardError: forward raised; the message says which input shapes were tried.
    """
    import torch

    try:
        with torch.no_grad():
            return module(**inputs.tensors)
    except Exception as exc:
        shapes = ", ".join(inputs.describe())
        raise ForwardError(
            f"{type(module).__name__}.forward raised on inputs {shapes}: {type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}",
            hint="check the --input shapes and dtypes against what forward expects",
        ) from exc
