"""Basal ganglia: action selection among N channels through the direct, indirect and hyperdirect pathways.

Region type ``basal_ganglia``: a spiking LIF version of the Gurney, Prescott & Redgrave (2001) functional
architecture, in the form of Humphries, Stewart & Gurney (2006) (per-channel populations of each nucleus,
focused channel-to-channel projections from striatum and GPe, diffuse projections from the STN).

**Anatomy** (per action channel ``c = 0 .. channels-1``; populations named ``<nucleus>_<c>``)::

    cortex_c ──> d1_c ──┤ gpi_c                 direct pathway: D1 striatal projection neurons inhibit GPi/SNr
    cortex_c ──> d2_c ──┤ gpe_c ──┤ gpi_c      indirect pathway: D2 neurons inhibit GPe, which inhibits GPi/SNr
                          gpe_c ──┤ stn_c       (and the STN)
    cortex_c ──> stn_c ──> gpi_d, gpe_d (all d)  hyperdirect pathway: the STN excites GPi/SNr and GPe diffusely
    gpi_c ──┤ thalamus_c                         output: tonic inhibition of the thalamus (outside this region)

``d1_c``/``d2_c`` are the striatal medium spiny neurons (MSNs) with D1 and D2 receptors, ``stn`` the subthalamic
nucleus, ``gpe`` the external globus pallidus, ``gpi`` the output nuclei GPi/SNr. Selection works as in Gurney
et al. 2001: striatal MSNs are silent at rest (down state) and fire only when their cortical input is strong,
so the *most salient* channel activates its D1 MSNs, which silence its GPi/SNr population (focused, off-centre)
and so disinhibit its thalamic target; the STN sums the cortical input of all channels and raises the GPi/SNr
rate of every channel (diffuse, on-surround), which suppresses the losers. GPe, driven by the STN and inhibited
by D2 MSNs, regulates the STN (the "control" pathway: it keeps the STN's excitation in range as more channels
are active).

**Equations.** Every cell is the LIF of :mod:`regions.cortex` (V_rest = -70 mV, V_th = -50 mV, theta = 20 mV,
V_reset = -60 mV, t_ref = 2 ms) with a nucleus-specific ``tau_m``; synapses are voltage jumps (mV) after a delay.
Each nucleus has a tonic background of ``background_sources`` Poisson trains (jumps ``background_J``) whose mean
depolarisation is ``eta * theta`` (``eta_msn``, ``eta_stn``, ``eta_gpe``, ``eta_gpi``): MSNs below threshold
(0.65: silent without cortex), the pallidum and STN near or above it (tonically active; with the defaults and
weak cortical input STN ~12 Hz, GPe ~35 Hz, GPi/SNr ~55 Hz; in vivo, rat: STN ~10, GPe ~30, SNr ~25 Hz; primate:
GPe ~60, GPi ~75 Hz). Projections have fixed in-degrees: focused ones
``k_focused`` inputs from the same channel, diffuse ones ``k_diffuse`` inputs from each channel. Tonic dopamine
``dopamine_tone`` (Gurney et al.'s lambda) scales the striatal output: D1 -> GPi/SNr jumps by ``1 + lambda``,
D2 -> GPe jumps by ``1 - lambda`` (Gurney et al. 2001 scale the MSNs' input weights by the same factors; scaling
their output keeps the corticostriatal projections, which lie outside this region, free for learning).

**Ports** (per channel c): ``in_d1_c``, ``in_d2_c`` (striatum: corticostriatal input; put ``rstdp`` with
``receptor: d1``/``d2`` on those projections for dopamine-dependent learning, see :mod:`regions.dopamine`),
``in_stn_c`` (hyperdirect cortical input), ``out_c`` (GPi/SNr: connect it with ``sign: inhibitory`` to a
thalamic ``gate_c``).

**Parameters** (units allowed; bare numbers mean ms, mV): ``channels`` (3), ``n_msn`` (40 per channel and
receptor type), ``n_stn``, ``n_gpe``, ``n_gpi`` (20 per channel); membrane time constants ``tau_msn`` (20 ms),
``tau_stn`` (10 ms), ``tau_gpe`` (15 ms), ``tau_gpi`` (15 ms); tonic drives ``eta_msn`` (0.65), ``eta_stn``
(0.9), ``eta_gpe`` (1.0), ``eta_gpi`` (1.3); jumps (mV) ``w_d1_gpi`` (2.5), ``w_d2_gpe`` (1.0), ``w_gpe_gpi``
(0.4), ``w_gpe_stn`` (0.3), ``w_stn_gpi`` (0.5), ``w_stn_gpe`` (0.2); ``dopamine_tone`` (0.2, in [-1, 1]);
in-degrees ``k_focused`` (20),
``k_diffuse`` (6 per channel); ``delay`` (2 ms, every internal projection); ``background_sources`` (100),
``background_J`` (0.5 mV); ``monitors`` (true).

References: Gurney, Prescott & Redgrave 2001, Biol Cybern 84:401 and 84:411 (a computational model of action
selection in the basal ganglia, I and II); Humphries, Stewart & Gurney 2006, J Neurosci 26:12921 (a physiologically
plausible spiking model of the basal ganglia); Mink 1996, Prog Neurobiol 50:381 (focused selection, surround
inhibition); Nambu, Tokuno & Takada 2002, Neurosci Res 43:111 (the hyperdirect pathway); Redgrave, Prescott &
Gurney 1999, Neuroscience 89:1009 (the basal ganglia as a central selection device).
"""
from __future__ import annotations

from typing import Any

from braincore.graph import Assembly
from braincore.region_types import register_region

from ._params import INIT_V, THETA, Checker, drive, lif, project, rate_for

NUCLEI = ("d1", "d2", "stn", "gpe", "gpi")


def basal_ganglia(channels: int = 3, n_msn: int = 40, n_stn: int = 20, n_gpe: int = 20, n_gpi: int = 20,
                  tau_msn: Any = "20 ms", tau_stn: Any = "10 ms", tau_gpe: Any = "15 ms", tau_gpi: Any = "15 ms",
                  eta_msn: float = 0.65, eta_stn: float = 0.9, eta_gpe: float = 1.0, eta_gpi: float = 1.3,
                  w_d1_gpi: Any = "2.5 mV", w_d2_gpe: Any = "1.0 mV", w_gpe_gpi: Any = "0.4 mV",
                  w_gpe_stn: Any = "0.3 mV", w_stn_gpi: Any = "0.5 mV", w_stn_gpe: Any = "0.2 mV",
                  dopamine_tone: float = 0.2, k_focused: int = 20, k_diffuse: int = 6, delay: Any = "2 ms",
                  background_sources: int = 100,
                  background_J: Any = "0.5 mV", monitors: bool = True) -> Assembly:
    """Striatum D1/D2, GPe, STN and GPi/SNr per action channel, with the direct, indirect and hyperdirect
    pathways (see the module docstring: anatomy, equations, ports, parameters, references)."""
    check = Checker("basal_ganglia")
    channels = check.integer("channels", channels, 1)
    sizes = {"d1": check.integer("n_msn", n_msn, 1), "stn": check.integer("n_stn", n_stn, 1),
             "gpe": check.integer("n_gpe", n_gpe, 1), "gpi": check.integer("n_gpi", n_gpi, 1)}
    sizes["d2"] = sizes["d1"]
    tau = {"stn": check.quantity("tau_stn", tau_stn, "time", positive=True),
           "gpe": check.quantity("tau_gpe", tau_gpe, "time", positive=True),
           "gpi": check.quantity("tau_gpi", tau_gpi, "time", positive=True)}
    tau["d1"] = tau["d2"] = check.quantity("tau_msn", tau_msn, "time", positive=True)
    eta = {"stn": check.quantity("eta_stn", eta_stn, "dimensionless", minimum=0.0),
           "gpe": check.quantity("eta_gpe", eta_gpe, "dimensionless", minimum=0.0),
           "gpi": check.quantity("eta_gpi", eta_gpi, "dimensionless", minimum=0.0)}
    eta["d1"] = eta["d2"] = check.quantity("eta_msn", eta_msn, "dimensionless", minimum=0.0)
    w = {name: check.quantity(name, value, "voltage", minimum=0.0, maximum=THETA)
         for name, value in (("w_d1_gpi", w_d1_gpi), ("w_d2_gpe", w_d2_gpe), ("w_gpe_gpi", w_gpe_gpi),
                             ("w_gpe_stn", w_gpe_stn), ("w_stn_gpi", w_stn_gpi), ("w_stn_gpe", w_stn_gpe))}
    lam = check.quantity("dopamine_tone", dopamine_tone, "dimensionless", minimum=-1.0, maximum=1.0)
    w["w_d1_gpi"] *= 1.0 + lam  # tonic dopamine: D1 (Go) output up, D2 (NoGo) output down (Gurney et al. 2001)
    w["w_d2_gpe"] *= 1.0 - lam
    k_focused = check.integer("k_focused", k_focused, 1)
    k_diffuse = check.integer("k_diffuse", k_diffuse, 0)
    delay = check.quantity("delay", delay, "time", positive=True)
    sources = check.integer("background_sources", background_sources, 1)
    bg_J = check.quantity("background_J", background_J, "voltage", positive=True, maximum=THETA)
    monitors = check.flag("monitors", monitors)
    check.done()

    a = Assembly(name="basal_ganglia")
    for c in range(channels):
        for nucleus in NUCLEI:
            name = f"{nucleus}_{c}"
            a.add_population(name, "lif", sizes[nucleus], lif(tau[nucleus]), init=INIT_V)
            drive(a, f"background_{name}", name, rate_for(eta[nucleus] * THETA, bg_J, sources, tau[nucleus]),
                  bg_J, sources)
    for c in range(channels):
        # focused: within the channel
        project(a, f"d1_{c}", f"gpi_{c}", k_focused, w["w_d1_gpi"], delay, f"d1_gpi_{c}", "inhibitory")
        project(a, f"d2_{c}", f"gpe_{c}", k_focused, w["w_d2_gpe"], delay, f"d2_gpe_{c}", "inhibitory")
        project(a, f"gpe_{c}", f"gpi_{c}", k_focused, w["w_gpe_gpi"], delay, f"gpe_gpi_{c}", "inhibitory")
        project(a, f"gpe_{c}", f"stn_{c}", k_focused, w["w_gpe_stn"], delay, f"gpe_stn_{c}", "inhibitory")
        # diffuse: the STN of every channel onto the pallidum of every channel
        for d in range(channels):
            project(a, f"stn_{c}", f"gpi_{d}", k_diffuse, w["w_stn_gpi"], delay, f"stn_{c}_gpi_{d}", "excitatory")
            project(a, f"stn_{c}", f"gpe_{d}", k_diffuse, w["w_stn_gpe"], delay, f"stn_{c}_gpe_{d}", "excitatory")
        a.add_port(f"in_d1_{c}", f"d1_{c}")
        a.add_port(f"in_d2_{c}", f"d2_{c}")
        a.add_port(f"in_stn_{c}", f"stn_{c}")
        a.add_port(f"out_{c}", f"gpi_{c}")
    if monitors:
        for nucleus in NUCLEI:
            for c in range(channels):
                a.add_monitor(f"spikes_{nucleus}_{c}", "spikes", f"{nucleus}_{c}")
    return a


register_region("basal_ganglia", basal_ganglia, "striatum D1/D2, GPe, STN, GPi/SNr per action channel: direct, "
                                                 "indirect and hyperdirect pathways select the most salient channel "
                                                 "(Gurney et al. 2001; Humphries et al. 2006)")

__all__ = ["basal_ganglia", "NUCLEI"]
