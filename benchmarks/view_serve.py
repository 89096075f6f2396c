"""Serving a large external-data file to the page: exportkit's server against netron.start.

Each server runs in a fresh process that also downloads ``/data/big.onnx.data`` from itself
in 1 MiB chunks (as Netron's page does when you open a weight), and reports its peak memory.

    python benchmarks/view_serve.py            # 1 GiB of weights (a sparse file: no disk used)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from view_prepare import ROOT, make_model

SERVE = """
import json, resource, sys, time, urllib.request
from pathlib import Path
sys.path.insert(0, sys.argv[3])
path, how = Path(sys.argv[1]), sys.argv[2]
if how == "exportkit":
    from exportkit.viewer import serve
    handle = serve(path)
    url, stop = handle.url, handle.stop
else:
    import logging
    logging.disable(logging.CRITICAL)  # netron.start logs to the terminal
    import netron
    host, port = netron.start(str(path), address=("127.0.0.1", 0), browse=False)
    url, stop = f"http://{host}:{port}/", lambda: netron.stop((host, port))
start = time.perf_counter()
size = 0
with urllib.request.urlopen(url + "data/big.onnx.data") as response:
    while chunk := response.read(1 << 20):
        size += len(chunk)
seconds = time.perf_counter() - start
stop()
print(json.dumps({"seconds": seconds, "bytes": size,
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def measure(path: Path, how: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", SERVE, str(path), how, str(ROOT)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=1.0, help="size of the weights in GiB")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = make_model(Path(tmp), args.gib)
        rows = {how: measure(path, how) for how in ("exportkit", "netron")}
    print(f"GET /data/big.onnx.data ({rows['exportkit']['bytes'] / 1024**3:.2f} GiB)")
    print(f"{'':10} {'seconds':>8} {'peak MiB':>9}")
    for how, row in rows.items():
        print(f"{how:10} {row['seconds']:8.2f} {row['peak_mib']:9.0f}")
    ratio = rows["netron"]["peak_mib"] / rows["exportkit"]["peak_mib"]
    print(f"peak memory netron.start / exportkit: {ratio:.1f}x")


if __name__ == "__main__":
    main()
