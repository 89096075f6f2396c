"""Example inputs: the --input and --dynamic grammars, declared inputs, seeded draws."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from exportkit.errors import ForwardError, InputSpecError
from exportkit.inputs import DynamicSpec, InputSpec, TensorSpec, make_inputs, run_model
from tests.models.broken import Raises
from tests.models.mlp import Net
from tests.models.two_inputs import TwoInputs
from tests.models.zoo import Masked


def test_input_grammar() -> None:
    assert InputSpec.parse("x:2x3x224x224").tensor.shape == (2, 3, 224, 224)
    assert InputSpec.parse("x:2,3").tensor.shape == (2, 3)
    spec = InputSpec.parse("ids:2x16:int64")
    assert (spec.name, spec.tensor.dtype) == ("ids", "int64")


@pytest.mark.parametrize(
    "text",
    [
        "x",
        "x:2xa",
        "x:2x3:float99",
        "2x3",
        "x:-1x2",
        "ids:2x3:int64:[5,5)",
        "ids:2x3:int64:(0,5)",
        "ids:2x3:int64:[0,a)",
        "ids:2x3:[0,5):int64",
        "m:2:bool:[0,3)",
        "x=data.csv",
        "x y=data.npy",
    ],
)
def test_bad_input(text: str) -> None:
    with pytest.raises(InputSpecError) as info:
        InputSpec.parse(text)
    assert "--input" in (info.value.hint or "")


def test_range_grammar() -> None:
    spec = InputSpec.parse("input_ids:2x16:int64:[0,30522)").tensor
    assert spec is not None and (spec.low, spec.high) == (0, 30522)
    inclusive = InputSpec.parse("ids:4:int32:[3,5]").tensor
    assert inclusive is not None and (inclusive.low, inclusive.high) == (3, 6)
    floats = InputSpec.parse("x:2x3:[-1,1)").tensor
    assert floats is not None and (floats.dtype, floats.low, floats.high) == ("float32", -1, 1)
    assert InputSpec.parse("mask:2x16:bool").tensor == TensorSpec((2, 16), "bool")


def test_ranges_are_respected_and_seeded() -> None:
    specs = [InputSpec.parse("ids:64x64:int64:[100,104)"), InputSpec.parse("scale:8:[2,3)")]
    ex = make_inputs(TwoInputs(), specs, seed=1, infer=False)
    ids, scale = ex.tensors["ids"], ex.tensors["scale"]
    assert set(ids.unique().tolist()) == {100, 101, 102, 103}
    assert float(scale.min()) >= 2 and float(scale.max()) < 3
    again = ex.resample(ex.labels, seed=1)
    assert torch.equal(again.tensors["ids"], ids)
    other = ex.resample(ex.labels, seed=2)
    assert not torch.equal(other.tensors["ids"], ids) and int(other.tensors["ids"].min()) >= 100
    assert ex.describe()[0] == "ids:64x64:int64:[100,104)"


def test_bool_inputs() -> None:
    ex = make_inputs(Masked(), [InputSpec.parse("x:2x6"), InputSpec.parse("mask:2x6:bool:[0,1)")])
    assert ex.tensors["mask"].dtype == torch.bool and not bool(ex.tensors["mask"].any())


def test_data_files(tmp_path: Path) -> None:
    x = np.arange(8 * 4, dtype=np.float32).reshape(8, 4)
    np.save(tmp_path / "x.npy", x)
    np.savez(
        tmp_path / "both.npz", ids=np.ones((3, 5), dtype=np.int64), scale=np.ones(1, np.float32)
    )
    torch.save({"x": torch.from_numpy(x)}, tmp_path / "x.pt")
    for spec in (f"x={tmp_path / 'x.npy'}", f"x={tmp_path / 'x.pt'}"):
        ex = make_inputs(Net(), [InputSpec.parse(spec)])
        assert np.array_equal(ex.tensors["x"].numpy(), x)
        assert ex.describe() == [spec]
    both = make_inputs(TwoInputs(), [InputSpec.parse(str(tmp_path / "both.npz"))])
    assert list(both.tensors) == ["ids", "scale"] and both.tensors["ids"].shape == (3, 5)


def test_data_stays_fixed_and_is_sliced_or_tiled_on_dynamic_dims(tmp_path: Path) -> None:
    x = torch.arange(4 * 4, dtype=torch.float32).reshape(4, 4)
    torch.save(x, tmp_path / "x.pt")
    ex = make_inputs(
        Net(), [InputSpec.parse(f"x={tmp_path / 'x.pt'}")], dynamic=[DynamicSpec.parse("batch")]
    )
    assert torch.equal(ex.resample(ex.labels, seed=9).tensors["x"], x)  # real data is never redrawn
    assert torch.equal(ex.resample({"batch": 1}, seed=9).tensors["x"], x[:1])
    assert torch.equal(ex.resample({"batch": 6}, seed=9).tensors["x"], x[[0, 1, 2, 3, 0, 1]])


def test_bad_data_files(tmp_path: Path) -> None:
    with pytest.raises(InputSpecError, match="does not exist"):
        make_inputs(Net(), [InputSpec.parse(f"x={tmp_path / 'nope.npy'}")])
    np.savez(tmp_path / "two.npz", a=np.ones(2), b=np.ones(2))
    with pytest.raises(InputSpecError, match="holds: a, b"):
        make_inputs(Net(), [InputSpec.parse(f"x={tmp_path / 'two.npz'}")])
    (tmp_path / "junk.npy").write_text("not numpy")
    with pytest.raises(InputSpecError, match="cannot read"):
        make_inputs(Net(), [InputSpec.parse(f"x={tmp_path / 'junk.npy'}")])


def test_declared_on_module_and_in_file(models: Path) -> None:
    from exportkit.loading import load_model

    on_module = load_model(f"{models}/declared.py:WithMethod")
    ex = make_inputs(on_module.module, declared=on_module.example_inputs)
    assert ex.source == "declared" and ex.describe() == ["x:3x4:float32"]
    in_file = load_model(f"{models}/declared.py:Plain")
    ex = make_inputs(in_file.module, declared=in_file.example_inputs)
    assert ex.source == "declared" and ex.describe() == ["ids:2x7:int64:[0,10)", "scale:1:float32"]


def test_dynamic_grammar() -> None:
    assert DynamicSpec.parse("batch") == DynamicSpec(None, 0, "batch")
    assert DynamicSpec.parse("ids:1=seq") == DynamicSpec("ids", 1, "seq")
    with pytest.raises(InputSpecError):
        DynamicSpec.parse("ids:one")


def test_seeded_and_named() -> None:
    specs = [InputSpec.parse("ids:2x5:int64"), InputSpec.parse("scale:1")]
    a = make_inputs(TwoInputs(), specs, seed=3)
    b = make_inputs(TwoInputs(), specs, seed=3)
    assert list(a.tensors) == ["ids", "scale"]
    assert all(torch.equal(a.tensors[n], b.tensors[n]) for n in a.tensors)
    assert int(a.tensors["ids"].max()) < 10  # inside the embedding's range


def test_unknown_name_lists_signature() -> None:
    with pytest.raises(InputSpecError) as info:
        make_inputs(Net(), [InputSpec.parse("y:2x4")])
    assert "forward(x" in info.value.message


def test_size_one_on_dynamic_dim_is_moved() -> None:
    ex = make_inputs(Net(), [InputSpec.parse("x:1x4")], dynamic=[DynamicSpec.parse("batch")])
    assert ex.tensors["x"].shape == (2, 4)
    assert ex.notes and "size 1" in ex.notes[0]
    assert ex.dynamic == {"x": {0: "batch"}}


def test_declared_inputs_by_position() -> None:
    ex = make_inputs(Net(), declared=lambda: (torch.ones(3, 4),))
    assert ex.source == "declared" and ex.tensors["x"].shape == (3, 4)


def test_no_inputs_are_inferred() -> None:
    ex = make_inputs(Net())
    assert ex.source == "inferred" and ex.describe() == ["x:2x4:float32"]


def test_forward_error_names_shapes() -> None:
    ex = make_inputs(Raises(), [InputSpec.parse("x:2x3")])
    with pytest.raises(ForwardError) as info:
        run_model(Raises(), ex)
    assert "x:2x3:float32" in info.value.message and "on purpose" in info.value.message
