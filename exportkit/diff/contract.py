"""The contract of two files side by side: inputs and outputs by name, dtype and shape, opsets."""

from __future__ import annotations

from typing import Literal

from exportkit.diff.results import ContractDiff, Status, TensorChange
from exportkit.summary.results import Dim, GraphSummary, TensorInfo

__all__ = ["compare_contract", "compare_tensor"]


def compare_contract(a: GraphSummary, b: GraphSummary) -> ContractDiff:
    """Inputs and outputs matched by name; opset imports, IR version and producer."""
    domains = list(dict.fromkeys([*a.opsets, *b.opsets]))
    return ContractDiff(
        inputs=_tensors(a.inputs, b.inputs, "input"),
        outputs=_tensors(a.outputs, b.outputs, "output"),
        opsets={d: (a.opsets.get(d), b.opsets.get(d)) for d in domains},
        ir_version=(a.ir_version, b.ir_version),
        producer=(a.producer, b.producer),
    )


def _tensors(
    a: tuple[TensorInfo, ...], b: tuple[TensorInfo, ...], kind: Literal["input", "output"]
) -> tuple[TensorChange, ...]:
    by_name = {t.name: t for t in b}
    out = [compare_tensor(t, by_name.get(t.name), kind) for t in a]
    seen = {t.name for t in a}
    out += [TensorChange(t.name, kind, "added", None, t) for t in b if t.name not in seen]
    return tuple(out)


def compare_tensor(
    a: TensorInfo, b: TensorInfo | None, kind: Literal["input", "output"]
) -> TensorChange:
    """One input or output: dtype, rank, and each dim (symbolic dims compared by name)."""
    if b is None:
        return TensorChange(a.name, kind, "removed", a, None)
    findings: list[str] = []
    lost: list[int] = []
    if a.dtype != b.dtype:
        findings.append(f"dtype {a.dtype or '?'} -> {b.dtype or '?'}")
    if a.shape is None or b.shape is None or len(a.shape) != len(b.shape):
        if a.shape != b.shape:
            findings.append(f"shape {_shape(a.shape)} -> {_shape(b.shape)}")
    else:
        for axis, (da, db) in enumerate(zip(a.shape, b.shape, strict=True)):
            text = _dim_change(da, db)
            if text:
                findings.append(f"dim {axis}: {text}")
                if isinstance(da, str) and isinstance(db, int):
                    lost.append(axis)
    status: Status = "changed" if findings else "same"
    return TensorChange(a.name, kind, status, a, b, tuple(findings), tuple(lost))


def _dim_change(a: Dim, b: Dim) -> str | None:
    if a == b:
        return None
    if isinstance(a, str) and isinstance(b, int):
        return f"was dynamic ({a}), now fixed at {b}"
    if isinstance(a, int) and isinstance(b, str):
        return f"was fixed at {a}, now dynamic ({b})"
    if isinstance(a, str) and isinstance(b, str):
        return f"dynamic dim renamed {a} -> {b}"
    return f"{'?' if a is None else a} -> {'?' if b is None else b}"


def _shape(shape: tuple[Dim, ...] | None) -> str:
    if shape is None:
        return "unknown"
    return "[" + " x ".join("?" if d is None else str(d) for d in shape) + "]"
