"""Decoders with their cache (``--steps``): export time and chained validation time.

Export: exportkit's export of the cached graph (exportkit.decode.cache's wrapper through the
export stage) against a hand-written torch.onnx script doing the same (a wrapper taking the
flattened cache positionally, named inputs, batch/seq/past dynamic), both dynamo. Chained
validation: ``validate_steps`` (prefill + N steps, eager and onnxruntime each fed its own cache,
compared per step, no localization) per step, against eager ``generate()`` per new token and the
onnxruntime decode loop alone per step; and per step, the same chain of the fp16 and int8 files
(``--variant fp16|int8 --steps``: each measured by its own metrics). Models: GPT-2 and Llama (GQA) built from configs.

    python benchmarks/decode_bench.py [--steps 16] [--arch gpt2,llama] [--layers 4] [--width 128]

Exports are timed once (seconds each); the per-step figures are medians of --repeat runs.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["HF_HUB_OFFLINE"] = "1"

from exportkit.decode.cache import cached_decoder, returned_cache  # noqa: E402
from exportkit.decode.stage import state_pairs  # noqa: E402
from exportkit.decode.steps import PROMPT, validate_steps  # noqa: E402
from exportkit.export import export_model  # noqa: E402
from exportkit.inputs import make_inputs  # noqa: E402
from exportkit.options import Options  # noqa: E402


def build(arch: str, layers: int, width: int) -> torch.nn.Module:
    import transformers as t

    torch.manual_seed(0)
    if arch == "gpt2":
        cfg = t.GPT2Config(n_layer=layers, n_head=4, n_embd=width, vocab_size=1000, n_positions=256)
        return t.GPT2LMHeadModel(cfg).eval()
    cfg = t.LlamaConfig(
        num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
        hidden_size=width, intermediate_size=2 * width, vocab_size=1000,
        max_position_embeddings=256,
    )  # fmt: skip
    return t.LlamaForCausalLM(cfg).eval()


def handwritten_export(model: torch.nn.Module, path: Path) -> None:
    """What a user writes by hand: a wrapper taking the cache flattened, torch.onnx dynamo."""
    from transformers import DynamicCache

    model.config._attn_implementation = "eager"
    with torch.no_grad():
        out = model(input_ids=torch.zeros(2, 3, dtype=torch.long), use_cache=True)
    shapes = [(lay.keys.shape, lay.values.shape) for lay in returned_cache(out).layers]
    n = len(shapes)

    class Flat(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.m = model

        def forward(self, input_ids: torch.Tensor, *past: torch.Tensor) -> tuple[torch.Tensor, ...]:
            cache = DynamicCache()
            for i in range(n):
                cache.update(past[2 * i], past[2 * i + 1], i)
            o = self.m(input_ids=input_ids, cache=cache, use_cache=True)
            flat = [t for lay in returned_cache(o).layers for t in (lay.keys, lay.values)]
            return (o.logits, *flat)

    past = [torch.randn(2, s[1], 3, s[3]) for k, v in shapes for s in (k, v)]
    ids = torch.zeros(2, 2, dtype=torch.long)
    batch, seq, plen = torch.export.Dim("batch"), torch.export.Dim("seq"), torch.export.Dim("past")
    names = [f"past_key_values.{i}.{k}" for i in range(n) for k in ("key", "value")]
    outs = ["logits"] + [f"present.{i}.{k}" for i in range(n) for k in ("key", "value")]
    dyn = {"input_ids": {0: batch, 1: seq}, "past": tuple({0: batch, 2: plen} for _ in past)}
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog = torch.onnx.export(Flat().eval(), (ids, *past), dynamo=True, dynamic_shapes=dyn,
                                 input_names=["input_ids", *names], output_names=outs, verbose=False)  # fmt: skip
    assert prog is not None
    prog.save(str(path))


def timed(fn: Callable[[], object], repeat: int = 1) -> tuple[float, object]:
    """Median wall seconds over ``repeat`` runs (the machine is shared), and the last value."""
    times, value = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), value


def ort_loop(path: Path, prompt: np.ndarray, steps: int, names: list[str], zeros: dict[str, np.ndarray]) -> None:  # fmt: skip
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds, ids = dict(zeros), prompt
    for _ in range(steps + 1):
        logits, *present = sess.run(None, {"input_ids": ids, **feeds})
        ids = logits[:, -1].argmax(-1)[:, None].astype(np.int64)
        feeds = dict(zip(names, present))


def bench(arch: str, steps: int, layers: int, width: int, work: Path, repeat: int) -> None:
    model = build(arch, layers, width)
    params = sum(p.numel() for p in model.parameters())
    wrapper, suggested = cached_decoder(model)
    example = make_inputs(wrapper, suggested=suggested, seed=0)
    example, pairs = state_pairs(wrapper, example, Options(steps=steps))
    ours, result = timed(lambda: export_model(wrapper, example, work / arch / "ek.onnx"))
    path = result.path  # type: ignore[attr-defined]
    hand, _ = timed(
        lambda: handwritten_export(build(arch, layers, width), work / arch / "hand.onnx")
    )
    # Warm both sides once (first calls pay for lazy initialisation), then time.
    model.generate(torch.zeros(2, 2, dtype=torch.long), max_new_tokens=2, do_sample=False)
    validate_steps(wrapper, path, example, pairs, steps=1, locate=False)
    check, decode = timed(
        lambda: validate_steps(wrapper, path, example, pairs, steps=steps, locate=False), repeat
    )
    assert decode.passed, decode  # type: ignore[attr-defined]
    prompt = torch.randint(0, 1000, (2, PROMPT), generator=torch.Generator().manual_seed(1))
    eager, _ = timed(lambda: model.generate(prompt, max_new_tokens=steps + 1, do_sample=False,
                                            min_new_tokens=steps + 1), repeat)  # fmt: skip
    names = [p.input for p in pairs]
    zeros = {n: example.tensors[n][:, :, :0].numpy() for n in names}
    loop, _ = timed(lambda: ort_loop(path, prompt.numpy(), steps, names, zeros), repeat)
    per = steps + 1
    print(f"{arch}: {layers} layers, width {width}, {params / 1e6:.2f}M params, {steps} steps")
    print(f"  export   exportkit stage {ours:6.2f} s   hand-written torch.onnx {hand:6.2f} s   ratio {ours / hand:.2f}")  # fmt: skip
    print(f"  per step chained validation {1e3 * check / per:7.2f} ms   eager generate() {1e3 * eager / per:7.2f} ms   onnxruntime loop alone {1e3 * loop / per:7.2f} ms")  # fmt: skip
    print(f"  chained validation / eager generation: {check / eager:.2f}x")
    for name, ms in variant_steps(wrapper, path, example, pairs, steps, repeat).items():
        print(f"  per step chained validation of the {name} file {ms:7.2f} ms (--variant {name} --steps)")  # fmt: skip


def variant_steps(wrapper: torch.nn.Module, path: Path, example: object, pairs: object,
                  steps: int, repeat: int) -> dict[str, float]:  # fmt: skip
    """ms per step of a variant's chained validation (exportkit.variants.chained), fp16 and int8."""
    from onnxruntime.quantization import quantize_dynamic

    from exportkit.variants import VariantResult
    from exportkit.variants.chained import chain_variant
    from exportkit.variants.fp16 import convert_fp16

    fp16, int8 = path.with_name("v.fp16.onnx"), path.with_name("v.int8.onnx")
    convert_fp16(path, fp16)
    quantize_dynamic(path, int8)
    out = {}
    for name, file, judge in (("fp16", fp16, "tolerance"), ("int8", int8, "metrics")):
        row = VariantResult(name, file, "CPUExecutionProvider", True, judge)  # type: ignore[arg-type]

        def run(row: VariantResult = row) -> VariantResult:
            return chain_variant(row, wrapper, example, pairs, steps=steps, locate=False)  # type: ignore[arg-type]

        run()  # warm
        seconds, chained = timed(run, repeat)
        assert chained.passed, chained  # type: ignore[attr-defined]
        out[name] = 1e3 * seconds / (steps + 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--arch", default="gpt2,llama")
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=5, help="runs per timing (median)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for arch in args.arch.split(","):
            bench(arch, args.steps, args.layers, args.width, Path(tmp), args.repeat)


if __name__ == "__main__":
    main()
