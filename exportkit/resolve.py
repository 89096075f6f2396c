"""What the verbs accept -> what the stages take: a spec or a module -> LoadedModel; input specs,
tensors or nothing -> ExampleInputs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from exportkit.inputs import ExampleInputs, InputSpec, make_inputs
from exportkit.loading import LoadedModel, load_model
from exportkit.options import Options

if TYPE_CHECKING:
    from torch import nn

__all__ = ["InputsArg", "example_inputs", "load"]

# ``["x:2x10"]`` specs, InputSpec objects, ExampleInputs, a dict name -> tensor, a tuple of tensors
# or one tensor; None uses the model's example_inputs().
InputsArg = Any


def load(model: str | nn.Module | LoadedModel, options: Options) -> LoadedModel:
    """A spec, a module or a LoadedModel -> the LoadedModel the stages take."""
    from torch import nn

    if isinstance(model, LoadedModel):
        return model
    if isinstance(model, nn.Module):
        model.eval()
        declared = getattr(model, "example_inputs", None)
        name = type(model).__name__
        return LoadedModel(model, name, name, declared if callable(declared) else None)
    return load_model(
        model,
        kwargs=options.model_kwargs,
        weights=options.weights,
        strict_weights=options.strict_weights,
        seed=options.seed,
    )


def example_inputs(loaded: LoadedModel, inputs: InputsArg, options: Options) -> ExampleInputs:
    """Specs, tensors, ExampleInputs or None (the model's own) -> the example inputs."""
    import torch

    if isinstance(inputs, ExampleInputs):
        return inputs
    declared = loaded.example_inputs
    if isinstance(inputs, (Mapping, torch.Tensor)) or (
        isinstance(inputs, tuple) and all(isinstance(t, torch.Tensor) for t in inputs)
    ):
        tensors = inputs
        declared, inputs = (lambda: tensors), None
    specs = [InputSpec.parse(s) if isinstance(s, str) else s for s in inputs or ()]
    example = make_inputs(
        loaded.module,
        specs,
        dynamic=options.dynamic,
        declared=declared,
        suggested=loaded.suggested,
        seed=options.seed,
    )
    return replace(example, notes=(*loaded.notes, *example.notes))
