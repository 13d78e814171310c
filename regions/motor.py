"""Motor cortex: one population per action channel that reads out the selected action.

Region type ``motor``, and the readout helpers :func:`channel_rates` and :func:`selected_channel`.

**Anatomy.** ``channels`` excitatory populations ``m_c`` (premotor/motor cortex assemblies, one per action,
driven by the motor thalamus through the ports ``in_c``) and a shared inhibitory pool ``inh`` that every ``m_c``
excites and that inhibits every ``m_c``: a soft winner-take-all (Amari 1977; Wang 2002), so the action whose
thalamic channel is disinhibited wins and the others are held down. Without thalamic input the populations are
below threshold (``eta`` < 1) and nearly silent.

**Equations.** The LIF of :mod:`regions.cortex` (theta = 20 mV above rest) with ``tau_m``; voltage-jump synapses
after ``delay``; tonic background of ``background_sources`` Poisson trains (jumps ``background_J``) with a mean
depolarisation ``eta * theta``. ``m_c -> inh`` and ``inh -> m_c`` have in-degrees ``k``, jumps ``w_exc_inh`` and
``w_inh_exc`` (mV), ``m_c -> m_c`` recurrent excitation ``w_recurrent``.

**Readout.** :func:`selected_channel` returns the channel whose ``m_c`` fired most in a time window (from the
region's spike monitors), or ``None`` when no channel reaches ``min_rate``.

**Ports** (per channel c): ``in_c`` and ``out_c`` (``m_c``), and ``inh``.

**Parameters** (units allowed): ``channels`` (3), ``n`` (20 per channel), ``n_inh`` (10 per channel), ``tau_m``
(20 ms), ``eta`` (0.8), ``w_recurrent`` (0.2 mV), ``w_exc_inh`` (0.4 mV), ``w_inh_exc`` (0.6 mV), ``k`` (10),
``delay`` (1.5 ms), ``background_sources`` (100), ``background_J`` (0.5 mV), ``monitors`` (true; the readout
needs them).

References: Alexander, DeLong & Strick 1986, Annu Rev Neurosci 9:357 (the motor cortico-basal ganglia-thalamo-
cortical loop); Cisek & Kalaska 2010, Annu Rev Neurosci 33:269 (competing action representations in premotor
cortex); Wang 2002, Neuron 36:955 (winner-take-all by shared inhibition).
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from braincore.graph import Assembly
from braincore.region_types import register_region

from ._params import INIT_V, THETA, Checker, drive, lif, project, rate_for


def motor(channels: int = 3, n: int = 20, n_inh: int = 10, tau_m: Any = "20 ms", eta: float = 0.8,
          w_recurrent: Any = "0.2 mV", w_exc_inh: Any = "0.4 mV", w_inh_exc: Any = "0.6 mV", k: int = 10,
          delay: Any = "1.5 ms", background_sources: int = 100, background_J: Any = "0.5 mV",
          monitors: bool = True) -> Assembly:
    """Action populations ``m_c`` with a shared inhibitory pool (soft winner-take-all); see the module
    docstring (anatomy, equations, readout, ports, parameters, references)."""
    check = Checker("motor")
    channels = check.integer("channels", channels, 1)
    n = check.integer("n", n, 1)
    n_inh = check.integer("n_inh", n_inh, 1)
    tau = check.quantity("tau_m", tau_m, "time", positive=True)
    eta = check.quantity("eta", eta, "dimensionless", minimum=0.0)
    w_rec = check.quantity("w_recurrent", w_recurrent, "voltage", minimum=0.0, maximum=THETA)
    w_ei = check.quantity("w_exc_inh", w_exc_inh, "voltage", minimum=0.0, maximum=THETA)
    w_ie = check.quantity("w_inh_exc", w_inh_exc, "voltage", minimum=0.0, maximum=THETA)
    k = check.integer("k", k, 1)
    delay = check.quantity("delay", delay, "time", positive=True)
    sources = check.integer("background_sources", background_sources, 1)
    bg_J = check.quantity("background_J", background_J, "voltage", positive=True, maximum=THETA)
    monitors = check.flag("monitors", monitors)
    check.done()

    a = Assembly(name="motor")
    rate = rate_for(eta * THETA, bg_J, sources, tau)
    a.add_population("inh", "lif", n_inh * channels, lif(tau), init=INIT_V)
    for c in range(channels):
        m = f"m_{c}"
        a.add_population(m, "lif", n, lif(tau), init=INIT_V)
        drive(a, f"background_{c}", m, rate, bg_J, sources)
        project(a, m, m, k, w_rec, delay, f"recurrent_{c}", "excitatory")
        project(a, m, "inh", k, w_ei, delay, f"m_inh_{c}", "excitatory")
        project(a, "inh", m, k, w_ie, delay, f"inh_m_{c}", "inhibitory")
        a.add_port(f"in_{c}", m)
        a.add_port(f"out_{c}", m)
    drive(a, "background_inh", "inh", rate, bg_J, sources)
    a.add_port("inh", "inh")
    if monitors:
        for c in range(channels):
            a.add_monitor(f"spikes_{c}", "spikes", f"m_{c}")
        a.add_monitor("spikes_inh", "spikes", "inh")
    return a


def channel_rates(sim, prefix: str, populations: str = "m_{c}", t_start: float = 0.0,
                  t_stop: Optional[float] = None, trial: int = 0) -> list[float]:
    """Mean rate (Hz) of each channel's population in ``[t_start, t_stop)`` ms, read from the spike monitors of
    ``sim`` that target ``<prefix>.<populations with c = 0, 1, ...>`` (e.g. ``populations="gpi_{c}"`` for the
    basal ganglia's output). Channels are counted from 0 until a population is missing."""
    t_stop = sim.t if t_stop is None else float(t_stop)
    by_target = {m.target: m for m in sim.assembly.monitors if m.type == "spikes"}
    rates = []
    c = 0
    while True:
        target = f"{prefix}.{populations.format(c=c)}" if prefix else populations.format(c=c)
        if target not in sim.populations:
            break
        if target not in by_target:
            raise KeyError(f"no spike monitor on {target!r} (build the region with monitors: true)")
        data = sim.monitor(by_target[target].name)
        t, tr = np.asarray(data["t"]), np.asarray(data["trial"])
        count = int(((t >= t_start) & (t < t_stop) & (tr == trial)).sum())
        size = sim.populations[target].model.size
        rates.append(count / (size * max(t_stop - t_start, 1e-9) / 1000.0))
        c += 1
    if not rates:
        raise KeyError(f"no population {prefix}.{populations.format(c=0)}")
    return rates


def selected_channel(sim, prefix: str = "motor", t_start: float = 0.0, t_stop: Optional[float] = None,
                     min_rate: float = 1.0, trial: int = 0) -> Optional[int]:
    """The action channel whose motor population ``<prefix>.m_c`` fired most in ``[t_start, t_stop)`` ms, or
    ``None`` when none fired at ``min_rate`` Hz or more (no action selected)."""
    rates = channel_rates(sim, prefix, "m_{c}", t_start, t_stop, trial)
    best = int(np.argmax(rates))
    return best if rates[best] >= min_rate else None


register_region("motor", motor, "motor cortex: one population per action channel with shared inhibition (soft "
                                "winner-take-all); selected_channel() reads out the winner")

__all__ = ["motor", "channel_rates", "selected_channel"]
