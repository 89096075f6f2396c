"""Latency (warm-up, then p50/p90 over a time-boxed number of runs) and a session's peak memory."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from exportkit.perf.providers import CPU, session

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["Latency", "eager_latency", "onnx_latency", "time_calls"]

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


@dataclass(frozen=True)
class Latency:
    """Milliseconds per call at the export size: median and 90th percentile over ``runs``."""

    p50: float
    p90: float
    runs: int
    peak_memory_bytes: int | None = None
    threads: int | None = None  # eager PyTorch: the intra-op threads of the faster setting


def time_calls(
    call: Callable[[], object],
    *,
    budget_s: float = 1.0,
    min_runs: int = 10,
    max_runs: int = 500,
    warmup: int = 3,
) -> Latency:
    """Warm up (``warmup`` calls and a tenth of the budget), then run until ``budget_s`` has
    passed (at least ``min_runs``, at most ``max_runs``)."""
    import numpy as np

    warm_end = time.perf_counter() + budget_s / 10
    done = 0
    while done < warmup or (done < max_runs and time.perf_counter() < warm_end):
        call()
        done += 1
    times: list[float] = []
    end = time.perf_counter() + budget_s
    while len(times) < max_runs and (len(times) < min_runs or time.perf_counter() < end):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1e3)
    arr = np.asarray(times)
    return Latency(float(np.percentile(arr, 50)), float(np.percentile(arr, 90)), len(times))


def _status_kb(key: str) -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    """Reset the process's peak resident size (Linux: ``echo 5 > /proc/self/clear_refs``)."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def onnx_latency(
    path: Path,
    feeds: Mapping[str, Any],
    *,
    provider: str = CPU,
    budget_s: float = 1.0,
) -> Latency:
    """onnxruntime latency of the file on ``feeds``; peak memory is the rise in peak resident size
    from before the session is created to after the runs (Linux only, else None)."""
    baseline = _status_kb("VmRSS") if _reset_peak() else None
    sess = session(str(path), provider)
    latency = time_calls(lambda: sess.run(None, dict(feeds)), budget_s=budget_s)
    peak = _status_kb("VmHWM")
    if baseline is None or peak is None:
        return latency
    return Latency(latency.p50, latency.p90, latency.runs, max(0, peak - baseline) * 1024)


def eager_latency(
    module: nn.Module, tensors: Mapping[str, torch.Tensor], *, budget_s: float = 1.0
) -> Latency:
    """Eager PyTorch latency of ``module(**tensors)`` under ``no_grad``, at torch's thread count
    and at one thread, the faster kept: on a busy machine OpenMP's waiting threads can make the
    default setting hundreds of times slower than one thread, which would flatter every file."""
    import torch

    def call() -> object:
        with torch.no_grad():
            return module(**tensors)

    threads = torch.get_num_threads()
    best = replace(time_calls(call, budget_s=budget_s / 2), threads=threads)
    if threads > 1:
        try:
            torch.set_num_threads(1)
            one = replace(time_calls(call, budget_s=budget_s / 2), threads=1)
        finally:
            torch.set_num_threads(threads)
        best = min(best, one, key=lambda lat: lat.p50)
    return best
