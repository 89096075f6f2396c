"""Where the viewer runs: this machine's addresses, loopback or not, can a browser open here,
how to reach it over SSH."""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import socket
import sys
from collections.abc import Mapping
from pathlib import Path

from exportkit.errors import HostError

__all__ = [
    "address_family",
    "browser_available",
    "check_host",
    "is_loopback",
    "local_addresses",
    "ssh_tunnel_hint",
    "url_for",
]

_SIOCGIFADDR = 0x8915  # Linux: an interface's IPv4 address


def address_family(host: str) -> socket.AddressFamily:
    """The socket family a server bound to ``host`` uses (IPv6 for a literal with a colon)."""
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _bindable(address: str) -> bool:
    with socket.socket(address_family(address), socket.SOCK_STREAM) as probe:
        try:
            probe.bind((address, 0))
        except OSError:
            return False
    return True


def _interface_addresses() -> list[str]:
    """Addresses of this machine's interfaces (Linux reads them directly; elsewhere, the host
    name's addresses)."""
    found: list[str] = []
    if sys.platform.startswith("linux"):
        import fcntl
        import struct

        for _, name in socket.if_nameindex():
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                try:
                    packed = fcntl.ioctl(
                        s.fileno(), _SIOCGIFADDR, struct.pack("256s", name[:15].encode())
                    )
                except OSError:
                    continue  # no IPv4 address on this interface
                found.append(socket.inet_ntoa(packed[20:24]))
        try:
            lines = Path("/proc/net/if_inet6").read_text().splitlines()
        except OSError:
            lines = []
        for line in lines:
            fields = line.split()
            if len(fields) >= 6:
                address = ipaddress.IPv6Address(int(fields[0], 16))
                found.append(f"{address}%{fields[5]}" if address.is_link_local else str(address))
    with contextlib.suppress(OSError, UnicodeError):
        found += [str(info[4][0]) for info in socket.getaddrinfo(socket.gethostname(), None)]
    return found


def local_addresses() -> list[str]:
    """The IP addresses a server can listen on here: loopback first, then IPv4, then IPv6."""
    unique = dict.fromkeys(["127.0.0.1", "::1", *_interface_addresses()])
    usable = [a for a in unique if _bindable(a)]

    def order(address: str) -> tuple[bool, bool, str]:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        return (not ip.is_loopback, ip.version == 6, address)

    return sorted(usable, key=order)


def _addresses_hint() -> str:
    listing = ", ".join(local_addresses())
    return f"use an address of this machine: {listing}; or 0.0.0.0 for every interface"


def check_host(host: str) -> None:
    """Fail unless a server can listen on ``host`` here: an address of this machine, a name
    that resolves to one, or 0.0.0.0 / :: (every interface).

    Cheap (no port is taken), so callers check it before any long work.

    Raises:
        HostError: ``host`` is empty, does not resolve, or is not an address of this machine;
            the hint lists the addresses that are.
    """
    bare = host.strip()
    bare = bare[1:-1] if bare.startswith("[") and bare.endswith("]") else bare
    if not bare:
        raise HostError("the host to listen on (--host) is empty", hint=_addresses_hint())
    family = address_family(bare)
    try:
        resolved = socket.getaddrinfo(bare, None, family, socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError):
        raise HostError(
            f"host {host!r} is neither an address nor a name this machine resolves",
            hint=_addresses_hint(),
        ) from None
    address = str(resolved[0][4][0])
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((bare, 0))
        except OSError as exc:
            shown = repr(host) if address == bare else f"{host!r} ({address})"
            what = (
                "is not an address of this machine"
                if exc.errno == errno.EADDRNOTAVAIL
                else f"cannot be listened on: {exc.strerror or exc}"
            )
            raise HostError(f"host {shown} {what}", hint=_addresses_hint()) from None


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
