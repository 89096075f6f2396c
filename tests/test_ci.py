"""`exportkit ci`: every model of a project's [tool.exportkit] config, in parallel processes,
one combined report; a bad config is one error line naming the table and key (exit 2)."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import exportkit
from exportkit.cli import main
from exportkit.options import Options
from exportkit.project.config import KEYS

ROOT = Path(__file__).parent.parent

CONFIG = """
[project]
name = "demo"

[tool.exportkit]
exporter = "torchscript"
simplifier = "none"
sizes = false

[[tool.exportkit.models]]
spec = "models/simple_net.py:SimpleNet"
input = ["x:2x10"]

[[tool.exportkit.models]]
name = "mlp"
spec = "models/mlp.py:Net"
input = "x:2x4"
dynamic = ["batch"]
atol = {output = 1e-5}
output = "onnx/mlp.onnx"

[[tool.exportkit.models]]
name = "drift"
spec = "models/diverging.py:Drift"
input = ["x:2x16"]

[[tool.exportkit.models]]
name = "missing"
spec = "models/mlp.py:Nope"
"""


@pytest.fixture
def project(tmp_path: Path, models: Path, examples: Path) -> Path:
    """Four models: two pass, one exports wrong (diverging.py:Drift), one names no class."""
    folder = tmp_path / "project"
    (folder / "models").mkdir(parents=True)
    shutil.copy(examples / "simple_net.py", folder / "models")
    shutil.copy(models / "mlp.py", folder / "models")
    shutil.copy(models / "diverging.py", folder / "models")
    (folder / "pyproject.toml").write_text(CONFIG)
    return folder


def test_ci_runs_every_model_in_parallel_and_names_the_failures(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report, junit = tmp_path / "ci.json", tmp_path / "ci.xml"
    code = main(["ci", str(project), "-j", "2", "--json", str(report), "--junit", str(junit)])
    out, err = capsys.readouterr()
    assert code == 1
    assert err.strip().splitlines()[-1] == "FAIL: 2 of 4 models: drift, missing"
    # a live line per model, then the table in config order
    live, table = out.split("\n\n", 1)
    assert sorted(line.split()[1] for line in live.splitlines()) == sorted(
        ["models/simple_net.py:SimpleNet", "mlp", "drift", "missing"]
    )
    rows = [line.split()[:2] for line in table.splitlines()[1:5]]
    assert rows == [
        ["models/simple_net.py:SimpleNet", "PASS"],
        ["mlp", "PASS"],
        ["drift", "FAIL"],
        ["missing", "ERROR"],
    ]
    assert (project / "onnx" / "mlp.onnx").is_file()
    assert (project / "exportkit_out" / "SimpleNet" / "SimpleNet.onnx").is_file()
    assert not (project / "exportkit_out" / "Drift" / "Drift.onnx").exists()
    # one combined JSON: each model's verdict, reason and full report
    doc = json.loads(report.read_text())
    assert doc["schema_version"] == 1 and doc["passed"] is False and doc["jobs"] == 2
    by_name = {m["name"]: m for m in doc["models"]}
    assert by_name["drift"]["verdict"] == "fail"
    assert "first diverges at the model itself (Drift" in by_name["drift"]["reason"]
    assert by_name["drift"]["report"]["validation"]["divergence"]["location"]["cls"] == "Drift"
    assert by_name["mlp"]["report"]["inputs"][0]["dynamic"] == {"0": "batch"}
    assert by_name["mlp"]["report"]["validation"]["trials"][0]["outputs"][0]["atol"] == 1e-5
    # a model that raises an ExportkitError is an error with its message, not a crash
    missing = by_name["missing"]
    assert missing["verdict"] == "error" and missing["error"]["kind"] == "SpecError"
    assert "has no attribute 'Nope'" in missing["error"]["message"]
    assert missing["error"]["traceback"] is None
    # JUnit: a suite per model, a case per check; failures name the diverging module
    suites = {s.get("name"): s for s in ET.parse(junit).getroot()}
    assert suites["drift"].get("failures") == "2"
    failure = suites["drift"].find("testcase/failure")
    assert failure is not None and "diverges  at the model itself (Drift" in (failure.text or "")
    assert suites["missing"].get("errors") == "1"
    assert suites["mlp"].get("failures") == "0" and len(suites["mlp"]) == 2


def write(project: Path, text: str) -> None:
    (project / "pyproject.toml").write_text(textwrap.dedent(text))


@pytest.mark.parametrize(
    ("config", "error", "hint"),
    [
        (
            '[[tool.exportkit.models]]\nspec = "m.py:Net"\natoll = 1e-4\n',
            "error: pyproject.toml [[tool.exportkit.models]] #1: 'atoll' is not an exportkit option",
            "hint: keys are: allow-op, allow_ops, annotate, atol,",
        ),
        (
            '[[tool.exportkit.models]]\nspec = "m.py:Net"\n\n[[tool.exportkit.models]]\ninput = "x:2"\n',
            "error: pyproject.toml [[tool.exportkit.models]] #2: spec is missing",
            'hint: add spec = "path/to/model.py:Net"',
        ),
        (
            '[[tool.exportkit.models]]\nspec = "m.py:Net"\nsizes = "no"\n',
            "error: pyproject.toml [[tool.exportkit.models]] #1: sizes must be a bool",
            "hint: see exportkit export --help for --sizes",
        ),
        (
            '[[tool.exportkit.models]]\nspec = "m.py:Net"\nexporter = "onnx"\n',
            "error: pyproject.toml [[tool.exportkit.models]] #1: --exporter 'onnx' is not one of",
            "hint: write --exporter auto",
        ),
        (
            '[[tool.exportkit.models]]\nspec = "m.py:Net"\njunit = "x.xml"\n',
            "error: pyproject.toml [[tool.exportkit.models]] #1: 'junit' is not an exportkit option",
            "hint: keys are:",
        ),
        (
            '[tool.exportkit]\nseed = -1\n[[tool.exportkit.models]]\nspec = "m.py:Net"\n',
            "error: pyproject.toml [tool.exportkit]: --seed -1 is outside",
            "hint: write --seed 0",
        ),
        (
            '[[tool.exportkit.models]]\nspec = "a/m.py:Net"\n[[tool.exportkit.models]]\nspec = "b/m.py:Net"\n',
            "error: pyproject.toml [[tool.exportkit.models]] #2: output ",
            'hint: give one of them another output = "..."',
        ),
        (
            "[tool.exportkit]\natol = 1e-4\n",
            "error: pyproject.toml [tool.exportkit] lists no models",
            "hint: add a [[tool.exportkit.models]] table",
        ),
        (
            "[tool.exportkit\n",
            "error: pyproject.toml is not valid TOML",
            "hint: fix the file",
        ),
    ],
)
def test_a_bad_config_is_one_line_naming_table_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], config: str, error: str, hint: str
) -> None:
    (tmp_path / "pyproject.toml").write_text(config)
    assert main(["ci", str(tmp_path)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and "Traceback" not in lines[0]
    assert lines[0].startswith(error), lines[0]
    assert lines[1].startswith(hint), lines[1]


def test_no_config_and_exportkit_toml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ci", str(tmp_path)]) == 2
    assert "has no exportkit.toml and no pyproject.toml" in capsys.readouterr().err
    (tmp_path / "exportkit.toml").write_text('sizes = false\n[[models]]\nspec = "m.py:Net"\n')
    (found,) = exportkit.ci.models(tmp_path)
    assert found.spec == f"{tmp_path}/m.py:Net" and found.options.sizes is False
    assert found.output == tmp_path / "exportkit_out" / "Net" / "Net.onnx"
    assert found.table == "exportkit.toml [[models]] #1"


def test_every_option_is_a_key(tmp_path: Path) -> None:
    """Options fields reach the config as keys (kebab or snake case), new ones included."""
    values = {
        "strict-weights": False,
        "seed": 7,
        "exporter": "dynamo",
        "opset": 18,
        "simplifier": "onnxslim",
        "annotate": True,
        "sizes": False,
        "strict": True,
        "cache": False,
        "kwargs": {"width": 5},
        "dims": {"batch": 1},
        "dynamic": ["batch"],
        "weights": "w.pt",
        "atol": 1e-5,
        "rtol": ["logits=1e-2"],
        "variant": ["fp16", "int8"],
        "int8": "static",
        "calibrate": "calib.npz",
        "provider": "CPUExecutionProvider",
        "profile": True,
        "thresholds": {"cosine": 0.95},
        "latency-budget": 0,
        "baseline": "old.json",
        "allow-op": ["Gelu"],
        "max-opset": 18,
        "max-node-growth": 0.2,
        "max_latency_growth": 1,
        "drift-atol": 1e-3,
        "steps": 2,
        "state": ["past=present"],
    }
    for name in ("calib.npz", "old.json", "w.pt"):  # options that name files check they exist
        (tmp_path / name).write_bytes(b"")
    lines = ["[[tool.exportkit.models]]", 'spec = "m.py:Net"']
    lines += [
        f"{k} = {json.dumps(v) if not isinstance(v, dict) else _inline(v)}"
        for k, v in values.items()
    ]
    (tmp_path / "pyproject.toml").write_text("\n".join(lines) + "\n")
    (model,) = exportkit.ci.models(tmp_path)
    opts = model.options
    assert (opts.strict_weights, opts.seed, opts.exporter, opts.opset) == (False, 7, "dynamo", 18)
    assert (opts.simplifier, opts.annotate, opts.sizes, opts.strict) == (
        "onnxslim",
        True,
        False,
        True,
    )
    assert opts.cache is False and opts.model_kwargs == {"width": 5} and opts.dims == {"batch": 1}
    assert opts.dynamic[0].label == "batch" and opts.dynamic[0].input is None
    assert opts.weights == str(tmp_path / "w.pt")
    assert opts.tolerances.atol == 1e-5 and opts.tolerances.per_output_rtol == {"logits": 1e-2}
    assert (opts.variants, opts.int8, opts.providers) == (
        ("fp16", "int8"),
        "static",
        ("CPUExecutionProvider",),
    )
    assert opts.calibrate == str(tmp_path / "calib.npz") and opts.profile is True
    assert opts.thresholds.cosine == 0.95 and opts.thresholds.top1 == Options().thresholds.top1
    assert opts.latency_budget == 0.0
    assert opts.baseline == tmp_path / "old.json"
    assert (opts.allow_ops, opts.max_opset) == (("Gelu",), 18)
    assert (opts.max_node_growth, opts.max_latency_growth, opts.drift_atol) == (0.2, 1.0, 1e-3)
    assert (opts.steps, opts.state) == (2, (("past", "present"),))
    reachable = {k.replace("-", "_") for k in values} | {"model_kwargs", "tolerances"}
    reachable |= {"variants", "providers", "allow_ops"}
    not_per_model = {"json", "junit", "html", "markdown", "host", "port", "browser"}
    per_model = {f.name for f in dataclasses.fields(Options)} - not_per_model
    per_model -= {"custom_translations"}  # Python objects: set them from Python, not TOML
    assert per_model <= reachable | set(KEYS)


def _inline(table: dict[str, object]) -> str:
    return "{" + ", ".join(f"{k} = {json.dumps(v)}" for k, v in table.items()) + "}"


@pytest.mark.slow
def test_the_same_list_runs_under_pytest_xdist(project: Path) -> None:
    """Past one machine: a test parametrized over exportkit.ci.models() runs on xdist workers."""
    pytest.importorskip("xdist")
    (project / "test_exports.py").write_text(
        textwrap.dedent(
            """
            import pytest
            import exportkit

            @pytest.mark.parametrize("model", exportkit.ci.models(), ids=str)
            def test_export(model):
                report = exportkit.export(
                    model.spec, model.inputs, model.output, options=model.options
                )
                assert report.passed, model.name
            """
        )
    )
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "2", "-p", "no:cacheprovider", "test_exports.py"],
        cwd=project,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert "created: 2/2 workers" in proc.stdout
    assert "FAILED test_exports.py::test_export[drift]" in proc.stdout
    assert "FAILED test_exports.py::test_export[missing]" in proc.stdout
    assert "2 failed, 2 passed" in proc.stdout
