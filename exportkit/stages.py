"""Times each stage of a run and tells the progress callback as it starts and ends."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from exportkit.results import ProgressFn, StageEvent, StageTiming

__all__ = ["Stages"]


class Stages:
    """``with stages.run("export") as detail:`` times the block; ``detail`` collects its notes."""

    def __init__(
        self,
        progress: ProgressFn | None,
        *,
        prefix: str = "",
        timings: list[StageTiming] | None = None,
    ) -> None:
        self.progress = progress or (lambda event: None)
        self.timings: list[StageTiming] = timings if timings is not None else []
        self.prefix = prefix

    def prefixed(self, prefix: str) -> Stages:
        """The same run's stages with each name prefixed (``prefill simplify``): a stage that
        runs again on a second file (an encoder-decoder's prefill graph)."""
        return Stages(self.progress, prefix=self.prefix + prefix, timings=self.timings)

    @contextlib.contextmanager
    def run(self, stage: str) -> Iterator[list[str]]:
        stage = self.prefix + stage
        detail: list[str] = []
        self.progress(StageEvent(stage, "start"))
        start = time.perf_counter()
        try:
            yield detail
        except BaseException:
            seconds = time.perf_counter() - start
            self.timings.append(StageTiming(stage, "failed", seconds, "; ".join(detail)))
            self.progress(StageEvent(stage, "failed", seconds, "; ".join(detail)))
            raise
        seconds = time.perf_counter() - start
        text = "; ".join(detail)
        self.timings.append(StageTiming(stage, "ok", seconds, text))
        self.progress(StageEvent(stage, "ok", seconds, text))

    def skip(self, stage: str, why: str) -> None:
        stage = self.prefix + stage
        self.timings.append(StageTiming(stage, "skipped", 0.0, why))
        self.progress(StageEvent(stage, "skipped", 0.0, why))
