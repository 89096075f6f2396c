"""Three-way parity: which step drifted, and the simplified file kept only when no worse."""

from __future__ import annotations

from pathlib import Path

from exportkit.validate import OutputCheck, RunFailure, Trial, ValidationResult, three_way


def _result(*outputs: tuple[str, str, bool], error: str | None = None) -> ValidationResult:
    trials: dict[str, list[OutputCheck]] = {}
    for trial, name, ok in outputs:
        check = OutputCheck(name, (2,), "float32", 1e-4, 1e-3, ok, max_abs=0.0 if ok else 0.5)
        trials.setdefault(trial, []).append(check)
    made = [Trial(label, {"x": (2,)}, tuple(checks)) for label, checks in trials.items()]
    if error:
        made.append(Trial("batch=1", {"x": (1,)}, (), RunFailure("run", error)))
    return ValidationResult(Path("m.onnx"), tuple(made), 0.0)


GOOD = _result(("export inputs", "logits", True), ("fresh draw", "logits", True))


def test_simplifier_drift_discards_the_simplified_file_and_says_where() -> None:
    bad = _result(("export inputs", "logits", True), ("fresh draw", "logits", False))
    parity = three_way(GOOD, bad)
    assert (parity.exported, parity.simplified, parity.drift) == (True, False, "simplifier")
    assert parity.kept == "exported"
    assert parity.new_failures == ("fresh draw: logits",)
    assert "fresh draw: logits (max abs 0.5)" in parity.reason


def test_exporter_drift_keeps_a_simplified_file_that_is_no_worse() -> None:
    raw = _result(("export inputs", "logits", False))
    parity = three_way(raw, _result(("export inputs", "logits", False)))
    assert (parity.drift, parity.kept) == ("exporter", "simplified")
    assert "no worse" in parity.reason


def test_both_steps_drift() -> None:
    raw = _result(("export inputs", "logits", False), ("export inputs", "ids", True))
    simp = _result(("export inputs", "logits", False), ("export inputs", "ids", False))
    parity = three_way(raw, simp)
    assert (parity.drift, parity.kept) == ("exporter and simplifier", "exported")


def test_a_run_failure_only_in_the_simplified_file_counts() -> None:
    simp = _result(
        ("export inputs", "logits", True),
        ("fresh draw", "logits", True),
        error="onnxruntime failed: Reshape",
    )
    parity = three_way(GOOD, simp)
    assert parity.drift == "simplifier" and parity.new_failures == ("batch=1: (run)",)


def test_no_simplified_file() -> None:
    parity = three_way(GOOD, None, why_none="--simplifier none")
    assert (parity.simplified, parity.drift, parity.kept) == (None, "none", "exported")
    assert parity.reason == "--simplifier none"


def test_sizes_where_pytorch_itself_fails_are_not_an_export_drift() -> None:
    ok = (OutputCheck("logits", (2,), "float32", 1e-4, 1e-3, True),)
    fails = Trial(
        "batch=1", {"x": (1,)}, (), RunFailure("pytorch", "PyTorch itself fails at batch=1")
    )
    raw = ValidationResult(Path("m.onnx"), (Trial("export inputs", {"x": (2,)}, ok), fails), 0.0)
    assert three_way(raw, None).drift == "model"
    assert three_way(raw, raw).drift == "model" and three_way(raw, raw).kept == "simplified"
