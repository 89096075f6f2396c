"""The Netron viewer over HTTP: ports, hosts, several views, stopping, what the page can fetch."""

from __future__ import annotations

import errno
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from exportkit.errors import (
    EXIT_USAGE,
    HostError,
    OnnxFileError,
    PortInUseError,
    UsageError,
    ViewError,
)
from exportkit.viewer import ViewHandle, local_addresses, netron_outdated, serve


def conv_model(channels: int = 4, *, doc: str = "") -> onnx.ModelProto:
    """x[1,3,8,8] -> Conv -> Relu -> y: no value_info, so intermediate shapes need inference."""
    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(
        rng.standard_normal((channels, 3, 3, 3)).astype(np.float32), "conv.weight"
    )
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "conv.weight"], ["h"], name="/conv/Conv", pads=[1] * 4),
            helper.make_node("Relu", ["h"], ["y"], name="/relu/Relu"),
        ],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [weight],
        doc_string=doc,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.onnx"
    onnx.save(conv_model(), str(path))
    return path


@pytest.fixture
def external_model(tmp_path: Path) -> Path:
    """A model whose weights live in tiny.onnx.data, beside a file that must stay private."""
    folder = tmp_path / "ext"
    folder.mkdir()
    path = folder / "tiny.onnx"
    onnx.save(
        conv_model(16),
        str(path),
        save_as_external_data=True,
        location="tiny.onnx.data",
        size_threshold=0,
    )
    (folder / "secret.txt").write_text("not for the network")
    return path


@pytest.fixture
def views() -> Iterator[list[ViewHandle]]:
    """Handles to stop after the test, whatever it asserted."""
    handles: list[ViewHandle] = []
    yield handles
    for handle in handles:
        handle.stop()


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def raw_get(handle: ViewHandle, path: str) -> int:
    """Status of a GET sent with ``path`` exactly as written (no client-side normalisation)."""
    connection = http.client.HTTPConnection("127.0.0.1", handle.port, timeout=10)
    try:
        connection.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
        connection.putheader("Host", f"127.0.0.1:{handle.port}")
        connection.endheaders()
        return connection.getresponse().status
    finally:
        connection.close()


def listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


def served_model(handle: ViewHandle) -> onnx.ModelProto:
    """The model the page opens: the file its <meta name="file"> names, fetched over HTTP."""
    status, page = get(handle.url)
    assert status == 200
    match = re.search(r'<meta name="file" content="([^"]+)">', page.decode())
    assert match, "the page does not name a model file"
    status, body = get(handle.url.rstrip("/") + match.group(1))
    assert status == 200
    return onnx.load_from_string(body)


def test_serve_returns_at_once_with_netron_page_and_model(model_file: Path, views: list) -> None:
    handle = serve(model_file)
    views.append(handle)
    assert handle.url == f"http://127.0.0.1:{handle.port}/"
    assert handle.port > 0
    status, page = get(handle.url)
    assert status == 200
    assert b"<title>Netron</title>" in page
    assert b'<meta name="file" content="/data/tiny.onnx">' in page
    assert served_model(handle).graph.node[0].op_type == "Conv"
    assert get(handle.url + "index.js")[0] == 200  # Netron's own scripts
    assert get(handle.url + "nothing.js")[0] == 404


def test_default_host_is_loopback_only(model_file: Path, views: list) -> None:
    handle = serve(model_file)
    views.append(handle)
    assert handle.host == "127.0.0.1"
    assert handle._server.socket.getsockname()[0] == "127.0.0.1"


def test_free_port_picked_when_none_given(model_file: Path, views: list) -> None:
    first, second = serve(model_file), serve(model_file, port=None)
    views += [first, second]
    assert first.port != second.port
    assert get(first.url)[0] == get(second.url)[0] == 200


def test_given_port_is_used(model_file: Path, views: list) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    handle = serve(model_file, port=port)
    views.append(handle)
    assert handle.port == port
    assert handle.url == f"http://127.0.0.1:{port}/"


def test_taken_port_is_an_error_not_moved(model_file: Path) -> None:
    with listening_socket() as sock:
        port = sock.getsockname()[1]
        with pytest.raises(PortInUseError, match=f"port {port} .*already in use") as info:
            serve(model_file, port=port)
    assert info.value.exit_code == EXIT_USAGE
    assert info.value.hint and "--port" in info.value.hint


def test_port_of_another_view_is_taken_and_that_view_keeps_serving(
    model_file: Path, views: list
) -> None:
    first = serve(model_file)
    views.append(first)
    with pytest.raises(PortInUseError):
        serve(model_file, port=first.port)
    assert get(first.url + "data/tiny.onnx")[0] == 200


@pytest.mark.parametrize("port", [-1, 65536, 1.5])
def test_bad_port_number_is_a_usage_error(model_file: Path, port: object) -> None:
    with pytest.raises(UsageError, match="not a port number"):
        serve(model_file, port=port)  # type: ignore[arg-type]


def test_host_not_of_this_machine_is_a_usage_error(model_file: Path) -> None:
    # A documentation address (TEST-NET) that no interface here has.
    foreign = next(
        a for a in ("192.0.2.1", "198.51.100.1", "203.0.113.1") if a not in local_addresses()
    )
    with pytest.raises(HostError, match=re.escape(foreign)) as info:
        serve(model_file, host=foreign)
    assert info.value.exit_code == EXIT_USAGE
    assert info.value.hint is not None and "127.0.0.1" in info.value.hint


def test_two_views_serve_their_own_models_and_stop_independently(
    tmp_path: Path, views: list
) -> None:
    # netron.start in one process serves the last model on every port; exportkit must not.
    a, b = tmp_path / "a" / "m.onnx", tmp_path / "b" / "m.onnx"
    for path, channels in ((a, 4), (b, 6)):
        path.parent.mkdir()
        onnx.save(conv_model(channels), str(path))
    view_a, view_b = serve(a), serve(b)
    views += [view_a, view_b]
    dims = [served_model(v).graph.initializer[0].dims[0] for v in (view_a, view_b)]
    assert dims == [4, 6]
    view_a.stop()
    assert not view_a.running
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(view_a.url, timeout=5)
    assert served_model(view_b).graph.initializer[0].dims[0] == 6


def test_stop_frees_port_and_removes_the_viewed_copy(model_file: Path) -> None:
    with serve(model_file) as handle:
        copy = handle.model_path
        assert copy.is_file() and copy != model_file
    assert not handle.running
    assert not copy.parent.exists()
    handle.stop()  # a second stop is harmless
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", handle.port))  # the port is free again


def test_wait_returns_when_stopped_from_another_thread(model_file: Path) -> None:
    handle = serve(model_file)
    threading.Timer(0.2, handle.stop).start()
    handle.wait()
    assert not handle.running


def test_external_data_is_served_and_nothing_else_of_the_folder(
    external_model: Path, views: list
) -> None:
    handle = serve(external_model)
    views.append(handle)
    data = external_model.with_name("tiny.onnx.data").read_bytes()
    status, body = get(handle.url + "data/tiny.onnx.data")
    assert (status, body) == (200, data)
    assert get(handle.url + "data/tiny.onnx.data?cb=123")[1] == data  # Netron's cache buster
    model = served_model(handle)
    location = {e.key: e.value for e in model.graph.initializer[0].external_data}["location"]
    assert location == "tiny.onnx.data"
    for path in [
        "/data/secret.txt",
        "/data/../secret.txt",
        "/data/%2e%2e/secret.txt",
        "/data/..%2fsecret.txt",
        f"/data/{external_model.parent}/secret.txt",
        "/data//etc/passwd",
        "/../../../../etc/passwd",
        "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/server.py",  # netron's folder holds more than the page: only page assets are served
    ]:
        assert raw_get(handle, path) == 404, path


def test_served_file_has_findings_and_shapes_and_user_file_is_untouched(
    model_file: Path, views: list
) -> None:
    before = model_file.read_bytes()
    handle = serve(
        model_file,
        model_props={"exportkit.verdict": "mismatch", "exportkit.max_abs_diff.y": "0.048"},
        node_props={"/relu/Relu": {"exportkit.max_abs_diff": "0.048"}},
    )
    views.append(handle)
    model = served_model(handle)
    assert {p.key: p.value for p in model.metadata_props} == {
        "exportkit.verdict": "mismatch",
        "exportkit.max_abs_diff.y": "0.048",
    }
    relu = next(node for node in model.graph.node if node.name == "/relu/Relu")
    assert {p.key: p.value for p in relu.metadata_props} == {"exportkit.max_abs_diff": "0.048"}
    shapes = {
        info.name: [d.dim_value for d in info.type.tensor_type.shape.dim]
        for info in model.graph.value_info
    }
    assert shapes["h"] == [1, 4, 8, 8]  # the intermediate shape Netron labels the edge with
    assert model_file.read_bytes() == before


def test_missing_file_and_not_onnx_are_file_errors(tmp_path: Path) -> None:
    with pytest.raises(OnnxFileError, match="does not exist"):
        serve(tmp_path / "nope.onnx")
    with pytest.raises(OnnxFileError, match="is a folder"):
        serve(tmp_path)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\xff" * 64)
    with pytest.raises(OnnxFileError, match="not an ONNX model"):
        serve(junk)


def test_no_temporary_folder_left_when_start_fails(
    model_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    with listening_socket() as sock, pytest.raises(PortInUseError):
        serve(model_file, port=sock.getsockname()[1])
    assert list((tmp_path / "tmp").iterdir()) == []


def test_head_request_answers_without_body(model_file: Path, views: list) -> None:
    handle = serve(model_file)
    views.append(handle)
    request = urllib.request.Request(handle.url + "data/tiny.onnx", method="HEAD")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        assert int(response.headers["Content-Length"]) > 0
        assert response.read() == b""


def test_repr_html_is_an_iframe_of_the_page(model_file: Path) -> None:
    with serve(model_file) as handle:
        html = handle._repr_html_()
        assert f'src="{handle.url}"' in html and html.startswith("<iframe")
    assert "stopped" in handle._repr_html_()


def test_non_onnx_file_is_served_as_is(tmp_path: Path, views: list) -> None:
    path = tmp_path / "model.tflite"
    path.write_bytes(b"TFL3 not really")
    handle = serve(path)
    views.append(handle)
    assert get(handle.url + "data/model.tflite") == (200, b"TFL3 not really")


def test_ipv6_loopback(model_file: Path, views: list) -> None:
    try:
        handle = serve(model_file, host="::1")
    except ViewError as exc:
        if isinstance(exc.__cause__, OSError) and exc.__cause__.errno in (
            errno.EADDRNOTAVAIL,
            errno.EAFNOSUPPORT,
        ):
            pytest.skip("no IPv6 loopback here")
        raise
    views.append(handle)
    assert handle.url == f"http://[::1]:{handle.port}/"
    assert get(handle.url)[0] == 200


WAITING_SCRIPT = """
import sys
from exportkit.viewer import serve
handle = serve(sys.argv[1])
with handle.stop_on_signals():
    print(handle.url, handle.model_path, flush=True)
    handle.wait()
print("stopped", flush=True)
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_wait_stops_cleanly_on_signal(model_file: Path, signum: int) -> None:
    root = Path(__file__).resolve().parents[1]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
    }
    process = subprocess.Popen(
        [sys.executable, "-c", WAITING_SCRIPT, str(model_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        url, copy = process.stdout.readline().split()
        assert get(url)[0] == 200
        process.send_signal(signum)
        out, err = process.communicate(timeout=20)
    finally:
        process.kill()
        process.communicate()
    assert process.returncode == 0, err
    assert out == "stopped\n"
    assert err == ""  # no traceback, no log noise
    assert not Path(copy).parent.exists()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url, timeout=5)


def test_installed_netron_still_draws() -> None:
    """Fails once the pinned netron is too old for its page to draw: upgrade it then."""
    import netron

    page = (Path(netron.__file__).parent / "index.html").read_text(encoding="utf-8")
    assert netron_outdated(page, netron.__version__) is None


def test_outdated_netron_is_a_warning_on_the_handle() -> None:
    page = '<meta name="date" content="2026-10-23 19:50:08">'
    built = datetime(2026, 10, 23, 19, 50, 8, tzinfo=timezone.utc)
    assert netron_outdated(page, "9.3.3", now=built + timedelta(days=180)) is None
    message = netron_outdated(page, "9.3.3", now=built + timedelta(days=181, hours=1))
    assert message and "netron 9.3.3" in message and "pip install -U netron" in message


def test_missing_external_data_is_bad_input(external_model: Path) -> None:
    external_model.with_name("tiny.onnx.data").unlink()
    with pytest.raises(OnnxFileError, match=r"tiny\.onnx\.data, which is missing") as info:
        serve(external_model)
    assert info.value.exit_code == EXIT_USAGE
    assert info.value.hint is not None and str(external_model.parent) in info.value.hint


def raw_status(handle: ViewHandle, path: str, host_header: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", handle.port, timeout=10)
    try:
        connection.request("GET", path, headers={"Host": host_header})
        return connection.getresponse().status
    finally:
        connection.close()


def test_loopback_view_answers_only_loopback_host_names(model_file: Path, views: list) -> None:
    # A page on evil.example whose DNS later points at 127.0.0.1 sends Host: evil.example.
    handle = serve(model_file)
    views.append(handle)
    port = handle.port
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "127.0.0.1"):
        assert raw_status(handle, "/data/tiny.onnx", host) == 200, host
    for host in (f"evil.example:{port}", "evil.example", f"192.168.1.5:{port}", ""):
        assert raw_status(handle, "/data/tiny.onnx", host) == 403, host
        assert raw_status(handle, "/", host) == 403, host
