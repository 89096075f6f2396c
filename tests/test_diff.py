"""exportkit.diff on real pairs of exports of the tiny models in tests/models/diff_models.py."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch

from exportkit.diff import diff
from exportkit.errors import InputSpecError, OnnxFileError
from exportkit.report.diff import render_json, render_markdown, render_table
from exportkit.validate.compare import Tolerances
from tests.models.diff_models import Blocks

X = (torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0)),)


def make(seed: int = 0, **kwargs: int) -> Blocks:
    torch.manual_seed(seed)
    return Blocks(**kwargs).eval()


def torchscript(model: torch.nn.Module, path: Path, opset: int = 17) -> Path:
    torch.onnx.export(
        model, X, str(path), dynamo=False, opset_version=opset,
        input_names=["x"], output_names=["logits"], dynamic_axes={"x": {0: "batch"}},
    )  # fmt: skip
    return path


def dynamo(model: torch.nn.Module, path: Path) -> Path:
    batch = torch.export.Dim("batch", min=1)
    torch.onnx.export(
        model, X, str(path), dynamo=True, verbose=False, external_data=False,
        input_names=["x"], output_names=["logits"], dynamic_shapes={"x": {0: batch}},
    )  # fmt: skip
    return path


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return torchscript(make(), tmp_path_factory.mktemp("diff") / "base.onnx")


def test_same_model_exported_twice_is_equivalent(base: Path, tmp_path: Path) -> None:
    again = torchscript(make(), tmp_path / "again.onnx")
    result = diff(base, again)
    assert result.equivalent
    assert result.contract.same and result.structure.same
    assert result.weights is not None and result.weights.same and result.weights.changed == 0
    assert result.numbers is not None and result.numbers.passed
    assert result.numbers.inputs == ("x:2x3x16x16:float32",)
    assert "Verdict:      equivalent" in render_table(result)


def test_retrained_block_is_named_and_no_other(base: Path, tmp_path: Path) -> None:
    model = make()
    with torch.no_grad():
        for p in model.blocks[1].parameters():
            p.add_(0.05 * torch.randn_like(p))
    result = diff(base, torchscript(model, tmp_path / "retrained.onnx"))
    assert result.structure.same and result.contract.same
    assert result.weights is not None
    assert result.weights.changed_modules == ("blocks.1",)
    changed = {w.module for w in result.weights.weights if w.status == "changed"}
    assert changed and all(m.startswith("blocks.1.") for m in changed)
    assert result.numbers is not None and not result.numbers.passed
    assert result.numbers.first_module is not None
    assert result.numbers.first_module.startswith("blocks.1")
    assert not result.equivalent
    text = render_table(result)
    assert "changed); in: blocks.1\n" in text
    assert "First diff:   blocks.1" in text


def test_one_more_block_is_an_added_module(base: Path, tmp_path: Path) -> None:
    result = diff(base, torchscript(make(depth=3), tmp_path / "deeper.onnx"))
    by_path = {m.path: m for m in result.structure.modules}
    assert by_path["blocks.2"].status == "added"
    assert by_path["blocks.2.conv"].status == "added"
    assert by_path["blocks.0"].status == "same" and by_path["head"].status == "same"
    assert [m.path for m in result.structure.changed if m.depth == 1] == []
    assert {m.path for m in result.structure.changed} >= {"blocks.2"}
    assert result.contract.same
    assert not result.equivalent
    assert "+      2" in render_table(result)  # the added row, marked


def test_changed_head_changes_module_and_output_contract(base: Path, tmp_path: Path) -> None:
    result = diff(base, torchscript(make(classes=5), tmp_path / "head5.onnx"))
    [out] = result.contract.outputs
    assert out.status == "changed" and out.findings == ("dim 1: 10 -> 5",)
    head = next(m for m in result.structure.modules if m.path == "head")
    assert head.status == "changed" and head.params == (90, 45)
    assert [m.path for m in result.structure.changed] == ["head"]
    assert result.numbers is not None and result.numbers.outputs[0].findings
    md = render_markdown(result)
    assert md.startswith("### exportkit diff: differ")
    assert "output logits: dim 1: 10 -> 5" in md


def test_dim_that_lost_its_dynamic_name_is_called_out(base: Path, tmp_path: Path) -> None:
    fixed = tmp_path / "fixed.onnx"
    torch.onnx.export(make(), X, str(fixed), dynamo=False, opset_version=17,
                      input_names=["x"], output_names=["logits"])  # fmt: skip
    result = diff(base, fixed, numbers=False, weights=False)
    [x] = result.contract.inputs
    assert x.lost_dynamic == (0,)
    assert x.findings == ("dim 0: was dynamic (batch), now fixed at 2",)
    assert not result.contract.same and not result.equivalent


def test_different_opset(base: Path, tmp_path: Path) -> None:
    result = diff(base, torchscript(make(), tmp_path / "opset18.onnx", opset=18))
    assert result.contract.opsets[next(iter(result.contract.opsets))] == (17, 18)
    assert not result.contract.same
    assert result.numbers is not None and result.numbers.passed
    assert "opset ai.onnx: 17 -> 18" in render_table(result)


def test_fp32_vs_fp16(base: Path, tmp_path: Path) -> None:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    half = tmp_path / "half.onnx"
    onnx.save(convert_float_to_float16(onnx.load(str(base)), keep_io_types=True), str(half))
    result = diff(base, half)
    assert result.contract.same  # keep_io_types: float32 in and out
    assert any(c.op_type == "Cast" and c.delta > 0 for c in result.structure.ops)
    assert result.weights is not None
    assert {w.dtype for w in result.weights.weights if w.status == "changed"} == {
        ("float32", "float16")
    }
    assert result.numbers is not None
    [out] = result.numbers.outputs
    assert 0 < out.max_abs < 1e-2  # float16 rounding shows, within tolerance on this model
    assert "differ: structure, weights\n" in render_table(result)
    strict = diff(base, half, tolerances=Tolerances(atol=1e-6, rtol=1e-6), weights=False)
    assert strict.numbers is not None and not strict.numbers.passed


def test_raw_vs_simplified_structure_differs_numbers_agree(base: Path, tmp_path: Path) -> None:
    import onnx
    import onnxsim

    simplified, ok = onnxsim.simplify(onnx.load(str(base)))
    assert ok
    path = tmp_path / "sim.onnx"
    onnx.save(simplified, str(path))
    result = diff(base, path)
    assert result.structure.node_count[1] < result.structure.node_count[0]
    assert not result.structure.same
    assert result.numbers is not None and result.numbers.passed
    assert result.contract.same
    assert "differ: structure" in render_table(result)


@pytest.mark.slow  # a dynamo export takes ~4 s
def test_dynamo_vs_torchscript_structure_differs_numbers_agree(base: Path, tmp_path: Path) -> None:
    result = diff(base, dynamo(make(), tmp_path / "dynamo.onnx"))
    assert result.structure.hierarchy == ("names", "metadata")
    assert not result.structure.same
    assert result.numbers is not None and result.numbers.passed
    # one checkpoint: every weight of A is in B, equal, under the other exporter's name where
    # it differs (matched by the op, input slot and shape that read it); B adds only the
    # GroupNorms' constant scale and bias (InstanceNormalization's) that A does not store
    assert result.weights is not None
    differ = [(w.status, w.module) for w in result.weights.weights if w.status != "equal"]
    assert differ and all(s == "added" and m.endswith(".norm") for s, m in differ), differ
    text = render_table(result)
    assert "structure" in text.splitlines()[2] and "outputs within tolerance" in text
    # fresh GroupNorms: one tensor of ones read by both norms in the dynamo file is not a
    # structural change of the modules that read it
    norms = [m for m in result.structure.modules if m.path.endswith(".norm")]
    assert norms and all(m.params[0] == m.params[1] for m in norms)


def test_inputs_like_export_and_bad_input(base: Path, tmp_path: Path) -> None:
    result = diff(base, base, inputs=["x:3x3x16x16"], weights=False)
    assert result.numbers is not None and result.numbers.inputs == ("x:3x3x16x16:float32",)
    assert result.numbers.outputs[0].shape == (3, 10)
    with pytest.raises(InputSpecError, match="has no input of that name"):
        diff(base, base, inputs=["y:2x3"])
    with pytest.raises(OnnxFileError, match="no such file"):
        diff(base, tmp_path / "missing.onnx")
    text = tmp_path / "model.py"
    text.write_text("print('not onnx')\n")
    with pytest.raises(OnnxFileError, match="text file"):
        diff(text, base)


def test_json_document(base: Path) -> None:
    doc = json.loads(render_json(diff(base, base)))
    assert doc["schema_version"] == 1 and doc["kind"] == "exportkit.diff"
    assert doc["equivalent"] is True and doc["verdict"] == "equivalent"
    assert doc["structure"]["modules"][0]["status"] == "same"
    assert doc["numbers"]["outputs"][0]["passed"] is True


def _read_bytes() -> int:
    """Bytes this process has read from files so far (Linux /proc/self/io ``rchar``)."""
    text = Path("/proc/self/io").read_text()
    return int(next(line for line in text.splitlines() if line.startswith("rchar")).split()[1])


def _mlp_with_external_data(folder: Path) -> Path:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(
        np.random.default_rng(0).standard_normal((2048, 2048)).astype(np.float32), "fc.weight"
    )
    node = helper.make_node("MatMul", ["x", "fc.weight"], ["y"], name="/fc/MatMul")
    graph = helper.make_graph(
        [node], "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 2048])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2048])], [weight],
    )  # fmt: skip
    folder.mkdir()
    path = folder / "mlp.onnx"
    onnx.save(helper.make_model(graph), str(path), save_as_external_data=True,
              location="mlp.onnx.data")  # fmt: skip
    return path


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs Linux /proc/self/io")
def test_structure_only_never_reads_external_data(tmp_path: Path) -> None:
    a = _mlp_with_external_data(tmp_path / "a")
    b = _mlp_with_external_data(tmp_path / "b")
    size = 2048 * 2048 * 4
    before = _read_bytes()
    result = diff(a, b, numbers=False, weights=False)
    assert _read_bytes() - before < size // 4  # the protobufs only, not 2 x 16 MB of weights
    assert result.equivalent and result.weights is None and result.numbers is None
    before = _read_bytes()
    result = diff(a, b, numbers=False)
    assert _read_bytes() - before >= 2 * size  # weights compared: both data files read
    assert result.weights is not None and result.weights.same


def test_dedup_shared_weights_are_no_change(tmp_path: Path) -> None:
    """A file that stores two identical weights once reads the same to the diff."""
    model = make()
    twin = copy.deepcopy(model)
    a = torchscript(model, tmp_path / "a.onnx")
    b = torchscript(twin, tmp_path / "b.onnx")
    result = diff(a, b)
    assert result.equivalent


def test_cli_exit_codes_and_formats(
    base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from exportkit.cli import main

    assert main(["diff", str(base), str(base), "--no-numbers"]) == 0
    assert "Verdict:      equivalent" in capsys.readouterr().out
    head5 = torchscript(make(classes=5), tmp_path / "head5.onnx")
    assert main(["diff", str(base), str(head5), "--format", "json"]) == 1
    assert json.loads(capsys.readouterr().out)["verdict"] == (
        "differ: contract, structure, weights, numbers"
    )
    assert main(["diff", str(base), str(head5), "--format", "markdown", "--no-weights"]) == 1
    assert capsys.readouterr().out.startswith("### exportkit diff: differ")
    assert main(["diff", str(base), str(tmp_path / "none.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no such file") and "hint:" in err and "Traceback" not in err
    assert main(["diff", str(base), str(base), "--input", "x:2x"]) == 2


def test_public_verb_survives_the_stage_import(base: Path) -> None:
    import exportkit
    import exportkit.diff  # binds the package to exportkit.diff: it still calls like the verb

    assert "diff" in exportkit.__all__ and "DiffResult" in exportkit.__all__
    result = exportkit.diff(base, base, numbers=False)
    assert isinstance(result, exportkit.DiffResult) and result.equivalent


def test_exportkit_wrapper_and_a_plain_export_match_by_module(base: Path, tmp_path: Path) -> None:
    """exportkit's TorchScript path calls the model as ``model`` (``/model/blocks/blocks.0``);
    a plain export has ``/blocks/blocks.0``: the same modules, the same weights."""
    import exportkit

    wrapped = tmp_path / "wrapped.onnx"
    exportkit.export(make(), ["x:2x3x16x16"], wrapped, exporter="torchscript",
                     simplifier="none", sizes=False, dynamic=["batch"])  # fmt: skip
    result = diff(base, wrapped)
    assert result.structure.same, [m.path for m in result.structure.changed]
    assert {m.path for m in result.structure.modules} >= {"blocks.0.conv", "blocks.1.norm"}
    assert result.weights is not None and result.weights.same
    assert result.numbers is not None and result.numbers.passed


@pytest.mark.slow  # two dynamo exports of a UNet
def test_unet_dynamo_retrained_block_and_torchscript(tmp_path: Path) -> None:
    from tests.models.convnets import UNet

    def unet() -> UNet:
        torch.manual_seed(0)
        return UNet().eval()

    x = (torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)),)

    def export(model: UNet, path: Path, use_dynamo: bool) -> Path:
        torch.onnx.export(model, x, str(path), dynamo=use_dynamo, input_names=["x"],
                          **({"verbose": False, "external_data": False} if use_dynamo else {}))  # fmt: skip
        return path

    a = export(unet(), tmp_path / "a.onnx", True)
    retrained = unet()
    with torch.no_grad():
        for p in retrained.dec2.parameters():
            p.mul_(1.1)
    b = export(retrained, tmp_path / "b.onnx", True)
    result = diff(a, b)
    assert result.structure.same and result.contract.same
    assert result.weights is not None and result.weights.changed_modules == ("dec2",)
    assert result.numbers is not None and result.numbers.first_module is not None
    assert result.numbers.first_module.startswith("dec2")
    ts = diff(a, export(unet(), tmp_path / "ts.onnx", False))
    assert not ts.structure.same  # BatchNorm folded into Conv by TorchScript, not by dynamo
    assert ts.numbers is not None and ts.numbers.passed


def test_diff_writes_a_self_contained_html_page(tmp_path: Path) -> None:
    """--html on diff (issue 13): one page, nothing fetched, changed rows marked; notebooks too."""
    from exportkit.cli import main

    a = torchscript(make(0), tmp_path / "a.onnx")
    b = torchscript(make(1), tmp_path / "b.onnx")
    page = tmp_path / "d.html"
    assert main(["diff", str(a), str(b), "--html", str(page)]) == 1
    html = page.read_text()
    assert "exportkit diff: differ" in html and "<script" not in html and "http" not in html
    assert "class='weights'" in html  # every layer retrained: the weights rows are marked
    assert diff(a, b)._repr_html_().startswith("<!DOCTYPE html>")


@pytest.mark.slow  # a dynamo export takes ~4 s
def test_one_checkpoint_through_two_exporters_has_equal_weights(tmp_path: Path) -> None:
    """TorchScript folds Conv+BatchNorm into tensors named onnx::Conv_N read in module 0;
    dynamo's rewriter credits the fused Conv to the Sequential: neither name nor module
    match, the op, input slot and shape that read them do, and their values are equal."""

    class ConvBN(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = torch.nn.Sequential(
                torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                torch.nn.Conv2d(8, 4, 3),
            )  # fmt: skip

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.body(x)

    torch.manual_seed(0)
    model = ConvBN().eval()
    with torch.no_grad():  # statistics that are not the identity, so folding changes the values
        model.body[1].running_mean.uniform_(-1, 1)
        model.body[1].running_var.uniform_(0.5, 2)
    result = diff(torchscript(model, tmp_path / "ts.onnx"), dynamo(model, tmp_path / "dy.onnx"))
    assert result.weights is not None and result.weights.same, [
        (w.name, w.other, w.status) for w in result.weights.weights if w.status != "equal"
    ]
    assert {w.matched_by for w in result.weights.weights} >= {"position"}
    assert "Weights:      all 4 equal" in render_table(result)


def test_macs_that_depend_on_a_dynamic_dim_are_counted_once_it_is_bound(
    base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from exportkit.cli import main

    loose = diff(base, base, numbers=False, weights=False)
    assert loose.structure.unbound == ("batch",)
    assert all(m.macs[1] is None for m in loose.structure.modules if m.path.startswith("stem"))
    assert "--dim batch=1 counts them" in render_table(loose)
    bound = diff(base, base, numbers=False, weights=False, dims={"batch": 1})
    assert bound.structure.unbound == ()
    stem = next(m for m in bound.structure.modules if m.path == "stem")
    assert stem.macs == (8 * 3 * 9 * 16 * 16, 8 * 3 * 9 * 16 * 16)  # Conv 3->8, 3x3, 16x16 out
    assert main(["diff", str(base), str(base), "--no-numbers", "--dim", "batch=1"]) == 0
    assert "--dim" not in capsys.readouterr().out.split("Module")[0]
    assert main(["diff", str(base), str(base), "--dim", "batch"]) == 2
