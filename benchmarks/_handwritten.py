"""The same steps as ``exportkit export --no-sizes``, written by hand with the libraries directly.

    python benchmarks/_handwritten.py examples/conv_net.py:ConvNet x:2x3x64x64 out/hand/conv.onnx

Load the model, export it with torch.onnx (dynamo, batch dynamic), check the file on onnxruntime
against PyTorch on the export inputs and a fresh draw, simplify it with onnxsim, check the
simplified file the same way. Prints nothing but a one-line verdict.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import onnxsim
import torch


def load(spec: str) -> torch.nn.Module:
    file, name = spec.split(":")
    sys.path.insert(0, str(Path(file).parent))
    module_spec = importlib.util.spec_from_file_location(Path(file).stem, file)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    torch.manual_seed(0)
    model = getattr(module, name)()
    return model.eval()


def check(path: Path, model: torch.nn.Module, draws: list[torch.Tensor]) -> bool:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    ok = True
    for x in draws:
        with torch.no_grad():
            expected = model(x).numpy()
        (actual,) = session.run(None, {name: x.numpy()})
        ok &= bool(np.allclose(actual, expected, atol=1e-4, rtol=1e-3))
    return ok


def main(spec: str, shape_text: str, out: str) -> int:
    model = load(spec)
    name, dims = shape_text.split(":")
    shape = [int(d) for d in dims.split("x")]
    gen = torch.Generator().manual_seed(0)
    draws = [torch.randn(shape, generator=gen) for _ in range(2)]
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    large = sum(p.numel() * p.element_size() for p in model.parameters()) > 1 << 30
    program = torch.onnx.export(
        model,
        (draws[0],),
        dynamo=True,
        input_names=[name],
        dynamic_shapes={name: {0: torch.export.Dim("batch")}},
        verbose=False,
    )
    assert program is not None
    program.save(str(path), external_data=large)
    raw_ok = check(path, model, draws)
    simplified, valid = onnxsim.simplify(str(path))
    simple_path = path.with_name(f"{path.stem}.sim.onnx")
    onnx.save_model(
        simplified,
        str(simple_path),
        save_as_external_data=large,
        location=f"{simple_path.name}.data" if large else None,
    )
    sim_ok = valid and check(simple_path, model, draws)
    print(f"raw {'ok' if raw_ok else 'MISMATCH'}, simplified {'ok' if sim_ok else 'MISMATCH'}")
    return 0 if raw_ok and sim_ok else 1


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:4]))
