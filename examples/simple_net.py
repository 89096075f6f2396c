"""The seed network: Linear(10, 20) -> ReLU -> Linear(20, 2).

exportkit export examples/simple_net.py:SimpleNet --input x:2x10 -o out/simple_net.onnx
"""

import torch
from torch import nn


class SimpleNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(10, 20)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(20, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.relu(self.fc1(x)))


def example_inputs() -> tuple[torch.Tensor]:
    """Used when no --input is given: a batch of 2 vectors of 10 features."""
    return (torch.randn(2, 10),)
