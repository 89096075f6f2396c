"""Tiny models for the graph-summary tests, with hand-computed MACs at the example inputs."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class TinyCNN(nn.Module):
    """x[2,3,16,16]. MACs: conv1 2*8*16*16 * 3*3*3 = 110,592; conv2 2*16*7*7 * 8*3*3 = 112,896;
    global average pool over 2*16*7*7 = 1,568 elements; fc 2*10*16 = 320. Total 225,376."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, stride=2), nn.ReLU()
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))

    @staticmethod
    def example_inputs() -> tuple[torch.Tensor]:
        return (torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0)),)

    MACS = 110_592 + 112_896 + 1_568 + 320


class SharedMLP(nn.Module):
    """One Linear applied twice, and a head tied to it: every shared weight counts once.

    x[4,16]. MACs: block twice 2 * 4*16*16 = 2,048; head (tied weight) 4*16*16 = 1,024.
    """

    def __init__(self) -> None:
        super().__init__()
        self.block = nn.Linear(16, 16)
        self.head = nn.Linear(16, 16, bias=False)
        self.head.weight = self.block.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.block(torch.relu(self.block(x)))))

    @staticmethod
    def example_inputs() -> tuple[torch.Tensor]:
        return (torch.randn(4, 16, generator=torch.Generator().manual_seed(0)),)

    MACS = 3 * 4 * 16 * 16


class Attention(nn.Module):
    """Two-head self-attention, x[2,6,16]. MACs: q, k, v, out projections 4 * 2*6*16*16 =
    12,288; q·kᵀ 2*2*6*6*8 = 1,152; softmax·v 1,152. Total 14,592."""

    def __init__(self, dim: int = 16, heads: int = 2) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s, e = x.shape
        h, d = self.heads, e // self.heads

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(b, s, h, d).transpose(1, 2)

        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        att = F.softmax(q @ k.transpose(-1, -2) / d**0.5, dim=-1)
        return self.out((att @ v).transpose(1, 2).reshape(b, s, e))

    @staticmethod
    def example_inputs() -> tuple[torch.Tensor]:
        return (torch.randn(2, 6, 16, generator=torch.Generator().manual_seed(0)),)

    MACS = 4 * 2 * 6 * 16 * 16 + 2 * (2 * 2 * 6 * 6 * 8)
