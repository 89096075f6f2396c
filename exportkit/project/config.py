"""A project's models: ``[[tool.exportkit.models]]`` in pyproject.toml, or ``[[models]]`` in
exportkit.toml, each a spec with the CLI's options.

Keys map onto :class:`~exportkit.Options` through one table, :data:`KEYS`; a key that names an
Options field not in the table (a later capability) is passed through as it is, so every option
is reachable. Top-level keys other than ``models`` are defaults for every model. Paths are read
relative to the config file's folder. A key no option has is a bad config (exit 2), named with
its table.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from exportkit.errors import ConfigError, ExportkitError
from exportkit.inputs.spec import InputSpec
from exportkit.loading.spec import ModelSpec
from exportkit.options import Options, build_options
from exportkit.validate import Tolerances
from exportkit.workspace import default_output

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["KEYS", "ProjectModel", "config_file", "read_models"]

# Keys that are not Options fields as they stand, and what each becomes.
_KEY_FIELDS = {"kwargs": "model_kwargs", "strict-weights": "strict_weights"}
# Fields a project cannot set per model: ci writes one combined report and serves nothing.
_NOT_PER_MODEL = frozenset({"json", "junit", "html", "markdown", "host", "port", "browser"})


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise TypeError("a string or a list of strings")


def _tolerance(value: Any) -> list[str]:
    """``1e-4``, ``"logits=1e-3"``, ``{logits = 1e-3}`` or a list of those -> CLI values."""
    if isinstance(value, bool):
        raise TypeError("a number, a table of output = number, or strings")
    if isinstance(value, (int, float)):
        return [repr(float(value))]
    if isinstance(value, dict):
        return [f"{k}={float(v)!r}" for k, v in value.items()]
    return _strings(value)


def _state(value: Any) -> tuple[tuple[str, str], ...]:
    """``["past=present"]`` or ``{past = "present"}`` -> the --state pairs."""
    from exportkit.decode.state import parse_state

    if isinstance(value, dict):
        value = [f"{k}={_one(v, str)}" for k, v in value.items()]
    return tuple(parse_state(s) for s in _strings(value))


#: key -> function of (value, project folder) giving the Options keywords it sets.
KEYS: dict[str, Callable[[Any, Path], dict[str, Any]]] = {
    "dynamic": lambda v, _: {"dynamic": _strings(v)},
    "weights": lambda v, root: {"weights": str(root / _one(v, str))},
    "calibrate": lambda v, root: {"calibrate": str(root / _one(v, str))},
    "variant": lambda v, _: {"variants": tuple(_strings(v))},
    "provider": lambda v, _: {"providers": tuple(_strings(v))},
    "baseline": lambda v, root: {"baseline": root / _one(v, str)},
    "allow-op": lambda v, _: {"allow_ops": tuple(_strings(v))},
    "state": lambda v, _: {"state": _state(v)},
    "atol": lambda v, _: {"atol_values": _tolerance(v)},
    "rtol": lambda v, _: {"rtol_values": _tolerance(v)},
}
# Keys of a model table that are not options.
_MODEL_KEYS = ("spec", "name", "input", "output")


def _one(value: Any, kind: type | tuple[type, ...]) -> Any:
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        if isinstance(kind, tuple):
            raise TypeError("a number")
        raise TypeError("a table" if kind is dict else f"a {kind.__name__}")
    return value


_DEFAULTS = Options()


def _field(name: str, value: Any) -> dict[str, Any]:
    """An Options field set as written, when its value has the default's type (or is empty)."""
    default = getattr(_DEFAULTS, name)
    if isinstance(default, (bool, str)) or (isinstance(default, int) and value is not None):
        _one(value, type(default))
    elif isinstance(default, float):
        _one(value, (int, float))
        value = float(value)
    elif isinstance(default, Mapping):
        _one(value, dict)
    elif isinstance(default, tuple):
        value = tuple(_strings(value))
    elif dataclasses.is_dataclass(default) and not isinstance(default, type):
        # a table of its fields: thresholds = {cosine = 0.9}
        value = dataclasses.replace(default, **_one(value, dict))
    return {name: value}


@dataclasses.dataclass(frozen=True)
class ProjectModel:
    """One model of a project, ready to run: paths resolved against the project folder.

    ``exportkit.export(m.spec, m.inputs, m.output, options=m.options)`` runs it.

    ``table`` names where it is configured (``pyproject.toml [[tool.exportkit.models]] #2``).
    """

    name: str
    spec: str
    inputs: tuple[str, ...]
    output: Path
    options: Options
    table: str

    def __str__(self) -> str:
        return self.name


def config_file(project: str | Path) -> tuple[Path, tuple[str, ...]]:
    """The config file of a project folder (or the file itself) and the keys leading to its table.

    Raises:
        ConfigError: no exportkit.toml, and no pyproject.toml with ``[tool.exportkit]``.
    """
    path = Path(project)
    if path.is_file():
        return path, ("tool", "exportkit") if path.name == "pyproject.toml" else ()
    if (path / "exportkit.toml").is_file():
        return path / "exportkit.toml", ()
    if (path / "pyproject.toml").is_file():
        return path / "pyproject.toml", ("tool", "exportkit")
    raise ConfigError(
        f"{path} has no exportkit.toml and no pyproject.toml",
        hint='add [[tool.exportkit.models]] tables with spec = "model.py:Net" to pyproject.toml',
    )


def _bad(table: str, key: str, why: str, hint: str) -> ConfigError:
    return ConfigError(f"{table}: {key} {why}", hint=hint)


def _options(
    values: Mapping[str, Any], root: Path, table: str, base: Options
) -> tuple[Options, list[str]]:
    """Option keys -> Options over ``base``; also returns the tolerance values seen."""
    keywords: dict[str, Any] = {}
    atol: list[str] = []
    rtol: list[str] = []
    fields = {f.name for f in dataclasses.fields(Options)} - _NOT_PER_MODEL
    for key, value in values.items():
        field = _KEY_FIELDS.get(key, key.replace("-", "_"))
        try:
            if key in KEYS:
                found = KEYS[key](value, root)
            elif field in fields:
                found = _field(field, value)
            else:
                known = sorted({*_MODEL_KEYS, *KEYS, *_KEY_FIELDS, *fields})
                raise _bad(
                    table, repr(key), "is not an exportkit option", f"keys are: {', '.join(known)}"
                )
        except TypeError as exc:
            raise _bad(
                table, key, f"must be {exc}", f"see exportkit export --help for --{key}"
            ) from None
        atol += found.pop("atol_values", [])
        rtol += found.pop("rtol_values", [])
        keywords.update(found)
    try:
        options = build_options(base, **keywords)
        if atol or rtol:
            options = dataclasses.replace(
                options, tolerances=_merge(options.tolerances, atol, rtol)
            )
    except ExportkitError as exc:
        raise ConfigError(f"{table}: {exc.message}", hint=exc.hint) from None
    except TypeError as exc:
        raise ConfigError(f"{table}: {exc}", hint="see exportkit export --help") from None
    return options, [*atol, *rtol]


def _merge(base: Tolerances, atol: Sequence[str], rtol: Sequence[str]) -> Tolerances:
    new = Tolerances.parse(atol, rtol)
    return Tolerances(
        new.atol if new.atol is not None else base.atol,
        new.rtol if new.rtol is not None else base.rtol,
        {**base.per_output_atol, **new.per_output_atol},
        {**base.per_output_rtol, **new.per_output_rtol},
    )


def _spec(text: str, root: Path) -> tuple[str, ModelSpec]:
    """The spec with its file or folder read relative to the project (module specs as written)."""
    spec = ModelSpec.parse(text)
    if spec.kind == "module" or Path(spec.target).is_absolute():
        return text, spec
    where = str(root / spec.target)
    if spec.kind == "hf":
        return f"hf:{where}", spec
    if spec.kind == "file":
        return f"{where}:{text.rpartition(':')[2]}", spec
    return where, spec


def _input(text: str, root: Path) -> str:
    parsed = InputSpec.parse(text)
    if parsed.file is None or Path(parsed.file).is_absolute():
        return text
    return f"{parsed.name}={root / parsed.file}" if parsed.name else str(root / parsed.file)


def _model(entry: Any, root: Path, table: str, defaults: Options) -> ProjectModel:
    if not isinstance(entry, dict):
        raise ConfigError(
            f"{table} is not a table",
            hint='write [[tool.exportkit.models]] with spec = "model.py:Net"',
        )
    if "spec" not in entry or not isinstance(entry["spec"], str):
        raise _bad(table, "spec", "is missing", 'add spec = "path/to/model.py:Net"')
    try:
        spec, parsed = _spec(entry["spec"], root)
        inputs = tuple(_input(t, root) for t in _strings(entry.get("input", [])))
    except TypeError as exc:
        raise _bad(table, "input", f"must be {exc}", 'write input = ["x:1x3x224x224"]') from None
    except ExportkitError as exc:
        raise ConfigError(f"{table}: {exc.message}", hint=exc.hint) from None
    name = entry.get("name", entry["spec"])
    output = entry.get("output")
    if not isinstance(name, str) or (output is not None and not isinstance(output, str)):
        key = "name" if not isinstance(name, str) else "output"
        raise _bad(table, key, "must be a string", f'write {key} = "..."')
    options, _ = _options(
        {k: v for k, v in entry.items() if k not in _MODEL_KEYS}, root, table, defaults
    )
    target = root / output if output else root / default_output(parsed.name)
    return ProjectModel(name, spec, inputs, target, options, table)


def read_models(
    project: str | Path = ".", *, options: Options | None = None
) -> tuple[ProjectModel, ...]:
    """The models a project configures, in the order written.

    Args:
        project: the project folder (or its pyproject.toml / exportkit.toml).
        options: applied under every model's own keys (``--no-cache``).

    Raises:
        ConfigError: no config, TOML that does not parse, or a key or value that cannot be right.
    """
    path, keys = config_file(project)
    root = path.parent.resolve()
    try:
        data: Any = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path.name} is not valid TOML: {exc}", hint="fix the file") from None
    heading = ".".join(keys)
    for key in keys:
        data = data.get(key, {}) if isinstance(data, dict) else {}
    where = f"{path.name} [{heading}]" if heading else path.name
    models_table = f"{heading}.models" if heading else "models"
    entries = data.get("models") if isinstance(data, dict) else None
    if not entries:
        raise ConfigError(
            f"{where} lists no models",
            hint=f'add a [[{models_table}]] table with spec = "path/to/model.py:Net"',
        )
    if not isinstance(entries, list):
        raise _bad(where, "models", "must be an array of tables", f"write [[{models_table}]]")
    defaults, _ = _options(
        {k: v for k, v in data.items() if k != "models"}, root, where, options or Options()
    )
    models = [
        _model(e, root, f"{path.name} [[{models_table}]] #{i}", defaults)
        for i, e in enumerate(entries, 1)
    ]
    for attr in ("name", "output"):
        seen: dict[Any, str] = {}
        for m in models:
            value = getattr(m, attr)
            if value in seen:
                raise _bad(
                    m.table,
                    attr,
                    f"{str(value)!r} is also {seen[value]}'s",
                    f'give one of them another {attr} = "..."',
                )
            seen[value] = m.table
    return tuple(models)
