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

from exportkit.onnxfile import atomic_path, data_locations, external_ref, save_atomic

if TYPE_CHECKING:
    import onnx

__all__ = ["consolidate", "has_external_data", "with_weights", "without_weights"]

# Weights at least this large stay on disk while a simplifier runs; smaller ones are loaded.
LIFT_BYTES = 1 << 20


def _location(tensor: onnx.TensorProto) -> str | None:
    ref = external_ref(tensor)
    return ref.location if ref is not None else None


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
        save_atomic(model, path, save_as_external_data=True, location=target)
        return (path, path.parent / target)
    if locations == [target]:
        return (path, path.parent / target)
    offset = 0
    with atomic_path(path.parent / target) as tmp, tmp.open("xb") as out:
        for tensor in model.graph.initializer:
            ref = external_ref(tensor)
            if ref is None:
                continue
            source = path.parent / ref.location
            with source.open("rb") as src:
                src.seek(ref.offset)
                size = ref.length if ref.length is not None else source.stat().st_size - ref.offset
                pad = (-offset) % 4096  # page-aligned, as onnx writes them, for mmap
                out.write(b"\0" * pad)
                offset += pad
                shutil.copyfileobj(_Limited(src, size), out, 1 << 24)
            _set_external(tensor, target, offset, size)
            offset += size
    save_atomic(model, path)
    still = set(data_locations(model))  # tensors outside the initializers keep their files
    for loc in locations:
        if loc not in still:
            (path.parent / loc).unlink(missing_ok=True)
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
        ref = external_ref(tensor)
        if ref is not None and (ref.length or 0) >= LIFT_BYTES:
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
    save_atomic(model, dst)
    return tuple(files)
