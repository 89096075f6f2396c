"""Third-party output kept off the terminal: counted or summed up in one line, kept for --debug.

Two depths, one home:

* :func:`captured`, Python level: torch's loaders log stack traces through their own stderr
  handlers (``torch.export.load`` on a file it cannot read), print, and warn, and then raise an
  exception that says "check the warnings above". exportkit states one reason instead
  (:meth:`Captured.reason`).
* :func:`native_output`, file descriptors 1 and 2: C++ libraries (onnxsim's constant folding,
  onnxruntime's logger, the TorchScript exporter's IR dump) write there directly, below anything
  Python can redirect. The CLI draws its live status on its own copy of the terminal, so the
  status is not captured with them.

Either way the kept text is logged at DEBUG when the block ends, whether it raised or not.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

from exportkit.errors import first_line

__all__ = ["Captured", "Kept", "captured", "native_output"]

logger = logging.getLogger(__name__)

_ERROR_LINE = re.compile(r"(?:^|\] |: )(\w+(?:Error|Exception): .+)$")
_SEE_ABOVE = re.compile(r"check the (warnings|logs?|errors?) above", re.IGNORECASE)


class Captured:
    """The text kept so far: log records, prints and warnings from third-party code."""

    def __init__(self) -> None:
        self.buffer = io.StringIO()

    @property
    def text(self) -> str:
        return self.buffer.getvalue()

    def reason(self, exc: BaseException) -> str:
        """The first line of ``exc``; when it only points at output "above" (which was kept,
        not shown), the last error line of that output instead."""
        own = first_line(exc)
        if _SEE_ABOVE.search(own):
            for line in reversed(self.text.splitlines()):
                match = _ERROR_LINE.search(line.strip())
                if match:
                    own = match.group(1)
                    break
        # torch appends paragraphs of advice ("This is an internal miniz error. If you are
        # seeing this error, ..."): the first sentence says what is wrong.
        sentence, dot, rest = own.partition(". ")
        return f"{sentence}." if dot and len(own) > 120 and rest else own


class _Divert(logging.Filter):
    """On the root logger's handlers: records from outside exportkit go to the capture."""

    def __init__(self, capture: logging.Handler) -> None:
        super().__init__()
        self.capture = capture
        self.seen: set[int] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "exportkit" or record.name.startswith("exportkit."):
            return True
        if id(record) not in self.seen:  # one record passes every root handler
            self.seen.add(id(record))
            self.capture.handle(record)
        return False


def _third_party_loggers() -> list[logging.Logger]:
    """Loggers with handlers of their own (torch gives many its own stderr handler)."""
    loggers = logging.root.manager.loggerDict.values()
    return [
        item
        for item in loggers
        if isinstance(item, logging.Logger)
        and item.handlers
        and not (item.name == "exportkit" or item.name.startswith("exportkit."))
    ]


@contextlib.contextmanager
def captured(what: str) -> Iterator[Captured]:
    """Keep third-party log records, prints and warnings while ``what`` runs.

    The kept text is logged at DEBUG under ``what`` when the block ends, whether it raised or
    not; exportkit's own log records pass as usual. Import torch before entering: loggers that
    torch creates while importing inside the block would not be captured.
    """
    kept = Captured()
    capture = logging.StreamHandler(kept.buffer)
    capture.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    swapped = [(item, item.handlers[:], item.propagate) for item in _third_party_loggers()]
    for item, _, _ in swapped:
        item.handlers = [capture]
        item.propagate = False
    divert = _Divert(capture)
    roots = logging.root.handlers[:]
    for handler in roots:
        handler.addFilter(divert)
    caught: list[warnings.WarningMessage] = []
    try:
        with (
            contextlib.redirect_stdout(kept.buffer),
            contextlib.redirect_stderr(kept.buffer),
            warnings.catch_warnings(record=True) as caught,
        ):
            warnings.simplefilter("always")
            yield kept
    finally:
        for item, handlers, propagate in swapped:
            item.handlers = handlers
            item.propagate = propagate
        for handler in roots:
            handler.removeFilter(divert)
        for w in caught:
            kept.buffer.write(f"{w.category.__name__}: {w.message}\n")
        if kept.text.strip():
            logger.debug("%s: output kept from the terminal:\n%s", what, kept.text.rstrip())


# -- file descriptors -------------------------------------------------------------------------


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
