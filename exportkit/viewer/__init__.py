"""Viewing a model in Netron: prepare the viewed copy, serve it, stop it.

``serve(path)`` is the verb: it writes the copy Netron shows (stored shapes, exportkit's findings
in metadata) into a private temporary folder, serves it on 127.0.0.1 and returns at once with a
``ViewHandle``. The user's file is never altered; ``annotate(path, path, ...)`` is the explicit
way to write the findings into it (``--annotate``).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import webbrowser
from collections.abc import Mapping
from pathlib import Path

from exportkit.errors import OnnxFileError
from exportkit.viewer.annotate import (
    AnnotatedModel,
    PreparedView,
    annotate,
    findings_props,
    prepare_view,
    read_node_metadata,
)
from exportkit.viewer.environment import (
    browser_available,
    check_host,
    is_loopback,
    local_addresses,
    ssh_tunnel_hint,
)
from exportkit.viewer.findings import report_findings
from exportkit.viewer.focus import focus_script
from exportkit.viewer.netron import netron_outdated
from exportkit.viewer.server import ViewHandle, check_port, serve_files

__all__ = [
    "AnnotatedModel",
    "PreparedView",
    "ViewHandle",
    "annotate",
    "browser_available",
    "check_host",
    "check_port",
    "findings_props",
    "is_loopback",
    "local_addresses",
    "netron_outdated",
    "prepare_view",
    "read_node_metadata",
    "report_findings",
    "serve",
    "serve_files",
    "ssh_tunnel_hint",
]

logger = logging.getLogger(__name__)


def serve(
    path: str | os.PathLike[str],
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    browser: bool = False,
    model_props: Mapping[str, str] | None = None,
    node_props: Mapping[str, Mapping[str, str]] | None = None,
) -> ViewHandle:
    """Start Netron on ``path`` without blocking and return its handle.

    An ``.onnx`` file is shown through a prepared copy (see ``prepare_view``): intermediate
    shapes stored, ``model_props``/``node_props`` written into its metadata, external weights
    served from beside the original. Other files Netron reads are served as they are. Only the
    model and its data files are reachable: not the rest of its folder, and no data file that
    is a link leading out of it.

    Args:
        path: The model file.
        host: Address to listen on. Anything but loopback makes the model reachable from the
            network.
        port: Port to listen on; None picks a free one. A taken port is an error, never moved.
        browser: Open the page in a web browser, where one can open (see
            ``browser_available``).
        model_props: Entries for the viewed model's ``metadata_props`` (see ``findings_props``).
        node_props: Node name -> entries for that node's ``metadata_props``.

    Returns:
        The running view: ``.url``, ``.stop()``, ``.wait()``, a context manager;
        ``.warnings`` lists what the user should know (failed shape
        inference, a Netron too old to draw); ``.annotation`` says what the copy holds.

    Raises:
        HostError: ``host`` is not an address of this machine.
        OnnxFileError: The file does not exist or is not ONNX, or a data file it names is
            missing or leads outside its folder.
        PortInUseError: ``port`` is taken.
        ViewError: Netron cannot be started (missing package).
    """
    check_host(host)
    source = Path(path)
    if source.is_dir():
        raise OnnxFileError(f"{source} is a folder", hint="give the model file inside it")
    if not source.is_file():
        raise OnnxFileError(f"{source} does not exist", hint="check the path of the model file")
    view_dir = tempfile.mkdtemp(prefix="exportkit-view-")
    try:
        annotation, script = None, ""
        if source.suffix.lower() == ".onnx" or model_props or node_props:
            prepared = prepare_view(
                source, view_dir, model_props=model_props, node_props=node_props
            )
            files, name, annotation = prepared.files, prepared.name, prepared.annotation
            if annotation.missing_data:
                missing = ", ".join(annotation.missing_data)
                # As summary and check: a model without its weights is not the model.
                raise OnnxFileError(
                    f"{source.name} keeps its weights in {missing}, which is missing next to it",
                    hint=f"copy {missing} into {source.parent} beside the .onnx file",
                )
            # The copy's own node metadata says where it diverges (also for --annotate files).
            script = focus_script(read_node_metadata(prepared.model))
        else:
            files, name = {source.name: source}, source.name
        handle = serve_files(
            files,
            name,
            host=host,
            port=port,
            title=str(source),
            folder=source.parent,
            on_stop=lambda: shutil.rmtree(view_dir, ignore_errors=True),
            page_script=script,
        )
    except BaseException:
        shutil.rmtree(view_dir, ignore_errors=True)
        raise
    handle.annotation = annotation
    if annotation is not None and annotation.shape_inference_error:
        handle.warnings += (
            "shape inference failed, so intermediate shapes are not shown "
            f"({annotation.shape_inference_error})",
        )
    logger.info("serving %s at %s", source, handle.url)
    if browser and browser_available():
        webbrowser.open(handle.url)
    return handle
