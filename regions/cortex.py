"""Cortex: a column of excitatory and inhibitory LIF populations in the balanced (inhibition-dominated) regime.

Region types ``cortex`` (any ``variant``), ``sensory_cortex`` and ``association_cortex`` (the variants' defaults).

**Anatomy.** One column with ``channels`` excitatory sub-populations ``exc_0 .. exc_{N-1}`` (pyramidal cells of
N minicolumns, or N stimulus-selective assemblies: one per action channel of a cortico-basal ganglia loop) and
one shared pool of inhibitory interneurons ``inh`` (``channels * n_inh`` cells, basket cells that pool over the
column). Each ``exc_c`` excites itself (recurrent excitation within the minicolumn) and the shared pool, which
inhibits every ``exc_c`` and itself, so that the minicolumns compete through shared inhibition.

**Equations** (current-based LIF, voltage-jump synapses; Brunel 2000, model A)::

    tau_m dV/dt = -(V - V_rest) + tau_m sum_j J_j sum_k delta(t - t_j^k - D)
    V >= V_th: spike, V <- V_reset for t_ref

with V_rest = -70 mV, V_th = -50 mV (theta = 20 mV), V_reset = -60 mV, t_ref = 2 ms, D = ``delay``. In-degrees are
fixed: ``C_E = epsilon * n_exc`` excitatory inputs from the own minicolumn (jumps ``J * recurrent_gain``) and
``C_I = epsilon * channels * n_inh`` inhibitory inputs from the pool (jumps ``-g J``); the pool receives
``C_E`` excitatory inputs from each minicolumn and ``C_I`` from itself. With ``g > C_E / C_I`` inhibition
dominates and the network settles in Brunel's asynchronous-irregular state. Every cell also receives
``background_sources`` Poisson trains (jumps ``J``) at ``eta * nu_thr``, where
``nu_thr = theta / (J * background_sources * tau_m)`` is the rate that brings the mean input to threshold:
``eta < 1`` is fluctuation-driven, low-rate firing.

**Variants.** ``sensory`` (primary sensory cortex, layer 4-like: a fast membrane, tau_m = 10 ms, weak recurrence,
``recurrent_gain = 1``, ``eta = 0.9``: it follows its feed-forward input) and ``association`` (prefrontal-like
integrating cortex: tau_m = 20 ms, ``recurrent_gain = 1.5``, ``eta = 0.8``: stronger recurrent excitation within a
minicolumn, which amplifies and prolongs its input; Wang 2002, Murray et al. 2014). Parameters given explicitly
override the variant's.

**Ports.** ``in_c`` and ``out_c`` (``exc_c``) per channel, ``inh`` (the pool; for feed-forward inhibition), and
with one channel also ``in`` and ``out``.

**Parameters** (units allowed, bare numbers are ms, mV, Hz): ``channels`` (1), ``n_exc`` (80 per channel),
``n_inh`` (20 per channel), ``variant`` (``sensory``), ``epsilon`` (0.2, connection fraction), ``J`` (0.4 mV),
``g`` (5, relative inhibition), ``eta`` (variant), ``tau_m`` (variant), ``recurrent_gain`` (variant), ``delay``
(1.5 ms), ``background_sources`` (100), ``monitors`` (true: a spike monitor per population).

References: Brunel 2000, J Comput Neurosci 8:183 (balanced LIF networks); van Vreeswijk & Sompolinsky 1996,
Science 274:1724 (balanced state); Douglas & Martin 2004, Annu Rev Neurosci 27:419 (canonical microcircuit);
Wang 2002, Neuron 36:955 and Murray et al. 2014, Nat Neurosci 17:1661 (recurrent excitation and the time scales
of association cortex).
"""
from __future__ import annotations

from functools import partial
from typing import Any, Optional

from braincore.graph import Assembly
from braincore.region_types import register_region

from ._params import INIT_V, THETA, Checker, drive, lif, project

VARIANTS = {
    "sensory": {"tau_m": 10.0, "recurrent_gain": 1.0, "eta": 0.9},
    "association": {"tau_m": 20.0, "recurrent_gain": 1.5, "eta": 0.8},
}


def cortex(channels: int = 1, n_exc: int = 80, n_inh: int = 20, variant: str = "sensory", epsilon: float = 0.2,
           J: Any = "0.4 mV", g: float = 5.0, eta: Optional[float] = None, tau_m: Any = None,
           recurrent_gain: Optional[float] = None, delay: Any = "1.5 ms", background_sources: int = 100,
           monitors: bool = True) -> Assembly:
    """A balanced E/I cortical column with ``channels`` excitatory minicolumns and a shared inhibitory pool
    (see the module docstring: anatomy, equations, variants, ports, references)."""
    check = Checker("cortex")
    channels = check.integer("channels", channels, 1)
    n_exc = check.integer("n_exc", n_exc, 2)
    n_inh = check.integer("n_inh", n_inh, 1)
    variant = check.choice("variant", variant, tuple(VARIANTS))
    defaults = VARIANTS[variant]
    epsilon = check.quantity("epsilon", epsilon, "dimensionless", positive=True, maximum=1.0)
    J = check.quantity("J", J, "voltage", positive=True, maximum=THETA)
    g = check.quantity("g", g, "dimensionless", minimum=0.0)
    eta = check.quantity("eta", defaults["eta"] if eta is None else eta, "dimensionless", minimum=0.0)
    tau = check.quantity("tau_m", defaults["tau_m"] if tau_m is None else tau_m, "time", positive=True)
    gain = check.quantity("recurrent_gain", defaults["recurrent_gain"] if recurrent_gain is None else recurrent_gain,
                          "dimensionless", minimum=0.0)
    delay = check.quantity("delay", delay, "time", positive=True)
    sources = check.integer("background_sources", background_sources, 1)
    monitors = check.flag("monitors", monitors)
    check.done()

    a = Assembly(name=f"{variant}_cortex")
    cell = lif(tau)
    c_e = max(1, round(epsilon * n_exc))
    c_i = max(1, round(epsilon * n_inh * channels))
    nu_thr = THETA / (J * sources * tau) * 1000.0  # Hz per source
    a.add_population("inh", "lif", n_inh * channels, cell, init=INIT_V)
    for c in range(channels):
        exc = f"exc_{c}"
        a.add_population(exc, "lif", n_exc, cell, init=INIT_V)
        project(a, exc, exc, c_e, J * gain, delay, f"ee_{c}", "excitatory")
        project(a, exc, "inh", c_e, J, delay, f"ei_{c}", "excitatory")
        project(a, "inh", exc, c_i, g * J, delay, f"ie_{c}", "inhibitory")
        drive(a, f"background_{c}", exc, eta * nu_thr, J, sources)
        a.add_port(f"in_{c}", exc)
        a.add_port(f"out_{c}", exc)
    project(a, "inh", "inh", c_i, g * J, delay, "ii", "inhibitory")
    drive(a, "background_inh", "inh", eta * nu_thr, J, sources)
    a.add_port("inh", "inh")
    if channels == 1:
        a.add_port("in", "exc_0")
        a.add_port("out", "exc_0")
    if monitors:
        for c in range(channels):
            a.add_monitor(f"spikes_exc_{c}", "spikes", f"exc_{c}")
        a.add_monitor("spikes_inh", "spikes", "inh")
    return a


#: the variants as types of their own (same parameters; only the default ``variant`` differs)
sensory_cortex = partial(cortex, variant="sensory")
association_cortex = partial(cortex, variant="association")

register_region("cortex", cortex, "cortical column: balanced E/I LIF minicolumns (one per channel) with a shared "
                                  "inhibitory pool; variant sensory or association")
register_region("sensory_cortex", sensory_cortex, "cortex with the sensory variant's defaults (tau_m 10 ms, weak "
                                                  "recurrence)")
register_region("association_cortex", association_cortex, "cortex with the association variant's defaults (tau_m "
                                                          "20 ms, recurrent gain 1.5)")

__all__ = ["cortex", "sensory_cortex", "association_cortex", "VARIANTS"]
