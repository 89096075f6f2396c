"""Which inputs carry state from one step to the next: ``--state INPUT=OUTPUT`` pairs, pairs
inferred by name, and the dims of the state that grow (made dynamic before the export)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from exportkit.decode.results import StatePair
from exportkit.errors import InputSpecError

if TYPE_CHECKING:
    from exportkit.inputs import ExampleInputs

__all__ = ["PAST_LABEL", "infer_pairs", "parse_state", "resolve_pairs", "with_grow_dims"]

PAST_LABEL = "past"
# (input prefix, output prefix): past_k -> present_k, state -> new_state, h0 -> hn, c0 -> cn.
_PREFIXES: tuple[tuple[str, str], ...] = (
    ("past_key_values", "present"),
    ("past", "present"),
    ("state", "new_state"),
    ("h0", "hn"),
    ("c0", "cn"),
)


def parse_state(text: str) -> tuple[str, str]:
    """``"past_k=output.1"`` -> ``("past_k", "output.1")``.

    Raises:
        InputSpecError: not INPUT=OUTPUT.
    """
    name, sep, out = text.partition("=")
    if not sep or not name.strip() or not out.strip():
        raise InputSpecError(
            f"--state {text!r} is not INPUT=OUTPUT",
            hint="write --state past_k=present_k (the input a step reads = the output it writes)",
        )
    return name.strip(), out.strip()


def _key(name: str, prefix: str) -> str | None:
    """What follows ``prefix`` in ``name``, letters and digits only; None when it does not start so."""
    low = name.lower()
    if not low.startswith(prefix):
        return None
    return re.sub(r"[^0-9a-z]", "", low[len(prefix) :])


def infer_pairs(inputs: Sequence[str], outputs: Sequence[str]) -> tuple[StatePair, ...]:
    """Pairs by name: ``past*``/``present*``, ``state*``/``new_state*``, ``h0``/``hn``, ``c0``/``cn``
    (``past_key_values_0_key`` -> ``present.0.key``, ``state`` -> ``new_state``)."""
    pairs = []
    taken: set[str] = set()
    for name in inputs:
        for in_prefix, out_prefix in _PREFIXES:
            key = _key(name, in_prefix)
            if key is None:
                continue
            match = [o for o in outputs if o not in taken and _key(o, out_prefix) == key]
            if len(match) == 1:
                pairs.append(StatePair(name, match[0], inferred=True))
                taken.add(match[0])
            break
    return tuple(pairs)


def resolve_pairs(
    inputs: Sequence[str], outputs: Sequence[str], declared: Sequence[tuple[str, str]]
) -> tuple[StatePair, ...]:
    """The declared pairs (each name checked; spelled with other separators, as a file names
    them, is the same name), else the pairs inferred by name.

    Raises:
        InputSpecError: a pair names an input or output the model does not have.
    """
    if not declared:
        return infer_pairs(inputs, outputs)
    from exportkit.validate.fit import match_names

    pairs = []
    for name, out in declared:
        # A file's spelling of the name (Optimum's past_key_values.0.key) names the same input.
        name = (match_names([name], inputs) or {}).get(name, name)
        out = (match_names([out], outputs) or {}).get(out, out)
        if name not in inputs:
            raise InputSpecError(
                f"--state {name}={out}: the model has no input {name!r}; its inputs are: "
                f"{', '.join(inputs) or '(none)'}",
                hint=f"write --state {inputs[0] if inputs else 'INPUT'}={out}",
            )
        if out not in outputs:
            raise InputSpecError(
                f"--state {name}={out}: the model has no output {out!r}; its outputs are: "
                f"{', '.join(outputs) or '(none)'}",
                hint=f"write --state {name}={outputs[-1] if outputs else 'OUTPUT'}",
            )
        pairs.append(StatePair(name, out))
    return tuple(pairs)


def with_grow_dims(
    pairs: Sequence[StatePair],
    example: ExampleInputs,
    outputs: Mapping[str, Any],
) -> tuple[tuple[StatePair, ...], ExampleInputs]:
    """Each pair's growing axis (where the output is longer than the input), made dynamic
    (label ``past``) in the inputs unless it already is; a state of another rank is refused.

    Raises:
        InputSpecError: a pair's output has another rank than its input (not state of it).
    """
    dynamic = {n: dict(a) for n, a in example.dynamic.items()}
    found = []
    for pair in pairs:
        if pair.prefill_only:  # written once by the prefill graph, read unchanged after
            found.append(pair)
            continue
        have = tuple(example.tensors[pair.input].shape)
        got = tuple(outputs[pair.output].shape)
        if len(have) != len(got):
            raise InputSpecError(
                f"--state {pair.input}={pair.output}: the output is {got}, the input {have}; "
                "state passed to the next step must keep its rank",
                hint="pair each state input with the output that holds its next value",
            )
        # A growing axis: the output is longer there and the same size everywhere else (a
        # cache laid out otherwise in the output than in the input is no growing state).
        other = [a for a, (h, g) in enumerate(zip(have, got)) if g != h]
        axis = other[0] if len(other) == 1 and got[other[0]] > have[other[0]] else None
        if axis is not None and axis not in dynamic.get(pair.input, {}):
            dynamic.setdefault(pair.input, {})[axis] = PAST_LABEL
        found.append(replace(pair, axis=axis))
    # State whose output is laid out otherwise (a transposed cache) grows where its siblings of
    # the same input shape grow: the chained steps then show the layout break where it bites.
    for i, pair in enumerate(found):
        shape = tuple(example.tensors[pair.input].shape)
        sibling = next(
            (
                p
                for p in found
                if p.axis is not None and tuple(example.tensors[p.input].shape) == shape
            ),
            None,
        )
        if pair.prefill_only:
            continue
        laid_out_otherwise = shape != tuple(outputs[pair.output].shape)
        if (
            pair.axis is None
            and sibling is not None
            and sibling.axis is not None
            and laid_out_otherwise
        ):
            found[i] = replace(pair, axis=sibling.axis)
            dynamic.setdefault(pair.input, {})[sibling.axis] = PAST_LABEL
    return tuple(found), replace(example, dynamic=dynamic)
