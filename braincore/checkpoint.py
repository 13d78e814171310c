"""Atomic checkpoints: save and load nested dicts of tensors (parameters, state, traces, RNG states).

``save_checkpoint(path, payload)`` writes to a temporary file in the same folder, flushes it to disk and
renames it over ``path`` (``os.replace`` is atomic on POSIX and Windows), so a crash mid-write never leaves a
truncated checkpoint: either the old file or the new one is there. ``load_checkpoint`` reads with
``torch.load(..., weights_only=True)``: only tensors and plain containers (dict, list, tuple, str, int, float,
bool, None) are accepted, never arbitrary pickled objects.

A payload is a nested dict whose leaves are tensors or plain values; RNG states (``torch.Generator.get_state()``)
are uint8 tensors and round-trip exactly.

Every file that cannot be used is one :class:`~braincore.errors.CheckpointError` naming it and what is wrong,
never a traceback from the unpickler::

    run/ckpt.pt: not a braincore checkpoint (a truncated or corrupt zip archive); delete it or choose another file
    run/ckpt.pt: refused: the file holds pickled code (posix.system), which a checkpoint never contains; ...
    run/ckpt.pt: a braincore checkpoint without 'simulator' (it holds: format_version, model); ...

:func:`read_torch_file` is the one place that calls ``torch.load``; :func:`load_checkpoint` adds the format
check and the keys a caller needs; :func:`restore_checkpoint` also hands the state to a ``load_state_dict`` and
turns a mismatch (a checkpoint of another network) into the same error.
"""
from __future__ import annotations

import os
import pickle
import re
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

import torch

from .data.files import check_regular_file, read_head, sniff
from .errors import CheckpointError, ConfigError

PathLike = Union[str, Path]

FORMAT_VERSION = 1

#: what to do about an unusable checkpoint, unless the caller says otherwise
DEFAULT_HINT = "delete it or choose another file"


def save_checkpoint(path: PathLike, payload: dict[str, Any]) -> Path:
    """Atomically write ``payload`` (plus a format version) to ``path``; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save({"format_version": FORMAT_VERSION, **payload}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _why_unreadable(path: Path, err: BaseException) -> str:
    """Why ``torch.load`` failed on ``path``, from its error and the file's first bytes."""
    head = read_head(path, 8192)
    message = str(err)
    refused = re.search(r"GLOBAL ([\w.]+)", message)
    if isinstance(err, pickle.UnpicklingError) and refused:
        return (f"refused: the file holds pickled code or objects ({refused.group(1)}), which a checkpoint never "
                f"contains; it was not run. Only tensors and plain containers are read")
    if head.startswith(b"PK"):
        if not zipfile.is_zipfile(path) or "central directory" in message or "zip archive" in message:
            return "not a braincore checkpoint (a truncated or corrupt zip archive)"
        names = []
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError, ValueError):
            return "not a braincore checkpoint (a truncated or corrupt zip archive)"
        if names and all(n.endswith(".npy") for n in names):
            return "not a braincore checkpoint (a NumPy .npz archive)"
        if any(n.endswith("data.pkl") for n in names):
            return "not a braincore checkpoint (a damaged PyTorch archive: its data cannot be read)"
        return "not a braincore checkpoint (a zip archive that is not a PyTorch file)"
    kind = sniff(head)
    if kind == "a Python pickle":
        return "not a braincore checkpoint (a plain Python pickle, or a damaged one: not a PyTorch file)"
    if kind is not None:
        return f"not a braincore checkpoint (it looks like {kind})"
    try:
        head.decode("utf-8")
        return "not a braincore checkpoint (a text file: a config or a log?)"
    except UnicodeDecodeError:
        return "not a braincore checkpoint (unrecognised binary data)"


def read_torch_file(path: PathLike, what: str = "checkpoint", *, hint: str = DEFAULT_HINT,
                    map_location: Union[str, torch.device, None] = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` (tensors and plain containers only; pickled code is refused,
    never run), with every failure a :class:`CheckpointError` naming the file: missing, a folder, empty,
    truncated, corrupt, another kind of file, or refused objects. ``what`` names the file in messages; ``hint``
    says what to do about a bad one."""
    path = Path(path)
    size = check_regular_file(path, what, CheckpointError)
    if size == 0:
        raise CheckpointError(f"{path}: not a braincore {what} (an empty file, 0 bytes); {hint}")
    try:
        with warnings.catch_warnings():  # torch's note on a foreign pickle's protocol: the error below says more
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return torch.load(path, map_location=map_location, weights_only=True)
    except MemoryError:
        raise CheckpointError(f"{path}: not a braincore {what} (it asks for more memory than there is: corrupt?); "
                              f"{hint}") from None
    except (pickle.UnpicklingError, EOFError, RuntimeError, ValueError, TypeError, AttributeError, KeyError,
            IndexError, OverflowError, ImportError, UnicodeDecodeError, zipfile.BadZipFile, OSError) as err:
        if isinstance(err, OSError) and err.errno is not None:  # e.g. permission denied, an I/O error
            raise CheckpointError(f"{path}: cannot read the {what} ({err.strerror or err})") from None
        reason = _why_unreadable(path, err)
        if what != "checkpoint":
            reason = reason.replace("checkpoint", what)
        raise CheckpointError(f"{path}: {reason}; {hint}") from None


def load_checkpoint(path: PathLike, map_location: Union[str, torch.device, None] = "cpu", *,
                    keys: Sequence[str] = (), hint: str = DEFAULT_HINT) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (tensors and plain containers only), checking its
    format version and that it holds each of ``keys``; anything else is a :class:`CheckpointError` that names
    the file, what is wrong and (``hint``) what to do."""
    path = Path(path)
    payload = read_torch_file(path, "checkpoint", hint=hint, map_location=map_location)
    if not isinstance(payload, dict):
        raise CheckpointError(f"{path}: not a braincore checkpoint (a PyTorch file holding a "
                              f"{type(payload).__name__}, not a checkpoint's dict); {hint}")
    version = payload.get("format_version")
    if version is None:
        raise CheckpointError(f"{path}: not a braincore checkpoint (a PyTorch file without a format_version: "
                              f"written by something else); {hint}")
    if version != FORMAT_VERSION:
        raise CheckpointError(f"{path}: a braincore checkpoint of format {version!r}; this version reads format "
                              f"{FORMAT_VERSION}; {hint}")
    missing = [k for k in keys if k not in payload]
    if missing:
        holds = ", ".join(str(k) for k in payload)
        raise CheckpointError(f"{path}: a braincore checkpoint without {', '.join(map(repr, missing))} (it holds: "
                              f"{holds}): written by something else; {hint}")
    return payload


def restore_checkpoint(path: PathLike, apply: Callable[[Any], Any], key: Optional[str] = None, *,
                       what: str = "network", hint: str = DEFAULT_HINT) -> Any:
    """Load the checkpoint at ``path`` and hand it (its entry ``key`` when given) to ``apply`` (a
    ``load_state_dict``); returns what ``apply`` returns. A state that does not fit (missing entries, other
    shapes: a checkpoint of a different ``what``) is a :class:`CheckpointError` naming the file."""
    path = Path(path)
    payload = load_checkpoint(path, keys=(key,) if key is not None else (), hint=hint)
    state = payload[key] if key is not None else payload
    try:
        return apply(state)
    except CheckpointError:
        raise
    except (ConfigError, KeyError, IndexError, TypeError, ValueError, RuntimeError, AttributeError) as err:
        detail = f"no entry {err}" if isinstance(err, KeyError) else (str(err).splitlines() or [type(err).__name__])[0]
        raise CheckpointError(f"{path}: this checkpoint does not fit this {what} ({detail}): it was written by a "
                              f"different {what} or configuration; {hint}") from err


__all__ = ["FORMAT_VERSION", "save_checkpoint", "load_checkpoint", "read_torch_file", "restore_checkpoint",
           "CheckpointError"]
