"""Whether an ONNX file takes a model's example inputs: names, ranks, dtypes and fixed sizes,
read from the file's graph before any work, so a file that belongs to another model is bad
input (exit 2), not a failure deep inside onnxruntime."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from exportkit.errors import OnnxFileError

if TYPE_CHECKING:
    from exportkit.inputs import ExampleInputs

__all__ = ["FileInput", "file_inputs", "require_compatible"]


@dataclass(frozen=True)
class FileInput:
    """One input the ONNX file declares: a fixed size per dim, or a name (``batch``) or None."""

    name: str
    dims: tuple[int | str | None, ...]
    dtype: str

    def describe(self) -> str:
        shape = "x".join("?" if d is None else str(d) for d in self.dims) or "scalar"
        return f"{self.name}:{shape}:{self.dtype}"


def file_inputs(path: Path) -> tuple[FileInput, ...]:
    """The graph inputs the file needs fed (initializers excluded), without loading weights."""
    import onnx
    from onnx.helper import tensor_dtype_to_np_dtype

    graph = onnx.load(str(path), load_external_data=False).graph
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

    Inputs are matched by name, else by position when the counts agree (a file exported
    elsewhere, with its own names), as validation feeds them.

    Raises:
        OnnxFileError: the file wants other inputs (names, count), ranks, dtypes or fixed sizes;
            the message names the first mismatch and what the file expects.
    """
    path = Path(path)
    wanted = file_inputs(path)
    given = _given(inputs)
    expects = " ".join(w.describe() for w in wanted) or "no inputs"
    hint = (
        f"the file expects {expects}; check it was exported from this model, "
        "or give matching --input specs"
    )
    if all(w.name in given for w in wanted):
        pairs = [(w, w.name) for w in wanted]
    elif len(wanted) == len(given):
        pairs = list(zip(wanted, given))
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
