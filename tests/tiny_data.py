"""Small data sets the tests write themselves (nothing downloads)."""
from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

from braincore.data.idx import write_idx


def tiny_idx(folder: Path, n_train: int = 300, n_test: int = 100) -> Path:
    """MNIST-shaped IDX files in ``folder`` (``train-*`` and ``t10k-*``): 28x28 images of dim noise with a bright
    5x5 block at rows and columns ``2c .. 2c+4`` for class ``c`` (0-9), a stand-in for MNIST that a small network
    learns in a few epochs."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for split, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = (rng.random((n, 28, 28)) * 60).astype(np.uint8)
        for i, c in enumerate(labels):
            images[i, 2 * c:2 * c + 5, 2 * c:2 * c + 5] = 255
        write_idx(folder / f"{split}-images-idx3-ubyte", images)
        write_idx(folder / f"{split}-labels-idx1-ubyte", labels)
    return folder


def config_with(path, **overrides) -> dict:
    """The config at ``path``, loaded and validated, progress off, with ``overrides``: ``a__b__0__c=value`` sets
    ``config["a"]["b"][0]["c"]`` (digits index lists)."""
    import copy

    from braincore.config import load_config

    _, config = load_config(path)
    config = copy.deepcopy(config)
    config["progress"] = False
    for key, value in overrides.items():
        target = config
        parts = key.split("__")
        for part in parts[:-1]:
            target = target[int(part)] if part.isdigit() else target[part]
        target[parts[-1]] = value
    return config


@contextlib.contextmanager
def killed_at_step(monkeypatch, trainer_cls, call: int):
    """Within the block, ``trainer_cls.train_step`` raises ``KeyboardInterrupt`` on its ``call``-th call (a run
    killed mid-training, to test that it resumes exactly); the original method is back afterwards."""
    original = trainer_cls.train_step
    calls = {"n": 0}

    def dying(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == call:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(trainer_cls, "train_step", dying)
    try:
        yield
    finally:
        monkeypatch.setattr(trainer_cls, "train_step", original)
