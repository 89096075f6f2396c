"""What the verbs accept -> what the stages take, and back: a spec or a module -> LoadedModel;
input specs, tensors or nothing -> ExampleInputs -> the report's InputInfo; a path -> the ONNX
file it must hold."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from exportkit.inputs import ExampleInputs, InputSpec, make_inputs
from exportkit.loading import LoadedModel, load_model
from exportkit.options import Options
from exportkit.results import InputInfo

if TYPE_CHECKING:
    import onnx
    from torch import nn

__all__ = [
    "InputsArg",
    "example_inputs",
    "input_infos",
    "load",
    "require_onnx",
    "require_option_files",
]

# ``["x:2x10"]`` specs, InputSpec objects, ExampleInputs, a dict name -> tensor, a tuple of tensors
# or one tensor; None uses the model's example_inputs().
InputsArg = Any


def load(model: str | nn.Module | LoadedModel, options: Options) -> LoadedModel:
    """A spec, a module or a LoadedModel -> the LoadedModel the stages take."""
    from torch import nn

    if isinstance(model, LoadedModel):
        return model
    if isinstance(model, nn.Module):
        model.eval()
        declared = getattr(model, "example_inputs", None)
        name = type(model).__name__
        return LoadedModel(model, name, name, declared if callable(declared) else None)
    return load_model(
        model,
        kwargs=options.model_kwargs,
        weights=options.weights,
        strict_weights=options.strict_weights,
        seed=options.seed,
    )


def example_inputs(loaded: LoadedModel, inputs: InputsArg, options: Options) -> ExampleInputs:
    """Specs, tensors, ExampleInputs or None (the model's own) -> the example inputs."""
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


def input_infos(inputs: ExampleInputs) -> tuple[InputInfo, ...]:
    """The example inputs as the report shows them: name, shape, dtype, dynamic dims."""
    return tuple(
        InputInfo(
            name=n,
            shape=tuple(int(d) for d in t.shape),
            dtype=inputs.specs[n].dtype,
            dynamic=dict(inputs.dynamic.get(n, {})),
        )
        for n, t in inputs.tensors.items()
    )


def require_onnx(path: Path) -> onnx.ModelProto:
    """Fail early, as a usage error, on a file that is not whole ONNX (the summary's reader:
    missing, a folder, empty, text, truncated, external data missing)."""
    from exportkit.summary.graph import load_model

    return load_model(path, infer=False).model


def require_option_files(options: Options) -> None:
    """Refuse, before any work, a ``--baseline`` or ``--calibrate`` file that cannot serve.

    Raises:
        OnnxFileError: the baseline is not a whole ONNX file, nor an exportkit --json report.
        InputSpecError: the calibration file is missing or holds no arrays.
    """
    import json

    from exportkit.errors import OnnxFileError

    if options.baseline is not None:
        base = Path(options.baseline)
        if base.suffix.lower() == ".json":
            try:
                doc = json.loads(base.read_text(encoding="utf-8"))
                doc["fingerprint"]["values"]
            except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
                raise OnnxFileError(
                    f"--baseline {base} is not an exportkit --json report with a fingerprint",
                    hint="give the earlier release's .onnx file, or the report its "
                    "`exportkit export ... --json` wrote",
                ) from None
        else:
            require_onnx(base)
    if options.calibrate is not None:
        from exportkit.inputs.data import load_data

        name, sep, file = options.calibrate.rpartition("=")
        load_data(file if sep else options.calibrate, name if sep else "")
