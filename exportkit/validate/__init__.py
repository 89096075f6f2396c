"""Parity of an ONNX file with the eager PyTorch model, on onnxruntime (CPU), at several sizes.

``validate`` is the verb: it checks a file on the ``cases`` (``make_cases``: the inputs and the
ground truth) and, on a mismatch, names where the file first diverges. Inside: ``compare``
judges one output, ``session`` runs a file on onnxruntime, ``check`` runs every case, ``fit`` refuses a file whose inputs cannot take the model's,
``parity`` weighs the raw export against the simplified one, and ``localize`` names the first
module where a wrong export diverges (``eager`` records each module call in PyTorch, ``scopes``
ties ONNX nodes to modules, ``probe`` reads their values from a copy). ``results`` holds the
typed facts all of them return.
"""

from __future__ import annotations

from exportkit.diagnose import Location
from exportkit.validate.cases import Case, make_cases
from exportkit.validate.check import check_onnx, validate
from exportkit.validate.compare import DEFAULT_TOLERANCES, OutputCheck, Tolerances
from exportkit.validate.fit import require_compatible
from exportkit.validate.localize import localize
from exportkit.validate.parity import Parity, three_way
from exportkit.validate.results import Divergence, RunFailure, Trial, ValidationResult

__all__ = [
    "DEFAULT_TOLERANCES",
    "Case",
    "Divergence",
    "Location",
    "OutputCheck",
    "Parity",
    "RunFailure",
    "Tolerances",
    "Trial",
    "ValidationResult",
    "check_onnx",
    "localize",
    "make_cases",
    "require_compatible",
    "three_way",
    "validate",
]
