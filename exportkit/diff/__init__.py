"""Compare two ONNX files by PyTorch module: contract, structure, weights and numbers.

``diff`` is the stage's verb. It reads both files with the summary's graph-reading core, so the
module tree, params and MACs are the ones ``exportkit summary`` shows.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
import types
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

from exportkit.diff.contract import compare_contract
from exportkit.diff.numbers import compare_numbers
from exportkit.diff.results import (
    ContractDiff,
    DiffResult,
    ModuleChange,
    NumbersDiff,
    StructureDiff,
    TensorChange,
    WeightChange,
    WeightsDiff,
)
from exportkit.diff.structure import compare_structure
from exportkit.diff.weights import compare_weights
from exportkit.inputs.spec import InputSpec
from exportkit.summary.build import build_summary
from exportkit.summary.graph import load_model
from exportkit.summary.results import GraphSummary
from exportkit.validate.compare import Tolerances

__all__ = [
    "ContractDiff",
    "DiffResult",
    "ModuleChange",
    "NumbersDiff",
    "StructureDiff",
    "TensorChange",
    "WeightChange",
    "WeightsDiff",
    "diff",
    "read",
]


def read(
    path: str | os.PathLike[str],
    *,
    module_outputs: bool = True,
    dims: Mapping[str, int] | None = None,
) -> GraphSummary:
    """One file's summary as the diff reads it: the protobuf only, never the weight data.

    ``module_outputs=False``: every ``ModuleInfo.outputs`` left empty (only the numbers read
    them, to find the first module whose values differ). ``dims`` binds symbolic dims, as the
    summary's ``--dim`` does, so MACs that depend on them are counted.

    Raises:
        OnnxFileError: the file is missing, not ONNX, truncated, or misses external data.
    """
    with _gc_paused():
        loaded = load_model(path, check_text=False)
        return build_summary(loaded, dims, module_outputs=module_outputs)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """The cyclic garbage collector paused: two summaries hold a few objects per node and no
    cycles, and each collection would walk all of them again (see summarize())."""
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def _unwrap(side: GraphSummary, other: GraphSummary) -> GraphSummary:
    """``side`` re-rooted at its only top-level module when that module is a wrapper the other
    file lacks (exportkit's TorchScript path calls the model as ``model``: ``model.fc`` there is
    ``fc`` in a dynamo file), so modules and weights match by path."""
    root = side.modules[0] if side.modules else None
    if root is None or len(root.children) != 1:
        return side
    wrapper = root.children[0]
    known = {m.path for m in other.modules}
    prefix = wrapper + "."
    inner = {m.path[len(prefix) :] for m in side.modules if m.path.startswith(prefix)}
    if wrapper in known or not inner & known:
        return side

    def strip(path: str | None) -> str | None:
        if path is None or path == "" or path == wrapper:
            return "" if path is not None else None
        return path[len(prefix) :] if path.startswith(prefix) else path

    mods = {m.path: m for m in side.modules}
    inside = mods[wrapper]
    modules = [replace(root, class_name=inside.class_name or root.class_name,
                       children=inside.children, nodes=tuple(sorted(root.nodes + inside.nodes)))]  # fmt: skip
    modules[0] = replace(modules[0], children=tuple(strip(c) or "" for c in inside.children))
    for m in side.modules:
        if m.path not in ("", wrapper):
            modules.append(replace(m, path=strip(m.path) or "", parent=strip(m.parent),
                                   depth=m.depth - 1,
                                   children=tuple(strip(c) or "" for c in m.children)))  # fmt: skip
    nodes = tuple(replace(n, module=strip(n.module) or "") for n in side.nodes)
    return replace(side, modules=tuple(modules), nodes=nodes)


def diff(
    a: str | os.PathLike[str],
    b: str | os.PathLike[str],
    *,
    inputs: Sequence[InputSpec | str] | None = None,
    tolerances: Tolerances | None = None,
    numbers: bool = True,
    weights: bool = True,
    seed: int = 0,
    dims: Mapping[str, int] | None = None,
) -> DiffResult:
    """Compare ONNX file ``b`` with ``a`` (the reference).

    Args:
        a: the reference file (for example the previous release).
        b: the file compared with it.
        inputs: ``--input`` specs (``x:2x3x32x32``, ``ids:2x16:int64:[0,100)``, ``x=data.npy``)
            for the numbers; other inputs are drawn from the files' own shapes and dtypes, with
            symbolic dims set to 2 unless one file fixes them.
        tolerances: atol/rtol as validation takes them (dtype-aware defaults when None).
        numbers: run both files on onnxruntime and compare outputs (and find the first module
            whose values differ).
        weights: compare weight values. Without ``numbers`` and ``weights`` the external
            weight data of either file is never read.
        seed: seed of the drawn inputs (the same draws ``export`` makes with this seed).
        dims: values for symbolic dims (``{"batch": 1}``) so the modules' MACs that depend on
            them are counted; unbound, such MACs are unknown and ``structure.unbound`` names
            the dims.

    Returns:
        A DiffResult; ``equivalent`` is the verdict (same contract, same structure, outputs
        within tolerance).

    Raises:
        OnnxFileError: a file is missing, not ONNX, or misses its external data.
        InputSpecError: an ``--input`` does not parse or fits no input of ``a``.
    """
    with _gc_paused():
        return _diff(a, b, inputs, tolerances, numbers, weights, seed, dims)


def _diff(
    a: str | os.PathLike[str],
    b: str | os.PathLike[str],
    inputs: Sequence[InputSpec | str] | None,
    tolerances: Tolerances | None,
    numbers: bool,
    weights: bool,
    seed: int,
    dims: Mapping[str, int] | None = None,
) -> DiffResult:
    specs = [InputSpec.parse(s) if isinstance(s, str) else s for s in inputs or ()]
    sa = read(a, module_outputs=numbers, dims=dims)
    sb = read(b, module_outputs=numbers, dims=dims)
    sa, sb = _unwrap(sa, sb), _unwrap(sb, sa)
    contract = compare_contract(sa, sb)
    structure = compare_structure(sa, sb)
    weights_diff = None
    if weights:
        weights_diff, changed = compare_weights(a, b, sa, sb)
        modules = tuple(
            replace(m, weights_changed=changed[m.path]) if m.path in changed else m
            for m in structure.modules
        )
        structure = replace(structure, modules=modules)
    numbers_diff = None
    if numbers:
        numbers_diff = compare_numbers(sa, sb, inputs=specs, tolerances=tolerances, seed=seed)
    return DiffResult(str(a), str(b), contract, structure, weights_diff, numbers_diff)


class _Verb(types.ModuleType):
    """``exportkit.diff`` is both this package and the public verb: importing the package makes
    it the ``exportkit.diff`` attribute, so the package calls like the verb."""

    def __call__(self, *args: Any, **kwargs: Any) -> DiffResult:
        return diff(*args, **kwargs)


sys.modules[__name__].__class__ = _Verb
