"""The stage order, and nothing else knows it.

``run_export``: load -> inputs -> export -> validate -> simplify -> validate -> summary.
``run_check``: load -> inputs -> validate, for a file made elsewhere.

Each stage is a package with one verb; this module threads their typed results into a Report.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from exportkit.choose import simplify_checked
from exportkit.decode.stage import decoder_model, install_prefill, run_steps, state_pairs
from exportkit.diff.stage import check_against_baseline, fingerprint_for
from exportkit.export import Exporter, ExportResult, export_model, output_names
from exportkit.fallback import export_validated
from exportkit.inputs import ExampleInputs, InputSpec, run_model
from exportkit.loading import LoadedModel
from exportkit.opsets import require_opset
from exportkit.options import Options, require_output_names
from exportkit.resolve import (
    InputsArg,
    example_inputs,
    input_infos,
    load,
    require_onnx,
    require_option_files,
)
from exportkit.results import ProgressFn, Report
from exportkit.stages import Stages
from exportkit.validate import (
    Case,
    ValidationResult,
    make_cases,
    require_compatible,
    validate,
)
from exportkit.variants.stage import check_variant, run_variants
from exportkit.versions import tool_versions
from exportkit.workspace import check_target, default_output, install, workspace

if TYPE_CHECKING:
    from torch import nn

__all__ = ["run_check", "run_export"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Prepared:
    loaded: LoadedModel
    example: ExampleInputs
    reference: Any
    cases: list[Case]
    pairs: tuple[Any, ...] = ()  # --steps/--state: the state pairs (exportkit.decode)

    @property
    def specs(self) -> list[InputSpec]:
        """The example inputs as ``--input`` specs (shapes, dtypes, ranges) for other files."""
        return [InputSpec.parse(line) for line in self.example.describe()]


def _prepare(
    stages: Stages,
    model: str | nn.Module | LoadedModel,
    inputs: InputsArg,
    options: Options,
    *,
    onnx_file: Path | None = None,
) -> _Prepared:
    """load -> inputs: the eager model, its example inputs, its outputs, the validation cases;
    a given ``onnx_file`` must take those inputs before the model runs on them."""
    with stages.run("load") as detail:
        loaded = decoder_model(load(model, options), options)
        detail.append(loaded.name)
    with stages.run("inputs") as detail:
        example, pairs = state_pairs(
            loaded.module, example_inputs(loaded, inputs, options), options
        )
        if onnx_file is not None:
            require_compatible(onnx_file, example)
        reference = run_model(loaded.module, example)
        detail.append(", ".join(example.describe()))
    cases = make_cases(loaded.module, example, sizes=options.sizes, reference=reference)
    return _Prepared(loaded, example, reference, cases, pairs)


def _validator(
    stages: Stages, prep: _Prepared, options: Options
) -> Callable[..., ValidationResult]:
    """(stage name, file[, locate]) -> the file's validation, localized where it fails."""

    def run(stage: str, path: Path, locate: Any = None) -> ValidationResult:
        with stages.run(stage) as detail:
            result = validate(
                prep.loaded.module,
                path,
                prep.cases,
                options.tolerances,
                locate=locate,
                strict=options.strict,
            )
            detail.append(result.verdict)
            if result.divergence is not None:
                detail.append(f"diverges at {result.divergence.describe()}")
        return result

    return run


def _report(stages: Stages, prep: _Prepared, **found: Any) -> Report:
    return Report(
        model=prep.loaded.source,
        inputs=input_infos(prep.example),
        input_notes=prep.example.notes,
        stages=tuple(stages.timings),
        versions=tool_versions(),
        input_source=prep.example.source,
        input_lines=tuple(prep.example.describe()),
        torch_params=sum(p.numel() for p in prep.loaded.module.parameters()),
        **found,
    )


def run_export(
    model: str | nn.Module | LoadedModel,
    inputs: InputsArg = None,
    output: str | Path | None = None,
    *,
    options: Options | None = None,
    progress: ProgressFn | None = None,
) -> Report:
    """Load, make inputs, export, validate, simplify, validate again, and summarize.

    The ``-o`` target receives the final file only when it passed; a failing file is kept beside
    it as ``<stem>.failed.onnx`` (see exportkit.workspace).

    Raises:
        ExportkitError: a stage failed (see exportkit.errors).
    """
    options = options or Options()
    require_opset(options.exporter, options.opset)  # before any work
    require_option_files(options)
    if output is not None:
        check_target(Path(output))
    stages = Stages(progress)
    prep = _prepare(stages, model, inputs, options)
    names = output_names(prep.reference)
    require_output_names(options.tolerances, names)
    target = Path(output) if output is not None else default_output(prep.loaded.name)
    check_target(target)
    validated = _validator(stages, prep, options)
    with workspace(target) as work:

        def export(which: Exporter, folder: str) -> ExportResult:
            return export_model(
                prep.loaded.module,
                prep.example,
                work / folder / target.name,
                exporter=which,
                opset=options.opset,
                reference_outputs=prep.reference,
                custom_translations=options.custom_translations,
            )

        exported, raw_check = export_validated(stages, export, validated, options.exporter)
        choice = simplify_checked(stages, validated, exported, raw_check, work, options)
        simp, final = choice.simplify, choice.final
        chosen = simp.path if simp is not None and simp.kept else exported.path
        decode = run_steps(
            stages, prep.loaded.module, chosen, prep.example, prep.pairs, options, work=work
        )
        # Judged before the file moves in: the baseline may be the very file at the target.
        baseline = check_against_baseline(stages, chosen, prep.specs, options)
        passed = final.passed and not exported.frozen_dims and (decode is None or decode.passed)
        passed = passed and all(rule.passed for rule in baseline.get("baseline", ()))
        if simp is not None and simp.kept:
            files = install(simp.files, target, passed=passed)
            simp, exported = replace(simp, path=files[0], files=files), replace(exported, files=())
        else:
            files = install(exported.files, target, passed=passed)
            exported = replace(exported, path=files[0], files=files)
        final = replace(final, path=files[0])
        prefill, prefill_files = install_prefill(decode, target, passed=passed)
    variants = run_variants(stages, prep.loaded.module, files[0], prep.cases, options, passed,
                            example=prep.example, pairs=prep.pairs)  # fmt: skip
    summary = _summarize(stages, files[0], prep.example.labels)
    return _report(
        stages,
        prep,
        output=files[0],
        target=target,
        files=(*files, *prefill_files),
        export=exported,
        simplify=simp,
        validation=final,
        validation_raw=raw_check,
        validation_simplified=choice.simplified,
        parity=choice.parity,
        summary=summary,
        variants=variants,
        steps=decode.steps if decode is not None else (),
        state_pairs=decode.pairs if decode is not None else prep.pairs,
        prefill=prefill,
        **fingerprint_for(files[0], prep.specs, options),
        **baseline,
    )


def _summarize(stages: Stages, path: Path, dims: Mapping[str, int]) -> Any:
    from exportkit.summary import summarize

    with stages.run("summary"):
        return summarize(path, dims=dims)  # MACs counted at the example sizes


def run_check(
    path: str | Path,
    model: str | nn.Module | LoadedModel,
    inputs: InputsArg = None,
    *,
    options: Options | None = None,
    progress: ProgressFn | None = None,
) -> Report:
    """Validate an ONNX file made elsewhere against the PyTorch model: load -> inputs -> validate.

    Raises:
        ExportkitError: the model or the file cannot be loaded, or the file is not this model's.
    """
    options = options or Options()
    path = Path(path)
    outputs = [o.name for o in require_onnx(path).graph.output]
    require_option_files(options)
    stages = Stages(progress)
    prep = _prepare(stages, model, inputs, options, onnx_file=path)
    require_output_names(options.tolerances, outputs)
    variants = check_variant(stages, prep.loaded.module, path, prep.cases, options,
                             example=prep.example, pairs=prep.pairs)  # fmt: skip
    check = None if variants else _validator(stages, prep, options)("validate", path)
    # A float16/int8 file's chained steps are judged as a variant's (in its row), not by float tolerances.
    decode = (
        None
        if variants
        else run_steps(stages, prep.loaded.module, path, prep.example, prep.pairs, options)
    )
    return _report(
        stages,
        prep,
        output=path,
        target=path,
        files=(path,),
        export=None,
        simplify=None,
        validation=check,
        validation_raw=None,
        summary=None,
        variants=variants,
        steps=decode.steps if decode is not None else (),
        state_pairs=decode.pairs if decode is not None else prep.pairs,
        prefill=decode.prefill_file if decode is not None else None,
        **fingerprint_for(path, prep.specs, options),
        **check_against_baseline(stages, path, prep.specs, options),
    )
