"""The viewer under attack: links out of the folder, encoded traversal, foreign hosts, silent
connections, a burst of clients, and a --host that is not this machine's. Real server, real
sockets, 127.0.0.1 only; every loop is bounded."""

from __future__ import annotations

import contextlib
import errno
import http.client
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import onnx
import pytest

from exportkit.errors import EXIT_USAGE, HostError, OnnxFileError, PortInUseError
from exportkit.viewer import ViewHandle, check_host, check_port, local_addresses, serve, serve_files
from tests.test_viewer import conv_model, listening_socket

SECRET = b"not for the network"


@pytest.fixture
def views() -> Iterator[list[ViewHandle]]:
    handles: list[ViewHandle] = []
    yield handles
    for handle in handles:
        handle.stop()


@pytest.fixture
def external(tmp_path: Path) -> Path:
    """models/tiny.onnx with its weights in tiny.onnx.data; a secret outside the folder."""
    folder = tmp_path / "models"
    folder.mkdir()
    path = folder / "tiny.onnx"
    onnx.save(
        conv_model(16),
        str(path),
        save_as_external_data=True,
        location="tiny.onnx.data",
        size_threshold=0,
    )
    (tmp_path / "secret.txt").write_bytes(SECRET)
    (folder / "secret.txt").write_bytes(SECRET)  # in the folder, but not the model's
    return path


def request(
    port: int, target: str, headers: list[tuple[str, str]] | None = None
) -> tuple[int, bytes]:
    """Status and body of a GET sent exactly as written (target and headers not normalised)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.putrequest("GET", target, skip_host=True, skip_accept_encoding=True)
        for name, value in headers if headers is not None else [("Host", f"127.0.0.1:{port}")]:
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


# --- links out of the model's folder ----------------------------------------------------------


def test_data_file_linking_out_of_the_folder_is_refused(external: Path) -> None:
    data = external.with_name("tiny.onnx.data")
    moved = external.parent.parent / "elsewhere.data"
    data.rename(moved)
    data.symlink_to(moved)
    with pytest.raises(OnnxFileError) as info:
        serve(external)
    assert info.value.exit_code == EXIT_USAGE
    assert "tiny.onnx.data" in info.value.message and "outside" in info.value.message
    assert info.value.hint is not None and str(external.parent) in info.value.hint


def test_link_inside_the_folder_is_served(external: Path, views: list) -> None:
    data = external.with_name("tiny.onnx.data")
    kept = external.parent / "weights" / "real.data"
    kept.parent.mkdir()
    data.rename(kept)
    data.symlink_to(kept)
    handle = serve(external)
    views.append(handle)
    assert request(handle.port, "/data/tiny.onnx.data") == (200, kept.read_bytes())


def test_link_swapped_in_after_start_is_not_followed(external: Path, views: list) -> None:
    handle = serve(external)
    views.append(handle)
    data = external.with_name("tiny.onnx.data")
    assert request(handle.port, "/data/tiny.onnx.data")[0] == 200
    data.unlink()
    data.symlink_to(external.parent.parent / "secret.txt")
    status, body = request(handle.port, "/data/tiny.onnx.data")
    assert status == 404 and SECRET not in body


def test_folder_swapped_for_a_link_after_start_is_not_followed(tmp_path: Path, views: list) -> None:
    model = tmp_path / "models" / "tiny.onnx"
    (model.parent / "weights").mkdir(parents=True)
    onnx.save(
        conv_model(16),
        str(model),
        save_as_external_data=True,
        location="weights/tiny.onnx.data",
        size_threshold=0,
    )
    handle = serve(model)
    views.append(handle)
    assert request(handle.port, "/data/weights/tiny.onnx.data")[0] == 200
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "tiny.onnx.data").write_bytes(SECRET)
    (model.parent / "weights").rename(tmp_path / "old-weights")
    (model.parent / "weights").symlink_to(outside)
    status, body = request(handle.port, "/data/weights/tiny.onnx.data")
    assert status == 404 and SECRET not in body


# --- traversal and foreign hosts --------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "/data/../secret.txt",
        "/data/%2e%2e/secret.txt",
        "/data/%2E%2E%2Fsecret.txt",
        "/data/%252e%252e%252fsecret.txt",  # double-encoded
        "/data/..%5csecret.txt",  # backslash
        "/data/..%c0%afsecret.txt",  # overlong UTF-8 slash
        "/data/tiny.onnx.data%00.txt",
        "/data/secret.txt",
        "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/%252e%252e/%252e%252e/etc/passwd",
        "/..%2f..%2f..%2f..%2fetc/passwd",
        "//etc/passwd",
        "/data//etc/passwd",
        "/data/%2fetc%2fpasswd",
    ],
)
def test_encoded_traversal_finds_nothing(external: Path, views: list, target: str) -> None:
    handle = serve(external)
    views.append(handle)
    status, body = request(handle.port, target)
    assert status == 404
    assert SECRET not in body and b"root:" not in body


@pytest.mark.parametrize(
    "headers",
    [
        [("Host", "evil.example")],
        [("Host", "127.0.0.1.nip.io")],
        [("Host", "127.0.0.1@evil.example")],
        [("Host", "localhost.evil.example:80")],
        [("Host", "127.0.0.1"), ("Host", "evil.example")],  # two Host headers
        [],  # none
    ],
    ids=["name", "rebinding-name", "userinfo", "suffix", "two-hosts", "no-host"],
)
def test_foreign_host_is_refused(external: Path, views: list, headers: list) -> None:
    handle = serve(external)
    views.append(handle)
    for target in ("/", "/data/tiny.onnx", "/data/tiny.onnx.data"):
        assert request(handle.port, target, headers)[0] == 403, target


def test_absolute_form_naming_another_host_is_refused(external: Path, views: list) -> None:
    handle = serve(external)
    views.append(handle)
    loopback = [("Host", f"127.0.0.1:{handle.port}")]
    assert request(handle.port, "http://evil.example/data/tiny.onnx", loopback)[0] == 403
    assert (
        request(handle.port, f"http://127.0.0.1:{handle.port}/data/tiny.onnx", loopback)[0] == 200
    )


# --- silent connections and bursts ------------------------------------------------------------


def closed_by_server(sock: socket.socket) -> bool:
    """True when the server has closed ``sock`` (EOF or reset); False while it stays open."""
    try:
        return sock.recv(4096) == b""
    except (TimeoutError, BlockingIOError):
        return False
    except ConnectionError:
        return True


@pytest.mark.slow  # over 3 s: the fast suite stays under 90 s; CI runs it
def test_half_open_connections_time_out_and_hold_up_nobody(tmp_path: Path, views: list) -> None:
    model = tmp_path / "tiny.onnx"
    onnx.save(conv_model(), str(model))
    handle = serve_files({"tiny.onnx": model}, "tiny.onnx", idle_timeout=2.0)
    views.append(handle)
    silent = [socket.create_connection(("127.0.0.1", handle.port)) for _ in range(4)]
    trickling = [socket.create_connection(("127.0.0.1", handle.port)) for _ in range(4)]
    try:
        for sock in trickling:
            sock.sendall(b"GET /data/tiny.onnx HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        for sock in silent + trickling:
            sock.settimeout(0.05)
        start = time.monotonic()
        assert request(handle.port, "/data/tiny.onnx") == (200, model.read_bytes())
        assert time.monotonic() - start < 1.5  # answered while eight connections sit open
        open_ = silent + trickling
        deadline = time.monotonic() + 8
        while open_ and time.monotonic() < deadline:
            for sock in trickling:
                if sock in open_:
                    # A header byte now and then must not keep the request head alive.
                    with contextlib.suppress(OSError):
                        sock.send(b"X")
            open_ = [s for s in open_ if not closed_by_server(s)]
            time.sleep(0.2)
        assert open_ == [], f"{len(open_)} idle connections still open after 8 s"
        assert request(handle.port, "/data/tiny.onnx")[0] == 200
    finally:
        for sock in silent + trickling:
            sock.close()


def test_burst_of_clients_is_answered(external: Path, views: list) -> None:
    handle = serve(external)
    views.append(handle)
    expected = external.with_name("tiny.onnx.data").read_bytes()
    clients = 200
    ready = threading.Barrier(clients, timeout=30)
    results: list[object] = [None] * clients

    def client(i: int) -> None:
        try:
            ready.wait()
            results[i] = request(handle.port, "/data/tiny.onnx.data")
        except Exception as exc:  # reported below, with the others
            results[i] = exc

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    failed = [r for r in results if r != (200, expected)]
    assert not failed, f"{len(failed)} of {clients} clients not answered: {failed[:3]}"


# --- --host -----------------------------------------------------------------------------------


def foreign_address() -> str:
    """A documentation address (TEST-NET) that no interface of this machine has."""
    return next(
        a for a in ("192.0.2.1", "198.51.100.1", "203.0.113.1") if a not in local_addresses()
    )


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "0.0.0.0", "127.0.0.2"])
def test_addresses_of_this_machine_pass(host: str) -> None:
    check_host(host)


@pytest.mark.parametrize(
    ("host", "says"),
    [
        (None, "is not an address of this machine"),
        ("", "empty"),
        ("   ", "is empty"),
        ("no-such-host.invalid", "neither an address nor a name"),
        ("999.1.2.3", "neither an address nor a name"),
        ("127.0.0.1:8080", "neither an address nor a name"),
        ("http://127.0.0.1", "neither an address nor a name"),
    ],
)
def test_other_hosts_are_usage_errors_listing_this_machines_addresses(
    host: str | None, says: str
) -> None:
    host = foreign_address() if host is None else host
    with pytest.raises(HostError) as info:
        check_host(host)
    assert info.value.exit_code == EXIT_USAGE
    assert says in info.value.message
    assert info.value.hint is not None
    assert all(address in info.value.hint for address in local_addresses())
    assert "127.0.0.1" in info.value.hint


def test_check_port_and_serve_check_the_host_first(external: Path, tmp_path: Path) -> None:
    with listening_socket() as taken:  # a taken port: the host is still what is wrong
        with pytest.raises(HostError):
            check_port(foreign_address(), taken.getsockname()[1])
        with pytest.raises(PortInUseError):
            check_port("127.0.0.1", taken.getsockname()[1])
    with pytest.raises(HostError):
        serve(external, host=foreign_address())


@pytest.mark.parametrize("model", ["tiny.onnx", "mlp.py:MLP"])
def test_cli_host_not_of_this_machine_is_exit_2_before_any_export(
    tmp_path: Path, models: Path, capfd: pytest.CaptureFixture[str], model: str
) -> None:
    from exportkit.cli import main

    onnx.save(conv_model(), str(tmp_path / "tiny.onnx"))
    spec = str(tmp_path / model) if model.endswith(".onnx") else f"{models}/zoo.py:MLP"
    target = tmp_path / "out.onnx"
    code = main(["view", spec, "-o", str(target), "--host", foreign_address(), "--no-browser"])
    captured = capfd.readouterr()
    assert code == EXIT_USAGE
    assert captured.err.splitlines() == [
        f"error: host '{foreign_address()}' is not an address of this machine",
        f"hint: use an address of this machine: {', '.join(local_addresses())}; "
        "or 0.0.0.0 for every interface",
    ]
    assert captured.out == "" and not target.exists()


def test_ipv6_any_address_is_this_machines() -> None:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError as exc:
        if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
            pytest.skip(f"no IPv6 here: {exc}")
        raise
    check_host("::")
    check_host("[::1]")
