"""Example inputs: ``x:2x3x224x224:float32`` specs, data files, declared inputs, inference, dynamic dims.

``make_inputs`` is the stage's verb; :mod:`exportkit.inputs.infer` infers inputs from a model's
layers when none are given.
"""

from __future__ import annotations

from exportkit.inputs.examples import ExampleInputs
from exportkit.inputs.forward import forward_parameters, required_parameters
from exportkit.inputs.make import SuggestedInputs, make_inputs, run_model
from exportkit.inputs.spec import DTYPES, DynamicSpec, InputSpec, TensorSpec

__all__ = [
    "DTYPES",
    "DynamicSpec",
    "ExampleInputs",
    "InputSpec",
    "SuggestedInputs",
    "TensorSpec",
    "forward_parameters",
    "make_inputs",
    "required_parameters",
    "run_model",
]
