"""A surrogate-gradient trainer: batches, Adam/AdamW, learning-rate schedules, progress, evaluation and
checkpoints that resume *exactly*.

**Data.** ``(inputs [N, ...], labels [N])`` tensors (:class:`TensorData`: a seeded permutation per epoch,
``numpy.random.default_rng([seed, epoch])``, cut into batches) or any iterable of ``(x, labels)`` batches
(:class:`IterableData`: a re-iterable object or a function ``epoch -> iterable``). A ``transform(x,
generator) -> [T, B, N]`` turns a sample-major batch into the time-major input of the model (e.g. a rate
encoder drawing from ``generator``); the default takes ``x [B, T, N]`` and returns ``x.transpose(0, 1)`` in
float32.

**Model and loss.** ``model(x [T, B, N])`` returns the read-out ``[T, B, C]``, or ``(output, hidden)`` with the
hidden spike tensors (:class:`~braincore.training.models.SpikingClassifier`); the loss is a
:class:`~braincore.training.losses.ClassificationLoss` (or any callable ``(output, labels, hidden) ->
LossResult``). Accuracy is ``argmax`` of the loss's scores.

**Schedules** (:class:`LRSchedule`, ``lr_k = lr * factor(k)`` at optimiser step ``k = 0, 1, ...`` of ``K``
steps in all, after ``W`` warm-up steps with ``factor = (k + 1) / W``; ``j = k - W``, ``J = K - W``)::

    none:       1
    step:       gamma ** floor(j / step_size)
    cosine:     m + (1 - m) (1 + cos(pi j / J)) / 2                 (m = min_factor; torch's CosineAnnealingLR)
    one_cycle:  cosine rise from 1 / div_factor to 1 over the first pct_start K steps, then cosine fall to
                1 / (div_factor final_div_factor)                  (Smith & Topin 2019; torch's OneCycleLR)

**Checkpoints** (:func:`braincore.checkpoint.save_checkpoint`, atomic; read back with ``torch.load(...,
weights_only=True)``) every ``checkpoint_every`` optimiser steps, at every epoch end, when training stops and
when Ctrl-C interrupts it: model, optimiser, schedule step, the position (epoch and batch index inside the
epoch's permutation), the RNG states (torch CPU and CUDA, NumPy, Python, the trainer's encoder generator), the
running statistics of the epoch, the history and the *run key* (:meth:`Trainer.run_key`: the model's class and
tensor shapes, the optimiser and its settings, the schedule, the seed, the batch size and the size of the
training data). :meth:`Trainer.load_state_dict` restores all of it, so training N steps straight and training k
steps, crashing, resuming and training to N give bitwise equal parameters on the same device
(``tests/test_trainer.py``, ``tests/test_trainer_resume.py``). Evaluation draws from its own freshly seeded
generator and never touches the training RNG streams.

**Resuming.** With a ``checkpoint_path`` (and ``resume=True``, the default), :meth:`Trainer.fit` continues from
the checkpoint at that path when there is one: a script run again after an interruption picks up where it
stopped, and one run again after it finished returns the stored history without training. A checkpoint whose
run key differs from this run's (another architecture, optimiser, seed, batch size or data size) is refused
with a :class:`CheckpointMismatch` naming the file and every difference; ``resume=False`` trains afresh and
overwrites it. The number of epochs is not part of the key: asking for more epochs continues training. Ctrl-C
during ``fit`` (in the main thread, outside distributed training) is taken at the end of the current batch:
the trainer writes a checkpoint there and raises :class:`~braincore.progress.TrainingInterrupted`.

**Initial weights.** Give the model as a function of no arguments (``Trainer(lambda: build_classifier(...),
...)``) and the trainer builds it with torch's RNG seeded from ``seed`` (the global RNG is left as it was), so
two fresh runs start from the same weights; a model passed built is used as it is.

**Data parallel** (:mod:`braincore.training.distributed`): with ``distributed=True``, or automatically when a
``torch.distributed`` process group is initialised (or torchrun's ``WORLD_SIZE > 1`` is set), ``batch_size`` is
the *global* batch ``G``: every rank draws the same batch of the same permutation, encodes it with the same
generator and trains on its ``G / W`` consecutive samples inside DistributedDataParallel, which averages the
gradients; the result equals one process with batch ``G`` to float rounding. Progress, epoch lines and
checkpoint files come from rank 0; statistics and evaluations are summed over ranks; ``save``, ``fit`` and
``evaluate`` are collective (call them on every rank).

References: D. P. Kingma and J. Ba, "Adam", ICLR 2015; I. Loshchilov and F. Hutter, "Decoupled weight decay
regularization" (AdamW), ICLR 2019, and "SGDR" (cosine schedule), ICLR 2017; L. N. Smith and N. Topin,
"Super-convergence" (one-cycle), 2019.
"""
from __future__ import annotations

import dataclasses
import itertools
import math
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence, Union

import numpy as np
import torch
from torch import nn

from ..checkpoint import load_checkpoint, save_checkpoint
from ..choices import OPTIMIZERS, SCHEDULES  # the names, in a module without PyTorch
from ..devices import resolve_device as _resolve_device
from ..errors import CheckpointError
from ..progress import TrainingInterrupted, interrupt_guard, progress_bar
from . import distributed as dist_utils
from .losses import LossResult

Tensor = torch.Tensor
Transform = Callable[[Tensor, torch.Generator], Tensor]

__all__ = ["SCHEDULES", "OPTIMIZERS", "LRSchedule", "TensorData", "IterableData", "as_data", "make_optimizer",
           "resolve_device", "seed_everything", "capture_rng", "restore_rng", "progress_bar", "Trainer",
           "CheckpointMismatch", "TrainingInterrupted"]

#: offset of the evaluation generator's seed from the training seed
_EVAL_SEED_OFFSET = 1_000_003


# ------------------------------------------------------------------------------------------ helpers
class CheckpointMismatch(ValueError):
    """A checkpoint that belongs to another run (its run key differs); the message names the file and every
    difference."""


def _describe_key_differences(saved: dict, current: dict) -> list[str]:
    """The differences between two run keys (:meth:`Trainer.run_key`), in words; fields missing on one side
    (e.g. the data size of a checkpoint saved before any ``fit``) are not compared."""
    out = []
    for field in current:
        if field not in saved or saved[field] is None or current[field] is None:
            continue
        old, new = saved[field], current[field]
        if field == "tensors":
            old, new = dict(old), dict(new)
            missing = [k for k in old if k not in new]
            extra = [k for k in new if k not in old]
            shapes = [f"{k} {list(old[k])} -> {list(new[k])}" for k in new
                      if k in old and list(old[k]) != list(new[k])]
            parts = []
            if shapes:
                more = f" and {len(shapes) - 3} more" if len(shapes) > 3 else ""
                parts.append("shapes " + ", ".join(shapes[:3]) + more)
            if missing:
                parts.append(f"{len(missing)} tensor(s) only in the checkpoint ({', '.join(missing[:3])})")
            if extra:
                parts.append(f"{len(extra)} tensor(s) only in this model ({', '.join(extra[:3])})")
            if parts:
                out.append("model: " + "; ".join(parts))
        elif isinstance(old, dict) and isinstance(new, dict):
            for sub in sorted(set(old) | set(new)):
                a, b = old.get(sub), new.get(sub)
                if _plain(a) != _plain(b):
                    out.append(f"{field}.{sub}: {_plain(a)!r} in the checkpoint, {_plain(b)!r} now")
        elif _plain(old) != _plain(new):
            out.append(f"{field}: {_plain(old)!r} in the checkpoint, {_plain(new)!r} now")
    return out


def _plain(value: Any) -> Any:
    """Tuples as lists (a checkpoint stores lists), so that equal keys compare equal."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def resolve_device(device: Union[str, torch.device, None]) -> torch.device:
    """``device`` as a :class:`torch.device` (``auto``: CUDA when available, else the CPU); a clear error when
    CUDA (or MPS) is asked for but absent. The engine's one reader of device names,
    :func:`braincore.devices.resolve_device`."""
    return _resolve_device(device)


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), NumPy's global generator and Python's ``random``."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def capture_rng(generator: Optional[torch.Generator] = None) -> dict:
    """Every global RNG state (and ``generator``'s), as tensors and plain values a checkpoint can hold."""
    np_state = np.random.get_state()
    state = {"torch": torch.get_rng_state(),
             "numpy": {"key": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                       "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
             "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if generator is not None:
        state["generator"] = generator.get_state()
    return state


def restore_rng(state: dict, generator: Optional[torch.Generator] = None) -> None:
    """Undo :func:`capture_rng`."""
    torch.set_rng_state(state["torch"].cpu())
    np_state = state["numpy"]
    np.random.set_state(("MT19937", np_state["key"].numpy().astype(np.uint32), np_state["pos"],
                         np_state["has_gauss"], np_state["gauss"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    if generator is not None and "generator" in state:
        generator.set_state(state["generator"].cpu())


# ------------------------------------------------------------------------------------------ schedules
@dataclass(frozen=True)
class LRSchedule:
    """A learning-rate factor as a pure function of the optimiser step (equations in the module docstring).

    ``warmup``: warm-up steps ``W`` (linear from ``1 / W`` to 1; not with ``one_cycle``, which has its own
    rise); ``step_size`` (steps) and ``gamma`` for ``step``; ``min_factor`` for ``cosine``; ``pct_start``,
    ``div_factor``, ``final_div_factor`` for ``one_cycle`` (torch's defaults).
    """

    kind: str = "none"
    warmup: int = 0
    step_size: Optional[int] = None
    gamma: float = 0.1
    min_factor: float = 0.0
    pct_start: float = 0.3
    div_factor: float = 25.0
    final_div_factor: float = 1e4

    def __post_init__(self) -> None:
        if self.kind not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.kind!r}; choose one of {', '.join(SCHEDULES)}")
        if isinstance(self.warmup, bool) or int(self.warmup) != self.warmup or self.warmup < 0:
            raise ValueError(f"schedule warmup must be an integer number of steps >= 0, got {self.warmup!r}")
        if self.kind == "step" and (self.step_size is None or int(self.step_size) < 1):
            raise ValueError(f"schedule 'step' needs step_size >= 1 (optimiser steps), got {self.step_size!r}")
        if not 0.0 < self.gamma <= 1.0:
            raise ValueError(f"schedule gamma must lie in (0, 1], got {self.gamma}")
        if not 0.0 <= self.min_factor <= 1.0:
            raise ValueError(f"schedule min_factor must lie in [0, 1], got {self.min_factor}")
        if self.kind == "one_cycle":
            if self.warmup:
                raise ValueError("schedule 'one_cycle' has its own warm-up (pct_start); set warmup to 0")
            if not 0.0 < self.pct_start < 1.0:
                raise ValueError(f"schedule pct_start must lie in (0, 1), got {self.pct_start}")
            if self.div_factor < 1.0 or self.final_div_factor < 1.0:
                raise ValueError("schedule div_factor and final_div_factor must be >= 1, got "
                                 f"{self.div_factor} and {self.final_div_factor}")

    def factor(self, step: int, total: int) -> float:
        """The factor of the base learning rate at optimiser step ``step`` (0-based) of ``total``."""
        if total < 1:
            raise ValueError(f"a schedule needs total >= 1 steps, got {total}")
        if step < 0:
            raise ValueError(f"step must be >= 0, got {step}")
        if self.kind == "one_cycle":
            return self._one_cycle(step, total)
        W = int(self.warmup)
        if step < W:
            return (step + 1) / W
        j, J = step - W, max(total - W, 1)
        if self.kind == "none":
            return 1.0
        if self.kind == "step":
            return self.gamma ** (j // int(self.step_size))  # type: ignore[arg-type]
        j = min(j, J)
        return self.min_factor + (1.0 - self.min_factor) * 0.5 * (1.0 + math.cos(math.pi * j / J))

    def _one_cycle(self, step: int, total: int) -> float:
        # as torch.optim.lr_scheduler.OneCycleLR (two phases, cosine annealing), relative to max_lr
        start, peak = 1.0 / self.div_factor, 1.0
        end = start / self.final_div_factor
        up_end = float(self.pct_start * total) - 1.0
        down_end = float(total - 1)
        step = min(step, total - 1)

        def anneal(a: float, b: float, pct: float) -> float:
            return b + (a - b) / 2.0 * (math.cos(math.pi * pct) + 1.0)

        if step <= up_end:
            return anneal(start, peak, step / up_end if up_end > 0 else 1.0)
        return anneal(peak, end, (step - up_end) / (down_end - up_end) if down_end > up_end else 1.0)


# ------------------------------------------------------------------------------------------ data
class TensorData:
    """``(inputs [N, ...], labels [N])`` in batches of ``batch_size``; one seeded permutation per epoch.

    The permutation of epoch ``e`` is ``numpy.random.default_rng([seed, e]).permutation(N)`` (the same on
    every platform), so batch ``b`` of epoch ``e`` is always the same samples: the position a checkpoint
    records is just ``(e, b)``. ``drop_last`` drops a final partial batch.
    """

    def __init__(self, inputs: Tensor, labels: Tensor, batch_size: int, *, shuffle: bool = True, seed: int = 0,
                 drop_last: bool = False):
        if not isinstance(inputs, Tensor) or not isinstance(labels, Tensor):
            raise TypeError("TensorData: inputs and labels must be tensors")
        if labels.dim() != 1 or inputs.shape[0] != labels.shape[0]:
            raise ValueError(f"TensorData: need inputs [N, ...] and labels [N] with the same N, got "
                             f"{tuple(inputs.shape)} and {tuple(labels.shape)}")
        if isinstance(batch_size, bool) or int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
        if inputs.shape[0] == 0:
            raise ValueError("TensorData: no samples")
        self.inputs, self.labels = inputs, labels
        self.batch_size, self.shuffle, self.seed, self.drop_last = int(batch_size), shuffle, int(seed), drop_last

    def __len__(self) -> int:
        n = self.labels.shape[0]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    @property
    def samples(self) -> int:
        return int(self.labels.shape[0])

    def order(self, epoch: int) -> Tensor:
        n = self.labels.shape[0]
        if not self.shuffle:
            return torch.arange(n, device=self.labels.device)
        perm = np.random.default_rng([self.seed, int(epoch)]).permutation(n)
        return torch.from_numpy(perm).to(self.labels.device)

    def batches(self, epoch: int, start: int = 0) -> Iterator[tuple[Tensor, Tensor]]:
        """The batches of ``epoch`` from batch index ``start`` on."""
        order = self.order(epoch)
        for b in range(start, len(self)):
            take = order[b * self.batch_size:(b + 1) * self.batch_size]
            yield self.inputs[take], self.labels[take]


class IterableData:
    """Batches ``(x, labels)`` from ``source``: a function ``epoch -> iterable`` or a re-iterable object.

    Resuming inside an epoch skips the first ``start`` batches of a fresh iteration, so an exact resume needs
    a source that yields the same batches for the same epoch (a seeded function of the epoch, not a loader
    that shuffles from the global RNG). ``batches_per_epoch`` is needed when ``len(source)`` is not defined.
    """

    def __init__(self, source: Union[Callable[[int], Iterable], Iterable], batches_per_epoch: Optional[int] = None):
        if not callable(source) and not isinstance(source, Iterable):
            raise TypeError(f"IterableData: source must be iterable or a function of the epoch, got "
                            f"{type(source).__name__}")
        if isinstance(source, Iterator):
            raise TypeError("IterableData: source is a one-shot iterator; pass a re-iterable object (a list, a "
                            "DataLoader) or a function epoch -> iterable")
        self.source, self.batches_per_epoch = source, batches_per_epoch

    def __len__(self) -> int:
        if self.batches_per_epoch is not None:
            return int(self.batches_per_epoch)
        try:
            return len(self.source)  # type: ignore[arg-type]
        except TypeError:
            raise TypeError("IterableData: the source has no len(); give batches_per_epoch") from None

    def batches(self, epoch: int, start: int = 0) -> Iterator[tuple[Tensor, Tensor]]:
        it = self.source(epoch) if callable(self.source) else iter(self.source)
        for item in itertools.islice(it, start, len(self)):
            x, y = item
            yield x, y


DataLike = Union[TensorData, IterableData, Sequence[Tensor], Iterable]


def as_data(data: DataLike, batch_size: int, seed: int = 0, shuffle: bool = True) -> Union[TensorData, IterableData]:
    """``data`` as :class:`TensorData` (a pair of tensors) or :class:`IterableData` (anything iterable)."""
    if isinstance(data, (TensorData, IterableData)):
        return data
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(d, Tensor) for d in data):
        return TensorData(data[0], data[1], batch_size, shuffle=shuffle, seed=seed)
    return IterableData(data)


# ------------------------------------------------------------------------------------------ optimiser
def make_optimizer(params: Iterable, kind: str = "adam", lr: float = 1e-3, weight_decay: float = 0.0,
                   betas: Sequence[float] = (0.9, 0.999), eps: float = 1e-8) -> torch.optim.Optimizer:
    """Adam (L2 penalty in the gradient) or AdamW (decoupled weight decay)."""
    if kind not in OPTIMIZERS:
        raise ValueError(f"unknown optimiser {kind!r}; choose one of {', '.join(OPTIMIZERS)}")
    if not lr > 0:
        raise ValueError(f"learning rate must be > 0, got {lr}")
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
        raise ValueError(f"betas must be two numbers in [0, 1), got {tuple(betas)}")
    cls = torch.optim.Adam if kind == "adam" else torch.optim.AdamW
    return cls(params, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)


def _default_transform(x: Tensor, generator: torch.Generator) -> Tensor:
    if x.dim() != 3:
        raise ValueError(f"the default transform expects sample-major sequences [B, T, N], got {tuple(x.shape)}; "
                         "give the Trainer a transform (e.g. an encoder)")
    return x.transpose(0, 1).to(torch.float32)


# ------------------------------------------------------------------------------------------ trainer
class Trainer:
    """Trains ``model`` with ``loss`` (module docstring). ``fit`` trains, ``evaluate`` scores, checkpoints
    resume exactly.

    Args:
        model: ``x [T, B, N] -> output [T, B, C]`` or ``(output, hidden)``; or a function of no arguments that
            builds it, called with torch's RNG seeded from ``seed`` (the same initial weights on every fresh run).
        loss: a :class:`~braincore.training.losses.ClassificationLoss` or a callable with its signature.
        optimizer, lr, weight_decay, betas: :func:`make_optimizer`.
        schedule: an :class:`LRSchedule` (default: constant).
        batch_size: for tensor datasets; ``eval_batch_size`` for evaluation (default ``batch_size``).
        transform: ``(x, generator) -> [T, B, N]`` applied to every batch (after moving it to ``device``).
        seed: seeds the trainer's generator, the global RNGs at the start of a fresh ``fit`` and the
            per-epoch permutations of tensor datasets.
        device: ``"cpu"``, ``"cuda"``...; the model is moved there.
        grad_clip: clip the global gradient norm to this value (``None``: no clipping).
        checkpoint_path, checkpoint_every: where and every how many optimiser steps to checkpoint (also at
            every epoch end and at the end); ``checkpoint_extra``: plain values stored alongside (e.g. a
            config key).
        progress: show the tqdm bar (stderr); ``log``: where epoch lines go (default: stdout, through tqdm).
        distributed: data-parallel training over the ``torch.distributed`` process group (module docstring):
            ``None`` (default) when a group is initialised or torchrun's ``WORLD_SIZE > 1`` is set (the group is
            then initialised from the environment), ``True`` to require it, ``False`` to train this process
            alone even inside a group. ``batch_size`` is then the global batch and must be divisible by the
            number of processes.
        find_unused_parameters: passed to DistributedDataParallel (parameters the loss may not reach).
        resume: ``fit`` continues from the checkpoint at ``checkpoint_path`` when it exists and belongs to this
            run (its run key matches; another run's checkpoint is refused with the reason); ``False`` trains
            afresh and overwrites it.
    """

    def __init__(self, model: Union[nn.Module, Callable[[], nn.Module]], loss: Callable[..., LossResult], *,
                 optimizer: str = "adam",
                 lr: float = 1e-3, weight_decay: float = 0.0, betas: Sequence[float] = (0.9, 0.999),
                 schedule: Optional[LRSchedule] = None, batch_size: int = 128, eval_batch_size: Optional[int] = None,
                 transform: Optional[Transform] = None, seed: int = 0, device: Union[str, torch.device] = "cpu",
                 grad_clip: Optional[float] = None, checkpoint_path: Union[str, Path, None] = None,
                 checkpoint_every: Optional[int] = None, checkpoint_extra: Optional[dict] = None,
                 progress: bool = True, log: Optional[Callable[[str], None]] = None,
                 distributed: Optional[bool] = None, find_unused_parameters: bool = False, resume: bool = True):
        if isinstance(seed, bool) or int(seed) != seed or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        if isinstance(batch_size, bool) or int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
        if grad_clip is not None and not grad_clip > 0:
            raise ValueError(f"grad_clip must be > 0 or None, got {grad_clip}")
        if checkpoint_every is not None and int(checkpoint_every) < 1:
            raise ValueError(f"checkpoint_every must be >= 1 optimiser steps, got {checkpoint_every}")
        if checkpoint_every is not None and checkpoint_path is None:
            raise ValueError("checkpoint_every given without checkpoint_path")
        self.device = resolve_device(device)
        self.dist: Optional[dist_utils.DistributedContext] = self._distributed_context(distributed)
        if self.dist is not None:
            dist_utils.check_global_batch(int(batch_size), self.dist.world_size)
            self.device = self.dist.device
        if not isinstance(model, nn.Module):
            model = self._build_seeded(model, int(seed))
        self.model = model.to(self.device)
        #: what the training forward calls: the model itself, or its DistributedDataParallel wrapper
        self.network: nn.Module = self.model
        if self.dist is not None:
            self.network = dist_utils.wrap_model(self.model, self.device, find_unused_parameters)
        self.loss = loss
        self.base_lr = float(lr)
        self.optimizer = make_optimizer(self.model.parameters(), optimizer, lr, weight_decay, betas)
        self._optimizer_settings = {"kind": optimizer, "lr": float(lr), "weight_decay": float(weight_decay),
                                    "betas": [float(b) for b in betas]}
        self.schedule = schedule or LRSchedule("none")
        self.batch_size = int(batch_size)
        self.eval_batch_size = int(eval_batch_size or batch_size)
        self.transform = transform or _default_transform
        self.seed = int(seed)
        self.generator = torch.Generator(device=self.device).manual_seed(self.seed)
        self.grad_clip = grad_clip
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path is not None else None
        self.checkpoint_every = int(checkpoint_every) if checkpoint_every is not None else None
        self.checkpoint_extra = dict(checkpoint_extra or {})
        self.progress = progress and (self.dist is None or self.dist.is_main)
        self._log = log
        #: continue from the checkpoint at ``checkpoint_path`` when ``fit`` starts (module docstring)
        self.resume_checkpoint = bool(resume)
        self._run_key: Optional[dict] = None          # this run's key, stored in every checkpoint
        self._loaded: Optional[tuple] = None          # (path or None, run key) of a checkpoint loaded before fit
        # position and bookkeeping (all checkpointed)
        self.step, self.epoch, self.batch = 0, 0, 0
        self.history: list[dict] = []
        self.train_seconds = 0.0
        self._stats = self._fresh_stats()
        self._started = False

    # -------------------------------------------------------------------------------- state
    @staticmethod
    def _fresh_stats() -> dict:
        return {"loss": 0.0, "regularizer": 0.0, "correct": 0, "seen": 0, "rate": 0.0, "batches": 0}

    def _distributed_context(self, distributed: Optional[bool]) -> Optional["dist_utils.DistributedContext"]:
        """The process group to train over (``None``: this process alone); see the ``distributed`` argument."""
        if distributed is False:
            return None
        if dist_utils.is_distributed():
            return dist_utils.init_distributed(device=self.device)
        ctx = dist_utils.init_from_environment(self.device)
        if ctx is None and distributed:
            raise ValueError("distributed=True but no torch.distributed process group is initialised and "
                             "WORLD_SIZE is not set: launch with torchrun or call "
                             "braincore.training.distributed.init_distributed first")
        return ctx

    @staticmethod
    def _build_seeded(factory: Callable[[], nn.Module], seed: int) -> nn.Module:
        """``factory()`` with torch's CPU RNG seeded from ``seed``; the global RNG state is restored after."""
        if not callable(factory):
            raise TypeError(f"model must be a torch.nn.Module or a function that builds one, got "
                            f"{type(factory).__name__}")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = factory()
        if not isinstance(model, nn.Module):
            raise TypeError(f"the model function returned {type(model).__name__}, not a torch.nn.Module")
        return model

    def run_key(self, data: Optional[DataLike] = None) -> dict:
        """What ties a checkpoint to a run: the model's class and the shapes of its parameters and buffers, the
        optimiser and its settings, the schedule, the seed, the batch size and (with ``data``) the number of
        training samples and batches per epoch. Plain values, stored in every checkpoint."""
        key: dict[str, Any] = {
            "model": type(self.model).__name__,
            "tensors": {name: list(t.shape) for name, t in self.model.state_dict().items()},
            "optimizer": dict(self._optimizer_settings),
            "schedule": dataclasses.asdict(self.schedule),
            "seed": self.seed, "batch_size": self.batch_size, "data": None}
        if data is not None:
            data = as_data(data, self.batch_size, self.seed)
            key["data"] = {"samples": data.samples if isinstance(data, TensorData) else None,
                           "batches_per_epoch": len(data)}
        return key

    def _check_run_key(self, saved: Optional[dict], current: dict, where: str) -> None:
        """Refuse (:class:`CheckpointMismatch`) a checkpoint whose run key differs from ``current``."""
        if saved is None:
            raise CheckpointMismatch(
                f"{where}: this checkpoint has no run key (written by an older braincore or another program), so "
                f"whether it belongs to this run cannot be checked; delete it, give another checkpoint_path, or "
                f"pass resume=False to train afresh")
        differences = _describe_key_differences(saved, current)
        if differences:
            raise CheckpointMismatch(
                f"{where}: this checkpoint belongs to another run: " + "; ".join(differences) +
                ". Delete it, give another checkpoint_path, or pass resume=False to train afresh and overwrite it")

    @property
    def world_size(self) -> int:
        """The number of data-parallel processes (1 without distributed training)."""
        return self.dist.world_size if self.dist is not None else 1

    def state_dict(self) -> dict:
        """Everything a resume needs (tensors and plain values; :func:`save_checkpoint` can hold it).

        In distributed training this is collective: ``rank_rng`` holds every rank's RNG states."""
        state = self._state_dict()
        if self.dist is not None:
            state["rank_rng"] = dist_utils.gather_objects(state["rng"])
            state["world_size"] = self.dist.world_size
        return state

    def _state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "schedule": {"step": self.step, "kind": self.schedule.kind},
                "position": {"epoch": self.epoch, "batch": self.batch, "step": self.step},
                "rng": capture_rng(self.generator), "history": list(self.history),
                "epoch_stats": dict(self._stats), "train_seconds": self.train_seconds,
                "run_key": self._run_key if self._run_key is not None else self.run_key()}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` (a checkpoint payload)."""
        missing = [k for k in ("model", "optimizer", "position", "rng") if k not in state]
        if missing:
            raise ValueError(f"not a trainer checkpoint: missing {', '.join(missing)}")
        where = self._loading_from or "the checkpoint"
        saved_key = state.get("run_key")
        if saved_key is not None:  # what can be checked before fit sees the data: model, optimiser, seed...
            self._check_run_key(saved_key, self.run_key(), where)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        pos = state["position"]
        self.epoch, self.batch, self.step = int(pos["epoch"]), int(pos["batch"]), int(pos["step"])
        self.history = list(state.get("history", []))
        self._stats = dict(state.get("epoch_stats") or self._fresh_stats())
        self.train_seconds = float(state.get("train_seconds", 0.0))
        ranks = state.get("rank_rng")
        if self.dist is not None and ranks is not None and len(ranks) == self.dist.world_size:
            restore_rng(ranks[self.dist.rank], self.generator)   # every rank its own streams (dropout)
        else:
            restore_rng(state["rng"], self.generator)            # rank 0's (or the single process's) streams
            if self.dist is not None and self.dist.rank > 0:     # another number of processes: fresh per-rank
                torch.manual_seed(self._rank_seed() + self.step)  # streams; the shared generator is restored
        self._started = True
        self._loaded = (where, saved_key)  # fit compares the data size too

    def _rank_seed(self) -> int:
        """The seed of this rank's torch RNG (dropout masks): ``seed`` on rank 0, ``seed + rank`` elsewhere."""
        return self.seed + (self.dist.rank if self.dist is not None else 0)

    def save(self, path: Union[str, Path, None] = None) -> Path:
        """Write a checkpoint atomically (to ``checkpoint_path`` by default)."""
        path = Path(path) if path is not None else self.checkpoint_path
        if path is None:
            raise ValueError("no checkpoint path: give one to save() or to the Trainer")
        state = self.state_dict()  # collective in distributed training
        if self.dist is None or self.dist.is_main:
            save_checkpoint(path, {**self.checkpoint_extra, **state})
        if self.dist is not None:
            dist_utils.barrier()    # the file is complete before any rank goes on (and may read it)
        return path

    def resume(self, path: Union[str, Path, None] = None) -> bool:
        """Load the checkpoint at ``path`` (default ``checkpoint_path``) if it exists; returns whether it did."""
        path = Path(path) if path is not None else self.checkpoint_path
        if path is None or not path.is_file():
            return False
        self._load_file(path)
        return True

    _loading_from: Optional[str] = None

    def _load_file(self, path: Path) -> None:
        self._load_file_state(load_checkpoint(path), path)

    def _load_file_state(self, state: dict, path: Path) -> None:
        """:meth:`load_state_dict` with the file named in any refusal."""
        self._loading_from = str(path)
        try:
            self.load_state_dict(state)
        except CheckpointError:
            raise
        except (ValueError, KeyError, RuntimeError) as err:
            if str(path) in str(err):  # already names the file (another run's checkpoint)
                raise
            raise CheckpointError(f"{path}: does not fit this model and trainer: {err}") from None
        finally:
            self._loading_from = None

    # -------------------------------------------------------------------------------- running
    def _forward(self, x: Tensor) -> tuple[Tensor, list]:
        out = self.model(x)
        if isinstance(out, Tensor):
            return out, []
        output, hidden = out
        return output, list(hidden)

    def _emit(self, message: str, bar) -> None:
        if self.dist is not None and not self.dist.is_main:
            return
        if self._log is not None:
            self._log(message)
        elif bar is not None and not bar.disable:
            bar.write(message, file=sys.stdout)
        else:
            print(message, flush=True)

    def _set_lr(self, total: int) -> float:
        lr = self.base_lr * self.schedule.factor(self.step, total)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def train_step(self, x: Tensor, labels: Tensor, total: int) -> LossResult:
        """One optimiser step on a batch (``x`` before the transform); returns the loss terms."""
        self.model.train()
        x, labels = x.to(self.device), labels.to(self.device)
        if self.dist is not None:
            return self._distributed_step(x, labels, total)
        output, hidden = self._forward(self.transform(x, self.generator))
        result = self.loss(output, labels, hidden)
        if not torch.isfinite(result.loss):
            raise FloatingPointError(f"loss is {result.loss.item()} at step {self.step} (epoch {self.epoch + 1}, "
                                     f"batch {self.batch}); lower the learning rate or add grad_clip")
        self.optimizer.zero_grad(set_to_none=True)
        result.loss.backward()
        self._update(total)
        rate = float(torch.stack([h.detach().mean() for h in hidden]).mean()) if hidden else None
        self._add_stats(float(result.task) * labels.shape[0], float(result.regularizer) * labels.shape[0],
                        int((result.scores.argmax(dim=1) == labels).sum()), int(labels.shape[0]), rate)
        return result

    def _update(self, total: int) -> None:
        """Clip, set this step's learning rate, step the optimiser."""
        if self.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self._set_lr(total)
        self.optimizer.step()
        self.step += 1

    def _add_stats(self, loss_sum: float, reg_sum: float, correct: int, seen: int, rate: Optional[float]) -> None:
        """Accumulate one batch into the epoch's running statistics (``rate``: None without hidden spikes)."""
        st = self._stats
        st["loss"] += loss_sum
        st["regularizer"] += reg_sum
        st["correct"] += correct
        st["seen"] += seen
        if rate is not None:
            st["rate"] += rate
        st["batches"] += 1

    def _distributed_step(self, x: Tensor, labels: Tensor, total: int) -> LossResult:
        """One data-parallel step: encode the global batch, train on this rank's shard (module docstring of
        :mod:`braincore.training.distributed`), reduce the statistics over ranks."""
        assert self.dist is not None
        self.network.train()
        n_global = int(labels.shape[0])
        start, stop = dist_utils.shard_bounds(n_global, self.dist.rank, self.dist.world_size)
        inputs = self.transform(x, self.generator)  # the whole global batch: the same draws as one process
        if inputs.dim() < 2 or inputs.shape[1] != n_global:
            raise ValueError(f"distributed training: the transform must return [T, B, ...] with B = {n_global}, "
                             f"got {tuple(inputs.shape)}")
        inputs, labels = inputs[:, start:stop], labels[start:stop]
        n_local = stop - start
        out = self.network(inputs)
        output, hidden = (out, []) if isinstance(out, Tensor) else (out[0], list(out[1]))
        result = self.loss(output, labels, hidden)
        # DDP averages over ranks: weight each shard's mean by n_local W / n_global (1 for equal shards)
        weight = n_local * self.dist.world_size / n_global
        self.optimizer.zero_grad(set_to_none=True)
        (result.loss * weight if weight != 1.0 else result.loss).backward()
        rate = float(torch.stack([h.detach().mean() for h in hidden]).mean()) if hidden else 0.0
        loss_sum, reg_sum, correct, seen, rate_sum = dist_utils.all_reduce_sum(
            [float(result.task) * n_local, float(result.regularizer) * n_local,
             int((result.scores.argmax(dim=1) == labels).sum()), n_local, rate * n_local], self.device)
        if not math.isfinite(loss_sum + reg_sum):
            raise FloatingPointError(f"loss is {(loss_sum + reg_sum) / seen} at step {self.step} (epoch "
                                     f"{self.epoch + 1}, batch {self.batch}); lower the learning rate or add "
                                     f"grad_clip")
        self._update(total)
        self._add_stats(loss_sum, reg_sum, int(round(correct)), int(round(seen)), rate_sum / seen if hidden else None)
        return result

    def fit(self, train: DataLike, epochs: int, validation: Optional[DataLike] = None,
            max_steps: Optional[int] = None) -> list[dict]:
        """Train to the end of epoch ``epochs``, continuing a checkpoint of this run when there is one.

        With a ``checkpoint_path`` holding a checkpoint (and ``resume``), a fresh trainer first loads it
        (module docstring: a checkpoint of another run is refused with :class:`CheckpointMismatch`); training
        already complete returns the stored history at once. ``validation``: scored at every epoch end
        (:meth:`evaluate`); ``max_steps``: stop (and checkpoint) once this many optimiser steps are done in all.
        Ctrl-C stops at the end of the current batch, after a checkpoint
        (:class:`~braincore.progress.TrainingInterrupted`). Returns the per-epoch history.
        """
        if isinstance(epochs, bool) or int(epochs) < 0:
            raise ValueError(f"epochs must be >= 0, got {epochs!r}")
        epochs = int(epochs)
        data = as_data(train, self.batch_size, self.seed)
        per_epoch = len(data)
        if per_epoch < 1:
            raise ValueError("the training data yield no batches")
        key = self.run_key(data)
        if not self._started and self.resume_checkpoint and self.checkpoint_path is not None \
                and self.checkpoint_path.is_file():
            state = load_checkpoint(self.checkpoint_path)
            self._check_run_key(state.get("run_key"), key, str(self.checkpoint_path))
            self._load_file_state(state, self.checkpoint_path)
            if self.epoch >= epochs or (max_steps is not None and self.step >= max_steps):
                self._emit(f"{self.checkpoint_path}: training already done to epoch {self.epoch} (step "
                           f"{self.step}); nothing to train. Delete it or pass resume=False to train again", None)
            else:
                self._emit(f"resumed from {self.checkpoint_path} at epoch {self.epoch + 1}, batch {self.batch} "
                           f"(step {self.step})", None)
        if self._loaded is not None:  # a checkpoint loaded before: its data size must match too
            where, saved = self._loaded
            self._loaded = None
            if saved is not None:
                self._check_run_key(saved, key, where)
        self._run_key = key
        total = epochs * per_epoch
        if not self._started:
            seed_everything(self.seed)
            if self.dist is not None and self.dist.rank > 0:
                torch.manual_seed(self._rank_seed())  # this rank's dropout masks; the shared generator is seeded
            self._started = True
        if self.epoch >= epochs or (max_steps is not None and self.step >= max_steps):
            return self.history
        done = self.epoch * per_epoch + self.batch
        last_save = self.step
        # Ctrl-C is held back to the end of a batch (a checkpoint there resumes exactly); not in distributed
        # training, where every rank would have to stop at the same batch
        with progress_bar(total, "training", self.progress, initial=done) as bar, \
                interrupt_guard(enabled=self.dist is None) as interrupt:
            while self.epoch < epochs:
                tick = time.perf_counter()
                for x, labels in data.batches(self.epoch, self.batch):
                    self.train_step(x, labels, total)
                    self.batch += 1
                    bar.update(1)
                    st = self._stats
                    if self.progress and (st["batches"] % 10 == 1 or self.batch == per_epoch):
                        post = f"epoch {self.epoch + 1}, loss {st['loss'] / st['seen']:.4f}, " \
                               f"acc {100 * st['correct'] / st['seen']:.2f} %"
                        if st["rate"]:
                            post += f", rate {st['rate'] / st['batches']:.3f}"
                        bar.set_postfix_str(post, refresh=False)
                    stop = max_steps is not None and self.step >= max_steps
                    if self.batch < per_epoch and self.checkpoint_every and \
                            self.step - last_save >= self.checkpoint_every:
                        self.train_seconds += time.perf_counter() - tick
                        tick = time.perf_counter()
                        self.save()
                        last_save = self.step
                    if stop or interrupt.requested:
                        break
                self.train_seconds += time.perf_counter() - tick
                if interrupt.requested:
                    self._interrupted(epochs, per_epoch, bar)
                if self.batch < per_epoch and not (max_steps is not None and self.step >= max_steps):
                    raise ValueError(f"the training data of epoch {self.epoch + 1} ended after {self.batch} "
                                     f"batches, expected {per_epoch}")
                if self.batch >= per_epoch:
                    try:
                        with interrupt.immediate():  # an evaluation stops at once: the state is still the
                            entry = self._epoch_entry(validation)  # epoch's last batch, a resume scores it again
                    except KeyboardInterrupt:
                        if not interrupt.active:
                            raise
                        self._interrupted(epochs, per_epoch, bar)
                    self._finish_epoch(entry, epochs, bar)
                if self.checkpoint_path is not None and (self.batch == 0 or max_steps is not None):
                    self.save()
                    last_save = self.step
                if interrupt.requested:
                    self._interrupted(epochs, per_epoch, bar)
                if max_steps is not None and self.step >= max_steps:
                    break
        return self.history

    def _interrupted(self, epochs: int, per_epoch: int, bar) -> None:
        """Ctrl-C at a safe point: checkpoint (when the trainer has a path) and raise TrainingInterrupted."""
        if self.batch >= per_epoch:
            where = f"the end of epoch {self.epoch + 1}/{epochs} (step {self.step}; its evaluation is redone " \
                    f"on resume)"
        else:
            where = f"epoch {self.epoch + 1}/{epochs}, batch {self.batch}/{per_epoch} (step {self.step})"
        path = self.save() if self.checkpoint_path is not None else None
        bar.close()
        raise TrainingInterrupted(where, path)

    def _epoch_entry(self, validation: Optional[DataLike]) -> dict:
        """The history entry of the epoch just trained (runs the validation); changes no training state."""
        st = self._stats
        entry: dict[str, Any] = {"epoch": self.epoch + 1, "step": self.step,
                                 "lr": self.optimizer.param_groups[0]["lr"],
                                 "train_loss": round(st["loss"] / max(st["seen"], 1), 6),
                                 "train_accuracy": round(st["correct"] / max(st["seen"], 1), 6)}
        if st["regularizer"]:
            entry["train_regularizer"] = round(st["regularizer"] / max(st["seen"], 1), 6)
        if st["rate"]:
            entry["hidden_rate"] = round(st["rate"] / max(st["batches"], 1), 5)
        if validation is not None:
            scores = self.evaluate(validation)
            entry["validation_loss"] = round(scores["loss"], 6)
            entry["validation_accuracy"] = round(scores["accuracy"], 6)
        entry["train_seconds"] = round(self.train_seconds, 1)
        return entry

    def _finish_epoch(self, entry: dict, epochs: int, bar) -> None:
        """Record ``entry``, print the epoch line and move to the next epoch."""
        self.history.append(entry)
        self.epoch += 1
        self.batch = 0
        self._stats = self._fresh_stats()
        text = f"epoch {entry['epoch']}/{epochs}: loss {entry['train_loss']:.4f}, train acc " \
               f"{100 * entry['train_accuracy']:.2f} %"
        if "validation_accuracy" in entry:
            text += f", validation acc {100 * entry['validation_accuracy']:.2f} %"
        if "hidden_rate" in entry:
            text += f", hidden rate {entry['hidden_rate']:.3f}"
        text += f", lr {entry['lr']:.3g}, {entry['train_seconds']:.0f} s"
        self._emit(text, bar)

    @torch.no_grad()
    def evaluate(self, data: DataLike, desc: Optional[str] = None) -> dict:
        """``{"loss", "accuracy", "samples"}`` of the model in eval mode (no dropout) over ``data``.

        Stochastic transforms draw from a generator seeded afresh for every call (``seed + 1000003``), so
        scores are repeatable and the training RNG streams are not touched. ``desc``: show a progress bar.
        """
        data = as_data(data, self.eval_batch_size, self.seed, shuffle=False)
        was_training = self.model.training
        self.model.eval()
        gen = torch.Generator(device=self.device).manual_seed(self.seed + _EVAL_SEED_OFFSET)
        loss_sum, correct, seen = 0.0, 0, 0
        try:
            with progress_bar(len(data), desc or "evaluation", bool(desc) and self.progress, "batch") as bar:
                for x, labels in data.batches(0):
                    x, labels = x.to(self.device), labels.to(self.device)
                    inputs = self.transform(x, gen)
                    if self.dist is not None:  # encode the whole batch (same draws), score this rank's share
                        W = self.dist.world_size
                        n = int(labels.shape[0])
                        start = self.dist.rank * n // W
                        stop = (self.dist.rank + 1) * n // W
                        inputs, labels = inputs[:, start:stop], labels[start:stop]
                        if stop == start:
                            bar.update(1)
                            continue
                    output, hidden = self._forward(inputs)
                    result = self.loss(output, labels, hidden)
                    loss_sum += float(result.task) * labels.shape[0]
                    correct += int((result.scores.argmax(dim=1) == labels).sum())
                    seen += int(labels.shape[0])
                    bar.update(1)
        finally:
            self.model.train(was_training)
        if self.dist is not None:
            loss_sum, correct, seen = dist_utils.all_reduce_sum([loss_sum, correct, seen], self.device)
            correct, seen = int(round(correct)), int(round(seen))
        if seen == 0:
            raise ValueError("evaluate: the data yield no samples")
        return {"loss": loss_sum / seen, "accuracy": correct / seen, "samples": seen}
