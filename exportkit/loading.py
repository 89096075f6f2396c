"""Model specs: ``file.py:Name``, ``pkg.module:Name(arg=1)`` -> an ``nn.Module`` in eval mode."""

from __future__ import annotations

import ast
import contextlib
import importlib
import importlib.util
import inspect
import logging
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from exportkit.errors import LoadError, SpecError

if TYPE_CHECKING:
    from torch import nn

__all__ = ["LoadedModel", "ModelSpec", "load_model"]

logger = logging.getLogger(__name__)

SpecKind = Literal["file", "module"]


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec: where the model lives, which name, and literal constructor arguments."""

    text: str
    kind: SpecKind
    target: str
    name: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    called: bool = False

    @classmethod
    def parse(cls, text: str) -> ModelSpec:
        """Parse ``path/to/file.py:Name``, ``pkg.module:Name`` or either with ``Name(literal args)``.

        Raises:
            SpecError: the text is not a spec of one of these forms.
        """
        target, sep, rest = text.rpartition(":")
        if not sep or not target or not rest:
            raise SpecError(
                f"model spec {text!r} has no ':NAME' part",
                hint="name the model as path/to/file.py:ClassName or package.module:make_model",
            )
        name, args, kwargs, called = _parse_call(rest, text)
        kind: SpecKind = "file" if target.endswith(".py") or "/" in target else "module"
        return cls(text, kind, target, name, args, kwargs, called)


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to export: the module in eval mode, plus where it came from."""

    module: nn.Module
    name: str
    source: str
    example_inputs: Callable[[], Any] | None = None


def _parse_call(rest: str, text: str) -> tuple[str, tuple[Any, ...], dict[str, Any], bool]:
    """Split ``Name(1, depth=3)`` into name and literal arguments, never evaluating code."""
    try:
        node = ast.parse(rest.strip(), mode="eval").body
    except SyntaxError as exc:
        raise SpecError(
            f"cannot parse {rest!r} in model spec {text!r}: {exc.msg}",
            hint="write NAME or NAME(arg, key=value) with literal values only",
        ) from None
    if isinstance(node, ast.Name):
        return node.id, (), {}, False
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
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
    raise SpecError(
        f"cannot parse {rest!r} in model spec {text!r}",
        hint="write NAME or NAME(arg, key=value) with literal values only",
    )


@contextlib.contextmanager
def _importable(folder: Path) -> Iterator[None]:
    """Make the model's folder importable while it loads, so sibling imports work."""
    entry = str(folder)
    sys.path.insert(0, entry)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(entry)


def _import_file(path: Path, text: str) -> Any:
    if not path.is_file():
        raise SpecError(
            f"model file {str(path)!r} does not exist",
            hint=f"check the path in {text!r}; it is read relative to {Path.cwd()}",
        )
    mod_name = f"exportkit_user_{path.stem}_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise SpecError(f"cannot import {str(path)!r} as Python", hint="give a .py file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    with _importable(path.resolve().parent):
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            sys.modules.pop(mod_name, None)
            raise LoadError(
                f"{path} raised while importing: {_where(exc)}",
                hint="fix the error in the model file, or run it with python to see the traceback",
            ) from exc
    return module


def _import_module(name: str, text: str) -> Any:
    with _importable(Path.cwd()):
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):
                raise SpecError(
                    f"no module named {exc.name!r} (from model spec {text!r})",
                    hint="install the package, run from its folder, or name a file: path/to/file.py:Name",
                ) from None
            raise LoadError(f"{name} raised while importing: {_where(exc)}") from exc
        except Exception as exc:
            raise LoadError(
                f"{name} raised while importing: {_where(exc)}",
                hint="fix the error in the module, or import it with python to see the traceback",
            ) from exc


def _where(exc: BaseException) -> str:
    """``ValueError: bad (model.py:12)``: the error and the deepest frame in user code."""
    frames = traceback.extract_tb(exc.__traceback__)
    user = [f for f in frames if "exportkit" not in Path(f.filename).parts]
    place = f" ({Path(user[-1].filename).name}:{user[-1].lineno})" if user else ""
    if isinstance(exc, SyntaxError) and exc.filename:
        place = f" ({Path(exc.filename).name}:{exc.lineno})"
    return f"{type(exc).__name__}: {exc}{place}"


def _candidates(namespace: Any) -> list[str]:
    """Names in a module that could be a model: nn.Module classes/instances and functions."""
    from torch import nn

    names = []
    for key, value in vars(namespace).items():
        if key.startswith("_"):
            continue
        own = getattr(value, "__module__", None) == namespace.__name__
        if isinstance(value, nn.Module) or (
            own
            and (
                inspect.isfunction(value)
                or (isinstance(value, type) and issubclass(value, nn.Module))
            )
        ):
            names.append(key)
    return names


def _build(obj: Any, spec: ModelSpec, extra_kwargs: Mapping[str, Any]) -> Any:
    from torch import nn

    if isinstance(obj, nn.Module):
        if spec.called or extra_kwargs:
            raise SpecError(
                f"{spec.name} is a module instance; it takes no constructor arguments",
                hint=f"drop the arguments: {spec.target}:{spec.name}",
            )
        return obj
    if not callable(obj):
        raise SpecError(
            f"{spec.name} in {spec.target} is a {type(obj).__name__}, not a model",
            hint="name an nn.Module subclass, a function returning one, or a module instance",
        )
    kwargs = {**spec.kwargs, **extra_kwargs}
    try:
        sig = inspect.signature(obj)
        sig.bind(*spec.args, **kwargs)
    except TypeError as exc:
        missing = _missing_params(obj, spec.args, kwargs)
        detail = f"needs {', '.join(missing)}" if missing else str(exc)
        example = ", ".join(f"{p}=..." for p in missing) or "..."
        raise SpecError(
            f"{spec.name} cannot be built from the arguments given: {detail}",
            hint=f"pass them in the spec, {spec.target}:{spec.name}({example}), or with --kwargs",
        ) from None
    except ValueError:
        pass  # builtins without a signature: just call
    try:
        return obj(*spec.args, **kwargs)
    except Exception as exc:
        raise LoadError(
            f"building {spec.name} raised: {_where(exc)}",
            hint="check the constructor arguments",
        ) from exc


def _missing_params(obj: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> list[str]:
    try:
        params = list(inspect.signature(obj).parameters.values())
    except (TypeError, ValueError):
        return []
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)][
        len(args) :
    ]
    required = positional + [p for p in params if p.kind is p.KEYWORD_ONLY]
    return [p.name for p in required if p.default is p.empty and p.name not in kwargs]


def load_model(
    spec: str | ModelSpec,
    *,
    kwargs: Mapping[str, Any] | None = None,
    seed: int = 0,
) -> LoadedModel:
    """Import and build the model a spec names, in eval mode.

    Args:
        spec: ``path/to/file.py:Name`` or ``pkg.module:Name``, optionally ``Name(literal args)``.
        kwargs: extra constructor keyword arguments (``--kwargs``), merged over the spec's own.
        seed: seeds torch while the model is built, so random initial weights are reproducible.

    Returns:
        The built model, its display name, and its ``example_inputs`` callable if it declares one.

    Raises:
        SpecError: the spec names nothing loadable, or the constructor's arguments do not fit.
        LoadError: the model's file raised while importing, or its constructor raised.
    """
    from torch import nn

    parsed = spec if isinstance(spec, ModelSpec) else ModelSpec.parse(spec)
    if parsed.kind == "file":
        namespace = _import_file(Path(parsed.target), parsed.text)
    else:
        namespace = _import_module(parsed.target, parsed.text)
    if not hasattr(namespace, parsed.name):
        found = _candidates(namespace)
        listing = ", ".join(found) if found else "no models"
        hint = f"use {parsed.target}:{found[0]}" if found else "define an nn.Module in the file"
        raise SpecError(
            f"{parsed.target} has no attribute {parsed.name!r}; it defines: {listing}", hint=hint
        )
    obj = getattr(namespace, parsed.name)
    folder = Path(parsed.target).resolve().parent if parsed.kind == "file" else Path.cwd()
    import torch

    # Seeded, so a model without --weights gets the same weights every run: `check` can then
    # compare a file against the model that `export` wrote it from.
    with _importable(folder), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = _build(obj, parsed, kwargs or {})
    if not isinstance(module, nn.Module):
        raise SpecError(
            f"{parsed.name} returned a {type(module).__name__}, not a torch.nn.Module",
            hint="name an nn.Module subclass, a function returning one, or a module instance",
        )
    module.eval()
    declared = getattr(module, "example_inputs", None) or getattr(namespace, "example_inputs", None)
    return LoadedModel(
        module=module,
        name=parsed.name,
        source=parsed.text,
        example_inputs=declared if callable(declared) else None,
    )
