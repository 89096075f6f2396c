"""Models whose outputs are too small or too flat for a parity check to mean anything.

Random weights shrink a deep stack's activations layer after layer (fresh BatchNorm does not
renormalize them), so every output lands far below the default atol: a file computing anything
near zero would pass. exportkit must call such outputs unproven.

exportkit export tests/models/unproven.py:Shrinking --input x:2x3x16x16
"""

import torch
from torch import nn


def _stage(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.Tanh()
    )


class Shrinking(nn.Module):
    """A deep conv/BatchNorm stack at default init, then a classifier: outputs of about 1e-7."""

    def __init__(self, depth: int = 12, width: int = 8, classes: int = 5) -> None:
        super().__init__()
        self.stem = _stage(3, width)
        self.body = nn.Sequential(*(_stage(width, width) for _ in range(depth)))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(width, classes, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.body(self.stem(x))).flatten(1))

    def example_inputs(self) -> tuple[torch.Tensor]:
        return (torch.randn(2, 3, 16, 16),)


class _Drift(nn.Module):
    """Identity in PyTorch; 5% too large in the exported graph."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.compiler.is_exporting() or torch.jit.is_tracing():
            return x * 1.05
        return x


class ShrinkingDrift(Shrinking):
    """``Shrinking`` whose export is wrong by 5% before the head: invisible at atol 1e-4."""

    def __init__(self) -> None:
        super().__init__()
        self.drift = _Drift()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.drift(self.pool(self.body(self.stem(x))).flatten(1)))


class ZeroHead(nn.Module):
    """A feature extractor with a zero-initialized head: every output is exactly 0."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Linear(8, 16), nn.ReLU())
        self.head = nn.Linear(16, 3)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def example_inputs(self) -> tuple[torch.Tensor]:
        return (torch.randn(4, 8),)
