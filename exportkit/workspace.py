"""The output folder: a private working folder beside the target, files moved in by rename.

The ``-o`` target only ever receives a file that passed. A failing file is kept beside it as
``<stem>.failed.onnx`` (its external data renamed with it), so the earlier good file survives and
the failure can still be viewed. Working folders carry their process id: the next run in the
folder removes those whose process is gone (a run killed by SIGKILL or the OOM killer).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from exportkit.errors import DiskFullError, OutputPathError
from exportkit.onnxfile import external_tensors

__all__ = [
    "check_target",
    "default_output",
    "failed_path",
    "install",
    "remove_stale",
    "workspace",
]

logger = logging.getLogger(__name__)

PREFIX = ".exportkit-"
_OWNER = re.compile(rf"^{re.escape(PREFIX)}(\d+)-")


def default_output(name: str) -> Path:
    """``exportkit_out/<name>/<name>.onnx``: one folder per model."""
    return Path("exportkit_out") / name / f"{name}.onnx"


def failed_path(target: Path) -> Path:
    """Where a file that failed its checks is kept: ``model.onnx`` -> ``model.failed.onnx``."""
    return target.with_name(f"{target.stem}.failed{target.suffix}")


def check_target(path: Path) -> None:
    """Refuse, before any work, an output path that cannot receive the model.

    Raises:
        OutputPathError: not ``.onnx``, a folder, or a folder that cannot be created or written.
    """
    hint = "write -o path/to/model.onnx"
    if path.suffix != ".onnx":
        raise OutputPathError(f"output {str(path)!r} does not end in .onnx", hint=hint)
    if path.is_dir():
        raise OutputPathError(f"output {str(path)!r} is a folder", hint=hint)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputPathError(
            f"cannot create folder {str(path.parent)!r}: {exc.strerror}",
            hint="choose another -o path",
        ) from None
    if not os.access(path.parent, os.W_OK):
        raise OutputPathError(
            f"cannot write to folder {str(path.parent)!r}: permission denied",
            hint="choose another -o path",
        )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    return True


def remove_stale(folder: Path) -> list[Path]:
    """Remove working folders left in ``folder`` by runs whose process is gone."""
    removed = []
    for entry in folder.glob(f"{PREFIX}*"):
        owner = _OWNER.match(entry.name)
        if owner is None or not entry.is_dir() or _alive(int(owner.group(1))):
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
        logger.info("removed %s, left by a run that was killed", entry)
    return removed


def _full_disk(exc: BaseException | None) -> OSError | None:
    """The ENOSPC somewhere in an exception's chain, if any (exporters wrap it)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            return exc
        if "No space left on device" in str(exc):
            return OSError(errno.ENOSPC, "No space left on device")
        exc = exc.__cause__ or exc.__context__
    return None


@contextlib.contextmanager
def workspace(target: Path) -> Iterator[Path]:
    """A private folder beside ``target``, removed afterwards; a full disk becomes DiskFullError."""
    remove_stale(target.parent)
    try:
        work = Path(
            tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-{target.stem}-", dir=target.parent)
        )
    except OSError as exc:
        if _full_disk(exc) is None:
            raise
        raise _disk_error(exc, target) from exc
    try:
        yield work
    except BaseException as exc:
        if _full_disk(exc) is not None and not isinstance(exc, DiskFullError):
            raise _disk_error(exc, target) from exc
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _disk_error(exc: BaseException, target: Path) -> DiskFullError:
    folder = target.parent.resolve()
    free = ""
    with contextlib.suppress(OSError):
        free = f" ({shutil.disk_usage(folder).free // 2**20} MiB free)"
    return DiskFullError(
        f"no space left on the disk holding {folder}{free} while writing the model",
        hint=f"free space there, or write to another disk with -o; {target} was not changed",
    )


def _relocate_data(model_file: Path, old_name: str, new_name: str) -> dict[str, str]:
    """Point the model's external-data entries at files named after ``new_name``."""
    import onnx

    model = onnx.load(str(model_file), load_external_data=False)
    renames: dict[str, str] = {}
    for tensor in external_tensors(model):
        for entry in tensor.external_data:
            if entry.key != "location":
                continue
            old = entry.value
            new = (
                new_name + old[len(old_name) :]
                if old.startswith(old_name)
                else f"{Path(new_name).stem}.{old}"
            )
            renames[old] = entry.value = new
    if renames:
        onnx.save_model(model, str(model_file))
    return renames


def install(files: Sequence[Path], target: Path, *, passed: bool) -> tuple[Path, ...]:
    """Move a finished model (first of ``files``) and its data files in, each by atomic rename.

    A model that passed goes to ``target``; one that did not goes to ``failed_path(target)``,
    with its external-data files renamed so that they never replace the good file's data.
    """
    model, *data = files
    dest = target if passed else failed_path(target)
    renames = _relocate_data(model, model.name, dest.name) if not passed and data else {}
    installed = []
    for f in data:
        to = target.parent / renames.get(f.name, f.name)
        f.replace(to)
        installed.append(to)
    model.replace(dest)  # last: the model never names data that is not in place yet
    return (dest, *installed)
