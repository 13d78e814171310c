"""Data-parallel gradient training across processes (``torch.distributed``): the process group, DDP, batch
shards, metric reductions and rank-0-only output.

**Launch.** ``torchrun --nproc-per-node W <script or braincore run config>`` sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; :func:`init_distributed` reads them (``init_method
env://``) or takes explicit ``rank``, ``world_size`` and ``init_method`` (e.g. ``file:///tmp/x`` in tests).
The backend is ``gloo`` on CPU and ``nccl`` on CUDA (each process then uses ``cuda:LOCAL_RANK``).
:class:`~braincore.training.trainer.Trainer` uses the process group on its own when one is initialised, and
initialises it from torchrun's environment when ``WORLD_SIZE > 1`` is set (:func:`init_from_environment`).

**What is computed.** With ``W`` processes and a global batch of ``G`` samples (``G`` divisible by ``W``,
:func:`check_global_batch`), every rank draws the *same* global batch ``b`` of epoch ``e`` (the trainer's
seeded permutation, identical on every rank), encodes all of it with the same seeded generator, and keeps
``G / W`` consecutive samples: rank ``r`` takes samples ``[r G / W, (r + 1) G / W)`` (:func:`shard_bounds`), so
the union over ranks is the single-process batch. Each rank computes the mean loss of its shard; DDP averages
the gradients over ranks, ::

    (1 / W) sum_r (W / G) sum_{i in shard r} grad l_i  =  (1 / G) sum_i grad l_i

the gradient of the single-process batch mean, equal up to the order of the floating-point sums. A final
partial batch of ``m`` samples that ``W`` does not divide is split as evenly as possible and each rank's loss is
weighted by ``n_r W / m`` so the average is again the global mean. Gradient clipping, the optimiser and the
schedule then see identical gradients on every rank, so all ranks hold identical parameters (as DDP requires)
and these equal a single-process run with batch ``G`` to float rounding (``tests/test_distributed_training.py``:
2 gloo processes against 1, float64, ``1e-12``).

*Not identical to one process* (statistically equivalent): losses that are not means over samples (the lower
bound of :class:`~braincore.training.losses.RateRegularizer` is a function of a batch mean, here of each
shard's), and dropout, whose masks each rank draws from its own torch RNG stream (``seed + rank``).

**Output and checkpoints.** Progress bars, epoch lines and checkpoint files come from rank 0 only
(:func:`is_main_process`); a checkpoint holds every rank's RNG states, and every rank restores the same model,
optimiser, position and statistics from it, so a resumed run continues exactly as an uninterrupted one on the
same number of processes. Epoch statistics and evaluations are reduced over ranks (:func:`all_reduce_sum`), so
the history in a checkpoint is that of the whole global batch.

References: S. Li et al., "PyTorch Distributed: experiences on accelerating data parallel training", VLDB 2020
(DDP); P. Goyal et al., "Accurate, large minibatch SGD", 2017 (the global batch is what matters).
"""
from __future__ import annotations

import atexit
import builtins
import datetime
import os
import sys
from dataclasses import dataclass
from typing import Any, Optional, Sequence, Union

import torch
from torch import nn

from ..launch_env import environment_world_size, leave_process_group

Tensor = torch.Tensor

__all__ = ["DistributedContext", "init_distributed", "init_from_environment", "environment_world_size",
           "is_distributed", "rank", "world_size", "local_rank", "is_main_process", "barrier", "cleanup",
           "check_global_batch", "shard_bounds", "shard", "wrap_model", "all_reduce_sum", "gather_objects",
           "main_process_only_output", "print0"]


# ------------------------------------------------------------------------------------------ process group
def is_distributed() -> bool:
    """Whether a ``torch.distributed`` process group is initialised in this process."""
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's rank (0 without a process group)."""
    import torch.distributed as dist

    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """The number of processes (1 without a process group)."""
    import torch.distributed as dist

    return dist.get_world_size() if is_distributed() else 1


def local_rank() -> int:
    """The rank on this machine (torchrun's ``LOCAL_RANK``; the global rank when it is not set)."""
    value = os.environ.get("LOCAL_RANK")
    return int(value) if value is not None else rank()


def is_main_process() -> bool:
    """True on rank 0 (and without a process group): the process that prints and writes files."""
    return rank() == 0


def _default_backend(device: Union[str, torch.device, None]) -> str:
    kind = torch.device(device).type if device is not None else "cpu"
    return "nccl" if kind == "cuda" else "gloo"


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands: ``rank`` of ``world_size``, ``local_rank``, the ``backend`` and ``device``."""

    rank: int
    world_size: int
    local_rank: int
    backend: str
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(backend: Optional[str] = None, *, device: Union[str, torch.device, None] = "cpu",
                     init_method: Optional[str] = None, rank: Optional[int] = None,
                     world_size: Optional[int] = None, timeout_s: float = 1800.0) -> DistributedContext:
    """Initialise the default process group (or describe the one already initialised).

    Without ``rank``/``world_size``, both come from torchrun's environment (``RANK``, ``WORLD_SIZE``) and
    ``init_method`` defaults to ``env://`` (``MASTER_ADDR``, ``MASTER_PORT``). ``backend``: ``gloo`` (CPU)
    or ``nccl`` (CUDA); default from ``device``. On CUDA, this process's device becomes ``cuda:LOCAL_RANK``
    (``torch.cuda.set_device``) and is returned in the context.
    """
    import torch.distributed as dist

    if not dist.is_available():
        raise RuntimeError("torch.distributed is not available in this torch build")
    backend = backend or _default_backend(device)
    if backend not in ("gloo", "nccl", "mpi"):
        raise ValueError(f"unknown backend {backend!r}; use gloo (CPU) or nccl (CUDA)")
    if backend == "nccl" and not torch.cuda.is_available():
        raise ValueError("backend nccl needs CUDA, which is not available; use gloo (device: cpu)")
    if not dist.is_initialized():
        if (rank is None) != (world_size is None):
            raise ValueError("give both rank and world_size, or neither (then torchrun's environment is read)")
        if rank is None:
            missing = [k for k in ("RANK", "WORLD_SIZE") if k not in os.environ]
            if missing:
                raise ValueError(f"init_distributed: {', '.join(missing)} not set; launch with torchrun "
                                 f"(torchrun --nproc-per-node 2 ...) or pass rank and world_size")
            rank, world_size = int(os.environ["RANK"]), environment_world_size()
            init_method = init_method or "env://"
        if not 0 <= int(rank) < int(world_size):
            raise ValueError(f"rank {rank} outside 0..{int(world_size) - 1}")
        if init_method is None:
            raise ValueError("init_distributed: an explicit rank/world_size needs an init_method "
                             "(e.g. 'file:///tmp/braincore_pg' or 'tcp://host:port')")
        dist.init_process_group(backend, init_method=init_method, rank=int(rank), world_size=int(world_size),
                                timeout=datetime.timedelta(seconds=timeout_s))
    local = local_rank()
    dev = torch.device(device) if device is not None else torch.device("cpu")
    if dev.type == "cuda":
        if dev.index is None:
            dev = torch.device("cuda", local % max(torch.cuda.device_count(), 1))
        torch.cuda.set_device(dev)
    return DistributedContext(dist.get_rank(), dist.get_world_size(), local, dist.get_backend(), dev)


def init_from_environment(device: Union[str, torch.device, None] = "cpu",
                          quiet_other_ranks: bool = True) -> Optional[DistributedContext]:
    """Under torchrun (``WORLD_SIZE > 1``), initialise the process group if needed and return the context;
    otherwise ``None``. The group is destroyed when the process exits. ``quiet_other_ranks``: from here on,
    ranks other than 0 print nothing to stdout (:func:`main_process_only_output`), so a ``braincore run``
    prints its lines and final JSON once."""
    if is_distributed():
        return init_distributed(device=device)
    if environment_world_size() <= 1:
        return None
    ctx = init_distributed(device=device)
    atexit.register(cleanup)
    if quiet_other_ranks:
        main_process_only_output()
    return ctx


def cleanup() -> None:
    """Leave the default process group with the other ranks, if one is initialised
    (:func:`braincore.launch_env.leave_process_group`)."""
    if is_distributed():
        leave_process_group()


def barrier() -> None:
    """Wait for every rank (a no-op without a process group)."""
    import torch.distributed as dist

    if is_distributed() and dist.get_world_size() > 1:
        dist.barrier()


_QUIET: list = []


def main_process_only_output() -> None:
    """On ranks other than 0, send stdout to ``os.devnull`` (stderr is kept: errors still show). Idempotent."""
    if is_main_process() or _QUIET:
        return
    sink = open(os.devnull, "w")
    _QUIET.append((sys.stdout, sink))
    sys.stdout = sink
    atexit.register(sink.close)


# ------------------------------------------------------------------------------------------ batches
def check_global_batch(global_batch: int, world: Optional[int] = None) -> int:
    """``global_batch / world`` (the per-rank batch); a clear error when ``world`` does not divide it."""
    world = world_size() if world is None else int(world)
    if isinstance(global_batch, bool) or int(global_batch) < 1:
        raise ValueError(f"the global batch must be >= 1 samples, got {global_batch!r}")
    if int(global_batch) % world:
        lower = int(global_batch) // world * world
        raise ValueError(f"the global batch of {global_batch} samples cannot be split evenly over {world} "
                         f"processes; choose a multiple of {world} (e.g. {lower or world} or {lower + world}) "
                         f"so that every rank trains on {global_batch} / {world} samples per step")
    return int(global_batch) // world


def shard_bounds(n: int, rank_: int, world: int) -> tuple[int, int]:
    """``(start, stop)`` of rank ``rank_``'s consecutive share of ``n`` samples over ``world`` ranks: ``n / world``
    each when ``world`` divides ``n``, else the first ``n % world`` ranks take one sample more. Every rank must get
    at least one sample (a clear error otherwise)."""
    if not 0 <= rank_ < world:
        raise ValueError(f"rank {rank_} outside 0..{world - 1}")
    if n < world:
        raise ValueError(f"a batch of {n} sample(s) cannot be shared by {world} processes (each needs one); "
                         f"use fewer processes or a number of training samples without such a small last batch")
    base, extra = divmod(int(n), int(world))
    start = rank_ * base + min(rank_, extra)
    return start, start + base + (1 if rank_ < extra else 0)


def shard(x: Tensor, rank_: Optional[int] = None, world: Optional[int] = None, dim: int = 0) -> Tensor:
    """Rank ``rank_``'s consecutive share of ``x`` along ``dim`` (:func:`shard_bounds`); defaults: this process."""
    rank_ = rank() if rank_ is None else rank_
    world = world_size() if world is None else world
    start, stop = shard_bounds(x.shape[dim], rank_, world)
    return x.narrow(dim, start, stop - start)


# ------------------------------------------------------------------------------------------ model, reductions
def wrap_model(model: nn.Module, device: Union[str, torch.device, None] = None,
               find_unused_parameters: bool = False) -> nn.Module:
    """``model`` in :class:`torch.nn.parallel.DistributedDataParallel` (CPU/gloo: no device ids; CUDA/nccl: this
    process's device). DDP broadcasts rank 0's parameters and buffers at construction, so every rank starts from
    the same weights."""
    if not is_distributed():
        raise RuntimeError("wrap_model needs an initialised process group (init_distributed)")
    from torch.nn.parallel import DistributedDataParallel

    dev = torch.device(device) if device is not None else next(model.parameters()).device
    if dev.type == "cuda":
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        return DistributedDataParallel(model, device_ids=[index], output_device=index,
                                       find_unused_parameters=find_unused_parameters)
    return DistributedDataParallel(model, find_unused_parameters=find_unused_parameters)


def all_reduce_sum(values: Sequence[float], device: Union[str, torch.device] = "cpu") -> list[float]:
    """The sums over ranks of a few numbers (float64; the values themselves without a process group)."""
    if not is_distributed() or world_size() == 1:
        return [float(v) for v in values]
    import torch.distributed as dist

    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.cpu().tolist()


def gather_objects(obj: Any) -> list:
    """Every rank's ``obj`` (picklable), in rank order, on every rank (``[obj]`` without a process group)."""
    if not is_distributed() or world_size() == 1:
        return [obj]
    import torch.distributed as dist

    out: list = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def print0(*args: Any, **kwargs: Any) -> None:
    """``print`` on rank 0 only."""
    if is_main_process():
        builtins.print(*args, **kwargs)
