"""Reading an ONNX file for the summary: the protobuf only (never the weights), then shapes."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import onnx
from google.protobuf import json_format, text_format
from google.protobuf.message import DecodeError

from exportkit.errors import OnnxFileError
from exportkit.onnxfile import ExternalRef, external_ref, external_tensors
from exportkit.summary.results import Dim, TensorInfo

__all__ = [
    "LoadedModel",
    "check_text_of",
    "dtype_name",
    "infer_shapes",
    "load_model",
    "tensor_info",
    "value_map",
]

logger = logging.getLogger(__name__)

# Inline tensors bigger than this are emptied before shape inference: only small tensors (shapes,
# axes, indices) carry data that inference reads, and copying weights would cost time and memory.
_INLINE_DATA_LIMIT = 4096

_DTYPE_NAMES: dict[int, str] = {
    onnx.TensorProto.FLOAT: "float32",
    onnx.TensorProto.UINT8: "uint8",
    onnx.TensorProto.INT8: "int8",
    onnx.TensorProto.UINT16: "uint16",
    onnx.TensorProto.INT16: "int16",
    onnx.TensorProto.INT32: "int32",
    onnx.TensorProto.INT64: "int64",
    onnx.TensorProto.STRING: "string",
    onnx.TensorProto.BOOL: "bool",
    onnx.TensorProto.FLOAT16: "float16",
    onnx.TensorProto.DOUBLE: "float64",
    onnx.TensorProto.UINT32: "uint32",
    onnx.TensorProto.UINT64: "uint64",
    onnx.TensorProto.COMPLEX64: "complex64",
    onnx.TensorProto.COMPLEX128: "complex128",
    onnx.TensorProto.BFLOAT16: "bfloat16",
    onnx.TensorProto.FLOAT8E4M3FN: "float8e4m3fn",
    onnx.TensorProto.FLOAT8E4M3FNUZ: "float8e4m3fnuz",
    onnx.TensorProto.FLOAT8E5M2: "float8e5m2",
    onnx.TensorProto.FLOAT8E5M2FNUZ: "float8e5m2fnuz",
    onnx.TensorProto.UINT4: "uint4",
    onnx.TensorProto.INT4: "int4",
}
for _name, _code in (("FLOAT4E2M1", "float4e2m1"), ("FLOAT8E8M0", "float8e8m0")):
    if hasattr(onnx.TensorProto, _name):
        _DTYPE_NAMES[getattr(onnx.TensorProto, _name)] = _code

#: Bits per element of each dtype name (strings have no fixed size and count 0).
DTYPE_BITS: dict[str, int] = {
    "float32": 32, "uint8": 8, "int8": 8, "uint16": 16, "int16": 16, "int32": 32, "int64": 64,
    "string": 0, "bool": 8, "float16": 16, "float64": 64, "uint32": 32, "uint64": 64,
    "complex64": 64, "complex128": 128, "bfloat16": 16, "float8e4m3fn": 8, "float8e4m3fnuz": 8,
    "float8e5m2": 8, "float8e5m2fnuz": 8, "uint4": 4, "int4": 4, "float4e2m1": 4,
    "float8e8m0": 8,
}  # fmt: skip


def dtype_name(elem_type: int) -> str | None:
    """numpy-style name of an ONNX element type; None for UNDEFINED."""
    if elem_type == 0:
        return None
    return _DTYPE_NAMES.get(elem_type, f"type{elem_type}")


@dataclass
class LoadedModel:
    """The protobuf (no weight data, shapes inferred when asked) and facts about its files."""

    model: onnx.ModelProto
    path: Path
    file_bytes: int
    external_data_bytes: int
    external_data_files: tuple[str, ...]
    warnings: list[str]
    #: Whether every name was checked to be text (``check_text_of`` does it when not).
    text_checked: bool = True
    #: ``value_map(model)`` when it was computed already (to see that shapes are all stored).
    values: dict[str, TensorInfo] | None = None


def load_model(
    path: str | os.PathLike[str], *, infer: bool = True, check_text: bool = True
) -> LoadedModel:
    """Parse an ONNX file without its external data, check the data files, infer shapes.

    ``check_text=False`` leaves the check that names are UTF-8 text to the caller, which reads
    them anyway (``build_summary`` checks what it read, and the whole file only on a failure).

    Shape inference is skipped when the file already stores a shape for every value its nodes
    compute (the dynamo exporter writes them): it would cost more than everything else the
    summary does. Otherwise large inline tensors are emptied first, so weights are never copied.

    Raises:
        OnnxFileError: missing file, not ONNX, truncated, or external data missing or short.
    """
    p = Path(path)
    if not p.exists():
        raise OnnxFileError(f"no such file: {p}", hint="check the path")
    if p.is_dir():
        raise OnnxFileError(f"{p} is a folder, not an ONNX file", hint="pass the .onnx file")
    file_bytes = p.stat().st_size
    if file_bytes == 0:
        raise OnnxFileError(f"{p} is empty", hint="export the model again")
    warnings: list[str] = []
    model = _parse(p)
    _check_model(model, p)
    if check_text:
        check_text_of(model, p)
    files, external_bytes = _check_external_data(model, p.parent, p)
    if model.functions:
        model = _inline_functions(model, warnings)
    values = shapes_stored(model) if infer else None
    if infer and values is None:
        model = infer_shapes(model, warnings)
    return LoadedModel(model, p, file_bytes, external_bytes, files, warnings, check_text, values)


def shapes_stored(model: onnx.ModelProto) -> dict[str, TensorInfo] | None:
    """The graph's values (``value_map``) when it stores, for every value its nodes compute, a
    type and a shape whose every dim is a number or a name: then shape inference has nothing to
    add. None otherwise."""
    graph = model.graph
    if len(graph.value_info) + len(graph.output) < len(graph.node):
        return None  # cheap: at least one node's output has no stored type
    values = value_map(model)
    known = {
        name
        for name, t in values.items()
        if t.dtype is not None and t.shape is not None and None not in t.shape
    }
    if all(o in known for n in graph.node for o in n.output if o):
        return values
    return None


def _infer(model: onnx.ModelProto | bytes) -> onnx.ModelProto:
    return onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)


def _parse(p: Path) -> onnx.ModelProto:
    try:
        return onnx.load(str(p), load_external_data=False)
    # onnx.load reads .json and .txt/.textproto files as protobuf's text forms: their parse errors.
    except (
        DecodeError,
        RuntimeError,
        ValueError,
        json_format.ParseError,
        text_format.ParseError,
    ) as exc:
        if _looks_like_text(p):
            raise OnnxFileError(
                f"{p} is a text file, not an ONNX model",
                hint="pass the .onnx file an exporter wrote (a model spec goes to `export`)",
            ) from exc
        raise OnnxFileError(
            f"{p} is not a readable ONNX model ({type(exc).__name__}: {exc})",
            hint="the file may be truncated or not ONNX at all; export it again",
        ) from exc


def _check_model(model: onnx.ModelProto, p: Path) -> None:
    if model.ir_version <= 0 or not model.HasField("graph"):
        if _looks_like_text(p):
            raise OnnxFileError(
                f"{p} is a text file, not an ONNX model",
                hint="pass the .onnx file an exporter wrote (a model spec goes to `export`)",
            )
        raise OnnxFileError(
            f"{p} is not an ONNX model (no IR version or no graph)",
            hint="pass a .onnx file written by an ONNX exporter",
        )
    if len(model.opset_import) == 0:
        raise OnnxFileError(
            f"{p} has no opset_import: the file looks truncated",
            hint="export the model again",
        )


def _texts(model: onnx.ModelProto) -> Iterable[object]:
    """Every name and text field the summary reads (protobuf hands back bytes for invalid UTF-8)."""
    graph = model.graph
    yield from (model.producer_name, model.producer_version, model.domain, model.doc_string)
    yield from (graph.name, graph.doc_string)
    yield from (o.domain for o in model.opset_import)
    yield from (v for p in model.metadata_props for v in (p.key, p.value))
    for node in graph.node:
        yield from (node.name, node.op_type, node.domain, node.doc_string)
        yield from (*node.input, *node.output)
        yield from (v for p in node.metadata_props for v in (p.key, p.value))
        yield from (a.name for a in node.attribute)
    yield from (v.name for v in (*graph.input, *graph.output, *graph.value_info))
    yield from (t.name for t in graph.initializer)


def check_text_of(model: onnx.ModelProto, p: Path) -> None:
    """Raise OnnxFileError when a name or text field of ``model`` is not UTF-8 text."""
    if not all(isinstance(text, str) for text in _texts(model)):
        raise OnnxFileError(
            f"{p} holds names that are not UTF-8 text: the file is damaged",
            hint="export the model again",
        )


def _inline_functions(model: onnx.ModelProto, warnings: list[str]) -> onnx.ModelProto:
    try:
        import onnx.inliner

        return onnx.inliner.inline_local_functions(model)
    except Exception as exc:  # best effort: the summary still lists the call nodes
        warnings.append(f"could not inline the model's local functions: {exc}")
        return model


def _looks_like_text(path: Path) -> bool:
    with path.open("rb") as f:
        head = f.read(512)
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return b"\x00" not in head


def _tensor_nbytes(tensor: onnx.TensorProto) -> int:
    count = 1
    for d in tensor.dims:
        count *= d
    bits = DTYPE_BITS.get(dtype_name(tensor.data_type) or "", 0)
    return (count * bits + 7) // 8


def _check_external_data(
    model: onnx.ModelProto, base: Path, path: Path
) -> tuple[tuple[str, ...], int]:
    """Stat every external-data file once; fail when one is missing or shorter than needed."""
    sizes: dict[str, int] = {}
    for tensor in external_tensors(model):
        ref = external_ref(tensor) or ExternalRef("", 0, None)
        location = ref.location
        if location not in sizes:
            target = base / location
            if not location or not target.is_file():
                raise OnnxFileError(
                    f"{path.name} keeps tensor {tensor.name!r} in external file "
                    f"{location!r}, which is missing next to it",
                    hint=f"copy {location or 'the data file'} into {base} beside the .onnx file",
                )
            sizes[location] = target.stat().st_size
        offset = ref.offset
        length = ref.length or _tensor_nbytes(tensor)
        if offset + length > sizes[location]:
            raise OnnxFileError(
                f"external data file {location!r} is truncated: tensor {tensor.name!r} needs "
                f"bytes {offset}..{offset + length} but the file has {sizes[location]}",
                hint="copy or export the model again",
            )
    return tuple(sorted(sizes)), sum(sizes.values())


def _strip_inline_weights(graph: onnx.GraphProto) -> None:
    """Mark large inline initializers as external so inference neither copies nor reads them."""
    for t in graph.initializer:
        if t.data_location == onnx.TensorProto.EXTERNAL:
            continue
        if _tensor_nbytes(t) <= _INLINE_DATA_LIMIT:
            continue
        for name in ("raw_data", "float_data", "int32_data", "int64_data", "double_data"):
            t.ClearField(name)
        t.data_location = onnx.TensorProto.EXTERNAL
        entry = t.external_data.add()
        entry.key, entry.value = "location", "exportkit-stripped"


def infer_shapes(model: onnx.ModelProto, warnings: list[str]) -> onnx.ModelProto:
    """ONNX shape inference without copying weights; a failure becomes a warning."""
    _strip_inline_weights(model.graph)
    try:
        return _infer(model)
    except Exception as exc:  # inference is best effort; onnx raises several C++ error types
        logger.debug("shape inference failed", exc_info=True)
        warnings.append(f"shape inference failed, shapes come from the file only: {exc}")
        return model


def _dims(tensor_type: onnx.TypeProto.Tensor) -> tuple[Dim, ...] | None:
    if not tensor_type.HasField("shape"):
        return None
    out: list[Dim] = []
    for d in tensor_type.shape.dim:
        which = d.WhichOneof("value")
        if which == "dim_value":
            out.append(d.dim_value)
        elif which == "dim_param" and not d.dim_param.startswith("unk__"):
            out.append(d.dim_param)  # unk__N are placeholders shape inference invents
        else:
            out.append(None)
    return tuple(out)


def tensor_info(value: onnx.ValueInfoProto) -> TensorInfo:
    """TensorInfo of a ValueInfoProto (sequences and maps get a descriptive dtype, no shape)."""
    t = value.type
    kind = t.WhichOneof("value")
    if kind == "tensor_type":
        return TensorInfo(value.name, dtype_name(t.tensor_type.elem_type), _dims(t.tensor_type))
    if kind == "sparse_tensor_type":
        st = t.sparse_tensor_type
        return TensorInfo(value.name, dtype_name(st.elem_type), _dims(st))
    if kind is None:
        return TensorInfo(value.name, None, None)
    return TensorInfo(value.name, kind.removesuffix("_type"), None)


def value_map(model: onnx.ModelProto) -> dict[str, TensorInfo]:
    """Every named value of the main graph with what is known about its type and shape."""
    graph = model.graph
    values: dict[str, TensorInfo] = {}
    # Most values share a few types: parse each distinct serialized type once.
    types: dict[bytes, tuple[str | None, tuple[Dim, ...] | None]] = {}
    for group in (graph.value_info, graph.input, graph.output):
        for v in group:
            key = v.type.SerializeToString()
            known = types.get(key)
            if known is None:
                info = tensor_info(v)
                known = types[key] = (info.dtype, info.shape)
            values[v.name] = TensorInfo(v.name, known[0], known[1])
    for init in graph.initializer:  # the initializer's own dims are authoritative
        values[init.name] = TensorInfo(init.name, dtype_name(init.data_type), tuple(init.dims))
    return values
