"""The Potjans & Diesmann (2014) cortical microcircuit as a run with statistics (``kind: microcircuit`` configs).

The network is the ``microcircuit`` region type (:mod:`regions.microcircuit`: every number from the paper and
NEST's PyNEST example). A run builds it, simulates ``presim`` (500 ms, discarded: the start-up transient), then
``duration`` (1 s) recorded, and reports per population, over the recorded window:

- the mean rate over all neurons (silent ones included, as NEST's ``helpers.firing_rates``) and its SD;
- the irregularity: the coefficient of variation of the inter-spike intervals, ``CV = SD(ISI) / mean(ISI)`` of
  each neuron with at least ``cv_min_spikes`` spikes (default 3: two intervals, the fewest that have a spread),
  averaged over those neurons;
- the synchrony: the mean pairwise Pearson correlation of spike counts in ``corr_bin`` bins (5 ms) over the first
  ``corr_neurons`` (200) neurons of the population that spiked at least once (the benchmarking protocol's subset of
  200 neurons per population; van Albada et al. 2018, Front Neurosci 12:291).

It prints one line per population (with the full-scale NEST rates of issue 17 beside), writes a raster of all
layers (``<out>/<name>_raster.png``: the last ``raster_window`` of the run, every ``1/raster_fraction``-th neuron;
by default every neuron up to N_scaling 0.1 and every ``int(10 N_scaling)``-th above, as NEST's ``plot_raster``),
box plots of the per-neuron rates per population (``<out>/<name>_rates.png``), the spikes (``<out>/<name>.npz``:
``times_<pop>``, ``senders_<pop>`` in ms and population indices, and the window), and a final JSON line with the
statistics, the wall times of building and simulating (and the real-time factor, simulated wall / biological time
of the recorded window) and the peak memory (``ru_maxrss``). With ``progress``, building says every 20 s how long it
has run and the resident memory (minutes at full scale), and the simulation shows progress bars.

Config keys (besides ``kind``, ``name``): ``seed``, ``dt``, ``dtype`` (float64), ``backend`` (auto), ``threads``
(the native engine's: N or auto; default ``$BRAINCORE_THREADS``, else 1), the region's parameters ``scale``,
``N_scaling``, ``K_scaling``, ``background``, ``V0_type``, ``thalamic_input``, ``th_start``, ``th_duration``,
``th_rate``, ``match_nest``; ``presim``, ``duration``; ``analysis: {cv_min_spikes, corr_neurons,
corr_bin, raster_window, raster_fraction}``; ``progress``.
"""
from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Optional

import numpy as np

from braincore.config import Document, Flag, Integer, Kind, Quantity, Record, Text, Threads, register_kind
from tasks.common import output_dir, show_progress
from regions.microcircuit import POPULATIONS, PUBLISHED_RATES, microcircuit

ANALYSIS_DEFAULT = {"cv_min_spikes": 3, "corr_neurons": 200, "corr_bin": 5.0, "raster_window": 200.0,
                    "raster_fraction": None}

SCHEMA = Record({
    "kind": Text(required=True),
    "name": Text("microcircuit"),
    "seed": Integer(55, minimum=0, doc="network and noise seed (NEST's example uses 55)"),
    "dt": Quantity("time", 0.1, exclusive_minimum=0.0),
    "dtype": Text("float64", choices=("float32", "float64")),
    "backend": Text("auto", choices=("auto", "native", "torch")),
    "threads": Threads(),
    "scale": Quantity("dimensionless", 1.0, exclusive_minimum=0.0, doc="N_scaling and K_scaling together"),
    "N_scaling": Quantity("dimensionless", None, exclusive_minimum=0.0),
    "K_scaling": Quantity("dimensionless", None, exclusive_minimum=0.0),
    "background": Text("poisson", choices=("poisson", "dc")),
    "V0_type": Text("optimized", choices=("optimized", "original")),
    "thalamic_input": Flag(False),
    "th_start": Quantity("time", 700.0, minimum=0.0),
    "th_duration": Quantity("time", 10.0, minimum=0.0),
    "th_rate": Quantity("frequency", 120.0, minimum=0.0),
    "match_nest": Flag(True, doc="convert to NEST's iaf_psc_exp discretisation (regions.microcircuit)"),
    "presim": Quantity("time", 500.0, minimum=0.0, doc="simulated first and discarded"),
    "duration": Quantity("time", 1000.0, exclusive_minimum=0.0, doc="recorded after the pre-simulation"),
    "analysis": Record({"cv_min_spikes": Integer(3, minimum=2),
                        "corr_neurons": Integer(200, minimum=2),
                        "corr_bin": Quantity("time", 5.0, exclusive_minimum=0.0),
                        "raster_window": Quantity("time", 200.0, exclusive_minimum=0.0),
                        "raster_fraction": Quantity("dimensionless", None, exclusive_minimum=0.0,
                                                    doc="default: every neuron up to scale 0.1, then every "
                                                        "int(10 N_scaling)-th (NEST's plot_raster)")},
                       default=dict(ANALYSIS_DEFAULT)),
    "progress": Flag(True),
})


def _check(config: dict, doc: Document, problems: list) -> None:
    for key in ("scale", "N_scaling", "K_scaling"):
        if config.get(key) is not None and config[key] > 1.0:
            problems.append(doc.problem((key,), f"must be <= 1 (a fraction of the full network), got {config[key]:g}"))
    fraction = (config.get("analysis") or {}).get("raster_fraction")
    if fraction is not None and fraction > 1.0:
        problems.append(doc.problem(("analysis", "raster_fraction"), f"must be <= 1, got {fraction:g}"))


def region_params(config: dict) -> dict:
    """The ``microcircuit`` builder's parameters from a config."""
    keys = ("scale", "N_scaling", "K_scaling", "background", "V0_type", "thalamic_input", "th_start", "th_duration",
            "th_rate", "match_nest", "dt")
    return {k: config[k] for k in keys if config.get(k) is not None}


# ------------------------------------------------------------------------------------------ statistics
def per_neuron_rates(senders: np.ndarray, n: int, t0: float, t1: float) -> np.ndarray:
    """Spikes per second of each of ``n`` neurons in ``[t0, t1)`` (``senders``: the population indices of the
    spikes in that window)."""
    return np.bincount(np.asarray(senders, dtype=np.int64), minlength=n)[:n] * 1000.0 / (t1 - t0)


def cv_isi(times: np.ndarray, senders: np.ndarray, min_spikes: int = 3) -> np.ndarray:
    """``SD(ISI) / mean(ISI)`` of every neuron with at least ``min_spikes`` spikes (one value per such neuron)."""
    times, senders = np.asarray(times, dtype=float), np.asarray(senders, dtype=np.int64)
    order = np.lexsort((times, senders))
    t, s = times[order], senders[order]
    if t.size < 2:
        return np.zeros(0)
    same = s[1:] == s[:-1]
    isi, owner = np.diff(t)[same], s[1:][same]
    counts = np.bincount(s)
    keep = np.flatnonzero(counts >= min_spikes)
    if keep.size == 0:
        return np.zeros(0)
    n_isi = np.bincount(owner, minlength=counts.size).astype(float)
    total = np.bincount(owner, weights=isi, minlength=counts.size)
    squares = np.bincount(owner, weights=isi * isi, minlength=counts.size)
    mean = total[keep] / n_isi[keep]
    var = np.maximum(squares[keep] / n_isi[keep] - mean * mean, 0.0)
    return np.sqrt(var) / mean


def spike_count_correlation(times: np.ndarray, senders: np.ndarray, neurons: int, t0: float, t1: float,
                            bin_ms: float = 5.0) -> tuple[float, int]:
    """Mean Pearson correlation over pairs of the binned spike counts of neurons ``0 .. neurons-1`` that spiked in
    ``[t0, t1)``; returns ``(mean, number of neurons used)`` (``nan`` with fewer than two)."""
    times, senders = np.asarray(times, dtype=float), np.asarray(senders, dtype=np.int64)
    keep = senders < neurons
    n_bins = int(np.floor((t1 - t0) / bin_ms + 1e-9))
    if n_bins < 2:
        return float("nan"), 0
    b = np.floor((times[keep] - t0) / bin_ms).astype(np.int64)
    inside = (b >= 0) & (b < n_bins)
    counts = np.zeros((neurons, n_bins))
    np.add.at(counts, (senders[keep][inside], b[inside]), 1.0)
    active = counts[counts.std(axis=1) > 0]
    if active.shape[0] < 2:
        return float("nan"), int(active.shape[0])
    c = np.corrcoef(active)
    off = ~np.eye(c.shape[0], dtype=bool)
    return float(c[off].mean()), int(active.shape[0])


def population_statistics(spikes: dict, sizes: dict, t0: float, t1: float, *, cv_min_spikes: int = 3,
                          corr_neurons: int = 200, corr_bin: float = 5.0) -> dict:
    """Per population (``spikes[pop] = (times, senders)``, all spikes; ``sizes[pop]`` neurons): over ``[t0, t1)``
    the mean and SD of the per-neuron rates (``rates``: the array), the mean CV of ISIs (``cvs``) and the mean
    pairwise count correlation (see the module docstring)."""
    out = {}
    for pop, (times, senders) in spikes.items():
        times, senders = np.asarray(times, dtype=float), np.asarray(senders, dtype=np.int64)
        w = (times >= t0) & (times < t1)
        t, s = times[w], senders[w]
        rates = per_neuron_rates(s, sizes[pop], t0, t1)
        cvs = cv_isi(t, s, cv_min_spikes)
        corr, n_corr = spike_count_correlation(t, s, min(corr_neurons, sizes[pop]), t0, t1, corr_bin)
        out[pop] = {"rate_mean": float(rates.mean()), "rate_std": float(rates.std()),
                    "cv_mean": float(cvs.mean()) if cvs.size else float("nan"), "cv_neurons": int(cvs.size),
                    "corr_mean": corr, "corr_neurons": n_corr, "rates": rates, "cvs": cvs}
    return out


def peak_memory_mb() -> float:
    """Peak resident memory of this process (MiB; ``ru_maxrss`` is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2.0 ** 20 if sys.platform == "darwin" else peak / 1024.0


# ------------------------------------------------------------------------------------------ plots
def plot_raster(spikes: dict, sizes: dict, t0: float, t1: float, path: Path, fraction: float = 0.1,
                title: str = "") -> Optional[str]:
    """Raster of all layers in ``[t0, t1)``: every ``round(1/fraction)``-th neuron, L2/3 on top, E red, I blue."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    step = max(1, int(round(1.0 / fraction)))
    fig, ax = plt.subplots(figsize=(8, 7))
    offset, ticks = 0, []
    for pop in reversed(POPULATIONS):
        times, senders = (np.asarray(x) for x in spikes[pop])
        keep = (times >= t0) & (times < t1) & (senders % step == 0)
        shown = (sizes[pop] + step - 1) // step
        ax.plot(times[keep], senders[keep] // step + offset, ".", ms=1.5, mew=0,
                color="#b2182b" if pop.endswith("E") else "#2166ac")
        ticks.append((offset + shown / 2, pop.replace("L23", "L2/3")))
        offset += shown
        if pop.endswith("E"):
            ax.axhline(offset, color="0.6", lw=0.5)
    ax.set_yticks([t for t, _ in ticks])
    ax.set_yticklabels([label for _, label in ticks])
    ax.set_ylim(0, offset)
    ax.set_xlim(t0, t1)
    ax.set_xlabel("time (ms)")
    ax.set_title(title or "cortical microcircuit")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return str(path)


def plot_rates(stats: dict, path: Path, title: str = "", reference: Optional[dict] = None) -> Optional[str]:
    """Box plots of the per-neuron rates of each population (means as triangles, ``reference`` rates as crosses)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    pops = list(POPULATIONS)
    data = [stats[p]["rates"] for p in reversed(pops)]
    style = {"showmeans": True, "showfliers": False, "patch_artist": True,
             "meanprops": {"marker": "^", "markerfacecolor": "k", "markeredgecolor": "k"}}
    try:
        box = ax.boxplot(data, orientation="horizontal", **style)
    except TypeError:  # Matplotlib < 3.10
        box = ax.boxplot(data, vert=False, **style)
    for patch, pop in zip(box["boxes"], reversed(pops)):
        patch.set_facecolor("#f4a582" if pop.endswith("E") else "#92c5de")
    if reference:
        ax.plot([reference[p] for p in reversed(pops)], range(1, len(pops) + 1), "x", color="k",
                label="full-scale NEST (issue 17)")
        ax.legend(loc="upper right", fontsize=8)
    ax.set_yticks(range(1, len(pops) + 1))
    ax.set_yticklabels([p.replace("L23", "L2/3") for p in reversed(pops)])
    ax.set_xlabel("firing rate (spikes/s)")
    ax.set_title(title or "per-neuron rates")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return str(path)


# ------------------------------------------------------------------------------------------ the run
class _heartbeat:
    """While a long phase without its own progress bar runs (building the network: minutes at full scale), say
    every ``every`` seconds how long it has run and the resident memory."""

    def __init__(self, say, what: str, start: float, every: float = 20.0):
        import threading

        self.say, self.what, self.start, self.every = say, what, start, every
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True) if say else None

    def _beat(self) -> None:
        while not self.stop.wait(self.every):
            rss = ""
            try:
                with open("/proc/self/statm") as f:
                    rss = f", {int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2 ** 30:.1f} GiB resident"
            except (OSError, ValueError, IndexError):
                pass
            self.say(f"  {self.what}: {time.perf_counter() - self.start:.0f} s{rss}")

    def __enter__(self):
        if self.thread is not None:
            self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join()


def simulate(config: dict, say=print, progress: bool = False):
    """Build and run the configured microcircuit; returns ``(sim, spikes, sizes, timings)`` with ``spikes[pop] =
    (times, senders)`` over the whole run and ``timings`` the wall times of building, pre-simulating and
    simulating (s)."""
    from braincore.simulator import Simulator

    t_start, cpu_start = time.perf_counter(), time.process_time()
    assembly = microcircuit(**region_params(config))
    assembly.set_run(duration=config["duration"], dt=config["dt"], seed=config["seed"], dtype=config["dtype"],
                     backend=config["backend"], threads=config.get("threads"))
    say(f"{assembly.name}: building {sum(p.size for p in assembly.populations())} neurons ...")
    with _heartbeat(say if progress else None, "building", t_start):
        sim = Simulator(assembly)
        engine = sim.engine  # compiles the native kernel (cached) now, not inside the timed simulation
    build_s, build_cpu_s = time.perf_counter() - t_start, time.process_time() - cpu_start
    n_syn = sum(int(p.post_idx.numel()) for p in sim.projections)
    say(f"built in {build_s:.1f} s: {n_syn:,} synapses, engine {engine}; pre-simulating {config['presim']:g} ms")
    t = time.perf_counter()
    if config["presim"] > 0:
        sim.run(config["presim"], progress=progress)
    presim_s = time.perf_counter() - t
    say(f"simulating {config['duration']:g} ms")
    t = time.perf_counter()
    sim.run(config["duration"], progress=progress)
    sim_s = time.perf_counter() - t
    spikes, sizes = {}, {}
    for pop in POPULATIONS:
        data = sim.monitor(f"spikes_{pop}")
        spikes[pop] = (np.asarray(data["t"], dtype=float), np.asarray(data["neuron"], dtype=np.int64))
        sizes[pop] = sim.populations[pop].model.size
    return sim, spikes, sizes, {"build_s": build_s, "build_cpu_s": build_cpu_s, "presim_s": presim_s,
                                "simulate_s": sim_s, "synapses": n_syn}


def run(config: dict, options: dict) -> dict:
    out = output_dir(options)
    say = options.get("print", print)
    progress = show_progress(config, options)
    analysis = config["analysis"]
    sim, spikes, sizes, timing = simulate(config, say, progress)
    t0, t1 = config["presim"], config["presim"] + config["duration"]
    stats = population_statistics(spikes, sizes, t0, t1, cv_min_spikes=analysis["cv_min_spikes"],
                                  corr_neurons=analysis["corr_neurons"], corr_bin=analysis["corr_bin"])
    say(f"{'population':<10}{'neurons':>8}{'rate (Hz)':>11}{'SD':>7}{'CV ISI':>8}{'corr':>8}"
        f"{'NEST full (Hz)':>16}")
    for pop in POPULATIONS:
        s = stats[pop]
        say(f"{pop:<10}{sizes[pop]:>8}{s['rate_mean']:>11.3f}{s['rate_std']:>7.2f}{s['cv_mean']:>8.3f}"
            f"{s['corr_mean']:>8.4f}{PUBLISHED_RATES[pop]:>16.2f}")
    name = config["name"]
    files = {}
    arrays = {"t_start": t0, "t_stop": t1}
    for pop in POPULATIONS:
        arrays[f"times_{pop}"], arrays[f"senders_{pop}"] = spikes[pop]
        arrays[f"size_{pop}"] = sizes[pop]
    np.savez_compressed(out / f"{name}.npz", **arrays)
    files["npz"] = str(out / f"{name}.npz")
    if not options.get("no_plot"):
        window = min(analysis["raster_window"], config["duration"])
        fraction = analysis["raster_fraction"]
        if fraction is None:
            n_scaling = config.get("N_scaling") or config["scale"]
            fraction = 1.0 if n_scaling <= 0.1 else 1.0 / int(10 * n_scaling)
        title = f"{sim.assembly.name}: {sum(sizes.values()):,} neurons, seed {config['seed']}"
        for key, made in (("raster", plot_raster(spikes, sizes, t1 - window, t1, out / f"{name}_raster.png",
                                                 fraction, title)),
                          ("rates", plot_rates(stats, out / f"{name}_rates.png", title, PUBLISHED_RATES))):
            if made:
                files[key] = made
                say(f"wrote {made}")
    rtf = timing["simulate_s"] / (config["duration"] / 1000.0)
    summary = {"kind": "microcircuit", "name": name, "neurons": int(sum(sizes.values())),
               "synapses": timing["synapses"], "engine": sim.engine, "seed": config["seed"],
               "simulated_ms": config["duration"], "presim_ms": config["presim"],
               "build_s": round(timing["build_s"], 3), "build_cpu_s": round(timing["build_cpu_s"], 3),
               "simulate_s": round(timing["simulate_s"], 3),
               "real_time_factor": round(rtf, 3), "peak_memory_mb": round(peak_memory_mb(), 1),
               "rates_hz": {p: round(stats[p]["rate_mean"], 4) for p in POPULATIONS},
               "cv_isi": {p: round(stats[p]["cv_mean"], 4) for p in POPULATIONS},
               "correlation": {p: round(stats[p]["corr_mean"], 5) for p in POPULATIONS}, "files": files}
    say(json.dumps(summary))
    return summary


KIND = register_kind(Kind("microcircuit", SCHEMA, run, _check,
                          "the Potjans & Diesmann (2014) cortical microcircuit: rates, CV ISI and correlations per "
                          "population, raster, rate box plots"))

__all__ = ["SCHEMA", "KIND", "run", "simulate", "population_statistics", "per_neuron_rates", "cv_isi",
           "spike_count_correlation", "plot_raster", "plot_rates", "region_params", "peak_memory_mb"]
