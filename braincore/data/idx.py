"""Reading and writing IDX files, the format of the MNIST database (LeCun, Cortes & Burges).

Layout of an IDX file (all multi-byte numbers big-endian)::

    offset  size   content
    0       2      0x00 0x00 (magic)
    2       1      type code of the elements (table below)
    3       1      number of dimensions D (0..255)
    4       4*D    the D sizes, unsigned 32-bit, outermost first
    4+4*D   ...    the elements in C (row-major) order, big-endian

=========  ==========  ==========
type code  NumPy dtype bytes/elem
=========  ==========  ==========
0x08       uint8       1
0x09       int8        1
0x0B       int16       2
0x0C       int32       4
0x0D       float32     4
0x0E       float64     8
=========  ==========  ==========

The MNIST images (``*-images-idx3-ubyte``, magic ``0x00000803`` = 2051) are ``uint8 [N, 28, 28]`` pixel
intensities 0..255 (0 = background); the labels (``*-labels-idx1-ubyte``, magic 2049) are ``uint8 [N]``.

Files may be plain or gzip-compressed; compression is detected from the gzip magic bytes ``1f 8b``, never
from the file name. :func:`read_idx` returns a writable array in *native* byte order; every malformed input
raises :class:`IDXError` (a :class:`ValueError`) naming the file and the problem. Nothing here downloads.
"""
from __future__ import annotations

import gzip as _gzip
import os
import zlib
from pathlib import Path
from typing import Dict, Union

import numpy as np

from ..errors import ConfigError
from .files import check_regular_file

__all__ = ["IDXError", "IDXNotFoundError", "IDX_TYPES", "read_idx", "parse_idx", "write_idx"]

PathLike = Union[str, "os.PathLike[str]"]

#: IDX type code -> big-endian NumPy dtype of the stored elements.
IDX_TYPES: Dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
# Native dtype (byte order ignored) -> IDX type code, for writing.
_CODES: Dict[str, int] = {dt.newbyteorder("=").str[1:]: code for code, dt in IDX_TYPES.items()}

_GZIP_MAGIC = b"\x1f\x8b"


class IDXError(ConfigError):
    """A file is not a valid IDX file (bad magic, unknown type code, wrong length, empty, broken gzip, a folder,
    unreadable). A :class:`~braincore.errors.ConfigError`, hence a ``ValueError``."""


class IDXNotFoundError(IDXError, FileNotFoundError):
    """An IDX file that does not exist (both an :class:`IDXError` and a ``FileNotFoundError``)."""


def _read_bytes(path: Path) -> bytes:
    """Raw content of ``path``, gunzipped when it starts with the gzip magic bytes."""
    if not path.exists():
        raise IDXNotFoundError(f"{path}: no such IDX file")
    check_regular_file(path, "IDX file", IDXError)
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise IDXError(f"{path}: cannot read the IDX file ({exc.strerror or exc})") from None
    if not raw:
        raise IDXError(f"{path}: empty file (0 bytes)")
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        data = _gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError; truncation gives EOFError
        raise IDXError(f"{path}: corrupt or truncated gzip data ({exc})") from exc
    if not data:
        raise IDXError(f"{path}: empty file (gzip stream decompresses to 0 bytes)")
    return data


def parse_idx(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """Decode the (uncompressed) bytes of an IDX file into a native-byte-order array.

    Args:
        data: the whole file content, header included (bytes, bytearray or memoryview).
        source: name used in error messages (the file path for :func:`read_idx`).

    Returns:
        A writable, C-contiguous array with the dtype of the type code and the shape of the header
        (``()`` for D = 0).

    Raises:
        IDXError: empty input, a header that is cut short, non-zero magic bytes, an unknown type code, or a
            data section whose length differs from ``prod(shape) * itemsize`` (truncated or trailing bytes).
    """
    data = memoryview(data).cast("B")
    n = len(data)
    if n == 0:
        raise IDXError(f"{source}: empty file (0 bytes)")
    if n < 4:
        raise IDXError(f"{source}: truncated header: need 4 bytes for magic, type and rank, got {n}")
    if data[0] != 0 or data[1] != 0:
        raise IDXError(
            f"{source}: bad magic: the first two bytes must be 00 00, got {data[0]:02x} {data[1]:02x} "
            "(not an IDX file, or compressed with something other than gzip)"
        )
    code, ndim = data[2], data[3]
    if code not in IDX_TYPES:
        known = ", ".join(f"0x{c:02X} ({dt.newbyteorder('=').name})" for c, dt in IDX_TYPES.items())
        raise IDXError(f"{source}: unknown type code 0x{code:02X}; known codes: {known}")
    header = 4 + 4 * ndim
    if n < header:
        raise IDXError(
            f"{source}: truncated header: {ndim} dimension(s) need {header} header bytes, got {n}"
        )
    shape = tuple(int(s) for s in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_TYPES[code]
    expected = int(np.prod(shape, dtype=object)) * dtype.itemsize if shape else dtype.itemsize
    got = n - header
    if got != expected:
        kind = "truncated data" if got < expected else "trailing data"
        raise IDXError(
            f"{source}: {kind} (size mismatch: expected {expected} data bytes for shape {shape} of "
            f"{dtype.newbyteorder('=').name}, got {got})"
        )
    arr = np.frombuffer(data, dtype=dtype, count=expected // dtype.itemsize, offset=header)
    return arr.astype(dtype.newbyteorder("="), copy=True).reshape(shape)


def read_idx(path: PathLike) -> np.ndarray:
    """Read an IDX file, plain or gzip-compressed (detected from its first bytes, not its suffix).

    Args:
        path: file to read.

    Returns:
        A writable array in native byte order; dtype from the type code (uint8, int8, int16, int32,
        float32 or float64) and shape from the header, e.g. ``uint8 [60000, 28, 28]`` for the MNIST
        training images.

    Raises:
        IDXNotFoundError: ``path`` does not exist (an :class:`IDXError` and a ``FileNotFoundError``).
        IDXError: a folder or unreadable, the content is not a valid IDX file (see :func:`parse_idx`) or the
            gzip stream is broken.
    """
    path = Path(path)
    return parse_idx(_read_bytes(path), source=str(path))


def write_idx(path: PathLike, array, gzip: bool = False) -> Path:
    """Write ``array`` as an IDX file (optionally gzip-compressed) and return the path.

    Args:
        path: destination; parent folders must exist. The name is not changed (add ``.gz`` yourself).
        array: anything :func:`numpy.asarray` accepts (a torch CPU tensor works too) with dtype uint8, int8,
            int16, int32, float32 or float64 (cast other dtypes first, e.g. int64 labels to uint8) and at most
            255 dimensions, each smaller than 2**32.
        gzip: compress with gzip (header mtime 0, so equal arrays give equal bytes).

    Raises:
        TypeError: the dtype has no IDX type code.
        ValueError: too many dimensions or a dimension too large.
    """
    arr = np.asarray(array)
    key = arr.dtype.newbyteorder("=").str[1:] if arr.dtype.kind in "uif" else None
    if key not in _CODES:
        supported = ", ".join(dt.newbyteorder("=").name for dt in IDX_TYPES.values())
        raise TypeError(f"write_idx: dtype {arr.dtype} has no IDX type code; supported: {supported}")
    if arr.ndim > 255:
        raise ValueError(f"write_idx: IDX allows at most 255 dimensions, got {arr.ndim}")
    if any(s >= 2**32 for s in arr.shape):
        raise ValueError(f"write_idx: every dimension must be < 2**32, got shape {arr.shape}")
    code = _CODES[key]
    header = bytes([0, 0, code, arr.ndim]) + np.asarray(arr.shape, dtype=">u4").tobytes()
    payload = header + np.ascontiguousarray(arr, dtype=IDX_TYPES[code]).tobytes()
    if gzip:
        payload = _gzip.compress(payload, compresslevel=6, mtime=0)
    path = Path(path)
    with open(path, "wb") as fh:
        fh.write(payload)
    return path
