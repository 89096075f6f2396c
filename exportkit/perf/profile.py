"""Where the time goes: onnxruntime's profiler per node, summed per PyTorch module through the
exporter's hierarchy, beside eager PyTorch's time per module (forward hooks)."""

from __future__ import annotations

import contextlib
import json
import re
import statistics
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from exportkit.perf.providers import CPU, session

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "ModuleTime",
    "eager_module_ms",
    "module_times",
    "node_providers",
    "onnx_module_ms",
    "onnx_node_ms",
]

_KERNEL = "_kernel_time"
_SUFFIX = re.compile(r"_(nchwc|fusion|token_\d+)$")


@dataclass(frozen=True)
class ModuleTime:
    """One PyTorch module's time per call, its descendants included: onnxruntime (``time_ms``,
    ``share`` of the whole run) and eager PyTorch (``eager_ms``) when measured."""

    module: str
    time_ms: float
    share: float
    eager_ms: float | None = None


def onnx_node_ms(
    path: Path, feeds: Mapping[str, Any], *, provider: str = CPU, runs: int = 10
) -> dict[str, float]:
    """Per node name, onnxruntime's kernel time in ms per run (``enable_profiling``), after one
    unprofiled warm-up run is dropped."""
    with tempfile.TemporaryDirectory() as tmp:
        sess = session(str(path), provider, profile_prefix=str(Path(tmp) / "ort"))
        sess.run(None, dict(feeds))
        for _ in range(runs):
            sess.run(None, dict(feeds))
        trace = Path(sess.end_profiling())
        events = json.loads(trace.read_text())
    calls: dict[str, list[float]] = {}
    for event in events:
        name = event.get("name", "")
        if event.get("cat") == "Node" and name.endswith(_KERNEL):
            calls.setdefault(name[: -len(_KERNEL)], []).append(float(event.get("dur", 0)) / 1e3)
    # The first call of each node is the warm-up run's; the median resists a preempted run.
    return {n: statistics.median(t[1:] or t) for n, t in calls.items()}


def node_providers(path: Path, feeds: Mapping[str, Any], *, provider: str) -> dict[str, int]:
    """How many nodes each execution provider ran in one profiled run (a provider that is
    installed may still hand every node back to the CPU)."""
    with tempfile.TemporaryDirectory() as tmp:
        sess = session(str(path), provider, profile_prefix=str(Path(tmp) / "ort"))
        sess.run(None, dict(feeds))
        events = json.loads(Path(sess.end_profiling()).read_text())
    counts: dict[str, int] = {}
    for event in events:
        if event.get("cat") == "Node" and event.get("name", "").endswith(_KERNEL):
            ran = str(event.get("args", {}).get("provider", "?"))
            counts[ran] = counts.get(ran, 0) + 1
    return counts


def _ancestors(path: str) -> list[str]:
    atoms = path.split(".") if path else []
    return ["", *(".".join(atoms[: i + 1]) for i in range(len(atoms)))]


def onnx_module_ms(path: Path, node_ms: Mapping[str, float]) -> dict[str, float]:
    """Node times summed into every module that holds the node (the model itself is ``""``).

    Nodes onnxruntime made itself (fusions, inserted casts) that the file does not name count
    towards the model as a whole only.
    """
    import onnx

    from exportkit.hierarchy import ScopeReader

    reader = ScopeReader()
    owner: dict[str, str] = {}
    by_value: dict[str, str] = {}
    for node in onnx.load(str(path), load_external_data=False).graph.node:
        found = reader.scope(node)
        owner[node.name] = found[0][-1][0] if found and found[0] else ""
        for value in node.output:
            by_value.setdefault(value, owner[node.name])
    out: dict[str, float] = {}
    for name, ms in node_ms.items():
        # onnxruntime names a node it rewrote after the value it makes (``relu_nchwc``).
        module = owner.get(name, by_value.get(_SUFFIX.sub("", name), ""))
        for anc in _ancestors(module):
            out[anc] = out.get(anc, 0.0) + ms
    return out


@contextlib.contextmanager
def _timed(model: nn.Module, run: dict[str, float]) -> Iterator[None]:
    """Forward hooks adding each module's time (synchronized clock) into ``run``."""
    import torch

    cuda = torch.cuda.is_available()

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    starts: dict[str, list[float]] = {}
    handles = []

    def pre(path: str) -> Any:
        def hook(*_: Any) -> None:
            sync()
            starts.setdefault(path, []).append(time.perf_counter())

        return hook

    def post(path: str) -> Any:
        def hook(*_: Any) -> None:
            sync()
            began = starts[path].pop()
            run[path] = run.get(path, 0.0) + (time.perf_counter() - began) * 1e3

        return hook

    for path, sub in model.named_modules():
        handles.append(sub.register_forward_pre_hook(pre(path)))
        handles.append(sub.register_forward_hook(post(path)))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def eager_module_ms(
    model: nn.Module,
    tensors: Mapping[str, torch.Tensor],
    *,
    runs: int = 10,
    threads: int | None = None,
) -> dict[str, float]:
    """Per module path, eager PyTorch's time per call of the model (hooks, synchronized clock),
    the median over ``runs``; at ``threads`` intra-op threads when given (as eager latency)."""
    import torch

    before = torch.get_num_threads()
    per_run: list[dict[str, float]] = []
    try:
        if threads:
            torch.set_num_threads(threads)
        with torch.no_grad():
            model(**tensors)
            for _ in range(runs):
                run: dict[str, float] = {}
                with _timed(model, run):
                    model(**tensors)
                per_run.append(run)
    finally:
        torch.set_num_threads(before)
    paths = dict.fromkeys(p for run in per_run for p in run)
    return {p: statistics.median(run.get(p, 0.0) for run in per_run) for p in paths}


def module_times(
    onnx_ms: Mapping[str, float], eager_ms: Mapping[str, float] | None = None
) -> tuple[ModuleTime, ...]:
    """One row per module, in the order modules were first seen (model first)."""
    total = onnx_ms.get("", 0.0) or sum(onnx_ms.values()) or 1.0
    return tuple(
        ModuleTime(m, ms, ms / total, (eager_ms or {}).get(m)) for m, ms in onnx_ms.items()
    )
