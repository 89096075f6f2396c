"""Where a wrong export diverges: the first PyTorch module whose ONNX outputs disagree."""

from __future__ import annotations

import inspect
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import torch

from exportkit.cli import main
from exportkit.export import export_model
from exportkit.inputs import DynamicSpec, InputSpec, make_inputs
from exportkit.validate import Divergence, make_cases, validate
from tests.models import diverging
from tests.models.mlp import Net


def _forward_line(cls: type) -> str:
    return f"diverging.py:{inspect.getsourcelines(cls.forward)[1]}"


def _diverge(model: torch.nn.Module, tmp: Path, exporter: str, dynamic: bool = False) -> Divergence:
    model.eval()
    ex = make_inputs(
        model,
        declared=getattr(model, "example_inputs", None) or (lambda: torch.randn(3, 8)),
        dynamic=[DynamicSpec.parse("batch")] if dynamic else [],
    )
    result = export_model(model, ex, tmp / "m.onnx", exporter=exporter)  # type: ignore[arg-type]
    assert result.exporter == exporter
    check = validate(model, result.path, make_cases(model, ex))
    assert not check.passed
    assert check.divergence is not None
    return check.divergence


@pytest.mark.parametrize("exporter", ["dynamo", "torchscript"])
def test_buggy_branch_is_named(tmp_path: Path, exporter: str) -> None:
    div = _diverge(diverging.BuggyBranch(), tmp_path, exporter, dynamic=True)
    assert div.kind == "values" and div.trial == "export inputs"
    assert (div.location.module, div.location.cls) == ("blocks.2.branch", "Drift")
    assert div.location.source and div.location.source.endswith(_forward_line(diverging.Drift))
    assert div.inputs_matched is True
    # Everything computed before it (stem, blocks 0-1, the norm of block 2, its own fc) matched.
    assert div.matched >= 8
    assert div.check is not None and div.check.max_abs > 1e-2 and div.check.frac_out > 0.5
    assert "inputs matched" in div.detail


def test_wrong_symbolic_of_a_custom_function_is_named(tmp_path: Path) -> None:
    div = _diverge(diverging.CustomOpNet(), tmp_path, "torchscript")
    assert (div.location.module, div.location.cls) == ("act2", "BadSwish")
    assert div.inputs_matched is True
    assert div.onnx_op == "Sigmoid" and div.onnx_node


@pytest.mark.parametrize("exporter", ["dynamo", "torchscript"])
def test_drift_in_the_callers_own_code_blames_the_caller(tmp_path: Path, exporter: str) -> None:
    div = _diverge(diverging.DriftInCaller(), tmp_path, exporter)
    assert div.location.module == "" and div.location.cls == "DriftInCaller"
    assert div.inputs_matched is False
    assert "inputs of second already differ" in div.detail
    if exporter == "dynamo":  # its stack traces give the very line
        assert div.location.code == "y = y + 0.1"


def test_correct_export_has_no_divergence(tmp_path: Path) -> None:
    model = Net().eval()
    ex = make_inputs(model, [InputSpec.parse("x:2x4")])
    result = export_model(model, ex, tmp_path / "m.onnx")
    check = validate(model, result.path, make_cases(model, ex))
    assert check.passed and check.divergence is None


def test_hard_coded_batch_names_the_module_and_line(tmp_path: Path) -> None:
    model = diverging.HardBatch().eval()
    ex = make_inputs(model, [InputSpec.parse("x:2x3x4")], dynamic=[DynamicSpec.parse("batch")])
    result = export_model(model, ex, tmp_path / "m.onnx")
    # dynamo refuses the dynamic batch, and says why; TorchScript exports it.
    assert result.exporter == "torchscript"
    assert result.attempts[0].error == (
        "x dim 0 was asked to be dynamic, but the model fixes it at 2 "
        "(tracing inferred a static shape)"
    )
    check = validate(model, result.path, make_cases(model, ex))
    assert check.trials[0].passed and not check.passed
    errors = [t.error for t in check.trials if t.error]
    assert errors and all(
        "head (FlattenTwo" in e and "x.view(2, -1)" in e and "batch=" in e for e in errors
    )
    div = check.divergence
    assert div is not None and div.kind == "pytorch error"
    assert (div.location.module, div.location.code) == ("head", "return self.fc(x.view(2, -1))")


def test_batch_frozen_by_tracing_blames_the_code_before_the_failing_node(tmp_path: Path) -> None:
    # PyTorch runs at every batch; the traced graph reshapes to the example batch of 2.
    model = diverging.TracedBatch().eval()
    ex = make_inputs(model, [InputSpec.parse("x:2x3x4")], dynamic=[DynamicSpec.parse("batch")])
    result = export_model(model, ex, tmp_path / "m.onnx", exporter="torchscript")
    check = validate(model, result.path, make_cases(model, ex))
    assert [t.label for t in check.trials if not t.passed] == ["batch=1", "batch=5"]
    div = check.divergence
    assert div is not None and div.kind == "onnxruntime error" and div.trial == "batch=1"
    assert div.location.module == "" and div.location.cls == "TracedBatch"
    assert div.onnx_op == "Gemm" and div.onnx_node is not None and "fc/Gemm" in div.onnx_node
    assert div.check is not None and div.check.findings[0] == (
        "shape (2, 6) from onnxruntime, (1, 12) from PyTorch"
    )
    assert "inputs of fc already differ" in div.detail


@pytest.mark.slow  # over 3 s: the fast suite stays under 90 s; CI runs it
def test_cli_reports_the_divergence_in_text_json_and_junit(
    tmp_path: Path, models: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, js, junit = tmp_path / "bb" / "bb.onnx", tmp_path / "r.json", tmp_path / "j.xml"
    spec = f"{models / 'diverging.py'}:BuggyBranch"
    argv = ["export", spec, "--dynamic", "batch", "-o", str(out), "--json", str(js)]
    code = main([*argv, "--junit", str(junit)])
    assert code == 1
    text = capsys.readouterr().out
    assert "diverges  at blocks.2.branch (Drift" in text
    assert "drift caused by the exporter" in text and "verdict   FAIL" in text
    report = json.loads(js.read_text())
    assert report["passed"] is False
    div = report["validation"]["divergence"]
    assert div["location"]["module"] == "blocks.2.branch" and div["kind"] == "values"
    assert div["check"]["max_abs"] > 1e-2
    assert report["parity"]["drift"] == "exporter" and report["parity"]["exported"] is False
    suite = ET.parse(junit).getroot()
    failures = suite.findall("testcase/failure")
    assert int(suite.get("failures", "0")) == len(failures) > 0
    assert all("blocks.2.branch" in (f.text or "") for f in failures)


def test_batch_frozen_into_a_shape_is_found_by_shapes(tmp_path: Path) -> None:
    model = diverging.SilentBatch().eval()
    ex = make_inputs(model, [InputSpec.parse("x:2x3x4")], dynamic=[DynamicSpec.parse("batch")])
    result = export_model(model, ex, tmp_path / "m.onnx", exporter="torchscript")
    check = validate(model, result.path, make_cases(model, ex))
    bad = {t.label: t.outputs[0].findings[0] for t in check.trials if not t.passed}
    assert bad == {
        "batch=1": "shape (2,) from onnxruntime, (1,) from PyTorch",
        "batch=5": "shape (2,) from onnxruntime, (5,) from PyTorch",
    }
    div = check.divergence
    assert div is not None and div.kind == "values" and div.location.cls == "SilentBatch"
    assert div.check is not None
    assert div.check.findings[0] == "shape (2, 6) from onnxruntime, (1, 12) from PyTorch"
    assert "inputs of pool already differ" in div.detail


@pytest.mark.parametrize("translation", ["wrong", "right"])
def test_custom_op_with_a_wrong_onnx_translation(tmp_path: Path, translation: str) -> None:
    from tests.models import custom_op

    model = custom_op.Deeper().eval()
    ex = make_inputs(model, [InputSpec.parse("x:3x4")])
    table = {
        torch.ops.exportkit_tests.swish.default: custom_op.wrong_swish
        if translation == "wrong"
        else custom_op.right_swish
    }
    result = export_model(model, ex, tmp_path / "m.onnx", custom_translations=table)
    assert result.exporter == "dynamo"
    check = validate(model, result.path, make_cases(model, ex))
    if translation == "right":
        assert check.passed and check.divergence is None
        return
    assert not check.passed
    div = check.divergence
    assert div is not None and (div.location.module, div.location.cls) == ("block.act", "Act")
    assert div.inputs_matched is True and div.onnx_node and div.onnx_op == "Sigmoid"


def test_check_localizes_a_file_exported_elsewhere(
    tmp_path: Path, models: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from exportkit.loading import load_model

    # Written by plain torch.onnx (TorchScript, no exportkit wrapper): scopes come from node names.
    spec = f"{models / 'diverging.py'}:BuggyBranch"
    model = load_model(spec).module  # the weights `check` builds from the same spec
    path = tmp_path / "elsewhere.onnx"
    torch.onnx.export(model, (torch.randn(3, 8),), str(path), dynamo=False, input_names=["x"])
    js = tmp_path / "r.json"
    assert main(["check", str(path), spec, "--input", "x:3x8", "--json", str(js)]) == 1
    assert "diverges  at blocks.2.branch (Drift" in capsys.readouterr().out
    div = json.loads(js.read_text())["validation"]["divergence"]
    assert div["location"]["module"] == "blocks.2.branch" and div["inputs_matched"] is True


def test_check_says_when_the_file_holds_other_weights(tmp_path: Path, models: Path) -> None:
    torch.manual_seed(123)  # not the weights `check` builds from the spec (seed 0)
    other = diverging.BuggyBranch().eval()
    path = tmp_path / "other.onnx"
    torch.onnx.export(other, (torch.randn(3, 8),), str(path), dynamo=False, input_names=["x"])
    js = tmp_path / "r.json"
    spec = f"{models / 'diverging.py'}:BuggyBranch"
    assert main(["check", str(path), spec, "--input", "x:3x8", "--json", str(js)]) == 1
    div = json.loads(js.read_text())["validation"]["divergence"]
    assert div["location"]["module"] == "stem.0" and div["matched"] == 0
    assert "its weights in the file differ from the model's (stem.0.weight" in div["detail"]
