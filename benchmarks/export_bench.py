"""Whole ``exportkit export`` processes against a hand-written script doing the same steps.

For a small CNN (examples/conv_net.py), a 100M-parameter MLP and a 2.4 GB MLP (past protobuf's
2 GB limit), each as a separate process, side by side in one run:

- ``exportkit export SPEC --input ... --dynamic batch --no-sizes`` (validation at the export size
  only), start to exit, against benchmarks/_handwritten.py (torch.onnx dynamo export, onnxruntime
  check, onnxsim, onnxruntime check of the simplified file). Goal: time ratio <= 1.2.
- for the CNN, exportkit with validation at several sizes (the default) against ``--no-sizes``.
  Goal: at most +30%.
- peak RSS of each process against the weight size. Goal: exportkit < 3x the weights (checked
  on the 2.4 GB model; on smaller ones the ~250 MB of imported libraries dominate).
- which heavy packages ``exportkit --help`` and ``exportkit summary FILE`` import
  (``python -X importtime``; goal: no torch, onnxruntime, onnxsim, onnxscript), and that
  ``export --simplifier onnxslim|none`` never imports onnxsim.

Wall time, CPU time (user + sys) and peak RSS come from ``os.wait4`` on each child (its own
ru_maxrss). On a shared machine compare the CPU columns too: wall time includes waiting for cores.

    python benchmarks/export_bench.py                 # everything (the 2.4 GB case takes minutes)
    python benchmarks/export_bench.py --skip-large    # CNN and 100M MLP only
    python benchmarks/export_bench.py --repeat 3      # best of 3 runs per row (CNN: always >= 5)
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
    cpu: float
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
    cpu = usage.ru_utime + usage.ru_stime
    return Run(seconds, cpu, usage.ru_maxrss / 1024, proc.returncode)


def interleaved(cmds: dict[str, list[str]], repeat: int, work: Path) -> dict[str, Run]:
    """Run each command ``repeat`` times, taking turns (so a busy spell on a shared machine hits
    every command alike); per command the best wall and CPU time (other load only ever adds)
    and the median peak RSS."""
    runs: dict[str, list[Run]] = {key: [] for key in cmds}
    for _ in range(repeat):
        for key, cmd in cmds.items():
            out = Path(cmd[cmd.index("-o") + 1] if "-o" in cmd else cmd[-1])
            shutil.rmtree(out.parent, ignore_errors=True)
            log = work / "log.txt"
            runs[key].append(measure(cmd, log=log))
            if runs[key][-1].code != 0:
                tail = log.read_text(errors="replace").strip().splitlines()[-5:]
                print(f"  ! exit {runs[key][-1].code}: {' '.join(cmd)}\n    " + "\n    ".join(tail))
    return {
        key: Run(
            min(r.seconds for r in rs),
            min(r.cpu for r in rs),
            statistics.median(r.peak_mb for r in rs),
            max(r.code for r in rs),
        )
        for key, rs in runs.items()
    }


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


def imported(args: list[str], *, work: Path) -> tuple[set[str], float]:
    """Top-level packages ``python -X importtime -m exportkit ARGS`` imports, and its wall time."""
    cmd = [sys.executable, "-X", "importtime", "-m", "exportkit", *args]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=work, env=_env(), capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    names = set()
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names, seconds


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "-"


class Table:
    """Rows of figures and goals, printed at the end."""

    HEADER = (
        "model",
        "exportkit s",
        "hand s",
        "ratio",
        "exportkit cpu s",
        "hand cpu s",
        "exportkit MB",
        "hand MB",
        "weights MB",
        "RSS/weights",
    )

    def __init__(self) -> None:
        self.rows: list[tuple[str, ...]] = []
        self.goals: list[tuple[str, bool, str]] = []

    def row(self, name: str, ek: Run, hand: Run | None, weights_mb: float, note: str = "") -> None:
        h = hand or Run(0, 0, 0, 0)
        self.rows.append(
            (
                name,
                f"{ek.seconds:.1f}",
                f"{h.seconds:.1f}" if hand else "",
                note or _ratio(ek.seconds, h.seconds),
                f"{ek.cpu:.1f}",
                f"{h.cpu:.1f}" if hand else "",
                f"{ek.peak_mb:,.0f}",
                f"{h.peak_mb:,.0f}" if hand else "",
                f"{weights_mb:,.0f}" if weights_mb else "-",
                _ratio(ek.peak_mb, weights_mb) if weights_mb else "-",
            )
        )

    def goal(self, text: str, ok: bool, value: str) -> None:
        self.goals.append((text, ok, value))

    def print(self) -> None:
        rows = (self.HEADER, *self.rows)
        widths = [max(len(r[i]) for r in rows) for i in range(len(self.HEADER))]
        print()
        for r in rows:
            print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        print("\ngoals:")
        for text, ok, value in self.goals:
            print(f"  [{'ok' if ok else 'MISSED'}] {text}: {value}")


def bench_case(case: Case, table: Table, work: Path, repeat: int) -> Path | None:
    """Time one model both ways; for the CNN also with several sizes. Returns a written file."""
    folder = work / case.name.split()[0].lower()
    cnn = not case.weight_bytes
    repeat = max(repeat, 5) if cnn else repeat  # the CNN is quick and noisy
    cmds = {
        "ek": exportkit_cmd(case, folder / "ek" / "m.onnx", sizes=False),
        "hand": hand_cmd(case, folder / "hand" / "m.onnx"),
    }
    if cnn:
        cmds["sized"] = exportkit_cmd(case, folder / "sizes" / "m.onnx", sizes=True)
    print(f"{case.name}: {', '.join(cmds)} x{repeat}, taking turns ...", flush=True)
    runs = interleaved(cmds, repeat, work)
    ek, hand = runs["ek"], runs["hand"]
    weights = case.weight_bytes / 1e6
    table.row(case.name, ek, hand, weights)
    ok = ek.code == 0 and hand.code == 0
    table.goal(
        f"{case.name}: exportkit / hand-written wall time <= 1.2",
        ok and ek.seconds <= 1.2 * hand.seconds,
        f"{_ratio(ek.seconds, hand.seconds)} (cpu {_ratio(ek.cpu, hand.cpu)})",
    )
    if case.large:
        table.goal(
            f"{case.name}: exportkit peak RSS < 3x weights",
            ek.code == 0 and ek.peak_mb < 3 * weights,
            _ratio(ek.peak_mb, weights),
        )
    if not cnn:
        return None
    sized = runs["sized"]
    extra, extra_cpu = sized.seconds / ek.seconds - 1, sized.cpu / ek.cpu - 1
    table.row(f"{case.name}, several sizes", sized, None, 0, f"{extra:+.0%} vs --no-sizes")
    table.goal(
        f"{case.name}: several sizes add <= 30% to --no-sizes",
        sized.code == 0 and extra <= 0.30,
        f"{extra:+.0%} (cpu {extra_cpu:+.0%})",
    )
    keep, out = work / "cnn.onnx", folder / "sizes" / "m.onnx"
    if out.exists():
        shutil.copy(out, keep)
        return keep
    return None


def bench_imports(table: Table, work: Path, onnx_file: Path | None) -> None:
    """Heavy packages are imported only by the stages that need them."""
    print("imports (python -X importtime -m exportkit ...) ...", flush=True)
    no_heavy = {"torch", "onnxruntime", "onnxsim", "onnxscript"}
    probes: list[tuple[str, list[str], set[str]]] = [("exportkit --help", ["--help"], no_heavy)]
    if onnx_file is not None:
        probes.append(("exportkit summary model.onnx", ["summary", str(onnx_file)], no_heavy))
    cnn = CASES[0]
    for simplifier, absent in (("onnxslim", {"onnxsim"}), ("none", {"onnxsim", "onnxslim"})):
        out = work / f"imports-{simplifier}" / "m.onnx"
        args = [*exportkit_cmd(cnn, out, sizes=False)[3:], "--simplifier", simplifier]
        probes.append((f"exportkit export --simplifier {simplifier}", args, absent))
    for label, args, absent in probes:
        found, seconds = imported(args, work=ROOT)
        heavy = sorted(found & set(HEAVY))
        print(f"  {label}: {seconds:.2f} s, heavy packages: {', '.join(heavy) or 'none'}")
        table.goal(
            f"{label} imports no {'/'.join(sorted(absent))}",
            not found & absent,
            ", ".join(heavy) or "none",
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-large", action="store_true", help="skip the 2.4 GB MLP")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per row, the best shown (CNN: >= 5)"
    )
    parser.add_argument("--only", default="", help="run models whose name contains this text")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="exportkit-bench-"))
    table = Table()
    onnx_file: Path | None = None
    try:
        for case in CASES:
            if (case.large and args.skip_large) or args.only.lower() not in case.name.lower():
                continue
            onnx_file = bench_case(case, table, work, args.repeat) or onnx_file
        bench_imports(table, work, onnx_file)
        table.print()
        return 0 if all(ok for _, ok, _ in table.goals) else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
