"""The pipeline's report as metadata of the viewed model: what Netron shows of exportkit's checks."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from exportkit.viewer.annotate import findings_props
from exportkit.viewer.focus import DIVERGES, IN_DIVERGING_MODULE

if TYPE_CHECKING:
    from exportkit.results import Report

__all__ = ["report_findings", "view_target"]


def report_findings(report: Report) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """The report's findings as ``(model_props, node_props)`` for ``serve`` or ``annotate``.

    Model entries: the verdict, the max abs difference per output (worst over every trial),
    the exporter, the simplifier kept, and the first diverging module. Node entries: for a
    mismatch, the diverging node gets the finding, its PyTorch module and its max abs diff, and
    every node of the diverging module is marked (Netron's page opens on them).
    """
    max_abs: dict[str, float] = {}
    validation = report.validation
    for trial in validation.trials if validation is not None else ():
        for output in trial.outputs:
            max_abs[output.name] = max(max_abs.get(output.name, 0.0), output.max_abs)
    simplify = report.simplify
    divergence = validation.divergence if validation is not None else None
    model_props = findings_props(
        verdict="pass" if report.passed else "mismatch",
        max_abs_diff=max_abs,
        exporter=report.export.exporter if report.export is not None else None,
        simplifier=simplify.simplifier if simplify is not None and simplify.kept else "none",
        first_diverging_module=divergence.describe() if divergence is not None else None,
    )
    node_props: dict[str, dict[str, str]] = {}
    summary = report.summary
    if divergence is not None and divergence.location is not None and summary is not None:
        # Every node of the diverging module: Netron's page marks them (see viewer.focus); not
        # when the module is the model itself, where that would be every node.
        where = summary.find_module(divergence.location.module, divergence.onnx_node)
        for node in summary.nodes_under(where) if where else ():
            if node.name:
                node_props[node.name] = {IN_DIVERGING_MODULE: divergence.describe()}
    if divergence is not None and divergence.onnx_node:
        props = {
            DIVERGES: divergence.detail,
            "exportkit.module": divergence.describe(),
        }
        if divergence.check is not None:
            props["exportkit.max_abs_diff"] = f"{divergence.check.max_abs:.3g}"
        node_props.setdefault(divergence.onnx_node, {}).update(props)
    return model_props, node_props


def view_target(report: Report) -> tuple[Path, dict[str, str], dict[str, dict[str, str]]] | None:
    """With ``--variant``: the first variant file made, and its own findings (verdict, how it
    was made, its worst metric, nodes kept float32, where it diverges); else None."""
    from exportkit.report.variants import worst_text

    row = next((r for r in report.variants if r.name != "float" and r.path is not None), None)
    if row is None or row.path is None:
        return None
    props = {
        "exportkit.verdict": "pass" if row.passed else "mismatch",
        "exportkit.variant": f"{row.name}: {row.method}",
        "exportkit.worst": worst_text(row),
    }
    if row.latency_ms is not None:
        props["exportkit.latency_ms"] = (
            f"p50 {row.latency_ms.p50:.3f}, p90 {row.latency_ms.p90:.3f}"
        )
    if row.divergence is not None:
        props["exportkit.first_diverging_module"] = row.divergence.describe()
    nodes: dict[str, dict[str, str]] = {}
    for b in row.blocked:
        nodes[b.node] = {"exportkit.float32": f"kept float32: values reach {b.max_abs:.3g}"}
    div = row.divergence
    if div is not None and div.onnx_node:
        nodes.setdefault(div.onnx_node, {})["exportkit.diverges"] = div.detail
    return row.path, props, nodes
