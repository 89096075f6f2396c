"""Where an export first diverges: the first PyTorch module whose ONNX counterpart disagrees.

Eager module outputs are captured with forward hooks; each module's outputs in the ONNX graph are
found from dynamo's per-node metadata or TorchScript's scoped node names, exposed as extra graph
outputs of a temporary copy, and compared in the order PyTorch finished computing them.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from exportkit.validate.cases import Case, to_numpy
from exportkit.validate.compare import OutputCheck, Tolerances, compare_arrays
from exportkit.validate.scopes import NodeScope, node_scopes

if TYPE_CHECKING:
    import numpy as np
    import onnx
    from torch import nn

    from exportkit.validate.check import ValidationResult

__all__ = ["Divergence", "Location", "localize", "locate_exception"]

logger = logging.getLogger(__name__)

DivergenceKind = Literal["values", "onnxruntime error"]
_ORT_NODE = re.compile(r"Name:'([^']*)'")


@dataclass(frozen=True)
class Location:
    """A PyTorch module (``""`` is the model itself), its class, and a source line when known."""

    module: str
    cls: str
    source: str | None = None
    code: str | None = None

    def describe(self) -> str:
        name = self.module or "the model itself"
        where = f", {self.source}" if self.source else ""
        code = f" `{self.code}`" if self.code else ""
        return f"{name} ({self.cls}{where}){code}"


@dataclass(frozen=True)
class Divergence:
    """The first place the ONNX graph departs from eager PyTorch.

    ``kind`` is ``values`` (a module's output differs beyond tolerance while its inputs matched)
    or ``onnxruntime error`` (a node failed to run). ``check`` holds the diff of the diverging
    module output; ``onnx_values`` the graph values it was compared with; ``matched`` the
    modules compared before it that agreed.
    """

    kind: DivergenceKind
    trial: str
    location: Location
    detail: str
    check: OutputCheck | None = None
    onnx_node: str | None = None
    onnx_values: tuple[str, ...] = ()
    inputs_matched: bool | None = None
    matched: int = 0
    compared: int = 0
    unmapped: tuple[str, ...] = field(default=())


def _classname(module: nn.Module) -> str:
    return type(module).__qualname__


def _forward_source(module: nn.Module) -> str | None:
    forward = type(module).forward
    try:
        file = inspect.getsourcefile(forward)
        line = inspect.getsourcelines(forward)[1]
    except (OSError, TypeError):
        return None
    return f"{file}:{line}" if file else None


def _location(model: nn.Module, path: str, scope: NodeScope | None = None) -> Location:
    module = model.get_submodule(path) if path else model
    if scope is not None and scope.source:
        return Location(path, _classname(module), scope.source, scope.code)
    return Location(path, _classname(module), _forward_source(module))


def locate_exception(model: nn.Module, exc: BaseException) -> Location | None:
    """The module and user source line where an eager forward raised (innermost user frame)."""
    ids = {id(m): p for p, m in model.named_modules()}
    tb = exc.__traceback__
    best: Location | None = None
    while tb is not None:
        frame = tb.tb_frame
        owner = frame.f_locals.get("self")
        path = ids.get(id(owner)) if owner is not None else None
        file = frame.f_code.co_filename
        if path is not None and not any(m in file for m in ("/torch/", "/site-packages/")):
            try:
                code = inspect.getframeinfo(frame).code_context or [""]
            except (OSError, IndexError):
                code = [""]
            best = Location(
                path, _classname(model.get_submodule(path) if path else model),
                f"{file}:{tb.tb_lineno}", code[0].strip() or None,
            )  # fmt: skip
        tb = tb.tb_next
    return best


# ----------------------------------------------------------------------------------------------
# Eager side: every module call's inputs and outputs, in the order PyTorch finished them.


@dataclass
class _Call:
    path: str
    parent: int | None
    inputs: list[np.ndarray]
    outputs: list[np.ndarray] = field(default_factory=list)
    done: int = -1


def _tensors(value: Any) -> list[np.ndarray]:
    import torch
    from torch.utils._pytree import tree_leaves

    return [
        to_numpy(leaf.detach().clone())
        for leaf in tree_leaves(value)
        if isinstance(leaf, torch.Tensor)
    ]


@contextlib.contextmanager
def _recording(model: nn.Module) -> Iterator[list[_Call]]:
    calls: list[_Call] = []
    stack: list[int] = []
    counter = [0]
    handles = []

    def pre(path: str) -> Any:
        def hook(_m: Any, args: Any, kwargs: Any) -> None:
            calls.append(_Call(path, stack[-1] if stack else None, _tensors((args, kwargs))))
            stack.append(len(calls) - 1)

        return hook

    def post(_m: Any, _args: Any, _kwargs: Any, output: Any) -> None:
        index = stack.pop()
        calls[index].outputs = _tensors(output)
        calls[index].done = counter[0]
        counter[0] += 1

    for path, sub in model.named_modules():
        handles.append(sub.register_forward_pre_hook(pre(path), with_kwargs=True))
        handles.append(sub.register_forward_hook(post, with_kwargs=True))
    try:
        yield calls
    finally:
        for h in handles:
            h.remove()


def _eager_calls(model: nn.Module, case: Case) -> list[_Call]:
    import torch

    with _recording(model) as calls, torch.no_grad():
        model(**case.inputs.tensors)
    return calls


# ----------------------------------------------------------------------------------------------
# ONNX side: each module's boundary values, exposed as graph outputs of a temporary copy.


@dataclass(frozen=True)
class _Boundary:
    outputs: Mapping[str, tuple[str, ...]]  # module path -> values leaving its scope
    inputs: Mapping[str, tuple[str, ...]]  # module path -> values entering its scope
    producer: Mapping[str, int]  # value -> node index


def _within(path: str, scope: str) -> bool:
    return not scope or path == scope or path.startswith(scope + ".")


def _ancestors(path: str) -> list[str]:
    atoms = path.split(".") if path else []
    return ["", *(".".join(atoms[: i + 1]) for i in range(len(atoms)))]


def _boundaries(model: onnx.ModelProto, scopes: Sequence[NodeScope | None]) -> _Boundary:
    graph = model.graph
    constants = {t.name for t in graph.initializer}
    constants |= {o for n in graph.node if n.op_type == "Constant" for o in n.output}
    producer: dict[str, int] = {}
    consumers: dict[str, list[int]] = {}
    for i, node in enumerate(graph.node):
        for o in node.output:
            if o:
                producer[o] = i
        for v in node.input:
            if v and v not in constants:
                consumers.setdefault(v, []).append(i)
    graph_outputs = {o.name for o in graph.output}
    outs: dict[str, list[str]] = {}
    ins: dict[str, list[str]] = {}
    for o in graph_outputs:
        consumers.setdefault(o, [])
    for value, users in consumers.items():
        made = producer.get(value)
        src = scopes[made] if made is not None else None
        user_scopes = [scopes[u] for u in users]
        if src is not None and value not in constants:
            for anc in _ancestors(src.module):
                leaves = value in graph_outputs or any(
                    s is None or not _within(s.module, anc) for s in user_scopes
                )
                if leaves and value not in outs.setdefault(anc, []):
                    outs[anc].append(value)
        for s in user_scopes:
            if s is None:
                continue
            for anc in _ancestors(s.module):
                entering = src is None or not _within(src.module, anc)
                if entering and value not in ins.setdefault(anc, []):
                    ins[anc].append(value)
    return _Boundary(
        {k: tuple(v) for k, v in outs.items()}, {k: tuple(v) for k, v in ins.items()}, producer
    )


@contextlib.contextmanager
def _debug_session(path: Path, model: onnx.ModelProto, values: Sequence[str]) -> Iterator[Any]:
    """A session on a copy of ``model`` that also outputs ``values``; beside ``path`` so that
    external data resolves, else in a temporary folder with the weights loaded."""
    import onnx

    from exportkit.validate.check import session

    have = {o.name for o in model.graph.output}
    for v in values:
        if v not in have:
            model.graph.output.append(onnx.ValueInfoProto(name=v))
            have.add(v)
    try:
        fd, name = tempfile.mkstemp(
            prefix=f".{path.stem}-localize-", suffix=".onnx", dir=path.parent
        )
    except OSError:
        with tempfile.TemporaryDirectory() as tmp:
            onnx.load_external_data_for_model(model, str(path.parent))
            target = Path(tmp) / "debug.onnx"
            onnx.save_model(model, str(target), save_as_external_data=True, location="debug.data")
            yield session(target)
        return
    target = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(model.SerializeToString())
        yield session(target)
    finally:
        target.unlink(missing_ok=True)


# ----------------------------------------------------------------------------------------------
# Matching: the first module call whose outputs differ while its inputs agree.


def _best(
    label: str,
    expected: np.ndarray,
    names: Sequence[str],
    actual: Mapping[str, np.ndarray],
    tolerances: Tolerances,
) -> tuple[OutputCheck, str] | None:
    """The closest same-shaped ONNX value to ``expected``; None when none has its shape."""
    best: tuple[OutputCheck, str] | None = None
    for name in names:
        value = actual.get(name)
        if value is None or value.shape != expected.shape:
            continue
        check = compare_arrays(label, expected, value, tolerances)
        key = (not check.passed, check.max_abs)
        if best is None or key < (not best[0].passed, best[0].max_abs):
            best = (check, name)
    return best


def _inputs_agree(
    call: _Call, names: Sequence[str], actual: Mapping[str, np.ndarray], tol: Tolerances
) -> tuple[bool | None, str | None]:
    """Whether the call's inputs match their ONNX values, and the first that does not."""
    verdicts = [_best("input", e, names, actual, tol) for e in call.inputs]
    known = [v for v in verdicts if v is not None]
    bad = next((v[1] for v in known if not v[0].passed), None)
    return (bad is None if known else None), bad


def _value_divergence(
    model: nn.Module,
    path: Path,
    case: Case,
    tolerances: Tolerances,
) -> Divergence | None:
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    scopes = node_scopes(proto, [p for p, _ in model.named_modules()])
    if not any(s is not None for s in scopes):
        logger.info("no module scopes in %s: cannot localize", path.name)
        return None
    bounds = _boundaries(proto, scopes)
    wanted = sorted({v for vs in (*bounds.outputs.values(), *bounds.inputs.values()) for v in vs})
    from exportkit.validate.check import feeds_for

    with _debug_session(path, proto, wanted) as sess:
        feeds = feeds_for(sess, case.inputs)
        if isinstance(feeds, str):
            return None
        names = [o.name for o in sess.get_outputs()]
        actual = dict(zip(names, sess.run(None, feeds)))
    recorded = _eager_calls(model, case)
    calls = sorted((c for c in recorded if c.done >= 0), key=lambda c: c.done)
    # Intermediates are judged with the global tolerances (per-output ones name model outputs).
    tol = Tolerances(tolerances.atol, tolerances.rtol)
    matched = compared = 0
    unmapped: list[str] = []
    for call in calls:
        candidates = bounds.outputs.get(call.path, ())
        verdicts = [_best(call.path, e, candidates, actual, tol) for e in call.outputs]
        known = [v for v in verdicts if v is not None]
        if not known:
            if call.path not in unmapped:
                unmapped.append(call.path)
            continue
        compared += 1
        bad = next((v for v in known if not v[0].passed), None)
        if bad is None:
            matched += 1
            continue
        inputs_ok, bad_input = _inputs_agree(call, bounds.inputs.get(call.path, ()), actual, tol)
        culprit = entry = call.path
        parent = call.parent if inputs_ok is False else None
        while parent is not None:
            # Its inputs already differ: the drift comes from a caller's own code before it,
            # the innermost caller whose own inputs still matched.
            caller = recorded[parent]
            culprit = caller.path
            agree, first = _inputs_agree(caller, bounds.inputs.get(caller.path, ()), actual, tol)
            if agree is False:
                entry, bad_input = caller.path, first
            parent = caller.parent if agree is False else None
        check, value = bad
        node = proto.graph.node[bounds.producer[value]] if value in bounds.producer else None
        # The node that made the first differing input, when the caller owns it, has the line.
        made = bounds.producer.get(bad_input) if culprit != call.path and bad_input else None
        own = scopes[made] if made is not None else None
        loc = _location(model, culprit, own if own is not None and own.module == culprit else None)
        return Divergence(
            kind="values",
            trial=case.label,
            location=loc,
            detail=_values_detail(loc, entry, culprit, check, inputs_ok),
            check=check,
            onnx_node=f"{node.name} ({node.op_type})" if node is not None else None,
            onnx_values=(value,),
            inputs_matched=inputs_ok,
            matched=matched,
            compared=compared,
            unmapped=tuple(unmapped),
        )
    return None


def _values_detail(
    loc: Location, diverged: str, culprit: str, check: OutputCheck, inputs_ok: bool | None
) -> str:
    diff = (
        f"max abs diff {check.max_abs:.3g} (atol {check.atol:g}, rtol {check.rtol:g}; "
        f"{check.frac_out:.1%} of elements out of tolerance)"
    )
    if culprit != diverged:
        return (
            f"the inputs of {diverged or 'the model'} already differ: the drift comes from the "
            f"own code of {loc.module or 'the model'} before that call; {diff}"
        )
    inputs = "while its inputs matched" if inputs_ok else "(its inputs could not be compared)"
    return f"its output differs {inputs}: {diff}"


def _runtime_divergence(model: nn.Module, path: Path, label: str, error: str) -> Divergence | None:
    """onnxruntime names the node that failed: map it to its module and source line."""
    import onnx

    found = _ORT_NODE.search(error)
    if found is None:
        return None
    proto = onnx.load(str(path), load_external_data=False)
    index = next((i for i, n in enumerate(proto.graph.node) if n.name == found.group(1)), None)
    if index is None:
        return None
    node = proto.graph.node[index]
    scope = node_scopes(proto, [p for p, _ in model.named_modules()])[index]
    if scope is None:
        return None
    loc = _location(model, scope.module, scope)
    return Divergence(
        kind="onnxruntime error",
        trial=label,
        location=loc,
        detail=f"onnxruntime failed in node {node.name} ({node.op_type}) of {loc.describe()}",
        onnx_node=f"{node.name} ({node.op_type})",
    )


def localize(
    model: nn.Module,
    path: str | Path,
    cases: Sequence[Case],
    result: ValidationResult,
    tolerances: Tolerances | None = None,
) -> Divergence | None:
    """Name the first PyTorch module where the ONNX file at ``path`` departs from ``model``.

    Uses the first failed trial whose outputs could be compared; else the first where
    onnxruntime failed on a node. Localize on the file as exported: simplifiers drop the
    metadata that ties nodes to modules.

    Args:
        model: the eager model (the ground truth).
        path: the ONNX file that was validated.
        cases: the cases it was validated on.
        result: that validation's result.
        tolerances: as used for the validation.

    Returns:
        The divergence, or None when every check passed or no module could be tied to the graph.
    """
    path = Path(path)
    tolerances = tolerances or Tolerances()
    by_label = {c.label: c for c in cases}
    failed = [t for t in result.trials if not t.passed]
    for trial in failed:
        case = by_label.get(trial.label)
        if case is not None and trial.error is None and case.expected:
            found = _value_divergence(model, path, case, tolerances)
            if found is not None:
                return found
    for trial in failed:
        if trial.error and trial.error.startswith("onnxruntime failed"):
            found = _runtime_divergence(model, path, trial.label, trial.error)
            if found is not None:
                return found
    return None
