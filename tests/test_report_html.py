"""The HTML and Markdown reports of real exports: a wrong one (BuggyBranch) and a right one."""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import exportkit
from exportkit.report.graph import draw_graph, graph_dot
from exportkit.report.html import render_html
from exportkit.report.markdown import render_markdown
from exportkit.results import Report

ROOT = Path(__file__).parent.parent
# Graphviz comes with `make browser`, which only the slow suite runs: these run there, where it
# is installed, so a fresh machine's fast suite never skips them silently.
needs_dot = pytest.mark.slow
MODELS = Path(__file__).parent / "models"
# The TorchScript exporter is the fast one; BuggyBranch drifts under it too (torch.jit.is_tracing).
FAST = {"exporter": "torchscript", "simplifier": "none", "sizes": False}


@pytest.fixture(scope="module")
def wrong(tmp_path_factory: pytest.TempPathFactory) -> Report:
    out = tmp_path_factory.mktemp("wrong") / "BuggyBranch.onnx"
    report = exportkit.export(f"{MODELS}/diverging.py:BuggyBranch", path=out, **FAST)  # type: ignore[arg-type]
    assert not report.passed
    return report


@pytest.fixture(scope="module")
def right(tmp_path_factory: pytest.TempPathFactory) -> Report:
    out = tmp_path_factory.mktemp("right") / "SimpleNet.onnx"
    report = exportkit.export(f"{ROOT}/examples/simple_net.py:SimpleNet", path=out, **FAST)  # type: ignore[arg-type]
    assert report.passed
    return report


def _svg_classes(page: str) -> dict[str, str]:
    """Graph SVG element id -> its class, as a browser reads them (entities decoded)."""
    found = re.findall(r'<g id="([^"]+)" class="([^"]+)"', page)
    return {html.unescape(i): html.unescape(c) for i, c in found}


def _no_outside_resources(page: str) -> None:
    assert "<script" not in page and "<link" not in page and "<iframe" not in page
    assert not re.search(r'(src|href)="(https?:)?//', page), "the page would fetch something"
    assert "url(http" not in page and "@import" not in page


def test_html_report_of_a_wrong_export_names_the_diverging_module(wrong: Report) -> None:
    page = render_html(wrong)
    _no_outside_resources(page)
    assert '<span class="verdict fail" id="verdict">FAIL</span>' in page
    divergence = page[page.index('id="divergence"') :]
    assert "blocks.2.branch" in divergence[:2000] and "(Drift)" in divergence[:2000]
    assert "diverging.py:14" in divergence[:2000]  # the source line of Drift.forward
    assert "/model/blocks/blocks.2/branch/Mul" in divergence[:2000]
    # Validation per output and per case, and the error histogram of the output.
    assert "Per output (worst case)" in page and "Per case" in page
    assert page.count('<tr class="bad">') >= 3  # the output row, the case row, the tree row
    assert 'aria-label="output error histogram"' in page


@needs_dot
def test_html_report_graph_marks_the_diverging_module_and_node(wrong: Report) -> None:
    page = render_html(wrong)
    classes = _svg_classes(page)
    assert classes["node-/model/blocks/blocks.2/branch/Mul"] == "node in-diverging-module diverging"
    marked = [i for i, c in classes.items() if "in-diverging-module" in c]
    assert sorted(marked) == [
        "node-/model/blocks/blocks.2/branch/Constant",  # the 1.05 Drift multiplies by
        "node-/model/blocks/blocks.2/branch/Mul",
        "node-/model/blocks/blocks.2/branch/fc/Gemm",
    ]
    assert "drawn by graphviz dot" in page


def test_html_report_without_graphviz_says_so_and_keeps_the_rest(
    wrong: Report, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot here
    page = render_html(wrong)
    assert "Graph not drawn: Graphviz is not installed" in page
    assert "<svg" in page  # bars and histograms are exportkit's own
    assert not _svg_classes(page)
    for kept in ("blocks.2.branch", "Module tree", "Three-way parity", "output error histogram"):
        assert kept in page


@needs_dot
def test_html_report_of_a_right_export(right: Report) -> None:
    page = render_html(right)
    _no_outside_resources(page)
    assert 'id="verdict">PASS<' in page
    assert 'id="divergence"' not in page
    assert "in-diverging-module" not in page
    drawn = {i: c for i, c in _svg_classes(page).items() if i.startswith("node-")}
    assert len(drawn) == 3 and set(drawn.values()) == {"node"}  # Gemm, Relu, Gemm; none marked
    assert "<code>fc1</code>" in page and "<code>fc2</code>" in page  # the module tree


def test_summary_module_maps_torchscript_names_to_the_pytorch_module(wrong: Report) -> None:
    summary = wrong.summary
    node = "/model/blocks/blocks.2/branch/Mul"
    assert summary.find_module("blocks.2.branch", node) == "model.blocks.2.branch"
    assert summary.find_module("", node) == ""
    assert summary.find_module("blocks.2.branch") is None  # no such path without the node
    names = [n.name for n in summary.nodes_under("model.blocks.2.branch")]
    assert sorted(names) == [
        "/model/blocks/blocks.2/branch/Constant",
        "/model/blocks/blocks.2/branch/Mul",
        "/model/blocks/blocks.2/branch/fc/Gemm",
    ]


def test_graph_dot_quotes_names() -> None:
    from exportkit.summary.results import GraphSummary, NodeInfo, TensorInfo

    x = TensorInfo('x"1', "float32", (2, 3))
    y = TensorInfo("y\\z", "float32", (2, 3))
    node = NodeInfo('we"ird', "Relu", "", "", ('x"1',), (y,), 0, 0)
    summary = GraphSummary(
        "m.onnx", 10, {"": 20}, "", "g", 0, 0, (), (x,), (y,), (node,), (), "none",
        0, {}, 0, 0, {"Relu": 1}, (),
    )  # fmt: skip
    text = graph_dot(summary)
    assert '"in:x\\"1"' in text and 'id="node-we\\"ird"' in text and '"out:y\\\\z"' in text
    picture = draw_graph(summary)
    if picture.svg is not None:  # dot parsed it
        assert "we&quot;ird" in picture.svg


def test_markdown_report_reads_as_a_pull_request_comment(wrong: Report, right: Report) -> None:
    text = render_markdown(wrong)
    assert text.startswith("### exportkit ❌ FAIL: `")
    assert "| `output` | float32 |" in text and "❌ **FAIL** |" in text
    assert "**Where the export diverges:** `blocks.2.branch` (Drift) at `" in text
    assert "diverging.py:14`" in text
    assert "<details><summary>Stages and cases</summary>" in text
    ok = render_markdown(right)
    assert ok.startswith("### exportkit ✅ PASS") and "diverges" not in ok


def test_cli_writes_html_and_markdown_and_appends_the_step_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from exportkit.cli import main

    summary = tmp_path / "step_summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    spec = f"{MODELS}/diverging.py:BuggyBranch"
    code = main(
        ["export", spec, "-o", str(tmp_path / "bb.onnx"), "--exporter", "torchscript",
         "--simplifier", "none", "--no-sizes",
         "--html", str(tmp_path / "r.html"), "--markdown", str(tmp_path / "r.md"),
         "--junit", str(tmp_path / "junit.xml")]
    )  # fmt: skip
    assert code == 1  # the export is wrong, and the reports say where
    failures = ET.parse(tmp_path / "junit.xml").getroot().findall(".//failure")
    assert failures and all(
        "diverges  at blocks.2.branch (Drift, " in (f.text or "") for f in failures
    )
    page = (tmp_path / "r.html").read_text()
    assert 'id="verdict">FAIL<' in page and "blocks.2.branch" in page
    markdown = (tmp_path / "r.md").read_text()
    assert markdown.startswith("### exportkit ❌ FAIL") and "`blocks.2.branch` (Drift)" in markdown
    assert summary.read_text() == "earlier step\n" + markdown  # appended, never replaced
    # Bad input touches no file; a run that stops at a stage still tells the job summary why.
    assert main(["export", f"{MODELS}/diverging.py:Nope", "-o", str(tmp_path / "x.onnx")]) == 2
    assert summary.read_text() == "earlier step\n" + markdown
    hard = [f"{MODELS}/diverging.py:HardBatch", "--input", "x:3x4", "-o", str(tmp_path / "h.onnx")]
    assert main(["export", *hard]) == 3  # the model raises on its inputs
    tail = summary.read_text()[len("earlier step\n" + markdown) :]
    assert tail.startswith("### exportkit ❌ error: `") and "HardBatch.forward raised" in tail
    assert "> hint: " in tail


def test_check_html_has_the_graph_of_the_checked_file(right: Report, tmp_path: Path) -> None:
    assert right.output is not None
    spec = f"{ROOT}/examples/simple_net.py:SimpleNet"
    report = exportkit.check(right.output, spec, html=tmp_path / "check.html", sizes=False)
    assert report.passed and report.summary is None
    page = (tmp_path / "check.html").read_text()
    assert 'id="verdict">PASS<' in page and "Module tree" in page


def test_html_and_markdown_show_the_variants_matrix(tmp_path: Path) -> None:
    spec = f"{ROOT}/examples/simple_net.py:SimpleNet"
    report = exportkit.export(
        spec, path=tmp_path / "s.onnx", variants=("fp16",), latency_budget=0.0, **FAST
    )  # type: ignore[arg-type]
    assert [v.name for v in report.variants] == ["float", "fp16"]
    page = render_html(report)
    matrix = page[page.index('<pre id="variants">') :]
    assert "fp16" in matrix[: matrix.index("</pre>")]
    assert "```\nvariants" in render_markdown(report)


@needs_dot
def test_a_graph_too_large_to_draw_node_by_node_is_drawn_with_modules_folded(
    wrong: Report,
) -> None:
    summary = wrong.summary
    node = "/model/blocks/blocks.2/branch/Mul"
    module = summary.find_module("blocks.2.branch", node)
    full = draw_graph(summary, diverging_module=module, diverging_node=node)
    assert full.folded_at is None
    picture = draw_graph(summary, diverging_module=module, diverging_node=node, max_nodes=12)
    assert picture.svg is not None and picture.folded_at is not None
    classes = _svg_classes(picture.svg)
    drawn = {i: c for i, c in classes.items() if i.startswith("node-")}
    assert 1 < len(drawn) <= 12 < len(summary.nodes)
    red = [i for i, c in drawn.items() if "diverging" in c.split()]
    assert red == ["node-model.blocks.2"]  # the block holding the drifting branch
    assert "blocks.2" not in {i.removeprefix("node-") for i in drawn if i != red[0]}
    whole = draw_graph(summary, max_nodes=1)  # TorchScript names put everything under "model"
    boxes = [i for i in _svg_classes(whole.svg or "") if i.startswith("node-")]
    assert whole.folded_at == 1 and boxes == ["node-model"]
    none = draw_graph(summary, max_nodes=0)
    assert none.svg is None and "no module depth folds it to 0 boxes" in (none.missing or "")


def _rows(page: str, table_id: str) -> list[tuple[str, ...]]:
    """Each body row of the table ``table_id`` as a reader sees it: ``red`` when drawn as a
    failure (else ``""``), then the text of each cell."""
    table = page[page.index(f'<table id="{table_id}">') :]
    table = table[: table.index("</table>")]
    rows = re.findall(r"<tr( class=\"bad\")?>(.*?)</tr>", table)[1:]
    return [("red" if bad else "", *(html.unescape(re.sub("<[^>]+>", "", c))
             for c in re.findall(r"<td>(.*?)</td>", cells))) for bad, cells in rows]  # fmt: skip


def test_html_and_markdown_show_each_baseline_rule(right: Report) -> None:
    from dataclasses import replace

    from exportkit.diff.baseline import BaselineRule

    rules = (
        BaselineRule("contract", True, "same inputs and outputs"),
        BaselineRule(
            "drift", False, "logits: max abs diff 0.31 > tolerance | first differs in head"
        ),
        BaselineRule(
            "latency", True, "not measured: the baseline is a --json report", skipped=True
        ),
    )
    report = replace(right, baseline=rules, baseline_path="release/model.onnx")
    assert not report.passed
    page = render_html(report)
    assert 'id="verdict">FAIL<' in page
    section = page[page.index('<h2 id="baseline">') : page.index('<table id="baseline-rules">')]
    assert "release/model.onnx" in section and "1 of 3 rules fail" in section
    assert _rows(page, "baseline-rules") == [
        ("", "contract", "pass", "same inputs and outputs"),
        ("red", "drift", "FAIL", "logits: max abs diff 0.31 > tolerance | first differs in head"),
        ("", "latency", "skipped", "not measured: the baseline is a --json report"),
    ]
    text = render_markdown(report)
    assert "**Baseline** `release/model.onnx`: 1 of 3 rules fail" in text
    table = text[text.index("| rule | verdict | detail |") :].split("\n\n")[0].splitlines()
    assert table[2:] == [
        "| contract | ✅ pass | same inputs and outputs |",
        "| drift | ❌ **FAIL** | logits: max abs diff 0.31 > tolerance \\| first differs in head |",
        "| latency | ➖ skipped | not measured: the baseline is a --json report |",
    ]
    assert "Baseline" not in render_html(right) and "Baseline" not in render_markdown(right)
