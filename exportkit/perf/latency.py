"""Latency: warm-up, then p50/p90 over a time-boxed number of runs (and a file's peak memory)."""

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


def onnx_latency(
    path: Path,
    feeds: Mapping[str, Any],
    *,
    provider: str = CPU,
    budget_s: float = 1.0,
    memory: bool = True,
) -> Latency:
    """onnxruntime latency of the file on ``feeds``, and with ``memory`` its peak memory as a
    fresh process sees it (``perf.memory``; None where that cannot be measured)."""
    from exportkit.perf.memory import peak_memory

    sess = session(str(path), provider)
    latency = time_calls(lambda: sess.run(None, dict(feeds)), budget_s=budget_s)
    if not memory:
        return latency
    return replace(latency, peak_memory_bytes=peak_memory(path, feeds, provider=provider))


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
