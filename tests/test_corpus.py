"""The corpus: real architectures exported through the public API with dynamic dims, validated at
several sizes against eager PyTorch on onnxruntime.

Third-party ones come from ``transformers`` (tiny configs, no network, random weights); the others
are hand-written torch models in tests/models/ (recurrent, convolutional, structured outputs).
Where an exporter or simplifier gets a real model wrong, the test asserts that exportkit says so.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx
import pytest
import torch
from torch import nn

import exportkit
from exportkit import Report
from tests.models import convnets, recurrent, structured

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _text(
    vocab: int, *, seq: int = 8, mask: bool = True, **extra: int
) -> Callable[[], dict[str, Any]]:
    """Token ids below ``vocab`` and a padding mask (the second row padded), as a tokenizer gives."""

    def make() -> dict[str, Any]:
        gen = torch.Generator().manual_seed(0)
        out: dict[str, Any] = {"input_ids": torch.randint(3, vocab, (2, seq), generator=gen)}
        if mask:
            attention = torch.ones(2, seq, dtype=torch.int64)
            attention[1, seq - 3 :] = 0
            out["attention_mask"] = attention
        for name, length in extra.items():
            out[name] = torch.randint(3, vocab, (2, length), generator=gen)
        return out

    return make


@dataclass(frozen=True)
class Arch:
    """One architecture: how to build it, its inputs, which dims are dynamic, what must come out."""

    id: str
    build: Callable[[], nn.Module]
    inputs: Any  # --input specs, or a callable returning name -> tensor
    dynamic: tuple[str, ...]
    outputs: tuple[str, ...]
    exporter: str = "dynamo"
    slow: bool = True


def _hf(name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        from tests.corpus import hf_models

        module = getattr(hf_models, name)()
        assert isinstance(module, nn.Module)
        return module

    return build


TEXT_DYN = ("batch", "input_ids:1=seq", "attention_mask:1=seq")
IDS_DYN = ("batch", "input_ids:1=seq")
PIXELS_HW = ("batch", "pixel_values:2=height", "pixel_values:3=width")
HIDDEN = ("last_hidden_state", "pooler_output")
VOCAB = 96
SPEC_TEXT = [f"input_ids:2x8:int64:[3,{VOCAB})", "attention_mask:2x8:int64:[1,2)"]

ARCHS = [
    # transformers: encoders, decoders, encoder-decoders, vision, audio. Causal decoders get no
    # attention mask: validation redraws a 0/1 mask as random bits, and a query row whose keys are
    # all masked (left padding) is garbage that SDPA and onnxruntime fill differently.
    Arch("bert", _hf("bert"), _text(VOCAB), TEXT_DYN, HIDDEN),
    Arch("bert-classifier", _hf("bert_classifier"), _text(VOCAB), TEXT_DYN, ("logits",)),
    # --input specs with value ranges: ids in [3, 96), a mask of ones.
    Arch("distilbert", _hf("distilbert"), SPEC_TEXT, TEXT_DYN, ("last_hidden_state",)),
    Arch("roberta", _hf("roberta"), SPEC_TEXT, TEXT_DYN, HIDDEN),
    Arch("albert", _hf("albert"), _text(VOCAB), TEXT_DYN, HIDDEN),
    Arch("gpt2-lm", _hf("gpt2"), _text(VOCAB, mask=False), IDS_DYN, ("logits",)),
    Arch("llama", _hf("llama"), _text(VOCAB, mask=False), IDS_DYN, ("last_hidden_state",)),
    Arch("mistral-lm", _hf("mistral_lm"), _text(VOCAB, mask=False), IDS_DYN, ("logits",)),
    Arch("qwen2", _hf("qwen2"), _text(VOCAB, mask=False), IDS_DYN, ("last_hidden_state",)),
    Arch("clip-text", _hf("clip_text"), _text(VOCAB, mask=False), IDS_DYN, HIDDEN),
    Arch(
        "bart",
        _hf("bart"),
        _text(VOCAB, decoder_input_ids=5),
        (*TEXT_DYN, "decoder_input_ids:1=target"),
        ("last_hidden_state", "encoder_last_hidden_state"),
    ),
    Arch("vit", _hf("vit"), ["pixel_values:2x3x32x32"], ("batch",), HIDDEN),
    Arch("deit", _hf("deit"), ["pixel_values:2x3x32x32"], ("batch",), HIDDEN),
    Arch("clip-vision", _hf("clip_vision"), ["pixel_values:2x3x32x32"], ("batch",), HIDDEN),
    Arch("mobilevit", _hf("mobilevit"), ["pixel_values:2x3x64x64"], ("batch",), HIDDEN),
    # Image sizes are dynamic too: where PyTorch itself cannot run at 1x1 (strided stems, patch
    # embeddings), validation moves to the smallest size it runs at, and says so.
    Arch("resnet", _hf("resnet"), ["pixel_values:2x3x32x32"], PIXELS_HW, HIDDEN),
    Arch("convnext", _hf("convnext"), ["pixel_values:2x3x32x32"], PIXELS_HW, HIDDEN),
    Arch("segformer", _hf("segformer"), ["pixel_values:2x3x32x32"], PIXELS_HW, ("logits",)),
    Arch(
        "whisper-encoder",
        _hf("whisper_encoder"),
        ["input_features:2x16x32"],
        ("batch",),
        ("last_hidden_state",),
    ),
    Arch(
        "wav2vec2",
        _hf("wav2vec2"),
        ["input_values:2x800"],
        ("batch", "input_values:1=samples"),
        ("last_hidden_state", "extract_features"),
    ),
    # The dynamo exporter cannot decompose these (a view after transpose in attention, also with
    # static shapes); exportkit falls back to TorchScript and the export validates.
    Arch(
        "t5-encoder",
        _hf("t5_encoder"),
        _text(VOCAB),
        TEXT_DYN,
        ("last_hidden_state",),
        "torchscript",
    ),
    Arch(
        "t5",
        _hf("t5"),
        _text(VOCAB, decoder_input_ids=5),
        (*TEXT_DYN, "decoder_input_ids:1=target"),
        ("last_hidden_state", "encoder_last_hidden_state"),
        "torchscript",
    ),
    Arch("swin", _hf("swin"), ["pixel_values:2x3x32x32"], ("batch",), HIDDEN, "torchscript"),
    # hand-written torch: recurrent, convolutional, structured inputs and outputs
    Arch(
        "bilstm-tagger",
        recurrent.BiLSTMTagger,
        ["tokens:2x12:int64"],
        ("batch", "tokens:1=seq"),
        ("output",),
    ),
    Arch(
        "gru-encoder", recurrent.GRUEncoder, ["x:7x2x8"], ("x:1=batch",), ("output.0", "output.1")
    ),
    Arch("lstm-cell-loop", recurrent.LSTMCellLoop, ["x:2x6"], ("batch",), ("output",)),
    Arch(
        "depthwise-separable",
        convnets.DepthwiseSeparable,
        ["image:2x3x32x32"],
        ("batch", "image:2=height", "image:3=width"),
        ("output",),
    ),
    Arch(
        "conv1d-tcn",
        convnets.Conv1dNet,
        ["signal:2x4x50"],
        ("batch", "signal:2=time"),
        ("output",),
        slow=False,
    ),
    Arch(
        "conv3d",
        convnets.Conv3dNet,
        ["volume:2x1x8x16x16"],
        ("batch", "volume:2=frames"),
        ("output",),
    ),
    Arch(
        "unet",
        convnets.UNet,
        ["x:2x3x32x32"],
        ("batch", "x:2=height", "x:3=width"),
        ("output",),
    ),
    Arch(
        "multitask-dict",
        structured.MultiTask,
        ["features:2x5x12", "mask:2x5:bool"],
        ("batch", "features:1=seq", "mask:1=seq"),
        ("logits", "detection.0", "detection.1", "pooled"),
        slow=False,
    ),
    Arch(
        "transformer-seq2seq",
        structured.Seq2SeqLike,
        ["src:2x10:int64", "tgt:2x6:int64"],
        ("batch", "src:1=source", "tgt:1=target"),
        ("output.0", "output.1"),
    ),
    Arch(
        "siamese-list",
        structured.Siamese,
        ["left:2x1x16x16", "right:2x1x16x16"],
        ("batch",),
        ("output.0", "output.1", "output.2"),
    ),
]


def _dynamic_axes(report: Report) -> dict[str, dict[int, str]]:
    return {i.name: dict(i.dynamic) for i in report.inputs if i.dynamic}


def _onnx_dims(path: Path) -> dict[str, list[str | int]]:
    graph = onnx.load(str(path), load_external_data=False).graph
    return {
        vi.name: [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]
        for vi in graph.input
    }


def _export(arch: Arch, tmp_path: Path) -> Report:
    inputs = arch.inputs() if callable(arch.inputs) else arch.inputs
    return exportkit.export(
        arch.build(), inputs, tmp_path / arch.id / f"{arch.id}.onnx", dynamic=arch.dynamic
    )


def _failures(report: Report) -> list[str]:
    """Every trial that did not pass, in words, for the assertion message."""
    assert report.validation is not None
    out = []
    for trial in report.validation.trials:
        if trial.error:
            out.append(f"{trial.label}: {trial.error}")
        for check in trial.outputs:
            if not check.passed:
                out.append(f"{trial.label}: {check.name}: {'; '.join(check.findings)}")
    return out


def _assert_exported_and_valid(arch: Arch, report: Report) -> None:
    assert report.export is not None and report.validation is not None
    failed = [f"{a.exporter}: {a.error}" for a in report.export.attempts if not a.ok]
    assert report.export.exporter == arch.exporter, failed
    assert report.passed, _failures(report)
    # Every dim asked to be dynamic is a named symbol in the final file's inputs.
    assert not report.export.frozen_dims
    assert report.output is not None
    dims = _onnx_dims(report.output)
    for name, axes in _dynamic_axes(report).items():
        for axis in axes:
            assert isinstance(dims[name][axis], str), (name, axis, dims[name])
    assert report.export.output_names == arch.outputs
    graph = onnx.load(str(report.output), load_external_data=False).graph
    assert tuple(o.name for o in graph.output) == arch.outputs
    # Validated beyond the export size: each dynamic label at 1 and at a larger size.
    labels = [t.label for t in report.validation.trials]
    sizes = {label for label in labels if "=" in label}
    assert any("=1" in s for s in sizes) and len(sizes) >= 2, labels


@pytest.mark.parametrize(
    "arch",
    [pytest.param(a, id=a.id, marks=[pytest.mark.slow] if a.slow else []) for a in ARCHS],
)
def test_architecture_exports_and_validates(arch: Arch, tmp_path: Path) -> None:
    _assert_exported_and_valid(arch, _export(arch, tmp_path))


def test_corpus_is_broad() -> None:
    """At least 15 distinct real architectures, most of them third-party."""
    third_party = [a for a in ARCHS if a.build.__qualname__.startswith("_hf")]
    assert len(ARCHS) >= 15 and len(third_party) >= 15
    assert len({a.id for a in ARCHS}) == len(ARCHS)
    from tests.corpus.hf_models import configs

    assert {f.name for f in HF_FOLDERS} < set(configs())


# Real models that an exporter or a simplifier gets wrong: exportkit must say so.


@pytest.mark.slow
def test_gru_time_major_dynamo_bakes_the_sequence_length(tmp_path: Path) -> None:
    """torch.onnx (dynamo) writes a Reshape to the example's 7 steps for a time-major GRU whose
    time dim is dynamic; the input dims stay symbolic, so only running other sizes shows it."""
    dynamic = ["x:0=time", "x:1=batch"]
    report = exportkit.export(
        recurrent.GRUEncoder(),
        ["x:7x2x8"],
        tmp_path / "d" / "gru.onnx",
        dynamic=dynamic,
        exporter="dynamo",
    )
    assert report.export is not None and report.validation is not None
    assert report.export.exporter == "dynamo" and not report.export.frozen_dims
    assert not report.passed
    failed = {t.label: t.error or "" for t in report.validation.trials if not t.passed}
    assert set(failed) == {"time=1, batch=1", "time=10, batch=5"}
    assert all("Reshape" in e and "{7,-1,16}" in e for e in failed.values())
    divergence = report.validation.divergence
    assert divergence is not None and (divergence.location.module, divergence.location.cls) == (
        "gru",
        "GRU",
    )
    # The TorchScript exporter gets the same model right, and --exporter auto finds that out:
    # dynamo's file fails validation where PyTorch runs, so TorchScript gets its turn.
    fixed = exportkit.export(
        recurrent.GRUEncoder(), ["x:7x2x8"], tmp_path / "auto" / "gru.onnx", dynamic=dynamic
    )
    assert fixed.passed, _failures(fixed)
    assert fixed.export is not None and fixed.export.exporter == "torchscript"
    first = fixed.export.attempts[0]
    assert first.exporter == "dynamo" and not first.ok
    # In a fresh process dynamo writes the wrong file and validation sends auto on to TorchScript
    # (tests/test_export_validate.py checks that path); after other exports in the same process
    # torch.export may instead refuse the dynamic time dim outright. Either way dynamo lost.
    assert first.error is not None
    assert "fails validation (time=1, batch=1" in first.error or "fixes it at 7" in first.error


@pytest.mark.slow
def test_transformer_decoder_mask_check_falls_back_and_is_caught(tmp_path: Path) -> None:
    """nn.TransformerDecoder given a causal mask without ``tgt_is_causal`` compares the mask
    with torch.equal: torch.export cannot trace that, and the TorchScript fallback traces the
    target length into a Reshape. exportkit names the dynamo failure and fails the check."""
    report = exportkit.export(
        structured.Seq2SeqLike(declare_causal=False),
        ["src:2x10:int64", "tgt:2x6:int64"],
        tmp_path / "s2s.onnx",
        dynamic=["batch", "src:1=source", "tgt:1=target"],
    )
    assert report.export is not None and report.validation is not None
    dynamo, torchscript = report.export.attempts
    assert not dynamo.ok and "data-dependent" in (dynamo.error or "")
    assert torchscript.ok and report.export.exporter == "torchscript"
    assert not report.passed
    failed = [t for t in report.validation.trials if not t.passed]
    assert [t.label for t in failed] == [
        "batch=1, source=1, target=1",
        "batch=5, source=13, target=9",
    ]
    assert all("Reshape" in (t.error or "") for t in failed)


@pytest.mark.slow  # over 3 s: the fast suite stays under 90 s; CI runs it
def test_onnxsim_freezing_lstm_sequence_is_discarded(tmp_path: Path) -> None:
    """onnxsim folds the tagger head's reshape to the example's 12 tokens; the simplified file
    fails at other lengths, so exportkit keeps the exported file, says why, and passes."""
    report = exportkit.export(
        recurrent.BiLSTMTagger(),
        ["tokens:2x12:int64"],
        tmp_path / "lstm.onnx",
        dynamic=["batch", "tokens:1=seq"],
    )
    assert report.simplify is not None and not report.simplify.kept
    assert "simplified file fails" in (report.simplify.reason or "")
    assert "{-1,12,5}" in (report.simplify.reason or "")
    assert report.passed and report.output == tmp_path / "lstm.onnx"


@dataclass(frozen=True)
class HfFolder:
    """An ``hf:FOLDER`` export through the CLI: inputs come from the config, none are given."""

    name: str
    dynamic: tuple[str, ...]
    outputs: tuple[str, ...]


TEXT_CLI = ("batch", "input_ids:1=seq", "attention_mask:1=seq")
HF_FOLDERS = [
    HfFolder("gpt-neox", TEXT_CLI, ("logits",)),
    HfFolder("phi", TEXT_CLI, ("logits",)),
    HfFolder("opt", TEXT_CLI, ("logits",)),
    HfFolder("electra", (*TEXT_CLI, "token_type_ids:1=seq"), ("logits",)),
    HfFolder("deberta-v2", TEXT_CLI, ("last_hidden_state",)),
    HfFolder("hubert", ("batch", "input_values:1=samples"), ("last_hidden_state",)),
    HfFolder(
        "marian",
        ("batch", "input_ids:1=source", "attention_mask:1=source", "decoder_input_ids:1=target"),
        ("logits", "encoder_last_hidden_state"),
    ),
]


def _cli_export(
    name: str, dynamic: tuple[str, ...], tmp_path: Path, *extra: str
) -> tuple[int, dict[str, Any]]:
    from exportkit.cli import main
    from tests.corpus.hf_models import configs

    folder = tmp_path / name
    configs()[name].save_pretrained(folder)
    out, js = tmp_path / "out" / f"{name}.onnx", tmp_path / f"{name}.json"
    argv = ["export", f"hf:{folder}", "-o", str(out), "--json", str(js), *extra]
    for d in dynamic:
        argv += ["--dynamic", d]
    code = main(argv)
    return code, json.loads(js.read_text())


@pytest.mark.slow
@pytest.mark.parametrize("arch", [pytest.param(a, id=a.name) for a in HF_FOLDERS])
def test_hf_config_folder_exports_through_the_cli(
    arch: HfFolder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = _cli_export(arch.name, arch.dynamic, tmp_path)
    failures = [t for t in report["validation"]["trials"] if t.get("error")]
    assert code == 0, (capsys.readouterr().out[-2000:], failures)
    assert report["passed"] and report["export"]["exporter"] == "dynamo"
    assert tuple(report["export"]["output_names"]) == arch.outputs
    assert not report["export"]["frozen_dims"]
    dynamic = {i["name"]: i["dynamic"] for i in report["inputs"]}
    assert all(dynamic[d.split(":")[0]] for d in arch.dynamic if ":" in d)
    labels = [t["label"] for t in report["validation"]["trials"]]
    assert any(label.startswith("batch=1,") for label in labels), labels


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "broken_at", "error", "torchscript_right"),
    [
        # Position embeddings interpolated to the image size: the dynamo graph keeps the
        # example's 16 + 1 tokens, and an 8x8 image (1 + 1 tokens) cannot be added to them.
        # The TorchScript exporter gets this one right.
        (
            "dinov2",
            "batch=1, height=8, width=8",
            "Attempting to broadcast an axis by a dimension other than 1. 2 by 17",
            True,
        ),
        # TensorFlow-style "same" padding is computed from the input size; the exported graph
        # pads a 1x1 image wrongly and a 3x3 Conv gets a 1x1 input, where PyTorch runs.
        ("mobilenet-v2", "batch=1, height=1, width=1", "Invalid input shape: {1,1}", False),
    ],
)
def test_image_size_bugs_in_exported_vision_models_are_caught(
    name: str, broken_at: str, error: str, torchscript_right: bool, tmp_path: Path
) -> None:
    """Real exporter bugs on dynamic image sizes: the inputs stay symbolic, the file loads and
    passes at the export size; exportkit fails it and says at which size and why. With
    --exporter auto, the TorchScript exporter then gets its turn, and wins where it is right."""
    hw = ("batch", "pixel_values:2=height", "pixel_values:3=width")
    code, report = _cli_export(name, hw, tmp_path / "dynamo", "--exporter", "dynamo")
    assert code == 1 and not report["passed"]
    assert not report["export"]["frozen_dims"]
    trials = {t["label"]: t for t in report["validation"]["trials"]}
    assert trials["export inputs"]["error"] is None
    failed = next(t for label, t in trials.items() if label.startswith(broken_at))
    assert error in (failed["error"] or "")

    code, report = _cli_export(name, hw, tmp_path / "auto")
    dynamo, torchscript = report["export"]["attempts"]
    assert (dynamo["exporter"], torchscript["exporter"]) == ("dynamo", "torchscript")
    if torchscript_right:  # dynamo's wrong file lost to TorchScript's right one
        assert code == 0 and report["passed"] and report["export"]["exporter"] == "torchscript"
        assert not dynamo["ok"] and "fails validation" in dynamo["error"]
    else:  # both wrong: dynamo's file is kept, and the verdict fails
        assert code == 1 and report["export"]["exporter"] == "dynamo" and dynamo["ok"]
        assert "fails validation too" in torchscript["error"]


@pytest.mark.slow
def test_a_cache_object_output_is_named_before_exporting(tmp_path: Path) -> None:
    """A decoder left with use_cache=True returns a DynamicCache: both exporters would fail after
    tracing with pages about pytrees and JIT types; exportkit names the output and the fix."""
    from exportkit.errors import ExportError
    from tests.corpus.hf_models import gpt2_with_cache

    with pytest.raises(ExportError) as caught:
        exportkit.export(
            gpt2_with_cache(), [f"input_ids:2x8:int64:[0,{VOCAB})"], tmp_path / "m.onnx"
        )
    assert (
        "returns a transformers.cache_utils.DynamicCache as output 'cache'" in caught.value.message
    )
    assert "use_cache=False" in caught.value.hint
    assert not list(tmp_path.glob("*.onnx"))


@pytest.mark.slow  # over 3 s: the fast suite stays under 90 s; CI runs it
def test_sizes_move_to_where_the_eager_model_runs(tmp_path: Path) -> None:
    """A UNet needs sides divisible by 4 and at least 4: at 1x1 and 35x35 PyTorch itself fails,
    so validation takes the nearest sizes it runs at, says so, and the verdict is the export's."""
    report = exportkit.export(
        convnets.UNet(),
        ["x:2x3x32x32"],
        tmp_path / "unet.onnx",
        dynamic=["batch", "x:2=height", "x:3=width"],
    )
    assert report.validation is not None
    assert [t.label for t in report.validation.trials][2:] == [
        "batch=1, height=4, width=4 (PyTorch fails at batch=1, height=1, width=1)",
        "batch=4, height=64, width=64 (PyTorch fails at batch=5, height=35, width=35)",
    ]
    assert report.passed, _failures(report)
