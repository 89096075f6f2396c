"""Models that are wrong in ways exportkit must catch."""

import torch
from torch import nn


class Raises(nn.Module):
    """forward raises on every input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise ValueError("this model is broken on purpose")


class FixedBatch(nn.Module):
    """view(2, -1) hard-codes the batch size: exports fine, breaks at any other batch."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(12, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.view(2, -1))


class ExportDrift(nn.Module):
    """Behaves differently while being exported: the exported graph is wrong by 5%."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(x)
        if torch.compiler.is_exporting() or torch.jit.is_tracing():
            y = y * 1.05
        return y


class DynamoOnlyDrift(nn.Module):
    """Wrong only while torch.export traces it: the dynamo file is off by 5%, TorchScript's right."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(x)
        if torch.compiler.is_exporting():
            y = y * 1.05
        return y
