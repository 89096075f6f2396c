"""A Hugging Face causal LM with its key/value cache as named tensors, ready to export.

transformers 5 keeps the cache in a ``DynamicCache`` object, which no exporter takes as an input
(see docs/decode.md). :func:`cached_decoder` wraps the model in a module whose forward takes the
cache flattened, one tensor per layer and kind, and returns the new cache the same way:

- inputs: ``input_ids`` (batch x seq), ``past_key_values_N_key`` / ``past_key_values_N_value``
  (batch x kv_heads x past x head_dim); exportkit feeds inputs by forward's parameter names, which
  must be Python identifiers, hence ``_`` where Optimum writes ``past_key_values.N.key``;
- outputs: ``logits`` (batch x seq x vocab), ``present.N.key`` / ``present.N.value``.

An encoder-decoder (T5, Whisper) exports its decoder as two graphs, the cross-attention cache
carried as state between them (:mod:`.seq2seq`).

Attention runs in transformers' eager implementation: sdpa's ``is_causal`` flag becomes symbolic
under torch.export and fails (``is_causal must be bool, not SymBool``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from exportkit.errors import UsageError, first_line

if TYPE_CHECKING:
    import torch
    from torch import nn

    from exportkit.inputs import SuggestedInputs

__all__ = [
    "CACHE_BATCH",
    "CACHE_PAST",
    "CACHE_SEQ",
    "ENCODER_LENGTH",
    "cache_argument",
    "cached_decoder",
    "encoder_states",
    "is_cached_lm",
    "is_encoder_decoder",
    "prepare_model",
    "returned_cache",
    "width",
]

# Example sizes of the cached graph: none is 1 (an exporter freezes a size-1 dynamic dim) and
# none equals another, so a size taken from the wrong dim shows.
CACHE_BATCH, CACHE_SEQ, CACHE_PAST = 2, 2, 3
ENCODER_LENGTH = 4  # an encoder-decoder's example encoder output length


def is_cached_lm(module: nn.Module) -> bool:
    """A transformers causal LM: it has a config and a generation head (``logits``)."""
    config = getattr(module, "config", None)
    return config is not None and hasattr(module, "generate") and hasattr(module, "forward")


def _cache_shapes(model: nn.Module, vocab: int) -> list[tuple[tuple[int, ...], Any]]:
    """Per cache tensor (layer 0 key, layer 0 value, ...): its shape after a prompt of
    ``CACHE_PAST`` tokens, and its dtype, read from one eager call."""
    import torch

    ids = torch.randint(
        0, vocab, (CACHE_BATCH, CACHE_PAST), generator=torch.Generator().manual_seed(0)
    )
    try:
        with torch.no_grad():
            out = model(input_ids=ids, use_cache=True)
    except Exception as exc:
        raise UsageError(
            f"--steps: {type(model).__name__}(input_ids, use_cache=True) raised "
            f"{type(exc).__name__}: {first_line(exc)}",
            hint="--steps exports causal LMs (and encoder-decoders' decoders) that generate "
            "from token ids",
        ) from exc
    cache = returned_cache(out)
    layers = getattr(cache, "layers", None)
    if not layers:
        raise UsageError(
            f"{type(model).__name__} returned no key/value cache with use_cache=True "
            f"(got {type(cache).__name__})",
            hint="--steps needs a causal LM that returns a transformers DynamicCache",
        )
    shapes = []
    for layer in layers:
        for t in (layer.keys, layer.values):
            if t is None or t.dim() != 4 or t.shape[2] != CACHE_PAST:
                raise UsageError(
                    f"{type(cache).__name__} layer holds a {tuple(getattr(t, 'shape', ()))} "
                    "tensor, not batch x heads x past x head_dim",
                    hint="--steps supports caches laid out as transformers' DynamicCache",
                )
            shapes.append((tuple(int(d) for d in t.shape), t.dtype))
    return shapes


def cache_argument(model: nn.Module) -> str:
    """forward's name for the cache: ``cache`` (transformers >= 5.2x) or ``past_key_values``."""
    import inspect

    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def returned_cache(out: Any) -> Any:
    """The cache a forward returned, under either of transformers' names."""
    cache = getattr(out, "past_key_values", None)
    return cache if cache is not None else getattr(out, "cache", None)


def is_encoder_decoder(model: Any) -> bool:
    """A transformers encoder-decoder (T5, Whisper, BART): its decoder is what ``--steps`` exports."""
    return bool(getattr(model.config, "is_encoder_decoder", False))


def width(model: Any) -> int:
    """The decoder's hidden width (``d_model`` or ``hidden_size``)."""
    config = model.config
    return int(getattr(config, "d_model", None) or config.hidden_size)


def encoder_states(model: Any, batch: int) -> torch.Tensor | None:
    """Example encoder output (batch x ENCODER_LENGTH x width) for an encoder-decoder, else None."""
    import torch

    if not is_encoder_decoder(model):
        return None
    gen = torch.Generator().manual_seed(1)
    return torch.randn(batch, ENCODER_LENGTH, width(model), generator=gen)


class _CachedDecoder:
    """Mixin holding the step; :func:`cached_decoder` adds a forward with real parameters."""

    model: Any
    layers: int
    cache_arg: str

    def _step(self, ids: torch.Tensor, past: tuple[torch.Tensor, ...]) -> dict[str, Any]:
        from transformers import DynamicCache

        cache = DynamicCache()
        for i in range(self.layers):
            cache.update(past[2 * i], past[2 * i + 1], i)
        out = self.model(input_ids=ids, **{self.cache_arg: cache}, use_cache=True)
        result: dict[str, Any] = {"logits": out.logits}
        for i, layer in enumerate(returned_cache(out).layers):
            result[f"present.{i}.key"] = layer.keys
            result[f"present.{i}.value"] = layer.values
        return result


def prepare_model(model: nn.Module) -> int:
    """Turn the cache on and attention to eager in place; the vocabulary size.

    Raises:
        UsageError: the config has no vocab_size.
    """
    config: Any = model.config
    hf: Any = model  # a transformers PreTrainedModel
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    vocab = int(getattr(text, "vocab_size", 0) or 0)
    if vocab <= 0:
        raise UsageError(
            f"{type(model).__name__}'s config has no vocab_size", hint="--steps needs a causal LM"
        )
    config.use_cache = True
    if hasattr(hf, "set_attn_implementation"):
        hf.set_attn_implementation("eager")
    else:
        config._attn_implementation = "eager"
    return vocab


def cached_decoder(model: nn.Module) -> tuple[nn.Module, SuggestedInputs]:
    """``model`` with its cache flattened to named tensors, and the example inputs to export it.

    The forward is generated with one real parameter per cache tensor: torch.export refuses
    ``**past`` behind a made-up signature, and exportkit passes inputs by name.

    Raises:
        UsageError: the model returns no DynamicCache-like cache.
    """
    from torch import nn

    from exportkit.inputs import SuggestedInputs, TensorSpec

    vocab = prepare_model(model)
    shapes = _cache_shapes(model, vocab)
    layers = len(shapes) // 2
    names = [f"past_key_values_{i}_{k}" for i in range(layers) for k in ("key", "value")]
    params = ", ".join(names)
    ids = "input_ids"
    source = f"def forward(self, {ids}, {params}):\n    return self._step({ids}, ({params},))\n"
    namespace: dict[str, Any] = {}
    exec(compile(source, "<exportkit.decode cached forward>", "exec"), namespace)

    def init(self: Any, inner: nn.Module) -> None:
        nn.Module.__init__(self)
        self.model = inner
        self.layers = layers
        self.cache_arg = cache_argument(inner)

    cls = type(
        f"Cached{type(model).__name__}",
        (_CachedDecoder, nn.Module),
        {"__init__": init, "forward": namespace["forward"], "__module__": __name__},
    )
    wrapper: nn.Module = cls(model).eval()
    specs = {ids: TensorSpec((CACHE_BATCH, CACHE_SEQ), "int64", 0, vocab)}
    dynamic: dict[str, dict[int, str]] = {ids: {0: "batch", 1: "seq"}}
    for name, (shape, dtype) in zip(names, shapes):
        specs[name] = TensorSpec(
            (CACHE_BATCH, shape[1], CACHE_PAST, shape[3]), str(dtype).removeprefix("torch.")
        )
        dynamic[name] = {0: "batch", 2: "past"}
    note = (
        f"--steps: {type(model).__name__} exported with its key/value cache ({layers} layers) "
        "as past_key_values_N_key/value -> present.N.key/value; eager attention"
    )
    return wrapper, SuggestedInputs(specs=specs, source="config", dynamic=dynamic, notes=(note,))
