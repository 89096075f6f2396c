"""What ``exportkit ci`` hands back: one ModelRun per model and the CiResult; pure data."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from exportkit.results import Report

__all__ = ["CiResult", "ModelError", "ModelRun", "Verdict"]

# pass: exported and validated; fail: validated and wrong; error: a stage stopped it (an
# ExportkitError, or a bug whose traceback is kept in ``ModelError.traceback``).
Verdict = Literal["pass", "fail", "error"]


@dataclass(frozen=True)
class ModelError:
    """Why a model's run stopped: the error's class, message, hint and exit code."""

    kind: str
    message: str
    hint: str | None = None
    exit_code: int = 3
    traceback: str | None = None


@dataclass(frozen=True)
class ModelRun:
    """One model of the project: its verdict, how long it took, its file and report."""

    name: str
    spec: str
    table: str
    verdict: Verdict
    seconds: float
    output: Path | None
    reason: str = ""
    cached: bool = False
    report: Report | None = None
    error: ModelError | None = None

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"


@dataclass(frozen=True)
class CiResult:
    """Every model of a project, in the order configured; ``passed`` when all of them passed."""

    config: Path
    jobs: int
    seconds: float
    models: tuple[ModelRun, ...]

    @property
    def passed(self) -> bool:
        return all(m.passed for m in self.models)

    @property
    def failed(self) -> tuple[ModelRun, ...]:
        return tuple(m for m in self.models if not m.passed)
