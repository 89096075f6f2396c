"""Variant files beside the float file: ``<stem>.<variant>.onnx``, never half written."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from exportkit.onnxfile import copy_beside

if TYPE_CHECKING:
    import onnx

__all__ = [
    "expose_all",
    "exposed_session",
    "file_size",
    "needs_external",
    "save_model",
    "staged",
    "variant_path",
]

# Past this, a protobuf cannot hold the weights: they go to ``<file>.data`` beside it.
_EXTERNAL_BYTES = 1_800_000_000


def variant_path(float_path: Path, variant: str) -> Path:
    """``out/model.onnx`` -> ``out/model.fp16.onnx``."""
    return float_path.with_name(f"{float_path.stem}.{variant}.onnx")


def _umask() -> int:
    """This process's umask, read without changing it (Linux), else set and restored."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def staged(target: Path, *, external: bool = False) -> Iterator[Path]:
    """Where a tool should write ``target``: a temporary name beside it (exportkit.onnxfile's
    atomic write), or, when the tool also writes external data named after the file, the same
    name in a temporary folder beside it, whose files all move next to ``target`` on success
    (the ``.onnx`` last), with the mode the umask gives a new file (a tool may write through
    ``mkstemp``, 0600: onnxruntime's quantizer does for external data)."""
    if not external:
        from exportkit.onnxfile import atomic_path

        with atomic_path(target) as tmp:
            yield tmp
        return
    folder = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        yield folder / target.name
        files = sorted(folder.iterdir(), key=lambda p: p.name == target.name)
        mode = 0o666 & ~_umask()
        for f in files:
            f.chmod(mode)
            f.replace(target.parent / f.name)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def save_model(model: onnx.ModelProto, target: Path) -> Path:
    """Save atomically; weights go to ``<name>.data`` when the model is too large for one file."""
    import onnx

    from exportkit.onnxfile import save_atomic

    if not needs_external(model):
        return save_atomic(model, target)
    with staged(target, external=True) as tmp:
        onnx.save_model(model, str(tmp), save_as_external_data=True, location=f"{target.name}.data")
    return target


def needs_external(model: onnx.ModelProto) -> bool:
    """Whether the model is too large for one protobuf (its weights go beside it); protobuf's
    ByteSize itself raises past 2 GB (``Failed to serialize proto``)."""
    try:
        size: int = model.ByteSize()
        return size > _EXTERNAL_BYTES
    except Exception:
        return True


def file_size(path: Path) -> int:
    """The file's bytes plus its external data files."""
    import onnx

    from exportkit.onnxfile import data_locations

    total = path.stat().st_size
    for loc in data_locations(onnx.load(str(path), load_external_data=False)):
        data = path.parent / loc
        if data.is_file():
            total += data.stat().st_size
    return total


@contextlib.contextmanager
def exposed_session(path: Path, model: onnx.ModelProto) -> Iterator[Any]:
    """A session on a copy of ``model`` beside ``path`` (so external data resolves)."""
    from exportkit.perf import CPU, session

    with copy_beside(path, model, "values") as target:
        yield session(str(target), CPU)


def expose_all(model: onnx.ModelProto, only: set[str] | None = None) -> list[str]:
    """Make every node output (or those in ``only``) a graph output, in place; the names added."""
    import onnx

    have = {o.name for o in model.graph.output}
    added = []
    for node in model.graph.node:
        for out in node.output:
            if out and out not in have and (only is None or out in only):
                model.graph.output.append(onnx.ValueInfoProto(name=out))
                have.add(out)
                added.append(out)
    return added
