"""Golden outputs of every summary format on graphs built with onnx.helper (no torch).

Regenerate after an intended change with ``pytest tests/test_summary_golden.py --update-golden``
and review the diff.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import onnx
import pytest

from exportkit.report.summary import render_summary
from exportkit.summary import GraphSummary, summarize
from tests.summary_graphs import attention_block, conv_net, custom_op_graph, save

GRAPHS: dict[str, Callable[[], onnx.ModelProto]] = {
    "conv_net": conv_net,
    "attention": attention_block,
    "custom_op": custom_op_graph,
}


def _summary(name: str, tmp_path: Path) -> GraphSummary:
    s = summarize(save(GRAPHS[name](), tmp_path / f"{name}.onnx"))
    # The tmp path differs per run; goldens show the file name only.
    return dataclasses.replace(s, path=f"{name}.onnx")


@pytest.mark.parametrize("name", sorted(GRAPHS))
@pytest.mark.parametrize(("fmt", "ext"), [("table", "txt"), ("json", "json"), ("markdown", "md"),
                                          ("csv", "csv")])  # fmt: skip
def test_golden_formats(
    name: str, fmt: str, ext: str, tmp_path: Path, golden: Callable[[str, str], None]
) -> None:
    s = _summary(name, tmp_path)
    text = render_summary(s, fmt)  # type: ignore[arg-type]
    if fmt == "json":  # file size is stable for helper graphs, but keep goldens robust to onnx
        text = text.replace(f'"file_bytes": {s.file_bytes}', '"file_bytes": 0')
    golden(f"summary_{name}.{ext}", text)


def test_golden_depth_and_columns(tmp_path: Path, golden: Callable[[str, str], None]) -> None:
    s = _summary("attention", tmp_path)
    text = render_summary(s, "table", depth=1, columns=["name", "type", "params", "macs", "nodes"])
    golden("summary_attention_depth1.txt", text)
