"""Every bundled example exports with exit 0, and the API example runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from exportkit.cli import main

ROOT = Path(__file__).parent.parent


@pytest.mark.parametrize(
    "spec", ["examples/simple_net.py:SimpleNet", "examples/conv_net.py:ConvNet"]
)
def test_example_exports(spec: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = spec.rpartition(":")[2]
    code = main(["export", spec, "--dynamic", "batch", "-o", str(tmp_path / f"{name}.onnx")])
    out = capsys.readouterr().out
    assert code == 0 and "verdict   PASS" in out
    assert "batch" in out  # the dynamic dim is named in the summary
    # What simplification changed: node counts before and after, and the size change.
    assert re.search(r"simplify  onnxsim, kept\n +Nodes: \d+ -> \d+ .*\n +Size: ", out)


@pytest.mark.slow
def test_api_example(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "api.py")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "output: max abs diff" in proc.stdout and "(ok)" in proc.stdout
