"""The one home of the ONNX-file chores: atomic writes, external data, metadata props, op counts."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from exportkit.errors import (
    EXIT_STAGE_FAILED,
    EXIT_USAGE,
    DiskFullError,
    OutputPathError,
    first_line,
)
from exportkit.onnxfile import (
    ExternalRef,
    atomic_path,
    data_locations,
    drop_props,
    external_ref,
    op_histogram,
    save_atomic,
    set_props,
    write_atomic,
)
from exportkit.simplify import op_counts
from exportkit.summary import op_histogram as summary_histogram
from tests.summary_graphs import custom_op_graph, save


@contextlib.contextmanager
def _umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_follow_the_umask(tmp_path: Path, mask: int, mode: int) -> None:
    with _umask(mask):
        text = write_atomic(tmp_path / "report.json", '{"passed": true}\n')
        model = save_atomic(custom_op_graph(), tmp_path / "model.onnx")
    assert text.read_text() == '{"passed": true}\n'
    assert onnx.load(str(model)).graph.name == "custom"
    assert (text.stat().st_mode & 0o777, model.stat().st_mode & 0o777) == (mode, mode)


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "report.xml"
    target.write_text("the good one")
    with pytest.raises(RuntimeError, match="midway"), atomic_path(target) as tmp:
        tmp.write_text("half a ")
        raise RuntimeError("midway")
    assert target.read_text() == "the good one"
    assert [p.name for p in tmp_path.iterdir()] == ["report.xml"]


def test_a_folder_that_cannot_exist_is_bad_output_path(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputPathError, match="cannot write") as info:
        write_atomic(tmp_path / "file" / "report.json", "{}", parents=True)
    assert info.value.exit_code == EXIT_USAGE
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs, when this process may mount one."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_full_disk_is_a_stage_failure_about_space_naming_the_path(small_disk: Path) -> None:
    target = small_disk / "out" / "report.json"
    write_atomic(target, "the good one", parents=True)
    with pytest.raises(DiskFullError) as info:
        write_atomic(target, "x" * (1 << 20))
    error = info.value
    assert error.exit_code == EXIT_STAGE_FAILED
    assert str(target) in error.message
    assert error.hint is not None and "free space" in error.hint
    assert str(target.parent) in error.hint
    assert target.read_text() == "the good one"
    assert [p.name for p in target.parent.iterdir()] == ["report.json"]


def _externalize(tensor: onnx.TensorProto, folder: Path, location: str) -> None:
    (folder / location).write_bytes(numpy_helper.to_array(tensor).tobytes())
    for field in ("raw_data", "float_data"):
        tensor.ClearField(field)
    tensor.external_data.add(key="location", value=location)
    tensor.data_location = onnx.TensorProto.EXTERNAL


def _external_model(folder: Path) -> onnx.ModelProto:
    """An initializer in one data file; a Constant inside an If branch in another."""
    const = helper.make_node(
        "Constant", [], ["c"], value=numpy_helper.from_array(np.full(4, 2, np.float32), "c")
    )
    branch = helper.make_graph(
        [const], "then", [], [helper.make_tensor_value_info("c", onnx.TensorProto.FLOAT, [4])]
    )
    nodes = [
        helper.make_node("If", ["cond"], ["k"], then_branch=branch, else_branch=branch),
        helper.make_node("MatMul", ["k", "W"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "ext",
        [helper.make_tensor_value_info("cond", onnx.TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [4])],
        [numpy_helper.from_array(np.ones((4, 4), np.float32), "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    _externalize(model.graph.initializer[0], folder, "w.bin")
    for attr in model.graph.node[0].attribute:
        _externalize(attr.g.node[0].attribute[0].t, folder, "c.bin")
    return model


def test_external_data_is_found_in_initializers_and_subgraph_constants(tmp_path: Path) -> None:
    model = _external_model(tmp_path)
    assert data_locations(model) == ["w.bin", "c.bin"]
    onnx.save_model(model, str(tmp_path / "ext.onnx"))
    assert onnx.load(str(tmp_path / "ext.onnx")).graph.initializer[0].dims == [4, 4]
    assert external_ref(model.graph.initializer[0]) == ExternalRef("w.bin", 0, None)
    inline = numpy_helper.from_array(np.zeros(2, np.float32), "z")
    assert external_ref(inline) is None


def test_metadata_props_are_replaced_in_place_and_dropped_by_key() -> None:
    model = custom_op_graph()
    set_props(model.metadata_props, {"a": "1", "onnxsim.x": "2"})
    set_props(model.metadata_props, {"a": "3", "b": "4"})
    assert [(p.key, p.value) for p in model.metadata_props] == [
        ("a", "3"),
        ("onnxsim.x", "2"),
        ("b", "4"),
    ]
    assert drop_props(model.metadata_props, lambda key: key.startswith("onnxsim.")) == 1
    assert [p.key for p in model.metadata_props] == ["a", "b"]


def test_simplify_and_summary_count_custom_ops_alike(tmp_path: Path) -> None:
    path = save(custom_op_graph(), tmp_path / "custom.onnx")
    expected = {"Relu": 2, "my.ops::FancyOp": 1}
    assert op_counts(path) == expected
    assert summary_histogram(path) == expected
    assert op_histogram(onnx.load(str(path)).graph.node) == expected


@pytest.mark.parametrize(
    ("exc", "plain", "typed"),
    [
        (ValueError("\n  bad shape  \n(traceback below)"), "bad shape", "ValueError: bad shape"),
        (KeyError(), "KeyError", "KeyError"),
        (RuntimeError("RuntimeError: twice"), "RuntimeError: twice", "RuntimeError: twice"),
    ],
)
def test_first_line_of_an_exception(exc: BaseException, plain: str, typed: str) -> None:
    assert first_line(exc) == plain
    assert first_line(exc, typed=True) == typed


def test_copy_beside_resolves_external_data_and_leaves_nothing(tmp_path: Path) -> None:
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from exportkit.onnxfile import copy_beside

    weight = numpy_helper.from_array(np.arange(4096, dtype="float32"), "w")
    graph = helper.make_graph(
        [helper.make_node("Identity", ["w"], ["y"])],
        "g",
        [],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4096])],
        [weight],
    )
    path = tmp_path / "m.onnx"
    onnx.save_model(
        helper.make_model(graph), str(path), save_as_external_data=True, size_threshold=0
    )
    before = sorted(p.name for p in tmp_path.iterdir())
    model = onnx.load(str(path), load_external_data=False)
    with copy_beside(path, model, "probe") as copy:
        assert copy.parent == tmp_path and copy.name.startswith(".m-probe-")
        (out,) = ort.InferenceSession(str(copy), providers=["CPUExecutionProvider"]).run(None, {})
        assert out[-1] == 4095
    assert sorted(p.name for p in tmp_path.iterdir()) == before
