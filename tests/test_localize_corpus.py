"""Localization on real architectures: make one module's exported output drift, and exportkit
must name exactly that module, on both exporters.

The drift is injected into the module's own forward (only while exporting), so that the ONNX
graph is wrong inside that module's scope and eager PyTorch is not.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from exportkit.export import export_model
from exportkit.inputs import InputSpec, make_inputs
from exportkit.validate import make_cases, validate
from tests.models import convnets, recurrent, structured
from tests.test_corpus import VOCAB, _text

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _hf(name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        from tests.corpus import hf_models

        module = getattr(hf_models, name)()
        assert isinstance(module, nn.Module)
        return module

    return build


def _middle_layer(model: nn.Module, inputs: dict[str, torch.Tensor]) -> str:
    """The Linear/Conv module in the middle of the order PyTorch runs them in."""
    order: list[str] = []
    hooks = [
        m.register_forward_hook(lambda *_, p=p: order.append(p))
        for p, m in model.named_modules()
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d))
    ]
    with torch.no_grad():
        model(**inputs)
    for h in hooks:
        h.remove()
    unique = list(dict.fromkeys(order))
    return unique[len(unique) // 2]


def _drift_inside(module: nn.Module) -> None:
    forward = module.forward

    def drifting(*args: Any, **kwargs: Any) -> Any:
        out = forward(*args, **kwargs)
        if torch.compiler.is_exporting() or torch.jit.is_tracing():
            out = out * 1.5 + 0.1
        return out

    module.forward = drifting  # type: ignore[method-assign]


slow = pytest.mark.slow
CASES = [
    pytest.param(
        "gpt2", _hf("gpt2"), _text(VOCAB, mask=False), "dynamo", id="gpt2", marks=pytest.mark.slow
    ),
    pytest.param("t5-encoder", _hf("t5_encoder"), _text(VOCAB), "torchscript", id="t5-encoder-ts"),
    # BERT's initial weights (std 0.02) make attention near uniform, so a drifting query does not
    # show in its outputs: drift its feed-forward instead.
    pytest.param("bert", _hf("bert"), _text(VOCAB), "dynamo", id="bert", marks=slow),
    pytest.param("bert", _hf("bert"), _text(VOCAB), "torchscript", id="bert-ts", marks=slow),
    pytest.param("llama", _hf("llama"), _text(VOCAB, mask=False), "dynamo", id="llama", marks=slow),
    pytest.param("vit", _hf("vit"), ["pixel_values:2x3x32x32"], "dynamo", id="vit", marks=slow),
    pytest.param(
        "resnet", _hf("resnet"), ["pixel_values:2x3x32x32"], "dynamo", id="resnet", marks=slow
    ),
    # Slow: the fast suite keeps UNet on TorchScript, and dynamo on convolutions with branches
    # (test_localize.py) and on a recurrent cell (test_module_called_in_a_loop below).
    pytest.param("unet", convnets.UNet, ["x:2x3x32x32"], "dynamo", id="unet", marks=slow),
    pytest.param(
        "unet", convnets.UNet, ["x:2x3x32x32"], "torchscript", id="unet-ts", marks=pytest.mark.slow
    ),
    pytest.param(
        "bilstm", recurrent.BiLSTMTagger, ["tokens:2x12:int64"], "dynamo", id="bilstm", marks=slow
    ),
    pytest.param(
        "multitask",
        structured.MultiTask,
        ["features:2x5x12", "mask:2x5:bool"],
        "torchscript",
        id="multitask-ts",
    ),
]


TARGETS = {"bert": "encoder.layer.0.intermediate.dense"}


@pytest.mark.parametrize(("name", "build", "inputs", "exporter"), CASES)
def test_the_drifting_module_is_named(
    tmp_path: Path,
    name: str,
    build: Callable[[], nn.Module],
    inputs: Any,
    exporter: str,
) -> None:
    model = build().eval()
    if callable(inputs):
        ex = make_inputs(model, declared=inputs)
    else:
        ex = make_inputs(model, [InputSpec.parse(s) for s in inputs])
    target = TARGETS.get(name) or _middle_layer(model, dict(ex.tensors))
    _drift_inside(model.get_submodule(target))
    result = export_model(model, ex, tmp_path / f"{name}.onnx", exporter=exporter)  # type: ignore[arg-type]
    assert result.exporter == exporter
    check = validate(model, result.path, make_cases(model, ex, sizes=False))
    assert not check.passed
    div = check.divergence
    assert div is not None and div.kind == "values"
    assert div.location.module == target, div.detail
    assert div.inputs_matched is True and div.matched > 0


def test_module_called_in_a_loop(tmp_path: Path) -> None:
    # An LSTMCell stepped four times hands its state from call to call inside one shared scope;
    # the drifting output layer (also called four times) must still be the one named.
    model = recurrent.LSTMCellLoop().eval()
    ex = make_inputs(model, [InputSpec.parse("x:2x6")])
    _drift_inside(model.out)
    result = export_model(model, ex, tmp_path / "m.onnx")
    check = validate(model, result.path, make_cases(model, ex, sizes=False))
    div = check.divergence
    assert div is not None and div.location.module == "out" and div.inputs_matched is True
    assert div.location.code == "inp = self.out(h)"
