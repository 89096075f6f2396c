"""An encoder-decoder's decoder (T5, Whisper, BART) as it is deployed: two graphs, the
cross-attention cache carried as state.

- the prefill graph (``<stem>.prefill.onnx``, Optimum's ``decoder_model.onnx``) reads
  ``decoder_input_ids`` and ``encoder_hidden_states`` and returns ``logits``, the first
  self-attention cache (``present.N.key`` / ``present.N.value``) and the cross-attention cache
  computed from the encoder's output (``present.N.cross.key`` / ``present.N.cross.value``);
- the step graph (the ``-o`` file, Optimum's ``decoder_with_past_model.onnx``) reads
  ``decoder_input_ids``, ``past_key_values_N_key`` / ``_value`` and ``past_key_values_N_cross_key``
  / ``_cross_value`` and returns ``logits`` and the new self-attention cache; it never computes the
  cross-attention keys and values (no encoder output goes in), it reads them.

One graph with an If on the past (Optimum's merged decoder) is not what torch 2.13 exports: a
``torch.cond`` over the two calls passes ``torch.export`` and fails in ``torch.onnx``'s
decomposition (docs/decode.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from exportkit.decode.cache import (
    CACHE_BATCH,
    CACHE_PAST,
    CACHE_SEQ,
    ENCODER_LENGTH,
    cache_argument,
    encoder_states,
    prepare_model,
    returned_cache,
    width,
)
from exportkit.errors import UsageError, first_line

if TYPE_CHECKING:
    import torch
    from torch import nn

    from exportkit.decode.chain import FirstStep
    from exportkit.inputs import ExampleInputs, SuggestedInputs

__all__ = [
    "KINDS",
    "PrefillGraph",
    "cached_seq2seq_decoder",
    "first_step",
    "prefill_graph",
    "prefill_path",
]

# The cache tensors of one layer, in the order of the step graph's inputs.
KINDS = ("key", "value", "cross_key", "cross_value")


@dataclass(frozen=True)
class PrefillGraph:
    """The first step of an encoder-decoder's decoder as a module of its own, with the inputs
    to export it; held by the step graph's module (``prefill`` attribute), not a submodule."""

    module: nn.Module
    suggested: SuggestedInputs


def prefill_graph(module: nn.Module) -> PrefillGraph | None:
    """The prefill graph a step module carries (an encoder-decoder's), else None."""
    found = getattr(module, "prefill", None)
    return found if isinstance(found, PrefillGraph) else None


def prefill_path(path: Path) -> Path:
    """Where an encoder-decoder's prefill graph sits beside its step graph."""
    return path.with_name(f"{path.stem}.prefill{path.suffix}")


def prefill_example(graph: PrefillGraph, seed: int) -> ExampleInputs:
    """The prefill graph's seeded example inputs (the encoder's output among them)."""
    from exportkit.inputs import make_inputs

    return make_inputs(graph.module, suggested=graph.suggested, seed=seed)


def first_step(module: nn.Module, path: Path | None, seed: int) -> FirstStep | None:
    """Step 0 of a chain over ``module``'s step graph: its prefill graph run from ``path`` (or
    from eager PyTorch when there is no such file); None for any other module."""
    from exportkit.decode.chain import FirstStep

    graph = prefill_graph(module)
    if graph is None:
        return None
    found = path if path is not None and path.is_file() else None
    return FirstStep(graph.module, found, prefill_example(graph, seed).tensors)


def _flatten(out: Any, *, cross: bool) -> dict[str, Any]:
    """``logits`` and the cache as named tensors (the cross-attention part with ``cross``)."""
    cache = returned_cache(out)
    result: dict[str, Any] = {"logits": out.logits}
    for i, layer in enumerate(cache.self_attention_cache.layers):
        result[f"present.{i}.key"] = layer.keys
        result[f"present.{i}.value"] = layer.values
        if cross:
            xlayer = cache.cross_attention_cache.layers[i]
            result[f"present.{i}.cross.key"] = xlayer.keys
            result[f"present.{i}.cross.value"] = xlayer.values
    return result


class _Seq2Seq:
    """Mixin holding both calls; the modules add a forward with real parameters."""

    model: Any
    cache_arg: str
    width: int

    def _call(self, ids: torch.Tensor, encoder: torch.Tensor, cache: Any) -> Any:
        return self.model(
            decoder_input_ids=ids,
            encoder_outputs=(encoder,),
            **{self.cache_arg: cache},
            use_cache=True,
        )

    def _prefill(self, ids: torch.Tensor, encoder: torch.Tensor) -> dict[str, Any]:
        from transformers import DynamicCache, EncoderDecoderCache

        # An empty cross-attention cache: each layer computes it from the encoder's output.
        out = self._call(ids, encoder, EncoderDecoderCache(DynamicCache(), DynamicCache()))
        return _flatten(out, cross=True)

    def _with_past(self, ids: torch.Tensor, past: tuple[torch.Tensor, ...]) -> dict[str, Any]:
        from transformers import DynamicCache, EncoderDecoderCache

        own, cross = DynamicCache(), DynamicCache()
        for i in range(len(past) // len(KINDS)):
            k, v, xk, xv = past[len(KINDS) * i : len(KINDS) * (i + 1)]
            own.update(k, v, i)
            cross.update(xk, xv, i)
        # A filled cross-attention cache marks each layer ``is_updated``: attention reads it.
        cache = EncoderDecoderCache(own, cross)
        # The decoder still wants an encoder output; only its batch and length are read (masks).
        key = past[2]
        encoder = key.new_zeros(key.shape[0], key.shape[2], self.width)
        return _flatten(self._call(ids, encoder, cache), cross=False)


def _eager_prefill(model: Any, vocab: int) -> dict[str, Any]:
    """One eager prefill of ``CACHE_PAST`` tokens: the cache tensors' shapes and dtypes."""
    import torch

    ids = torch.randint(
        0, vocab, (CACHE_BATCH, CACHE_PAST), generator=torch.Generator().manual_seed(0)
    )
    probe: Any = _module(model, "Probe", "decoder_input_ids, encoder_hidden_states", "")
    try:
        with torch.no_grad():
            flat: dict[str, Any] = probe._prefill(ids, encoder_states(model, CACHE_BATCH))
    except Exception as exc:
        raise UsageError(
            f"--steps: {type(model).__name__}(decoder_input_ids, encoder_outputs, "
            f"use_cache=True) raised {type(exc).__name__}: {first_line(exc)}",
            hint="--steps exports encoder-decoders whose cache is a transformers "
            "EncoderDecoderCache",
        ) from exc
    for name, t in flat.items():
        if name != "logits" and (t is None or t.dim() != 4):
            raise UsageError(
                f"{type(model).__name__}'s cache holds a {tuple(getattr(t, 'shape', ()))} "
                f"tensor ({name}), not batch x heads x length x head_dim",
                hint="--steps supports caches laid out as transformers' EncoderDecoderCache",
            )
    return flat


def _module(model: nn.Module, kind: str, params: str, body: str) -> nn.Module:
    """A module over ``model`` whose forward has ``params`` as real parameters: torch.export
    refuses ``**past`` behind a made-up signature, and exportkit passes inputs by name."""
    from torch import nn

    namespace: dict[str, Any] = {}
    if body:
        source = f"def forward(self, {params}):\n    return {body}\n"
        exec(compile(source, f"<exportkit.decode {kind} forward>", "exec"), namespace)

    def init(self: Any, inner: nn.Module) -> None:
        nn.Module.__init__(self)
        self.model = inner
        self.cache_arg = cache_argument(inner)
        self.width = width(inner)

    attrs: dict[str, Any] = {"__init__": init, "__module__": __name__}
    if body:
        attrs["forward"] = namespace["forward"]
    cls = type(f"{kind}{type(model).__name__}", (_Seq2Seq, nn.Module), attrs)
    made: nn.Module = cls(model).eval()
    return made


def cached_seq2seq_decoder(model: nn.Module) -> tuple[nn.Module, SuggestedInputs]:
    """The step graph's module (carrying the prefill graph) and the inputs to export it.

    Raises:
        UsageError: the model does not return an EncoderDecoderCache-like cache.
    """
    from exportkit.inputs import SuggestedInputs, TensorSpec

    vocab = prepare_model(model)
    flat = _eager_prefill(model, vocab)
    layers = sum(1 for n in flat if n.endswith(".cross.key"))
    names = [f"past_key_values_{i}_{k}" for i in range(layers) for k in KINDS]
    # The step graph reads each layer's cross-attention cache laid out as its self-attention
    # cache (batch x heads x length x head_dim), not as the prefill happened to return it: a
    # prefill that returns it otherwise then fails at step 1, where the step reads it.
    shapes = {
        f"past_key_values_{i}_{k}": flat[f"present.{i}.{k.removeprefix('cross_')}"]
        for i in range(layers)
        for k in KINDS
    }
    params = ", ".join(names)
    step = _module(
        model,
        "Cached",
        f"decoder_input_ids, {params}",
        f"self._with_past(decoder_input_ids, ({params},))",
    )
    prefill = _module(
        model,
        "Prefill",
        "decoder_input_ids, encoder_hidden_states",
        "self._prefill(decoder_input_ids, encoder_hidden_states)",
    )
    ids_spec = TensorSpec((CACHE_BATCH, CACHE_SEQ), "int64", 0, vocab)
    ids_dynamic = {0: "batch", 1: "seq"}
    specs = {"decoder_input_ids": ids_spec}
    dynamic: dict[str, dict[int, str]] = {"decoder_input_ids": ids_dynamic}
    for name in names:
        t = shapes[name]
        length = ENCODER_LENGTH if "cross" in name else CACHE_PAST
        specs[name] = TensorSpec(
            (CACHE_BATCH, int(t.shape[1]), length, int(t.shape[3])),
            str(t.dtype).removeprefix("torch."),
        )
        dynamic[name] = {0: "batch", 2: "encoder" if "cross" in name else "past"}
    first = SuggestedInputs(
        specs={
            "decoder_input_ids": ids_spec,
            "encoder_hidden_states": TensorSpec(
                (CACHE_BATCH, ENCODER_LENGTH, width(model)), "float32"
            ),
        },
        source="config",
        dynamic={
            "decoder_input_ids": ids_dynamic,
            "encoder_hidden_states": {0: "batch", 1: "encoder"},
        },
    )
    object.__setattr__(step, "prefill", PrefillGraph(prefill, first))
    note = (
        f"--steps: {type(model).__name__}'s decoder exported as two graphs: the prefill "
        "(<stem>.prefill.onnx) returns the cross-attention cache present.N.cross.key/value, the "
        f"step reads it as past_key_values_N_cross_key/value beside the self-attention cache "
        f"({layers} layers); eager attention"
    )
    return step, SuggestedInputs(specs=specs, source="config", dynamic=dynamic, notes=(note,))
