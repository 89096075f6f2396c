"""The CLI's job in a few lines of the public API: export, check the verdict, summarize.

python examples/api.py
"""

import torch
from torch import nn

import exportkit


class TinyClassifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 4))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.body(features)


if __name__ == "__main__":
    report = exportkit.export(
        TinyClassifier(),
        {"features": torch.randn(8, 16)},
        "exportkit_out/tiny/tiny.onnx",
        dynamic=["batch"],
    )
    worst = report.validation.worst() if report.validation else {}
    for name, check in worst.items():
        print(f"{name}: max abs diff {check.max_abs:.2e} ({'ok' if check.passed else 'MISMATCH'})")
    summary = exportkit.summarize(report.output)
    print(f"{report.export.exporter} export, {len(summary.nodes)} nodes -> {report.output}")
    raise SystemExit(0 if report.passed else 1)
