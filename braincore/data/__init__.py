"""Datasets on disk: the IDX file format (:mod:`braincore.data.idx`) and MNIST-shaped image datasets
(:mod:`braincore.data.datasets`). Nothing in this package downloads; see :func:`resolve_data_dir` for where
data are looked for.
"""
from .datasets import (
    ENV_VAR,
    SPLITS,
    DataNotFoundError,
    Dataset,
    DatasetError,
    default_data_root,
    find_idx_file,
    load_dataset,
    load_idx_dataset,
    resolve_data_dir,
    train_validation_split,
)
from .idx import IDX_TYPES, IDXError, IDXNotFoundError, parse_idx, read_idx, write_idx

__all__ = [
    "ENV_VAR",
    "SPLITS",
    "DataNotFoundError",
    "Dataset",
    "DatasetError",
    "IDX_TYPES",
    "IDXError",
    "IDXNotFoundError",
    "default_data_root",
    "find_idx_file",
    "load_dataset",
    "load_idx_dataset",
    "parse_idx",
    "read_idx",
    "resolve_data_dir",
    "train_validation_split",
    "write_idx",
]
