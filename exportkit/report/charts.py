"""Small inline charts for the HTML report: proportional bars and error histograms, as SVG."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

from exportkit.validate.compare import ERROR_BIN_EDGES

__all__ = ["bar", "bin_labels", "error_histogram_svg"]


def bar(value: float, total: float, *, colour: str = "#4c78a8", width: int = 120) -> str:
    """A horizontal bar, ``value / total`` of ``width`` pixels, with the share as its tooltip."""
    share = value / total if total > 0 else 0.0
    filled = max(1, round(share * width)) if value > 0 else 0
    return (
        f'<svg class="bar" width="{width}" height="10" role="img" aria-label="{share:.1%}">'
        f"<title>{share:.1%}</title>"
        f'<rect width="{width}" height="10" fill="#eeeeee"/>'
        f'<rect width="{filled}" height="10" fill="{colour}"/></svg>'
    )


def bin_labels() -> list[str]:
    """``<1e-09``, ``1e-09``, ..., ``≥10``: the label of each histogram bin (its lower edge)."""
    labels = [f"<{ERROR_BIN_EDGES[0]:.0e}"]
    labels += [f"{edge:.0e}" for edge in ERROR_BIN_EDGES[:-1]]
    labels.append(f"≥{ERROR_BIN_EDGES[-1]:g}")
    return labels


def _tolerance_bin(atol: float) -> int | None:
    """The bin where ``atol`` falls: differences right of it fail (when rtol adds nothing)."""
    if atol <= 0 or not math.isfinite(atol):
        return None
    return sum(1 for edge in ERROR_BIN_EDGES if edge <= atol)


def error_histogram_svg(counts: Sequence[int], *, atol: float, title: str) -> str:
    """Elements per decade of ``|onnx - torch|`` as bars on a log count scale; atol marked."""
    if not counts:
        return ""
    width, height, pad = 26, 70, 14
    top = max(counts)
    labels = bin_labels()
    parts = [
        f'<svg class="histogram" width="{width * len(counts) + 4}" height="{height + 2 * pad}" '
        f'role="img" aria-label="{html.escape(title)}"><title>{html.escape(title)}</title>'
    ]
    at = _tolerance_bin(atol)
    if at is not None:
        x = at * width + 1
        parts.append(
            f'<rect x="{x}" y="0" width="{width * (len(counts) - at)}" height="{height + pad}" '
            'fill="#fde8e6"><title>beyond atol</title></rect>'
        )
    for i, n in enumerate(counts):
        h = 0 if n == 0 else max(2, round(height * math.log1p(n) / math.log1p(top)))
        x = i * width + 3
        parts.append(
            f'<rect x="{x}" y="{pad + height - h}" width="{width - 4}" height="{h}" '
            f'fill="#4c78a8"><title>{labels[i]}: {n:,} elements</title></rect>'
        )
        if n:
            parts.append(
                f'<text x="{x + (width - 4) / 2}" y="{pad + height - h - 2}" font-size="8" '
                f'text-anchor="middle">{n:,}</text>'
            )
        parts.append(
            f'<text x="{x + (width - 4) / 2}" y="{height + 2 * pad - 2}" font-size="7" '
            f'text-anchor="middle">{html.escape(labels[i])}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
