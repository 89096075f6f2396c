"""Encoder-decoders with their cross-attention cache (``--steps`` on T5 / Whisper): export time
of the two files and chained validation time.

Export: exportkit's export of the prefill and step graphs (exportkit.decode.seq2seq's modules
through the export stage) against a hand-written torch.onnx script doing the same (two wrappers
over the model, the caches flattened positionally, named inputs, batch/seq/past/encoder dynamic),
both dynamo. Chained validation: ``validate_steps`` (step 0 on the prefill file, then N steps on
the step graph, eager and onnxruntime each fed its own caches, compared per step, no
localization) per step, against eager greedy generation with an ``EncoderDecoderCache`` per new
token and the onnxruntime loop alone (prefill file once, then the step graph) per step.

    python benchmarks/seq2seq_bench.py [--steps 16] [--arch t5,whisper] [--layers 4] [--width 128]

Exports are timed once (seconds each); the per-step figures are medians of --repeat runs.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["HF_HUB_OFFLINE"] = "1"

from benchmarks.decode_bench import timed  # noqa: E402
from exportkit.decode.chain import FirstStep  # noqa: E402
from exportkit.decode.seq2seq import cached_seq2seq_decoder, prefill_example  # noqa: E402
from exportkit.decode.stage import state_pairs  # noqa: E402
from exportkit.decode.steps import PROMPT, validate_steps  # noqa: E402
from exportkit.export import export_model  # noqa: E402
from exportkit.inputs import make_inputs  # noqa: E402
from exportkit.options import Options  # noqa: E402

ENCODER = 24  # encoder output length of the timed runs


def build(arch: str, layers: int, width: int) -> Any:
    import transformers as t

    torch.manual_seed(0)
    if arch == "t5":
        cfg = t.T5Config(vocab_size=1000, d_model=width, d_kv=width // 4, d_ff=2 * width,
                         num_layers=layers, num_heads=4, decoder_start_token_id=0)  # fmt: skip
        return t.T5ForConditionalGeneration(cfg).eval()
    cfg = t.WhisperConfig(
        vocab_size=1000, d_model=width, encoder_layers=1, decoder_layers=layers,
        encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=2 * width,
        decoder_ffn_dim=2 * width, num_mel_bins=8, max_source_positions=64,
        max_target_positions=256, pad_token_id=1, bos_token_id=2, eos_token_id=3,
        decoder_start_token_id=2,
    )  # fmt: skip
    return t.WhisperForConditionalGeneration(cfg).eval()


def _cache(layers: int, past: tuple[torch.Tensor, ...]) -> Any:
    from transformers import DynamicCache, EncoderDecoderCache

    own, cross = DynamicCache(), DynamicCache()
    for i in range(layers):
        own.update(past[4 * i], past[4 * i + 1], i)
        cross.update(past[4 * i + 2], past[4 * i + 3], i)
    return EncoderDecoderCache(own, cross)


def _flat(out: Any, cross: bool) -> tuple[torch.Tensor, ...]:
    cache = out.past_key_values
    flat = []
    for own, xattn in zip(cache.self_attention_cache.layers, cache.cross_attention_cache.layers):
        flat += [own.keys, own.values] + ([xattn.keys, xattn.values] if cross else [])
    return (out.logits, *flat)


def handwritten_export(model: Any, layers: int, work: Path) -> None:
    """What a user writes by hand: a prefill wrapper and a with-past wrapper, torch.onnx dynamo."""
    from transformers import DynamicCache, EncoderDecoderCache

    model.set_attn_implementation("eager")  # sdpa does not export (see docs/decode.md)
    width = model.config.d_model

    class Prefill(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.m = model

        def forward(self, ids: torch.Tensor, enc: torch.Tensor) -> tuple[torch.Tensor, ...]:
            cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
            o = self.m(decoder_input_ids=ids, encoder_outputs=(enc,), cache=cache,
                       use_cache=True)  # fmt: skip
            return _flat(o, cross=True)

    class Step(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.m = model

        def forward(self, ids: torch.Tensor, *past: torch.Tensor) -> tuple[torch.Tensor, ...]:
            enc = past[2].new_zeros(past[2].shape[0], past[2].shape[2], width)
            o = self.m(decoder_input_ids=ids, encoder_outputs=(enc,),
                       cache=_cache(layers, past), use_cache=True)  # fmt: skip
            return _flat(o, cross=False)

    # Example sizes all different (batch 2, seq 3, encoder 5): torch.export takes equal example
    # sizes for one symbol.
    ids, enc = torch.zeros(2, 3, dtype=torch.long), torch.randn(2, 5, width)
    with torch.no_grad():
        first = Prefill()(ids, enc)
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("seq")
    plen, elen = torch.export.Dim("past"), torch.export.Dim("encoder")
    kinds = ("decoder.key", "decoder.value", "encoder.key", "encoder.value")
    names = [f"past_key_values.{i}.{k}" for i in range(layers) for k in kinds]
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog = torch.onnx.export(
            Prefill().eval(), (ids, enc), dynamo=True, verbose=False,
            dynamic_shapes={"ids": {0: batch, 1: seq}, "enc": {0: batch, 1: elen}},
            input_names=["input_ids", "encoder_hidden_states"],
        )  # fmt: skip
        assert prog is not None
        prog.save(str(work / "decoder_model.onnx"))
        past = first[1:]
        dyn = tuple({0: batch, 2: elen if i % 4 >= 2 else plen} for i in range(len(past)))
        prog = torch.onnx.export(
            Step().eval(), (ids[:, :2], *past), dynamo=True, verbose=False,
            dynamic_shapes={"ids": {0: batch, 1: seq}, "past": dyn},
            input_names=["input_ids", *names],
        )  # fmt: skip
        assert prog is not None
        prog.save(str(work / "decoder_with_past_model.onnx"))


def eager_generate(model: Any, layers: int, prompt: torch.Tensor, enc: torch.Tensor, n: int) -> None:  # fmt: skip
    """Greedy generation in eager PyTorch with its own EncoderDecoderCache: the prompt, then
    one token per step."""
    from transformers import DynamicCache, EncoderDecoderCache

    cache, ids = EncoderDecoderCache(DynamicCache(), DynamicCache()), prompt
    with torch.no_grad():
        for _ in range(n):
            o = model(decoder_input_ids=ids, encoder_outputs=(enc,), cache=cache,
                      use_cache=True)  # fmt: skip
            cache, ids = o.past_key_values, o.logits[:, -1:].argmax(-1)


def ort_loop(prefill: Path, step: Path, prompt: np.ndarray, enc: np.ndarray, n: int) -> None:
    first = ort.InferenceSession(str(prefill), providers=["CPUExecutionProvider"])
    sess = ort.InferenceSession(str(step), providers=["CPUExecutionProvider"])
    outs = [o.name for o in first.get_outputs()]
    present = dict(zip(outs, first.run(None, {"decoder_input_ids": prompt,
                                              "encoder_hidden_states": enc})))  # fmt: skip
    inputs = [i.name for i in sess.get_inputs()][1:]
    step_outs = [o.name for o in sess.get_outputs()]
    for _ in range(n - 1):
        ids = present["logits"][:, -1].argmax(-1)[:, None].astype(np.int64)
        feeds = {n: present[_output(n)] for n in inputs}
        present.update(zip(step_outs, sess.run(None, {"decoder_input_ids": ids, **feeds})))


def _output(name: str) -> str:
    """``past_key_values_0_cross_key`` -> ``present.0.cross.key``."""
    layer, kind = name.removeprefix("past_key_values_").split("_", 1)
    return f"present.{layer}.{kind.replace('_', '.')}"


def bench(arch: str, steps: int, layers: int, width: int, work: Path, repeat: int) -> None:
    model = build(arch, layers, width)
    params = sum(p.numel() for p in model.parameters())
    step_module, suggested = cached_seq2seq_decoder(model)
    graph = step_module.prefill  # type: ignore[union-attr]
    example = make_inputs(step_module, suggested=suggested, seed=0)
    example, pairs = state_pairs(step_module, example, Options(steps=steps))
    first_inputs = prefill_example(graph, 0)
    folder = work / arch
    ours, results = timed(lambda: (
        export_model(graph.module, first_inputs, folder / "p" / "m.prefill.onnx"),
        export_model(step_module, example, folder / "s" / "m.onnx"),
    ))  # fmt: skip
    prefill_path, path = (r.path for r in results)  # type: ignore[attr-defined]
    (folder / "hand").mkdir()
    hand, _ = timed(lambda: handwritten_export(build(arch, layers, width), layers, folder / "hand"))
    enc = torch.randn(2, ENCODER, width, generator=torch.Generator().manual_seed(2))
    first = FirstStep(graph.module, prefill_path, {**first_inputs.tensors,
                                                   "encoder_hidden_states": enc})  # fmt: skip

    def check() -> Any:
        return validate_steps(step_module, path, example, pairs, steps=steps, locate=False,
                              first=first, token_input="decoder_input_ids",
                              token_output="logits")  # fmt: skip

    check()  # warm both sides once (first calls pay for lazy initialisation), then time
    seconds, decode = timed(check, repeat)
    assert decode.passed, decode  # type: ignore[attr-defined]
    prompt = torch.randint(0, 1000, (2, PROMPT), generator=torch.Generator().manual_seed(1))
    per = steps + 1
    eager, _ = timed(lambda: eager_generate(model, layers, prompt, enc, per), repeat)
    loop, _ = timed(lambda: ort_loop(prefill_path, path, prompt.numpy(), enc.numpy(), per), repeat)
    print(f"{arch}: {layers} decoder layers, width {width}, {params / 1e6:.2f}M params, "
          f"encoder length {ENCODER}, {steps} steps")  # fmt: skip
    print(f"  export (both files)  exportkit stage {ours:6.2f} s   hand-written torch.onnx {hand:6.2f} s   ratio {ours / hand:.2f}")  # fmt: skip
    print(f"  per step chained validation {1e3 * seconds / per:7.2f} ms   eager generation {1e3 * eager / per:7.2f} ms   onnxruntime loop alone {1e3 * loop / per:7.2f} ms")  # fmt: skip
    print(f"  chained validation / eager generation: {seconds / eager:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--arch", default="t5,whisper")
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=5, help="runs per timing (median)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for arch in args.arch.split(","):
            bench(arch, args.steps, args.layers, args.width, Path(tmp), args.repeat)


if __name__ == "__main__":
    main()
