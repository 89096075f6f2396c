"""Both files on the same seeded inputs (onnxruntime, CPU): outputs compared as validation does,
and the first module whose values differ when both files carry the module hierarchy."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from exportkit.diff.results import NumbersDiff
from exportkit.errors import ExportkitError, InputSpecError, first_line
from exportkit.inputs.spec import DTYPES, InputSpec, TensorSpec
from exportkit.onnxfile import copy_beside
from exportkit.summary.results import GraphSummary, TensorInfo
from exportkit.validate.compare import DEFAULT_TOLERANCES, OutputCheck, Tolerances, compare_arrays

if TYPE_CHECKING:
    import numpy as np

__all__ = ["DEFAULT_DIM", "compare_numbers", "make_feeds", "run_file", "session_feeds"]

logger = logging.getLogger(__name__)

#: Size given to a symbolic dim that neither file fixes (>= 2: size 1 hides broadcasting bugs).
DEFAULT_DIM = 2


def _specs(a: GraphSummary, b: GraphSummary) -> dict[str, TensorSpec]:
    """A TensorSpec per input of A; a dim symbolic in A but fixed in B takes B's size."""
    b_inputs: dict[str, TensorInfo] = {t.name: t for t in b.inputs}
    if len(b.inputs) == len(a.inputs) and not all(t.name in b_inputs for t in a.inputs):
        b_inputs = {ta.name: tb for ta, tb in zip(a.inputs, b.inputs, strict=True)}
    specs = {}
    for t in a.inputs:
        other = b_inputs.get(t.name)
        shape = []
        for axis, d in enumerate(t.shape or ()):
            if isinstance(d, int):
                shape.append(d)
                continue
            od = other.shape[axis] if other and other.shape and len(other.shape) > axis else None
            shape.append(od if isinstance(od, int) else DEFAULT_DIM)
        dtype = t.dtype if t.dtype in DTYPES else "float32"
        specs[t.name] = TensorSpec(tuple(shape), dtype)
    return specs


def make_feeds(
    a: GraphSummary, b: GraphSummary, inputs: Sequence[InputSpec], seed: int
) -> tuple[dict[str, np.ndarray], tuple[str, ...]]:
    """Seeded inputs for A's graph inputs (``--input`` specs replace the drawn ones), and the
    ``--input`` lines that rebuild them.

    Raises:
        InputSpecError: an ``--input`` names no input of A, or its data file cannot be read.
    """
    from exportkit.inputs.data import load_data
    from exportkit.inputs.examples import draw
    from exportkit.validate.cases import to_numpy
    from exportkit.validate.fit import match_names

    specs = _specs(a, b)
    given: dict[str, Any] = {}
    for spec in inputs:
        if spec.file is not None:
            given.update(load_data(spec.file, spec.name))
        elif spec.tensor is not None:
            # The file's spelling of the name (past_key_values.0.key for past_key_values_0_key).
            name = (match_names([spec.name], list(specs)) or {}).get(spec.name, spec.name)
            if name not in specs:
                raise InputSpecError(
                    f"--input {spec.name!r}: {Path(a.path).name} has no input of that name; "
                    f"its inputs: {', '.join(specs) or 'none'}",
                    hint="name one of the file's inputs, e.g. "
                    + (f"--input {next(iter(specs))}:2x3" if specs else "--input x:2x3"),
                )
            specs[name] = spec.tensor
    for name in given:
        if name not in specs:
            raise InputSpecError(
                f"input data {name!r} names no input of {Path(a.path).name}; "
                f"its inputs: {', '.join(specs) or 'none'}",
                hint="name the arrays after the file's inputs",
            )
    drawn = draw({n: s for n, s in specs.items() if n not in given}, seed)
    feeds = {n: to_numpy(given[n] if n in given else drawn[n]) for n in specs}
    lines = tuple(f"{n}=<data>" if n in given else specs[n].describe(n) for n in specs)
    return feeds, lines


def session_feeds(sess: Any, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Feeds by name, else by position; cast to the dtype the file declares (float16 files)."""
    import numpy as np

    wanted = sess.get_inputs()
    values = [feeds[w.name] for w in wanted] if all(w.name in feeds for w in wanted) else None
    if values is None:
        if len(wanted) != len(feeds):
            raise ValueError(f"the file wants inputs {', '.join(w.name for w in wanted)}")
        values = list(feeds.values())
    out = {}
    for w, value in zip(wanted, values, strict=True):
        kind = w.type.removeprefix("tensor(").removesuffix(")")
        target = {"float": "float32", "double": "float64", "float16": "float16"}.get(kind, kind)
        if target in DTYPES and target != "bfloat16" and str(value.dtype) != target:
            value = value.astype(np.dtype(target))
        out[w.name] = value
    return out


def run_file(path: Path, feeds: Mapping[str, np.ndarray], extra: Sequence[str] = ()) -> list[Any]:
    """The file's outputs on ``feeds`` (onnxruntime, CPU), then the values ``extra``."""
    from exportkit.validate.session import session

    with _copy_with_outputs(path, extra) as target:
        sess = session(target)
        return list(sess.run(None, session_feeds(sess, feeds)))


@contextlib.contextmanager
def _copy_with_outputs(path: Path, extra: Sequence[str]) -> Iterator[Path]:
    """``path`` itself, or a temporary copy beside it (so external data resolves) that also
    outputs the values ``extra``."""
    if not extra:
        yield path
        return
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    have = {o.name for o in model.graph.output}
    for name in extra:
        if name not in have:
            model.graph.output.append(onnx.ValueInfoProto(name=name))
            have.add(name)
    with copy_beside(path, model, "diff") as target:
        yield target


def _check(name: str, a: np.ndarray, b: np.ndarray, tolerances: Tolerances) -> OutputCheck:
    """A (expected) vs B, with the tolerance of the coarser dtype when the two differ."""
    if a.dtype != b.dtype:
        coarse = max((str(a.dtype), str(b.dtype)),
                     key=lambda d: DEFAULT_TOLERANCES.get(d, (0.0, 0.0))[0])  # fmt: skip
        a = a.astype(coarse)
    return compare_arrays(name, a, b, tolerances)


def compare_numbers(
    a: GraphSummary,
    b: GraphSummary,
    *,
    inputs: Sequence[InputSpec] = (),
    tolerances: Tolerances | None = None,
    seed: int = 0,
    locate: bool = True,
) -> NumbersDiff:
    """Run A and B on the same inputs and compare B's outputs with A's (in output order).

    Raises:
        InputSpecError: an ``--input`` that fits no input of A.
    """
    tolerances = tolerances or Tolerances()
    feeds, lines = make_feeds(a, b, inputs, seed)
    outs: list[list[Any]] = []
    for label, summary in (("A", a), ("B", b)):
        try:
            outs.append(run_file(Path(summary.path), feeds))
        except Exception as exc:  # onnxruntime raises its own types; a finding, not a crash
            text = exc.message if isinstance(exc, ExportkitError) else first_line(exc)
            return NumbersDiff(lines, (), f"onnxruntime cannot run {label}: {text}")
    out_a, out_b = outs
    if len(out_a) != len(out_b):
        return NumbersDiff(lines, (), f"A has {len(out_a)} outputs, B {len(out_b)}")
    names = [t.name for t in a.outputs]
    checks = tuple(_check(n, x, y, tolerances) for n, x, y in zip(names, out_a, out_b, strict=True))
    result = NumbersDiff(lines, checks)
    if result.passed or not locate or "none" in (a.hierarchy, b.hierarchy):
        return result
    try:
        return _locate(a, b, feeds, tolerances, result)
    except Exception as exc:  # localization is best effort: the verdict stands without it
        logger.info("cannot find the first module that differs: %s", exc)
        return result


def _locate(
    a: GraphSummary,
    b: GraphSummary,
    feeds: Mapping[str, np.ndarray],
    tolerances: Tolerances,
    result: NumbersDiff,
) -> NumbersDiff:
    """The first value (in A's node order) leaving a module of both files that differs."""
    from dataclasses import replace

    b_modules = {m.path: m for m in b.modules}
    pairs: dict[str, str] = {}  # value in A -> value in B
    owners: dict[str, tuple[int, str]] = {}  # value in A -> (depth, innermost module)
    for m in a.modules:
        other = b_modules.get(m.path)
        if not m.path or other is None or len(other.outputs) != len(m.outputs):
            continue
        for ta, tb in zip(m.outputs, other.outputs, strict=True):
            if ta.shape != tb.shape:
                continue
            pairs.setdefault(ta.name, tb.name)
            if ta.name not in owners or owners[ta.name][0] < m.depth:
                owners[ta.name] = (m.depth, m.path)
    if not pairs:
        return result
    order = {o.name: i for i, n in enumerate(a.nodes) for o in n.outputs}
    names_a = sorted(pairs, key=lambda v: order.get(v, len(order)))
    names_b = [pairs[v] for v in names_a]
    got_a = dict(zip(_extra(a, names_a), run_file(Path(a.path), feeds, names_a), strict=True))
    got_b = dict(zip(_extra(b, names_b), run_file(Path(b.path), feeds, names_b), strict=True))
    for va, vb in zip(names_a, names_b, strict=True):
        x, y = got_a.get(va), got_b.get(vb)
        if x is None or y is None or x.shape != y.shape:
            continue
        check = _check(va, x, y, tolerances)
        if not check.passed:
            return replace(result, first_module=owners[va][1], first_value=va, first_check=check)
    return result


def _extra(summary: GraphSummary, names: Sequence[str]) -> list[str]:
    """The outputs of a copy that also outputs ``names``: the graph's, then the new ones."""
    out = [t.name for t in summary.outputs]
    have = set(out)
    for n in names:
        if n not in have:
            have.add(n)
            out.append(n)
    return out
