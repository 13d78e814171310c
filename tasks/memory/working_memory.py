"""Delayed match-to-sample with a distractor, held by prefrontal attractors (``kind: delayed_match`` configs).

The task (Fuster & Alexander 1971; Funahashi, Bruce & Goldman-Rakic 1989; Miller, Erickson & Desimone 1996): a
sample item is shown, then removed; after a delay, during which a distractor item is shown, a test item appears and
the subject reports whether it matches the sample. Prefrontal neurons selective for the sample fire persistently
through the delay and ignore intervening distractors (Miller et al. 1996); in the attractor model the cued pool
stays in its high-rate state while the shared inhibition it recruits keeps the distractor's pool from taking over
(Compte et al. 2000; Brunel & Wang 2001).

Protocol of one trial on the ``prefrontal`` region (``network``; K = ``network.pools`` items, one pool each):
``fixation`` of spontaneous activity; the **sample** (item s) as a Poisson input on pool s (``cue.rate`` per source,
``cue.sources`` trains per cell, jumps of ``cue.weight``) for ``cue.duration``; ``delay1``; the **distractor** (an
item d != s, chosen at random) on pool d with ``distractor`` settings (by default exactly as strong and as long as
the sample); ``delay2``; then the **test** (item t: the sample with probability 1/2, else another item). The
response compares the test with the item held in memory at test onset: the pool with the highest mean rate over
the last ``readout`` ms of the delay, provided it is at least ``memory_rate`` (else nothing is held and the
response is a coin flip): "match" when that item is t. Chance is 50 %.

Trials with the same sample and distractor run in parallel (the simulator's batch); test items are drawn per trial.
Every (sample, distractor) pair gets ``trials_per_pair`` trials. The run prints the accuracy, the fraction of trials
whose memory survived the distractor, the delay rates of the sample's pool and of the other pools, and a final JSON
line.

References: Fuster & Alexander (1971) Science 173:652; Funahashi, Bruce & Goldman-Rakic (1989) J. Neurophysiol.
61:331; Miller, Erickson & Desimone (1996) J. Neurosci. 16:5154; Compte et al. (2000) Cereb. Cortex 10:910;
Brunel & Wang (2001) J. Comput. Neurosci. 11:63.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from braincore.config import Integer, Kind, Quantity, Record, Text, register_kind
from braincore.errors import ConfigError
from braincore.graph import Assembly
from regions.prefrontal import build as build_prefrontal
from tasks.common import OutputName, assembly_memory_problems, seed_problem, lazy_attributes
from tasks.decision.two_afc import region_params_field

NETWORK_DEFAULTS = {"pools": 4}


def _stimulus(rate: float, sources: int, weight: float, duration: float) -> Record:
    return Record({"rate": Quantity("frequency", rate, minimum=0.0, doc="per source"),
                   "sources": Integer(sources, minimum=1), "weight": Quantity("voltage", weight, minimum=0.0),
                   "duration": Quantity("time", duration, minimum=0.0)},
                  default={"rate": rate, "sources": sources, "weight": weight, "duration": duration})


SCHEMA = Record({
    "kind": Text(required=True),
    "name": OutputName("delayed_match", doc="a label of the run (and its outputs)"),
    "seed": Integer(0, minimum=0),
    "network": region_params_field(build_prefrontal, NETWORK_DEFAULTS,
                                   doc="parameters of the prefrontal region (pools = number of items, >= 2)"),
    "trials_per_pair": Integer(8, minimum=1, doc="trials per (sample, distractor) pair, run in parallel"),
    "fixation": Quantity("time", 300.0, minimum=0.0),
    "cue": _stimulus(40.0, 10, 0.5, 300.0),
    "delay1": Quantity("time", 500.0, minimum=0.0, doc="from the sample's end to the distractor"),
    "distractor": _stimulus(40.0, 10, 0.5, 300.0),
    "delay2": Quantity("time", 700.0, exclusive_minimum=0.0, doc="from the distractor's end to the test"),
    "readout": Quantity("time", 200.0, exclusive_minimum=0.0, doc="end of the delay read by the test"),
    "memory_rate": Quantity("frequency", 15.0, exclusive_minimum=0.0, doc="a pool at this rate holds an item"),
    "dt": Quantity("time", 0.1, exclusive_minimum=0.0),
    "bin": Quantity("time", 10.0, exclusive_minimum=0.0),
    "backend": Text("auto", choices=("auto", "native", "torch")),
})


def _semantic_check(config: dict, doc, problems: list) -> None:
    seed_problem(config, doc, problems)
    net = config.get("network")
    if net is not None and net.get("pools", NETWORK_DEFAULTS["pools"]) is not None:
        pools = net.get("pools", NETWORK_DEFAULTS["pools"])
        if isinstance(pools, int) and pools < 2:
            problems.append(doc.problem(("network", "pools"), f"a match-to-sample task needs >= 2 items, got {pools}"))
    if None not in (config.get("readout"), config.get("delay2")) and config["readout"] > config["delay2"]:
        problems.append(doc.problem(("readout",), f"longer than delay2 ({config['delay2']:g} ms)"))
    keys = ("network", "cue", "distractor", "bin", "dt", "backend", "trials_per_pair", "fixation", "delay1", "delay2")
    if not problems and all(config.get(k) is not None for k in keys) and \
            all(config[k].get(f) is not None for k in ("cue", "distractor") for f in ("weight", "sources", "duration")):
        if config["dt"] > config["delay2"]:
            problems.append(doc.problem(("dt",), f"the time step ({config['dt']:g} ms) is longer than delay2 "
                                                 f"({config['delay2']:g} ms)"))
            return
        try:
            assembly = task_assembly(config["network"], config)
        except ConfigError:
            return  # reported at the keys of network by its field
        total = config["fixation"] + config["cue"]["duration"] + config["delay1"] + \
            config["distractor"]["duration"] + config["delay2"]
        assembly_memory_problems(assembly, doc, problems, ("trials_per_pair",), batch=config["trials_per_pair"],
                                 duration=total)


def task_assembly(network: dict, config: dict) -> Assembly:
    """The ``prefrontal`` region under ``pfc``, a silent sample and distractor input per pool (``sample{k}``,
    ``distractor{k}``) and a rate monitor per pool (``rate{k}``)."""
    a = Assembly(name="delayed_match")
    params = {**NETWORK_DEFAULTS, **network}
    a.include(build_prefrontal(**params), "pfc")
    for k in range(params["pools"]):
        for what in ("cue", "distractor"):
            st = config[what]
            a.add_input(f"{what}{k}", "poisson", f"pfc.pool{k}", rate="0 Hz", weight=f"{st['weight']!r} mV",
                        sources=int(st["sources"]))
        a.add_monitor(f"rate{k}", "rate", f"pfc.pool{k}", bin=f"{config['bin']!r} ms")
    a.set_run(dt=f"{config['dt']!r} ms", backend=config["backend"])
    return a


def run_pair(assembly: Assembly, pools: int, sample: int, distractor: int, trials: int, seed: int,
             config: dict) -> dict:
    """``trials`` parallel trials of one (sample, distractor) pair: the pool rates ``[K, bins, B]`` and the epochs'
    bin boundaries."""
    from braincore.simulator import Simulator  # PyTorch: imported where trials run, not to validate

    sim = Simulator(assembly, batch=trials, seed=seed)
    marks = {}

    def bins() -> int:
        return len(sim.monitor("rate0")["rate_hz"])

    def epoch(name: str, duration: float, item: int | None = None, what: str | None = None) -> None:
        marks[name] = bins()
        if item is not None:
            sim.set_poisson_rate(f"{what}{item}", config[what]["rate"])
        sim.run(duration)
        if item is not None:
            sim.set_poisson_rate(f"{what}{item}", 0.0)

    epoch("fixation", config["fixation"])
    epoch("sample", config["cue"]["duration"], sample, "cue")
    epoch("delay1", config["delay1"])
    epoch("distractor", config["distractor"]["duration"], distractor, "distractor")
    epoch("delay2", config["delay2"])
    marks["test"] = bins()
    rates = np.stack([sim.monitor(f"rate{k}")["rate_hz"] for k in range(pools)])
    return {"rates": rates, "marks": marks, "engine": sim.engine}


def run(config: dict, options: dict) -> dict:
    start = time.perf_counter()
    Path(options.get("out") or "braincore_out").mkdir(parents=True, exist_ok=True)
    network = config["network"]
    pools = {**NETWORK_DEFAULTS, **network}["pools"]
    assembly = task_assembly(network, config)
    rng = np.random.default_rng(config["seed"])
    n_read = max(1, int(round(config["readout"] / config["bin"])))
    print(f"delayed_match: {pools} items on the prefrontal region ({sum(p.size for p in assembly.populations())} LIF), "
          f"{pools * (pools - 1)} sample/distractor pairs x {config['trials_per_pair']} trials")
    correct, held, survived, delay_sample, delay_other, fix_rates = [], [], [], [], [], []
    engine = None
    for s in range(pools):
        for d in range(pools):
            if d == s:
                continue
            r = run_pair(assembly, pools, s, d, config["trials_per_pair"], config["seed"] * 1000 + s * pools + d,
                         config)
            engine = r["engine"]
            rates, marks = r["rates"], r["marks"]
            B = rates.shape[2]
            late = rates[:, marks["test"] - n_read:marks["test"]].mean(axis=1)  # [K, B]
            memory = np.where(late.max(axis=0) >= config["memory_rate"], late.argmax(axis=0), -1)
            match = rng.random(B) < 0.5
            others = np.array([rng.choice([k for k in range(pools) if k != s]) for _ in range(B)])
            test = np.where(match, s, others)
            says_match = np.where(memory >= 0, memory == test, rng.random(B) < 0.5)
            correct.append(says_match == match)
            held.append(memory >= 0)
            survived.append(memory == s)
            d2 = rates[:, marks["delay2"]:marks["test"]].mean(axis=1)  # [K, B]
            delay_sample.append(d2[s])
            delay_other.append(np.delete(d2, s, axis=0).mean(axis=0))
            fix_rates.append(rates[:, marks["fixation"]:marks["sample"]].mean(axis=(0, 1)))
    correct, survived = np.concatenate(correct), np.concatenate(survived)
    summary = {"task": "delayed_match", "name": config["name"], "items": pools, "trials": int(correct.size),
               "accuracy": round(float(correct.mean()), 4), "chance": 0.5,
               "memory_survived_distractor": round(float(survived.mean()), 4),
               "memory_held": round(float(np.concatenate(held).mean()), 4),
               "delay_rate_sample_pool_hz": round(float(np.concatenate(delay_sample).mean()), 2),
               "delay_rate_other_pools_hz": round(float(np.concatenate(delay_other).mean()), 2),
               "fixation_rate_hz": round(float(np.concatenate(fix_rates).mean()), 2),
               "engine": engine, "wall_s": round(time.perf_counter() - start, 2)}
    print(f"accuracy {100 * summary['accuracy']:.1f} % (chance 50 %); the sample survived the distractor in "
          f"{100 * summary['memory_survived_distractor']:.1f} % of trials; delay rates: sample pool "
          f"{summary['delay_rate_sample_pool_hz']:.1f} Hz, other pools {summary['delay_rate_other_pools_hz']:.1f} Hz "
          f"(fixation {summary['fixation_rate_hz']:.1f} Hz)")
    print(json.dumps(summary))
    return summary


KIND = register_kind(Kind("delayed_match", SCHEMA, run, _semantic_check,
                          "delayed match-to-sample with a distractor on prefrontal attractors (Compte et al. 2000)"))

# the names this module imported at its top before it left PyTorch to the runner (issue 16)
__getattr__ = lazy_attributes(__name__, {
    "Simulator": "braincore.simulator:Simulator",
})
