"""Rendering details: before/after comparison, HTML for notebooks, the rich table."""

from __future__ import annotations

import json
from pathlib import Path

from onnx import helper

from exportkit.report.summary import render_comparison, render_html, render_table
from exportkit.summary import compare, compare_histograms, op_histogram, summarize
from tests.summary_graphs import attention_block, conv_net, save


def _with_identities() -> object:
    """conv_net with two Identity nodes spliced in after the Relu, as an exporter might leave."""
    model = conv_net()
    nodes = list(model.graph.node)
    relu = next(n for n in nodes if n.op_type == "Relu")
    relu.output[0] = "r0"
    extra = [
        helper.make_node("Identity", ["r0"], ["r1"], name="/id1"),
        helper.make_node("Identity", ["r1"], ["r"], name="/id2"),
    ]
    del model.graph.node[:]
    for n in nodes:
        model.graph.node.append(n)
        if n is relu:
            model.graph.node.extend(extra)
    return model


def test_op_histogram_and_comparison(tmp_path: Path) -> None:
    before_path = save(_with_identities(), tmp_path / "before.onnx")  # type: ignore[arg-type]
    after_path = save(conv_net(), tmp_path / "after.onnx")
    assert op_histogram(before_path)["Identity"] == 2
    assert "Identity" not in op_histogram(after_path)
    c = compare(summarize(before_path), summarize(after_path))
    assert (c.before_nodes, c.after_nodes) == (7, 5)
    assert c.after_bytes < c.before_bytes
    ident = next(op for op in c.ops if op.op_type == "Identity")
    assert (ident.before, ident.after, ident.delta) == (2, 0, -2)
    text = render_comparison(c)
    assert text.splitlines()[0] == "Nodes: 7 -> 5 (-28.6%)"
    assert "Identity" in text and "Conv" not in text  # only changed op types are listed
    assert "5 op types unchanged" in text
    md = render_comparison(c, "markdown")
    assert "| Identity | 2 | 0 | -2 |" in md
    doc = json.loads(render_comparison(c, "json"))
    assert doc["schema_version"] == 1 and doc["after_nodes"] == 5


def test_compare_histograms_takes_plain_counts() -> None:
    c = compare_histograms(
        {"Conv": 3, "BatchNormalization": 3}, {"Conv": 3}, before_bytes=2000, after_bytes=1000
    )
    assert [(o.op_type, o.delta) for o in c.ops] == [("Conv", 0), ("BatchNormalization", -3)]
    assert "Size:  2.00 KB -> 1.00 KB (-50.0%)" in render_comparison(c)


def test_html_for_notebooks(tmp_path: Path) -> None:
    s = summarize(save(attention_block(), tmp_path / "a<b>.onnx"))
    html = render_html(s)
    assert "a&lt;b&gt;.onnx" in html and "a<b>" not in html
    assert "<b>attn</b>" in html and "<code>node_qk</code>" in html
    assert html.count("<tr>") > len(s.nodes)


def test_rich_table_has_the_same_numbers(tmp_path: Path) -> None:
    s = summarize(save(conv_net(), tmp_path / "net.onnx"))
    rich_text = render_table(s, color=True, width=140)
    assert "\x1b[" in rich_text
    for cell in ("features", "6,912", "7,808", "1 x 4 x 8 x 8"):
        assert cell in rich_text
    assert "\x1b[" not in render_table(s)
