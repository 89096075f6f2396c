"""Modules that carry state from one call to the next, as decoders are deployed, and deliberate
bugs in them that only chained steps reveal (exportkit export ... --steps 3).

exportkit export tests/models/stateful.py:RNNCellLoop --steps 3          # h0 -> hn
exportkit export tests/models/stateful.py:TinyDecoder --steps 3          # past_k -> present_k
"""

import math

import torch
from torch import nn


class RNNCellLoop(nn.Module):
    """A GRUCell stepped over a chunk of inputs; its hidden state h0 -> hn goes to the next call."""

    def __init__(self, features: int = 6, hidden: int = 12) -> None:
        super().__init__()
        self.cell = nn.GRUCell(features, hidden)
        self.out = nn.Linear(hidden, features)

    def forward(self, x: torch.Tensor, h0: torch.Tensor) -> dict[str, torch.Tensor]:
        h, outs = h0, []
        for t in range(x.shape[1]):
            h = self.cell(x[:, t], h)
            outs.append(self.out(h))
        return {"y": torch.stack(outs, 1), "hn": h}

    def example_inputs(self) -> dict[str, torch.Tensor]:
        return {"x": torch.randn(2, 3, 6), "h0": torch.zeros(2, 12)}


class Positions(nn.Module):
    """Learned positions of the new tokens: they start after the past."""

    def __init__(self, dim: int, max_len: int = 64) -> None:
        super().__init__()
        self.table = nn.Embedding(max_len, dim)

    def offset(self, past: torch.Tensor) -> torch.Tensor | int:
        return past.shape[1]

    def forward(self, ids: torch.Tensor, past: torch.Tensor) -> torch.Tensor:
        return self.table(torch.arange(ids.shape[1]) + self.offset(past))


class BakedPositions(Positions):
    """BUG: the offset goes through a Python int, which a trace records as a constant."""

    def offset(self, past: torch.Tensor) -> torch.Tensor | int:
        return int(past.shape[1])


class Attention(nn.Module):
    """One head over the past and the new tokens; returns the new cache (batch x past x dim)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.q, self.k, self.v, self.o = (nn.Linear(dim, dim) for _ in range(4))
        self.scale = 1 / math.sqrt(dim)

    def mask(self, new: int, past: torch.Tensor) -> torch.Tensor:
        """Token i of the new ones sees the whole past and new tokens up to itself."""
        total = past.shape[1] + new
        return torch.ones(new, total, dtype=torch.bool).tril(diagonal=past.shape[1])

    def layout(self, k: torch.Tensor) -> torch.Tensor:
        return k

    def forward(
        self, h: torch.Tensor, past_k: torch.Tensor, past_v: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        k = torch.cat([past_k, self.k(h)], 1)
        v = torch.cat([past_v, self.v(h)], 1)
        scores = self.q(h) @ k.transpose(1, 2) * self.scale
        scores = scores.masked_fill(~self.mask(h.shape[1], past_k), float("-inf"))
        return self.o(scores.softmax(-1) @ v), self.layout(k), v


class PastBlindAttention(Attention):
    """BUG: how much past the mask lets through is a Python int, so a trace keeps the export's:
    past the export's length, the oldest tokens are masked out (and a shorter past sees ahead)."""

    def mask(self, new: int, past: torch.Tensor) -> torch.Tensor:
        total = past.shape[1] + new
        return torch.ones(new, total, dtype=torch.bool).tril(diagonal=int(past.shape[1]))


class TransposedAttention(Attention):
    """BUG: the key cache comes out as batch x dim x length, not batch x length x dim as it goes in."""

    def layout(self, k: torch.Tensor) -> torch.Tensor:
        return k.transpose(1, 2)


class TinyDecoder(nn.Module):
    """Embedding + positions -> one attention layer with a tensor cache -> token logits."""

    positions_cls: type[Positions] = Positions
    attention_cls: type[Attention] = Attention

    def __init__(self, vocab: int = 40, dim: int = 16) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.positions = self.positions_cls(dim)
        self.attn = self.attention_cls(dim)
        self.head = nn.Linear(dim, vocab)
        self.vocab, self.dim = vocab, dim

    def forward(
        self, input_ids: torch.Tensor, past_k: torch.Tensor, past_v: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        h = self.embed(input_ids) + self.positions(input_ids, past_k)
        a, k, v = self.attn(h, past_k, past_v)
        return {"logits": self.head(h + a), "present_k": k, "present_v": v}

    def example_inputs(self) -> dict[str, torch.Tensor]:
        gen = torch.Generator().manual_seed(0)
        return {
            "input_ids": torch.randint(0, self.vocab, (2, 2), generator=gen),
            "past_k": torch.randn(2, 3, self.dim, generator=gen),
            "past_v": torch.randn(2, 3, self.dim, generator=gen),
        }


class BakedPositionDecoder(TinyDecoder):
    positions_cls = BakedPositions


class PastBlindMaskDecoder(TinyDecoder):
    attention_cls = PastBlindAttention


class TransposedCacheDecoder(TinyDecoder):
    attention_cls = TransposedAttention


class ChaoticCell(nn.Module):
    """A recurrent cell whose state map expands (orthogonal weights of gain 6 under a tanh): a
    perturbation of the state grows several-fold per step. One call of a float16 file stays
    within float16's tolerance; fed its own state, its rounding grows past it a few steps on."""

    def __init__(self, features: int = 6, hidden: int = 32, gain: float = 6.0) -> None:
        super().__init__()
        self.mix = nn.Linear(hidden, hidden, bias=False)
        nn.init.orthogonal_(self.mix.weight, gain=gain)
        self.inp = nn.Linear(features, hidden)
        self.out = nn.Linear(hidden, features)

    def forward(self, x: torch.Tensor, state: torch.Tensor) -> dict[str, torch.Tensor]:
        h = torch.tanh(self.mix(state) + self.inp(x))
        return {"y": self.out(h), "new_state": h}

    def example_inputs(self) -> dict[str, torch.Tensor]:
        return {"x": torch.randn(2, 6), "state": torch.randn(2, 32) * 0.5}
