"""The cortical microcircuit of Potjans & Diesmann (2014): the four layers under 1 mm^2 of early sensory cortex.

Region type ``microcircuit``; the config kind ``microcircuit`` (:mod:`tasks.brain.microcircuit`) runs it and
measures rates, irregularity and correlations.

**Anatomy.** Eight populations, an excitatory (E) and an inhibitory (I) one in each of layers 2/3, 4, 5 and 6:
``L23E, L23I, L4E, L4I, L5E, L5I, L6E, L6I`` with 20,683 / 5,834 / 21,915 / 5,479 / 4,850 / 1,065 / 14,395 /
2,948 neurons (77,169 in all). Connection probabilities ``p[target][source]`` are the paper's Table 5 (anatomy
and electrophysiology combined); each is realised as a fixed total number of synapses drawn with replacement
(NEST's ``fixed_total_number``: multapses and autapses allowed),
``K = log(1 - p) / log(1 - 1 / (N_pre N_post))`` (the number that gives the probability ``p`` of at least one
contact between a pair), about 2.99e8 synapses at full scale. Every neuron also receives ``K_ext`` (1600, 1500,
2100, 1900, 2000, 1900, 2900, 2100) external excitatory inputs, Poisson at 8 Hz each (or, with
``background: dc``, their mean as a constant current). An optional thalamic population (902 neurons, Poisson at
120 Hz for 10 ms from 700 ms) projects to L4 and L6 (probabilities 0.0983, 0.0619, 0.0512, 0.0196).

**Equations** (NEST ``iaf_psc_exp``: current-based LIF with exponential postsynaptic currents)::

    C_m dV/dt = -(C_m / tau_m) (V - E_L) + I_syn(t) + I_DC
    tau_syn dI_syn/dt = -I_syn + tau_syn sum_k J_k delta(t - t_k - d_k)
    V >= V_th: spike, V <- V_reset, clamped for t_ref

with C_m = 250 pF, tau_m = 10 ms, E_L = V_reset = -65 mV, V_th = -50 mV, t_ref = 2 ms, tau_syn = 0.5 ms, in
braincore's ``lif`` (``R_m = tau_m / C_m = 40 MOhm``) with an ``exponential`` synapse (tau 0.5 ms) and dt = 0.1 ms.
Weights: the PSC amplitude ``J`` that gives a peak PSP of 0.15 mV,
``J = PSP / (tau_m tau_syn / (C_m (tau_syn - tau_m)) (x^tau_m - x^tau_syn))``, ``x = (tau_m / tau_syn)^(1 / (tau_syn -
tau_m))`` (NEST's ``postsynaptic_potential_to_current``: 87.81 pA); inhibitory ``g J`` with g = -4; L4E -> L2/3E
doubled; every weight normal with a relative SD of 0.1, redrawn until its sign is kept. Delays normal, 1.5 ms (from
E) and 0.75 ms (from I), relative SD 0.5, redrawn below one step (NEST's ``nest.math.redraw(..., min=dt)``; braincore's
``truncate`` option of normal distributions). Initial potentials: the "optimized" population-specific normals
(V0 mean -68.28, -63.16, -63.33, -63.45, -63.11, -61.66, -66.72, -61.43 mV; SD 5.36, 4.57, 4.74, 4.94, 4.94, 4.55,
5.46, 4.48 mV) that avoid the start-up burst, or ``V0_type: original`` (-58 +- 10 mV).

**Scaling** (NEST's example, exactly): ``N_scaling`` scales the populations (``round(N N_scaling)``),
``K_scaling`` the in-degrees: synapse numbers become ``round(K N_scaling K_scaling)``, external in-degrees
``round(K_ext K_scaling)``, thalamic synapse numbers ``round(K_th K_scaling)``, and with ``K_scaling != 1`` every
weight is divided by ``sqrt(K_scaling)`` and each population gets the DC
``0.001 tau_syn (1 - sqrt(K_scaling)) (sum_j J_ij K_ij / N_i nu_j + J K_ext_i nu_bg)`` (pA; ``J_ij`` unscaled,
full-scale in-degrees and rates ``nu_j``; the external term only with Poisson background), which keeps the mean input of
the
full-scale network. ``scale`` sets both factors; 0.1 runs the network with 7,717 neurons and 3.0e6 synapses.

**Matching NEST's discretisation** (``match_nest``, default true). braincore's clock-driven step (input held over
the step; a spike arriving at step k acts in step k; a neuron that spiked at step k integrates again from step
k + round(t_ref / dt)) differs from NEST's ``iaf_psc_exp`` (exact propagator of the decaying current; an arriving
spike is added to the current at the end of its step; the potential is clamped for round(t_ref / dt) full steps).
Three exact conversions make the membrane potential identical to NEST's, step for step (checked to 1e-13 mV in
``tests/test_microcircuit.py``): every PSC amplitude is multiplied by ``P21 / (R_m (1 - P22))`` (0.906 at dt 0.1 ms),
``P22 = exp(-dt / tau_m)``, ``P21 = tau_syn tau_m / (C_m (tau_m - tau_syn)) (P22 - exp(-dt / tau_syn))`` (NEST's
propagator from current to potential), every delay gains one step, and t_ref gains one step. Without it the
parameters are used as written (PSPs ~10 % larger, delays and refractoriness a step shorter than NEST's).

**Ports.** One per population (``L23E`` ... ``L6I``), and ``TC`` (the thalamic relays) with ``thalamic_input``.

**Parameters** (units allowed; bare numbers are ms, mV, Hz, pA where noted): ``scale`` (1.0), ``N_scaling`` and
``K_scaling`` (default ``scale``), ``background`` (``poisson`` or ``dc``), ``V0_type`` (``optimized`` or
``original``), ``thalamic_input`` (false), ``th_start`` (700 ms), ``th_duration`` (10 ms), ``th_rate`` (120 Hz),
``dc_stimulus`` (false; NEST's optional ``dc_input``: ``dc_amp K_ext`` from ``dc_start`` for ``dc_duration``),
``dc_start`` (650 ms), ``dc_duration`` (100 ms), ``dc_amp`` (0.3 pA), ``PSP_exc_mean`` (0.15 mV), ``g`` (-4),
``bg_rate`` (8 Hz), ``match_nest`` (true), ``dt`` (0.1 ms: must be the simulation step), ``monitors`` (true: a
spike monitor per population).

Sources of every number: Potjans TC & Diesmann M (2014) The cell-type specific cortical microcircuit: relating
structure and activity in a full-scale spiking network model. Cereb Cortex 24:785-806 (Tables 4-6); NEST's PyNEST
example ``pynest/examples/Potjans_2014`` (``network_params.py``: sizes, probabilities, K_ext, rates, V0,
neuron parameters; ``helpers.py``: ``num_synapses_from_conn_probs``, ``postsynaptic_potential_to_current``,
``dc_input_compensating_poisson``, ``adjust_weights_and_input_to_synapse_scaling``; ``network.py``: connection
rules and redraws; ``stimulus_params.py``: the thalamic and DC stimuli; ``sim_params.py``: dt 0.1 ms).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from braincore.graph import Assembly
from braincore.region_types import register_region

from ._params import Checker

#: the eight populations, in NEST's order (targets index rows, sources columns of every matrix)
POPULATIONS = ("L23E", "L23I", "L4E", "L4I", "L5E", "L5I", "L6E", "L6I")
#: full-scale population sizes (network_params.py ``full_num_neurons``; Potjans & Diesmann 2014, Table 5)
FULL_NUM_NEURONS = np.array([20683, 5834, 21915, 5479, 4850, 1065, 14395, 2948])
#: full-scale mean rates (Hz) that NEST's DC compensation uses (network_params.py ``full_mean_rates``)
FULL_MEAN_RATES = np.array([0.943, 3.026, 4.368, 5.882, 7.733, 8.664, 1.096, 7.851])
#: connection probabilities [target][source] (network_params.py ``conn_probs``; the paper's Table 5)
CONN_PROBS = np.array([
    [0.1009, 0.1689, 0.0437, 0.0818, 0.0323, 0.0, 0.0076, 0.0],
    [0.1346, 0.1371, 0.0316, 0.0515, 0.0755, 0.0, 0.0042, 0.0],
    [0.0077, 0.0059, 0.0497, 0.135, 0.0067, 0.0003, 0.0453, 0.0],
    [0.0691, 0.0029, 0.0794, 0.1597, 0.0033, 0.0, 0.1057, 0.0],
    [0.1004, 0.0622, 0.0505, 0.0057, 0.0831, 0.3726, 0.0204, 0.0],
    [0.0548, 0.0269, 0.0257, 0.0022, 0.06, 0.3158, 0.0086, 0.0],
    [0.0156, 0.0066, 0.0211, 0.0166, 0.0572, 0.0197, 0.0396, 0.2252],
    [0.0364, 0.001, 0.0034, 0.0005, 0.0277, 0.008, 0.0658, 0.1443]])
#: external (background) in-degrees (network_params.py ``K_ext``)
K_EXT = np.array([1600, 1500, 2100, 1900, 2000, 1900, 2900, 2100])
#: initial membrane potentials (network_params.py ``V0_mean`` / ``V0_std``), mV
V0 = {"optimized": (np.array([-68.28, -63.16, -63.33, -63.45, -63.11, -61.66, -66.72, -61.43]),
                    np.array([5.36, 4.57, 4.74, 4.94, 4.94, 4.55, 5.46, 4.48])),
      "original": (np.full(8, -58.0), np.full(8, 10.0))}
#: iaf_psc_exp parameters (network_params.py ``neuron_params``): pF, ms, mV
NEURON = {"C_m": 250.0, "tau_m": 10.0, "tau_syn": 0.5, "E_L": -65.0, "V_reset": -65.0, "V_th": -50.0, "t_ref": 2.0}
PSP_EXC_MEAN = 0.15     # mV
WEIGHT_REL_STD = 0.1
G = -4.0
DELAY_EXC_MEAN, DELAY_INH_MEAN, DELAY_REL_STD = 1.5, 0.75, 0.5   # ms
BG_RATE = 8.0           # Hz
#: the thalamic stimulus (stimulus_params.py)
THALAMUS = {"num_th_neurons": 902, "th_start": 700.0, "th_duration": 10.0, "th_rate": 120.0,
            "conn_probs_th": np.array([0.0, 0.0, 0.0983, 0.0619, 0.0, 0.0, 0.0512, 0.0196]),
            "PSP_th": 0.15, "delay_th_mean": 1.5, "delay_th_rel_std": 0.5}
#: NEST's default delay from the Poisson generator to the thalamic parrot neurons (ms)
TH_GENERATOR_DELAY = 1.0
#: the optional DC stimulus (stimulus_params.py ``dc_input``): amplitude dc_amp * K_ext (pA)
DC_STIMULUS = {"dc_start": 650.0, "dc_dur": 100.0, "dc_amp": 0.3}
#: full-scale NEST rates (Hz) quoted in issue 17 as the published reference
PUBLISHED_RATES = dict(zip(POPULATIONS, (0.90, 2.97, 4.41, 5.88, 7.57, 8.63, 1.11, 7.83)))


def num_synapses_from_conn_probs(p: np.ndarray, n_target: np.ndarray, n_source: np.ndarray) -> np.ndarray:
    """``K = log(1 - p) / log(1 - 1 / (N_target N_source))`` (float; NEST rounds after scaling)."""
    prod = np.outer(np.asarray(n_target, dtype=float), np.asarray(n_source, dtype=float))
    return np.log(1.0 - np.asarray(p, dtype=float)) / np.log((prod - 1.0) / prod)  # NEST's expression


def psc_over_psp(C_m: float, tau_m: float, tau_syn: float) -> float:
    """pA per mV of peak PSP for an exponential PSC onto an ``iaf_psc_exp`` neuron (NEST's
    ``postsynaptic_potential_to_current``: the peak of ``(J e^{-t/tau_syn}) * (e^{-t/tau_m} / C_m)``)."""
    sub = 1.0 / (tau_syn - tau_m)
    pre = tau_m * tau_syn / C_m * sub
    frac = (tau_m / tau_syn) ** sub
    return 1.0 / (pre * (frac ** tau_m - frac ** tau_syn))


def nest_weight_factor(dt: float, C_m: float = NEURON["C_m"], tau_m: float = NEURON["tau_m"],
                       tau_syn: float = NEURON["tau_syn"]) -> float:
    """``P21 / (R_m (1 - P22))``: the factor on a PSC amplitude that makes braincore's held-current step give NEST's
    exact ``iaf_psc_exp`` potential (see the module docstring)."""
    p22 = math.exp(-dt / tau_m)
    p21 = tau_syn * tau_m / (C_m * (tau_m - tau_syn)) * (p22 - math.exp(-dt / tau_syn))  # mV per pA
    r_m = tau_m / C_m  # GOhm = mV / pA
    return p21 / (r_m * (1.0 - p22))


@dataclass(frozen=True)
class Derived:
    """The network's numbers after scaling, in NEST's units (pA, ms); matrices are [target, source]."""

    N: np.ndarray                 # neurons per population
    K: np.ndarray                 # synapses per (target, source) pair
    K_full: np.ndarray            # full-scale synapse numbers (float)
    weight_mean: np.ndarray       # signed mean PSC amplitude (pA), after 1/sqrt(K_scaling)
    weight_ext: float             # external PSC amplitude (pA)
    dc: np.ndarray                # constant input per population (pA): compensation and/or DC background
    ext_indegree: np.ndarray      # Poisson sources per neuron (0 with a DC background)
    delay_mean: np.ndarray        # ms
    delay_std: np.ndarray         # ms
    K_th: np.ndarray              # thalamic synapses per target population
    weight_th: float              # thalamic PSC amplitude (pA)


def derive(N_scaling: float = 1.0, K_scaling: float = 1.0, *, poisson_input: bool = True,
           PSP_exc_mean: float = PSP_EXC_MEAN, g: float = G, bg_rate: float = BG_RATE) -> Derived:
    """The derived parameters of NEST's ``Network.__derive_parameters`` (network.py), step for step."""
    nrn = NEURON
    full_K = num_synapses_from_conn_probs(CONN_PROBS, FULL_NUM_NEURONS, FULL_NUM_NEURONS)
    N = np.round(FULL_NUM_NEURONS * N_scaling).astype(int)
    K = np.round(full_K * N_scaling * K_scaling).astype(int)
    ext = np.round(K_EXT * K_scaling).astype(int)
    factor = psc_over_psp(nrn["C_m"], nrn["tau_m"], nrn["tau_syn"])
    psp = np.zeros((8, 8))
    psp[:, 0::2], psp[:, 1::2] = PSP_exc_mean, PSP_exc_mean * g
    psp[0, 2] = 2.0 * PSP_exc_mean  # L4E -> L2/3E doubled
    psc = psp * factor
    psc_ext = PSP_exc_mean * factor
    dc = np.zeros(8) if poisson_input else bg_rate * K_EXT * psc_ext * nrn["tau_syn"] * 0.001
    if K_scaling != 1:
        indegree = full_K / FULL_NUM_NEURONS[:, None]
        input_rec = np.sum(psc * indegree * FULL_MEAN_RATES, axis=1)
        dc = dc + 0.001 * nrn["tau_syn"] * (1.0 - math.sqrt(K_scaling)) * input_rec
        if poisson_input:
            dc = dc + 0.001 * nrn["tau_syn"] * (1.0 - math.sqrt(K_scaling)) * psc_ext * K_EXT * bg_rate
        psc, psc_ext = psc / math.sqrt(K_scaling), psc_ext / math.sqrt(K_scaling)
    delay_mean = np.zeros((8, 8))
    delay_mean[:, 0::2], delay_mean[:, 1::2] = DELAY_EXC_MEAN, DELAY_INH_MEAN
    th = THALAMUS
    K_th = num_synapses_from_conn_probs(th["conn_probs_th"][None, :], [th["num_th_neurons"]], FULL_NUM_NEURONS)[0]
    weight_th = th["PSP_th"] * factor
    if K_scaling != 1:
        K_th, weight_th = K_th * K_scaling, weight_th / math.sqrt(K_scaling)
    return Derived(N=N, K=K, K_full=full_K, weight_mean=psc, weight_ext=float(psc_ext), dc=dc,
                   ext_indegree=ext if poisson_input else np.zeros(8, dtype=int), delay_mean=delay_mean,
                   delay_std=delay_mean * DELAY_REL_STD, K_th=np.round(K_th).astype(int), weight_th=float(weight_th))


def microcircuit(scale: Any = 1.0, N_scaling: Any = None, K_scaling: Any = None, background: str = "poisson",
                 V0_type: str = "optimized", thalamic_input: bool = False, th_start: Any = "700 ms",
                 th_duration: Any = "10 ms", th_rate: Any = "120 Hz", dc_stimulus: bool = False,
                 dc_start: Any = "650 ms", dc_duration: Any = "100 ms", dc_amp: Any = "0.3 pA",
                 PSP_exc_mean: Any = "0.15 mV", g: Any = -4.0, bg_rate: Any = "8 Hz", match_nest: bool = True,
                 dt: Any = "0.1 ms", monitors: bool = True) -> Assembly:
    """The Potjans & Diesmann (2014) cortical microcircuit (see the module docstring: anatomy, equations,
    scaling, the match with NEST's discretisation, parameters, sources)."""
    check = Checker("microcircuit")
    scale = check.quantity("scale", scale, "dimensionless", positive=True, maximum=1.0)
    n_scaling = check.quantity("N_scaling", scale if N_scaling is None else N_scaling, "dimensionless",
                               positive=True, maximum=1.0)
    k_scaling = check.quantity("K_scaling", scale if K_scaling is None else K_scaling, "dimensionless",
                               positive=True, maximum=1.0)
    background = check.choice("background", background, ("poisson", "dc"))
    V0_type = check.choice("V0_type", V0_type, tuple(V0))
    thalamic_input = check.flag("thalamic_input", thalamic_input)
    th_start = check.quantity("th_start", th_start, "time", minimum=0.0)
    th_duration = check.quantity("th_duration", th_duration, "time", minimum=0.0)
    th_rate = check.quantity("th_rate", th_rate, "frequency", minimum=0.0)
    dc_stimulus = check.flag("dc_stimulus", dc_stimulus)
    dc_start = check.quantity("dc_start", dc_start, "time", minimum=0.0)
    dc_duration = check.quantity("dc_duration", dc_duration, "time", minimum=0.0)
    dc_amp = check.quantity("dc_amp", dc_amp, "current")
    psp = check.quantity("PSP_exc_mean", PSP_exc_mean, "voltage", positive=True)
    g = check.quantity("g", g, "dimensionless", maximum=0.0)
    bg_rate = check.quantity("bg_rate", bg_rate, "frequency", minimum=0.0)
    match_nest = check.flag("match_nest", match_nest)
    dt = check.quantity("dt", dt, "time", positive=True)
    monitors = check.flag("monitors", monitors)
    check.done()

    d = derive(n_scaling, k_scaling, poisson_input=background == "poisson", PSP_exc_mean=psp, g=g,
               bg_rate=bg_rate)
    if int(d.N.min()) < 1:
        check.fail("N_scaling", f"{n_scaling:g} leaves a population without neurons (sizes {d.N.tolist()})")
        check.done()
    nrn = NEURON
    w_factor = nest_weight_factor(dt) if match_nest else 1.0
    shift = dt if match_nest else 0.0  # one step more delay (see the module docstring)
    cell = {"tau_m": nrn["tau_m"], "R_m": nrn["tau_m"] / nrn["C_m"] * 1000.0, "v_rest": nrn["E_L"],
            "v_reset": nrn["V_reset"], "v_th": nrn["V_th"], "t_ref": nrn["t_ref"] + shift}
    synapse = {"type": "exponential", "tau": nrn["tau_syn"]}
    v0_mean, v0_std = V0[V0_type]
    label = f"microcircuit_{n_scaling:g}" if n_scaling == k_scaling else f"microcircuit_N{n_scaling:g}_K{k_scaling:g}"
    a = Assembly(name=label, dt=dt)
    for i, pop in enumerate(POPULATIONS):
        a.add_population(pop, "lif", int(d.N[i]), cell,
                         init={"v": {"dist": "normal", "mean": float(v0_mean[i]), "std": float(v0_std[i])}})
        a.add_port(pop, pop)
    for i, target in enumerate(POPULATIONS):
        for j, source in enumerate(POPULATIONS):
            n = int(d.K[i, j])
            if n <= 0:
                continue
            mean = float(d.weight_mean[i, j])
            magnitude = abs(mean) * w_factor / 1000.0  # pA -> nA
            weight = {"dist": "normal", "mean": magnitude, "std": magnitude * WEIGHT_REL_STD, "truncate": [0.0, None]}
            delay = {"dist": "normal", "mean": float(d.delay_mean[i, j]) + shift, "std": float(d.delay_std[i, j]),
                     "truncate": [dt + shift, None]}
            a.add_projection(source, target, {"type": "fixed_total", "n": n, "multapses": True, "allow_self": True},
                             weight, synapse, delay, name=f"{source}_to_{target}",
                             sign="excitatory" if mean >= 0 else "inhibitory")
    for i, pop in enumerate(POPULATIONS):
        if background == "poisson" and d.ext_indegree[i] > 0 and bg_rate > 0:
            a.add_input(f"background_{pop}", "poisson", pop, rate=bg_rate, sources=int(d.ext_indegree[i]),
                        weight=d.weight_ext * w_factor / 1000.0, synapse=synapse)
        if abs(d.dc[i]) > 0:
            a.add_input(f"dc_{pop}", "constant_current", pop, amplitude=float(d.dc[i]) / 1000.0)
        if dc_stimulus and dc_amp != 0:
            a.add_input(f"dc_stimulus_{pop}", "step_current", pop, amplitude=dc_amp * float(K_EXT[i]),
                        start=dc_start, stop=dc_start + dc_duration)
    if thalamic_input:
        th = THALAMUS
        # relays (NEST's parrot neurons): a Poisson event lifts v 1 mV over threshold in its step; no refractoriness
        a.add_population("TC", "lif", th["num_th_neurons"], {"tau_m": 10.0, "R_m": 40.0, "v_rest": 0.0,
                                                            "v_reset": 0.0, "v_th": 0.5, "t_ref": 0.0})
        a.add_input("thalamic_pulse", "poisson", "TC", rate=th_rate, weight=1.0,
                    start=th_start + TH_GENERATOR_DELAY, stop=th_start + th_duration + TH_GENERATOR_DELAY)
        a.add_port("TC", "TC")
        for i, target in enumerate(POPULATIONS):
            n = int(d.K_th[i])
            if n <= 0:
                continue
            magnitude = d.weight_th * w_factor / 1000.0
            mean_delay = th["delay_th_mean"]
            a.add_projection("TC", target, {"type": "fixed_total", "n": n, "multapses": True},
                             {"dist": "normal", "mean": magnitude, "std": magnitude * WEIGHT_REL_STD,
                              "truncate": [0.0, None]}, synapse,
                             {"dist": "normal", "mean": mean_delay + shift, "std": mean_delay * th["delay_th_rel_std"],
                              "truncate": [dt + shift, None]}, name=f"TC_to_{target}", sign="excitatory")
    if monitors:
        for pop in POPULATIONS + (("TC",) if thalamic_input else ()):
            a.add_monitor(f"spikes_{pop}", "spikes", pop)
    return a


build = microcircuit

register_region("microcircuit", microcircuit, "Potjans & Diesmann (2014) cortical microcircuit: 8 LIF populations "
                                              "in layers 2/3, 4, 5, 6 (77,169 neurons, 3e8 synapses at scale 1)")

__all__ = ["microcircuit", "build", "derive", "Derived", "num_synapses_from_conn_probs", "psc_over_psp",
           "nest_weight_factor", "POPULATIONS", "FULL_NUM_NEURONS", "FULL_MEAN_RATES", "CONN_PROBS", "K_EXT", "V0",
           "NEURON", "THALAMUS", "DC_STIMULUS", "PUBLISHED_RATES", "TH_GENERATOR_DELAY"]
