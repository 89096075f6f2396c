"""Model specs: every way to name a model, and the errors a user meets."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from exportkit.errors import LoadError, SpecError, WeightsError
from exportkit.inputs import forward_parameters, make_inputs, run_model
from exportkit.loading import ModelSpec, load_model
from tests.models import zoo
from tests.models.archives import save_exported, save_torchscript


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


# --- saved-model archives -------------------------------------------------------------------


def test_torchscript_archive(tmp_path: Path) -> None:
    path = save_torchscript(zoo.TwoTowers().eval(), tmp_path / "towers.pt")
    loaded = load_model(str(path))
    assert loaded.kind == "torchscript" and loaded.name == "towers"
    assert [p.name for p in forward_parameters(loaded.module)] == ["image", "tokens"]
    image, tokens = torch.randn(2, 3, 8, 8), torch.randint(0, 50, (2, 5))
    expected = zoo.TwoTowers().eval()
    expected.load_state_dict(loaded.module.inner.state_dict())
    assert torch.allclose(loaded.module(image=image, tokens=tokens), expected(image, tokens))


def test_exported_archive_brings_inputs_and_dynamic_dims(tmp_path: Path) -> None:
    model = zoo.TwoTowers().eval()
    args = (torch.randn(3, 3, 16, 16), torch.randint(0, 50, (3, 7)))
    loaded = load_model(str(save_exported(model, args, tmp_path / "towers.pt2")))
    assert loaded.kind == "exported" and loaded.suggested is not None
    ex = make_inputs(loaded.module, suggested=loaded.suggested)
    assert ex.source == "archive"
    assert torch.equal(ex.tensors["image"], args[0])
    assert dict(ex.dynamic) == {"image": {0: "batch"}, "tokens": {0: "batch"}}
    bigger = ex.resample({"batch": 5}, seed=1)
    assert torch.allclose(
        loaded.module(**bigger.tensors), model(*bigger.tensors.values()), atol=1e-6
    )


def test_archive_that_is_a_state_dict(tmp_path: Path) -> None:
    torch.save(zoo.MLP().state_dict(), tmp_path / "weights.pt")
    with pytest.raises(SpecError) as info:
        load_model(str(tmp_path / "weights.pt"))
    assert "not a TorchScript archive" in info.value.message
    assert info.value.hint is not None and "--weights" in info.value.hint


def test_archives_take_no_kwargs_or_weights(tmp_path: Path) -> None:
    path = save_torchscript(zoo.MLP().eval(), tmp_path / "mlp.pt")
    with pytest.raises(SpecError, match="no constructor arguments"):
        load_model(str(path), kwargs={"width": 3})
    with pytest.raises(SpecError, match="weights inside"):
        load_model(str(path), weights=path)


# --- --weights ------------------------------------------------------------------------------


def _save(kind: str, state: dict[str, torch.Tensor], path: Path) -> Path:
    if kind == "safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path.with_suffix(".safetensors")))
        return path.with_suffix(".safetensors")
    if kind == "checkpoint":
        torch.save({"epoch": 7, "optimizer": {"lr": 0.1}, "model_state_dict": state}, path)
    elif kind == "lightning":
        torch.save({"state_dict": {f"model.{k}": v for k, v in state.items()}}, path)
    else:
        torch.save(state, path)
    return path


@pytest.mark.parametrize("kind", ["state_dict", "checkpoint", "lightning", "safetensors"])
def test_weights_forms(kind: str, tmp_path: Path) -> None:
    trained = zoo.MLP()
    path = _save(kind, trained.state_dict(), tmp_path / "w.pt")
    loaded = load_model("tests/models/zoo.py:MLP", weights=path)
    assert torch.equal(loaded.module.net[0].weight, trained.net[0].weight)
    assert any("4 tensors" in n for n in loaded.notes)


def test_weights_mismatch_lists_keys_and_strict_flag(tmp_path: Path) -> None:
    state = zoo.MLP().state_dict()
    state.pop("net.2.bias")
    state["extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "w.pt")
    with pytest.raises(WeightsError) as info:
        load_model("tests/models/zoo.py:MLP", weights=tmp_path / "w.pt")
    assert "1 missing: net.2.bias" in info.value.message
    assert "1 unexpected: extra.weight" in info.value.message
    assert "--no-strict-weights" in (info.value.hint or "")
    loose = load_model("tests/models/zoo.py:MLP", weights=tmp_path / "w.pt", strict_weights=False)
    assert any("missing" in n and "net.2.bias" in n for n in loose.notes)


def test_weights_of_another_shape(tmp_path: Path) -> None:
    state = zoo.MLP().state_dict()
    state["net.0.weight"] = torch.zeros(32, 13)
    torch.save(state, tmp_path / "w.pt")
    with pytest.raises(WeightsError, match=r"net.0.weight \(32, 13\) vs model \(32, 12\)"):
        load_model("tests/models/zoo.py:MLP", weights=tmp_path / "w.pt", strict_weights=False)


def test_weights_never_unpickle_objects(tmp_path: Path) -> None:
    torch.save(zoo.MLP(), tmp_path / "whole.pt")
    with pytest.raises(WeightsError, match="pickled Python objects"):
        load_model("tests/models/zoo.py:MLP", weights=tmp_path / "whole.pt")
    with pytest.raises(WeightsError, match="does not exist"):
        load_model("tests/models/zoo.py:MLP", weights=tmp_path / "nope.pt")


def test_building_is_seeded() -> None:
    a = load_model("tests/models/zoo.py:MLP", seed=0).module.net[0].weight
    b = load_model("tests/models/zoo.py:MLP", seed=0).module.net[0].weight
    c = load_model("tests/models/zoo.py:MLP", seed=1).module.net[0].weight
    assert torch.equal(a, b) and not torch.equal(a, c)


# --- HuggingFace configs --------------------------------------------------------------------


def test_hf_bert_gpt2_vit_from_configs(hf_folders: dict[str, Path]) -> None:
    expected = {
        "bert": (
            "BertModel",
            [
                "input_ids:2x16:int64:[0,99)",
                "attention_mask:2x16:int64:[1,2)",
                "token_type_ids:2x16:int64:[0,2)",
            ],
        ),
        "gpt2": (
            "GPT2LMHeadModel",
            ["input_ids:2x16:int64:[0,99)", "attention_mask:2x16:int64:[1,2)"],
        ),
        "vit": ("ViTModel", ["pixel_values:2x3x32x32:float32"]),
    }
    for name, (cls, lines) in expected.items():
        loaded = load_model(f"hf:{hf_folders[name]}")
        assert type(loaded.module).__name__ == cls and not loaded.module.training
        ex = make_inputs(loaded.module, suggested=loaded.suggested)
        assert ex.source == "config" and ex.describe() == lines
        run_model(loaded.module, ex)
        assert any("randomly initialized" in n for n in loaded.notes)


def test_hf_folder_without_prefix_and_config_overrides(hf_folders: dict[str, Path]) -> None:
    loaded = load_model(str(hf_folders["bert"]), kwargs={"num_hidden_layers": 1})
    assert loaded.kind == "hf" and len(loaded.module.encoder.layer) == 1
    with pytest.raises(SpecError, match="no attribute 'depth'"):
        load_model(f"hf:{hf_folders['bert']}", kwargs={"depth": 1})


def test_hf_weights_are_loaded_when_present(hf_folders: dict[str, Path], tmp_path: Path) -> None:
    first = load_model(f"hf:{hf_folders['vit']}", seed=3).module
    first.save_pretrained(tmp_path / "vit")
    again = load_model(f"hf:{tmp_path / 'vit'}", seed=4)
    assert any("weights from" in n for n in again.notes)
    key = "embeddings.patch_embeddings.projection.weight"
    assert torch.equal(again.module.state_dict()[key], first.state_dict()[key])


def test_hf_errors(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="does not exist"):
        load_model(f"hf:{tmp_path / 'nope'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SpecError, match="holds no config"):
        load_model(f"hf:{tmp_path / 'empty'}")
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "config.json").write_text('{"model_type": "no-such-architecture"}')
    with pytest.raises(SpecError, match="transformers cannot read"):
        load_model(f"hf:{tmp_path / 'odd'}")


@pytest.mark.parametrize("name", ["t5", "llama", "clip", "whisper", "wav2vec2"])
def test_hf_more_architectures(name: str, tmp_path: Path) -> None:
    from tests.models.hf_configs import more_configs

    config, lines = more_configs()[name]
    config.save_pretrained(tmp_path / name)  # type: ignore[attr-defined]
    loaded = load_model(f"hf:{tmp_path / name}")
    ex = make_inputs(loaded.module, suggested=loaded.suggested)
    assert ex.describe() == lines
    run_model(loaded.module, ex)


def test_archive_and_hf_spec_forms(hf_folders: dict[str, Path]) -> None:
    assert ModelSpec.parse("out/model.pt2").kind == "exported"
    assert ModelSpec.parse("out/model.pt").kind == "torchscript"
    hf = ModelSpec.parse("hf:some/folder")
    assert (hf.kind, hf.target, hf.name) == ("hf", "some/folder", "folder")
    bare = ModelSpec.parse(str(hf_folders["vit"]))  # a folder holding config.json
    assert (bare.kind, bare.name) == ("hf", "vit")
    with pytest.raises(SpecError, match="names no folder"):
        ModelSpec.parse("hf:")
    with pytest.raises(SpecError) as info:
        ModelSpec.parse("models/net.py")
    assert info.value.hint == "add the class or function to use: models/net.py:ClassName"


def test_a_spec_builds_the_same_weights_on_every_load_in_one_process() -> None:
    """mlp.py builds a model at import time: only the first load imports it, yet both loads must
    give the weights `--seed` promises (export then check in one process compare the same model)."""
    import torch

    from exportkit.loading import load_model

    spec = str(Path(__file__).parent / "models" / "mlp.py") + ":Net"
    first = load_model(spec, seed=0).module
    second = load_model(spec, seed=0).module
    assert all(torch.equal(a, b) for a, b in zip(first.parameters(), second.parameters()))
