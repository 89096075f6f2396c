"""torch -> ONNX file: the dynamo exporter first, the TorchScript exporter as fallback or on request.

``export_model`` is the stage's verb; :mod:`.exporters` holds the two exporter calls,
:mod:`.failures` turns a failed attempt into one line and a hint, :mod:`.results` the types.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from exportkit.errors import ExportError
from exportkit.export.exporters import export_dynamo, export_torchscript, quiet, weight_bytes
from exportkit.export.failures import detail, failed_attempt, hint
from exportkit.export.results import ExportAttempt, ExportResult, FrozenDim
from exportkit.inputs import ExampleInputs
from exportkit.opsets import Exporter, check_written_opset

if TYPE_CHECKING:
    import onnx
    from torch import nn

__all__ = [
    "ExportAttempt",
    "ExportResult",
    "Exporter",
    "FrozenDim",
    "export_model",
    "output_names",
]

logger = logging.getLogger(__name__)

# Past this many bytes of weights, write external data (protobuf cannot hold more than 2 GiB).
EXTERNAL_DATA_BYTES = 1 << 30


def output_names(outputs: Any) -> list[str]:
    """Stable names from the output structure: dict keys, fields, positions (``past.0.key``)."""
    from torch.utils._pytree import tree_flatten_with_path

    from exportkit.outputs import plain_outputs

    names = []
    for path, _ in tree_flatten_with_path(plain_outputs(outputs))[0]:
        parts = []
        for key in path:
            for attr in ("key", "idx", "name"):
                if hasattr(key, attr):
                    parts.append(str(getattr(key, attr)))
                    break
        if not parts:
            names.append("output")
        else:
            name = ".".join(parts)
            names.append(f"output.{name}" if parts[0].isdigit() else name)
    return names


def _check_outputs_are_tensors(module: nn.Module, outputs: Any, names: Sequence[str]) -> None:
    """Fail early, naming the output, when forward returns an object no exporter can flatten
    into tensors (both would fail after tracing, with pages about pytrees and JIT types).

    Raises:
        ExportError: an output leaf is neither a tensor nor a plain number.
    """
    import torch
    from torch.utils._pytree import tree_leaves

    from exportkit.outputs import plain_outputs

    plain = (torch.Tensor, int, float, bool)
    for name, leaf in zip(names, tree_leaves(plain_outputs(outputs))):
        if not isinstance(leaf, plain):
            kind = f"{type(leaf).__module__}.{type(leaf).__qualname__}"
            raise ExportError(
                f"{type(module).__name__}.forward returns a {kind} as output {name!r}; "
                "ONNX outputs are tensors and no exporter can flatten that object",
                hint="return tensors (in tuples, lists, dicts or dataclasses); a transformers "
                "model returns its key/value cache unless its config has use_cache=False",
            )


def _frozen_dims(model: onnx.ModelProto, inputs: ExampleInputs) -> tuple[FrozenDim, ...]:
    shapes = {vi.name: vi.type.tensor_type.shape for vi in model.graph.input}
    frozen = []
    for name, axes in inputs.dynamic.items():
        shape = shapes.get(name)
        if shape is None:
            continue
        for axis, label in axes.items():
            if axis < len(shape.dim) and shape.dim[axis].HasField("dim_value"):
                frozen.append(FrozenDim(name, axis, label, shape.dim[axis].dim_value))
    return tuple(frozen)


def _read_interface(path: Path, interface: onnx.ModelProto | None) -> onnx.ModelProto:
    import onnx

    return interface or onnx.load(str(path), load_external_data=False)


def _companions(path: Path, before: set[Path]) -> tuple[Path, ...]:
    """The model file and whatever the exporter wrote beside it (external data)."""
    others = sorted(p for p in path.parent.iterdir() if p not in before and p != path)
    return (path, *others)


def export_model(
    module: nn.Module,
    inputs: ExampleInputs,
    path: str | Path,
    *,
    exporter: Exporter = "auto",
    opset: int | None = None,
    reference_outputs: Any = None,
    custom_translations: Mapping[Any, Any] | None = None,
) -> ExportResult:
    """Export ``module`` called with ``inputs`` (by keyword) to an ONNX file at ``path``.

    With ``exporter="auto"`` the dynamo exporter runs first and the TorchScript exporter is the
    fallback; every attempt is recorded. Export into a folder of its own: exporters may write
    external-data files beside the model.

    Args:
        module: the model, in eval mode.
        inputs: example inputs; their dynamic dims become symbolic dims in the ONNX inputs.
        path: the ``.onnx`` file to write.
        exporter: ``auto``, ``dynamo`` or ``torchscript``.
        opset: ONNX opset, or the exporter's default.
        reference_outputs: the model's outputs on ``inputs`` (to name outputs); computed if None.
        custom_translations: ONNX translations (onnxscript functions) for custom operators, by
            op overload, as torch.onnx.export's ``custom_translation_table`` (dynamo only).

    Raises:
        ExportError: every exporter tried failed; the message names each one's failure.
    """
    from exportkit.inputs import run_model

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    before = set(path.parent.iterdir())
    if reference_outputs is None:
        reference_outputs = run_model(module, inputs)
    from exportkit.outputs import register_output_dataclasses

    register_output_dataclasses(reference_outputs)
    names = output_names(reference_outputs)
    _check_outputs_are_tensors(module, reference_outputs, names)
    external = weight_bytes(module) > EXTERNAL_DATA_BYTES
    order: list[str] = ["dynamo", "torchscript"] if exporter == "auto" else [exporter]
    if exporter == "auto" and getattr(module, "torchscript_module", None) is not None:
        order = ["torchscript"]  # a TorchScript archive: torch.export cannot read ScriptModules
    attempts: list[ExportAttempt] = []
    for which in order:
        start = time.perf_counter()
        interface: onnx.ModelProto | None = None
        try:
            with quiet(which):
                if which == "dynamo":
                    interface = export_dynamo(
                        module, inputs, path, names, opset, external, custom_translations
                    )
                else:
                    export_torchscript(module, inputs, path, names, opset)
        except Exception as exc:  # the exporter's failure, whatever its type; ours stay outside
            attempts.append(failed_attempt(module, inputs, which, start, exc))
            logger.info("%s exporter failed: %s", which, attempts[-1].error)
            for stale in set(path.parent.iterdir()) - before:
                stale.unlink()
            continue
        if which == "torchscript" and external:  # one file per weight: keep one data file
            from exportkit.external import consolidate

            consolidate(path)
        result = _result(path, before, which, attempts, opset, inputs, interface)
        try:
            check_written_opset(_read_interface(path, interface), opset)
        except ExportError as exc:
            attempts.append(failed_attempt(module, inputs, which, start, exc))
            for stale in set(path.parent.iterdir()) - before:
                stale.unlink()
            continue
        attempts.append(ExportAttempt(which, True, time.perf_counter() - start))
        return replace(result, attempts=tuple(attempts))
    raise ExportError(f"export failed: {detail(attempts)}", hint=hint(exporter, attempts))


def _result(
    path: Path,
    before: set[Path],
    which: str,
    attempts: Sequence[ExportAttempt],
    opset: int | None,
    inputs: ExampleInputs,
    interface: onnx.ModelProto | None,
) -> ExportResult:
    """What was written; ``interface`` (inputs, outputs, opsets) is read from the file if None."""
    import onnx

    model = interface or onnx.load(str(path), load_external_data=False)
    default = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    files = _companions(path, before)
    return ExportResult(
        path=path,
        files=files,
        exporter=which,
        attempts=tuple(attempts),
        opset=default,
        input_names=tuple(vi.name for vi in model.graph.input),
        output_names=tuple(vi.name for vi in model.graph.output),
        external_data=len(files) > 1,
        frozen_dims=_frozen_dims(model, inputs),
    )
