"""The decode stage as the pipeline runs it: the cached graph of a causal LM (load), the state
pairs and their growing dims (inputs), the chained steps on the chosen file (after validation)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from exportkit.decode.chain import DEFAULT_STEPS, TOKEN_INPUTS, token_input
from exportkit.decode.results import DecodeResult, PrefillFile, StatePair
from exportkit.decode.seq2seq import prefill_example, prefill_path

if TYPE_CHECKING:
    from torch import nn

    from exportkit.decode.chain import FirstStep
    from exportkit.decode.seq2seq import PrefillGraph
    from exportkit.inputs import ExampleInputs
    from exportkit.loading import LoadedModel
    from exportkit.options import Options
    from exportkit.stages import Stages

__all__ = [
    "DEFAULT_STEPS",
    "TOKEN_INPUTS",
    "decoder_model",
    "install_prefill",
    "prefill_path",
    "run_steps",
    "state_pairs",
    "token_input",
]


def _wanted(options: Options) -> bool:
    return options.steps > 0 or bool(options.state)


def decoder_model(loaded: LoadedModel, options: Options) -> LoadedModel:
    """With ``--steps``, a transformers causal LM becomes its cached graph (exportkit.decode.cache),
    an encoder-decoder its step graph carrying its prefill graph (exportkit.decode.seq2seq); any
    other module is exported as it is, its state named by ``--state`` or by its names."""
    from exportkit.decode.cache import cached_decoder, is_cached_lm, is_encoder_decoder
    from exportkit.decode.seq2seq import cached_seq2seq_decoder

    if not _wanted(options) or not is_cached_lm(loaded.module):
        return loaded
    cached = cached_seq2seq_decoder if is_encoder_decoder(loaded.module) else cached_decoder
    wrapper, suggested = cached(loaded.module)
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
    from exportkit.decode.seq2seq import prefill_graph
    from exportkit.decode.state import PAST_LABEL, resolve_pairs, with_grow_dims
    from exportkit.errors import InputSpecError
    from exportkit.export import output_names
    from exportkit.inputs import run_model
    from exportkit.validate.cases import flat_outputs

    reference = run_model(module, example)
    names = output_names(reference)
    outputs = dict(zip(names, flat_outputs(reference)))
    first = prefill_graph(module)
    extra: list[str] = []  # outputs of the prefill graph alone (the cross-attention cache)
    if first is not None:
        first_out = run_model(first.module, prefill_example(first, options.seed))
        extra = [n for n in output_names(first_out) if n not in names]
    pairs = resolve_pairs(list(example.tensors), [*names, *extra], options.state)
    pairs = tuple(replace(p, prefill_only=True) if p.output in extra else p for p in pairs)
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
    *,
    work: Path | None = None,
) -> DecodeResult | None:
    """``--steps``/``--state``: the prefill and the chained steps of the file against eager.

    An encoder-decoder's prefill graph is exported into ``work`` and validated first (with
    ``work`` None, as ``check`` runs, the ``<stem>.prefill.onnx`` beside ``path`` if any)."""
    if not pairs:
        return None
    from exportkit.decode.seq2seq import prefill_graph
    from exportkit.decode.steps import validate_steps

    graph = prefill_graph(module)
    prefill, first = _prefill_file(stages, graph, path, options, work) if graph else (None, None)
    ids = token_input(example, pairs)  # validate_steps drops it when no output is ``logits``
    with stages.run("decode steps") as detail:
        result = validate_steps(
            module, path, example, pairs, steps=options.steps or DEFAULT_STEPS,
            tolerances=options.tolerances, seed=options.seed,
            token_input=ids, token_output="logits" if ids is not None else None, first=first,
        )  # fmt: skip
        failed = result.first_failure
        detail.append(
            f"prefill ({result.prefill}) + {len(result.steps) - 1} steps: "
            + ("pass" if failed is None else f"FAIL at step {failed.step}")
        )
    return replace(result, prefill_file=prefill)


def _prefill_file(
    stages: Stages, graph: PrefillGraph, path: Path, options: Options, work: Path | None
) -> tuple[PrefillFile | None, FirstStep]:
    """The prefill graph exported, validated and simplified as the step graph is (stages
    ``prefill ...``), or, with no ``work`` folder, the file found beside ``path``."""
    from exportkit.choose import simplify_checked
    from exportkit.decode.chain import FirstStep
    from exportkit.export import export_model
    from exportkit.validate import ValidationResult, make_cases, validate

    example = prefill_example(graph, options.seed)
    cases = make_cases(graph.module, example, sizes=options.sizes)
    mine = stages.prefixed("prefill ")

    def validated(stage: str, file: Path, locate: Any = None) -> ValidationResult:
        with mine.run(stage) as detail:
            check = validate(graph.module, file, cases, options.tolerances, locate=locate,
                             strict=options.strict)  # fmt: skip
            detail.append(check.verdict)
        return check

    if work is None:
        found = prefill_path(path)
        if not found.is_file():
            return None, FirstStep(graph.module, None, example.tensors)
        check = validated("validate", found)
        return PrefillFile(found, (found,), check), FirstStep(graph.module, found, example.tensors)
    with mine.run("export") as detail:
        exported = export_model(
            graph.module, example, work / "prefill" / prefill_path(path).name,
            exporter=options.exporter, opset=options.opset,
            custom_translations=options.custom_translations,
        )  # fmt: skip
        detail.append(f"{exported.exporter}: {exported.path.name}")
    choice = simplify_checked(
        mine, validated, exported, validated("validate", exported.path), work / "prefill", options
    )
    simp = choice.simplify
    kept = simp is not None and simp.kept
    found, files = (simp.path, simp.files) if simp and kept else (exported.path, exported.files)
    result = PrefillFile(found, files, choice.final, simplified=kept)
    return result, FirstStep(graph.module, found, example.tensors)


def install_prefill(
    result: DecodeResult | None, target: Path, *, passed: bool
) -> tuple[PrefillFile | None, tuple[Path, ...]]:
    """Move the prefill file in beside ``target`` (``<stem>.prefill.onnx``, or
    ``<stem>.prefill.failed.onnx`` when the run failed); it and the files it brought."""
    from exportkit.workspace import install

    prefill = result.prefill_file if result is not None else None
    if prefill is None:
        return None, ()
    files = install(prefill.files, prefill_path(target), passed=passed)
    return replace(prefill, path=files[0], files=files), files
