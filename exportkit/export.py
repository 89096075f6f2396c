"""torch -> ONNX file: the dynamo exporter first, the TorchScript exporter as fallback or on request."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from exportkit.diagnose import Location
from exportkit.errors import ExportError
from exportkit.inputs import ExampleInputs
from exportkit.opsets import Exporter, check_written_opset

if TYPE_CHECKING:
    import onnx
    from torch import nn

__all__ = [
    "ExportAttempt",
    "ExportResult",
    "Exporter",
    "export_model",
    "output_names",
]

logger = logging.getLogger(__name__)


# Past this many bytes of weights, write external data (protobuf cannot hold more than 2 GiB).
EXTERNAL_DATA_BYTES = 1 << 30


@dataclass(frozen=True)
class ExportAttempt:
    """One exporter's try: which, whether it worked, how long, and the first line of its failure."""

    exporter: str
    ok: bool
    seconds: float
    error: str | None = None
    operator: str | None = None
    location: Location | None = None


@dataclass(frozen=True)
class FrozenDim:
    """A dimension asked to be dynamic that came out fixed in the ONNX inputs."""

    input: str
    axis: int
    label: str
    size: int


@dataclass(frozen=True)
class ExportResult:
    """The written ONNX file, its companion files, and how it was made."""

    path: Path
    files: tuple[Path, ...]
    exporter: str
    attempts: tuple[ExportAttempt, ...]
    opset: int | None
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    external_data: bool
    frozen_dims: tuple[FrozenDim, ...] = ()


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


@contextlib.contextmanager
def _native_output() -> Iterator[None]:
    """Send fd 1 to a scratch file: the TorchScript exporter logs its IR graph there from C++.
    (fd 2 stays: the CLI's live status draws on it.)"""
    import sys
    import tempfile

    saved: list[tuple[int, int]] = []
    try:
        with tempfile.TemporaryFile() as scratch:
            for fd, stream in ((1, sys.stdout),):
                with contextlib.suppress(OSError, ValueError, AttributeError):
                    stream.flush()
                    saved.append((fd, os.dup(fd)))
                    os.dup2(scratch.fileno(), fd)
            yield
    finally:
        for fd, copy in saved:
            os.dup2(copy, fd)
            os.close(copy)


@contextlib.contextmanager
def _quiet() -> Iterator[io.StringIO]:
    """Keep exporter chatter (progress prints, torchvision notices) off the user's terminal.

    Warnings raised while exporting (deprecations, notes about traced internals such as an LSTM's
    flat weights) are logged at debug level instead: they are not the user's to act on, and under
    ``-W error`` they would abort an export that works.
    """
    chatter = io.StringIO()
    noisy = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = noisy.level
    noisy.setLevel(logging.ERROR)
    try:
        with (
            contextlib.redirect_stdout(chatter),
            contextlib.redirect_stderr(chatter),
            _native_output(),
            warnings.catch_warnings(record=True) as caught,
        ):
            warnings.simplefilter("always")
            yield chatter
        for w in caught:
            logger.debug("exporter warning: %s: %s", w.category.__name__, w.message)
    finally:
        noisy.setLevel(level)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_NO_FUNCTION = re.compile(
    r"No ONNX function found for <OpOverload\(op='([^']+)', overload='([^']+)'\)>"
)
_TS_NAMESPACE = re.compile(r"unrecognized namespace ([\w.]+::\w+)")
_TS_UNSUPPORTED = re.compile(r"Exporting the operator '([^']+)' to ONNX opset version (\d+)")
_SPECIALIZED = re.compile(r"static shape of (\d+) for dimension inputs\['(\w+)'\]\.shape\[(\d+)\]")
_SUMMARY_LINE = re.compile(r"^<class '([\w.]+)'>: (.*)$")


def _texts(exc: BaseException) -> list[str]:
    """The messages of an exception and its causes, outermost first, without color codes."""
    out = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        out.append(_ANSI.sub("", str(current)).strip())
        current = current.__cause__ or current.__context__
    return out


def _failure(exc: BaseException) -> tuple[str, str | None]:
    """The most telling line of an exporter failure (they run to pages), and the operator."""
    texts = _texts(exc)
    lines = [ln.strip() for t in texts for ln in t.splitlines() if ln.strip()]
    for text in texts:
        found = _NO_FUNCTION.search(text)
        if found:
            op = f"{found.group(1)}.{found.group(2)}"
            return f"unsupported operator {op}: the exporter has no ONNX translation for it", op
        found = _TS_NAMESPACE.search(text)
        if found:
            op = found.group(1)
            return f"unsupported operator {op}: no ONNX symbolic is registered for it", op
        found = _TS_UNSUPPORTED.search(text)
        if found:
            op = found.group(1)
            return f"unsupported operator {op}: not supported at opset {found.group(2)}", op
    for ln in lines:
        found = _SPECIALIZED.search(ln)
        if found:
            size, name, axis = found.groups()
            return (
                f"{name} dim {axis} was asked to be dynamic, but the model fixes it at {size} "
                "(tracing inferred a static shape)"
            ), None
    for ln in lines:
        if "Unsupported" in ln or "not supported" in ln or "No decompositions" in ln:
            return ln, None
    for ln in lines:  # the dynamo exporter's "## Exception summary" names the root cause
        found = _SUMMARY_LINE.match(ln)
        if found:
            return f"{found.group(1).rpartition('.')[2]}: {found.group(2)}", None
    innermost = [ln for ln in texts[-1].splitlines() if ln.strip()] if texts else []
    return (innermost[0].strip() if innermost else type(exc).__name__), None


def _weight_bytes(module: nn.Module) -> int:
    tensors = list(module.parameters()) + list(module.buffers())
    return sum(t.numel() * t.element_size() for t in tensors)


def _export_dynamo(
    module: nn.Module,
    inputs: ExampleInputs,
    path: Path,
    names: Sequence[str],
    opset: int | None,
    external: bool,
    custom_translations: Mapping[Any, Any] | None = None,
) -> onnx.ModelProto:
    """Export with torch.onnx (dynamo); returns the written file's interface (no weights)."""
    import torch

    dynamic_shapes = {n: dict(inputs.dynamic.get(n, {})) or None for n in inputs.tensors}
    with warnings.catch_warnings():
        # Inputs sharing a label (batch, seq) share one symbol; torch notes it drops the repeat.
        warnings.filterwarnings("ignore", "# The axis name", UserWarning)
        program = torch.onnx.export(
            module,
            (),
            kwargs=dict(inputs.tensors),
            dynamo=True,
            dynamic_shapes=dynamic_shapes if inputs.dynamic else None,
            opset_version=opset,
            output_names=list(names),
            verbose=False,
            custom_translation_table=dict(custom_translations) if custom_translations else None,
        )
    assert program is not None
    program.save(str(path), external_data=external)
    return _interface(program.model)


def _interface(model: Any) -> onnx.ModelProto:
    """The inputs, outputs and opsets of an exported onnx_ir model, without its weights: reading
    them back from the file would parse every embedded weight again (half a second at 400 MB)."""
    import onnx
    from onnx_ir import serde

    proto = onnx.ModelProto()
    proto.graph.input.extend(serde.serialize_value(v) for v in model.graph.inputs)
    proto.graph.output.extend(serde.serialize_value(v) for v in model.graph.outputs)
    for domain, version in model.opset_imports.items():
        proto.opset_import.add(domain=domain, version=version)
    return proto


def _keyword_wrapper(module: nn.Module, names: Sequence[str]) -> nn.Module:
    """Wrap so the TorchScript exporter's positional inputs reach forward by keyword, outputs flat."""
    from torch import nn
    from torch.utils._pytree import tree_leaves

    from exportkit.outputs import plain_outputs

    class KeywordWrapper(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = module

        def forward(self, *args: Any) -> Any:
            return tuple(tree_leaves(plain_outputs(self.model(**dict(zip(names, args))))))

    return KeywordWrapper().eval()


def _export_torchscript(
    module: nn.Module, inputs: ExampleInputs, path: Path, names: Sequence[str], opset: int | None
) -> None:
    import torch

    in_names = list(inputs.tensors)
    # A TorchScript archive (exportkit.loading) exports as itself: tracing into it through a
    # Python wrapper fails; its inputs are already in its schema's order.
    scripted = getattr(module, "torchscript_module", None)
    wrapper = scripted if scripted is not None else _keyword_wrapper(module, in_names)
    dynamic_axes: dict[str, dict[int, str]] = {n: dict(a) for n, a in inputs.dynamic.items()}
    with warnings.catch_warnings():
        # torch looks for a Python signature on the archive's forward; it has a schema instead.
        warnings.filterwarnings("ignore", "no signature found", UserWarning)
        torch.onnx.export(
            wrapper,
            tuple(inputs.tensors.values()),
            str(path),
            dynamo=False,
            input_names=in_names,
            output_names=list(names),
            dynamic_axes=dynamic_axes or None,
            opset_version=opset or 17,
            verbose=False,
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
    external = _weight_bytes(module) > EXTERNAL_DATA_BYTES
    order: list[str] = ["dynamo", "torchscript"] if exporter == "auto" else [exporter]
    if exporter == "auto" and getattr(module, "torchscript_module", None) is not None:
        order = ["torchscript"]  # a TorchScript archive: torch.export cannot read ScriptModules
    attempts: list[ExportAttempt] = []
    for which in order:
        start = time.perf_counter()
        interface: onnx.ModelProto | None = None
        try:
            with _quiet():
                if which == "dynamo":
                    interface = _export_dynamo(
                        module, inputs, path, names, opset, external, custom_translations
                    )
                else:
                    _export_torchscript(module, inputs, path, names, opset)
                    if external:  # it wrote one file per weight; keep one data file
                        from exportkit.external import consolidate

                        consolidate(path)
        except Exception as exc:
            attempts.append(_failed_attempt(module, inputs, which, start, exc))
            logger.info("%s exporter failed: %s", which, attempts[-1].error)
            for stale in set(path.parent.iterdir()) - before:
                stale.unlink()
            continue
        result = _result(path, before, which, attempts, opset, inputs, interface)
        try:
            check_written_opset(_read_interface(path, interface), opset)
        except ExportError as exc:
            attempts.append(_failed_attempt(module, inputs, which, start, exc))
            for stale in set(path.parent.iterdir()) - before:
                stale.unlink()
            continue
        attempts.append(ExportAttempt(which, True, time.perf_counter() - start))
        return replace(result, attempts=tuple(attempts))
    raise ExportError(f"export failed: {_detail(attempts)}", hint=_hint(exporter, attempts))


def _failed_attempt(
    module: nn.Module, inputs: ExampleInputs, which: str, start: float, exc: Exception
) -> ExportAttempt:
    """Record a failure: its telling line, the operator, and where the model calls it."""
    from exportkit.diagnose import locate_op

    seconds = time.perf_counter() - start
    line, op = _failure(exc)
    where = locate_op(module, inputs, op) if op else None
    if where is not None:
        line = f"{line}; used in {where.describe()}"
    return ExportAttempt(which, False, seconds, line, op, where)


def _detail(attempts: Sequence[ExportAttempt]) -> str:
    return "; ".join(f"{a.exporter}: {a.error}" for a in attempts)


def _hint(exporter: Exporter, attempts: Sequence[ExportAttempt]) -> str:
    ops = {a.operator for a in attempts if a.operator}
    if exporter != "auto":
        other = "torchscript" if exporter == "dynamo" else "dynamo"
        return f"try --exporter {other}, or another --opset (e.g. --opset 18)"
    if any(not op.startswith(("aten", "prim")) for op in ops):
        return (
            f"custom operator ({', '.join(sorted(ops))}): give it an ONNX translation "
            "(torch.onnx.export's custom_translation_table for dynamo, "
            "torch.onnx.register_custom_op_symbolic for TorchScript), or implement it with "
            "standard torch ops"
        )
    if ops:
        return (
            f"no exporter converts {', '.join(sorted(ops))}: try another --opset, or replace that "
            "call in the model (a custom autograd Function with a symbolic, or an ONNX-friendly "
            "rewrite); --debug shows the exporters' full errors"
        )
    return "try another --opset, or rewrite the failing operation; --debug shows the full errors"


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
