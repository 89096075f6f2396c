"""transformers architectures built from tiny configs, offline: no download, random weights.

Each function is a model spec: ``exportkit export tests/corpus/hf_models.py:bert --input ...``.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
import transformers as tf
from torch import nn

VOCAB = 96
# Token ids the tokenizer would reserve; inside the tiny vocabulary.
TOKENS = {"pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2}
ENCODER = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "max_position_embeddings": 64,
}
VISION = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
}


def _seeded() -> None:
    """Random weights, the same every run."""
    torch.manual_seed(0)


def bert() -> nn.Module:
    _seeded()
    return tf.BertModel(tf.BertConfig(vocab_size=VOCAB, **ENCODER, **TOKENS))


def bert_classifier() -> nn.Module:
    _seeded()
    return tf.BertForSequenceClassification(
        tf.BertConfig(vocab_size=VOCAB, num_labels=3, **ENCODER, **TOKENS)
    )


def distilbert() -> nn.Module:
    _seeded()
    config = tf.DistilBertConfig(
        vocab_size=VOCAB, dim=32, n_layers=2, n_heads=2, hidden_dim=64, max_position_embeddings=64
    )
    return tf.DistilBertModel(config)


def roberta() -> nn.Module:
    _seeded()
    return tf.RobertaModel(
        tf.RobertaConfig(vocab_size=VOCAB, **{**ENCODER, **TOKENS, "pad_token_id": 1})
    )


def albert() -> nn.Module:
    _seeded()
    return tf.AlbertModel(tf.AlbertConfig(vocab_size=VOCAB, embedding_size=16, **ENCODER, **TOKENS))


def gpt2() -> nn.Module:
    _seeded()
    config = tf.GPT2Config(
        vocab_size=VOCAB, n_positions=64, n_embd=32, n_layer=2, n_head=2, use_cache=False, **TOKENS
    )
    return tf.GPT2LMHeadModel(config)


def llama() -> nn.Module:
    _seeded()
    config = tf.LlamaConfig(
        vocab_size=VOCAB, num_key_value_heads=1, use_cache=False, **ENCODER, **TOKENS
    )
    return tf.LlamaModel(config)


def mistral_lm() -> nn.Module:
    _seeded()
    config = tf.MistralConfig(
        vocab_size=VOCAB, num_key_value_heads=1, use_cache=False, **ENCODER, **TOKENS
    )
    return tf.MistralForCausalLM(config)


def qwen2() -> nn.Module:
    _seeded()
    config = tf.Qwen2Config(
        vocab_size=VOCAB, num_key_value_heads=1, use_cache=False, **ENCODER, **TOKENS
    )
    return tf.Qwen2Model(config)


def t5_encoder() -> nn.Module:
    _seeded()
    config = tf.T5Config(vocab_size=VOCAB, d_model=32, d_kv=16, d_ff=64, num_layers=2, num_heads=2)
    return tf.T5EncoderModel(config)


def t5() -> nn.Module:
    _seeded()
    config = tf.T5Config(
        vocab_size=VOCAB, d_model=32, d_kv=16, d_ff=64, num_layers=2, num_heads=2, use_cache=False
    )
    return tf.T5Model(config)


def bart() -> nn.Module:
    _seeded()
    config = tf.BartConfig(
        vocab_size=VOCAB,
        d_model=32,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_position_embeddings=64,
        use_cache=False,
        decoder_start_token_id=2,
        **TOKENS,
    )
    return tf.BartModel(config)


def clip_text() -> nn.Module:
    _seeded()
    return tf.CLIPTextModel(tf.CLIPTextConfig(vocab_size=VOCAB, **ENCODER, **TOKENS))


def clip_vision() -> nn.Module:
    _seeded()
    return tf.CLIPVisionModel(tf.CLIPVisionConfig(image_size=32, patch_size=8, **VISION))


def vit() -> nn.Module:
    _seeded()
    return tf.ViTModel(tf.ViTConfig(image_size=32, patch_size=8, **VISION))


def deit() -> nn.Module:
    _seeded()
    return tf.DeiTModel(tf.DeiTConfig(image_size=32, patch_size=8, **VISION))


def swin() -> nn.Module:
    _seeded()
    config = tf.SwinConfig(
        image_size=32, patch_size=4, embed_dim=16, depths=[1, 1], num_heads=[1, 2], window_size=4
    )
    return tf.SwinModel(config)


def convnext() -> nn.Module:
    _seeded()
    return tf.ConvNextModel(tf.ConvNextConfig(hidden_sizes=[8, 16], depths=[1, 1], num_stages=2))


def resnet() -> nn.Module:
    _seeded()
    config = tf.ResNetConfig(
        embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic"
    )
    return tf.ResNetModel(config)


def mobilevit() -> nn.Module:
    _seeded()
    config = tf.MobileViTConfig(
        image_size=64,
        hidden_sizes=[16, 24, 32],
        neck_hidden_sizes=[8, 8, 16, 16, 24, 32, 64],
        num_attention_heads=2,
    )
    return tf.MobileViTModel(config)


def segformer() -> nn.Module:
    _seeded()
    config = tf.SegformerConfig(
        num_encoder_blocks=2,
        depths=[1, 1],
        sr_ratios=[2, 1],
        hidden_sizes=[8, 16],
        num_attention_heads=[1, 2],
        patch_sizes=[7, 3],
        strides=[4, 2],
        decoder_hidden_size=16,
        num_labels=3,
    )
    return tf.SegformerForSemanticSegmentation(config)


def whisper_encoder() -> nn.Module:
    _seeded()
    config = tf.WhisperConfig(
        vocab_size=VOCAB,
        num_mel_bins=16,
        d_model=32,
        encoder_layers=2,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_source_positions=16,
        max_target_positions=32,
        decoder_start_token_id=1,
        **TOKENS,
    )
    return tf.WhisperModel(config).get_encoder()


def wav2vec2() -> nn.Module:
    _seeded()
    config = tf.Wav2Vec2Config(
        vocab_size=32,
        conv_dim=(8, 8),
        conv_stride=(5, 2),
        conv_kernel=(10, 3),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        **VISION,
    )
    return tf.Wav2Vec2Model(config)


def configs() -> dict[str, tf.PretrainedConfig]:
    """Tiny configs for ``exportkit export hf:FOLDER`` (each names its class in architectures)."""
    small = {"hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 64}
    made = {
        "gpt-neox": tf.GPTNeoXConfig(
            vocab_size=VOCAB, num_hidden_layers=2, max_position_embeddings=64, **small, **TOKENS
        ),
        "phi": tf.PhiConfig(
            vocab_size=VOCAB, num_hidden_layers=2, max_position_embeddings=64, **small, **TOKENS
        ),
        "opt": tf.OPTConfig(
            vocab_size=VOCAB,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            ffn_dim=64,
            word_embed_proj_dim=32,
            max_position_embeddings=64,
            **TOKENS,
        ),
        "electra": tf.ElectraConfig(
            vocab_size=VOCAB,
            embedding_size=16,
            num_hidden_layers=2,
            max_position_embeddings=64,
            num_labels=2,
            **small,
            **TOKENS,
        ),
        "deberta-v2": tf.DebertaV2Config(
            vocab_size=VOCAB, num_hidden_layers=2, max_position_embeddings=64, **small, **TOKENS
        ),
        "dinov2": tf.Dinov2Config(
            image_size=32,
            patch_size=8,
            num_hidden_layers=2,
            hidden_size=32,
            num_attention_heads=2,
            mlp_ratio=2,
        ),
        "mobilenet-v2": tf.MobileNetV2Config(image_size=32, depth_multiplier=0.25, num_labels=4),
        "hubert": tf.HubertConfig(
            vocab_size=32,
            conv_dim=(8, 8),
            conv_stride=(5, 2),
            conv_kernel=(10, 3),
            num_conv_pos_embeddings=16,
            num_conv_pos_embedding_groups=2,
            num_hidden_layers=2,
            **small,
        ),
        "marian": tf.MarianConfig(
            vocab_size=VOCAB,
            d_model=32,
            encoder_layers=1,
            decoder_layers=1,
            encoder_attention_heads=2,
            decoder_attention_heads=2,
            encoder_ffn_dim=64,
            decoder_ffn_dim=64,
            max_position_embeddings=64,
            decoder_start_token_id=0,
            **TOKENS,
        ),
    }
    classes = {
        "gpt-neox": "GPTNeoXForCausalLM",
        "phi": "PhiForCausalLM",
        "opt": "OPTForCausalLM",
        "electra": "ElectraForSequenceClassification",
        "deberta-v2": "DebertaV2Model",
        "dinov2": "Dinov2Model",
        "mobilenet-v2": "MobileNetV2ForImageClassification",
        "hubert": "HubertModel",
        "marian": "MarianMTModel",
    }
    out = {}
    for name, cls in classes.items():
        config = made[name]
        assert config is not None
        config.architectures = [cls]
        out[name] = config
    return out


def gpt2_with_cache() -> nn.Module:
    """GPT-2 as configured for generation: it also returns its key/value cache object."""
    _seeded()
    config = tf.GPT2Config(
        vocab_size=VOCAB, n_positions=64, n_embd=32, n_layer=2, n_head=2, use_cache=True, **TOKENS
    )
    return tf.GPT2LMHeadModel(config)
