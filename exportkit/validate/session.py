"""onnxruntime on one file: a CPU session, its feeds from example inputs, and a run whose
failure comes back as a typed ``RunFailure`` (the failing node read once, where it is raised)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from exportkit.errors import InputSpecError, RuntimeStageError, first_line
from exportkit.validate.cases import to_numpy
from exportkit.validate.fit import match_names
from exportkit.validate.results import RunFailure

if TYPE_CHECKING:
    import numpy as np

    from exportkit.inputs import ExampleInputs

__all__ = ["feeds_for", "run_session", "session"]

# onnxruntime names the node it failed in only inside its message: "... node. Name:'node_3' ...".
_ORT_NODE = re.compile(r"Name:'([^']*)'")


def session(path: Path) -> Any:
    """An onnxruntime CPU session on the file (external data is found beside it).

    Raises:
        RuntimeStageError: onnxruntime cannot load the file.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 4  # failures come back as exceptions; no stderr noise
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise RuntimeStageError(
            f"onnxruntime cannot load {path.name}: {first_line(exc)}",
            hint="the file may use an op or opset onnxruntime lacks; try another --opset",
        ) from exc


def feeds_for(sess: Any, inputs: ExampleInputs) -> dict[str, Any]:
    """The session's feeds from the inputs: by name (``past_key_values.0.key`` is
    ``past_key_values_0_key``), else by position (a file exported
    elsewhere, with its own input names).

    Raises:
        InputSpecError: the file wants inputs the example does not have.
    """
    wanted = [spec.name for spec in sess.get_inputs()]
    given = inputs.tensors
    matched = match_names(wanted, list(given))  # by name, or spelled otherwise
    if matched is not None:
        return {name: to_numpy(given[matched[name]]) for name in wanted}
    if len(wanted) == len(given):
        return {name: to_numpy(t) for name, t in zip(wanted, given.values())}
    missing = [n for n in wanted if n not in given]
    raise InputSpecError(
        f"the ONNX file wants inputs {', '.join(missing)}; given: {', '.join(given)}",
        hint="give the inputs the file was exported with (--input NAME:SHAPE:DTYPE)",
    )


def run_session(sess: Any, inputs: ExampleInputs) -> list[np.ndarray] | RunFailure:
    """Every output of ``sess`` on ``inputs``, or why it could not run."""
    try:
        feeds = feeds_for(sess, inputs)
    except InputSpecError as exc:
        return RunFailure("inputs", exc.message)
    try:
        return list(sess.run(None, feeds))
    except Exception as exc:
        line = first_line(exc)
        node = _ORT_NODE.search(line)
        status = line.partition("Status Message: ")[2] or None
        return RunFailure(
            "run", f"onnxruntime failed: {line}", node.group(1) if node else None, status
        )
