"""Files a hostile or careless user hands exportkit: broken ONNX, data, weights, archives, configs.

``write_bad_files(folder)`` writes them all once per session; the bad-input suite names them as
``{files}/NAME``. Nothing here exports a model: the ONNX files are built with ``onnx.helper``.
"""

from __future__ import annotations

import json
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

#: Created by the pickle payloads if anything ever unpickles them: the suite asserts it never is.
MARKER = "pickle_ran.marker"


def mlp_like(
    *, name: str = "x", dtype: int = TensorProto.FLOAT, shape: tuple[int, ...] = (2, 4)
) -> onnx.ModelProto:
    """x[2,4] -> Gemm -> Relu -> Gemm -> [2,3]: the interface of tests/models/mlp.py:Net."""
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.standard_normal((8, 4)).astype(np.float32), "fc1.weight")
    w2 = numpy_helper.from_array(rng.standard_normal((3, 8)).astype(np.float32), "fc2.weight")
    graph = helper.make_graph(
        [
            helper.make_node("Gemm", [name, "fc1.weight"], ["h"], name="/fc1/Gemm", transB=1),
            helper.make_node("Relu", ["h"], ["r"], name="/Relu"),
            helper.make_node("Gemm", ["r", "fc2.weight"], ["y"], name="/fc2/Gemm", transB=1),
        ],
        "mlp",
        [helper.make_tensor_value_info(name, dtype, list(shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
        [w1, w2],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


class _Payload:
    """Pickles to a call that creates MARKER: proof, if it ever exists, that a pickle ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (exec, (f"open({str(self.marker)!r}, 'w').close()",))


def _external(folder: Path) -> None:
    """An ONNX file whose weights live in a data file: one missing, one short."""
    for name, keep in (("no_data", 0), ("short_data", 16)):
        model = mlp_like()
        onnx.save(
            model,
            str(folder / f"{name}.onnx"),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location=f"{name}.onnx.data",
            size_threshold=0,
        )
        data = folder / f"{name}.onnx.data"
        if keep:
            data.write_bytes(data.read_bytes()[:keep])
        else:
            data.unlink()


def _torch_files(folder: Path, payload: bytes) -> None:
    import torch

    from tests.models import mlp

    torch.save(mlp.Net().state_dict(), folder / "state_dict.pt")
    torch.save(mlp.Net(width=5).state_dict(), folder / "narrow.pt")  # shapes do not fit Net()
    torch.save({"encoder.weight": torch.zeros(2, 2)}, folder / "other_keys.pt")
    torch.save({"epoch": 3, "lr": 0.1}, folder / "no_state_dict.pt")
    torch.save(
        {k: v.to(torch.int64) for k, v in mlp.Net().state_dict().items()}, folder / "int64.pt"
    )
    torch.save({"a": torch.zeros(2, 4), "b": torch.zeros(2, 4)}, folder / "two_tensors.pt")
    (folder / "payload.pt").write_bytes(payload)
    whole = (folder / "state_dict.pt").read_bytes()
    (folder / "truncated.pt").write_bytes(whole[: len(whole) // 2])
    # A zip archive torch cannot read, and a pickle named like a torch.export archive.
    with zipfile.ZipFile(folder / "not_torch.pt2", "w") as z:
        z.writestr("hello.txt", "not a model")
    (folder / "pickle.pt2").write_bytes(payload)
    (folder / "state_dict.pt2").write_bytes(whole)
    (folder / "truncated.pt2").write_bytes(whole[: len(whole) // 3])


def write_bad_files(folder: Path) -> Path:
    """Write every file the bad-input cases name into ``folder``; returns it."""
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / MARKER
    payload = pickle.dumps(_Payload(marker))
    good = mlp_like().SerializeToString()
    (folder / "good.onnx").write_bytes(good)
    (folder / "truncated.onnx").write_bytes(good[: len(good) // 2])
    (folder / "empty.onnx").write_bytes(b"")
    (folder / "text.onnx").write_text("this is not a model\n")
    (folder / "text.pt").write_text("this is not a model either\n")
    (folder / "random.onnx").write_bytes(np.random.default_rng(1).bytes(4096))
    (folder / "folder.onnx").mkdir()
    onnx.save(mlp_like(name="inp"), str(folder / "other_name.onnx"))
    onnx.save(mlp_like(shape=(2, 4, 1)), str(folder / "other_rank.onnx"))
    onnx.save(mlp_like(dtype=TensorProto.INT64), str(folder / "other_dtype.onnx"))
    _external(folder)
    (folder / "a_file").write_text("a plain file, not a folder\n")
    (folder / "report.json").write_text('{"schema_version": 1, "passed": true}\n')
    (folder / "model.textproto").write_text("ir_version: 8\ngraph { node { op_type: \n")
    for fifo in ("fifo.py", "fifo.npy", "fifo.onnx", "fifo.pt"):  # reading one would block
        os.mkfifo(folder / fifo)
    (folder / "readme.md").write_text("# not python\n")
    (folder / "syntax_error.py").write_text("import torch\nclass Net(:\n    pass\n")
    (folder / "empty.py").write_text("")
    # Data for --input NAME=FILE.
    np.save(folder / "x.npy", np.zeros((2, 4), np.float32))
    np.save(folder / "objects.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    (folder / "garbage.npy").write_bytes(b"\x93NUMPY garbage")
    (folder / "pickle.npy").write_bytes(payload)
    np.savez(folder / "two.npz", a=np.zeros((2, 4), np.float32), b=np.ones((2, 4), np.float32))
    np.save(folder / "wrong_shape.npy", np.zeros((2, 7), np.float32))
    np.save(folder / "strings.npy", np.array(["a", "b"]))
    (folder / "data.txt").write_text("1 2 3 4\n")
    # Weights.
    (folder / "weights.txt").write_text("fc1.weight = 1\n")
    (folder / "empty.pt").write_bytes(b"")
    (folder / "bad.safetensors").write_bytes(b"\xff" * 64)
    (folder / "huge_header.safetensors").write_bytes((1 << 62).to_bytes(8, "little") + b"{}")
    _torch_files(folder, payload)
    # HuggingFace folders.
    (folder / "hf_empty").mkdir()
    (folder / "hf_bad_json").mkdir()
    (folder / "hf_bad_json" / "config.json").write_text("{not json")
    (folder / "hf_unknown").mkdir()
    (folder / "hf_unknown" / "config.json").write_text(json.dumps({"model_type": "no-such-model"}))
    (folder / "hf_list").mkdir()
    (folder / "hf_list" / "config.json").write_text("[1, 2, 3]")
    return folder
