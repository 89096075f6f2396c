"""--steps with --variant: each variant of a stateful graph validated over the chained decode
steps as the float file is, each step fed the variant's own previous outputs.

Fast: a chaotic recurrent cell whose float16 file passes one call but drifts past float16's
tolerance after a few chained steps (checked here by our own onnxruntime loop). Slow: a tiny
GPT-2 and a tiny Llama (grouped-query attention) whose fp16 and int8 files pass the chained
steps with their per-step figures, and
``check`` of the int8 file made there.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

import exportkit
from exportkit.cli import main
from exportkit.variants import VariantResult

M = "tests/models/stateful.py"


def _row(report: exportkit.Report, name: str) -> VariantResult:
    return next(r for r in report.variants if r.name == name)


def test_fp16_state_drifts_over_chained_steps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    json_path = tmp_path / "r.json"
    code = main(["export", f"{M}:ChaoticCell", "--steps", "6", "--variant", "fp16",
                 "--exporter", "torchscript", "--simplifier", "none", "--latency-budget", "0",
                 "-o", str(tmp_path / "c.onnx"), "--json", str(json_path),
                 "--junit", str(tmp_path / "j.xml")])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 1, out
    data = json.loads(json_path.read_text())
    assert all(s["passed"] for s in data["steps"])  # the float file holds over the chain
    fp16 = next(v for v in data["variants"] if v["name"] == "fp16")
    assert all(t["outputs"] and all(o["passed"] for o in t["outputs"]) for t in fp16["trials"])
    assert not fp16["passed"]
    steps = fp16["steps"]
    assert [s["step"] for s in steps] == list(range(7))
    first = next(s["step"] for s in steps if not s["passed"])
    assert first >= 2 and steps[0]["passed"]
    assert steps[first]["max_abs_diff"] > 1e-2 > steps[0]["max_abs_diff"]
    assert {o["name"] for o in steps[first]["outputs"]} == {"y", "new_state"}
    # Run once on that step's own inputs the file is within tolerance: the state carried it.
    assert steps[first]["accumulated"] and steps[first]["divergence"] is None
    assert f"FAIL at {first}" in out
    assert f"fp16 (CPU): step {first} fails first: " in out
    assert "the difference is carried in the state, grown over the earlier steps" in out
    from xml.etree import ElementTree

    case = next(
        c
        for c in ElementTree.parse(tmp_path / "j.xml").iter("testcase")
        if c.get("name") == "variant fp16 (CPU)"
    )
    assert f"chained step {first} fails first" in (case.findtext("failure") or "")
    assert (tmp_path / "c.onnx").is_file()  # the float file passed: it stays the result

    # Our own loop, on our own inputs: the fp16 file fed its own state, eager PyTorch its own.
    from exportkit.loading import load_model

    model = load_model(f"{M}:ChaoticCell", seed=0).module.eval()
    sess = ort.InferenceSession(str(tmp_path / "c.fp16.onnx"), providers=["CPUExecutionProvider"])
    gen = torch.Generator().manual_seed(5)
    eager_state = torch.randn(2, 32, generator=gen) * 0.5
    onnx_state, diffs = eager_state.numpy(), []
    for _ in range(7):
        x = torch.randn(2, 6, generator=gen)
        with torch.no_grad():
            expected = model(x, eager_state)["new_state"]
        _, onnx_state = sess.run(None, {"x": x.numpy(), "state": onnx_state})
        diffs.append(float(np.abs(onnx_state - expected.numpy()).max()))
        eager_state = expected
    assert diffs[0] < 2e-3 and max(diffs) > 1e-2, diffs


def _llama(root: Path) -> Path:
    """A tiny Llama with grouped-query attention (2 key/value heads of 4)."""
    from transformers import LlamaConfig

    LlamaConfig(
        vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, intermediate_size=64, max_position_embeddings=64,
        architectures=["LlamaForCausalLM"],
    ).save_pretrained(root / "llama")  # fmt: skip
    return root / "llama"


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_decoder_fp16_and_int8_over_chained_steps(
    arch: str, hf_folders: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A tiny GPT-2 / Llama (GQA) with its cache: the fp16 and int8 files pass the prefill and 3
    chained steps, each step with its own figures; int8 steps carry cosine, SQNR and top-1."""
    spec = f"hf:{hf_folders['gpt2'] if arch == 'gpt2' else _llama(tmp_path)}"
    target, json_path = tmp_path / "g.onnx", tmp_path / "r.json"
    code = main(["export", spec, "--steps", "3", "--variant", "fp16", "--variant", "int8",
                 "--latency-budget", "0", "-o", str(target), "--json", str(json_path)])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    data = json.loads(json_path.read_text())
    rows = {v["name"]: v for v in data["variants"]}
    assert rows["float"]["steps"] == []  # the float file's chain is the top-level "steps"
    for name in ("fp16", "int8"):
        steps = rows[name]["steps"]
        assert [(s["step"], s["past_length"]) for s in steps] == [(0, 0), (1, 5), (2, 6), (3, 7)]
        assert all(s["passed"] for s in steps) and rows[name]["passed"]
        assert [o["name"] for o in steps[1]["outputs"]][:2] == ["logits", "present.0.key"]
    int8 = rows["int8"]["steps"]
    logits = [s["outputs"][0] for s in int8]
    assert all(0.99 <= o["cosine"] < 1.0 and o["sqnr_db"] >= 20 for o in logits)
    assert all(o["top1"] is not None for o in logits)
    fp16 = rows["fp16"]["steps"]
    assert all(0 < s["max_abs_diff"] < 1e-2 for s in fp16)
    assert all(s["token_agreement"] for s in fp16)
    assert "steps" in out.split("variants  ")[1].splitlines()[1]  # the matrix's column
    assert "      4 pass" in out or " 4 pass " in out

    # Our own loop on the int8 file: fed its own cache, eager its own, eager's greedy tokens.
    from exportkit.decode.cache import cache_argument
    from exportkit.loading import load_model

    model = load_model(spec, seed=0).module.eval()
    sess = ort.InferenceSession(str(tmp_path / "g.int8.onnx"), providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()][1:]
    ids = torch.randint(0, 99, (2, 5), generator=torch.Generator().manual_seed(3))
    shapes = {i.name: i.shape for i in sess.get_inputs()[1:]}  # batch x kv_heads x past x dim
    feeds = {n: np.zeros((2, shapes[n][1], 0, shapes[n][3]), np.float32) for n in names}
    cache, cosines = None, []
    for _ in range(4):
        with torch.no_grad():
            eager = model(input_ids=ids, use_cache=True, **{cache_argument(model): cache})
        logits, *present = sess.run(None, {"input_ids": ids.numpy(), **feeds})
        e = eager.logits.numpy().ravel().astype(np.float64)
        a = logits.ravel().astype(np.float64)
        cosines.append(float(e @ a / np.linalg.norm(e) / np.linalg.norm(a)))
        cache, feeds = eager.past_key_values, dict(zip(names, present))
        ids = eager.logits[:, -1].argmax(-1)[:, None]
    assert min(cosines) > 0.99, cosines

    # check judges the int8 file made here the same way, over its own chained steps
    json2 = tmp_path / "c.json"
    code = main(["check", str(tmp_path / "g.int8.onnx"), spec, "--steps", "2",
                 "--latency-budget", "0", "--json", str(json2)])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    checked = json.loads(json2.read_text())
    assert checked["steps"] == []
    assert [s["step"] for s in checked["variants"][0]["steps"]] == [0, 1, 2]
