"""Where a view runs: can a browser open, the ssh -L line over SSH, what counts as loopback."""

from __future__ import annotations

import pytest

from exportkit.viewer import browser_available, is_loopback, ssh_tunnel_hint

SSH = {"SSH_CONNECTION": "203.0.113.5 50122 198.51.100.7 22", "USER": "ana"}


@pytest.mark.parametrize(
    ("env", "platform", "expected"),
    [
        ({}, "linux", False),  # a headless Linux box (CI, a container)
        ({"DISPLAY": ":0"}, "linux", True),
        ({"WAYLAND_DISPLAY": "wayland-0"}, "linux", True),
        (SSH, "linux", False),
        ({**SSH, "DISPLAY": "localhost:10.0"}, "linux", True),  # ssh -X forwards a display
        ({}, "darwin", True),
        (SSH, "darwin", False),
        ({}, "win32", True),
    ],
)
def test_browser_available(env: dict[str, str], platform: str, expected: bool) -> None:
    assert browser_available(env, platform=platform) is expected


def test_ssh_hint_names_port_user_and_server_address() -> None:
    hint = ssh_tunnel_hint(8123, SSH, platform="linux")
    assert hint == "ssh -N -L 8123:127.0.0.1:8123 ana@198.51.100.7"


@pytest.mark.parametrize(
    "env",
    [{}, {**SSH, "DISPLAY": "localhost:10.0"}, {"DISPLAY": ":0"}],
)
def test_no_ssh_hint_outside_ssh_or_with_a_display(env: dict[str, str]) -> None:
    assert ssh_tunnel_hint(8123, env, platform="linux") is None


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", True),
        ("127.0.1.1", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.20", False),
    ],
)
def test_is_loopback(host: str, expected: bool) -> None:
    assert is_loopback(host) is expected
