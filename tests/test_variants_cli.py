"""Deployment variants through the CLI: the matrix, exit codes, JSON and JUnit, ``check`` of a
float16/int8 file made elsewhere, providers that are not installed."""

from __future__ import annotations

import contextlib
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from exportkit.cli import main
from tests.conftest import MODELS

CNN = f"{MODELS / 'variant_models.py'}:SmallCNN"
FAST = ["--dynamic", "batch", "--no-sizes", "--latency-budget", "0.05"]


@pytest.fixture(scope="module")
def bad_int8(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, str, str]:
    """One export with fp16 and a badly calibrated int8: (folder, exit code, stdout, stderr);
    module-scoped (capsys is per test), so the output is captured by hand."""
    out = tmp_path_factory.mktemp("cli")
    np.savez(out / "const.npz", x=np.full((2, 3, 32, 32), 0.01, np.float32))
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["export", CNN, *FAST, "-o", str(out / "cnn.onnx"),
                     "--variant", "fp16", "--variant", "int8", "--calibrate", str(out / "const.npz"),
                     "--json", str(out / "r.json"), "--junit", str(out / "j.xml")])  # fmt: skip
    return out, code, stdout.getvalue(), stderr.getvalue()


def test_a_failing_variant_fails_the_run_and_leaves_the_float_file(bad_int8: tuple) -> None:
    out, code, stdout, stderr = bad_int8
    assert code == 1
    matrix = stdout[stdout.index("variants  ") :]
    rows = {line.split()[0]: line for line in matrix.splitlines()[2:6] if line.strip()}
    assert "pass" in rows["float"] and "pass" in rows["fp16"] and "FAIL" in rows["int8"]
    assert "SQNR" in rows["int8"]
    assert "int8 (CPU): first diverges at features." in stdout
    assert "the float file stays the one to ship" in stdout
    assert stderr.rstrip().splitlines()[-1].startswith("FAIL: variant int8 (CPU) fails")
    assert (out / "cnn.onnx").is_file() and (out / "cnn.int8.onnx").is_file()


def test_json_and_junit_carry_each_variant(bad_int8: tuple) -> None:
    out = bad_int8[0]
    doc = json.loads((out / "r.json").read_text())
    assert doc["passed"] is False
    by_name = {v["name"]: v for v in doc["variants"]}
    assert set(by_name) == {"float", "fp16", "int8"}
    fp16 = by_name["fp16"]
    assert fp16["passed"] is True and fp16["path"] == str(out / "cnn.fp16.onnx")
    assert fp16["size_bytes"] == (out / "cnn.fp16.onnx").stat().st_size
    assert 0 < fp16["latency_ms"]["p50"] <= fp16["latency_ms"]["p90"]
    assert by_name["int8"]["metrics"]["output"]["sqnr_db"] < 20
    cases = ET.parse(out / "j.xml").getroot().findall("testcase")
    variant = {c.get("name"): c for c in cases if c.get("name", "").startswith("variant ")}
    assert variant["variant int8 (CPU)"].find("failure") is not None
    assert variant["variant fp16 (CPU)"].find("failure") is None


def test_check_judges_float16_and_int8_files_made_elsewhere(
    bad_int8: tuple, capsys: pytest.CaptureFixture[str]
) -> None:
    out = bad_int8[0]
    assert main(["check", str(out / "cnn.fp16.onnx"), CNN, *FAST]) == 0
    text = capsys.readouterr().out
    assert "fp16" in text and "float16 content" in text and "verdict   PASS" in text
    assert main(["check", str(out / "cnn.int8.onnx"), CNN, *FAST]) == 1
    text = capsys.readouterr().out
    assert "quantized (int8) ops" in text and "SQNR" in text
    # A looser bar set by the user lets the same file through: the threshold is the user's.
    loose = ["--min-cosine", "0.5", "--min-sqnr", "0", "--min-top1", "0"]
    assert main(["check", str(out / "cnn.int8.onnx"), CNN, *FAST, *loose]) == 0


def test_a_provider_not_installed_is_exit_2_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["export", CNN, "--provider", "TensorRT", "-o", str(tmp_path / "m.onnx")])
    err = capsys.readouterr().err
    assert code == 2
    assert "error: execution provider 'TensorRT' is not installed; this onnxruntime has:" in err
    assert "CPU" in err and "hint:" in err and "Traceback" not in err
    assert not (tmp_path / "m.onnx").exists()


def test_variant_flags_that_cannot_work_are_exit_2_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "m.onnx"
    for argv, needle in (
        (["--variant", "int8", "--calibrate", str(tmp_path / "nope.npz")], "no such file"),
        (["--variant", "bf16"], "invalid choice: 'bf16'"),
        (["--variant", "int8", "--min-cosine", "1.5"], "--min-cosine 1.5 must be between 0 and 1"),
    ):
        assert main(["export", CNN, "-o", str(target), *argv]) == 2
        err = capsys.readouterr().err
        assert needle in err and "hint:" in err and "Traceback" not in err
        assert not target.exists()


def test_the_converters_advice_stays_off_the_terminal(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """onnxruntime.quantization logs "consider pre-processing" on the root logger: kept for
    --debug, so stderr holds exportkit's stage lines only."""
    code = main(["export", CNN, *FAST, "-o", str(tmp_path / "cnn.onnx"), "--variant", "int8",
                 "--variant", "fp16"])  # fmt: skip
    assert code == 0
    err = capfd.readouterr().err
    assert "pre-processing" not in err and "WARNING" not in err
    assert not [r for r in caplog.records if r.levelname == "WARNING" and r.name == "root"]
