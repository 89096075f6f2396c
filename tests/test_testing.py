"""exportkit.testing.assert_exports under pytest, unittest and a plain script; the pytest plugin."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import unittest
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from exportkit.testing import assert_exports, model_name

pytest_plugins = ["pytester"]

ROOT = Path(__file__).parent.parent
WRONG = f"{ROOT}/tests/models/diverging.py:BuggyBranch"
RIGHT = f"{ROOT}/examples/simple_net.py:SimpleNet"
# The TorchScript exporter is the fast one; BuggyBranch drifts under it too (torch.jit.is_tracing).
FAST = 'exporter="torchscript", simplifier="none", sizes=False'


def _run(
    args: list[str], cwd: Path, *, first: Path | None = None
) -> subprocess.CompletedProcess[str]:
    paths = [str(first)] if first is not None else []
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([*paths, str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_assert_exports_names_the_diverging_module_and_returns_passing_reports(
    tmp_path: Path,
) -> None:
    with pytest.raises(AssertionError) as caught:
        assert_exports(WRONG, exporter="torchscript", simplifier="none", sizes=False)
    message = str(caught.value)
    assert message.splitlines()[0].endswith("does not export correctly (verdict FAIL)")
    assert "failing outputs:\n  output: max abs " in message
    assert "in export inputs, fresh draw" in message
    assert "diverges at blocks.2.branch (Drift, " in message
    assert "diverging.py:14)" in message
    assert "ONNX node: /model/blocks/blocks.2/branch/Mul (Mul)" in message
    report = assert_exports(RIGHT, path=tmp_path / "simple.onnx", exporter="torchscript")
    assert report.passed and report.output == tmp_path / "simple.onnx"
    assert report.output.is_file()


def test_a_model_that_raises_on_its_inputs_fails_the_assertion() -> None:
    with pytest.raises(AssertionError, match=r"^exportkit: .*\nhint: ") as caught:
        assert_exports(
            f"{ROOT}/tests/models/diverging.py:HardBatch", ["x:3x4"], exporter="torchscript"
        )
    assert caught.value.__cause__ is not None  # the ExportkitError behind it


def test_model_names_for_files() -> None:
    assert model_name("m.py:Net(width=8)") == "Net"
    assert model_name("hf:models/tiny_bert/") == "tiny_bert"
    assert model_name("out/conv.pt2") == "conv"


def test_assert_exports_under_unittest() -> None:
    class Models(unittest.TestCase):
        def test_wrong(self) -> None:
            assert_exports(WRONG, exporter="torchscript", simplifier="none", sizes=False)

        def test_right(self) -> None:
            report = assert_exports(RIGHT, exporter="torchscript", simplifier="none", sizes=False)
            self.assertTrue(report.passed)

    stream = io.StringIO()
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(Models)
    result = unittest.TextTestRunner(stream=stream, verbosity=2).run(suite)
    out = stream.getvalue()
    assert (result.testsRun, len(result.failures), len(result.errors)) == (2, 1, 0), out
    assert "test_right (" in out and ") ... ok" in out
    assert "FAIL: test_wrong (" in out
    assert "AssertionError: exportkit: " in out
    assert "diverges at blocks.2.branch (Drift, " in out


@pytest.mark.slow  # a fresh interpreter imports torch: seconds
def test_assert_exports_in_a_plain_script(tmp_path: Path) -> None:
    script = tmp_path / "check_models.py"
    script.write_text(
        f"from exportkit.testing import assert_exports\n"
        f"print(assert_exports({RIGHT!r}, {FAST}).passed)\n"
        f"assert_exports({WRONG!r}, {FAST})\n"
        f"print('not reached')\n"
    )
    done = _run([sys.executable, str(script)], tmp_path)
    assert done.returncode == 1
    assert done.stdout == "True\n"
    assert "AssertionError: exportkit: " in done.stderr
    assert "diverges at blocks.2.branch (Drift, " in done.stderr


def test_pytest_plugin_fixture_report_folder_and_failure_sections(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_models=f"""
        def test_wrong(assert_exports):
            assert_exports({WRONG!r}, {FAST})

        def test_right(assert_exports, tmp_path):
            report = assert_exports({RIGHT!r}, {FAST})
            assert report.output == tmp_path / "SimpleNet" / "SimpleNet.onnx"
        """
    )
    result = pytester.runpytest_inprocess(
        "-p", "exportkit.pytest_plugin", "--exportkit-report", "kept", "--junitxml", "junit.xml"
    )
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    # The failure: the assertion message, then the text report in its own section.
    assert "AssertionError: exportkit: " in out
    assert "- exportkit report: BuggyBranch -" in out
    assert "diverges  at blocks.2.branch (Drift, " in out  # the text report's line
    assert "exportkit report: SimpleNet" not in out  # passing tests show nothing
    # Every test's reports are kept.
    kept = pytester.path / "kept"
    wrong_html = (kept / "test_models.py_test_wrong" / "BuggyBranch.html").read_text()
    assert "blocks.2.branch" in wrong_html and 'id="verdict">FAIL<' in wrong_html
    assert (kept / "test_models.py_test_wrong" / "BuggyBranch.json").is_file()
    right_html = (kept / "test_models.py_test_right" / "SimpleNet.html").read_text()
    assert 'id="verdict">PASS<' in right_html
    # pytest's JUnit names the diverging module in the failure message.
    junit = ET.parse(pytester.path / "junit.xml").getroot()
    failure = junit.find(".//testcase[@name='test_wrong']/failure")
    assert failure is not None
    assert "diverges at blocks.2.branch (Drift" in failure.get("message", "")


def test_assert_exports_takes_the_options_of_export(tmp_path: Path) -> None:
    from exportkit import Options

    with pytest.raises(TypeError, match="unknown option 'atoll'"):
        assert_exports(WRONG, atoll=1.0)  # type: ignore[call-arg]
    # A tolerance wide enough for the 5% drift: the same model passes, and the report is written.
    base = Options(exporter="torchscript", simplifier="none", sizes=False)
    report = assert_exports(WRONG, options=base, atol=0.5, html=tmp_path / "r.html")
    assert report.passed and report.export is not None
    assert report.export.exporter == "torchscript"
    assert 'id="verdict">PASS<' in (tmp_path / "r.html").read_text()


def test_the_pytest11_entry_point_of_pyproject_loads_the_plugin(tmp_path: Path) -> None:
    """pyproject's entry point, as an installed distribution declares it, registers the plugin
    with no ``-p``: pytest then knows ``--exportkit-report`` and the fixture."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    entry_points = project["entry-points"]["pytest11"]
    assert entry_points == {"exportkit.pytest_plugin": "exportkit.pytest_plugin"}
    dist = tmp_path / "exportkit_probe-0.dist-info"  # an installed distribution, as pip writes it
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: exportkit-probe\nVersion: 0\n")
    lines = [f"{name} = {target}" for name, target in entry_points.items()]
    (dist / "entry_points.txt").write_text("\n".join(["[pytest11]", *lines, ""]))
    (tmp_path / "test_probe.py").write_text("def test_probe(assert_exports):\n    pass\n")
    # Without -p: the option parses and the fixture exists only if the entry point loaded it.
    args = ["-p", "no:cacheprovider", "-q", "--exportkit-report", "kept", "test_probe.py"]
    done = _run([sys.executable, "-m", "pytest", *args], tmp_path, first=tmp_path)
    assert "1 passed" in done.stdout, done.stdout + done.stderr
