"""Deployment variants: float16 with overflowing nodes kept float32, int8 caught when badly
calibrated, onnxruntime's optimized graph; each checked here by our own onnxruntime run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from exportkit.errors import UsageError
from exportkit.export import export_model
from exportkit.inputs import DynamicSpec, make_inputs
from exportkit.perf import resolve_providers
from exportkit.validate import make_cases
from exportkit.variants import VariantResult, make_variants
from tests.models.variant_models import LosesPrecision, Overflow, SmallCNN


def _export(model: torch.nn.Module, tmp: Path) -> tuple[Path, list, torch.nn.Module]:
    torch.manual_seed(0)
    model.eval()
    ex = make_inputs(model, declared=model.example_inputs, dynamic=[DynamicSpec.parse("batch")])
    path = export_model(model, ex, tmp / "m.onnx", exporter="dynamo").path
    return path, make_cases(model, ex), model


@pytest.fixture(scope="module")
def cnn(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list, torch.nn.Module]:
    """One SmallCNN export shared by the tests (each writes its variants beside it)."""
    return _export(SmallCNN(), tmp_path_factory.mktemp("cnn"))


def _ours(path: Path, x: torch.Tensor) -> np.ndarray:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.asarray(sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0])


def _row(rows: tuple[VariantResult, ...], name: str) -> VariantResult:
    return next(r for r in rows if r.name == name)


def test_fp16_overflow_passes_with_those_nodes_kept_float32(tmp_path: Path) -> None:
    path, cases, model = _export(Overflow(), tmp_path)
    x = torch.randn(3, 16)
    expected = model(x).detach().numpy()
    # The plain conversion really breaks on this model: NaN where PyTorch is finite.
    from onnxruntime.transformers.float16 import convert_float_to_float16

    plain = tmp_path / "plain.onnx"
    onnx.save(convert_float_to_float16(onnx.load(str(path)), keep_io_types=True), str(plain))
    assert not np.isfinite(_ours(plain, x)).all()

    rows = make_variants(path, cases, ["fp16"], model=model, latency=False)
    fp16 = _row(rows, "fp16")
    assert fp16.passed, fp16.metrics
    assert fp16.path == tmp_path / "m.fp16.onnx"
    blocked = {(b.module, b.op_type) for b in fp16.blocked}
    assert ("norm", "LayerNormalization") in blocked
    assert all(b.max_abs > 65504 for b in fp16.blocked)
    assert "plain float16 failed" in fp16.notes[0] and "NaN" in fp16.notes[0]
    # Independently: the written file matches PyTorch at float16 tolerances, on a new draw.
    got = _ours(fp16.path, x)
    np.testing.assert_allclose(got, expected, atol=1e-2, rtol=1e-2)
    kinds = {onnx.TensorProto.FLOAT16, onnx.TensorProto.FLOAT}
    types = {t.data_type for t in onnx.load(str(fp16.path)).graph.initializer}
    assert onnx.TensorProto.FLOAT16 in types and types <= kinds


def test_int8_bad_calibration_is_caught_and_placed(tmp_path: Path, cnn: tuple) -> None:
    path, cases, model = cnn
    const = tmp_path / "const.npz"
    np.savez(const, x=np.full((2, 3, 32, 32), 0.01, np.float32))
    rows = make_variants(path, cases, ["int8"], model=model, calibrate=str(const), latency=False)
    int8 = _row(rows, "int8")
    assert int8.method.startswith("static QDQ, per-channel")
    assert not int8.passed
    worst = int8.metrics["output"]
    assert worst.sqnr_db < 20 and worst.cosine < 0.99 and worst.top1 is not None
    assert int8.divergence is not None
    assert int8.divergence.location.module.startswith("features.")
    # Our own run says the same: the int8 file's scores are far from PyTorch's.
    x = cases[0].inputs.tensors["x"]
    got, ref = _ours(int8.path, x), model(x).detach().numpy()  # type: ignore[arg-type]
    cos = float((got * ref).sum() / np.linalg.norm(got) / np.linalg.norm(ref))
    assert cos < 0.99


def test_int8_calibrated_on_the_inputs_passes(cnn: tuple) -> None:
    path, cases, model = cnn
    rows = make_variants(path, cases, ["int8", "ort-opt"], model=model, latency=False)
    int8, opt = _row(rows, "int8"), _row(rows, "ort-opt")
    assert int8.passed and int8.judge == "metrics", int8.metrics
    assert "calibrated on 4 samples of the validation inputs" in int8.method
    # No module is blamed where the file agrees: the quantizer fuses each ReLU into its Conv and
    # leaves the pre-activation under the ReLU's name (QuantizeLinear clips it); the value the
    # graph goes on with is after the Q/DQ pair (compared raw: features.2 at cosine 0.67).
    from exportkit.variants.locate import against_float
    from exportkit.variants.results import Thresholds

    assert against_float(path, int8.path, cases, Thresholds()) is None
    assert any(n.op_type == "QuantizeLinear" for n in onnx.load(str(int8.path)).graph.node)
    assert opt.passed and opt.path == path.with_name("m.ort-opt.onnx")
    x = torch.randn(5, 3, 32, 32)
    ref = model(x).detach().numpy()
    assert (_ours(int8.path, x).argmax(-1) == ref.argmax(-1)).mean() >= 0.8
    np.testing.assert_allclose(_ours(opt.path, x), ref, atol=1e-4, rtol=1e-3)


def test_a_provider_that_is_not_installed_is_a_usage_error() -> None:
    with pytest.raises(UsageError) as info:
        resolve_providers(["CUDA"])
    assert info.value.exit_code == 2
    assert "CPU" in info.value.message and "CUDA" in info.value.message
    assert resolve_providers(["cpu", "CPUExecutionProvider"]) == ("CPUExecutionProvider",)


def test_latency_and_size_for_every_row(cnn: tuple) -> None:
    path, cases, model = cnn
    rows = make_variants(path, cases, ["fp16"], model=model, budget_s=0.2)
    flt, fp16 = _row(rows, "float"), _row(rows, "fp16")
    assert flt.passed and flt.size_bytes == path.stat().st_size
    assert fp16.size_bytes < flt.size_bytes  # weights stored in half the bytes
    for row in rows:
        assert row.latency_ms is not None and 0 < row.latency_ms.p50 <= row.latency_ms.p90
        assert row.latency_ms.runs >= 10
        assert row.eager_latency_ms is not None and row.speedup is not None


def test_peak_memory_is_the_files_not_what_the_process_freed_before(tmp_path: Path) -> None:
    """Measured in the running process, the rise was often 0 B (seen: an fp16 file): the
    allocator handed the session pages earlier work had freed. The figure is the file's: the
    same with or without freed memory around, and at least its weights (16 MB here)."""
    from onnx import TensorProto, helper, numpy_helper

    from exportkit.perf import onnx_latency

    weight = numpy_helper.from_array(np.ones((2048, 2048), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 2048])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 2048])], [weight],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, tmp_path / "mm.onnx")
    feeds = {"x": np.ones((4, 2048), np.float32)}
    before = onnx_latency(tmp_path / "mm.onnx", feeds, budget_s=0.05).peak_memory_bytes
    freed = [np.ones(12_000) for _ in range(3000)]  # 290 MB in small blocks the heap keeps
    kept = np.ones(12_000)  # above them on the heap, so free() cannot give them back
    del freed
    after = onnx_latency(tmp_path / "mm.onnx", feeds, budget_s=0.05).peak_memory_bytes
    assert before is not None and after is not None and kept.size
    assert before >= 2048 * 2048 * 4 and after >= 2048 * 2048 * 4
    assert abs(after - before) <= 0.1 * before, (before, after)


def test_profile_and_view_target_through_the_public_api(tmp_path: Path) -> None:
    import exportkit
    from exportkit.report.pipeline import render_json
    from exportkit.report.summary import render_summary
    from exportkit.report.variants import summary_times
    from exportkit.viewer.findings import view_target

    torch.manual_seed(0)
    report = exportkit.export(
        SmallCNN(), None, tmp_path / "m.onnx", variants=("fp16",), profile=True,
        latency_budget=0.05, sizes=False,
    )  # fmt: skip
    assert report.passed
    flt = _row(report.variants, "float")
    times = {t.module: t for t in flt.module_times}
    assert times[""].share == 1.0 and times[""].time_ms > 0
    assert 0 < times["classifier"].time_ms < times[""].time_ms
    assert times["classifier"].eager_ms is not None and times["classifier"].eager_ms > 0
    table = render_summary(report.summary, fmt="table", times=summary_times(report.variants))
    header = next(line for line in table.splitlines() if line.startswith("Module / node"))
    assert header.split()[-3:] == ["Time", "(ORT)", "Eager"]
    assert any(
        line.lstrip().startswith("classifier") and "ms" in line for line in table.splitlines()
    )
    # and in the JSON, on the summary's modules
    doc = json.loads(render_json(report))
    modules = {m["path"]: m for m in doc["summary"]["modules"]}
    assert modules["classifier"]["time_ms"] == pytest.approx(times["classifier"].time_ms)
    assert modules["classifier"]["eager_ms"] == pytest.approx(times["classifier"].eager_ms)
    # view --variant fp16 serves the fp16 file, with the variant's own findings.
    target = view_target(report)
    assert target is not None
    path, props, _ = target
    assert path == tmp_path / "m.fp16.onnx"
    assert props["exportkit.verdict"] == "pass" and props["exportkit.variant"].startswith("fp16")


def test_fp16_precision_loss_fails_and_names_the_module(tmp_path: Path) -> None:
    torch.manual_seed(0)
    path, cases, model = _export(LosesPrecision(), tmp_path)
    rows = make_variants(path, cases, ["fp16"], model=model, latency=False)
    fp16 = _row(rows, "fp16")
    assert not fp16.passed and not fp16.blocked
    assert "precision" in fp16.notes[0]
    # The first module past float16 tolerance while its inputs were within it: in cancel.
    assert fp16.divergence is not None
    assert fp16.divergence.location.module.startswith("cancel")
    x = torch.randn(4, 8)
    assert np.abs(_ours(fp16.path, x) - model(x).detach().numpy()).max() > 1e-2  # type: ignore[arg-type]


def test_another_installed_provider_is_another_row(cnn: tuple) -> None:
    """No GPU here: Azure is the other provider onnxruntime ships; it hands every node to the CPU,
    which the row says, and its verdicts and timings stand beside the CPU's."""
    if "AzureExecutionProvider" not in ort.get_available_providers():
        pytest.skip("this onnxruntime has only the CPU provider")
    path, cases, model = cnn
    rows = make_variants(path, cases, ["fp16"], model=model, providers=["azure"], budget_s=0.05)
    assert [(r.name, r.provider) for r in rows] == [
        ("float", "CPUExecutionProvider"),
        ("float", "AzureExecutionProvider"),
        ("fp16", "CPUExecutionProvider"),
        ("fp16", "AzureExecutionProvider"),
    ]
    azure = rows[3]
    assert azure.passed and azure.latency_ms is not None
    assert azure.metrics["output"].max_abs == rows[2].metrics["output"].max_abs
    assert any(
        n.startswith("Azure ran 0 of ") and "CPU provider ran the rest" in n for n in azure.notes
    )


def test_top1_only_for_outputs_that_look_like_class_scores() -> None:
    from exportkit.variants.metrics import looks_like_scores, measure

    scores = np.array([[0.1, 2.0, -1.0], [3.0, 0.0, 0.5]], np.float32)
    assert looks_like_scores("output", scores) and looks_like_scores("logits", scores[None])
    assert not looks_like_scores("pooler_output", scores)
    assert not looks_like_scores("last_hidden_state", scores[None])
    swapped = scores[:, [1, 0, 2]]  # same values, the arg-max moved in both rows
    m = measure("logits", scores, swapped)
    assert m.top1 == 0.0 and not m.passed
    assert any("top-1 agreement 0.0%" in f for f in m.findings)


def test_a_flip_where_pytorch_itself_barely_decides_is_a_near_tie_not_a_failure() -> None:
    """Seen in CI: an int8 file at cosine 1.0000 and SQNR 45.7 dB failed on 'top-1 50%' because
    one of two rows had its top two logits closer than the quantization noise. That flip is
    noise (cosine and SQNR judge it); a flip PyTorch decides clearly is a changed decision."""
    from exportkit.variants.metrics import measure

    rng = np.random.default_rng(0)
    scores = rng.normal(0.0, 3.0, (64, 10)).astype(np.float32)
    scores[0, :2] = [5.0, 5.0004]  # row 0: PyTorch's top two differ by 4e-4
    noisy = scores + rng.normal(0.0, 1e-3, scores.shape).astype(np.float32)
    noisy[0, :2] = [5.0004, 5.0]  # the file picks the other one of the near-tie
    m = measure("logits", scores, noisy)
    assert m.passed and m.top1 == 1.0 and m.near_ties == 1
    clear = noisy.copy()
    for row in range(1, 12):  # eleven rows flipped by far more than the noise: 17% disagree
        top = int(scores[row].argmax())
        clear[row, top] = scores[row].min() - 1.0
    m = measure("logits", scores, clear)
    assert not m.passed and m.top1 is not None and m.top1 < 0.9
    assert any("top-1 agreement" in f for f in m.findings)


def test_top1_is_not_reported_as_agreement_when_every_row_is_a_near_tie() -> None:
    from exportkit.variants.metrics import top1

    expected = np.array([[1.0, 1.0001], [2.0, 2.0001]], np.float32)
    actual = expected[:, ::-1].copy()
    agree, ties = top1(expected, actual, tie=1e-3)
    assert agree is None and ties == 2
    assert top1(expected, actual, tie=0.0) == (0.0, 0)


def test_files_a_converter_writes_get_the_mode_of_any_file_of_the_run(tmp_path: Path) -> None:
    """onnxruntime's quantizer wrote a big model's int8 data with mkstemp's 0600: a file the
    deploy step (another user) could not read, unlike the float file beside it."""
    import os
    import stat
    import tempfile

    from exportkit.variants.files import staged

    target = tmp_path / "m.int8.onnx"
    with staged(target, external=True) as tmp:
        fd, name = tempfile.mkstemp(dir=tmp.parent)  # 0600, as the tool makes it
        os.close(fd)
        Path(name).replace(tmp.parent / "m.int8.onnx.data")
        tmp.write_bytes(b"model")
    mask = os.umask(0o022)
    os.umask(mask)
    for f in (target, tmp_path / "m.int8.onnx.data"):
        assert stat.S_IMODE(f.stat().st_mode) == 0o666 & ~mask, f
