"""The ``distributed`` config kind and the runner of distributed runs (``braincore run`` under ``torchrun``).

A ``kind: distributed`` file names a ``kind: assembly`` file and says how to run it over processes::

    kind: distributed
    name: coba                       # default: the file name
    assembly: coba_net.yaml          # a kind: assembly file, relative to this file
    partition: {scheme: blocks}      # blocks (default) | round_robin | populations  (braincore.distributed.partition)
    dtype: float64                   # optional overrides of the assembly's run settings
    duration: 200 ms
    seed: 1
    per_rank_npz: false              # also write every rank's own spikes to <name>.rank<r>-of-<P>.npz

Launch (every rank runs the same command; ``torchrun`` sets ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` ...)::

    torchrun --nproc-per-node 2 -m braincore.cli run configs/distributed/coba.yaml
    torchrun --nproc-per-node 2 -m braincore.cli run configs/brunel.yaml     # kind: assembly, default partition
    braincore run configs/distributed/coba.yaml                             # one process: world size 1

Under ``WORLD_SIZE > 1`` the runner initialises the default process group (gloo) from the environment if the
caller has not, runs, gathers the spike monitors to rank 0 (which prints and writes ``<name>.npz``) and tears the
group down again.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..config import AnyMapping, Flag, Integer, Kind, Quantity, Record, Text, register_kind
from ..launch_env import environment_world_size, leave_process_group
from ..validation import OutputName
from .partition import PARTITION_SCHEMES

SCHEMA = Record({
    "kind": Text(required=True),
    "name": OutputName(doc="default: the file name; names the output <out>/<name>.npz"),
    "description": Text(),
    "assembly": Text(required=True, doc="a kind: assembly file, relative to this file"),
    "partition": AnyMapping(default=None, doc="{scheme: blocks | round_robin | populations}"),
    "dtype": Text(choices=("float32", "float64")),
    "duration": Quantity("time", minimum=0.0),
    "seed": Integer(minimum=0),
    "per_rank_npz": Flag(False, doc="also write each rank's spikes to its own .npz"),
})


def launched_world_size() -> int:
    """``WORLD_SIZE`` of the environment (set by ``torchrun``), 1 when absent (one reader for the whole engine:
    :func:`braincore.launch_env.environment_world_size`)."""
    return environment_world_size()


def _semantic_check(config: dict, doc, problems: list) -> None:
    from ..assembly_config import load_assembly
    from ..config import ConfigProblems
    from .support import check_supported

    part = config.get("partition") or {}
    if isinstance(part, Mapping):
        for key in part:
            if key != "scheme":
                problems.append(doc.problem(("partition", key), "unknown key (expected: scheme)"))
        scheme = part.get("scheme", "blocks")
        if scheme not in PARTITION_SCHEMES:
            problems.append(doc.problem(("partition", "scheme"), f"unknown scheme {scheme!r} (expected one of: "
                                                                  f"{', '.join(PARTITION_SCHEMES)})"))
        config["_partition"] = scheme
    if config.get("assembly") is None:
        return
    path = Path(doc.file).parent / config["assembly"]
    if not path.is_file():
        problems.append(doc.problem(("assembly",), f"no such file {config['assembly']!r} (looked for {path})"))
        return
    try:
        assembly = load_assembly(path)
    except ConfigProblems as err:
        problems.extend(err.problems)
        return
    overrides = {k: config[k] for k in ("dtype", "duration", "seed") if config.get(k) is not None}
    if overrides:
        assembly.set_run(**overrides)
    if config.get("name"):
        assembly.name = config["name"]
    for line in check_supported(assembly):
        problems.append(doc.problem(("assembly",), f"{path.name}: {line}"))
    config["_assembly"] = assembly


def run_distributed_config(config: dict, options: dict) -> dict:
    """The ``distributed`` kind's runner."""
    return run_distributed(config["_assembly"], {**options, "per_rank_npz": bool(config.get("per_rank_npz"))},
                           partition=config.get("_partition", "blocks"))


def run_assembly_distributed(config: dict, options: dict) -> dict:
    """Runner of a ``kind: assembly`` config launched with ``WORLD_SIZE > 1`` (default partition)."""
    return {"kind": "assembly", **run_distributed(config["_assembly"], options)}


def run_distributed(assembly, options: dict, partition: str = "blocks") -> dict:
    """Build, run, gather and summarise a distributed simulation of ``assembly`` (every rank calls it)."""
    import torch
    import torch.distributed as dist

    from .simulator import DistributedSimulator

    own_group = False
    if launched_world_size() > 1 and not dist.is_initialized():
        dist.init_process_group(backend="gloo")
        own_group = True
    try:
        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1") or 1))
        start = time.perf_counter()
        sim = DistributedSimulator(assembly, partition=partition)
        built = time.perf_counter()
        sim.comm.barrier()
        sim.run()
        sim.comm.barrier()
        elapsed = time.perf_counter() - built
        gathered = sim.gather_monitors()
        stats = sim.gather_stats()
        out = Path(options.get("out", "."))
        name = assembly.name or "assembly"
        if options.get("per_rank_npz"):
            arrays = {}
            for m in sim.monitors:
                for key, value in sim.local_spikes(m.name).items():
                    arrays[f"{m.name}/{key}"] = np.asarray(value)
            out.mkdir(parents=True, exist_ok=True)
            np.savez_compressed(out / f"{name}.rank{sim.rank}-of-{sim.world_size}.npz", **arrays)
        summary: dict[str, Any] = {
            "name": name, "engine": "distributed", "world_size": sim.world_size, "rank": sim.rank,
            "partition": partition, "min_delay_steps": sim.min_delay, "simulated_ms": sim.t, "wall_s": elapsed,
            "build_s": built - start, "steps": sim.step_count,
            "neurons": sim.n_total, "synapses": sum(s["synapses"] for s in stats),
            "exchange": {"intervals": stats[0]["intervals"],
                         "spikes_exchanged": sum(s["spikes_sent"] for s in stats),
                         "bytes_payload": sum(s["bytes_sent"] for s in stats),
                         "bytes_wire_per_rank": [s["bytes_wire"] for s in stats],
                         "comm_s_per_rank": [round(s["comm_s"], 4) for s in stats],
                         "compute_s_per_rank": [round(s["step_s"] + s["deliver_s"], 4) for s in stats]},
        }
        if sim.rank == 0:
            say = options.get("print", print)
            say(f"built {name} on {sim.world_size} rank(s) ({partition}): {sim.n_total} neurons, "
                f"{summary['synapses']} synapses in {built - start:.2f} s (rank 0)")
            say(f"simulated {sim.t:g} ms in {elapsed:.2f} s ({sim.step_count} steps, spikes exchanged every "
                f"{sim.min_delay} step(s), {summary['exchange']['spikes_exchanged']} spikes)")
            seconds = sim.t / 1000.0
            rates, spikes = {}, {}
            for m in sim.monitors:
                data = gathered[m.name]
                size = sim.populations[m.target].size
                spikes[m.target] = int(data["counts"].sum())
                rates[m.target] = spikes[m.target] / (size * seconds) if seconds > 0 else 0.0
                say(f"  {m.target:<24} mean rate {rates[m.target]:7.2f} Hz")
            summary.update(mean_rate_hz=rates, spikes=spikes)
            if gathered:
                out.mkdir(parents=True, exist_ok=True)
                arrays = {f"{n}/{k}": np.asarray(v) for n, d in gathered.items() for k, v in d.items()}
                npz = out / f"{name}.npz"
                np.savez_compressed(npz, **arrays)
                summary["npz"] = str(npz)
        return summary
    finally:
        if own_group:
            leave_process_group()


register_kind(Kind("distributed", SCHEMA, run_distributed_config, _semantic_check,
                   "a kind: assembly network run over processes (torchrun), with its partition"))

__all__ = ["SCHEMA", "launched_world_size", "run_distributed", "run_distributed_config", "run_assembly_distributed"]
