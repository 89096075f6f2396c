"""int8 files: onnxruntime.quantization, dynamic for MatMul/Gemm graphs, static QDQ otherwise.

``auto`` picks by what the graph holds: convolutions want static quantization (activations
calibrated, weights per channel); graphs whose weight is in MatMul/Gemm (transformers, MLPs) get
dynamic quantization, which needs no calibration and keeps activations' ranges per call.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from exportkit.errors import InputSpecError
from exportkit.variants.files import staged, variant_path
from exportkit.variants.results import Int8Mode, Made, Thresholds
from exportkit.variants.runner import feeds, open_session, run_trials

if TYPE_CHECKING:
    import numpy as np

    from exportkit.validate import Case

__all__ = ["calibration_feeds", "make_int8", "pick_mode"]

_CONV = {"Conv", "ConvTranspose"}
_MATMUL = {"MatMul", "Gemm"}


def pick_mode(float_path: Path) -> tuple[Literal["dynamic", "static"], str]:
    """``auto``'s choice for the file and why."""
    import onnx

    ops = Counter(
        n.op_type for n in onnx.load(str(float_path), load_external_data=False).graph.node
    )
    convs = sum(ops[o] for o in _CONV)
    matmuls = sum(ops[o] for o in _MATMUL)
    if convs:
        return "static", f"{convs} convolutions"
    if matmuls:
        return "dynamic", f"{matmuls} MatMul/Gemm, no convolutions"
    return "static", "no MatMul/Gemm"


def _samples(arrays: Mapping[str, np.ndarray], ranks: Mapping[str, int]) -> list[dict[str, Any]]:
    """One feed per sample: arrays one rank above the input's are split along their first dim."""
    split = {n: a.ndim == ranks.get(n, a.ndim) + 1 for n, a in arrays.items()}
    count = {len(a) for n, a in arrays.items() if split[n]}
    if len(count) > 1:
        raise InputSpecError(
            f"calibration arrays hold different numbers of samples: {sorted(count)}",
            hint="give every input the same number of samples along the first dim",
        )
    if not count:
        return [dict(arrays)]
    n = count.pop()
    return [{k: (a[i] if split[k] else a) for k, a in arrays.items()} for i in range(n)]


def calibration_feeds(
    sess: Any, cases: Sequence[Case], calibrate: str | None
) -> list[dict[str, Any]]:
    """Feeds to calibrate on: the data file's samples, else every case's inputs.

    Raises:
        InputSpecError: the file is unreadable or does not name the file's inputs.
    """
    if calibrate is None:
        return [feeds(sess, c.inputs) for c in cases if c.error is None]
    from exportkit.inputs.data import load_data

    name, sep, file = calibrate.rpartition("=")
    tensors = load_data(file if sep else calibrate, name if sep else "")
    wanted = {i.name: len(i.shape) for i in sess.get_inputs()}
    missing = [n for n in wanted if n not in tensors]
    if missing:
        raise InputSpecError(
            f"--calibrate {calibrate}: no array for input {', '.join(missing)}; "
            f"it holds {', '.join(tensors) or 'nothing'}",
            hint="save one array per model input, named like it: numpy.savez(f, x=...)",
        )
    arrays = {n: tensors[n].float().numpy() if tensors[n].is_floating_point() else tensors[n].numpy()
              for n in wanted}  # fmt: skip
    return _samples(arrays, wanted)


class _Reader:
    """onnxruntime's CalibrationDataReader protocol over a list of feeds."""

    def __init__(self, samples: list[dict[str, Any]]) -> None:
        self._it: Iterator[dict[str, Any]] = iter(samples)

    def get_next(self) -> dict[str, Any] | None:
        return next(self._it, None)


def make_int8(
    float_path: Path,
    cases: Sequence[Case],
    *,
    mode: Int8Mode,
    calibrate: str | None,
    thresholds: Thresholds,
) -> Made:
    """The int8 file, judged by cosine/SQNR/top-1 against eager PyTorch."""
    from onnxruntime.quantization import QuantFormat, quantize_dynamic, quantize_static

    from exportkit.external import has_external_data
    from exportkit.quiet import captured

    target = variant_path(float_path, "int8")
    external = has_external_data(float_path)
    chosen, why = pick_mode(float_path) if mode == "auto" else (mode, "--int8 " + mode)
    samples: list[dict[str, Any]] = []
    if chosen == "static":
        samples = calibration_feeds(open_session(float_path), cases, calibrate)
    # onnxruntime.quantization logs advice on the root logger ("consider pre-processing"):
    # kept for --debug, off the terminal.
    with staged(target, external=external) as tmp, captured("onnxruntime quantization"):
        if chosen == "dynamic":
            quantize_dynamic(float_path, tmp, use_external_data_format=external)
        else:
            quantize_static(
                float_path, tmp, _Reader(samples), quant_format=QuantFormat.QDQ,
                per_channel=True, use_external_data_format=external,
            )  # fmt: skip
    if chosen == "dynamic":
        method = f"dynamic (weights int8, activations per call; {why})"
    else:
        source = f"--calibrate {calibrate}" if calibrate else "the validation inputs"
        method = (
            f"static QDQ, per-channel ({why}); calibrated on {len(samples)} samples of {source}"
        )
    if mode == "dynamic" and calibrate:
        method += "; --calibrate unused by dynamic quantization"
    trials = run_trials(target, cases, thresholds=thresholds)
    return Made(target, method, "metrics", trials, thresholds=thresholds)
