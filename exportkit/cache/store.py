"""Cache entries on disk: ``<cache>/runs/<digest>/`` holds the output files and ``report.json``.

An entry is written in a private folder and renamed into place, so a reader sees a whole entry
or none, and parallel runs storing the same key never mix. Restored files are copied beside the
target and renamed onto it, so the target is never half written and the entry never shares an
inode with a file the user may later change in place.
"""

from __future__ import annotations

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

__all__ = ["cache_dir", "read_entry", "restore_files", "write_entry"]

logger = logging.getLogger(__name__)

ENTRY_VERSION = 1


def cache_dir() -> Path:
    """``$EXPORTKIT_CACHE``, else ``$XDG_CACHE_HOME/exportkit``, else ``~/.cache/exportkit``."""
    if os.environ.get("EXPORTKIT_CACHE"):
        return Path(os.environ["EXPORTKIT_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "exportkit"


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
        }
        (work / "entry.json").write_text(json.dumps(meta), encoding="utf-8")
        (work / "report.json").write_text(render_json(report), encoding="utf-8")
        work.rename(final)  # atomic; fails if a parallel run stored the same key first
    except OSError as exc:
        if not final.is_dir():
            logger.warning("cache: cannot store %s: %s", final, exc.strerror or exc)
        shutil.rmtree(work, ignore_errors=True)
        return final if final.is_dir() else None
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

    def rebase(path: Path) -> Path:
        # The run's files sat beside its target; the restored ones sit beside this target.
        return target.parent / path.name if path.parent == old.parent else path

    try:
        report = load_report(text, rebase=rebase)
    except (ValueError, KeyError, TypeError) as exc:
        logger.debug("cache: entry %s unreadable: %s", entry, exc)
        return None
    return report, files, extra


def restore_files(files: list[Path], target: Path, extra: list[Path]) -> tuple[Path, ...]:
    """Copy the stored files beside ``target`` (the model as ``target``, variant files and data
    files under their own names), each by rename; returns the output files, model first.

    Raises:
        OutputPathError: a file cannot be written there (DiskFullError: the disk is full).
    """
    model, *data = files
    placed = [target.parent / d.name for d in data]
    others = [(f, target.parent / f.name) for f in extra]
    for src, dest in [*others, *zip(data, placed), (model, target)]:
        # The model last: it never names data that is not in place yet.
        with atomic_path(dest, hint="choose another -o path", parents=True) as tmp:
            shutil.copyfile(src, tmp)
    return (target, *placed)
