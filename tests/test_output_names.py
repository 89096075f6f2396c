"""Inputs are named after forward's parameters, outputs after the output structure, on both
exporters, and the files validate."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from exportkit.export import export_model
from exportkit.inputs import InputSpec, make_inputs
from exportkit.validate import make_cases, validate
from tests.models.outputs import DataclassOut, HFStyle, NestedOut

CASES = [
    (
        HFStyle,
        ["input_ids:2x5:int64", "attention_mask:2x5:int64"],
        ("input_ids", "attention_mask"),
        ("last_hidden_state", "pooler_output"),
    ),
    (DataclassOut, ["x:2x3x4"], ("x",), ("logits", "extra.0", "extra.1")),
    (
        NestedOut,
        ["x:2x3x4"],
        ("x",),
        ("output.0.0", "output.0.1.0", "output.0.1.1", "output.1.past.0.0", "output.1.past.0.1"),
    ),
]


@pytest.mark.parametrize("exporter", ["dynamo", "torchscript"])
@pytest.mark.parametrize(
    ("cls", "specs", "ins", "outs"), CASES, ids=lambda c: getattr(c, "__name__", "")
)
def test_names_follow_forward_and_output_structure(
    tmp_path: Path,
    exporter: str,
    cls: type[torch.nn.Module],
    specs: list[str],
    ins: tuple[str, ...],
    outs: tuple[str, ...],
) -> None:
    model = cls().eval()
    ex = make_inputs(model, [InputSpec.parse(s) for s in specs])
    result = export_model(model, ex, tmp_path / "m.onnx", exporter=exporter)  # type: ignore[arg-type]
    assert result.exporter == exporter
    assert (result.input_names, result.output_names) == (ins, outs)
    check = validate(model, result.path, make_cases(model, ex))
    assert check.passed, check
    assert [o.name for o in check.trials[0].outputs] == list(outs)
