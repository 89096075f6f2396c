"""The Netron server's lifecycle: ports and hosts checked, one server per view, stop and wait.

exportkit runs its own small HTTP server instead of ``netron.start`` because, in netron 9.3.3,
every server in one process serves the model of the last one started (the content lives on the
shared handler class), ``netron.start`` configures the root logger and logs to the terminal,
``/data/`` serves any file of the model's folder, and a taken ``--port`` stops the other server
rather than failing. The page, its scripts and its protocol (``<meta name="file">`` pointing at
``/data/<name>``, external data fetched beside it) are Netron's, unchanged (``netron.py``); what
the server answers and how it holds up is ``site.py``.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import html
import logging
import signal
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any

from exportkit.errors import (
    ExportkitError,
    HostError,
    OnnxFileError,
    PortInUseError,
    UsageError,
    ViewError,
)
from exportkit.viewer.environment import address_family, check_host, is_loopback, url_for
from exportkit.viewer.focus import with_inline_script
from exportkit.viewer.netron import netron_assets, netron_outdated, render_index
from exportkit.viewer.site import IDLE_TIMEOUT, Server, Site, inside

if TYPE_CHECKING:
    from exportkit.viewer.annotate import AnnotatedModel

__all__ = ["ViewHandle", "check_port", "serve_files"]

logger = logging.getLogger(__name__)


def _check_port(port: int | None) -> int:
    if port is None:
        return 0
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise UsageError(
            f"port {port!r} is not a port number",
            hint="use a number from 1 to 65535, or leave the port out to get a free one",
        )
    return port


def _bind_error(exc: OSError, host: str, port: int) -> ExportkitError:
    """The user-facing error for a failed bind of ``host:port``."""
    if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
        try:
            check_host(host)  # its error lists the addresses this machine has
        except HostError as bad:
            return bad
        return HostError(f"cannot listen on host {host!r}: {exc.strerror or exc}")
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
    return ViewError(f"cannot listen on {host} port {port}: {exc.strerror or exc}")


def _bind(host: str, port: int, site: Site, idle_timeout: float) -> Server:
    try:
        bare = host.strip("[]")
        return Server((bare, port), address_family(bare), site, idle_timeout=idle_timeout)
    except OSError as exc:
        raise _bind_error(exc, host, port) from exc


def check_port(host: str = "127.0.0.1", port: int | None = None) -> None:
    """Fail now if ``port`` cannot be listened on, rather than after a long export.

    Raises:
        HostError: ``host`` is not an address of this machine.
        PortInUseError: ``port`` is taken.
        UsageError: ``port`` is not a port number.
    """
    check_host(host)
    number = _check_port(port)
    with socket.socket(address_family(host.strip("[]")), socket.SOCK_STREAM) as probe:
        if Server.allow_reuse_address:
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
        server: Server,
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
    folder: Path | None = None,
    idle_timeout: float = IDLE_TIMEOUT,
    page_script: str = "",
) -> ViewHandle:
    """Serve Netron for ``files[model_name]``; ``/data/`` answers only the names in ``files``.

    Args:
        files: Served name (as the model refers to it, e.g. ``model.onnx.data``) -> file on disk.
        model_name: The key of the model file in ``files``; the page opens it.
        host: Address to listen on.
        port: Port to listen on; None or 0 lets the OS choose a free one.
        title: Shown as the page title; ``model_name`` when None.
        on_stop: Called once when the view stops (for example to delete a temporary folder).
        folder: The model's folder: every file but the model must resolve inside it, links
            followed (checked now and at every request); the model file's folder when None.
        idle_timeout: Seconds a connection may stay silent, or take to send its request head,
            before it is closed.
        page_script: JavaScript the page runs after Netron's own (see ``viewer.focus``).

    Raises:
        HostError: ``host`` is not an address of this machine.
        OnnxFileError: A file other than the model leads outside ``folder`` (a symlink).
        PortInUseError: ``port`` is taken.
        UsageError: ``port`` is not a port number.
        ViewError: Netron is missing or cannot be pointed at the model.
    """
    if model_name not in files:
        raise ValueError(f"model_name {model_name!r} is not one of the served files")
    check_host(host)
    number = _check_port(port)
    root = (folder if folder is not None else Path(files[model_name]).parent).resolve()
    for name, path in files.items():
        if name != model_name and inside(Path(path), root) is None:
            raise OnnxFileError(
                f"{name} leads outside the model's folder {root} (to {Path(path).resolve()}); "
                "the viewer serves only files inside it",
                hint=f"copy the file into {root} instead of linking to it",
            )
    assets, page, version = netron_assets()
    index = render_index(page, version, model_name, title or model_name)
    if page_script:  # exportkit's findings on the graph (see viewer.focus)
        index = with_inline_script(index.decode("utf-8"), page_script).encode("utf-8")
    site = Site(
        assets=assets.resolve(),
        index=index,
        files={name: Path(path) for name, path in files.items()},
        model_name=model_name,
        folder=root,
        loopback_only=is_loopback(host),
    )
    server = _bind(host, number, site, idle_timeout)
    handle = ViewHandle(
        server, host=host, model_path=Path(files[model_name]), files=files, on_stop=on_stop
    )
    outdated = netron_outdated(page, version)
    handle.warnings = (outdated,) if outdated else ()
    return handle
