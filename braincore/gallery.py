"""The ``neuron_gallery`` config kind: neuron models under step currents, summarised and plotted.

A gallery config lists panels, each a neuron model (with an optional preset and parameters) driven by a step
current that is on between ``stimulus.onset`` and ``stimulus.offset``::

    kind: neuron_gallery
    dt: 0.1 ms
    duration: 300 ms
    stimulus: {onset: 20 ms, offset: 280 ms}
    panels:
      - {model: izhikevich, preset: regular_spiking, current: 10}
      - {model: lif, params: {tau_m: 20 ms}, current: 0.3 nA}
    output: gallery.png

``current`` is read in the panel model's input unit (nA for the integrate-and-fire family and AdEx, uA/cm2
for Hodgkin–Huxley, the paper's dimensionless units for Izhikevich). Running it prints, for each panel, the
spike count, the mean rate over the stimulus, the first-spike latency and the ISI adaptation ratio, and
writes one PNG of all voltage traces.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np

from .config import AnyMapping, Document, Kind, ListOf, Quantity, Raw, Record, Text, register_kind
from .validation import OutputName
from .neurons import MODELS, ClampResult, get_model, inject_current
from .errors import ConfigError
from .units import UnitError, dimension_of, parse_quantity

PANEL = Record({
    "label": Text(doc="title of the panel (default: model and preset)"),
    "model": Text(required=True, doc="registered neuron model name"),
    "preset": Text(doc="a named parameter set of the model"),
    "params": AnyMapping(default={}, doc="parameter overrides, units allowed"),
    "method": Text(doc="integration method"),
    "current": Raw(0.0, doc="step amplitude, in the model's input unit (checked against the model)"),
})

SCHEMA = Record({
    "kind": Text(required=True),
    "title": Text("braincore neuron gallery"),
    "dt": Quantity("time", 0.1, exclusive_minimum=0.0),
    "duration": Quantity("time", 300.0, exclusive_minimum=0.0),
    "stimulus": Record({"onset": Quantity("time", 20.0, minimum=0.0),
                        "offset": Quantity("time", None, minimum=0.0)}, default={"onset": 20.0, "offset": None}),
    "panels": ListOf(PANEL, required=True, min_items=1),
    "columns": Quantity("dimensionless", 2, exclusive_minimum=0.0),
    "output": OutputName("gallery.png", subfolders=True, doc="PNG file name, relative to the output folder"),
})


def _check(config: dict, doc: Document, problems: list) -> None:
    """Model names, presets, parameters and current units of every panel; stimulus window inside the run."""
    stimulus = config.get("stimulus") or {}
    onset, offset = stimulus.get("onset"), stimulus.get("offset")
    if onset is not None and offset is not None and offset <= onset:
        problems.append(doc.problem(("stimulus", "offset"), f"must be after onset ({onset:g} ms)"))
    for i, panel in enumerate(config.get("panels") or []):
        path = ("panels", i)
        if panel is None or panel.get("model") is None:
            continue
        try:
            cls = get_model(panel["model"])
        except ConfigError as err:
            problems.append(doc.problem(path + ("model",), str(err)))
            continue
        values = dict(cls.presets.get(panel["preset"], {})) if panel["preset"] else {}
        if panel["preset"] and panel["preset"] not in cls.presets:
            known = ", ".join(cls.presets) or "none"
            problems.append(doc.problem(path + ("preset",), f"unknown preset {panel['preset']!r} for "
                                                           f"{panel['model']} (known: {known})"))
        values.update(panel.get("params") or {})
        try:
            cls.params_cls.from_mapping(values)
        except ConfigError as err:
            for key, message in err.items:
                where = path + ("params", key) if key else path + ("params",)
                problems.append(doc.problem(where, message))
        if panel.get("method") is not None and panel["method"] not in cls.methods:
            problems.append(doc.problem(path + ("method",), f"unknown method {panel['method']!r} for "
                                                           f"{panel['model']} (expected one of: "
                                                           f"{', '.join(cls.methods)})"))
        try:
            panel["current"] = parse_quantity(panel["current"], dimension_of(cls.input_unit))
        except UnitError as err:
            problems.append(doc.problem(path + ("current",), f"{err} (the input of {panel['model']} is in "
                                                             f"{cls.input_unit})"))


def summarise(result: ClampResult, onset: float, offset: float) -> dict:
    """Spike count, rate over the stimulus (Hz), first-spike latency (ms) and ISI adaptation ratio."""
    times = result.spike_times[0]
    inside = times[(times >= onset) & (times < offset)]
    isi = np.diff(inside)
    return {
        "spikes": int(len(times)),
        "rate_hz": float(len(inside) / ((offset - onset) / 1000.0)) if offset > onset else 0.0,
        "latency_ms": float(inside[0] - onset) if len(inside) else None,
        "adaptation": float(isi[-1] / isi[0]) if len(isi) >= 2 else None,
    }


def simulate_panel(panel: dict, dt: float, duration: float, onset: float, offset: float) -> ClampResult:
    """Run one panel's model under its step current (float64, one neuron)."""
    steps = int(round(duration / dt))
    t = np.arange(steps) * dt
    current = np.where((t >= onset) & (t < offset), panel["current"], 0.0)
    cls = get_model(panel["model"])
    kwargs = {"dt": dt, "method": panel["method"]}
    if panel["preset"]:
        model = cls.from_preset(panel["preset"], 1, params=panel["params"], **kwargs)
    else:
        model = cls(1, panel["params"], **kwargs)
    return inject_current(model, current)


def panel_label(panel: dict) -> str:
    if panel.get("label"):
        return panel["label"]
    return panel["model"] + (f" ({panel['preset']})" if panel.get("preset") else "")


def run_gallery(config: dict, options: dict) -> dict:
    """Simulate every panel, print a table, write the PNG; returns the JSON summary."""
    dt, duration = config["dt"], config["duration"]
    onset = config["stimulus"]["onset"]
    offset = config["stimulus"]["offset"] if config["stimulus"]["offset"] is not None else duration
    out_dir = Path(options.get("out", "."))
    rows, results = [], []
    for panel in config["panels"]:
        result = simulate_panel(panel, dt, duration, onset, offset)
        cls = MODELS[panel["model"]]
        row = {"panel": panel_label(panel), "current": panel["current"], "unit": cls.input_unit,
               **summarise(result, onset, offset)}
        rows.append(row)
        results.append(result)
    say = options.get("print", print)
    say(f"{config['title']}: {len(rows)} panels, {duration:g} ms at dt = {dt:g} ms, "
        f"step current {onset:g}-{offset:g} ms")
    say(f"{'panel':<40} {'input':>10}{'':<4} {'spikes':>6} {'rate Hz':>8} {'latency ms':>10} {'ISI last/first':>14}")
    for row in rows:
        lat = "-" if row["latency_ms"] is None else f"{row['latency_ms']:.1f}"
        ada = "-" if row["adaptation"] is None else f"{row['adaptation']:.2f}"
        unit = "" if row["unit"] == "1" else f" {row['unit']}"
        say(f"{row['panel']:<40} {row['current']:>10g}{unit:<4} {row['spikes']:>6d} {row['rate_hz']:>8.1f} "
            f"{lat:>10} {ada:>14}")
    summary: dict[str, Any] = {"kind": "neuron_gallery", "panels": rows}
    if not options.get("no_plot"):
        png = _plot(config, results, out_dir / config["output"], onset, offset, say)
        summary["png"] = str(png) if png else None
    return summary


def _plot(config: dict, results: list, path: Path, onset: float, offset: float, say) -> Optional[Path]:
    try:
        from .viz import plot_gallery
    except ImportError as err:  # matplotlib is an optional extra
        say(f"no PNG written: {err}")
        return None
    labels = [panel_label(p) for p in config["panels"]]
    path.parent.mkdir(parents=True, exist_ok=True)
    plot_gallery(results, labels, path, title=config["title"], columns=int(config["columns"]),
                 stimulus=(onset, offset))
    say(f"wrote {path}")
    return path


register_kind(Kind("neuron_gallery", SCHEMA, run_gallery, _check,
                   "neuron models under step currents: a table of firing statistics and a PNG of voltage traces"))
