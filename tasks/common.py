"""Pieces every training task shares: its progress bar, the key that ties a checkpoint to its config, and the
schema fields of data, evaluation and checkpointing (so every task's YAML reads the same)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from braincore.config import AnyMapping, Document, Flag, Integer, Record, Text
from braincore.errors import ConfigError
from braincore.progress import progress_bar


def output_dir(options: dict) -> Path:
    """The run's output folder (``options["out"]``, default ``braincore_out``), created if needed."""
    out = Path(options.get("out") or "braincore_out")
    out.mkdir(parents=True, exist_ok=True)
    return out


def run_setup(config: dict, options: dict) -> tuple[Path, bool]:
    """What every task runner does first: its output folder, whether to show progress bars (``progress`` in the
    config, unless ``options["no_progress"]``), and the torch thread count (``threads``, when the config has one
    and sets it)."""
    if config.get("threads"):
        import torch

        torch.set_num_threads(config["threads"])
    return output_dir(options), bool(config["progress"]) and not options.get("no_progress")


def config_key(config: dict, keys: Iterable[str], **extra: Any) -> str:
    """A short hash of the config entries that change training (``keys``, plus ``extra`` values): a checkpoint
    written under one key is only resumed by a run with the same key."""
    relevant = {k: config.get(k) for k in keys}
    relevant.update(extra)
    return hashlib.sha256(json.dumps(relevant, sort_keys=True, default=str).encode()).hexdigest()[:16]


def data_field() -> Record:
    return Record({"dir": Text(None, doc="IDX dataset folder (default: $BRAINCORE_DATA or ../shared/data)"),
                   "name": Text("mnist", doc="dataset folder name under the data root")},
                  default={"dir": None, "name": "mnist"})


def filled_record(fields: dict, doc: str = "") -> Record:
    """A :class:`Record` whose default (when the key is absent) holds every field's default."""
    return Record(fields, default={name: spec.default for name, spec in fields.items()}, doc=doc)


def evaluation_field(**more) -> Record:
    fields = {"test_samples": Integer(None, minimum=1, doc="default: the whole test set"),
              "validation_samples": Integer(None, minimum=0, doc="default: the whole validation split")}
    fields.update(more)
    return filled_record(fields)


def checkpoint_fields(every: int = 5000) -> dict:
    """``checkpoint_every`` (training samples), ``resume`` and ``progress``."""
    return {"checkpoint_every": Integer(every, minimum=1), "resume": Flag(True), "progress": Flag(True)}


def params_field(params_cls, doc: str) -> AnyMapping:
    """A ``network:`` mapping of overrides of a :class:`~braincore.params.NeuronParams` dataclass, checked
    while the YAML is validated: every bad key or value is reported at its own line and key path."""

    def check(value, doc_: Document, path, problems) -> dict:
        try:
            params_cls.from_mapping(value)
        except ConfigError as err:
            for key, message in err.items or [(None, str(err))]:
                problems.append(doc_.problem(path + ((key,) if key else ()), message))
        return dict(value)

    return AnyMapping(check, default={}, doc=doc)


def training_field(**more) -> Record:
    """``training: {epochs, samples, validation, ...more}``: epochs over (a part of) the training split, minus a
    seeded validation hold-out."""
    fields = {"epochs": Integer(1, minimum=0),
              "samples": Integer(None, minimum=1, doc="per epoch (default: the whole training split)"),
              "validation": Integer(5000, minimum=0, doc="samples held out of the training set")}
    fields.update(more)
    return filled_record(fields)


def epoch_batch(indices, position: int, per_epoch: int, batch: int, seed) -> "tuple[int, np.ndarray]":
    """The batch that starts at training sample ``position``: ``(epoch, sample indices)``. Each epoch shows
    ``per_epoch`` samples of ``indices`` in the order of a permutation seeded by ``[*seed, epoch]`` (``seed`` an
    int or a list of ints), so a run resumed at any position continues with exactly the same samples."""
    epoch, offset = divmod(position, per_epoch)
    key = [*seed, epoch] if isinstance(seed, (list, tuple)) else [seed, epoch]
    order = indices[np.random.default_rng(key).permutation(len(indices))[:per_epoch]]
    return epoch, order[offset:offset + min(batch, per_epoch - offset)]


def load_resumable(path, key: str, resume: bool) -> "dict | None":
    """The checkpoint at ``path`` if ``resume`` and it exists (``None`` otherwise); a checkpoint written under
    another config key is refused with a clear error rather than silently mixed in."""
    from braincore.checkpoint import load_checkpoint

    path = Path(path)
    if not (resume and path.is_file()):
        return None
    state = load_checkpoint(path, hint="delete it, choose another --out, or set resume: false")
    if state.get("config_key") != key:
        raise ConfigError(f"{path}: a checkpoint of another configuration; delete it or set resume: false")
    return state


__all__ = ["progress_bar", "output_dir", "run_setup", "config_key", "data_field", "filled_record", "evaluation_field", "checkpoint_fields",
           "params_field", "training_field", "epoch_batch", "load_resumable"]
