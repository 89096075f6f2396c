"""forward's signature as exportkit reads it, and the one line an error in forward is told by."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING

from exportkit.errors import first_line

if TYPE_CHECKING:
    from torch import nn

__all__ = ["error_line", "forward_parameters", "required_parameters", "signature_text", "slot_name"]


def forward_parameters(module: nn.Module) -> list[inspect.Parameter]:
    """``forward``'s parameters, without ``self``."""
    return list(inspect.signature(module.forward).parameters.values())


def required_parameters(module: nn.Module) -> list[str]:
    """Parameters forward cannot run without (no default), in order."""
    return [
        p.name
        for p in forward_parameters(module)
        if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]


def signature_text(module: nn.Module) -> str:
    """``Net.forward(x, mask=None)``."""
    try:
        params = inspect.signature(module.forward).parameters.values()
    except (TypeError, ValueError):
        return f"{type(module).__name__}.forward(...)"
    plain = [p.replace(annotation=p.empty) for p in params]
    return f"{type(module).__name__}.forward{inspect.Signature(plain)}"


def error_line(exc: BaseException) -> str:
    """``Type: first line``; TorchScript's interpreter puts the real error on its last line."""
    line = first_line(exc, typed=True)
    if "TorchScript interpreter" not in line:
        return line
    last = [ln.strip() for ln in str(exc).splitlines() if ln.strip()][-1]
    name = type(exc).__name__
    return last if last.startswith(name) else f"{name}: {last}"


def slot_name(module: nn.Module, index: int) -> int | str:
    """Argument position -> parameter name where forward has a signature (TorchScript has none)."""
    try:
        params = list(inspect.signature(module.forward).parameters)
    except (TypeError, ValueError):
        return index
    return params[index] if index < len(params) else index
