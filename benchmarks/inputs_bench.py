"""What input inference costs: make_inputs() with nothing given, next to one plain forward pass.

    python benchmarks/inputs_bench.py

Inference runs the model at least twice (a tagged probe run, then a plain confirming run) plus one
run per rejected guess; the ratio says how many plain forwards it cost, measured in the same run.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent.parent))
os.environ["HF_HUB_OFFLINE"] = "1"
warnings.simplefilter("ignore")

from exportkit.inputs import make_inputs  # noqa: E402


def _best(fns: list[Callable[[], object]], repeat: int = 7) -> list[float]:
    """Fastest of ``repeat`` runs of each, interleaved (the machine is shared: noise is large)."""
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            times[i].append(time.perf_counter() - start)
    return [min(t) for t in times]


def _models() -> dict[str, nn.Module]:
    from transformers import BertConfig, BertModel

    sys.path.insert(0, str(Path(__file__).parent.parent / "examples"))
    from conv_net import ConvNet

    from tests.models.zoo import LeNet, LSTMTagger

    bert = BertModel(BertConfig(num_hidden_layers=4))  # bert-base width, 4 layers
    return {
        "ConvNet (examples, 32x32 first guess)": ConvNet(),
        "LeNet (needs 28x28: several guesses)": LeNet(),
        "LSTMTagger": LSTMTagger(),
        "BERT-base width, 4 layers (generic inference)": bert,
    }


def main() -> None:
    torch.manual_seed(0)
    print(f"{'model':48} {'infer s':>8} {'forward s':>10} {'ratio':>6}  inputs")
    for name, model in _models().items():
        model.eval()
        ex = make_inputs(model)
        with torch.no_grad():
            infer, forward = _best(
                [lambda m=model: make_inputs(m), lambda m=model, t=ex.tensors: m(**t)]  # type: ignore[misc]
            )
        print(
            f"{name:48} {infer:8.3f} {forward:10.4f} {infer / forward:6.1f}  {' '.join(ex.describe())}"
        )


if __name__ == "__main__":
    main()
