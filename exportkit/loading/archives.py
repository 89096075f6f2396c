"""Whole saved models: TorchScript archives (``torch.jit.load``) and torch.export archives (``.pt2``)."""

from __future__ import annotations

import inspect
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from exportkit.errors import LoadError, SpecError
from exportkit.inputs import SuggestedInputs
from exportkit.inputs.make import spec_of
from exportkit.quiet import captured

if TYPE_CHECKING:
    from torch import nn

__all__ = ["load_exported", "load_torchscript"]


def _named_forward(
    inner: nn.Module, names: Sequence[str], class_name: str, *, scripted: bool = False
) -> nn.Module:
    """Wrap a module whose forward has no Python signature, so inputs reach it by name.

    With ``scripted``, the wrapper's ``torchscript_module`` is the archive's ScriptModule, which
    the TorchScript exporter must be given directly.
    """
    from torch import nn

    order = list(names)

    def forward(self: Any, *args: Any, **kwargs: Any) -> Any:
        values = list(args) + [kwargs[n] for n in order[len(args) :] if n in kwargs]
        return self.inner(*values)

    params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    params += [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in order]
    forward.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]

    def init(self: Any) -> None:
        nn.Module.__init__(self)
        self.inner = inner

    def train(self: Any, mode: bool = True) -> Any:
        # A torch.export program's module refuses train()/eval(); it runs as it was exported.
        self.training = mode
        if not _is_program(self.inner):
            self.inner.train(mode)
        return self

    attrs: dict[str, Any] = {"__init__": init, "forward": forward, "train": train}
    if scripted:
        attrs["torchscript_module"] = property(lambda self: self.inner)
    cls = type(class_name, (nn.Module,), attrs)
    wrapper: nn.Module = cls()
    return wrapper.eval()


def _is_program(module: Any) -> bool:
    """An ExportedProgram's module (``program.module()``), which has no train mode to switch."""
    from torch import fx

    return isinstance(module, fx.GraphModule) and hasattr(module, "_in_spec")


def _exists(path: Path) -> None:
    if path.is_dir():
        raise SpecError(f"{path} is a folder, not a model file", hint="name the file inside it")
    if not path.is_file():
        raise SpecError(
            f"model file {str(path)!r} does not exist",
            hint=f"check the path; it is read relative to {Path.cwd()}",
        )


FileKind = Literal["exported", "torchscript", "torch.save", "pickle", "safetensors", "zip", "empty"]
_KINDS: dict[FileKind, str] = {
    "exported": "a torch.export archive",
    "torchscript": "a TorchScript archive",
    "torch.save": "a torch.save file (a state dict, or pickled Python objects)",
    "pickle": "a Python pickle",
    "safetensors": "a safetensors weights file",
    "zip": "a zip archive with no torch model in it",
    "empty": "an empty file",
}


def sniff(path: Path) -> FileKind | None:
    """What a saved-model file holds, read from its first bytes and zip directory, never
    unpickled; None when it is none of the kinds torch writes."""
    try:
        with path.open("rb") as f:
            head = f.read(16)
        if not head:
            return "empty"
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        else:
            names = []
    except (OSError, zipfile.BadZipFile):
        return None
    if any(
        n.rsplit("/", 1)[-1] in ("archive_format", "serialized_exported_program.json")
        for n in names
    ):
        return "exported"
    if any("/code/" in n or n.endswith("constants.pkl") for n in names):
        return "torchscript"
    if any(n.endswith("data.pkl") for n in names):
        return "torch.save"
    if names:
        return "zip"
    if head[:1] == b"\x80" and 2 <= head[1] <= 5:
        return "pickle"
    if len(head) > 8 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < 1 << 30:
        return "safetensors"
    return None


_SAVE: dict[FileKind, str] = {
    "exported": "write one with torch.export.save(torch.export.export(model, args), 'model.pt2')",
    "torchscript": "write one with torch.jit.save(torch.jit.script(model), 'model.pt')",
}


def _wrong_kind(path: Path, kind: FileKind, expected: FileKind) -> SpecError:
    """The error for a file that holds something else than its name says."""
    what = f"{path} is not {_KINDS[expected]}: it is {_KINDS[kind]}"
    if kind in ("torch.save", "pickle", "safetensors"):
        return SpecError(
            what,
            hint=f"weights need their model: path/to/model.py:Net --weights {path} "
            "(exportkit never unpickles a file)",
        )
    if kind == "empty":
        return SpecError(what, hint="the file was not written completely; save it again")
    if kind == "zip":
        return SpecError(what, hint=_SAVE[expected])
    suffix = ".pt2" if kind == "exported" else ".pt"
    return SpecError(what, hint=f"name it with the {suffix} suffix: {path.with_suffix(suffix)}")


def load_torchscript(path: Path) -> nn.Module:
    """A TorchScript archive as a module whose forward takes the archive's argument names.

    Raises:
        SpecError: the file is missing, or is not a TorchScript archive (a state dict, say).
    """
    import torch

    _exists(path)
    kind = sniff(path)
    if kind is not None and kind != "torchscript":
        raise _wrong_kind(path, kind, "torchscript")
    try:
        with captured(f"reading {path}") as kept, warnings.catch_warnings():
            # torch deprecates TorchScript; reading an archive the user already has is still right.
            warnings.simplefilter("ignore", DeprecationWarning)
            scripted = torch.jit.load(str(path), map_location="cpu")  # type: ignore[no-untyped-call]
    except Exception as exc:
        raise SpecError(
            f"{path} is not a TorchScript archive ({kept.reason(exc)})",
            hint=f"a state dict needs its model: path/to/model.py:Net --weights {path}; "
            "a torch.export archive is read from a .pt2 file",
        ) from None
    schema = scripted.forward.schema
    names = [a.name for a in schema.arguments[1:]]
    name = getattr(scripted, "original_name", "") or path.stem
    return _named_forward(scripted, names, name, scripted=True)


def load_exported(path: Path) -> tuple[nn.Module, SuggestedInputs | None]:
    """A torch.export archive: its program as a module, with the program's own example inputs.

    Dims that are symbolic in the program are suggested as dynamic (labels shared where the
    program shares a symbol).

    Raises:
        SpecError: the file is missing or is not a torch.export archive.
        LoadError: the archive was read but its program cannot be turned into a module.
    """
    import torch

    _exists(path)
    kind = sniff(path)
    if kind is not None and kind != "exported":
        raise _wrong_kind(path, kind, "exported")
    try:
        with captured(f"reading {path}") as kept:
            program = torch.export.load(str(path))
    except Exception as exc:
        raise SpecError(
            f"{path} is not a torch.export archive ({kept.reason(exc)})",
            hint=_SAVE["exported"],
        ) from None
    try:
        inner = program.module()
    except Exception as exc:
        raise LoadError(f"cannot run the program in {path}: {exc}") from exc
    names = _program_names(inner, program)
    module = _named_forward(inner, names, path.stem)
    return module, _program_inputs(program, names)


def _program_names(inner: nn.Module, program: Any) -> list[str]:
    try:
        return list(inspect.signature(inner.forward).parameters)
    except (TypeError, ValueError):
        return list(program.graph_signature.user_inputs)


def _program_inputs(program: Any, names: Sequence[str]) -> SuggestedInputs | None:
    import torch

    example = getattr(program, "example_inputs", None)
    if not example:
        return None
    args, kwargs = example
    values = list(args) + [kwargs[n] for n in names[len(args) :] if n in kwargs]
    if len(values) != len(names) or not all(isinstance(v, torch.Tensor) for v in values):
        return None
    tensors = dict(zip(names, values))
    return SuggestedInputs(
        specs={n: spec_of(t) for n, t in tensors.items()},
        source="archive",
        tensors=tensors,
        dynamic=_symbolic_dims(program, names),
        notes=("inputs: the archive's own example inputs",),
    )


def _symbolic_dims(program: Any, names: Sequence[str]) -> dict[str, dict[int, str]]:
    """Input dims that are symbols in the program: name -> {axis: label}."""
    import torch

    placeholders = {
        n.name: n
        for n in program.graph.nodes
        if n.op == "placeholder" and n.name in program.graph_signature.user_inputs
    }
    labels: dict[str, str] = {}
    out: dict[str, dict[int, str]] = {}
    user = list(program.graph_signature.user_inputs)
    for name, node_name in zip(names, user):
        val = placeholders[node_name].meta.get("val") if node_name in placeholders else None
        if val is None:
            continue
        for axis, dim in enumerate(val.shape):
            if isinstance(dim, torch.SymInt):
                symbol = str(dim)
                if symbol not in labels:
                    labels[symbol] = (
                        "batch"
                        if axis == 0 and "batch" not in labels.values()
                        else f"{name}_dim{axis}"
                    )
                out.setdefault(name, {})[axis] = labels[symbol]
    return out
