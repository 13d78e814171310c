"""Action selection in a cortico-basal ganglia-thalamo-cortical loop (``kind: cbgt_selection`` configs).

The config is a ``kind: assembly`` network (same keys: ``include`` of region types, ``projections``, ``inputs``
with time windows...) plus the keys of the selection read-out:

- ``channels``: the number of action channels N;
- ``windows``: a list of ``{name, start, stop}``: the periods in which the selection is read (typically the
  periods of one input pattern);
- ``settle``: the part of each window left out of the rates (the loop's switching transient);
- ``readout``: the include prefixes of the regions (``cortex: ctx``, ``basal_ganglia: bg``, ``thalamus: thal``,
  ``motor: motor``).

The run simulates the whole duration, then for each window prints the rate of every channel's cortical,
striatal (D1, D2), STN, GPe, GPi/SNr, thalamic relay and motor population, the channel with the strongest input
(the sum of ``rate * sources * weight`` of the top-level Poisson inputs onto the cortical channel that are on
during the window), the selected channel (the motor read-out, :func:`regions.motor.selected_channel`; the
basal ganglia's choice is the channel with the lowest GPi/SNr rate, the thalamus's the one with the highest relay
rate) and the latency of the selection after the window's start: the time from which on, in bins (10 ms for GPi/SNr, 25
ms for
the motor populations) up to the window's end, the selected channel has the lowest GPi/SNr rate (``gpi_latency_ms``) and
the highest motor
rate (``latency_ms``). It writes a raster of every
population grouped by region and coloured by channel with the GPi/SNr and motor rates below
(``<out>/<name>_raster.png``), the spikes (``<out>/<name>.npz``), and prints a final JSON line.

The network is also an ordinary assembly: ``braincore graph`` draws it, and
``braincore.assembly_config.load_assembly`` returns it.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import numpy as np

from braincore.assembly_config import SCHEMA as ASSEMBLY_SCHEMA
from braincore.assembly_config import _semantic_check as assembly_check
from braincore.config import Document, Integer, Kind, ListOf, Quantity, Record, Text, register_kind
from regions.motor import channel_rates

WINDOW = Record({"name": Text(doc="a label"),
                 "start": Quantity("time", required=True, minimum=0.0),
                 "stop": Quantity("time", required=True, exclusive_minimum=0.0)})
READOUT_DEFAULT = {"cortex": "ctx", "basal_ganglia": "bg", "thalamus": "thal", "motor": "motor"}

SCHEMA = Record({
    **ASSEMBLY_SCHEMA.fields,
    "channels": Integer(3, minimum=1, doc="number of action channels"),
    "windows": ListOf(WINDOW, required=True, min_items=1, doc="periods in which the selection is read"),
    "settle": Quantity("time", 200.0, minimum=0.0, doc="left out at the start of each window"),
    "readout": Record({key: Text(value) for key, value in READOUT_DEFAULT.items()}, default=dict(READOUT_DEFAULT),
                      doc="include prefixes of the regions"),
})

#: bins (ms) of the switching latencies: GPi/SNr populations fire fast and densely, motor ones sparsely
GPI_BIN, MOTOR_BIN = 10.0, 25.0

#: (label, region key, population pattern) of the rows of the printed table, in loop order
ROWS = (("cortex", "cortex", "exc_{c}"), ("D1", "basal_ganglia", "d1_{c}"), ("D2", "basal_ganglia", "d2_{c}"),
        ("STN", "basal_ganglia", "stn_{c}"), ("GPe", "basal_ganglia", "gpe_{c}"),
        ("GPi/SNr", "basal_ganglia", "gpi_{c}"), ("thalamus", "thalamus", "relay_{c}"),
        ("motor", "motor", "m_{c}"))


def _check(config: dict, doc: Document, problems: list) -> None:
    assembly_check(config, doc, problems)
    assembly = config.get("_assembly")
    duration, channels = config.get("duration"), config.get("channels")
    for i, window in enumerate(config.get("windows") or []):
        if not window or window.get("start") is None or window.get("stop") is None:
            continue
        if window["stop"] <= window["start"]:
            problems.append(doc.problem(("windows", i, "stop"), "must be after start"))
        if duration is not None and window["stop"] > duration + 1e-9:
            problems.append(doc.problem(("windows", i, "stop"), f"after the end of the run ({duration:g} ms)"))
        if config.get("settle") is not None and window["start"] + config["settle"] >= window["stop"]:
            problems.append(doc.problem(("settle",), f"leaves nothing of window {i} ({window['start']:g}-"
                                                     f"{window['stop']:g} ms)"))
    readout = config.get("readout") or {}
    if assembly is None or not isinstance(channels, int):
        return
    _cue_problems(config, doc, problems, readout.get("cortex"), channels)
    for label, region, pattern in ROWS:
        prefix = readout.get(region)
        if prefix is None:
            continue
        for c in range(channels):
            name = f"{prefix}.{pattern.format(c=c)}"
            if assembly.resolve(name) is None:
                problems.append(doc.problem(("readout", region), f"no population {name!r} ({label} of channel {c}); "
                                                                 f"include the {region} region under {prefix!r} with "
                                                                 f"channels: {channels}"))
            elif not any(m.type == "spikes" and m.target == name for m in assembly.monitors):
                problems.append(doc.problem(("readout", region), f"no spike monitor on {name!r} (monitors: true)"))


def _cue_problems(config: dict, doc: Document, problems: list, prefix, channels: int) -> None:
    """The cue inputs :func:`input_strength` reads (top-level Poisson inputs onto ``<prefix>.exc_c``) need a
    rate, a voltage weight (instantaneous synapses) and times that it can sum, each reported at its key."""
    from braincore.units import UnitError, parse_quantity

    if not isinstance(prefix, str):
        return
    targets = {f"{prefix}.exc_{c}" for c in range(channels)}
    for i, spec in enumerate(config.get("inputs") or []):
        if not isinstance(spec, dict) or spec.get("type") != "poisson" or spec.get("target") not in targets:
            continue
        nested = spec.get("params") if isinstance(spec.get("params"), dict) else {}
        params = {**nested, **{k: v for k, v in spec.items() if k not in ("name", "type", "target", "params")}}
        for key, dimension in (("rate", "frequency"), ("weight", "voltage"), ("start", "time"), ("stop", "time")):
            if params.get(key) is None:
                continue
            try:
                parse_quantity(params[key], dimension)
            except UnitError as err:
                path = ("inputs", i, "params", key) if key in nested else ("inputs", i, key)
                message = (f"a cue onto {spec['target']!r} needs a {dimension}"
                           f"{' (an instantaneous synapse: a voltage jump)' if key == 'weight' else ''}: {err}")
                if not any(p.keypath == path for p in problems):
                    problems.append(doc.problem(path, message))


def input_strength(assembly, prefix: str, channels: int, start: float, stop: float) -> list[float]:
    """Per channel, the summed ``rate * sources * weight`` (Hz mV) of the top-level Poisson inputs onto the
    cortical population ``<prefix>.exc_c`` that are on at some time in ``[start, stop)``."""
    from braincore.units import parse_quantity

    out = [0.0] * channels
    for spec in assembly.inputs:
        if spec.type != "poisson" or spec.name.startswith(prefix + "."):
            continue  # the regions' own backgrounds are the same for every channel
        for c in range(channels):
            if spec.target != f"{prefix}.exc_{c}":
                continue
            p = spec.params
            on = parse_quantity(p.get("start", 0.0), "time")
            off = parse_quantity(p["stop"], "time") if p.get("stop") is not None else float("inf")
            if on < stop and off > start:
                out[c] += parse_quantity(p["rate"], "frequency") * int(p.get("sources", 1)) * \
                    abs(parse_quantity(p["weight"], "voltage"))
    return out


def winners(sim, prefix: str, pattern: str, start: float, stop: float, bin_ms: float = 50.0,
            lowest: bool = False) -> list[Optional[int]]:
    """The channel whose population ``<prefix>.<pattern>`` fired most (``lowest``: least) in each ``bin_ms`` bin
    of ``[start, stop)`` (``None`` for a bin without spikes when looking for the most active)."""
    out = []
    t = start
    while t + bin_ms <= stop + 1e-9:
        rates = channel_rates(sim, prefix, pattern, t, t + bin_ms)
        if lowest:
            out.append(int(np.argmin(rates)))
        else:
            out.append(int(np.argmax(rates)) if max(rates) > 0 else None)
        t += bin_ms
    return out


def latency(winners: list[Optional[int]], selected: Optional[int], bin_ms: float = 50.0) -> Optional[float]:
    """End (ms after the window's start) of the last bin whose winner is not ``selected``: from then on every bin's
    winner is ``selected`` (0 when all are; ``None`` when the last is not)."""
    if selected is None or not winners or winners[-1] != selected:
        return None
    i = len(winners)
    while i > 0 and winners[i - 1] == selected:
        i -= 1
    return i * bin_ms


def analyse(sim, config: dict) -> list[dict]:
    """The per-window rates, strongest input, selection by each stage and latency (see the module docstring)."""
    readout, channels, settle = config["readout"], config["channels"], config["settle"]
    results = []
    for i, window in enumerate(config["windows"]):
        start, stop = window["start"], window["stop"]
        rates = {label: channel_rates(sim, readout[region], pattern, start + settle, stop)[:channels]
                 for label, region, pattern in ROWS if readout.get(region)}
        strength = input_strength(sim.assembly, readout["cortex"], channels, start, stop)
        strongest = int(np.argmax(strength)) if max(strength) > 0 else None
        motor = rates.get("motor")
        selected = int(np.argmax(motor)) if motor and max(motor) >= 1.0 else None
        gpi_lowest = int(np.argmin(rates["GPi/SNr"])) if "GPi/SNr" in rates else None
        results.append({
            "name": window.get("name") or f"window {i}", "start_ms": start, "stop_ms": stop,
            "input_strength": strength, "strongest_input": strongest,
            "selected": selected,
            "gpi_lowest": gpi_lowest,
            "thalamus_highest": int(np.argmax(rates["thalamus"])) if "thalamus" in rates else None,
            "correct": selected is not None and selected == strongest,
            "gpi_latency_ms": latency(winners(sim, readout["basal_ganglia"], "gpi_{c}", start, stop, GPI_BIN,
                                              lowest=True), gpi_lowest, GPI_BIN),
            "latency_ms": latency(winners(sim, readout["motor"], "m_{c}", start, stop, MOTOR_BIN), selected,
                                  MOTOR_BIN),
            "rates_hz": rates,
        })
    return results


def plot(sim, config: dict, results: list[dict], path: Path, max_neurons: int = 20) -> Optional[str]:
    """Raster of every population (at most ``max_neurons`` each), grouped by region and coloured by channel, and
    the GPi/SNr and motor rates per channel (25 ms bins) with the windows marked."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    readout, channels = config["readout"], config["channels"]
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    by_target = {m.target: m.name for m in sim.assembly.monitors if m.type == "spikes"}
    fig, (ax, ax_gpi, ax_m) = plt.subplots(3, 1, figsize=(10, 10), sharex=True,
                                           gridspec_kw={"height_ratios": [5, 1.2, 1.2]})
    offset, ticks, labels = 0, [], []
    for label, region, pattern in reversed(ROWS):
        for c in reversed(range(channels)):
            target = f"{readout[region]}.{pattern.format(c=c)}"
            if target not in by_target:
                continue
            data = sim.monitor(by_target[target])
            keep = (data["trial"] == 0) & (data["neuron"] < max_neurons)
            shown = min(sim.populations[target].model.size, max_neurons)
            ax.plot(data["t"][keep], data["neuron"][keep] + offset, "|", ms=2, color=colours[c % len(colours)])
            ticks.append(offset + shown / 2)
            labels.append(f"{label} {c}")
            offset += shown + 2
    ax.set_yticks(ticks)
    ax.set_yticklabels(labels, fontsize=6)
    ax.set_ylim(0, offset)
    bin_ms = 25.0
    edges = np.arange(0.0, sim.t + bin_ms, bin_ms)
    for axis, (label, region, pattern) in ((ax_gpi, ROWS[5]), (ax_m, ROWS[7])):
        for c in range(channels):
            rates = [channel_rates(sim, readout[region], pattern, t, t + bin_ms)[c] for t in edges[:-1]]
            axis.plot(edges[:-1] + bin_ms / 2, rates, color=colours[c % len(colours)], lw=1.2, label=f"channel {c}")
        axis.set_ylabel(f"{label}\nrate (Hz)", fontsize=8)
    ax_m.legend(fontsize=7, loc="upper right", ncol=channels)
    for r in results:
        for axis in (ax, ax_gpi, ax_m):
            axis.axvline(r["start_ms"], color="k", lw=0.6, ls="--")
        ax.text(r["start_ms"] + 5, offset, f"{r['name']}: selected {r['selected']}", va="bottom", fontsize=8)
    ax_m.set_xlabel("time (ms)")
    ax_m.set_xlim(0, sim.t)
    ax.set_title(f"{sim.assembly.name}: cortico-basal ganglia-thalamo-cortical loop, {channels} channels", pad=14)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def run(config: dict, options: dict) -> dict:
    from braincore.simulator import Simulator

    out = Path(options.get("out") or "braincore_out")
    out.mkdir(parents=True, exist_ok=True)
    say = options.get("print", print)
    assembly = config["_assembly"]
    start = time.perf_counter()
    sim = Simulator(assembly)
    say(f"{assembly.name}: {sum(p.model.size for p in sim.populations.values())} neurons, "
        f"{sum(int(p.post_idx.numel()) for p in sim.projections)} synapses, {len(sim.populations)} populations; "
        f"{config['channels']} channels; engine {sim.engine}")
    sim.run(progress=options.get("progress", True) and not options.get("no_progress"))
    wall = time.perf_counter() - start
    say(f"simulated {sim.t:g} ms in {wall:.1f} s")
    results = analyse(sim, config)
    channels = config["channels"]
    for r in results:
        say(f"window {r['name']!r} ({r['start_ms']:g}-{r['stop_ms']:g} ms, rates after {config['settle']:g} ms):")
        say(f"  {'rate (Hz)':<10}" + "".join(f"{'ch ' + str(c):>9}" for c in range(channels)))
        for label, rates in r["rates_hz"].items():
            say(f"  {label:<10}" + "".join(f"{v:9.1f}" for v in rates))
        lat = {key: "-" if r[key] is None else f"{r[key]:g} ms" for key in ("latency_ms", "gpi_latency_ms")}
        say(f"  strongest input: channel {r['strongest_input']}; selected: channel {r['selected']} (GPi/SNr lowest: "
            f"{r['gpi_lowest']}, thalamus highest: {r['thalamus_highest']}); "
            f"{'correct' if r['correct'] else 'WRONG'}; switched within {lat['gpi_latency_ms']} (GPi/SNr), "
            f"{lat['latency_ms']} (motor) of the window's start")
    name = assembly.name or "cbgt"
    files = {"npz": str(sim.save_npz(out / f"{name}.npz"))}
    if not options.get("no_plot"):
        png = plot(sim, config, results, out / f"{name}_raster.png")
        if png:
            files["raster"] = png
            say(f"wrote {png}")
    summary = {"kind": "cbgt_selection", "name": name, "simulated_ms": sim.t, "wall_s": wall, "engine": sim.engine,
               "channels": channels, "selections": [r["selected"] for r in results],
               "all_correct": all(r["correct"] for r in results), "windows": results, "files": files}
    say(json.dumps({k: summary[k] for k in ("kind", "name", "selections", "all_correct", "simulated_ms", "wall_s")}
                   | {"gpi_latency_ms": [r["gpi_latency_ms"] for r in results],
                      "motor_latency_ms": [r["latency_ms"] for r in results]}))
    return summary


KIND = register_kind(Kind("cbgt_selection", SCHEMA, run, _check,
                          "action selection in a cortico-basal ganglia-thalamo-cortical loop: selected channel per "
                          "input window"))

__all__ = ["SCHEMA", "KIND", "run", "analyse", "input_strength", "winners", "latency", "plot"]
