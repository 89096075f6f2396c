"""Execution providers by the names users type: ``cpu``, ``CUDA``, ``TensorrtExecutionProvider``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from exportkit.errors import UsageError

__all__ = ["CPU", "resolve_providers", "session"]

CPU = "CPUExecutionProvider"
_SUFFIX = "ExecutionProvider"


def resolve_providers(names: Sequence[str]) -> tuple[str, ...]:
    """CPU first, then each named provider once, by onnxruntime's full name.

    Raises:
        UsageError: a provider that this onnxruntime does not have (exit 2), listing those it has.
    """
    import onnxruntime as ort

    available = ort.get_available_providers()
    by_key = {p.lower().removesuffix(_SUFFIX.lower()): p for p in available}
    out = [CPU]
    for name in names:
        key = name.strip().lower().removesuffix(_SUFFIX.lower())
        found = by_key.get(key)
        if found is None:
            short = ", ".join(p.removesuffix(_SUFFIX) for p in available)
            raise UsageError(
                f"execution provider {name!r} is not installed; this onnxruntime has: {short}",
                hint="install the onnxruntime build for it (onnxruntime-gpu for CUDA/TensorRT, "
                "onnxruntime-openvino, onnxruntime-directml), or drop --provider",
            )
        if found not in out:
            out.append(found)
    return tuple(out)


def session(path: str, provider: str = CPU, *, profile_prefix: str | None = None) -> Any:
    """An onnxruntime session on ``path`` with ``provider`` (CPU behind it for unsupported nodes)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 4  # failures come back as exceptions
    if profile_prefix is not None:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    providers = [provider] if provider == CPU else [provider, CPU]
    return ort.InferenceSession(path, options, providers=providers)
