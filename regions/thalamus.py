"""Thalamus: relay nuclei whose transmission to cortex is gated by inhibition (basal ganglia output and TRN).

Region type ``thalamus``.

**Anatomy** (per channel ``c``): a thalamocortical relay population ``relay_c`` (e.g. the motor thalamus VA/VL,
or the mediodorsal nucleus for prefrontal loops) and a population of the thalamic reticular nucleus ``trn_c``
(GABAergic shell around the relay nuclei)::

    driver input (cortex layer 5/6, sensory) ──> relay_c ──> cortex_c, motor_c        (ports in_c, out_c)
    GPi/SNr_c ──┤ relay_c                                      basal ganglia gate      (port gate_c)
    relay_c ──> trn_c ──┤ relay_c (focused), relay_d (d != c, lateral, weaker)

The relay cells are tonically depolarised (``eta_relay`` >= 1: they fire when nothing inhibits them); the GPi/SNr
output of the basal ganglia holds them silent, so a channel is transmitted only when the basal ganglia
disinhibit it (Chevalier & Deniau 1990). The TRN adds focused recurrent inhibition, which limits the relay rate,
and lateral inhibition between channels, which sharpens the competition (Crick 1984; Pinault 2004).

**Equations.** The LIF of :mod:`regions.cortex` (theta = 20 mV above rest, t_ref = 2 ms) with ``tau_relay`` and
``tau_trn``; voltage-jump synapses after ``delay``; each population's tonic background is ``background_sources``
Poisson trains of jumps ``background_J`` with a mean depolarisation ``eta * theta``.

**Ports** (per channel c): ``in_c`` (relay: driving input), ``gate_c`` (relay: connect the basal ganglia output
``bg.out_c`` here with ``sign: inhibitory``), ``out_c`` (relay: to cortex and motor), ``trn_in_c`` (TRN: for
corticothalamic input to the reticular nucleus).

**Parameters** (units allowed): ``channels`` (3), ``n_relay`` (20 per channel), ``n_trn`` (10 per channel),
``tau_relay`` (20 ms), ``tau_trn`` (15 ms), ``eta_relay`` (1.1), ``eta_trn`` (0.8), ``w_relay_trn`` (0.6 mV),
``w_trn_relay`` (0.4 mV), ``w_trn_lateral`` (0.2 mV), ``k`` (10, in-degree per projection), ``delay`` (2 ms),
``background_sources`` (100), ``background_J`` (0.5 mV), ``monitors`` (true).

References: Sherman & Guillery 2006, Exploring the Thalamus and its Role in Cortical Function (drivers and
modulators, relay); Chevalier & Deniau 1990, Trends Neurosci 13:277 (disinhibition: basal ganglia output
gates thalamic transmission); Crick 1984, PNAS 81:4586 and Pinault 2004, Brain Res Rev 46:1 (the reticular
nucleus as an attentional gate); Humphries & Gurney 2002, Neural Netw 15:1347 (thalamocortical loops in the
Gurney et al. basal ganglia model).
"""
from __future__ import annotations

from typing import Any

from braincore.graph import Assembly
from braincore.region_types import register_region

from ._params import INIT_V, THETA, Checker, drive, lif, project, rate_for


def thalamus(channels: int = 3, n_relay: int = 20, n_trn: int = 10, tau_relay: Any = "20 ms",
             tau_trn: Any = "15 ms", eta_relay: float = 1.1, eta_trn: float = 0.8, w_relay_trn: Any = "0.6 mV",
             w_trn_relay: Any = "0.4 mV", w_trn_lateral: Any = "0.2 mV", k: int = 10, delay: Any = "2 ms",
             background_sources: int = 100, background_J: Any = "0.5 mV", monitors: bool = True) -> Assembly:
    """Relay and reticular (TRN) populations per channel; relay transmission gated by inhibition (see the module
    docstring: anatomy, equations, ports, parameters, references)."""
    check = Checker("thalamus")
    channels = check.integer("channels", channels, 1)
    n_relay = check.integer("n_relay", n_relay, 1)
    n_trn = check.integer("n_trn", n_trn, 1)
    tau_r = check.quantity("tau_relay", tau_relay, "time", positive=True)
    tau_t = check.quantity("tau_trn", tau_trn, "time", positive=True)
    eta_r = check.quantity("eta_relay", eta_relay, "dimensionless", minimum=0.0)
    eta_t = check.quantity("eta_trn", eta_trn, "dimensionless", minimum=0.0)
    w_rt = check.quantity("w_relay_trn", w_relay_trn, "voltage", minimum=0.0, maximum=THETA)
    w_tr = check.quantity("w_trn_relay", w_trn_relay, "voltage", minimum=0.0, maximum=THETA)
    w_lat = check.quantity("w_trn_lateral", w_trn_lateral, "voltage", minimum=0.0, maximum=THETA)
    k = check.integer("k", k, 1)
    delay = check.quantity("delay", delay, "time", positive=True)
    sources = check.integer("background_sources", background_sources, 1)
    bg_J = check.quantity("background_J", background_J, "voltage", positive=True, maximum=THETA)
    monitors = check.flag("monitors", monitors)
    check.done()

    a = Assembly(name="thalamus")
    for c in range(channels):
        a.add_population(f"relay_{c}", "lif", n_relay, lif(tau_r), init=INIT_V)
        a.add_population(f"trn_{c}", "lif", n_trn, lif(tau_t), init=INIT_V)
        drive(a, f"background_relay_{c}", f"relay_{c}", rate_for(eta_r * THETA, bg_J, sources, tau_r), bg_J, sources)
        drive(a, f"background_trn_{c}", f"trn_{c}", rate_for(eta_t * THETA, bg_J, sources, tau_t), bg_J, sources)
    for c in range(channels):
        project(a, f"relay_{c}", f"trn_{c}", k, w_rt, delay, f"relay_trn_{c}", "excitatory")
        project(a, f"trn_{c}", f"relay_{c}", k, w_tr, delay, f"trn_relay_{c}", "inhibitory")
        for d in range(channels):
            if d != c:
                project(a, f"trn_{c}", f"relay_{d}", k, w_lat, delay, f"trn_{c}_relay_{d}", "inhibitory")
        a.add_port(f"in_{c}", f"relay_{c}")
        a.add_port(f"gate_{c}", f"relay_{c}")
        a.add_port(f"out_{c}", f"relay_{c}")
        a.add_port(f"trn_in_{c}", f"trn_{c}")
    if monitors:
        for c in range(channels):
            a.add_monitor(f"spikes_relay_{c}", "spikes", f"relay_{c}")
        for c in range(channels):
            a.add_monitor(f"spikes_trn_{c}", "spikes", f"trn_{c}")
    return a


register_region("thalamus", thalamus, "thalamic relay and reticular (TRN) populations per channel; relay "
                                      "transmission gated by inhibition (basal ganglia output, TRN)")

__all__ = ["thalamus"]
