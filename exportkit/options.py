"""Options: everything that steers a run besides the model, its inputs and the output path.

One frozen dataclass serves every verb and every CLI flag: the CLI fills it from argv, Python
callers build it directly or through the flat keywords of the verbs (:func:`build_options`, the one
place those keywords are read). Values that cannot be right are refused here, before any work.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from exportkit.errors import InputSpecError, UsageError
from exportkit.export import Exporter
from exportkit.inputs import DynamicSpec
from exportkit.simplify import Simplifier
from exportkit.validate import Tolerances
from exportkit.variants.results import Int8Mode, Thresholds

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "OptionKeywords",
    "Options",
    "build_options",
    "parse_model_kwargs",
    "require_output_names",
]

MAX_SEED = 2**32 - 1  # numpy's seeds stop here; torch's go further


@dataclass(frozen=True)
class Options:
    """How to load, export, validate, report and view; every CLI flag is a field.

    The model, its inputs and the output path are the verbs' own arguments: inputs may be tensors,
    which no flag can carry.
    """

    # model and inputs
    dynamic: tuple[DynamicSpec, ...] = ()
    model_kwargs: Mapping[str, Any] = field(default_factory=dict)
    weights: str | None = None
    strict_weights: bool = True
    seed: int = 0
    # export
    exporter: Exporter = "auto"
    opset: int | None = None
    simplifier: Simplifier = "onnxsim"
    # ONNX translations for custom operators (dynamo): op overload -> onnxscript function.
    custom_translations: Mapping[Any, Any] = field(default_factory=dict)
    annotate: bool = False
    # validation
    tolerances: Tolerances = field(default_factory=Tolerances)
    sizes: bool = True
    strict: bool = False
    # report files, written atomically when the run ends (also when it fails, for JUnit)
    json: Path | None = None
    junit: Path | None = None
    html: Path | None = None
    markdown: Path | None = None
    # summary: values for symbolic dims, so MACs that depend on them are counted
    dims: Mapping[str, int] = field(default_factory=dict)
    # deployment variants (exportkit.variants): made beside the final file, validated and timed
    variants: tuple[str, ...] = ()
    int8: Int8Mode = "auto"
    calibrate: str | None = None
    providers: tuple[str, ...] = ()
    profile: bool = False
    thresholds: Thresholds = field(default_factory=Thresholds)
    latency_budget: float = 1.0  # seconds of timed runs per file (0: no latency figures)
    # baseline: after the checks, hold the file to an earlier .onnx file or --json report
    baseline: Path | None = None
    allow_ops: tuple[str, ...] = ()
    max_opset: int | None = None
    max_node_growth: float = 0.10  # fraction: 0.10 fails on more than 10% more nodes
    max_latency_growth: float = 0.25
    drift_atol: float | None = None  # None: the validation tolerances
    # decoders: chained steps fed their own state (exportkit.decode); --state INPUT=OUTPUT pairs
    steps: int = 0
    state: tuple[tuple[str, str], ...] = ()
    # viewer
    host: str = "127.0.0.1"
    port: int | None = None
    browser: bool = False
    # reuse the result of an unchanged passing run (see exportkit.cache)
    cache: bool = True

    def __post_init__(self) -> None:
        _check_choice("exporter", self.exporter, ("auto", "dynamo", "torchscript"))
        _check_choice("simplifier", self.simplifier, ("onnxsim", "onnxslim", "none"))
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise UsageError(
                f"seed must be a whole number, not {self.seed!r}", hint="write --seed 0"
            )
        if not 0 <= self.seed <= MAX_SEED:
            raise UsageError(
                f"--seed {self.seed} is outside 0..{MAX_SEED}",
                hint="write --seed 0 or another seed",
            )
        if self.opset is not None and (isinstance(self.opset, bool) or self.opset < 1):
            raise UsageError(
                f"--opset {self.opset} is not an ONNX opset",
                hint="leave --opset out for the exporter's default, or write --opset 18",
            )
        if self.port is not None and not 0 <= self.port <= 65535:
            raise UsageError(
                f"--port {self.port} is outside 0..65535",
                hint="leave --port out for a free port, or write --port 8080",
            )
        for name, value in self.dims.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UsageError(
                    f"--dim {name}={value} must be a positive whole number",
                    hint=f"write --dim {name}=1",
                )
        _check_tolerances(self.tolerances)
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 0:
            raise UsageError(
                f"--steps {self.steps} must be a whole number >= 0", hint="write --steps 4"
            )
        _check_variants(self)
        if self.max_opset is not None and (isinstance(self.max_opset, bool) or self.max_opset < 1):
            raise UsageError(
                f"--max-opset {self.max_opset} is not an ONNX opset",
                hint="leave --max-opset out to hold the baseline's, or write --max-opset 18",
            )
        for name in ("max_node_growth", "max_latency_growth"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                flag = "--" + name.replace("_", "-")
                raise UsageError(f"{flag} must be a percentage >= 0", hint=f"write {flag} 10")


def _check_choice(flag: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise UsageError(
            f"--{flag} {value!r} is not one of {', '.join(choices)}",
            hint=f"write --{flag} {choices[0]}",
        )


def _check_tolerances(tol: Tolerances) -> None:
    values = [("--atol", tol.atol), ("--rtol", tol.rtol)]
    values += [(f"--atol {k}=", v) for k, v in tol.per_output_atol.items()]
    values += [(f"--rtol {k}=", v) for k, v in tol.per_output_rtol.items()]
    for flag, value in values:
        if value is not None and not (math.isfinite(value) and value >= 0):
            # An infinite tolerance is a check that cannot fail: refuse it as a value.
            raise InputSpecError(
                f"{flag} {value} must be a finite number >= 0",
                hint=f"write {flag.split()[0]} 1e-4",
            )


def _check_variants(options: Options) -> None:
    from exportkit.variants import VARIANTS

    for name in options.variants:
        _check_choice("variant", name, VARIANTS)
    _check_choice("int8", options.int8, ("auto", "dynamic", "static"))
    t = options.thresholds
    for flag, value in (("--min-cosine", t.cosine), ("--min-top1", t.top1)):
        if not (math.isfinite(value) and 0 <= value <= 1):
            raise UsageError(f"{flag} {value} must be between 0 and 1", hint=f"write {flag} 0.99")
    if not (math.isfinite(options.latency_budget) and options.latency_budget >= 0):
        raise UsageError(
            f"--latency-budget {options.latency_budget} must be >= 0 seconds", hint="write 1"
        )
    if not math.isfinite(t.sqnr_db):
        raise UsageError(f"--min-sqnr {t.sqnr_db} must be a finite number of dB", hint="write 20")
    if options.calibrate is not None:
        file = options.calibrate.rpartition("=")[2] or options.calibrate
        if not Path(file).is_file():
            raise InputSpecError(
                f"--calibrate {options.calibrate}: no such file",
                hint="give a .npz with one array per model input (numpy.savez), or NAME=FILE.npy",
            )
    if options.providers:
        from exportkit.perf import resolve_providers

        resolve_providers(options.providers)  # exit 2 before any work for one not installed


def parse_model_kwargs(text: str | None) -> dict[str, Any]:
    """``--kwargs '{"depth": 3}'`` -> ``{"depth": 3}``.

    Raises:
        InputSpecError: the text is not a JSON object.
    """
    if not text:
        return {}
    hint = "write --kwargs '{\"depth\": 3}'"
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputSpecError(f"--kwargs is not valid JSON: {exc.msg}", hint=hint) from None
    if not isinstance(value, dict):
        raise InputSpecError("--kwargs must be a JSON object", hint=hint)
    return value


class OptionKeywords(TypedDict, total=False):
    """The verbs' flat keywords: each an :class:`Options` field, plus ``atol``/``rtol``."""

    dynamic: Sequence[DynamicSpec | str]
    model_kwargs: Mapping[str, Any]
    weights: str | os.PathLike[str] | None
    strict_weights: bool
    seed: int
    exporter: Exporter
    opset: int | None
    simplifier: Simplifier
    custom_translations: Mapping[Any, Any]
    annotate: bool
    tolerances: Tolerances
    atol: float | None
    rtol: float | None
    sizes: bool
    strict: bool
    json: str | os.PathLike[str] | None
    junit: str | os.PathLike[str] | None
    html: str | os.PathLike[str] | None
    markdown: str | os.PathLike[str] | None
    dims: Mapping[str, int]
    variants: Sequence[str]
    int8: Int8Mode
    calibrate: str | os.PathLike[str] | None
    providers: Sequence[str]
    profile: bool
    thresholds: Thresholds
    latency_budget: float
    baseline: str | os.PathLike[str] | None
    allow_ops: Sequence[str]
    max_opset: int | None
    max_node_growth: float
    max_latency_growth: float
    drift_atol: float | None
    steps: int
    state: Sequence[str | tuple[str, str]]
    host: str
    port: int | None
    browser: bool
    cache: bool


_FIELDS = frozenset(f.name for f in fields(Options))


def build_options(options: Options | None = None, /, **keywords: Unpack[OptionKeywords]) -> Options:
    """``options`` (default ``Options()``) with the verbs' flat keywords applied on top.

    Strings become their types here: ``dynamic=["batch"]``, ``json="report.json"``;
    ``atol``/``rtol`` set the global tolerances.

    Raises:
        TypeError: a keyword that is not an option.
        UsageError: a value that cannot be right.
    """
    base = options or Options()
    values: dict[str, Any] = dict(keywords)
    unknown = sorted(set(values) - _FIELDS - {"atol", "rtol"})
    if unknown:
        raise TypeError(f"unknown option {unknown[0]!r}; options are: {', '.join(sorted(_FIELDS))}")
    if "atol" in values or "rtol" in values:
        tol = values.get("tolerances", base.tolerances)
        atol = values.pop("atol", tol.atol)
        rtol = values.pop("rtol", tol.rtol)
        values["tolerances"] = replace(tol, atol=atol, rtol=rtol)
    if "dynamic" in values:
        values["dynamic"] = tuple(
            DynamicSpec.parse(d) if isinstance(d, str) else d for d in values["dynamic"]
        )
    if "allow_ops" in values:
        values["allow_ops"] = tuple(values["allow_ops"])
    for name in ("json", "junit", "html", "markdown", "baseline"):
        if values.get(name) is not None:
            values[name] = Path(values[name])
    if values.get("weights") is not None:
        values["weights"] = str(values["weights"])
    for name in ("variants", "providers"):
        if name in values:
            values[name] = tuple(values[name])
    if "state" in values:
        from exportkit.decode.state import parse_state

        values["state"] = tuple(
            parse_state(p) if isinstance(p, str) else tuple(p) for p in values["state"]
        )
    if values.get("calibrate") is not None:
        values["calibrate"] = str(values["calibrate"])
    for name in ("model_kwargs", "custom_translations", "dims"):
        if name in values:
            values[name] = dict(values[name])
    return replace(base, **values) if values else base


def require_output_names(tolerances: Tolerances, outputs: Sequence[str]) -> None:
    """A per-output ``--atol``/``--rtol`` must name an output the model has.

    Raises:
        InputSpecError: it names none of ``outputs``.
    """
    named = [*tolerances.per_output_atol, *tolerances.per_output_rtol]
    for name in named:
        if name not in outputs:
            flag = "--atol" if name in tolerances.per_output_atol else "--rtol"
            raise InputSpecError(
                f"{flag} {name}=... names no output of the model; its outputs are: "
                f"{', '.join(outputs) or '(none)'}",
                hint=f"write {flag} {outputs[0] if outputs else 'OUTPUT'}=1e-3, or {flag} 1e-3 for all",
            )
