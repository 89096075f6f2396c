"""A check that cannot fail is not a pass: outputs too small or too flat to compare are unproven."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from exportkit.cli import main
from exportkit.export import export_model
from exportkit.inputs import make_inputs
from exportkit.validate import ValidationResult, make_cases, validate
from tests.models import unproven


def _validate(model: torch.nn.Module, tmp: Path, *, strict: bool = False) -> ValidationResult:
    ex = make_inputs(model, [])
    result = export_model(model, ex, tmp / "m.onnx", exporter="torchscript")
    return validate(model, result.path, make_cases(model, ex), strict=strict)


def test_tiny_outputs_of_a_correct_export_are_compared_at_their_own_scale(tmp_path: Path) -> None:
    torch.manual_seed(0)
    check = _validate(unproven.Shrinking().eval(), tmp_path)
    out = check.trials[0].outputs[0]
    assert out.magnitude < 1e-4  # below the float32 atol: any near-zero file would pass there
    assert check.passed and check.unproven == ()
    assert out.own_scale and not out.unproven


def test_a_wrong_export_hidden_below_atol_is_unproven(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = unproven.ShrinkingDrift().eval()
    check = _validate(model, tmp_path)
    out = check.trials[0].outputs[0]
    # 5% wrong, yet within atol everywhere: the plain check passes, and says it proves nothing.
    assert out.passed and out.max_rel > 0.04 and out.unproven and not out.own_scale
    assert check.passed and check.unproven == ("output",)
    strict = _validate(model, tmp_path / "strict", strict=True)
    assert not strict.passed and strict.unproven == ("output",)


def test_a_zero_head_is_unproven(tmp_path: Path) -> None:
    torch.manual_seed(0)
    check = _validate(unproven.ZeroHead().eval(), tmp_path)
    assert check.unproven == ("output",) and check.trials[0].outputs[0].constant
    assert _validate(unproven.ZeroHead().eval(), tmp_path / "s", strict=True).passed is False


def test_report_says_unproven_in_the_verdict_json_and_junit(
    tmp_path: Path, models: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    js, junit = tmp_path / "r.json", tmp_path / "j.xml"
    spec = f"{models / 'unproven.py'}:ShrinkingDrift"
    argv = ["export", spec, "--exporter", "torchscript", "--simplifier", "none"]
    code = main([*argv, "-o", str(tmp_path / "m.onnx"), "--json", str(js), "--junit", str(junit)])
    text = capsys.readouterr().out
    assert code == 0
    assert text.rstrip().endswith("verdict   PASS, unproven: output")
    assert "UNPROVEN output: every value within atol 0.0001 of zero" in text
    assert "--weights" in text and "normalization statistics" in text and "--strict" in text
    report = json.loads(js.read_text())
    assert report["passed"] is True and report["unproven"] == ["output"]
    assert report["validation"]["unproven"] == ["output"]
    assert "<testcase classname=" in junit.read_text() and "<skipped" in junit.read_text()


def test_strict_makes_an_unproven_output_fail(
    tmp_path: Path, models: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    js, junit = tmp_path / "r.json", tmp_path / "j.xml"
    spec = f"{models / 'unproven.py'}:ZeroHead"
    argv = ["export", spec, "--exporter", "torchscript", "--simplifier", "none", "--strict"]
    code = main([*argv, "-o", str(tmp_path / "m.onnx"), "--json", str(js), "--junit", str(junit)])
    captured = capsys.readouterr()
    assert code == 1
    assert "verdict   FAIL, unproven (--strict): output" in captured.out
    assert "UNPROVEN output: constant in every case" in captured.out
    # the values match: the file is not called a mismatch, it is unproven
    assert "MISMATCH" not in captured.out + captured.err
    assert "PyTorch vs export: unproven (--strict)" in captured.out
    assert "validate               " in captured.err and "unproven (--strict)" in captured.err
    report = json.loads(js.read_text())
    assert report["passed"] is False and report["unproven"] == ["output"]
    assert report["validation"]["strict"] is True
    assert 'failures="1"' in junit.read_text()


def test_a_check_that_failed_is_not_unproven() -> None:
    import numpy as np

    from exportkit.validate.compare import Tolerances, compare_arrays

    zeros = np.zeros((2, 3), dtype=np.float32)
    wrong = compare_arrays("head", zeros, np.ones((2, 3), dtype=np.float32), Tolerances())
    assert not wrong.passed and wrong.constant and not wrong.unproven
    same = compare_arrays("head", zeros, zeros.copy(), Tolerances())
    assert same.passed and same.unproven
    tiny = np.full((2, 3), 1e-6, dtype=np.float32) * np.arange(1, 7, dtype=np.float32).reshape(2, 3)
    off = compare_arrays("head", tiny, tiny + 1e-3, Tolerances())
    assert not off.passed and not off.unproven
