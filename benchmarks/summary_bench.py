"""Graph-summary speed and memory, measured side by side.

Prints, for deep transformer stacks of about 1k, 10k and 50k nodes built with onnx.helper:
``exportkit summary --format json`` work (summarize + render_json, in-process) against the bare
``onnx.load(path, load_external_data=False)`` + ``onnx.shape_inference.infer_shapes`` of the
same file (goal: ratio <= 1.5), time per node across sizes (goal: linear), and the same two
paths plus ``polygraphy inspect model`` as whole CLI processes when polygraphy can be installed
in a throwaway venv (goal: faster than polygraphy). Then a 2.4 GB external-data model: peak RSS
of ``exportkit summary`` in a subprocess (goal: < 300 MB).

    python benchmarks/summary_bench.py [--sizes 1000,10000,50000] [--big-gb 2.4] [--no-polygraphy]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import venv
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from exportkit.report.summary import render_json  # noqa: E402
from exportkit.summary import summarize  # noqa: E402

NODES_PER_LAYER = 21
HIDDEN, SEQ, HEADS = 64, 128, 4


def _meta(node: onnx.NodeProto, scopes: list[str], classes: list[str]) -> onnx.NodeProto:
    helper.set_metadata_props(
        node,
        {
            "pkg.torch.onnx.name_scopes": repr(["", *scopes, node.name]),
            "pkg.torch.onnx.class_hierarchy": repr(["model.Transformer", *classes, "aten.op"]),
        },
    )
    return node


def transformer(layers: int) -> onnx.ModelProto:
    """A pre-norm transformer stack with dynamo-style metadata and no stored shapes."""
    rng = np.random.default_rng(0)
    inits: list[onnx.TensorProto] = []
    nodes: list[onnx.NodeProto] = []

    def w(name: str, *shape: int) -> str:
        inits.append(numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name))
        return name

    head = HIDDEN // HEADS
    split = numpy_helper.from_array(np.array([1, SEQ, HEADS, head], dtype=np.int64), "split_shape")
    merge = numpy_helper.from_array(np.array([1, SEQ, HIDDEN], dtype=np.int64), "merge_shape")
    scale = numpy_helper.from_array(np.array(head**0.5, dtype=np.float32), "scale")
    inits += [split, merge, scale]
    x = "x"
    for i in range(layers):
        p = f"layers.{i}"
        blk, att, mlp = [p], [p, f"{p}.attn"], [p, f"{p}.mlp"]
        cb, ca, cm = (
            ["model.Block"],
            ["model.Block", "model.Attention"],
            ["model.Block", "model.MLP"],
        )

        def n(
            op: str, ins: list[str], scope: list[str], cls: list[str], p: str = p, **kw: object
        ) -> str:
            out = f"{p}/{op}_{len(nodes)}"
            nodes.append(_meta(helper.make_node(op, ins, [out], name=f"n{len(nodes)}", **kw),
                               scope, cls))  # fmt: skip
            return out

        h = n("LayerNormalization", [x, w(f"{p}.ln1.w", HIDDEN), w(f"{p}.ln1.b", HIDDEN)],
              [*blk, f"{p}.ln1"], [*cb, "torch.nn.LayerNorm"], axis=-1)  # fmt: skip
        heads = []
        for proj in "qkv":
            t = n("MatMul", [h, w(f"{p}.attn.{proj}.weight", HIDDEN, HIDDEN)], att, ca)
            t = n("Reshape", [t, "split_shape"], att, ca)
            heads.append(n("Transpose", [t], att, ca, perm=[0, 2, 1, 3]))
        q, k, v = heads
        kt = n("Transpose", [k], att, ca, perm=[0, 1, 3, 2])
        s = n("MatMul", [q, kt], att, ca)
        s = n("Div", [s, "scale"], att, ca)
        s = n("Softmax", [s], att, ca, axis=-1)
        o = n("MatMul", [s, v], att, ca)
        o = n("Transpose", [o], att, ca, perm=[0, 2, 1, 3])
        o = n("Reshape", [o, "merge_shape"], att, ca)
        o = n("MatMul", [o, w(f"{p}.attn.out.weight", HIDDEN, HIDDEN)], att, ca)
        x = n("Add", [x, o], blk, cb)
        h = n("MatMul", [x, w(f"{p}.mlp.fc1.weight", HIDDEN, 4 * HIDDEN)], mlp, cm)
        h = n("Relu", [h], mlp, cm)
        h = n("MatMul", [h, w(f"{p}.mlp.fc2.weight", 4 * HIDDEN, HIDDEN)], mlp, cm)
        x = n("Add", [x, h], blk, cb)
    nodes.append(helper.make_node("Identity", [x], ["y"], name="out"))
    graph = helper.make_graph(
        nodes,
        "transformer",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, SEQ, HIDDEN])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, SEQ, HIDDEN])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    return model


def _median_time(fn: Callable[[], object], repeat: int) -> float:
    """Median CPU seconds of this process: the machine is shared, wall time is noisy."""
    times = []
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return statistics.median(times)


def _baseline(path: Path) -> None:
    model = onnx.load(str(path), load_external_data=False)
    onnx.shape_inference.infer_shapes(model)


def _ours(path: Path) -> None:
    render_json(summarize(path))


def _cli_time(argv: list[str], repeat: int) -> float:
    """Median CPU seconds (user + sys) of a whole child process."""
    times = []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        times.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(times)


def _polygraphy(tmp: Path) -> Path | None:
    """polygraphy (and the same onnx) in a throwaway venv: never one of the project's deps."""
    env_dir = Path(tempfile.gettempdir()) / "exportkit-bench-polygraphy"
    exe = env_dir / "bin" / "polygraphy"
    python = env_dir / "bin" / "python"
    if exe.exists() and subprocess.run([str(python), "-c", "import onnx"]).returncode == 0:
        return exe
    try:
        venv.create(env_dir, with_pip=True)
        packages = ["polygraphy", f"onnx=={onnx.__version__}", "numpy"]
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *packages],
            check=True,
            capture_output=True,
        )
    except (subprocess.CalledProcessError, OSError) as exc:
        print(f"  polygraphy: could not install in a throwaway venv ({exc}); skipped")
        shutil.rmtree(env_dir, ignore_errors=True)
        return None
    return exe if exe.exists() else None


def bench_sizes(sizes: list[int], tmp: Path, polygraphy: bool) -> None:
    print("in-process CPU seconds, median; baseline = onnx.load(no external data) + infer_shapes,")
    print("summary = summarize() + render_json(); us/node to show how each grows, and for")
    print("summarize(infer=False) + render_json(): exportkit's own work without ONNX's inference")
    print(f"{'nodes':>7} {'baseline s':>11} {'summary s':>10} {'ratio':>6} "
          f"{'base us/node':>13} {'summary us/node':>16} {'no-infer us/node':>17}")  # fmt: skip
    cli_rows = []
    poly = _polygraphy(tmp) if polygraphy else None
    for target in sizes:
        layers = max(1, target // NODES_PER_LAYER)
        path = tmp / f"stack_{target}.onnx"
        model = transformer(layers)
        onnx.save(model, str(path))
        count = len(model.graph.node)
        del model
        repeat = 5 if count <= 20_000 else 3
        _ours(path)  # warm the file cache and imports
        base = _median_time(lambda p=path: _baseline(p), repeat)
        ours = _median_time(lambda p=path: _ours(p), repeat)
        own = _median_time(lambda p=path: render_json(summarize(p, infer=False)), repeat)
        print(
            f"{count:>7,} {base:>11.3f} {ours:>10.3f} {ours / base:>6.2f} "
            f"{base / count * 1e6:>13.1f} {ours / count * 1e6:>16.1f} {own / count * 1e6:>17.1f}"
        )
        if count >= 10_000:
            py = sys.executable
            base_code = (
                "import sys, onnx; m = onnx.load(sys.argv[1], load_external_data=False); "
                "onnx.shape_inference.infer_shapes(m)"
            )
            row = {
                "nodes": count,
                "bare onnx": _cli_time([py, "-c", base_code, str(path)], 3),
                "exportkit": _cli_time(
                    [py, "-m", "exportkit", "summary", str(path), "--format", "json"], 3
                ),
            }
            if poly is not None:
                row["polygraphy"] = _cli_time([str(poly), "inspect", "model", str(path),
                                               "--show", "layers"], 3)  # fmt: skip
            cli_rows.append(row)
        path.unlink()
    if cli_rows:
        print("\nwhole processes (python start + imports + work), CPU seconds, median of 3:")
        for row in cli_rows:
            parts = [f"{k} {v:.2f} s" for k, v in row.items() if k != "nodes"]
            ratio = ""
            if "polygraphy" in row:
                ratio = f"  (exportkit/polygraphy {row['exportkit'] / row['polygraphy']:.2f})"
            print(f"  {row['nodes']:>7,} nodes: " + ", ".join(parts) + ratio)


def write_big_model(path: Path, gigabytes: float) -> int:
    """An MLP whose weights (external data) total ``gigabytes``, written in chunks."""
    side = 8192  # one 8192x8192 float32 matrix is 268 MB
    per = side * side * 4
    layers = max(1, round(gigabytes * 1e9 / per))
    data_name = path.name + ".data"
    chunk = np.random.default_rng(0).standard_normal(side * 1024).astype(np.float32).tobytes()
    inits, nodes = [], []
    x = "x"
    with (path.parent / data_name).open("wb") as f:
        for i in range(layers):
            offset = f.tell()
            for _ in range(side // 1024):
                f.write(chunk)
            t = TensorProto(
                name=f"layers.{i}.weight", data_type=TensorProto.FLOAT, dims=[side, side]
            )
            t.data_location = TensorProto.EXTERNAL
            for k, v in (("location", data_name), ("offset", str(offset)), ("length", str(per))):
                t.external_data.add(key=k, value=v)
            inits.append(t)
            nodes.append(
                helper.make_node("MatMul", [x, t.name], [f"h{i}"], name=f"/layers.{i}/MatMul")
            )
            nodes.append(helper.make_node("Relu", [f"h{i}"], [f"r{i}"], name=f"/layers.{i}/Relu"))
            x = f"r{i}"
    graph = helper.make_graph(
        nodes, "big",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", side])],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, ["batch", side])],
        inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.save(model, str(path))
    return layers * per


# VmHWM: peak resident memory of this process image (ru_maxrss would carry the benchmark's
# own peak over fork+exec).
_HWM = "int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1])"
_RSS_CODE = f"""
import sys, io, contextlib
from exportkit.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    code = main(["summary", sys.argv[1], "--format", "json", "--dim", "batch=1"])
print(code, {_HWM})
"""


def bench_big(tmp: Path, gigabytes: float) -> None:
    path = tmp / "big.onnx"
    t0 = time.perf_counter()
    total = write_big_model(path, gigabytes)
    print(f"\nexternal-data model: {total / 1e9:.2f} GB of weights written in "
          f"{time.perf_counter() - t0:.1f} s")  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _RSS_CODE, str(path)], capture_output=True,
                         text=True, check=True, env=env).stdout.split()  # fmt: skip
    wall = time.perf_counter() - t0
    print(
        f"  exportkit summary --format json: exit {out[0]}, {wall:.2f} s, "
        f"peak RSS {int(out[1]) / 1024:.0f} MB (goal < 300 MB)"
    )
    base = subprocess.run(
        [sys.executable, "-c", f"import onnx; print({_HWM})"], capture_output=True, text=True
    )
    print(f"  (python with onnx imported peaks at {int(base.stdout) / 1024:.0f} MB)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,50000")
    parser.add_argument("--big-gb", type=float, default=2.4, help="0 skips the big model")
    parser.add_argument("--no-polygraphy", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="exportkit-bench-") as tmp:
        bench_sizes([int(s) for s in args.sizes.split(",")], Path(tmp), not args.no_polygraphy)
        if args.big_gb > 0:
            bench_big(Path(tmp), args.big_gb)
    return 0


if __name__ == "__main__":
    sys.exit(main())
