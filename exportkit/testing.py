"""Pin an export in any test suite: ``assert_exports(model)`` passes or says what is wrong.

Works under pytest, unittest or a plain script: a wrong export raises ``AssertionError`` whose
message is the verdict, the failing outputs and the diverging module with its source line. With
pytest, the ``assert_exports`` fixture (``exportkit.pytest_plugin``) does the same and keeps
each test's reports.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from exportkit.errors import ExportError, ForwardError, RuntimeStageError

if TYPE_CHECKING:
    from torch import nn
    from typing_extensions import Unpack

    from exportkit.options import OptionKeywords, Options
    from exportkit.results import Report

__all__ = ["assert_exports", "failure_message", "model_name", "run_export"]

# Errors that mean "this model does not export correctly" (a test failure), as opposed to a
# test that names a missing file or a bad input spec (a test error, raised as it is).
_EXPORT_FAILURES = (ExportError, ForwardError, RuntimeStageError)


def model_name(spec_or_module: Any) -> str:
    """A file-name-safe name for a model: the class, or the spec's last part (``Net`` of
    ``"model.py:Net(width=8)"``, ``tiny_bert`` of ``"hf:models/tiny_bert"``)."""
    if not isinstance(spec_or_module, str):
        return type(spec_or_module).__name__
    last = re.split(r"[:/\\]", spec_or_module.split("(", 1)[0].rstrip("/"))[-1]
    return re.sub(r"\W+", "_", Path(last).stem if "." in last else last).strip("_") or "model"


def failure_message(report: Report) -> str:
    """Why a report fails: the verdict, each failing output and case, where it diverges."""
    lines = [f"exportkit: {report.model} does not export correctly (verdict FAIL)"]
    if report.export is not None:
        lines += [
            f"  {fd.input} dim {fd.axis} ({fd.label}) was asked to be dynamic but was exported "
            f"as fixed size {fd.size}"
            for fd in report.export.frozen_dims
        ]
    validation = report.validation
    if validation is not None:
        failing = [c for c in validation.worst().values() if not c.passed]
        if failing:
            lines.append("failing outputs:")
        for c in failing:
            cases = [
                t.label
                for t in validation.trials
                for o in t.outputs
                if o.name == c.name and not o.passed
            ]
            findings = "; ".join(c.findings) or "mismatch"
            lines.append(
                f"  {c.name}: max abs {c.max_abs:.3g} (atol {c.atol:g}, rtol {c.rtol:g}); "
                f"{findings}; in {', '.join(cases)}"
            )
        for t in validation.trials:
            if t.error and not t.pytorch_failed:
                lines.append(f"  case {t.label}: {t.error}")
        div = validation.divergence
        if div is not None:
            lines.append(f"diverges at {div.describe()}")
            lines.append(f"  {div.detail}")
            if div.onnx_node:
                op = f" ({div.onnx_op})" if div.onnx_op else ""
                lines.append(f"  (case: {div.trial}; ONNX node: {div.onnx_node}{op})")
    if report.output is not None:
        lines.append(f"file: {report.output}")
    return "\n".join(lines)


def assert_exports(
    spec_or_module: str | nn.Module,
    inputs: Any = None,
    *,
    path: str | os.PathLike[str] | None = None,
    options: Options | None = None,
    **keywords: Unpack[OptionKeywords],
) -> Report:
    """Export, validate and summarize a model; raise AssertionError unless every check passes.

    Args:
        spec_or_module: A model spec (``"model.py:Net"``, ``"hf:folder"``) or an ``nn.Module``.
        inputs: As for :func:`exportkit.export`: specs, a dict or tuple of tensors, or None.
        path: The ``.onnx`` file to write; a new temporary folder (kept, so that
            ``report.output`` can be opened) when None.
        options: How to export, validate and report (:class:`exportkit.Options`).
        **keywords: :class:`exportkit.Options` fields over ``options`` (``dynamic=["batch"]``,
            ``atol=1e-3``, ``exporter="dynamo"``, ``html="report.html"``, ...).

    Returns:
        The report, when the export passes.

    Raises:
        AssertionError: the export is wrong (a mismatch, a frozen dynamic dim), or no exporter
            could export the model, or the model or onnxruntime fails on the inputs.
        ExportkitError: the test itself is wrong (a bad spec, input, option or path).
        TypeError: a keyword that is not an option.
    """
    report = run_export(spec_or_module, inputs, path=path, options=options, **keywords)
    if not report.passed:
        raise AssertionError(failure_message(report))
    return report


def run_export(
    spec_or_module: str | nn.Module,
    inputs: Any = None,
    *,
    path: str | os.PathLike[str] | None = None,
    options: Options | None = None,
    **keywords: Unpack[OptionKeywords],
) -> Report:
    """``exportkit.export`` for a test: the file goes to a new temporary folder unless ``path``
    is given, and an export that cannot be made raises AssertionError (see ``assert_exports``).
    The report is returned whatever its verdict."""
    import exportkit
    from exportkit.options import build_options

    resolved = build_options(options, **keywords)  # a wrong keyword fails before any work
    if path is None:
        folder = Path(tempfile.mkdtemp(prefix="exportkit-test-"))
        path = folder / f"{model_name(spec_or_module)}.onnx"
    try:
        return exportkit.export(spec_or_module, inputs, Path(path), options=resolved)
    except _EXPORT_FAILURES as exc:
        hint = f"\nhint: {exc.hint}" if exc.hint else ""
        raise AssertionError(f"exportkit: {exc.message}{hint}") from exc
