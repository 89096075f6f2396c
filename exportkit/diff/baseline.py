"""Hold a new ONNX file to a baseline (a previous file, or a previous ``--json`` report): one
verdict per rule, so CI shows which rule broke.

Rules: ``contract`` (inputs and outputs by name, dtype, shape), ``dynamic dims`` (a dim that
lost its dynamic name), ``op types`` (new ones not allowed with ``--allow-op``), ``opset``
(opset or IR version above ``--max-opset``, by default above the baseline's), ``drift``
(outputs on the same seeded inputs), ``node count`` and ``latency`` (growth beyond a threshold).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exportkit.diff.contract import compare_tensor
from exportkit.diff.numbers import make_feeds, run_file, session_feeds
from exportkit.errors import OnnxFileError, first_line
from exportkit.inputs.spec import InputSpec
from exportkit.summary.results import GraphSummary, TensorInfo
from exportkit.validate.compare import Tolerances, compare_arrays

__all__ = [
    "BaselineResult",
    "BaselineRule",
    "Fingerprint",
    "OutputPrint",
    "check_baseline",
    "fingerprint",
]

#: Values kept per output in a fingerprint: enough to see drift, small enough for a report.
SAMPLE = 64

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutputPrint:
    """One output on the seeded inputs: shape, dtype, statistics and its first values."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    mean: float
    std: float
    min: float
    max: float
    sample: tuple[float, ...]


@dataclass(frozen=True)
class Fingerprint:
    """What a baseline check needs of a file, kept in the ``--json`` report: its contract, op
    counts, and its outputs on seeded inputs drawn from its own input shapes (``inputs``)."""

    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    opsets: Mapping[str, int]
    ir_version: int
    op_histogram: Mapping[str, int]
    node_count: int
    seed: int
    input_lines: tuple[str, ...]
    values: tuple[OutputPrint, ...]


@dataclass(frozen=True)
class BaselineRule:
    """One rule's verdict; ``skipped`` rules (nothing to measure) pass."""

    rule: str
    passed: bool
    detail: str
    skipped: bool = False


@dataclass(frozen=True)
class BaselineResult:
    """Every rule checked against the baseline ``path``."""

    path: str
    rules: tuple[BaselineRule, ...]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.rules)


def fingerprint(
    path: str | os.PathLike[str], *, seed: int = 0, inputs: Sequence[InputSpec] = ()
) -> Fingerprint:
    """The file's fingerprint: contract, op counts, outputs on seeded inputs (onnxruntime).

    ``inputs`` (the export's own, in the pipeline) fix the shapes and value ranges; without
    them the file's input types are drawn at their declared sizes. A file onnxruntime cannot
    run on them gets no output values (a later drift rule then says so), never a crash.
    """
    import numpy as np

    from exportkit.diff import read

    s = read(path)
    feeds, lines = make_feeds(s, s, inputs, seed)
    try:
        outs = run_file(Path(path), feeds)
    except Exception as exc:  # onnxruntime raises its own exception types
        logger.warning("no output fingerprint of %s: %s", path, first_line(exc))
        outs = []
    values = []
    for info, out in zip(s.outputs, outs, strict=False):
        a = np.asarray(out)
        f = a.astype(np.float64).ravel()
        empty = not f.size
        values.append(
            OutputPrint(
                name=info.name,
                dtype=str(a.dtype),
                shape=tuple(int(d) for d in a.shape),
                mean=0.0 if empty else float(f.mean()),
                std=0.0 if empty else float(f.std()),
                min=0.0 if empty else float(f.min()),
                max=0.0 if empty else float(f.max()),
                sample=tuple(float(v) for v in f[:SAMPLE]),
            )
        )
    return Fingerprint(s.inputs, s.outputs, dict(s.opsets), s.ir_version, dict(s.op_histogram),
                       s.node_count, seed, lines, tuple(values))  # fmt: skip


def _tensor(d: Mapping[str, Any]) -> TensorInfo:
    shape = d.get("shape")
    return TensorInfo(d["name"], d.get("dtype"), None if shape is None else tuple(shape))


def _from_report(path: Path) -> Fingerprint:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        fp = doc["fingerprint"]
        values = tuple(
            OutputPrint(v["name"], v["dtype"], tuple(v["shape"]), v["mean"], v["std"], v["min"],
                        v["max"], tuple(v["sample"]))
            for v in fp["values"]
        )  # fmt: skip
        return Fingerprint(
            tuple(_tensor(t) for t in fp["inputs"]), tuple(_tensor(t) for t in fp["outputs"]),
            fp["opsets"], fp["ir_version"], fp["op_histogram"], fp["node_count"], fp["seed"],
            tuple(fp["input_lines"]), values,
        )  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise OnnxFileError(
            f"baseline {path} is not an exportkit --json report with a fingerprint "
            f"({type(exc).__name__}: {exc})",
            hint="pass the previous .onnx file, or a report written by `exportkit export --json`",
        ) from None


def _print_of(s: GraphSummary) -> Fingerprint:
    return Fingerprint(s.inputs, s.outputs, dict(s.opsets), s.ir_version, dict(s.op_histogram),
                       s.node_count, 0, (), ())  # fmt: skip


def _contract_rules(old: Fingerprint, new: GraphSummary) -> list[BaselineRule]:
    broken: list[str] = []
    lost: list[str] = []
    for kind, before, after in (("input", old.inputs, new.inputs),
                                ("output", old.outputs, new.outputs)):  # fmt: skip
        by_name = {t.name: t for t in after}
        for t in before:
            change = compare_tensor(t, by_name.get(t.name), kind)  # type: ignore[arg-type]
            if change.status == "removed":
                broken.append(f"{kind} {t.name} removed")
            for finding in change.findings:
                dynamic = "dynamic" in finding
                (lost if dynamic else broken).append(f"{kind} {t.name} {finding}")
        names = {t.name for t in before}
        broken += [f"{kind} {t.name} added" for t in after if t.name not in names]
    return [
        BaselineRule("contract", not broken, "; ".join(broken) or "same inputs and outputs"),
        BaselineRule("dynamic dims", not lost, "; ".join(lost) or "every dynamic dim kept"),
    ]


def _ops_rule(old: Fingerprint, new: GraphSummary, allow_ops: Sequence[str]) -> BaselineRule:
    new_ops = [op for op in new.op_histogram if op not in old.op_histogram]
    bad = [op for op in new_ops if op not in allow_ops]
    if bad:
        return BaselineRule("op types", False, f"new op types: {', '.join(bad)} "
                            f"(allow with --allow-op {bad[0]})")  # fmt: skip
    allowed = f"; allowed new: {', '.join(new_ops)}" if new_ops else ""
    return BaselineRule("op types", True, "no new op types" + allowed)


def _opset_rule(old: Fingerprint, new: GraphSummary, max_opset: int | None) -> BaselineRule:
    import onnx.helper

    opset = new.opsets.get("ai.onnx", 0)
    limit = max_opset if max_opset is not None else old.opsets.get("ai.onnx", opset)
    source = "--max-opset" if max_opset is not None else "the baseline's"
    try:
        ir_limit = onnx.helper.find_min_ir_version_for([onnx.helper.make_opsetid("", limit)])
    except (ValueError, KeyError):
        ir_limit = old.ir_version
    ir_limit = max(ir_limit, old.ir_version) if max_opset is None else ir_limit
    problems = []
    if opset > limit:
        problems.append(f"opset {opset} above {source} {limit}")
    if new.ir_version > ir_limit:
        problems.append(f"IR version {new.ir_version} above {ir_limit} ({source} opset {limit})")
    detail = "; ".join(problems) or f"opset {opset}, IR {new.ir_version} (limit opset {limit})"
    return BaselineRule("opset", not problems, detail)


def _growth_rule(rule: str, old: float, new: float, limit: float, unit: str) -> BaselineRule:
    growth = (new - old) / old if old else 0.0
    detail = f"{old:,.4g}{unit} -> {new:,.4g}{unit} ({growth:+.1%}, limit +{limit:.0%})"
    return BaselineRule(rule, growth <= limit, detail)


def _drift_rule(
    old: Fingerprint, new_path: Path, new: GraphSummary, tolerances: Tolerances, seed: int
) -> BaselineRule:
    import numpy as np

    if not old.values:
        return BaselineRule("drift", True, "the baseline has no output fingerprint", True)
    feeds, _ = make_feeds(new, new, [InputSpec.parse(s) for s in old.input_lines], seed)
    outs = run_file(new_path, feeds)
    bad = []
    for ref, out in zip(old.values, outs, strict=False):
        got = np.asarray(out).astype(np.float64).ravel()
        if tuple(np.shape(out)) != ref.shape:
            bad.append(f"{ref.name}: shape {tuple(np.shape(out))}, baseline {ref.shape}")
            continue
        check = compare_arrays(ref.name, np.asarray(ref.sample, dtype=ref.dtype),
                               got[: len(ref.sample)].astype(ref.dtype), tolerances)  # fmt: skip
        if not check.passed:
            bad.append(f"{ref.name}: first values differ by {check.max_abs:.3g}")
    detail = "; ".join(bad) or f"{len(old.values)} outputs within tolerance of the fingerprint"
    return BaselineRule("drift", not bad, detail)


def _latency(path: Path, feeds: Mapping[str, Any], repeat: int) -> float:
    from exportkit.validate.session import session

    sess = session(path)
    run_feeds = session_feeds(sess, feeds)
    sess.run(None, run_feeds)  # warm up
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        sess.run(None, run_feeds)
        best = min(best, time.perf_counter() - t0)
    return best


def check_baseline(
    path: str | os.PathLike[str],
    baseline: str | os.PathLike[str],
    *,
    tolerances: Tolerances | None = None,
    allow_ops: Sequence[str] = (),
    max_opset: int | None = None,
    max_node_growth: float = 0.10,
    max_latency_growth: float = 0.25,
    seed: int = 0,
    inputs: Sequence[InputSpec] = (),
) -> BaselineResult:
    """Check the ONNX file ``path`` against ``baseline``: an earlier ``.onnx`` file or the
    ``--json`` report of an earlier run (its fingerprint; latency is then not compared).

    ``inputs`` (the export's own, in the pipeline) are what both files run on against an
    ``.onnx`` baseline; a report baseline brings the inputs its fingerprint was made on.

    Latency is onnxruntime's best of 20 runs of each file, interleaved; growth counts when it
    is beyond ``max_latency_growth`` and 50 us.

    Raises:
        OnnxFileError: a file is missing or not ONNX, or the report has no fingerprint.
    """
    from exportkit.diff import read
    from exportkit.diff.numbers import compare_numbers

    tolerances = tolerances or Tolerances()
    new_path, base = Path(path), Path(baseline)
    new = read(new_path)
    from_report = base.suffix.lower() == ".json"
    old_summary = None if from_report else read(base)
    old = _from_report(base) if from_report else _print_of(old_summary)  # type: ignore[arg-type]
    ran = True  # both files ran on the same inputs (no latency to compare otherwise)
    rules = _contract_rules(old, new)
    rules += [_ops_rule(old, new, allow_ops), _opset_rule(old, new, max_opset)]
    if old_summary is not None:
        numbers = compare_numbers(
            old_summary, new, inputs=inputs, tolerances=tolerances, seed=seed, locate=True
        )
        worst = max((o.max_abs for o in numbers.outputs), default=0.0)
        where = f"; first differs in {numbers.first_module}" if numbers.first_module else ""
        found = [f"{o.name}: {o.findings[0]}" for o in numbers.outputs if o.findings]
        detail = numbers.error or "; ".join(found) or f"max abs diff {worst:.3g}"
        detail += f" on seeded inputs{where}"
        rules.append(BaselineRule("drift", numbers.passed, detail))
        ran = not numbers.error
    else:
        rules.append(_drift_rule(old, new_path, new, tolerances, old.seed))
    rules.append(_growth_rule("node count", old.node_count, new.node_count, max_node_growth, ""))
    if old_summary is None:
        rules.append(BaselineRule("latency", True, "not measured: the baseline is a report", True))
    elif not ran:
        rules.append(BaselineRule("latency", True, "not measured: the files did not run", True))
    else:
        feeds, _ = make_feeds(old_summary, new, inputs, seed)
        before = after = float("inf")
        for _ in range(2):  # interleaved: both files see the same machine load
            before = min(before, _latency(base, feeds, 10))
            after = min(after, _latency(new_path, feeds, 10))
        rule = _growth_rule("latency", before * 1e3, after * 1e3, max_latency_growth, " ms")
        if not rule.passed and after - before < 50e-6:
            rule = BaselineRule("latency", True, rule.detail + "; within 50 us")
        rules.append(rule)
    return BaselineResult(str(base), tuple(rules))
