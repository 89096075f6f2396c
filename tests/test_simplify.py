"""simplify_model: the simplifiers' own output stays off the terminal; only their failures are theirs."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import exportkit.hierarchy
from exportkit.errors import SimplifyError
from exportkit.simplify import simplify_model
from tests.summary_graphs import conv_net, save


def _unfoldable(tmp_path: Path) -> Path:
    """A constant Gather whose index is out of range: onnxsim tries to fold it, onnxruntime
    refuses, and onnxsim's C++ prints ``WARNING: failed to run "Gather" op`` (with onnxruntime's
    error log) straight to fd 2, as it does per op on detection models."""
    data = numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(2, 3), "data")
    index = numpy_helper.from_array(np.array([0, 5], dtype=np.int64), "index")
    nodes = [
        helper.make_node("Gather", ["data", "index"], ["rows"], name="pick", axis=0),
        helper.make_node("Add", ["x", "rows"], ["y"], name="add"),
    ]
    graph = helper.make_graph(
        nodes,
        "unfoldable",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
        [data, index],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    return save(model, tmp_path / "unfoldable.onnx")


def test_simplifier_warnings_are_counted_and_kept_for_debug(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    src = _unfoldable(tmp_path)
    with caplog.at_level(logging.DEBUG, logger="exportkit"):
        result = simplify_model(src, tmp_path / "out" / "model.onnx", simplifier="onnxsim")
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")
    kept = "\n".join(r.getMessage() for r in caplog.records if r.name == "exportkit.quiet")
    assert 'WARNING: failed to run "Gather" op (name is "pick")' in kept
    assert result.output_lines == len([ln for ln in kept.splitlines()[1:] if ln.strip()])
    assert result.output_lines >= 1
    assert onnx.load(str(result.path)).graph.node[-1].op_type == "Add"


@pytest.mark.parametrize("simplifier", ["onnxsim", "onnxslim"])
def test_a_clean_simplification_prints_nothing(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], simplifier: str
) -> None:
    src = save(conv_net(), tmp_path / "net.onnx")
    result = simplify_model(src, tmp_path / "out" / "net.onnx", simplifier=simplifier)  # type: ignore[arg-type]
    assert capfd.readouterr() == ("", "")
    assert result.nodes_after <= result.nodes_before


def test_the_simplifiers_failure_is_a_simplify_error(tmp_path: Path) -> None:
    model = conv_net()
    model.ir_version = 99  # newer than onnxsim's checker knows: onnxsim itself raises
    src = save(model, tmp_path / "future.onnx")
    with pytest.raises(SimplifyError, match=r"^onnxsim failed: .*ir_version 99") as info:
        simplify_model(src, tmp_path / "out" / "future.onnx", simplifier="onnxsim")
    assert info.value.hint == "use --simplifier onnxslim|none"


def test_a_bug_in_exportkit_is_not_blamed_on_the_simplifier(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(original: onnx.ModelProto, simplified: onnx.ModelProto) -> int:
        raise KeyError("exportkit's own bug")

    monkeypatch.setattr(exportkit.hierarchy, "carry_metadata", broken)
    src = save(conv_net(), tmp_path / "net.onnx")
    with pytest.raises(KeyError, match="exportkit's own bug"):
        simplify_model(src, tmp_path / "out" / "net.onnx", simplifier="onnxsim")
