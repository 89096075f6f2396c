"""`exportkit view FILE.onnx`: the URL, the SSH line, the warnings, exit codes, stopping by signal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import onnx
import pytest

from exportkit.cli import main
from exportkit.errors import EXIT_USAGE
from tests.test_viewer import conv_model, get, listening_socket

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.onnx"
    onnx.save(conv_model(), str(path))
    return path


class ViewProcess:
    """``python -m exportkit view ...`` in a subprocess, read until it prints its URL."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        base = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
        base.pop("SSH_CONNECTION", None)
        base["PYTHONPATH"] = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
        self.process = subprocess.Popen(
            [sys.executable, "-m", "exportkit", "view", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**base, **(env or {})},
        )
        assert self.process.stdout is not None
        self.before: list[str] = []  # what came before the URL (the report, for a SPEC)
        for line in self.process.stdout:
            if line.startswith("Netron: http://"):
                self.url = line.split()[1]
                return
            self.before.append(line)
        raise AssertionError("".join(self.before) + self.rest()[1])

    def rest(self, signum: int | None = None) -> tuple[str, str]:
        if signum is not None:
            self.process.send_signal(signum)
        self.process.wait(timeout=30)
        # Read through the same buffered streams: readline() may already hold the next lines.
        assert self.process.stdout is not None and self.process.stderr is not None
        with self.process.stdout, self.process.stderr:
            return self.process.stdout.read(), self.process.stderr.read()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.communicate()  # reaps it and closes its pipes


@pytest.fixture
def run_view() -> Iterator[type[ViewProcess]]:
    started: list[ViewProcess] = []

    class Tracked(ViewProcess):
        def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
            started.append(self)
            super().__init__(args, env)

    yield Tracked
    for view in started:
        view.kill()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_view_serves_until_signal_then_exits_0(
    model_file: Path, run_view: type[ViewProcess], signum: int
) -> None:
    view = run_view([str(model_file), "--no-browser"])
    assert view.url.startswith("http://127.0.0.1:")
    assert get(view.url + "data/tiny.onnx")[0] == 200
    _out, err = view.rest(signum)
    assert view.process.returncode == 0, err
    assert "Traceback" not in err
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(view.url, timeout=5)


def test_view_prints_ssh_tunnel_over_ssh_without_display(
    model_file: Path, run_view: type[ViewProcess]
) -> None:
    env = {"SSH_CONNECTION": "203.0.113.5 50122 198.51.100.7 22", "USER": "ana"}
    view = run_view([str(model_file)], env)  # no --no-browser: no display, so none opens
    port = view.url.rsplit(":", 1)[1].strip("/")
    out, err = view.rest(signal.SIGTERM)
    assert f"ssh -N -L {port}:127.0.0.1:{port} ana@198.51.100.7" in out
    assert view.process.returncode == 0, err


def test_view_on_a_non_loopback_host_warns(model_file: Path, run_view: type[ViewProcess]) -> None:
    view = run_view([str(model_file), "--host", "0.0.0.0", "--no-browser"])
    assert view.url.startswith("http://127.0.0.1:")  # the local browser reaches it there
    _out, err = view.rest(signal.SIGTERM)
    assert "warning: listening on 0.0.0.0" in err
    assert view.process.returncode == 0


def test_view_taken_port_exits_2_with_hint(
    model_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with listening_socket() as sock:
        port = sock.getsockname()[1]
        code = main(["view", str(model_file), "--port", str(port), "--no-browser"])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE
    assert f"error: port {port} on 127.0.0.1 is already in use" in err
    assert "hint:" in err and "Traceback" not in err


def test_view_taken_port_fails_before_exporting(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    spec = ROOT / "examples" / "simple_net.py"
    with listening_socket() as sock:
        port = sock.getsockname()[1]
        code = main(
            [
                "view",
                f"{spec}:SimpleNet",
                "--input",
                "x:2x10",
                "-o",
                str(tmp_path / "s.onnx"),
                "--port",
                str(port),
                "--no-browser",
            ]
        )
    assert code == EXIT_USAGE
    assert not (tmp_path / "s.onnx").exists()  # no export was run
    assert "already in use" in capsys.readouterr().err


def test_view_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["view", str(tmp_path / "nope.onnx"), "--no-browser"])
    assert code == EXIT_USAGE
    assert "nope.onnx does not exist" in capsys.readouterr().err


def test_export_annotate_writes_findings_into_the_output(tmp_path: Path) -> None:
    out = tmp_path / "simple.onnx"
    spec = f"{ROOT / 'examples' / 'simple_net.py'}:SimpleNet"
    code = main(["export", spec, "--input", "x:2x10", "-o", str(out), "--annotate", "--no-sizes"])
    assert code == 0
    props = {p.key: p.value for p in onnx.load(str(out), load_external_data=False).metadata_props}
    assert props["exportkit.verdict"] == "pass"
    assert props["exportkit.max_abs_diff"].count(":") == 1  # one output, named
    assert props["exportkit.exporter"] in ("dynamo", "torchscript")
    import onnxruntime as ort

    ort.InferenceSession(str(out))  # still loads, weights found


def test_export_without_annotate_leaves_no_findings(tmp_path: Path) -> None:
    out = tmp_path / "simple.onnx"
    spec = f"{ROOT / 'examples' / 'simple_net.py'}:SimpleNet"
    assert main(["export", spec, "--input", "x:2x10", "-o", str(out), "--no-sizes"]) == 0
    model = onnx.load(str(out), load_external_data=False)
    assert not any(p.key.startswith("exportkit.") for p in model.metadata_props)


def test_annotate_marks_the_diverging_node(tmp_path: Path) -> None:
    out = tmp_path / "drift.onnx"
    spec = f"{ROOT / 'tests' / 'models' / 'broken.py'}:ExportDrift"
    code = main(["export", spec, "--input", "x:2x4", "-o", str(out), "--annotate", "--no-sizes"])
    assert code == 1  # a mismatch is a finding, and still annotated
    assert not out.exists()  # the target only ever receives a file that passed
    model = onnx.load(str(tmp_path / "drift.failed.onnx"), load_external_data=False)
    props = {p.key: p.value for p in model.metadata_props}
    assert props["exportkit.verdict"] == "mismatch"
    assert props["exportkit.first_diverging_module"].startswith("the model itself (ExportDrift")
    marked = {
        node.op_type: {p.key: p.value for p in node.metadata_props}
        for node in model.graph.node
        if any(p.key == "exportkit.diverges" for p in node.metadata_props)
    }
    assert list(marked) == ["Mul"]  # the `y * 1.05` only the export does
    assert float(marked["Mul"]["exportkit.max_abs_diff"]) > 0.01


def test_python_view_of_a_spec_serves_the_findings(tmp_path: Path) -> None:
    import exportkit
    from tests.test_viewer import served_model

    spec = f"{ROOT / 'examples' / 'simple_net.py'}:SimpleNet"
    with exportkit.view(spec, ["x:2x10"], path=tmp_path / "s.onnx", sizes=False) as handle:
        props = {p.key: p.value for p in served_model(handle).metadata_props}
    assert props["exportkit.verdict"] == "pass"
    assert "exportkit.max_abs_diff" in props
    on_disk = onnx.load(str(tmp_path / "s.onnx"), load_external_data=False)
    assert not any(p.key.startswith("exportkit.") for p in on_disk.metadata_props)
