"""Recurrent models: stacked bidirectional LSTM tagger, GRU encoder with a final state, LSTM cell loop.

exportkit export tests/models/recurrent.py:BiLSTMTagger --input tokens:2x12:int64 --dynamic batch
"""

import torch
from torch import nn


class BiLSTMTagger(nn.Module):
    """Embedding -> 2-layer bidirectional LSTM -> per-token tag scores (a sequence tagger)."""

    def __init__(self, vocab: int = 50, dim: int = 16, hidden: int = 24, tags: int = 5) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.lstm = nn.LSTM(dim, hidden, num_layers=2, bidirectional=True, batch_first=True)
        self.head = nn.Linear(2 * hidden, tags)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(self.embed(tokens))
        return self.head(out)


class GRUEncoder(nn.Module):
    """Time-major 3-layer GRU over float features; returns every step and the final hidden states."""

    def __init__(self, features: int = 8, hidden: int = 16) -> None:
        super().__init__()
        self.gru = nn.GRU(features, hidden, num_layers=3, dropout=0.1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.gru(x)


class LSTMCellLoop(nn.Module):
    """An LSTMCell stepped in a Python loop over a fixed number of steps (an unrolled decoder)."""

    def __init__(self, features: int = 6, hidden: int = 12, steps: int = 4) -> None:
        super().__init__()
        self.cell = nn.LSTMCell(features, hidden)
        self.out = nn.Linear(hidden, features)
        self.steps = steps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.zeros(x.shape[0], self.cell.hidden_size)
        c = torch.zeros_like(h)
        outs = []
        inp = x
        for _ in range(self.steps):
            h, c = self.cell(inp, (h, c))
            inp = self.out(h)
            outs.append(inp)
        return torch.stack(outs, dim=1)
