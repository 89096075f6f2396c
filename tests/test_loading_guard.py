"""Loading holds its contract: a model inside a package imports, weights that would change
value are refused, and torch's noise over a file it cannot read stays off the terminal."""

from __future__ import annotations

import logging
import re
import sys
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

from exportkit.cli import main
from exportkit.errors import EXIT_STAGE_FAILED, EXIT_USAGE, LoadError, SpecError, WeightsError
from exportkit.loading import load_model

NET = """\
import torch
from torch import nn
from ..layers import Block


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = Block(4, 3)
        self.bn = nn.BatchNorm1d(3)

    def forward(self, x):
        return self.bn(self.block(x))
"""


@pytest.fixture
def package(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """src/<pkg>/models/net.py importing ``from ..layers import Block``; the usual repository."""
    name = f"pkg_{uuid.uuid4().hex[:8]}"  # unique: packages stay imported for the session
    src = tmp_path / "src"
    (src / name / "models").mkdir(parents=True)
    (src / name / "__init__.py").write_text("")
    (src / name / "layers.py").write_text(
        "from torch import nn\nclass Block(nn.Linear):\n    pass\n"
    )
    (src / name / "models" / "__init__.py").write_text("")
    (src / name / "models" / "net.py").write_text(NET)
    yield src, name
    for key in [k for k in sys.modules if k == name or k.startswith(f"{name}.")]:
        del sys.modules[key]


# --- a model inside a package -----------------------------------------------------------------


def test_model_in_a_package_imports_with_its_relative_imports(
    package: tuple[Path, str], caplog: pytest.LogCaptureFixture
) -> None:
    src, name = package
    path_before = list(sys.path)
    with caplog.at_level(logging.INFO, logger="exportkit.loading"):
        loaded = load_model(f"{src}/{name}/models/net.py:Net")
    assert type(loaded.module).__module__ == f"{name}.models.net"
    assert type(loaded.module.block).__module__ == f"{name}.layers"
    assert loaded.module(torch.randn(2, 4)).shape == (2, 3)
    note = next(n for n in loaded.notes if n.startswith("import:"))
    assert f"{name}.models.net" in note and str(src.resolve()) in note
    assert any(f"{name}.models.net" in r.getMessage() for r in caplog.records)
    assert sys.path == path_before  # on the path only while loading


def test_model_in_a_package_exports_from_the_cli(
    package: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, name = package
    out = tmp_path / "net.onnx"
    spec = f"{src}/{name}/models/net.py:Net"
    code = main(["export", spec, "--input", "x:2x4", "-o", str(out), "--exporter", "torchscript"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert out.is_file()
    assert f"{name}.models.net" in captured.out + captured.err  # the note is in the report


def test_standalone_file_keeps_its_own_name(tmp_path: Path) -> None:
    stem = f"lonely_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{stem}.py").write_text(
        "from torch import nn\nclass Net(nn.Linear):\n    def __init__(self):\n"
        "        super().__init__(2, 2)\n"
    )
    loaded = load_model(f"{tmp_path}/{stem}.py:Net")
    assert type(loaded.module).__module__ == stem
    assert not any(n.startswith("import:") for n in loaded.notes)


def test_folder_that_is_not_a_python_name_imports_the_file_alone(tmp_path: Path) -> None:
    folder = tmp_path / "my-models"  # has __init__.py, but no import could name it
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    (folder / "layers.py").write_text("from torch import nn\nclass Block(nn.Linear):\n    pass\n")
    (folder / "model.py").write_text(
        "from torch import nn\nfrom layers import Block\nclass M(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n        self.b = Block(2, 2)\n"
    )
    assert isinstance(load_model(f"{folder}/model.py:M").module.b, nn.Linear)


def test_broken_relative_import_is_a_load_error_naming_the_file(
    package: tuple[Path, str],
) -> None:
    src, name = package
    (src / name / "models" / "bad.py").write_text("from ..nowhere import Block\n")
    with pytest.raises(LoadError) as info:
        load_model(f"{src}/{name}/models/bad.py:Net")
    assert info.value.exit_code == EXIT_STAGE_FAILED
    assert f"{name}.models.bad" in info.value.message and "nowhere" in info.value.message


def test_file_in_a_package_whose_init_fails_still_imports_alone(tmp_path: Path) -> None:
    name = f"pkg_{uuid.uuid4().hex[:8]}"
    folder = tmp_path / name
    folder.mkdir()
    (folder / "__init__.py").write_text("import not_installed_here  # an optional dependency\n")
    (folder / "net.py").write_text(
        "from torch import nn\nclass Net(nn.Linear):\n    def __init__(self):\n"
        "        super().__init__(2, 2)\n"
    )
    loaded = load_model(f"{folder}/net.py:Net")
    assert isinstance(loaded.module, nn.Linear)
    note = next(n for n in loaded.notes if n.startswith("import:"))
    assert "imported alone" in note and "not_installed_here" in note
    # With relative imports it cannot import alone: the package's own error is the one shown.
    (folder / "rel.py").write_text("from .net import Net\n")
    with pytest.raises(LoadError, match="not_installed_here"):
        load_model(f"{folder}/rel.py:Net")


def test_same_package_name_from_another_folder_is_refused(
    package: tuple[Path, str], tmp_path: Path
) -> None:
    src, name = package
    load_model(f"{src}/{name}/models/net.py:Net")
    other = tmp_path / "other"
    (other / name / "models").mkdir(parents=True)
    for part in ("__init__.py", "layers.py", "models/__init__.py", "models/net.py"):
        (other / name / part).write_text((src / name / part).read_text())
    with pytest.raises(SpecError) as info:
        load_model(f"{other}/{name}/models/net.py:Net")
    assert str(src.resolve()) in info.value.message and info.value.hint


# --- weights whose dtype does not fit ---------------------------------------------------------


MODEL = """\
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.bn = nn.BatchNorm1d(3)

    def forward(self, x):
        return self.bn(self.fc(x))
"""


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / f"weighed_{uuid.uuid4().hex[:8]}.py"
    path.write_text(MODEL)
    return path


def saved(tmp_path: Path, **changes: torch.Tensor) -> Path:
    """A state dict of the Net above, with some entries replaced."""
    torch.manual_seed(0)
    state = nn.ModuleDict({"fc": nn.Linear(4, 3), "bn": nn.BatchNorm1d(3)}).state_dict()
    state.update(changes)
    path = tmp_path / "weights.pt"
    torch.save(state, path)
    return path


@pytest.mark.parametrize(
    ("value", "dtype", "says"),
    [
        (torch.ones(3, 4, dtype=torch.int64), "int64", "integer or bool"),
        (torch.ones(3, 4, dtype=torch.bool), "bool", "integer or bool"),
        (torch.full((3, 4), 1e300, dtype=torch.float64), "float64", "overflow float32"),
        (torch.ones(3, 4, dtype=torch.complex64), "complex64", "imaginary part"),
    ],
)
def test_weights_that_would_change_value_are_refused(
    tmp_path: Path, model_file: Path, value: torch.Tensor, dtype: str, says: str
) -> None:
    weights = saved(tmp_path, **{"fc.weight": value})
    with pytest.raises(WeightsError) as info:
        load_model(f"{model_file}:Net", weights=weights)
    message = info.value.message
    assert "fc.weight" in message and f"{dtype} in the file" in message
    assert "float32 in the model" in message and says in message
    assert info.value.exit_code == EXIT_USAGE and info.value.hint


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_weights_load_exactly(
    tmp_path: Path, model_file: Path, dtype: torch.dtype
) -> None:
    half = torch.randn(3, 4).to(dtype)
    loaded = load_model(f"{model_file}:Net", weights=saved(tmp_path, **{"fc.weight": half}))
    assert torch.equal(loaded.module.fc.weight.detach(), half.float())
    assert f"weights: 1 tensors cast {str(dtype)[6:]} -> float32" in loaded.notes


def test_double_weights_round_to_float32_with_a_note(tmp_path: Path, model_file: Path) -> None:
    double = torch.randn(3, 4, dtype=torch.float64)
    loaded = load_model(f"{model_file}:Net", weights=saved(tmp_path, **{"fc.weight": double}))
    assert torch.equal(loaded.module.fc.weight.detach(), double.float())
    assert "weights: 1 tensors cast float64 -> float32" in loaded.notes


def test_float_counter_into_an_integer_buffer_only_when_whole(
    tmp_path: Path, model_file: Path
) -> None:
    whole = saved(tmp_path, **{"bn.num_batches_tracked": torch.tensor(3.0)})
    assert int(load_model(f"{model_file}:Net", weights=whole).module.bn.num_batches_tracked) == 3
    half = saved(tmp_path, **{"bn.num_batches_tracked": torch.tensor(3.5)})
    with pytest.raises(WeightsError, match=r"bn\.num_batches_tracked is float32 in the file"):
        load_model(f"{model_file}:Net", weights=half)


# --- one error line and one hint, whatever torch says ------------------------------------------

STAGE_LINE = re.compile(r"^[✓✗-] \S")  # the CLI's own progress lines


def refusal(err: str) -> list[str]:
    """stderr without the CLI's progress lines; must be exactly an error and a hint."""
    lines = [line for line in err.splitlines() if not STAGE_LINE.match(line)]
    assert len(lines) == 2, err
    assert lines[0].startswith("error: ") and lines[1].startswith("hint: "), err
    return lines


def pickle_named_pt2(tmp_path: Path) -> Path:
    path = tmp_path / "model.pt2"
    torch.save({"w": torch.zeros(2)}, path, _use_new_zipfile_serialization=False)
    return path


def unreadable_pt2(tmp_path: Path) -> Path:
    path = tmp_path / "model.pt2"
    path.write_bytes(b"PK\x03\x04" + b"\0" * 200)  # a zip header and nothing else
    return path


def broken_export_archive(tmp_path: Path) -> Path:
    path = tmp_path / "model.pt2"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("model/archive_format", "pt2")
        archive.writestr("model/version", "garbage")
    return path


def broken_torchscript(tmp_path: Path) -> Path:
    path = tmp_path / "model.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("model/code/__torch__.py", "garbage")
        archive.writestr("model/constants.pkl", b"\x80\x02garbage")
    return path


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (pickle_named_pt2, "it is a Python pickle"),
        (unreadable_pt2, "not a torch.export archive"),
        (broken_export_archive, "not a torch.export archive"),
        (broken_torchscript, "not a TorchScript archive"),
    ],
)
def test_files_torch_cannot_read_give_one_error_and_one_hint(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], make: object, says: str
) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    out = tmp_path / "out.onnx"
    out.write_bytes(b"an earlier good file")
    code = main(["export", str(path), "-o", str(out)])
    captured = capfd.readouterr()
    error, _ = refusal(captured.err)
    assert code == EXIT_USAGE
    assert says in error and len(error) < 300
    assert "Traceback" not in captured.err + captured.out
    assert "warnings above" not in error
    assert out.read_bytes() == b"an earlier good file"


def test_what_torch_printed_is_kept_for_debug(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    path = unreadable_pt2(tmp_path)
    with caplog.at_level(logging.DEBUG, logger="exportkit"), pytest.raises(SpecError):
        load_model(str(path))
    kept = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("exportkit"))
    assert "Traceback" in kept  # torch's stack, logged at DEBUG, not printed
    assert "Traceback" not in capfd.readouterr().err


def test_weights_file_torch_cannot_read(
    tmp_path: Path, model_file: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    weights = tmp_path / "weights.pt"
    weights.write_bytes(b"PK\x03\x04" + b"\0" * 200)
    code = main(["export", f"{model_file}:Net", "--input", "x:2x4", "--weights", str(weights)])
    captured = capfd.readouterr()
    error, _ = refusal(captured.err)
    assert code == EXIT_USAGE and "cannot read weights" in error and len(error) < 300


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda d: (d / "m.pt2").mkdir() or [str(d / "m.pt2")], "is a folder"),
        (lambda d: (d / "m.py").mkdir() or [f"{d / 'm.py'}:Net"], "is a folder"),
        (lambda d: (d / "m.pt").write_bytes(b"") or [str(d / "m.pt")], "an empty file"),
        (lambda d: (d / "m.pt2").write_bytes(b"") or [str(d / "m.pt2")], "an empty file"),
        (lambda d: (d / "w.pt").mkdir() or ["--weights", str(d / "w.pt")], "is a folder"),
        (lambda d: (d / "w.pt").write_bytes(b"") or ["--weights", str(d / "w.pt")], "is empty"),
    ],
    ids=["pt2-folder", "py-folder", "empty-pt", "empty-pt2", "weights-folder", "weights-empty"],
)
def test_files_that_are_not_files_are_bad_input(
    tmp_path: Path, model_file: Path, capfd: pytest.CaptureFixture[str], make: object, says: str
) -> None:
    args = make(tmp_path)  # type: ignore[operator]
    if args[0] == "--weights":
        args = [f"{model_file}:Net", "--input", "x:2x4", *args]
    code = main(["export", *args, "-o", str(tmp_path / "out.onnx")])
    error, _ = refusal(capfd.readouterr().err)
    assert code == EXIT_USAGE and says in error
    assert not (tmp_path / "out.onnx").exists()
