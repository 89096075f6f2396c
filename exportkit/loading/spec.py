"""The model spec grammar: ``file.py:Name(args)``, ``pkg.mod:Name``, ``model.pt``, ``model.pt2``, ``hf:folder``."""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from exportkit.errors import SpecError

__all__ = ["ARCHIVE_SUFFIXES", "ModelSpec", "SpecKind"]

SpecKind = Literal["file", "module", "torchscript", "exported", "hf"]
TORCHSCRIPT_SUFFIXES = (".pt", ".pth", ".jit", ".ts", ".torchscript")
ARCHIVE_SUFFIXES = (*TORCHSCRIPT_SUFFIXES, ".pt2")
_FORMS = (
    "name the model as path/to/file.py:ClassName, package.module:make_model, model.pt "
    "(TorchScript), model.pt2 (torch.export) or hf:path/to/folder (a HuggingFace config.json)"
)


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec: what kind, where the model lives, which name, literal arguments.

    Kinds: ``file`` (``path/to/file.py:Name``), ``module`` (``pkg.module:Name``), ``torchscript``
    (``model.pt``, read by ``torch.jit.load``), ``exported`` (``model.pt2``, read by
    ``torch.export.load``) and ``hf`` (``hf:path/to/folder`` holding a ``config.json``; a folder
    holding one also works without the prefix).
    """

    text: str
    kind: SpecKind
    target: str
    name: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    called: bool = False

    @classmethod
    def parse(cls, text: str) -> ModelSpec:
        """Parse any of the spec forms; ``Name(1, depth=3)`` takes literal arguments only.

        Raises:
            SpecError: the text is not a spec of one of these forms.
        """
        if "\x00" in text:  # no path holds one; the OS would refuse it deep inside a load
            raise SpecError(
                f"model spec {text!r} contains a NUL character", hint="write model.py:Net"
            )
        if text.startswith("hf:"):
            folder = text[3:]
            if not folder:
                raise SpecError(
                    f"model spec {text!r} names no folder", hint="write hf:path/to/folder"
                )
            return cls(text, "hf", folder, Path(folder).resolve().name)
        lowered = text.lower()
        if lowered.endswith(".pt2"):
            return cls(text, "exported", text, Path(text).stem)
        if lowered.endswith(TORCHSCRIPT_SUFFIXES):
            return cls(text, "torchscript", text, Path(text).stem)
        if ":" not in text and Path(text).is_dir() and (Path(text) / "config.json").is_file():
            return cls(text, "hf", text, Path(text).resolve().name)
        target, sep, rest = text.rpartition(":")
        if not sep or not target or not rest:
            hint = _FORMS
            if text.endswith(".py"):
                hint = f"add the class or function to use: {text}:ClassName"
            elif Path(text).is_dir():
                hint = f"{text} holds no config.json; " + _FORMS
            raise SpecError(f"model spec {text!r} has no ':NAME' part", hint=hint)
        name, args, kwargs, called = _parse_call(rest, text)
        kind: SpecKind = "file" if target.endswith(".py") or "/" in target else "module"
        return cls(text, kind, target, name, args, kwargs, called)


def _parse_call(rest: str, text: str) -> tuple[str, tuple[Any, ...], dict[str, Any], bool]:
    """Split ``Name(1, depth=3)`` into name and literal arguments, never evaluating code."""
    hint = "write NAME or NAME(arg, key=value) with literal values only"
    try:
        node = ast.parse(rest.strip(), mode="eval").body
    except SyntaxError as exc:
        raise SpecError(
            f"cannot parse {rest!r} in model spec {text!r}: {exc.msg}", hint=hint
        ) from None
    if isinstance(node, ast.Name):
        return node.id, (), {}, False
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        if any(k.arg is None for k in node.keywords) or any(
            isinstance(a, ast.Starred) for a in node.args
        ):
            raise SpecError(f"model spec {text!r} unpacks arguments with * or **", hint=hint)
        try:
            args = tuple(ast.literal_eval(a) for a in node.args)
            kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords if k.arg}
        except ValueError:
            raise SpecError(
                f"model spec {text!r} has a non-literal argument",
                hint="constructor arguments must be literals (numbers, strings, lists, dicts); "
                "or pass them with --kwargs '{\"depth\": 3}'",
            ) from None
        return node.func.id, args, kwargs, True
    raise SpecError(f"cannot parse {rest!r} in model spec {text!r}", hint=hint)
