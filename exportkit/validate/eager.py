"""Eager side of localization: every module call's inputs and outputs, in the order PyTorch
finished them, recorded with forward hooks."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from exportkit.validate.cases import Case, to_numpy

if TYPE_CHECKING:
    import numpy as np
    from torch import nn

__all__ = ["Call", "eager_calls"]


@dataclass
class Call:
    path: str
    parent: int | None
    inputs: list[np.ndarray]
    outputs: list[np.ndarray] = field(default_factory=list)
    done: int = -1


def _tensors(value: Any) -> list[np.ndarray]:
    import torch
    from torch.utils._pytree import tree_leaves

    from exportkit.outputs import plain_outputs

    return [
        to_numpy(leaf.detach().clone())
        for leaf in tree_leaves(plain_outputs(value))
        if isinstance(leaf, torch.Tensor)
    ]


@contextlib.contextmanager
def _recording(model: nn.Module) -> Iterator[list[Call]]:
    calls: list[Call] = []
    stack: list[int] = []
    counter = [0]
    handles = []

    def pre(path: str) -> Any:
        def hook(_m: Any, args: Any, kwargs: Any) -> None:
            calls.append(Call(path, stack[-1] if stack else None, _tensors((args, kwargs))))
            stack.append(len(calls) - 1)

        return hook

    def post(_m: Any, _args: Any, _kwargs: Any, output: Any) -> None:
        index = stack.pop()
        calls[index].outputs = _tensors(output)
        calls[index].done = counter[0]
        counter[0] += 1

    for path, sub in model.named_modules():
        handles.append(sub.register_forward_pre_hook(pre(path), with_kwargs=True))
        handles.append(sub.register_forward_hook(post, with_kwargs=True))
    try:
        yield calls
    finally:
        for h in handles:
            h.remove()


def eager_calls(model: nn.Module, case: Case) -> list[Call]:
    import torch

    with _recording(model) as calls, torch.no_grad():
        model(**case.inputs.tensors)
    return calls
