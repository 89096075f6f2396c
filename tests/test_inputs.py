"""Example inputs: the --input and --dynamic grammars, declared inputs, seeded draws."""

from __future__ import annotations

import pytest
import torch

from exportkit.errors import ForwardError, InputSpecError
from exportkit.inputs import DynamicSpec, InputSpec, make_inputs, run_model
from tests.models.broken import Raises
from tests.models.mlp import Net
from tests.models.two_inputs import TwoInputs


def test_input_grammar() -> None:
    assert InputSpec.parse("x:2x3x224x224").tensor.shape == (2, 3, 224, 224)
    assert InputSpec.parse("x:2,3").tensor.shape == (2, 3)
    spec = InputSpec.parse("ids:2x16:int64")
    assert (spec.name, spec.tensor.dtype) == ("ids", "int64")


@pytest.mark.parametrize("text", ["x", "x:2xa", "x:2x3:float99", "2x3", "x:-1x2"])
def test_bad_input(text: str) -> None:
    with pytest.raises(InputSpecError) as info:
        InputSpec.parse(text)
    assert "--input" in (info.value.hint or "")


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


def test_no_inputs_says_what_to_write() -> None:
    with pytest.raises(InputSpecError) as info:
        make_inputs(Net())
    assert "--input x:" in (info.value.hint or "")


def test_forward_error_names_shapes() -> None:
    ex = make_inputs(Raises(), [InputSpec.parse("x:2x3")])
    with pytest.raises(ForwardError) as info:
        run_model(Raises(), ex)
    assert "x:2x3:float32" in info.value.message and "on purpose" in info.value.message
