"""Export failures name the operator, the module and the source line, and hint at what to try."""

from __future__ import annotations

from pathlib import Path

import pytest

from exportkit.cli import main
from exportkit.errors import ExportError
from exportkit.export import export_model
from exportkit.inputs import InputSpec, make_inputs
from tests.models.unsupported import UsesEigvalsh

LINE = "return torch.linalg.eigvalsh(x @ x.transpose(-1, -2))"


def test_unsupported_operator_is_named_with_module_and_line(tmp_path: Path) -> None:
    model = UsesEigvalsh().eval()
    ex = make_inputs(model, [InputSpec.parse("x:2x3x4")])
    with pytest.raises(ExportError) as info:
        export_model(model, ex, tmp_path / "m.onnx")
    message = info.value.message
    assert "dynamo: unsupported operator aten._linalg_eigh.default" in message
    assert "torchscript: unsupported operator aten::linalg_eigvalsh" in message
    assert (
        f"used in spectrum (Spectral, {Path(__file__).parent / 'models' / 'unsupported.py'}:9)"
        in message
    )
    assert LINE in message
    assert info.value.hint and "--opset" in info.value.hint
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_one_exporter_failing_hints_at_the_other(tmp_path: Path) -> None:
    model = UsesEigvalsh().eval()
    ex = make_inputs(model, [InputSpec.parse("x:2x3x4")])
    with pytest.raises(ExportError) as info:
        export_model(model, ex, tmp_path / "m.onnx", exporter="dynamo")
    assert info.value.hint is not None and "--exporter torchscript" in info.value.hint


def test_cli_export_failure_is_one_line_and_exit_3(
    tmp_path: Path, models: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    spec = f"{models / 'unsupported.py'}:UsesEigvalsh"
    code = main(["export", spec, "--input", "x:2x3x4", "-o", str(tmp_path / "m" / "m.onnx")])
    assert code == 3
    out, err = capfd.readouterr()
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "unsupported operator" in errors[0] and LINE in errors[0]
    assert "Traceback" not in err and "Torch IR graph" not in out + err
    assert not (tmp_path / "m" / "m.onnx").exists()


def test_cli_export_failure_still_writes_junit(tmp_path: Path, models: Path) -> None:
    import xml.etree.ElementTree as ET

    spec = f"{models / 'unsupported.py'}:UsesEigvalsh"
    junit = tmp_path / "junit.xml"
    argv = ["export", spec, "--input", "x:2x3x4", "-o", str(tmp_path / "m" / "m.onnx")]
    assert main([*argv, "--junit", str(junit)]) == 3
    suite = ET.parse(junit).getroot()
    assert (suite.get("tests"), suite.get("errors")) == ("1", "1")
    error = suite.find("testcase/error")
    assert error is not None and error.get("type") == "ExportError"
    assert "unsupported operator" in (error.get("message") or "")
    assert "hint:" in (error.text or "")


def test_custom_operator_without_translation(tmp_path: Path) -> None:
    from tests.models.custom_op import CustomOpModel

    model = CustomOpModel().eval()
    ex = make_inputs(model, [InputSpec.parse("x:2x4")])
    with pytest.raises(ExportError) as info:
        export_model(model, ex, tmp_path / "m.onnx")
    message = info.value.message
    assert "dynamo: unsupported operator exportkit_tests.swish.default" in message
    assert "torchscript: unsupported operator exportkit_tests::swish" in message
    assert message.count("used in act (Act,") == 2 and "return swish(x)" in message
    assert info.value.hint is not None and "custom_translation_table" in info.value.hint
