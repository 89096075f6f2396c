"""Infer example inputs from forward's signature and the layer that first consumes each argument.

How it works, so it holds on models nobody showed us:

1. The arguments to infer are forward's parameters without a default (or its first parameter when
   all have defaults, as HuggingFace-style forwards do).
2. A first guess for each comes from the module tree in definition order: the first known layer
   (Linear, Conv, Embedding, RNN, attention, norm ...) is assumed to take the first argument.
3. A probe run with that guess tags every forward argument and follows it through torch
   operations (a ``TorchFunctionMode``); forward pre-hooks on every submodule record which known
   layer first receives a tensor derived from each argument, in which argument slot, and with
   what shape. Arguments that reach no layer record the first operation that used them (a mask in
   ``masked_fill``/``where``, or an operand of arithmetic with another tensor).
4. The layer's rule (:mod:`exportkit.inputs.layers`) says what it accepts; when the argument was
   permuted or unsqueezed on the way, the probe's shapes map the rule back onto the argument.
5. Candidates are tried until the model runs through once (spatial sizes, for instance, are tried
   from small to the common fixed sizes); that run confirms the guess.
"""

from __future__ import annotations

import itertools
import logging
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from exportkit.errors import InputSpecError
from exportkit.inputs.examples import draw, fit_fixed
from exportkit.inputs.forward import error_line, forward_parameters, signature_text
from exportkit.inputs.layers import BATCH, SEQ, accepts, fits, has_rule
from exportkit.inputs.probe import Probe, probe
from exportkit.inputs.spec import TensorSpec

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["infer_specs"]

logger = logging.getLogger(__name__)

MAX_RUNS = 24


def _targets(module: nn.Module, known: Mapping[str, TensorSpec]) -> list[str]:
    params = forward_parameters(module)
    required = [
        p.name
        for p in params
        if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    if not required and not known:
        positional = [
            p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        required = positional[:1]
    return [n for n in required if n not in known]


def _walk_guesses(module: nn.Module, count: int) -> list[list[TensorSpec]]:
    """Known layers in definition order: what each accepts as its first argument (one per target)."""
    found: list[list[TensorSpec]] = []
    for name, sub in module.named_modules():
        if len(found) == count:
            break
        if name and has_rule(sub) and (specs := accepts(sub, 0)):
            found.append(specs)
    return found


def _pull_back(probe: TensorSpec, received: tuple[int, ...], want: TensorSpec) -> list[TensorSpec]:
    """Specs for the argument that reach a layer as ``want``, given that the probe's argument
    (``probe``) reached it as ``received``: undo a permute/transpose or an (un)squeeze seen on the
    way; the layer's own spec is the fallback (right for flatten, view and anything unmapped).
    """
    g, w = probe.shape, want.shape
    out: list[TensorSpec] = []
    if len(w) == len(g) == len(received) and sorted(received) == sorted(g) and len(g) <= 6:
        # Every way the dims could have been permuted (several when sizes repeat), identity first.
        for perm in itertools.permutations(range(len(g))):
            if all(received[i] == g[perm[i]] for i in range(len(g))):
                shape = [0] * len(g)
                for i, source in enumerate(perm):
                    shape[source] = w[i]
                if (spec := replace(want, shape=tuple(shape))) not in out:
                    out.append(spec)
    if received != g:
        if len(received) == len(g) + 1:
            for k in range(len(received)):
                if (
                    received[k] == 1
                    and received[:k] + received[k + 1 :] == g
                    and k < len(w)
                    and w[k] == 1
                ):
                    out.append(replace(want, shape=w[:k] + w[k + 1 :]))
        if len(received) + 1 == len(g) and received == g[1:]:
            out.append(replace(want, shape=(SEQ, *w)))  # indexed or iterated over dim 0
        if len(received) + 1 == len(g):
            for k in range(len(g)):
                if g[k] == 1 and g[:k] + g[k + 1 :] == received:
                    out.append(replace(want, shape=(*w[:k], 1, *w[k:])))
    return out or [want]


def _known_batch(known: Mapping[str, TensorSpec]) -> int:
    """The batch size the given inputs agree on (dim 0), so inferred ones match it."""
    sizes = {s.shape[0] for s in known.values() if s.shape and s.dtype != "bool"}
    return sizes.pop() if len(sizes) == 1 and 1 not in sizes else BATCH


def _rebatch(spec: TensorSpec, batch: int) -> TensorSpec:
    """Move a guess's batch dim (dim 0, or dim 1 for sequence-first layers) to ``batch``."""
    if batch == BATCH or BATCH not in spec.shape[:2]:
        return spec
    shape = list(spec.shape)
    shape[shape.index(BATCH)] = batch
    return replace(spec, shape=tuple(shape))


def _describe(specs: Mapping[str, TensorSpec]) -> str:
    """``--input`` options as a shell would take them (ranges hold brackets and parentheses)."""
    return " ".join(f"--input {shlex.quote(s.describe(n))}" for n, s in specs.items())


def infer_specs(
    module: nn.Module,
    *,
    known: Mapping[str, TensorSpec] | None = None,
    fixed: Mapping[str, torch.Tensor] | None = None,
    seed: int = 0,
) -> tuple[dict[str, TensorSpec], list[str]]:
    """Infer specs for forward's required arguments not in ``known``; confirm them by one run.

    Args:
        module: the model, in eval mode.
        known: specs already given for some arguments (kept as they are).
        fixed: real tensors for some of the known arguments.
        seed: seed for the probe draws.

    Returns:
        Specs for the known and the inferred arguments, and notes saying what was inferred from what.

    Raises:
        InputSpecError: no guess ran through the model; the message lists what was tried and the
        hint shows the ``--input`` line to complete.
    """
    known = dict(known or {})
    fixed = dict(fixed or {})
    targets = _targets(module, known)
    if not targets:
        return known, []
    walked = _walk_guesses(module, len(targets))
    batch = _known_batch(known)
    options: dict[str, list[TensorSpec]] = {}
    origin: dict[str, str] = {}
    for i, name in enumerate(targets):
        # Last resorts for an argument no layer takes: a vector per sample, then a scalar.
        fallbacks = [TensorSpec((BATCH, SEQ)), TensorSpec((BATCH,)), TensorSpec(())]
        guesses = [*walked[i], *fallbacks] if i < len(walked) else fallbacks
        options[name] = [_rebatch(g, batch) for g in guesses]
        origin[name] = (
            f"known layer {i + 1} in definition order" if i < len(walked) else "a default"
        )
    settled: dict[str, set[str]] = {}
    choice = dict.fromkeys(targets, 0)
    tried: list[str] = []
    last: Probe | None = None
    fallback: tuple[dict[str, TensorSpec], list[str]] | None = None
    for _run in range(MAX_RUNS):
        current = {n: options[n][choice[n]] for n in targets}
        specs = {**known, **current}
        tensors = draw({n: s for n, s in specs.items() if n not in fixed}, seed)
        tensors.update({n: fit_fixed(t, specs[n].shape) for n, t in fixed.items() if n in specs})
        ordered = {n: tensors[n] for n in specs}
        last = probe(module, ordered, targets)
        if last.error is None:
            last.error = _confirm(module, ordered)
        tried.append(f"{_describe(current)} -> {last.error or 'ok'}")
        if last.error is None:
            notes = _notes(current, origin)
            if fallback is None and _refine(
                targets, current, last, options, choice, settled, origin, batch
            ):
                # It runs; try what the first layers ask for, and keep this if that fails.
                fallback = {**known, **current}, notes
                continue
            return {**known, **current}, _notes(current, origin)
        if fallback is not None:
            return fallback
        if _refine(targets, current, last, options, choice, settled, origin, batch):
            continue
        if not _advance(targets, options, choice):
            break
    assert last is not None
    best = {n: options[n][0] for n in targets}
    shown = "; ".join(tried[:4]) + (f"; ... ({len(tried)} tries)" if len(tried) > 4 else "")
    consumers = ", ".join(f"{n} -> {c.path} ({c.kind})" for n, c in last.consumers.items())
    raise InputSpecError(
        f"cannot infer inputs for {signature_text(module)}: tried {shown}"
        + (
            f"; first layers found: {consumers}"
            if consumers
            else "; no known layer received the inputs"
        ),
        hint=f"pass the inputs, e.g. {_describe({**known, **best})} (adjust shapes and dtypes), "
        "or define example_inputs() on the model",
    )


def _refine(
    targets: Sequence[str],
    current: Mapping[str, TensorSpec],
    probe: Probe,
    options: dict[str, list[TensorSpec]],
    choice: dict[str, int],
    settled: dict[str, set[str]],
    origin: dict[str, str],
    batch: int,
) -> bool:
    """Use what a probe saw to replace guesses; True when any guess changed."""
    changed = False
    for name in targets:
        consumer = probe.rejected.get(name) or probe.consumers.get(name)
        if consumer is not None:
            key = f"{consumer.path}:{consumer.slot}"
            if key in settled.setdefault(name, set()):
                continue
            mapped: list[TensorSpec] = []
            for c in consumer.candidates:
                pulled = _pull_back(current[name], consumer.received, c)
                mapped += [m for b in pulled if (m := _rebatch(b, batch)) not in mapped]
            first = probe.consumers.get(name)
            if consumer is not first and first is not None and first.direct:
                # A deeper layer rejected the argument: keep only guesses the first layer takes.
                kept = [m for m in mapped if fits(first.module, first.candidates, m.shape, m.dtype)]
                mapped = kept or mapped
            settled[name].add(key)
            where = "" if consumer.direct else ", through the reshaping before it"
            origin[name] = f"{consumer.path} ({consumer.kind} argument {consumer.slot}{where})"
            if current[name] in mapped and name not in probe.rejected:
                options[name], choice[name] = mapped, mapped.index(current[name])
                continue  # the guess is what the layer takes: keep it
            options[name], choice[name] = mapped, 0
            changed = True
        elif (
            not settled.get(name)
            and (use := probe.first_ops.get(name))
            and use.spec is not None
            and use.spec != current[name]
        ):
            settled.setdefault(name, set()).add(f"op:{use.op}")
            options[name], choice[name] = [use.spec], 0
            origin[name] = f"its first use, {use.op}"
            changed = True
    return changed


def _advance(
    targets: Sequence[str], options: Mapping[str, list[TensorSpec]], choice: dict[str, int]
) -> bool:
    """Next combination of candidates (odometer over the arguments); False when all were tried."""
    for name in reversed(targets):
        if choice[name] + 1 < len(options[name]):
            choice[name] += 1
            return True
        choice[name] = 0
    return False


def _notes(current: Mapping[str, TensorSpec], origin: Mapping[str, str]) -> list[str]:
    return [
        f"inferred --input {shlex.quote(spec.describe(name))} from {origin[name]}"
        for name, spec in current.items()
    ]


def _confirm(module: nn.Module, tensors: Mapping[str, torch.Tensor]) -> str | None:
    """Run the model once as the pipeline will (no tagging); the error text if it fails."""
    import torch

    try:
        with torch.no_grad():
            module(**tensors)
    except Exception as exc:
        return error_line(exc)
    return None
