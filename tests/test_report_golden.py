"""The pipeline report (text, JSON, JUnit) of hand-built results, against tests/golden/.

No export runs here: each report is built from the result dataclasses, so the goldens change only
when the renderers do, never with the torch version. Rewrite them with ``pytest --update-golden``
after a deliberate change of the report, and read the diff.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from xml.etree import ElementTree

import pytest

from exportkit import (
    Divergence,
    ExportResult,
    InputInfo,
    Parity,
    Report,
    SimplifyResult,
    StageTiming,
    ValidationResult,
)
from exportkit.diagnose import Location
from exportkit.export import ExportAttempt, FrozenDim
from exportkit.report.junit import render_junit
from exportkit.report.pipeline import render_json, render_text
from exportkit.validate import OutputCheck, RunFailure, Trial

OUT = Path("out/net.onnx")
FAILED = Path("out/net.failed.onnx")  # where a failing run keeps its file, beside the target
VERSIONS = {"exportkit": "0.1.0", "torch": "2.13.0+cpu", "onnx": "1.23.2", "onnxruntime": "1.32.0"}
CASES = ("export inputs", "fresh draw", "batch=1", "batch=5")
BATCH = {"export inputs": 2, "fresh draw": 2, "batch=1": 1, "batch=5": 5}


def _check(
    name: str = "logits", *, batch: int = 2, max_abs: float = 5.96e-08, ok: bool = True
) -> OutputCheck:
    findings = () if ok else (f"{max_abs / 1e-4:.0f}x over tolerance on 37.5% of elements",)
    return OutputCheck(
        name=name,
        shape=(batch, 10),
        dtype="float32",
        atol=1e-4,
        rtol=1e-3,
        passed=ok,
        max_abs=max_abs,
        max_rel=max_abs * 3.3,
        mean_abs=max_abs / 3,
        frac_out=0.0 if ok else 0.375,
        atol_needed=0.0 if ok else max_abs * 0.98,
        findings=findings,
        magnitude=3.2,
    )


def _trials(failing: dict[str, float] | None = None) -> tuple[Trial, ...]:
    """The four usual cases; ``failing`` maps a case label to the max abs diff it fails with."""
    failing = failing or {}
    out = []
    for label in CASES:
        bad = label in failing
        check = _check(batch=BATCH[label], max_abs=failing.get(label, 5.96e-08), ok=not bad)
        out.append(
            Trial(label=label, input_shapes={"x": (BATCH[label], 3, 8, 8)}, outputs=(check,))
        )
    return tuple(out)


def _validation(
    path: Path, trials: tuple[Trial, ...], div: Divergence | None = None
) -> ValidationResult:
    return ValidationResult(path=path, trials=trials, seconds=0.05, divergence=div)


def _stages(*names: str) -> tuple[StageTiming, ...]:
    return tuple(StageTiming(stage=n, status="ok", seconds=0.25) for n in names)


STAGES = ("load", "inputs", "export", "validate", "simplify", "validate simplified", "summary")
INPUT = InputInfo(name="x", shape=(2, 3, 8, 8), dtype="float32", dynamic={0: "batch"})
DYNAMO = ExportAttempt(exporter="dynamo", ok=True, seconds=1.5)


def _export(
    *attempts: ExportAttempt, exporter: str = "dynamo", frozen: tuple[FrozenDim, ...] = ()
) -> ExportResult:
    return ExportResult(
        path=OUT,
        files=(),
        exporter=exporter,
        attempts=attempts or (DYNAMO,),
        opset=20 if exporter == "dynamo" else 17,
        input_names=("x",),
        output_names=("logits",),
        external_data=False,
        frozen_dims=frozen,
    )


def _simplify(*, kept: bool = True, reason: str | None = None) -> SimplifyResult:
    return SimplifyResult(
        simplifier="onnxsim",
        path=OUT,
        seconds=0.3,
        ops_before={"Conv": 2, "Relu": 2, "Identity": 3, "Gemm": 1},
        ops_after={"Conv": 2, "Relu": 2, "Gemm": 1},
        bytes_before=12_345,
        bytes_after=9_876,
        kept=kept,
        reason=reason,
        files=(OUT,) if kept else (),
    )


MATCH = Parity(
    exported=True,
    simplified=True,
    drift="none",
    kept="simplified",
    reason="the simplified file matches PyTorch",
)


def _report(**fields: object) -> Report:
    base: dict[str, object] = {
        "model": "tests/models/convnets.py:SmallCNN",
        "output": OUT,
        "files": (OUT,),
        "inputs": (INPUT,),
        "input_notes": (),
        "stages": _stages(*STAGES),
        "export": _export(),
        "simplify": _simplify(),
        "validation": _validation(OUT, _trials()),
        "validation_raw": _validation(OUT, _trials()),
        "summary": None,
        "versions": VERSIONS,
        "validation_simplified": _validation(OUT, _trials()),
        "parity": MATCH,
        "target": OUT,
    }
    base.update(fields)
    return Report(**base)  # type: ignore[arg-type]


def _pass() -> Report:
    return _report()


def _mismatch() -> Report:
    div = Divergence(
        kind="values",
        trial="fresh draw",
        location=Location(
            module="blocks.2.branch",
            cls="Drift",
            source="tests/models/diverging.py:14",
            code="return x * 1.05",
        ),
        detail="its output differs while its inputs matched: max abs diff 0.0586 (atol 0.0001, rtol 0.001)",
        check=_check("blocks.2.branch", max_abs=0.0586, ok=False),
        onnx_node="node_mul_24",
        onnx_op="Mul",
        onnx_values=("mul_24",),
        inputs_matched=True,
        matched=13,
        compared=14,
    )
    failing = {"fresh draw": 0.0586, "batch=5": 0.0412}
    raw = _validation(OUT, _trials(failing), div)
    simplified = _validation(OUT, _trials(failing))
    parity = Parity(
        exported=False,
        simplified=False,
        drift="exporter",
        kept="simplified",
        reason="the simplified file is no worse than the export",
    )
    return _report(
        output=FAILED,
        files=(FAILED,),
        validation=_validation(FAILED, _trials(failing), div),
        validation_raw=raw,
        validation_simplified=simplified,
        parity=parity,
    )


def _simplifier_discarded() -> Report:
    failing = {"batch=1": 0.25}
    reason = "the simplified file fails where the export passes: batch=1: logits (max abs 0.25)"
    parity = Parity(
        exported=True,
        simplified=False,
        drift="simplifier",
        kept="exported",
        reason=reason,
        new_failures=("batch=1: logits",),
    )
    return _report(
        simplify=_simplify(kept=False, reason=reason),
        validation_simplified=_validation(OUT, _trials(failing)),
        parity=parity,
    )


def _torchscript_fallback() -> Report:
    dynamo = ExportAttempt(
        exporter="dynamo",
        ok=False,
        seconds=2.1,
        error="unsupported operator aten._linalg_eigh.default",
        operator="aten._linalg_eigh.default",
        location=Location(module="spectrum", cls="Spectral", source="model.py:9"),
    )
    torchscript = ExportAttempt(exporter="torchscript", ok=True, seconds=0.4)
    return _report(
        export=_export(dynamo, torchscript, exporter="torchscript"),
        stages=_stages("load", "inputs", "export", "validate", "summary"),
        simplify=None,
        validation_simplified=None,
        parity=Parity(
            exported=True,
            simplified=None,
            drift="none",
            kept="exported",
            reason="--simplifier none",
        ),
        input_notes=("inferred --input 'x:2x3x8x8' from stem.0 (Conv2d argument input)",),
        input_source="inferred",
        input_lines=("x:2x3x8x8:float32",),
    )


def _frozen_dim() -> Report:
    frozen = FrozenDim(input="x", axis=0, label="batch", size=2)
    trials = tuple(
        Trial(
            label=t.label,
            input_shapes=t.input_shapes,
            outputs=() if t.label == "batch=1" else t.outputs,
            failure=RunFailure(
                kind="run",
                message="onnxruntime failed in node_reshape (Reshape): "
                "2 x 160 does not fit 1 x 160",
                node="node_reshape",
                status="2 x 160 does not fit 1 x 160",
            )
            if t.label == "batch=1"
            else None,
        )
        for t in _trials()
    )
    final = _validation(FAILED, trials)
    return _report(
        output=FAILED,
        files=(FAILED,),
        export=_export(frozen=(frozen,)),
        validation=final,
        validation_raw=final,
        validation_simplified=final,
    )


REPORTS: dict[str, Callable[[], Report]] = {
    "pass": _pass,
    "mismatch": _mismatch,
    "simplifier_discarded": _simplifier_discarded,
    "torchscript_fallback": _torchscript_fallback,
    "frozen_dim": _frozen_dim,
}
PASSED = {"pass": True, "simplifier_discarded": True, "torchscript_fallback": True}


@pytest.mark.parametrize("name", sorted(REPORTS))
def test_text(name: str, golden: Callable[[str, str], None]) -> None:
    report = REPORTS[name]()
    text = render_text(report)
    golden(f"report_{name}.txt", text)
    assert text.rstrip().endswith("PASS" if PASSED.get(name) else "FAIL")


@pytest.mark.parametrize("name", sorted(REPORTS))
def test_json(name: str, golden: Callable[[str, str], None]) -> None:
    report = REPORTS[name]()
    text = render_json(report)
    golden(f"report_{name}.json", text)
    data = json.loads(text)
    assert next(iter(data)) == "schema_version" and data["schema_version"] == 1
    assert data["passed"] is PASSED.get(name, False)


@pytest.mark.parametrize("name", sorted(REPORTS))
def test_junit(name: str, golden: Callable[[str, str], None]) -> None:
    report = REPORTS[name]()
    text = render_junit(report)
    golden(f"report_{name}.xml", text)
    suite = ElementTree.fromstring(text)
    failures = int(suite.get("failures", "-1"))
    assert (failures == 0) is PASSED.get(name, False)
    assert failures == len(suite.findall("testcase/failure"))


def test_the_reports_differ_where_the_verdicts_do() -> None:
    """A guard on the goldens themselves: each scenario shows its own finding in the text."""
    texts = {name: render_text(make()) for name, make in REPORTS.items()}
    assert "diverges  at blocks.2.branch (Drift, tests/models/diverging.py:14)" in texts["mismatch"]
    assert "simplify  onnxsim, not kept: the simplified file fails" in texts["simplifier_discarded"]
    assert "dynamo failed: unsupported operator" in texts["torchscript_fallback"]
    assert "exporter  torchscript (opset 17)" in texts["torchscript_fallback"]
    assert "FROZEN    x dim 0 (batch)" in texts["frozen_dim"]
    assert all("diverges" not in texts[n] for n in ("pass", "frozen_dim", "torchscript_fallback"))
