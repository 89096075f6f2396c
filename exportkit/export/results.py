"""What an export produced: the file, its companions, and every exporter's attempt."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from exportkit.diagnose import Location

__all__ = ["ExportAttempt", "ExportResult", "FrozenDim"]


@dataclass(frozen=True)
class ExportAttempt:
    """One exporter's try: which, whether it worked, how long, and the first line of its failure."""

    exporter: str
    ok: bool
    seconds: float
    error: str | None = None
    operator: str | None = None
    location: Location | None = None


@dataclass(frozen=True)
class FrozenDim:
    """A dimension asked to be dynamic that came out fixed in the ONNX inputs."""

    input: str
    axis: int
    label: str
    size: int


@dataclass(frozen=True)
class ExportResult:
    """The written ONNX file, its companion files, and how it was made."""

    path: Path
    files: tuple[Path, ...]
    exporter: str
    attempts: tuple[ExportAttempt, ...]
    opset: int | None
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    external_data: bool
    frozen_dims: tuple[FrozenDim, ...] = ()
