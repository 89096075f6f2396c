"""Parity of an ONNX file with the eager PyTorch model, on onnxruntime (CPU), at several sizes.

``cases`` builds the inputs and the ground truth, ``compare`` judges one output, ``check`` runs a
file through onnxruntime, ``parity`` weighs the raw export against the simplified one, and
``localize`` names the first module where a wrong export diverges: ``eager`` records each module
call in PyTorch, ``scopes`` ties ONNX nodes to modules, ``probe`` reads their values from a copy.
"""

from __future__ import annotations

from exportkit.diagnose import Location
from exportkit.validate.cases import Case, make_cases
from exportkit.validate.check import Trial, ValidationResult, check_onnx, validate
from exportkit.validate.compare import DEFAULT_TOLERANCES, OutputCheck, Tolerances
from exportkit.validate.localize import Divergence, localize
from exportkit.validate.parity import Parity, three_way

__all__ = [
    "DEFAULT_TOLERANCES",
    "Case",
    "Divergence",
    "Location",
    "OutputCheck",
    "Parity",
    "Tolerances",
    "Trial",
    "ValidationResult",
    "check_onnx",
    "localize",
    "make_cases",
    "three_way",
    "validate",
]
