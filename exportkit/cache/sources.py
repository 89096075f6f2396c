"""A model file and the local modules it imports, found by reading imports with ast (never run).

"Local" means found under one of the roots the loader makes importable (the model file's folder
and the working folder): a library in site-packages is covered by its version instead.
"""

from __future__ import annotations

import ast
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = ["local_closure", "module_file"]

logger = logging.getLogger(__name__)


def module_file(name: str, roots: Sequence[Path]) -> Path | None:
    """``pkg.mod`` -> ``root/pkg/mod.py`` or ``root/pkg/mod/__init__.py`` under the first root
    that has it, without importing anything; None when no root has it."""
    parts = name.split(".")
    for root in roots:
        base = root.joinpath(*parts)
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate
    return None


def _package_inits(file: Path, root: Path) -> list[Path]:
    """The ``__init__.py`` files Python runs to import ``file`` as a module under ``root``."""
    out = []
    folder = file.parent
    while folder != root and root in folder.parents:
        init = folder / "__init__.py"
        if init.is_file():
            out.append(init)
        folder = folder.parent
    return out


def _imported_names(tree: ast.AST, file: Path) -> Iterable[tuple[str, int]]:
    """(dotted name, relative level) of each module an ``import`` may load, submodules included:
    ``from a import b`` may import ``a.b``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, 0
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            yield base, node.level
            for alias in node.names:
                if alias.name != "*":
                    yield f"{base}.{alias.name}" if base else alias.name, node.level


def _resolve(name: str, level: int, file: Path, roots: Sequence[Path]) -> Path | None:
    if level:
        folder = file.parent
        for _ in range(level - 1):
            folder = folder.parent
        return module_file(name, [folder]) if name else None
    return module_file(name, roots)


def local_closure(
    file: Path, roots: Sequence[Path], external: set[str] | None = None
) -> tuple[Path, ...]:
    """``file`` and every local module it imports, recursively, sorted; each path resolved.

    Args:
        file: the model's source file.
        roots: the folders that imports are resolved against.
        external: filled with the top-level names of the imports that are not local
            (``torch``, ``transformers``), whose versions the caller may add to a key.
    """
    roots = [r.resolve() for r in roots]
    seen: set[Path] = set()
    todo = [file.resolve()]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        try:
            tree = ast.parse(current.read_bytes(), filename=str(current))
        except (OSError, SyntaxError, ValueError) as exc:
            logger.debug("cache: cannot read imports of %s: %s", current, exc)
            continue
        for name, level in _imported_names(tree, current):
            found = _resolve(name, level, current, roots)
            if found is None:
                if not level and external is not None and name:
                    top = name.split(".")[0]
                    if module_file(top, roots) is None:
                        external.add(top)
                continue
            found = found.resolve()
            todo.append(found)
            root = next((r for r in roots if r in found.parents), None)
            if root is not None:
                todo.extend(p.resolve() for p in _package_inits(found, root))
    return tuple(sorted(seen))
