"""External data: one data file per model, simplifiers that leave the weights on disk, and every
stage working on such a model. The >2 GB run is marked slow."""

from __future__ import annotations

import importlib
from pathlib import Path

import onnx
import pytest
import torch
from torch import nn

from exportkit.export import export_model
from exportkit.inputs import DynamicSpec, InputSpec, make_inputs
from exportkit.simplify import simplify_model
from exportkit.validate import make_cases, validate


class Wide(nn.Module):
    """Two 1.4 MB weights: large enough to be lifted off the graph while simplifying."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(600, 600)
        self.fc2 = nn.Linear(600, 600)
        self.scale = nn.Parameter(torch.full((600,), 0.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.fc1(x)) * self.scale
        return self.fc2(h.reshape(-1, h.shape[1]))  # a Shape -> Gather chain to fold


@pytest.fixture
def external_always(monkeypatch: pytest.MonkeyPatch) -> None:
    """Treat any model as a big one, so the >2 GB code paths run in seconds."""
    # ``exportkit.export`` the attribute is the facade function; the module is this one.
    monkeypatch.setattr(importlib.import_module("exportkit.export"), "EXTERNAL_DATA_BYTES", 0)


def _locations(path: Path) -> set[str]:
    model = onnx.load(str(path), load_external_data=False)
    return {
        e.value for t in model.graph.initializer for e in t.external_data if e.key == "location"
    }


@pytest.mark.parametrize("exporter", ["dynamo", "torchscript"])
def test_export_writes_one_data_file(tmp_path: Path, exporter: str, external_always: None) -> None:
    model = Wide().eval()
    ex = make_inputs(model, [InputSpec.parse("x:2x600")], dynamic=[DynamicSpec.parse("batch")])
    result = export_model(model, ex, tmp_path / "m.onnx", exporter=exporter)  # type: ignore[arg-type]
    assert result.files == (tmp_path / "m.onnx", tmp_path / "m.onnx.data")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "m.onnx.data"]
    assert _locations(result.path) == {"m.onnx.data"}
    assert validate(model, result.path, make_cases(model, ex)).passed


@pytest.mark.parametrize("simplifier", ["onnxsim", "onnxslim"])
def test_simplifiers_leave_big_weights_on_disk(
    tmp_path: Path, simplifier: str, external_always: None
) -> None:
    model = Wide().eval()
    ex = make_inputs(model, [InputSpec.parse("x:2x600")], dynamic=[DynamicSpec.parse("batch")])
    raw = export_model(model, ex, tmp_path / "raw" / "m.onnx", exporter="torchscript")
    simp = simplify_model(raw.path, tmp_path / "simp" / "m.onnx", simplifier=simplifier)  # type: ignore[arg-type]
    # The simplifier still did its job on the graph (the static reshape folds away) ...
    assert simp.nodes_after < simp.nodes_before
    # ... and the big weights are the export's bytes, linked, not rewritten.
    data = tmp_path / "simp" / "m.onnx.data"
    assert simp.files == (tmp_path / "simp" / "m.onnx", data)
    assert data.samefile(tmp_path / "raw" / "m.onnx.data")
    graph = onnx.load(str(simp.path), load_external_data=False).graph
    assert {i.name for i in graph.input} == {"x"}
    assert validate(model, simp.path, make_cases(model, ex)).passed


@pytest.mark.slow
def test_model_past_2gb_through_the_whole_pipeline(
    tmp_path: Path, models: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from exportkit.cli import main

    out = tmp_path / "huge" / "huge.onnx"
    argv = ["export", f"{models / 'huge.py'}:Huge", "--input", "x:2x8192", "--dynamic", "batch"]
    assert main([*argv, "-o", str(out), "--json", str(tmp_path / "r.json")]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["export"]["exporter"] == "dynamo" and report["simplify"]["kept"] is True
    assert sorted(p.name for p in out.parent.iterdir()) == ["huge.onnx", "huge.onnx.data"]
    assert out.stat().st_size < 1 << 20 and (out.parent / "huge.onnx.data").stat().st_size > 2**31
    assert "verdict   PASS" in capsys.readouterr().out


@pytest.mark.slow
def test_divergence_is_located_in_a_model_past_2gb(tmp_path: Path, models: Path) -> None:
    import json

    from exportkit.cli import main

    out = tmp_path / "huge" / "huge.onnx"
    argv = ["export", f"{models / 'huge.py'}:Huge", "--input", "x:2x8192", "--no-sizes"]
    argv += ["--kwargs", '{"drift": true}', "--exporter", "torchscript", "--simplifier", "onnxslim"]
    assert main([*argv, "-o", str(out), "--json", str(tmp_path / "r.json")]) == 1
    report = json.loads((tmp_path / "r.json").read_text())
    div = report["validation"]["divergence"]
    assert div["location"]["module"] == "" and div["inputs_matched"] is False
    assert "inputs of layers.5 already differ" in div["detail"]
    # TorchScript's one file per weight became one data file; no localization copy is left.
    # The file failed, so it is kept beside the target, its data renamed with it.
    assert report["output"] == str(out.parent / "huge.failed.onnx")
    assert sorted(p.name for p in out.parent.iterdir()) == [
        "huge.failed.onnx",
        "huge.failed.onnx.data",
    ]
