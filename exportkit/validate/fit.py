"""Whether an ONNX file can be run on a model's example inputs: a graph with outputs, its
external data present, and inputs of the same names, ranks, dtypes and fixed sizes; read from
the file before any work, so a file that belongs to another model (or is incomplete) is bad
input (exit 2), not a failure deep inside onnxruntime."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from exportkit.errors import OnnxFileError

if TYPE_CHECKING:
    import onnx

    from exportkit.inputs import ExampleInputs

__all__ = ["FileInput", "file_inputs", "match_names", "require_compatible", "spelling"]


@dataclass(frozen=True)
class FileInput:
    """One input the ONNX file declares: a fixed size per dim, or a name (``batch``) or None."""

    name: str
    dims: tuple[int | str | None, ...]
    dtype: str

    def describe(self) -> str:
        shape = "x".join("?" if d is None else str(d) for d in self.dims) or "scalar"
        return f"{self.name}:{shape}:{self.dtype}"


def file_inputs(model: onnx.ModelProto) -> tuple[FileInput, ...]:
    """The graph inputs the file needs fed (initializers excluded)."""
    import onnx
    from onnx.helper import tensor_dtype_to_np_dtype

    graph = model.graph
    weights = {t.name for t in graph.initializer}
    out = []
    for value in graph.input:
        if value.name in weights:
            continue
        tensor = value.type.tensor_type
        dims: list[int | str | None] = []
        for d in tensor.shape.dim:
            dims.append(d.dim_value if d.HasField("dim_value") else d.dim_param or None)
        try:
            dtype = str(tensor_dtype_to_np_dtype(tensor.elem_type))
        except (KeyError, ValueError):
            dtype = onnx.TensorProto.DataType.Name(tensor.elem_type).lower()
        out.append(FileInput(value.name, tuple(dims), dtype))
    return tuple(out)


def spelling(name: str) -> str:
    """A name without case and separators: ``past_key_values.0.key`` (Optimum's spelling) and
    ``past_key_values_0_key`` (a Python parameter's) read the same."""
    return re.sub(r"[^0-9a-z]", "", name.lower())


def match_names(wanted: Sequence[str], given: Sequence[str]) -> dict[str, str] | None:
    """Each wanted name -> the given name it is: the same name, else the one given name of the
    same :func:`spelling`; None when a wanted name has no such match (or several)."""
    have = set(given)
    by_spelling: dict[str, list[str]] = {}
    for name in given:
        by_spelling.setdefault(spelling(name), []).append(name)
    out = {}
    for name in wanted:
        if name in have:
            out[name] = name
            continue
        found = by_spelling.get(spelling(name), [])
        if len(found) != 1:
            return None
        out[name] = found[0]
    return out if len(set(out.values())) == len(out) else None


def _given(inputs: ExampleInputs) -> dict[str, tuple[tuple[int, ...], str]]:
    return {
        name: (tuple(int(d) for d in t.shape), str(t.dtype).removeprefix("torch."))
        for name, t in inputs.tensors.items()
    }


def _mismatch(want: FileInput, name: str, shape: tuple[int, ...], dtype: str) -> str | None:
    given = f"{name} {'x'.join(map(str, shape)) or 'scalar'} {dtype}"
    if len(want.dims) != len(shape):
        return f"{want.name} has rank {len(want.dims)} in the file, {len(shape)} given ({given})"
    if want.dtype != dtype:
        return f"{want.name} is {want.dtype} in the file, {dtype} given ({given})"
    for axis, (d, n) in enumerate(zip(want.dims, shape)):
        if isinstance(d, int) and d != n:
            return f"{want.name} dim {axis} is fixed at {d} in the file, {n} given ({given})"
    return None


def require_compatible(path: str | Path, inputs: ExampleInputs) -> None:
    """Refuse, before any work, a file whose inputs cannot take ``inputs``.

    Inputs are matched by name: a file whose inputs have other names belongs to another
    model (or to a wrapper of it), and its numbers would be compared position by position
    against inputs it was never given. A name spelled with other separators or case
    (Optimum's ``past_key_values.0.key`` for ``past_key_values_0_key``) is the same name.

    Raises:
        OnnxFileError: the file has no outputs or lacks its external data, or wants other
            inputs (names), ranks, dtypes or fixed sizes; the message names the first mismatch
            and what the file expects.
    """
    import onnx

    from exportkit.onnxfile import data_locations

    path = Path(path)
    model = onnx.load(str(path), load_external_data=False)
    if not model.graph.output:
        raise OnnxFileError(
            f"{path.name} has no graph outputs: it is empty or not a complete model",
            hint="give the .onnx file an exporter wrote",
        )
    missing_data = [loc for loc in data_locations(model) if not (path.parent / loc).is_file()]
    if missing_data:
        raise OnnxFileError(
            f"{path.name} keeps its weights in {missing_data[0]}, which is not beside it",
            hint=f"copy {missing_data[0]} into {path.parent} with the .onnx file",
        )
    wanted = file_inputs(model)
    given = _given(inputs)
    expects = " ".join(w.describe() for w in wanted) or "no inputs"
    hint = (
        f"the file expects {expects}; check it was exported from this model, "
        "or give matching --input specs"
    )
    matched = match_names([w.name for w in wanted], list(given))
    if matched is not None:  # by name, or spelled otherwise (past_key_values.0.key)
        pairs = [(w, matched[w.name]) for w in wanted]
    else:
        missing = ", ".join(w.name for w in wanted if w.name not in given)
        raise OnnxFileError(
            f"{path.name} does not take this model's inputs: it wants {missing}; "
            f"the model takes {', '.join(given) or 'nothing'}",
            hint=hint,
        )
    for want, name in pairs:
        why = _mismatch(want, name, *given[name])
        if why is not None:
            raise OnnxFileError(f"{path.name} does not take this model's inputs: {why}", hint=hint)
