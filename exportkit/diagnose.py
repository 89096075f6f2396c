"""Where in the eager model something happens: the module and source line of an exception or op.

Shared by the export stage (which module uses the operator an exporter cannot convert) and the
validation stage (which module raised when PyTorch itself fails at another size).
"""

from __future__ import annotations

import contextlib
import inspect
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

    from exportkit.inputs import ExampleInputs

__all__ = [
    "Location",
    "classname",
    "forward_source",
    "is_user_file",
    "locate_exception",
    "locate_op",
]

# Frames in these folders are library code, not the user's model.
_LIBRARY = ("/torch/", "/site-packages/", "/dist-packages/")


@dataclass(frozen=True)
class Location:
    """A PyTorch module (``""`` is the model itself), its class, and a source line when known."""

    module: str
    cls: str
    source: str | None = None
    code: str | None = None

    def describe(self) -> str:
        name = self.module or "the model itself"
        where = f", {self.source}" if self.source else ""
        code = f" `{self.code}`" if self.code else ""
        return f"{name} ({self.cls}{where}){code}"


def classname(module: nn.Module) -> str:
    """The class name of a module as its author wrote it."""
    return type(module).__qualname__


def forward_source(module: nn.Module) -> str | None:
    """``file.py:line`` of the module's ``forward`` definition."""
    forward = type(module).forward
    try:
        file = inspect.getsourcefile(forward)
        line = inspect.getsourcelines(forward)[1]
    except (OSError, TypeError):
        return None
    return f"{file}:{line}" if file else None


_OWN = str(__import__("pathlib").Path(__file__).parent) + "/"


def is_user_file(file: str) -> bool:
    """Whether a file (or ``file:line``) is the user's code, not a library's or exportkit's."""
    return _is_user(file)


def _is_user(file: str) -> bool:
    return not any(m in file for m in _LIBRARY) and not file.startswith(_OWN)


def locate_exception(
    model: nn.Module, exc: BaseException, *, deepest: bool = False
) -> Location | None:
    """The module and user source line where an eager forward raised (innermost user frame).

    With ``deepest``, when no user frame lies inside a submodule (a library model, such as a
    transformers one under a wrapper, has none), the innermost module frame of any file."""
    ids = {id(m): p for p, m in model.named_modules()}
    tb = exc.__traceback__
    best: Location | None = None
    inner: Location | None = None
    while tb is not None:
        frame = tb.tb_frame
        owner = frame.f_locals.get("self")
        path = ids.get(id(owner)) if owner is not None else None
        file = frame.f_code.co_filename
        if path is not None and (_is_user(file) or (deepest and path)):
            try:
                code = inspect.getframeinfo(frame).code_context or [""]
            except (OSError, IndexError):
                code = [""]
            module = model.get_submodule(path) if path else model
            found = Location(
                path, classname(module), f"{file}:{tb.tb_lineno}", code[0].strip() or None
            )
            if _is_user(file):
                best = found
            else:
                inner = found
        tb = tb.tb_next
    if deepest and inner is not None and (best is None or not best.module):
        return inner
    return best


def op_base(op: str) -> str:
    """``aten::linalg_qr``, ``aten.linalg_qr.default``, ``mylib::swish`` -> ``linalg_qr``, ``swish``."""
    if "::" in op:
        return op.split("::", 1)[1].split(".")[0]
    parts = op.split(".")
    return parts[-2] if len(parts) >= 3 else parts[-1] if len(parts) == 2 else op


@contextlib.contextmanager
def _module_stack(model: nn.Module) -> Iterator[list[str]]:
    stack: list[str] = []
    handles = []
    for path, sub in model.named_modules():

        def pre(_m: Any, _a: Any, path: str = path) -> None:
            stack.append(path)

        def post(_m: Any, _a: Any, _o: Any) -> None:
            if stack:
                stack.pop()

        handles += [sub.register_forward_pre_hook(pre), sub.register_forward_hook(post)]
    try:
        yield stack
    finally:
        for h in handles:
            h.remove()


def locate_op(model: nn.Module, inputs: ExampleInputs, op: str) -> Location | None:
    """Run the model once and return where it first calls ``op`` (an aten op or torch function).

    Both the torch-function level (``linalg_eigvalsh``) and the dispatcher level
    (``_linalg_eigh``) are watched, since exporters name ops at either.
    """
    import torch
    from torch.overrides import TorchFunctionMode
    from torch.utils._python_dispatch import TorchDispatchMode

    target = op_base(op)
    found: list[Location] = []

    def seen(name: str, stack: list[str]) -> None:
        if found or op_base(name) != target:
            return
        frame = next((f for f in reversed(traceback.extract_stack()) if _is_user(f.filename)), None)
        path = stack[-1] if stack else ""
        module = model.get_submodule(path) if path else model
        source = f"{frame.filename}:{frame.lineno}" if frame else forward_source(module)
        found.append(
            Location(path, classname(module), source, (frame.line or None) if frame else None)
        )

    class Functions(TorchFunctionMode):
        def __torch_function__(
            self, func: Any, types: Any, args: Any = (), kwargs: Any = None
        ) -> Any:
            seen(getattr(func, "__name__", ""), stack)
            return func(*args, **(kwargs or {}))

    class Dispatch(TorchDispatchMode):  # type: ignore[no-untyped-call]
        def __torch_dispatch__(
            self, func: Any, types: Any, args: Any = (), kwargs: Any = None
        ) -> Any:
            schema = getattr(func, "_schema", None)
            seen(str(schema.name) if schema is not None else str(func), stack)
            return func(*args, **(kwargs or {}))

    guard = contextlib.suppress(Exception)
    with _module_stack(model) as stack, guard, torch.no_grad(), Functions(), Dispatch():  # type: ignore[no-untyped-call]
        model(**inputs.tensors)
    return found[0] if found else None
