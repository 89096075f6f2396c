"""MACs of single ops against hand-computed values (graphs built with onnx.helper)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from exportkit.summary import summarize

F = TensorProto.FLOAT


def _one_op(
    tmp_path: Path,
    node: onnx.NodeProto,
    inputs: dict[str, list[int]],
    weights: dict[str, list[int]],
    opset: int = 22,
) -> int | None:
    """MACs of the single node, with shapes from ONNX shape inference."""
    inits = [
        numpy_helper.from_array(np.zeros(shape, dtype=np.float32), name)
        for name, shape in weights.items()
    ]
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info(n, F, s) for n, s in inputs.items()],
        [helper.make_tensor_value_info(o, F, None) for o in node.output if o],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    s = summarize(path)
    assert s.warnings == ()
    return s.nodes[0].macs


def test_grouped_strided_conv(tmp_path: Path) -> None:
    # 2x8x10x10 -> 16 channels, 3x3, stride 2, groups 4: out 2x16x4x4, each output reads 8/4*9.
    node = helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3], strides=[2, 2], group=4)
    macs = _one_op(tmp_path, node, {"x": [2, 8, 10, 10]}, {"w": [16, 2, 3, 3]})
    assert macs == (2 * 16 * 4 * 4) * (2 * 3 * 3)


def test_conv_transpose(tmp_path: Path) -> None:
    # Every input element is scattered over Cout/groups * kernel outputs.
    node = helper.make_node("ConvTranspose", ["x", "w"], ["y"], kernel_shape=[4, 4], strides=[2, 2])
    macs = _one_op(tmp_path, node, {"x": [1, 8, 5, 5]}, {"w": [8, 3, 4, 4]})
    assert macs == (1 * 8 * 5 * 5) * (3 * 4 * 4)


def test_gemm_with_transposed_a(tmp_path: Path) -> None:
    node = helper.make_node("Gemm", ["a", "b"], ["y"], transA=1)
    assert _one_op(tmp_path, node, {"a": [7, 3]}, {"b": [7, 5]}) == 3 * 5 * 7


def test_batched_matmul_broadcast(tmp_path: Path) -> None:
    node = helper.make_node("MatMul", ["a", "b"], ["y"])
    assert _one_op(tmp_path, node, {"a": [4, 1, 6, 8]}, {"b": [3, 8, 5]}) == 4 * 3 * 6 * 5 * 8


def test_einsum_contraction(tmp_path: Path) -> None:
    node = helper.make_node("Einsum", ["q", "k"], ["y"], equation="bhqd,bhkd->bhqk")
    macs = _one_op(tmp_path, node, {"q": [2, 4, 6, 8], "k": [2, 4, 7, 8]}, {})
    assert macs == 2 * 4 * 6 * 7 * 8


def test_attention_op_4d_with_grouped_query_heads(tmp_path: Path) -> None:
    # opset 23 Attention: Q (2, 8 heads, 5, 16), K/V (2, 2 heads, 9, 16/32): per query head,
    # q·kᵀ 5*9*16 and softmax·v 5*9*32.
    node = helper.make_node("Attention", ["q", "k", "v"], ["y"])
    shapes = {"q": [2, 8, 5, 16], "k": [2, 2, 9, 16], "v": [2, 2, 9, 32]}
    assert _one_op(tmp_path, node, shapes, {}, opset=23) == 2 * 8 * 5 * 9 * (16 + 32)


def test_attention_op_3d_uses_head_counts(tmp_path: Path) -> None:
    node = helper.make_node("Attention", ["q", "k", "v"], ["y"], q_num_heads=4, kv_num_heads=2)
    shapes = {"q": [2, 5, 4 * 8], "k": [2, 9, 2 * 8], "v": [2, 9, 2 * 8]}
    assert _one_op(tmp_path, node, shapes, {}, opset=23) == 2 * 4 * 5 * 9 * (8 + 8)


@pytest.mark.parametrize(("op", "gates"), [("LSTM", 4), ("GRU", 3), ("RNN", 1)])
def test_recurrent(tmp_path: Path, op: str, gates: int) -> None:
    # seq 7, batch 3, input 10, hidden 6, bidirectional: per step and direction gates*H*(I+H).
    node = helper.make_node(op, ["x", "w", "r"], ["y"], hidden_size=6, direction="bidirectional")
    weights = {"w": [2, gates * 6, 10], "r": [2, gates * 6, 6]}
    macs = _one_op(tmp_path, node, {"x": [7, 3, 10]}, weights)
    assert macs == 7 * 3 * 2 * gates * 6 * (10 + 6)


def test_pooling_and_normalization(tmp_path: Path) -> None:
    pool = helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], strides=[1, 1])
    assert _one_op(tmp_path, pool, {"x": [1, 4, 6, 6]}, {}) == (1 * 4 * 4 * 4) * 9
    glob = helper.make_node("GlobalMaxPool", ["x"], ["y"])
    assert _one_op(tmp_path, glob, {"x": [1, 4, 6, 6]}, {}) == 4 * 6 * 6
    norm = helper.make_node("LayerNormalization", ["x", "g", "b"], ["y"], axis=-1)
    assert _one_op(tmp_path, norm, {"x": [2, 5, 8]}, {"g": [8], "b": [8]}) == 2 * 5 * 8


def test_zero_and_unknown_are_different(tmp_path: Path) -> None:
    relu = helper.make_node("Relu", ["x"], ["y"])
    assert _one_op(tmp_path, relu, {"x": [2, 3]}, {}) == 0
    loop_free_but_uncountable = helper.make_node("NonMaxSuppression", ["b", "s"], ["y"])
    macs = _one_op(tmp_path, loop_free_but_uncountable, {"b": [1, 10, 4], "s": [1, 1, 10]}, {})
    assert macs is None


def test_local_response_normalization(tmp_path: Path) -> None:
    node = helper.make_node("LRN", ["x"], ["y"], size=5)
    assert _one_op(tmp_path, node, {"x": [1, 8, 4, 4]}, {}) == 8 * 4 * 4 * 5
