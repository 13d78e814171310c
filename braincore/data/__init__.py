"""Datasets on disk: the IDX file format (:mod:`braincore.data.idx`) and MNIST-shaped image datasets
(:mod:`braincore.data.datasets`). Nothing in this package downloads; see :func:`resolve_data_dir` for where
data are looked for.
"""
# The exports load on first use (PEP 562), so that importing a light submodule such as ``braincore.data.files``
# (the config loader does) does not import numpy: ``braincore --help`` and ``validate`` stay fast.
_EXPORTS = {"ENV_VAR": "datasets", "SPLITS": "datasets", "DataNotFoundError": "datasets", "Dataset": "datasets",
            "DatasetError": "datasets", "default_data_root": "datasets", "find_idx_file": "datasets",
            "load_dataset": "datasets", "load_idx_dataset": "datasets", "resolve_data_dir": "datasets",
            "train_validation_split": "datasets", "IDX_TYPES": "idx", "IDXError": "idx", "IDXNotFoundError": "idx",
            "parse_idx": "idx", "read_idx": "idx", "write_idx": "idx"}


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'braincore.data' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


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
