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

Drive: with these parameters alone (``E_l = V_r = -60 mV``, no input, ``v(0) ~ normal(-55 mV, 5 mV)``, zero conductances) only the
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
import hashlib
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

SIMULATORS: tuple[str, ...] = ("braincore-native", "braincore-torch", "brian2-cython", "brian2-standalone")
DEFAULT_SIZES: tuple[int, ...] = (4000, 16000, 64000)
TORCH_MAX_N = 16000  # braincore-torch is skipped above this size unless --torch-all
RESULT_MARK = "@@SIM_COBA_RESULT "
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")


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


def _peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (``ru_maxrss`` is in KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def _current_rss_mb() -> Optional[float]:
    """Resident set size of this process now, in MiB (Linux ``/proc``; ``None`` elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / (1024.0 * 1024.0)
    except (OSError, ValueError, IndexError):
        return None


# ------------------------------------------------------------------------------------------ workers
@dataclass
class Measurement:
    """What one subprocess reports."""

    build_s: float
    run_s: float
    counts: list[int]            # spikes per neuron, excitatory first
    peak_rss_mb: float
    import_rss_mb: float
    method: str
    compile_s: Optional[float] = None
    end_rss_mb: Optional[float] = None     # resident memory after the run (build transients released)
    driver_rss_mb: Optional[float] = None
    binary_s: Optional[float] = None


def run_braincore(net: dict[str, np.ndarray], duration: float, backend: str, seed: int,
                  drive_pA: float = 0.0, method: str = "euler") -> Measurement:
    """Build and run the network with braincore's ``backend`` (``"native"`` or ``"torch"``), in float64, with a
    constant current of ``drive_pA`` into every neuron, integrating the membrane with ``method`` (``euler``, the
    scheme Brian2 picks for these equations, or ``exact``)."""
    import torch

    torch.set_num_threads(1)
    from braincore.graph import Assembly
    from braincore.simulator import Simulator

    import_rss = _peak_rss_mb()
    m = MODEL
    n = net["v0"].size
    n_exc = m.n_exc(n)
    pre, post = net["pre"], net["post"]

    start = time.perf_counter()
    a = Assembly(name="coba")
    cell = {"tau_m": f"{m.tau_m} ms", "R_m": f"{m.R_m} MOhm", "v_rest": f"{m.E_l} mV", "v_reset": f"{m.V_r} mV",
            "v_th": f"{m.V_t} mV", "t_ref": f"{m.t_ref} ms"}
    ranges = {"exc": (0, n_exc), "inh": (n_exc, n)}
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
            a.add_projection(source, target, connector, weight, synapse, sign=sign)
    for name in ranges:
        if drive_pA:
            a.add_input(f"{name}_drive", "constant_current", name, amplitude=f"{drive_pA / 1000.0} nA")
        a.add_monitor(f"{name}_spikes", "spikes", name)
    a.set_run(duration=duration, dt=m.dt, seed=seed, dtype="float64", backend=backend)
    sim = Simulator(a)
    for name, (lo, hi) in ranges.items():
        pop = sim.populations[name]
        v0 = torch.tensor(net["v0"][lo:hi], dtype=torch.float64)[None].contiguous()
        pop.state = pop.state._replace(v=v0)
    if backend == "native":
        sim.native_engine()  # loads the compiled kernel (cached) and lays out the static arrays
    build_s = time.perf_counter() - start

    start = time.perf_counter()
    sim.run()
    run_s = time.perf_counter() - start
    end_rss = _current_rss_mb()
    counts = np.concatenate([sim.monitor(f"{name}_spikes")["counts"][0] for name in ranges])
    compile_s = None
    if backend == "native":
        from braincore.native import compile_seconds

        compile_s = compile_seconds("float64")  # after the run: the compiler is a child, not in our RSS
    return Measurement(build_s, run_s, counts.tolist(), _peak_rss_mb(), import_rss, method, compile_s, end_rss)


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


def _rss_wrapper_command(rss_file: str) -> list[str]:
    """A command prefix that runs its arguments and writes the child's peak RSS (MiB) to ``rss_file``."""
    code = ("import os, subprocess, sys\n"
            "p = subprocess.Popen(sys.argv[2:])\n"
            "_, status, usage = os.wait4(p.pid, 0)\n"
            "peak = usage.ru_maxrss / (1048576.0 if sys.platform == 'darwin' else 1024.0)\n"
            "open(sys.argv[1], 'w').write(repr(peak))\n"
            "sys.exit(os.waitstatus_to_exitcode(status))\n")
    return [sys.executable, "-c", code, rss_file, "./main"]


def run_brian2(net: dict[str, np.ndarray], duration: float, mode: str, method: str, delay_steps: int,
               cache_dir: Optional[str], seed: int, drive_pA: float = 0.0, warmup: bool = False) -> Measurement:
    """Build and run the network with Brian2: ``mode`` ``"cython"`` (runtime) or ``"standalone"`` (C++), with a
    constant current of ``drive_pA`` into every neuron.

    ``warmup`` (Cython): only build and generate/compile the code (``run(0 ms)``), to fill the cache.
    """
    import brian2 as b2
    from brian2 import Network, NeuronGroup, SpikeMonitor, Synapses, mV, ms, nS, pA, pF
    from brian2.devices.device import get_device

    import_rss = _peak_rss_mb()
    b2.prefs.logging.console_log_level = "WARNING"
    m = MODEL
    equations = brian2_equations(drive_pA)
    method = brian2_method(method, equations)
    n = net["v0"].size
    n_exc = m.n_exc(n)
    pre, post = net["pre"], net["post"]
    project_dir = None
    if mode == "standalone":
        project_dir = tempfile.mkdtemp(prefix="sim_coba_brian2_")
        b2.set_device("cpp_standalone", directory=project_dir, build_on_run=False)
        b2.prefs.devices.cpp_standalone.openmp_threads = 0  # no OpenMP: one thread
        rss_file = os.path.join(project_dir, "peak_rss_mb.txt")
        b2.prefs.devices.cpp_standalone.run_cmd_unix = _rss_wrapper_command(rss_file)
    else:
        b2.prefs.codegen.target = "cython"
        if cache_dir:
            b2.prefs.codegen.runtime.cython.cache_dir = cache_dir
    b2.seed(seed)  # nothing random is drawn at run time; for completeness
    b2.defaultclock.dt = m.dt * ms
    namespace = {"gl": m.g_l * nS, "El": m.E_l * mV, "Ee": m.E_e * mV, "Ei": m.E_i * mV, "Cm": m.C_m * pF,
                 "taue": m.tau_e * ms, "taui": m.tau_i * ms, "Vt": m.V_t * mV, "Vr": m.V_r * mV,
                 "we": m.w_e * nS, "wi": m.w_i * nS, "Ib": drive_pA * pA}
    try:
        start = time.perf_counter()
        group = NeuronGroup(n, equations, threshold="v >= Vt", reset="v = Vr", refractory=m.t_ref * ms,
                            method=method, name="coba")
        group.v = net["v0"] * mV
        group.ge = 0 * nS
        group.gi = 0 * nS
        delay = {"delay": delay_steps * m.dt * ms} if delay_steps else {}
        from_exc = pre < n_exc
        exc = Synapses(group, group, on_pre="ge += we", name="exc_synapses", **delay)
        exc.connect(i=pre[from_exc].astype(np.int32), j=post[from_exc].astype(np.int32))
        inh = Synapses(group, group, on_pre="gi += wi", name="inh_synapses", **delay)
        inh.connect(i=pre[~from_exc].astype(np.int32), j=post[~from_exc].astype(np.int32))
        spikes = SpikeMonitor(group, name="spikes")
        network = Network(group, exc, inh, spikes)
        device = get_device()
        if mode == "standalone":
            network.run(duration * ms, namespace=namespace)  # recorded, not executed (build_on_run=False)
            device.build(directory=project_dir, compile=True, run=False, with_output=False)
            build_s = time.perf_counter() - start
            compile_s = sum(t for t in device.timers["compile"].values() if t is not None)
            device.run(directory=project_dir, with_output=False)
            run_s = float(device._last_run_time)  # the simulation loop, timed inside the binary
            binary_s = float(device.timers["run_binary"])
            counts = np.asarray(spikes.count[:], dtype=np.int64)
            with open(rss_file) as f:
                binary_rss = float(f.read())
            return Measurement(build_s, run_s, counts.tolist(), binary_rss, import_rss, method, compile_s,
                               driver_rss_mb=_peak_rss_mb(), binary_s=binary_s)
        network.run(0 * ms, namespace=namespace)  # code generation, compilation or loading from the cache
        build_s = time.perf_counter() - start
        if warmup:
            return Measurement(build_s, 0.0, [], _peak_rss_mb(), import_rss, method, compile_s=build_s)
        network.run(duration * ms, namespace=namespace)
        run_s = float(device._last_run_time)  # excludes the per-run code-object preparation (before_run)
        end_rss = _current_rss_mb()
        counts = np.asarray(spikes.count[:], dtype=np.int64)
        return Measurement(build_s, run_s, counts.tolist(), _peak_rss_mb(), import_rss, method, end_rss_mb=end_rss)
    finally:
        if project_dir is not None:
            shutil.rmtree(project_dir, ignore_errors=True)


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
    print(RESULT_MARK + json.dumps(asdict(result)), flush=True)


# ------------------------------------------------------------------------------------------ driver
def measure(spec: dict[str, Any], timeout: float) -> Measurement:
    """Run :func:`worker` in a fresh interpreter and return its measurement (raises on failure)."""
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            return Measurement(**json.loads(line[len(RESULT_MARK):]))
    raise RuntimeError(f"{spec['simulator']} (N={spec['N']}) failed with exit code {proc.returncode}:\n"
                       f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")


def _round(value: Optional[float], digits: int = 4) -> Optional[float]:
    return None if value is None else float(f"{value:.{digits}g}")


def summarize(sim: str, n: int, net: dict[str, np.ndarray], runs: Sequence[Measurement], duration: float,
              drive_pA: float, compile_s: Optional[float]) -> dict[str, Any]:
    """One output row: medians over the repeats ``runs`` of one simulator at one size."""
    first = runs[0]
    counts = np.asarray(first.counts, dtype=np.int64)

    def median(field: str) -> Optional[float]:
        values = [getattr(r, field) for r in runs if getattr(r, field) is not None]
        return _round(statistics.median(values)) if values else None

    n_exc = MODEL.n_exc(n)
    seconds = duration / 1000.0
    run_s = statistics.median(r.run_s for r in runs)
    events = synaptic_events(counts, net["pre"])
    row: dict[str, Any] = {
        "simulator": sim, "N": n, "synapses": int(net["pre"].size), "method": first.method,
        "duration_ms": duration, "dt_ms": MODEL.dt, "drive_pA": drive_pA, "repeats": len(runs),
        "build_s": median("build_s"),
        "compile_s": _round(compile_s) if compile_s is not None else median("compile_s"),
        "run_s": _round(run_s), "run_s_all": [_round(r.run_s) for r in runs],
        "events": events, "events_per_s": _round(events / run_s),
        "spikes": int(counts.sum()), "mean_rate_hz": _round(counts.sum() / (n * seconds)),
        "rate_exc_hz": _round(counts[:n_exc].sum() / (n_exc * seconds)),
        "rate_inh_hz": _round(counts[n_exc:].sum() / ((n - n_exc) * seconds)),
        "peak_rss_mb": median("peak_rss_mb"), "import_rss_mb": median("import_rss_mb"),
        "end_rss_mb": median("end_rss_mb"),
        "deterministic": len({tuple(r.counts) for r in runs}) == 1,
    }
    for field in ("driver_rss_mb", "binary_s"):
        if getattr(first, field) is not None:
            row[field] = median(field)
    return row


def _fmt(value: Any, spec: str = ".3g") -> str:
    if value is None:
        return "-"
    return format(value, spec) if isinstance(value, (int, float)) else str(value)


def table(rows: Sequence[dict[str, Any]], skipped: Sequence[tuple[str, int]], title: str = "") -> str:
    """The summary table (medians) and the run-time ratios per size."""
    mw = max([6] + [len(r["method"]) for r in rows])
    head = (f"{'simulator':<18} {'N':>6} {'synapses':>9} {'method':>{mw}} {'build_s':>8} {'compile_s':>9} "
            f"{'run_s':>8} {'spikes':>9} {'rate_Hz':>7} {'exc_Hz':>7} {'inh_Hz':>7} {'events/s':>9} "
            f"{'peak_MB':>8} {'end_MB':>7} {'base_MB':>8}")
    lines = ([title] if title else []) + [head, "-" * len(head)]
    for r in sorted(rows, key=lambda r: (r["N"], SIMULATORS.index(r["simulator"]))):
        lines.append(f"{r['simulator']:<18} {r['N']:>6} {r['synapses']:>9} {r['method']:>{mw}} "
                     f"{_fmt(r['build_s']):>8} {_fmt(r['compile_s']):>9} {_fmt(r['run_s'], '.4g'):>8} "
                     f"{r['spikes']:>9} {_fmt(r['mean_rate_hz'], '.2f'):>7} {_fmt(r['rate_exc_hz'], '.2f'):>7} "
                     f"{_fmt(r['rate_inh_hz'], '.2f'):>7} {_fmt(r['events_per_s'], '.3g'):>9} "
                     f"{_fmt(r['peak_rss_mb'], '.0f'):>8} {_fmt(r['end_rss_mb'], '.0f'):>7} "
                     f"{_fmt(r['import_rss_mb'], '.0f'):>8}")
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


def environment() -> dict[str, Any]:
    """Versions and machine, for the JSON file."""
    info: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform(),
                            "cpu": platform.processor() or platform.machine(), "logical_cpus": os.cpu_count(),
                            "numpy": np.__version__, "threads": 1}
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    for module in ("torch", "brian2", "Cython", "braincore"):
        try:
            info[module] = __import__(module).__version__
        except Exception:  # noqa: BLE001 - absent or without a version
            info[module] = None
    try:
        from braincore.native.build import SOURCE

        info["braincore_kernel_sha256"] = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:16]
    except Exception:  # noqa: BLE001
        pass
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                                text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "braincore"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        info["braincore_git"] = commit + ("+dirty" if dirty else "") if commit else None
    except (OSError, subprocess.SubprocessError):
        pass
    return info


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
    for name in THREAD_VARIABLES:  # inherited by every subprocess, and by Brian2's compiled binary
        os.environ[name] = "1"
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
             f"median of {args.repeat} run(s), one thread; times in s, memory in MiB")
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
