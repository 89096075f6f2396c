"""Export with both exporters and validate against eager PyTorch with real onnxruntime."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
import torch

from exportkit.export import export_model, output_names
from exportkit.inputs import DynamicSpec, InputSpec, make_inputs
from exportkit.validate import Tolerances, make_cases, validate
from tests.models.broken import ExportDrift, FixedBatch
from tests.models.mlp import Net
from tests.models.two_inputs import TwoInputs


def test_output_names_follow_structure() -> None:
    out = {"hidden": torch.zeros(1), "past": [(torch.zeros(1), torch.zeros(1))]}
    assert output_names(out) == ["hidden", "past.0.0", "past.0.1"]
    assert output_names(torch.zeros(1)) == ["output"]
    assert output_names((torch.zeros(1), torch.zeros(1))) == ["output.0", "output.1"]


@pytest.mark.parametrize("exporter", ["dynamo", "torchscript"])
def test_export_names_dynamic_and_parity(tmp_path: Path, exporter: str) -> None:
    model = TwoInputs().eval()
    ex = make_inputs(
        model,
        [InputSpec.parse("ids:2x5:int64"), InputSpec.parse("scale:1")],
        dynamic=[DynamicSpec.parse("ids:0=batch"), DynamicSpec.parse("ids:1=seq")],
    )
    result = export_model(model, ex, tmp_path / "m.onnx", exporter=exporter)  # type: ignore[arg-type]
    assert result.exporter == exporter and result.files == (tmp_path / "m.onnx",)
    assert result.input_names == ("ids", "scale")
    assert result.output_names == ("hidden", "pooled.0", "pooled.1")
    assert not result.frozen_dims
    dims = onnx.load(str(result.path)).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param for d in dims] == ["batch", "seq"]
    check = validate(model, result.path, make_cases(model, ex))
    assert check.passed, check
    labels = [t.label for t in check.trials]
    assert "batch=1, seq=1" in labels and "batch=5, seq=8" in labels
    argmax = check.trials[0].outputs[2]
    assert (argmax.dtype, argmax.atol, argmax.rtol) == ("int64", 0.0, 0.0)


def test_drift_during_export_is_a_mismatch(tmp_path: Path) -> None:
    model = ExportDrift().eval()
    ex = make_inputs(model, [InputSpec.parse("x:3x4")])
    result = export_model(model, ex, tmp_path / "m.onnx", exporter="dynamo")
    check = validate(model, result.path, make_cases(model, ex))
    assert not check.passed
    worst = check.worst()["output"]
    assert worst.max_abs > 1e-3 and worst.frac_out > 0.5
    assert worst.atol_needed >= worst.max_abs * 0.5
    assert any("out of tolerance" in f for f in worst.findings)
    # The same file passes with a tolerance loose enough, and the report says how loose.
    assert validate(
        model,
        result.path,
        make_cases(model, ex),
        tolerances=Tolerances(atol=worst.atol_needed * 1.01),
    ).passed


def test_hard_coded_batch_breaks_at_other_sizes(tmp_path: Path) -> None:
    model = FixedBatch().eval()
    ex = make_inputs(model, [InputSpec.parse("x:2x3x4")], dynamic=[DynamicSpec.parse("batch")])
    result = export_model(model, ex, tmp_path / "m.onnx")
    check = validate(model, result.path, make_cases(model, ex))
    assert check.trials[0].passed  # fine at the export size ...
    failed = {t.label: t.error for t in check.trials if not t.passed}
    assert set(failed) == {"batch=1", "batch=5"}  # ... and reported broken at every other size
    assert all(e and "batch" in e for e in failed.values())


def test_constant_and_nonfinite_outputs_are_flagged(tmp_path: Path) -> None:
    class Head(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return x * 0, torch.log(x)

    model = Head().eval()
    ex = make_inputs(model, [InputSpec.parse("x:2x4")])
    result = export_model(model, ex, tmp_path / "m.onnx")
    check = validate(model, result.path, make_cases(model, ex))
    zeros, logs = check.trials[0].outputs
    assert zeros.passed and any("constant" in w for w in zeros.warnings)
    assert not logs.passed and any("NaN" in f for f in logs.findings)


def test_per_output_tolerance() -> None:
    tol = Tolerances.parse(["1e-5", "logits=1e-2"], [])
    assert tol.for_output("logits", "float32") == (1e-2, 1e-3)
    assert tol.for_output("other", "float32") == (1e-5, 1e-3)
    assert tol.for_output("ids", "int64") == (0.0, 0.0)


def test_mlp_torchscript_fallback_not_needed(tmp_path: Path) -> None:
    model = Net().eval()
    ex = make_inputs(model, [InputSpec.parse("x:2x4")])
    result = export_model(model, ex, tmp_path / "m.onnx")
    assert [a.exporter for a in result.attempts] == ["dynamo"] and result.attempts[0].ok


def test_simplified_file_keeps_hierarchy_and_drops_option_dump(tmp_path: Path) -> None:
    from exportkit.simplify import simplify_model

    model = Net().eval()
    ex = make_inputs(model, [InputSpec.parse("x:2x4")])
    raw = export_model(model, ex, tmp_path / "raw" / "m.onnx", exporter="dynamo")
    simp = simplify_model(raw.path, tmp_path / "simp" / "m.onnx", simplifier="onnxsim")
    proto = onnx.load(str(simp.path))
    assert not [p.key for p in proto.metadata_props if p.key.startswith("onnxsim.")]
    scopes = {
        p.value
        for n in proto.graph.node
        for p in n.metadata_props
        if p.key == "pkg.torch.onnx.name_scopes"
    }
    assert any("fc1" in s for s in scopes) and any("fc2" in s for s in scopes)


def test_auto_tries_torchscript_when_dynamo_file_is_wrong(tmp_path: Path) -> None:
    import exportkit
    from tests.models.broken import DynamoOnlyDrift

    report = exportkit.export(DynamoOnlyDrift(), ["x:3x4"], tmp_path / "m.onnx", dynamic=["batch"])
    assert report.passed and report.export is not None
    assert report.export.exporter == "torchscript"
    dynamo, torchscript = report.export.attempts
    assert (dynamo.exporter, dynamo.ok, torchscript.exporter, torchscript.ok) == (
        "dynamo",
        False,
        "torchscript",
        True,
    )
    assert dynamo.error is not None and "fails validation (export inputs" in dynamo.error
    # Asked for by name, the dynamo exporter's wrong file is the verdict: exit 1, not a retry.
    only = exportkit.export(DynamoOnlyDrift(), ["x:3x4"], tmp_path / "d.onnx", exporter="dynamo")
    assert not only.passed and only.export is not None and only.export.exporter == "dynamo"
