"""ONNX -> simplified ONNX with onnxsim or onnxslim (the pipeline keeps it only if still correct)."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from exportkit.errors import SimplifyError, first_line
from exportkit.onnxfile import data_locations, drop_props, op_histogram
from exportkit.quiet import native_output

if TYPE_CHECKING:
    import onnx

__all__ = ["Simplifier", "SimplifyResult", "op_counts", "simplify_model"]

logger = logging.getLogger(__name__)

Simplifier = Literal["onnxsim", "onnxslim", "none"]


@dataclass(frozen=True)
class SimplifyResult:
    """What the simplifier did: node counts per op type before and after, sizes, and the verdict.

    ``kept`` is decided by the pipeline after validation; ``reason`` says why it was not kept.
    ``output_lines`` counts what the simplifier printed (kept off the terminal, logged at DEBUG).
    """

    simplifier: str
    path: Path
    seconds: float
    ops_before: Mapping[str, int]
    ops_after: Mapping[str, int]
    bytes_before: int
    bytes_after: int
    kept: bool = True
    reason: str | None = None
    files: tuple[Path, ...] = field(default=())
    #: Lines the simplifier printed (its constant folding warns per op it cannot run): kept off
    #: the terminal, logged at DEBUG (``--debug``).
    output_lines: int = 0

    @property
    def nodes_before(self) -> int:
        return sum(self.ops_before.values())

    @property
    def nodes_after(self) -> int:
        return sum(self.ops_after.values())


def op_counts(path: Path) -> dict[str, int]:
    """Node count per op of the main graph (``domain::Op`` outside ONNX), without its weights."""
    return op_histogram(_graph_only(path).graph.node)


def _graph_only(path: Path) -> onnx.ModelProto:
    """The model without weight bytes: a file with embedded weights (up to 1 GiB) is parsed once
    and copied without its initializers' data, so later steps neither re-read nor hold them."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    for t in model.graph.initializer:
        if t.HasField("raw_data"):
            t.ClearField("raw_data")
    # protobuf (upb) frees a message's memory only with the whole message: keep a small copy.
    small = onnx.ModelProto()
    small.CopyFrom(model)
    return small


def _files(path: Path, model: onnx.ModelProto) -> tuple[Path, ...]:
    """The model file and the external-data files it names."""
    return (path, *sorted(path.parent / loc for loc in data_locations(model)))


def _bytes(files: tuple[Path, ...]) -> int:
    return sum(p.stat().st_size for p in files)


def _restore_metadata(original: onnx.ModelProto, simplified: onnx.ModelProto) -> None:
    """Put the exporter's module hierarchy, which the simplifiers drop, back onto ``simplified``,
    and drop the simplifier's own option dump (``onnxsim.*``), which buries the model
    properties Netron shows; the report says which simplifier ran."""
    from exportkit.hierarchy import carry_metadata

    carry_metadata(original, simplified)
    drop_props(simplified.metadata_props, lambda key: key.startswith("onnxsim."))


def _run(simplifier: Simplifier, source: str | onnx.ModelProto) -> onnx.ModelProto:
    """The simplifier's own call: whatever it raises is its failure, told as a SimplifyError."""
    if simplifier not in ("onnxsim", "onnxslim"):
        raise ValueError(f"unknown simplifier {simplifier!r}")
    try:
        if simplifier == "onnxsim":
            import onnxsim

            model, ok = onnxsim.simplify(source)
        else:
            import onnxslim

            model, ok = onnxslim.slim(source), True
    except Exception as exc:  # the third party's failure, whatever its type; ours stay outside
        raise SimplifyError(
            f"{simplifier} failed: {first_line(exc)}", hint="use --simplifier onnxslim|none"
        ) from exc
    if not ok:
        raise SimplifyError("onnxsim reported that its result is not valid")
    return model  # type: ignore[no-any-return]


def simplify_model(
    src: str | Path, dst: str | Path, *, simplifier: Simplifier = "onnxsim"
) -> SimplifyResult:
    """Simplify the ONNX file ``src`` into ``dst`` (its own folder; external data lands beside it).

    Args:
        src: the exported ONNX file.
        dst: where to write the simplified file.
        simplifier: ``onnxsim`` or ``onnxslim``.

    Raises:
        SimplifyError: the simplifier raised or reported failure (an exception of exportkit's
            own code around it is a bug and propagates as it is).
    """

    from exportkit.external import with_weights, without_weights

    src, dst = Path(src), Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    original = _graph_only(src)  # each file is parsed once: at 400 MB that is half a second
    src_files = _files(src, original)
    # With external data (big models), large weights stay on disk: the simplifier sees them as
    # graph inputs, so neither it nor a second copy of every weight takes memory.
    lifted: dict[str, onnx.TensorProto] = {}
    source: str | onnx.ModelProto = str(src)
    if len(src_files) > 1:
        source, lifted = without_weights(src)
    start = time.perf_counter()
    with native_output(simplifier) as kept:
        model = _run(simplifier, source)
    _restore_metadata(original, model)
    files = with_weights(model, lifted, src.parent, dst)
    ops_after = op_histogram(model.graph.node)
    del model
    seconds = time.perf_counter() - start
    return SimplifyResult(
        simplifier=simplifier,
        path=dst,
        seconds=seconds,
        ops_before=op_histogram(original.graph.node),
        ops_after=ops_after,
        bytes_before=_bytes(src_files),
        bytes_after=_bytes(files),
        files=files,
        output_lines=kept.lines,
    )
