"""Pieces every training task shares: its progress bar, the key that ties a checkpoint to its config, and the
schema fields of data, evaluation and checkpointing (so every task's YAML reads the same)."""
from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterable, Iterator, NoReturn

import numpy as np

from braincore.config import AnyMapping, Document, Flag, Integer, Quantity, Record, Text
from braincore.errors import ConfigError
from braincore.progress import TrainingInterrupted, interrupt_guard, progress_bar
from braincore.validation import OutputName


def lazy_attributes(module: str, names: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for names a task module no longer imports at its top (PyTorch and what needs it
    load when a config runs, not when one is validated): ``names`` maps each to ``"package.module"`` (the module
    itself) or ``"package.module:attribute"``; it is imported on first access, so ``task.Trainer`` and
    ``monkeypatch.setattr(task.Trainer, ...)`` keep working."""
    import importlib

    def __getattr__(name: str) -> Any:
        target = names.get(name)
        if target is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        path, _, attribute = target.partition(":")
        value = importlib.import_module(path)
        return getattr(value, attribute) if attribute else value

    return __getattr__


def output_dir(options: dict) -> Path:
    """The run's output folder (``options["out"]``, default ``braincore_out``), created if needed."""
    out = Path(options.get("out") or "braincore_out")
    out.mkdir(parents=True, exist_ok=True)
    return out


def show_progress(config: dict, options: dict) -> bool:
    """Whether a runner shows progress bars: ``progress`` in the config, unless the caller turns them off
    (``options["progress"]`` false or ``options["no_progress"]``)."""
    return bool(config.get("progress", True)) and bool(options.get("progress", True)) and not options.get("no_progress")


def run_setup(config: dict, options: dict) -> tuple[Path, bool]:
    """What every task runner does first: its output folder, whether to show progress bars (``progress`` in the
    config, unless ``options["no_progress"]``), and the torch thread count (``threads``, when the config has one
    and sets it)."""
    if config.get("threads"):
        import torch

        torch.set_num_threads(config["threads"])
    return output_dir(options), show_progress(config, options)


def torch_run_setup(config: dict, options: dict) -> "tuple[Path, bool, Any]":
    """:func:`run_setup` for runners that train with PyTorch: ``(out_dir, progress, device)``, the config's
    ``device`` resolved (``cpu``, ``cuda``, ``auto``, ...); a device that is not there is a :class:`ConfigError`
    at the key ``device``."""
    from braincore.training.trainer import resolve_device

    out_dir, progress = run_setup(config, options)
    try:
        device = resolve_device(config["device"])
    except ValueError as err:
        raise ConfigError(f"device: {err}") from None
    return out_dir, progress, device


def batches(x: Any, size: int) -> Iterator[Any]:
    """``x[0:size], x[size:2 size], ...``: a tensor in batches along its first axis (the last one shorter)."""
    for start in range(0, x.shape[0], size):
        yield x[start:start + size]


def optimizer_schedule_problems(config: dict, doc: Document, problems: list) -> None:
    """The checks of the ``optimizer`` and ``schedule`` records every gradient-trained kind shares (the fields of
    :mod:`tasks.perception.surrogate`'s schema), each reported at its key: a ``step`` schedule needs
    ``step_epochs``; ``one_cycle`` has its own warm-up; ``pct_start < 1``, ``gamma <= 1``, ``min_factor <= 1``;
    Adam's ``beta1``, ``beta2 < 1``."""
    sch = config.get("schedule") or {}
    if sch.get("kind") == "step" and sch.get("step_epochs") is None:
        problems.append(doc.problem(("schedule",), "schedule 'step' needs step_epochs"))
    if sch.get("kind") == "one_cycle" and sch.get("warmup_epochs"):
        problems.append(doc.problem(("schedule", "warmup_epochs"), "one_cycle has its own rise (pct_start); leave "
                                                                   "warmup_epochs out"))
    for key, bound in (("pct_start", "< 1"), ("gamma", "<= 1"), ("min_factor", "<= 1")):
        value = sch.get(key)
        if value is not None and (value >= 1 if bound == "< 1" else value > 1):
            problems.append(doc.problem(("schedule", key), f"must be {bound}, got {value:g}"))
    opt = config.get("optimizer") or {}
    for key in ("beta1", "beta2"):
        if opt.get(key) is not None and opt[key] >= 1:
            problems.append(doc.problem(("optimizer", key), f"must be < 1, got {opt[key]:g}"))


def training_splits(config: dict, n_train: int, n_test: int) -> "tuple[np.ndarray, np.ndarray, int]":
    """``(train_idx, val_idx, n_test)`` of a run: a seeded validation hold-out of ``training.validation`` samples
    (:func:`braincore.data.train_validation_split`), a fixed seeded subset of ``training.samples`` of the rest,
    the first ``evaluation.validation_samples`` of the hold-out and the first ``evaluation.test_samples`` of the
    test set (all of them by default). A hold-out that leaves no training sample is a :class:`ConfigError`."""
    from braincore.data import train_validation_split

    tr, ev, seed = config["training"], config["evaluation"], config["seed"]
    check_split_at_run(config, n_train, "the training split")
    train_idx, val_idx = train_validation_split(n_train, tr["validation"], seed)
    if tr.get("samples") is not None and tr["samples"] < len(train_idx):
        pick = np.random.default_rng([seed, 1]).permutation(len(train_idx))[:tr["samples"]]
        train_idx = np.sort(train_idx[pick])
    if len(train_idx) == 0:
        raise ConfigError("training: no training samples left after the validation hold-out")
    if ev.get("validation_samples") is not None:
        val_idx = val_idx[:ev["validation_samples"]]
    test = n_test if ev.get("test_samples") is None else min(ev["test_samples"], n_test)
    return train_idx, val_idx, test


def tensor_splits(train_x: Any, train_y: Any, test_x: Any, test_y: Any, train_idx: Any, val_idx: Any, n_test: int,
                  batch: int, seed: int, device: Any) -> "tuple[Any, Any, Any]":
    """The tensors of a run from :func:`training_splits`' indices, on ``device``: ``(train, validation, test)``,
    ``train`` a shuffled :class:`~braincore.training.trainer.TensorData` of ``batch``-sized batches (seeded),
    ``validation`` ``(inputs, labels)`` of the hold-out (``None`` when it is empty) and ``test`` the first
    ``n_test`` test samples."""
    import torch

    from braincore.training.trainer import TensorData

    def part(idx: Any) -> tuple:
        take = torch.as_tensor(idx, dtype=torch.long)
        return train_x[take].to(device), train_y[take].to(device)

    train = TensorData(*part(train_idx), batch, seed=seed)
    validation = part(val_idx) if len(val_idx) else None
    return train, validation, (test_x[:n_test].to(device), test_y[:n_test].to(device))


def number(default: Any, *, minimum: "float | None" = None, exclusive_minimum: "float | None" = None,
           doc: str = "") -> Quantity:
    """A plain number of a config (a dimensionless :class:`Quantity`: a unit written with it is an error)."""
    return Quantity("dimensionless", default, minimum=minimum, exclusive_minimum=exclusive_minimum, doc=doc)


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


# ------------------------------------------------------------------------------------------ validation helpers
def remember_document(config: dict, doc: Document) -> None:
    """Keep the config's document (file and lines) with it, so that a check only the runner can make (one that
    needs the data) still names the file, line and key: :func:`config_error`."""
    config["_doc"] = doc


def config_error(config: dict, path: tuple, message: str) -> ConfigError:
    """A :class:`ConfigError` located at ``path`` of the config's file (``file:line: key: message``) when the
    semantic check kept its document (:func:`remember_document`), else ``key: message``."""
    from braincore.config import ConfigProblems, format_keypath

    doc = config.get("_doc")
    if isinstance(doc, Document):
        return ConfigProblems([doc.problem(path, message)])
    return ConfigError(f"{format_keypath(path)}: {message}")


def idx_shape(data: dict, split: str = "train") -> "tuple[int, ...] | None":
    """The shape ``(N, H, W)`` of the images of ``split`` of the config's ``data`` (``dir``, ``name``), read from
    the IDX header alone (a few bytes; gzip files are decompressed only that far); ``None`` when the data cannot be
    found or read now (the run reports that when it loads the data)."""
    import gzip
    import struct

    from braincore.data.datasets import find_idx_file, resolve_data_dir

    try:
        directory = resolve_data_dir((data or {}).get("dir"), (data or {}).get("name") or "mnist")
        path = find_idx_file(directory, split, "images")
        with open(path, "rb") as raw:
            gzipped = raw.read(2) == b"\x1f\x8b"
        with (gzip.open(path, "rb") if gzipped else open(path, "rb")) as f:
            head = f.read(4)
            if len(head) != 4 or head[:2] != b"\0\0" or not 1 <= head[3] <= 4:
                return None
            dims = f.read(4 * head[3])
            if len(dims) != 4 * head[3]:
                return None
            return tuple(struct.unpack(f">{head[3]}I", dims))
    except (OSError, ValueError, EOFError):
        return None


def split_problem(validation: Any, n_train: int, what: str) -> "str | None":
    """Why holding out ``validation`` samples of a training split of ``n_train`` (``what`` names it) cannot work:
    it must leave at least one sample to train on."""
    if isinstance(validation, int) and not isinstance(validation, bool) and validation >= n_train:
        return (f"holds out {validation} samples for validation, but {what} has {n_train}; leave at least one "
                f"for training (at most {n_train - 1})")
    return None


def check_validation_split(config: dict, doc: Document, problems: list, n_train: "int | None", what: str,
                           path: tuple = ("training", "validation")) -> None:
    """Report ``training.validation`` at its line when it takes the whole training split (``n_train`` samples,
    when known before the run; else :func:`check_split_at_run` does it when the data is loaded)."""
    node = config
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    if n_train is not None:
        message = split_problem(node, n_train, what)
        if message:
            given = doc.data
            for key in path:
                given = given.get(key) if isinstance(given, dict) else None
            if given is None:  # the default: say so, the file has no such line
                message = message.replace(" samples for validation", " samples for validation (the default)", 1)
            problems.append(doc.problem(path, message))


def check_split_at_run(config: dict, n_train: int, what: str, path: tuple = ("training", "validation")) -> None:
    """At run start, once the data is loaded: the check of :func:`check_validation_split` for data that
    ``braincore validate`` could not read, raised located at the key's line."""
    node = config
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    message = split_problem(node, n_train, what)
    if message:
        raise config_error(config, path, message)


def seed_problem(config: dict, doc: Document, problems: list) -> None:
    """A ``seed`` beyond 64 bits (torch and numpy seed generators with it) is reported at its line."""
    seed = config.get("seed")
    if isinstance(seed, int) and not isinstance(seed, bool) and seed >= 2 ** 63:
        problems.append(doc.problem(("seed",), f"expected an integer from 0 to 2**63 - 1, got {seed}"))


def device_problem(config: dict, doc: Document, problems: list, path: tuple = ("device",)) -> None:
    """Report a device this machine does not have (``cuda`` without a GPU ...) at its line."""
    from braincore.validation import _DEVICE, device_unavailable

    device = config.get(path[0]) if len(path) == 1 else None
    if not isinstance(device, str):
        return
    if not _DEVICE.match(device):
        problems.append(doc.problem(path, f"unknown device {device!r} (expected cpu, cuda, cuda:N, mps or auto)"))
        return
    missing = device_unavailable(device)
    if missing:
        problems.append(doc.problem(path, missing))


def memory_problem(config: dict, doc: Document, problems: list, path: tuple, needs: "list[tuple[str, float]]") -> None:
    """Report at ``path`` when the planned allocations ``needs`` (``(what, bytes)``) exceed the memory limit
    (:func:`braincore.validation.memory_limit`), naming the estimate, its largest part and the limit."""
    from braincore.validation import format_bytes, memory_limit

    limit, how = memory_limit()
    if limit is None:
        problems.append(doc.problem((), how))
        return
    total = sum(b for _, b in needs)
    if total > limit and needs:
        what, largest = max(needs, key=lambda item: item[1])
        problems.append(doc.problem(path, f"estimated memory {format_bytes(total)} (the largest part: "
                                          f"{format_bytes(largest)} for {what}) exceeds the limit "
                                          f"{format_bytes(limit)} ({how}); set BRAINCORE_MEMORY_LIMIT=... (e.g. "
                                          f"64GB, or off) to override"))


def layered_needs(sizes: "list[int]", batch: int, steps: int, nbytes: int = 4, recurrent: "list[int] | None" = None,
                  copies: int = 4) -> "list[tuple[str, float]]":
    """Planned allocations of a layered network trained on batches: its weights (``sizes[i] x sizes[i+1]``, plus a
    ``size x size`` matrix per ``recurrent`` layer) kept ``copies`` times (weights, gradients or updates, optimiser
    moments), and the ``batch x steps x size`` activity of every layer kept ``copies`` times (state, spikes and
    what the update reads back)."""
    weights = float(sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))) + float(sum(n * n for n in recurrent or []))
    shape = " x ".join(str(n) for n in sizes)
    return [(f"the weights of the {shape} layers", weights * nbytes * copies),
            (f"the activity of {batch} samples x {steps} steps x {sum(sizes)} neurons",
             float(batch) * steps * sum(sizes) * nbytes * copies)]


def assembly_memory_problems(assembly, doc: Document, problems: list, path: tuple, batch: "int | None" = None,
                             duration: "float | None" = None) -> None:
    """The memory check of :func:`braincore.validation.resource_issues` for an assembly a task builds (run with
    ``batch`` trials for ``duration`` ms), each problem reported at ``path`` of the task's config."""
    from braincore.validation import resource_issues

    if duration is not None:
        assembly.set_run(duration=duration)
    for issue in resource_issues(assembly, batch):
        problems.append(doc.problem(path, issue.message))


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


def resume_fit_score(trainer, ckpt_path, key: str, resume: bool, train, epochs: int, validation, every_epoch: bool,
                     test) -> "tuple[list, dict]":
    """The classifier kinds' training: resume ``trainer`` (a :class:`braincore.training.trainer.Trainer`) from the
    checkpoint at ``ckpt_path`` if ``resume`` and it was written under config ``key`` (:func:`load_resumable`),
    train the rest of ``epochs`` on ``train`` (scoring ``validation`` after each epoch if ``every_epoch``), then
    score ``validation`` (if any) and ``test`` and print both. Returns ``(history, results)`` with
    ``results = {"validation_accuracy"?, "test_accuracy"}``."""
    state = load_resumable(ckpt_path, key, resume)
    if state is not None:
        trainer.load_state_dict(state)
        print(f"resumed from {ckpt_path} at epoch {trainer.epoch + 1}, batch {trainer.batch} "
              f"(step {trainer.step})", flush=True)
    history = trainer.fit(train, epochs, validation if every_epoch else None)
    results: dict = {}
    if validation is not None:
        results["validation_accuracy"] = trainer.evaluate(validation, "validation")["accuracy"]
    results["test_accuracy"] = trainer.evaluate(test, "test")["accuracy"]
    for name in ("validation_accuracy", "test_accuracy"):
        if name in results:
            print(f"{name.replace('_', ' ')}: {100 * results[name]:.2f} %")
    return history, results


class SafePoints:
    """Ctrl-C held back to a training loop's safe points (:func:`safe_points`). ``stop(where)`` at a safe point:
    when Ctrl-C was pressed, write the checkpoint (``save()``) and raise
    :class:`~braincore.progress.TrainingInterrupted` naming ``where`` and the checkpoint, which ``braincore run``
    prints with the command that resumes (exit code 130). ``immediate()``: a block (an evaluation) that Ctrl-C
    stops at once."""

    def __init__(self, guard: Any, checkpoint: Path, save: Callable[[], Any]):
        self.guard, self.checkpoint, self.save = guard, Path(checkpoint), save

    def stop(self, where: str) -> None:
        if self.guard.requested:
            self.interrupted(where)

    def interrupted(self, where: str) -> NoReturn:
        """Write the checkpoint and raise :class:`~braincore.progress.TrainingInterrupted` (also for a
        :class:`KeyboardInterrupt` caught from an :meth:`immediate` block whose work a resume redoes)."""
        self.save()
        raise TrainingInterrupted(where, self.checkpoint)

    def immediate(self) -> ContextManager[None]:
        return self.guard.immediate()


@contextlib.contextmanager
def safe_points(checkpoint: Path, save: Callable[[], Any]) -> Iterator[SafePoints]:
    """Inside this block Ctrl-C does not cut a training step: it waits for the loop's next
    ``points.stop(where)``, which writes the checkpoint and stops (a second Ctrl-C stops at once, keeping the last
    checkpoint written). Off the main thread, or when someone else handles SIGINT, Ctrl-C stops as usual."""
    with interrupt_guard() as guard:
        yield SafePoints(guard, checkpoint, save)


__all__ = ["progress_bar", "output_dir", "run_setup", "config_key", "data_field", "filled_record", "evaluation_field",
           "checkpoint_fields",
           "params_field", "training_field", "epoch_batch", "load_resumable", "remember_document", "config_error",
           "idx_shape", "seed_problem", "split_problem", "check_validation_split", "check_split_at_run",
           "device_problem",
           "memory_problem", "assembly_memory_problems", "layered_needs", "OutputName", "SafePoints", "safe_points"]
