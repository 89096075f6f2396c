"""Op-type histograms and the before/after comparison of two graphs (e.g. around simplify)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from exportkit.onnxfile import op_histogram as op_histogram_of
from exportkit.summary.results import GraphSummary

if TYPE_CHECKING:  # onnx is read only for a path: the renderers of cached reports never load it
    import onnx

__all__ = ["GraphComparison", "OpCountChange", "compare", "compare_histograms", "op_histogram"]


def op_histogram(model: onnx.ModelProto | str | os.PathLike[str]) -> dict[str, int]:
    """Node count per op type of the main graph, most frequent first.

    Ops outside the default domain are keyed ``domain::Op``. A path is read without its
    external data.
    """
    if isinstance(model, (str, os.PathLike)):
        from exportkit.summary.graph import load_model

        model = load_model(Path(model)).model
    return op_histogram_of(model.graph.node)


@dataclass(frozen=True, slots=True)
class OpCountChange:
    """How many nodes of one op type there were before and after."""

    op_type: str
    before: int
    after: int

    @property
    def delta(self) -> int:
        """after - before."""
        return self.after - self.before


@dataclass(frozen=True)
class GraphComparison:
    """Node counts per op type and sizes of two versions of one graph."""

    before_nodes: int
    after_nodes: int
    before_bytes: int
    after_bytes: int
    ops: tuple[OpCountChange, ...]


def compare_histograms(
    before: Mapping[str, int],
    after: Mapping[str, int],
    *,
    before_bytes: int,
    after_bytes: int,
) -> GraphComparison:
    """Compare two op histograms and total file sizes (model plus external data, in bytes).

    ``ops`` lists every op type present on either side, largest count before first.
    """
    names = sorted(set(before) | set(after), key=lambda k: (-before.get(k, 0), -after.get(k, 0), k))
    return GraphComparison(
        before_nodes=sum(before.values()),
        after_nodes=sum(after.values()),
        before_bytes=before_bytes,
        after_bytes=after_bytes,
        ops=tuple(OpCountChange(k, before.get(k, 0), after.get(k, 0)) for k in names),
    )


def compare(before: GraphSummary, after: GraphSummary) -> GraphComparison:
    """Compare two summaries (e.g. the raw export and the simplified file)."""
    return compare_histograms(
        before.op_histogram,
        after.op_histogram,
        before_bytes=before.total_bytes,
        after_bytes=after.total_bytes,
    )
