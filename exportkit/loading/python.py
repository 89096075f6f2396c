"""Python model specs: import ``file.py`` or ``pkg.module``, find the name, build it with its arguments."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import logging
import sys
import traceback
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from exportkit.errors import LoadError, SpecError
from exportkit.loading.spec import ModelSpec

if TYPE_CHECKING:
    from torch import nn

__all__ = ["load_python", "package_of", "where"]

logger = logging.getLogger(__name__)


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


def _module_name(path: Path) -> str:
    """The file's stem, as Python would name it, so class paths read ``simple_net.SimpleNet``
    in the exported metadata; suffixed only when that name is taken by another module."""
    stem = path.stem if path.stem.isidentifier() else "model"
    taken = sys.modules.get(stem)
    if taken is None or getattr(taken, "__file__", None) == str(path.resolve()):
        return stem
    return f"{stem}_{abs(hash(str(path.resolve()))) % 10**8}"


def package_of(path: Path) -> tuple[Path, str] | None:
    """The folder to import ``path`` from and its dotted name, when it lies in a package.

    As pytest finds a module's root: walk up while the folder has an ``__init__.py``; the
    folder above the outermost package goes on ``sys.path``. None for a standalone file (or a
    folder name that is not an identifier, which Python could not import either).
    """
    resolved = path.resolve()
    folder = resolved.parent
    parts = [] if resolved.stem == "__init__" else [resolved.stem]
    while (folder / "__init__.py").is_file():
        parts.insert(0, folder.name)
        folder = folder.parent
    if not (resolved.parent / "__init__.py").is_file():
        return None
    if not all(part.isidentifier() for part in parts):
        logger.debug("%s: package path %s is not importable; imported alone", path, parts)
        return None
    return folder, ".".join(parts)


def _import_in_package(path: Path, root: Path, dotted: str) -> Any:
    """Import ``path`` as ``dotted`` (its package's relative imports work) from ``root``."""
    top = dotted.split(".", 1)[0]
    loaded = sys.modules.get(top)
    expected = (root / top).resolve()
    if loaded is not None:
        places = [Path(p).resolve() for p in getattr(loaded, "__path__", [])]
        if expected not in places:
            where_from = places[0] if places else getattr(loaded, "__file__", "?")
            raise SpecError(
                f"{path} belongs to package {top!r} in {root}, but another {top!r} is already "
                f"imported from {where_from}",
                hint=f"load the model in a fresh process, or rename the package {top!r}",
            )
    with _importable(root):
        try:
            return importlib.import_module(dotted)
        except Exception as exc:
            raise LoadError(
                f"{path} raised while importing as {dotted}: {where(exc)}",
                hint=f"fix the error, or run python -c 'import {dotted}' from {root} to see the "
                "traceback",
            ) from exc


def _import_file(path: Path, text: str) -> tuple[Any, Path, str | None]:
    """The file's module, the folder its imports resolve from, and a note when it was imported
    as part of a package (or had to be imported alone although it lies in one)."""
    if path.is_dir():
        raise SpecError(
            f"{path} is a folder, not a Python file", hint="name the .py file inside it"
        )
    if not path.is_file():
        raise SpecError(
            f"model file {str(path)!r} does not exist",
            hint=f"check the path in {text!r}; it is read relative to {Path.cwd()}",
        )
    package = package_of(path)
    if package is None:
        return _import_alone(path), path.resolve().parent, None
    root, dotted = package
    try:
        module = _import_in_package(path, root, dotted)
    except (LoadError, SpecError) as failed:
        # A package whose __init__ needs what is not installed here (or whose name is taken)
        # must not refuse a file that imports fine on its own, as it did before packages.
        try:
            module = _import_alone(path)
        except (LoadError, SpecError):
            raise failed from failed.__cause__
        note = f"import: {path} imported alone, as importing it as {dotted} failed: {failed}"
        logger.info("%s", note)
        return module, path.resolve().parent, note
    note = f"import: {path} imported as {dotted}, with {root} put on sys.path while loading"
    logger.info("%s", note)
    return module, root, note


def _import_alone(path: Path) -> Any:
    """Import a file under its own stem, with its folder on ``sys.path`` (sibling imports)."""
    mod_name = _module_name(path)
    spec = importlib.util.spec_from_file_location(mod_name, path.resolve())
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
                f"{path} raised while importing: {where(exc)}",
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
            raise LoadError(f"{name} raised while importing: {where(exc)}") from exc
        except Exception as exc:
            raise LoadError(
                f"{name} raised while importing: {where(exc)}",
                hint="fix the error in the module, or import it with python to see the traceback",
            ) from exc


def where(exc: BaseException) -> str:
    """``ValueError: bad (model.py:12)``: the error and the deepest frame in user code."""
    frames = traceback.extract_tb(exc.__traceback__)
    user = [
        f
        for f in frames
        if "exportkit" not in Path(f.filename).parts and not f.filename.startswith("<frozen")
    ]
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
        params = _param_names(obj)
        if not missing and params is not None:
            unknown = [k for k in kwargs if k not in params]
            takes = ", ".join(params) or "no arguments"
            if unknown:
                raise SpecError(
                    f"{spec.name} takes no argument {unknown[0]!r}; it takes: {takes}",
                    hint=f"pass only those, in the spec or with --kwargs: {spec.target}:{spec.name}(...)",
                ) from None
            detail = f"{exc}; it takes: {takes}"
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
            f"building {spec.name} raised: {where(exc)}",
            hint="check the constructor arguments",
        ) from exc


def _param_names(obj: Any) -> list[str] | None:
    """Constructor parameter names (None when it takes ``**kwargs`` or has no signature)."""
    try:
        params = list(inspect.signature(obj).parameters.values())
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return [p.name for p in params if p.kind is not p.VAR_POSITIONAL]


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


def load_python(
    spec: ModelSpec, kwargs: Mapping[str, Any], *, seed: int | None = None
) -> tuple[nn.Module, Any, tuple[str, ...]]:
    """Import the file or module a spec names and build the model.

    A file inside a package (``src/pkg/models/net.py`` beside ``src/pkg/__init__.py``) is
    imported as ``pkg.models.net``, so its relative imports work; a standalone file under its
    own stem, with its folder on ``sys.path`` while it loads (sibling imports).

    ``seed`` seeds the model's construction, after the import: a file that builds a model at
    import time draws random numbers only on its first import, so seeding before the import would
    give the same spec other weights in a second load in one process (export, then check).

    Returns:
        The model, the namespace it came from, and notes for the report (what was put on the
        path).

    Raises:
        SpecError: the spec names nothing loadable, or the constructor's arguments do not fit.
        LoadError: the file raised while importing, or the constructor raised.
    """
    from torch import nn

    notes: tuple[str, ...] = ()
    if spec.kind == "file":
        namespace, folder, note = _import_file(Path(spec.target), spec.text)
        notes = (note,) if note else ()
    else:
        namespace, folder = _import_module(spec.target, spec.text), Path.cwd()
    if not hasattr(namespace, spec.name):
        found = _candidates(namespace)
        listing = ", ".join(found) if found else "no models"
        hint = f"use {spec.target}:{found[0]}" if found else "define an nn.Module in the file"
        raise SpecError(
            f"{spec.target} has no attribute {spec.name!r}; it defines: {listing}", hint=hint
        )
    obj = getattr(namespace, spec.name)
    if seed is not None:
        import torch

        torch.manual_seed(seed)  # inside the loader's fork_rng: global state is restored
    with _importable(folder):
        module = _build(obj, spec, kwargs)
    if not isinstance(module, nn.Module):
        raise SpecError(
            f"{spec.name} returned a {type(module).__name__}, not a torch.nn.Module",
            hint="name an nn.Module subclass, a function returning one, or a module instance",
        )
    return module, namespace, notes
