"""Writers for saved-model archives, the way users make them (TorchScript is deprecated, but used)."""

from __future__ import annotations

import inspect
import warnings
from pathlib import Path

import torch
from torch import nn


def save_torchscript(model: nn.Module, path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(model).save(str(path))
    return path


def save_exported(
    model: nn.Module, args: tuple[torch.Tensor, ...], path: Path, *, batch: bool = True
) -> Path:
    """A torch.export archive; with ``batch`` dim 0 of every input is symbolic."""
    dims = None
    if batch:
        b = torch.export.Dim("batch")
        names = list(inspect.signature(model.forward).parameters)
        dims = {n: {0: b} for n in names[: len(args)]}
    torch.export.save(torch.export.export(model, args, dynamic_shapes=dims), str(path))
    return path
