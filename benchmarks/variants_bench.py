"""The variant stage (fp16, int8) against a hand-written onnxruntime script doing the same work.

For each model, side by side in one process:

- exportkit: ``make_variants(float file, cases, ["fp16", "int8"])``: convert, quantize, validate
  against eager PyTorch at every case, time each file and eager PyTorch, wall and CPU seconds;
- by hand: ``convert_float_to_float16`` + ``quantize_dynamic``/``quantize_static`` (the method
  exportkit picked, same calibration inputs), one allclose/cosine check on the export inputs,
  and a timing loop (10 warm-up runs, then p50/p90 over the same time budget).

Then each file's p50/p90 from both, so the latency figures can be compared. Models: a CNN
(examples/conv_net.py), a BERT-style encoder and a GPT-2-style decoder (transformers configs,
random weights); or any spec: ``--spec model.py:Net --input x:1x3x224x224``.

    python benchmarks/variants_bench.py                    # the three listed models
    python benchmarks/variants_bench.py --budget 1         # seconds of timed runs per file
    python benchmarks/variants_bench.py --spec examples/conv_net.py:ConvNet --input x:1x3x64x64

On a shared machine compare the CPU columns: wall time includes waiting for cores.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _bert() -> tuple[Any, list[str]]:
    from transformers import BertConfig, BertModel

    config = BertConfig(vocab_size=1000, hidden_size=128, num_hidden_layers=4,
                        num_attention_heads=4, intermediate_size=512)  # fmt: skip
    return BertModel(config), ["input_ids:2x32:int64:[0,1000)"]


def _gpt2() -> tuple[Any, list[str]]:
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(vocab_size=1000, n_embd=128, n_layer=4, n_head=4, use_cache=False)
    return GPT2LMHeadModel(config), ["input_ids:2x32:int64:[0,1000)"]


def _spec(spec: str, inputs: list[str]) -> Callable[[], tuple[Any, list[str]]]:
    def make() -> tuple[Any, list[str]]:
        return spec, inputs

    return make


MODELS: dict[str, Callable[[], tuple[Any, list[str]]]] = {
    "CNN (ConvNet)": _spec("examples/conv_net.py:ConvNet", ["x:2x3x64x64"]),
    "BERT encoder": _bert,
    "GPT-2 decoder": _gpt2,
}


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _since(start: tuple[float, float]) -> tuple[float, float]:
    wall, cpu = _clock()
    return wall - start[0], cpu - start[1]


def _handwritten(path: Path, feeds: dict[str, Any], samples: list[dict[str, Any]],
                 method: str, budget: float) -> dict[str, tuple[float, float]]:  # fmt: skip
    """Convert, quantize, check once, time: what a user would write with the libraries."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import QuantFormat, quantize_dynamic, quantize_static
    from onnxruntime.transformers.float16 import convert_float_to_float16

    fp16 = path.with_name("hand.fp16.onnx")
    int8 = path.with_name("hand.int8.onnx")
    onnx.save(convert_float_to_float16(onnx.load(str(path)), keep_io_types=True), str(fp16))
    if method.startswith("dynamic"):
        quantize_dynamic(path, int8)
    else:

        class Reader:
            def __init__(self) -> None:
                self.it = iter(samples)

            def get_next(self) -> dict[str, Any] | None:
                return next(self.it, None)

        quantize_static(path, int8, Reader(), quant_format=QuantFormat.QDQ, per_channel=True)
    out = {}
    reference = None
    for name, file in (("float", path), ("fp16", fp16), ("int8", int8)):
        sess = ort.InferenceSession(str(file), providers=["CPUExecutionProvider"])
        got = sess.run(None, feeds)[0].astype(np.float64)
        if reference is None:
            reference = got
        cos = float((got * reference).sum() / np.linalg.norm(got) / np.linalg.norm(reference))
        assert cos > 0.9, (name, cos)
        for _ in range(10):
            sess.run(None, feeds)
        times = []
        end = time.perf_counter() + budget
        while len(times) < 10 or time.perf_counter() < end:
            t = time.perf_counter()
            sess.run(None, feeds)
            times.append((time.perf_counter() - t) * 1e3)
        out[name] = (float(np.percentile(times, 50)), float(np.percentile(times, 90)))
    return out


def bench(label: str, make: Callable[[], tuple[Any, list[str]]], budget: float) -> None:
    import torch

    import exportkit
    from exportkit.options import Options
    from exportkit.resolve import example_inputs, load
    from exportkit.validate import make_cases
    from exportkit.variants import make_variants
    from exportkit.variants.runner import feeds, open_session

    torch.manual_seed(0)
    model, inputs = make()
    options = Options(simplifier="none", sizes=True)
    loaded = load(model, options)
    example = example_inputs(loaded, inputs, options)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        start = _clock()
        report = exportkit.export(loaded.module, example, path, options=options)
        export_s = _since(start)
        assert report.passed, f"{label}: the float export fails validation"
        cases = make_cases(loaded.module, example)
        start = _clock()
        rows = make_variants(report.output or path, cases, ["fp16", "int8"], model=loaded.module,
                             budget_s=budget)  # fmt: skip
        ours = _since(start)
        int8 = next(r for r in rows if r.name == "int8")
        sess = open_session(path)
        samples = [feeds(sess, c.inputs) for c in cases if c.error is None]
        start = _clock()
        hand = _handwritten(path, feeds(sess, example), samples, int8.method, budget)
        theirs = _since(start)
    print(f"\n{label}: export {export_s[0]:.1f} s wall; variant stage (fp16 + int8, {len(cases)} "
          f"cases, latency of 3 files + eager, budget {budget:g} s each)")  # fmt: skip
    print(f"  {'':<28}{'wall s':>9}{'cpu s':>9}")
    print(f"  {'exportkit make_variants':<28}{ours[0]:>9.2f}{ours[1]:>9.2f}")
    print(f"  {'hand-written script':<28}{theirs[0]:>9.2f}{theirs[1]:>9.2f}")
    print(f"  ratio (exportkit / hand)    {ours[0] / theirs[0]:>9.2f}{ours[1] / theirs[1]:>9.2f}")
    print(f"  {'file':<8}{'verdict':<9}{'ours p50':>10}{'hand p50':>10}{'ours p90':>10}"
          f"{'hand p90':>10}{'vs eager':>10}  method")  # fmt: skip
    for r in rows:
        lat = r.latency_ms
        h50, h90 = hand.get(r.name, (float("nan"), float("nan")))
        speed = f"{r.speedup:.2f}x" if r.speedup else "--"
        verdict = "pass" if r.passed else "FAIL"
        p50, p90 = (lat.p50, lat.p90) if lat else (float("nan"), float("nan"))
        print(f"  {r.name:<8}{verdict:<9}{p50:>10.3f}{h50:>10.3f}{p90:>10.3f}{h90:>10.3f}"
              f"{speed:>10}  {r.method}")  # fmt: skip
    eager = rows[0].eager_latency_ms
    if eager is not None:
        print(f"  eager PyTorch p50 {eager.p50:.3f} ms, p90 {eager.p90:.3f} ms")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=1.0, help="seconds of timed runs per file")
    parser.add_argument("--spec", help="benchmark this model spec instead of the listed ones")
    parser.add_argument("--input", action="append", default=[], help="as exportkit's --input")
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)  # onnxruntime.quantization's pre-processing advice
    models = {args.spec: _spec(args.spec, args.input)} if args.spec else MODELS
    for label, make in models.items():
        bench(label, make, args.budget)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
