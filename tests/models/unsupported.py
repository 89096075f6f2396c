"""A model using an operator no ONNX exporter converts (torch.linalg.eigvalsh)."""

import torch
from torch import nn


class Spectral(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.linalg.eigvalsh(x @ x.transpose(-1, -2))


class UsesEigvalsh(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(4, 4)
        self.spectrum = Spectral()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spectrum(self.proj(x))
