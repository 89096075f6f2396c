"""A file that belongs to another model is bad input, said up front (exit 2), not an onnxruntime
failure: names, ranks, dtypes and fixed sizes are read from the file before any work."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from exportkit.cli import main
from exportkit.errors import EXIT_USAGE, OnnxFileError
from exportkit.export import export_model
from exportkit.inputs import DynamicSpec, ExampleInputs, InputSpec, make_inputs
from exportkit.validate import require_compatible
from tests.models.two_inputs import TwoInputs


def _inputs(specs: list[str]) -> ExampleInputs:
    """Tensors of the given names, shapes and dtypes, as a model's example inputs."""
    tensors = {}
    for text in specs:
        name, shape, *dtype = text.split(":")
        dims = [int(d) for d in shape.split("x")]
        tensors[name] = torch.zeros(dims, dtype=getattr(torch, dtype[0] if dtype else "float32"))
    return ExampleInputs(tensors, {})


@pytest.fixture(scope="module")
def two_inputs_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = TwoInputs().eval()
    specs = [InputSpec.parse("ids:2x5:int64:[0,10)"), InputSpec.parse("scale:2x1x1")]
    ex = make_inputs(model, specs, dynamic=[DynamicSpec.parse("ids:0=batch")])
    out = tmp_path_factory.mktemp("fit") / "two.onnx"
    return export_model(model, ex, out, exporter="torchscript").path


@pytest.mark.parametrize(
    ("specs", "needle"),
    [
        (["x:2x4"], "it wants ids, scale; the model takes x"),
        (["ids:2x5:float32", "scale:2x1x1"], "ids is int64 in the file, float32 given"),
        (["ids:2x5x1:int64", "scale:2x1x1"], "ids has rank 2 in the file, 3 given"),
        (["ids:2x7:int64", "scale:2x1x1"], "ids dim 1 is fixed at 5 in the file, 7 given"),
        (["ids:2x5:int64", "b:2x1x1"], "it wants scale; the model takes ids, b"),
        (["ids:2x5:int64", "scale:2x1x1:int64"], "scale is float32 in the file, int64 given"),
    ],
)
def test_a_file_that_does_not_take_the_inputs_is_refused(
    two_inputs_file: Path, specs: list[str], needle: str
) -> None:
    with pytest.raises(OnnxFileError) as info:
        require_compatible(two_inputs_file, _inputs(specs))
    assert needle in info.value.message
    assert info.value.hint and "ids:batchx5:int64 scale:2x1x1:float32" in info.value.hint


def test_inputs_that_fit_pass(two_inputs_file: Path) -> None:
    # Any size on the dynamic batch; the names, ranks, dtypes and fixed sizes of the file.
    require_compatible(two_inputs_file, _inputs(["ids:3x5:int64", "scale:2x1x1"]))


def test_check_with_another_models_file_is_bad_input(
    two_inputs_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = two_inputs_file.read_bytes()
    code = main(["check", str(two_inputs_file), "tests/models/mlp.py:Net", "--input", "x:3x4"])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE
    lines = [ln for ln in err.splitlines() if ln.startswith(("error:", "hint:"))]
    assert len(lines) == 2 and "Traceback" not in err
    assert lines[0].startswith("error: two.onnx does not take this model's inputs")
    assert two_inputs_file.read_bytes() == before
