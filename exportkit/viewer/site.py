"""What one viewer's HTTP server answers, and how it holds up under hostile or careless clients.

It answers GET/HEAD for Netron's page and scripts and for an allow-list of model files; files
other than the model must resolve inside the model's folder at every request (a symlink that
leads out is refused, also one swapped in after the view started). A loopback view answers only
requests addressed to a loopback name (DNS rebinding). Connections that go quiet are closed
after ``idle_timeout``, also when they trickle a request head byte by byte, and the listen
backlog absorbs a burst of clients.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import socket
import socketserver
import sys
import threading
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from exportkit.viewer.netron import MIME_TYPES

__all__ = ["IDLE_TIMEOUT", "LISTEN_BACKLOG", "Server", "Site", "inside", "loopback_host_header"]

logger = logging.getLogger(__name__)

# Seconds a connection may stay silent (or take to send its request head) before it is closed.
IDLE_TIMEOUT = 30.0
# Pending connections the kernel queues before accept (capped by net.core.somaxconn).
LISTEN_BACKLOG = 1024


@dataclass(frozen=True)
class Site:
    """What one server answers: Netron's folder, the rendered page, the /data/ allow-list.

    ``files`` maps served names to files; every one but ``model_name`` must resolve inside
    ``folder`` (the model's folder). ``loopback_only``: answer only requests addressed to a
    loopback name (``Host`` header), so a web page whose domain re-resolves to 127.0.0.1 (DNS
    rebinding) cannot read the model.
    """

    assets: Path
    index: bytes
    files: Mapping[str, Path]
    model_name: str
    folder: Path
    loopback_only: bool = True


def inside(path: Path, folder: Path) -> Path | None:
    """``path`` with every link followed, when that lies inside ``folder``; else None."""
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError, ValueError):  # a loop of links, a NUL byte
        return None
    return resolved if folder.resolve() in resolved.parents else None


def loopback_host_header(value: str | None) -> bool:
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


class _Handler(BaseHTTPRequestHandler):
    """GET/HEAD for the page, Netron's scripts, and allow-listed model files under /data/."""

    server: Server
    server_version = "exportkit-netron"

    def setup(self) -> None:
        super().setup()
        # Each recv and send may wait this long; the whole request head has a deadline too.
        self.connection.settimeout(self.server.idle_timeout)
        self.server.expect_head(self.connection)

    def parse_request(self) -> bool:
        parsed = super().parse_request()  # reads the headers: the head is complete after it
        self.server.head_received(self.connection)
        return parsed

    def finish(self) -> None:
        self.server.head_received(self.connection)
        super().finish()

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def _for_us(self) -> bool:
        """Whether the request is addressed to this loopback view (one Host, a loopback name)."""
        hosts = self.headers.get_all("Host") or []
        if len(hosts) != 1 or not loopback_host_header(hosts[0]):
            return False
        if self.path.startswith("/"):
            return True
        authority = urllib.parse.urlsplit(self.path).netloc  # absolute form names its host
        return loopback_host_header(authority)

    def _answer(self, *, send_body: bool) -> None:
        site = self.server.site
        if site.loopback_only and not self._for_us():
            self._send_bytes(b"403", "text/plain", status=403, send_body=send_body)
            return
        if self.path.startswith("//"):  # a network-path reference, not a path of ours
            self._not_found(send_body=send_body)
            return
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        if path in ("/", "/index.html"):
            self._send_bytes(site.index, MIME_TYPES[".html"], send_body=send_body)
        elif path.startswith("/data/"):
            self._send_data(path[len("/data/") :], send_body=send_body)
        else:
            self._send_asset(path, send_body=send_body)

    def _send_data(self, name: str, *, send_body: bool) -> None:
        site = self.server.site
        target = site.files.get(name)
        if target is not None and name != site.model_name:
            # Checked at every request: a link swapped in after the view started counts too.
            target = inside(target, site.folder)
            if target is None:
                logger.warning("refused /data/%s: it leads outside %s", name, site.folder)
        if target is None:
            self._not_found(send_body=send_body)
            return
        self._send_file(target, "application/octet-stream", send_body=send_body)

    def _send_asset(self, path: str, *, send_body: bool) -> None:
        assets = self.server.site.assets
        asset = inside(assets / path.lstrip("/"), assets)
        mime = MIME_TYPES.get(asset.suffix) if asset is not None else None
        if asset is None or mime is None or not asset.is_file():
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
        # O_NOFOLLOW: the last component was resolved just before; a link put there since is
        # refused rather than followed.
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
        try:
            file = os.fdopen(os.open(path, flags), "rb")
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


class Server(ThreadingHTTPServer):
    """One viewer's HTTP server; quiet (logs, never prints) and never steals a port."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = LISTEN_BACKLOG
    # Windows' SO_REUSEADDR lets a second server take a port that is in use.
    allow_reuse_address = sys.platform != "win32"

    def __init__(
        self,
        address: tuple[str, int],
        family: socket.AddressFamily,
        site: Site,
        *,
        idle_timeout: float = IDLE_TIMEOUT,
    ) -> None:
        self.address_family = family
        self.site = site
        self.idle_timeout = idle_timeout
        self._heads: dict[socket.socket, float] = {}  # connection -> deadline for its head
        self._heads_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn), slow with no network.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def expect_head(self, connection: socket.socket) -> None:
        with self._heads_lock:
            self._heads[connection] = time.monotonic() + self.idle_timeout

    def head_received(self, connection: socket.socket) -> None:
        with self._heads_lock:
            self._heads.pop(connection, None)

    def service_actions(self) -> None:
        """Close connections whose request head is late (a byte now and then resets no clock)."""
        now = time.monotonic()
        with self._heads_lock:
            late = [c for c, deadline in self._heads.items() if deadline < now]
            for connection in late:
                del self._heads[connection]
        for connection in late:
            logger.debug("closing a connection that sent no request in %ss", self.idle_timeout)
            with contextlib.suppress(OSError):  # already closed by its client
                connection.shutdown(socket.SHUT_RDWR)  # wakes its thread's recv

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A browser that closes the tab mid-download is not an error worth a traceback.
        logger.debug("request from %s failed", client_address, exc_info=True)
