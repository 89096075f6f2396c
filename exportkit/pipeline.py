"""The stage order: load -> inputs -> export -> simplify -> validate -> summary. Nothing else knows it."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from exportkit.errors import ExportError, OnnxFileError, OutputPathError, SimplifyError
from exportkit.export import ExportAttempt, Exporter, ExportResult, export_model
from exportkit.inputs import DynamicSpec, ExampleInputs, InputSpec, make_inputs, run_model
from exportkit.loading import LoadedModel, load_model
from exportkit.simplify import Simplifier, SimplifyResult, simplify_model
from exportkit.validate import (
    Case,
    Parity,
    Tolerances,
    ValidationResult,
    check_onnx,
    localize,
    make_cases,
    three_way,
)

if TYPE_CHECKING:
    from torch import nn

__all__ = ["Options", "Report", "StageEvent", "StageTiming", "run_check", "run_export"]

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1

StageStatus = Literal["start", "ok", "failed", "skipped"]


@dataclass(frozen=True)
class StageEvent:
    """Progress of one stage, for a live display: ``start`` then ``ok``/``failed``/``skipped``."""

    stage: str
    status: StageStatus
    seconds: float = 0.0
    detail: str = ""


@dataclass(frozen=True)
class StageTiming:
    """How a stage ended and how long it took."""

    stage: str
    status: str
    seconds: float
    detail: str = ""


@dataclass(frozen=True)
class InputInfo:
    """One example input as exported."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    dynamic: Mapping[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Options:
    """Everything that steers the pipeline besides the model and its inputs."""

    exporter: Exporter = "auto"
    opset: int | None = None
    simplifier: Simplifier = "onnxsim"
    tolerances: Tolerances = field(default_factory=Tolerances)
    dynamic: tuple[DynamicSpec, ...] = ()
    seed: int = 0
    sizes: bool = True
    model_kwargs: Mapping[str, Any] = field(default_factory=dict)
    # ONNX translations for custom operators (dynamo): op overload -> onnxscript function.
    custom_translations: Mapping[Any, Any] = field(default_factory=dict)
    weights: str | None = None
    strict_weights: bool = True


@dataclass(frozen=True)
class Report:
    """Everything one run found: each stage's result, the final file, and the verdict."""

    model: str
    output: Path | None
    files: tuple[Path, ...]
    inputs: tuple[InputInfo, ...]
    input_notes: tuple[str, ...]
    stages: tuple[StageTiming, ...]
    export: ExportResult | None
    simplify: SimplifyResult | None
    validation: ValidationResult | None
    validation_raw: ValidationResult | None
    summary: Any
    versions: Mapping[str, str]
    validation_simplified: ValidationResult | None = None
    parity: Parity | None = None
    schema_version: int = SCHEMA_VERSION
    # Where the inputs came from: given, declared, config, archive or inferred (see ExampleInputs).
    input_source: str = "given"
    # ``--input`` lines that rebuild the inputs (shown to copy when they were not given).
    input_lines: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        """Every check passed: the final file matches PyTorch and no dynamic dim came out fixed."""
        frozen = bool(self.export and self.export.frozen_dims)
        return self.validation is not None and self.validation.passed and not frozen


ProgressFn = Callable[[StageEvent], None]

# ``["x:2x10"]`` specs, InputSpec objects, ExampleInputs, a dict name -> tensor, a tuple of tensors
# or one tensor; None uses the model's example_inputs().
InputsArg = Any


def _versions() -> dict[str, str]:
    names = (
        "exportkit",
        "torch",
        "onnx",
        "onnxruntime",
        "onnxscript",
        "onnxsim",
        "onnxslim",
        "netron",
    )
    out = {}
    for name in names:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out


class _Stages:
    """Times each stage and tells the progress callback."""

    def __init__(self, progress: ProgressFn | None) -> None:
        self.progress = progress or (lambda event: None)
        self.timings: list[StageTiming] = []

    @contextlib.contextmanager
    def run(self, stage: str) -> Iterator[list[str]]:
        detail: list[str] = []
        self.progress(StageEvent(stage, "start"))
        start = time.perf_counter()
        try:
            yield detail
        except BaseException:
            seconds = time.perf_counter() - start
            self.timings.append(StageTiming(stage, "failed", seconds))
            self.progress(StageEvent(stage, "failed", seconds))
            raise
        seconds = time.perf_counter() - start
        text = "; ".join(detail)
        self.timings.append(StageTiming(stage, "ok", seconds, text))
        self.progress(StageEvent(stage, "ok", seconds, text))

    def skip(self, stage: str, why: str) -> None:
        self.timings.append(StageTiming(stage, "skipped", 0.0, why))
        self.progress(StageEvent(stage, "skipped", 0.0, why))


def _load(model: str | nn.Module | LoadedModel, options: Options) -> LoadedModel:
    from torch import nn

    if isinstance(model, LoadedModel):
        return model
    if isinstance(model, nn.Module):
        model.eval()
        declared = getattr(model, "example_inputs", None)
        return LoadedModel(
            model,
            type(model).__name__,
            type(model).__name__,
            declared if callable(declared) else None,
        )
    return load_model(
        model,
        kwargs=options.model_kwargs,
        weights=options.weights,
        strict_weights=options.strict_weights,
        seed=options.seed,
    )


def _inputs(loaded: LoadedModel, inputs: Any, options: Options) -> ExampleInputs:
    import torch

    if isinstance(inputs, ExampleInputs):
        return inputs
    declared = loaded.example_inputs
    if isinstance(inputs, (Mapping, torch.Tensor)) or (
        isinstance(inputs, tuple) and all(isinstance(t, torch.Tensor) for t in inputs)
    ):
        tensors = inputs
        declared, inputs = (lambda: tensors), None
    specs = [InputSpec.parse(s) if isinstance(s, str) else s for s in inputs or ()]
    example = make_inputs(
        loaded.module,
        specs,
        dynamic=options.dynamic,
        declared=declared,
        suggested=loaded.suggested,
        seed=options.seed,
    )
    return replace(example, notes=(*loaded.notes, *example.notes))


def _input_infos(inputs: ExampleInputs) -> tuple[InputInfo, ...]:
    return tuple(
        InputInfo(
            n,
            tuple(int(d) for d in t.shape),
            inputs.specs[n].dtype,
            dict(inputs.dynamic.get(n, {})),
        )
        for n, t in inputs.tensors.items()
    )


def default_output(name: str) -> Path:
    """``exportkit_out/<name>/<name>.onnx``: one folder per model."""
    return Path("exportkit_out") / name / f"{name}.onnx"


def _writable_folder(path: Path) -> None:
    if path.suffix != ".onnx":
        raise OutputPathError(
            f"output {str(path)!r} does not end in .onnx", hint="write -o path/to/model.onnx"
        )
    if path.is_dir():
        raise OutputPathError(
            f"output {str(path)!r} is a folder", hint="write -o path/to/model.onnx"
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputPathError(
            f"cannot create folder {str(path.parent)!r}: {exc.strerror}",
            hint="choose another -o path",
        ) from None
    if not os.access(path.parent, os.W_OK):
        raise OutputPathError(
            f"cannot write to folder {str(path.parent)!r}: permission denied",
            hint="choose another -o path",
        )


def _install(files: Sequence[Path], target: Path) -> tuple[Path, ...]:
    """Move a finished model and its data files next to ``target``, each by atomic rename."""
    installed = []
    for f in files:
        dest = target if f.suffix == ".onnx" and f.stem == target.stem else target.parent / f.name
        f.replace(dest)
        installed.append(dest)
    return tuple(installed)


def _checked(
    stages: _Stages,
    stage: str,
    module: nn.Module,
    path: Path,
    cases: Sequence[Case],
    options: Options,
    *,
    locate: Callable[[ValidationResult], bool] = lambda result: not result.passed,
) -> ValidationResult:
    """Validate one file; on a mismatch, name the first module where it diverges."""
    with stages.run(stage) as detail:
        result = check_onnx(path, cases, tolerances=options.tolerances)
        if locate(result):
            where = localize(module, path, cases, result, options.tolerances)
            result = replace(result, divergence=where)
        detail.append("pass" if result.passed else "MISMATCH")
        if result.divergence is not None:
            detail.append(f"diverges at {result.divergence.location.describe()}")
    return result


@dataclass(frozen=True)
class _Choice:
    simplify: SimplifyResult | None
    final: ValidationResult
    raw: ValidationResult
    simplified: ValidationResult | None
    parity: Parity


def _simplify_and_choose(
    stages: _Stages,
    module: nn.Module,
    raw: ExportResult,
    raw_check: ValidationResult,
    work: Path,
    cases: Sequence[Case],
    options: Options,
) -> _Choice:
    """Simplify the validated export, validate that, and keep the simplified only if no worse."""
    if options.simplifier == "none":
        stages.skip("simplify", "--simplifier none")
        parity = three_way(raw_check, None, why_none="--simplifier none")
        return _Choice(None, raw_check, raw_check, None, parity)
    try:
        with stages.run("simplify") as detail:
            simp = simplify_model(
                raw.path, work / "simplified" / raw.path.name, simplifier=options.simplifier
            )
            detail.append(f"{options.simplifier}: {simp.nodes_before} -> {simp.nodes_after} nodes")
    except SimplifyError as exc:
        failed = SimplifyResult(
            options.simplifier, raw.path, 0.0, {}, {}, 0, 0, kept=False, reason=str(exc)
        )
        parity = three_way(raw_check, None, why_none=str(exc))
        return _Choice(failed, raw_check, raw_check, None, parity)
    # Localize the simplified file only where it fails and the export did not.
    simp_check = _checked(
        stages,
        "validate simplified",
        module,
        simp.path,
        cases,
        options,
        locate=lambda result: bool(three_way(raw_check, result).new_failures),
    )
    parity = three_way(raw_check, simp_check)
    if parity.kept == "exported":
        simp = replace(simp, kept=False, reason=parity.reason)
        return _Choice(simp, raw_check, raw_check, simp_check, parity)
    if simp_check.divergence is None and raw_check.divergence is not None:
        # Both fail alike: the drift came from the exporter and was located on the export.
        simp_check = replace(simp_check, divergence=raw_check.divergence)
    return _Choice(simp, simp_check, raw_check, simp_check, parity)


def _exporter_at_fault(check: ValidationResult) -> bool:
    """The file fails somewhere the eager model itself runs: another exporter may do better."""
    return any(not t.passed and not t.pytorch_failed for t in check.trials)


def _failed_cases(check: ValidationResult) -> str:
    failed = [t.label for t in check.trials if not t.passed and not t.pytorch_failed]
    return ", ".join(failed)


def _export_checked(
    stages: _Stages,
    module: nn.Module,
    example: ExampleInputs,
    reference: Any,
    cases: Sequence[Case],
    target: Path,
    options: Options,
) -> tuple[ExportResult, ValidationResult]:
    """Export and validate; with ``--exporter auto``, a dynamo file that fails validation where
    PyTorch runs is not the last word: the TorchScript exporter gets its turn, and the file that
    passes is kept. Exporters report success on wrong numbers; the verdict decides.
    """

    def export(which: Exporter, folder: str) -> ExportResult:
        return export_model(
            module,
            example,
            target.parent / folder / target.name,
            exporter=which,
            opset=options.opset,
            reference_outputs=reference,
            custom_translations=options.custom_translations,
        )

    with stages.run("export") as detail:
        first = export(options.exporter, "exported")
        detail.append(first.exporter)
    first_check = _checked(stages, "validate", module, first.path, cases, options)
    if (
        options.exporter != "auto"
        or first.exporter != "dynamo"
        or not _exporter_at_fault(first_check)
    ):
        return first, first_check
    wrong = ExportAttempt(
        "dynamo",
        False,
        first.attempts[-1].seconds,
        f"wrote a file that fails validation ({_failed_cases(first_check)}); tried torchscript",
    )
    try:
        with stages.run("export torchscript") as detail:
            second = export("torchscript", "exported-torchscript")
            detail.append("dynamo's file failed validation")
    except ExportError as exc:
        tried = ExportAttempt("torchscript", False, 0.0, exc.message)
        return replace(first, attempts=(*first.attempts, tried)), first_check
    second_check = _checked(stages, "validate torchscript", module, second.path, cases, options)
    if second_check.passed:
        return replace(
            second, attempts=(*first.attempts[:-1], wrong, *second.attempts)
        ), second_check
    worse = ExportAttempt(
        "torchscript",
        False,
        second.attempts[-1].seconds,
        f"its file fails validation too ({_failed_cases(second_check) or 'PyTorch-side'}); kept dynamo's",
    )
    return replace(first, attempts=(*first.attempts, worse)), first_check


def run_export(
    model: str | nn.Module | LoadedModel,
    inputs: InputsArg = None,
    output: str | Path | None = None,
    *,
    options: Options | None = None,
    progress: ProgressFn | None = None,
) -> Report:
    """Load, make inputs, export, validate, simplify, validate again, and summarize.

    The final file is written to ``output`` only when every stage before it succeeded; files are
    made in a private folder beside it and moved in by rename, so an earlier good file is never
    half-overwritten.

    Raises:
        ExportkitError: a stage failed (see exportkit.errors).
    """
    options = options or Options()
    stages = _Stages(progress)
    with stages.run("load") as detail:
        loaded = _load(model, options)
        detail.append(loaded.name)
    with stages.run("inputs") as detail:
        example = _inputs(loaded, inputs, options)
        reference = run_model(loaded.module, example)
        detail.append(", ".join(example.describe()))
    target = Path(output) if output is not None else default_output(loaded.name)
    _writable_folder(target)
    work = Path(tempfile.mkdtemp(prefix=f".{target.stem}-", dir=target.parent))
    try:
        cases = make_cases(loaded.module, example, sizes=options.sizes, reference=reference)
        exported, raw_check = _export_checked(
            stages, loaded.module, example, reference, cases, work / target.name, options
        )
        choice = _simplify_and_choose(
            stages, loaded.module, exported, raw_check, work, cases, options
        )
        simp, final_check = choice.simplify, choice.final
        if simp is not None and simp.kept:
            files = _install(simp.files, target)
            simp = replace(simp, path=target, files=files)
            exported = replace(exported, files=())  # the raw export is not kept on disk
        else:
            files = _install(exported.files, target)
            exported = replace(exported, path=target, files=files)
        final_check = replace(final_check, path=target)
        summary = _summarize(stages, target, example.labels)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return Report(
        model=loaded.source,
        output=target,
        files=files,
        inputs=_input_infos(example),
        input_notes=example.notes,
        stages=tuple(stages.timings),
        export=exported,
        simplify=simp,
        validation=final_check,
        validation_raw=choice.raw,
        summary=summary,
        versions=_versions(),
        validation_simplified=choice.simplified,
        parity=choice.parity,
        input_source=example.source,
        input_lines=tuple(example.describe()),
    )


def _summarize(stages: _Stages, path: Path, dims: Mapping[str, int]) -> Any:
    from exportkit.summary import summarize

    with stages.run("summary"):
        return summarize(path, dims=dims)  # MACs counted at the example sizes


def _require_onnx(path: Path) -> None:
    """Fail early, as a usage error, on a missing file or one that is not ONNX."""
    import onnx
    from google.protobuf.message import DecodeError

    if not path.is_file():
        raise OnnxFileError(f"ONNX file {str(path)!r} does not exist", hint="check the path")
    try:
        onnx.load(str(path), load_external_data=False)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise OnnxFileError(
            f"{path} is not an ONNX model ({type(exc).__name__})",
            hint="give a .onnx file written by an ONNX exporter",
        ) from None


def run_check(
    path: str | Path,
    model: str | nn.Module | LoadedModel,
    inputs: InputsArg = None,
    *,
    options: Options | None = None,
    progress: ProgressFn | None = None,
) -> Report:
    """Validate an ONNX file made elsewhere against the PyTorch model.

    Raises:
        ExportkitError: the model or the file cannot be loaded.
    """
    options = options or Options()
    stages = _Stages(progress)
    path = Path(path)
    _require_onnx(path)
    with stages.run("load") as detail:
        loaded = _load(model, options)
        detail.append(loaded.name)
    with stages.run("inputs") as detail:
        example = _inputs(loaded, inputs, options)
        detail.append(", ".join(example.describe()))
    with stages.run("validate") as detail:
        cases = make_cases(loaded.module, example, sizes=options.sizes)
        check = check_onnx(path, cases, tolerances=options.tolerances)
        if not check.passed:
            check = replace(
                check, divergence=localize(loaded.module, path, cases, check, options.tolerances)
            )
        detail.append("pass" if check.passed else "MISMATCH")
    return Report(
        model=loaded.source,
        output=path,
        files=(path,),
        inputs=_input_infos(example),
        input_notes=example.notes,
        stages=tuple(stages.timings),
        export=None,
        simplify=None,
        validation=check,
        validation_raw=None,
        summary=None,
        versions=_versions(),
        input_source=example.source,
        input_lines=tuple(example.describe()),
    )
