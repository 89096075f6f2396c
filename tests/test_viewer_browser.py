"""Netron's page in a real browser (Debian's chromium): the graph is drawn, with shapes and findings.

Screenshots go to tests/artifacts/ (``make browser`` installs chromium; these tests are slow).
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import onnx
import pytest
import torch
from onnx import numpy_helper

from exportkit.viewer import serve, serve_files
from tests.chromium import Chromium, NetronOutdatedError, find_chromium
from tests.test_viewer_cli import ROOT, ViewProcess

pytestmark = pytest.mark.slow

ARTIFACTS = Path(__file__).parent / "artifacts"
SHAPE_LABEL = re.compile(r"^(\w+|\d+)(×(\w+|\d+))+$")  # Netron's edge labels: 2×16×32×32

# Moves the page's clock a year ahead: Netron's page then refuses to draw, as it will once the
# installed netron release is more than 180 days old.
A_YEAR_LATER = """(() => {
  const Real = Date;
  const shift = 365 * 24 * 3600 * 1000;
  class Later extends Real {
    constructor(...args) { if (args.length === 0) { super(Real.now() + shift); } else { super(...args); } }
    static now() { return Real.now() + shift; }
  }
  window.Date = Later;
})()"""


@pytest.fixture(scope="module")
def chromium() -> Iterator[Chromium]:
    executable = find_chromium()
    if executable is None:
        pytest.skip("chromium is not installed (make browser installs it)")
    with Chromium(executable, width=1400, height=900) as browser:
        yield browser


def conv_net() -> torch.nn.Module:
    import importlib.util

    spec = importlib.util.spec_from_file_location("conv_net", ROOT / "examples" / "conv_net.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ConvNet().eval()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def exported_cnn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled CNN example, exported by torch's dynamo exporter (weights in a .data file)."""
    path = tmp_path_factory.mktemp("cnn") / "conv_net.onnx"
    torch.manual_seed(0)
    torch.onnx.export(
        conv_net(), (torch.randn(2, 3, 64, 64),), str(path), dynamo=True, verbose=False
    )
    assert path.with_name("conv_net.onnx.data").is_file()
    return path


def test_netron_draws_exported_cnn_with_shapes_and_findings(
    chromium: Chromium, exported_cnn: Path
) -> None:
    model_proto = onnx.load(str(exported_cnn))  # with its weights, to compare what Netron shows
    conv = next(node for node in model_proto.graph.node if node.op_type == "Conv")
    first_conv = conv.name
    weights = {t.name: numpy_helper.to_array(t) for t in model_proto.graph.initializer}
    with serve(
        exported_cnn,
        model_props={"exportkit.verdict": "pass", "exportkit.max_abs_diff": "head: 2.1e-06"},
        node_props={first_conv: {"exportkit.note": "checked"}},
    ) as view:
        session, page = chromium.load_netron(view.url)
        chromium.screenshot(session, ARTIFACTS / "netron_conv_net.png")
        assert "default" in page.classes
        assert page.ops.count("Conv") >= 9  # stem, 8 block convs, down
        assert {"Relu", "Add", "Gemm"} <= set(page.ops)
        assert any(SHAPE_LABEL.match(label) for label in page.edge_labels), page.edge_labels
        assert "2×16×32×32" in page.edge_labels  # the stem's output
        model = chromium.model_properties(session)
        assert model["exportkit.verdict"] == "pass"
        assert model["exportkit.max_abs_diff"] == "head: 2.1e-06"
        node = chromium.node_properties(session, "Conv")
        assert node["name"] == first_conv
        assert node["exportkit.note"].lstrip("+") == "checked"
        assert "pkg.torch.onnx.name_scopes" in node  # the module hierarchy is shown
        # Netron fetched the external weights from /data/conv_net.onnx.data and shows them.
        shown = chromium.expand_argument(session, "W")
        assert "location: conv_net.onnx.data" in shown
        first = float(re.findall(r"-?\d+\.\d+(?:e-?\d+)?", shown.split("\n[", 1)[1])[0])
        assert first == pytest.approx(float(weights[conv.input[1]].flat[0]), abs=1e-7)
        chromium.screenshot(session, ARTIFACTS / "netron_node_weights.png")


def test_shapes_are_drawn_for_an_export_that_stores_none(
    chromium: Chromium, tmp_path: Path
) -> None:
    # The TorchScript exporter stores no intermediate shapes; exportkit's copy has them.
    path = tmp_path / "conv_net_ts.onnx"
    torch.onnx.export(conv_net(), (torch.randn(2, 3, 64, 64),), str(path), dynamo=False)
    assert len(onnx.load(str(path)).graph.value_info) == 0
    with serve_files({path.name: path}, path.name) as raw:
        _, as_is = chromium.load_netron(raw.url)
    with serve(path) as view:
        session, viewed = chromium.load_netron(view.url)
        chromium.screenshot(session, ARTIFACTS / "netron_torchscript_shapes.png")
    assert as_is.ops == viewed.ops and "Conv" in viewed.ops
    inner = [label for label in viewed.edge_labels if label not in as_is.edge_labels]
    assert "2×16×32×32" in inner, (as_is.edge_labels, viewed.edge_labels)


def test_an_outdated_netron_is_caught(chromium: Chromium, exported_cnn: Path) -> None:
    with serve(exported_cnn) as view, pytest.raises(NetronOutdatedError, match="upgrade"):
        chromium.load_netron(view.url, before=A_YEAR_LATER)


def test_view_command_shows_the_pipeline_findings(chromium: Chromium, tmp_path: Path) -> None:
    """`exportkit view examples/conv_net.py:ConvNet`, as a user runs it; the README screenshot."""
    out = tmp_path / "out" / "conv_net.onnx"
    view = ViewProcess(
        [f"{ROOT / 'examples' / 'conv_net.py'}:ConvNet", "-o", str(out), "--no-browser"]
    )
    try:
        session, page = chromium.load_netron(view.url)
        assert "Conv" in page.ops
        model = chromium.model_properties(session)
        chromium.screenshot(session, ARTIFACTS / "netron_view.png")
        assert model["exportkit.verdict"] == "pass"
        assert re.fullmatch(r"\w+: [0-9.e+-]+", model["exportkit.max_abs_diff"])
        assert model["exportkit.exporter"] in ("dynamo", "torchscript")
        _, err = view.rest(signal.SIGTERM)
        assert view.process.returncode == 0, err
    finally:
        view.kill()


def test_view_of_a_mismatch_marks_the_diverging_node(chromium: Chromium, tmp_path: Path) -> None:
    """A model that computes something else while exported: Netron shows where it diverges."""
    view = ViewProcess(
        [
            f"{ROOT / 'tests' / 'models' / 'broken.py'}:ExportDrift",
            "--input",
            "x:2x4",
            "-o",
            str(tmp_path / "drift.onnx"),
            "--no-browser",
        ]
    )
    try:
        session, _ = chromium.load_netron(view.url)
        # The page opens on the diverging node by itself (exportkit.viewer.focus); wait for that
        # before opening the model's sidebar, or the focus would replace it.
        deadline = time.monotonic() + 15
        focus = None
        while focus is None and time.monotonic() < deadline:
            focus = chromium.evaluate(session, "document.body.getAttribute('data-exportkit-focus')")
            time.sleep(0.05)
        assert focus, "the page did not open on the diverging node"
        model = chromium.model_properties(session)
        assert model["exportkit.verdict"] == "mismatch"
        assert "ExportDrift" in model["exportkit.first_diverging_module"]
        node = chromium.node_properties(session, "Mul")
        chromium.screenshot(session, ARTIFACTS / "netron_mismatch.png")
        assert "max abs diff" in node["exportkit.diverges"]
        _, err = view.rest(signal.SIGTERM)
        assert view.process.returncode == 1, err  # the verdict, after a clean stop
    finally:
        view.kill()
