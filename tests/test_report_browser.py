"""In a real browser (Debian's chromium): the HTML report draws its graph with the diverging
module marked, and Netron's page opens on the diverging node. Screenshots go to tests/artifacts/
(docs/ holds copies for the README)."""

from __future__ import annotations

import base64
import html
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import exportkit
from exportkit.report.html import render_html
from exportkit.results import Report
from tests.chromium import Chromium, find_chromium

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parent.parent
ARTIFACTS = Path(__file__).parent / "artifacts"
SPEC = f"{ROOT}/tests/models/diverging.py:BuggyBranch"


@pytest.fixture(scope="module")
def chromium() -> Iterator[Chromium]:
    executable = find_chromium()
    if executable is None:
        pytest.skip("chromium is not installed (make browser installs it)")
    with Chromium(executable, width=1280, height=900) as browser:
        yield browser


@pytest.fixture(scope="module")
def wrong(tmp_path_factory: pytest.TempPathFactory) -> Report:
    """BuggyBranch through the whole pipeline, as a user runs it (dynamo, onnxsim)."""
    report = exportkit.export(SPEC, path=tmp_path_factory.mktemp("wrong") / "BuggyBranch.onnx")
    assert not report.passed
    return report


def _wait(browser: Chromium, session: str, expression: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = browser.evaluate(session, expression)
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"never true in the page: {expression}")


def _screenshot(browser: Chromium, session: str, path: Path, clip: dict[str, float]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    shot = browser.send(
        "Page.captureScreenshot",
        {"format": "png", "clip": {**clip, "scale": 1}, "captureBeyondViewport": True},
        session=session,
    )
    path.write_bytes(base64.b64decode(shot["data"]))


def test_html_report_opens_and_draws_the_graph(
    chromium: Chromium, wrong: Report, tmp_path: Path
) -> None:
    page = tmp_path / "report.html"
    page.write_text(render_html(wrong), encoding="utf-8")
    target = chromium.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = chromium.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
        "sessionId"
    ]
    metrics = {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False}
    chromium.send("Emulation.setDeviceMetricsOverride", metrics, session=session)
    chromium.send("Page.navigate", {"url": page.as_uri()}, session=session)
    _wait(
        chromium,
        session,
        "document.readyState === 'complete' && !!document.getElementById('graph')",
    )
    state = chromium.evaluate(
        session,
        """(() => {
          const svg = document.querySelector('#graph svg');
          const box = svg.getBBox();
          const nodes = Array.from(svg.querySelectorAll('g.node'));
          const marked = nodes.filter((g) => g.classList.contains('in-diverging-module'));
          const red = nodes.find((g) => g.classList.contains('diverging'));
          const shape = red.querySelector('path, polygon');
          const redBox = red.getBBox();
          return {
            verdict: document.getElementById('verdict').textContent,
            width: box.width, height: box.height, nodes: nodes.length,
            marked: marked.map((g) => g.id), red: red.id,
            fill: shape.getAttribute('fill'), redWidth: redBox.width,
            divergence: document.getElementById('divergence').nextElementSibling.innerText,
          };
        })()""",
    )
    assert state["verdict"] == "FAIL"
    assert state["width"] > 100 and state["height"] > 500 and state["nodes"] > 20
    assert state["red"] == f"node-{wrong.validation.divergence.onnx_node}"  # type: ignore[union-attr]
    assert state["fill"] == "#d62728" and state["redWidth"] > 20
    assert len(state["marked"]) >= 2  # Drift's Linear and its multiply
    assert "blocks.2.branch" in state["divergence"] and "diverging.py:" in state["divergence"]
    # The README's pictures: the top of the report, and the graph around the finding.
    _screenshot(
        chromium,
        session,
        ARTIFACTS / "html_report.png",
        {"x": 0, "y": 0, "width": 1280, "height": 1500},
    )
    top = chromium.evaluate(
        session,
        """(() => { const r = document.querySelector('#graph g.diverging').getBoundingClientRect();
                    return r.top + window.scrollY; })()""",
    )
    _screenshot(
        chromium, session, ARTIFACTS / "html_report_graph.png",
        {"x": 0, "y": max(0.0, top - 450), "width": 1280, "height": 800},
    )  # fmt: skip


def test_netron_opens_on_the_diverging_node(chromium: Chromium, wrong: Report) -> None:
    from exportkit.viewer import report_findings, serve

    assert wrong.output is not None and wrong.validation is not None
    diverging = wrong.validation.divergence
    assert diverging is not None and diverging.onnx_node
    model_props, node_props = report_findings(wrong)
    with serve(wrong.output, model_props=model_props, node_props=node_props) as view:
        session, page = chromium.load_netron(view.url)
        focus = _wait(chromium, session, "document.body.getAttribute('data-exportkit-focus')")
        assert focus == diverging.onnx_node
        sidebar = chromium._sidebar(session, "Node Properties")  # opened on it, no click needed
        state = chromium.evaluate(
            session,
            f"""(() => {{
              const node = document.getElementById('node-name-' + {json.dumps(diverging.onnx_node)});
              const r = node.getBoundingClientRect();
              const view = document.getElementById('target').getBoundingClientRect();
              return {{
                selected: node.classList.contains('select'),
                inView: r.top >= view.top && r.bottom <= view.bottom
                        && r.left >= view.left && r.right <= view.right,
                module: Array.from(document.querySelectorAll('.exportkit-module')).length,
                diverging: document.querySelectorAll('.exportkit-diverging').length,
              }};
            }})()""",
        )
        time.sleep(0.3)  # the sidebar's slide-in, for the picture
        chromium.screenshot(session, ARTIFACTS / "netron_diverging.png")
    assert sidebar["name"] == diverging.onnx_node
    assert "max abs diff" in sidebar["exportkit.diverges"]
    assert state["selected"] and state["inView"], state
    marked = [n for n, p in node_props.items() if "exportkit.in_diverging_module" in p]
    assert state["module"] == len(marked) >= 2 and state["diverging"] == 1
    assert "Gemm" in page.ops


def test_html_report_of_a_transformer_from_the_corpus(tmp_path: Path) -> None:
    """Tiny BERT (examples/tiny_bert, built offline from its config) through the pipeline: the
    page draws every encoder layer as a box of its own with its attention inside."""
    report = exportkit.export(
        f"hf:{ROOT}/examples/tiny_bert", path=tmp_path / "bert.onnx", dynamic=["batch"]
    )
    assert report.passed and report.summary is not None
    page = render_html(report)
    assert 'id="verdict">PASS<' in page and "Graph not drawn" not in page
    drawn = html.unescape(page)  # dot writes "-" in ids as &#45;
    for layer in ("0", "1"):
        assert f'<g id="module-encoder.layer.{layer}" class="cluster">' in drawn
        assert f'<g id="module-encoder.layer.{layer}.attention" class="cluster">' in drawn
    assert "<code>embeddings</code>" in page and "BertEmbeddings" in page  # the module tree
    assert page.count('class="node"') > 50
