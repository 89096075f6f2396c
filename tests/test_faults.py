"""Runs that end badly: killed midway (SIGKILL) and a disk that fills up.

A killed run leaves the ``-o`` target as it was; the private working folder it leaves behind is
removed by the next run in that folder. A full disk is exit 3 with a hint about space naming the
folder, and the earlier good file survives.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from exportkit.cli import main

ROOT = Path(__file__).resolve().parents[1]
MLP = str(ROOT / "tests" / "models" / "mlp.py") + ":Net"
GOOD = b"the earlier good model\n"
FAST = (
    "--exporter",
    "torchscript",
    "--simplifier",
    "onnxslim",
    "--no-sizes",
)  # cheapest, all stages


def _export_killed_after(stage: str, target: Path) -> None:
    """``exportkit export`` in a subprocess, SIGKILLed as soon as ``stage`` has finished."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "exportkit",
            "export",
            MLP,
            "--input",
            "x:2x4",
            *FAST,
            "-o",
            str(target),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=target.parent,
    )
    assert process.stderr is not None
    seen = []
    try:
        for line in process.stderr:
            seen.append(line)
            if re.match(rf"^✓ {stage}\s+\d", line):
                process.send_signal(signal.SIGKILL)
                break
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()
    assert process.returncode == -signal.SIGKILL, f"not killed after {stage}:\n{''.join(seen)}"


@pytest.mark.slow  # over 3 s: the fast suite stays under 90 s; CI runs it
def test_a_killed_run_keeps_the_target_and_the_next_run_clears_its_leftovers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "m.onnx"
    target.write_bytes(GOOD)
    left: list[str] = []
    for stage in ("export", "validate", "simplify"):
        _export_killed_after(stage, target)
        assert target.read_bytes() == GOOD, f"killed after {stage}: the target changed"
        # The killed run's own working folder stays; the one before it was removed by this run.
        now = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("."))
        assert len(now) == 1 and now[0].startswith(".exportkit-") and now[0] not in left, now
        left += now

    assert main(["export", MLP, "--input", "x:2x4", *FAST, "-o", str(target)]) == 0
    capsys.readouterr()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]
    assert target.read_bytes() != GOOD  # the run that passed replaced it


def _mount_tmpfs(folder: Path, size: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("a full disk needs a small tmpfs, and mounting one needs root")
    folder.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs, unmounted afterwards."""
    disk = tmp_path / "disk"
    _mount_tmpfs(disk, "1m")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _fill(disk: Path) -> None:
    """Take every free byte of ``disk``."""
    with contextlib.suppress(OSError), (disk / "filler").open("wb", buffering=0) as f:
        while True:
            f.write(b"\0" * 4096)
    try:
        (disk / "filler2").write_bytes(b"\0" * 512)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC


def test_a_full_disk_is_exit_3_with_a_hint_about_space(
    small_disk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = small_disk / "m.onnx"
    target.write_bytes(GOOD)
    _fill(small_disk)

    code = main(["export", MLP, "--input", "x:2x4", "-o", str(target), "--no-sizes"])

    err = capsys.readouterr().err
    lines = err.rstrip("\n").splitlines()
    assert code == 3, err
    assert "Traceback" not in err
    assert lines[-2].startswith("error: ") and "space" in lines[-2], err
    assert lines[-1].startswith("hint: ") and "space" in lines[-1], err
    assert str(small_disk.resolve()) in err or str(small_disk) in err, err
    assert "opset" not in lines[-1]
    assert target.read_bytes() == GOOD
    assert sorted(p.name for p in small_disk.iterdir() if p.name != "filler2") == [
        "filler",
        "m.onnx",
    ]
