"""exportkit: PyTorch -> ONNX you can trust and look at.

The verbs: :func:`export` (the whole pipeline), :func:`check` (an ONNX file made elsewhere against
its PyTorch model), :func:`summarize` (any ONNX file, no torch needed) and :func:`view` (Netron).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from exportkit.errors import ExportkitError
from exportkit.export import Exporter
from exportkit.inputs import DynamicSpec, ExampleInputs, InputSpec
from exportkit.pipeline import InputsArg, Options, ProgressFn, Report
from exportkit.simplify import Simplifier
from exportkit.validate import Tolerances, ValidationResult

if TYPE_CHECKING:
    from torch import nn

    from exportkit.summary import GraphSummary
    from exportkit.viewer import ViewHandle

__version__ = "0.1.0"

__all__ = [
    "DynamicSpec",
    "ExampleInputs",
    "ExportkitError",
    "InputSpec",
    "Report",
    "Tolerances",
    "ValidationResult",
    "__version__",
    "check",
    "export",
    "summarize",
    "view",
]


def _options(
    dynamic: Sequence[DynamicSpec | str],
    exporter: Exporter,
    opset: int | None,
    simplifier: Simplifier,
    atol: float | None,
    rtol: float | None,
    seed: int,
    sizes: bool,
) -> Options:
    return Options(
        exporter=exporter,
        opset=opset,
        simplifier=simplifier,
        tolerances=Tolerances(atol, rtol),
        dynamic=tuple(DynamicSpec.parse(d) if isinstance(d, str) else d for d in dynamic),
        seed=seed,
        sizes=sizes,
    )


def export(
    model: str | nn.Module,
    inputs: InputsArg = None,
    path: str | Path | None = None,
    *,
    dynamic: Sequence[DynamicSpec | str] = (),
    exporter: Exporter = "auto",
    opset: int | None = None,
    simplifier: Simplifier = "onnxsim",
    atol: float | None = None,
    rtol: float | None = None,
    seed: int = 0,
    sizes: bool = True,
    weights: str | Path | None = None,
    strict_weights: bool = True,
    custom_translations: Mapping[Any, Any] | None = None,
    progress: ProgressFn | None = None,
) -> Report:
    """Export a model to ONNX, simplify it, validate it against PyTorch and summarize it.

    Args:
        model: an ``nn.Module`` or a spec such as ``"model.py:Net"``.
        inputs: ``["x:2x3x224x224"]`` specs, a dict of name -> tensor, a tuple of tensors, or None
            to use the model's ``example_inputs()``.
        path: the ``.onnx`` file to write (default ``exportkit_out/<Model>/<Model>.onnx``).
        dynamic: dims to keep dynamic: ``"batch"`` or ``"ids:1=seq"``.
        exporter: ``auto`` (dynamo, then TorchScript), ``dynamo`` or ``torchscript``.
        opset: ONNX opset; the exporter's default when None.
        simplifier: ``onnxsim``, ``onnxslim`` or ``none``; kept only if still correct.
        atol: absolute tolerance for every float output (dtype default when None).
        rtol: relative tolerance for every float output (dtype default when None).
        seed: seed for every random draw.
        sizes: also validate each dynamic dim at other sizes.
        weights: a state dict, checkpoint or ``.safetensors`` file to load into a spec's model.
        strict_weights: missing or unexpected weight keys are an error.
        custom_translations: ONNX translations (onnxscript functions) for custom operators, by
            op overload (``{torch.ops.mylib.op.default: fn}``), for the dynamo exporter.
        progress: called with a StageEvent as each stage starts and ends.

    Returns:
        The report; ``report.passed`` is the verdict, ``report.output`` the final file.

    Raises:
        ExportkitError: a stage failed; ``exit_code`` and ``hint`` say what to do.
    """
    from exportkit.pipeline import run_export

    options = _options(dynamic, exporter, opset, simplifier, atol, rtol, seed, sizes)
    options = replace(
        options,
        weights=None if weights is None else str(weights),
        strict_weights=strict_weights,
        custom_translations=dict(custom_translations or {}),
    )
    return run_export(model, inputs, path, options=options, progress=progress)


def check(
    path: str | Path,
    model: str | nn.Module,
    inputs: InputsArg = None,
    *,
    dynamic: Sequence[DynamicSpec | str] = (),
    atol: float | None = None,
    rtol: float | None = None,
    seed: int = 0,
    sizes: bool = True,
    weights: str | Path | None = None,
    strict_weights: bool = True,
) -> Report:
    """Validate an ONNX file made elsewhere against its PyTorch model (see :func:`export`)."""
    from exportkit.pipeline import run_check

    options = _options(dynamic, "auto", None, "none", atol, rtol, seed, sizes)
    options = replace(
        options, weights=None if weights is None else str(weights), strict_weights=strict_weights
    )
    return run_check(path, model, inputs, options=options)


def summarize(path: str | Path, *, dims: Mapping[str, int] | None = None) -> GraphSummary:
    """The graph summary of any ONNX file; never imports torch.

    ``dims`` gives symbolic dims values (``{"batch": 1}``) so MACs that depend on them count.
    See :func:`exportkit.summary.summarize`.
    """
    from exportkit.summary import summarize as _summarize

    return _summarize(path, dims=dims)


def view(
    model: str | Path | nn.Module,
    inputs: InputsArg = None,
    *,
    port: int | None = None,
    host: str = "127.0.0.1",
    **export_options: Any,
) -> ViewHandle:
    """Serve an ONNX file (or a model, exported first) in Netron without blocking.

    Returns:
        A handle with ``.url``, ``.stop()`` and ``.wait()``; a context manager; inline in Jupyter.
    """
    from exportkit.viewer import report_findings, serve

    if isinstance(model, (str, Path)) and str(model).endswith(".onnx"):
        return serve(Path(model), host=host, port=port)
    report = export(str(model) if isinstance(model, Path) else model, inputs, **export_options)
    assert report.output is not None
    model_props, node_props = report_findings(report)  # shown in Netron's properties
    return serve(
        report.output, host=host, port=port, model_props=model_props, node_props=node_props
    )
