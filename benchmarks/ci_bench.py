"""`exportkit ci` throughput: models per minute at -j 1 and -j 2, whole processes.

A sample project of small models from examples/ and tests/models (each with every stage on:
dynamo export, onnxsim, validation at other sizes), run with --no-cache at each -j, then once more
from the cache. Throughput = models / wall minutes of the whole `exportkit ci` process.

    python benchmarks/ci_bench.py
    python benchmarks/ci_bench.py --jobs 1 2 4
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = """
[[tool.exportkit.models]]
spec = "models/simple_net.py:SimpleNet"
input = ["x:2x10"]

[[tool.exportkit.models]]
spec = "models/conv_net.py:ConvNet"
dynamic = ["batch"]

[[tool.exportkit.models]]
spec = "models/mlp.py:Net"
input = ["x:2x4"]
dynamic = ["batch"]

[[tool.exportkit.models]]
spec = "models/text_classifier.py:TextClassifier"

[[tool.exportkit.models]]
name = "mlp-wide"
spec = "models/mlp.py:Net(width=64)"
input = ["x:2x4"]
output = "onnx/mlp_wide.onnx"

[[tool.exportkit.models]]
spec = "models/recurrent.py:GRUEncoder"
input = ["x:5x2x8"]
"""
FILES = [
    "examples/simple_net.py",
    "examples/conv_net.py",
    "examples/text_classifier.py",
    "tests/models/mlp.py",
    "tests/models/recurrent.py",
]


def run(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(
            f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stdout[-3000:]}{proc.stderr[-2000:]}"
        )
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "project"
        (project / "models").mkdir(parents=True)
        for f in FILES:
            shutil.copy(ROOT / f, project / "models")
        (project / "pyproject.toml").write_text(CONFIG)
        count = CONFIG.count("[[tool.exportkit.models]]")
        env = {**os.environ, "EXPORTKIT_CACHE": str(Path(tmp) / "cache"), "PYTHONPATH": str(ROOT)}
        ci = [sys.executable, "-m", "exportkit", "ci", str(project)]
        print(f"{count} models; {os.cpu_count()} cores")
        print(f"{'run':<18} {'wall':>8} {'models/min':>10}")
        for jobs in args.jobs:
            seconds = run([*ci, "-j", str(jobs), "--no-cache"], env, project)
            print(f"{f'-j {jobs} --no-cache':<18} {seconds:7.1f}s {count / seconds * 60:10.1f}")
        run([*ci, "-j", str(max(args.jobs))], env, project)  # stores every model
        seconds = run([*ci, "-j", str(max(args.jobs))], env, project)
        print(f"{f'-j {max(args.jobs)} cached':<18} {seconds:7.1f}s {count / seconds * 60:10.1f}")
        print(f"(load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
