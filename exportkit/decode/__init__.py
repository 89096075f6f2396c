"""Decoders as deployed: export with the state (a KV cache, an RNN's hidden state) as named
tensors, and validate chained steps, each fed its own previous outputs, against eager PyTorch.

``validate_steps`` is the verb; :mod:`.cache` flattens a transformers causal LM's cache into
named inputs and outputs, :mod:`.state` pairs state inputs with outputs (``--state`` or by
name), :mod:`.stage` is what the pipeline calls, :mod:`.results` the typed facts.
"""

from __future__ import annotations

from exportkit.decode.results import DecodeResult, PrefillFile, StatePair, StepResult
from exportkit.decode.steps import validate_steps

__all__ = ["DecodeResult", "PrefillFile", "StatePair", "StepResult", "validate_steps"]
