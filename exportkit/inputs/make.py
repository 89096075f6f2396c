"""make_inputs: ``--input`` specs, data files, declared or suggested inputs, else inference."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from exportkit.errors import ForwardError, InputSpecError
from exportkit.inputs.data import load_data
from exportkit.inputs.examples import ExampleInputs, draw
from exportkit.inputs.forward import (
    error_line,
    forward_parameters,
    required_parameters,
    signature_text,
)
from exportkit.inputs.spec import DynamicSpec, InputSpec, TensorSpec

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "SuggestedInputs",
    "make_inputs",
    "run_model",
    "spec_of",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SuggestedInputs:
    """Inputs a loader knows for its model (a HuggingFace config, a torch.export archive).

    ``tensors`` are used as they are when nothing changes their shape; ``dynamic`` holds dims the
    source already knows to be dynamic (a torch.export archive's symbolic dims).
    """

    specs: Mapping[str, TensorSpec]
    source: str
    tensors: Mapping[str, torch.Tensor] = field(default_factory=dict)
    dynamic: Mapping[str, Mapping[int, str]] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def _check_names(module: nn.Module, names: Sequence[str]) -> None:
    params = forward_parameters(module)
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return
    known = [p.name for p in params if p.kind is not p.VAR_POSITIONAL]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise InputSpecError(
            f"input {unknown[0]!r} is not a parameter of {signature_text(module)}",
            hint=f"name inputs after forward's parameters: {', '.join(known) or '(none)'}",
        )


def _ordered(module: nn.Module, names: Sequence[str]) -> list[str]:
    order = {p.name: i for i, p in enumerate(forward_parameters(module))}
    return sorted(names, key=lambda n: order.get(n, len(order)))


def _from_declared(module: nn.Module, declared: Any) -> dict[str, torch.Tensor]:
    """Accept a tensor, a tuple of tensors (positional) or a dict (by name) from example_inputs()."""
    import torch

    try:
        value = declared() if callable(declared) else declared
    except Exception as exc:
        raise InputSpecError(
            f"example_inputs() raised {type(exc).__name__}: {exc}",
            hint="fix example_inputs(), or pass --input to override it",
        ) from exc
    params = [
        p
        for p in forward_parameters(module)
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if isinstance(value, torch.Tensor):
        value = (value,)
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (tuple, list)):
        if len(value) > len(params):
            raise InputSpecError(
                f"example_inputs() gave {len(value)} values but {signature_text(module)} takes "
                f"{len(params)} positional parameters",
                hint="return a dict of name -> tensor from example_inputs()",
            )
        return {p.name: v for p, v in zip(params, value)}
    raise InputSpecError(
        f"example_inputs() returned a {type(value).__name__}",
        hint="return a tensor, a tuple of tensors, or a dict of name -> tensor",
    )


def spec_of(t: torch.Tensor) -> TensorSpec:
    """A spec that redraws tensors like ``t``: same shape and dtype, integers within its values."""
    dtype = str(t.dtype).removeprefix("torch.")
    low = high = None
    if not t.dtype.is_floating_point and dtype != "bool" and t.numel():
        low, high = int(t.min()), int(t.max()) + 1
    return TensorSpec(tuple(t.shape), dtype, low, high)


def _resolve_dynamic(
    specs: Mapping[str, TensorSpec],
    dynamic: Sequence[DynamicSpec],
    known: Mapping[str, Mapping[int, str]],
) -> tuple[dict[str, dict[int, str]], dict[str, TensorSpec], list[str]]:
    """Map --dynamic onto inputs; move example sizes of 1 on dynamic dims (exporters freeze them)."""
    out: dict[str, dict[int, str]] = {n: dict(a) for n, a in known.items() if n in specs}
    asked: dict[tuple[str, int], str] = {}  # (input, axis) -> label, from --dynamic itself
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
                    hint=f"axes of {name!r} are 0..{rank - 1}" if rank else f"{name!r} is a scalar",
                )
            label = asked.setdefault((name, d.axis % rank), d.label)
            if label != d.label:
                raise InputSpecError(
                    f"--dynamic gives {name}:{d.axis} two labels: {label!r} and {d.label!r}",
                    hint="give each dynamic dim one label; dims sharing a label share one size",
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


_ITEM_BYTES = {"float64": 8, "int64": 8, "float32": 4, "int32": 4, "float16": 2, "bfloat16": 2}


def _fits_in_memory(specs: Mapping[str, TensorSpec]) -> None:
    """Refuse example inputs larger than this machine's memory before trying to allocate them."""
    import os

    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not a POSIX system: let the draw decide
        return
    sizes = {n: math.prod(s.shape) * _ITEM_BYTES.get(s.dtype, 1) for n, s in specs.items()}
    if sum(sizes.values()) > memory:
        name = max(sizes, key=lambda n: sizes[n])
        raise InputSpecError(
            f"--input {specs[name].describe(name)} needs {sizes[name] / 1e9:.3g} GB, more than "
            f"this machine's memory ({memory / 1e9:.3g} GB)",
            hint="give smaller example shapes: exportkit exports at any size and validates "
            "dynamic dims at other sizes",
        )


def _given(
    module: nn.Module, given: Sequence[InputSpec]
) -> tuple[dict[str, TensorSpec], dict[str, torch.Tensor]]:
    """``--input`` specs -> specs to draw and fixed tensors from data files."""
    specs: dict[str, TensorSpec] = {}
    fixed: dict[str, torch.Tensor] = {}
    origin: dict[str, str] = {}

    def once(name: str, where: str) -> None:
        if name in origin:
            raise InputSpecError(
                f"input {name!r} is given twice: by {origin[name]} and by {where}",
                hint=f"give each of {signature_text(module)}'s inputs once",
            )
        origin[name] = where

    for s in given:
        if s.file is not None:
            for name, t in load_data(s.file, s.name).items():
                once(name, f"--input {s.name + '=' if s.name else ''}{s.file}")
                fixed[name] = t
                specs[name] = replace(spec_of(t), file=s.file)
        elif s.tensor is not None:
            once(s.name, f"--input {s.tensor.describe(s.name)}")
            specs[s.name] = s.tensor
    _check_names(module, list(specs))
    return specs, fixed


def make_inputs(
    module: nn.Module,
    given: Sequence[InputSpec] = (),
    *,
    dynamic: Sequence[DynamicSpec] = (),
    declared: Callable[[], Any] | None = None,
    suggested: SuggestedInputs | None = None,
    seed: int = 0,
    infer: bool = True,
) -> ExampleInputs:
    """Build example inputs for ``module``, matched to its ``forward`` parameters by name.

    The first of these that exists wins: ``--input`` specs and data files (``given``); the model's
    ``example_inputs()`` (``declared``); inputs its loader knows (``suggested``: a HuggingFace
    config, a torch.export archive); inference from forward's signature and the layers that first
    consume each argument, confirmed by one run. When ``given`` leaves required parameters out,
    they are filled from the next source and a note says so.

    Args:
        module: the model.
        given: ``--input`` specs (shapes to draw, or data files).
        dynamic: dims to export as dynamic.
        declared: the model's ``example_inputs`` callable, if any.
        suggested: inputs the loader knows for this model.
        seed: seed for every random draw.
        infer: infer inputs when none are given, declared or suggested.

    Raises:
        InputSpecError: names that are not forward's parameters, or no inputs and none inferable.
    """
    notes: list[str] = []
    known_dynamic: Mapping[str, Mapping[int, str]] = {}
    fixed: dict[str, torch.Tensor] = {}
    reuse: dict[str, torch.Tensor] = {}
    if given:
        specs, fixed = _given(module, given)
        source = "given"
    elif declared is not None:
        reuse = _from_declared(module, declared)
        _check_names(module, list(reuse))
        specs = {n: spec_of(t) for n, t in reuse.items()}
        source = "declared"
    elif suggested is not None and suggested.specs:
        specs, reuse, source = dict(suggested.specs), dict(suggested.tensors), suggested.source
        known_dynamic = suggested.dynamic
        notes += suggested.notes
    else:
        specs, source = {}, "inferred"
    missing = [p for p in required_parameters(module) if p not in specs]
    if missing and source != "inferred" and suggested is not None and source != suggested.source:
        extra = {n: suggested.specs[n] for n in missing if n in suggested.specs}
        specs.update(extra)
        missing = [p for p in missing if p not in extra]
    if source == "inferred" and not infer:
        params = [p.name for p in forward_parameters(module)]
        example = " ".join(f"--input {p}:2x..." for p in params) or "--input x:2x3"
        raise InputSpecError(
            f"no example inputs for {signature_text(module)}",
            hint=f"pass {example}, or define example_inputs() on the model",
        )
    if (missing and infer) or source == "inferred":
        from exportkit.inputs.infer import infer_specs

        inferred, infer_notes = infer_specs(
            module, known=specs, fixed={**reuse, **fixed}, seed=seed
        )
        notes += infer_notes
        specs = {**specs, **{n: s for n, s in inferred.items() if n not in specs}}
    order = _ordered(module, list(specs))
    specs = {n: specs[n] for n in order}
    dyn, resolved, dyn_notes = _resolve_dynamic(specs, dynamic, known_dynamic)
    notes += dyn_notes
    _fits_in_memory({n: s for n, s in resolved.items() if n not in fixed})
    drawn = draw({n: s for n, s in resolved.items() if n not in fixed}, seed)
    tensors = {}
    for n in order:
        if n in fixed:
            from exportkit.inputs.examples import fit_fixed

            tensors[n] = fit_fixed(fixed[n], resolved[n].shape)
        elif n in reuse and resolved[n] == specs[n]:
            tensors[n] = reuse[n]
        else:
            tensors[n] = drawn[n]
    return ExampleInputs(tensors, resolved, dyn, source, seed, tuple(notes), fixed)


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
            f"{type(module).__name__}.forward raised on inputs {shapes}: {error_line(exc)}",
            hint="check the --input shapes and dtypes against what forward expects",
        ) from exc
