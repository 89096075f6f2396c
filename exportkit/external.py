"""Models past 2 GB: weights stay in one external-data file and are never pulled into memory twice.

The TorchScript exporter writes one file per weight: :func:`consolidate` streams them into
``<model>.onnx.data``. Simplifiers load every weight and copy it (onnxslim peaked at 3.2x the
weights on its own): :func:`without_weights` hands them the graph with large weights lifted to
graph inputs, and :func:`with_weights` puts them back, pointing at the same bytes on disk.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import onnx

__all__ = ["consolidate", "data_locations", "has_external_data", "with_weights", "without_weights"]

# Weights at least this large stay on disk while a simplifier runs; smaller ones are loaded.
LIFT_BYTES = 1 << 20


def _location(tensor: onnx.TensorProto) -> str | None:
    return next((e.value for e in tensor.external_data if e.key == "location"), None)


def data_locations(model: onnx.ModelProto) -> list[str]:
    """The external-data files the main graph's initializers name, in first-use order."""
    seen: dict[str, None] = {}
    for t in model.graph.initializer:
        loc = _location(t)
        if loc is not None:
            seen.setdefault(loc)
    return list(seen)


def has_external_data(path: Path) -> bool:
    """Whether the ONNX file keeps (some of) its weights in external files."""
    import onnx

    return bool(data_locations(onnx.load(str(path), load_external_data=False)))


def _set_external(tensor: onnx.TensorProto, location: str, offset: int, length: int) -> None:
    import onnx

    del tensor.external_data[:]
    for key, value in (("location", location), ("offset", str(offset)), ("length", str(length))):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    tensor.data_location = onnx.TensorProto.EXTERNAL


def _entry(tensor: onnx.TensorProto, key: str) -> int | None:
    value = next((e.value for e in tensor.external_data if e.key == key), None)
    return int(value) if value is not None else None


def consolidate(path: Path) -> tuple[Path, ...]:
    """Stream every external-data file of ``path`` into ``<name>.data``, one tensor at a time.

    A model written inline (under 2 GB) gets its weights moved out into that file.

    Returns:
        The model file and its data file (or just the model file when it has no external data).
    """
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    locations = data_locations(model)
    target = f"{path.name}.data"
    if not locations:
        # Written inline (the TorchScript exporter does so below 2 GB): move the weights out.
        model_tmp = path.parent / f".{path.name}.tmp"
        onnx.save_model(model, str(model_tmp), save_as_external_data=True, location=target)
        model_tmp.replace(path)
        return (path, path.parent / target)
    if locations == [target]:
        return (path, path.parent / target)
    tmp = path.parent / f".{target}.tmp"
    offset = 0
    with tmp.open("wb") as out:
        for tensor in model.graph.initializer:
            loc = _location(tensor)
            if loc is None:
                continue
            start = _entry(tensor, "offset") or 0
            length = _entry(tensor, "length")
            with (path.parent / loc).open("rb") as src:
                src.seek(start)
                size = length if length is not None else (path.parent / loc).stat().st_size - start
                pad = (-offset) % 4096  # page-aligned, as onnx writes them, for mmap
                out.write(b"\0" * pad)
                offset += pad
                shutil.copyfileobj(_Limited(src, size), out, 1 << 24)
            _set_external(tensor, target, offset, size)
            offset += size
    tmp.replace(path.parent / target)
    for loc in locations:
        if loc != target:
            (path.parent / loc).unlink(missing_ok=True)
    model_tmp = path.parent / f".{path.name}.tmp"
    onnx.save_model(model, str(model_tmp))
    model_tmp.replace(path)
    return (path, path.parent / target)


class _Limited:
    """A file-like view of the next ``size`` bytes of ``f``."""

    def __init__(self, f: object, size: int) -> None:
        self.f = f
        self.left = size

    def read(self, n: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        n = self.left if n < 0 else min(n, self.left)
        data: bytes = self.f.read(n)  # type: ignore[attr-defined]
        self.left -= len(data)
        return data


def without_weights(path: Path) -> tuple[onnx.ModelProto, dict[str, onnx.TensorProto]]:
    """The graph of ``path`` with its large external weights lifted to graph inputs.

    Small external tensors are loaded so that constant folding still sees them. Returns the
    model and the lifted tensors (still pointing at their bytes on disk), by name.
    """
    import onnx
    from onnx import helper
    from onnx.external_data_helper import load_external_data_for_tensor

    model = onnx.load(str(path), load_external_data=False)
    lifted: dict[str, onnx.TensorProto] = {}
    kept = []
    for tensor in model.graph.initializer:
        if _location(tensor) is None:
            kept.append(tensor)
            continue
        length = _entry(tensor, "length") or 0
        if length >= LIFT_BYTES:
            lifted[tensor.name] = tensor
            continue
        load_external_data_for_tensor(tensor, str(path.parent))
        tensor.data_location = onnx.TensorProto.DEFAULT
        del tensor.external_data[:]
        kept.append(tensor)
    graph_inputs = list(model.graph.input)
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    existing = {i.name for i in graph_inputs}
    for name, tensor in lifted.items():
        if name not in existing:
            model.graph.input.append(
                helper.make_tensor_value_info(name, tensor.data_type, list(tensor.dims))
            )
    return model, lifted


def with_weights(
    model: onnx.ModelProto, lifted: Mapping[str, onnx.TensorProto], src_dir: Path, dst: Path
) -> tuple[Path, ...]:
    """Put lifted weights back as initializers and save ``model`` at ``dst``.

    The weights' data files are hard-linked (else copied) beside ``dst``; nothing is loaded.
    Weights the simplifier no longer uses are left out. Returns the files written.
    """
    import onnx

    used = {i for n in model.graph.node for i in n.input}
    inputs = [i for i in model.graph.input if i.name not in lifted]
    del model.graph.input[:]
    model.graph.input.extend(inputs)
    locations: set[str] = set()
    for name, tensor in lifted.items():
        if name in used:
            model.graph.initializer.append(tensor)
            locations.add(_location(tensor) or "")
    files = [dst]
    for loc in sorted(locations):
        source, target = src_dir / loc, dst.parent / loc
        if target.exists():
            target.unlink()
        try:
            os.link(source, target)
        except OSError:
            shutil.copyfile(source, target)
        files.append(target)
    tmp = dst.with_name(f".{dst.name}.tmp")
    onnx.save_model(model, str(tmp))
    tmp.replace(dst)
    return tuple(files)
