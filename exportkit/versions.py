"""The versions of exportkit and of the tools it drives, as the report records them."""

from __future__ import annotations

import contextlib
from importlib import metadata

__all__ = ["TOOLS", "tool_versions"]

TOOLS = ("exportkit", "torch", "onnx", "onnxruntime", "onnxscript", "onnxsim", "onnxslim", "netron")


def tool_versions() -> dict[str, str]:
    """Installed version of each of ``TOOLS``; tools that are not installed are left out."""
    out = {}
    for name in TOOLS:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out
