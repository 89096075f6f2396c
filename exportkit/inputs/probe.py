"""One probe run of forward: which known layer, or which first operation, each argument reaches.

Every forward argument is tagged and followed through torch operations (a ``TorchFunctionMode``);
forward pre-hooks on every submodule with a rule (:mod:`exportkit.inputs.layers`) record the first
layer that receives a tensor derived from each argument, in which slot and with what shape.
Arguments that reach no layer record the first operation that used them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from exportkit.inputs.forward import error_line, slot_name
from exportkit.inputs.layers import SEQ, accepts, fits, has_rule, kind_of
from exportkit.inputs.spec import TensorSpec

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["Consumer", "FirstOp", "Probe", "probe"]


@dataclass
class Consumer:
    """The first known layer that received (something derived from) an argument."""

    path: str
    kind: str
    slot: int | str
    received: tuple[int, ...]
    direct: bool
    candidates: list[TensorSpec]
    module: Any = None


@dataclass
class FirstOp:
    """The first torch operation that used an argument which reached no layer."""

    op: str
    spec: TensorSpec | None


@dataclass
class Probe:
    """What one run found: consumers and first uses per argument, and the error if it failed."""

    consumers: dict[str, Consumer] = field(default_factory=dict)
    # The layer that would have received an argument in a shape it cannot take (the run stops there).
    rejected: dict[str, Consumer] = field(default_factory=dict)
    first_ops: dict[str, FirstOp] = field(default_factory=dict)
    error: str | None = None


class _Rejected(Exception):
    """A known layer was about to receive an argument in a shape it cannot take."""


def probe(module: nn.Module, tensors: Mapping[str, torch.Tensor], targets: Sequence[str]) -> Probe:
    """Run forward once with argument tags; record each target's first consumer and first use."""
    import torch
    from torch.overrides import TorchFunctionMode
    from torch.utils._pytree import tree_leaves

    found = Probe()
    tags: dict[int, frozenset[str]] = {
        id(t): frozenset([n]) for n, t in tensors.items() if n in targets
    }
    originals = {id(t): n for n, t in tensors.items()}
    keep: list[Any] = list(tensors.values())  # keeps ids unique while the probe runs

    def sources(values: Any) -> set[str]:
        out: set[str] = set()
        for leaf in tree_leaves(values):
            if isinstance(leaf, torch.Tensor):
                out |= tags.get(id(leaf), frozenset())
        return out

    class Tagger(TorchFunctionMode):
        def __torch_function__(
            self, func: Any, types: Any, args: Any = (), kwargs: Any = None
        ) -> Any:
            kwargs = kwargs or {}
            srcs = sources((args, kwargs))
            if srcs:
                _note_first_ops(found, func, args, kwargs, tags, originals)
            out = func(*args, **kwargs)
            if srcs:
                for leaf in tree_leaves(out):
                    if isinstance(leaf, torch.Tensor):
                        tags[id(leaf)] = frozenset(srcs)
                        keep.append(leaf)
            return out

    def pre_hook(path: str) -> Any:
        def hook(sub: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            slots: list[tuple[int | str, Any]] = [
                (slot_name(sub, i), a) for i, a in enumerate(args)
            ]
            slots += list(kwargs.items())
            for slot, value in slots:
                if not isinstance(value, torch.Tensor):
                    continue
                for name in tags.get(id(value), frozenset()):
                    candidates = accepts(sub, slot)
                    if not candidates:
                        continue
                    seen = Consumer(
                        path,
                        kind_of(sub) or type(sub).__name__,
                        slot,
                        tuple(value.shape),
                        originals.get(id(value)) == name,
                        candidates,
                        sub,
                    )
                    found.consumers.setdefault(name, seen)
                    dtype = str(value.dtype).removeprefix("torch.")
                    if not fits(sub, candidates, seen.received, dtype):
                        found.rejected[name] = seen
                        shape = "x".join(map(str, seen.received)) or "scalar"
                        raise _Rejected(
                            f"{path} ({seen.kind}) would get {name} as {shape} {dtype}; "
                            f"it takes e.g. {candidates[0].describe(str(seen.slot))}"
                        )

        return hook

    handles = [
        sub.register_forward_pre_hook(pre_hook(path), with_kwargs=True)
        for path, sub in module.named_modules()
        if path and has_rule(sub) and not isinstance(sub, torch.jit.ScriptModule)
    ]
    try:
        with torch.no_grad(), Tagger():
            module(**tensors)
    except _Rejected as exc:
        found.error = str(exc)
    except Exception as exc:
        found.error = error_line(exc)
    finally:
        for h in handles:
            h.remove()
    return found


_MASK_OPS = {
    "masked_fill": 1,
    "masked_fill_": 1,
    "where": 0,
    "masked_select": 1,
    "masked_scatter": 1,
}
_ARITH = {
    "add",
    "sub",
    "mul",
    "div",
    "__add__",
    "__sub__",
    "__mul__",
    "__truediv__",
    "__radd__",
    "__rmul__",
    "__rsub__",
    "__rtruediv__",
    "add_",
    "mul_",
    "matmul",
    "__matmul__",
}


def _note_first_ops(
    found: Probe,
    func: Any,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    tags: Mapping[int, frozenset[str]],
    originals: Mapping[int, str],
) -> None:
    """Remember how an argument is first used, for arguments that may reach no layer.

    Only a use of the argument itself (not of something computed from it) gives a shape: a mask
    takes the masked tensor's shape, an arithmetic operand the other operand's.
    """
    import torch

    op = getattr(func, "__name__", str(func))
    values = list(args) + list(kwargs.values())
    for i, value in enumerate(values):
        if not isinstance(value, torch.Tensor):
            continue
        for name in tags.get(id(value), frozenset()):
            if name in found.first_ops:
                continue
            others = [
                v
                for j, v in enumerate(values)
                if j != i
                and isinstance(v, torch.Tensor)
                and name not in tags.get(id(v), frozenset())
            ]
            spec = None
            if originals.get(id(value)) != name:
                pass
            elif op in _MASK_OPS and i == _MASK_OPS[op] and others:
                spec = TensorSpec(tuple(others[0].shape), "bool")
            elif op in _ARITH and others and others[0].dim() >= value.dim():
                other = others[0]
                if op in ("matmul", "__matmul__"):
                    # A @ B: an unknown A ends in B's rows; an unknown B starts with A's columns.
                    shape = (
                        (*other.shape[:-2], SEQ, other.shape[-2])
                        if i == 0
                        else (*other.shape[:-2], other.shape[-1], SEQ)
                    )
                else:
                    shape = tuple(other.shape)
                dt = (
                    str(other.dtype).removeprefix("torch.")
                    if other.dtype.is_floating_point
                    else "float32"
                )
                spec = TensorSpec(tuple(shape), dt)
            found.first_ops[name] = FirstOp(op, spec)
