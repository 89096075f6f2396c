"""A 604M-parameter MLP (2.4 GB of float32 weights): past protobuf's 2 GB limit."""

import torch
from torch import nn


class Huge(nn.Module):
    def __init__(self, drift: bool = False) -> None:
        super().__init__()
        self.layers = nn.Sequential(*[nn.Linear(8192, 8192) for _ in range(9)])
        self.drift = drift

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if self.drift and i == 4 and (torch.compiler.is_exporting() or torch.jit.is_tracing()):
                x = x * 1.05
        return x
