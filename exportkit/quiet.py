"""Third-party output kept off the terminal: counted for one line of the report, kept for --debug.

C++ libraries (onnxsim's constant folding, onnxruntime's logger) write to file descriptors 1
and 2 directly, below anything Python can redirect: :func:`native_output` points both at a
scratch file while a call runs. The CLI draws on its own copy of the terminal, so its live status
is not captured with them.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["Kept", "native_output"]

logger = logging.getLogger(__name__)


@dataclass
class Kept:
    """What a library printed while it ran (filled when the block ends)."""

    text: str = ""

    @property
    def lines(self) -> int:
        """Non-empty lines."""
        return sum(1 for line in self.text.splitlines() if line.strip())


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        with contextlib.suppress(Exception):
            stream.flush()  # type: ignore[union-attr]


@contextlib.contextmanager
def native_output(what: str) -> Iterator[Kept]:
    """Send fds 1 and 2, Python's ``sys.stdout``/``sys.stderr`` and warnings to a scratch file
    while the block runs; the text is logged at DEBUG under ``what`` when it ends, raised or not.

    Yields a :class:`Kept` whose ``text`` is filled when the block ends.
    """
    kept = Kept()
    saved: list[tuple[int, int]] = []
    caught: list[warnings.WarningMessage] = []
    with tempfile.TemporaryFile() as scratch:
        _flush()
        try:
            for fd in (1, 2):
                with contextlib.suppress(OSError):
                    saved.append((fd, os.dup(fd)))
                    os.dup2(scratch.fileno(), fd)
            python = io.TextIOWrapper(os.fdopen(os.dup(scratch.fileno()), "wb"), "utf-8")
            with (
                python,
                contextlib.redirect_stdout(python),
                contextlib.redirect_stderr(python),
                warnings.catch_warnings(record=True) as caught,
            ):
                warnings.simplefilter("always")
                yield kept
        finally:
            _flush()
            for fd, copy in saved:
                os.dup2(copy, fd)
                os.close(copy)
            scratch.seek(0)
            text = scratch.read().decode("utf-8", "replace")
            text += "".join(f"{w.category.__name__}: {w.message}\n" for w in caught)
            kept.text = text
            if text.strip():
                logger.debug("%s printed %d lines:\n%s", what, kept.lines, text.rstrip())
