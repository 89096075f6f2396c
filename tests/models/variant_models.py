"""Tiny models for deployment variants: one whose intermediate overflows float16, a CNN, an MLP."""

from __future__ import annotations

import torch
from torch import nn


class Overflow(nn.Module):
    """``fc(x) * 1e3`` squared (~1e6, past float16's 65504), then layer-normalized: in float16
    the square is inf and the norm gives NaN; kept in float32, the output is small and exact.

    The norm is the output on purpose: onnxruntime's CPU provider runs float16 Mul in float32 and
    drops the casts between, so the overflow shows on CPU only where a float16 kernel
    (LayerNormalization) reads the value and is not itself squeezed between float32 nodes.
    """

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(16, 16)
        self.norm = nn.LayerNorm(16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(x) * 1e3
        return self.norm(h * h)

    def example_inputs(self) -> tuple[torch.Tensor]:
        return (torch.randn(2, 16),)


class SmallCNN(nn.Module):
    """Conv-BN-ReLU twice, pooled, a linear head: class scores (batch x 10)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1, stride=2),
            nn.BatchNorm2d(32),
            nn.ReLU(),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)).flatten(1))

    def example_inputs(self) -> tuple[torch.Tensor]:
        return (torch.randn(2, 3, 32, 32),)


class Cancel(nn.Module):
    """``a(x) - b(x)`` with weights ~100 that differ by ~0.01: float16 keeps ~0.06 of them, so
    the difference is lost in the conversion (precision, no overflow)."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(8, 8, bias=False)
        self.b = nn.Linear(8, 8, bias=False)
        with torch.no_grad():
            self.a.weight.fill_(100.0)
            self.b.weight.copy_(100.0 + 0.01 * torch.randn(8, 8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.a(x) - self.b(x)


class LosesPrecision(nn.Module):
    """A stem that float16 handles, then ``Cancel``: the fp16 variant fails in ``cancel``."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Linear(8, 8)
        self.cancel = Cancel()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cancel(torch.tanh(self.stem(x)))

    def example_inputs(self) -> tuple[torch.Tensor]:
        return (torch.randn(2, 8),)
