"""exportkit's pytest plugin (entry point ``pytest11``): the ``assert_exports`` fixture.

::

    def test_net_exports(assert_exports):
        report = assert_exports("models/net.py:Net", dynamic=["batch"])

The fixture is :func:`exportkit.testing.assert_exports` with the ONNX file in the test's
``tmp_path``. A failing test shows each exportkit report in a section of pytest's failure output;
``--exportkit-report DIR`` keeps every test's reports (``DIR/<test>/<model>.json`` and ``.html``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from exportkit.testing import failure_message, model_name, run_export

if TYPE_CHECKING:
    from exportkit.results import Report

__all__ = ["assert_exports", "pytest_addoption", "pytest_runtest_makereport"]

_REPORTS = pytest.StashKey[list[tuple[str, "Report"]]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("exportkit")
    group.addoption(
        "--exportkit-report",
        metavar="DIR",
        default=None,
        help="keep each test's exportkit reports as DIR/<test>/<model>.json and .html",
    )


def _folder_name(nodeid: str) -> str:
    """``tests/test_x.py::test_y[a]`` -> ``tests_test_x.py__test_y_a``: one folder per test."""
    return re.sub(r"[^\w.-]+", "_", nodeid).strip("_") or "test"


def _keep(report: Report, folder: Path, name: str) -> None:
    from exportkit.report.html import render_html
    from exportkit.report.pipeline import render_json

    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(render_json(report), encoding="utf-8")
    (folder / f"{name}.html").write_text(render_html(report), encoding="utf-8")


@pytest.fixture
def assert_exports(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., Report]:
    """``assert_exports(spec_or_module, inputs=None, **options) -> Report``: exports into the
    test's ``tmp_path``; AssertionError (verdict, failing outputs, diverging module) unless the
    export passes. See :func:`exportkit.testing.assert_exports`."""
    keep = request.config.getoption("--exportkit-report")
    reports = request.node.stash.setdefault(_REPORTS, [])

    def check(
        spec_or_module: Any, inputs: Any = None, *, path: Any = None, **options: Any
    ) -> Report:
        name = model_name(spec_or_module)
        taken = {n for n, _ in reports}
        if name in taken:  # the same model twice in one test: keep both
            name = f"{name}-{len(reports) + 1}"
        if path is None:
            path = tmp_path / name / f"{name}.onnx"
        report = run_export(spec_or_module, inputs, path=path, **options)
        reports.append((name, report))
        if keep:
            _keep(report, Path(keep) / _folder_name(request.node.nodeid), name)
        if not report.passed:
            raise AssertionError(failure_message(report))
        return report

    return check


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed test shows the text report of each export it ran, one section per model."""
    rep = yield
    if rep.when == "call" and rep.failed:
        from exportkit.report.pipeline import render_text

        for name, report in item.stash.get(_REPORTS, []):
            rep.sections.append((f"exportkit report: {name}", render_text(report)))
    return rep
