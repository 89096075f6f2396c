"""The file Netron shows: stored shapes and exportkit's findings in metadata, weights left in place.

Every function here reads the model with ``load_external_data=False``: shape inference and
metadata need only the graph, so a model with 2 GB of external weights costs milliseconds and
no memory for the weights; the written graph keeps pointing at the same data file names.
"""

from __future__ import annotations

import logging
import os
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from exportkit.errors import OnnxFileError
from exportkit.onnxfile import all_nodes, data_locations, set_props, write_atomic

if TYPE_CHECKING:
    import onnx

__all__ = [
    "AnnotatedModel",
    "PreparedView",
    "annotate",
    "findings_props",
    "prepare_view",
    "read_node_metadata",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AnnotatedModel:
    """What ``annotate`` wrote.

    Attributes:
        path: The annotated model file.
        shapes_inferred: True when ONNX shape inference ran and its shapes were stored.
        shape_inference_error: Why shape inference did not run, when it did not.
        unmatched_nodes: Keys of ``node_props`` that name no node of the graph.
        data_files: External data location (as written in the model) -> file beside the source.
        missing_data: External data locations the model names but that do not exist.
    """

    path: Path
    shapes_inferred: bool
    shape_inference_error: str | None
    unmatched_nodes: tuple[str, ...]
    data_files: Mapping[str, Path]
    missing_data: tuple[str, ...]


@dataclass(frozen=True)
class PreparedView:
    """A model prepared for Netron: the annotated copy and every file the page may fetch.

    Attributes:
        model: The annotated copy written into the view folder.
        name: The name the page opens it by (the source file's name).
        files: Served name -> file on disk: the copy and the source's external data files.
        annotation: What ``annotate`` did.
    """

    model: Path
    name: str
    files: Mapping[str, Path]
    annotation: AnnotatedModel


def findings_props(
    *,
    verdict: str,
    max_abs_diff: Mapping[str, float],
    exporter: str | None = None,
    simplifier: str | None = None,
    first_diverging_module: str | None = None,
) -> dict[str, str]:
    """exportkit's findings as model metadata entries (shown in Netron's model properties).

    Args:
        verdict: The validation verdict, e.g. ``"pass"`` or ``"mismatch"``.
        max_abs_diff: Output name -> max abs difference between PyTorch and onnxruntime.
        exporter: The exporter that wrote the file, e.g. ``"dynamo"``.
        simplifier: The simplifier kept, e.g. ``"onnxsim"`` or ``"none"``.
        first_diverging_module: For a mismatch, the first module whose outputs diverge.

    Returns:
        ``exportkit.verdict``; ``exportkit.max_abs_diff`` as ``"logits: 0.0481; aux: 3.2e-07"``
        (one row in Netron, each output named); and ``exportkit.exporter``,
        ``exportkit.simplifier``, ``exportkit.first_diverging_module`` when given.
    """
    props = {"exportkit.verdict": verdict}
    if max_abs_diff:
        props["exportkit.max_abs_diff"] = "; ".join(
            f"{output}: {diff:.3g}" for output, diff in max_abs_diff.items()
        )
    if exporter is not None:
        props["exportkit.exporter"] = exporter
    if simplifier is not None:
        props["exportkit.simplifier"] = simplifier
    if first_diverging_module is not None:
        props["exportkit.first_diverging_module"] = first_diverging_module
    return props


def _load_graph(path: Path) -> onnx.ModelProto:
    """The model proto without its external weights; OnnxFileError when it is not ONNX."""
    import onnx
    from google.protobuf.message import DecodeError

    if not path.is_file():
        raise OnnxFileError(f"{path} does not exist", hint="check the path of the .onnx file")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise OnnxFileError(
            f"{path} is not an ONNX model ({exc})",
            hint="give a .onnx file written by an ONNX exporter",
        ) from exc
    if not model.HasField("graph"):
        raise OnnxFileError(
            f"{path} is not an ONNX model (it has no graph)",
            hint="give a .onnx file written by an ONNX exporter",
        )
    return model


def _data_files(model: onnx.ModelProto, source: Path) -> tuple[dict[str, Path], tuple[str, ...]]:
    """External data location -> file beside ``source``; and the locations that are missing."""
    found: dict[str, Path] = {}
    missing: list[str] = []
    for location in data_locations(model):
        relative = posixpath.normpath(location.replace("\\", "/"))
        if relative.startswith("../") or relative == ".." or posixpath.isabs(relative):
            # ONNX forbids data outside the model's folder; serving it would expose the disk.
            raise OnnxFileError(
                f"{source} names external data outside its folder: {location!r}",
                hint="keep external data files in the model's folder, named relative to it",
            )
        path = source.parent / relative
        if path.is_file():
            found[location] = path
        else:
            missing.append(location)
    return found, tuple(missing)


def _infer_shapes(model: onnx.ModelProto) -> tuple[onnx.ModelProto, str | None]:
    """The model with inferred shapes stored as value_info; the model unchanged on failure."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(
            model, check_type=False, strict_mode=False, data_prop=True
        )
    except Exception as exc:
        logger.info("shape inference failed, showing the graph without it: %s", exc)
        return model, f"{type(exc).__name__}: {exc}"
    return inferred, None


def annotate(
    model_path: str | os.PathLike[str],
    dst_path: str | os.PathLike[str],
    *,
    model_props: Mapping[str, str] | None = None,
    node_props: Mapping[str, Mapping[str, str]] | None = None,
    infer_shapes: bool = True,
) -> AnnotatedModel:
    """Write ``model_path`` to ``dst_path`` with stored shapes and exportkit's findings.

    The graph is read without external weights and written as a graph only: its tensors keep
    pointing at the same data file names (relative to the model file), so ``dst_path`` finds
    its weights when it lies beside them (``dst_path == model_path`` annotates in place, which is
    what ``--annotate`` does). Existing metadata keys are replaced, others are kept.

    Args:
        model_path: The ONNX file to read.
        dst_path: Where to write the annotated model (written beside, then renamed).
        model_props: Entries for the model's ``metadata_props`` (Netron: model properties).
        node_props: Node name -> entries for that node's ``metadata_props`` (Netron: node
            properties). Names match nodes in the main graph, subgraphs and functions.
        infer_shapes: Run ONNX shape inference and store intermediate shapes.

    Returns:
        What was written; names in ``node_props`` that match no node are listed, not fatal.

    Raises:
        OnnxFileError: The file does not exist, is not ONNX, or names external data outside
            its folder.
        OutputPathError: ``dst_path`` cannot be written.
    """
    source = Path(model_path)
    dst = Path(dst_path)
    model = _load_graph(source)
    data_files, missing = _data_files(model, source)
    error: str | None = None
    if infer_shapes:
        model, error = _infer_shapes(model)
    if model_props:
        set_props(model.metadata_props, model_props)
    unmatched: list[str] = []
    if node_props:
        by_name: dict[str, list[onnx.NodeProto]] = {}
        for node in all_nodes(model):
            if node.name:
                by_name.setdefault(node.name, []).append(node)
        for name, props in node_props.items():
            if name not in by_name:
                unmatched.append(name)
            for node in by_name.get(name, []):
                set_props(node.metadata_props, props)
        if unmatched:
            logger.info("no node named %s in %s", ", ".join(unmatched), source)
    write_atomic(dst, model.SerializeToString(), hint="choose a folder you can write to")
    return AnnotatedModel(
        path=dst,
        shapes_inferred=infer_shapes and error is None,
        shape_inference_error=error,
        unmatched_nodes=tuple(unmatched),
        data_files=data_files,
        missing_data=missing,
    )


def prepare_view(
    model_path: str | os.PathLike[str],
    view_dir: str | os.PathLike[str],
    *,
    model_props: Mapping[str, str] | None = None,
    node_props: Mapping[str, Mapping[str, str]] | None = None,
) -> PreparedView:
    """Write the copy of ``model_path`` that Netron shows into ``view_dir``; the source stays.

    The copy has stored shapes and the given findings (see ``annotate``). Its external weights
    are not copied: ``files`` maps their names to the files beside the source, and the server
    answers exactly those names, so Netron finds the weights and nothing else is exposed.

    Args:
        model_path: The ONNX file to view.
        view_dir: An existing, private folder for the copy (for example a ``mkdtemp`` folder).
        model_props: Entries for the model's ``metadata_props``.
        node_props: Node name -> entries for that node's ``metadata_props``.

    Raises:
        OnnxFileError: The file does not exist or is not ONNX.
        OutputPathError: ``view_dir`` cannot be written.
    """
    source = Path(model_path)
    copy = Path(view_dir) / source.name
    annotation = annotate(source, copy, model_props=model_props, node_props=node_props)
    files: dict[str, Path] = {source.name: copy}
    for location, path in annotation.data_files.items():
        files.setdefault(location, path)
    return PreparedView(model=copy, name=source.name, files=files, annotation=annotation)


def read_node_metadata(model_path: str | os.PathLike[str]) -> dict[str, dict[str, str]]:
    """Node name -> that node's ``metadata_props``, for every named node that has some.

    Simplifiers drop node metadata (the module hierarchy, ``pkg.torch.onnx.name_scopes``) but
    keep node names: read it from the raw export and pass it as ``node_props`` to put the
    hierarchy back in the viewed file.
    """
    model = _load_graph(Path(model_path))
    return {
        node.name: {entry.key: entry.value for entry in node.metadata_props}
        for node in all_nodes(model)
        if node.name and len(node.metadata_props) > 0
    }
