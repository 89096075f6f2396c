"""A small DevTools-protocol client for headless Chromium, to check what Netron's page draws.

Chromium is driven over ``--remote-debugging-pipe``: it reads commands on fd 3 and writes
replies on fd 4, each a JSON object followed by a NUL byte. The page loads in real time (a
``--virtual-time-budget`` screenshot trips Netron's layout timer and never shows the graph), with
Netron's ``consent`` cookie set so its cookie dialog stays away.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Chromium", "ChromiumError", "NetronOutdatedError", "NetronPage", "find_chromium"]

_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--no-first-run",
    "--no-default-browser-check",
    "--hide-scrollbars",
    "--mute-audio",
    "--remote-debugging-pipe",
]

# Child side of the pipe: put the two pipe ends on fds 3 and 4, then become chromium.
# os.dup first, so that neither end is overwritten when it already sits on fd 3 or 4; and
# set_inheritable after, because dup2(3, 3) keeps the close-on-exec flag os.dup gave fd 3.
_TRAMPOLINE = (
    "import os, sys\n"
    "a, b = os.dup(int(sys.argv[1])), os.dup(int(sys.argv[2]))\n"
    "os.dup2(a, 3); os.dup2(b, 4)\n"
    "os.set_inheritable(3, True); os.set_inheritable(4, True)\n"
    "os.execv(sys.argv[3], sys.argv[3:])\n"
)

# Netron's page state and what it drew, read in the page.
_STATE_JS = """(() => {
  const body = document.body;
  const text = document.getElementById('message-text');
  return {
    classes: body ? Array.from(body.classList) : [],
    message: text ? text.innerText : '',
    title: document.title,
  };
})()"""

_GRAPH_JS = """(() => {
  const canvas = document.getElementById('canvas');
  if (!canvas) { return null; }
  const ops = Array.from(canvas.querySelectorAll('g.node-item-type > text'))
    .map((t) => t.textContent);
  const labels = Array.from(canvas.querySelectorAll('.edge-label'))
    .map((t) => t.textContent);
  const box = canvas.getBoundingClientRect();
  return { ops: ops, edge_labels: labels, width: box.width, height: box.height };
})()"""


# The open sidebar's title and its name/value rows (names sit in read-only inputs).
_SIDEBAR_JS = """(() => {
  const sidebar = document.getElementById('sidebar');
  if (!sidebar || getComputedStyle(sidebar).opacity === '0') { return null; }
  const title = sidebar.querySelector('.sidebar-title');
  const rows = Array.from(sidebar.querySelectorAll('.sidebar-item')).map((item) => {
    const input = item.querySelector('.sidebar-item-name input');
    const value = item.querySelector('.sidebar-item-value-list');
    return [input ? input.value : '', value ? value.textContent.trim() : ''];
  });
  return { title: title ? title.textContent : '', rows: rows };
})()"""


class ChromiumError(RuntimeError):
    """Chromium did not start, or did not answer as expected."""


class NetronOutdatedError(AssertionError):
    """Netron's page refused to draw because the installed netron is too old."""


@dataclass(frozen=True)
class NetronPage:
    """What Netron's page showed: its state, the op names drawn, the edge (shape) labels."""

    classes: tuple[str, ...]
    title: str
    ops: tuple[str, ...]
    edge_labels: tuple[str, ...]
    seconds: float


def find_chromium() -> str | None:
    """The chromium executable, or None when it is not installed."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


class Chromium:
    """One headless Chromium process, driven over the DevTools pipe; a context manager."""

    def __init__(self, executable: str, *, width: int = 1400, height: int = 900) -> None:
        self._profile = tempfile.mkdtemp(prefix="exportkit-chromium-")
        self._log = Path(self._profile) / "chromium.log"
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        args = [
            sys.executable,
            "-c",
            _TRAMPOLINE,
            str(to_child_r),
            str(from_child_w),
            executable,
            *_FLAGS,
            f"--user-data-dir={self._profile}",
            f"--window-size={width},{height}",
            "about:blank",
        ]
        with self._log.open("wb") as log:
            self._process = subprocess.Popen(
                args,
                pass_fds=(to_child_r, from_child_w),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        os.close(to_child_r)
        os.close(from_child_w)
        self._buffer = b""
        self._next_id = 0
        self.width, self.height = width, height

    # -- protocol ---------------------------------------------------------------------------

    def send(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        session: str | None = None,
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        """Send one command and return its result (events that arrive meanwhile are dropped)."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        os.write(self._to_child, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise ChromiumError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ChromiumError(f"no reply from chromium; its log:\n{self.log()}")
            ready, _, _ = select.select([self._from_child], [], [], left)
            if ready:
                chunk = os.read(self._from_child, 1 << 20)
                if not chunk:
                    raise ChromiumError(f"chromium exited; its log:\n{self.log()}")
                self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        decoded: dict[str, Any] = json.loads(raw)
        return decoded

    def log(self) -> str:
        """Chromium's own stderr, for failure messages."""
        try:
            return self._log.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def evaluate(self, session: str, expression: str) -> Any:
        """The JSON value of ``expression`` evaluated in the page."""
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            session=session,
        )
        if "exceptionDetails" in result:
            raise ChromiumError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    # -- Netron -----------------------------------------------------------------------------

    def open_page(self, url: str) -> str:
        """A new tab with Netron's consent cookie set for ``url``; returns its session id."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session: str = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        self.send(
            "Network.setCookie",
            {"name": "consent", "value": str(int(time.time() * 1000)), "url": url},
            session=session,
        )
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        return session

    def load_netron(
        self, url: str, *, timeout: float = 60.0, before: str | None = None
    ) -> tuple[str, NetronPage]:
        """Load Netron's page at ``url`` and wait until it has drawn the graph.

        Args:
            url: The page exportkit serves.
            timeout: Seconds to wait for the drawn graph.
            before: Script to run in the page before its own scripts (tests use it to move the
                page's clock).

        Raises:
            NetronOutdatedError: The page asks to update Netron (its release is too old).
            ChromiumError: The page showed an error or did not draw in time.
        """
        session = self.open_page(url)
        if before is not None:
            self.send("Page.enable", session=session)
            self.send("Page.addScriptToEvaluateOnNewDocument", {"source": before}, session=session)
        start = time.monotonic()
        self.send("Page.navigate", {"url": url}, session=session)
        state: dict[str, Any] = {}
        while time.monotonic() - start < timeout:
            state = self.evaluate(session, _STATE_JS) or {}
            classes = state.get("classes", [])
            message = state.get("message", "")
            if "Please update" in message:
                raise NetronOutdatedError(
                    f"Netron's page refuses to draw: {message!r}. The installed netron release "
                    "is more than 180 days old; upgrade it (pip install -U netron) and raise the "
                    "netron floor in pyproject.toml."
                )
            if "alert" in classes:
                raise ChromiumError(f"Netron showed an error: {message!r}")
            if "default" in classes:
                break
            time.sleep(0.05)
        else:
            raise ChromiumError(f"Netron did not draw within {timeout:.0f} s; page state {state}")
        seconds = time.monotonic() - start
        graph = self.evaluate(session, _GRAPH_JS) or {}
        return session, NetronPage(
            classes=tuple(state.get("classes", [])),
            title=str(state.get("title", "")),
            ops=tuple(graph.get("ops", [])),
            edge_labels=tuple(graph.get("edge_labels", [])),
            seconds=seconds,
        )

    def _sidebar(self, session: str, title: str, timeout: float = 10.0) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.evaluate(session, _SIDEBAR_JS)
            if state and state["title"].lower() == title.lower() and state["rows"]:
                return {name: value for name, value in state["rows"]}
            time.sleep(0.05)
        raise ChromiumError(f"Netron's {title!r} sidebar did not open")

    def model_properties(self, session: str) -> dict[str, str]:
        """Open Netron's model properties sidebar; its rows as name -> value."""
        self.evaluate(session, "document.getElementById('sidebar-model-button').click()")
        return self._sidebar(session, "Model Properties")

    def node_properties(self, session: str, op_type: str) -> dict[str, str]:
        """Click the first drawn node of ``op_type``; its properties sidebar as name -> value."""
        found = self.evaluate(
            session,
            f"""(() => {{
              const header = Array.from(document.querySelectorAll('#canvas g.node-item-type'))
                .find((g) => g.querySelector('text').textContent === {json.dumps(op_type)});
              if (!header) {{ return false; }}
              header.dispatchEvent(new MouseEvent('click', {{ bubbles: true }}));
              return true;
            }})()""",
        )
        if not found:
            raise ChromiumError(f"no drawn node of type {op_type}")
        return self._sidebar(session, "Node Properties")

    def expand_argument(self, session: str, name: str, timeout: float = 15.0) -> str:
        """In the open node sidebar, expand argument ``name`` (e.g. ``W``) until its values show.

        Netron reads external weights only here, from ``/data/<location>``: the returned text
        holds the tensor's values when the page could fetch them.
        """
        find = f"""Array.from(document.querySelectorAll('#sidebar .sidebar-item')).find((item) => {{
              const input = item.querySelector('.sidebar-item-name input');
              return input && input.value === {json.dumps(name)};
            }})"""
        clicked = self.evaluate(
            session,
            f"""(() => {{
              const item = {find};
              const expander = item && item.querySelector('.sidebar-item-value-expander');
              if (!expander) {{ return false; }}
              expander.click();
              return true;
            }})()""",
        )
        if not clicked:
            raise ChromiumError(f"the open sidebar has no expandable argument {name}")
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.evaluate(session, f"(() => {{ const i = {find}; return i.innerText; }})()")
            if "\n[" in text or "ERROR" in text or "data is empty" in text:
                return str(text)
            time.sleep(0.05)
        raise ChromiumError(f"argument {name} showed no values: {text!r}")

    def screenshot(self, session: str, path: Path) -> Path:
        """Save the tab as a PNG."""
        data = self.send("Page.captureScreenshot", {"format": "png"}, session=session)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    # -- lifetime ---------------------------------------------------------------------------

    def close(self) -> None:
        """Close chromium and delete its profile."""
        if self._process.poll() is None:
            with contextlib.suppress(ChromiumError, OSError):
                self.send("Browser.close", timeout=5)
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        for fd in (self._to_child, self._from_child):
            with contextlib.suppress(OSError):
                os.close(fd)
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
