"""Two inputs of different dtypes, dict and nested outputs."""

import torch
from torch import nn


class TwoInputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(10, 6)
        self.proj = nn.Linear(6, 6)

    def forward(self, ids: torch.Tensor, scale: torch.Tensor) -> dict[str, object]:
        h = self.proj(self.emb(ids)) * scale
        return {"hidden": h, "pooled": (h.mean(1), h.argmax(-1))}
