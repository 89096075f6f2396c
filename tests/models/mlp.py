"""A tiny MLP; `Net` builds with no arguments, `make_net` is a factory, `net` an instance."""

import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.fc1 = nn.Linear(4, width)
        self.fc2 = nn.Linear(width, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x)))


class Wide(nn.Module):
    """Needs its width: building it bare must fail with a hint naming `width`."""

    def __init__(self, width: int, depth: int = 1) -> None:
        super().__init__()
        self.fc = nn.Linear(4, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


def make_net() -> nn.Module:
    return Net(width=5)


net = Net(width=6)
NOT_A_MODEL = 42
