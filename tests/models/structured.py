"""Models with keyword inputs and dict, tuple and nested outputs.

exportkit export tests/models/structured.py:Seq2SeqLike --input src:2x10:int64 --input tgt:2x6:int64 --dynamic batch
"""

import torch
from torch import nn


class MultiTask(nn.Module):
    """Keyword-only options and an optional input; returns a dict with a nested tuple inside."""

    def __init__(self, dim: int = 12) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(dim, 32), nn.GELU(), nn.Linear(32, 32))
        self.cls = nn.Linear(32, 3)
        self.box = nn.Linear(32, 4)

    def forward(
        self, features: torch.Tensor, *, mask: torch.Tensor | None = None, temperature: float = 2.0
    ) -> dict[str, object]:
        h = self.body(features)
        if mask is not None:
            h = h * mask.unsqueeze(-1).to(h.dtype)
        logits = self.cls(h) / temperature
        return {
            "logits": logits,
            "detection": (self.box(h).sigmoid(), logits.argmax(-1)),
            "pooled": h.mean(dim=1),
        }


class Seq2SeqLike(nn.Module):
    """nn.Transformer encoder-decoder with a causal mask built from the target length.

    Unless ``declare_causal``, nn.TransformerDecoder compares the mask with a causal one
    (``torch.equal``) to pick a fast path: a data-dependent branch torch.export cannot trace.
    """

    def __init__(self, vocab: int = 40, dim: int = 16, declare_causal: bool = True) -> None:
        super().__init__()
        self.declare_causal = declare_causal
        self.embed = nn.Embedding(vocab, dim)
        self.transformer = nn.Transformer(
            d_model=dim,
            nhead=2,
            num_encoder_layers=1,
            num_decoder_layers=1,
            dim_feedforward=32,
            dropout=0.0,
            batch_first=True,
        )
        self.lm_head = nn.Linear(dim, vocab)

    def forward(self, src: torch.Tensor, tgt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        causal = nn.Transformer.generate_square_subsequent_mask(tgt.shape[1])
        memory = self.transformer.encoder(self.embed(src))
        causal_flag = True if self.declare_causal else None
        out = self.transformer.decoder(
            self.embed(tgt), memory, tgt_mask=causal, tgt_is_causal=causal_flag
        )
        return self.lm_head(out), memory


class Siamese(nn.Module):
    """Two images through one shared encoder; returns a list of embeddings and a similarity."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten()
        )

    def forward(self, left: torch.Tensor, right: torch.Tensor) -> list[torch.Tensor]:
        a, b = self.encoder(left), self.encoder(right)
        return [a, b, nn.functional.cosine_similarity(a, b)]
