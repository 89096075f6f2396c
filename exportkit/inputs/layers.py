"""What a layer accepts: candidate input specs per layer kind and argument slot, for inference."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from exportkit.inputs.spec import TensorSpec

if TYPE_CHECKING:
    from torch import nn

__all__ = ["BATCH", "SEQ", "accepts", "kind_of"]

BATCH = 2  # never 1: exporters freeze size-1 dims
SEQ = 16
# Spatial sizes to try, most likely first: small and fast, then the common fixed sizes of models that
# end in a Linear over flattened features (ImageNet 224, MNIST 28, Inception 299, ...).
SIZES_1D = (64, 128, 256, 1000, 16, 400, 16000)
SIZES_2D = (32, 224, 28, 64, 96, 128, 256, 299, 384, 16, 8)
SIZES_3D = ((8, 32, 32), (16, 112, 112), (16, 16, 16), (4, 64, 64), (32, 32, 32))


def kind_of(module: Any) -> str:
    """The torch.nn layer a module is (or subclasses); TorchScript modules by their original name."""
    original = getattr(module, "original_name", None)
    if isinstance(original, str) and original in _RULES:
        return original
    for cls in type(module).__mro__:
        if cls.__name__ in _RULES and cls.__module__.startswith("torch.nn"):
            return cls.__name__
    return ""


def _float_dtype(module: Any) -> str:
    for p in module.parameters():
        if p.dtype.is_floating_point:
            return str(p.dtype).removeprefix("torch.")
    return "float32"


def _seq(batch_first: bool, *rest: int) -> tuple[int, ...]:
    return (BATCH, SEQ, *rest) if batch_first else (SEQ, BATCH, *rest)


def _linear(m: Any, slot: int | str, dt: str) -> list[TensorSpec]:
    if slot not in (0, "input"):
        return []
    return [TensorSpec((BATCH, m.in_features), dt), TensorSpec((BATCH, SEQ, m.in_features), dt)]


def _bilinear(m: Any, slot: int | str, dt: str) -> list[TensorSpec]:
    size = {
        0: m.in1_features,
        "input1": m.in1_features,
        1: m.in2_features,
        "input2": m.in2_features,
    }
    return [TensorSpec((BATCH, size[slot]), dt)] if slot in size else []


def _embedding(m: Any, slot: int | str, dt: str) -> list[TensorSpec]:
    if slot not in (0, "input"):
        return []
    # A sequence of ids per sample, else one id per sample (a class label, a user id).
    return [
        TensorSpec((BATCH, SEQ), "int64", 0, m.num_embeddings),
        TensorSpec((BATCH,), "int64", 0, m.num_embeddings),
    ]


def _conv(dims: int) -> Callable[[Any, int | str, str], list[TensorSpec]]:
    def rule(m: Any, slot: int | str, dt: str) -> list[TensorSpec]:
        if slot not in (0, "input"):
            return []
        c = m.in_channels
        if dims == 1:
            return [TensorSpec((BATCH, c, n), dt) for n in SIZES_1D]
        if dims == 2:
            return [TensorSpec((BATCH, c, n, n), dt) for n in SIZES_2D]
        return [TensorSpec((BATCH, c, *s), dt) for s in SIZES_3D]

    return rule


def _channels(dims: int) -> Callable[[Any, int | str, str], list[TensorSpec]]:
    """BatchNorm/InstanceNorm/GroupNorm: (N, C) or (N, C, *spatial)."""

    def rule(m: Any, slot: int | str, dt: str) -> list[TensorSpec]:
        if slot not in (0, "input"):
            return []
        c = int(m.num_features if hasattr(m, "num_features") else m.num_channels)
        if dims == 1:
            return [TensorSpec((BATCH, c), dt), TensorSpec((BATCH, c, SIZES_1D[0]), dt)]
        if dims == 2:
            return [TensorSpec((BATCH, c, n, n), dt) for n in SIZES_2D]
        if dims == 3:
            return [TensorSpec((BATCH, c, *s), dt) for s in SIZES_3D]
        return [TensorSpec((BATCH, c, n, n), dt) for n in SIZES_2D] + [TensorSpec((BATCH, c), dt)]

    return rule


def _layer_norm(m: Any, slot: int | str, dt: str) -> list[TensorSpec]:
    if slot not in (0, "input"):
        return []
    shape = tuple(int(d) for d in m.normalized_shape)
    if len(shape) > 1:
        return [TensorSpec((BATCH, *shape), dt)]
    return [TensorSpec((BATCH, SEQ, *shape), dt), TensorSpec((BATCH, *shape), dt)]


def _rnn(m: Any, slot: int | str, dt: str) -> list[TensorSpec]:
    if slot not in (0, "input"):
        return []
    batch_first = bool(getattr(m, "batch_first", False))
    return [TensorSpec(_seq(batch_first, m.input_size), dt)]


def _rnn_cell(m: Any, slot: int | str, dt: str) -> list[TensorSpec]:
    return [TensorSpec((BATCH, m.input_size), dt)] if slot in (0, "input") else []


def _attention(m: Any, slot: int | str, dt: str) -> list[TensorSpec]:
    bf = bool(getattr(m, "batch_first", False))
    width = {
        0: m.embed_dim,
        "query": m.embed_dim,
        1: m.kdim,
        "key": m.kdim,
        2: m.vdim,
        "value": m.vdim,
    }
    if slot in width:
        return [TensorSpec(_seq(bf, width[slot]), dt)]
    return _mask(slot)


def _mask(slot: int | str) -> list[TensorSpec]:
    """Padding masks (N, S) and attention masks (S, S), as bool: True means 'do not attend'."""
    # [0, 1): all False, so no row is fully masked (that makes NaNs, and proves nothing).
    if isinstance(slot, str) and "padding_mask" in slot:
        return [TensorSpec((BATCH, SEQ), "bool", 0, 1)]
    if isinstance(slot, str) and slot.endswith("mask"):
        return [TensorSpec((SEQ, SEQ), "bool", 0, 1)]
    return []


def _first_attention(m: Any) -> Any:
    for sub in m.modules():
        if kind_of(sub) == "MultiheadAttention":
            return sub
    return None


_SEQ_SLOTS = {
    "TransformerEncoderLayer": (0, "src"),
    "TransformerEncoder": (0, "src"),
    "TransformerDecoderLayer": (0, 1, "tgt", "memory"),
    "TransformerDecoder": (0, 1, "tgt", "memory"),
    "Transformer": (0, 1, "src", "tgt"),
}


def _transformer(m: Any, slot: int | str, dt: str) -> list[TensorSpec]:
    """Transformer(Encoder|Decoder)(Layer) and Transformer: (N, S, E) or (S, N, E) for src/tgt/memory."""
    attn = _first_attention(m)
    if attn is None:
        return []
    bf = bool(getattr(m, "batch_first", getattr(attn, "batch_first", False)))
    if slot in _SEQ_SLOTS[kind_of(m)]:
        return [TensorSpec(_seq(bf, attn.embed_dim), dt)]
    return _mask(slot)


_Rule = Callable[[Any, "int | str", str], list[TensorSpec]]

_RULES: dict[str, _Rule] = {
    "Linear": _linear,
    "LazyLinear": lambda m, s, dt: [],
    "Bilinear": _bilinear,
    "Embedding": _embedding,
    "EmbeddingBag": _embedding,
    "Conv1d": _conv(1),
    "Conv2d": _conv(2),
    "Conv3d": _conv(3),
    "ConvTranspose1d": _conv(1),
    "ConvTranspose2d": _conv(2),
    "ConvTranspose3d": _conv(3),
    "BatchNorm1d": _channels(1),
    "BatchNorm2d": _channels(2),
    "BatchNorm3d": _channels(3),
    "InstanceNorm1d": _channels(1),
    "InstanceNorm2d": _channels(2),
    "InstanceNorm3d": _channels(3),
    "GroupNorm": _channels(0),
    "LayerNorm": _layer_norm,
    "RMSNorm": _layer_norm,
    "RNN": _rnn,
    "LSTM": _rnn,
    "GRU": _rnn,
    "RNNCell": _rnn_cell,
    "LSTMCell": _rnn_cell,
    "GRUCell": _rnn_cell,
    "MultiheadAttention": _attention,
    "TransformerEncoderLayer": _transformer,
    "TransformerDecoderLayer": _transformer,
    "TransformerEncoder": _transformer,
    "TransformerDecoder": _transformer,
    "Transformer": _transformer,
}


def accepts(module: nn.Module, slot: int | str) -> list[TensorSpec]:
    """Input specs ``module`` accepts in argument ``slot`` (position or keyword), likeliest first.

    Known torch.nn layers (and their subclasses, and TorchScript copies) by their attributes; any
    other module whose first parameter is a 2-D ``weight`` as a Linear over its second dim.
    """
    kind = kind_of(module)
    dt = _float_dtype(module)
    if kind:
        return _RULES[kind](module, slot, dt)
    weight = getattr(module, "weight", None)
    own = dict(module.named_parameters(recurse=False))
    if slot == 0 and weight is not None and "weight" in own and weight.dim() == 2:
        return [TensorSpec((BATCH, int(weight.shape[1])), dt)]
    return []


def fits(
    module: nn.Module, candidates: list[TensorSpec], shape: tuple[int, ...], dtype: str
) -> bool:
    """Whether a layer can take a tensor of this shape and dtype (rank and feature size).

    The feature size is the channel dim (dim 1) for convolutions and batch/instance/group norms,
    the trailing normalized dims for LayerNorm, the last dim for everything else; masks and other
    bool inputs are not checked. Checked before the layer runs, so a wrong guess never reaches
    native code that may crash.
    """
    kind = kind_of(module)
    if kind in ("Embedding", "EmbeddingBag"):
        return not dtype.startswith(("float", "bfloat", "bool"))
    if not candidates or candidates[0].dtype == "bool":
        return True
    if len(shape) not in {len(c.shape) for c in candidates}:
        return False
    want = candidates[0].shape
    if kind.startswith(("Conv", "BatchNorm", "InstanceNorm")) or kind == "GroupNorm":
        return shape[1] == want[1]
    if kind in ("LayerNorm", "RMSNorm"):
        n = len(tuple(module.normalized_shape))  # type: ignore[arg-type]
        return shape[-n:] == want[-n:]
    return shape[-1] == want[-1]


def has_rule(module: nn.Module) -> bool:
    """Whether :func:`accepts` knows this module (a known layer, or a custom one with a 2-D weight)."""
    if kind_of(module):
        return True
    own = dict(module.named_parameters(recurse=False))
    return "weight" in own and own["weight"].dim() == 2
