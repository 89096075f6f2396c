"""Real input data from files: ``x=data.npy``, ``x=batch.npz`` (array ``x``), ``inputs.pt`` (a dict)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from exportkit.errors import InputSpecError, first_line

if TYPE_CHECKING:
    import torch

__all__ = ["load_data"]


def load_data(path_text: str, name: str) -> dict[str, torch.Tensor]:
    """Tensors from a data file; ``name`` picks one array of a multi-array file ("" takes all).

    A ``.npy`` file or a ``.pt`` file holding one tensor gives that tensor as ``name``. A ``.npz``
    file or a ``.pt`` dict gives the entry called ``name``, or its only entry; with ``name == ""``
    every entry becomes an input of the same name. ``.pt`` files are read with
    ``torch.load(weights_only=True)``: no arbitrary objects are unpickled.

    Raises:
        InputSpecError: the file is missing, unreadable, or has no array for ``name``.
    """
    path = Path(path_text)
    if not path.is_file():
        raise InputSpecError(
            f"input data file {path_text!r} does not exist",
            hint=f"check the path; it is read relative to {Path.cwd()}",
        )
    try:
        content = _read(path)
    except Exception as exc:
        raise InputSpecError(
            f"cannot read input data {path_text!r}: {first_line(exc, typed=True)}",
            hint="save arrays with numpy.save/numpy.savez, or tensors with torch.save",
        ) from None
    return _pick(content, name, path_text)


def _read(path: Path) -> Any:
    import numpy as np
    import torch

    suffix = path.suffix.lower()
    if suffix == ".npy":
        return torch.from_numpy(np.load(path, allow_pickle=False))
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as npz:
            return {k: torch.from_numpy(npz[k]) for k in npz.files}
    return torch.load(path, map_location="cpu", weights_only=True)


def _pick(content: Any, name: str, path_text: str) -> dict[str, torch.Tensor]:
    import torch

    if isinstance(content, torch.Tensor):
        if not name:
            raise InputSpecError(
                f"{path_text!r} holds one unnamed tensor",
                hint=f"name the input it feeds: --input x={path_text}",
            )
        return {name: content}
    if isinstance(content, (list, tuple)) and all(isinstance(t, torch.Tensor) for t in content):
        if name and len(content) == 1:
            return {name: content[0]}
        raise InputSpecError(
            f"{path_text!r} holds a sequence of {len(content)} tensors; inputs need names",
            hint="save a dict of name -> tensor (torch.save) or use numpy.savez(x=..., y=...)",
        )
    if isinstance(content, Mapping):
        tensors = {str(k): v for k, v in content.items() if isinstance(v, torch.Tensor)}
        if not name:
            bad = [k for k in tensors if not k.isidentifier()]
            if bad or not tensors:
                raise InputSpecError(
                    f"{path_text!r} has no arrays named like forward's parameters ({', '.join(tensors) or 'none'})",
                    hint="save arrays under the parameter names, or pick one with --input x=FILE",
                )
            return tensors
        if name in tensors:
            return {name: tensors[name]}
        if len(tensors) == 1:
            return {name: next(iter(tensors.values()))}
        raise InputSpecError(
            f"{path_text!r} has no array {name!r}; it holds: {', '.join(tensors) or 'nothing'}",
            hint=f"name the input after one of those, or give a file holding one array for {name!r}",
        )
    raise InputSpecError(
        f"{path_text!r} holds a {type(content).__name__}, not tensors",
        hint="save a tensor or a dict of name -> tensor",
    )
