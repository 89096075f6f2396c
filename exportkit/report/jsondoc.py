"""JSON documents built from result dataclasses: versioned, one record per line, fast."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["SCHEMA_VERSION", "dump_document", "fields_of", "to_jsonable"]

#: Version of every JSON document exportkit writes; bumped when a field changes meaning or goes.
SCHEMA_VERSION = 1

_FIELDS: dict[type, tuple[str, ...]] = {}


def fields_of(obj: Any) -> dict[str, Any]:
    """json ``default`` hook: a dataclass as the dict of its fields (tuples stay JSON arrays)."""
    names = _FIELDS.get(type(obj))
    if names is None:
        if not (dataclasses.is_dataclass(obj) and not isinstance(obj, type)):
            raise TypeError(f"{type(obj).__name__} is not JSON serializable")
        names = tuple(f.name for f in dataclasses.fields(obj))
        _FIELDS[type(obj)] = names
    return {n: getattr(obj, n) for n in names}


#: Properties that JSON documents carry beside a dataclass's fields (derived verdicts, counts).
_DERIVED = ("passed", "nodes_before", "nodes_after", "error", "pytorch_failed")


def to_jsonable(value: Any) -> Any:
    """Dataclasses (fields, plus the derived properties in ``_DERIVED``), paths, mappings,
    sequences and non-finite floats -> plain JSON values, recursively."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
        for name in _DERIVED:
            if isinstance(getattr(type(value), name, None), property):
                out[name] = to_jsonable(getattr(value, name))
        return out
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _line_encoder() -> Callable[[Any], str]:
    """obj -> compact-ish JSON; one C encoder reused for every line (json.dumps builds a new
    one per call, which costs more than encoding a small node)."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return json.JSONEncoder(ensure_ascii=False, default=fields_of).encode
    encode = make(
        None, fields_of, json.encoder.encode_basestring, None, ": ", ", ", False, False, True
    )

    def dumps(obj: Any) -> str:
        return "".join(encode(obj, 0))

    return dumps


def dump_document(doc: Mapping[str, Any]) -> str:
    """One top-level key per line and one array element (node, module, ...) per line.

    Readable in a diff, and fast: each line goes through json's C encoder, which an ``indent``
    would disable.
    """
    dumps = _line_encoder()
    lines = []
    for key, value in doc.items():
        if isinstance(value, (list, tuple)) and value:
            items = ",\n".join("    " + dumps(v) for v in value)
            lines.append(f"  {dumps(key)}: [\n{items}\n  ]")
        else:
            lines.append(f"  {dumps(key)}: {dumps(value)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"
