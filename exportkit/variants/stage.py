"""The variant stage as the pipeline runs it: after the final float file passed (export), or in
place of float validation for a float16/int8 file made elsewhere (check)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from exportkit.variants.make import judge_file, make_variants
from exportkit.variants.results import VariantResult

if TYPE_CHECKING:
    from torch import nn

    from exportkit.decode import StatePair
    from exportkit.inputs import ExampleInputs
    from exportkit.options import Options
    from exportkit.stages import Stages
    from exportkit.validate import Case

__all__ = ["check_variant", "run_variants"]


def _detail(rows: Sequence[VariantResult]) -> str:
    made = [f"{r.name} {'pass' if r.passed else 'FAIL'}" for r in rows if r.name != "float"]
    return ", ".join(made) or "float file timed"


def _chained(
    rows: Sequence[VariantResult],
    module: nn.Module,
    example: ExampleInputs | None,
    pairs: Sequence[StatePair],
    options: Options,
    float_path: Path | None,
) -> tuple[VariantResult, ...]:
    """--steps: each variant (CPU) chained over the decode steps, as the float file is."""
    if example is None or not pairs:
        return tuple(rows)
    from exportkit.decode.chain import DEFAULT_STEPS
    from exportkit.perf import CPU
    from exportkit.variants.chained import chain_variant

    steps = options.steps or DEFAULT_STEPS
    out = []
    for r in rows:
        if r.provider == CPU:
            r = chain_variant(r, module, example, pairs, steps=steps, float_path=float_path,
                              seed=options.seed)  # fmt: skip
        out.append(r)
    return tuple(out)


def run_variants(
    stages: Stages,
    module: nn.Module,
    path: Path,
    cases: Sequence[Case],
    options: Options,
    float_passed: bool,
    *,
    example: ExampleInputs | None = None,
    pairs: Sequence[StatePair] = (),
) -> tuple[VariantResult, ...]:
    """``--variant``/``--profile``/``--provider``: each variant of the final file, validated and
    timed; skipped when the float file itself failed (nothing sound to derive from). With state
    ``pairs`` (``--steps``), each variant is also validated over the chained decode steps."""
    if not (options.variants or options.profile or options.providers):
        return ()
    if not float_passed:
        stages.skip("variants", "the float file failed validation")
        return ()
    with stages.run("variants") as detail:
        rows = make_variants(
            path, cases, options.variants, model=module, int8=options.int8,
            calibrate=options.calibrate, providers=options.providers,
            thresholds=options.thresholds, profile=options.profile,
            latency=options.latency_budget > 0, budget_s=options.latency_budget,
        )  # fmt: skip
        rows = _chained(rows, module, example, pairs, options, path)
        detail.append(_detail(rows))
    return rows


def check_variant(
    stages: Stages,
    module: nn.Module,
    path: Path,
    cases: Sequence[Case],
    options: Options,
    *,
    example: ExampleInputs | None = None,
    pairs: Sequence[StatePair] = (),
) -> tuple[VariantResult, ...]:
    """A float16 or int8 file given to ``check``: judged as a variant (empty for float files),
    over the chained decode steps too when the model has state ``pairs``."""
    from exportkit.variants.detect import detect_kind

    kind = detect_kind(path)
    if kind == "float":
        return ()
    with stages.run(f"validate {kind}") as detail:
        rows = judge_file(
            path, cases, model=module, providers=options.providers, thresholds=options.thresholds,
            latency=options.latency_budget > 0, budget_s=options.latency_budget,
        )  # fmt: skip
        rows = _chained(rows, module, example, pairs, options, None)
        detail.append(_detail(rows))
    return rows
