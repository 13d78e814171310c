"""Plots as PNG files: voltage traces with spikes, galleries of models. Needs the ``plot`` extra (matplotlib).

All functions write a file and return its path; they never open windows (the Agg backend is used).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError("plots need matplotlib: pip install 'braincore[plot]'") from err

from .neurons.injection import ClampResult

PathLike = Union[str, Path]


def _draw_trace(ax, result: ClampResult, index: int = 0, stimulus: Optional[tuple] = None) -> None:
    t_end = result.t + (result.t[1] - result.t[0] if len(result.t) > 1 else 0.0)  # v[k] is the value at t_{k+1}
    ax.plot(t_end, result.v[:, index], lw=0.8, color="#1f4e79")
    spikes = result.spike_times[index]
    if len(spikes):
        top = max(float(np.max(result.v[:, index])), -40.0)
        ax.plot(spikes, np.full(len(spikes), top + 5.0), "|", color="#c0392b", ms=6)
    if stimulus is not None:
        ax.axvspan(stimulus[0], stimulus[1], color="#f4d03f", alpha=0.15, lw=0)
    ax.set_xlim(0, t_end[-1] if len(t_end) else 1)
    ax.grid(alpha=0.3, lw=0.5)


def plot_trace(result: ClampResult, path: PathLike, *, title: str = "", stimulus: Optional[tuple] = None,
               current: Optional[np.ndarray] = None, unit: str = "") -> Path:
    """One neuron's membrane potential (spikes marked above it) and, optionally, the injected current."""
    rows = 2 if current is not None else 1
    fig, axes = plt.subplots(rows, 1, figsize=(8, 3.2 + 1.3 * (rows - 1)), sharex=True,
                             gridspec_kw={"height_ratios": [3, 1][:rows]}, squeeze=False)
    _draw_trace(axes[0, 0], result, 0, stimulus)
    axes[0, 0].set_ylabel("v (mV)")
    axes[0, 0].set_title(title)
    if current is not None:
        axes[1, 0].plot(result.t, current, color="#7d3c98", lw=0.8, drawstyle="steps-post")
        axes[1, 0].set_ylabel(f"I ({unit})" if unit and unit != "1" else "I")
        axes[1, 0].grid(alpha=0.3, lw=0.5)
    axes[-1, 0].set_xlabel("time (ms)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def plot_gallery(results: Sequence[ClampResult], labels: Sequence[str], path: PathLike, *, title: str = "",
                 columns: int = 2, stimulus: Optional[tuple] = None) -> Path:
    """A grid of voltage traces, one panel per model, with the stimulus window shaded."""
    n = len(results)
    columns = max(1, min(columns, n))
    rows = (n + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(5.2 * columns, 2.1 * rows), squeeze=False, sharex=True)
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.axis("off")
            continue
        _draw_trace(ax, results[i], 0, stimulus)
        ax.set_title(labels[i], fontsize=9)
        if i % columns == 0:
            ax.set_ylabel("v (mV)")
    for ax in axes[-1]:
        ax.set_xlabel("time (ms)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


#: neurons per population a raster shows when not told otherwise (the first ones)
DEFAULT_RASTER_NEURONS = 400

#: which neurons of each population a raster shows: ``None`` (the first DEFAULT_RASTER_NEURONS), ``N`` (the first
#: N), ``(first, stop)`` or ``"all"``
NeuronChoice = Union[None, int, tuple, str]


def _neuron_range(choice: NeuronChoice, size: int) -> tuple[int, int]:
    """The ``[lo, hi)`` neurons of a population of ``size`` that ``choice`` shows."""
    if choice == "all":
        return 0, size
    if choice is None:
        choice = DEFAULT_RASTER_NEURONS
    if isinstance(choice, (tuple, list)) and len(choice) == 2:
        lo, hi = int(choice[0]), int(choice[1])
        if not 0 <= lo < hi:
            raise ValueError(f"neurons {tuple(choice)}: need 0 <= first < stop")
        return min(lo, size), min(hi, size)
    if isinstance(choice, bool) or not isinstance(choice, (int, np.integer)) or choice < 1:
        raise ValueError(f"neurons {choice!r}: give N >= 1 (the first N), (first, stop) or 'all'")
    return 0, min(int(choice), size)


def _draw_run(spike_sets: list, rate_sets: list, state_sets: list, t_end: float, path: PathLike, *, title: str,
              trial: int, neurons: NeuronChoice, bin_ms: float,
              choose: str = "choose with --neurons") -> tuple[Path, dict]:
    """The figure of a run: a raster of ``spike_sets`` (``{"label", "size", "t", "neuron", "trial"}``; the
    chosen neurons of each stacked), population rates (every neuron of each spike set, in bins of ``bin_ms``, and
    each of ``rate_sets``: ``{"label", "t", "rate", "bin_ms"}``) and state traces (``state_sets``: ``{"label",
    "t", "values" [T, n]}``, at most 8 neurons each). Returns the PNG and what each raster row shows."""
    n_panels = (1 if spike_sets else 0) + (1 if spike_sets or rate_sets else 0) + len(state_sets)
    if n_panels == 0:
        raise ValueError("nothing to plot: no spike, rate or state recordings")
    ratios = ([3] if spike_sets else []) + ([1] if spike_sets or rate_sets else []) + [1.2] * len(state_sets)
    fig, axes = plt.subplots(n_panels, 1, figsize=(9, 2.0 + 1.6 * sum(ratios)), sharex=True, squeeze=False,
                             gridspec_kw={"height_ratios": ratios})
    axes = list(axes[:, 0])
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    shown: dict = {}
    subset = []
    if spike_sets:
        ax_r = axes.pop(0)
        offset = 0
        for i, s in enumerate(spike_sets):
            lo, hi = _neuron_range(neurons, s["size"])
            keep = (s["trial"] == trial) & (s["neuron"] >= lo) & (s["neuron"] < hi)
            ax_r.plot(s["t"][keep], s["neuron"][keep] - lo + offset, color=colors[i % len(colors)], marker="|",
                      ms=2, lw=0, ls="none", label=s["label"])
            shown[s["label"]] = {"first": lo, "last": hi - 1, "of": s["size"]}
            if hi - lo < s["size"]:
                subset.append(f"{s['label']} {lo}-{hi - 1} of {s['size']:,}" if hi > lo else
                              f"{s['label']} none of {s['size']:,}")
            offset += hi - lo
        ax_r.set_ylabel("neuron")
        ax_r.legend(loc="upper right", fontsize=8, markerscale=6)
        ax_r.set_ylim(-0.5, max(offset, 1) - 0.5)
    if spike_sets or rate_sets:
        ax_rate = axes.pop(0)
        edges = np.arange(0.0, t_end + bin_ms, bin_ms)
        for i, s in enumerate(spike_sets):
            counts, _ = np.histogram(s["t"][s["trial"] == trial], bins=edges)
            ax_rate.plot(edges[:-1] + bin_ms / 2, counts / (s["size"] * bin_ms / 1000.0),
                         color=colors[i % len(colors)], lw=1, label=s["label"])
        for j, r in enumerate(rate_sets):
            ax_rate.plot(r["t"] + r["bin_ms"] / 2, r["rate"], color=colors[(len(spike_sets) + j) % len(colors)],
                         lw=1, ls="--", label=f"{r['label']} (rate monitor)")
        ax_rate.set_ylabel("rate (Hz)")
        if rate_sets:
            ax_rate.legend(loc="upper right", fontsize=7)
    for st in state_sets:
        ax = axes.pop(0)
        values = st["values"]
        n = values.shape[1] if values.ndim == 2 else 1
        for k in range(min(n, 8)):
            ax.plot(st["t"], values[:, k] if values.ndim == 2 else values, lw=0.8)
        ax.set_ylabel(st["label"], fontsize=8)
        if n > 8:
            ax.text(0.99, 0.95, f"first 8 of {n} recorded neurons", transform=ax.transAxes, ha="right", va="top",
                    fontsize=7)
    fig.axes[-1].set_xlabel("time (ms)")
    fig.axes[0].set_xlim(0, t_end if t_end > 0 else 1)
    full = title + (f" (trial {trial})" if spike_sets else "")
    if subset:
        full += "\nshowing a subset of neurons: " + "; ".join(subset) + f" ({choose})"
    fig.axes[0].set_title(full, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path, shown


def plot_raster(sim, path: PathLike, *, trial: int = 0, max_neurons: int = DEFAULT_RASTER_NEURONS,
                bin_ms: float = 5.0, neurons: NeuronChoice = None) -> Path:
    """Spike raster of every spike-monitored population (trial ``trial``) and their population rates.

    ``neurons``: which neurons of each population the raster draws (``N``: the first N; ``(A, B)``: A to B-1;
    ``"all"``); default the first ``max_neurons``. The title says when that is a subset. The rate panel uses
    all neurons, in bins of ``bin_ms``.
    """
    from .monitors import SpikeMonitor

    sets = []
    for m in sim.monitors:
        if isinstance(m, SpikeMonitor):
            data = m.data(sim.dt)
            sets.append({"label": m.target, "size": m.size, "t": data["t"], "neuron": data["neuron"],
                         "trial": data["trial"]})
    path, _ = _draw_run(sets, [], [], sim.t, path, title=f"{sim.assembly.name or 'assembly'}: spikes", trial=trial,
                        neurons=max_neurons if neurons is None else neurons, bin_ms=bin_ms,
                        choose="others: braincore plot run RUN.npz --neurons A:B")
    return path


# ------------------------------------------------------------------------------------------ saved runs
def load_run(npz: PathLike) -> dict:
    """The recordings of a ``braincore run`` ``.npz`` (:meth:`braincore.simulator.Simulator.save_npz`: keys
    ``<monitor>/<field>``), by kind: ``{"spikes": {monitor: {t, step, trial, neuron, counts}}, "rates":
    {monitor: {t, rate_hz, bin_ms}}, "states": {monitor: {variable: [T, B, n], "t": ...}}, "t_end", "trials"}``.
    A file that is not such an npz raises ValueError saying so."""
    npz = Path(npz)
    if not npz.is_file():
        raise FileNotFoundError(f"{npz}: no such file")
    try:
        with np.load(npz, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (ValueError, OSError, EOFError) as err:
        raise ValueError(f"{npz}: not a .npz file written by braincore run ({err})") from None
    except Exception as err:  # zipfile.BadZipFile and friends: a damaged or foreign file
        raise ValueError(f"{npz}: not a readable .npz file ({type(err).__name__}: {err})") from None
    monitors: dict = {}
    for key, value in arrays.items():
        if "/" not in key:
            raise ValueError(f"{npz}: not a braincore run recording (key {key!r} is not <monitor>/<field>)")
        name, field = key.rsplit("/", 1)
        monitors.setdefault(name, {})[field] = value
    out: dict = {"spikes": {}, "rates": {}, "states": {}}
    ends, trials = [0.0], 1
    for name, fields in monitors.items():
        if {"neuron", "trial", "t"} <= set(fields):
            out["spikes"][name] = fields
            step, t = fields.get("step"), fields["t"]
            if len(t):
                dt = float(t[step > 0][0] / step[step > 0][0]) if step is not None and (step > 0).any() else 0.0
                ends.append(float(t.max()) + dt)
            if fields.get("counts") is not None and np.ndim(fields["counts"]) == 2:
                trials = max(trials, int(fields["counts"].shape[0]))
        elif "rate_hz" in fields:
            out["rates"][name] = fields
            bin_ms = float(fields.get("bin_ms", 0.0))
            if len(fields["t"]):
                ends.append(float(fields["t"][-1]) + bin_ms)
            if np.ndim(fields["rate_hz"]) == 2:
                trials = max(trials, int(fields["rate_hz"].shape[1]))
        elif "t" in fields and any(np.ndim(v) == 3 for k, v in fields.items() if k != "t"):
            out["states"][name] = fields
            if len(fields["t"]):
                ends.append(float(fields["t"][-1]))
            trials = max(trials, max(int(v.shape[1]) for k, v in fields.items() if k != "t" and np.ndim(v) == 3))
    if not (out["spikes"] or out["rates"] or out["states"]):
        raise ValueError(f"{npz}: no spike, rate or state recordings in it (keys: {', '.join(arrays) or 'none'})")
    out["t_end"], out["trials"] = round(max(ends), 9), trials  # whole steps, not 1000.0000000000001
    return out


def plot_run(npz: PathLike, path: PathLike, *, trial: int = 0, neurons: NeuronChoice = None,
             bin_ms: float = 5.0, title: Optional[str] = None) -> tuple[Path, dict]:
    """Plot a saved run again from its ``.npz`` (:func:`load_run`): raster of every spike monitor (``neurons``
    as in :func:`plot_raster`; the title says when a subset is shown), population rates (spike and rate
    monitors), and state traces of the first recorded neurons. Returns the PNG path and a summary."""
    run = load_run(npz)
    if not 0 <= trial < run["trials"]:
        raise ValueError(f"--trial {trial}: the run has {run['trials']} trial(s), 0..{run['trials'] - 1}")
    if not bin_ms > 0:
        raise ValueError(f"--bin must be > 0 ms, got {bin_ms:g}")
    spike_sets = []
    for name, f in run["spikes"].items():
        counts = f.get("counts")
        size = int(counts.shape[1]) if counts is not None and np.ndim(counts) == 2 else \
            (int(f["neuron"].max()) + 1 if len(f["neuron"]) else 1)
        spike_sets.append({"label": name, "size": size, "t": f["t"], "neuron": f["neuron"], "trial": f["trial"]})
    rate_sets = [{"label": name, "t": f["t"], "bin_ms": float(f.get("bin_ms", 0.0)),
                  "rate": f["rate_hz"][:, trial] if np.ndim(f["rate_hz"]) == 2 else f["rate_hz"]}
                 for name, f in run["rates"].items() if len(f["t"])]
    state_sets = []
    for name, f in run["states"].items():
        for var, values in f.items():
            if var != "t" and np.ndim(values) == 3 and values.shape[0]:
                state_sets.append({"label": f"{name}: {var}", "t": f["t"], "values": values[:, trial, :]})
    png, shown = _draw_run(spike_sets, rate_sets, state_sets, run["t_end"], path,
                           title=title or Path(npz).stem, trial=trial, neurons=neurons, bin_ms=bin_ms)
    summary = {"npz": str(npz), "png": str(png), "trial": trial, "trials": run["trials"],
               "t_end_ms": run["t_end"], "raster": shown,
               "spikes": {name: int(((f["trial"] == trial)).sum()) for name, f in run["spikes"].items()},
               "rate_monitors": list(run["rates"]), "state_monitors": list(run["states"])}
    return png, summary


# ------------------------------------------------------------------------------------------ assemblies
#: above this many projections the arrows carry no labels (``braincore graph`` prints the counts)
MAX_EDGE_LABELS = 40
_SIGN_COLOURS = {"excitatory": "#c0392b", "inhibitory": "#2471a3", None: "#7f8c8d"}


def _channel_grid(members: list) -> Optional[dict]:
    """Offsets for a region whose populations are channel-structured (``d1_0, d1_1, gpi_0, ...``): one column per
    kind, one row per channel, the others (``inh``) in a last column; ``None`` when fewer than two kinds have
    two or more channels."""
    import re

    kinds: dict = {}
    rest = []
    for name in members:
        match = re.match(r"^(.*\.)?(.+?)_(\d+)$", name)
        if match:
            kinds.setdefault(match.group(2), {})[int(match.group(3))] = name
        else:
            rest.append(name)
    if sum(1 for rows in kinds.values() if len(rows) >= 2) < 2:
        return None
    columns = [sorted(rows.items()) for rows in kinds.values()] + ([list(enumerate(rest))] if rest else [])
    n_rows = max(len(col) for col in columns)
    dx, dy = 1.0, 0.9
    out = {}
    for j, col in enumerate(columns):
        for i, (_, name) in enumerate(col):
            out[name] = ((j - (len(columns) - 1) / 2) * dx, ((n_rows - 1) / 2 - i) * dy)
    return out


def _assembly_layout(groups: dict) -> dict:
    """Positions: each region's populations on a small circle (or, channel-structured, on a grid of kinds x
    channels) around the region's place on a large circle."""
    import math

    pos = {}
    n = len(groups)
    grids = {g: _channel_grid(members) if len(members) >= 6 else None for g, members in groups.items()}
    big = 0.0 if n == 1 else 2.2 + 0.35 * n
    extent = max((math.hypot(x, y) for grid in grids.values() if grid for x, y in grid.values()), default=0.0)
    if n > 1 and extent:  # grids must not overlap their neighbours on the large circle
        big = max(big, (extent + 0.9) / math.sin(math.pi / n))
    for g, members in enumerate(groups.values()):
        angle = math.pi / 2 - 2 * math.pi * g / max(n, 1)
        cx, cy = big * math.cos(angle), big * math.sin(angle)
        grid = grids[list(groups)[g]]
        if grid is not None:
            for name, (x, y) in grid.items():
                pos[name] = (cx + x, cy + y)
            continue
        m = len(members)
        small = 0.0 if m == 1 else 0.75 + 0.12 * m
        for i, name in enumerate(members):
            a = angle + math.pi - 2 * math.pi * i / max(m, 1) + (math.pi / m if m > 1 else 0.0)
            pos[name] = (cx + small * math.cos(a), cy + small * math.sin(a))
    return pos


def _edge_label(summary_row: dict) -> str:
    count = summary_row.get("expected_synapses")
    text = summary_row.get("connector") or "?"
    text = {"fixed_probability": "p", "fixed_indegree": "k_in", "fixed_outdegree": "k_out", "all_to_all": "all",
            "one_to_one": "1:1", "fixed_total": "n", "explicit": "explicit"}.get(text, text)
    if count is not None:
        text += f" {count:,.0f}" if count >= 1 else f" {count:.2g}"
    return text


def plot_assembly_graph(assembly, path: PathLike, *, title: Optional[str] = None) -> Path:
    """Draw an :class:`~braincore.graph.Assembly`: populations grouped and coloured by region (node area grows
    with the population size), one arrow per projection, red for excitatory, blue for inhibitory, grey when
    the sign is unknown, labelled with the connector and the expected synapse count."""
    import math

    from matplotlib.patches import Circle, FancyArrowPatch
    from matplotlib.lines import Line2D

    from .graph import projection_sign

    pops = assembly.populations()
    groups: dict = {}
    for p in pops:
        groups.setdefault(p.region or "(top level)", []).append(p.name)
    pos = _assembly_layout(groups)
    cmap = plt.get_cmap("tab10" if len(groups) <= 10 else "tab20")
    colour = {g: cmap(i % cmap.N) for i, g in enumerate(groups)}
    fig, ax = plt.subplots(figsize=(9, 8))
    ax.set_aspect("equal")
    ax.axis("off")
    # region halos
    for g, members in groups.items():
        if g == "(top level)" and len(groups) == 1:
            continue
        xs = [pos[m][0] for m in members]
        ys = [pos[m][1] for m in members]
        cx, cy = sum(xs) / len(xs), sum(ys) / len(ys)
        radius = max(math.hypot(x - cx, y - cy) for x, y in zip(xs, ys)) + 0.55
        ax.add_patch(Circle((cx, cy), radius, color=colour[g], alpha=0.08, lw=0))
        ax.text(cx, cy + radius - 0.12, g, ha="center", va="top", fontsize=10, color=colour[g],
                fontweight="bold")
    sizes = {p.name: p.size if isinstance(p.size, int) and p.size > 0 else 1 for p in pops}
    radius_of = {name: 0.12 + 0.05 * math.log10(max(s, 1)) for name, s in sizes.items()}
    xs = [xy[0] for xy in pos.values()] or [0.0]
    ys = [xy[1] for xy in pos.values()] or [0.0]
    margin = 1.6
    ax.set_xlim(min(xs) - margin, max(xs) + margin)
    ax.set_ylim(min(ys) - margin, max(ys) + margin)
    box = ax.get_position()
    width_pt, height_pt = box.width * fig.get_figwidth() * 72, box.height * fig.get_figheight() * 72
    points_per_unit = min(width_pt / (max(xs) - min(xs) + 2 * margin), height_pt / (max(ys) - min(ys) + 2 * margin))
    rows = {row["name"]: row for row in assembly.summary()["projections"]}
    parallel: dict = {}
    placed: list = []
    for spec in assembly.projections():
        if spec.pre not in pos or spec.post not in pos:
            continue
        key = tuple(sorted((spec.pre, spec.post)))
        index = parallel.get(key, 0)
        parallel[key] = index + 1
        sign = projection_sign(spec)
        edge_colour = _SIGN_COLOURS.get(sign, _SIGN_COLOURS[None])
        label = _edge_label(rows.get(spec.name, {})) if len(rows) <= MAX_EDGE_LABELS else ""
        (x1, y1), (x2, y2) = pos[spec.pre], pos[spec.post]
        if spec.pre == spec.post:
            # a self-loop: a small circle outside the node, away from the layout centre
            norm = math.hypot(x1, y1) or 1.0
            ux, uy = (x1 / norm, y1 / norm) if (x1, y1) != (0.0, 0.0) else (0.0, 1.0)
            r0 = radius_of[spec.pre]
            lr = 0.16 + 0.07 * index
            cx, cy = x1 + ux * (r0 + lr * 0.8), y1 + uy * (r0 + lr * 0.8)
            ax.add_patch(Circle((cx, cy), lr, fill=False, ec=edge_colour, lw=1.2, zorder=1))
            if label:
                ax.text(cx + ux * (lr + 0.05), cy + uy * (lr + 0.05), label, fontsize=6.5, color=edge_colour,
                        ha="center", va="center", zorder=4)
            continue
        rad = 0.12 + 0.1 * index
        arrow = FancyArrowPatch((x1, y1), (x2, y2), connectionstyle=f"arc3,rad={rad}", arrowstyle="-|>",
                                mutation_scale=12, lw=1.2, color=edge_colour, zorder=1,
                                shrinkA=2 + points_per_unit * radius_of[spec.pre],
                                shrinkB=2 + points_per_unit * radius_of[spec.post])
        ax.add_patch(arrow)
        # matplotlib's arc3 is the quadratic Bezier with control point mid + rad * (dy, -dx); the label goes at
        # its middle, or further along where another label already sits
        dx, dy = x2 - x1, y2 - y1
        cx, cy = (x1 + x2) / 2 + rad * dy, (y1 + y2) / 2 - rad * dx
        for t in (0.5, 0.35, 0.65, 0.25, 0.75):
            lx = (1 - t) ** 2 * x1 + 2 * (1 - t) * t * cx + t ** 2 * x2
            ly = (1 - t) ** 2 * y1 + 2 * (1 - t) * t * cy + t ** 2 * y2
            if all(math.hypot(lx - ox, ly - oy) > 0.3 for ox, oy in placed):
                break
        placed.append((lx, ly))
        if label:
            ax.text(lx, ly, label, fontsize=6.5, color=edge_colour, ha="center", va="center", zorder=4,
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8})
    for p in pops:
        g = p.region or "(top level)"
        x, y = pos[p.name]
        ax.add_patch(Circle((x, y), radius_of[p.name], color=colour[g], zorder=3))
        short = p.name[len(p.region) + 1:] if p.region and p.name.startswith(p.region + ".") else p.name
        model = p.model if isinstance(p.model, str) else (p.model or {}).get("name", "user model")
        ax.text(x, y, f"{short}\n{model} {p.size}", ha="center", va="center", fontsize=7, zorder=5,
                color="black", bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.6})
    handles = [Line2D([], [], color=c, lw=2, label=s or "sign unknown") for s, c in _SIGN_COLOURS.items()]
    ax.legend(handles=handles, loc="lower right", fontsize=8, frameon=False)
    summary = assembly.summary()
    synapses = f"{summary['synapses']:,.0f}" + ("" if summary["synapses_complete"] else "+")
    ax.set_title(title or f"{assembly.name}: {summary['n_populations']} populations, {summary['neurons']:,} "
                          f"neurons, {summary['n_projections']} projections, ~{synapses} synapses", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)
