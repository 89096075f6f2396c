"""The small chores of ONNX files, each done in one place: atomic writes, external-data
references, metadata props and op histograms.

Imports only the standard library at module level (onnx inside functions), so every stage,
the summary and the viewer can use it without pulling anything heavy.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from exportkit.errors import DiskFullError, OutputPathError

if TYPE_CHECKING:
    import onnx

__all__ = [
    "ExternalRef",
    "all_nodes",
    "atomic_path",
    "copy_beside",
    "data_locations",
    "drop_props",
    "external_ref",
    "external_tensors",
    "graphs",
    "op_histogram",
    "op_key",
    "save_atomic",
    "set_props",
    "write_atomic",
]

_DEFAULT_DOMAINS = ("", "ai.onnx")
# Standard ops that can hold tensors or graphs in their attributes; other standard ops cannot,
# so a walk over a large graph skips their attributes.
_ATTRIBUTE_TENSOR_OPS = frozenset(
    {"Constant", "ConstantOfShape", "If", "Loop", "Scan", "SequenceMap"}
)
_NO_SPACE = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})


# -- writing -------------------------------------------------------------------------------


def _write_error(path: Path, exc: OSError, hint: str) -> DiskFullError | OutputPathError:
    if exc.errno in _NO_SPACE:
        return DiskFullError(
            f"no space left on the disk to write {path}",
            hint=f"free space on the disk that holds {path.parent}, or write to another disk",
        )
    return OutputPathError(f"cannot write {path}: {exc.strerror or exc}", hint=hint)


@contextlib.contextmanager
def atomic_path(
    path: str | os.PathLike[str], *, hint: str = "choose another path", parents: bool = False
) -> Iterator[Path]:
    """A fresh temporary name beside ``path`` to write to: renamed onto ``path`` when the block
    ends, removed when it raises, so ``path`` only ever holds a whole file.

    The writer creates the file, so it gets the mode the umask implies (0644 under umask 022).
    ``parents`` creates missing folders first; ``hint`` is the hint of an OutputPathError.

    Raises:
        DiskFullError: the disk is full (exit 3); the hint names the folder.
        OutputPathError: any other OSError while writing or renaming (exit 2).
    """
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        if parents:
            target.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        tmp.replace(target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _write_error(target, exc, hint) from exc
        raise


def write_atomic(
    path: str | os.PathLike[str],
    data: bytes | str,
    *,
    hint: str = "choose another path",
    parents: bool = False,
) -> Path:
    """Write ``data`` (text is UTF-8) to ``path`` through :func:`atomic_path`; returns the path."""
    payload = data.encode() if isinstance(data, str) else data
    with atomic_path(path, hint=hint, parents=parents) as tmp, tmp.open("xb") as f:
        f.write(payload)
    return Path(path)


def save_atomic(
    model: onnx.ModelProto,
    path: str | os.PathLike[str],
    *,
    hint: str = "choose another path",
    **save_options: object,
) -> Path:
    """``onnx.save_model`` through :func:`atomic_path`; external data (if asked) lands beside."""
    import onnx

    with atomic_path(path, hint=hint) as tmp:
        onnx.save_model(model, str(tmp), **save_options)  # type: ignore[arg-type]
    return Path(path)


@contextlib.contextmanager
def copy_beside(path: str | os.PathLike[str], model: onnx.ModelProto, tag: str) -> Iterator[Path]:
    """``model`` (weights left external) written to a hidden temporary file beside ``path``, so
    its external data resolves as the original's does; removed when the block ends. Where the
    folder is read-only, the copy goes to a temporary folder with the weights loaded into it.
    """
    import tempfile

    import onnx

    source = Path(path)
    target = source.with_name(f".{source.stem}-{tag}-{os.getpid()}-{secrets.token_hex(4)}.onnx")
    try:
        target.write_bytes(model.SerializeToString())
    except OSError:
        with tempfile.TemporaryDirectory() as tmp:
            onnx.load_external_data_for_model(model, str(source.parent))
            copy = Path(tmp) / f"{tag}.onnx"
            onnx.save_model(model, str(copy), save_as_external_data=True, location=f"{tag}.data")
            yield copy
        return
    try:
        yield target
    finally:
        target.unlink(missing_ok=True)


# -- external data -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExternalRef:
    """Where a tensor's bytes live: a file named relative to the model's folder, and a span.

    ``length`` is None when the file does not say (the tensor runs to the end of the file).
    """

    location: str
    offset: int
    length: int | None


def external_ref(tensor: onnx.TensorProto) -> ExternalRef | None:
    """The external-data reference of ``tensor``, or None when its bytes are inline."""
    if not len(tensor.external_data):
        return None
    entries = {e.key: e.value for e in tensor.external_data}
    length = entries.get("length", "")
    return ExternalRef(
        location=entries.get("location", ""),
        offset=int(entries.get("offset", "0") or 0),
        length=int(length) if length else None,
    )


def graphs(model: onnx.ModelProto) -> Iterator[onnx.GraphProto]:
    """The main graph first, then every subgraph (If/Loop/Scan bodies, custom ops' graphs),
    local functions' included."""
    stack = [model.graph]
    for function in reversed(model.functions):
        stack.extend(_subgraphs(function.node))
    while stack:
        graph = stack.pop()
        yield graph
        stack.extend(_subgraphs(graph.node))


def all_nodes(model: onnx.ModelProto) -> Iterator[onnx.NodeProto]:
    """Every node: the main graph's, its subgraphs' and the local functions'."""
    for graph in graphs(model):
        yield from graph.node
    for function in model.functions:
        yield from function.node


def _scanned(nodes: Iterable[onnx.NodeProto]) -> Iterator[onnx.NodeProto]:
    for node in nodes:
        if node.op_type in _ATTRIBUTE_TENSOR_OPS or node.domain not in _DEFAULT_DOMAINS:
            yield node


def _subgraphs(nodes: Iterable[onnx.NodeProto]) -> Iterator[onnx.GraphProto]:
    for node in _scanned(nodes):
        for attribute in node.attribute:
            if attribute.HasField("g"):
                yield attribute.g
            yield from attribute.graphs


def _attribute_tensors(nodes: Iterable[onnx.NodeProto]) -> Iterator[onnx.TensorProto]:
    for node in _scanned(nodes):
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors
            if attribute.HasField("sparse_tensor"):
                yield attribute.sparse_tensor.values
                yield attribute.sparse_tensor.indices


def external_tensors(model: onnx.ModelProto) -> Iterator[onnx.TensorProto]:
    """Every tensor of the model whose bytes live in an external file: initializers (sparse
    ones included) and tensor attributes, in the main graph, subgraphs and local functions."""
    import onnx

    def tensors() -> Iterator[onnx.TensorProto]:
        for graph in graphs(model):
            yield from graph.initializer
            for sparse in graph.sparse_initializer:
                yield sparse.values
                yield sparse.indices
            yield from _attribute_tensors(graph.node)
        for function in model.functions:
            yield from _attribute_tensors(function.node)

    external = onnx.TensorProto.EXTERNAL
    return (t for t in tensors() if t.data_location == external)


def data_locations(model: onnx.ModelProto) -> list[str]:
    """The external-data files the model names, relative to its folder, in first-use order."""
    seen: dict[str, None] = {}
    for tensor in external_tensors(model):
        ref = external_ref(tensor)
        if ref is not None:
            seen.setdefault(ref.location)
    return list(seen)


# -- metadata props ------------------------------------------------------------------------


def set_props(props: Iterable[onnx.StringStringEntryProto], values: Mapping[str, str]) -> None:
    """Set ``values`` in a ``metadata_props`` list (of a model, graph or node): keys that exist
    are replaced in place, the others appended."""
    index = {entry.key: entry for entry in props}
    for key, value in values.items():
        if key in index:
            index[key].value = str(value)
        else:
            entry = props.add()  # type: ignore[attr-defined]
            entry.key, entry.value = key, str(value)


def drop_props(props: Iterable[onnx.StringStringEntryProto], drop: Callable[[str], bool]) -> int:
    """Remove the entries of a ``metadata_props`` list whose key ``drop`` accepts; how many."""
    entries = list(props)
    kept = [(e.key, e.value) for e in entries if not drop(e.key)]
    if len(kept) != len(entries):
        del props[:]  # type: ignore[attr-defined]
        for key, value in kept:
            props.add(key=key, value=value)  # type: ignore[attr-defined]
    return len(entries) - len(kept)


# -- op histogram --------------------------------------------------------------------------


class _Op(Protocol):
    @property
    def op_type(self) -> str: ...

    @property
    def domain(self) -> str: ...


def op_key(domain: str, op_type: str) -> str:
    """``Conv`` for the default ONNX domain, ``domain::Op`` for any other."""
    return op_type if domain in _DEFAULT_DOMAINS else f"{domain}::{op_type}"


def op_histogram(nodes: Iterable[_Op]) -> dict[str, int]:
    """Node count per op (keyed by :func:`op_key`), most frequent first, then by name."""
    counts: dict[str, int] = {}
    for node in nodes:
        key = op_key(node.domain, node.op_type)
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
