"""Atomic checkpoints: save and load nested dicts of tensors (parameters, state, traces, RNG states).

``save_checkpoint(path, payload)`` writes to a temporary file in the same folder, flushes it to disk and
renames it over ``path`` (``os.replace`` is atomic on POSIX and Windows), so a crash mid-write never leaves a
truncated checkpoint: either the old file or the new one is there. ``load_checkpoint`` reads with
``torch.load(..., weights_only=True)``: only tensors and plain containers (dict, list, tuple, str, int, float,
bool, None) are accepted, never arbitrary pickled objects.

A payload is a nested dict whose leaves are tensors or plain values; RNG states (``torch.Generator.get_state()``)
are uint8 tensors and round-trip exactly.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Union

import torch

PathLike = Union[str, Path]

FORMAT_VERSION = 1


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


def load_checkpoint(path: PathLike, map_location: Union[str, torch.device, None] = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (tensors and plain containers only)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    payload = torch.load(path, map_location=map_location, weights_only=True)
    version = payload.get("format_version") if isinstance(payload, dict) else None
    if version != FORMAT_VERSION:
        raise ValueError(f"{path}: not a braincore checkpoint of format {FORMAT_VERSION} (found {version!r})")
    return payload
