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

**Checkpoints** (:func:`braincore.checkpoint.save_checkpoint`, atomic) every ``checkpoint_every`` optimiser
steps, at every epoch end and when training stops: model, optimiser, schedule step, the position (epoch and
batch index inside the epoch's permutation), the RNG states (torch CPU and CUDA, NumPy, Python, the trainer's
encoder generator), the running statistics of the epoch and the history. :meth:`Trainer.load_state_dict`
restores all of it, so training N steps straight and training k steps, crashing, resuming and training to N
give bitwise equal parameters on the same device (``tests/test_trainer.py``). Evaluation draws from its own
freshly seeded generator and never touches the training RNG streams.

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

from ..checkpoint import restore_checkpoint, save_checkpoint
from ..progress import progress_bar
from . import distributed as dist_utils
from .losses import LossResult

Tensor = torch.Tensor
Transform = Callable[[Tensor, torch.Generator], Tensor]

__all__ = ["SCHEDULES", "OPTIMIZERS", "LRSchedule", "TensorData", "IterableData", "as_data", "make_optimizer",
           "resolve_device", "seed_everything", "capture_rng", "restore_rng", "progress_bar", "Trainer"]

SCHEDULES = ("none", "step", "cosine", "one_cycle")
OPTIMIZERS = ("adam", "adamw")

#: offset of the evaluation generator's seed from the training seed
_EVAL_SEED_OFFSET = 1_000_003


# ------------------------------------------------------------------------------------------ helpers
def resolve_device(device: Union[str, torch.device]) -> torch.device:
    """``device`` as a :class:`torch.device`; a clear error when CUDA (or MPS) is asked for but absent."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device {device!r} is not a torch device ({err}); use 'cpu' or 'cuda'") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            build = "built without CUDA" if torch.version.cuda is None else f"CUDA {torch.version.cuda}, no GPU visible"
            raise ValueError(f"device {device!r} requested but CUDA is not available (torch {torch.__version__}, "
                             f"{build}); set device: cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) visible")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {device!r} requested but MPS is not available; set device: cpu")
    return dev


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
        model: ``x [T, B, N] -> output [T, B, C]`` or ``(output, hidden)``.
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
    """

    def __init__(self, model: nn.Module, loss: Callable[..., LossResult], *, optimizer: str = "adam",
                 lr: float = 1e-3, weight_decay: float = 0.0, betas: Sequence[float] = (0.9, 0.999),
                 schedule: Optional[LRSchedule] = None, batch_size: int = 128, eval_batch_size: Optional[int] = None,
                 transform: Optional[Transform] = None, seed: int = 0, device: Union[str, torch.device] = "cpu",
                 grad_clip: Optional[float] = None, checkpoint_path: Union[str, Path, None] = None,
                 checkpoint_every: Optional[int] = None, checkpoint_extra: Optional[dict] = None,
                 progress: bool = True, log: Optional[Callable[[str], None]] = None,
                 distributed: Optional[bool] = None, find_unused_parameters: bool = False):
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
        self.model = model.to(self.device)
        #: what the training forward calls: the model itself, or its DistributedDataParallel wrapper
        self.network: nn.Module = self.model
        if self.dist is not None:
            self.network = dist_utils.wrap_model(self.model, self.device, find_unused_parameters)
        self.loss = loss
        self.base_lr = float(lr)
        self.optimizer = make_optimizer(self.model.parameters(), optimizer, lr, weight_decay, betas)
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
                "epoch_stats": dict(self._stats), "train_seconds": self.train_seconds}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` (a checkpoint payload)."""
        missing = [k for k in ("model", "optimizer", "position", "rng") if k not in state]
        if missing:
            raise ValueError(f"not a trainer checkpoint: missing {', '.join(missing)}")
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
        restore_checkpoint(path, self.load_state_dict, what="model and trainer")
        return True

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
        """Train to the end of epoch ``epochs`` (from where a resumed checkpoint left off).

        ``validation``: scored at every epoch end (:meth:`evaluate`); ``max_steps``: stop (and checkpoint)
        once this many optimiser steps are done in all. Returns the per-epoch history.
        """
        if isinstance(epochs, bool) or int(epochs) < 0:
            raise ValueError(f"epochs must be >= 0, got {epochs!r}")
        data = as_data(train, self.batch_size, self.seed)
        per_epoch = len(data)
        if per_epoch < 1:
            raise ValueError("the training data yield no batches")
        total = int(epochs) * per_epoch
        if not self._started:
            seed_everything(self.seed)
            if self.dist is not None and self.dist.rank > 0:
                torch.manual_seed(self._rank_seed())  # this rank's dropout masks; the shared generator is seeded
            self._started = True
        done = self.epoch * per_epoch + self.batch
        if done >= total or (max_steps is not None and self.step >= max_steps):
            return self.history
        last_save = self.step
        with progress_bar(total, "training", self.progress, initial=done) as bar:
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
                    if stop:
                        break
                self.train_seconds += time.perf_counter() - tick
                if self.batch < per_epoch and not (max_steps is not None and self.step >= max_steps):
                    raise ValueError(f"the training data of epoch {self.epoch + 1} ended after {self.batch} "
                                     f"batches, expected {per_epoch}")
                if self.batch >= per_epoch:
                    self._end_epoch(validation, epochs, bar)
                if self.checkpoint_path is not None and (self.batch == 0 or max_steps is not None):
                    self.save()
                    last_save = self.step
                if max_steps is not None and self.step >= max_steps:
                    break
        return self.history

    def _end_epoch(self, validation: Optional[DataLike], epochs: int, bar) -> None:
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
        self.history.append(entry)
        text = f"epoch {entry['epoch']}/{epochs}: loss {entry['train_loss']:.4f}, train acc " \
               f"{100 * entry['train_accuracy']:.2f} %"
        if "validation_accuracy" in entry:
            text += f", validation acc {100 * entry['validation_accuracy']:.2f} %"
        if "hidden_rate" in entry:
            text += f", hidden rate {entry['hidden_rate']:.3f}"
        text += f", lr {entry['lr']:.3g}, {entry['train_seconds']:.0f} s"
        self._emit(text, bar)
        self.epoch += 1
        self.batch = 0
        self._stats = self._fresh_stats()

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
