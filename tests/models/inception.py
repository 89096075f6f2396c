"""An Inception-style network: blocks of parallel branches joined by a Concat, as in
torchvision's Inception v3 (BasicConv2d = conv, BatchNorm, ReLU; pooling branches in forward).

exportkit export tests/models/inception.py:Inception --input x:2x3x16x16
"""

import torch
from torch import nn
from torch.nn import functional as F


class BasicConv2d(nn.Module):
    def __init__(self, cin: int, cout: int, **kwargs: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class InceptionA(nn.Module):
    """Four branches at the same size: 1x1, 5x5, double 3x3, pool; concatenated."""

    def __init__(self, cin: int, pool: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 16, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(cin, 12, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(12, 16, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 16, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(16, 24, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(24, 24, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(F.avg_pool2d(x, kernel_size=3, stride=1, padding=1))
        return torch.cat([b1, b5, b3, bp], 1)


class InceptionB(nn.Module):
    """Grid reduction: a stride-2 3x3, a double 3x3, and a max pool; concatenated."""

    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 48, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 16, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(16, 24, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(24, 24, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3(x)
        bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([b3, bd, bp], 1)


class Inception(nn.Module):
    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.stem = BasicConv2d(3, 32, kernel_size=3, padding=1)
        self.Mixed_5b = InceptionA(32, pool=8)
        self.Mixed_5c = InceptionA(64, pool=8)
        self.Mixed_6a = InceptionB(64)
        self.fc = nn.Linear(48 + 24 + 64, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.Mixed_6a(self.Mixed_5c(self.Mixed_5b(self.stem(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))

    def example_inputs(self) -> tuple[torch.Tensor]:
        return (torch.randn(2, 3, 16, 16),)


class Untrained(Inception):
    """Unit-variance random weights and fresh BatchNorm: nothing keeps the activations at
    scale. Its output is the last block's feature map, values up to about 1e9, where float32
    rounding alone exceeds atol at the elements near zero."""

    def __init__(self) -> None:
        super().__init__()
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.normal_(module.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.Mixed_6a(self.Mixed_5c(self.Mixed_5b(self.stem(x))))


class _Drift(nn.Module):
    """Identity in PyTorch; twice as large in the exported graph."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.compiler.is_exporting() or torch.jit.is_tracing():
            return x * 2
        return x


class BranchDrift(Inception):
    """The export of one branch of the grid-reduction block is wrong (doubled)."""

    def __init__(self) -> None:
        super().__init__()
        self.Mixed_6a.branch3x3dbl_3 = nn.Sequential(self.Mixed_6a.branch3x3dbl_3, _Drift())


class _DriftingBatchNorm(nn.BatchNorm2d):
    """A BatchNorm whose exported graph doubles its output."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)
        if torch.compiler.is_exporting() or torch.jit.is_tracing():
            return y * 2
        return y


class FoldedDrift(nn.Module):
    """A stem and a grid-reduction block whose stride-2 branch's BatchNorm is exported wrong.

    Exporters fold a BatchNorm into the Conv before it, so the one ONNX scope left takes the
    Conv's input (64x16x16 here) where PyTorch's BatchNorm took 48x7x7: a blame must not
    compare those two.
    """

    def __init__(self) -> None:
        super().__init__()
        self.stem = BasicConv2d(3, 64, kernel_size=3, padding=1)
        self.Mixed_6a = InceptionB(64)
        self.Mixed_6a.branch3x3.bn = _DriftingBatchNorm(48, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.Mixed_6a(self.stem(x))

    def example_inputs(self) -> tuple[torch.Tensor]:
        return (torch.randn(2, 3, 16, 16),)
