"""The steps of a decoder run in the reports (text, Markdown, JSON, JUnit), from hand-built
results against tests/golden/ (no export runs; rewrite with ``pytest --update-golden``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from xml.etree import ElementTree

from exportkit import Divergence, Report
from exportkit.decode import PrefillFile, StatePair, StepResult
from exportkit.diagnose import Location
from exportkit.report.junit import render_junit
from exportkit.report.load import load_report
from exportkit.report.markdown import render_markdown
from exportkit.report.pipeline import render_json, render_text, verdict_reason
from tests.test_report_golden import FAILED, OUT, _check, _report, _trials, _validation

PAIRS = (
    StatePair("past_k", "present_k", axis=1, inferred=True),
    StatePair("past_v", "present_v", axis=1, inferred=True),
)
AT = Location(
    "positions", "BakedPositions", "tests/models/stateful.py:52", "return int(past.shape[1])"
)


def _step(step: int, past: int, ok: bool = True) -> StepResult:
    diff = 2.4e-07 if ok else 2.96
    return StepResult(step, past, diff, ok, ok, (_check(max_abs=diff, ok=ok),))


def _failing() -> Report:
    div = Divergence("values", "step 0", AT, "its output differs while its inputs matched")
    first = replace(_step(0, 0, ok=False), divergence=div)
    steps = (first, _step(1, 5), _step(2, 6), _step(3, 7, ok=False))
    return _report(state_pairs=PAIRS, steps=steps, output=FAILED, files=(FAILED,))


def test_passing_steps_pass_and_failing_steps_fail() -> None:
    passing = _report(state_pairs=PAIRS, steps=tuple(_step(i, p) for i, p in enumerate((0, 5, 6))))
    assert passing.passed and not _failing().passed
    reason = verdict_reason(_failing())
    assert "decode step 0 fails first" in reason and "positions (BakedPositions" in reason


def test_steps_text(golden: Callable[[str, str], None]) -> None:
    text = render_text(_failing())
    assert "to pin them: --state past_k=present_k --state past_v=present_v" in text
    golden("report_steps_fail.txt", text)


def test_steps_markdown(golden: Callable[[str, str], None]) -> None:
    golden("report_steps_fail.md", render_markdown(_failing()))


def test_steps_json_and_junit() -> None:
    steps = json.loads(render_json(_failing()))["steps"]
    assert [(s["step"], s["past_length"], s["passed"]) for s in steps] == [
        (0, 0, False), (1, 5, True), (2, 6, True), (3, 7, False),
    ]  # fmt: skip
    assert steps[0]["token_agreement"] is False and steps[0]["max_abs_diff"] == 2.96
    assert steps[0]["divergence"]["location"]["module"] == "positions"
    suite = ElementTree.fromstring(render_junit(_failing()))
    cases = {c.get("name"): c for c in suite.iter("testcase") if "decode" in (c.get("name") or "")}
    assert sorted(cases) == [
        f"decode step {i} (past {p})" for i, p in ((0, 0), (1, 5), (2, 6), (3, 7))
    ]
    assert cases["decode step 0 (past 0)"].find("failure") is not None
    assert cases["decode step 1 (past 5)"].find("failure") is None
    assert "positions (BakedPositions" in (
        cases["decode step 0 (past 0)"].findtext("failure") or ""
    )


def _table_after(page: str, anchor: str) -> list[list[str]]:
    """The first table after ``anchor`` as a reader sees it: rows of cell texts."""
    from html.parser import HTMLParser

    rows: list[list[str]] = []

    class Cells(HTMLParser):
        cell: list[str] | None = None
        done = False

        def handle_starttag(self, tag: str, attrs: object) -> None:
            if self.done:
                return
            if tag == "tr":
                rows.append([])
            elif tag in ("td", "th"):
                self.cell = []

        def handle_endtag(self, tag: str) -> None:
            if tag in ("td", "th") and self.cell is not None and not self.done:
                rows[-1].append("".join(self.cell).strip())
                self.cell = None
            elif tag == "table":
                self.done = True

        def handle_data(self, data: str) -> None:
            if self.cell is not None:
                self.cell.append(data)

    Cells().feed(page[page.index(anchor) :])
    return rows


def test_steps_html() -> None:
    from exportkit.report.html import render_html

    page = render_html(_failing(), picture=None)
    section = page[page.index('id="steps"') :]
    assert "--state past_k=present_k --state past_v=present_v" in section[:1000]
    rows = _table_after(page, 'id="steps"')
    assert rows[0] == [
        "step", "past length", "max abs diff", "token agrees", "verdict", "finding",
        "first failing step diverges at",
    ]  # fmt: skip
    assert [r[:5] for r in rows[1:]] == [
        ["0", "0", "2.96e+00", "NO", "FAIL"],
        ["1", "5", "2.40e-07", "yes", "pass"],
        ["2", "6", "2.40e-07", "yes", "pass"],
        ["3", "7", "2.96e+00", "NO", "FAIL"],
    ]
    assert rows[1][6] == "positions (BakedPositions)" and rows[4][6] == ""
    assert "Step 0 fails first." in section


CROSS_PAIRS = (
    StatePair("past_key_values_0_key", "present.0.key", axis=2, inferred=True),
    StatePair("past_key_values_0_cross_key", "present.0.cross.key", inferred=True,
              prefill_only=True),
)  # fmt: skip
PREFILL = Path("out/net.prefill.onnx")


def _with_prefill(failing: dict[str, float] | None = None) -> Report:
    check = _validation(PREFILL, _trials(failing))
    prefill = PrefillFile(PREFILL, (PREFILL,), check, simplified=True)
    steps = tuple(_step(i, p) for i, p in enumerate((0, 5, 6)))
    return _report(state_pairs=CROSS_PAIRS, steps=steps, prefill=prefill, files=(OUT, PREFILL))


def test_prefill_file_in_every_report() -> None:
    """An encoder-decoder's prefill file: its validation in the text, JUnit and JSON (read back
    as the cache does), the pairs it alone writes said so; a failing one fails the run."""
    report = _with_prefill()
    assert report.passed
    text = render_text(report)
    assert "state     2 pairs (1 written by the prefill graph only), inferred by name" in text
    assert "--state past_key_values_0_cross_key=present.0.cross.key" in text
    assert "prefill   out/net.prefill.onnx, simplified: pass on 4 single calls" in text
    assert "step 0: the prefill graph (no past; it returns the cross-attention cache)" in text
    assert "files     out/net.onnx, out/net.prefill.onnx" in text
    data = json.loads(render_json(report))
    assert data["prefill"]["path"] == "out/net.prefill.onnx"
    assert [p["prefill_only"] for p in data["state_pairs"]] == [False, True]
    assert load_report(render_json(report)).prefill == report.prefill
    assert '<testcase classname="tests/models/convnets.py:SmallCNN" name="prefill file"/>' in (
        render_junit(report)
    )
    from exportkit.report.html import render_html

    section = render_html(report, picture=None).split('id="steps"', 1)[1]
    assert "Prefill file: <code>out/net.prefill.onnx, simplified: pass on 4 single calls" in section
    bad = _with_prefill({"batch=5": 2.5})
    assert not bad.passed
    assert "the prefill file net.prefill.onnx differs from PyTorch" in verdict_reason(bad)
    suite = ElementTree.fromstring(render_junit(bad))
    case = next(c for c in suite.iter("testcase") if c.get("name") == "prefill file")
    assert case.find("failure") is not None


def test_a_greedy_token_flipped_by_a_tie_in_pytorch_itself_is_not_a_failure() -> None:
    """A tiny random LM's logits are nearly flat: PyTorch's top two scores can lie closer than
    the logits' tolerance, and a file within tolerance may pick the other one. The logits'
    comparison judges that step; a flip beyond what the tolerance lets move is a failure."""
    import numpy as np

    from exportkit.decode.steps import _judge
    from exportkit.report.steps import render_steps
    from exportkit.validate import Tolerances

    rng = np.random.default_rng(0)
    expected = rng.normal(0.0, 1.0, (1, 1, 64)).astype(np.float32)
    expected[0, 0, :2] = [5.0, 5.00001]  # PyTorch's top two, 1e-5 apart
    tied = expected.copy()
    tied[0, 0, :2] = [5.00001, 5.0]  # within atol 1e-4: the file breaks the tie the other way
    step = _judge(1, 5, ["logits"], [expected], [tied], Tolerances(), "logits")
    assert step.token_agreement is False and step.token_tie and step.passed
    row = next(line for line in render_steps([], [step]) if line.lstrip().startswith("1 "))
    assert row.split()[-2:] == ["tie", "pass"]
    flipped = expected.copy()
    flipped[0, 0, 7] = 6.0  # a clear winner PyTorch does not have: far beyond tolerance
    step = _judge(1, 5, ["logits"], [expected], [flipped], Tolerances(), "logits")
    assert step.token_agreement is False and not step.token_tie and not step.passed
