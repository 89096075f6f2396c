"""A repeat of an unchanged export: the cached run against the full one, whole processes.

For each model, in a fresh cache folder: one `exportkit export` that runs every stage (and stores
the result), then repeats that restore it from the cache, and repeats of `exportkit view
--no-browser` timed until the Netron URL is printed. Wall time includes Python's start-up and
every import; CPU is the process's user + system time (on a loaded machine the honest figure).
The goal: a cached export and a cached view's URL each under 1 s.

    python benchmarks/cache_bench.py             # simple_net, conv_net, tiny_bert
    python benchmarks/cache_bench.py --repeat 5
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = {
    "simple_net": ["examples/simple_net.py:SimpleNet", "--input", "x:2x10"],
    "conv_net": ["examples/conv_net.py:ConvNet", "--dynamic", "batch"],
    "tiny_bert": ["hf:examples/tiny_bert"],
}
HEAVY = ("torch", "onnxruntime", "onnxsim", "onnxslim")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, str]:
    """Wall and CPU seconds of one whole process, and its stderr."""
    cpu, start = _cpu(), time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    return wall, _cpu() - cpu, proc.stderr


def _proc_cpu(pid: int) -> float:
    """User + system seconds a running process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def view_url(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Wall and CPU seconds until `exportkit view` prints the Netron URL; then it is stopped."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            if line.startswith("Netron: http"):
                return time.perf_counter() - start, _proc_cpu(proc.pid)
        raise SystemExit(f"{' '.join(argv)}: no Netron URL")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("models", nargs="*", default=list(MODELS))
    args = parser.parse_args()
    exe = [sys.executable, "-m", "exportkit"]
    print(
        f"{'model':<11} {'full wall':>9} {'full cpu':>8} {'cached wall':>11} {'cached cpu':>10}"
        f" {'view URL':>8} {'URL cpu':>7}  heavy imports when cached"
    )
    for name in args.models:
        with tempfile.TemporaryDirectory() as tmp:
            env = {
                **os.environ,
                "EXPORTKIT_CACHE": str(Path(tmp) / "cache"),
                "PYTHONPATH": str(ROOT),
            }
            env["HF_HUB_OFFLINE"] = "1"
            out = ["-o", str(Path(tmp) / name / f"{name}.onnx")]
            export = [*exe, "export", *MODELS[name], *out]
            full_wall, full_cpu, _ = timed(export, env, ROOT)
            walls, cpus = [], []
            heavy: set[str] = set()
            for _ in range(args.repeat):
                wall, cpu, err = timed(
                    [*exe[:1], "-X", "importtime", *exe[1:], *export[3:]], env, ROOT
                )
                heavy |= {
                    line.rsplit("|", 1)[-1].strip() for line in err.splitlines() if "|" in line
                } & set(HEAVY)
                wall, cpu, err = timed(export, env, ROOT)
                walls.append(wall)
                cpus.append(cpu)
            view = [*exe, "view", *MODELS[name], *out, "--no-browser"]
            urls = [view_url(view, env, ROOT) for _ in range(args.repeat)]
            url_wall = statistics.median(u[0] for u in urls)
            url_cpu = statistics.median(u[1] for u in urls)
            print(
                f"{name:<11} {full_wall:8.2f}s {full_cpu:7.2f}s {statistics.median(walls):10.2f}s "
                f"{statistics.median(cpus):9.2f}s {url_wall:7.2f}s {url_cpu:7.2f}s  "
                f"{', '.join(sorted(heavy)) or 'none'}"
            )
    print(
        f"(median of {args.repeat}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
    )


if __name__ == "__main__":
    main()
