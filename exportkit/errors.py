"""The exportkit error tree: every failure a user can act on, each with its exit code.

::

    ExportkitError                 exit 3  a stage failed on valid input
    ├── UsageError                 exit 2  the user asked for something that cannot be done as asked
    │   ├── SpecError                      a model spec that names nothing loadable
    │   ├── InputSpecError                 an --input/--dynamic that does not parse or fit forward()
    │   ├── WeightsError                   a --weights file that is unreadable or does not fit the model
    │   ├── OnnxFileError                  a file that is not (complete) ONNX
    │   ├── OutputPathError                an output path that cannot be written
    │   ├── ConfigError                    a project's [tool.exportkit] table that cannot be right
    │   ├── PortInUseError                 --port is taken
    │   └── HostError                      --host is not an address of this machine
    ├── LoadError                  exit 3  the model's file raised while importing or building
    ├── ForwardError               exit 3  the model raised on the example inputs
    ├── ExportError                exit 3  every exporter tried failed
    ├── SimplifyError              exit 3  (never fatal in the pipeline: the raw export is kept)
    ├── RuntimeStageError          exit 3  onnxruntime could not load or run the exported file
    ├── DiskFullError              exit 3  the disk filled up while an output was written
    ├── RunnerError                exit 3  `exportkit ci` could not run its worker processes
    └── ViewError                  exit 3  Netron could not be started

A validation mismatch is not an error: it is a finding in the report (``passed=False``), exit 1.
Exit 0 is success; 130 is an interrupted run (Ctrl-C outside ``view``, where Ctrl-C is the normal
way to stop and exits 0).

Anything else raised from exportkit is a bug and keeps its traceback. A third-party exception
wrapped into one of these keeps its first line in the message (:func:`first_line`) and itself
as the cause.
"""

from __future__ import annotations

__all__ = [
    "EXIT_FAILED_CHECK",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_STAGE_FAILED",
    "EXIT_USAGE",
    "ConfigError",
    "DiskFullError",
    "ExportError",
    "ExportkitError",
    "ForwardError",
    "HostError",
    "InputSpecError",
    "LoadError",
    "OnnxFileError",
    "OutputPathError",
    "PortInUseError",
    "RunnerError",
    "RuntimeStageError",
    "SimplifyError",
    "SpecError",
    "UsageError",
    "ViewError",
    "WeightsError",
    "first_line",
]

EXIT_OK = 0
EXIT_FAILED_CHECK = 1
EXIT_USAGE = 2
EXIT_STAGE_FAILED = 3
EXIT_INTERRUPTED = 130


class ExportkitError(Exception):
    """A failure the user can act on: one-line message plus an optional hint."""

    exit_code: int = EXIT_STAGE_FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(ExportkitError):
    """The user asked for something that cannot be done as asked."""

    exit_code = EXIT_USAGE


class SpecError(UsageError):
    """A model spec that names nothing loadable."""


class InputSpecError(UsageError):
    """An --input or --dynamic spec that does not parse or does not fit forward()."""


class WeightsError(UsageError):
    """A --weights file that cannot be read or does not fit the model."""


class OnnxFileError(UsageError):
    """A file that is not ONNX, is truncated, or misses its external data."""


class OutputPathError(UsageError):
    """An output path that cannot be written."""


class ConfigError(UsageError):
    """A project's exportkit config (pyproject.toml or exportkit.toml) that cannot be right."""


class PortInUseError(UsageError):
    """The port given with --port is taken."""


class HostError(UsageError):
    """The address given with --host is not one of this machine's."""


class LoadError(ExportkitError):
    """The model's file raised while importing, or its constructor raised."""


class ForwardError(ExportkitError):
    """The model raised when run on the example inputs."""


class ExportError(ExportkitError):
    """Every exporter tried failed."""


class SimplifyError(ExportkitError):
    """The simplifier failed (the pipeline keeps the raw export instead)."""


class RuntimeStageError(ExportkitError):
    """onnxruntime could not load or run the exported file."""


class RunnerError(ExportkitError):
    """``exportkit ci`` could not run its worker processes (one was killed, or none started)."""


class ViewError(ExportkitError):
    """Netron could not be started."""


class DiskFullError(ExportkitError):
    """The disk filled up while an output was written (the hint names the folder)."""


def first_line(exc: BaseException, *, typed: bool = False) -> str:
    """The first non-empty line of an exception's message, or its type's name when it has none.

    ``typed`` prefixes the type's name (``ValueError: bad shape``) unless the line starts with it.
    """
    name = type(exc).__name__
    line = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), "")
    if not line:
        return name
    return f"{name}: {line}" if typed and not line.startswith(name) else line
