"""Write the files the README's model-naming examples read, from examples/conv_net.py.

python examples/make_archives.py out/   # writes, in out/:
  conv_net_weights.pt        a plain state dict (torch.save(model.state_dict()))
  conv_net_checkpoint.pt     a training checkpoint holding it under "model_state_dict"
  conv_net.safetensors       the same weights as safetensors
  conv_net.pt                a TorchScript archive (torch.jit.script(...).save)
  conv_net.pt2               a torch.export archive with a dynamic batch dim
  images.npy                 real input data: 4 images of 3x64x64
"""

import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).parent))
from conv_net import ConvNet


def main(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = ConvNet().eval()
    torch.save(model.state_dict(), folder / "conv_net_weights.pt")
    torch.save(
        {"epoch": 10, "model_state_dict": model.state_dict()}, folder / "conv_net_checkpoint.pt"
    )
    save_file(model.state_dict(), str(folder / "conv_net.safetensors"))
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore", DeprecationWarning
        )  # TorchScript is deprecated, still common
        torch.jit.script(model).save(str(folder / "conv_net.pt"))
    x = torch.randn(2, 3, 64, 64)
    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(model, (x,), dynamic_shapes={"x": {0: batch}})
    torch.export.save(program, str(folder / "conv_net.pt2"))
    np.save(
        folder / "images.npy",
        np.random.default_rng(0).standard_normal((4, 3, 64, 64), dtype=np.float32),
    )
    print(f"wrote {', '.join(sorted(p.name for p in folder.iterdir()))} in {folder}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "out"))
