"""Model specs -> an ``nn.Module`` in eval mode (+ weights, + inputs its source knows).

Spec forms (see :class:`ModelSpec`): ``path/to/file.py:Name``, ``pkg.module:Name``, either with
literal arguments ``Name(depth=3)``; ``model.pt`` (TorchScript); ``model.pt2`` (torch.export);
``hf:path/to/folder`` (a HuggingFace config.json, built offline).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from exportkit.errors import SpecError
from exportkit.inputs import SuggestedInputs
from exportkit.loading.spec import ModelSpec, SpecKind

if TYPE_CHECKING:
    from torch import nn

__all__ = ["LoadedModel", "ModelSpec", "SpecKind", "load_model"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to export: the module in eval mode, plus where it came from.

    ``example_inputs`` is the model's own ``example_inputs`` (on the module or in its file);
    ``suggested`` holds inputs its source knows (a HuggingFace config, a torch.export archive);
    ``notes`` say what loading did (weights loaded, config changes) for the report.
    """

    module: nn.Module
    name: str
    source: str
    example_inputs: Callable[[], Any] | None = None
    suggested: SuggestedInputs | None = None
    notes: tuple[str, ...] = ()
    kind: str = "file"


@contextlib.contextmanager
def _seeded(seed: int | None) -> Iterator[None]:
    """Seed random initialization (models built without weights) without touching global RNG state."""
    if seed is None:
        yield
        return
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def load_model(
    spec: str | ModelSpec,
    *,
    kwargs: Mapping[str, Any] | None = None,
    weights: str | Path | None = None,
    strict_weights: bool = True,
    seed: int | None = 0,
) -> LoadedModel:
    """Import or read the model a spec names, load weights, and put it in eval mode.

    Args:
        spec: any :class:`ModelSpec` form.
        kwargs: extra constructor keyword arguments (``--kwargs``), merged over the spec's own;
            for ``hf:`` specs, config attributes to set.
        weights: a state dict, checkpoint or ``.safetensors`` file to load (``--weights``).
        strict_weights: missing or unexpected weight keys are an error.
        seed: seeds random initialization while building (None leaves the global RNG alone).

    Returns:
        The model, its display name, its declared ``example_inputs``, and inputs its source knows.

    Raises:
        SpecError: the spec names nothing loadable, or the constructor's arguments do not fit.
        WeightsError: the weights file cannot be read or does not fit the model.
        LoadError: the model's file raised while importing, or its constructor raised.
    """
    parsed = spec if isinstance(spec, ModelSpec) else ModelSpec.parse(spec)
    extra = dict(kwargs or {})
    namespace: Any = None
    suggested: SuggestedInputs | None = None
    notes: list[str] = []
    with _seeded(seed):
        if parsed.kind in ("file", "module"):
            from exportkit.loading.python import load_python

            module, namespace, imported = load_python(parsed, extra, seed=seed)
            notes += imported
        elif parsed.kind == "hf":
            from exportkit.loading.hf import load_hf

            module, suggested, notes = load_hf(Path(parsed.target), extra)
        else:
            if extra:
                raise SpecError(
                    f"{parsed.target} is a saved model; it takes no constructor arguments",
                    hint="drop --kwargs",
                )
            from exportkit.loading.archives import load_exported, load_torchscript

            if parsed.kind == "torchscript":
                module = load_torchscript(Path(parsed.target))
            else:
                module, suggested = load_exported(Path(parsed.target))
    if weights is not None:
        if parsed.kind in ("torchscript", "exported"):
            raise SpecError(
                f"{parsed.target} is a saved model with its weights inside; --weights does not apply",
                hint="drop --weights, or name the model's class: path/to/model.py:Net --weights FILE",
            )
        from exportkit.loading.weights import load_weights

        notes += load_weights(module, weights, strict=strict_weights)
    module.eval()
    declared = getattr(module, "example_inputs", None)
    if not callable(declared):
        declared = getattr(namespace, "example_inputs", None) if namespace is not None else None
    return LoadedModel(
        module=module,
        name=parsed.name,
        source=parsed.text,
        example_inputs=declared if callable(declared) else None,
        suggested=suggested,
        notes=tuple(notes),
        kind=parsed.kind,
    )
