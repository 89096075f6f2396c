"""How long the HTML report's graph picture takes, and the renderer it was chosen over.

For transformer stacks of growing size (built with onnx.helper, dynamo-style module metadata,
21 nodes a layer), prints: Graphviz ``dot`` laying out and drawing the graph as SVG
(``draw_graph``, what ``--html`` uses) and the SVG's size, and, for comparison, Netron's own
page in headless chromium (start the browser, load the page, wait until the graph is drawn):
the other maintained renderer the issue names. Past ``MAX_NODES`` nodes, modules are folded into
one box each at the deepest depth that fits (the ``folded`` column).

    python benchmarks/report_bench.py [--layers 2,12,48,64,72,200] [--no-chromium]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import onnx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from summary_bench import NODES_PER_LAYER, transformer  # noqa: E402

from exportkit.report.graph import draw_graph  # noqa: E402
from exportkit.summary import summarize  # noqa: E402


def _median(fn: object, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _netron_seconds(path: Path) -> float | None:
    """Chromium started, Netron's page loaded and drawn: what a Netron-rendered picture costs."""
    from exportkit.viewer import serve
    from tests.chromium import Chromium, find_chromium

    executable = find_chromium()
    if executable is None:
        return None
    start = time.perf_counter()
    with serve(path) as view, Chromium(executable) as browser:
        browser.load_netron(view.url, timeout=300)
    return time.perf_counter() - start


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--layers", default="2,12,48,64,72,200")
    parser.add_argument("--no-chromium", action="store_true")
    args = parser.parse_args(argv)
    print(
        f"{'layers':>6} {'nodes':>6} {'dot svg':>9} {'svg KB':>7} {'folded':>7} "
        f"{'netron+chromium':>16}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for layers in (int(x) for x in args.layers.split(",")):
            path = Path(tmp) / f"t{layers}.onnx"
            onnx.save(transformer(layers), str(path))
            summary = summarize(path)
            picture = draw_graph(summary, diverging_module="layers.0")
            if picture.svg is None:
                print(f"{layers:>6} {len(summary.nodes):>6}  not drawn: {picture.missing}")
                continue
            dot = _median(lambda s=summary: draw_graph(s, diverging_module="layers.0"))
            folded = "-" if picture.folded_at is None else f"depth {picture.folded_at}"
            netron = None if args.no_chromium or picture.folded_at else _netron_seconds(path)
            shown = "-" if netron is None else f"{netron:.2f} s"
            print(
                f"{layers:>6} {len(summary.nodes):>6} {dot:>7.2f} s {len(picture.svg) / 1e3:>7.0f} "
                f"{folded:>7} {shown:>16}"
            )
    print(
        f"({NODES_PER_LAYER} nodes a layer; {picture.renderer or 'no dot'}; medians of 3 for dot)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
