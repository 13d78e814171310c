"""MNIST-shaped image datasets stored as IDX files, and where to find them on disk.

A dataset directory holds four IDX files (see :mod:`braincore.data.idx`), each plain or gzip-compressed::

    train-images-idx3-ubyte[.gz]   uint8 [N_train, H, W]   pixel intensities 0..255
    train-labels-idx1-ubyte[.gz]   uint8 [N_train]          class indices 0..num_classes-1
    t10k-images-idx3-ubyte[.gz]    uint8 [N_test, H, W]
    t10k-labels-idx1-ubyte[.gz]    uint8 [N_test]

The dotted spellings ``train-images.idx3-ubyte`` (as in some mirrors and in the gzip header of the original
files) are accepted too. For MNIST (and Fashion-MNIST, KMNIST, ...) ``H = W = 28``, ``N_train = 60000`` and
``N_test = 10000``.

:func:`resolve_data_dir` finds the directory (explicit argument, else ``$BRAINCORE_DATA``, else
``<repo>/../shared/data/<name>``); :func:`load_idx_dataset` reads one split as ``(images, labels)``;
:func:`load_dataset` returns the same as a :class:`Dataset`; :func:`train_validation_split` makes a
deterministic hold-out split of indices. Nothing in this module downloads anything.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Tuple, Union

import numpy as np

from ..errors import ConfigError
from .idx import read_idx

__all__ = [
    "DatasetError",
    "DataNotFoundError",
    "Dataset",
    "ENV_VAR",
    "SPLITS",
    "default_data_root",
    "find_idx_file",
    "resolve_data_dir",
    "load_idx_dataset",
    "load_dataset",
    "train_validation_split",
]

PathLike = Union[str, "os.PathLike[str]"]

#: Environment variable naming a data root (containing ``<name>/``) or a dataset directory itself.
ENV_VAR = "BRAINCORE_DATA"

#: Split name -> file-name prefix.
SPLITS = {"train": "train", "test": "t10k"}


class DatasetError(ConfigError):
    """The IDX files of a dataset are readable but do not form a valid dataset (counts, shapes, labels), or a
    dataset argument is wrong. A :class:`~braincore.errors.ConfigError`, hence a ``ValueError``."""


class DataNotFoundError(DatasetError, FileNotFoundError):
    """A data folder or file that does not exist (both a :class:`DatasetError` and a ``FileNotFoundError``)."""


@dataclass
class Dataset:
    """One split of an image-classification dataset.

    Attributes:
        images: ``uint8 [N, H, W]`` pixel intensities 0..255 (NumPy array or torch tensor).
        labels: ``int64 [N]`` class indices in ``0..num_classes-1`` (same kind as ``images``).
        name: dataset name, e.g. ``"mnist"``.
        split: ``"train"`` or ``"test"``.
    """

    images: Any
    labels: Any
    name: str = "mnist"
    split: str = "train"

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def image_shape(self) -> Tuple[int, ...]:
        """``(H, W)`` of one image."""
        return tuple(int(s) for s in self.images.shape[1:])

    @property
    def num_classes(self) -> int:
        """``max(label) + 1`` (0 for an empty split)."""
        return int(self.labels.max()) + 1 if len(self) else 0


def default_data_root() -> Path:
    """``<repo>/../shared/data``, where ``<repo>`` is the folder that contains the ``braincore`` package."""
    return Path(__file__).resolve().parents[2].parent / "shared" / "data"


def _has_idx_files(directory: Path) -> bool:
    return any(directory.glob("*-ubyte")) or any(directory.glob("*-ubyte.gz"))


def _pick(base: Path, name: str) -> Path:
    """``base`` itself when it holds IDX files, else ``base/name`` when that is a folder, else ``base``."""
    if _has_idx_files(base):
        return base
    sub = base / name
    return sub if sub.is_dir() else base


def resolve_data_dir(configured: Optional[PathLike] = None, name: str = "mnist") -> Path:
    """Find the directory of dataset ``name``; nothing is downloaded.

    Search order:

    1. ``configured`` (e.g. from a YAML config or a command-line option), when given: it must be an
       existing folder; when it holds no IDX files but has a ``<name>/`` subfolder, that subfolder is used.
    2. ``$BRAINCORE_DATA``, when set and non-empty: a folder that contains ``<name>/`` or is itself the
       dataset folder (holds ``*-ubyte`` / ``*-ubyte.gz`` files).
    3. ``<repo>/../shared/data/<name>`` (:func:`default_data_root`), when it exists.

    Returns:
        The resolved absolute directory (``~`` expanded).

    Raises:
        DataNotFoundError: (a ``FileNotFoundError``) an explicit or ``$BRAINCORE_DATA`` path that is not a
            folder, or nothing found;
            the message lists what was searched and how to point braincore at the data.
    """
    if configured is not None:
        base = Path(configured).expanduser()
        if not base.is_dir():
            raise DataNotFoundError(f"{name} data directory {base} (given explicitly) does not exist")
        return _pick(base, name).resolve()
    env = os.environ.get(ENV_VAR, "")
    if env:
        base = Path(env).expanduser()
        if not base.is_dir():
            raise DataNotFoundError(f"${ENV_VAR}={env} is not a directory (looking for the {name} data)")
        return _pick(base, name).resolve()
    shared = default_data_root() / name
    if shared.is_dir():
        return shared.resolve()
    raise DataNotFoundError(
        f"{name} data not found. Searched: no explicit directory given; ${ENV_VAR} not set; {shared} does "
        f"not exist. Put the IDX files (e.g. train-images-idx3-ubyte.gz) in a folder and pass it explicitly, "
        f"or set {ENV_VAR} to that folder or to its parent containing {name}/. Nothing is downloaded."
    )


def find_idx_file(directory: PathLike, split: str, kind: str) -> Path:
    """Path of the ``kind`` (``"images"`` or ``"labels"``) file of ``split`` in ``directory``.

    Tries ``<prefix>-<kind>-idx<D>-ubyte`` and ``<prefix>-<kind>.idx<D>-ubyte``, each plain then ``.gz``,
    where ``prefix`` is ``train`` or ``t10k`` and ``D`` is 3 for images and 1 for labels.

    Raises:
        DatasetError: unknown ``split`` or ``kind``.
        DataNotFoundError: (a ``FileNotFoundError``) none of the candidate names exists (the message lists
            them), or ``directory`` is no folder.
    """
    if split not in SPLITS:
        raise DatasetError(f"split must be one of {sorted(SPLITS)}, got {split!r}")
    rank = {"images": 3, "labels": 1}.get(kind)
    if rank is None:
        raise DatasetError(f"kind must be 'images' or 'labels', got {kind!r}")
    directory = Path(directory)
    prefix = SPLITS[split]
    names = []
    for sep in ("-", "."):
        stem = f"{prefix}-{kind}{sep}idx{rank}-ubyte"
        names += [stem, stem + ".gz"]
    for n in names:
        if (directory / n).is_file():
            return directory / n
    if not directory.is_dir():
        raise DataNotFoundError(f"{directory}: no such data folder (looking for the {split} {kind} file)")
    raise DataNotFoundError(f"no {split} {kind} file in {directory}; tried: {', '.join(names)}")


def load_idx_dataset(
    directory: PathLike,
    split: str = "train",
    *,
    as_torch: bool = False,
    num_classes: Optional[int] = 10,
) -> Tuple[Any, Any]:
    """Load one split of an MNIST-shaped IDX dataset.

    Args:
        directory: the dataset folder (see :func:`resolve_data_dir`).
        split: ``"train"`` (files ``train-*``) or ``"test"`` (files ``t10k-*``).
        as_torch: return CPU torch tensors instead of NumPy arrays (sharing memory with them).
        num_classes: labels must lie in ``0..num_classes-1``; ``None`` only checks that they are >= 0.

    Returns:
        ``(images, labels)``: ``uint8 [N, H, W]`` (``[N, 28, 28]`` for MNIST) pixel intensities 0..255 and
        ``int64 [N]`` class indices.

    Raises:
        DataNotFoundError: a file is missing. IDXError: a file is malformed. DatasetError: wrong rank or
            dtype, image and label counts differ, or a label is out of range.
    """
    images_path = find_idx_file(directory, split, "images")
    labels_path = find_idx_file(directory, split, "labels")
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DatasetError(
            f"{images_path}: expected uint8 images [N, H, W], got {images.dtype} with shape {images.shape}"
        )
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise DatasetError(
            f"{labels_path}: expected integer labels [N], got {labels.dtype} with shape {labels.shape}"
        )
    if images.shape[0] != labels.shape[0]:
        raise DatasetError(
            f"{directory}: {split} has {images.shape[0]} images ({images_path.name}) but {labels.shape[0]} "
            f"labels ({labels_path.name})"
        )
    labels = labels.astype(np.int64)
    bad = labels < 0
    if num_classes is not None:
        bad |= labels >= num_classes
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        allowed = f"0..{num_classes - 1}" if num_classes is not None else ">= 0"
        raise DatasetError(
            f"{labels_path}: {int(bad.sum())} label(s) out of range {allowed}, "
            f"first {int(labels[i])} at index {i}"
        )
    if as_torch:
        import torch

        return torch.from_numpy(images), torch.from_numpy(labels)
    return images, labels


def load_dataset(
    split: str = "train",
    directory: Optional[PathLike] = None,
    *,
    name: str = "mnist",
    as_torch: bool = False,
    num_classes: Optional[int] = 10,
) -> Dataset:
    """:func:`resolve_data_dir` ``(directory, name)`` then :func:`load_idx_dataset`, as a :class:`Dataset`."""
    root = resolve_data_dir(directory, name)
    images, labels = load_idx_dataset(root, split, as_torch=as_torch, num_classes=num_classes)
    return Dataset(images=images, labels=labels, name=name, split=split)


def train_validation_split(
    n: int, validation: Union[int, float], seed: int = 0
) -> Tuple[np.ndarray, np.ndarray]:
    """Deterministic hold-out split of ``range(n)`` into training and validation indices.

    The indices are a ``numpy.random.default_rng(seed).permutation(n)``: the first ``n_val`` go to
    validation, the rest to training. Equal ``(n, validation, seed)`` always give equal splits, on every
    platform.

    Args:
        n: number of samples (>= 0).
        validation: number of validation samples (int, ``0..n``) or fraction of ``n`` (float in
            ``[0, 1]``, rounded to the nearest count).
        seed: seed of the permutation.

    Returns:
        ``(train_idx, val_idx)``: disjoint, each sorted ascending, ``int64``, together covering ``range(n)``.
    """
    n = int(n)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if isinstance(validation, (bool, np.bool_)):
        raise TypeError("validation must be an int count or a float fraction, not a bool")
    if isinstance(validation, (float, np.floating)):
        if not 0.0 <= validation <= 1.0:
            raise ValueError(f"validation fraction must be in [0, 1], got {validation}")
        n_val = int(round(float(validation) * n))
    else:
        n_val = int(validation)
        if not 0 <= n_val <= n:
            raise ValueError(f"validation count must be in 0..{n}, got {n_val}")
    perm = np.random.default_rng(seed).permutation(n).astype(np.int64)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])
