"""A model's output structure as exporters accept it: dataclasses they do not know become dicts."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

__all__ = ["plain_outputs", "register_output_dataclasses"]

logger = logging.getLogger(__name__)


def _unregistered_dataclass(value: Any) -> bool:
    from torch.utils._pytree import SUPPORTED_NODES

    return (
        dataclasses.is_dataclass(value)
        and not isinstance(value, type)
        and type(value) not in SUPPORTED_NODES
    )


def plain_outputs(value: Any) -> Any:
    """Dataclass outputs that torch's pytree does not know (HF ``ModelOutput`` it does) -> dicts
    of their fields, recursively through tuples, lists and dicts."""
    if _unregistered_dataclass(value):
        return {f.name: plain_outputs(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(plain_outputs(v) for v in value)
    if isinstance(value, list):
        return [plain_outputs(v) for v in value]
    if isinstance(value, dict) and type(value) is dict:
        return {k: plain_outputs(v) for k, v in value.items()}
    return value


def _dataclass_types(value: Any, out: set[type]) -> set[type]:
    if _unregistered_dataclass(value):
        out.add(type(value))
        for f in dataclasses.fields(value):
            _dataclass_types(getattr(value, f.name), out)
    elif isinstance(value, (tuple, list)):
        for v in value:
            _dataclass_types(v, out)
    elif isinstance(value, dict):
        for v in value.values():
            _dataclass_types(v, out)
    return out


def register_output_dataclasses(outputs: Any) -> None:
    """Teach torch's pytree the dataclasses in ``outputs``, so that torch.export can return them
    (it refuses unknown types); their fields name the ONNX outputs."""
    import torch

    for cls in _dataclass_types(outputs, set()):
        try:
            torch.export.register_dataclass(cls)
        except Exception as exc:  # e.g. fields with init=False; the exporter will say so itself
            logger.info("cannot register output dataclass %s: %s", cls.__name__, exc)
