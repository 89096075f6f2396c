"""summarize() on graphs built with onnx.helper: facts, shapes, params, MACs, hierarchy, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

from exportkit.errors import OnnxFileError
from exportkit.report.summary import render_json, render_table, summary_rows
from exportkit.summary import carry_metadata, summarize
from tests.summary_graphs import attention_block, conv_net, custom_op_graph, flat_graph, save


def test_conv_net_facts_params_and_hand_computed_macs(tmp_path: Path) -> None:
    s = summarize(save(conv_net(), tmp_path / "net.onnx"))
    assert s.ir_version == 9
    assert s.opsets == {"ai.onnx": 17}
    assert s.producer == "tests"
    assert [(t.name, t.dtype, t.shape) for t in s.inputs] == [("x", "float32", (1, 3, 8, 8))]
    assert [(t.name, t.shape) for t in s.outputs] == [("y", (1, 10))]
    assert s.params == 4 * 3 * 3 * 3 + 4 + 10 * 64 + 10
    assert s.param_bytes == {"float32": 762 * 4}
    by_op = {n.op_type: n for n in s.nodes}
    assert by_op["Conv"].macs == 4 * 8 * 8 * 3 * 3 * 3
    assert by_op["MaxPool"].macs == 4 * 4 * 4 * 2 * 2
    assert by_op["Gemm"].macs == 10 * 64
    assert by_op["Relu"].macs == 0
    assert s.macs == 6912 + 256 + 640
    assert s.unknown_macs == 0
    # Shapes were missing in the file: shape inference filled them.
    assert by_op["MaxPool"].outputs[0].shape == (1, 4, 4, 4)
    assert s.op_histogram == {"Conv": 1, "Flatten": 1, "Gemm": 1, "MaxPool": 1, "Relu": 1}
    assert s.warnings == ()


def test_torchscript_names_give_module_tree(tmp_path: Path) -> None:
    s = summarize(save(conv_net(), tmp_path / "net.onnx"))
    assert s.hierarchy == "names"
    assert [m.path for m in s.modules] == [
        "",
        "features",
        "features.conv",
        "features.act",
        "pool",
        "fc",
    ]
    features = s.module("features")
    assert features.params == 112
    assert features.macs == 6912
    assert [(t.name, t.shape) for t in features.outputs] == [("r", (1, 4, 8, 8))]
    assert s.module("").outputs[0].name == "y"


def test_dynamo_metadata_tree_and_shared_weight_counted_once(tmp_path: Path) -> None:
    s = summarize(save(attention_block(), tmp_path / "attn.onnx"))
    assert s.hierarchy == "metadata"
    # Wqk feeds both q and k: its 64 elements count once in the file and at its first reader
    # node, and in each module that reads it (as PyTorch counts two modules' parameters),
    # marked as shared.
    assert s.params == 3 * 64
    assert sum(n.params for n in s.nodes) == 3 * 64
    assert (s.module("attn.q").params, s.module("attn.q").shared_params) == (64, 64)
    assert (s.module("attn.k").params, s.module("attn.k").shared_params) == (64, 64)
    assert (s.module("attn").params, s.module("attn").shared_params) == (192, 128)
    assert s.shared_params == 64
    assert s.module("attn").class_name == "__main__.Attention"
    assert s.module("").class_name == "__main__.Net"
    assert s.macs == 4 * 640 + 400 + 400
    assert s.module("attn").macs == 3 * 640 + 800


def test_flat_graph_has_no_hierarchy_and_symbolic_dims(tmp_path: Path) -> None:
    path = save(flat_graph(), tmp_path / "flat.onnx")
    s = summarize(path)
    assert s.hierarchy == "none"
    assert [m.path for m in s.modules] == [""]
    assert s.symbolic_dims == ("batch",)
    assert s.inputs[0].shape == ("batch", 4)
    assert s.nodes[0].macs is None  # depends on batch, never shown as 0
    assert s.unknown_macs == 1
    assert any("--dim batch=1" in w for w in s.warnings)
    bound = summarize(path, dims={"batch": 3})
    assert bound.nodes[0].macs == 3 * 3 * 4
    assert bound.unknown_macs == 0
    assert not any("unknown" in w for w in bound.warnings)


def test_unknown_domain_is_a_warning_and_unknown_macs(tmp_path: Path) -> None:
    s = summarize(save(custom_op_graph(), tmp_path / "custom.onnx"))
    assert any("'my.ops'" in w and "FancyOp" in w for w in s.warnings)
    fancy = next(n for n in s.nodes if n.op_type == "FancyOp")
    assert fancy.macs is None
    assert s.op_histogram["my.ops::FancyOp"] == 1
    table = render_table(s)
    assert "my.ops::FancyOp" in table
    assert "warning: 1 node uses ops from unknown domain 'my.ops'" in table


def test_depth_limits_rows_and_aggregates(tmp_path: Path) -> None:
    s = summarize(save(attention_block(), tmp_path / "attn.onnx"))
    rows = summary_rows(s, depth=1)
    assert [(r.level, r.name) for r in rows] == [(0, "attn.onnx"), (1, "attn"), (1, "out")]
    assert rows[1].macs == 3 * 640 + 800
    full = summary_rows(s)
    assert sum(1 for r in full if r.kind == "node") == len(s.nodes)


def test_json_is_versioned_and_complete(tmp_path: Path) -> None:
    s = summarize(save(conv_net(), tmp_path / "net.onnx"))
    doc = json.loads(render_json(s))
    assert doc["schema_version"] == 1
    assert doc["kind"] == "exportkit.graph_summary"
    assert doc["params"] == 762
    assert doc["node_count"] == 5
    assert doc["inputs"][0] == {"name": "x", "dtype": "float32", "shape": [1, 3, 8, 8]}
    conv = doc["nodes"][0]
    assert conv["op_type"] == "Conv" and conv["module"] == "features.conv" and conv["macs"] == 6912


def test_external_data_is_not_read_and_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "ext.onnx"
    model = conv_net()
    onnx.save(model, str(path), save_as_external_data=True, location="ext.onnx.data",
              size_threshold=0)  # fmt: skip
    s = summarize(path)
    assert s.params == 762
    assert s.external_data_files == ("ext.onnx.data",)
    assert s.external_data_bytes == (tmp_path / "ext.onnx.data").stat().st_size
    data = tmp_path / "ext.onnx.data"
    data.write_bytes(data.read_bytes()[:100])
    with pytest.raises(OnnxFileError, match=r"ext\.onnx\.data.*truncated"):
        summarize(path)
    data.unlink()
    with pytest.raises(OnnxFileError, match=r"ext\.onnx\.data.*missing") as err:
        summarize(path)
    assert err.value.hint and "beside the .onnx file" in err.value.hint


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "is empty"),
        (b"import torch\nprint('not onnx')\n", "is a text file, not an ONNX model"),
        (bytes(range(256)) * 4, r"is not (a readable ONNX|an ONNX) model"),
        (None, "not a readable ONNX model"),  # truncated export, filled in below
    ],
)
def test_bad_files_raise_onnx_file_error(tmp_path: Path, content: bytes | None, match: str) -> None:
    path = tmp_path / "bad.onnx"
    if content is None:
        good = conv_net().SerializeToString()
        content = good[: len(good) // 2]
    path.write_bytes(content)
    with pytest.raises(OnnxFileError, match=match) as err:
        summarize(path)
    assert err.value.hint
    assert err.value.exit_code == 2


def test_every_truncation_of_a_model_file_is_an_onnx_file_error(tmp_path: Path) -> None:
    data = save(attention_block(), tmp_path / "full.onnx").read_bytes()
    path = tmp_path / "cut.onnx"
    for cut in range(1, len(data), max(1, len(data) // 40)):
        path.write_bytes(data[:cut])
        with pytest.raises(OnnxFileError):
            summarize(path)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(OnnxFileError, match="no such file"):
        summarize(tmp_path / "nope.onnx")
    with pytest.raises(OnnxFileError, match="is a folder"):
        summarize(tmp_path)


def test_if_subgraph_parameters_belong_to_the_if_node(tmp_path: Path) -> None:
    branch = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["z"])], "then", [],
        [helper.make_tensor_value_info("z", onnx.TensorProto.FLOAT, [2, 3])],
    )  # fmt: skip
    other = helper.make_graph(
        [helper.make_node("Identity", ["x3"], ["z2"])], "else", [],
        [helper.make_tensor_value_info("z2", onnx.TensorProto.FLOAT, [2, 3])],
    )  # fmt: skip
    weight = onnx.numpy_helper.from_array(np.ones((4, 3), dtype=np.float32), "W")
    graph = helper.make_graph(
        [helper.make_node("If", ["c"], ["y"], then_branch=branch, else_branch=other)],
        "if", [helper.make_tensor_value_info("c", onnx.TensorProto.BOOL, []),
               helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2, 4]),
               helper.make_tensor_value_info("x3", onnx.TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [2, 3])],
        [weight],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    s = summarize(save(model, tmp_path / "if.onnx"))
    assert s.nodes[0].params == 12
    assert s.nodes[0].macs is None  # control flow: not countable, shown as unknown


def test_import_does_not_pull_heavy_modules() -> None:
    code = (
        "import sys, exportkit.summary, exportkit.report.summary\n"
        "heavy = [m for m in ('torch', 'onnxruntime', 'onnxsim', 'onnxslim', 'rich') "
        "if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_node_fused_by_the_exporter_goes_to_the_module_owning_its_weights(tmp_path: Path) -> None:
    # The dynamo exporter fuses Conv+BatchNorm and keeps the BatchNorm's metadata; the weights
    # are the conv's (stem.0.*), so the fused node belongs to their common parent, stem.
    conv = helper.make_node("Conv", ["x", "stem.0.weight"], ["y"], name="node_Conv_7")
    helper.set_metadata_props(
        conv,
        {
            "pkg.torch.onnx.name_scopes": "['', 'stem', 'stem.1', 'batch_norm']",
            "pkg.torch.onnx.class_hierarchy": "['Net', 'Sequential', 'BatchNorm2d', 'aten.bn']",
            "pkg.onnxscript.rewriter.rule_name": "FuseBatchNormIntoConv",
        },
    )
    graph = helper.make_graph(
        [conv],
        "fused",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 2, 4, 4])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)],
        [onnx.numpy_helper.from_array(np.ones((3, 2, 1, 1), np.float32), "stem.0.weight")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    s = summarize(save(model, tmp_path / "fused.onnx"))
    assert s.nodes[0].module == "stem"
    assert [m.path for m in s.modules] == ["", "stem"]


def test_inline_weights_are_emptied_before_inference_and_the_summary_is_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    from exportkit.summary import graph
    from exportkit.summary.build import build_summary

    path = save(conv_net(), tmp_path / "net.onnx")
    # conv_net's tensors are small: lower the limit so its weights count as large ones.
    monkeypatch.setattr(graph, "_INLINE_DATA_LIMIT", 64)
    loaded = graph.load_model(path)
    emptied = [t.name for t in loaded.model.graph.initializer if t.external_data]
    assert "conv.weight" in emptied, "the weights were copied into shape inference"
    whole = onnx.shape_inference.infer_shapes(onnx.load(str(path)), data_prop=True)
    reference = build_summary(dataclasses.replace(loaded, model=whole, values=None))
    stripped = build_summary(loaded)
    assert stripped.nodes == reference.nodes and stripped.modules == reference.modules
    assert stripped.params == reference.params == 762


def test_without_inference_only_stored_shapes_are_known(tmp_path: Path) -> None:
    s = summarize(save(conv_net(), tmp_path / "net.onnx"), infer=False)
    pool = next(n for n in s.nodes if n.op_type == "MaxPool")
    assert pool.outputs[0].shape is None
    assert pool.macs is None
    assert s.unknown_macs == 3  # Conv, MaxPool and Gemm need shapes the file does not store


def test_model_local_functions_are_inlined(tmp_path: Path) -> None:
    body = [
        helper.make_node("MatMul", ["a", "w"], ["h"]),
        helper.make_node("Relu", ["h"], ["o"]),
    ]
    fn = helper.make_function("local", "LinearRelu", ["a", "w"], ["o"], body,
                              [helper.make_opsetid("", 17)])  # fmt: skip
    graph = helper.make_graph(
        [helper.make_node("LinearRelu", ["x", "W"], ["y"], domain="local", name="call")],
        "fn",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2, 4])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [2, 3])],
        [onnx.numpy_helper.from_array(np.ones((4, 3), np.float32), "W")],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("local", 1)],
        functions=[fn],
    )
    model.ir_version = 9
    s = summarize(save(model, tmp_path / "fn.onnx"))
    assert [n.op_type for n in s.nodes] == ["MatMul", "Relu"]
    assert s.macs == 2 * 3 * 4
    assert s.params == 12
    assert s.warnings == ()


def test_model_zoo_style_ir3_with_weights_listed_as_inputs(tmp_path: Path) -> None:
    model = conv_net()
    model.ir_version = 3
    del model.opset_import[:]
    model.opset_import.append(helper.make_opsetid("", 9))
    for init in model.graph.initializer:
        model.graph.input.append(
            helper.make_tensor_value_info(init.name, init.data_type, list(init.dims))
        )
    s = summarize(save(model, tmp_path / "zoo.onnx"))
    assert [t.name for t in s.inputs] == ["x"]  # weights are not model inputs
    assert s.params == 762
    assert s.macs == 7808
    assert s.opsets == {"ai.onnx": 9}


def test_weight_behind_identity_counts_at_its_reader_and_the_identity_joins_its_readers(
    tmp_path: Path,
) -> None:
    # The TorchScript exporter deduplicates equal weights behind Identity nodes named without
    # a module path, placed first in the graph.
    ln = onnx.TensorProto.FLOAT
    nodes = [
        helper.make_node("Identity", ["ln.weight"], ["w_copy"], name="Identity_3"),
        helper.make_node("LayerNormalization", ["x", "ln.weight"], ["h"], axis=-1,
                         name="/enc/layer.0/ln/LayerNormalization"),
        helper.make_node("LayerNormalization", ["h", "w_copy"], ["h2"], axis=-1,
                         name="/enc/layer.1/ln/LayerNormalization"),
        helper.make_node("LayerNormalization", ["h2", "w_copy"], ["y"], axis=-1,
                         name="/enc/layer.2/ln/LayerNormalization"),
    ]  # fmt: skip
    graph = helper.make_graph(
        nodes,
        "dedup",
        [helper.make_tensor_value_info("x", ln, [2, 8])],
        [helper.make_tensor_value_info("y", ln, [2, 8])],
        [onnx.numpy_helper.from_array(np.ones(8, np.float32), "ln.weight")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    s = summarize(save(model, tmp_path / "dedup.onnx"))
    assert s.params == 8
    assert [(n.module, n.params) for n in s.nodes] == [
        ("enc", 0),  # the Identity sits in the module shared by its readers
        ("enc.layer.0.ln", 8),
        ("enc.layer.1.ln", 0),
        ("enc.layer.2.ln", 0),
    ]
    assert s.module("enc").children == ("enc.layer.0", "enc.layer.1", "enc.layer.2")
    assert s.hierarchy == "names"


def test_carry_metadata_restores_what_a_simplifier_dropped(tmp_path: Path) -> None:
    original = attention_block()
    simplified = onnx.ModelProto()
    simplified.CopyFrom(original)
    for node in simplified.graph.node:  # what onnxsim and onnxslim do
        del node.metadata_props[:]
    assert carry_metadata(original, simplified) == len(simplified.graph.node)
    assert carry_metadata(original, simplified) == 0  # nothing left to restore
    before = summarize(save(original, tmp_path / "a.onnx"))
    after = summarize(save(simplified, tmp_path / "b.onnx"))
    assert after.modules == before.modules


def test_namespace_only_metadata_and_symbolic_dim_expressions(tmp_path: Path) -> None:
    node = helper.make_node("MatMul", ["x", "W"], ["y"], name="mm")
    helper.set_metadata_props(
        node, {"namespace": ": m.Net/enc: m.Encoder/enc.fc: torch.nn.Linear/linear: aten.linear"}
    )
    graph = helper.make_graph(
        [node],
        "ns",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["2*batch", 4])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["2*batch", 3])],
        [onnx.numpy_helper.from_array(np.ones((4, 3), np.float32), "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    path = save(model, tmp_path / "ns.onnx")
    s = summarize(path, dims={"batch": 5})
    assert [(m.path, m.class_name) for m in s.modules] == [
        ("", "m.Net"),
        ("enc", "m.Encoder"),
        ("enc.fc", "torch.nn.Linear"),
    ]
    assert s.nodes[0].macs == (2 * 5) * 3 * 4
    assert summarize(path).nodes[0].macs is None


def test_gigabyte_external_weights_are_described_from_the_protobuf(tmp_path: Path) -> None:
    # A 1 GiB data file (sparse: nothing is written) holding one 16384x16384 float32 weight.
    side = 16384
    data = tmp_path / "big.onnx.data"
    with data.open("wb") as f:
        f.truncate(side * side * 4)
    weight = onnx.TensorProto(name="fc.weight", data_type=onnx.TensorProto.FLOAT, dims=[side, side])
    weight.data_location = onnx.TensorProto.EXTERNAL
    for key, value in (("location", data.name), ("offset", "0"), ("length", str(side * side * 4))):
        weight.external_data.add(key=key, value=value)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "fc.weight"], ["y"], name="/fc/MatMul")],
        "big",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, side])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, side])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    s = summarize(save(model, tmp_path / "big.onnx"))
    assert s.params == side * side
    assert s.param_bytes == {"float32": side * side * 4}
    assert s.external_data_bytes == side * side * 4
    assert s.macs == side * side
    assert s.file_bytes < 1000


def test_public_surface() -> None:
    import exportkit.report.summary as report
    import exportkit.summary as pkg

    def isort_style(name: str) -> tuple[int, str]:  # constants, classes, then functions
        return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)

    for module in (pkg, report):
        assert list(module.__all__) == sorted(module.__all__, key=isort_style)
        assert all(hasattr(module, name) for name in module.__all__)
    assert {"summarize", "carry_metadata", "op_histogram", "compare", "GraphSummary"} <= set(
        pkg.__all__
    )


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("node_softmax", "a node name (read by every row, checked after the build)"),
        ("'attn', 'node_t'", "a node's module metadata (parsed mid-build)"),
        ("Wv", "a weight read by a node"),
        ("torch.nn.modules.linear.Linear", "a module class name"),
    ],
)
def test_names_that_are_not_utf8_are_a_damaged_file_for_summary_and_diff(
    tmp_path: Path, text: str, where: str
) -> None:
    """Protobuf hands invalid UTF-8 back as bytes; the summary checks names lazily (what it
    read, the whole file only on a failure) and must still refuse the file in each place."""
    from exportkit.diff import diff
    from exportkit.summary import summarize

    data = attention_block().SerializeToString()
    marker = text.encode()
    assert marker in data, where
    damaged = data.replace(marker, b"\xff\xfe" + marker[2:], 1)  # its first use only
    path = tmp_path / "damaged.onnx"
    path.write_bytes(damaged)
    with pytest.raises(OnnxFileError, match="not UTF-8 text"):
        summarize(path)
    good = save(attention_block(), tmp_path / "good.onnx")
    with pytest.raises(OnnxFileError, match="not UTF-8 text"):
        diff(good, path, numbers=False, weights=False)


def test_a_file_with_every_shape_stored_summarizes_as_the_bare_one(tmp_path: Path) -> None:
    """Stored shapes (as dynamo writes them) replace ONNX's inference; a value stored with an
    unknown dim, or not stored, still sends the file through inference."""
    from exportkit.summary.graph import shapes_stored

    bare = attention_block()
    full = onnx.shape_inference.infer_shapes(bare)
    assert shapes_stored(bare) is None and shapes_stored(full) is not None
    plain = summarize(save(bare, tmp_path / "bare.onnx"))
    stored = summarize(save(full, tmp_path / "stored.onnx"))
    assert stored.nodes == plain.nodes and stored.modules == plain.modules
    assert stored.macs == plain.macs == 3360
    partial = onnx.ModelProto()
    partial.CopyFrom(full)
    partial.graph.value_info[0].type.tensor_type.shape.dim[1].Clear()
    assert shapes_stored(partial) is None
    assert summarize(save(partial, tmp_path / "partial.onnx")).nodes == plain.nodes
    del partial.graph.value_info[0]
    assert shapes_stored(partial) is None
