"""The page exportkit serves opens on the diverging node: the script, and what marks the nodes."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

import onnx
import pytest

import exportkit
from exportkit.results import Report
from exportkit.viewer import annotate, report_findings, serve
from exportkit.viewer.focus import DIVERGES, IN_DIVERGING_MODULE, focus_script, with_inline_script
from tests.test_viewer import conv_model

ROOT = Path(__file__).parent.parent


def _page(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return str(answer.read().decode("utf-8"))


def _findings(page: str) -> dict[str, object]:
    match = re.search(r"const findings = (\{.*?\});", page)
    assert match, "no findings script in the page"
    return dict(json.loads(match.group(1).replace("<\\/", "</")))


@pytest.fixture(scope="module")
def wrong(tmp_path_factory: pytest.TempPathFactory) -> Report:
    out = tmp_path_factory.mktemp("wrong") / "BuggyBranch.onnx"
    return exportkit.export(
        f"{ROOT}/tests/models/diverging.py:BuggyBranch",
        path=out,
        exporter="torchscript",
        simplifier="none",
        sizes=False,
    )


def test_report_findings_mark_the_diverging_module_and_node(wrong: Report) -> None:
    _, nodes = report_findings(wrong)
    module = sorted(name for name, props in nodes.items() if IN_DIVERGING_MODULE in props)
    assert module == [
        "/model/blocks/blocks.2/branch/Constant",
        "/model/blocks/blocks.2/branch/Mul",
        "/model/blocks/blocks.2/branch/fc/Gemm",
    ]
    diverging = [name for name, props in nodes.items() if DIVERGES in props]
    assert diverging == ["/model/blocks/blocks.2/branch/Mul"]
    assert nodes[diverging[0]][IN_DIVERGING_MODULE].startswith("blocks.2.branch (Drift, ")


def test_served_page_opens_on_the_diverging_node(wrong: Report) -> None:
    assert wrong.output is not None
    model_props, node_props = report_findings(wrong)
    with serve(wrong.output, model_props=model_props, node_props=node_props) as view:
        findings = _findings(_page(view.url))
    assert findings["focus"] == "/model/blocks/blocks.2/branch/Mul"
    assert len(findings["module"]) == 3  # type: ignore[arg-type]


def test_an_annotated_file_opens_on_its_finding_and_a_clean_one_has_no_script(
    tmp_path: Path,
) -> None:
    clean = tmp_path / "clean.onnx"
    onnx.save(conv_model(), str(clean))
    with serve(clean) as view:
        assert "const findings" not in _page(view.url)
    marked = tmp_path / "marked.onnx"
    annotate(clean, marked, node_props={"/relu/Relu": {DIVERGES: "its output differs"}})
    with serve(marked) as view:
        page = _page(view.url)
    assert _findings(page) == {"focus": "/relu/Relu", "module": []}
    assert page.index("const findings") > page.index('<meta name="file"')  # after Netron's own


def test_node_names_cannot_close_the_script() -> None:
    script = focus_script({"</script><b>x": {DIVERGES: "d"}})
    assert "</script>" not in script


def test_the_script_is_allowed_by_the_page_policy_and_nothing_else() -> None:
    page = (
        '<head><meta http-equiv="Content-Security-Policy" content="script-src \'self\'; '
        "frame-src 'none'\"></head><body></body>"
    )
    out = with_inline_script(page, "let a = 1;")
    # sha256 of "let a = 1;", base64: the only inline script the page will run.
    assert (
        "script-src 'self' 'sha256-xY6QKfH9PRsQnLz56nj6MBwiK5oHg+im1Jkpdp1x/Ck='; frame-src 'none'"
        in out
    )
    assert out.endswith("<script>let a = 1;</script>\n</body>")
