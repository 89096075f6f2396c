"""Preparing the viewed copy of a model with large external weights: time and peak memory.

Side by side, each in a fresh process:
  exportkit  prepare_view(): graph read without weights, shapes inferred, graph-only copy written
  naive      onnx.load() with weights, infer_shapes, save (what a straightforward viewer does)

The weights are a sparse file of zeros, so the benchmark needs no disk space.

    python benchmarks/view_prepare.py            # 0.5 GiB of weights
    python benchmarks/view_prepare.py --gib 3    # past 2 GiB the naive way cannot save at all
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

MEASURE = """
import json, resource, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[3])
path, how = Path(sys.argv[1]), sys.argv[2]
import onnx
from exportkit.viewer import prepare_view
start = time.perf_counter()  # imports excluded
error = None
if how == "exportkit":
    out = path.parent / "view"
    out.mkdir(exist_ok=True)
    prepare_view(path, out, model_props={"exportkit.verdict": "pass"})
else:
    try:
        model = onnx.load(str(path))
        model = onnx.shape_inference.infer_shapes(model)
        onnx.save(model, str(path.parent / "naive.onnx"), save_as_external_data=True,
                  location="naive.onnx.data")
    except Exception as exc:
        error = f"{type(exc).__name__}: {str(exc)[:80]}"
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "error": error}))
"""


def make_model(folder: Path, gib: float) -> Path:
    """A 4-layer MLP whose weights (``gib`` GiB in total) live in one sparse data file."""
    import onnx
    from onnx import TensorProto, helper

    width = int((gib * 1024**3 / 4 / 4) ** 0.5)
    nodes, initializers = [], []
    offset, name = 0, "x"
    for i in range(4):
        weight = onnx.TensorProto(name=f"w{i}", data_type=TensorProto.FLOAT, dims=[width, width])
        weight.data_location = TensorProto.EXTERNAL
        length = width * width * 4
        for key, value in (("location", "big.onnx.data"), ("offset", offset), ("length", length)):
            weight.external_data.add(key=key, value=str(value))
        offset += length
        initializers.append(weight)
        nodes.append(helper.make_node("MatMul", [name, f"w{i}"], [f"h{i}"], name=f"mm{i}"))
        nodes.append(helper.make_node("Relu", [f"h{i}"], [f"r{i}"], name=f"relu{i}"))
        name = f"r{i}"
    graph = helper.make_graph(
        nodes,
        "big",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", width])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, None)],
        initializers,
    )
    path = folder / "big.onnx"
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path.write_bytes(model.SerializeToString())
    with (folder / "big.onnx.data").open("wb") as data:
        data.truncate(offset)
    return path


def measure(path: Path, how: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, str(path), how, str(ROOT)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=0.5, help="size of the weights in GiB")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = make_model(Path(tmp), args.gib)
        size = (Path(tmp) / "big.onnx.data").stat().st_size / 1024**3
        print(f"model: 4 MatMul layers, {size:.2f} GiB of external weights")
        rows = {how: measure(path, how) for how in ("exportkit", "naive")}
    print(f"{'':10} {'seconds':>8} {'peak MiB':>9}  note")
    for how, row in rows.items():
        note = row["error"] or ""
        print(f"{how:10} {row['seconds']:8.3f} {row['peak_mib']:9.0f}  {note}")
    ours, naive = rows["exportkit"], rows["naive"]
    print(
        f"ratio naive/exportkit: time {float(naive['seconds']) / float(ours['seconds']):.0f}x, "
        f"peak memory {float(naive['peak_mib']) / float(ours['peak_mib']):.1f}x"
    )


if __name__ == "__main__":
    main()
