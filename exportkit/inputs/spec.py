"""The ``--input`` and ``--dynamic`` grammars: ``ids:2x16:int64:[0,30522)``, ``x=data.npy``, ``ids:1=seq``."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from exportkit.errors import InputSpecError

__all__ = ["DATA_SUFFIXES", "DTYPES", "DynamicSpec", "InputSpec", "TensorSpec"]

DTYPES = ("float32", "float64", "float16", "bfloat16", "int64", "int32", "int8", "uint8", "bool")
DATA_SUFFIXES = (".npy", ".npz", ".pt", ".pth")
_DIM_SPLIT = re.compile(r"[x,]")
_INT = re.compile(r"^\s*[+-]?\d+\s*$", re.ASCII)
# Values a draw of each dtype can hold: integers [low, high] inclusive, floats up to +-max. Float
# ranges are drawn in float32 first, so no float range goes past float32's largest value.
_INT_BOUNDS = {
    "int64": (-(2**63), 2**63 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "int8": (-128, 127),
    "uint8": (0, 255),
}
_FLOAT_MAX = {"float16": 65504.0, "bfloat16": 3.38e38, "float32": 3.4e38, "float64": 3.4e38}
_RANGE = re.compile(r"^([\[(])\s*([^,\s]+)\s*,\s*([^,\s\])]+)\s*([\])])$")
_EXAMPLE = (
    "write --input NAME:SHAPE[:DTYPE][:RANGE], e.g. x:2x3x224x224, ids:2x16:int64:[0,30522), "
    "mask:2x16:bool, or NAME=data.npy for real data"
)


@dataclass(frozen=True)
class TensorSpec:
    """How to draw one input: shape, dtype and value range [low, high) (None: the dtype's default).

    ``file`` names the data file a fixed input came from (``x=data.npy``), for the report.
    """

    shape: tuple[int, ...]
    dtype: str = "float32"
    low: float | None = None
    high: float | None = None
    file: str | None = None

    def describe(self, name: str) -> str:
        """The ``--input`` text that rebuilds this spec."""
        if self.file is not None:
            return f"{name}={self.file}"
        shape = "x".join(str(d) for d in self.shape) or "scalar"
        text = f"{name}:{shape}:{self.dtype}"
        if self.low is not None and self.high is not None:
            low, high = (_num(self.low), _num(self.high))
            text += f":[{low},{high})"
        return text


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


@dataclass(frozen=True)
class InputSpec:
    """One ``--input``: ``NAME:SHAPE[:DTYPE][:RANGE]``, ``NAME=FILE`` or a bare ``FILE.npz|.pt``.

    Exactly one of ``tensor`` (random draws) and ``file`` (real data) is set. A bare file holding
    several named arrays has ``name == ""`` and supplies one input per array.
    """

    name: str
    tensor: TensorSpec | None = None
    file: str | None = None

    @classmethod
    def parse(cls, text: str) -> InputSpec:
        """Parse ``x:2x10``, ``ids:2x16:int64:[0,30522)``, ``mask:2x16:bool``, ``x=data.npy``.

        Shapes are ``2x3x224x224`` or ``2,3,224,224`` (``scalar`` for 0-d). A range is
        ``[low,high)`` (``[low,high]`` includes ``high`` for integers); floats are uniform in it,
        integers drawn from it. Without a range floats are N(0, 1) and integers in [0, 10).

        Raises:
            InputSpecError: the text is not of one of these forms.
        """
        name, eq, path = text.partition("=")
        if eq and ":" not in name:
            if not name.isidentifier():
                raise InputSpecError(
                    f"cannot parse --input {text!r}: {name!r} is not a name", hint=_EXAMPLE
                )
            return cls(name, file=_data_path(path, text))
        if text.lower().endswith(DATA_SUFFIXES) and ":" not in text:
            return cls("", file=_data_path(text, text))
        parts = text.split(":")
        if len(parts) < 2 or not parts[0].isidentifier():
            raise InputSpecError(
                f"cannot parse --input {text!r}: expected NAME:SHAPE", hint=_EXAMPLE
            )
        name, shape_text, *rest = parts
        shape = _parse_shape(shape_text, text)
        dtype = "float32"
        low = high = None
        seen_dtype = seen_range = False
        for part in rest:
            part = part.strip()
            if part[:1] in "[(":
                if seen_range:
                    raise InputSpecError(f"--input {text!r} has two ranges", hint=_EXAMPLE)
                low, high, seen_range = *_parse_range(part, text), True
            elif part in DTYPES and not seen_dtype and not seen_range:
                dtype, seen_dtype = part, True
            elif part and not seen_dtype and part[:1].isalpha():
                raise InputSpecError(
                    f"--input {text!r} has unknown dtype {part!r}; known: {', '.join(DTYPES)}",
                    hint=_EXAMPLE,
                )
            else:
                raise InputSpecError(f"cannot parse {part!r} in --input {text!r}", hint=_EXAMPLE)
        if low is not None and high is not None:
            low, high = _fit_range(low, high, dtype, text)
        return cls(name, TensorSpec(shape, dtype, low, high))


def _data_path(path: str, text: str) -> str:
    if not path.lower().endswith(DATA_SUFFIXES):
        raise InputSpecError(
            f"--input {text!r}: {path!r} is not a data file ({', '.join(DATA_SUFFIXES)})",
            hint="write --input NAME=data.npy; save arrays with numpy.save (.npy), numpy.savez "
            "(.npz) or torch.save (.pt)",
        )
    return path


def _parse_shape(shape_text: str, text: str) -> tuple[int, ...]:
    if shape_text.strip() == "scalar":
        return ()
    parts = _DIM_SPLIT.split(shape_text.strip())
    if not shape_text.strip() or not all(_INT.match(d) for d in parts):
        raise InputSpecError(
            f"cannot parse shape {shape_text!r} in --input {text!r}", hint=_EXAMPLE
        )
    dims = tuple(int(d) for d in parts)
    if any(d < 0 for d in dims):
        raise InputSpecError(f"negative dimension in --input {text!r}", hint=_EXAMPLE)
    if any(d == 0 for d in dims):
        raise InputSpecError(
            f"--input {text!r} has a dimension of size 0: the example would hold no values",
            hint="give every dimension a size of 1 or more (2 or more on a dim to keep dynamic)",
        )
    return dims


def _parse_range(part: str, text: str) -> tuple[float, float]:
    """``[0,30522)`` -> (0, 30522); ``[0,9]`` -> (0, 9) with the closing bracket kept by the caller."""
    m = _RANGE.match(part)
    if m is None:
        raise InputSpecError(f"cannot parse range {part!r} in --input {text!r}", hint=_EXAMPLE)
    opening, low_text, high_text, closing = m.groups()
    try:
        low, high = float(low_text), float(high_text)
    except ValueError:
        raise InputSpecError(
            f"range {part!r} in --input {text!r} is not numeric", hint=_EXAMPLE
        ) from None
    if not (math.isfinite(low) and math.isfinite(high)):
        raise InputSpecError(
            f"range {part!r} in --input {text!r} is not finite (nan or inf)",
            hint="give finite ends, e.g. [-1,1) for floats or [0,30522) for token ids",
        )
    if opening == "(":
        raise InputSpecError(
            f"range {part!r} in --input {text!r} must include its low end: write [{low_text},{high_text}{closing}",
            hint=_EXAMPLE,
        )
    if closing == "]":
        high = math.nextafter(high, math.inf) if not high.is_integer() else high + 0.5
    return low, high


def _fit_range(low: float, high: float, dtype: str, text: str) -> tuple[float, float]:
    """Integers: [low, high) with integer ends (``]`` included ``high``); check it is not empty."""
    if dtype in _INT_BOUNDS:
        low, high = math.ceil(low), math.ceil(high)
        least, most = _INT_BOUNDS[dtype]
        # randint draws from [low, high): high itself must be representable for int64.
        if low < least or high > (most if dtype == "int64" else most + 1):
            raise InputSpecError(
                f"--input {text!r}: the range does not fit {dtype} ({least} to {most})",
                hint=f"keep the range within {least} and {most}, or choose a wider dtype",
            )
    elif dtype == "bool":
        low, high = math.ceil(low), math.ceil(high)
    elif max(abs(low), abs(high), high - low) > _FLOAT_MAX[dtype]:
        raise InputSpecError(
            f"--input {text!r}: the range goes past the largest {dtype} "
            f"({_FLOAT_MAX[dtype]:g}), so the draws would be inf",
            hint=f"keep the range within +-{_FLOAT_MAX[dtype]:g}",
        )
    if high <= low:
        raise InputSpecError(
            f"--input {text!r}: the range is empty",
            hint="write --input NAME:SHAPE:DTYPE:[low,high) with low < high",
        )
    if dtype == "bool" and not 0 <= low < high <= 2:
        raise InputSpecError(
            f"--input {text!r}: a bool range lies within [0,2)",
            hint="--input mask:2x16:bool:[0,1) is all False, :[1,2) all True, no range random",
        )
    return low, high


@dataclass(frozen=True)
class DynamicSpec:
    """One ``--dynamic``: ``batch`` (dim 0 of every input) or ``NAME:AXIS[=label]``."""

    input: str | None
    axis: int
    label: str

    @classmethod
    def parse(cls, text: str) -> DynamicSpec:
        """Parse ``batch``, ``x:0``, ``ids:1=seq``.

        Raises:
            InputSpecError: the text is not of that form.
        """
        hint = "write --dynamic batch, or --dynamic NAME:AXIS[=label], for example ids:1=seq"
        if text == "batch":
            return cls(None, 0, "batch")
        spec, _, label = text.partition("=")
        name, sep, axis_text = spec.partition(":")
        if not sep or not name.isidentifier():
            raise InputSpecError(f"cannot parse --dynamic {text!r}", hint=hint)
        if not _INT.match(axis_text):
            raise InputSpecError(
                f"--dynamic {text!r}: axis {axis_text!r} is not a number", hint=hint
            )
        axis = int(axis_text)
        if axis < 0:
            raise InputSpecError(
                f"--dynamic {text!r}: axis {axis} is negative",
                hint="count axes from 0: --dynamic x:0 is the first dim, x:1 the second",
            )
        if label and not label.isidentifier():
            raise InputSpecError(
                f"--dynamic {text!r}: label {label!r} is not an identifier", hint=hint
            )
        return cls(name, axis, label or ("batch" if axis == 0 else f"{name}_dim{axis}"))
