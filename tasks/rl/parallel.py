"""Independent seeds of one ``kind: rl_agent`` config trained in parallel, one process per seed.

Reinforcement-learning results vary a lot from seed to seed, so a claim such as "CartPole is solved" needs
several seeds; these runs share nothing, so they parallelise perfectly over processes (each with one torch
thread). Two ways to start them:

- **torchrun**: ``torchrun --nproc-per-node W $(which braincore) run configs/rl/cartpole.yaml``. Rank ``r`` trains
  seed ``seed + r`` (with ``seeds: N`` in the config, the ``N`` seeds ``seed .. seed + N - 1`` are dealt round
  robin over the ranks); rank 0 gathers every summary over a gloo process group.
- **locally**: ``seeds: N`` in the config (no torchrun): ``min(N, CPUs)`` worker processes are spawned here.

Each seed is an ordinary run of :func:`tasks.rl.single.run_single` with ``seed`` set, ``name`` suffixed with
``_seed<k>`` (so ``<out>/<name>_seed<k>.ckpt`` checkpoints, and resumes, each seed separately), one torch
thread, no progress bar, and its own output in ``<out>/<name>_seed<k>.log``. A seed whose run fails is reported
with its error instead of stopping the others. The final JSON line (rank 0) holds every seed's summary, the
mean and spread of the evaluation returns over seeds and how many seeds reached ``evaluation.target``.
"""
from __future__ import annotations

import contextlib
import json
import os
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any, Callable

import numpy as np

from braincore.training import distributed as bd
from tasks.common import output_dir

from .single import run_single

RunOne = Callable[[dict, dict], dict]

__all__ = ["parallel_requested", "seeds_of", "run_parallel"]


def parallel_requested(config: dict) -> bool:
    """Whether ``config`` asks for parallel seeds: ``seeds > 1``, or launched by torchrun with several
    processes (``WORLD_SIZE > 1``), or inside an initialised process group of several ranks."""
    return int(config.get("seeds") or 1) > 1 or bd.environment_world_size() > 1 or bd.world_size() > 1


def seeds_of(config: dict, processes: int) -> list[int]:
    """The seeds to train: ``seed .. seed + N - 1`` with ``N = seeds`` (or the number of processes when
    ``seeds`` is 1)."""
    n = int(config.get("seeds") or 1)
    n = n if n > 1 else int(processes)
    return [int(config["seed"]) + i for i in range(n)]


def _run_seed(config: dict, seed: int, options: dict, run_one: RunOne) -> dict:
    """One seed's run (output to its log file); a failure becomes ``{"seed", "error"}``."""
    cfg = dict(config)
    cfg["seed"], cfg["name"], cfg["threads"], cfg["progress"] = seed, f"{config['name']}_seed{seed}", 1, False
    cfg.pop("seeds", None)
    if cfg.get("_assembly") is not None:  # assembly-based agents read the simulator's seed from the assembly
        cfg["_assembly"].set_run(seed=seed)
    out_dir = output_dir(options)
    log = out_dir / f"{cfg['name']}.log"
    start = time.perf_counter()
    with open(log, "w") as handle, contextlib.redirect_stdout(handle):
        try:
            summary = run_one(cfg, {**options, "no_progress": True})
        except Exception as err:  # noqa: BLE001 -- reported in the combined summary, the other seeds go on
            traceback.print_exc(file=handle)
            summary = {"seed": seed, "error": f"{type(err).__name__}: {err}"}
    summary["log"] = str(log)
    summary["seed_wall_seconds"] = round(time.perf_counter() - start, 2)
    return summary


def _local_worker(job: tuple) -> dict:
    """Entry point of a spawned worker: ``(config, seed, options)``."""
    import torch

    config, seed, options = job
    torch.set_num_threads(1)
    return _run_seed(config, seed, options, run_single)


def _combine(config: dict, summaries: list, processes: int, launcher: str, wall: float) -> dict:
    summaries = sorted(summaries, key=lambda s: s["seed"])
    ok = [s for s in summaries if "error" not in s]
    returns = [s["eval_return_mean"] for s in ok]
    target = config["evaluation"].get("target")
    combined: dict[str, Any] = {
        "task": "rl_agent_seeds", "env": config["env"]["id"], "agent": config["agent"], "launcher": launcher,
        "processes": processes, "seeds": [s["seed"] for s in summaries],
        "eval_return_mean_over_seeds": round(float(np.mean(returns)), 4) if returns else None,
        "eval_return_std_over_seeds": round(float(np.std(returns)), 4) if returns else None,
        "failed": [s["seed"] for s in summaries if "error" in s],
    }
    if target is not None:
        combined["target"] = target
        combined["reached_target"] = sum(bool(s.get("solved")) for s in ok)
    combined["wall_seconds"] = round(wall, 2)
    combined["per_seed"] = summaries
    return combined


def run_parallel(config: dict, options: dict, run_one: RunOne) -> dict:
    """Train the seeds of ``config`` in parallel (module docstring); rank 0 (or this process, when the workers
    are spawned locally) prints one line per seed and the combined JSON line and returns the combined summary;
    other torchrun ranks return their own seeds' summaries."""
    wall = time.perf_counter()
    if bd.environment_world_size() > 1 or bd.is_distributed():
        bd.init_from_environment("cpu")  # gloo (only summaries are gathered); stdout of ranks > 0 quiet
        rank, world = bd.rank(), bd.world_size()
        seeds = seeds_of(config, world)
        mine = [_run_seed(config, s, options, run_one) for s in seeds[rank::world]]
        summaries = [s for part in bd.gather_objects(mine) for s in part]
        launcher, processes = "torchrun", world
        if rank != 0:
            bd.barrier()  # leave with rank 0: no rank tears its connections down under another's (gloo aborts)
            return {"task": "rl_agent_seeds", "rank": rank, "per_seed": mine}
    else:
        seeds = seeds_of(config, 1)
        processes = max(1, min(len(seeds), os.cpu_count() or 1))
        jobs = [(config, s, options) for s in seeds]
        with ProcessPoolExecutor(processes, mp_context=get_context("spawn")) as pool:
            summaries = list(pool.map(_local_worker, jobs))
        launcher = "local"
    try:
        combined = _combine(config, summaries, processes, launcher, time.perf_counter() - wall)
        _report(config, seeds, processes, launcher, combined)
    finally:
        if launcher == "torchrun":
            bd.barrier()
    return combined


def _report(config: dict, seeds: list, processes: int, launcher: str, combined: dict) -> None:
    """One line per seed and the combined JSON line, on stdout."""
    print(f"rl_agent: {len(seeds)} seeds of {config['env']['id']} on {processes} processes ({launcher})")
    for s in combined["per_seed"]:
        if "error" in s:
            print(f"  seed {s['seed']}: failed: {s['error']} (log {s['log']})")
        else:
            print(f"  seed {s['seed']}: evaluation mean return {s['eval_return_mean']:.3f}"
                  + (f", target {'reached' if s.get('solved') else 'not reached'}" if "solved" in s else "")
                  + f", {s['train_episodes']} training episodes, {s['train_seconds']:.1f} s (log {s['log']})")
    print(json.dumps(combined))
