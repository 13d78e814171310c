"""One-shot associative memory: store patterns in the hippocampus, recall them from partial cues
(``kind: associative_recall`` configs).

For every number of patterns P in ``patterns``: build the ``hippocampus`` region (CA3 + basket cells), draw P random
binary patterns of ``network.sparsity`` (a N active cells each), **store** them in one shot with the clipped
Hebbian rule (:func:`regions.hippocampus.store_patterns`: the recurrent synapses between co-active cells are set to
``w_rec``; no repetition), then **recall** each (or the first ``tests``) in turn: a cue of ``cue_fraction`` of the
pattern's cells (chosen at random) is driven by a Poisson input (``cue.rate`` x ``cue.weight`` jumps) for
``cue.duration``; the cells that fire at ``active_rate`` or more during that window are the recalled pattern. Between
recalls the basket cells are driven (``reset``) to silence CA3, then the network rests.

Scores per recall: the overlap m = (fraction of the pattern's cells active) - (fraction of the other cells active)
(1: perfect; the cue alone gives ``cue_fraction``), the completion (fraction of the *uncued* pattern cells active)
and the false-alarm rate (fraction of the other cells active). A recall counts as correct when m >= ``criterion``.
``control: true`` also runs the same cues without stored weights (the bound a memory must beat: m = cue fraction
at best). The last line printed is a JSON object with the scores per P.

References: Willshaw et al. (1969); Marr (1971); Treves & Rolls (1994); Rolls (2013); see regions/hippocampus.py.
"""
from __future__ import annotations

import inspect
import json
import time
from pathlib import Path

import numpy as np

from braincore.config import Flag, Integer, Kind, ListOf, Quantity, Record, Text, register_kind
from braincore.graph import Assembly
from braincore.units import parse_quantity
from regions.hippocampus import build as build_hippocampus
from regions.hippocampus import overlap, random_patterns, store_patterns
from tasks.common import OutputName, assembly_memory_problems, seed_problem, lazy_attributes
from tasks.decision.two_afc import region_params_field

SCHEMA = Record({
    "kind": Text(required=True),
    "name": OutputName("associative", doc="a label of the run (and its outputs)"),
    "seed": Integer(0, minimum=0),
    "network": region_params_field(build_hippocampus, {}, doc="parameters of the hippocampus region"),
    "patterns": ListOf(Integer(minimum=1), min_items=1, default=[10, 20, 40, 80],
                       doc="numbers of stored patterns, one memory per number"),
    "tests": Integer(None, minimum=1, doc="patterns recalled per memory (default: all)"),
    "cue_fraction": Quantity("dimensionless", 0.5, exclusive_minimum=0.0, doc="fraction of a pattern cued"),
    "cue": Record({"rate": Quantity("frequency", 1000.0, minimum=0.0), "weight": Quantity("voltage", 1.0, minimum=0.0),
                   "duration": Quantity("time", 100.0, exclusive_minimum=0.0)},
                  default={"rate": 1000.0, "weight": 1.0, "duration": 100.0}),
    "reset": Record({"rate": Quantity("frequency", 2000.0, minimum=0.0),
                     "weight": Quantity("voltage", 2.0, minimum=0.0),
                     "duration": Quantity("time", 50.0, minimum=0.0), "rest": Quantity("time", 50.0, minimum=0.0)},
                    default={"rate": 2000.0, "weight": 2.0, "duration": 50.0, "rest": 50.0}),
    "active_rate": Quantity("frequency", 20.0, exclusive_minimum=0.0, doc="a cell is active at this rate or more"),
    "criterion": Quantity("dimensionless", 0.9, doc="a recall is correct when its overlap reaches this"),
    "control": Flag(True, doc="also recall without stored weights (the cue-only bound)"),
    "dt": Quantity("time", 0.1, exclusive_minimum=0.0),
    "backend": Text("auto", choices=("auto", "native", "torch")),
})


def _semantic_check(config: dict, doc, problems: list) -> None:
    seed_problem(config, doc, problems)
    frac = config.get("cue_fraction")
    if frac is not None and frac > 1:
        problems.append(doc.problem(("cue_fraction",), f"a fraction in (0, 1], got {frac:g}"))
    if not problems and config.get("network") is not None and config.get("dt") is not None:
        from braincore.errors import ConfigError

        try:
            a = Assembly(name="associative")
            a.include(build_hippocampus(**config["network"]), "hpc")
        except (ConfigError, TypeError):
            return  # reported at the keys of network by its field
        a.set_run(dt=config["dt"])
        assembly_memory_problems(a, doc, problems, ("network",) if config["network"] else ("kind",))


def recall_memory(network: dict, n_patterns: int, config: dict, *, seed: int, store: bool = True,
                  tests: int | None = None) -> dict:
    """Store ``n_patterns`` in a fresh hippocampus (unless ``store`` is false) and recall ``tests`` of them from
    partial cues; per-recall overlap, completion and false-alarm arrays, and the engine."""
    from braincore.simulator import Simulator  # PyTorch: imported where trials run, not to validate

    params = {k: p.default for k, p in inspect.signature(build_hippocampus).parameters.items()}
    params.update(network)
    size, sparsity = params["size"], params["sparsity"]
    pats = random_patterns(n_patterns, size, sparsity, seed=seed)
    rng = np.random.default_rng([seed, 1])
    n_tests = min(tests or n_patterns, n_patterns)
    cues = []
    for mu in range(n_tests):
        cells = np.flatnonzero(pats[mu])
        k = max(1, int(round(config["cue_fraction"] * len(cells))))
        cues.append(np.sort(rng.choice(cells, k, replace=False)))
    a = Assembly(name="associative")
    a.include(build_hippocampus(**network), "hpc")
    cue, reset = config["cue"], config["reset"]
    for mu in range(n_tests):
        a.add_input(f"cue{mu}", "poisson", "hpc.in", rate="0 Hz", weight=f"{cue['weight']!r} mV",
                    neurons=cues[mu].tolist())
    a.add_input("reset", "poisson", "hpc.basket", rate="0 Hz", weight=f"{reset['weight']!r} mV")
    a.add_monitor("ca3", "spikes", "hpc.ca3", max_spikes=1)  # counts only (exact, unbounded)
    a.set_run(dt=f"{config['dt']!r} ms", seed=seed, backend=config["backend"])
    sim = Simulator(a)
    if store:
        store_patterns(sim, pats, parse_quantity(params["w_rec"], "voltage"), prefix="hpc.")
    sim.run(reset["rest"] + reset["duration"])
    counts = sim.monitors[0]
    min_spikes = config["active_rate"] * cue["duration"] / 1000.0
    m, completion, false = [], [], []
    for mu in range(n_tests):
        before = None if counts.counts is None else counts.counts.clone()
        sim.set_poisson_rate(f"cue{mu}", cue["rate"])
        sim.run(cue["duration"])
        sim.set_poisson_rate(f"cue{mu}", 0.0)
        spikes = (counts.counts - (before if before is not None else 0))[0].cpu().numpy()
        active = spikes >= min_spikes - 1e-9
        uncued = pats[mu].copy()
        uncued[cues[mu]] = False
        m.append(overlap(active, pats[mu]))
        completion.append(float(active[uncued].mean()) if uncued.any() else 1.0)
        false.append(float(active[~pats[mu]].mean()))
        sim.set_poisson_rate("reset", reset["rate"])
        sim.run(reset["duration"])
        sim.set_poisson_rate("reset", 0.0)
        sim.run(reset["rest"])
    return {"overlap": np.array(m), "completion": np.array(completion), "false": np.array(false),
            "engine": sim.engine}


def run(config: dict, options: dict) -> dict:
    start = time.perf_counter()
    Path(options.get("out") or "braincore_out").mkdir(parents=True, exist_ok=True)
    net = config["network"]
    params = {k: p.default for k, p in inspect.signature(build_hippocampus).parameters.items()}
    params.update(net)
    print(f"associative_recall: CA3 of {params['size']} cells (sparsity {params['sparsity']}), "
          f"{params['inhibitory_size']} basket cells; cues of {100 * config['cue_fraction']:.0f} % of a pattern")
    rows, engine = [], None
    for i, P in enumerate(config["patterns"]):
        r = recall_memory(net, P, config, seed=config["seed"] * 1000 + i, tests=config["tests"])
        engine = r["engine"]
        row = {"patterns": P, "tests": int(r["overlap"].size), "overlap": round(float(r["overlap"].mean()), 4),
               "overlap_min": round(float(r["overlap"].min()), 4),
               "completion": round(float(r["completion"].mean()), 4),
               "false_alarm": round(float(r["false"].mean()), 5),
               "recall_accuracy": round(float((r["overlap"] >= config["criterion"]).mean()), 4)}
        if config["control"]:
            c = recall_memory(net, P, config, seed=config["seed"] * 1000 + i, tests=config["tests"], store=False)
            row["control_overlap"] = round(float(c["overlap"].mean()), 4)
        rows.append(row)
        print(f"  P = {P:4d}: overlap {row['overlap']:.3f} (min {row['overlap_min']:.3f}), completion of the uncued "
              f"cells {100 * row['completion']:.1f} %, false alarms {100 * row['false_alarm']:.2f} %, recalled "
              f"{100 * row['recall_accuracy']:.1f} %" + (f"; cue alone: overlap {row['control_overlap']:.3f}"
                                                          if config["control"] else ""), flush=True)
    summary = {"task": "associative_recall", "name": config["name"], "size": params["size"],
               "sparsity": params["sparsity"], "cue_fraction": config["cue_fraction"], "results": rows,
               "engine": engine, "wall_s": round(time.perf_counter() - start, 2)}
    print(json.dumps(summary))
    return summary


KIND = register_kind(Kind("associative_recall", SCHEMA, run, _semantic_check,
                          "one-shot Hebbian storage in a CA3-like network, recall from partial cues"))

# the names this module imported at its top before it left PyTorch to the runner (issue 16)
__getattr__ = lazy_attributes(__name__, {
    "Simulator": "braincore.simulator:Simulator",
})
