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


def more_configs() -> dict[str, tuple[object, list[str]]]:
    """More architectures, each with the inputs its config must give (forward's names and order)."""
    import transformers as t

    small = {
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
    }
    seq2seq = {
        "encoder_layers": 1,
        "decoder_layers": 1,
        "encoder_attention_heads": 2,
        "decoder_attention_heads": 2,
        "encoder_ffn_dim": 64,
        "decoder_ffn_dim": 64,
    }
    ids = "input_ids:2x16:int64:[0,99)"
    mask = "attention_mask:2x16:int64:[1,2)"
    return {
        "t5": (
            t.T5Config(
                vocab_size=99,
                d_model=32,
                d_ff=64,
                num_layers=1,
                num_heads=2,
                d_kv=16,
                architectures=["T5ForConditionalGeneration"],
            ),
            [ids, mask, "decoder_input_ids:2x16:int64:[0,99)"],
        ),
        "llama": (
            t.LlamaConfig(
                vocab_size=99,
                num_key_value_heads=1,
                max_position_embeddings=64,
                architectures=["LlamaForCausalLM"],
                **small,
            ),
            [ids, mask],
        ),
        "clip": (
            t.CLIPConfig(
                text_config={"vocab_size": 99, "max_position_embeddings": 32, **small},
                vision_config={"image_size": 32, "patch_size": 8, **small},
                projection_dim=16,
            ),
            [ids, "pixel_values:2x3x32x32:float32", mask],
        ),
        "whisper": (
            t.WhisperConfig(
                vocab_size=99,
                d_model=32,
                num_mel_bins=16,
                max_source_positions=32,
                max_target_positions=32,
                pad_token_id=0,
                bos_token_id=0,
                eos_token_id=0,
                decoder_start_token_id=0,
                suppress_tokens=[],
                begin_suppress_tokens=[],
                **seq2seq,
            ),
            ["input_features:2x16x64:float32", "decoder_input_ids:2x16:int64:[0,99)"],
        ),
        "wav2vec2": (
            t.Wav2Vec2Config(
                vocab_size=32,
                conv_dim=(16, 16),
                conv_stride=(5, 2),
                conv_kernel=(10, 3),
                num_conv_pos_embeddings=16,
                num_conv_pos_embedding_groups=2,
                **small,
            ),
            ["input_values:2x16000:float32"],
        ),
    }
