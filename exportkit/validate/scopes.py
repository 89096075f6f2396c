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


def _children(paths: Iterable[str]) -> dict[str, dict[str, str]]:
    """parent path -> {TorchScript component: child path}."""
    known = set(paths)
    out: dict[str, dict[str, str]] = {}
    for path in sorted(known):
        if not path:
            continue
        atoms = path.split(".")
        parent = next(
            (
                ".".join(atoms[:i])
                for i in range(len(atoms) - 1, 0, -1)
                if ".".join(atoms[:i]) in known
            ),
            "",
        )
        out.setdefault(parent, {})[_unqualified(path)] = path
    return out


def _match(kids: Mapping[str, str], part: str) -> str | None:
    """The child named by a scope component (``act_1`` is the second call of ``act``)."""
    return kids.get(part) or kids.get(_CALL_SUFFIX.sub("", part))


def _torchscript_scope(name: str, children: Mapping[str, Mapping[str, str]]) -> str | None:
    """``/layer1/layer1.0/conv1/Conv`` -> ``layer1.0.conv1``; None if the name is not scoped."""
    if not name.startswith("/"):
        return None
    parts = name.split("/")[1:-1]
    roots = children.get("", {})
    # Wrappers (exportkit's keyword wrapper, a user's) add outer scopes: skip to the model's own.
    start = next((i for i, p in enumerate(parts) if _match(roots, p) is not None), len(parts))
    if start == len(parts) and parts and parts[0] == "model":
        start = 1
    current = ""
    for part in parts[start:]:
        kids = children.get(current, {})
        child = _match(kids, part)
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


def node_scopes(model: onnx.ModelProto, module_paths: Iterable[str]) -> list[NodeScope | None]:
    """Per node of the main graph, the module that produced it, or None when unknown.

    Args:
        model: the ONNX model as exported (simplifiers drop dynamo's metadata).
        module_paths: the dotted paths of the PyTorch model's modules (from ``named_modules``).
    """
    children = _children(module_paths)
    out: list[NodeScope | None] = []
    for node in model.graph.node:
        props = {p.key: p.value for p in node.metadata_props}
        scope = _dynamo_scope(props)
        if scope is None:
            path = _torchscript_scope(node.name, children)
            scope = NodeScope(path) if path is not None else None
        out.append(scope)
    return out
