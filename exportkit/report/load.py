"""A report's JSON (``render_json``) -> the Report dataclasses again, typed field by field.

The inverse of :func:`exportkit.report.pipeline.render_json`, driven by the dataclasses' own
annotations, so a field added to a result type is read back without a change here. Keys that
are not fields (``passed`` and other properties the JSON shows) are skipped; a field missing from
an older document takes its default. Never imports torch: result types live in torch-free modules.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import json
import sys
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from exportkit.results import Report

__all__ = ["load_report", "report_from_dict"]

# Fields typed loosely on purpose (so a result type never imports a later stage): their real type.
_LOOSE = {(Report, "summary"): ("exportkit.summary.results", "GraphSummary")}
# Modules a result type may name under TYPE_CHECKING that a loader must never import.
_HEAVY = ("torch", "onnxruntime", "onnxsim", "onnxslim")
_HINTS: dict[tuple[type, str], Any] = {}

PathMap = Callable[[Path], Path]


def load_report(text: str, *, rebase: PathMap | None = None) -> Report:
    """Rebuild a :class:`Report` from the JSON :func:`render_json` wrote.

    Args:
        text: the JSON document.
        rebase: applied to every path in the report (files restored to another folder).

    Raises:
        ValueError: the text is not a report of this schema.
    """
    data = json.loads(text)
    if not isinstance(data, dict) or data.get("schema_version") != 1:
        raise ValueError("not an exportkit report of schema_version 1")
    return report_from_dict(data, rebase=rebase)


def report_from_dict(data: Mapping[str, Any], *, rebase: PathMap | None = None) -> Report:
    """Like :func:`load_report`, from the parsed document."""
    report = _build(Report, data, rebase or (lambda p: p))
    assert isinstance(report, Report)
    return report


def _type_checking_import(module_name: str, name: str) -> Any:
    """``name`` as the module imports it under ``if TYPE_CHECKING:`` (read with ast, not run)."""
    file = getattr(sys.modules[module_name], "__file__", None)
    if file is None:
        raise NameError(name)
    tree = ast.parse(Path(file).read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom) or node.module is None or node.level:
            continue
        for alias in node.names:
            if (alias.asname or alias.name) == name:
                if node.module.split(".")[0] in _HEAVY:
                    raise TypeError(f"{module_name}.{name} is a {node.module} type")
                return getattr(importlib.import_module(node.module), alias.name)
    raise NameError(name)


def _field_type(cls: type, field: dataclasses.Field[Any]) -> Any:
    """A dataclass field's evaluated annotation; names imported only for type checking are
    imported now, and only for the fields a document fills (an empty ``baseline`` or a null
    ``fingerprint`` never loads the stage that defines it)."""
    key = (cls, field.name)
    if key in _HINTS:
        return _HINTS[key]
    if key in _LOOSE:
        module, attr = _LOOSE[key]
        found: Any = getattr(importlib.import_module(module), attr) | None
    elif not isinstance(field.type, str):
        found = field.type
    else:
        namespace = dict(vars(sys.modules[cls.__module__]))
        while True:
            try:
                found = eval(field.type, namespace)  # an annotation, as typing.get_type_hints does
                break
            except NameError as exc:
                if exc.name is None or exc.name in namespace:
                    raise
                namespace[exc.name] = _type_checking_import(cls.__module__, exc.name)
    _HINTS[key] = found
    return found


def _fits(tp: Any, value: Any) -> bool:
    """Whether ``value`` (parsed JSON) can be read as ``tp``: picks the member of a union."""
    if tp is Any:
        return True
    if tp is type(None):
        return value is None
    if dataclasses.is_dataclass(tp) or typing.get_origin(tp) in (dict, Mapping):
        return isinstance(value, dict)
    if tp is float:
        return isinstance(value, (int, float, str)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp in (str, Path):
        return isinstance(value, str)
    if tp is bool:
        return isinstance(value, bool)
    if typing.get_origin(tp) is tuple:
        return isinstance(value, list)
    return typing.get_origin(tp) is typing.Literal


def _build(tp: Any, value: Any, rebase: PathMap) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any or origin is typing.Literal:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        for member in typing.get_args(tp):
            if member is not type(None) and _fits(member, value):
                return _build(member, value, rebase)
        raise ValueError(f"{value!r} is none of {tp}")
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        init: dict[str, Any] = {}
        for f in dataclasses.fields(tp):
            if not f.init or f.name not in value:
                continue
            item = value[f.name]
            if item is None or item == [] or item == {}:  # nothing whose type must be loaded
                init[f.name] = () if item == [] else {} if item == {} else None
            else:
                init[f.name] = _build(_field_type(tp, f), item, rebase)
        return tp(**init)
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_build(args[0], v, rebase) for v in value)
        return tuple(_build(a, v, rebase) for a, v in zip(args, value))
    if origin in (dict, Mapping):
        key, val = typing.get_args(tp) or (Any, Any)
        return {_build(key, _key(key, k), rebase): _build(val, v, rebase) for k, v in value.items()}
    if tp is Path:
        return rebase(Path(value))
    if tp is float:
        return float(value)  # also "inf" / "nan", which JSON holds as text
    return value


def _key(tp: Any, text: str) -> Any:
    """JSON object keys are text: ``{"0": "batch"}`` -> ``{0: "batch"}`` for int-keyed maps."""
    return int(text) if tp is int else text
