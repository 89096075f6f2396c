"""A picture of the graph as inline SVG, laid out by Graphviz ``dot``, with the findings on it.

The layout is Graphviz's (a maintained layout engine, packaged by Debian, Homebrew and conda):
exportkit only writes the graph in the DOT language, with one cluster per PyTorch module, and
colours the diverging module and node. When ``dot`` is missing or too slow, there is no
picture and ``GraphPicture.missing`` says why; the rest of a report does not depend on it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from exportkit.summary.results import NodeInfo

if TYPE_CHECKING:
    from exportkit.summary.results import GraphSummary, ModuleInfo, TensorInfo

__all__ = ["MAX_NODES", "GraphPicture", "collapse", "draw_graph", "graph_dot"]

#: Past this many boxes, modules are drawn folded (one box each) at the deepest level that fits:
#: dot's layout time grows quickly with size (2.2 s for 1,473 nodes here).
MAX_NODES = 1500

# Header colours by op family, close to Netron's categories.
_COLOURS = {
    "layer": ("#dbe8f5", ("Conv", "ConvTranspose", "Gemm", "MatMul", "LSTM", "GRU", "RNN")),
    "activation": ("#f6dcd6", ("Relu", "Gelu", "Sigmoid", "Tanh", "Softmax", "LeakyRelu", "Elu")),
    "norm": ("#dcefdc", ("BatchNormalization", "LayerNormalization", "InstanceNormalization")),
    "shape": ("#eeeeee", ("Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Concat")),
}
_DIVERGING = "#d62728"
_IN_MODULE = "#fbe3c0"


@dataclass(frozen=True)
class GraphPicture:
    """The drawn graph: an ``<svg>`` element to inline, or why there is none.

    Attributes:
        svg: The SVG element (no XML prolog), or None when the graph was not drawn.
        renderer: What drew it, e.g. ``"graphviz dot 2.43.0"``; ``""`` when nothing did.
        seconds: Time spent in the renderer.
        missing: Why there is no picture (renderer not installed, too large, failed).
    """

    svg: str | None
    renderer: str
    seconds: float = 0.0
    missing: str | None = None
    folded_at: int | None = None  # modules deeper than this depth are one box each


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _attrs(**values: str) -> str:
    return "[" + ", ".join(f"{k}={_quote(v)}" for k, v in values.items() if v) + "]"


def _shape(info: TensorInfo) -> str:
    if info.shape is None:
        return ""
    return "×".join("?" if d is None else str(d) for d in info.shape) or "scalar"


def _fill(op_type: str) -> str:
    for colour, ops in _COLOURS.values():
        if op_type in ops:
            return colour
    return "#ffffff"


def _within(path: str, module: str | None) -> bool:
    return module is not None and (module == "" or path == module or path.startswith(module + "."))


def graph_dot(
    summary: GraphSummary,
    *,
    diverging_module: str | None = None,
    diverging_node: str | None = None,
) -> str:
    """The graph in the DOT language: a box per node, a cluster per module, shapes on edges.

    Nodes of ``diverging_module`` are filled orange and its cluster drawn red; the node named
    ``diverging_node`` is filled red. SVG ids are ``node-<ONNX node name>`` and
    ``module-<module path>``; node classes say ``diverging`` and ``in-diverging-module``.
    """
    lines = [
        "digraph exportkit {",
        '  graph [rankdir=TB, fontname="Helvetica", fontsize=10, nodesep=0.25, ranksep=0.3];',
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10, '
        'height=0.3, margin="0.08,0.03"];',
        '  edge [fontname="Helvetica", fontsize=8, color="#888888", arrowsize=0.6];',
    ]
    producer: dict[str, str] = {}
    for value in summary.inputs:
        key = f"in:{value.name}"
        producer[value.name] = key
        label = f"{value.name}\n{_shape(value)}"
        lines.append(
            f"  {_quote(key)} {_attrs(label=label, shape='ellipse', fillcolor='#f0f0f0')};"
        )
    for i, node in enumerate(summary.nodes):
        for out in node.outputs:
            producer[out.name] = f"n{i}"
    modules = {m.path: m for m in summary.modules}

    def node_line(i: int, indent: str, caption: str = "") -> str:
        node = summary.nodes[i]
        classes, fill, font, pen = [], _fill(node.op_type), "#000000", "#666666"
        if _within(node.module, diverging_module):
            classes.append("in-diverging-module")
            fill = _IN_MODULE
        if diverging_node is not None and node.name == diverging_node:
            classes.append("diverging")
            fill, font, pen = _DIVERGING, "#ffffff", _DIVERGING
            caption = f"{caption}\ndiverges here" if caption else "diverges here"
        tooltip = f"{node.name} ({node.op_type})\nmodule: {node.module or '(model)'}"
        return f"{indent}n{i} " + _attrs(
            label=f"{node.op_type}\n{caption}" if caption else node.op_type,
            tooltip=tooltip,
            id=f"node-{node.name}" if node.name else f"node-{i}",
            fillcolor=fill,
            fontcolor=font,
            color=pen,
            penwidth="2" if classes else "",
            **{"class": " ".join(classes)},
        )

    def cluster(module: ModuleInfo, indent: str) -> Iterable[str]:
        diverging = module.path == diverging_module
        name = module.path.rsplit(".", 1)[-1]
        cls = (module.class_name or "").rsplit(".", 1)[-1]
        label = f"{name}: {cls}" if cls else name
        if len(module.nodes) == 1 and not module.children and not diverging:
            # A module of one node (most library layers): named in the node, not boxed.
            yield node_line(module.nodes[0], indent, label)
            return
        yield f"{indent}subgraph {_quote('cluster_' + module.path)} {{"
        yield (
            f"{indent}  graph "
            + _attrs(
                label=label,
                tooltip=module.path,
                id=f"module-{module.path}",
                style="rounded,filled" if diverging else "rounded",
                color=_DIVERGING if diverging else "#bbbbbb",
                fillcolor="#fff1f0" if diverging else "",
                penwidth="2" if diverging else "1",
                fontcolor=_DIVERGING if diverging else "#555555",
                labeljust="l",
            )
            + ";"
        )
        yield from members(module, indent + "  ")
        yield f"{indent}}}"

    def members(module: ModuleInfo, indent: str) -> Iterable[str]:
        for i in module.nodes:
            yield node_line(i, indent)
        for child in module.children:
            if child in modules:
                yield from cluster(modules[child], indent)

    root = modules.get("")
    if root is not None:
        lines += members(root, "  ")
    placed = {i for m in summary.modules for i in m.nodes}
    lines += [node_line(i, "  ") for i in range(len(summary.nodes)) if i not in placed]
    shapes = {out.name: _shape(out) for node in summary.nodes for out in node.outputs}
    for i, node in enumerate(summary.nodes):
        for name in dict.fromkeys(node.inputs):
            if name in producer:
                lines.append(
                    f"  {_quote(producer[name])} -> n{i} {_attrs(label=shapes.get(name, ''))};"
                )
    for value in summary.outputs:
        key = f"out:{value.name}"
        label = f"{value.name}\n{_shape(value)}"
        lines.append(
            f"  {_quote(key)} {_attrs(label=label, shape='ellipse', fillcolor='#f0f0f0')};"
        )
        if value.name in producer:
            lines.append(f"  {_quote(producer[value.name])} -> {_quote(key)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def collapse(summary: GraphSummary, depth: int) -> tuple[GraphSummary, dict[str, str]]:
    """The summary with every module at ``depth`` (the root is 0) folded into one node.

    Returns the folded summary and, for each folded ONNX node, the name of its box (the
    module's path), so findings on a node can be shown on its box.
    """
    mods = {m.path: m for m in summary.modules}

    def box_of(path: str) -> str | None:
        m = mods.get(path)
        if m is None or m.depth < depth:
            return None
        while m.depth > depth and m.parent is not None:
            m = mods[m.parent]
        return m.path

    nodes: list[NodeInfo] = []
    index: dict[int, int] = {}
    inner: dict[str, list[int]] = {}
    for i, node in enumerate(summary.nodes):
        box = box_of(node.module)
        if box is None:
            index[i] = len(nodes)
            nodes.append(node)
        else:
            inner.setdefault(box, []).append(i)
    boxes: dict[str, int] = {}
    folded: dict[str, str] = {}
    for box, members in inner.items():
        made = {o.name for i in members for o in summary.nodes[i].outputs}
        reads = [x for i in members for x in summary.nodes[i].inputs if x not in made]
        cls = (mods[box].class_name or "").rsplit(".", 1)[-1]
        label = f"{box.rsplit('.', 1)[-1]}: {cls}" if cls else box.rsplit(".", 1)[-1]
        boxes[box] = len(nodes)
        nodes.append(
            NodeInfo(
                name=box,
                op_type=f"{label}\n{len(members):,} nodes",
                domain="",
                module=box,
                inputs=tuple(dict.fromkeys(reads)),
                outputs=tuple(o for i in members for o in summary.nodes[i].outputs),
                params=sum(summary.nodes[i].params for i in members),
                macs=None,
            )
        )
        folded.update({summary.nodes[i].name: box for i in members})
    modules = []
    for m in summary.modules:
        if m.depth >= depth:
            continue
        kept = tuple(index[i] for i in m.nodes if i in index)
        shown = tuple(boxes[c] for c in m.children if c in boxes)
        children = tuple(c for c in m.children if mods[c].depth < depth)
        modules.append(replace(m, nodes=kept + shown, children=children))
    return replace(summary, nodes=tuple(nodes), modules=tuple(modules)), folded


def _fitting(
    summary: GraphSummary, max_nodes: int
) -> tuple[GraphSummary, dict[str, str], int | None]:
    """The summary itself when small enough, else folded at the deepest depth that fits."""
    if len(summary.nodes) <= max_nodes:
        return summary, {}, None
    for depth in range(max((m.depth for m in summary.modules), default=0), 0, -1):
        folded, names = collapse(summary, depth)
        if len(folded.nodes) <= max_nodes:
            return folded, names, depth
    return summary, {}, None


def _dot_version(dot: str) -> str:
    try:
        done = subprocess.run([dot, "-V"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "graphviz dot"
    match = re.search(r"version (\S+)", done.stderr + done.stdout)
    return f"graphviz dot {match.group(1)}" if match else "graphviz dot"


def draw_graph(
    summary: GraphSummary,
    *,
    diverging_module: str | None = None,
    diverging_node: str | None = None,
    timeout: float = 60.0,
    max_nodes: int = MAX_NODES,
) -> GraphPicture:
    """Lay out and draw the graph with Graphviz ``dot``; never raises for a missing renderer.

    Args:
        summary: The graph summary of the ONNX file.
        diverging_module: The PyTorch module whose nodes stand out (a failed export).
        diverging_node: The ONNX node name drawn in red.
        timeout: Seconds dot may take before the picture is given up.
        max_nodes: Larger graphs are drawn with modules folded into boxes (``collapse``) at
            the deepest module depth that fits, or not at all when none does.
    """
    dot = shutil.which("dot")
    if dot is None:
        return GraphPicture(
            None,
            "",
            missing="Graphviz is not installed, so the graph is not drawn "
            "(apt-get install graphviz, brew install graphviz or conda install graphviz)",
        )
    renderer = _dot_version(dot)
    drawn, folded, depth = _fitting(summary, max_nodes)
    if len(drawn.nodes) > max_nodes:
        return GraphPicture(
            None,
            renderer,
            missing=f"the graph has {len(summary.nodes):,} nodes and no module depth folds it "
            f"to {max_nodes:,} boxes (open the file in Netron: exportkit view)",
        )
    if diverging_node is not None and diverging_node in folded:
        diverging_node = folded[diverging_node]  # the finding goes on its module's box
        if diverging_module is not None and f"{diverging_module}.".startswith(f"{diverging_node}."):
            diverging_module = diverging_node  # folded inside the box: the box is marked
    text = graph_dot(drawn, diverging_module=diverging_module, diverging_node=diverging_node)
    start = time.perf_counter()
    try:
        done = subprocess.run(
            [dot, "-Tsvg"], input=text, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return GraphPicture(None, renderer, timeout, f"dot took more than {timeout:g} s")
    seconds = time.perf_counter() - start
    if done.returncode != 0 or "<svg" not in done.stdout:
        why = (done.stderr.strip().splitlines() or ["no output"])[0]
        return GraphPicture(None, renderer, seconds, f"dot failed: {why}")
    svg = done.stdout[done.stdout.index("<svg") :]
    return GraphPicture(svg, renderer, seconds, folded_at=depth)
