"""Structure diff speed: ``exportkit.diff(a, b, numbers=False, weights=False)`` against loading
both files with ``onnx.load(path, load_external_data=False)``.

Two transformer stacks of about 10k nodes (summary_bench's generator, weights as external data,
or inside the files with ``--inline``), the second with one more layer. Goal: the diff within 2x the two bare loads. Also weights
compared (reads the external data) for scale, and the time per node across sizes (linear).

    python benchmarks/diff_bench.py [--sizes 1000,10000,30000] [--inline]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import onnx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from summary_bench import NODES_PER_LAYER, transformer  # noqa: E402

from exportkit.diff import diff  # noqa: E402
from exportkit.report.diff import render_json  # noqa: E402


def _median_time(fn: Callable[[], object], repeat: int) -> float:
    """Median CPU seconds of this process: the machine is shared, wall time is noisy."""
    times = []
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return statistics.median(times)


def _write(layers: int, path: Path, inline: bool) -> int:
    model = transformer(layers)
    if inline:
        onnx.save(model, str(path))
    else:
        onnx.save(model, str(path), save_as_external_data=True, location=path.name + ".data")
    return len(model.graph.node)


def _loads(a: Path, b: Path) -> None:
    onnx.load(str(a), load_external_data=False)
    onnx.load(str(b), load_external_data=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,30000")
    parser.add_argument(
        "--inline",
        action="store_true",
        help="weights inside the .onnx files (onnx.load parses them)",
    )
    args = parser.parse_args()
    print("CPU seconds, median; loads = onnx.load(A) + onnx.load(B) without external data;")
    print("diff = diff(A, B, numbers=False, weights=False) + render_json (goal: <= 2x loads)")
    print(f"{'nodes':>7} {'loads s':>8} {'diff s':>7} {'ratio':>6} {'diff us/node':>13} "
          f"{'+weights s':>11} {'changed':>8}")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="exportkit-diff-bench-") as tmp:
        for target in (int(s) for s in args.sizes.split(",")):
            layers = max(1, target // NODES_PER_LAYER)
            a, b = Path(tmp) / f"a{target}.onnx", Path(tmp) / f"b{target}.onnx"
            count = _write(layers, a, args.inline) + _write(layers + 1, b, args.inline)
            repeat = 5 if count <= 25_000 else 3
            result = diff(a, b, numbers=False, weights=False)  # warm imports and file cache
            loads = _median_time(lambda a=a, b=b: _loads(a, b), repeat)
            ours = _median_time(
                lambda a=a, b=b: render_json(diff(a, b, numbers=False, weights=False)), repeat
            )
            weighed = _median_time(lambda a=a, b=b: diff(a, b, numbers=False), 1)
            changed = len(result.structure.changed)
            print(f"{count // 2:>7,} {loads:>8.3f} {ours:>7.3f} {ours / loads:>6.2f} "
                  f"{ours / count * 1e6:>13.1f} {weighed:>11.3f} {changed:>8}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
