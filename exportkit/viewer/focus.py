"""The findings on Netron's graph: the page opens on the diverging node, its module stands out.

Netron's page has no URL parameter for a node, so exportkit adds one small script to the page it
serves. The script uses only what Netron's page shows any user: each drawn node is an SVG group
with the id ``node-name-<ONNX node name>``, a click on a node's header selects it and opens its
properties (Netron's own code does both), and ``<body>`` gets the class ``default`` once the graph
is drawn. Nothing of Netron's internals is called, so a Netron release that renames one of these
leaves the page as it was (the graph, without the focus) and the browser test says which.

What to mark comes from the viewed file's own node metadata (``exportkit.diverges`` on the
diverging node, ``exportkit.in_diverging_module`` on its module's nodes), which
``report_findings`` writes: an annotated file (``--annotate``) opens on its finding too.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping

__all__ = ["DIVERGES", "IN_DIVERGING_MODULE", "focus_script", "with_inline_script"]

#: Node metadata key on the diverging node (its value: what differs).
DIVERGES = "exportkit.diverges"
#: Node metadata key on every node of the diverging module (its value: the module).
IN_DIVERGING_MODULE = "exportkit.in_diverging_module"

_SCRIPT = """
(() => {
  const findings = %s;
  const style = document.createElement('style');
  style.textContent = [
    '.exportkit-module > .node.node-border { stroke: #e8890c; stroke-width: 4px; }',
    '.exportkit-module .node-item-type path { fill: #e8890c; }',
    '.exportkit-diverging > .node.node-border { stroke: #d62728; stroke-width: 5px; }',
    '.exportkit-diverging .node-item-type path { fill: #d62728; }',
  ].join('\\n');
  document.head.appendChild(style);
  const node = (name) => document.getElementById('node-name-' + name);
  let focused = false;
  const mark = () => {
    if (!document.body || !document.body.classList.contains('default')) {
      return;
    }
    // Netron draws the graph anew (expanding a function, changing options): mark again.
    for (const name of findings.module) {
      const element = node(name);
      if (element) {
        element.classList.add('exportkit-module');
      }
    }
    const target = node(findings.focus);
    if (!target) {
      return;
    }
    target.classList.add('exportkit-diverging');
    if (!focused) {
      focused = true;
      const header = target.querySelector('.node-item-type') || target;
      header.dispatchEvent(new MouseEvent('click', { bubbles: true }));
      target.scrollIntoView({ block: 'center', inline: 'center' });
      document.body.setAttribute('data-exportkit-focus', findings.focus);
    }
  };
  window.setInterval(mark, 200);
})();
"""
# Netron's page allows only its own script files (``script-src 'self'``).
_CSP = re.compile(r'(<meta http-equiv="Content-Security-Policy" content="[^"]*script-src )([^;"]*)')


def focus_script(node_metadata: Mapping[str, Mapping[str, str]]) -> str:
    """The script that focuses the diverging node; ``""`` when no node diverges.

    Args:
        node_metadata: Node name -> its metadata (``read_node_metadata`` of the viewed file).
    """
    focus = next((name for name, props in node_metadata.items() if DIVERGES in props), None)
    if focus is None:
        return ""
    module = sorted(name for name, props in node_metadata.items() if IN_DIVERGING_MODULE in props)
    # json.dumps escapes nothing HTML-special; "</" must not close the script early.
    config = json.dumps({"focus": focus, "module": module}).replace("</", "<\\/")
    return _SCRIPT % config


def with_inline_script(page: str, script: str) -> str:
    """``page`` with ``script`` inline at the end of its body, allowed by the page's own
    Content-Security-Policy through the script's hash (the page keeps refusing any other)."""
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    page = _CSP.sub(lambda m: f"{m.group(1)}{m.group(2)} 'sha256-{digest}'", page, count=1)
    tag = f"<script>{script}</script>\n"
    at = page.rfind("</body>")
    return page[:at] + tag + page[at:] if at >= 0 else page + tag
