"""Tiny HuggingFace configs (BERT-, GPT-2-, ViT-style), saved as the folders `hf:` specs read."""

from __future__ import annotations

from pathlib import Path


def write_configs(root: Path) -> dict[str, Path]:
    """One folder per architecture holding only config.json (no weights, nothing downloaded)."""
    from transformers import BertConfig, GPT2Config, ViTConfig

    small = {"num_attention_heads": 2, "intermediate_size": 64}
    configs = {
        "bert": BertConfig(
            vocab_size=99,
            hidden_size=32,
            num_hidden_layers=2,
            max_position_embeddings=64,
            architectures=["BertModel"],
            **small,
        ),
        "gpt2": GPT2Config(
            vocab_size=99,
            n_embd=32,
            n_layer=2,
            n_head=2,
            n_positions=64,
            bos_token_id=0,
            eos_token_id=0,
            architectures=["GPT2LMHeadModel"],
        ),
        "vit": ViTConfig(hidden_size=32, num_hidden_layers=2, image_size=32, patch_size=8, **small),
    }
    out = {}
    for name, config in configs.items():
        config.save_pretrained(root / name)
        out[name] = root / name
    return out
