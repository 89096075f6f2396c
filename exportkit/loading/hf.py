"""``hf:path/to/folder``: a HuggingFace transformers model built from a local config.json, offline.

Weights are loaded only when the folder holds them (``model.safetensors``, ``pytorch_model.bin``
or sharded indexes); otherwise the model is randomly initialized (seeded). Nothing is downloaded:
``HF_HUB_OFFLINE=1`` is set and every load passes ``local_files_only=True``. Example inputs come
from the config (vocabulary size, image size, channels) under forward's own parameter names.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from exportkit.errors import LoadError, SpecError, first_line
from exportkit.inputs import SuggestedInputs, TensorSpec
from exportkit.inputs.layers import BATCH, SEQ

if TYPE_CHECKING:
    from torch import nn

__all__ = ["WEIGHT_FILES", "hf_inputs", "load_hf"]

WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


def load_hf(
    folder: Path, overrides: Mapping[str, Any]
) -> tuple[nn.Module, SuggestedInputs, list[str]]:
    """Build the model a config folder describes; load its weights when present.

    Args:
        folder: a folder holding ``config.json`` (and optionally weights).
        overrides: config attributes to change (``--kwargs '{"num_hidden_layers": 2}'``).

    Returns:
        The model in eval mode, inputs from its config, and notes for the report.

    Raises:
        SpecError: no such folder, no config.json, or a config transformers cannot read.
        LoadError: transformers failed while building the model or loading its weights.
    """
    os.environ["HF_HUB_OFFLINE"] = "1"
    if not (folder / "config.json").is_file():
        what = "does not exist" if not folder.exists() else "holds no config.json"
        raise SpecError(
            f"hf:{folder} {what}",
            hint="point hf: at a folder holding a HuggingFace config.json (save one with config.save_pretrained(folder))",
        )
    try:
        import transformers
    except ImportError:
        raise SpecError(
            "hf: models need the transformers package", hint="pip install transformers"
        ) from None
    try:
        config = transformers.AutoConfig.from_pretrained(str(folder), local_files_only=True)
    except Exception as exc:
        raise SpecError(
            f"transformers cannot read {folder / 'config.json'}: {first_line(exc)}",
            hint="check model_type in config.json; it must be an architecture this transformers knows",
        ) from None
    notes = []
    for key, value in overrides.items():
        if not hasattr(config, key):
            raise SpecError(
                f"{type(config).__name__} has no attribute {key!r} to set from --kwargs",
                hint="--kwargs for hf: models sets config attributes, e.g. '{\"num_hidden_layers\": 2}'",
            )
        setattr(config, key, value)
    if getattr(config, "use_cache", False):
        config.use_cache = False
        notes.append("hf: use_cache=False (export without a key/value cache)")
    cls = _model_class(transformers, config)
    weights = [f for f in WEIGHT_FILES if (folder / f).is_file()]
    try:
        if weights:
            model = cls.from_pretrained(str(folder), config=config, local_files_only=True)
            notes.append(f"hf: weights from {folder / weights[0]}")
        else:
            model = (
                cls.from_config(config)  # type: ignore[no-untyped-call]
                if cls is transformers.AutoModel
                else cls._from_config(config)
            )
            notes.append(f"hf: no weights in {folder}; randomly initialized (seeded)")
    except Exception as exc:
        raise LoadError(
            f"building {cls.__name__} from {folder} failed: {first_line(exc)}",
            hint="check the config; run with --debug for the full error",
        ) from exc
    model.eval()
    return model, hf_inputs(model, config), notes


def _model_class(transformers: Any, config: Any) -> Any:
    """The class config.json names in ``architectures`` when transformers has it, else AutoModel."""
    for name in getattr(config, "architectures", None) or ():
        cls = getattr(transformers, name, None)
        if cls is not None:
            return cls
    return transformers.AutoModel


def _sub(config: Any, attr: str) -> Any:
    """A nested config (vision_config, text_config) or the config itself."""
    return getattr(config, attr, None) or config


def _max_positions(config: Any) -> int:
    for attr in ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length"):
        value = getattr(config, attr, None)
        if isinstance(value, int) and value > 2:
            return value
    return SEQ


def _image(config: Any) -> tuple[int, int, int]:
    vision = _sub(config, "vision_config")
    size = getattr(vision, "image_size", 224)
    h, w = (size, size) if isinstance(size, int) else (int(size[0]), int(size[-1]))
    return int(getattr(vision, "num_channels", 3)), int(h), int(w)


def hf_inputs(model: nn.Module, config: Any) -> SuggestedInputs:
    """Inputs a HuggingFace model takes, named by forward's parameters, sized by its config.

    ``input_ids`` (and ``decoder_input_ids`` for encoder-decoders) below ``vocab_size``,
    ``attention_mask`` all ones, ``token_type_ids`` below ``type_vocab_size``, ``pixel_values``
    at the config's channels and image size, ``input_values`` (audio) one second at 16 kHz,
    ``input_features`` at ``num_mel_bins`` x the encoder's input length.
    """
    params = inspect.signature(model.forward).parameters
    main = getattr(model, "main_input_name", "input_ids")
    text = _sub(config, "text_config")
    vocab = getattr(text, "vocab_size", None)
    seq = min(SEQ, _max_positions(text))
    specs: dict[str, TensorSpec] = {}
    if "input_ids" in params and isinstance(vocab, int) and vocab > 0:
        specs["input_ids"] = TensorSpec((BATCH, seq), "int64", 0, vocab)
        if "attention_mask" in params:
            specs["attention_mask"] = TensorSpec((BATCH, seq), "int64", 1, 2)
        types = getattr(text, "type_vocab_size", 0)
        if "token_type_ids" in params and isinstance(types, int) and types > 0:
            specs["token_type_ids"] = TensorSpec((BATCH, seq), "int64", 0, types)
    decoder = getattr(config, "is_encoder_decoder", False) and "decoder_input_ids" in params
    if decoder and isinstance(vocab, int) and vocab > 0:
        specs["decoder_input_ids"] = TensorSpec((BATCH, seq), "int64", 0, vocab)
    if "pixel_values" in params:
        specs["pixel_values"] = TensorSpec((BATCH, *_image(config)))
    if main == "input_values" and "input_values" in params:
        specs["input_values"] = TensorSpec((BATCH, 16000))
    if main == "input_features" and "input_features" in params:
        mels = int(getattr(config, "num_mel_bins", 80))
        frames = 2 * int(getattr(config, "max_source_positions", 1500))
        specs["input_features"] = TensorSpec((BATCH, mels, frames))
    return SuggestedInputs(specs=specs, source="config")
