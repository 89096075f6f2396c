"""The one way in: Options, the public verbs, and the CLI as a translation layer over them."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import onnx
import pytest

import exportkit
from exportkit import Options
from exportkit.cli import main
from exportkit.cli.args import build_parser, options_from
from exportkit.errors import UsageError

ROOT = Path(__file__).resolve().parents[1]
SIMPLE = f"{ROOT / 'examples' / 'simple_net.py'}:SimpleNet"
DRIFT = f"{ROOT / 'tests' / 'models' / 'broken.py'}:ExportDrift"


def test_all_is_sorted_and_complete() -> None:
    assert exportkit.__all__ == sorted(exportkit.__all__)
    for name in exportkit.__all__:
        assert getattr(exportkit, name) is not None
    # every public, non-module name defined in the package's front door is listed
    public = {
        n
        for n, v in vars(exportkit).items()
        if not n.startswith("_") and type(v).__name__ != "module"
    }
    assert public - {"annotations", "TYPE_CHECKING", "Path"} <= set(exportkit.__all__)


def test_every_cli_flag_is_an_options_field() -> None:
    """The CLI only translates: each command's parsed flags become one Options."""
    args = build_parser().parse_args(
        [
            "view",
            SIMPLE,
            "--dynamic",
            "batch",
            "--kwargs",
            '{"hidden": 8}',
            "--seed",
            "3",
            "--exporter",
            "torchscript",
            "--opset",
            "17",
            "--simplifier",
            "onnxslim",
            "--annotate",
            "--atol",
            "1e-3",
            "--rtol",
            "output=1e-2",
            "--no-sizes",
            "--strict",
            "--json",
            "r.json",
            "--junit",
            "j.xml",
            "--port",
            "8080",
            "--no-browser",
        ]
    )
    options = options_from(args)
    assert options == exportkit.options.build_options(
        dynamic=["batch"],
        model_kwargs={"hidden": 8},
        seed=3,
        exporter="torchscript",
        opset=17,
        simplifier="onnxslim",
        annotate=True,
        tolerances=exportkit.Tolerances(atol=1e-3, per_output_rtol={"output": 1e-2}),
        sizes=False,
        strict=True,
        json="r.json",
        junit="j.xml",
        port=8080,
        browser=False,
    )


def test_cli_reads_no_attribute_by_name_and_never_the_pipeline() -> None:
    for path in (ROOT / "exportkit" / "cli").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "getattr":
                pytest.fail(f"{path.name}:{node.lineno} reads args with getattr")
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "exportkit.pipeline"
            ):
                pytest.fail(f"{path.name}:{node.lineno} imports the pipeline")


def test_flat_keywords_build_options_in_one_place() -> None:
    options = exportkit.options.build_options(Options(seed=4), atol=1e-2, dynamic=["x:1=seq"])
    assert options.seed == 4
    assert options.tolerances.atol == 1e-2
    assert options.dynamic[0].label == "seq"
    with pytest.raises(TypeError, match="unknown option 'atoll'"):
        exportkit.options.build_options(atoll=1e-3)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"seed": -1}, "--seed -1 is outside"),
        ({"opset": 0}, "--opset 0 is not an ONNX opset"),
        ({"port": 70000}, "--port 70000 is outside"),
        ({"exporter": "onnx"}, "--exporter 'onnx' is not one of"),
        ({"dims": {"batch": 0}}, "--dim batch=0 must be a positive"),
    ],
)
def test_options_refuse_values_that_cannot_be_right(
    fields: dict[str, object], message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        Options(**fields)  # type: ignore[arg-type]


def test_an_infinite_tolerance_is_refused() -> None:
    """A tolerance of inf is a check that cannot fail."""
    with pytest.raises(UsageError, match="must be a finite number"):
        Options(tolerances=exportkit.Tolerances(atol=float("inf")))


@pytest.mark.parametrize("opset", ["0", "99"])
def test_opsets_out_of_range_are_bad_input_before_any_work(
    opset: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "m.onnx"
    assert main(["export", SIMPLE, "--opset", opset, "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("error: --opset") and err[1].startswith("hint:")
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_dynamo_below_its_opsets_is_refused_and_auto_takes_torchscript(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--exporter dynamo"):
        exportkit.export(SIMPLE, ["x:2x10"], tmp_path / "a.onnx", exporter="dynamo", opset=13)
    report = exportkit.export(SIMPLE, ["x:2x10"], tmp_path / "b.onnx", opset=13, sizes=False)
    assert report.passed
    assert report.export is not None and report.export.exporter == "torchscript"
    model = onnx.load(str(report.output))
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [13]
    assert report.export.opset == 13


def test_tolerance_for_an_output_the_model_lacks_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "m.onnx"
    code = main(["export", SIMPLE, "--input", "x:2x10", "--atol", "logits=1e-3", "-o", str(out)])
    assert code == 2
    err = capsys.readouterr().err
    assert "--atol logits=... names no output of the model; its outputs are: output" in err
    assert not out.exists()


def test_argparse_errors_get_a_hint(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["exprot", SIMPLE]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and err[0].startswith("error: argument COMMAND: invalid choice")
    assert err[1] == "hint: run 'exportkit --help' for the usage"
    assert main(["export", SIMPLE, "--opset", "x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[1] == "hint: run 'exportkit export --help' for the usage"


def test_a_failing_run_keeps_the_good_file_and_names_the_failed_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "model.onnx"
    # a good export first, then a failing one to the same target
    exportkit.export(SIMPLE, ["x:2x10"], out, sizes=False)
    before = out.read_bytes()
    code = main(
        [
            "export",
            DRIFT,
            "--input",
            "x:2x4",
            "-o",
            str(out),
            "--no-sizes",
            "--json",
            str(tmp_path / "r.json"),
        ]
    )
    assert code == 1
    assert out.read_bytes() == before
    failed = tmp_path / "model.failed.onnx"
    last = capsys.readouterr().err.strip().splitlines()[-1]  # the verdict, not a progress line
    assert last.startswith("FAIL: outputs differ from PyTorch: output (export inputs)")
    assert "first diverges at the model itself (ExportDrift" in last
    assert f"failing file kept as {failed}; {out} not changed" in last
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["passed"] is False and doc["output"] == str(failed) and doc["target"] == str(out)
    onnx.checker.check_model(str(failed))
    assert oct((tmp_path / "r.json").stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_failed_file_with_external_data_never_touches_the_good_files_data(tmp_path: Path) -> None:
    from exportkit.workspace import install

    work = tmp_path / "work"
    work.mkdir()
    model = onnx.helper.make_model(
        onnx.helper.make_graph(
            [onnx.helper.make_node("Identity", ["w"], ["y"])],
            "g",
            [],
            [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [4096])],
            [onnx.numpy_helper.from_array(__import__("numpy").ones(4096, "float32"), "w")],
        )
    )
    onnx.save_model(
        model,
        str(work / "m.onnx"),
        save_as_external_data=True,
        location="m.onnx.data",
        size_threshold=0,
    )
    target = tmp_path / "m.onnx"
    (tmp_path / "m.onnx.data").write_bytes(b"good data")
    files = install([work / "m.onnx", work / "m.onnx.data"], target, passed=False)
    assert [f.name for f in files] == ["m.failed.onnx", "m.failed.onnx.data"]
    assert (tmp_path / "m.onnx.data").read_bytes() == b"good data"
    loaded = onnx.load(str(files[0]))  # its weights resolve to the renamed data file
    assert onnx.numpy_helper.to_array(loaded.graph.initializer[0]).sum() == 4096


def test_working_folders_of_killed_runs_are_removed_by_the_next_run(tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    stale = tmp_path / f".exportkit-{dead.stdout.strip()}-m-abc"
    stale.mkdir()
    live = tmp_path / f".exportkit-{os.getpid()}-m-def"  # this process is alive: not touched
    live.mkdir()
    exportkit.export(SIMPLE, ["x:2x10"], tmp_path / "m.onnx", sizes=False)
    assert not stale.exists() and live.exists()


def test_results_render_in_a_notebook(tmp_path: Path) -> None:
    """_repr_html_ on the results, with the renderers registered by the front door."""
    report = exportkit.export(SIMPLE, ["x:2x10"], tmp_path / "m.onnx", sizes=False)
    page = report._repr_html_()
    assert page.startswith("<!DOCTYPE html>") or page.lstrip().startswith("<")
    assert "SimpleNet" in page and "PASS" in page
    table = exportkit.summarize(tmp_path / "m.onnx")._repr_html_()
    assert "<table>" in table and "fc1" in table and "Gemm" in table


def test_a_baseline_at_the_target_is_judged_before_the_new_file_replaces_it(
    tmp_path: Path,
) -> None:
    """CI's usual call: `export ... -o model.onnx --baseline model.onnx`. The new file must be
    compared with the old one, not with itself, and a regression must leave the old file."""
    out = tmp_path / "model.onnx"
    exportkit.export(SIMPLE, ["x:2x10"], out, sizes=False, exporter="torchscript")
    before = out.read_bytes()
    # the same model exported with another exporter: other op types, a new opset
    report = exportkit.export(
        SIMPLE, ["x:2x10"], out, sizes=False, exporter="dynamo", baseline=str(out), max_opset=18
    )
    broken = [rule.rule for rule in report.baseline if not rule.passed]
    assert broken and not report.passed
    assert out.read_bytes() == before
    assert report.output == tmp_path / "model.failed.onnx"


def test_the_pipeline_only_orders_the_stages() -> None:
    """pipeline.py stays a short read in stage order; each policy and helper lives elsewhere."""
    source = (ROOT / "exportkit" / "pipeline.py").read_text()
    assert len(source.splitlines()) < 300
    body = source[source.index("def run_export(") :]
    calls = ["_prepare(", "export_validated(", "simplify_checked(", "install(", "_summarize("]
    at = [body.index(call) for call in calls]  # load+inputs, export+validate, simplify+validate
    assert at == sorted(at)
