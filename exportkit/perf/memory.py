"""A file's peak memory on onnxruntime, measured in a fresh process.

Measured in the running process, the rise in peak resident size is a lower bound that is often
zero: the allocator hands the session pages that earlier work (the export, the validation) freed.
A fresh process holds only the interpreter, numpy and onnxruntime, so the rise from creating the
session to the end of a call is what the file costs to deploy: its weights, the arena, the
activations.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from exportkit.perf.providers import CPU

__all__ = ["peak_memory"]

_TIMEOUT_S = 120.0


def peak_memory(path: Path, feeds: Mapping[str, Any], *, provider: str = CPU) -> int | None:
    """Bytes the session on ``path`` adds to a fresh process's peak resident size over one call
    on ``feeds``; None where it cannot be measured (not Linux, the child failed or timed out)."""
    import numpy as np

    if not Path("/proc/self/clear_refs").exists():
        return None
    with tempfile.TemporaryDirectory(prefix="exportkit-mem-") as tmp:
        data = Path(tmp) / "feeds.npz"
        arrays: dict[str, Any] = {k: np.asarray(v) for k, v in feeds.items()}
        np.savez(data, **arrays)
        command = [sys.executable, "-m", "exportkit.perf.memory", str(path), str(data), provider]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired):
            return None
    lines = done.stdout.split()
    if done.returncode != 0 or not lines or not lines[-1].isdigit():
        return None
    return int(lines[-1])


def _status_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise LookupError(key)


def _measure(model: str, data: str, provider: str) -> int:
    import numpy as np
    import onnxruntime  # noqa: F401  (imported before the baseline: its own size is not the file's)

    from exportkit.perf.providers import session

    with np.load(data) as archive:
        feeds = {k: archive[k] for k in archive.files}
    baseline = _status_kb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # the peak starts again from here
    sess = session(model, provider)
    sess.run(None, feeds)
    return max(0, _status_kb("VmHWM") - baseline) * 1024


if __name__ == "__main__":
    sys.stdout.write(f"{_measure(*sys.argv[1:4])}\n")
