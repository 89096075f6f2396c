"""Whole ``exportkit export`` processes against a hand-written script doing the same steps.

For a small CNN (examples/conv_net.py), a 100M-parameter MLP and a 2.4 GB MLP (past protobuf's
2 GB limit), each as a separate process, side by side in one run:

- ``exportkit export SPEC --input ... --dynamic batch --no-sizes`` (validation at the export size
  only), start to exit, against benchmarks/_handwritten.py (torch.onnx dynamo export, onnxruntime
  check, onnxsim, onnxruntime check of the simplified file). Goal: time ratio <= 1.2.
- for the CNN, exportkit with validation at several sizes (the default) against ``--no-sizes``.
  Goal: at most +30%.
- peak RSS of each process against the weight size. Goal: exportkit < 3x the weights.
- which heavy modules ``exportkit --help`` and ``exportkit summary FILE`` import
  (``python -X importtime``). Goal: no torch, onnxruntime, onnxsim, onnxscript.

Wall time and peak RSS come from ``os.wait4`` on each child (ru_maxrss covers that process only).

    python benchmarks/export_bench.py                 # everything (the 2.4 GB case takes minutes)
    python benchmarks/export_bench.py --skip-large    # CNN and 100M MLP only
    python benchmarks/export_bench.py --repeat 3      # median of 3 runs per row
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "onnxruntime", "onnxsim", "onnxscript", "onnxslim", "transformers")


@dataclass(frozen=True)
class Case:
    name: str
    spec: str
    input: str
    weight_bytes: int
    large: bool = False


CASES = (
    Case("CNN (ConvNet)", "examples/conv_net.py:ConvNet", "x:2x3x64x64", 0),
    Case(
        "MLP 100M",
        "benchmarks/_export_models.py:mlp_100m",
        "x:2x4096",
        6 * (4096 * 4096 + 4096) * 4,
    ),
    Case(
        "MLP 600M (2.4 GB)",
        "benchmarks/_export_models.py:mlp_600m",
        "x:2x8192",
        9 * (8192 * 8192 + 8192) * 4,
        large=True,
    ),
)


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_mb: float
    code: int


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["HF_HUB_OFFLINE"] = "1"
    return env


def measure(cmd: list[str], *, log: Path) -> Run:
    """Run ``cmd`` to completion; its wall time and its own peak RSS."""
    with log.open("wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Run(seconds, usage.ru_maxrss / 1024, proc.returncode)


def median_run(cmd: list[str], repeat: int, log: Path, clean: Path) -> Run:
    runs = []
    for _ in range(repeat):
        shutil.rmtree(clean, ignore_errors=True)
        runs.append(measure(cmd, log=log))
        if runs[-1].code not in (0,):
            tail = log.read_text(errors="replace").strip().splitlines()[-5:]
            print(f"  ! exit {runs[-1].code}: {' '.join(cmd)}\n    " + "\n    ".join(tail))
    return Run(
        statistics.median(r.seconds for r in runs),
        statistics.median(r.peak_mb for r in runs),
        max(r.code for r in runs),
    )


def exportkit_cmd(case: Case, out: Path, *, sizes: bool) -> list[str]:
    cmd = [sys.executable, "-m", "exportkit", "export", case.spec, "--input", case.input]
    cmd += ["--dynamic", "batch", "-o", str(out)]
    return cmd if sizes else [*cmd, "--no-sizes"]


def hand_cmd(case: Case, out: Path) -> list[str]:
    return [
        sys.executable,
        str(ROOT / "benchmarks" / "_handwritten.py"),
        case.spec,
        case.input,
        str(out),
    ]


def heavy_imports(args: list[str]) -> tuple[list[str], float]:
    """Heavy top-level packages imported by ``python -X importtime -m exportkit ARGS``, and time."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "exportkit", *args],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    found = set()
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        name = line.rsplit("|", 1)[1].strip()
        if name.split(".")[0] in HEAVY:
            found.add(name.split(".")[0])
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "exportkit", *args],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        check=False,
    )
    return sorted(found), time.perf_counter() - start


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-large", action="store_true", help="skip the 2.4 GB MLP")
    parser.add_argument("--repeat", type=int, default=1, help="runs per row; the median is shown")
    parser.add_argument("--only", default="", help="run cases whose name contains this text")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="exportkit-bench-"))
    rows: list[tuple[str, ...]] = []
    goals: list[tuple[str, bool, str]] = []
    cnn_onnx: Path | None = None
    try:
        for case in CASES:
            if (case.large and args.skip_large) or args.only.lower() not in case.name.lower():
                continue
            folder = work / case.name.split()[0].lower()
            print(f"{case.name}: exportkit --no-sizes ...", flush=True)
            ek = median_run(
                exportkit_cmd(case, folder / "ek" / "m.onnx", sizes=False),
                args.repeat,
                work / "log.txt",
                folder / "ek",
            )
            print(f"{case.name}: hand-written ...", flush=True)
            hand = median_run(
                hand_cmd(case, folder / "hand" / "m.onnx"),
                args.repeat,
                work / "log.txt",
                folder / "hand",
            )
            weights = case.weight_bytes / 1e6
            rows.append(
                (
                    case.name,
                    f"{ek.seconds:.1f}",
                    f"{hand.seconds:.1f}",
                    _ratio(ek.seconds, hand.seconds),
                    f"{ek.peak_mb:,.0f}",
                    f"{hand.peak_mb:,.0f}",
                    f"{weights:,.0f}" if weights else "-",
                    _ratio(ek.peak_mb, weights) if weights else "-",
                )
            )
            ok = ek.code == 0 and hand.code == 0
            goals.append(
                (
                    f"{case.name}: exportkit / hand-written time <= 1.2",
                    ok and ek.seconds <= 1.2 * hand.seconds,
                    _ratio(ek.seconds, hand.seconds),
                )
            )
            if weights:
                goals.append(
                    (
                        f"{case.name}: exportkit peak RSS < 3x weights",
                        ek.peak_mb < 3 * weights,
                        _ratio(ek.peak_mb, weights),
                    )
                )
            if case.spec.startswith("examples/conv_net"):
                print(f"{case.name}: exportkit with sizes ...", flush=True)
                sized = median_run(
                    exportkit_cmd(case, folder / "sizes" / "m.onnx", sizes=True),
                    args.repeat,
                    work / "log.txt",
                    folder / "sizes",
                )
                extra = sized.seconds / ek.seconds - 1
                rows.append(
                    (
                        f"{case.name}, several sizes",
                        f"{sized.seconds:.1f}",
                        "",
                        f"+{extra:.0%} vs --no-sizes",
                        f"{sized.peak_mb:,.0f}",
                        "",
                        "",
                        "",
                    )
                )
                goals.append(
                    (
                        f"{case.name}: several sizes add <= 30%",
                        sized.code == 0 and extra <= 0.30,
                        f"+{extra:.0%}",
                    )
                )
                cnn_onnx = folder / "sizes" / "m.onnx"
                if cnn_onnx.exists():
                    keep = work / "cnn.onnx"
                    shutil.copy(cnn_onnx, keep)
                    cnn_onnx = keep

        print()
        header = (
            "model",
            "exportkit s",
            "hand s",
            "ratio",
            "exportkit MB",
            "hand MB",
            "weights MB",
            "RSS/weights",
        )
        widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
        for r in (header, *rows):
            print("  ".join(c.ljust(w) for c, w in zip(r, widths)))

        print("\nimports (python -X importtime -m exportkit ...):")
        probes = [["--help"]]
        if cnn_onnx is not None:
            probes.append(["summary", str(cnn_onnx)])
        for probe in probes:
            found, seconds = heavy_imports(probe)
            label = "exportkit " + " ".join(
                p if not p.endswith(".onnx") else "model.onnx" for p in probe
            )
            print(f"  {label}: {seconds:.2f} s, heavy modules: {', '.join(found) or 'none'}")
            goals.append(
                (
                    f"{label} imports no {'/'.join(HEAVY[:4])}",
                    not (set(found) & set(HEAVY[:4])),
                    ", ".join(found) or "none",
                )
            )

        print("\ngoals:")
        for text, ok, value in goals:
            print(f"  [{'ok' if ok else 'MISSED'}] {text}: {value}")
        return 0 if all(ok for _, ok, _ in goals) else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
