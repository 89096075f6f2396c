"""Small text formatters shared by the report renderers: shapes, sizes, counts."""

from __future__ import annotations

from exportkit.summary.results import Dim, TensorInfo

__all__ = ["format_bytes", "format_count", "format_dim", "format_shape", "format_tensor"]


def format_dim(d: Dim) -> str:
    """``64``, ``batch`` or ``?``."""
    return "?" if d is None else str(d)


def format_shape(shape: tuple[Dim, ...] | None) -> str:
    """``batch x 64 x 56 x 56``; ``scalar`` for rank 0; ``?`` when unknown."""
    if shape is None:
        return "?"
    if not shape:
        return "scalar"
    return " x ".join(format_dim(d) for d in shape)


def format_tensor(t: TensorInfo) -> str:
    """``x: float32 [batch x 3 x 224 x 224]``."""
    return f"{t.name}: {t.dtype or '?'} [{format_shape(t.shape)}]"


def format_bytes(n: int) -> str:
    """Human size: ``512 B``, ``9.2 KB``, ``2.40 GB`` (powers of 1000)."""
    if n < 1000:
        return f"{n} B"
    for unit, scale in (("KB", 1e3), ("MB", 1e6), ("GB", 1e9), ("TB", 1e12)):
        if n < scale * 1000 or unit == "TB":
            value = n / scale
            return f"{value:.1f} {unit}" if value >= 10 else f"{value:.2f} {unit}"
    raise AssertionError("unreachable")


def format_count(n: int) -> str:
    """Short count: ``987``, ``12.3K``, ``4.56M``, ``7.89G``."""
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            value = n / scale
            return f"{value:.2f}{unit}" if value < 100 else f"{value:.1f}{unit}"
    return str(n)
