"""Notebook display without a result type importing a renderer.

The front door (``exportkit/__init__.py``) registers the HTML renderer of each result type here;
the types' ``_repr_html_`` look it up. Results stay pure data, renderers stay above them.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import Any

__all__ = ["html", "register_html"]

_HTML: dict[str, Callable[[Any], str]] = {}


def _key(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def register_html(type_path: str, render: Callable[[Any], str]) -> None:
    """Render instances of the type named ``module.QualName`` with ``render`` in notebooks."""
    _HTML[type_path] = render


def html(value: object) -> str:
    """``value`` as HTML by its type's registered renderer (its repr when none is registered)."""
    for cls in type(value).__mro__:
        render = _HTML.get(_key(cls))
        if render is not None:
            return render(value)
    return f"<pre>{escape(repr(value))}</pre>"
