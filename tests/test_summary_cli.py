"""`exportkit summary` driven in-process and in a subprocess: options, exit codes, imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from exportkit.cli import main
from tests.summary_graphs import attention_block, conv_net, flat_graph, save


def test_json_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = save(conv_net(), tmp_path / "net.onnx")
    assert main(["summary", str(path), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema_version"] == 1
    assert doc["macs"] == 7808


def test_depth_and_columns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = save(attention_block(), tmp_path / "attn.onnx")
    assert main(["summary", str(path), "--depth", "1", "--columns", "name,params,macs"]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("Module / node"))
    assert header.split() == ["Module", "/", "node", "Params", "MACs"]
    assert "  attn  " in out and "node_qk" not in out  # folded into attn at depth 1


def test_dim_binding_counts_symbolic_macs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = save(flat_graph(), tmp_path / "flat.onnx")
    assert main(["summary", str(path), "--format", "csv", "--columns", "name,macs"]) == 0
    assert "1,node,MatMul_0,\n" in capsys.readouterr().out  # unknown: an empty cell, not 0
    argv = ["summary", str(path), "--format", "csv", "--columns", "name,macs", "--dim", "batch=2"]
    assert main(argv) == 0
    assert "1,node,MatMul_0,24" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--columns", "name,bogus"], "unknown summary column 'bogus'"),
        (["--dim", "batch"], "cannot read dim binding 'batch'"),
        (["--depth", "-1"], "--depth must be 0 or more"),
    ],
)
def test_bad_options_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    path = save(conv_net(), tmp_path / "net.onnx")
    assert main(["summary", str(path), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}")
    assert "hint: " in err and "Traceback" not in err


def test_not_onnx_exit_2_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "model.py"
    bad.write_text("import torch\n")
    proc = subprocess.run(
        [sys.executable, "-m", "exportkit", "summary", str(bad)], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[0] == f"error: {bad} is a text file, not an ONNX model"
    assert "Traceback" not in proc.stderr


def test_summary_command_never_imports_torch_onnxruntime_or_simplifiers(tmp_path: Path) -> None:
    path = save(conv_net(), tmp_path / "net.onnx")
    code = (
        "import sys, io, contextlib\n"
        "from exportkit.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    assert main(['summary', {str(path)!r}, '--format', 'json']) == 0\n"
        "heavy = ('torch', 'onnxruntime', 'onnxsim', 'onnxslim', 'onnxscript')\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_diff_without_numbers_never_imports_torch_or_onnxruntime(tmp_path: Path) -> None:
    """Structure, contract and weights need onnx and numpy only (the numbers' seeded draws are
    torch's generator, as export draws them: only they import torch)."""
    a = save(conv_net(), tmp_path / "a.onnx")
    b = save(conv_net(batch="batch"), tmp_path / "b.onnx")
    code = (
        "import sys, io, contextlib\n"
        "from exportkit.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    assert main(['diff', {str(a)!r}, {str(b)!r}, '--no-numbers']) == 1\n"
        "heavy = ('torch', 'onnxruntime', 'onnxsim', 'onnxslim', 'onnxscript')\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
