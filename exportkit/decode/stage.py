"""The decode stage as the pipeline runs it: the cached graph of a causal LM (load), the state
pairs and their growing dims (inputs), the chained steps on the chosen file (after validation)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from exportkit.decode.chain import DEFAULT_STEPS, TOKEN_INPUTS, token_input
from exportkit.decode.results import DecodeResult, StatePair

if TYPE_CHECKING:
    from torch import nn

    from exportkit.inputs import ExampleInputs
    from exportkit.loading import LoadedModel
    from exportkit.options import Options
    from exportkit.stages import Stages

__all__ = [
    "DEFAULT_STEPS",
    "TOKEN_INPUTS",
    "decoder_model",
    "run_steps",
    "state_pairs",
    "token_input",
]


def _wanted(options: Options) -> bool:
    return options.steps > 0 or bool(options.state)


def decoder_model(loaded: LoadedModel, options: Options) -> LoadedModel:
    """With ``--steps``, a transformers causal LM becomes its cached graph (exportkit.decode.cache);
    any other module is exported as it is, its state named by ``--state`` or by its names."""
    from exportkit.decode.cache import cached_decoder, is_cached_lm

    if not _wanted(options) or not is_cached_lm(loaded.module):
        return loaded
    wrapper, suggested = cached_decoder(loaded.module)
    notes = tuple(n for n in loaded.notes if "use_cache=False" not in n)
    return replace(loaded, module=wrapper, suggested=suggested, example_inputs=None, notes=notes)


def state_pairs(
    module: nn.Module, example: ExampleInputs, options: Options
) -> tuple[ExampleInputs, tuple[StatePair, ...]]:
    """The state pairs (``--state`` or inferred by name), with the growing dims made dynamic.

    Raises:
        InputSpecError: a pair names an unknown input or output, or none can be inferred.
    """
    if not _wanted(options):
        return example, ()
    from exportkit.decode.state import PAST_LABEL, resolve_pairs, with_grow_dims
    from exportkit.errors import InputSpecError
    from exportkit.export import output_names
    from exportkit.inputs import run_model
    from exportkit.validate.cases import flat_outputs

    reference = run_model(module, example)
    names = output_names(reference)
    outputs = dict(zip(names, flat_outputs(reference)))
    pairs = resolve_pairs(list(example.tensors), names, options.state)
    if not pairs:
        raise InputSpecError(
            "--steps: no input of the model pairs with an output by name (past*/present*, "
            f"state*/new_state*, h0/hn); inputs: {', '.join(example.tensors)}; outputs: "
            f"{', '.join(names)}",
            hint="declare each state with --state INPUT=OUTPUT",
        )
    pairs, example = with_grow_dims(pairs, example, outputs)
    ids = token_input(example, pairs) if "logits" in names else None
    if ids is not None and 1 not in example.dynamic.get(ids, {}):
        # The prefill feeds a prompt and each step one token: the ids' length must be dynamic.
        dynamic = {n: dict(a) for n, a in example.dynamic.items()}
        dynamic.setdefault(ids, {})[1] = "seq"
        example = replace(example, dynamic=dynamic)
    small = [p for p in pairs if p.axis is not None and example.tensors[p.input].shape[p.axis] < 2]
    if small:  # exporters freeze a dynamic dim of size 0 or 1: export at a past of 3
        example = example.resample({**example.labels, PAST_LABEL: 3}, seed=example.seed)
    return example, pairs


def run_steps(
    stages: Stages,
    module: nn.Module,
    path: Path,
    example: ExampleInputs,
    pairs: tuple[StatePair, ...],
    options: Options,
) -> DecodeResult | None:
    """``--steps``/``--state``: the prefill and the chained steps of the file against eager."""
    if not pairs:
        return None
    from exportkit.decode.steps import validate_steps

    ids = token_input(example, pairs)  # validate_steps drops it when no output is ``logits``
    with stages.run("decode steps") as detail:
        result = validate_steps(
            module, path, example, pairs, steps=options.steps or DEFAULT_STEPS,
            tolerances=options.tolerances, seed=options.seed,
            token_input=ids, token_output="logits" if ids is not None else None,
        )  # fmt: skip
        failed = result.first_failure
        detail.append(
            f"prefill ({result.prefill}) + {len(result.steps) - 1} steps: "
            + ("pass" if failed is None else f"FAIL at step {failed.step}")
        )
    return result
