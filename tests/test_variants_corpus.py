"""Variants of real architectures from the corpus (ResNet, BERT, GPT-2 from tiny transformers
configs): each verdict checked against our own onnxruntime run of the written file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import torch

import exportkit
from exportkit.variants import VariantResult

os.environ.setdefault("HF_HUB_OFFLINE", "1")
pytestmark = pytest.mark.slow

FAST = {"latency_budget": 0.05, "sizes": False, "simplifier": "none"}


def _tokens(vocab: int = 96, seq: int = 8, mask: bool = True) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    out = {"input_ids": torch.randint(3, vocab, (2, seq), generator=gen)}
    if mask:
        out["attention_mask"] = torch.ones(2, seq, dtype=torch.int64)
    return out


def _ours(path: Path, inputs: dict[str, torch.Tensor]) -> list[np.ndarray]:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    return [np.asarray(a) for a in sess.run(None, {n: inputs[n].numpy() for n in names})]


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def _sqnr(ref: np.ndarray, got: np.ndarray) -> float:
    ref, got = ref.astype(np.float64), got.astype(np.float64)
    return float(10 * np.log10((ref**2).sum() / ((ref - got) ** 2).sum()))


def _row(report: exportkit.Report, name: str) -> VariantResult:
    return next(r for r in report.variants if r.name == name)


def _export(model: torch.nn.Module, inputs: Any, tmp: Path, **options: Any) -> exportkit.Report:
    return exportkit.export(model, inputs, tmp / "m.onnx", **{**FAST, **options})


def _first(model: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> np.ndarray:
    with torch.no_grad():
        out = model(**inputs)
    first = out[0] if isinstance(out, tuple) else next(iter(out.values()))
    return first.numpy()


@pytest.mark.parametrize("arch", ["resnet", "bert", "gpt2"])
def test_fp16_and_int8_of_real_architectures(tmp_path: Path, arch: str) -> None:
    from tests.corpus import hf_models

    model = getattr(hf_models, arch)().eval()
    inputs = {"pixel_values": torch.randn(2, 3, 32, 32)} if arch == "resnet" else _tokens(
        mask=arch != "gpt2"
    )  # fmt: skip
    report = _export(model, inputs, tmp_path, variants=("fp16", "int8"))
    fp16, int8 = _row(report, "fp16"), _row(report, "int8")
    expected = _first(model, inputs)
    # float16: our own run within float16 tolerances, exactly when exportkit says it passes.
    got = _ours(fp16.path, inputs)[0]  # type: ignore[arg-type]
    assert fp16.passed == bool(np.allclose(got, expected, atol=1e-2, rtol=1e-2))
    assert fp16.passed, fp16.metrics
    # int8: our cosine and SQNR on the first output agree with exportkit's figures and verdict.
    got8 = _ours(int8.path, inputs)[0]  # type: ignore[arg-type]
    name = next(iter(int8.metrics))
    ours = int8.trials[0].outputs[0]
    assert ours.name == name
    assert abs(ours.cosine - _cosine(expected, got8)) < 1e-6
    assert abs(ours.sqnr_db - _sqnr(expected, got8)) < 1e-3
    ok = _cosine(expected, got8) >= 0.99 and _sqnr(expected, got8) >= 20
    if ok is False:
        assert not int8.passed and report.passed is False
    expected_method = "static QDQ" if arch == "resnet" else "dynamic"
    assert int8.method.startswith(expected_method)


def test_badly_calibrated_resnet_names_a_module_of_the_stem(tmp_path: Path) -> None:
    from tests.corpus import hf_models

    model = hf_models.resnet().eval()
    data = tmp_path / "const.npz"
    np.savez(data, pixel_values=np.zeros((2, 3, 32, 32), np.float32))
    x = {"pixel_values": torch.randn(2, 3, 32, 32)}
    report = _export(model, x, tmp_path, variants=("int8",), calibrate=str(data))
    int8 = _row(report, "int8")
    assert not int8.passed and not report.passed
    assert int8.divergence is not None
    assert int8.divergence.location.module.startswith("embedder")
    got = _ours(int8.path, x)[0]  # type: ignore[arg-type]
    assert _sqnr(_first(model, x), got) < 20
