"""Cache entries on disk: ``<cache>/runs/<digest>/`` holds the output files and ``report.json``.

An entry is written in a private folder and renamed into place, so a reader sees a whole entry
or none, and parallel runs storing the same key never mix. Restored files are copied beside the
target and renamed onto it, so the target is never half written and the entry never shares an
inode with a file the user may later change in place. The cache keeps at most
``$EXPORTKIT_CACHE_MAX`` bytes (4 GiB): storing an entry evicts the least recently used ones.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

from exportkit.onnxfile import atomic_path
from exportkit.report.load import load_report
from exportkit.report.pipeline import render_json
from exportkit.results import Report

__all__ = ["cache_dir", "cache_limit", "prune", "read_entry", "restore_files", "write_entry"]

logger = logging.getLogger(__name__)

ENTRY_VERSION = 1

#: The cache's size when ``$EXPORTKIT_CACHE_MAX`` does not set one: the least recently used
#: entries go first. Every entry holds whole copies of its files (a 2.4 GB model is 2.4 GB).
DEFAULT_LIMIT = 4 << 30
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def cache_dir() -> Path:
    """``$EXPORTKIT_CACHE``, else ``$XDG_CACHE_HOME/exportkit``, else ``~/.cache/exportkit``."""
    if os.environ.get("EXPORTKIT_CACHE"):
        return Path(os.environ["EXPORTKIT_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "exportkit"


def cache_limit() -> int:
    """The most bytes the cache keeps: ``$EXPORTKIT_CACHE_MAX`` (``500M``, ``8G``, bytes; ``0``
    stores nothing), else 4 GiB.

    Raises:
        UsageError: a value that is not a size (exit 2).
    """
    from exportkit.errors import UsageError

    text = os.environ.get("EXPORTKIT_CACHE_MAX", "").strip().upper().removesuffix("B")
    if not text:
        return DEFAULT_LIMIT
    number, unit = (text[:-1], text[-1]) if text[-1] in _UNITS else (text, "")
    try:
        value = float(number)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise UsageError(
            f"EXPORTKIT_CACHE_MAX={os.environ['EXPORTKIT_CACHE_MAX']!r} is not a size",
            hint="give bytes or a size such as 500M or 8G (0 stores nothing), or unset it",
        )
    return int(value * _UNITS[unit])


def prune(limit: int, keep: Path | None = None) -> None:
    """Remove the least recently used entries until the cache holds at most ``limit`` bytes
    (``keep``, the entry just stored, stays). An entry is renamed away before it is deleted, so
    a run reading it sees a whole entry or none."""
    runs = cache_dir() / "runs"
    entries = []
    for meta in runs.glob("*/*/entry.json"):
        try:
            size = int(json.loads(meta.read_text(encoding="utf-8")).get("bytes", 0))
            entries.append((meta.stat().st_mtime, size, meta.parent))
        except (OSError, ValueError):
            continue
    total = sum(size for _, size, _ in entries)
    for _, size, entry in sorted(entries, key=lambda e: e[0]):
        if total <= limit:
            break
        if entry == keep:
            continue
        trash = entry.with_name(f".evict-{entry.name}-{os.getpid()}")
        try:
            entry.rename(trash)
        except OSError:
            continue  # another run evicted it first
        shutil.rmtree(trash, ignore_errors=True)
        total -= size
        logger.debug("cache: evicted %s (%d bytes)", entry.name, size)


def _entry(digest: str) -> Path:
    return cache_dir() / "runs" / digest[:2] / digest


def write_entry(digest: str, report: Report) -> Path | None:
    """Store a passing report and copies of its files under ``digest``; None when it cannot.

    A cache that cannot be written (read-only, disk full) never fails the run: it is logged.
    """
    final = _entry(digest)
    if final.is_dir():
        return final
    target = report.target or report.output
    if target is None or not report.files:
        return None
    extra = _variant_files(report, target.parent)
    if extra is None:
        return None
    limit = cache_limit()
    size = sum(f.stat().st_size for f in (*report.files, *extra))
    if size > limit:
        logger.debug("cache: not stored: %d bytes is over the limit of %d", size, limit)
        return None
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".store-", dir=final.parent))
    except OSError as exc:
        logger.warning("cache: cannot write %s: %s", final.parent, exc.strerror)
        return None
    try:
        (work / "files").mkdir()
        for f in (*report.files, *extra):
            shutil.copyfile(f, work / "files" / f.name)
        meta = {
            "entry_version": ENTRY_VERSION,
            "target": str(target),
            "files": [f.name for f in report.files],
            "extra": [f.name for f in extra],
            "bytes": size,
        }
        (work / "entry.json").write_text(json.dumps(meta), encoding="utf-8")
        (work / "report.json").write_text(render_json(report), encoding="utf-8")
        work.rename(final)  # atomic; fails if a parallel run stored the same key first
    except OSError as exc:
        if not final.is_dir():
            logger.warning("cache: cannot store %s: %s", final, exc.strerror or exc)
        shutil.rmtree(work, ignore_errors=True)
        return final if final.is_dir() else None
    prune(limit, keep=final)
    return final


def _variant_files(report: Report, folder: Path) -> list[Path] | None:
    """The variant files made beside the output and the external data they name; None when one
    lies elsewhere (such a run is not stored)."""
    import onnx

    from exportkit.onnxfile import data_locations

    out: list[Path] = []
    for variant in report.variants:
        if variant.path is None or variant.path in report.files:
            continue
        if variant.path.parent != folder or not variant.path.is_file():
            logger.debug("cache: variant file %s not beside the output; not stored", variant.path)
            return None
        model = onnx.load(str(variant.path), load_external_data=False)
        out += [variant.path, *(folder / name for name in data_locations(model))]
    return out


def read_entry(digest: str, target: Path) -> tuple[Report, list[Path], list[Path]] | None:
    """The stored report with its paths moved to ``target``'s folder, the stored output files
    (the model first) and the variant files; None when there is no whole entry for ``digest``."""
    entry = _entry(digest)
    try:
        meta = json.loads((entry / "entry.json").read_text(encoding="utf-8"))
        text = (entry / "report.json").read_text(encoding="utf-8")
    except (OSError, ValueError) as exc:
        logger.debug("cache: no entry %s (%s)", entry, exc)
        return None
    if meta.get("entry_version") != ENTRY_VERSION:
        return None
    old = Path(meta["target"])
    files = [entry / "files" / name for name in meta["files"]]
    extra = [entry / "files" / name for name in meta.get("extra", [])]
    if not all(f.is_file() for f in (*files, *extra)):
        return None
    with contextlib.suppress(OSError):
        os.utime(entry / "entry.json")  # used now: eviction takes the least recently used

    def rebase(path: Path) -> Path:
        # The run's files sat beside its target; the restored ones sit beside this target.
        return target.parent / path.name if path.parent == old.parent else path

    try:
        report = load_report(text, rebase=rebase)
    except (ValueError, KeyError, TypeError) as exc:
        logger.debug("cache: entry %s unreadable: %s", entry, exc)
        return None
    return report, files, extra


def restore_files(files: list[Path], target: Path, extra: list[Path]) -> tuple[Path, ...] | None:
    """Copy the stored files beside ``target`` (the model as ``target``, variant files and data
    files under their own names), each by rename; returns the output files, model first, or None
    when the entry was evicted meanwhile (every file is opened before any is written).

    Raises:
        OutputPathError: a file cannot be written there (DiskFullError: the disk is full).
    """
    model, *data = files
    placed = [target.parent / d.name for d in data]
    others = [(f, target.parent / f.name) for f in extra]
    copies = [*others, *zip(data, placed), (model, target)]  # the model last: it never names
    with contextlib.ExitStack() as stack:  # data that is not in place yet
        try:
            sources = [stack.enter_context(src.open("rb")) for src, _ in copies]
        except FileNotFoundError:
            return None
        for source, (_, dest) in zip(sources, copies, strict=True):
            with (
                atomic_path(dest, hint="choose another -o path", parents=True) as tmp,
                tmp.open("xb") as out,
            ):
                shutil.copyfileobj(source, out, 1 << 20)
    return (target, *placed)
