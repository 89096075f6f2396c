"""Encoder-decoders from tiny configs (never downloaded), for ``--steps`` with the
cross-attention cache as state; one carries a deliberate bug.

``t5`` and ``whisper`` are the models as transformers builds them. ``transposed_cross_t5``'s
first decoder block writes its cross-attention keys into the cache transposed (batch x heads x
head_dim x encoder) when it computes them (the prefill), while every later step reads them as
batch x heads x encoder x head_dim: the prefill's own outputs are right, and step 1 breaks in
``model.decoder.block.0.layer.1.EncDecAttention``.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def t5_config() -> Any:
    import transformers

    return transformers.T5Config(
        vocab_size=99, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
        decoder_start_token_id=0, architectures=["T5ForConditionalGeneration"],
    )  # fmt: skip


def whisper_config() -> Any:
    import transformers

    return transformers.WhisperConfig(
        vocab_size=99, d_model=32, encoder_layers=1, decoder_layers=2, encoder_attention_heads=4,
        decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64, num_mel_bins=8,
        max_source_positions=16, max_target_positions=64, pad_token_id=1, bos_token_id=2,
        eos_token_id=3, decoder_start_token_id=2,
        architectures=["WhisperForConditionalGeneration"],
    )  # fmt: skip


def t5() -> Any:
    import transformers

    return transformers.T5ForConditionalGeneration(t5_config()).eval()


def whisper() -> Any:
    import transformers

    return transformers.WhisperForConditionalGeneration(whisper_config()).eval()


def transposed_cross_t5() -> Any:
    model = t5()
    attention = model.decoder.block[0].layer[1].EncDecAttention
    fresh: dict[str, bool] = {}

    def before(module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        cache = kwargs.get("cache")
        updated = getattr(cache, "is_updated", {}).get(module.layer_idx)
        fresh["now"] = cache is not None and not updated

    def after(module: Any, args: Any, kwargs: dict[str, Any], output: Any) -> None:
        if fresh.get("now"):  # the keys were just computed: stored in another layout
            layer = kwargs["cache"].cross_attention_cache.layers[module.layer_idx]
            layer.keys = layer.keys.transpose(2, 3)

    attention.register_forward_pre_hook(before, with_kwargs=True)
    attention.register_forward_hook(after, with_kwargs=True)
    return model


# A hand-written one-layer encoder-decoder's decoder as the two graphs exportkit writes for a
# transformers one (the fast tests export these with the TorchScript exporter in a second).


class CrossAttention(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.q, self.k, self.v = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)

    def keys(self, encoder: Any) -> tuple[Any, Any]:
        """batch x 1 head x encoder x dim, computed once from the encoder's output."""
        return self.k(encoder)[:, None], self.v(encoder)[:, None]

    def forward(self, h: Any, key: Any, value: Any) -> Any:
        q = self.q(h)[:, None]
        weights = torch.softmax(q @ key.transpose(2, 3) / key.shape[-1] ** 0.5, dim=-1)
        return h + (weights @ value)[:, 0]


class CrossCore(nn.Module):
    def __init__(self, vocab: int = 40, dim: int = 16) -> None:
        super().__init__()
        self.embed, self.qkv = nn.Embedding(vocab, dim), nn.Linear(dim, 3 * dim)
        self.cross, self.head = CrossAttention(dim), nn.Linear(dim, vocab)

    def own(self, ids: Any, past_k: Any, past_v: Any) -> tuple[Any, Any, Any]:
        h = self.embed(ids)
        q, k, v = self.qkv(h)[:, None].chunk(3, dim=-1)
        k, v = torch.cat([past_k, k], dim=2), torch.cat([past_v, v], dim=2)
        weights = torch.softmax(q @ k.transpose(2, 3) / k.shape[-1] ** 0.5, dim=-1)
        return h + (weights @ v)[:, 0], k, v


class CrossPrefill(nn.Module):
    """decoder_input_ids + encoder_hidden_states -> logits, the cache and the cross cache."""

    def __init__(self, core: Any) -> None:
        super().__init__()
        self.core = core

    def cross_key(self, key: Any) -> Any:
        return key

    def forward(self, decoder_input_ids: Any, encoder_hidden_states: Any) -> dict[str, Any]:
        ck, cv = self.core.cross.keys(encoder_hidden_states)
        empty = ck[:, :, :0]
        h, k, v = self.core.own(decoder_input_ids, empty, empty)
        return {
            "logits": self.core.head(self.core.cross(h, ck, cv)),
            "present.0.key": k, "present.0.value": v,
            "present.0.cross.key": self.cross_key(ck), "present.0.cross.value": cv,
        }  # fmt: skip


class TransposedCrossPrefill(CrossPrefill):
    """Returns the cross keys as batch x 1 x dim x encoder; the step reads batch x 1 x encoder x dim."""

    def cross_key(self, key: Any) -> Any:
        return key.transpose(2, 3)


class CrossStep(nn.Module):
    """The step: reads both caches, returns the self-attention cache only."""

    def __init__(self, core: Any) -> None:
        super().__init__()
        self.core = core

    def forward(
        self,
        decoder_input_ids: Any,
        past_key_values_0_key: Any,
        past_key_values_0_value: Any,
        past_key_values_0_cross_key: Any,
        past_key_values_0_cross_value: Any,
    ) -> dict[str, Any]:
        h, k, v = self.core.own(decoder_input_ids, past_key_values_0_key, past_key_values_0_value)
        h = self.core.cross(h, past_key_values_0_cross_key, past_key_values_0_cross_value)
        return {"logits": self.core.head(h), "present.0.key": k, "present.0.value": v}
