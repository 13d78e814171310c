"""Two-alternative forced choice by attractor competition (``kind: two_afc`` configs; Wang 2002).

The random-dot-motion task (Shadlen & Newsome 2001; Roitman & Shadlen 2002): a monkey reports the direction of a
noisy motion stimulus whose coherence c (the fraction of dots moving together) sets the difficulty. Wang (2002)
showed that a local cortical circuit with two selective excitatory pools, non-selective cells and shared
inhibition (the ``prefrontal`` region with ``pools: 2``, here standing for area LIP) decides by winner-take-all
competition between two attractors, and reproduces the psychometric (accuracy) and chronometric (reaction time)
curves.

Protocol of one trial: ``stimulus.onset`` of spontaneous activity, then the two pools receive Poisson inputs of
``mu0 (1 + c)`` (the correct pool, chosen at random: half the trials each side) and ``mu0 (1 - c)`` per source
(``stimulus.sources`` trains per cell, voltage jumps of ``stimulus.weight``) for ``stimulus.duration``. The pool
rates (bins of ``bin``, averaged over the last ``smoothing`` ms, causal) are compared with ``threshold``: the first
pool to cross it is the choice and the crossing time after stimulus onset the reaction time (the decision time of
Wang 2002; no non-decision time is added). A trial with no crossing counts the pool with the higher rate over the
last 100 ms as the choice and has no reaction time (``decided`` reports the fraction decided).

Trials are simulated ``batch`` at a time (independent trials of one condition in parallel on the simulator's batch
dimension). The run prints one line per coherence, writes ``<out>/<name>.png`` (psychometric curve with a Weibull
fit ``1 - 0.5 exp(-(c/alpha)^beta)``, and chronometric curve) and ends with a JSON line: coherences, accuracy,
mean and SD of the reaction time, fraction decided, the Weibull threshold alpha and slope beta, and whether the
curves are monotone.

References: Shadlen & Newsome (2001) J. Neurophysiol. 86:1916; Roitman & Shadlen (2002) J. Neurosci. 22:9475;
Wang (2002) Neuron 36:955; Wong & Wang (2006) J. Neurosci. 26:1314.
"""
from __future__ import annotations

import difflib
import inspect
import json
import time
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from braincore.config import (AnyMapping, Document, Flag, Integer, Kind, ListOf, Quantity, Record, Text,
                              register_kind)
from braincore.graph import Assembly
from braincore.errors import ConfigError
from regions.prefrontal import build as build_prefrontal
from tasks.common import OutputName, assembly_memory_problems, device_problem, run_setup, seed_problem, lazy_attributes

#: the decision circuit's defaults (Wang 2002's proportions: each pool 15 % of the excitatory cells)
NETWORK_DEFAULTS = {"pools": 2, "pool_size": 80, "nonselective_size": 400, "inhibitory_size": 100}


def region_params_field(builder: Callable[..., Any], defaults: dict, fixed: tuple = (), doc: str = "") -> AnyMapping:
    """A config field of a region builder's keyword parameters (over ``defaults``), checked by building it: each
    problem names its parameter (``network.w_plus``) and line. ``fixed`` parameters may not be given."""

    def check(value, doc_: Document, path, problems) -> dict:
        value = dict(value)
        for key in fixed:
            if key in value:
                problems.append(doc_.problem(path + (key,), f"set by the task ({defaults.get(key)!r}); leave it out"))
        known = inspect.signature(builder).parameters
        for key in value:
            if key not in known:
                near = difflib.get_close_matches(str(key), known, n=1)
                hint = f"; did you mean {near[0]!r}?" if near else ""
                problems.append(doc_.problem(path + (key,), f"unknown parameter{hint} (expected one of: "
                                                            f"{', '.join(known)})"))
        good = {k: v for k, v in value.items() if k in known and k not in fixed}
        try:
            builder(**{**defaults, **good})
        except ConfigError as err:
            for key, message in err.items or [(None, str(err))]:
                problems.append(doc_.problem(path + ((key,) if key else ()), message))
        return good

    return AnyMapping(check, default={}, doc=doc)


SCHEMA = Record({
    "kind": Text(required=True),
    "name": OutputName("two_afc", doc="names the plot <out>/<name>.png"),
    "seed": Integer(0, minimum=0),
    "network": region_params_field(build_prefrontal, NETWORK_DEFAULTS, ("pools",),
                                   doc="parameters of the prefrontal region (pools is 2)"),
    "coherences": ListOf(Quantity("dimensionless", minimum=0.0), min_items=2,
                         default=[0.0, 0.032, 0.064, 0.128, 0.256, 0.512], doc="fractions in [0, 1]"),
    "trials": Integer(100, minimum=2, doc="per coherence, half with each pool correct"),
    "batch": Integer(50, minimum=1, doc="trials simulated in parallel"),
    "stimulus": Record({"mu0": Quantity("frequency", 40.0, minimum=0.0, doc="rate per source at c = 0"),
                        "sources": Integer(4, minimum=1, doc="Poisson trains per cell"),
                        "weight": Quantity("voltage", 0.5, minimum=0.0, doc="voltage jump per input spike"),
                        "onset": Quantity("time", 300.0, minimum=0.0, doc="spontaneous activity before"),
                        "duration": Quantity("time", 1500.0, exclusive_minimum=0.0)},
                       default={"mu0": 40.0, "sources": 4, "weight": 0.5, "onset": 300.0, "duration": 1500.0}),
    "threshold": Quantity("frequency", 20.0, exclusive_minimum=0.0, doc="decision threshold on a pool's rate"),
    "smoothing": Quantity("time", 50.0, exclusive_minimum=0.0, doc="causal rate window"),
    "bin": Quantity("time", 5.0, exclusive_minimum=0.0),
    "dt": Quantity("time", 0.1, exclusive_minimum=0.0),
    "backend": Text("auto", choices=("auto", "native", "torch")),
    "device": Text("cpu"),
    "progress": Flag(True),
})


def _semantic_check(config: dict, doc: Document, problems: list) -> None:
    for i, c in enumerate(config.get("coherences") or []):
        if c is not None and c > 1:
            problems.append(doc.problem(("coherences", i), f"a coherence is a fraction in [0, 1], got {c:g}"))
    device_problem(config, doc, problems)
    seed_problem(config, doc, problems)
    stimulus, dt = config.get("stimulus") or {}, config.get("dt")
    if dt is not None and stimulus.get("duration") is not None and dt > stimulus["duration"]:
        problems.append(doc.problem(("dt",), f"the time step ({dt:g} ms) is longer than the stimulus "
                                             f"({stimulus['duration']:g} ms)"))
    needed = (config.get("network"), config.get("bin"), config.get("backend"), config.get("device"), dt,
              config.get("batch"), stimulus.get("onset"), stimulus.get("duration"), stimulus.get("weight"),
              stimulus.get("sources"))
    if all(v is not None for v in needed) and not problems:
        try:
            assembly = decision_assembly(config["network"], stimulus, dt=dt, bin_ms=config["bin"],
                                         backend=config["backend"], device=config["device"])
        except ConfigError:
            return  # reported at the keys of network by its field
        assembly_memory_problems(assembly, doc, problems, ("batch",), batch=config["batch"],
                                 duration=stimulus["onset"] + stimulus["duration"])


# ------------------------------------------------------------------------------------------ the circuit
def decision_assembly(network: dict, stimulus: dict, *, dt: float = 0.1, bin_ms: float = 5.0,
                      backend: str = "auto", device: str = "cpu") -> Assembly:
    """The decision circuit (``prefrontal`` with two pools under the prefix ``lip``), a silent stimulus input
    ``stim0``/``stim1`` and a rate monitor ``rate0``/``rate1`` per pool."""
    a = Assembly(name="two_afc")
    a.include(build_prefrontal(**{**NETWORK_DEFAULTS, **network}), "lip")
    for k in range(2):
        a.add_input(f"stim{k}", "poisson", f"lip.pool{k}", rate="0 Hz", weight=f"{stimulus['weight']!r} mV",
                    sources=int(stimulus["sources"]))
        a.add_monitor(f"rate{k}", "rate", f"lip.pool{k}", bin=f"{bin_ms!r} ms")
    a.set_run(dt=f"{dt!r} ms", backend=backend, device=device)
    return a


def smoothed(rates: np.ndarray, bins: int) -> np.ndarray:
    """Causal moving average over ``bins`` along axis 1 of ``[pools, T, B]`` (the first bins average fewer)."""
    c = np.cumsum(rates, axis=1)
    out = c.copy()
    out[:, bins:] = c[:, bins:] - c[:, :-bins]
    counts = np.minimum(np.arange(1, rates.shape[1] + 1), bins)[None, :, None]
    return out / counts


def decide(rates: np.ndarray, threshold: float, bin_ms: float, smoothing_ms: float) -> tuple:
    """Choices, reaction times (ms, NaN when undecided) and decided flags of ``[2, T, B]`` pool rates from
    stimulus onset: the first pool whose smoothed rate reaches ``threshold`` (ties: the higher rate then)."""
    sm = smoothed(rates, max(1, int(round(smoothing_ms / bin_ms))))
    above = sm >= threshold
    never = rates.shape[1]
    first = np.where(above.any(axis=1), above.argmax(axis=1), never)  # [2, B]
    t = first.min(axis=0)
    decided = t < never
    B = rates.shape[2]
    late = rates[:, -max(1, int(round(100.0 / bin_ms))):].mean(axis=1)  # [2, B]
    at = np.minimum(t, never - 1)
    tie_break = sm[1, at, np.arange(B)] > sm[0, at, np.arange(B)]
    choice = np.where(decided, np.where(first[0] == first[1], tie_break, first[1] < first[0]),
                      late[1] > late[0]).astype(int)
    rt = np.where(decided, (t + 1) * bin_ms, np.nan)
    return choice, rt, decided


def run_trials(assembly: Assembly, coherence: float, correct: int, n: int, seed: int, config: dict) -> dict:
    """``n`` trials of one coherence with pool ``correct`` favoured, ``config['batch']`` at a time."""
    from braincore.simulator import Simulator  # PyTorch: imported where trials run, not to validate

    st = config["stimulus"]
    hits, rts, decided = [], [], []
    done, engine = 0, None
    while done < n:
        b = min(config["batch"], n - done)
        sim = Simulator(assembly, batch=b, seed=seed * 100_003 + done)
        sim.run(st["onset"])
        engine = sim.engine
        start_bin = len(sim.monitor("rate0")["rate_hz"])
        sim.set_poisson_rate(f"stim{correct}", st["mu0"] * (1.0 + coherence))
        sim.set_poisson_rate(f"stim{1 - correct}", st["mu0"] * (1.0 - coherence))
        sim.run(st["duration"])
        rates = np.stack([sim.monitor(f"rate{k}")["rate_hz"][start_bin:] for k in range(2)])
        choice, rt, dec = decide(rates, config["threshold"], config["bin"], config["smoothing"])
        hits.append(choice == correct)
        rts.append(rt)
        decided.append(dec)
        done += b
    return {"hits": np.concatenate(hits), "rt": np.concatenate(rts), "decided": np.concatenate(decided),
            "engine": engine}


def weibull_fit(c: np.ndarray, acc: np.ndarray, n: np.ndarray) -> tuple[float, float]:
    """Maximum-likelihood ``alpha, beta`` of ``p(c) = 1 - 0.5 exp(-(c/alpha)^beta)`` on a grid (Wang 2002)."""
    best = (-np.inf, float("nan"), float("nan"))
    k = np.round(acc * n)
    for alpha in np.geomspace(0.005, 1.0, 120):
        for beta in np.linspace(0.5, 4.0, 36):
            p = np.clip(1 - 0.5 * np.exp(-(c / alpha) ** beta), 1e-6, 1 - 1e-6)
            ll = float(np.sum(k * np.log(p) + (n - k) * np.log(1 - p)))
            if ll > best[0]:
                best = (ll, float(alpha), float(beta))
    return best[1], best[2]


# ------------------------------------------------------------------------------------------ the runner
def run(config: dict, options: dict) -> dict:
    start = time.perf_counter()
    out_dir, progress = run_setup(config, options)
    assembly = decision_assembly(config["network"], config["stimulus"], dt=config["dt"], bin_ms=config["bin"],
                                 backend=config["backend"], device=config["device"])
    coherences = [float(c) for c in config["coherences"]]
    n = config["trials"]
    sizes = {p.name: p.size for p in assembly.populations()}
    print(f"two_afc: decision circuit of {sum(sizes.values())} LIF ({sizes}), {len(coherences)} coherences x {n} "
          f"trials, threshold {config['threshold']:g} Hz")
    from tasks.common import progress_bar

    rows, engine = [], None
    with progress_bar(len(coherences) * n, "trials", progress, unit="trial") as bar:
        for i, c in enumerate(coherences):
            parts = [run_trials(assembly, c, side, n // 2 + (n % 2 if side == 0 else 0),
                                config["seed"] * 1000 + 2 * i + side, config) for side in (0, 1)]
            engine = parts[0]["engine"]
            hits = np.concatenate([p["hits"] for p in parts])
            rt = np.concatenate([p["rt"] for p in parts])
            dec = np.concatenate([p["decided"] for p in parts])
            correct_rt = rt[hits & dec]
            rows.append({"coherence": c, "accuracy": float(hits.mean()), "rt_ms": float(np.nanmean(rt)) if dec.any()
                         else None, "rt_sd_ms": float(np.nanstd(rt)) if dec.any() else None,
                         "rt_correct_ms": float(correct_rt.mean()) if correct_rt.size else None,
                         "decided": float(dec.mean()), "trials": int(hits.size)})
            bar.update(n)
            r = rows[-1]
            rt_text = f"{r['rt_ms']:.0f} +- {r['rt_sd_ms']:.0f} ms" if r["rt_ms"] is not None else "-"
            bar.write(f"  c = {100 * c:5.1f} %: accuracy {100 * r['accuracy']:5.1f} %, reaction time {rt_text}, "
                      f"decided {100 * r['decided']:.0f} %")
    acc = np.array([r["accuracy"] for r in rows])
    rts = np.array([np.nan if r["rt_ms"] is None else r["rt_ms"] for r in rows])
    alpha, beta = weibull_fit(np.array(coherences), acc, np.array([r["trials"] for r in rows], dtype=float))
    order = np.argsort(coherences)
    summary = {"task": "two_afc", "name": config["name"], "coherences": coherences,
               "accuracy": [round(float(x), 4) for x in acc],
               "rt_ms": [None if np.isnan(x) else round(float(x), 1) for x in rts],
               "rt_sd_ms": [None if r["rt_sd_ms"] is None else round(r["rt_sd_ms"], 1) for r in rows],
               "decided": [r["decided"] for r in rows], "trials_per_coherence": n,
               "weibull_alpha": round(alpha, 4), "weibull_beta": round(beta, 3),
               "accuracy_monotone": bool(np.all(np.diff(acc[order]) >= -1e-9)),
               "rt_monotone": bool(np.all(np.diff(rts[order]) <= 1e-9)),
               "engine": engine, "wall_s": None, "png": None}
    if not options.get("no_plot"):
        summary["png"] = plot_curves(coherences, acc, rts, [r["rt_sd_ms"] for r in rows], alpha, beta,
                                     out_dir / f"{config['name']}.png", n)
    summary["wall_s"] = round(time.perf_counter() - start, 2)
    print(json.dumps(summary))
    return summary


def plot_curves(coherences, acc, rts, sds, alpha: float, beta: float, path: Path, n: int,
                title: Optional[str] = None) -> Optional[str]:
    """Psychometric (accuracy, Weibull fit) and chronometric (reaction time) curves, coherence (a fraction) on a
    log axis; ``title`` (default: the attractor's, with ``n`` trials per coherence) above both."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    c = np.asarray(coherences) * 100
    x = np.where(c > 0, c, min(c[c > 0].min() / 2, 1.0) if (c > 0).any() else 1.0)  # c = 0 drawn at the left
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.6))
    ax1.semilogx(x, 100 * np.asarray(acc), "o", color="k")
    positive = x[c > 0] if (c > 0).any() else x
    grid = np.geomspace(positive.min(), max(x.max(), 100), 200)
    ax1.semilogx(grid, 100 * (1 - 0.5 * np.exp(-(grid / 100 / alpha) ** beta)), "-", color="tab:blue",
                 label=f"Weibull: alpha {100 * alpha:.1f} %, beta {beta:.2f}")
    if (c == 0).any():  # c = 0 has no place on a log axis: drawn at the left, labelled 0
        for ax in (ax1, ax2):
            ax.annotate("c = 0", (x[c == 0][0], 0), xycoords=("data", "axes fraction"), xytext=(0, 3),
                        textcoords="offset points", ha="center", fontsize=7)
    ax1.set_xlabel("coherence (%)")
    ax1.set_ylabel("accuracy (%)")
    ax1.set_ylim(40, 102)
    ax1.set_title("psychometric")
    ax1.legend(fontsize=8, loc="lower right")
    sd = np.array([np.nan if s is None else s for s in sds])
    ax2.errorbar(x, rts, yerr=sd, fmt="o-", color="k", capsize=3)
    ax2.set_xscale("log")
    ax2.set_xlabel("coherence (%)")
    ax2.set_ylabel("reaction time (ms)")
    ax2.set_title("chronometric (mean +- SD)")
    fig.suptitle(title or f"2AFC by attractor competition (Wang 2002), {n} trials per coherence", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


KIND = register_kind(Kind("two_afc", SCHEMA, run, _semantic_check,
                          "two-alternative forced choice by attractor competition (Wang 2002): psychometric and "
                          "chronometric curves"))

# the names this module imported at its top before it left PyTorch to the runner (issue 16)
__getattr__ = lazy_attributes(__name__, {
    "Simulator": "braincore.simulator:Simulator",
})
