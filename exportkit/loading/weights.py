"""``--weights``: a state_dict, a checkpoint dict holding one, or a .safetensors file -> the model."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from exportkit.errors import WeightsError
from exportkit.quiet import captured

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["CHECKPOINT_KEYS", "load_weights"]

# Where training loops keep the state dict inside a checkpoint, most common first.
CHECKPOINT_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "weights")
_SHOWN = 4


def _read(path: Path) -> Any:
    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    return torch.load(path, map_location="cpu", weights_only=True)


def _state_dict(content: Any, path: Path) -> tuple[dict[str, torch.Tensor], str]:
    """The tensors of a state dict, found at the top level or under a checkpoint key."""
    import torch

    if not isinstance(content, Mapping):
        raise WeightsError(
            f"{path} holds a {type(content).__name__}, not a state dict",
            hint="save weights with torch.save(model.state_dict(), path)",
        )
    if content and all(isinstance(v, torch.Tensor) for v in content.values()):
        return dict(content), ""
    for key in CHECKPOINT_KEYS:
        inner = content.get(key)
        if isinstance(inner, Mapping) and any(isinstance(v, torch.Tensor) for v in inner.values()):
            return {k: v for k, v in inner.items() if isinstance(v, torch.Tensor)}, key
    keys = ", ".join(map(str, list(content)[:8]))
    raise WeightsError(
        f"{path} is a dict without a state dict in it (keys: {keys})",
        hint=f"save the model's state_dict(), or a checkpoint holding it under one of: {', '.join(CHECKPOINT_KEYS)}",
    )


def _few(names: list[str]) -> str:
    more = f" (and {len(names) - _SHOWN} more)" if len(names) > _SHOWN else ""
    return ", ".join(names[:_SHOWN]) + more


def _strip_prefix(
    state: dict[str, torch.Tensor], expected: set[str]
) -> tuple[dict[str, torch.Tensor], str]:
    """Drop a wrapper prefix every key shares (``module.`` from DataParallel, ``model.``) when that makes keys fit."""
    if not state or set(state) & expected:
        return state, ""
    first = next(iter(state))
    prefix = first.split(".", 1)[0] + "."
    if "." in first and all(k.startswith(prefix) for k in state):
        stripped = {k[len(prefix) :]: v for k, v in state.items()}
        if set(stripped) & expected:
            return stripped, prefix
    return state, ""


def _cast_problem(value: torch.Tensor, target: torch.dtype) -> str | None:
    """Why ``value`` cannot be cast to ``target`` without changing what it means, or None.

    Integer and bool tensors never go into floating parameters (an int64 file in a float model
    is the wrong file, and its values truncate); complex never into real. Other casts must give
    the values back on a round trip, except that a floating value may round to the nearest
    value of a narrower floating dtype (float64 -> float32): that is the precision the model
    computes in, while overflow to inf or a value lost to zero is refused.
    """
    import torch

    source = value.dtype
    if target.is_floating_point and not (source.is_floating_point or source.is_complex):
        return "integer or bool values are not floating-point weights"
    if source.is_complex and not target.is_complex:
        return "the imaginary part would be dropped"
    cast = value.to(target)
    back = cast.to(source)
    if torch.equal(back, value) or (source.is_floating_point and _same_with_nan(back, value)):
        return None
    if not (source.is_floating_point and target.is_floating_point):
        return "the values change (they are not whole numbers in the model's range)"
    finite = torch.isfinite(value)
    if bool((finite & ~torch.isfinite(cast)).any()):
        return f"values overflow {_dtype(target)} (largest {torch.finfo(target).max:.3g})"
    tiny = torch.finfo(target).tiny
    if bool(((value.abs() >= tiny) & (cast == 0)).any()):
        return f"values become 0 in {_dtype(target)}"
    eps = torch.finfo(target).eps
    rounded = (back - value).abs() <= eps * value.abs() + tiny
    return None if bool(rounded[finite].all()) else "the values change"


def _same_with_nan(a: torch.Tensor, b: torch.Tensor) -> bool:
    import torch

    return bool(torch.equal(torch.isnan(a), torch.isnan(b))) and bool(
        torch.equal(torch.nan_to_num(a), torch.nan_to_num(b))
    )


def _check_dtypes(
    state: dict[str, torch.Tensor], own: Mapping[str, torch.Tensor], where: str, model: str
) -> list[str]:
    """Refuse a tensor whose dtype cannot go into the model's; notes for the casts made."""
    casts: dict[tuple[str, str], int] = {}
    refused: list[tuple[str, str, str, str]] = []
    for key, value in state.items():
        if key not in own or value.dtype == own[key].dtype:
            continue
        source, target = _dtype(value.dtype), _dtype(own[key].dtype)
        problem = _cast_problem(value, own[key].dtype)
        if problem is not None:
            refused.append((key, source, target, problem))
        else:
            casts[(source, target)] = casts.get((source, target), 0) + 1
    if refused:
        key, source, target, problem = refused[0]
        also = f"; also {_few([r[0] for r in refused[1:]])}" if len(refused) > 1 else ""
        raise WeightsError(
            f"weights in {where} do not fit {model}: {key} is {source} in the file but "
            f"{target} in the model ({problem}){also}",
            hint="check that this is the model's weights file; to convert on purpose, save "
            f"{{k: v.to(torch.{target}) for k, v in state.items()}}",
        )
    return [f"weights: {n} tensors cast {a} -> {b}" for (a, b), n in casts.items()]


def _dtype(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def load_weights(module: nn.Module, path: str | Path, *, strict: bool = True) -> list[str]:
    """Load a weights file into ``module`` in place; returns notes for the report.

    Reads with ``torch.load(weights_only=True)`` (never unpickles arbitrary objects) or
    safetensors. A checkpoint dict is searched for its state dict under :data:`CHECKPOINT_KEYS`; a
    prefix shared by every key (``module.``) is dropped when that makes the keys fit.

    Args:
        module: the built model.
        path: a ``.pt``/``.pth``/``.bin`` state dict or checkpoint, or a ``.safetensors`` file.
        strict: missing or unexpected keys are an error (else loaded anyway, with a note).

    Raises:
        WeightsError: the file is missing or unreadable, holds no state dict, or does not fit.
    """
    path = Path(path)
    if path.is_dir():
        raise WeightsError(
            f"weights file {str(path)!r} is a folder", hint="name the file inside it"
        )
    if path.is_file() and path.stat().st_size == 0:
        raise WeightsError(
            f"weights file {str(path)!r} is empty",
            hint="it was not written completely; save it again",
        )
    if not path.is_file():
        raise WeightsError(
            f"weights file {str(path)!r} does not exist", hint="check the --weights path"
        )
    import torch  # noqa: F401  (first: loggers torch creates on import are captured too)

    try:
        with captured(f"reading {path}") as kept:
            content = _read(path)
    except Exception as exc:
        first = kept.reason(exc)
        unsafe = "weights_only" in str(exc) or "Unsupported global" in str(exc)
        raise WeightsError(
            f"cannot read weights {path}: {first}"
            if not unsafe
            else f"{path} holds pickled Python objects, not just tensors; exportkit does not unpickle them",
            hint="save weights with torch.save(model.state_dict(), path) or safetensors"
            + (
                "; a whole saved model can be exported as a TorchScript (.pt) or torch.export (.pt2) archive"
                if unsafe
                else ""
            ),
        ) from None
    state, key = _state_dict(content, path)
    expected = set(module.state_dict())
    state, prefix = _strip_prefix(state, expected)
    missing = sorted(expected - set(state))
    unexpected = sorted(set(state) - expected)
    own = module.state_dict()
    mismatched = [
        f"{k} {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in state.items()
        if k in own and tuple(v.shape) != tuple(own[k].shape)
    ]
    where = f"{path}" + (f" ['{key}']" if key else "")
    if mismatched:
        raise WeightsError(
            f"weights in {where} do not fit {type(module).__name__}: shapes differ for {_few(mismatched)}",
            hint="build the model with the arguments it was trained with (in the spec or --kwargs)",
        )
    if state and expected and not set(state) & expected:
        raise WeightsError(
            f"no weight in {where} belongs to {type(module).__name__}: the file has "
            f"{_few(sorted(state))}; the model has {_few(sorted(expected))}",
            hint="check that the weights were saved from this model class",
        )
    if strict and (missing or unexpected):
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing: {_few(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected: {_few(unexpected)}")
        raise WeightsError(
            f"weights in {where} do not match {type(module).__name__}: {'; '.join(parts)}",
            hint="check the model and its arguments; --no-strict-weights loads the keys that match",
        )
    casts = _check_dtypes(state, own, where, type(module).__name__)
    module.load_state_dict(state, strict=False)
    notes = [f"weights: {len(state) - len(unexpected)} tensors from {where}", *casts]
    if prefix:
        notes.append(f"weights: dropped the key prefix {prefix!r}")
    if missing:
        notes.append(f"weights: {len(missing)} missing, left as initialized: {_few(missing)}")
    if unexpected:
        notes.append(f"weights: {len(unexpected)} unexpected, ignored: {_few(unexpected)}")
    return notes
