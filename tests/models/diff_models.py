"""Tiny models for the diff tests: a conv stem, a stack of blocks with fresh GroupNorms, a head.

exportkit export tests/models/diff_models.py:Blocks --input x:2x3x16x16
"""

from __future__ import annotations

import torch
from torch import nn


class Block(nn.Module):
    """Conv, GroupNorm (freshly initialised: weight all ones, bias all zeros), SiLU."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(width, width, 3, padding=1)
        self.norm = nn.GroupNorm(4, width)
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(x)))


class Blocks(nn.Module):
    """stem -> ``depth`` Blocks -> global average pool -> Linear head with ``classes`` outputs."""

    def __init__(self, depth: int = 2, classes: int = 10, width: int = 8) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, width, 3, padding=1)
        self.blocks = nn.Sequential(*(Block(width) for _ in range(depth)))
        self.head = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)).mean(dim=(2, 3)))

    @staticmethod
    def example_inputs() -> tuple[torch.Tensor]:
        return (torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0)),)
