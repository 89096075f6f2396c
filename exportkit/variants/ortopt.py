"""onnxruntime's offline-optimized graph (``SessionOptions.optimized_model_filepath``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from exportkit.variants.files import staged, variant_path
from exportkit.variants.results import Made
from exportkit.variants.runner import run_trials

if TYPE_CHECKING:
    from exportkit.validate import Case, Tolerances

__all__ = ["make_ort_opt"]


def make_ort_opt(float_path: Path, cases: Sequence[Case], tolerances: Tolerances) -> Made:
    """The graph onnxruntime runs after its extended optimizations (fusions, constant folding).

    Extended, not all: level-all adds layout transforms tied to this machine's CPU, which
    onnxruntime itself warns should not be saved for another machine.
    """
    import onnxruntime as ort

    target = variant_path(float_path, "ort-opt")
    external = _has_external_data(float_path)
    with staged(target, external=external) as tmp:
        options = ort.SessionOptions()
        options.log_severity_level = 4
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        options.optimized_model_filepath = str(tmp)
        if external:
            options.add_session_config_entry(
                "session.optimized_model_external_initializers_file_name", f"{target.name}.data"
            )
        ort.InferenceSession(str(float_path), options, providers=["CPUExecutionProvider"])
        _carry_hierarchy(float_path, tmp)
    method = "onnxruntime extended optimizations (CPU)"
    trials = run_trials(target, cases, tolerances=tolerances)
    return Made(target, method, "tolerance", trials, tolerances)


def _has_external_data(path: Path) -> bool:
    from exportkit.external import has_external_data

    return has_external_data(path)


def _carry_hierarchy(float_path: Path, optimized: Path) -> None:
    """onnxruntime drops node metadata when it saves: put the PyTorch module hierarchy back
    (as the simplify stage does), so the summary, the profiler and Netron see modules."""
    import onnx

    from exportkit.hierarchy import carry_metadata

    model = onnx.load(str(optimized), load_external_data=False)
    if carry_metadata(onnx.load(str(float_path), load_external_data=False), model):
        onnx.save_model(model, str(optimized))
