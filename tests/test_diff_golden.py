"""Golden diff reports (table, Markdown) of two hand-built graphs: no torch export involved."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from exportkit.diff import diff
from exportkit.report.diff import render_markdown, render_table


def mlp(path: Path, *, fc2_scale: float = 1.0, extra_relu: bool = False) -> Path:
    """x[batch,8] -> fc1 (MatMul) -> Relu [-> Relu] -> fc2 (MatMul); TorchScript-style names."""
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.standard_normal((8, 16)).astype(np.float32), "fc1.weight")
    w2 = (rng.standard_normal((16, 4)) * fc2_scale).astype(np.float32)
    nodes = [
        helper.make_node("MatMul", ["x", "fc1.weight"], ["h"], name="/fc1/MatMul"),
        helper.make_node("Relu", ["h"], ["r"], name="/act/Relu"),
    ]
    if extra_relu:
        nodes.append(helper.make_node("Relu", ["r"], ["r2"], name="/act/Relu_1"))
    last = "r2" if extra_relu else "r"
    nodes.append(helper.make_node("MatMul", [last, "fc2.weight"], ["y"], name="/fc2/MatMul"))
    graph = helper.make_graph(
        nodes, "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
        [w1, numpy_helper.from_array(w2, "fc2.weight")],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("fmt", ["txt", "md"])
def test_golden_diff(tmp_path: Path, golden: Callable[[str, str], None], fmt: str) -> None:
    a = mlp(tmp_path / "a.onnx")
    b = mlp(tmp_path / "b.onnx", fc2_scale=1.5, extra_relu=True)
    result = diff(a, b)
    assert result.weights is not None and result.weights.changed_modules == ("fc2",)
    assert result.numbers is not None and result.numbers.first_module == "fc2"
    text = render_table(result) if fmt == "txt" else render_markdown(result)
    golden(f"diff_mlp.{fmt}", text.replace(str(tmp_path) + "/", ""))
