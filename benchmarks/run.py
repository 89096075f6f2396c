"""Run every benchmark script in this folder, one after another, each in its own process.

    python benchmarks/run.py            # all
    python benchmarks/run.py summary    # those whose file name contains 'summary'
    python benchmarks/run.py export -- --skip-large   # after --: arguments for the scripts run

Each script prints its own figures; this runner only adds a header and the exit status.
Scripts whose names start with '_' are helpers, not benchmarks.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent


def main(argv: list[str]) -> int:
    passed: list[str] = []
    if "--" in argv:
        argv, passed = argv[: argv.index("--")], argv[argv.index("--") + 1 :]
    scripts = sorted(
        p for p in HERE.glob("*.py") if p.name != "run.py" and not p.name.startswith("_")
    )
    if argv:
        scripts = [p for p in scripts if any(word in p.stem for word in argv)]
    failed = []
    for script in scripts:
        print(f"\n=== {script.name}", flush=True)
        start = time.perf_counter()
        code = subprocess.call([sys.executable, str(script), *passed], cwd=HERE.parent)
        print(f"=== {script.name}: exit {code}, {time.perf_counter() - start:.1f} s", flush=True)
        if code:
            failed.append(script.name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
