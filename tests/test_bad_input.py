"""Bad input, table-driven: every case is refused with its documented exit code, one ``error:``
line and one ``hint:`` line last on stderr, no traceback, and no file at an output target touched.

Each case runs ``exportkit.cli.main(argv)`` in-process. Export, view and check cases get good
files planted at ``-o``, ``--json`` and ``--junit`` (unless the case names its own) and must leave
them byte for byte as they were, with nothing else left in their folder. A bad value is found
before any export starts (exit 2 cases never reach the export stage); the few exit 3 cases are
stages failing on input that parses. The files the cases name come from tests/bad_files.py.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from exportkit.cli import main
from tests.bad_files import MARKER, write_bad_files

MODELS = Path(__file__).parent / "models"
GOOD = {"-o": b"good onnx bytes\n", "--json": b'{"passed": true}\n', "--junit": b"<testsuite/>\n"}
TARGETS = {"-o": "model.onnx", "--json": "report.json", "--junit": "junit.xml"}


@dataclass(frozen=True)
class Case:
    """argv (with ``{files}``, ``{tmp}``, ``{models}``, ``{port}`` filled in), the exit code, and
    words the error line (and optionally the hint) must contain, case-insensitively."""

    id: str
    argv: tuple[str, ...]
    code: int
    error: str
    hint: str = ""
    plant: bool = True  # plant good files at -o/--json/--junit (argparse cases: no)


def export(id: str, *argv: str, error: str, code: int = 2, hint: str = "") -> Case:
    return Case(id, ("export", *argv), code, error, hint)


def net(id: str, *argv: str, error: str, code: int = 2, hint: str = "") -> Case:
    """An export of the tiny MLP (forward(x), x: N x 4) with x:2x4 unless argv gives --input."""
    inputs = () if "--input" in argv else ("--input", "x:2x4")
    return export(id, "{models}/mlp.py:Net", *inputs, *argv, error=error, code=code, hint=hint)


def summary(id: str, *argv: str, error: str, hint: str = "") -> Case:
    return Case(id, ("summary", *argv), 2, error, hint)


def check(id: str, file: str, *argv: str, error: str, code: int = 2, hint: str = "") -> Case:
    return Case(id, ("check", file, "{models}/mlp.py:Net", *argv), code, error, hint)


def view(id: str, *argv: str, error: str, hint: str = "") -> Case:
    return Case(id, ("view", *argv, "--no-browser"), 2, error, hint)


def usage(id: str, *argv: str, error: str) -> Case:
    """argparse's own errors: same contract (exit 2, one error line, one hint line)."""
    return Case(id, argv, 2, error, plant=False)


F = "{files}"
SPECS = [
    export("spec-missing-file", "{tmp}/nope.py:Net", error="does not exist"),
    export("spec-missing-name", "{models}/mlp.py:Nett", error="it defines: Net"),
    export("spec-no-name", "{models}/mlp.py", error="no ':NAME' part", hint="mlp.py:"),
    export("spec-empty-name", "{models}/mlp.py:", error="no ':NAME' part"),
    export("spec-no-file", ":Net", error="no ':NAME' part"),
    export("spec-needs-args", "{models}/mlp.py:Wide", error="width"),
    export("spec-not-a-module", "{models}/mlp.py:NOT_A_MODEL", error="NOT_A_MODEL"),
    export("spec-code-in-args", "{models}/mlp.py:Net(__import__('os'))", error="non-literal"),
    export("spec-star-args", "{models}/mlp.py:Net(*[1])", error="unpacks"),
    export("spec-unclosed-call", "{models}/mlp.py:Net(width=", error="cannot parse"),
    export("spec-attribute", "{models}/mlp.py:Net.fc1", error="cannot parse"),
    export("spec-unknown-kwarg", "{models}/mlp.py:Net(depth=2)", error="depth"),
    export("spec-too-many-args", "{models}/mlp.py:Net(1, 2, 3)", error="Net"),
    export("spec-folder", "{models}", error="no ':NAME' part"),
    export("spec-not-python", F + "/readme.md:Net", error="readme.md"),
    export("spec-empty-python", F + "/empty.py:Net", error="empty.py"),
    export("spec-syntax-error", F + "/syntax_error.py:Net", code=3, error="syntax_error.py:2"),
    export("spec-import-raises", "{models}/import_error.py:Net", code=3, error="import_error.py:4"),
    export("spec-no-package", "no_such_package_xyz.models:Net", error="no_such_package_xyz"),
    export("spec-module-not-model", "json:dumps", error="dumps"),
    export("spec-kwargs-not-json", "{models}/mlp.py:Net", "--kwargs", "{{width: 3}}", error="JSON"),
    export("spec-kwargs-list", "{models}/mlp.py:Net", "--kwargs", "[3]", error="JSON object"),
    export("spec-fifo", F + "/fifo.py:Net", error="fifo.py"),
    export(
        "spec-instance-with-kwargs",
        "{models}/mlp.py:net",
        "--kwargs",
        '{{"width": 3}}',
        error="instance",
    ),
    export(
        "spec-constructor-raises",
        "{models}/mlp.py:Net(width=-1)",
        code=3,
        error="building Net raised",
    ),
    export(
        "spec-kwargs-wrong-type",
        "{models}/mlp.py:Net",
        "--kwargs",
        '{{"width": "wide"}}',
        code=3,
        error="building Net raised",
    ),
    export("spec-kwargs-unknown", "{models}/mlp.py:Net", "--kwargs", '{{"nope": 1}}', error="nope"),
    export("archive-missing", "{tmp}/nope.pt", error="does not exist"),
    export("archive-text", F + "/text.pt", error="text.pt"),
    export("archive-state-dict", F + "/state_dict.pt", error="not a TorchScript", hint="--weights"),
    export("archive-fifo", F + "/fifo.pt", error="fifo.pt"),
    export("archive-pickle-pt", F + "/payload.pt", error="not a TorchScript"),
    export("archive-empty-pt", F + "/empty.pt", error="empty.pt"),
    export("archive-truncated-pt", F + "/truncated.pt", error="truncated.pt"),
    export("archive-pickle-pt2", F + "/pickle.pt2", error="not a torch.export archive"),
    export("archive-zip-pt2", F + "/not_torch.pt2", error="torch.export archive"),
    export("archive-state-dict-pt2", F + "/state_dict.pt2", error="not a torch.export archive"),
    export("archive-truncated-pt2", F + "/truncated.pt2", error="truncated.pt2"),
    export("hf-no-folder", "hf:", error="names no folder"),
    export("hf-missing", "hf:{tmp}/nope", error="nope"),
    export("hf-no-config", "hf:" + F + "/hf_empty", error="config.json"),
    export("hf-bad-json", "hf:" + F + "/hf_bad_json", error="config.json"),
    export("hf-unknown-type", "hf:" + F + "/hf_unknown", error="no-such-model"),
    export("hf-config-list", "hf:" + F + "/hf_list", error="config.json"),
]
INPUTS = [
    net("input-bad-shape", "--input", "x:2xq", error="cannot parse shape"),
    net("input-float-dim", "--input", "x:1e3x4", error="cannot parse shape"),
    net("input-trailing-x", "--input", "x:2x4x", error="cannot parse shape"),
    net("input-zero-dim", "--input", "x:0x4", error="x:0x4", hint="size of 1"),
    net("input-negative-dim", "--input", "x:-2x4", error="negative"),
    net("input-huge", "--input", "x:100000000000x4", error="memory"),
    net("input-no-name", "--input", "2x4", error="expected NAME:SHAPE"),
    net("input-empty-name", "--input", ":2x4", error="expected NAME:SHAPE"),
    net("input-no-shape", "--input", "x:", error="cannot parse shape"),
    net("input-unknown-dtype", "--input", "x:2x4:float33", error="unknown dtype"),
    net("input-two-dtypes", "--input", "x:2x4:float32:float16", error="float16"),
    net("input-empty-range", "--input", "x:2x4:float32:[5,1)", error="range is empty"),
    net("input-open-range", "--input", "x:2x4:(0,1)", error="must include its low end"),
    net("input-two-ranges", "--input", "x:2x4:[0,1):[0,2)", error="two ranges"),
    net("input-nan-range", "--input", "x:2x4:[nan,1)", error="nan"),
    net("input-inf-range", "--input", "x:2x4:[0,inf)", error="inf"),
    net("input-text-range", "--input", "x:2x4:[a,b)", error="range"),
    net("input-int8-range", "--input", "x:2x4:int8:[0,1000)", error="int8"),
    net("input-uint8-negative", "--input", "x:2x4:uint8:[-5,3)", error="uint8"),
    net("input-int-inf-range", "--input", "x:2x4:int64:[0,inf)", error="inf"),
    net("input-bool-range", "--input", "x:2x4:bool:[0,3)", error="bool"),
    net("input-unknown-name", "--input", "y:2x4", error="y", hint="forward"),
    net("input-twice", "--input", "x:2x4", "--input", "x:3x4", error="twice"),
    net("input-wrong-width", "--input", "x:2x5", code=3, error="x:2x5:float32"),
    net("input-int-for-linear", "--input", "x:2x4:int64", code=3, error="x:2x4:int64"),
    net("input-file-missing", "--input", "x={tmp}/nope.npy", error="nope.npy"),
    net("input-file-suffix", "--input", "x=" + F + "/data.txt", error="not a data file"),
    net("input-file-garbage", "--input", "x=" + F + "/garbage.npy", error="garbage.npy"),
    net("input-file-objects", "--input", "x=" + F + "/objects.npy", error="objects.npy"),
    net("input-file-pickle", "--input", "x=" + F + "/pickle.npy", error="pickle.npy"),
    net("input-file-pickle-pt", "--input", "x=" + F + "/payload.pt", error="payload.pt"),
    net("input-file-strings", "--input", "x=" + F + "/strings.npy", error="strings.npy"),
    net("input-npz-no-such-array", "--input", "x=" + F + "/two.npz", error="two.npz"),
    net("input-pt-no-such-tensor", "--input", "x=" + F + "/two_tensors.pt", error="two_tensors"),
    net("input-file-fifo", "--input", "x=" + F + "/fifo.npy", error="fifo.npy"),
    net("input-file-wrong-shape", "--input", "x=" + F + "/wrong_shape.npy", code=3, error="x="),
    net("input-file-folder", "--input", "x=" + F + "/folder.onnx/x.npy", error="x.npy"),
    net("input-bare-npz-names", "--input", F + "/two.npz", error="is not a parameter"),
    net("input-bad-name", "--input", "1x=" + F + "/x.npy", error="is not a name"),
]
WEIGHTS = [
    net("weights-missing", "--weights", "{tmp}/nope.pt", error="nope.pt"),
    net("weights-folder", "--weights", F + "/hf_empty", error="hf_empty"),
    net("weights-text", "--weights", F + "/weights.txt", error="weights.txt"),
    net("weights-empty", "--weights", F + "/empty.pt", error="empty.pt"),
    net("weights-truncated", "--weights", F + "/truncated.pt", error="truncated.pt"),
    net("weights-pickle", "--weights", F + "/payload.pt", error="payload.pt"),
    net("weights-other-keys", "--weights", F + "/other_keys.pt", error="encoder.weight"),
    net("weights-no-state-dict", "--weights", F + "/no_state_dict.pt", error="epoch"),
    net("weights-wrong-shapes", "--weights", F + "/narrow.pt", error="fc1.weight"),
    net("weights-int64-into-float", "--weights", F + "/int64.pt", error="int64"),
    net("weights-bad-safetensors", "--weights", F + "/bad.safetensors", error="bad.safetensors"),
    net("weights-huge-header", "--weights", F + "/huge_header.safetensors", error="huge_header"),
    net("weights-onnx-file", "--weights", F + "/good.onnx", error="good.onnx"),
]
DYNAMIC = [
    net("dynamic-no-axis", "--dynamic", "x", error="cannot parse --dynamic"),
    net("dynamic-axis-text", "--dynamic", "x:a", error="is not a number"),
    net("dynamic-unknown-input", "--dynamic", "y:0", error="y"),
    net("dynamic-axis-too-big", "--dynamic", "x:5", error="only 2 dims"),
    net("dynamic-negative-axis", "--dynamic", "x:-1", error="negative"),
    net("dynamic-bad-label", "--dynamic", "x:1=9bad", error="not an identifier"),
    net("dynamic-empty", "--dynamic", "", error="cannot parse --dynamic"),
    net("dynamic-upper-batch", "--dynamic", "BATCH", error="BATCH"),
    net("dynamic-two-labels", "--dynamic", "x:0=a", "--dynamic", "x:0=b", error="x"),
    net("dynamic-name-not-id", "--dynamic", "1x:0", error="cannot parse --dynamic"),
]
OPSETS = [
    net("opset-zero", "--opset", "0", error="opset"),
    net("opset-negative", "--opset", "-1", error="opset"),
    net("opset-future", "--opset", "99", error="opset"),
    net("opset-dynamo-too-old", "--exporter", "dynamo", "--opset", "6", error="opset"),
    net("opset-torchscript-future", "--exporter", "torchscript", "--opset", "30", error="opset"),
    net("opset-torchscript-too-old", "--exporter", "torchscript", "--opset", "3", error="opset"),
    net("opset-text", "--opset", "latest", error="opset"),
]
TOLERANCES = [
    net("atol-text", "--atol", "tiny", error="--atol"),
    net("rtol-text", "--rtol", "abc", error="--rtol"),
    net("atol-negative", "--atol", "-1", error="--atol"),
    net("rtol-negative", "--rtol", "-0.5", error="--rtol"),
    net("atol-nan", "--atol", "nan", error="--atol"),
    net("atol-inf", "--atol", "inf", error="--atol"),
    net("rtol-overflow", "--rtol", "1e400", error="--rtol"),
    net("atol-empty-name", "--atol", "=1e-3", error="--atol"),
    net("atol-empty-value", "--atol", "logits=", error="--atol"),
    net("atol-unknown-output", "--atol", "logits=1e-3", error="logits", hint="output"),
    net("rtol-unknown-output", "--rtol", "nope=1e-2", error="nope", hint="output"),
]
OUTPUTS = [
    net("output-not-onnx", "-o", "{tmp}/out/model.txt", error="does not end in .onnx"),
    net("output-is-folder", "-o", F + "/folder.onnx", error="is a folder"),
    net("output-under-a-file", "-o", F + "/a_file/m.onnx", error="a_file"),
    net("output-empty", "-o", "", error="output"),
    net("output-in-proc", "-o", "/proc/exportkit/m.onnx", error="/proc/exportkit"),
    net("json-is-folder", "--json", F + "/hf_empty", error="hf_empty"),
    net("json-under-a-file", "--json", F + "/a_file/r.json", error="a_file"),
    net("junit-under-a-file", "--junit", F + "/a_file/j.xml", error="a_file"),
    net("json-empty", "--json", "", error="--json"),
    net(
        "json-is-the-model",
        "-o",
        "{tmp}/out/same.onnx",
        "--json",
        "{tmp}/out/same.onnx",
        error="same.onnx",
    ),
    net("seed-huge", "--seed", "99999999999999999999999", error="--seed"),
]
FILES = [
    summary("summary-missing", "{tmp}/nope.onnx", error="nope.onnx"),
    summary("summary-folder", F + "/folder.onnx", error="is a folder"),
    summary("summary-empty", F + "/empty.onnx", error="is empty"),
    summary("summary-text", F + "/text.onnx", error="text file"),
    summary("summary-json", F + "/report.json", error="report.json"),
    summary("summary-textproto", F + "/model.textproto", error="model.textproto"),
    summary("summary-fifo", F + "/fifo.onnx", error="fifo.onnx"),
    summary("summary-truncated", F + "/truncated.onnx", error="truncated.onnx"),
    summary("summary-random", F + "/random.onnx", error="random.onnx"),
    summary("summary-no-data", F + "/no_data.onnx", error="no_data.onnx.data"),
    summary("summary-short-data", F + "/short_data.onnx", error="short_data.onnx.data"),
    summary("summary-depth-negative", F + "/good.onnx", "--depth", "-1", error="--depth"),
    summary("summary-columns", F + "/good.onnx", "--columns", "name,colour", error="colour"),
    summary("summary-dim-no-value", F + "/good.onnx", "--dim", "batch", error="batch"),
    summary("summary-dim-text", F + "/good.onnx", "--dim", "batch=x", error="batch=x"),
    summary("summary-dim-negative", F + "/good.onnx", "--dim", "batch=-1", error="batch=-1"),
    summary("summary-dim-zero", F + "/good.onnx", "--dim", "batch=0", error="batch=0"),
    check("check-missing", "{tmp}/nope.onnx", error="no such file"),
    check("check-folder", F + "/folder.onnx", error="folder.onnx"),
    check("check-empty", F + "/empty.onnx", error="empty.onnx"),
    check("check-text", F + "/text.onnx", error="not an ONNX model"),
    check("check-json", F + "/report.json", "--input", "x:2x4", error="report.json"),
    check("check-fifo", F + "/fifo.onnx", "--input", "x:2x4", error="fifo.onnx"),
    check("check-truncated", F + "/truncated.onnx", error="truncated.onnx"),
    check("check-no-data", F + "/no_data.onnx", error="no_data.onnx.data"),
    check("check-other-input-name", F + "/other_name.onnx", "--input", "x:2x4", error="inp"),
    check("check-other-rank", F + "/other_rank.onnx", "--input", "x:2x4", error="rank"),
    check("check-other-dtype", F + "/other_dtype.onnx", "--input", "x:2x4", error="int64"),
    check("check-bad-spec", F + "/good.onnx", "--input", "x:2x4", "--atol", "x", error="--atol"),
    view("view-missing", "{tmp}/nope.onnx", error="nope.onnx"),
    view("view-folder", F + "/folder.onnx", error="folder.onnx"),
    view("view-text", F + "/text.onnx", error="text.onnx"),
    view("view-json", F + "/report.json", error="report.json"),
    view("view-fifo", F + "/fifo.onnx", error="fifo.onnx"),
    view("view-truncated", F + "/truncated.onnx", error="truncated.onnx"),
    view("view-no-data", F + "/no_data.onnx", error="no_data.onnx.data"),
]
NETWORK = [
    view("port-too-big", F + "/good.onnx", "--port", "70000", error="70000"),
    view("port-negative", F + "/good.onnx", "--port", "-1", error="-1"),
    view("port-text", F + "/good.onnx", "--port", "http", error="--port"),
    view("port-taken", F + "/good.onnx", "--port", "{port}", error="already in use"),
    view("host-foreign", F + "/good.onnx", "--host", "192.0.2.1", error="192.0.2.1"),
    view("host-unresolvable", F + "/good.onnx", "--host", "no-such-host.invalid", error="no-such"),
    view("host-bad-ip", F + "/good.onnx", "--host", "999.1.1.1", error="999.1.1.1"),
    view("host-empty", F + "/good.onnx", "--host", "", error="--host"),
    view(
        "port-taken-before-export",
        "{models}/mlp.py:Net",
        "--input",
        "x:2x4",
        "--port",
        "{port}",
        error="already in use",
    ),
]
ARGPARSE = [
    usage("command-unknown", "frobnicate", error="frobnicate"),
    usage("command-missing", error="command"),
    usage("command-typo", "exprot", "{models}/mlp.py:Net", error="exprot"),
    usage("export-no-spec", "export", error="SPEC"),
    usage("export-extra-arg", "export", "{models}/mlp.py:Net", "extra", error="extra"),
    usage("export-unknown-option", "export", "{models}/mlp.py:Net", "--bogus", error="--bogus"),
    usage("export-bad-exporter", "export", "{models}/mlp.py:Net", "--exporter", "tf", error="tf"),
    usage("export-bad-simplifier", "export", "{models}/mlp.py:Net", "--simplifier", "x", error="x"),
    usage("export-seed-text", "export", "{models}/mlp.py:Net", "--seed", "abc", error="abc"),
    usage("export-input-no-value", "export", "{models}/mlp.py:Net", "--input", error="--input"),
    usage("summary-no-file", "summary", error="FILE.onnx"),
    usage("summary-bad-format", "summary", F + "/good.onnx", "--format", "xml", error="xml"),
    usage("summary-depth-text", "summary", F + "/good.onnx", "--depth", "two", error="two"),
    usage("check-no-spec", "check", F + "/good.onnx", error="SPEC"),
    usage("global-unknown-option", "--verbose", "export", "{models}/mlp.py:Net", error="--verbose"),
]
# The flags of the later stages (variants, baseline, decode, report files, diff, ci): the same
# contract as every other value.
LATER = [
    usage("variant-unknown", "export", "{models}/mlp.py:Net", "--variant", "int4", error="int4"),
    usage("int8-method-unknown", "export", "{models}/mlp.py:Net", "--int8", "fast", error="fast"),
    net(
        "calibrate-missing", "--variant", "int8", "--calibrate", "{tmp}/nope.npz", error="nope.npz"
    ),
    net(
        "calibrate-not-data",
        "--variant",
        "int8",
        "--calibrate",
        F + "/readme.md",
        error="readme.md",
    ),
    net("provider-not-installed", "--provider", "NoSuchExecutionProvider", error="NoSuch"),
    net("min-cosine-above-1", "--variant", "int8", "--min-cosine", "2", error="cosine"),
    net("latency-budget-negative", "--latency-budget", "-1", error="latency"),
    net("baseline-missing", "--baseline", "{tmp}/old.onnx", error="old.onnx"),
    net("baseline-not-onnx", "--baseline", F + "/readme.md", error="readme.md"),
    net("max-opset-zero", "--baseline", F + "/good.onnx", "--max-opset", "0", error="opset"),
    net("steps-negative", "--steps", "-1", error="steps"),
    net("state-no-equals", "--state", "past", error="--state"),
    net("state-unknown-names", "--state", "past=present", error="past"),
    net("html-is-a-folder", "--html", F + "/folder.onnx", error="folder"),
    net(
        "markdown-is-the-output",
        "--markdown",
        "{tmp}/same.onnx",
        "-o",
        "{tmp}/same.onnx",
        error="-o",
    ),
    Case(
        "diff-missing", ("diff", F + "/good.onnx", "{tmp}/nope.onnx"), 2, "nope.onnx", plant=False
    ),
    Case("diff-text", ("diff", F + "/text.onnx", F + "/good.onnx"), 2, "text.onnx", plant=False),
    Case(
        "diff-dim-not-a-number",
        ("diff", F + "/good.onnx", F + "/good.onnx", "--dim", "batch=x"),
        2,
        "batch=x",
        plant=False,
    ),
    Case("ci-no-config", ("ci", "{tmp}/empty_project"), 2, "empty_project", plant=False),
]
CASES = [
    *SPECS,
    *INPUTS,
    *WEIGHTS,
    *DYNAMIC,
    *OPSETS,
    *TOLERANCES,
    *OUTPUTS,
    *FILES,
    *NETWORK,
    *ARGPARSE,
    *LATER,
]

# Cases that still break the contract, with the part of exportkit that owes the fix. Strict: a
# fixed case fails here until its line is removed, so the table never hides a regression.
KNOWN: dict[str, str] = {}
PARAMS = [
    pytest.param(c, id=c.id, marks=[pytest.mark.xfail(strict=True, reason=KNOWN[c.id])])
    if c.id in KNOWN
    else pytest.param(c, id=c.id)
    for c in CASES
]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_bad_files(tmp_path_factory.mktemp("bad_files"))


@pytest.fixture(scope="module")
def taken_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


@pytest.fixture
def stop_a_view_that_starts(request: pytest.FixtureRequest) -> Iterator[None]:
    """A view that wrongly starts serving would wait for Ctrl-C: send it one after 4 s."""
    if request.node.callspec.params["case"].argv[:1] != ("view",):
        yield
        return
    timer = threading.Timer(4, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    yield
    timer.cancel()


def _plant(argv: list[str], tmp: Path) -> dict[Path, bytes]:
    """Good files at every output target the command has; add the flags the case leaves out."""
    flags = {"export": ("-o", "--json", "--junit"), "view": ("-o", "--json", "--junit")}
    flags["check"] = ("--json", "--junit")
    planted: dict[Path, bytes] = {}
    for flag in flags.get(argv[0], ()):
        if flag in argv:
            path = Path(argv[argv.index(flag) + 1])
            if path.is_file():
                planted[path] = path.read_bytes()
            continue
        path = tmp / "out" / TARGETS[flag]
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(GOOD[flag])
        planted[path] = GOOD[flag]
        argv += [flag, str(path)]
    return planted


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse exits by itself
        code = exc.code if isinstance(exc.code, int) else 2
    return code, capsys.readouterr().err


@pytest.mark.parametrize("case", PARAMS)
def test_bad_input_is_refused_cleanly(
    case: Case,
    files: Path,
    taken_port: int,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    stop_a_view_that_starts: None,
) -> None:
    fill = {
        "files": str(files),
        "tmp": str(tmp_path),
        "models": str(MODELS),
        "port": str(taken_port),
    }
    argv = [a.format(**fill) for a in case.argv]
    planted = _plant(argv, tmp_path) if case.plant else {}
    before = {p.parent: _names(p.parent) for p in planted}

    code, err = _run(argv, capsys)

    problems = _broken_contract(case, code, err)
    for path, content in planted.items():
        if (code == 2 or path.suffix != ".xml") and path.read_bytes() != content:
            problems.append(f"{path.name} was touched")  # a stage failure (3) may write --junit
    for folder, names in before.items():
        if _names(folder) != names:
            problems.append(f"files left behind: {_names(folder)}")
    if (files / MARKER).exists():
        problems.append("a pickle was unpickled")
    assert not problems, "; ".join(problems) + "\n--- stderr ---\n" + err


def _broken_contract(case: Case, code: int, err: str) -> list[str]:
    """What in the exit code and stderr breaks the contract (README: Exit codes)."""
    problems = []
    lines = err.rstrip("\n").splitlines() or [""]
    if "Traceback" in err:
        problems.append("traceback")
    if code != case.code:
        problems.append(f"exit {code}, expected {case.code}")
    errors = [ln for ln in lines if ln.startswith("error:")]
    hints = [ln for ln in lines if ln.startswith("hint:")]
    if errors != lines[-2:-1] or hints != lines[-1:] or len(lines[-1]) <= len("hint: "):
        problems.append("stderr does not end in one error: line and one hint: line")
    elif case.error.lower() not in lines[-2].lower():
        problems.append(f"error line does not name {case.error!r}")
    elif case.hint.lower() not in lines[-1].lower():
        problems.append(f"hint line does not say {case.hint!r}")
    if code == 2 and re.search(r"^[✓✗] export\b", err, re.M):
        problems.append("bad input reached the export stage")
    return problems


def test_the_table_is_large_and_its_ids_unique() -> None:
    assert len(CASES) >= 100
    assert len({c.id for c in CASES}) == len(CASES)
    assert set(KNOWN) <= {c.id for c in CASES}
