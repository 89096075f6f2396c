"""How fast a file runs and where the time goes: latency, peak memory, execution providers,
onnxruntime's profiler mapped to PyTorch modules, and eager PyTorch beside it."""

from __future__ import annotations

from exportkit.perf.latency import Latency, eager_latency, onnx_latency, time_calls
from exportkit.perf.providers import CPU, resolve_providers, session

__all__ = [
    "CPU",
    "Latency",
    "eager_latency",
    "onnx_latency",
    "resolve_providers",
    "session",
    "time_calls",
]
