"""The Netron server: Netron's own page and scripts, plus an allow-list of model files, per port.

exportkit runs its own small HTTP server instead of ``netron.start`` because, in netron 9.3.3,
every server in one process serves the model of the last one started (the content lives on the
shared handler class), ``netron.start`` configures the root logger and logs to the terminal,
``/data/`` serves any file of the model's folder, and a taken ``--port`` stops the other server
rather than failing. The page, its scripts and its protocol (``<meta name="file">`` pointing at
``/data/<name>``, external data fetched beside it) are Netron's, unchanged.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import html
import ipaddress
import logging
import os
import re
import signal
import socket
import socketserver
import sys
import threading
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any

from exportkit.errors import ExportkitError, PortInUseError, UsageError, ViewError
from exportkit.viewer.environment import is_loopback, url_for

if TYPE_CHECKING:
    from exportkit.viewer.annotate import AnnotatedModel

__all__ = ["NETRON_MAX_AGE_DAYS", "ViewHandle", "check_port", "netron_outdated", "serve_files"]

logger = logging.getLogger(__name__)

# Netron's own list (netron/server.py): the page loads nothing else from its folder.
_MIME_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
    ".gif": "image/gif",
    ".jpg": "image/jpeg",
    ".ico": "image/x-icon",
    ".json": "application/json",
    ".pb": "application/octet-stream",
    ".ttf": "font/truetype",
    ".otf": "font/opentype",
    ".eot": "application/vnd.ms-fontobject",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".svg": "image/svg+xml",
}
_VERSION_META = re.compile(r'<meta name="version" content="[^"]*">')
_DATE_META = re.compile(r'<meta name="date" content="([^"]+)">')
# Netron's page (browser.js) shows "Please update to the newest version" instead of the graph
# once its build date is more than this many days old.
NETRON_MAX_AGE_DAYS = 180


@dataclass(frozen=True)
class _Site:
    """What one server answers: Netron's folder, the rendered page, the /data/ allow-list.

    ``loopback_only``: answer only requests addressed to a loopback name (``Host`` header), so a
    web page whose domain re-resolves to 127.0.0.1 (DNS rebinding) cannot read the model.
    """

    assets: Path
    index: bytes
    files: Mapping[str, Path]
    loopback_only: bool = True


def _loopback_host_header(value: str | None) -> bool:
    """True for a Host header naming this machine literally: localhost, 127.x.y.z, [::1]."""
    if not value:
        return False
    host = value.strip().lower()
    if host.startswith("["):
        host = host[1 : host.find("]")] if "]" in host else host
    elif host.count(":") == 1:
        host = host.rsplit(":", 1)[0]
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name, even one resolving to 127.0.0.1, is what DNS rebinding uses


def _netron_assets() -> tuple[Path, str, str]:
    """Netron's static folder, its index.html text and its version."""
    try:
        import netron
    except ImportError as exc:
        raise ViewError(
            "the netron package is not installed", hint="pip install 'netron>=9.3.3'"
        ) from exc
    assets = Path(netron.__file__).parent
    index = assets / "index.html"
    if not index.is_file():
        raise ViewError(
            f"the netron package at {assets} has no index.html",
            hint="reinstall it: pip install --force-reinstall netron",
        )
    return assets, index.read_text(encoding="utf-8"), str(getattr(netron, "__version__", "?"))


def netron_outdated(page: str, version: str, now: datetime | None = None) -> str | None:
    """Why Netron's page will refuse to draw (its build is over 180 days old), or None.

    Args:
        page: Netron's index.html, which carries its build date (``<meta name="date">``).
        version: The netron version, for the message.
        now: The time to judge at; the current UTC time when None.
    """
    match = _DATE_META.search(page)
    if not match:
        return None
    try:
        built = datetime.fromisoformat(match.group(1).replace(" ", "T")).replace(
            tzinfo=timezone.utc
        )
    except ValueError:
        return None
    now = now or datetime.now(timezone.utc)
    age = (now - built).days
    if age <= NETRON_MAX_AGE_DAYS:
        return None
    return (
        f"netron {version} was built {age} days ago ({built:%Y-%m-%d}); its page refuses to draw "
        f"after {NETRON_MAX_AGE_DAYS} days and asks to update instead: pip install -U netron"
    )


def _render_index(page: str, version: str, model_name: str, title: str) -> bytes:
    """Netron's page with the meta tags that tell it which model to open (as netron's server)."""
    if not _VERSION_META.search(page):
        raise ViewError(
            f"netron {version}'s page has no version tag, so exportkit cannot point it at a model",
            hint="install a netron release exportkit supports: pip install 'netron>=9.3.3'",
        )
    meta = "\n".join(
        [
            '<meta name="type" content="Python">',
            f'<meta name="version" content="{html.escape(version)}">',
            f'<meta name="file" content="/data/{html.escape(urllib.parse.quote(model_name))}">',
            f'<meta name="name" content="{html.escape(title)}">',
            f'<meta name="identifier" content="{html.escape(model_name)}">',
        ]
    )
    return _VERSION_META.sub(lambda _: meta, page, count=1).encode("utf-8")


class _Handler(BaseHTTPRequestHandler):
    """GET/HEAD for the page, Netron's scripts, and allow-listed model files under /data/."""

    server: _Server
    server_version = "exportkit-netron"

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def _answer(self, *, send_body: bool) -> None:
        site = self.server.site
        if site.loopback_only and not _loopback_host_header(self.headers.get("Host")):
            self._send_bytes(b"403", "text/plain", status=403, send_body=send_body)
            return
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        if path in ("/", "/index.html"):
            self._send_bytes(site.index, _MIME_TYPES[".html"], send_body=send_body)
            return
        if path.startswith("/data/"):
            target = site.files.get(path[len("/data/") :])
            if target is None:
                self._not_found(send_body=send_body)
                return
            self._send_file(target, "application/octet-stream", send_body=send_body)
            return
        try:
            asset = (site.assets / path.lstrip("/")).resolve()
        except (OSError, ValueError):  # a NUL byte, a loop of links
            self._not_found(send_body=send_body)
            return
        mime = _MIME_TYPES.get(asset.suffix)
        if mime is None or site.assets not in asset.parents or not asset.is_file():
            self._not_found(send_body=send_body)
            return
        self._send_file(asset, mime, send_body=send_body)

    def _not_found(self, *, send_body: bool) -> None:
        self._send_bytes(b"404", "text/plain", status=404, send_body=send_body)

    def _send_bytes(
        self, body: bytes, mime: str, *, status: int = 200, send_body: bool = True
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", mime)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def _send_file(self, path: Path, mime: str, *, send_body: bool) -> None:
        try:
            file = path.open("rb")
        except OSError:
            self._not_found(send_body=send_body)
            return
        with file:
            size = os.fstat(file.fileno()).st_size
            self.send_response(200)
            self.send_header("Content-Type", mime)
            self.send_header("Content-Length", str(size))
            self.end_headers()
            if send_body:
                # Streamed (sendfile where the OS has it): a data file may be larger than memory.
                self.wfile.flush()
                self.connection.sendfile(file)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)


class _Server(ThreadingHTTPServer):
    """One viewer's HTTP server; quiet (logs, never prints) and never steals a port."""

    daemon_threads = True
    block_on_close = False
    # Windows' SO_REUSEADDR lets a second server take a port that is in use.
    allow_reuse_address = sys.platform != "win32"

    def __init__(self, address: tuple[str, int], family: socket.AddressFamily, site: _Site):
        self.address_family = family
        self.site = site
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn), slow with no network.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A browser that closes the tab mid-download is not an error worth a traceback.
        logger.debug("request from %s failed", client_address, exc_info=True)


def _check_port(port: int | None) -> int:
    if port is None:
        return 0
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise UsageError(
            f"port {port!r} is not a port number",
            hint="use a number from 1 to 65535, or leave the port out to get a free one",
        )
    return port


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _bind_error(exc: OSError, host: str, port: int) -> ExportkitError:
    """The user-facing error for a failed bind of ``host:port``."""
    if isinstance(exc, socket.gaierror):
        return ViewError(
            f"cannot listen on host {host!r}: {exc.strerror}",
            hint="use an address of this machine, such as 127.0.0.1 (the default)",
        )
    if exc.errno == errno.EADDRINUSE:
        return PortInUseError(
            f"port {port} on {host} is already in use",
            hint="choose another port with --port N, or leave --port out to get a free one",
        )
    if exc.errno in (errno.EACCES, errno.EPERM):
        return ViewError(
            f"not allowed to listen on {host} port {port}",
            hint="ports below 1024 need privileges; use a port such as 8080",
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return ViewError(
            f"cannot listen on host {host!r}: it is not an address of this machine",
            hint="use 127.0.0.1 (the default), or an address this machine has",
        )
    return ViewError(f"cannot listen on {host} port {port}: {exc.strerror or exc}")


def _bind(host: str, port: int, site: _Site) -> _Server:
    try:
        return _Server((host.strip("[]"), port), _family(host), site)
    except OSError as exc:
        raise _bind_error(exc, host, port) from exc


def check_port(host: str = "127.0.0.1", port: int | None = None) -> None:
    """Fail now if ``port`` cannot be listened on, rather than after a long export.

    Raises:
        PortInUseError: ``port`` is taken.
        UsageError: ``port`` is not a port number.
        ViewError: ``host`` is not an address of this machine.
    """
    number = _check_port(port)
    with socket.socket(_family(host), socket.SOCK_STREAM) as probe:
        if _Server.allow_reuse_address:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host.strip("[]"), number))
        except OSError as exc:
            raise _bind_error(exc, host, number) from exc


class ViewHandle:
    """A running Netron view: its URL, and the means to stop it or wait for it.

    Several handles run at once on several ports; stopping one leaves the others. As a context
    manager it stops on exit. In Jupyter it renders as the Netron page in an IFrame.
    """

    def __init__(
        self,
        server: _Server,
        *,
        host: str,
        model_path: Path,
        files: Mapping[str, Path],
        on_stop: Callable[[], object] | None = None,
    ) -> None:
        self._server = server
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self.host = host
        self.port = int(server.server_address[1])
        self.url = url_for(host, self.port)
        self.model_path = model_path
        self.files: Mapping[str, Path] = dict(files)
        self.annotation: AnnotatedModel | None = None
        # Things the user should know about this view (the CLI prints them).
        self.warnings: tuple[str, ...] = ()
        # The export's Report when exportkit.view() ran one (a Report; typed loosely: no upward import).
        self.report: Any = None
        self._on_stop = on_stop
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"exportkit-view-{self.port}",
            daemon=True,
        )
        self._thread.start()
        # A view runs until stopped even when its handle is dropped (``serve(path)`` in a
        # script that then sleeps); the registry keeps it alive and stops it at exit.
        _LIVE.add(self)

    @property
    def running(self) -> bool:
        """True until ``stop()`` has run."""
        return not self._stopped.is_set()

    def stop(self) -> None:
        """Stop this server (only this one), free its port, delete its temporary files."""
        with self._lock:
            if self._stopped.is_set():
                return
            self._server.shutdown()
            self._thread.join()
            self._server.server_close()
            try:
                if self._on_stop is not None:
                    self._on_stop()
            finally:
                self._stopped.set()
                self._wake.set()
                _LIVE.discard(self)

    @contextlib.contextmanager
    def stop_on_signals(self) -> Iterator[ViewHandle]:
        """While inside, Ctrl-C (SIGINT) and SIGTERM make ``wait()`` return instead of killing.

        Enter it before printing the URL, so that a signal sent as soon as the URL is seen
        still stops the view cleanly. Signals are only caught in the main thread (Python
        delivers them there); elsewhere this does nothing.
        """
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {
            signum: signal.signal(signum, self._on_signal)
            for signum in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            yield self
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def wait(self) -> None:
        """Block until ``stop()`` is called, or Ctrl-C or SIGTERM arrives; then stop.

        Ctrl-C and SIGTERM are the normal way to end a view: they return from here normally.
        """
        with self.stop_on_signals():
            try:
                while not self._wake.wait(0.25):
                    pass
            except KeyboardInterrupt:  # a Ctrl-C outside the main thread's handler
                pass
            finally:
                self.stop()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._wake.set()

    def __enter__(self) -> ViewHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _repr_html_(self) -> str:
        if not self.running:
            return f"<p>Netron view of {html.escape(self.model_path.name)} (stopped)</p>"
        src = html.escape(self.url, quote=True)
        return f'<iframe src="{src}" width="100%" height="800" style="border: 0"></iframe>'

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<ViewHandle {self.url} {state} {self.model_path.name}>"


_LIVE: set[ViewHandle] = set()


@atexit.register
def _stop_all() -> None:
    """Stop every view still running when the interpreter exits (removes temporary files)."""
    for handle in list(_LIVE):
        handle.stop()


def serve_files(
    files: Mapping[str, Path],
    model_name: str,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    title: str | None = None,
    on_stop: Callable[[], object] | None = None,
) -> ViewHandle:
    """Serve Netron for ``files[model_name]``; ``/data/`` answers only the names in ``files``.

    Args:
        files: Served name (as the model refers to it, e.g. ``model.onnx.data``) -> file on disk.
        model_name: The key of the model file in ``files``; the page opens it.
        host: Address to listen on.
        port: Port to listen on; None or 0 lets the OS choose a free one.
        title: Shown as the page title; ``model_name`` when None.
        on_stop: Called once when the view stops (for example to delete a temporary folder).

    Raises:
        PortInUseError: ``port`` is taken.
        UsageError: ``port`` is not a port number.
        ViewError: Netron is missing or the server cannot listen on ``host``.
    """
    if model_name not in files:
        raise ValueError(f"model_name {model_name!r} is not one of the served files")
    number = _check_port(port)
    assets, page, version = _netron_assets()
    index = _render_index(page, version, model_name, title or model_name)
    site = _Site(
        assets=assets.resolve(), index=index, files=dict(files), loopback_only=is_loopback(host)
    )
    server = _bind(host, number, site)
    handle = ViewHandle(
        server, host=host, model_path=Path(files[model_name]), files=files, on_stop=on_stop
    )
    outdated = netron_outdated(page, version)
    handle.warnings = (outdated,) if outdated else ()
    return handle
