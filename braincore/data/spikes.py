"""The files an assembly's inputs read: spike trains (``spike_file``, an ``.npz``) and current tables
(``time_varying_current`` ``values``, an ``.npy``), checked before a run so that a bad file is one clear
:class:`InputFileError` naming it and the problem, never a NumPy traceback.

A spike file is an ``.npz`` archive (``np.savez("stim.npz", times=..., neurons=...)``) with two 1-D arrays of
equal length: ``times`` in ms (finite, 0 to :data:`MAX_TIME_MS`; the simulator rounds each to the nearest step, so
times between steps are delivered at the nearest one, and a neuron twice in one step gets both) and ``neurons``, the
index of the target neuron of each spike (integers in ``0..N-1`` for a population of N neurons). Other arrays
are ignored. Nothing is unpickled (``allow_pickle=False``).

A current table is an ``.npy`` array of finite numbers: 1-D (one value per step, for every target neuron) or 2-D
``[steps, 1]`` or ``[steps, width]`` (one column per target neuron).
"""
from __future__ import annotations

import zipfile
import zlib
from pathlib import Path
from typing import Optional, Union

import numpy as np

from ..errors import ConfigError
from .files import check_regular_file, describe, read_head

__all__ = ["InputFileError", "MAX_EVENTS", "MAX_TIME_MS", "load_spike_file", "load_values_file"]

PathLike = Union[str, Path]

#: the most spikes (entries of ``times``) one spike file may hold
MAX_EVENTS = 100_000_000
#: the latest spike time accepted, in ms (about 31 years: beyond any run, and far from int64 step overflow)
MAX_TIME_MS = 1e12

_SPIKE_ARRAYS = "arrays 'times' (ms) and 'neurons' (np.savez(path, times=..., neurons=...))"


class InputFileError(ConfigError):
    """A file named by an input (a spike file, a current table) that cannot be used; the message names it."""


def _checked_file(path: PathLike, what: str) -> Path:
    path = Path(path)
    size = check_regular_file(path, what, InputFileError)
    if size == 0:
        raise InputFileError(f"{path}: empty {what} (0 bytes)")
    return path


def _header(archive, key: str):
    """``(shape, dtype)`` of the array ``key`` of an open ``NpzFile``, read from its header (nothing loaded)."""
    fmt = np.lib.format
    with archive.zip.open(f"{key}.npy") as handle:
        version = fmt.read_magic(handle)
        reader = getattr(fmt, "_read_array_header", None)
        if reader is not None:
            shape, _, dtype = reader(handle, version)
        elif version == (1, 0):
            shape, _, dtype = fmt.read_array_header_1_0(handle)
        else:
            shape, _, dtype = fmt.read_array_header_2_0(handle)
    return tuple(shape), np.dtype(dtype)


def _first_bad(mask: np.ndarray, values: np.ndarray) -> str:
    i = int(np.flatnonzero(mask)[0])
    return f"{int(mask.sum())} of {mask.size}, the first {values[i].item()!r} at index {i}"


def load_spike_file(path: PathLike, n_neurons: int, *, target: str = "") -> tuple[np.ndarray, np.ndarray]:
    """The spikes of a spike file: ``(times, neurons)``, ``float64`` ms and ``int64`` indices, checked.

    ``n_neurons`` (the size of the target population, named ``target`` in messages) bounds the indices. Raises
    :class:`InputFileError` naming the file for: a missing file or a folder, an empty file, a file that is not
    an ``.npz`` archive (or a truncated or corrupt one), a missing ``times`` or ``neurons`` array, arrays that
    are not 1-D numbers, hold objects, differ in length or exceed :data:`MAX_EVENTS`, times that are negative
    or not finite, and neuron indices that are not integers or fall outside ``0..n_neurons-1``."""
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"{path}: no such spike file (expected an .npz archive with {_SPIKE_ARRAYS})")
    path = _checked_file(path, "spike file")
    head = read_head(path, 8192)
    if not head.startswith(b"PK"):
        raise InputFileError(f"{path}: not an .npz archive (it looks like {describe(head)}); a spike file "
                             f"holds {_SPIKE_ARRAYS}")
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise InputFileError(f"{path}: not a readable .npz archive (truncated or corrupt: {err})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):  # pragma: no cover - PK files are opened as archives
        raise InputFileError(f"{path}: not an .npz archive; a spike file holds {_SPIKE_ARRAYS}")
    arrays = {}
    with archive:
        for key in ("times", "neurons"):
            if key not in archive.files:
                holds = ", ".join(map(repr, archive.files)) or "no arrays"
                raise InputFileError(f"{path}: no array {key!r} (it holds {holds}); a spike file holds "
                                     f"{_SPIKE_ARRAYS}")
            try:
                shape, dtype = _header(archive, key)
            except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error, SyntaxError) as err:
                raise InputFileError(f"{path}: array {key!r} cannot be read (truncated or corrupt: {err})") from None
            if dtype.hasobject:
                raise InputFileError(f"{path}: array {key!r} holds Python objects, which are not loaded; save "
                                     f"numbers (e.g. np.asarray(..., dtype=float))")
            if len(shape) != 1:
                raise InputFileError(f"{path}: array {key!r} must be 1-D (one entry per spike), got shape {shape}")
            if shape[0] > MAX_EVENTS:
                raise InputFileError(f"{path}: array {key!r} holds {shape[0]:,} spikes, more than the limit of "
                                     f"{MAX_EVENTS:,} for one spike file")
            if shape[0] and dtype.kind not in "iuf":
                raise InputFileError(f"{path}: array {key!r} must hold numbers, got {dtype}")
            try:
                arrays[key] = np.asarray(archive[key])
            except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, MemoryError) as err:
                raise InputFileError(f"{path}: array {key!r} cannot be read (truncated or corrupt: "
                                     f"{err or type(err).__name__})") from None
    times, neurons = arrays["times"], arrays["neurons"]
    if times.shape != neurons.shape:
        raise InputFileError(f"{path}: 'times' has {times.size} entries but 'neurons' has {neurons.size}; they "
                             f"pair up, one of each per spike")
    times = times.astype(np.float64)
    bad = ~np.isfinite(times)
    if bad.any():
        raise InputFileError(f"{path}: 'times' must be finite (ms); not finite: {_first_bad(bad, times)}")
    bad = times < 0
    if bad.any():
        raise InputFileError(f"{path}: 'times' must be >= 0 ms; negative: {_first_bad(bad, times)}")
    bad = times > MAX_TIME_MS
    if bad.any():
        raise InputFileError(f"{path}: 'times' are in ms and must be <= {MAX_TIME_MS:g}; larger: "
                             f"{_first_bad(bad, times)}")
    if neurons.dtype.kind == "f":
        bad = ~np.isfinite(neurons) | (neurons != np.round(neurons))
        if bad.any():
            raise InputFileError(f"{path}: 'neurons' must hold integer neuron indices; not integers: "
                                 f"{_first_bad(bad, neurons)}")
    bad = (neurons < 0) | (neurons >= n_neurons)  # in the file's own dtype: nothing wraps around
    if bad.any():
        whose = f" of {target}" if target else ""
        raise InputFileError(f"{path}: 'neurons' indices must be in 0..{n_neurons - 1}{whose} ({n_neurons} "
                             f"neurons); out of range: {_first_bad(bad, neurons)}")
    neurons = neurons.astype(np.int64)
    return times, neurons


def load_values_file(path: PathLike, width: Optional[int] = None) -> np.ndarray:
    """A current table (``time_varying_current`` ``values``): a ``float64`` array, 1-D ``[steps]`` or 2-D
    ``[steps, 1 or width]``, checked. Raises :class:`InputFileError` naming the file for: a missing file or a
    folder, an empty file, a file that is not an ``.npy`` array (or a truncated one), an array of objects or of
    non-numbers, an empty array, more than 2 dimensions, a column count other than 1 or ``width`` (the number
    of target neurons), and values that are not finite."""
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"{path}: no such file (expected an .npy array of input values, one row per step)")
    path = _checked_file(path, "values file")
    head = read_head(path, 8192)
    if not head.startswith(b"\x93NUMPY"):
        raise InputFileError(f"{path}: not an .npy array (it looks like {describe(head)}); input values are "
                             f"an .npy array (np.save), one row per step")
    try:
        values = np.load(path, allow_pickle=False)
    except ValueError as err:
        if "allow_pickle" in str(err):
            raise InputFileError(f"{path}: the array holds Python objects, which are not loaded; save numbers "
                                 f"(np.save(path, np.asarray(values, dtype=float)))") from None
        raise InputFileError(f"{path}: not a readable .npy array (truncated or corrupt: {err})") from None
    except (OSError, EOFError, MemoryError) as err:
        raise InputFileError(f"{path}: not a readable .npy array (truncated or corrupt: "
                             f"{err or type(err).__name__})") from None
    if values.dtype.kind not in "iuf":
        raise InputFileError(f"{path}: input values must be numbers, got an array of {values.dtype}")
    if values.ndim not in (1, 2) or values.size == 0:
        raise InputFileError(f"{path}: input values must be a non-empty 1-D array (one value per step) or 2-D "
                             f"[steps, neurons], got shape {values.shape}")
    if values.ndim == 2 and width is not None and values.shape[1] not in (1, width):
        raise InputFileError(f"{path}: {values.shape[1]} columns, but the input has {width} target neuron(s); "
                             f"give 1 column (the same value for all) or {width}")
    values = values.astype(np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise InputFileError(f"{path}: input values must be finite; {int(bad.sum())} are not, the first "
                             f"{values[first].item()!r} at index {first if len(first) > 1 else first[0]}")
    return values
