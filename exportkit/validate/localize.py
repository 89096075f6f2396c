"""Where an export first diverges: the first PyTorch module whose ONNX counterpart disagrees.

Eager module outputs are captured with forward hooks; each module's outputs in the ONNX graph are
found from dynamo's per-node metadata or TorchScript's scoped node names, exposed as extra graph
outputs of a temporary copy, and compared in the order PyTorch finished computing them.
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from exportkit.diagnose import Location, classname, forward_source, is_user_file
from exportkit.validate.cases import Case, to_numpy
from exportkit.validate.compare import OutputCheck, Tolerances
from exportkit.validate.eager import eager_calls
from exportkit.validate.matching import Blame, Matcher, export_shapes
from exportkit.validate.probe import Boundary, boundaries, descendants, run_probe, static_shapes
from exportkit.validate.results import Divergence, RunFailure, ValidationResult
from exportkit.validate.scopes import NodeScope, node_scopes

if TYPE_CHECKING:
    import onnx
    from torch import nn

__all__ = ["Divergence", "localize"]

logger = logging.getLogger(__name__)


def _location(
    model: nn.Module,
    path: str,
    scope: NodeScope | None = None,
    scopes: Sequence[NodeScope | None] = (),
) -> Location:
    """The module at ``path``; its source line from ``scope``, else where its forward is
    defined, or, for a library class (``nn.Linear``), the user's line that calls it."""
    module = model.get_submodule(path) if path else model
    if scope is not None and scope.source:
        return Location(path, classname(module), scope.source, scope.code)
    source = forward_source(module)
    if source is None or not is_user_file(source):
        call = next((s for s in scopes if s is not None and s.module == path and s.source), None)
        if call is not None and call.source:
            return Location(path, classname(module), call.source, call.code)
    return Location(path, classname(module), source)


def _own_line(
    blame: Blame, bounds: Boundary, scopes: Sequence[NodeScope | None]
) -> NodeScope | None:
    """The culprit's own node that made the first differing input (its source line, if known)."""
    if blame.culprit == blame.entry or blame.bad_input is None:
        return None
    made = bounds.producer.get(blame.bad_input[1])
    own = scopes[made] if made is not None else None
    return own if own is not None and own.module == blame.culprit else None


def _divergence(
    model: nn.Module,
    path: Path,
    case: Case,
    at_export: Case,
    tolerances: Tolerances,
    failure: RunFailure | None = None,
) -> Divergence | None:
    """The first module call whose outputs differ while its inputs match; ``unknown`` when no
    module can be blamed on values that compare soundly, None when nothing could be compared.

    With ``failure`` (onnxruntime could not run a node on ``case``), that node and all it feeds
    are left out, and the module owning it is judged by its inputs.
    """
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    scopes = node_scopes(proto, [p for p, _ in model.named_modules()])
    if not any(s is not None for s in scopes):
        logger.info("no module scopes in %s: cannot localize", path.name)
        return None
    bounds = boundaries(proto, scopes)
    failing = failure.node if failure is not None else None
    index = next((i for i, n in enumerate(proto.graph.node) if n.name == failing), None)
    if failing is not None and index is None:
        return None
    node = proto.graph.node[index] if index is not None else None
    failing_scope = scopes[index] if index is not None else None
    failing_text = f"{node.name} ({node.op_type})" if node is not None else ""
    why = (failure.status or failure.message) if failure is not None else ""
    drop = descendants(proto, index) if index is not None else set()
    recorded = eager_calls(model, case)
    reference = recorded if at_export is case else eager_calls(model, at_export)
    order = sorted(
        (i for i, c in enumerate(recorded) if c.done >= 0), key=lambda i: recorded[i].done
    )
    # A module called more than once (an LSTM cell stepped in a loop) shares one scope: what
    # one call hands the next stays inside it, so some of its values have no ONNX counterpart.
    # Such a call diverges only when none of its outputs (inputs) match.
    counts = Counter(recorded[i].path for i in order)
    actual = run_probe(path, proto, bounds, case, drop)
    if actual is None:
        return None
    # Intermediates are judged with the global tolerances (per-output ones name model outputs).
    match = Matcher(
        actual,
        bounds,
        recorded,
        Tolerances(tolerances.atol, tolerances.rtol),
        {p for p, n in counts.items() if n > 1},
        export_shapes(recorded, reference),
        functools.cache(lambda: static_shapes(proto)),
        order,
    )
    matched = compared = 0
    unmapped: list[str] = []
    for i in order:
        call = recorded[i]
        known = match.outputs(i)
        if not known and failing_scope is not None and call.path == failing_scope.module:
            blame = match.blame(i)
            own = _own_line(blame, bounds, scopes)
            if blame.culprit == call.path:
                own = failing_scope
            loc = _location(model, blame.culprit, own, scopes)
            detail = _failure_detail(loc, blame, failing_text, why)
            return Divergence(
                kind="onnxruntime error",
                trial=case.label,
                location=loc,
                detail=detail,
                check=blame.bad_input[0] if blame.bad_input else None,
                onnx_node=node.name if node is not None else None,
                onnx_op=node.op_type if node is not None else None,
                onnx_values=(blame.bad_input[1],) if blame.bad_input else (),
                inputs_matched=blame.inputs_ok,
                matched=matched,
                compared=compared,
                unmapped=tuple(unmapped),
            )
        if not known:
            if call.path not in unmapped:
                unmapped.append(call.path)
            continue
        compared += 1
        bad = match.first_bad(known, call.path)
        if bad is None:
            matched += 1
            continue
        blame = match.blame(i)
        # Blamed on a caller's own code: the value it made that already differs says most.
        check, value = blame.bad_input if blame.culprit != call.path and blame.bad_input else bad
        made = bounds.producer.get(value)
        out_node = proto.graph.node[made] if made is not None else None
        loc = _location(model, blame.culprit, _own_line(blame, bounds, scopes), scopes)
        detail = _values_detail(loc, blame, call.path, check)
        stale = _stale_weights(model, blame.culprit, proto, path.parent)
        if blame.culprit == call.path and stale:
            detail += f"; its weights in the file differ from the model's ({stale})"
        return Divergence(
            kind="values",
            trial=case.label,
            location=loc,
            detail=detail,
            check=check,
            onnx_node=out_node.name if out_node is not None else None,
            onnx_op=out_node.op_type if out_node is not None else None,
            onnx_values=(value,),
            inputs_matched=blame.inputs_ok,
            matched=matched,
            compared=compared,
            unmapped=tuple(unmapped),
        )
    if index is not None and failing_scope is not None:
        # No module call owns the failing node's outputs: name the node's module and line.
        loc = _location(model, failing_scope.module, failing_scope)
        return Divergence(
            kind="onnxruntime error",
            trial=case.label,
            location=loc,
            detail=f"onnxruntime failed in node {failing_text}: {why}",
            onnx_node=node.name if node is not None else None,
            onnx_op=node.op_type if node is not None else None,
            matched=matched,
            compared=compared,
            unmapped=tuple(unmapped),
        )
    return Divergence(
        kind="unknown",
        trial=case.label,
        location=None,
        detail=_unknown_detail(match, compared, unmapped),
        matched=matched,
        compared=compared,
        unmapped=tuple(unmapped),
    )


def _unknown_detail(match: Matcher, compared: int, unmapped: Sequence[str]) -> str:
    """Why no module is blamed: values that differ only at their own rounding scale, values
    that cannot be compared (another shape or dtype), or no counterpart at all."""
    reasons = []
    if match.at_scale:
        shown = ", ".join(match.at_scale[:3])
        reasons.append(
            f"the values of {len(match.at_scale)} module(s) ({shown}) differ beyond atol at some "
            f"elements but by less than rtol {match.rtol:g} of their own magnitude: "
            "rounding on large values, not a faulty module"
        )
    if match.unsound:
        reasons.append(
            "some module tensors have no ONNX value of the same shape and dtype to compare "
            f"with ({'; '.join(match.unsound[:2])})"
        )
    if not reasons:
        reasons.append(f"all {compared} module outputs compared match")
    if unmapped:
        reasons.append(f"{len(unmapped)} module(s) have no ONNX counterpart")
    return "no module can be blamed: " + "; ".join(reasons)


def _stale_weights(model: nn.Module, path: str, proto: onnx.ModelProto, folder: Path) -> str | None:
    """Whether the file holds other values than the module's own parameters (same names), as
    when a file was exported from other weights; reads only those initializers."""
    import numpy as np
    from onnx import numpy_helper
    from onnx.external_data_helper import load_external_data_for_tensor, uses_external_data

    module = model.get_submodule(path) if path else model
    params = {
        f"{path}.{name}" if path else name: p for name, p in module.named_parameters(recurse=False)
    }
    for tensor in proto.graph.initializer:
        param = params.get(tensor.name)
        if param is None:
            continue
        if uses_external_data(tensor):
            tensor = type(tensor).FromString(tensor.SerializeToString())
            load_external_data_for_tensor(tensor, str(folder))
        stored = numpy_helper.to_array(tensor)
        mine = to_numpy(param.detach())
        if stored.shape == mine.shape and not np.allclose(stored, mine, rtol=1e-5, atol=1e-7):
            return f"{tensor.name}: max abs diff {float(np.abs(stored - mine).max()):.3g}"
    return None


def _diff_text(check: OutputCheck) -> str:
    if check.actual_shape is not None:
        return check.findings[0]
    return (
        f"max abs diff {check.max_abs:.3g} on values up to {check.magnitude:.3g} (atol "
        f"{check.atol:g}, rtol {check.rtol:g}; {check.frac_out:.1%} of elements out of tolerance)"
    )


def _failure_detail(loc: Location, blame: Blame, node: str, why: str) -> str:
    if blame.culprit != blame.entry and blame.bad_input is not None:
        return (
            f"onnxruntime fails in {node} ({why}) because the inputs of "
            f"{blame.entry or 'the model'} already differ: {_diff_text(blame.bad_input[0])}; "
            f"the fault is in the own code of {loc.module or 'the model'} before that call"
        )
    inputs = "while its inputs matched" if blame.inputs_ok else "(its inputs could not be compared)"
    return f"onnxruntime fails in {node} {inputs}: {why}"


def _values_detail(loc: Location, blame: Blame, diverged: str, check: OutputCheck) -> str:
    diff = _diff_text(check)
    if blame.culprit != blame.entry or blame.culprit != diverged:
        return (
            f"the inputs of {blame.entry or 'the model'} already differ: the drift comes from the "
            f"own code of {loc.module or 'the model'} before that call; {diff}"
        )
    inputs = "while its inputs matched" if blame.inputs_ok else "(its inputs could not be compared)"
    return f"its output differs {inputs}: {diff}"


def localize(
    model: nn.Module,
    path: str | Path,
    cases: Sequence[Case],
    result: ValidationResult,
    tolerances: Tolerances | None = None,
) -> Divergence | None:
    """Name the first PyTorch module where the ONNX file at ``path`` departs from ``model``.

    Uses the first failed trial whose outputs could be compared; else the first where
    onnxruntime failed on a node; else one where PyTorch itself failed. Nodes are tied to modules
    by dynamo's metadata (which exportkit's simplify stage carries over) or TorchScript's scoped
    node names; a file with neither cannot be localized. Never raises: a failure to localize
    is logged and gives None.

    Args:
        model: the eager model (the ground truth).
        path: the ONNX file that was validated.
        cases: the cases it was validated on.
        result: that validation's result.
        tolerances: as used for the validation.

    Returns:
        The divergence; kind ``unknown`` (no location, ``detail`` says why) when no module can
        be blamed on values that compare soundly; None when every check passed or no module
        could be tied to the graph.
    """
    try:
        return _localize(model, Path(path), cases, result, tolerances or Tolerances())
    except Exception as exc:
        # A diagnosis, not a verdict: the mismatch is reported whether or not it can be placed.
        logger.warning("could not locate the divergence in %s: %s", Path(path).name, exc)
        logger.debug("localization failed", exc_info=True)
        return None


def _localize(
    model: nn.Module,
    path: Path,
    cases: Sequence[Case],
    result: ValidationResult,
    tolerances: Tolerances,
) -> Divergence | None:
    if not cases:
        return None
    by_label = {c.label: c for c in cases}
    at_export = cases[0]
    failed = [t for t in result.trials if not t.passed]
    unknown: Divergence | None = None
    for trial in failed:
        case = by_label.get(trial.label)
        if case is not None and trial.failure is None and case.expected:
            found = _divergence(model, path, case, at_export, tolerances)
            if found is not None and found.kind != "unknown":
                return found
            if found is not None:  # the other cases run the same graph through the same map
                unknown = found
                break
    for trial in failed:
        case = by_label.get(trial.label)
        failure = trial.failure
        if case is not None and case.expected and failure is not None and failure.node:
            found = _divergence(model, path, case, at_export, tolerances, failure)
            if found is not None and found.kind != "unknown":
                return found
            unknown = unknown or found
    for trial in failed:
        case = by_label.get(trial.label)
        if case is not None and case.error_at is not None:
            return Divergence("pytorch error", case.label, case.error_at, case.error or "")
    return unknown
