"""Model specs: every way to name a model, and the errors a user meets."""

from __future__ import annotations

from pathlib import Path

import pytest
from torch import nn

from exportkit.errors import LoadError, SpecError
from exportkit.loading import ModelSpec, load_model


def test_spec_forms() -> None:
    s = ModelSpec.parse("path/to/model.py:Net(depth=3, width=64)")
    assert (s.kind, s.target, s.name, dict(s.kwargs)) == (
        "file",
        "path/to/model.py",
        "Net",
        {"depth": 3, "width": 64},
    )
    m = ModelSpec.parse("pkg.mod:make")
    assert (m.kind, m.target, m.name, m.called) == ("module", "pkg.mod", "make", False)


@pytest.mark.parametrize(
    "text", ["model.py", "model.py:", ":Net", "model.py:Net(__import__('os'))"]
)
def test_bad_spec_text(text: str) -> None:
    with pytest.raises(SpecError) as info:
        ModelSpec.parse(text)
    assert info.value.hint


def test_class_factory_and_instance(models: Path) -> None:
    cls = load_model(f"{models}/mlp.py:Net")
    assert isinstance(cls.module, nn.Module) and not cls.module.training
    assert load_model(f"{models}/mlp.py:make_net").module.fc1.out_features == 5
    assert load_model(f"{models}/mlp.py:net").module.fc1.out_features == 6
    assert load_model(f"{models}/mlp.py:Wide(7)").module.fc.out_features == 7
    assert load_model(f"{models}/mlp.py:Wide", kwargs={"width": 9}).module.fc.out_features == 9


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="does not exist"):
        load_model(f"{tmp_path}/nope.py:Net")


def test_missing_attribute_lists_what_is_there(models: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_model(f"{models}/mlp.py:Nett")
    assert "Net" in info.value.message and "make_net" in info.value.message
    assert info.value.hint is not None and "mlp.py:" in info.value.hint


def test_constructor_needs_arguments(models: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_model(f"{models}/mlp.py:Wide")
    assert "width" in info.value.message and "depth" not in info.value.message


def test_not_a_model(models: Path) -> None:
    with pytest.raises(SpecError, match="not a model"):
        load_model(f"{models}/mlp.py:NOT_A_MODEL")


def test_import_error_names_file_and_line(models: Path) -> None:
    with pytest.raises(LoadError) as info:
        load_model(f"{models}/import_error.py:Net")
    assert "import_error.py:4" in info.value.message and "on purpose" in info.value.message


def test_sibling_imports_work(tmp_path: Path) -> None:
    (tmp_path / "layers.py").write_text("from torch import nn\nclass Block(nn.Linear):\n    pass\n")
    (tmp_path / "model.py").write_text(
        "from torch import nn\nfrom layers import Block\nclass M(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n        self.b = Block(2, 2)\n"
        "    def forward(self, x):\n        return self.b(x)\n"
    )
    assert isinstance(load_model(f"{tmp_path}/model.py:M").module.b, nn.Linear)
