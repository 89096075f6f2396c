"""--baseline: a new file held to an earlier file or --json report, one verdict per rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from exportkit.diff.baseline import BaselineResult, check_baseline
from exportkit.report.jsondoc import to_jsonable
from tests.test_diff import X, make, torchscript

MODEL = str(Path(__file__).parent / "models" / "diff_models.py") + ":Blocks"


def verdicts(result: BaselineResult) -> dict[str, bool]:
    return {r.rule: r.passed for r in result.rules}


@pytest.fixture(scope="module")
def old(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return torchscript(make(), tmp_path_factory.mktemp("baseline") / "old.onnx")


def test_same_export_passes_every_rule(old: Path, tmp_path: Path) -> None:
    result = check_baseline(torchscript(make(), tmp_path / "new.onnx"), old)
    assert [r.rule for r in result.rules] == [
        "contract", "dynamic dims", "op types", "opset", "drift", "node count", "latency",
    ]  # fmt: skip
    assert result.passed, result.rules


def test_each_regression_breaks_its_own_rule(old: Path, tmp_path: Path) -> None:
    fixed = tmp_path / "fixed.onnx"
    torch.onnx.export(make(), X, str(fixed), dynamo=False, opset_version=17,
                      input_names=["x"], output_names=["logits"])  # fmt: skip
    assert verdicts(check_baseline(fixed, old)) | {"latency": True} == {
        "contract": True, "dynamic dims": False, "op types": True, "opset": True,
        "drift": True, "node count": True, "latency": True,
    }  # fmt: skip
    head = check_baseline(torchscript(make(classes=5), tmp_path / "head.onnx"), old)
    assert not verdicts(head)["contract"] and not verdicts(head)["drift"]
    assert "output logits dim 1: 10 -> 5" in head.rules[0].detail

    newer = torchscript(make(), tmp_path / "opset18.onnx", opset=18)
    assert not verdicts(check_baseline(newer, old))["opset"]
    assert verdicts(check_baseline(newer, old, max_opset=18))["opset"]

    model = make()
    with torch.no_grad():
        model.head.weight.mul_(1.5)
    drift = check_baseline(torchscript(model, tmp_path / "drift.onnx"), old)
    assert verdicts(drift)["drift"] is False and verdicts(drift)["contract"] is True
    assert "first differs in head" in drift.rules[4].detail


def test_new_op_types_and_node_growth(old: Path, tmp_path: Path) -> None:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    half = tmp_path / "half.onnx"
    onnx.save(convert_float_to_float16(onnx.load(str(old)), keep_io_types=True), str(half))
    result = check_baseline(half, old)
    rules = {r.rule: r for r in result.rules}
    assert not rules["op types"].passed and "Cast" in rules["op types"].detail
    assert rules["node count"].passed and "(+6.9%, limit +10%)" in rules["node count"].detail
    assert not check_baseline(half, old, max_node_growth=0.05).rules[5].passed
    allowed = check_baseline(half, old, allow_ops=["Cast"])
    assert verdicts(allowed)["op types"] and "allowed new: Cast" in allowed.rules[2].detail
    deeper = check_baseline(torchscript(make(depth=3), tmp_path / "deeper.onnx"), old)
    assert not verdicts(deeper)["node count"]  # 27 -> 39 nodes: +44%


def test_json_report_baseline_uses_the_fingerprint(old: Path, tmp_path: Path) -> None:
    from exportkit.diff.baseline import fingerprint

    report = tmp_path / "old.json"
    report.write_text(
        json.dumps({"schema_version": 1, "fingerprint": to_jsonable(fingerprint(old))})
    )
    same = check_baseline(torchscript(make(), tmp_path / "new.onnx"), report)
    assert same.passed
    latency = next(r for r in same.rules if r.rule == "latency")
    assert latency.skipped and "not measured" in latency.detail
    model = make()
    with torch.no_grad():
        model.head.weight.mul_(1.1)
    drifted = check_baseline(torchscript(model, tmp_path / "drift.onnx"), report)
    assert verdicts(drifted)["drift"] is False and verdicts(drifted)["contract"] is True
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    from exportkit.errors import OnnxFileError

    with pytest.raises(OnnxFileError, match="not an exportkit --json report"):
        check_baseline(old, bad)


def test_check_cli_baseline_rules_in_json_and_junit(
    old: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from exportkit.cli import main

    model = make()
    with torch.no_grad():
        model.head.bias.add_(1.0)
    # the file matches its own PyTorch model, but drifted from the release: exit 1
    new = torchscript(model, tmp_path / "new.onnx")
    weights = tmp_path / "w.pt"
    torch.save(model.state_dict(), weights)
    report, junit = tmp_path / "r.json", tmp_path / "j.xml"
    page, comment = tmp_path / "r.html", tmp_path / "r.md"
    args = ["check", str(new), MODEL, "--weights", str(weights), "--input", "x:2x3x16x16",
            "--no-sizes", "--json", str(report), "--junit", str(junit)]  # fmt: skip
    written = ["--html", str(page), "--markdown", str(comment)]
    assert main([*args, *written, "--baseline", str(old)]) == 1
    out = capsys.readouterr()
    assert "FAIL  drift" in out.out and "baseline drift" in out.err
    doc = json.loads(report.read_text())
    entries = {e["rule"]: e for e in doc["baseline"]}
    assert entries["drift"]["passed"] is False and entries["contract"]["passed"] is True
    assert doc["fingerprint"]["values"][0]["name"] == "logits"
    assert 'name="baseline: drift"><failure' in junit.read_text()
    # the HTML page and the Markdown comment show every rule with its verdict, drift failing
    html_text = page.read_text()
    assert f"against <code>{old}</code>: 1 of 7 rules fail" in html_text
    assert '<tr class="bad"><td>drift</td><td><span class="bad-word">FAIL</span></td>' in html_text
    assert '<tr><td>contract</td><td><span class="ok">pass</span></td>' in html_text
    md = comment.read_text()
    assert f"**Baseline** `{old}`: 1 of 7 rules fail" in md
    rows = [line for line in md.splitlines() if line.startswith("| drift |")]
    assert len(rows) == 1 and "❌ **FAIL**" in rows[0] and "first differs in head" in rows[0]
    assert "| contract | ✅ pass |" in md
    # that report is itself a baseline: the same file against it passes
    assert main([*args[:-4], "--baseline", str(report)]) == 0


def test_export_cli_holds_a_release_to_its_baseline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from exportkit.cli import main

    common = [MODEL, "--input", "x:2x3x16x16", "--exporter", "torchscript", "--simplifier",
              "none", "--no-sizes"]  # fmt: skip
    first = tmp_path / "v1.onnx"
    assert main(["export", *common, "-o", str(first), "--json", str(tmp_path / "v1.json")]) == 0
    again = ["export", *common, "-o", str(tmp_path / "v2.onnx"), "--baseline"]
    assert main([*again, str(first)]) == 0
    assert main([*again, str(tmp_path / "v1.json")]) == 0
    capsys.readouterr()
    wider = [*again[:-1], "--kwargs", '{"classes": 5}', "--baseline", str(first)]
    assert main(wider) == 1
    out = capsys.readouterr().out
    assert "FAIL  contract: output logits dim 1: 10 -> 5" in out or "FAIL  contract" in out


def test_report_shows_pytorch_params_and_why_the_file_differs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Fresh GroupNorms: every weight all ones. The TorchScript exporter stores one tensor for
    the three norms; the module rows count it in each, marked shared, and the report says why
    the file's total (2,106) is below PyTorch's (2,114)."""
    from exportkit.cli import main

    out = tmp_path / "blocks.onnx"
    args = ["export", MODEL, "--input", "x:2x3x16x16", "--exporter", "torchscript",
            "--simplifier", "none", "--no-sizes", "-o", str(out), "--kwargs", '{"depth": 3}']  # fmt: skip
    assert main(args) == 0
    text = capsys.readouterr().out
    torch_count = sum(p.numel() for p in make(depth=3).parameters())
    assert f"params    PyTorch {torch_count:,}, the file 2,106: " in text
    assert "the file stores a tensor read by several modules once" in text
    norm_rows = [line for line in text.splitlines() if line.strip().startswith("norm ")]
    assert len(norm_rows) == 3 and all("24 (16 shared)" in row for row in norm_rows)
