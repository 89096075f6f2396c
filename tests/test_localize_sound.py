"""Sound blame: a module is blamed only on values that compare (same shape and dtype, judged at
their own scale); when none does, the place is unknown and the report says why."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from exportkit.export import export_model
from exportkit.inputs import make_inputs
from exportkit.report.pipeline import render_divergence, render_validation
from exportkit.validate import Tolerances, ValidationResult, make_cases, validate
from exportkit.validate.eager import Call
from exportkit.validate.matching import Matcher
from exportkit.validate.probe import Boundary
from tests.models import inception


def _check(model: torch.nn.Module, tmp: Path, exporter: str) -> ValidationResult:
    torch.manual_seed(0)
    ex = make_inputs(model, [], declared=model.example_inputs)
    result = export_model(model, ex, tmp / "m.onnx", exporter=exporter)  # type: ignore[arg-type]
    assert result.exporter == exporter
    return validate(model, result.path, make_cases(model, ex, sizes=False))


@pytest.mark.parametrize("exporter", ["dynamo", "torchscript"])
def test_a_batchnorm_folded_into_its_conv_is_blamed_not_its_branch(
    tmp_path: Path, exporter: str
) -> None:
    # Before: dynamo's folded Conv+BatchNorm scope compared the block input (2x64x16x16) with
    # the BatchNorm's input (2x48x7x7) and blamed the branch's own code for a shape change.
    torch.manual_seed(0)
    check = _check(inception.FoldedDrift().eval(), tmp_path, exporter)
    div = check.divergence
    assert not check.passed and div is not None and div.kind == "values"
    assert div.location is not None and div.location.module == "Mixed_6a.branch3x3.bn"
    assert div.inputs_matched is True
    assert div.check is not None and div.check.actual_shape is None
    assert div.check.shape == (2, 48, 7, 7) and div.check.max_abs > 1e-2


def test_rounding_on_huge_values_blames_no_module_and_says_so(tmp_path: Path) -> None:
    torch.manual_seed(0)
    check = _check(inception.Untrained().eval(), tmp_path, "torchscript")
    worst = check.worst()["output"]
    assert not check.passed and worst.magnitude > 1e7
    # Every difference is rounding at the values' own scale: no module is to blame.
    assert worst.max_abs <= worst.rtol * worst.magnitude
    div = check.divergence
    assert div is not None and div.kind == "unknown" and div.location is None
    assert "rounding on large values, not a faulty module" in div.detail
    assert render_divergence(div)[0] == "diverges  at an unknown place"
    text = render_validation(check)
    assert f"output: values reach {worst.magnitude:.2g}" in text
    assert "relative error on values of that magnitude" in text
    assert "--weights" in text and "--rtol" in text


def _matcher(actual: dict[str, np.ndarray], static: dict[str, tuple[int, ...]]) -> Matcher:
    call = Call("block.bn", None, [np.arange(12.0).reshape(1, 12)], [np.ones((1, 12))], done=0)
    bounds = Boundary({"block.bn": ("y",)}, {"block.bn": ("x",)}, {})
    return Matcher(
        actual,
        bounds,
        [call],
        Tolerances(),
        set(),
        {0: ([(2, 6)], [(2, 6)])},
        lambda: static,
        (0,),
    )


def test_a_value_of_another_shape_is_not_compared_unless_frozen_at_export() -> None:
    other = {"x": np.zeros((2, 3, 4)), "y": np.ones((2, 3, 4))}
    match = _matcher(other, {"x": (2, 3, 4), "y": (2, 3, 4)})
    assert match.outputs(0) == []
    assert match.unsound == [
        "block.bn: PyTorch 1x12 float64, the ONNX value y 2x3x4 float64",
    ]
    # The graph declares the value with the module's export-time shape: a size frozen there.
    frozen = {"x": np.zeros((2, 6)), "y": np.ones((2, 6))}
    ((check, value),) = _matcher(frozen, {"y": (2, 6)}).outputs(0)
    assert value == "y" and check.actual_shape == (2, 6) and not check.passed


def test_another_dtype_is_not_compared() -> None:
    match = _matcher({"y": np.ones((1, 12), dtype=np.float32)}, {})
    assert match.outputs(0) == [] and "float32" in match.unsound[0]
