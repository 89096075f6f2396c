"""A content-addressed cache of passing exports: a repeat of an unchanged run is a file copy.

The key (:mod:`exportkit.cache.key`) covers the model's source and the local modules it imports
(or its archive or HuggingFace folder), the weights' bytes, every input and option and the tools'
versions. A hit restores the output files and the report without importing torch, onnxruntime or
a simplifier, and the report says ``cached``. Only passing runs are stored. The cache lives in
``$EXPORTKIT_CACHE`` (default ``~/.cache/exportkit``) and keeps at most ``$EXPORTKIT_CACHE_MAX``
bytes (4 GiB), the least recently used entries evicted first; ``Options(cache=False)`` /
``--no-cache`` skips it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from exportkit.cache.key import CacheKey, NotCacheable, cache_key
from exportkit.cache.store import cache_dir, cache_limit, read_entry, restore_files, write_entry
from exportkit.options import Options
from exportkit.results import ProgressFn, Report
from exportkit.stages import Stages
from exportkit.workspace import check_target, default_output

__all__ = ["CacheKey", "NotCacheable", "cache_dir", "cache_key", "cached_export", "lookup"]

logger = logging.getLogger(__name__)


def lookup(key: CacheKey, target: Path, progress: ProgressFn | None = None) -> Report | None:
    """The stored report with its files restored to ``target``, or None on a miss."""
    found = read_entry(key.digest, target)
    if found is None:
        logger.debug("cache: miss %s", key.digest)
        return None
    report, files, extra = found
    check_target(target)
    with Stages(progress).run("cache") as detail:
        placed = restore_files(files, target, extra)
        detail.append(
            f"unchanged since a passing run ({key.digest[:12]})" if placed else "evicted meanwhile"
        )
    if placed is None:
        return None
    summary = report.summary
    if summary is not None:
        summary = replace(summary, path=str(placed[0]))
    return replace(
        report, output=placed[0], target=target, files=placed, summary=summary, cached=True
    )


def cached_export(
    model: Any,
    inputs: Any,
    output: str | Path | None,
    options: Options,
    run: Callable[[], Report],
    progress: ProgressFn | None = None,
) -> Report:
    """``run()``'s report, from the cache when this export ran unchanged before and passed.

    A passing report is stored when the key is the same after the run as before it (no file it
    covers changed meanwhile). Runs that cannot be keyed (a module object, tensors) just run.
    """
    if not options.cache:
        return run()
    cache_limit()  # a bad $EXPORTKIT_CACHE_MAX is refused before any work
    try:
        key = cache_key(model, inputs, output, options)
    except NotCacheable as exc:
        logger.debug("cache: not used: %s", exc)
        return run()
    target = Path(output) if output is not None else default_output(key.model_name)
    hit = lookup(key, target, progress)
    if hit is not None:
        return hit
    report = run()
    if report.passed:
        try:
            unchanged = cache_key(model, inputs, output, options) == key
        except NotCacheable:
            unchanged = False
        if unchanged:
            write_entry(key.digest, report)
            logger.debug("cache: stored %s", key.digest)
        else:
            logger.debug("cache: a file of the key changed during the run; not stored")
    return report
