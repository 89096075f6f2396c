"""The two exporter calls (torch.onnx dynamo and TorchScript), with their chatter kept off the terminal."""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from exportkit.inputs import ExampleInputs
from exportkit.quiet import native_output

if TYPE_CHECKING:
    import onnx
    from torch import nn

__all__ = ["export_dynamo", "export_torchscript", "quiet", "weight_bytes"]


@contextlib.contextmanager
def quiet(which: str) -> Iterator[None]:
    """Keep exporter chatter off the user's terminal: progress prints, torchvision notices, the
    TorchScript exporter's IR graph (printed from C++ on fd 1), warnings about traced internals
    (an LSTM's flat weights) that are not the user's to act on and that ``-W error`` would turn
    into a failed export. All of it is logged at DEBUG (``--debug``)."""
    noisy = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = noisy.level
    noisy.setLevel(logging.ERROR)
    try:
        with native_output(f"the {which} exporter"):
            yield
    finally:
        noisy.setLevel(level)


def weight_bytes(module: nn.Module) -> int:
    tensors = list(module.parameters()) + list(module.buffers())
    return sum(t.numel() * t.element_size() for t in tensors)


def export_dynamo(
    module: nn.Module,
    inputs: ExampleInputs,
    path: Path,
    names: Sequence[str],
    opset: int | None,
    external: bool,
    custom_translations: Mapping[Any, Any] | None = None,
) -> onnx.ModelProto:
    """Export with torch.onnx (dynamo); returns the written file's interface (no weights)."""
    import torch

    dynamic_shapes = {n: dict(inputs.dynamic.get(n, {})) or None for n in inputs.tensors}
    with warnings.catch_warnings():
        # Inputs sharing a label (batch, seq) share one symbol; torch notes it drops the repeat.
        warnings.filterwarnings("ignore", "# The axis name", UserWarning)
        program = torch.onnx.export(
            module,
            (),
            kwargs=dict(inputs.tensors),
            dynamo=True,
            dynamic_shapes=dynamic_shapes if inputs.dynamic else None,
            opset_version=opset,
            output_names=list(names),
            verbose=False,
            custom_translation_table=dict(custom_translations) if custom_translations else None,
        )
    assert program is not None
    program.save(str(path), external_data=external)
    return _interface(program.model)


def _interface(model: Any) -> onnx.ModelProto:
    """The inputs, outputs and opsets of an exported onnx_ir model, without its weights: reading
    them back from the file would parse every embedded weight again (half a second at 400 MB)."""
    import onnx
    from onnx_ir import serde

    proto = onnx.ModelProto()
    proto.graph.input.extend(serde.serialize_value(v) for v in model.graph.inputs)
    proto.graph.output.extend(serde.serialize_value(v) for v in model.graph.outputs)
    for domain, version in model.opset_imports.items():
        proto.opset_import.add(domain=domain, version=version)
    return proto


def _keyword_wrapper(module: nn.Module, names: Sequence[str]) -> nn.Module:
    """Wrap so the TorchScript exporter's positional inputs reach forward by keyword, outputs flat."""
    from torch import nn
    from torch.utils._pytree import tree_leaves

    from exportkit.outputs import plain_outputs

    class KeywordWrapper(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = module

        def forward(self, *args: Any) -> Any:
            return tuple(tree_leaves(plain_outputs(self.model(**dict(zip(names, args))))))

    return KeywordWrapper().eval()


def export_torchscript(
    module: nn.Module, inputs: ExampleInputs, path: Path, names: Sequence[str], opset: int | None
) -> None:
    import torch

    in_names = list(inputs.tensors)
    # A TorchScript archive (exportkit.loading) exports as itself: tracing into it through a
    # Python wrapper fails; its inputs are already in its schema's order.
    scripted = getattr(module, "torchscript_module", None)
    wrapper = scripted if scripted is not None else _keyword_wrapper(module, in_names)
    dynamic_axes: dict[str, dict[int, str]] = {n: dict(a) for n, a in inputs.dynamic.items()}
    with warnings.catch_warnings():
        # torch looks for a Python signature on the archive's forward; it has a schema instead.
        warnings.filterwarnings("ignore", "no signature found", UserWarning)
        torch.onnx.export(
            wrapper,
            tuple(inputs.tensors.values()),
            str(path),
            dynamo=False,
            input_names=in_names,
            output_names=list(names),
            dynamic_axes=dynamic_axes or None,
            opset_version=opset or 17,
            verbose=False,
        )
