"""Input inference: from forward's signature and the layer that first consumes each argument."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from exportkit.errors import InputSpecError
from exportkit.inputs import InputSpec, make_inputs, run_model
from exportkit.loading import load_model
from tests.models import zoo
from tests.models.archives import save_torchscript

CASES = {
    "MLP": ["x:2x12:float32"],
    "FlatMLP": ["x:2x784:float32"],
    "CNN1d": ["signal:2x6x64:float32"],
    "Unsqueezed1d": ["wave:2x64:float32"],
    "CNN2d": ["image:2x3x32x32:float32"],
    "LeNet": ["x:2x1x28x28:float32"],
    "CNN3d": ["clip:2x2x8x32x32:float32"],
    "LSTMTagger": ["seq:2x16x10:float32"],
    "SeqFirstGRU": ["x:16x2x7:float32"],
    "PlainRNN": ["x:2x16x5:float32"],
    "PermutedLSTM": ["feats:2x20x16:float32"],
    "TextClassifier": ["tokens:2x16:int64:[0,1000)"],
    "Encoder": ["ids:2x16:int64:[0,500)", "padding:2x16:bool:[0,1)"],
    "FeatureEncoder": ["src:16x2x24:float32"],
    "Attention": ["q:2x16x16:float32", "kv:2x16x16:float32"],
    "NormFirst": ["x:2x16x18:float32"],
    "Masked": ["x:2x6:float32", "mask:2x6:bool"],
    "TwoTowers": ["image:2x3x32x32:float32", "tokens:2x16:int64:[0,50)"],
    "UNet": ["img:2x1x32x32:float32"],
    "Seq2Seq": ["src:2x16:int64:[0,100)", "tgt:2x16:int64:[0,120)"],
    "WithLengths": ["ids:2x16:int64:[0,30)", "lengths:2:float32"],
    "CustomViT": ["x:2x3x224x224:float32"],  # its position embedding fits 224 only
    "CharCNN": ["chars:2x16:int64:[0,70)"],
    "Wav": ["audio:2x1x256:float32"],  # 64 and 128 samples are too short for its kernels
    # Iterates over dim 0 into an LSTMCell; a 2-D guess would crash torch's native cell code.
    "LSTMCellLoop": ["x:16x2x6:float32"],
    "Conv3dVideo": ["video:2x3x8x32x32:float32"],
    # The first guess (16 tokens) is rejected by the token Linear; the fix must still fit the norm.
    "Mixer": ["x:2x8x16:float32"],
    "RecSys": ["user:2x16:int64:[0,50)", "item:2x16:int64:[0,80)"],
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_inferred_inputs_run_and_are_reported(name: str) -> None:
    model = getattr(zoo, name)().eval()
    ex = make_inputs(model)
    assert ex.source == "inferred"
    assert ex.describe() == CASES[name]
    run_model(model, ex)  # the guess was confirmed: it runs
    assert len(ex.notes) == len(CASES[name])
    assert all(n.startswith("inferred --input ") for n in ex.notes)


def test_inferred_lines_parse_back_to_the_same_inputs() -> None:
    model = zoo.Encoder().eval()
    ex = make_inputs(model)
    again = make_inputs(model, [InputSpec.parse(line) for line in ex.describe()])
    assert again.describe() == ex.describe()
    assert all(torch.equal(ex.tensors[n], again.tensors[n]) for n in ex.tensors)


def test_notes_name_the_consuming_layer() -> None:
    ex = make_inputs(zoo.PermutedLSTM().eval())
    assert "lstm (LSTM" in ex.notes[0] and "reshaping" in ex.notes[0]
    masked = make_inputs(zoo.Masked().eval())
    assert "masked_fill" in masked.notes[1]


def test_integer_inputs_stay_below_the_vocabulary() -> None:
    ex = make_inputs(zoo.TextClassifier().eval(), seed=5)
    assert int(ex.tensors["tokens"].max()) < 1000 and ex.tensors["tokens"].dtype == torch.int64


def test_cannot_infer_says_what_it_tried_and_what_to_write() -> None:
    with pytest.raises(InputSpecError) as info:
        make_inputs(zoo.Opaque())
    assert "tried --input x:2x16:float32" in info.value.message
    assert "no known layer" in info.value.message
    assert info.value.hint is not None and "--input x:" in info.value.hint


def test_only_missing_inputs_are_inferred() -> None:
    model = zoo.TwoTowers().eval()
    ex = make_inputs(model, [InputSpec.parse("image:3x3x20x20")])
    assert ex.source == "given"
    assert ex.describe() == ["image:3x3x20x20:float32", "tokens:3x16:int64:[0,50)"]  # batch follows
    assert any("tokens" in n for n in ex.notes)


def test_no_inference_when_turned_off() -> None:
    with pytest.raises(InputSpecError) as info:
        make_inputs(zoo.MLP(), infer=False)
    assert "--input x:" in (info.value.hint or "")


def test_torchscript_archive_inputs_come_from_its_layers(tmp_path: Path) -> None:
    save_torchscript(zoo.TwoTowers().eval(), tmp_path / "towers.pt")
    loaded = load_model(str(tmp_path / "towers.pt"))
    ex = make_inputs(loaded.module)
    assert ex.describe() == CASES["TwoTowers"]
    assert run_model(loaded.module, ex).shape == (2, 8)


def test_float64_models_get_float64_inputs() -> None:
    model = nn.Sequential(nn.Linear(3, 2)).double().eval()
    assert make_inputs(model).describe() == ["input:2x3:float64"]
