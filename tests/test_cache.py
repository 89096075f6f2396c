"""The cache: a repeat of an unchanged passing export is restored without torch; any change of
what the key covers (source, imported local module, weights, option, input, tool version) runs
it again."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import exportkit
from exportkit import versions
from exportkit.cache import NotCacheable, cache_key
from exportkit.errors import UsageError
from exportkit.options import Options, build_options
from exportkit.report.load import load_report
from exportkit.report.pipeline import render_json
from tests.test_report_golden import REPORTS

ROOT = Path(__file__).parent.parent
FAST = {"exporter": "torchscript", "simplifier": "none", "sizes": False}
# Never imported by a cache hit; onnx and numpy neither, so a repeat stays under a second.
HEAVY = ("torch", "onnxruntime", "onnxsim", "onnxslim", "onnx", "numpy")


@pytest.fixture
def project(tmp_path: Path, models: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder: tests/models/mlp.py, and wrapped.py that imports it as a local module."""
    folder = tmp_path / "project"
    (folder / "pkg").mkdir(parents=True)
    shutil.copy(models / "mlp.py", folder / "pkg" / "mlp.py")
    (folder / "pkg" / "__init__.py").write_text("")
    (folder / "pkg" / "extra.py").write_text("SCALE = 1.0\n")
    (folder / "wrapped.py").write_text(
        "import torch\n"
        "from pkg import extra\n"
        "from pkg.mlp import Net\n\n\n"
        "class Wrapped(Net):\n"
        "    def forward(self, x: torch.Tensor) -> torch.Tensor:\n"
        "        return super().forward(x) * extra.SCALE\n"
    )
    monkeypatch.chdir(folder)
    return folder


def key(model: str = "wrapped.py:Wrapped", inputs: object = ("x:2x4",), **options: object) -> str:
    return cache_key(model, list(inputs), "out/net.onnx", build_options(**options)).digest  # type: ignore[call-overload]


def test_a_repeat_is_restored_without_torch_and_an_edit_runs_again(project: Path) -> None:
    first = exportkit.export("wrapped.py:Wrapped", ["x:2x4"], "out/net.onnx", **FAST)
    assert first.passed and not first.cached
    Path("out/net.onnx").unlink()
    # The CLI in a fresh process: files and report come back, torch is never imported.
    argv = ["export", "wrapped.py:Wrapped", "--input", "x:2x4", "-o", "out/net.onnx"]
    argv += [
        "--exporter",
        "torchscript",
        "--simplifier",
        "none",
        "--no-sizes",
        "--json",
        "again.json",
    ]
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "exportkit", *argv],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert not imported & set(HEAVY)
    assert "cached    unchanged since a passing run" in proc.stdout
    again = load_report(Path("again.json").read_text())
    assert again.cached and again.passed
    assert Path("out/net.onnx").read_bytes() == first.output.read_bytes()  # type: ignore[union-attr]
    assert again.validation == first.validation and again.summary == first.summary
    # --no-cache runs every stage; an edit of the imported local module is a miss.
    assert not exportkit.export(
        "wrapped.py:Wrapped", ["x:2x4"], "out/net.onnx", cache=False, **FAST
    ).cached  # type: ignore[arg-type]
    (project / "pkg" / "extra.py").write_text("SCALE = 2.0\n")
    edited = exportkit.export("wrapped.py:Wrapped", ["x:2x4"], "out/net.onnx", **FAST)  # type: ignore[arg-type]
    assert not edited.cached and edited.passed


def test_the_report_round_trips_through_json(project: Path) -> None:
    report = exportkit.export("wrapped.py:Wrapped", ["x:2x4"], "out/net.onnx", dynamic=["batch"])
    assert load_report(render_json(report)) == report


def test_a_failing_run_is_not_stored(project: Path, models: Path, private_cache: Path) -> None:
    report = exportkit.export(f"{models}/diverging.py:Drift", ["x:2x16"], "out/drift.onnx", **FAST)  # type: ignore[arg-type]
    assert not report.passed
    assert not list(private_cache.rglob("report.json"))
    assert not exportkit.export(
        f"{models}/diverging.py:Drift", ["x:2x16"], "out/drift.onnx", **FAST
    ).cached  # type: ignore[arg-type]


def test_a_module_object_is_not_cached(
    project: Path, private_cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.models.mlp import Net

    with caplog.at_level(logging.DEBUG, logger="exportkit.cache"):
        report = exportkit.export(Net(), ["x:2x4"], "out/net.onnx", **FAST)  # type: ignore[arg-type]
    assert report.passed and not list(private_cache.rglob("report.json"))
    assert "a Net object has no source to key" in caplog.text


def test_each_part_of_the_key_misses(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = key()
    assert key() == base
    # source of the model file, and of each local module it imports (package __init__ too)
    for file in ("wrapped.py", "pkg/mlp.py", "pkg/extra.py", "pkg/__init__.py"):
        original = (project / file).read_text()
        (project / file).write_text(original + "\n# edited\n")
        assert key() != base, file
        (project / file).write_text(original)
        assert key() == base
    # weights: the file's bytes, not its name
    import torch

    from tests.models.mlp import Net

    torch.save(Net().state_dict(), "w.pt")
    with_weights = key(weights="w.pt")
    assert with_weights != base
    torch.manual_seed(1)
    torch.save(Net().state_dict(), "w.pt")
    assert key(weights="w.pt") != with_weights
    # every option
    for options in (
        {"atol": 1e-3},
        {"dynamic": ["batch"]},
        {"exporter": "dynamo"},
        {"opset": 18},
        {"simplifier": "onnxslim"},
        {"seed": 3},
        {"sizes": False},
        {"model_kwargs": {"width": 5}},
    ):
        assert key(**options) != base, options
    # options that decide neither the file nor the report do not
    assert key(json="r.json", junit="r.xml", port=8080, host="0.0.0.0") == base
    # inputs: the spec, and a data file's bytes
    assert key(inputs=("x:3x4",)) != base
    import numpy as np

    np.save("x.npy", np.zeros((2, 4), dtype=np.float32))
    data = key(inputs=("x=x.npy",))
    np.save("x.npy", np.ones((2, 4), dtype=np.float32))
    assert key(inputs=("x=x.npy",)) != data
    # a version of a tool exportkit drives
    real = versions.tool_versions

    monkeypatch.setattr(versions, "tool_versions", lambda: {**real(), "onnxruntime": "9.9.9"})
    assert key() != base


def test_archives_and_hf_folders_are_keyed_by_their_bytes(
    tmp_path: Path, hf_folders: dict[str, Path]
) -> None:
    folder = tmp_path / "bert"
    shutil.copytree(hf_folders["bert"], folder)
    spec = f"hf:{folder}"
    before = cache_key(spec, None, None, Options()).digest
    config = folder / "config.json"
    config.write_text(config.read_text().replace("}", ', "extra": 1}', 1))
    assert cache_key(spec, None, None, Options()).digest != before
    archive = tmp_path / "m.pt2"
    archive.write_bytes(b"one")
    first = cache_key(str(archive), None, None, Options()).digest
    archive.write_bytes(b"two")
    assert cache_key(str(archive), None, None, Options()).digest != first


def test_objects_and_special_files_have_no_key(tmp_path: Path) -> None:
    import torch

    fifo = tmp_path / "model.pt"
    os.mkfifo(fifo)  # hashing it would block forever; the run itself reports it as bad input
    with pytest.raises(NotCacheable, match="not a regular file"):
        cache_key(str(fifo), None, None, Options())

    spec = f"{ROOT}/examples/simple_net.py:SimpleNet"
    with pytest.raises(NotCacheable, match="inputs given as tuple"):
        cache_key(spec, (torch.zeros(2, 10),), None, Options())
    with pytest.raises(NotCacheable, match="inputs given as dict"):
        cache_key(spec, {"x": torch.zeros(2, 10)}, None, Options())
    with pytest.raises(NotCacheable, match="option has no content"):
        cache_key(
            spec,
            None,
            None,
            Options(custom_translations={"op": print}),
        )


@pytest.mark.parametrize("name", sorted(REPORTS))
def test_every_golden_report_round_trips(name: str) -> None:
    """The cache stores reports as JSON: pass, mismatch with divergence, simplifier discarded,
    TorchScript fallback and frozen dim all come back as the same dataclasses."""
    report = REPORTS[name]()
    assert load_report(render_json(report)) == report


def test_a_repeat_restores_the_variant_files_too(project: Path) -> None:
    first = exportkit.export(
        "wrapped.py:Wrapped", ["x:2x4"], "out/net.onnx", variants=("fp16",), **FAST
    )  # type: ignore[arg-type]
    assert first.passed
    assert [v.path for v in first.variants] == [Path("out/net.onnx"), Path("out/net.fp16.onnx")]
    made = Path("out/net.fp16.onnx").read_bytes()
    shutil.rmtree("out")
    again = exportkit.export(
        "wrapped.py:Wrapped", ["x:2x4"], "out/net.onnx", variants=("fp16",), **FAST
    )  # type: ignore[arg-type]
    assert again.cached and again.variants == first.variants
    assert Path("out/net.fp16.onnx").read_bytes() == made
    assert again.files == (Path("out/net.onnx"),)


def test_the_cache_keeps_to_its_size_and_evicts_the_least_recently_used(
    project: Path, private_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every entry holds whole copies of its files: a cache that never evicts fills the disk
    with old exports of a big model. It keeps $EXPORTKIT_CACHE_MAX bytes, recently used first."""

    def run(seed: int) -> exportkit.Report:
        return exportkit.export("wrapped.py:Wrapped", ["x:2x4"], "out/net.onnx", seed=seed, **FAST)  # type: ignore[arg-type]

    first = run(1)
    size = sum(f.stat().st_size for f in first.files)
    monkeypatch.setenv("EXPORTKIT_CACHE_MAX", str(int(size * 2.5)))  # room for two entries
    run(2)
    assert run(1).cached  # used now: the entry of seed 2 is the least recently used
    run(3)  # a third entry: over the limit, seed 2's goes
    assert len(list(private_cache.rglob("entry.json"))) == 2
    assert run(1).cached and run(3).cached and not run(2).cached
    monkeypatch.setenv("EXPORTKIT_CACHE_MAX", "0")  # stores nothing, restores what is there
    assert not run(4).cached and not run(4).cached and run(3).cached


@pytest.mark.parametrize("value", ["lots", "-1G", "inf", "1.5X"])
def test_a_cache_size_that_is_not_a_size_is_refused_before_any_work(
    project: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("EXPORTKIT_CACHE_MAX", value)
    with pytest.raises(UsageError, match="EXPORTKIT_CACHE_MAX") as info:
        exportkit.export("wrapped.py:Wrapped", ["x:2x4"], "out/net.onnx", **FAST)  # type: ignore[arg-type]
    assert info.value.hint and not Path("out").exists()


def test_an_entry_evicted_while_a_run_restores_it_is_a_miss(project: Path) -> None:
    from exportkit.cache.store import read_entry, restore_files

    exportkit.export("wrapped.py:Wrapped", ["x:2x4"], "out/net.onnx", **FAST)  # type: ignore[arg-type]
    found = read_entry(key(**FAST), Path("out/other.onnx"))
    assert found is not None
    _, files, extra = found
    shutil.rmtree(files[0].parent.parent)  # another run evicts it between read and restore
    assert restore_files(files, Path("out/other.onnx"), extra) is None
    assert not Path("out/other.onnx").exists()
