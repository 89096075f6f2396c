"""Small ONNX graphs built with onnx.helper for the summary tests (no torch)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

F = TensorProto.FLOAT


def _init(name: str, *shape: int, seed: int = 0) -> onnx.TensorProto:
    rng = np.random.default_rng(seed)
    return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)


def _model(graph: onnx.GraphProto, opset: int = 17) -> onnx.ModelProto:
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="tests"
    )
    model.ir_version = 9
    return model


def conv_net(batch: int | str = 1) -> onnx.ModelProto:
    """x[b,3,8,8] -> Conv(4,3x3,pad 1) -> Relu -> MaxPool 2 -> Flatten -> Gemm(64->10).

    Hand-computed at batch 1: Conv 4*8*8 * 3*3*3 = 6912 MACs, MaxPool 4*4*4 * 2*2 = 256,
    Gemm 1*10*64 = 640; params 4*3*3*3 + 4 + 10*64 + 10 = 762. Node names TorchScript-style.
    """
    nodes = [
        helper.make_node("Conv", ["x", "conv.weight", "conv.bias"], ["c"],
                         name="/features/conv/Conv", pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        helper.make_node("Relu", ["c"], ["r"], name="/features/act/Relu"),
        helper.make_node("MaxPool", ["r"], ["p"], name="/pool/MaxPool", kernel_shape=[2, 2],
                         strides=[2, 2]),
        helper.make_node("Flatten", ["p"], ["f"], name="/Flatten"),
        helper.make_node("Gemm", ["f", "fc.weight", "fc.bias"], ["y"], name="/fc/Gemm", transB=1),
    ]  # fmt: skip
    graph = helper.make_graph(
        nodes,
        "conv_net",
        [helper.make_tensor_value_info("x", F, [batch, 3, 8, 8])],
        [helper.make_tensor_value_info("y", F, [batch, 10])],
        [_init("conv.weight", 4, 3, 3, 3), _init("conv.bias", 4), _init("fc.weight", 10, 64),
         _init("fc.bias", 10)],
    )  # fmt: skip
    return _model(graph)


def _meta(node: onnx.NodeProto, scopes: list[str], classes: list[str]) -> onnx.NodeProto:
    """Attach dynamo-exporter style hierarchy metadata."""
    helper.set_metadata_props(
        node,
        {
            "pkg.torch.onnx.name_scopes": repr(["", *scopes, node.name]),
            "pkg.torch.onnx.class_hierarchy": repr(["__main__.Net", *classes, "aten.op"]),
        },
    )
    return node


def attention_block(batch: int = 2, seq: int = 5, dim: int = 8) -> onnx.ModelProto:
    """Single-head self-attention with shared-weight Q/K projections and dynamo metadata.

    q = x@Wqk, k = x@Wqk (the same initializer: counted once), v = x@Wv,
    y = softmax(q@kᵀ / sqrt(d)) @ v, out = y@Wo.
    MACs: four projections (q, k, v, out) of 2*5*8 outputs x 8 = 640 each, q@kᵀ 2*5*5 x 8 = 400,
    att@v 400: total 4*640 + 800 = 3360. Params: Wqk 64 + Wv 64 + Wo 64 = 192.
    """
    lin = "torch.nn.modules.linear.Linear"
    attn = "__main__.Attention"
    mk = helper.make_node
    in_attn: tuple[list[str], list[str]] = (["attn"], [attn])
    nodes = [
        _meta(mk("MatMul", ["x", "Wqk"], ["q"], name="node_q"), ["attn", "attn.q"], [attn, lin]),
        _meta(mk("MatMul", ["x", "Wqk"], ["k"], name="node_k"), ["attn", "attn.k"], [attn, lin]),
        _meta(mk("MatMul", ["x", "Wv"], ["v"], name="node_v"), ["attn", "attn.v"], [attn, lin]),
        _meta(mk("Transpose", ["k"], ["kt"], name="node_t", perm=[0, 2, 1]), *in_attn),
        _meta(mk("MatMul", ["q", "kt"], ["s"], name="node_qk"), *in_attn),
        _meta(mk("Div", ["s", "scale"], ["sd"], name="node_div"), *in_attn),
        _meta(mk("Softmax", ["sd"], ["a"], name="node_softmax", axis=-1), *in_attn),
        _meta(mk("MatMul", ["a", "v"], ["o"], name="node_av"), *in_attn),
        _meta(mk("MatMul", ["o", "Wo"], ["y"], name="node_out"), ["out"], [lin]),
    ]
    scale = numpy_helper.from_array(np.array(np.sqrt(dim), dtype=np.float32), "scale")
    graph = helper.make_graph(
        nodes,
        "attention",
        [helper.make_tensor_value_info("x", F, [batch, seq, dim])],
        [helper.make_tensor_value_info("y", F, [batch, seq, dim])],
        [_init("Wqk", dim, dim, seed=1), _init("Wv", dim, dim, seed=2),
         _init("Wo", dim, dim, seed=3), scale],
    )  # fmt: skip
    return _model(graph)


def flat_graph() -> onnx.ModelProto:
    """Generic node names and no metadata: no hierarchy at all."""
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["h"], name="MatMul_0"),
        helper.make_node("Relu", ["h"], ["y"], name="Relu_1"),
    ]
    graph = helper.make_graph(
        nodes,
        "flat",
        [helper.make_tensor_value_info("x", F, ["batch", 4])],
        [helper.make_tensor_value_info("y", F, ["batch", 3])],
        [_init("W", 4, 3)],
    )
    return _model(graph)


def custom_op_graph() -> onnx.ModelProto:
    """A node from an unknown domain between two standard ones."""
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="relu"),
        helper.make_node("FancyOp", ["a"], ["b"], name="fancy", domain="my.ops"),
        helper.make_node("Relu", ["b"], ["y"], name="relu2"),
    ]
    graph = helper.make_graph(
        nodes,
        "custom",
        [helper.make_tensor_value_info("x", F, [2, 4])],
        [helper.make_tensor_value_info("y", F, None)],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("my.ops", 1)],
    )
    model.ir_version = 9
    return model


def save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.save(model, str(path))
    return path
