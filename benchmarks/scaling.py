#!/usr/bin/env python
"""Strong and weak scaling of the distributed engine on the COBA network, with the cost of the spike exchange.

The network is ``configs/distributed/coba_net.yaml``: COBA (Vogels & Abbott 2005, Brette et al. 2007) with 4000
conductance-based LIF neurons, connection probability 0.02 (in-degree 80 on average), a 0.2 nA drive and a
synaptic delay of 1 ms, float64. Each case runs ``--duration`` ms (default 200 ms = 2000 steps) on ``P`` processes
spawned on this machine (gloo over loopback, one torch thread each, partition ``blocks``):

- *strong scaling*: N = 4000 on P = 1 and 2, with the delay of 1 ms (spikes exchanged every D = 10 steps) and
  with a delay of one step (0.1 ms: an exchange every step, the worst case);
- *weak scaling*: N = 4000 P (4000 neurons per process) with ``p = 0.02 / P``, so that every neuron keeps its
  in-degree of 80 and the per-process work stays the same; delay 1 ms.

Reported per case (medians over ``--repeat`` runs): ``run_s`` (wall time of the simulated duration on rank 0,
between two barriers), per step ``step_ms``, split into ``compute_ms`` (neuron and synapse updates plus delivery
of the gathered spikes, the slowest rank) and ``comm_ms`` (time inside the all-gathers, mean over ranks; it
includes waiting for the slower rank, i.e. load imbalance), ``spikes_per_step``, ``bytes_per_step`` (payload: 4
bytes per exchanged spike, summed over ranks) and ``wire_bytes_per_step`` (what the all-gathers moved into one
rank, headers and padding of the fixed-capacity buffer included), ``speedup`` and ``efficiency``.

A micro-benchmark of the all-gather itself (``--probe``, on by default) times back-to-back all-gathers of n
int32 words per rank on P = 2 and fits ``t(n) = latency + n * per_word``: the latency is the cost of one exchange
interval, ``per_word`` the measured communication cost per spike (4 bytes) on this machine's loopback.

Results: ``benchmarks/results/scaling.json`` and ``scaling.txt``. This machine has 2 cores shared with other
jobs, so 2-process timings carry noise; the byte counts are exact.

    OMP_NUM_THREADS=1 python benchmarks/scaling.py                 # about 2 minutes
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from braincore.assembly_config import load_assembly  # noqa: E402
from braincore.distributed.launch import spawn_run  # noqa: E402
from braincore.graph import Assembly  # noqa: E402
from braincore.launch_env import leave_process_group  # noqa: E402

CONFIG = ROOT / "configs" / "distributed" / "coba_net.yaml"


def coba(n: int, p: float, delay: str, duration: float) -> Assembly:
    """The COBA network with ``n`` neurons (80 % excitatory), connection probability ``p`` and ``delay``."""
    data = load_assembly(CONFIG).to_dict()
    data["duration"] = duration
    data["populations"]["exc"]["size"] = n * 4 // 5
    data["populations"]["inh"]["size"] = n - n * 4 // 5
    for proj in data["projections"]:
        proj["connector"] = {"type": "fixed_probability", "p": p}
        proj["delay"] = delay
    return Assembly.from_dict(data)


def measure(n: int, world: int, p: float, delay: str, duration: float, repeat: int, workdir: Path) -> dict:
    runs = []
    for _ in range(repeat):
        result = spawn_run(coba(n, p, delay, duration), world, {"partition": "blocks"}, workdir=workdir)
        stats, steps = result["stats"], result["steps"]
        spikes = sum(int(m["counts"].sum()) for m in result["monitors"].values())
        runs.append({
            "run_s": result["run_s"],
            "compute_ms": max(s["step_s"] + s["deliver_s"] for s in stats) / steps * 1e3,
            "comm_ms": statistics.mean(s["comm_s"] for s in stats) / steps * 1e3,
            "comm_min_us": min(s["comm_min_s"] for s in stats) * 1e6,
            "spikes": spikes,
            "exchanged": sum(s["spikes_sent"] for s in stats),
            "intervals": stats[0]["intervals"],
            "bytes": sum(s["bytes_sent"] for s in stats),
            "wire": statistics.mean(s["bytes_wire"] for s in stats),
            "second_rounds": stats[0]["second_rounds"],
            "synapses": sum(s["synapses"] for s in stats),
            "steps": steps, "min_delay": result["min_delay"],
        })
    med = lambda key: statistics.median(r[key] for r in runs)  # noqa: E731
    steps = runs[0]["steps"]
    return {"N": n, "P": world, "p": p, "delay": delay, "min_delay_steps": runs[0]["min_delay"], "steps": steps,
            "synapses": runs[0]["synapses"], "repeats": repeat, "run_s": med("run_s"),
            "run_s_all": [round(r["run_s"], 4) for r in runs], "step_ms": med("run_s") / steps * 1e3,
            "compute_ms": med("compute_ms"), "comm_ms": med("comm_ms"),
            "comm_per_exchange_us": med("comm_ms") * 1e3 * runs[0]["min_delay"], "comm_min_us": med("comm_min_us"),
            "spikes": runs[0]["spikes"],
            "rate_hz": runs[0]["spikes"] / (n * steps * 1e-4), "spikes_per_step": runs[0]["exchanged"] / steps,
            "intervals": runs[0]["intervals"], "bytes_per_step": runs[0]["bytes"] / steps,
            "wire_bytes_per_step": runs[0]["wire"] / steps, "second_rounds": runs[0]["second_rounds"],
            "identical_spikes_over_repeats": len({r["spikes"] for r in runs}) == 1}


def _probe_worker(rank: int, world: int, init_file: str, sizes: list, reps: int, out: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    rows = []
    for n in sizes:
        buf = torch.zeros(n + 1, dtype=torch.int32)
        parts = [torch.empty_like(buf) for _ in range(world)]
        for _ in range(10):
            dist.all_gather(parts, buf)
        times = []
        for _ in range(reps if n <= 65536 else reps // 10):
            dist.barrier()  # both ranks enter together: the time is the all-gather's, not a wait for the other
            t0 = time.perf_counter()
            dist.all_gather(parts, buf)
            times.append(time.perf_counter() - t0)
        rows.append({"words": n, "seconds": statistics.median(times)})
    if rank == 0:
        Path(out).write_text(json.dumps(rows))
    leave_process_group()


def probe(world: int, workdir: Path) -> dict:
    import torch.multiprocessing as mp

    sizes = [1, 256, 4096, 65536, 1048576]
    out = workdir / "probe.json"
    mp.spawn(_probe_worker, args=(world, str(workdir / f"probe.{time.monotonic_ns()}"), sizes, 300, str(out)),
             nprocs=world, join=True)
    rows = json.loads(out.read_text())
    # t = a + b n: a from the smallest message, b from the largest (robust to the noise of a shared machine)
    a = rows[0]["seconds"]
    b = (rows[-1]["seconds"] - a) / (rows[-1]["words"] - rows[0]["words"])
    return {"P": world, "rows": rows, "latency_s": a, "per_word_s": b, "bytes_per_word": 4,
            "bandwidth_MB_s": 4 * (world - 1) / b / 1e6 if b > 0 else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=200.0, help="simulated ms per run (default 200)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-probe", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "scaling"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cases = [("strong", 4000, 1, 0.02, "1 ms"), ("strong", 4000, 2, 0.02, "1 ms"),
                 ("strong", 4000, 1, 0.02, "0.1 ms"), ("strong", 4000, 2, 0.02, "0.1 ms"),
                 ("weak", 8000, 2, 0.01, "1 ms")]
        for study, n, world, p, delay in cases:
            print(f"{study}: N={n} P={world} p={p} delay={delay} ...", file=sys.stderr, flush=True)
            row = {"study": study, **measure(n, world, p, delay, args.duration, args.repeat, work)}
            rows.append(row)
            print(json.dumps(row), flush=True)
        probe_row = None if args.no_probe else probe(2, work)
    base = {(r["delay"]): r for r in rows if r["P"] == 1}
    for r in rows:
        ref = base[r["delay"]]
        r["speedup"] = ref["run_s"] / r["run_s"]
        r["efficiency"] = r["speedup"] / r["P"] if r["study"] == "strong" else ref["run_s"] / r["run_s"]
    weak_base = dict(base["1 ms"], study="weak")
    weak_base["speedup"], weak_base["efficiency"] = 1.0, 1.0
    rows.insert(len(rows) - 1, weak_base)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"machine": f"{os.cpu_count()} cores (shared), torch {torch.__version__}, gloo over loopback, "
                       f"1 thread per process", "duration_ms": args.duration, "dt_ms": 0.1, "dtype": "float64",
            "network": "configs/distributed/coba_net.yaml"}
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows, "probe": probe_row}, indent=1))
    lines = [f"Distributed COBA scaling: {args.duration:g} ms at dt 0.1 ms, float64, partition blocks, gloo on "
             f"loopback, 1 thread/process; {meta['machine']}; medians of {args.repeat}",
             f"{'study':<7}{'N':>6}{'P':>3}{'D':>4}{'synapses':>10}{'rate_Hz':>8}{'run_s':>8}{'step_ms':>9}"
             f"{'compute':>9}{'comm':>8}{'xchg_us':>8}{'min_us':>7}{'spk/step':>9}{'B/step':>8}{'wireB/st':>9}"
             f"{'speedup':>8}{'eff':>6}",
             "-" * 127]
    for r in rows:
        lines.append(f"{r['study']:<7}{r['N']:>6}{r['P']:>3}{r['min_delay_steps']:>4}{r['synapses']:>10}"
                     f"{r['rate_hz']:>8.2f}{r['run_s']:>8.3f}{r['step_ms']:>9.3f}{r['compute_ms']:>9.3f}"
                     f"{r['comm_ms']:>8.3f}{r['comm_per_exchange_us']:>8.0f}{r['comm_min_us']:>7.0f}"
                     f"{r['spikes_per_step']:>9.2f}{r['bytes_per_step']:>8.1f}"
                     f"{r['wire_bytes_per_step']:>9.1f}{r['speedup']:>8.2f}{r['efficiency']:>6.2f}")
    lines.append("compute/comm: ms per step (compute: slowest rank's updates + delivery; comm: mean time in the "
                 "all-gathers, waiting included);")
    lines.append("xchg_us: comm per exchange interval; min_us: the fastest exchange; B/step: spike payload "
                 "(4 B/spike); "
                 "wireB/st: bytes received per rank per step incl. headers and padding")
    if probe_row:
        lines.append("")
        lines.append(f"all-gather probe, P = {probe_row['P']} (int32 words per rank -> median time of one all-gather):")
        for row in probe_row["rows"]:
            lines.append(f"  {row['words']:>7} words  {row['seconds'] * 1e6:10.1f} us")
        lines.append(f"  latency {probe_row['latency_s'] * 1e6:.1f} us per exchange; "
                     f"{probe_row['per_word_s'] * 1e9:.2f} ns per spike word (4 B) => "
                     f"{probe_row['bandwidth_MB_s']:.0f} MB/s received per rank (medians of single calls)")
    text = "\n".join(lines)
    out.with_suffix(".txt").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
