#!/usr/bin/env python
"""COBA benchmark: braincore (native C engine and PyTorch loop) side by side with Brian2 (Cython runtime and
C++ standalone), on the same seeded network.

The network is benchmark 1 of Brette et al. (2007) after Vogels & Abbott (2005), with the parameters of
Brian2's COBA example: ``N`` leaky integrate-and-fire neurons (80 % excitatory) with exponential conductance
synapses, no external input (the activity is self-sustained from a random initial potential)::

    C_m dv/dt = g_l (E_l - v) + g_e (E_e - v) + g_i (E_i - v)     (unless refractory)
    dg_e/dt = -g_e / tau_e        dg_i/dt = -g_i / tau_i
    v >= V_t:  spike, v <- V_r, refractory for 5 ms;  a spike adds w_e (w_i) to g_e (g_i) of its targets

Every neuron receives exactly 64 synapses from distinct excitatory and 16 from distinct inhibitory neurons
(no autapses). The pairs and the initial potentials are drawn once per ``N`` with NumPy from ``--seed`` in
this process, written to one ``.npz`` file, and every simulator builds its network from that file, so all
simulators run literally the same network from the same initial state.

Each measurement runs in a fresh subprocess (``--repeat`` times per simulator and size), so that its peak
memory (``getrusage(RUSAGE_SELF).ru_maxrss``) and caches are its own. One thread everywhere
(``OMP_NUM_THREADS=1``, ``torch.set_num_threads(1)``, Brian2 standalone without OpenMP).

Synaptic delay: braincore's minimum delay is one step: a spike emitted in step ``k`` (stamped ``t_k``) is added
to the conductance at the start of step ``k + 1`` and so acts on the integration from ``t_{k+1}``. Brian2
applies ``on_pre`` after the threshold in the same step, so its delay ``0`` already acts on the integration
from ``t_{k+1}``; a Brian2 delay of ``dt`` acts one step later. The default ``--brian2-delay-steps 0`` therefore
gives both simulators the same one-step transmission (checked on a two-neuron probe: in both simulators
the first response of the target appears in the same step); ``--brian2-delay-steps 1`` adds one step in Brian2.

Drive: with these parameters alone (``E_l = V_r = -60 mV``, no input, ``v(0) ~ normal(-55 mV, 5 mV)``, zero
conductances) only the
neurons that start above threshold fire, once, and the network falls silent within ~10 ms at every size: the
timings then measure the neuron updates of a quiet network. The default ``--drive-pA 200`` therefore adds a
constant current of 200 pA to every neuron (``g_l * 20 mV``, the ``I = 20`` of the ANNarchy and BrainPy versions
of this benchmark), which keeps the activity going at ~15 Hz, so that spike propagation is measured too.
Integration: Brian2 cannot integrate these equations exactly (``v`` multiplies the conductances) and picks
forward Euler; braincore uses the same (``--braincore-method euler``), so both simulate one model.

Output: one JSON row per (simulator, N) on stdout (medians over the repeats), then a summary table with the
run-time ratios braincore-native / brian2-standalone and braincore-native / brian2-cython. Progress goes to
stderr. Fields of a row:

``simulator``, ``N``, ``synapses``, ``method`` (integration scheme), ``duration_ms``, ``dt_ms``, ``drive_pA``,
``repeats``,
``build_s`` (network construction from the arrays; braincore: Assembly + Simulator + engine binding; Brian2
Cython: objects + the first code generation, loading compiled extensions from a warm cache; Brian2 standalone:
objects + code generation + compilation of the project), ``compile_s`` (braincore-native: a fresh compile of the
C kernel, ``braincore.native.compile_seconds()``; brian2-cython: the untimed warm-up, which compiles the Cython
extensions into an empty cache; brian2-standalone: ``make``, part of ``build_s``; braincore-torch: null),
``run_s`` (median wall seconds of the simulated ``duration_ms`` only, ``run_s_all`` every repeat),
``spikes``, ``mean_rate_hz`` (and per population ``rate_exc_hz``, ``rate_inh_hz``), ``events`` (synaptic events
delivered: the out-degree summed over all spikes), ``events_per_s`` (``events / run_s``), ``peak_rss_mb``
(median peak resident memory of the measuring process; for brian2-standalone that of the compiled simulation
binary, ``driver_rss_mb`` being the Python process that generated it), ``import_rss_mb`` (resident memory of
the measuring process after its imports, before building: the interpreter and library baseline inside
``peak_rss_mb``), ``end_rss_mb`` (resident memory right after the run, once the construction's temporaries
are freed; not for brian2-standalone), ``binary_s`` (brian2-standalone: the whole binary, with loading its
arrays and writing its results), ``deterministic`` (all repeats gave the same spikes per neuron). Times are
medians over the repeats, like the memory figures.

Examples::

    python benchmarks/sim_coba.py --quick                       # smoke test: N=4000, 200 ms, 1 repeat
    python benchmarks/sim_coba.py --json-out benchmarks/results/sim_coba.json \\
        --table-out benchmarks/results/sim_coba.txt             # N = 4000, 16000, 64000, 3 repeats
    python benchmarks/sim_coba.py --sims braincore-native brian2-standalone --sizes 4000 --repeat 5
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the shared harness, also when imported
from _harness import (Measurement, environment, fmt, measure as measure_script, one_thread,  # noqa: E402
                      report, round_sig, run_braincore as harness_braincore, run_brian2 as harness_brian2)

SIMULATORS: tuple[str, ...] = ("braincore-native", "braincore-torch", "brian2-cython", "brian2-standalone")
DEFAULT_SIZES: tuple[int, ...] = (4000, 16000, 64000)
TORCH_MAX_N = 16000  # braincore-torch is skipped above this size unless --torch-all
RESULT_MARK = "@@SIM_COBA_RESULT "


# ------------------------------------------------------------------------------------------ the model
@dataclass(frozen=True)
class Coba:
    """COBA parameters (Brian2's example, Brette et al. 2007 benchmark 1), in ms, mV, nS, pF."""

    exc_fraction: float = 0.8
    k_exc: int = 64          # synapses per neuron from excitatory neurons
    k_inh: int = 16          # ... from inhibitory neurons
    w_e: float = 6.0         # nS, conductance increment per excitatory spike
    w_i: float = 67.0        # nS
    tau_e: float = 5.0       # ms
    tau_i: float = 10.0      # ms
    E_e: float = 0.0         # mV
    E_i: float = -80.0       # mV
    E_l: float = -60.0       # mV
    V_t: float = -50.0       # mV
    V_r: float = -60.0       # mV
    C_m: float = 200.0       # pF
    g_l: float = 10.0        # nS  (tau_m = C_m / g_l = 20 ms, R_m = 1 / g_l = 100 MOhm)
    t_ref: float = 5.0       # ms
    v0_mean: float = -55.0   # mV, initial potential ~ normal(mean, std)
    v0_std: float = 5.0      # mV
    dt: float = 0.1          # ms

    def n_exc(self, n: int) -> int:
        return int(round(self.exc_fraction * n))

    @property
    def tau_m(self) -> float:
        return self.C_m / self.g_l

    @property
    def R_m(self) -> float:
        """MOhm (1 / nS = GOhm, times 1000)."""
        return 1000.0 / self.g_l


MODEL = Coba()


def _distinct_per_row(rng: np.random.Generator, pool: int, k: int, self_index: np.ndarray) -> np.ndarray:
    """``[R, k]``: per row ``k`` distinct values of ``[0, pool)``, sorted, excluding ``self_index[r]`` where it is
    ``>= 0``; each row's set is a uniform random ``k``-subset (draw with replacement, redraw repeats until
    none is left: the procedure does not depend on the labels of the values, so every subset is equally
    likely; exclusion draws from ``pool - 1`` values and maps ``j -> j + (j >= self)``)."""
    excluded = self_index >= 0
    available = pool - excluded.astype(np.int64)
    if k > int(available.min()):
        raise ValueError(f"cannot draw {k} distinct neurons out of {int(available.min())}")
    cols = rng.integers(0, available[:, None], size=(self_index.size, k), dtype=np.int64)
    while True:
        cols.sort(axis=1)
        repeat = np.zeros(cols.shape, dtype=bool)
        repeat[:, 1:] = cols[:, 1:] == cols[:, :-1]
        rows = np.nonzero(repeat)[0]
        if rows.size == 0:
            break
        cols[repeat] = rng.integers(0, available[rows], dtype=np.int64)
    cols += (excluded[:, None] & (cols >= self_index[:, None])).astype(np.int64)
    return cols


def draw_network(n: int, seed: int, model: Coba = MODEL) -> dict[str, np.ndarray]:
    """Connectivity and initial state for ``n`` neurons (excitatory first: ``[0, n_exc)``), from ``seed``.

    Returns ``pre``, ``post`` (``int64[S]``, global indices, sorted by ``(pre, post)``) and ``v0`` (mV).
    """
    rng = np.random.default_rng(seed)
    n_exc = model.n_exc(n)
    n_inh = n - n_exc
    neuron = np.arange(n, dtype=np.int64)
    from_exc = _distinct_per_row(rng, n_exc, model.k_exc, np.where(neuron < n_exc, neuron, -1))
    from_inh = n_exc + _distinct_per_row(rng, n_inh, model.k_inh, np.where(neuron >= n_exc, neuron - n_exc, -1))
    pre = np.concatenate([from_exc, from_inh], axis=1).reshape(-1)
    post = np.repeat(neuron, model.k_exc + model.k_inh)
    order = np.lexsort((post, pre))
    v0 = rng.normal(model.v0_mean, model.v0_std, size=n)
    return {"pre": pre[order], "post": post[order], "v0": v0}


def load_network(path: str) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def synaptic_events(counts: np.ndarray, pre: np.ndarray) -> int:
    """Synaptic events delivered: every spike of neuron ``i`` reaches its ``out_degree(i)`` targets."""
    out_degree = np.bincount(pre, minlength=counts.size)
    return int(np.dot(counts.astype(np.int64), out_degree.astype(np.int64)))


def coba_ranges(n: int, model: Coba = MODEL) -> dict[str, tuple[int, int]]:
    """The populations' index ranges in the global neuron order (excitatory first)."""
    n_exc = model.n_exc(n)
    return {"exc": (0, n_exc), "inh": (n_exc, n)}


# ------------------------------------------------------------------------------------------ workers
def coba_assembly(net: dict[str, np.ndarray], duration: float, backend: str, seed: int, drive_pA: float = 0.0,
                  method: str = "euler", ee_plasticity: Optional[dict] = None):
    """The braincore :class:`~braincore.graph.Assembly` of the network ``net``, in float64, with a constant current
    of ``drive_pA`` into every neuron, integrating the membrane with ``method`` (``euler``, the scheme Brian2 picks
    for these equations, or ``exact``). Populations ``exc`` and ``inh``, projections ``exc->exc``, ``exc->inh``,
    ``inh->exc``, ``inh->inh`` (explicit pairs), spike monitors ``exc_spikes`` and ``inh_spikes``;
    ``ee_plasticity`` (a ``plasticity:`` spec) is attached to ``exc->exc``. The initial potentials are set on the
    built simulator by :func:`set_coba_state`."""
    from braincore.graph import Assembly

    m = MODEL
    pre, post = net["pre"], net["post"]
    ranges = coba_ranges(net["v0"].size)
    a = Assembly(name="coba")
    cell = {"tau_m": f"{m.tau_m} ms", "R_m": f"{m.R_m} MOhm", "v_rest": f"{m.E_l} mV", "v_reset": f"{m.V_r} mV",
            "v_th": f"{m.V_t} mV", "t_ref": f"{m.t_ref} ms"}
    for name, (lo, hi) in ranges.items():
        a.add_population(name, "lif", hi - lo, cell, method=method)
    synapses = {"exc": ({"type": "conductance", "tau": f"{m.tau_e} ms", "E_rev": f"{m.E_e} mV"}, f"{m.w_e} nS",
                        "excitatory"),
                "inh": ({"type": "conductance", "tau": f"{m.tau_i} ms", "E_rev": f"{m.E_i} mV"}, f"{m.w_i} nS",
                        "inhibitory")}
    for source, (s_lo, s_hi) in ranges.items():
        synapse, weight, sign = synapses[source]
        for target, (t_lo, t_hi) in ranges.items():
            keep = (pre >= s_lo) & (pre < s_hi) & (post >= t_lo) & (post < t_hi)
            connector = {"type": "explicit", "pre": pre[keep] - s_lo, "post": post[keep] - t_lo}
            plastic = ee_plasticity if (source, target) == ("exc", "exc") else None
            a.add_projection(source, target, connector, weight, synapse, sign=sign, plasticity=plastic)
    for name in ranges:
        if drive_pA:
            a.add_input(f"{name}_drive", "constant_current", name, amplitude=f"{drive_pA / 1000.0} nA")
        a.add_monitor(f"{name}_spikes", "spikes", name)
    a.set_run(duration=duration, dt=m.dt, seed=seed, dtype="float64", backend=backend)
    return a


def set_coba_state(sim, net: dict[str, np.ndarray]) -> None:
    """The initial potentials of ``net`` into the populations of a built COBA simulator."""
    import torch

    for name, (lo, hi) in coba_ranges(net["v0"].size).items():
        pop = sim.populations[name]
        v0 = torch.tensor(net["v0"][lo:hi], dtype=torch.float64)[None].contiguous()
        pop.state = pop.state._replace(v=v0)


def coba_counts(sim) -> np.ndarray:
    """Spikes per neuron of a COBA simulator after its run, excitatory first."""
    return np.concatenate([sim.monitor(f"{name}_spikes")["counts"][0] for name in ("exc", "inh")])


def run_braincore(net: dict[str, np.ndarray], duration: float, backend: str, seed: int,
                  drive_pA: float = 0.0, method: str = "euler") -> Measurement:
    """Build and run the network with braincore's ``backend`` (``"native"`` or ``"torch"``), in float64, with a
    constant current of ``drive_pA`` into every neuron, integrating the membrane with ``method`` (``euler``, the
    scheme Brian2 picks for these equations, or ``exact``)."""
    return harness_braincore(lambda: coba_assembly(net, duration, backend, seed, drive_pA, method),
                             lambda sim: (coba_counts(sim), {}), backend=backend, method=method,
                             init=lambda sim: set_coba_state(sim, net))


BRIAN2_EQUATIONS = """
dv/dt = (gl*(El-v) + ge*(Ee-v) + gi*(Ei-v){drive})/Cm : volt (unless refractory)
dge/dt = -ge/taue : siemens
dgi/dt = -gi/taui : siemens
"""


def brian2_equations(drive_pA: float) -> str:
    """The model equations, with the constant current ``Ib`` when there is a drive."""
    return BRIAN2_EQUATIONS.format(drive=" + Ib" if drive_pA else "")


def brian2_method(requested: str, equations: str) -> str:
    """``exact`` when Brian2 can integrate the equations exactly (it cannot: ``g (E - v)`` makes them
    non-linear in the state), else ``euler``; or the ``requested`` method."""
    if requested != "auto":
        return requested
    from brian2 import Equations
    from brian2.stateupdaters.base import StateUpdateMethod

    try:
        StateUpdateMethod.apply_stateupdater(Equations(equations), {}, method="exact")
        return "exact"
    except Exception:  # noqa: BLE001 - Brian2 raises UnsupportedEquationsException (or a wrapper of it)
        return "euler"


def brian2_coba(net: dict[str, np.ndarray], method: str, delay_steps: int, drive_pA: float = 0.0,
                ee_model: Optional[dict] = None) -> tuple[list, dict]:
    """The Brian2 objects of the network ``net`` (call after the device is set): ``[group, exc_synapses,
    inh_synapses, spikes]`` and the namespace of the constants. The group is named ``coba``, the monitor
    ``spikes``. ``ee_model`` (``{"model", "on_pre", "on_post", "namespace"}``) makes the excitatory-to-excitatory
    synapses a separate ``Synapses`` object ``ee_synapses`` with that model (e.g. STDP), appended last."""
    from brian2 import NeuronGroup, SpikeMonitor, Synapses, mV, ms, nS, pA, pF

    m = MODEL
    n = net["v0"].size
    n_exc = m.n_exc(n)
    pre, post = net["pre"], net["post"]
    namespace = {"gl": m.g_l * nS, "El": m.E_l * mV, "Ee": m.E_e * mV, "Ei": m.E_i * mV, "Cm": m.C_m * pF,
                 "taue": m.tau_e * ms, "taui": m.tau_i * ms, "Vt": m.V_t * mV, "Vr": m.V_r * mV,
                 "we": m.w_e * nS, "wi": m.w_i * nS, "Ib": drive_pA * pA}
    group = NeuronGroup(n, brian2_equations(drive_pA), threshold="v >= Vt", reset="v = Vr", refractory=m.t_ref * ms,
                        method=method, name="coba")
    group.v = net["v0"] * mV
    group.ge = 0 * nS
    group.gi = 0 * nS
    delay = {"delay": delay_steps * m.dt * ms} if delay_steps else {}
    from_exc = pre < n_exc
    static = from_exc & ~(post < n_exc) if ee_model is not None else from_exc
    exc = Synapses(group, group, on_pre="ge += we", name="exc_synapses", **delay)
    exc.connect(i=pre[static].astype(np.int32), j=post[static].astype(np.int32))
    inh = Synapses(group, group, on_pre="gi += wi", name="inh_synapses", **delay)
    inh.connect(i=pre[~from_exc].astype(np.int32), j=post[~from_exc].astype(np.int32))
    spikes = SpikeMonitor(group, name="spikes")
    objects = [group, exc, inh, spikes]
    if ee_model is not None:
        ee = from_exc & (post < n_exc)
        plastic = Synapses(group, group, ee_model["model"], on_pre=ee_model["on_pre"], on_post=ee_model["on_post"],
                           name="ee_synapses", **delay)
        plastic.connect(i=pre[ee].astype(np.int32), j=post[ee].astype(np.int32))
        plastic.w = m.w_e * nS
        namespace.update(ee_model.get("namespace", {}))
        objects.append(plastic)
    return objects, namespace


def run_brian2(net: dict[str, np.ndarray], duration: float, mode: str, method: str, delay_steps: int,
               cache_dir: Optional[str], seed: int, drive_pA: float = 0.0, warmup: bool = False) -> Measurement:
    """Build and run the network with Brian2: ``mode`` ``"cython"`` (runtime) or ``"standalone"`` (C++), with a
    constant current of ``drive_pA`` into every neuron.

    ``warmup`` (Cython): only build and generate/compile the code (``run(0 ms)``), to fill the cache.
    """
    chosen = []

    def choose() -> str:
        chosen.append(brian2_method(method, brian2_equations(drive_pA)))
        return chosen[0]

    def build():
        from brian2 import Network

        objects, namespace = brian2_coba(net, chosen[0], delay_steps, drive_pA)
        spikes = objects[3]
        return Network(*objects), namespace, lambda: (np.asarray(spikes.count[:], dtype=np.int64), {})

    # nothing random is drawn at run time; the seed is for completeness
    return harness_brian2(build, duration, mode, dt_ms=MODEL.dt, seed=seed, method=choose, cache_dir=cache_dir,
                          warmup=warmup, prefix="sim_coba_brian2_")


def worker(spec: dict[str, Any]) -> None:
    """Subprocess entry: measure one configuration and print the result after :data:`RESULT_MARK`."""
    net = load_network(spec["network"])
    sim = spec["simulator"]
    if sim.startswith("braincore-"):
        result = run_braincore(net, spec["duration"], sim.split("-", 1)[1], spec["seed"], spec["drive_pA"],
                               spec["braincore_method"])
    else:
        result = run_brian2(net, spec["duration"], sim.split("-", 1)[1], spec["brian2_method"],
                            spec["brian2_delay_steps"], spec.get("cython_cache"), spec["seed"], spec["drive_pA"],
                            warmup=spec.get("warmup", False))
    report(result, RESULT_MARK)


# ------------------------------------------------------------------------------------------ driver
def measure(spec: dict[str, Any], timeout: float) -> Measurement:
    """Run :func:`worker` in a fresh interpreter and return its measurement (raises on failure)."""
    return measure_script(__file__, spec, timeout, RESULT_MARK)


def summarize(sim: str, n: int, net: dict[str, np.ndarray], runs: Sequence[Measurement], duration: float,
              drive_pA: float, compile_s: Optional[float]) -> dict[str, Any]:
    """One output row: medians over the repeats ``runs`` of one simulator at one size."""
    first = runs[0]
    counts = np.asarray(first.counts, dtype=np.int64)

    def median(field: str) -> Optional[float]:
        values = [getattr(r, field) for r in runs if getattr(r, field) is not None]
        return round_sig(statistics.median(values)) if values else None

    n_exc = MODEL.n_exc(n)
    seconds = duration / 1000.0
    run_s = statistics.median(r.run_s for r in runs)
    events = synaptic_events(counts, net["pre"])
    row: dict[str, Any] = {
        "simulator": sim, "N": n, "synapses": int(net["pre"].size), "method": first.method,
        "duration_ms": duration, "dt_ms": MODEL.dt, "drive_pA": drive_pA, "repeats": len(runs),
        "build_s": median("build_s"),
        "compile_s": round_sig(compile_s) if compile_s is not None else median("compile_s"),
        "run_s": round_sig(run_s), "run_s_all": [round_sig(r.run_s) for r in runs],
        "events": events, "events_per_s": round_sig(events / run_s),
        "spikes": int(counts.sum()), "mean_rate_hz": round_sig(counts.sum() / (n * seconds)),
        "rate_exc_hz": round_sig(counts[:n_exc].sum() / (n_exc * seconds)),
        "rate_inh_hz": round_sig(counts[n_exc:].sum() / ((n - n_exc) * seconds)),
        "peak_rss_mb": median("peak_rss_mb"), "import_rss_mb": median("import_rss_mb"),
        "end_rss_mb": median("end_rss_mb"),
        "deterministic": len({tuple(r.counts) for r in runs}) == 1,
    }
    for field in ("driver_rss_mb", "binary_s"):
        if getattr(first, field) is not None:
            row[field] = median(field)
    return row


def table(rows: Sequence[dict[str, Any]], skipped: Sequence[tuple[str, int]], title: str = "") -> str:
    """The summary table (medians) and the run-time ratios per size."""
    mw = max([6] + [len(r["method"]) for r in rows])
    head = (f"{'simulator':<18} {'N':>6} {'synapses':>9} {'method':>{mw}} {'build_s':>8} {'compile_s':>9} "
            f"{'run_s':>8} {'spikes':>9} {'rate_Hz':>7} {'exc_Hz':>7} {'inh_Hz':>7} {'events/s':>9} "
            f"{'peak_MB':>8} {'end_MB':>7} {'base_MB':>8}")
    lines = ([title] if title else []) + [head, "-" * len(head)]
    for r in sorted(rows, key=lambda r: (r["N"], SIMULATORS.index(r["simulator"]))):
        lines.append(f"{r['simulator']:<18} {r['N']:>6} {r['synapses']:>9} {r['method']:>{mw}} "
                     f"{fmt(r['build_s']):>8} {fmt(r['compile_s']):>9} {fmt(r['run_s'], '.4g'):>8} "
                     f"{r['spikes']:>9} {fmt(r['mean_rate_hz'], '.2f'):>7} {fmt(r['rate_exc_hz'], '.2f'):>7} "
                     f"{fmt(r['rate_inh_hz'], '.2f'):>7} {fmt(r['events_per_s'], '.3g'):>9} "
                     f"{fmt(r['peak_rss_mb'], '.0f'):>8} {fmt(r['end_rss_mb'], '.0f'):>7} "
                     f"{fmt(r['import_rss_mb'], '.0f'):>8}")
    for sim, n in skipped:
        lines.append(f"{sim:<18} {n:>6}  skipped (slow; --torch-all runs it)")
    lines.append("")
    lines.append("run-time ratios (median run_s; < 1: braincore-native is faster)")
    ratio_head = (f"{'N':>6} {'native/standalone':>18} {'native/cython':>14} {'torch/native':>13} "
                  f"{'standalone/cython':>18}")
    lines += [ratio_head, "-" * len(ratio_head)]
    by = {(r["simulator"], r["N"]): r["run_s"] for r in rows}

    def ratio(a: str, b: str, n: int) -> str:
        return f"{by[(a, n)] / by[(b, n)]:.3f}" if (a, n) in by and (b, n) in by and by[(b, n)] else "-"

    for n in sorted({r["N"] for r in rows}):
        lines.append(f"{n:>6} {ratio('braincore-native', 'brian2-standalone', n):>18} "
                     f"{ratio('braincore-native', 'brian2-cython', n):>14} "
                     f"{ratio('braincore-torch', 'braincore-native', n):>13} "
                     f"{ratio('brian2-standalone', 'brian2-cython', n):>18}")
    return "\n".join(lines)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES), help="network sizes N")
    parser.add_argument("--sims", nargs="+", default=list(SIMULATORS), choices=SIMULATORS, metavar="SIM",
                        help=f"simulators to run (default all: {', '.join(SIMULATORS)})")
    parser.add_argument("--repeat", type=int, default=3, help="runs per simulator and size; medians are reported")
    parser.add_argument("--duration", type=float, default=1000.0, help="simulated time in ms (default 1000)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the connectivity and initial potentials")
    parser.add_argument("--drive-pA", type=float, default=200.0,
                        help="constant current into every neuron in pA (default 200 keeps the activity going at "
                             "~17 Hz; with 0 the network falls silent within ~10 ms)")
    parser.add_argument("--braincore-method", default="euler", choices=("euler", "exact"),
                        help="braincore's membrane integration (default euler, as Brian2 for these equations)")
    parser.add_argument("--torch-all", action="store_true",
                        help=f"also run braincore-torch above N={TORCH_MAX_N} (slow)")
    parser.add_argument("--quick", action="store_true", help="smoke test: N=4000, 1 repeat, 200 ms")
    parser.add_argument("--brian2-method", default="auto", choices=("auto", "exact", "euler", "exponential_euler"),
                        help="Brian2 integration method (auto: exact if Brian2 accepts it, else euler)")
    parser.add_argument("--brian2-delay-steps", type=int, default=0,
                        help="Brian2 synaptic delay in steps; 0 matches braincore's one-step delay (see the docstring)")
    parser.add_argument("--cython-cache", default=None,
                        help="Brian2 Cython cache folder (default: a fresh temporary one per size, so that "
                             "compile_s is a cold compile)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds allowed per subprocess")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads of braincore's native engine (BRAINCORE_THREADS in the subprocesses; default 1)")
    parser.add_argument("--json-out", type=Path, help="write {'meta': ..., 'rows': [...]} to this file")
    parser.add_argument("--table-out", type=Path, help="write the summary table to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.repeat, args.duration = [4000], 1, 200.0
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")
    if min(args.sizes) < 100:
        parser.error("--sizes must be >= 100 (every neuron needs 64 + 16 distinct presynaptic neurons)")
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    one_thread()  # inherited by every subprocess, and by Brian2's compiled binary
    os.environ["BRAINCORE_THREADS"] = str(args.threads)  # the native engine's own threads (OpenMP's variable is 1)
    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    sims = [s for s in SIMULATORS if s in args.sims]
    rows: list[dict[str, Any]] = []
    skipped: list[tuple[str, int]] = []
    scratch = tempfile.mkdtemp(prefix="sim_coba_")
    try:
        for n in args.sizes:
            start = time.perf_counter()
            net = draw_network(n, args.seed)
            path = os.path.join(scratch, f"coba_{n}.npz")
            np.savez(path, **net)
            log(f"N={n}: {net['pre'].size} synapses drawn in {time.perf_counter() - start:.2f} s")
            for sim in sims:
                if sim == "braincore-torch" and n > TORCH_MAX_N and not args.torch_all:
                    skipped.append((sim, n))
                    log(f"  {sim}: skipped for N > {TORCH_MAX_N} (--torch-all runs it)")
                    continue
                spec = {"simulator": sim, "N": n, "network": path, "duration": args.duration, "seed": args.seed,
                        "brian2_method": args.brian2_method, "brian2_delay_steps": args.brian2_delay_steps,
                        "braincore_method": args.braincore_method,
                        "drive_pA": args.drive_pA,
                        "cython_cache": args.cython_cache or os.path.join(scratch, f"cython_cache_{n}")}
                compile_s = None
                if sim == "brian2-cython":
                    warm = measure({**spec, "warmup": True}, args.timeout)
                    compile_s = warm.compile_s
                    log(f"  {sim}: warm-up (code generation + compilation into the cache) {compile_s:.2f} s")
                runs = []
                for i in range(args.repeat):
                    result = measure(spec, args.timeout)
                    runs.append(result)
                    log(f"  {sim} run {i + 1}/{args.repeat}: build {result.build_s:.2f} s, "
                        f"run {result.run_s:.3f} s, {sum(result.counts)} spikes, "
                        f"peak {result.peak_rss_mb:.0f} MB")
                row = summarize(sim, n, net, runs, args.duration, args.drive_pA, compile_s)
                rows.append(row)
                print(json.dumps(row), flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    title = (f"COBA, {args.duration:g} ms at dt = {MODEL.dt:g} ms, drive {args.drive_pA:g} pA, seed {args.seed}, "
             f"median of {args.repeat} run(s), "
             f"{'one thread' if args.threads == 1 else f'native engine on {args.threads} threads, others on one'} "
             f"(load average {os.getloadavg()[0]:.1f} at the end); times in s, memory in MiB")
    text = table(rows, skipped, title)
    print()
    print(text)
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        meta = {"command": " ".join(["python", sys.argv[0], *(argv if argv is not None else sys.argv[1:])]),
                "model": asdict(MODEL), "seed": args.seed, "drive_pA": args.drive_pA,
                "brian2_delay_steps": args.brian2_delay_steps,
                "environment": environment()}
        args.json_out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    if args.table_out:
        args.table_out.parent.mkdir(parents=True, exist_ok=True)
        args.table_out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        worker(json.loads(sys.argv[2]))
    else:
        sys.exit(main())
