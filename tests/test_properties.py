"""Property-based tests: any text given as ``--input``, ``--dynamic`` or a model spec is either a
valid parse or a clean ExportkitError, never another exception; any ONNX file cut short or with
bytes flipped is summarized or refused as OnnxFileError.

Strings are drawn both from all of Unicode and from the grammars' own pieces, so that the examples
reach past the first character a parser looks at.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from exportkit.errors import InputSpecError, OnnxFileError, SpecError
from exportkit.inputs import DynamicSpec, InputSpec
from exportkit.inputs.spec import DTYPES
from exportkit.loading import ModelSpec
from tests.bad_files import mlp_like
from tests.test_viewer import conv_model

# In CI the examples are fixed (a red build is then reproducible); locally they vary run to run.
CI = bool(os.environ.get("CI"))
PARSER = settings(max_examples=200, deadline=None, database=None, derandomize=CI)


def _pieces(*pieces: str) -> st.SearchStrategy[str]:
    """Strings glued from a grammar's tokens, with now and then any character between them."""
    token = st.sampled_from(pieces) | st.text(min_size=1, max_size=2)
    return st.lists(token, max_size=9).map("".join)


INPUT_TEXT = st.text(max_size=40) | _pieces(
    "x", "ids", "_", ":", "=", "2", "0", "1", "16", "-3", "99999999999", "1e3", "x", ",", " ",
    "scalar", "[", "]", "(", ")", "nan", "inf", "-inf", "0.5", "1_0", "٣",
    *DTYPES, "float33", ".npy", ".npz", ".pt", "data.npy",
)  # fmt: skip
SPEC_TEXT = st.text(max_size=40) | _pieces(
    "model.py", "pkg.mod", "a/b", ":", "Net", "make", "(", ")", ",", "=", "1", "-2", "'s'", '"s"',
    "[1, 2]", "{'a': 1}", "{[]: 1}", "*", "**", "x", "depth", "hf:", ".pt", ".pt2", ".pth",
    "\x00", " ", "lambda: 0", "__import__('os')", "((((", "))", ".", "1j", "b'x'", "...",
)  # fmt: skip


@PARSER
@given(INPUT_TEXT)
def test_input_spec_parses_or_refuses_cleanly(text: str) -> None:
    try:
        spec = InputSpec.parse(text)
    except InputSpecError as exc:
        assert exc.message and exc.hint and "\n" not in exc.message
        return
    if spec.file is not None:
        assert spec.tensor is None and spec.file.lower().endswith((".npy", ".npz", ".pt", ".pth"))
        return
    tensor = spec.tensor
    assert tensor is not None and spec.name.isidentifier()
    assert tensor.dtype in DTYPES and all(d >= 1 for d in tensor.shape)
    if tensor.low is not None and tensor.high is not None:
        assert math.isfinite(tensor.low) and math.isfinite(tensor.high)
        assert tensor.low < tensor.high
    # What the report prints to copy parses back to the same shape and dtype.
    again = InputSpec.parse(tensor.describe(spec.name)).tensor
    assert again is not None and (again.shape, again.dtype) == (tensor.shape, tensor.dtype)


@settings(max_examples=100, deadline=None, database=None, derandomize=CI)
@given(INPUT_TEXT)
def test_every_valid_input_spec_can_be_drawn(text: str) -> None:
    """A spec that parses gives values inside its range: no overflow, no inf, no error later."""
    import torch

    from exportkit.inputs.examples import draw

    try:
        tensor = InputSpec.parse(text).tensor
    except InputSpecError:
        return
    assume(tensor is not None and math.prod(tensor.shape) <= 4096)
    assert tensor is not None
    value = draw({"x": tensor}, seed=0)["x"]
    assert tuple(value.shape) == tensor.shape
    if tensor.dtype != "bool" and value.numel():
        assert bool(torch.isfinite(value.double()).all())
        if tensor.low is not None and tensor.high is not None:
            assert tensor.low <= float(value.min()) and float(value.max()) <= tensor.high


@PARSER
@given(INPUT_TEXT)
def test_dynamic_spec_parses_or_refuses_cleanly(text: str) -> None:
    try:
        spec = DynamicSpec.parse(text)
    except InputSpecError as exc:
        assert exc.message and exc.hint
        return
    assert spec.axis >= 0 and spec.label.isidentifier()
    assert spec.input is None or spec.input.isidentifier()


@PARSER
@given(SPEC_TEXT)
@example("hf:\x00")  # found by hypothesis: Path() raised ValueError (embedded null byte)
def test_model_spec_parses_or_refuses_cleanly(text: str) -> None:
    try:
        spec = ModelSpec.parse(text)
    except SpecError as exc:
        assert exc.message and exc.hint
        return
    assert spec.kind in ("file", "module", "torchscript", "exported", "hf")
    if spec.kind in ("file", "module"):
        assert spec.name.isidentifier() and spec.target
        assert isinstance(spec.args, tuple) and all(isinstance(k, str) for k in spec.kwargs)


def _serialized() -> list[bytes]:
    metadata = conv_model()
    node = metadata.graph.node[0]
    node.metadata_props.add(key="pkg.torch.onnx.name_scopes", value="['', 'conv']")
    node.metadata_props.add(key="pkg.torch.onnx.class_hierarchy", value="['Net', 'Conv2d']")
    return [mlp_like().SerializeToString(), metadata.SerializeToString()]


MODELS = _serialized()


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    """A valid model's bytes, cut short, with bytes flipped, inserted or deleted."""
    data = bytearray(draw(st.sampled_from(MODELS)))
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.integers(0, max(len(data) - 1, 0)))
        how = draw(st.sampled_from(["flip", "set", "insert", "delete", "cut"]))
        if not data:
            break
        if how == "flip":
            data[where] ^= 1 << draw(st.integers(0, 7))
        elif how == "set":
            data[where] = draw(st.integers(0, 255))
        elif how == "insert":
            data[where:where] = draw(st.binary(min_size=1, max_size=8))
        elif how == "delete":
            del data[where : where + draw(st.integers(1, 8))]
        else:
            del data[where:]
    return bytes(data)


@pytest.fixture(scope="module")
def fuzz_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "model.onnx"


@settings(
    max_examples=120,
    deadline=None,
    database=None,
    derandomize=CI,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(damaged())
def test_summary_of_damaged_onnx_is_a_summary_or_an_onnx_file_error(
    fuzz_file: Path, data: bytes
) -> None:
    from exportkit.report.summary import render_summary
    from exportkit.summary import summarize

    fuzz_file.write_bytes(data)
    try:
        summary = summarize(fuzz_file)
    except OnnxFileError as exc:
        assert exc.message and exc.hint and "\n" not in exc.message
        return
    for fmt in ("table", "json", "markdown", "csv"):
        assert render_summary(summary, fmt)  # type: ignore[arg-type]


def test_the_fuzzed_models_summarize_when_intact(fuzz_file: Path) -> None:
    from exportkit.summary import summarize

    for data in MODELS:
        fuzz_file.write_bytes(data)
        summary = summarize(fuzz_file)
        assert summary.nodes and not summary.warnings


OPTION_TEXT = st.text(max_size=30) | _pieces(
    "batch", "seq", "logits", "=", "1", "0", "-1", "1e-3", "nan", "inf", "1e400", "x", " ", "٣",
    "²", ",", "name", "params", "macs",
)  # fmt: skip


@PARSER
@given(st.lists(OPTION_TEXT, max_size=3), st.lists(OPTION_TEXT, max_size=3))
def test_tolerances_parse_or_refuse_cleanly(atol: list[str], rtol: list[str]) -> None:
    """As the CLI reads them: parsed, then checked by Options (an infinite tolerance is refused
    there, a check that cannot fail)."""
    from exportkit import Options
    from exportkit.errors import UsageError
    from exportkit.validate import Tolerances

    try:
        tol = Options(tolerances=Tolerances.parse(atol, rtol)).tolerances
    except UsageError as exc:
        assert exc.message and exc.hint
        return
    values = [tol.atol, tol.rtol, *tol.per_output_atol.values(), *tol.per_output_rtol.values()]
    assert all(v is None or (math.isfinite(v) and v >= 0) for v in values)


@PARSER
@given(st.lists(OPTION_TEXT, max_size=3), OPTION_TEXT)
def test_summary_dims_and_columns_parse_or_refuse_cleanly(dims: list[str], columns: str) -> None:
    from exportkit.errors import UsageError
    from exportkit.report.summary import parse_columns
    from exportkit.summary import parse_dims

    try:
        bound = parse_dims(dims)
    except UsageError as exc:
        assert exc.message and exc.hint
    else:
        assert all(name and isinstance(v, int) and v >= 1 for name, v in bound.items())
    try:
        assert parse_columns(columns)
    except UsageError as exc:
        assert exc.message and exc.hint
