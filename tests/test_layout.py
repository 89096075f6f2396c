"""The package's layout holds: no import cycles, small modules, every import pointing down.

Imports are read with ``ast`` from every module, those inside functions and under
``TYPE_CHECKING`` included: a lazy import is still a dependency, and a cycle through one is a
cycle in the design even when Python happens to resolve it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "exportkit"
MAX_LINES = 400

#: The layers, bottom first. A module imports only from lower layers or from its own unit (the
#: longest name listed here that it is, or is inside of); two units in one layer never import each
#: other (simplify and summary are separate stages). A new module or package gets a line here,
#: in the layer that says what it may use.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "versions", "display"),
    ("onnxfile", "opsets", "outputs", "quiet"),
    ("hierarchy", "external", "inputs", "workspace"),
    ("diagnose", "loading", "perf"),
    ("export",),
    ("simplify", "validate", "summary"),
    ("decode",),  # chained steps: validation over a generation loop; variants chain it too
    ("variants", "diff"),
    ("results",),
    ("stages", "options", "project.results"),  # project.results: what report/ci.py renders
    ("choose",),  # the simplifier policy, for the step graph and an encoder-decoder's prefill
    # variants.stage, decode.stage: the pipeline's steps
    ("fallback", "resolve", "variants.stage", "decode.stage", "diff.stage", "report"),
    ("viewer",),  # its findings show the report's variant lines
    ("reporting", "cache", "project"),  # project: exportkit ci's config and worker processes
    ("pipeline",),
    ("",),  # exportkit/__init__.py: the front door
    ("cli", "testing"),
    ("__main__", "pytest_plugin"),
)
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def _module_name(path: Path) -> str:
    parts = ["exportkit", *path.relative_to(PACKAGE).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _known(name: str) -> str:
    """The module an imported name lives in: the longest exportkit module prefix of it."""
    while name not in modules():
        name = name.rpartition(".")[0]
    return name


def _imports(module: str, path: Path) -> Iterator[str]:
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "exportkit":
                    yield _known(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                parts = module.split(".")[: len(module.split(".")) - node.level + is_package]
                base = ".".join([*parts, base] if base else parts)
            if base.split(".")[0] != "exportkit":
                continue
            for alias in node.names:
                full = f"{base}.{alias.name}"
                yield full if full in modules() else _known(base)


@cache
def graph() -> dict[str, frozenset[str]]:
    return {
        name: frozenset(i for i in _imports(name, path) if i != name)
        for name, path in modules().items()
    }


def _cycles() -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    edges = graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def _unit(module: str) -> str:
    """The longest name in LAYERS that ``module`` is or lies inside of (``""``: the front door)."""
    name = module.removeprefix("exportkit").removeprefix(".")
    while name and name not in RANK:
        name = name.rpartition(".")[0]
    return name


def _edges(src_prefix: str, dst_prefix: str) -> list[str]:
    def under(name: str, prefix: str) -> bool:
        return name == prefix or name.startswith(prefix + ".")

    return [
        f"{src} -> {dst}"
        for src, targets in sorted(graph().items())
        if under(src, src_prefix)
        for dst in sorted(targets)
        if under(dst, dst_prefix)
    ]


def test_the_reader_sees_lazy_and_type_only_imports() -> None:
    # make_inputs imports infer inside a function; findings imports Report only for types.
    assert "exportkit.inputs.infer" in graph()["exportkit.inputs.make"]
    assert "exportkit.results" in graph()["exportkit.viewer.findings"]


def test_no_import_cycles() -> None:
    assert _cycles() == []


@pytest.mark.parametrize("module", sorted(modules()))
def test_modules_stay_small(module: str) -> None:
    lines = len(modules()[module].read_text().splitlines())
    assert lines <= MAX_LINES, f"{module} has {lines} lines; split it by what it owns"


def test_every_top_level_module_has_a_layer() -> None:
    top = {m.split(".")[1] for m in modules() if m.count(".")}
    assert sorted(top - set(RANK)) == []


def test_imports_point_down_the_layers() -> None:
    upward = [
        f"{src} -> {dst}"
        for src, targets in sorted(graph().items())
        for dst in sorted(targets)
        if _unit(src) != _unit(dst) and RANK[_unit(dst)] >= RANK[_unit(src)]
    ]
    assert upward == []


def test_renderers_and_the_viewer_never_import_the_pipeline() -> None:
    assert _edges("exportkit.report", "exportkit.pipeline") == []
    assert _edges("exportkit.viewer", "exportkit.pipeline") == []


def test_result_types_never_import_renderers() -> None:
    results = [m for m in modules() if m.rpartition(".")[2] == "results"]
    assert "exportkit.summary.results" in results
    assert [e for m in results for e in _edges(m, "exportkit.report")] == []


def test_an_earlier_stage_never_imports_a_later_one() -> None:
    assert _edges("exportkit.simplify", "exportkit.summary") == []
    assert _edges("exportkit.export", "exportkit.validate") == []
