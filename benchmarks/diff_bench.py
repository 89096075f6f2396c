"""Structure diff speed: ``exportkit.diff(a, b, numbers=False, weights=False)`` against loading
both files with ``onnx.load``.

Two transformer stacks (summary_bench's generator), the second with one more layer, stored with
external weight data and with weights inline, without stored shapes (as TorchScript exports and
simplified files come) and with every value's shape stored (as dynamo exports come: the diff
then skips ONNX's shape inference). Issue 12's goal: the diff within 2x of loading both
"with onnx.load (structure only)". Two baselines are printed, with the ratio against each:

- ``load``: ``onnx.load(path)`` as users call it (it reads the external data too);
- ``struct``: ``onnx.load(path, load_external_data=False)``, the protobuf only.

For inline files the two are the same work (the weights are in the protobuf). The floors show
what any Python pass over the nodes costs on top of ``struct``: reading each node's ``op_type``,
and reading each node's metadata (where the module hierarchy lives). Also weights compared
(reads the external data) for scale, and the time per node across sizes (linear).

    python benchmarks/diff_bench.py [--sizes 10000,30000] [--storage external,inline,external+shapes,inline+shapes]
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


def _write(layers: int, path: Path, inline: bool, shapes: bool = False) -> int:
    model = transformer(layers)
    if shapes:  # every value's shape stored, as the dynamo exporter writes files
        model = onnx.shape_inference.infer_shapes(model)
    if inline:
        onnx.save(model, str(path))
    else:
        onnx.save(model, str(path), save_as_external_data=True, location=path.name + ".data")
    return len(model.graph.node)


def _loads(a: Path, b: Path, external: bool) -> None:
    onnx.load(str(a), load_external_data=external)
    onnx.load(str(b), load_external_data=external)


def _floor(a: Path, b: Path, metadata: bool) -> None:
    """Structure-only loads plus the cheapest Python pass a structure diff cannot skip."""
    for path in (a, b):
        graph = onnx.load(str(path), load_external_data=False).graph
        if metadata:
            for node in graph.node:
                for prop in node.metadata_props:
                    _ = prop.key, prop.value
        else:
            for node in graph.node:
                _ = node.op_type


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,30000")
    parser.add_argument(
        "--storage",
        default="external,inline,external+shapes,inline+shapes",
        help="+shapes: every value's shape stored in the file, as dynamo exports carry them",
    )
    args = parser.parse_args()
    print("CPU seconds, median. load = onnx.load(A) + onnx.load(B) as users call it; struct = the")
    print("same with load_external_data=False; diff = diff(A, B, numbers=False, weights=False) +")
    print("render_json (goal: <= 2x); floors = struct + a loop reading each node's op_type / its")
    print("metadata_props")
    print(f"{'storage':>14} {'nodes':>7} {'load s':>7} {'struct s':>8} {'diff s':>7} "
          f"{'/load':>6} {'/struct':>7} {'floor op s':>10} {'floor meta s':>12} "
          f"{'us/node':>8} {'+weights s':>10}")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="exportkit-diff-bench-") as tmp:
        for storage in args.storage.split(","):
            inline, shapes = storage.startswith("inline"), storage.endswith("+shapes")
            for target in (int(s) for s in args.sizes.split(",")):
                layers = max(1, target // NODES_PER_LAYER)
                a, b = Path(tmp) / f"a{target}.onnx", Path(tmp) / f"b{target}.onnx"
                count = _write(layers, a, inline, shapes) + _write(layers + 1, b, inline, shapes)
                repeat = 5 if count <= 25_000 else 3
                diff(a, b, numbers=False, weights=False)  # warm imports and file cache
                load = _median_time(lambda a=a, b=b: _loads(a, b, True), repeat)
                struct = _median_time(lambda a=a, b=b: _loads(a, b, False), repeat)
                ours = _median_time(
                    lambda a=a, b=b: render_json(diff(a, b, numbers=False, weights=False)), repeat
                )
                op = _median_time(lambda a=a, b=b: _floor(a, b, False), repeat)
                meta = _median_time(lambda a=a, b=b: _floor(a, b, True), repeat)
                weighed = _median_time(lambda a=a, b=b: diff(a, b, numbers=False), 1)
                print(f"{storage:>14} {count // 2:>7,} {load:>7.3f} {struct:>8.3f} {ours:>7.3f} "
                      f"{ours / load:>6.2f} {ours / struct:>7.1f} {op:>10.3f} {meta:>12.3f} "
                      f"{ours / count * 1e6:>8.1f} {weighed:>10.3f}")  # fmt: skip
                for path in Path(tmp).iterdir():
                    path.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
