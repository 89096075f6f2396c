"""ONNX side of localization: each module's boundary values (what enters and leaves its scope),
exposed as extra graph outputs of a temporary copy beside the file and run on onnxruntime."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from exportkit.onnxfile import copy_beside
from exportkit.validate.cases import Case
from exportkit.validate.results import RunFailure
from exportkit.validate.scopes import NodeScope
from exportkit.validate.session import run_session, session

if TYPE_CHECKING:
    import numpy as np
    import onnx

__all__ = ["Boundary", "ancestors", "boundaries", "descendants", "run_probe", "static_shapes"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Boundary:
    outputs: Mapping[str, tuple[str, ...]]  # module path -> values leaving its scope
    inputs: Mapping[str, tuple[str, ...]]  # module path -> values entering its scope
    producer: Mapping[str, int]  # value -> node index


def _within(path: str, scope: str) -> bool:
    return not scope or path == scope or path.startswith(scope + ".")


def ancestors(path: str) -> list[str]:
    atoms = path.split(".") if path else []
    return ["", *(".".join(atoms[: i + 1]) for i in range(len(atoms)))]


def boundaries(model: onnx.ModelProto, scopes: Sequence[NodeScope | None]) -> Boundary:
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
            for anc in ancestors(src.module):
                leaves = value in graph_outputs or any(
                    s is None or not _within(s.module, anc) for s in user_scopes
                )
                if leaves and value not in outs.setdefault(anc, []):
                    outs[anc].append(value)
        for s in user_scopes:
            if s is None:
                continue
            for anc in ancestors(s.module):
                entering = src is None or not _within(src.module, anc)
                if entering and value not in ins.setdefault(anc, []):
                    ins[anc].append(value)
    return Boundary(
        {k: tuple(v) for k, v in outs.items()}, {k: tuple(v) for k, v in ins.items()}, producer
    )


@contextlib.contextmanager
def _debug_session(path: Path, model: onnx.ModelProto, values: Sequence[str]) -> Iterator[Any]:
    """A session on a copy of ``model`` that also outputs ``values`` (see ``copy_beside``)."""
    import onnx

    have = {o.name for o in model.graph.output}
    for v in values:
        if v not in have:
            model.graph.output.append(onnx.ValueInfoProto(name=v))
            have.add(v)
    with copy_beside(path, model, "localize") as target:
        yield session(target)


def descendants(proto: onnx.ModelProto, start: int) -> set[int]:
    """Node ``start`` and every node that reads (transitively) what it computes."""
    tainted = set(proto.graph.node[start].output)
    out = {start}
    for i, node in enumerate(proto.graph.node):
        if i > start and tainted.intersection(node.input):
            out.add(i)
            tainted.update(node.output)
    return out


def run_probe(
    path: Path,
    proto: onnx.ModelProto,
    bounds: Boundary,
    case: Case,
    drop: set[int],
) -> dict[str, np.ndarray] | None:
    """Every boundary value on ``case``, from a copy without the nodes in ``drop``."""
    if drop:
        kept = [n for i, n in enumerate(proto.graph.node) if i not in drop]
        gone = {o for i in drop for o in proto.graph.node[i].output}
        del proto.graph.node[:]
        proto.graph.node.extend(kept)
        outputs = [o for o in proto.graph.output if o.name not in gone]
        del proto.graph.output[:]
        proto.graph.output.extend(outputs)
    else:
        gone = set()
    values = {v for vs in (*bounds.outputs.values(), *bounds.inputs.values()) for v in vs}
    with _debug_session(path, proto, sorted(values - gone)) as sess:
        actual = run_session(sess, case.inputs)
        if isinstance(actual, RunFailure):
            logger.info("cannot run the localization copy of %s: %s", path.name, actual.message)
            return None
        return dict(zip((o.name for o in sess.get_outputs()), actual))


StaticShape = tuple[int | str | None, ...]


def static_shapes(proto: onnx.ModelProto) -> dict[str, StaticShape]:
    """Each value's shape as the graph declares or infers it at export (a dim is a size, a
    symbol such as ``batch``, or None); empty when shape inference fails."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(proto)
    except Exception as exc:  # onnx raises several types for graphs it cannot infer
        logger.info("shape inference failed: %s", exc)
        return {}
    graph = inferred.graph
    out: dict[str, StaticShape] = {}
    for value in (*graph.input, *graph.value_info, *graph.output):
        tensor = value.type.tensor_type
        if tensor.HasField("shape"):
            out[value.name] = tuple(
                d.dim_value if d.HasField("dim_value") else d.dim_param or None
                for d in tensor.shape.dim
            )
    return out
