"""The CLI in-process: exit codes, what lands on stdout/stderr, files written, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest

from exportkit import __version__
from exportkit.cli import main

ROOT = Path(__file__).parent.parent


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_export_simple_net(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_file = tmp_path / "out" / "simple_net.onnx"
    code, out, err = run(
        capsys,
        "export",
        "examples/simple_net.py:SimpleNet",
        "--input",
        "x:2x10",
        "-o",
        str(out_file),
        "--json",
        str(tmp_path / "report.json"),
        "--junit",
        str(tmp_path / "junit.xml"),
    )
    assert code == 0, err
    assert out_file.is_file()
    assert "verdict   PASS" in out
    for stage in ("load", "inputs", "export", "validate", "simplify", "summary"):
        assert stage in err  # each stage shown with its time
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["schema_version"] == 1 and report["passed"] is True
    assert report["export"]["exporter"] == "dynamo"
    assert report["files"] == [str(out_file)]
    assert report["versions"]["torch"].startswith("2.")
    suite = ElementTree.parse(tmp_path / "junit.xml").getroot()
    assert suite.get("failures") == "0" and int(suite.get("tests", "0")) >= 2
    # Nothing but the model is left in its folder: no temporary files.
    assert sorted(p.name for p in out_file.parent.iterdir()) == ["simple_net.onnx"]


def test_mismatch_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys,
        "export",
        "tests/models/broken.py:ExportDrift",
        "--input",
        "x:2x4",
        "-o",
        str(tmp_path / "drift.onnx"),
        "--json",
        str(tmp_path / "r.json"),
    )
    assert code == 1, err
    assert "verdict   FAIL" in out
    assert json.loads((tmp_path / "r.json").read_text())["passed"] is False


def test_check_existing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    onnx_file = tmp_path / "net.onnx"
    assert (
        run(capsys, "export", "tests/models/mlp.py:Net", "--input", "x:3x4", "-o", str(onnx_file))[
            0
        ]
        == 0
    )
    code, out, _ = run(
        capsys, "check", str(onnx_file), "tests/models/mlp.py:Net", "--input", "x:3x4"
    )
    assert code == 0 and "PASS" in out
    # The same file checked against a different model (other weights) is a mismatch.
    code, out, _ = run(
        capsys, "check", str(onnx_file), "tests/models/mlp.py:make_net", "--input", "x:3x4"
    )
    assert code == 1 and "FAIL" in out


@pytest.mark.parametrize(
    ("argv", "code", "needle"),
    [
        (["export", "nope.py:Net", "--input", "x:2x4"], 2, "does not exist"),
        (["export", "tests/models/mlp.py:Nett", "--input", "x:2x4"], 2, "it defines: Net"),
        (["export", "tests/models/mlp.py", "--input", "x:2x4"], 2, "no ':NAME' part"),
        (["export", "tests/models/mlp.py:Wide", "--input", "x:2x4"], 2, "needs width"),
        (["export", "tests/models/mlp.py:Net", "--input", "x:2xq"], 2, "cannot parse shape"),
        (["export", "tests/models/mlp.py:Net", "--input", "x:2x5"], 3, "x:2x5:float32"),
        (["export", "tests/models/import_error.py:Net"], 3, "import_error.py:4"),
        (["export", "tests/models/mlp.py:Net", "--input", "x:2x4", "--atol", "tiny"], 2, "--atol"),
        (["summary", "pyproject.toml"], 2, "not"),
        (["check", "missing.onnx", "tests/models/mlp.py:Net"], 2, "no such file: missing.onnx"),
    ],
)
def test_user_errors_are_one_line(
    argv: list[str], code: int, needle: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    got, _, err = run(
        capsys, *argv, *(["-o", str(tmp_path / "m.onnx")] if argv[0] == "export" else [])
    )
    assert got == code, err
    assert err.splitlines()[-2].startswith("error: ") and needle in err
    assert err.splitlines()[-1].startswith("hint: ")
    assert "Traceback" not in err


def test_unwritable_output_keeps_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code, _, err = run(
        capsys,
        "export",
        "tests/models/mlp.py:Net",
        "--input",
        "x:2x4",
        "-o",
        str(blocker / "m.onnx"),
    )
    assert code == 2 and "cannot create folder" in err


def test_failed_run_keeps_earlier_good_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "m.onnx"
    assert (
        run(capsys, "export", "tests/models/mlp.py:Net", "--input", "x:2x4", "-o", str(target))[0]
        == 0
    )
    before = target.read_bytes()
    assert (
        run(
            capsys, "export", "tests/models/broken.py:Raises", "--input", "x:2x4", "-o", str(target)
        )[0]
        == 3
    )
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def test_version_and_module_entry() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "exportkit", "--version"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 0 and proc.stdout.strip() == f"exportkit {__version__}"


@pytest.mark.parametrize("command", ["export", "view", "summary", "check"])
def test_help_explains_with_examples(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert "examples:" in text and "exit codes:" in text


def test_validation_table_names_worst_case_and_failures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        capsys,
        "export",
        "tests/models/broken.py:ExportDrift",
        "--input",
        "x:2x4",
        "-o",
        str(tmp_path / "drift.onnx"),
        "--simplifier",
        "none",
    )
    assert code == 1
    table = out[out.index("validation  ") :]
    header, row = table.splitlines()[1:3]
    assert header.split()[:3] == ["output", "dtype", "max"]
    assert row.split()[-1] == "FAIL" and "float32" in row
    assert "FAIL export inputs [x 2x4]" in table and "out of tolerance" in table
