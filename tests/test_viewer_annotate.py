"""The viewed file: stored shapes, findings in metadata, weights left where they are."""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from exportkit.errors import OnnxFileError, OutputPathError
from exportkit.viewer import annotate, findings_props, prepare_view, read_node_metadata, serve
from tests.test_viewer import conv_model


def props(proto: onnx.ModelProto | onnx.NodeProto) -> dict[str, str]:
    return {entry.key: entry.value for entry in proto.metadata_props}


def save_external(model: onnx.ModelProto, path: Path) -> Path:
    onnx.save(
        model, str(path), save_as_external_data=True, location=f"{path.name}.data", size_threshold=0
    )
    return path


def test_annotate_in_place_keeps_external_weights_usable(tmp_path: Path) -> None:
    path = save_external(conv_model(8), tmp_path / "m.onnx")
    data = tmp_path / "m.onnx.data"
    data_before, mtime = data.read_bytes(), data.stat().st_mtime_ns
    x = np.random.default_rng(1).standard_normal((1, 3, 8, 8)).astype(np.float32)
    expected = ort.InferenceSession(str(path)).run(None, {"x": x})[0]

    result = annotate(path, path, model_props={"exportkit.verdict": "pass"})

    assert result.path == path and result.shapes_inferred
    assert result.data_files == {"m.onnx.data": data}
    assert (data.read_bytes(), data.stat().st_mtime_ns) == (data_before, mtime)
    assert props(onnx.load(str(path), load_external_data=False)) == {"exportkit.verdict": "pass"}
    # onnxruntime still finds the weights and computes the same thing
    np.testing.assert_array_equal(ort.InferenceSession(str(path)).run(None, {"x": x})[0], expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "m.onnx.data"]


def test_existing_metadata_is_kept_and_keys_replaced(tmp_path: Path) -> None:
    model = conv_model()
    helper.set_model_props(model, {"author": "someone", "exportkit.verdict": "old"})
    model.graph.node[0].metadata_props.add(key="namespace", value="conv: Conv2d")
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    out = tmp_path / "out.onnx"
    annotate(
        path,
        out,
        model_props={"exportkit.verdict": "pass"},
        node_props={"/conv/Conv": {"exportkit.note": "first diverging"}},
    )
    written = onnx.load(str(out))
    assert props(written) == {"author": "someone", "exportkit.verdict": "pass"}
    assert props(written.graph.node[0]) == {
        "namespace": "conv: Conv2d",
        "exportkit.note": "first diverging",
    }


def test_unmatched_node_names_are_reported_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    onnx.save(conv_model(), str(path))
    result = annotate(path, tmp_path / "o.onnx", node_props={"/nope/Conv": {"k": "v"}})
    assert result.unmatched_nodes == ("/nope/Conv",)


def test_node_inside_a_subgraph_is_annotated(tmp_path: Path) -> None:
    then = helper.make_graph(
        [helper.make_node("Identity", ["a"], ["t"], name="inner/Identity")],
        "then",
        [],
        [helper.make_tensor_value_info("t", TensorProto.FLOAT, [2])],
    )
    other = helper.make_graph(
        [helper.make_node("Neg", ["a"], ["e"], name="inner/Neg")],
        "else",
        [],
        [helper.make_tensor_value_info("e", TensorProto.FLOAT, [2])],
    )
    graph = helper.make_graph(
        [helper.make_node("If", ["c"], ["y"], name="if", then_branch=then, else_branch=other)],
        "g",
        [
            helper.make_tensor_value_info("c", TensorProto.BOOL, []),
            helper.make_tensor_value_info("a", TensorProto.FLOAT, [2]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    path = tmp_path / "if.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    result = annotate(path, tmp_path / "o.onnx", node_props={"inner/Neg": {"k": "v"}})
    assert result.unmatched_nodes == ()
    written = onnx.load(str(tmp_path / "o.onnx"))
    branches = {attr.name: attr.g for attr in written.graph.node[0].attribute}
    neg = branches["else_branch"].node[0]
    assert (neg.name, props(neg)) == ("inner/Neg", {"k": "v"})


def test_prepare_view_serves_copy_and_original_data_without_touching_the_source(
    tmp_path: Path,
) -> None:
    source = save_external(conv_model(8), tmp_path / "m.onnx")
    before = source.read_bytes()
    view_dir = tmp_path / "view"
    view_dir.mkdir()
    prepared = prepare_view(source, view_dir, model_props={"exportkit.verdict": "pass"})
    assert prepared.name == "m.onnx"
    assert prepared.model == view_dir / "m.onnx"
    assert prepared.files == {
        "m.onnx": view_dir / "m.onnx",
        "m.onnx.data": tmp_path / "m.onnx.data",
    }
    assert source.read_bytes() == before
    assert sorted(p.name for p in view_dir.iterdir()) == ["m.onnx"]  # no stray temporary file


def test_external_data_outside_the_folder_is_refused(tmp_path: Path) -> None:
    model = conv_model()
    onnx.save(model, str(tmp_path / "m.onnx"))  # then point its weight at ../secret
    model = onnx.load(str(tmp_path / "m.onnx"))
    weight = model.graph.initializer[0]
    weight.ClearField("raw_data")
    weight.ClearField("float_data")
    weight.data_location = TensorProto.EXTERNAL
    weight.external_data.add(key="location", value="../secret.bin")
    (tmp_path / "inner").mkdir()
    path = tmp_path / "inner" / "m.onnx"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(OnnxFileError, match="outside its folder"):
        prepare_view(path, tmp_path)


def test_missing_external_data_is_reported(tmp_path: Path) -> None:
    path = save_external(conv_model(), tmp_path / "m.onnx")
    (tmp_path / "m.onnx.data").unlink()
    result = annotate(path, tmp_path / "o.onnx")
    assert result.missing_data == ("m.onnx.data",)
    assert result.data_files == {}


def test_weights_past_2gb_are_never_loaded(tmp_path: Path) -> None:
    # A 3 GB sparse data file: loading it into a proto would fail (protobuf stops at 2 GB).
    size = 3 * 1024**3
    graph = helper.make_graph(
        [helper.make_node("Identity", ["w"], ["y"], name="id")],
        "huge",
        [],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    weight = graph.initializer.add()
    weight.name, weight.data_type = "w", TensorProto.FLOAT
    weight.dims.extend([size // 4])
    weight.data_location = TensorProto.EXTERNAL
    weight.external_data.add(key="location", value="huge.onnx.data")
    weight.external_data.add(key="length", value=str(size))
    path = tmp_path / "huge.onnx"
    path.write_bytes(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    )
    with (tmp_path / "huge.onnx.data").open("wb") as data:
        data.truncate(size)
    view_dir = tmp_path / "view"
    view_dir.mkdir()
    prepared = prepare_view(path, view_dir, model_props={"exportkit.verdict": "pass"})
    assert prepared.annotation.shapes_inferred
    assert prepared.model.stat().st_size < 10_000
    written = onnx.load(str(prepared.model), load_external_data=False)
    assert [d.dim_value for d in written.graph.output[0].type.tensor_type.shape.dim] == [size // 4]
    assert prepared.files["huge.onnx.data"].stat().st_size == size
    with serve(path) as view:  # and the server offers the 3 GB file without reading it
        request = urllib.request.Request(view.url + "data/huge.onnx.data", method="HEAD")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert int(response.headers["Content-Length"]) == size


def test_not_onnx_and_unwritable_destination(tmp_path: Path) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_text("hello")
    with pytest.raises(OnnxFileError, match="not an ONNX model"):
        annotate(junk, tmp_path / "o.onnx")
    good = tmp_path / "m.onnx"
    onnx.save(conv_model(), str(good))
    with pytest.raises(OutputPathError, match="cannot write"):
        annotate(good, tmp_path / "no" / "such" / "dir" / "o.onnx")
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(OutputPathError):
            annotate(good, locked / "o.onnx")


def test_findings_props_keys() -> None:
    assert findings_props(
        verdict="mismatch",
        max_abs_diff={"logits": 0.0481234, "aux": 3.2e-7},
        exporter="dynamo",
        simplifier="onnxsim",
        first_diverging_module="layer1.0.bn1",
    ) == {
        "exportkit.verdict": "mismatch",
        "exportkit.max_abs_diff": "logits: 0.0481; aux: 3.2e-07",
        "exportkit.exporter": "dynamo",
        "exportkit.simplifier": "onnxsim",
        "exportkit.first_diverging_module": "layer1.0.bn1",
    }


def test_node_metadata_round_trip_restores_what_a_simplifier_dropped(tmp_path: Path) -> None:
    raw = conv_model()
    raw.graph.node[0].metadata_props.add(key="pkg.torch.onnx.name_scopes", value="['', 'conv']")
    raw_path, simplified_path = tmp_path / "raw.onnx", tmp_path / "simple.onnx"
    onnx.save(raw, str(raw_path))
    onnx.save(conv_model(), str(simplified_path))  # same node names, no metadata
    hierarchy = read_node_metadata(raw_path)
    assert hierarchy == {"/conv/Conv": {"pkg.torch.onnx.name_scopes": "['', 'conv']"}}
    annotate(simplified_path, simplified_path, node_props=hierarchy)
    assert props(onnx.load(str(simplified_path)).graph.node[0]) == hierarchy["/conv/Conv"]
