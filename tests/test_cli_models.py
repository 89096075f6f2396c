"""The CLI on every way to name a model and give inputs: errors (message, hint, exit code) and runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from exportkit.cli import main
from tests.models import zoo
from tests.models.archives import save_exported, save_torchscript

M = "tests/models"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def files(tmp_path: Path) -> Path:
    """A state dict that fits MLP, one that does not, a pickled model, bad data."""
    torch.save(zoo.MLP().state_dict(), tmp_path / "mlp.pt")
    torch.save(zoo.CNN2d().state_dict(), tmp_path / "cnn.pt")
    torch.save(zoo.MLP(), tmp_path / "pickled.pt")
    np.savez(tmp_path / "two.npz", a=np.ones(2), b=np.ones(2))
    (tmp_path / "noconfig").mkdir()
    return tmp_path


# (argv, exit code, what stderr's error line says, what the hint says)
ERRORS = [
    (["nope.py:Net"], 2, "model file 'nope.py' does not exist", "relative to"),
    ([f"{M}/import_error.py:Net"], 3, "import_error.py:4", "fix the error"),
    (
        [f"{M}/mlp.py:Nett"],
        2,
        "has no attribute 'Nett'; it defines: Net, Wide, make_net, net",
        f"use {M}/mlp.py:Net",
    ),
    (
        [f"{M}/mlp.py:Wide"],
        2,
        "Wide cannot be built from the arguments given: needs width",
        "Wide(width=...)",
    ),
    ([f"{M}/mlp.py:NOT_A_MODEL"], 2, "is a int, not a model", "nn.Module subclass"),
    ([f"{M}/mlp.py"], 2, "has no ':NAME' part", f"{M}/mlp.py:ClassName"),
    ([f"{M}/mlp.py:Net(width=len('x'))"], 2, "non-literal argument", "--kwargs"),
    ([f"{M}/mlp.py:Net", "--kwargs", "{depth: 3"], 2, "--kwargs is not valid JSON", "--kwargs"),
    (
        [f"{M}/mlp.py:Net", "--kwargs", '{"depth": 3}'],
        2,
        "Net takes no argument 'depth'; it takes: width",
        "--kwargs",
    ),
    ([f"{M}/mlp.py:Net", "--input", "x:2xq"], 2, "cannot parse shape", "NAME:SHAPE"),
    ([f"{M}/mlp.py:Net", "--input", "x:2x4:int64:[9,3)"], 2, "the range is empty", "low < high"),
    (
        [f"{M}/mlp.py:Net", "--input", "y:2x4"],
        2,
        "'y' is not a parameter of Net.forward(x)",
        "parameters: x",
    ),
    ([f"{M}/mlp.py:Net", "--dynamic", "x:one"], 2, "axis 'one' is not a number", "--dynamic"),
    (
        [f"{M}/mlp.py:Net", "--input", "x:2x4", "--dynamic", "x:5"],
        2,
        "has only 2 dims",
        "axes of 'x'",
    ),
    (
        [f"{M}/zoo.py:Opaque"],
        2,
        "cannot infer inputs for Opaque.forward(x): tried --input x:2x16:float32",
        "--input x:",
    ),
    ([f"{M}/broken.py:Raises", "--input", "x:2x3"], 3, "raised on inputs x:2x3:float32", "--input"),
    (
        [f"{M}/mlp.py:Net", "--input", "x={tmp}/missing.npy"],
        2,
        "missing.npy' does not exist",
        "relative to",
    ),
    (
        [f"{M}/mlp.py:Net", "--input", "x={tmp}/two.npz"],
        2,
        "has no array 'x'; it holds: a, b",
        "name the input",
    ),
    ([f"{M}/zoo.py:MLP", "--weights", "{tmp}/cnn.pt"], 2, "no weight in", "saved from this model"),
    (
        [f"{M}/zoo.py:MLP", "--weights", "{tmp}/pickled.pt"],
        2,
        "pickled Python objects",
        "state_dict()",
    ),
    ([f"{M}/zoo.py:MLP", "--weights", "{tmp}/none.pt"], 2, "none.pt' does not exist", "--weights"),
    (["{tmp}/mlp.pt"], 2, "is not a TorchScript archive", "--weights {tmp}/mlp.pt"),
    (["{tmp}/nope.pt2"], 2, "nope.pt2' does not exist", "relative to"),
    (["hf:{tmp}/noconfig"], 2, "holds no config.json", "config.save_pretrained"),
]


@pytest.mark.parametrize(("argv", "code", "message", "hint"), ERRORS)
def test_errors(
    argv: list[str],
    code: int,
    message: str,
    hint: str,
    files: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = [a.replace("{tmp}", str(files)) for a in argv]
    got, out, err = run(capsys, "export", *args, "-o", str(files / "out" / "m.onnx"))
    lines = err.strip().splitlines()
    errors = [ln for ln in lines if ln.startswith("error: ")]
    hints = [ln for ln in lines if ln.startswith("hint: ")]
    assert got == code, err
    assert "Traceback" not in err and out == ""
    assert len(errors) == 1 and message.replace("{tmp}", str(files)) in errors[0]
    assert len(hints) == 1 and hint.replace("{tmp}", str(files)) in hints[0]
    assert not (files / "out" / "m.onnx").exists()


def test_inferred_inputs_are_printed_to_copy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        capsys,
        "export",
        f"{M}/zoo.py:TextClassifier",
        "-o",
        str(tmp_path / "m.onnx"),
        "--json",
        str(tmp_path / "r.json"),
    )
    assert code == 0, err
    assert "inputs    inferred; to pin them: --input 'tokens:2x16:int64:[0,1000)'" in out
    assert "from emb (Embedding" in out
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["input_source"] == "inferred"
    assert report["input_lines"] == ["tokens:2x16:int64:[0,1000)"]


def test_weights_and_seeded_inputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trained = zoo.MLP()
    torch.save({"epoch": 1, "state_dict": trained.state_dict()}, tmp_path / "ckpt.pt")
    code, out, err = run(
        capsys,
        "export",
        f"{M}/zoo.py:MLP",
        "--weights",
        str(tmp_path / "ckpt.pt"),
        "--input",
        "x:3x12:[-1,1)",
        "--seed",
        "7",
        "-o",
        str(tmp_path / "m.onnx"),
    )
    assert code == 0, err
    assert "weights: 4 tensors from" in out and "['state_dict']" in out


def test_data_file_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    np.save(
        tmp_path / "x.npy", np.random.default_rng(0).standard_normal((5, 12)).astype(np.float32)
    )
    code, out, err = run(
        capsys,
        "export",
        f"{M}/zoo.py:MLP",
        "--input",
        f"x={tmp_path / 'x.npy'}",
        "--dynamic",
        "batch",
        "-o",
        str(tmp_path / "m.onnx"),
    )
    assert code == 0, err
    assert "input     x: batch x 12 float32" in out


@pytest.mark.slow
def test_hf_bert_export(
    hf_folders: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        capsys,
        "export",
        f"hf:{hf_folders['bert']}",
        "--dynamic",
        "batch",
        "--dynamic",
        "input_ids:1=seq",
        "--dynamic",
        "attention_mask:1=seq",
        "--dynamic",
        "token_type_ids:1=seq",
        "-o",
        str(tmp_path / "bert.onnx"),
    )
    assert code == 0, err
    assert "input     input_ids: batch x seq int64" in out
    assert "inputs    config; to pin them: --input 'input_ids:2x16:int64:[0,99)'" in out


@pytest.mark.slow
def test_archives_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = zoo.TwoTowers().eval()
    pt2 = save_exported(
        model, (torch.randn(3, 3, 16, 16), torch.randint(0, 50, (3, 7))), tmp_path / "t.pt2"
    )
    code, out, err = run(capsys, "export", str(pt2), "-o", str(tmp_path / "a" / "t.onnx"))
    assert code == 0, err
    assert "input     image: batch x 3 x 16 x 16 float32" in out  # the archive's own dynamic dim
    pt = save_torchscript(model, tmp_path / "t.pt")
    code, out, err = run(
        capsys, "export", str(pt), "--dynamic", "batch", "-o", str(tmp_path / "b" / "t.onnx")
    )
    assert code == 0, err
    assert "exporter  torchscript" in out and "input     tokens: batch x 16 int64" in out


README_COMMANDS = [
    "'examples/conv_net.py:ConvNet(width=8)'",
    "examples/conv_net.py:ConvNet --weights out/conv_net_checkpoint.pt",
    "examples/conv_net.py:ConvNet --weights out/conv_net.safetensors",
    "examples/conv_net.py:ConvNet --input x=out/images.npy --dynamic batch",
    "out/conv_net.pt2",
    "out/conv_net.pt --dynamic batch",
    "hf:examples/tiny_bert --dynamic batch",
    "'examples/text_classifier.py:TextClassifier(vocab=5000, dim=64)'",
]


@pytest.mark.slow
@pytest.mark.parametrize("command", README_COMMANDS)
def test_readme_naming_examples(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shlex
    import sys

    sys.path.insert(0, "examples")
    try:
        from make_archives import main as make_archives
    finally:
        sys.path.remove("examples")
    make_archives(tmp_path / "out")
    argv = [a.replace("out/", f"{tmp_path}/out/") for a in shlex.split(command)]
    code, out, err = run(capsys, "export", *argv, "-o", str(tmp_path / "m" / "m.onnx"))
    assert code == 0, err
    assert "verdict   PASS" in out
