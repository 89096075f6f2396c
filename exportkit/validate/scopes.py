"""Which PyTorch module produced each ONNX node: dynamo metadata or TorchScript node names."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import onnx

__all__ = ["NodeScope", "node_scopes", "user_frame"]

_NAME_SCOPES = "pkg.torch.onnx.name_scopes"
_STACK_TRACE = "pkg.torch.onnx.stack_trace"
_FRAME = re.compile(r'File "([^"]+)", line (\d+), in (\S+)\n\s*(.*)')
_CALL_SUFFIX = re.compile(r"_\d+$")
# Frames inside these packages are library code, not the user's model.
_LIBRARY_MARKERS = ("/torch/", "/transformers/", "/site-packages/", "/dist-packages/")


@dataclass(frozen=True)
class NodeScope:
    """The module path owning a node (``""`` is the model itself) and its user source line."""

    module: str
    source: str | None = None
    code: str | None = None


def user_frame(stack: str) -> tuple[str, str] | None:
    """The innermost frame of a stack trace outside library code: ("file:line", code)."""
    frames = _FRAME.findall(stack)
    for file, line, _func, code in reversed(frames):
        if not any(m in file for m in _LIBRARY_MARKERS):
            return f"{file}:{line}", code.strip()
    if frames:
        file, line, _func, code = frames[-1]
        return f"{file}:{line}", code.strip()
    return None


def _unqualified(path: str) -> str:
    """The TorchScript exporter's scope component for a module path (last non-numeric atom on)."""
    atoms = path.split(".")
    for i in range(len(atoms) - 1, -1, -1):
        if not atoms[i].isnumeric():
            return ".".join(atoms[i:])
    return path


def _by_name(paths: Iterable[str]) -> dict[str, list[str]]:
    """TorchScript scope component -> the module paths it may stand for, shallowest first."""
    out: dict[str, list[str]] = {}
    for path in sorted((p for p in paths if p), key=lambda p: (p.count("."), p)):
        out.setdefault(_unqualified(path), []).append(path)
    return out


def _match(by_name: Mapping[str, list[str]], current: str, part: str) -> str | None:
    """The module under ``current`` a scope component names (``act_1``: 2nd call of ``act``).

    Scopes follow calls, not attributes: a parent that calls ``self.layers[3]`` directly scopes
    it as ``layers.3`` under itself, so any descendant may match, the shallowest first.
    """
    for name in (part, _CALL_SUFFIX.sub("", part)):
        for path in by_name.get(name, ()):
            if not current or path.startswith(current + "."):
                return path
    return None


def _torchscript_scope(parts: list[str], by_name: Mapping[str, list[str]]) -> str:
    """``['layer1', 'layer1.0', 'conv1']`` -> ``layer1.0.conv1`` (as far as modules match)."""
    current = ""
    for part in parts:
        child = _match(by_name, current, part)
        if child is None:
            break
        current = child
    return current


def _dynamo_scope(props: Mapping[str, str]) -> NodeScope | None:
    text = props.get(_NAME_SCOPES)
    if text is None:
        return None
    try:
        scopes = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return None
    # The last entry names the FX node itself; the ones before are module paths, outermost first.
    module = str(scopes[-2]) if isinstance(scopes, list) and len(scopes) >= 2 else ""
    frame = user_frame(props.get(_STACK_TRACE, ""))
    return NodeScope(module, *(frame or (None, None)))


def _nearest(path: str, known: set[str]) -> str:
    """A module path from another tree (a wrapper's ``model.`` prefix) -> the closest known one."""
    atoms = path.split(".")
    for start in range(len(atoms)):
        for end in range(len(atoms), start, -1):
            if ".".join(atoms[start:end]) in known:
                return ".".join(atoms[start:end])
    return ""


def node_scopes(model: onnx.ModelProto, module_paths: Iterable[str]) -> list[NodeScope | None]:
    """Per node of the main graph, the module that produced it, or None when unknown.

    Args:
        model: the ONNX model as exported (simplifiers drop dynamo's metadata).
        module_paths: the dotted paths of the PyTorch model's modules (from ``named_modules``).
    """
    known = set(module_paths)
    by_name = _by_name(known)
    nodes = list(model.graph.node)
    scoped = [n.name.split("/")[1:-1] for n in nodes if n.name.startswith("/")]
    # exportkit's keyword wrapper (and others) put every scope under one outer ``/model/``.
    wrapped = bool(scoped) and all(parts[:1] == ["model"] for parts in scoped)
    out: list[NodeScope | None] = []
    for node in nodes:
        props = {p.key: p.value for p in node.metadata_props}
        scope = _dynamo_scope(props)
        if scope is not None and scope.module not in known:
            scope = NodeScope(_nearest(scope.module, known), scope.source, scope.code)
        if scope is None and node.name.startswith("/"):
            parts = node.name.split("/")[1:-1]
            scope = NodeScope(_torchscript_scope(parts[1:] if wrapped else parts, by_name))
        out.append(scope)
    return _fill_gaps(nodes, out)


def _common(paths: list[str]) -> str:
    """The innermost module path that contains all of ``paths``."""
    split = [p.split(".") if p else [] for p in paths]
    prefix = []
    for atoms in zip(*split):
        if len(set(atoms)) != 1:
            break
        prefix.append(atoms[0])
    return ".".join(prefix)


def _fill_gaps(
    nodes: list[onnx.NodeProto], scopes: list[NodeScope | None]
) -> list[NodeScope | None]:
    """Nodes an optimizer added without metadata (a Split of LSTM gates) go to the innermost
    module holding the nodes around them, so they do not cut that module's scope in two."""
    if all(s is not None for s in scopes) or not any(s is not None for s in scopes):
        return scopes
    made = {o: i for i, n in enumerate(nodes) for o in n.output if o}
    used: dict[str, list[int]] = {}
    for i, n in enumerate(nodes):
        for v in n.input:
            used.setdefault(v, []).append(i)
    out = list(scopes)
    for i, node in enumerate(nodes):
        if out[i] is not None:
            continue
        around = [made[v] for v in node.input if v in made]
        around += [j for o in node.output for j in used.get(o, ())]
        near = [scopes[j].module for j in around if scopes[j] is not None]  # type: ignore[union-attr]
        if near:
            out[i] = NodeScope(_common(near))
    return out
