"""The cache key of a run: a digest of everything that decides its output and report.

The model's source file and the local modules it imports (or the archive's or HuggingFace
folder's bytes), the weights file's bytes, every input (data files' bytes), every option
(canonically serialized), the output's file name, and the versions of the tools exportkit drives
plus exportkit's own source. Nothing here imports torch or the model.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import platform
import sys
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from exportkit import versions
from exportkit.cache.sources import local_closure, module_file
from exportkit.errors import ExportkitError
from exportkit.inputs.spec import InputSpec
from exportkit.loading.spec import ModelSpec
from exportkit.options import Options

__all__ = ["IGNORED_OPTIONS", "CacheKey", "NotCacheable", "cache_key"]

logger = logging.getLogger(__name__)

# Options that change neither the output file nor the report: where report files go, the viewer.
IGNORED_OPTIONS = frozenset(
    {"cache", "json", "junit", "html", "markdown", "host", "port", "browser"}
)
_CHUNK = 1 << 20
_OWN_SOURCE: list[str] = []


class NotCacheable(Exception):
    """This run's result cannot be keyed by content (the reason is the message)."""


@dataclasses.dataclass(frozen=True)
class CacheKey:
    """The digest and the target file name the cached entry is for."""

    digest: str
    model_name: str


def _file_digest(path: Path) -> str:
    # Only regular files: opening a FIFO or a device to hash it would block or never end; the
    # run itself then reports what is wrong with it.
    if not path.is_file():
        raise NotCacheable(f"{path} is not a regular file")
    h = hashlib.sha256()
    try:
        with path.open("rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
    except OSError as exc:
        raise NotCacheable(f"cannot read {path}: {exc.strerror}") from None
    return h.hexdigest()


def _folder_digest(folder: Path) -> dict[str, str]:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return {str(p.relative_to(folder)): _file_digest(p) for p in files}


def _canonical(value: Any) -> Any:
    """An option's value as plain JSON, the same for equal values; refuses what it cannot key."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _canonical(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise NotCacheable(f"a {type(value).__name__} option has no content to key")


def _own_source() -> str:
    """A digest of exportkit's own modules: an edited exportkit never reuses an older result."""
    if not _OWN_SOURCE:
        package = Path(__file__).resolve().parent.parent
        h = hashlib.sha256()
        for path in sorted(package.rglob("*.py")):
            h.update(str(path.relative_to(package)).encode())
            h.update(path.read_bytes())
        _OWN_SOURCE.append(h.hexdigest())
    return _OWN_SOURCE[0]


def _model_material(spec: ModelSpec) -> tuple[dict[str, Any], set[str]]:
    """What the model is made of: source files, or an archive's or folder's bytes."""
    external: set[str] = set()
    if spec.kind in ("file", "module"):
        cwd = Path.cwd()
        if spec.kind == "file":
            file: Path | None = Path(spec.target)
            roots = [Path(spec.target).resolve().parent, cwd]
        else:
            file, roots = module_file(spec.target, [cwd]), [cwd]
        if file is None or not file.is_file():
            raise NotCacheable(f"{spec.target} is not a source file under {cwd}")
        files = local_closure(file, roots, external)
        return {"sources": {str(p): _file_digest(p) for p in files}}, external
    target = Path(spec.target)
    if spec.kind == "hf":
        if not target.is_dir():
            raise NotCacheable(f"{target} is not a folder")
        return {"folder": _folder_digest(target)}, {"transformers"}
    return {"archive": _file_digest(target)}, external


def _inputs_material(inputs: Any) -> list[Any]:
    if inputs is None:
        return []
    if isinstance(inputs, (str, InputSpec)):
        inputs = [inputs]
    if not isinstance(inputs, (list, tuple)) or not all(
        isinstance(i, (str, InputSpec)) for i in inputs
    ):
        raise NotCacheable(f"inputs given as {type(inputs).__name__} have no content to key")
    out = []
    for item in inputs:
        if isinstance(item, str):
            spec = InputSpec.parse(item)
        elif isinstance(item, InputSpec):
            spec = item
        else:
            raise NotCacheable(f"an input given as {type(item).__name__} has no content to key")
        data = _file_digest(Path(spec.file)) if spec.file is not None else None
        out.append([_canonical(spec), data])
    return out


def _versions(external: set[str]) -> dict[str, str]:
    found = dict(versions.tool_versions())
    for name in sorted(external - set(found)):
        with contextlib.suppress(metadata.PackageNotFoundError, ValueError):
            found[name] = metadata.version(name)
    found["exportkit-source"] = _own_source()
    found["python"] = sys.version
    found["machine"] = platform.machine()
    return found


def cache_key(model: Any, inputs: Any, output: str | Path | None, options: Options) -> CacheKey:
    """The key of exporting ``model`` with ``inputs`` to ``output`` under ``options``.

    Raises:
        NotCacheable: the model, an input or an option is an object, not content (an
            ``nn.Module``, tensors, custom translations), or a file it names cannot be read.
    """
    if not isinstance(model, (str, Path)):
        raise NotCacheable(f"a {type(model).__name__} object has no source to key")
    try:
        spec = ModelSpec.parse(str(model))
        material, external = _model_material(spec)
    except ExportkitError as exc:
        raise NotCacheable(exc.message) from None
    except ValueError as exc:  # a path the OS cannot name (a NUL byte): the run reports it
        raise NotCacheable(str(exc)) from None
    opts = {
        f.name: _canonical(getattr(options, f.name))
        for f in dataclasses.fields(options)
        if f.name not in IGNORED_OPTIONS
    }
    for name in ("weights", "calibrate", "baseline"):  # files whose bytes decide the result
        path = getattr(options, name, None)
        if path is not None:
            opts[name] = [str(path), _file_digest(Path(path))]
    doc = {
        "spec": spec.text,
        "model": material,
        "inputs": _inputs_material(inputs),
        "options": opts,
        "output": None if output is None else Path(output).name,
        "versions": _versions(external),
    }
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    logger.debug("cache key material: %s", text)
    return CacheKey(hashlib.sha256(text.encode()).hexdigest(), spec.name)
