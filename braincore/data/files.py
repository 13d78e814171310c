"""What a file is, from its first bytes, for the error messages of every loader (configs, checkpoints, data).

:func:`sniff` names the kind of a binary file (``"a PNG image"``, ``"a zip archive"``...) or returns ``None`` for
what may be text; :func:`describe` always names something (an empty file, a text file, unrecognised binary
data); :func:`human_size` writes a byte count for people; :func:`check_regular_file` turns a path that is
missing, a folder or unreadable into one :class:`~braincore.errors.ConfigError` naming it.
"""
from __future__ import annotations

import codecs
from pathlib import Path
from typing import Optional, Type

from ..errors import ConfigError

#: leading bytes -> what the file is
MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF-", "a PDF document"),
    (b"PK\x03\x04", "a zip archive (a PyTorch checkpoint or an .npz file?)"),
    (b"PK\x05\x06", "an empty zip archive"),
    (b"\x1f\x8b", "gzip-compressed data"),
    (b"\x93NUMPY", "a NumPy .npy array"),
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file"),
    (b"\x7fELF", "an executable (ELF)"),
    (b"\xfd7zXZ\x00", "xz-compressed data"),
)

_TEXT_BOMS = (codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def sniff(head: bytes) -> Optional[str]:
    """What the bytes ``head`` (the start of a file) are, when they are surely not text; ``None`` otherwise."""
    for magic, what in MAGIC:
        if head.startswith(magic):
            return what
    if any(head.startswith(bom) for bom in _TEXT_BOMS):
        return None
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "a Python pickle"
    if b"\x00" in head:
        return "binary data"
    return None


def describe(head: bytes) -> str:
    """What a file whose first bytes are ``head`` is, for an error message: :func:`sniff`'s kind, else an empty
    file, a text file (valid UTF-8) or unrecognised binary data."""
    if not head:
        return "an empty file"
    kind = sniff(head)
    if kind is not None:
        return kind
    try:
        head.decode("utf-8")
        return "a text file"
    except UnicodeDecodeError:
        return "unrecognised binary data"


def human_size(n: int) -> str:
    """``532`` -> ``"532 bytes"``, ``12_345_678`` -> ``"11.8 MB"`` (powers of 1024)."""
    if n < 1024:
        return f"{n} byte{'s' if n != 1 else ''}"
    for unit in ("KB", "MB", "GB", "TB"):
        n /= 1024.0
        if n < 1024 or unit == "TB":
            return f"{n:.1f} {unit}"
    return f"{n:.1f} TB"  # pragma: no cover


def check_regular_file(path: Path, what: str, error: Type[ConfigError] = ConfigError) -> int:
    """The size in bytes of ``path``; ``error`` (naming the file as a ``what``) when it is missing, a folder,
    not a regular file, or cannot be read."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise error(f"{path}: no such {what}") from None
    except OSError as err:
        raise error(f"{path}: cannot read the {what} ({err.strerror or err})") from None
    if path.is_dir():
        raise error(f"{path}: is a folder, not a {what}")
    if not path.is_file():
        raise error(f"{path}: not a regular file (a {what} must be one)")
    return st.st_size


def read_head(path: Path, n: int = 8192) -> bytes:
    """The first ``n`` bytes of ``path`` (fewer when it is shorter); ``b""`` when it cannot be read."""
    try:
        with open(path, "rb") as fh:
            return fh.read(n)
    except OSError:
        return b""


__all__ = ["MAGIC", "sniff", "human_size", "check_regular_file", "read_head"]
