"""Where the viewer runs: loopback or not, can a browser open here, how to reach it over SSH."""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from collections.abc import Mapping

__all__ = ["browser_available", "is_loopback", "ssh_tunnel_hint", "url_for"]


def is_loopback(host: str) -> bool:
    """True when ``host`` names only this machine (127.0.0.0/8, ::1, localhost)."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    if host.lower() in ("localhost", "localhost.localdomain", "ip6-localhost"):
        return True
    try:
        infos = socket.getaddrinfo(host, None)
    except (socket.gaierror, UnicodeError):
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


def url_for(host: str, port: int) -> str:
    """The URL a browser on this machine opens for a server bound to ``host:port``."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"  # bound to every interface: the local browser reaches it on loopback
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/"


def _environ(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


def _is_ssh_session(env: Mapping[str, str]) -> bool:
    return bool(env.get("SSH_CONNECTION") or env.get("SSH_CLIENT") or env.get("SSH_TTY"))


def _has_display(env: Mapping[str, str], platform: str) -> bool:
    if platform == "darwin" or platform.startswith("win"):
        return True
    return bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))


def browser_available(env: Mapping[str, str] | None = None, *, platform: str | None = None) -> bool:
    """Whether a web browser can open on this machine's screen.

    macOS and Windows have a screen unless reached over SSH; Linux and other Unixes need
    ``DISPLAY`` or ``WAYLAND_DISPLAY`` (an SSH session with X forwarding has ``DISPLAY``).

    Args:
        env: Environment to inspect; ``os.environ`` when None.
        platform: ``sys.platform`` value to assume; the running one when None.
    """
    env = _environ(env)
    platform = sys.platform if platform is None else platform
    if platform == "darwin" or platform.startswith("win"):
        return not _is_ssh_session(env)
    return _has_display(env, platform)


def ssh_tunnel_hint(
    port: int,
    env: Mapping[str, str] | None = None,
    *,
    platform: str | None = None,
) -> str | None:
    """The ``ssh -L`` command that reaches a loopback server from the SSH client's machine.

    Returns None unless this is an SSH session (``SSH_CONNECTION`` set) with no browser here.
    The server address in the SSH session is taken from ``SSH_CONNECTION`` (its third field).

    Args:
        port: The port the viewer listens on (the same port is used on the client side).
        env: Environment to inspect; ``os.environ`` when None.
        platform: ``sys.platform`` value to assume; the running one when None.
    """
    env = _environ(env)
    connection = env.get("SSH_CONNECTION", "")
    if not connection or browser_available(env, platform=platform):
        return None
    fields = connection.split()
    server = fields[2] if len(fields) >= 3 else socket.gethostname()
    user = env.get("USER") or env.get("LOGNAME")
    target = f"{user}@{server}" if user else server
    return f"ssh -N -L {port}:127.0.0.1:{port} {target}"
