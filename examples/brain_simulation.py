#!/usr/bin/env python
"""A two-area cortex built with braincore's Python API: wire, inspect, validate, simulate, analyse, save.

Each area (a "primary" area v1 and a "secondary" area v2) is a Brunel-style balanced network of current-based
LIF neurons: 800 excitatory and 200 inhibitory cells, fixed in-degrees (160 excitatory and 40 inhibitory inputs of
0.2 mV and -g x 0.2 mV with g = 8, voltage-jump synapses, delays of 1-2 ms), driven by independent Poisson
sources. Between the areas:

- feed-forward  v1.exc -> v2.exc  (40 inputs per neuron, 0.2 mV, 3-5 ms): through the areas' ports ``out``/``in``
- feed-forward inhibition  v1.exc -> v2.inh  (40 inputs, 0.2 mV, 3-5 ms)
- feedback  v2.exc -> v1.exc  (20 inputs, 0.1 mV, 8 ms), weaker, as cortical feedback is modulatory

v1 gets a stronger drive (a "stimulus", 1.2 nu_thr) than v2 (background, 0.9 nu_thr). Alone, the areas would fire
at 13.5 and 4.8 Hz (Brunel's mean-field rate, braincore.analysis.brunel_rate); connected, v1 fires at about 15 Hz and
v2, which inherits activity through the feed-forward pathway, at about 7.5 Hz, both asynchronous and irregular
(ISI CV ~0.6, chi ~0.15).

Run::

    python examples/brain_simulation.py --out results/cortex            # 1 s of activity
    python examples/brain_simulation.py --duration 200 --out /tmp/cx     # quick check

It writes, into ``--out``: ``cortex_spikes.npz`` (every monitor's arrays, keys ``<monitor>/<field>``),
``cortex_raster.png`` (spike raster and population rates), ``cortex_graph.png`` (the assembly's graph) and
``summary.json`` (rates, ISI CVs and synchrony per population).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

import networkx as nx

from braincore import analysis
from braincore.graph import Assembly
from braincore.simulator import Simulator
from braincore.synapses import expected_synapses

# ------------------------------------------------------------------------------------------ parameters
N_E, N_I = 800, 200            # neurons per area
C_E, C_I = 160, 40             # recurrent in-degrees (20 % of each population)
J, G = 0.2, 8.0                # mV; inhibitory jumps are -G J (inhibition-dominated)
TAU, THETA = 20.0, 20.0        # ms, mV above rest
NU_THR = analysis.nu_threshold(THETA, J, C_E, TAU)   # 31.25 Hz: the drive that brings the mean input to threshold
CELL = {"tau_m": f"{TAU} ms", "v_rest": "-70 mV", "v_reset": "-60 mV", "v_th": "-50 mV", "t_ref": "2 ms"}


def make_area(name: str, drive: float) -> Assembly:
    """One cortical area: E and I populations, recurrent projections, Poisson drive at ``drive`` x nu_thr,
    spike monitors; its ports ``in`` and ``out`` are the excitatory population."""
    area = Assembly(name)
    init = {"v": {"dist": "uniform", "low": "-70 mV", "high": "-50 mV"}}
    area.add_population("exc", "lif", N_E, CELL, init=init)
    area.add_population("inh", "lif", N_I, CELL, init=init)
    local_delay = {"dist": "uniform", "low": "1 ms", "high": "2 ms"}
    for pre, k, weight, sign in (("exc", C_E, J, "excitatory"), ("inh", C_I, G * J, "inhibitory")):
        for post in ("exc", "inh"):
            area.add_projection(pre, post, {"type": "fixed_indegree", "k": k, "allow_self": False},
                                f"{weight} mV", {"type": "instantaneous"}, local_delay,
                                name=f"{pre[0]}{post[0]}", sign=sign)
    for pop in ("exc", "inh"):
        area.add_input(f"drive_{pop}", "poisson", pop, rate=f"{drive * NU_THR:.3f} Hz", sources=C_E,
                       weight=f"{J} mV")
        area.add_monitor(f"{pop}_spikes", "spikes", pop)
    area.add_port("in", "exc")
    area.add_port("out", "exc")
    return area


def build_cortex(duration: float = 1000.0, seed: int = 7) -> Assembly:
    """The two areas, included under the prefixes ``v1`` and ``v2``, and the projections between them."""
    cortex = Assembly("cortex", duration=f"{duration} ms", dt="0.1 ms", seed=seed)
    cortex.include(make_area("primary", drive=1.2), "v1")
    cortex.include(make_area("secondary", drive=0.9), "v2")
    inter_delay = {"dist": "uniform", "low": "3 ms", "high": "5 ms"}
    cortex.add_projection("v1.out", "v2.in", {"type": "fixed_indegree", "k": 40}, f"{J} mV",
                          {"type": "instantaneous"}, inter_delay, name="feedforward", sign="excitatory")
    cortex.add_projection("v1.out", "v2.inh", {"type": "fixed_indegree", "k": 40}, f"{J} mV",
                          {"type": "instantaneous"}, inter_delay, name="feedforward_inh", sign="excitatory")
    cortex.add_projection("v2.out", "v1.in", {"type": "fixed_indegree", "k": 20}, f"{J / 2} mV",
                          {"type": "instantaneous"}, "8 ms", name="feedback", sign="excitatory")
    return cortex


# ------------------------------------------------------------------------------------------ inspection
def describe(cortex: Assembly, say=print) -> dict:
    """Walk the networkx graph: populations, projections with synapse counts, degrees, paths, loops."""
    g = cortex.graph
    say(f"{cortex!r}")
    say("populations (graph nodes):")
    for node, data in g.nodes(data=True):
        say(f"  {node:<8} {data['model']:<4} {data['size']:>5} neurons  region {data['region']:<3} "
            f"in-projections {g.in_degree(node)}  out-projections {g.out_degree(node)}")
    say("projections (graph edges):")
    synapses = 0.0
    for pre, post, name, data in g.edges(keys=True, data=True):
        spec = data["spec"]
        count = expected_synapses(spec.connector, g.nodes[pre]["size"], g.nodes[post]["size"], pre == post)
        synapses += count or 0
        say(f"  {pre:>6} -> {post:<6} {name:<18} {spec.connector['type']:<15} {count:>9,.0f} synapses  "
            f"{spec.sign}")
    between = [(u, v, k) for u, v, k in g.edges(keys=True) if g.nodes[u]["region"] != g.nodes[v]["region"]]
    path = nx.shortest_path(g, "v1.inh", "v2.inh")
    loops = sorted(tuple(c) for c in nx.simple_cycles(nx.DiGraph(g)) if len({g.nodes[n]["region"] for n in c}) > 1)
    say(f"regions: {cortex.regions}")
    say(f"inter-area projections: {[k for _, _, k in between]}")
    say(f"shortest path v1.inh -> v2.inh: {' -> '.join(path)}")
    say(f"inter-area loops: {len(loops)}, e.g. {' -> '.join(loops[0] + (loops[0][0],)) if loops else '-'}")
    say(f"weakly connected: {nx.is_weakly_connected(g)}; v2 reachable from v1.exc: "
        f"{nx.has_path(g, 'v1.exc', 'v2.exc')}; expected synapses: {synapses:,.0f}")
    return {"populations": g.number_of_nodes(), "projections": g.number_of_edges(), "synapses": synapses,
            "inter_area": [k for _, _, k in between], "path_v1_inh_to_v2_inh": path, "inter_area_loops": len(loops)}


# ------------------------------------------------------------------------------------------ the run
def analyse(sim: Simulator, transient: float) -> dict:
    """Rate, ISI CV and Golomb's chi (2 ms bins) of each spike-monitored population after ``transient`` ms."""
    window = sim.t - transient
    out = {}
    for monitor in sim.assembly.monitors:
        if monitor.type != "spikes":
            continue
        n = sim.populations[monitor.target].model.size
        times, neurons = analysis.spikes_of(sim.monitor(monitor.name), t_start=transient)
        _, cv = analysis.isi_cv(times, neurons, n)
        out[monitor.target] = {
            "rate_hz": analysis.mean_rate(times, n, window),
            "cv_isi": cv,
            "chi": analysis.synchrony_chi(times, neurons, n, window, bin_ms=2.0),
            "fano": analysis.population_fano(times, window, bin_ms=2.0),
            "active_fraction": float((analysis.firing_rates(neurons, n, window) > 0).mean()),
        }
    return out


def _finite(value):
    """``nan`` (a CV without enough intervals) as ``null``, so that summary.json is strict JSON."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return None if isinstance(value, float) and math.isnan(value) else value


def main(argv: Optional[Sequence[str]] = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=1000.0, help="simulated time in ms (default 1000)")
    parser.add_argument("--transient", type=float, default=100.0,
                        help="ms left out of the statistics (default 100, at most half the duration)")
    parser.add_argument("--out", default="cortex_out", help="output folder (default ./cortex_out)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--backend", default="auto", choices=("auto", "native", "torch"))
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    cortex = build_cortex(args.duration, args.seed)
    graph = describe(cortex)
    problems = cortex.validate()          # every problem at once, each naming its item; [] when valid
    print("validation:", "ok" if not problems else "\n  " + "\n  ".join(problems))
    cortex.check()                        # raises AssemblyError listing them

    start = time.perf_counter()
    sim = Simulator(cortex, backend=args.backend)
    built = time.perf_counter()
    print(f"built in {built - start:.2f} s; engine: {sim.engine}"
          + (f" ({sim.fallback_reason})" if sim.fallback_reason else ""))
    sim.run(progress=not args.no_progress)
    elapsed = time.perf_counter() - built
    print(f"simulated {sim.t:g} ms in {elapsed:.2f} s")

    transient = min(args.transient, sim.t / 2)
    stats = analyse(sim, transient)
    print(f"after a {transient:g} ms transient:")
    print(f"  {'population':<10} {'rate (Hz)':>10} {'ISI CV':>8} {'chi':>7} {'Fano':>7} {'active':>7}")
    for pop, s in stats.items():
        print(f"  {pop:<10} {s['rate_hz']:>10.2f} {s['cv_isi']:>8.3f} {s['chi']:>7.3f} {s['fano']:>7.2f} "
              f"{s['active_fraction']:>7.1%}")

    files = {"npz": str(sim.save_npz(out / "cortex_spikes.npz"))}
    try:
        from braincore.viz import plot_assembly_graph, plot_raster

        files["raster"] = str(plot_raster(sim, out / "cortex_raster.png", max_neurons=200))
        files["graph"] = str(plot_assembly_graph(cortex, out / "cortex_graph.png"))
    except ImportError as err:           # matplotlib is the optional `plot` extra
        print(f"no PNG written: {err}")
    summary = {"simulated_ms": sim.t, "transient_ms": transient, "wall_s": elapsed, "engine": sim.engine,
               "graph": graph, "populations": stats, "files": files}
    (out / "summary.json").write_text(json.dumps(_finite(summary), indent=2))
    for kind, path in files.items():
        print(f"wrote {path}")
    print(f"wrote {out / 'summary.json'}")
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
