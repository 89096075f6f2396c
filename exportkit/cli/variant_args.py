"""The deployment flags (``--variant``, ``--int8``, ``--calibrate``, ``--provider``,
``--profile``, the int8 thresholds) as one add/parse pair."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_variant_options", "parse_variant_options"]


def add_variant_options(p: argparse.ArgumentParser) -> None:
    """On ``export``/``view``: every flag; on ``check`` (a file made elsewhere): the judging ones."""
    made_here = p.prog.split()[-1] != "check"
    g = p.add_argument_group("deployment variants and speed")
    if made_here:
        g.add_argument(
            "--variant",
            action="append",
            default=[],
            choices=("fp16", "int8", "ort-opt"),
            help="also write <stem>.<variant>.onnx beside the file, validated against eager "
            "PyTorch at the same cases and timed: fp16 (float16, float32 inputs/outputs; "
            "overflowing nodes kept float32), int8 (onnxruntime.quantization), ort-opt "
            "(onnxruntime's offline-optimized graph). Repeat. Example: --variant fp16 --variant int8",
        )
        g.add_argument(
            "--int8",
            choices=("auto", "dynamic", "static"),
            default="auto",
            help="int8 method: dynamic (quantize_dynamic), static (QDQ, per-channel, calibrated) "
            "or auto: static for convolutional graphs, dynamic for MatMul/Gemm graphs (default)",
        )
        g.add_argument(
            "--calibrate",
            metavar="FILE | NAME=FILE",
            help="static int8 calibration data (.npz with an array per input, .npy, .pt; an "
            "extra leading dim is the sample index); default: the validation inputs. "
            "Example: --calibrate calib.npz",
        )
        g.add_argument(
            "--profile",
            action="store_true",
            help="onnxruntime's profiler per node, summed per PyTorch module, eager time beside it",
        )
    g.add_argument(
        "--provider",
        action="append",
        default=[],
        metavar="NAME",
        help="also validate and time on this onnxruntime execution provider (CUDA, TensorRT, "
        "OpenVINO, CoreML, DirectML); CPU always runs. Example: --provider CUDA",
    )
    g.add_argument("--latency-budget", type=float, default=1.0, metavar="SECONDS",
                   help="seconds of timed runs per file, after warm-up (default 1; 0: no timing)")  # fmt: skip
    g.add_argument("--min-cosine", type=float, default=0.99, metavar="X",
                   help="int8: lowest cosine similarity to eager PyTorch per output (default 0.99)")  # fmt: skip
    g.add_argument("--min-sqnr", type=float, default=20.0, metavar="DB",
                   help="int8: lowest signal-to-quantization-noise ratio in dB (default 20)")  # fmt: skip
    g.add_argument("--min-top1", type=float, default=0.9, metavar="X",
                   help="int8: lowest top-1 agreement for class-score outputs (default 0.9)")  # fmt: skip


def parse_variant_options(args: argparse.Namespace) -> dict[str, Any]:
    from exportkit.variants import Thresholds

    out: dict[str, Any] = {
        "providers": tuple(args.provider),
        "thresholds": Thresholds(args.min_cosine, args.min_sqnr, args.min_top1),
        "latency_budget": args.latency_budget,
    }
    if hasattr(args, "variant"):
        out.update(
            variants=tuple(args.variant), int8=args.int8, calibrate=args.calibrate,
            profile=args.profile,
        )  # fmt: skip
    return out
