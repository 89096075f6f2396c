"""ONNX -> simplified ONNX with onnxsim or onnxslim (the pipeline keeps it only if still correct)."""

from __future__ import annotations

import contextlib
import io
import logging
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from exportkit.errors import SimplifyError

__all__ = ["Simplifier", "SimplifyResult", "op_counts", "simplify_model"]

logger = logging.getLogger(__name__)

Simplifier = Literal["onnxsim", "onnxslim", "none"]


@dataclass(frozen=True)
class SimplifyResult:
    """What the simplifier did: node counts per op type before and after, sizes, and the verdict.

    ``kept`` is decided by the pipeline after validation; ``reason`` says why it was not kept.
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

    @property
    def nodes_before(self) -> int:
        return sum(self.ops_before.values())

    @property
    def nodes_after(self) -> int:
        return sum(self.ops_after.values())


def op_counts(path: Path) -> dict[str, int]:
    """Node count per op type of the main graph, without loading weights."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return dict(Counter(n.op_type for n in model.graph.node).most_common())


def _files_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in _files(path))


def _files(path: Path) -> tuple[Path, ...]:
    """The model file and the external-data files it names."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    locations = {
        entry.value
        for t in model.graph.initializer
        for entry in t.external_data
        if entry.key == "location"
    }
    return (path, *sorted(path.parent / loc for loc in locations))


def _restore_metadata(src: Path, dst: Path) -> None:
    """Write the exporter's module hierarchy, which the simplifiers drop, back onto ``dst``,
    and drop the simplifier's own option dump (``onnxsim.*``), which buries the model
    properties Netron shows; the report says which simplifier ran.

    Only the graph protobuf is rewritten: weights stay where they are (external data included).
    """
    import onnx

    from exportkit.summary.hierarchy import carry_metadata

    simplified = onnx.load(str(dst), load_external_data=False)
    changed = carry_metadata(onnx.load(str(src), load_external_data=False), simplified)
    props = [p for p in simplified.metadata_props if not p.key.startswith("onnxsim.")]
    if len(props) != len(simplified.metadata_props):
        del simplified.metadata_props[:]
        simplified.metadata_props.extend(props)
        changed += 1
    if changed:
        tmp = dst.with_name(f".{dst.name}.tmp")
        onnx.save_model(simplified, str(tmp))
        tmp.replace(dst)


def simplify_model(
    src: str | Path, dst: str | Path, *, simplifier: Simplifier = "onnxsim"
) -> SimplifyResult:
    """Simplify the ONNX file ``src`` into ``dst`` (its own folder; external data lands beside it).

    Args:
        src: the exported ONNX file.
        dst: where to write the simplified file.
        simplifier: ``onnxsim`` or ``onnxslim``.

    Raises:
        SimplifyError: the simplifier raised or reported failure.
    """
    import onnx

    src, dst = Path(src), Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    external = len(_files(src)) > 1
    start = time.perf_counter()
    chatter = io.StringIO()
    try:
        with contextlib.redirect_stdout(chatter):
            if simplifier == "onnxsim":
                import onnxsim

                model, ok = onnxsim.simplify(str(src))
                if not ok:
                    raise SimplifyError("onnxsim reported that its result is not valid")
                onnx.save_model(
                    model,
                    str(dst),
                    save_as_external_data=external,
                    location=f"{dst.name}.data" if external else None,
                )
            elif simplifier == "onnxslim":
                import onnxslim

                onnxslim.slim(str(src), str(dst))
            else:
                raise ValueError(f"unknown simplifier {simplifier!r}")
    except SimplifyError:
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SimplifyError(
            f"{simplifier} failed: {first}", hint="use --simplifier onnxslim|none"
        ) from exc
    _restore_metadata(src, dst)
    seconds = time.perf_counter() - start
    return SimplifyResult(
        simplifier=simplifier,
        path=dst,
        seconds=seconds,
        ops_before=op_counts(src),
        ops_after=op_counts(dst),
        bytes_before=_files_bytes(src),
        bytes_after=_files_bytes(dst),
        files=_files(dst),
    )
