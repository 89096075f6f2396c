"""Convolutional models beyond a plain 2d CNN: a small UNet, 1d and 3d nets, depthwise-separable.

exportkit export tests/models/convnets.py:UNet --input x:2x3x32x32 --dynamic batch
"""

import torch
from torch import nn
from torch.nn import functional as F


def _double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """Two-level UNet: max-pool down, transposed-conv and bilinear up, skip concatenations."""

    def __init__(self, channels: int = 3, classes: int = 2, width: int = 8) -> None:
        super().__init__()
        self.enc1 = _double_conv(channels, width)
        self.enc2 = _double_conv(width, 2 * width)
        self.bottom = _double_conv(2 * width, 4 * width)
        self.up2 = nn.ConvTranspose2d(4 * width, 2 * width, 2, stride=2)
        self.dec2 = _double_conv(4 * width, 2 * width)
        self.dec1 = _double_conv(3 * width, width)
        self.head = nn.Conv2d(width, classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.enc1(x)
        e2 = self.enc2(F.max_pool2d(e1, 2))
        b = self.bottom(F.max_pool2d(e2, 2))
        d2 = self.dec2(torch.cat([self.up2(b), e2], dim=1))
        up1 = F.interpolate(d2, size=e1.shape[-2:], mode="bilinear", align_corners=False)
        return self.head(self.dec1(torch.cat([up1, e1], dim=1)))


class DepthwiseSeparable(nn.Module):
    """MobileNet-style: depthwise 3x3 + pointwise 1x1 blocks with ReLU6, a squeeze-excite, a head."""

    def __init__(self, width: int = 16, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, width, 3, stride=2, padding=1)
        blocks = []
        for stride in (1, 2, 1):
            blocks += [
                nn.Conv2d(width, width, 3, stride=stride, padding=1, groups=width, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU6(),
                nn.Conv2d(width, width, 1, bias=False),
                nn.BatchNorm2d(width),
                nn.Hardswish(),
            ]
        self.blocks = nn.Sequential(*blocks)
        self.se = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(width, 4, 1), nn.ReLU(), nn.Conv2d(4, width, 1)
        )
        self.head = nn.Linear(width, classes)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        y = self.blocks(self.stem(image))
        y = y * torch.sigmoid(self.se(y))
        return self.head(y.mean(dim=(2, 3)))


class Conv1dNet(nn.Module):
    """A dilated, causal-padded 1d conv stack over a signal (TCN-style), with GroupNorm and GELU."""

    def __init__(self, channels: int = 4, width: int = 16) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = channels
        for dilation in (1, 2, 4):
            layers += [
                nn.ConstantPad1d((2 * dilation, 0), 0.0),
                nn.Conv1d(cin, width, 3, dilation=dilation),
                nn.GroupNorm(4, width),
                nn.GELU(),
            ]
            cin = width
        self.net = nn.Sequential(*layers)
        self.out = nn.Conv1d(width, 1, 1)

    def forward(self, signal: torch.Tensor) -> torch.Tensor:
        return self.out(self.net(signal))


class Conv3dNet(nn.Module):
    """A video/volume classifier: Conv3d, BatchNorm3d, MaxPool3d, global average pool."""

    def __init__(self, width: int = 8, classes: int = 4) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv3d(1, width, 3, padding=1),
            nn.BatchNorm3d(width),
            nn.ReLU(),
            nn.MaxPool3d(2),
            nn.Conv3d(width, 2 * width, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool3d(1),
        )
        self.head = nn.Linear(2 * width, classes)

    def forward(self, volume: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(volume).flatten(1))
