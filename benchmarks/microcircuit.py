"""The Potjans & Diesmann (2014) cortical microcircuit in braincore and in NEST, side by side.

Each measurement runs in its own fresh interpreter with one thread (``OMP_NUM_THREADS=1``, NEST
``local_num_threads: 1``): build the network at ``--scale`` (N_scaling = K_scaling; NEST's example), pre-simulate
``--t-presim`` (500 ms, not timed), simulate ``--t-sim`` (1 s) timed. Reported per simulator: ``build_s``
(braincore: the region, the :class:`~braincore.simulator.Simulator` and its native engine, kernel compile cached;
NEST: ``Create``, ``Connect``, ``Prepare``), ``simulate_s`` and the real-time factor ``rtf = simulate_s / t_sim``,
peak resident memory (``ru_maxrss``) and the mean rate per population; medians over ``--repeat`` runs (seeds
``seed, seed + 1, ...``). Writes ``benchmarks/results/microcircuit[_<scale>].json`` and ``.txt``.

The NEST network (:func:`nest_microcircuit`) follows NEST's ``pynest/examples/Potjans_2014/network.py`` (NEST 3.10):
``iaf_psc_exp`` populations with their ``I_e``, ``V_m`` normal per population, ``fixed_total_number`` connections
with ``nest.math.redraw`` normal weights (sign kept) and delays (>= dt), one ``poisson_generator`` per population
connected ``all_to_all`` with delay 1.5 ms, optional thalamic ``parrot_neuron`` population; the derived numbers
(synapse counts, PSC amplitudes, DC compensation) are :func:`regions.microcircuit.derive`, i.e. NEST's
``helpers.py`` formulas, so both simulators get the same parameters. NEST's spike times (stamped at the end of
their step) are shifted by -dt to braincore's convention (the start of the step).

    python benchmarks/microcircuit.py --scale 0.1 --repeat 3
    python benchmarks/microcircuit.py --scale 1.0 --repeat 1 --sims braincore --dtype float32   # the full network
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the checkout's braincore, regions and tasks
sys.path.insert(1, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from regions.microcircuit import (NEURON, POPULATIONS, THALAMUS, TH_GENERATOR_DELAY, V0, WEIGHT_REL_STD,  # noqa: E402
                                  derive)

MARK = "MICROCIRCUIT_RESULT "
RESULTS = ROOT / "benchmarks" / "results"


def _peak_mb() -> float:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2.0 ** 20 if sys.platform == "darwin" else peak / 1024.0


# ------------------------------------------------------------------------------------------ NEST
def nest_microcircuit(scale: float = 0.1, seed: int = 1, t_presim: float = 500.0, t_sim: float = 1000.0, *,
                      threads: int = 1, dt: float = 0.1, background: str = "poisson", V0_type: str = "optimized",
                      thalamic_input: bool = False, th_start: float = THALAMUS["th_start"],
                      th_duration: float = THALAMUS["th_duration"], th_rate: float = THALAMUS["th_rate"],
                      N_scaling: Optional[float] = None, K_scaling: Optional[float] = None) -> dict:
    """Run the microcircuit in NEST (network.py of NEST's example); returns ``spikes`` (``pop -> (times, senders)``,
    times in ms shifted by -dt, senders as population indices), ``sizes``, ``build_s``, ``presim_s``,
    ``simulate_s``, ``peak_mb``, ``synapses`` (recurrent, counted by NEST)."""
    import nest

    if hasattr(nest, "VerbosityLevel"):
        nest.verbosity = nest.VerbosityLevel.ERROR
    else:  # pragma: no cover - NEST < 3.10
        nest.set_verbosity("M_ERROR")
    n_scaling = scale if N_scaling is None else N_scaling
    k_scaling = scale if K_scaling is None else K_scaling
    d = derive(n_scaling, k_scaling, poisson_input=background == "poisson")
    t0 = time.perf_counter()
    nest.ResetKernel()
    nest.local_num_threads = threads
    nest.resolution = dt
    nest.rng_seed = int(seed)
    nest.print_time = False
    nrn = NEURON
    v0_mean, v0_std = V0[V0_type]
    pops = []
    for i in range(8):
        pop = nest.Create("iaf_psc_exp", int(d.N[i]))
        pop.set(C_m=nrn["C_m"], tau_m=nrn["tau_m"], tau_syn_ex=nrn["tau_syn"], tau_syn_in=nrn["tau_syn"],
                E_L=nrn["E_L"], V_th=nrn["V_th"], V_reset=nrn["V_reset"], t_ref=nrn["t_ref"], I_e=float(d.dc[i]))
        pop.set(V_m=nest.random.normal(mean=float(v0_mean[i]), std=float(v0_std[i])))
        pops.append(pop)
    recorders = nest.Create("spike_recorder", 8)
    if background == "poisson":
        generators = nest.Create("poisson_generator", 8)
        generators.rate = [float(r) for r in 8.0 * d.ext_indegree]
    for i, target in enumerate(pops):
        for j, source in enumerate(pops):
            if d.K[i, j] <= 0:
                continue
            mean = float(d.weight_mean[i, j])
            low, high = (0.0, float("inf")) if mean >= 0 else (-float("inf"), 0.0)
            nest.Connect(source, target, {"rule": "fixed_total_number", "N": int(d.K[i, j])},
                         {"synapse_model": "static_synapse",
                          "weight": nest.math.redraw(nest.random.normal(mean=mean, std=abs(mean) * WEIGHT_REL_STD),
                                                     min=low, max=high),
                          "delay": nest.math.redraw(nest.random.normal(mean=float(d.delay_mean[i, j]),
                                                                       std=float(d.delay_std[i, j])),
                                                    min=dt, max=float("inf"))})
        nest.Connect(target, recorders[i])
        if background == "poisson":
            nest.Connect(generators[i], target, {"rule": "all_to_all"},
                         {"synapse_model": "static_synapse", "weight": d.weight_ext, "delay": 1.5})
    if thalamic_input:
        th = THALAMUS
        relays = nest.Create("parrot_neuron", th["num_th_neurons"])
        drive = nest.Create("poisson_generator", params={"rate": th_rate, "start": th_start,
                                                         "stop": th_start + th_duration})
        nest.Connect(drive, relays, syn_spec={"delay": TH_GENERATOR_DELAY})
        for i, target in enumerate(pops):
            if d.K_th[i] <= 0:
                continue
            nest.Connect(relays, target, {"rule": "fixed_total_number", "N": int(d.K_th[i])},
                         {"weight": nest.math.redraw(nest.random.normal(mean=d.weight_th,
                                                                        std=d.weight_th * WEIGHT_REL_STD),
                                                     min=0.0, max=float("inf")),
                          "delay": nest.math.redraw(nest.random.normal(
                              mean=th["delay_th_mean"], std=th["delay_th_mean"] * th["delay_th_rel_std"]),
                              min=dt, max=float("inf"))})
    nest.Prepare()
    nest.Cleanup()
    build_s = time.perf_counter() - t0
    synapses = int(nest.GetKernelStatus("num_connections"))
    t = time.perf_counter()
    if t_presim > 0:
        nest.Simulate(t_presim)
    presim_s = time.perf_counter() - t
    t = time.perf_counter()
    nest.Simulate(t_sim)
    simulate_s = time.perf_counter() - t
    spikes, sizes = {}, {}
    for i, pop in enumerate(POPULATIONS):
        events = recorders[i].get("events")
        first = int(pops[i][0].global_id)
        spikes[pop] = (np.asarray(events["times"], dtype=float) - dt,
                       np.asarray(events["senders"], dtype=np.int64) - first)
        sizes[pop] = int(d.N[i])
    return {"spikes": spikes, "sizes": sizes, "build_s": build_s, "presim_s": presim_s, "simulate_s": simulate_s,
            "peak_mb": _peak_mb(), "synapses": synapses}


# ------------------------------------------------------------------------------------------ braincore
def braincore_microcircuit(scale: float = 0.1, seed: int = 1, t_presim: float = 500.0, t_sim: float = 1000.0, *,
                           dtype: str = "float64", backend: str = "native", threads: int = 1,
                           **region: Any) -> dict:
    """The same run in braincore (``tasks.brain.microcircuit.simulate``); the same keys as :func:`nest_microcircuit`
    (``synapses`` counts the recurrent and thalamic synapses)."""
    from tasks.brain.microcircuit import SCHEMA, simulate

    config = {name: spec.default for name, spec in SCHEMA.fields.items()}
    config.update({"scale": scale, "seed": seed, "presim": t_presim, "duration": t_sim, "dtype": dtype,
                   "backend": backend, "threads": threads, "progress": False}, **region)
    sim, spikes, sizes, timing = simulate(config, say=lambda *_: None)
    return {"spikes": spikes, "sizes": sizes, "build_s": timing["build_s"], "presim_s": timing["presim_s"],
            "simulate_s": timing["simulate_s"], "peak_mb": _peak_mb(), "synapses": timing["synapses"],
            "engine": sim.engine}


# ------------------------------------------------------------------------------------------ measuring
def _worker(spec: dict) -> None:
    runner = nest_microcircuit if spec.pop("simulator") == "nest" else braincore_microcircuit
    out = runner(**spec)
    t0, t1 = spec.get("t_presim", 500.0), spec.get("t_presim", 500.0) + spec.get("t_sim", 1000.0)
    rates = {}
    for pop, (times, _) in out["spikes"].items():
        rates[pop] = float(((times >= t0) & (times < t1)).sum() / out["sizes"][pop] / ((t1 - t0) / 1000.0))
    result = {k: out[k] for k in ("build_s", "presim_s", "simulate_s", "peak_mb", "synapses")}
    result.update({"rtf": out["simulate_s"] / ((t1 - t0) / 1000.0), "rates": rates,
                   "neurons": int(sum(out["sizes"].values())), "engine": out.get("engine", "nest")})
    print(MARK + json.dumps(result), flush=True)


def measure(simulator: str, scale: float, seed: int, t_presim: float, t_sim: float, dtype: str,
            timeout: float, threads: int = 1) -> dict:
    spec = {"simulator": simulator, "scale": scale, "seed": seed, "t_presim": t_presim, "t_sim": t_sim}
    spec["threads"] = threads  # braincore's native engine threads, NEST's local_num_threads
    if simulator == "braincore":
        spec["dtype"] = dtype
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec)],
                          capture_output=True, text=True, timeout=timeout, env=env)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(MARK):
            return json.loads(line[len(MARK):])
    raise RuntimeError(f"{simulator} at scale {scale} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n"
                       f"{proc.stderr[-4000:]}")


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--sims", nargs="+", default=["braincore", "nest"], choices=["braincore", "nest"])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--t-presim", type=float, default=500.0)
    parser.add_argument("--t-sim", type=float, default=1000.0)
    parser.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    parser.add_argument("--timeout", type=float, default=7200.0)
    parser.add_argument("--threads", type=int, default=1,
                        help="threads of braincore's native engine and of NEST (default 1)")
    parser.add_argument("--out", default=None, help="file stem (default benchmarks/results/microcircuit[_scale])")
    args = parser.parse_args(argv)
    if args.worker:
        _worker(json.loads(args.worker))
        return 0
    from _harness import environment

    rows = []
    for sim in args.sims:
        runs = []
        for r in range(args.repeat):
            result = measure(sim, args.scale, args.seed + r, args.t_presim, args.t_sim, args.dtype, args.timeout,
                             args.threads)
            print(f"{sim} seed {args.seed + r}: build {result['build_s']:.2f} s, simulate {result['simulate_s']:.2f} s "
                  f"(rtf {result['rtf']:.2f}), peak {result['peak_mb']:.0f} MiB", flush=True)
            runs.append(result)
        med = {k: statistics.median(x[k] for x in runs) for k in ("build_s", "simulate_s", "rtf", "peak_mb")}
        rates = {p: statistics.median(x["rates"][p] for x in runs) for p in POPULATIONS}
        rows.append({"simulator": sim, "scale": args.scale, "neurons": runs[0]["neurons"],
                     "synapses": runs[0]["synapses"], "engine": runs[0]["engine"], "runs": runs, "median": med,
                     "median_rates": rates, "dtype": args.dtype if sim == "braincore" else "float64"})
    header = (f"Potjans-Diesmann microcircuit, scale {args.scale:g}, t_presim {args.t_presim:g} ms, t_sim "
              f"{args.t_sim:g} ms, {'one thread' if args.threads == 1 else f'{args.threads} threads'}, "
              f"load average {os.getloadavg()[0]:.1f} at the end, medians of {args.repeat} "
              f"(seeds {args.seed}..{args.seed + args.repeat - 1})")
    lines = [header, "",
             f"{'simulator':<11}{'neurons':>9}{'synapses':>13}{'build (s)':>11}{'sim (s)':>9}{'RTF':>7}"
             f"{'peak MiB':>10}"]
    for row in rows:
        m = row["median"]
        lines.append(f"{row['simulator']:<11}{row['neurons']:>9,}{row['synapses']:>13,}{m['build_s']:>11.2f}"
                     f"{m['simulate_s']:>9.2f}{m['rtf']:>7.2f}{m['peak_mb']:>10.0f}")
    lines += ["", "median rates (Hz): " + " ".join(f"{p:>6}" for p in POPULATIONS)]
    for row in rows:
        lines.append(f"{row['simulator']:<18}" + " ".join(f"{row['median_rates'][p]:>6.2f}" for p in POPULATIONS))
    text = "\n".join(lines)
    print(text)
    stem = Path(args.out) if args.out else RESULTS / ("microcircuit" if args.scale == 0.1 else
                                                      f"microcircuit_scale{args.scale:g}")
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".txt").write_text(text + "\n")
    stem.with_suffix(".json").write_text(json.dumps({"environment": environment(), "args": vars(args), "rows": rows},
                                                    indent=1, default=float) + "\n")
    print(f"wrote {stem.with_suffix('.txt')} and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
