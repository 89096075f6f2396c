"""Models whose export is wrong somewhere inside: exportkit must name the guilty module."""

import torch
from torch import nn


class Drift(nn.Module):
    """Behaves differently while being exported: its exported output is 5% too large."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.fc = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(x)
        if torch.compiler.is_exporting() or torch.jit.is_tracing():
            y = y * 1.05
        return y


class Block(nn.Module):
    def __init__(self, width: int, branch: nn.Module) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.branch = branch
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.act(self.branch(self.norm(x)))


class BuggyBranch(nn.Module):
    """A residual stack whose third block has a branch that drifts during export."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Linear(8, 16), nn.ReLU())
        self.blocks = nn.Sequential(
            Block(16, nn.Linear(16, 16)),
            Block(16, nn.Linear(16, 16)),
            Block(16, Drift(16)),
            Block(16, nn.Linear(16, 16)),
        )
        self.head = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))

    def example_inputs(self) -> tuple[torch.Tensor]:
        return (torch.randn(3, 8),)


class _BadSwish(torch.autograd.Function):
    """x * sigmoid(x) in PyTorch; its ONNX symbolic forgets the multiply."""

    @staticmethod
    def forward(ctx: object, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(x)

    @staticmethod
    def symbolic(g: torch.Graph, x: torch.Value) -> torch.Value:
        return g.op("Sigmoid", x)


class BadSwish(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _BadSwish.apply(x)


class CustomOpNet(nn.Module):
    """A conv net whose custom activation (an autograd Function) has a wrong ONNX symbolic."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.act1 = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.act2 = BadSwish()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act2(self.conv2(self.act1(self.conv1(x))))
        return self.fc(self.pool(y).flatten(1))

    def example_inputs(self) -> tuple[torch.Tensor]:
        return (torch.randn(2, 3, 8, 8),)


class FlattenTwo(nn.Module):
    """Flattens with a hard-coded batch of 2."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(12, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.view(2, -1))


class HardBatch(nn.Module):
    """A model whose head hard-codes the batch size via view(2, -1)."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Linear(4, 4)
        self.head = FlattenTwo()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.scale(x))


class Scaled(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


class DriftInCaller(nn.Module):
    """The drift is in the model's own code between two submodules, not inside either."""

    def __init__(self) -> None:
        super().__init__()
        self.first = Scaled()
        self.second = Scaled()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.first(x)
        if torch.compiler.is_exporting() or torch.jit.is_tracing():
            y = y + 0.1
        return self.second(y)


class TracedBatch(nn.Module):
    """Runs at any batch in PyTorch, but int(...) bakes the example batch into a traced graph."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Linear(4, 4)
        self.fc = nn.Linear(12, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.scale(x)
        return self.fc(y.reshape(int(y.shape[0]), -1))


class Pool(nn.Module):
    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return y.sum(-1)


class SilentBatch(nn.Module):
    """Like TracedBatch, but nothing fails to run: the traced graph just answers 2 rows."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Linear(4, 4)
        self.pool = Pool()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.scale(x)
        return self.pool(y.reshape(int(y.shape[0]), -1))
