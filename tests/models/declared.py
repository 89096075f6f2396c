"""Models that declare their own example inputs: on the module, or module-level in the file."""

import torch
from torch import nn


class WithMethod(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)

    def example_inputs(self) -> tuple[torch.Tensor, ...]:
        return (torch.randn(3, 4),)


class Plain(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(10, 3)

    def forward(self, ids: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        return self.emb(ids) * scale


def example_inputs() -> dict[str, torch.Tensor]:
    """Used for every model in this file that has no example_inputs() of its own."""
    return {"ids": torch.tensor([[0, 1, 2, 3, 4, 5, 9]] * 2), "scale": torch.ones(1)}
