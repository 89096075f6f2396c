"""Models for export_bench.py: plain MLPs of a chosen size (each function is a model spec).

exportkit export benchmarks/_export_models.py:mlp_100m --input x:2x4096 --dynamic batch
"""

from __future__ import annotations

import torch
from torch import nn


class MLP(nn.Module):
    """``depth`` square Linear layers with GELU between them."""

    def __init__(self, width: int, depth: int) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        layers: list[nn.Module] = []
        for i in range(depth):
            # Cheap seeded weights: nn.Linear's own init costs seconds at this size, on both sides.
            linear = torch.nn.utils.skip_init(nn.Linear, width, width)
            with torch.no_grad():
                linear.weight.uniform_(-(width**-0.5), width**-0.5, generator=gen)
                linear.bias.uniform_(-0.1, 0.1, generator=gen)
            layers.append(linear)
            if i < depth - 1:
                layers.append(nn.GELU())
        self.layers = nn.Sequential(*layers)
        self.width = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def mlp_100m() -> MLP:
    """100.7M parameters (403 MB of float32 weights)."""
    return MLP(4096, 6)


def mlp_600m() -> MLP:
    """604M parameters (2.42 GB of float32 weights): past protobuf's 2 GB limit."""
    return MLP(8192, 9)
