"""A model calling a torch.library custom operator that has no ONNX translation."""

import torch
from torch import nn


@torch.library.custom_op("exportkit_tests::swish", mutates_args=())
def swish(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(x)


@swish.register_fake
def _(x: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(x)


class Act(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return swish(x)


class CustomOpModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.act = Act()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.fc(x))


def wrong_swish(x):  # type: ignore[no-untyped-def]
    """An ONNX translation of swish that forgets the multiply."""
    from onnxscript import opset18 as op

    return op.Sigmoid(x)


def right_swish(x):  # type: ignore[no-untyped-def]
    from onnxscript import opset18 as op

    return op.Mul(x, op.Sigmoid(x))


class Deeper(nn.Module):
    """The custom op sits in the middle of a small network."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(4, 8)
        self.block = CustomOpModel2()
        self.out = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.block(self.inp(x)))


class CustomOpModel2(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.act = Act()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.fc(x))
