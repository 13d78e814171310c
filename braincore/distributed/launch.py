"""Run a distributed simulation from Python on this machine: spawn ``P`` processes joined by gloo over a
``file://`` rendezvous (no ports), each building its share of the assembly, and collect rank 0's results.

    from braincore.distributed.launch import spawn_run
    result = spawn_run(assembly, world_size=2, plan={"run": [100.0]}, workdir=tmp)
    result["monitors"]["exc_spikes"]["step"]        # gathered spikes, sorted by (step, neuron)

``plan`` keys (all optional): ``partition`` (scheme), ``buffer`` (initial all-gather capacity), ``load``
(checkpoint to resume from), ``run`` (a list of durations in ms, run one after the other), ``save`` (checkpoint
written after the runs), ``states`` (``[(population, variable)]`` to gather at the end), ``threads`` (torch
threads per process, default 1). World size 1 runs in this process, without ``torch.distributed``.

This is what the tests and ``benchmarks/scaling.py`` use; ``torchrun`` + ``braincore run`` is the command-line
way (:mod:`.config`).
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from ..checkpoint import read_torch_file
from ..launch_env import leave_process_group


def run_plan(assembly, plan: dict) -> dict:
    """Build, (load,) run, (save,) gather: the body every rank executes. Returns the gathered results (full
    on rank 0; ``monitors`` and ``states`` are ``None`` elsewhere)."""
    from .simulator import DistributedSimulator

    torch.set_num_threads(int(plan.get("threads", 1)))
    t0 = time.perf_counter()
    sim = DistributedSimulator(assembly, partition=plan.get("partition", "blocks"),
                               buffer=int(plan.get("buffer", 64)))
    build_s = time.perf_counter() - t0
    if plan.get("load"):
        sim.load(plan["load"])
    sim.comm.barrier()
    t1 = time.perf_counter()
    for ms in plan.get("run", [None]):
        sim.run(ms)
    sim.comm.barrier()
    run_s = time.perf_counter() - t1
    if plan.get("save"):
        sim.save(plan["save"])
    synapses = sim.comm.all_gather_object(sim.local_synapses())
    return {"rank": sim.rank, "world_size": sim.world_size, "min_delay": sim.min_delay, "steps": sim.step_count,
            "build_s": build_s, "run_s": run_s, "monitors": sim.gather_monitors(),
            "states": {f"{p}.{v}": sim.gather_state(p, v) for p, v in plan.get("states", [])},
            "stats": sim.gather_stats(), "local_synapses": synapses, "n_total": sim.n_total,
            "code_bytes": torch.empty(0, dtype=sim.code_dtype).element_size()}


_ARRAY = "__numpy_array__"


def _to_plain(obj: Any) -> Any:
    """A result with its numpy arrays as marked tensors and numpy scalars as Python numbers, so that it can be
    read back with ``torch.load(..., weights_only=True)``."""
    if isinstance(obj, np.ndarray):
        return {_ARRAY: torch.from_numpy(np.ascontiguousarray(obj))}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {k: _to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_plain(v) for v in obj)
    return obj


def _from_plain(obj: Any) -> Any:
    """The inverse of :func:`_to_plain`."""
    if isinstance(obj, dict):
        if set(obj) == {_ARRAY}:
            return obj[_ARRAY].numpy()
        return {k: _from_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_from_plain(v) for v in obj)
    return obj


def _worker(rank: int, world_size: int, init_file: str, assembly_data: dict, plan: dict, out_dir: str) -> None:
    import torch.distributed as dist

    from ..graph import Assembly

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        result = run_plan(Assembly.from_dict(assembly_data), plan)
        torch.save(_to_plain(result), Path(out_dir) / f"result.rank{rank}.pt")
    finally:
        leave_process_group()


def spawn_run(assembly, world_size: int, plan: Optional[dict] = None, *, workdir: Any) -> dict:
    """Run ``plan`` on ``world_size`` spawned processes (gloo, ``file://`` rendezvous in ``workdir``) and return
    rank 0's result (:func:`run_plan`) with ``per_rank`` (every rank's own result). World size 1 runs here."""
    import torch.multiprocessing as mp

    plan = dict(plan or {})
    if world_size == 1:
        result = run_plan(assembly, plan)
        return {**result, "per_rank": [result]}
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    init_file = workdir / f"rendezvous.{os.getpid()}.{time.monotonic_ns()}"
    out_dir = workdir / f"results.{init_file.suffix.lstrip('.')}"
    out_dir.mkdir()
    mp.spawn(_worker, args=(world_size, str(init_file), assembly.to_dict(), plan, str(out_dir)),
             nprocs=world_size, join=True)
    per_rank = [_from_plain(read_torch_file(out_dir / f"result.rank{r}.pt", "rank result", hint="rerun"))
                for r in range(world_size)]
    return {**per_rank[0], "per_rank": per_rank}


__all__ = ["run_plan", "spawn_run"]
