"""Netron's page: its static folder, its build date, and the page pointed at one model."""

from __future__ import annotations

import html
import re
import urllib.parse
from datetime import datetime, timezone
from pathlib import Path

from exportkit.errors import ViewError

__all__ = ["MIME_TYPES", "NETRON_MAX_AGE_DAYS", "netron_assets", "netron_outdated", "render_index"]

# Netron's own list (netron/server.py): the page loads nothing else from its folder.
MIME_TYPES = {
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


def netron_assets() -> tuple[Path, str, str]:
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


def render_index(page: str, version: str, model_name: str, title: str) -> bytes:
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
