#!/usr/bin/env python
"""Engine benchmark beyond LIF: braincore (native C engine and PyTorch engine) side by side with Brian2 (C++
standalone and Cython runtime) on three workloads beyond the LIF network (a plasticity rule, a nonlinear model, a
user model written as equations), each 1 s of biological time at dt = 0.1 ms, float64, one thread. All three run
on the native engine, generated from their definitions.

Workloads (``--workloads``):

``coba_stdp``
    The COBA network of ``sim_coba.py`` (Vogels & Abbott 2005; Brette et al. 2007 benchmark 1) at N = 4,000
    (fixed in-degree 64 + 16, conductance synapses, w_e = 6 nS, w_i = 67 nS), with a constant 0.2 nA drive into
    every neuron (``--drive-pA``) and pair STDP on the excitatory-to-excitatory synapses: all-to-all pairing,
    additive, hard bounds, Song, Miller & Abbott (2000) parameters: tau_plus = tau_minus = 20 ms,
    A_plus = 0.01, A_minus = 0.0105, w in [0, w_max], w_max = 12 nS = 2 w_e (``--stdp-wmax-nS``). The A's are
    fractions of w_max, as in Song et al. and Brian2's STDP example (a pair at dt = 0 moves a weight by
    0.01 w_max = 0.12 nS): braincore's ``eta = w_max`` (``--stdp-eta``; with ``--stdp-eta 1`` the A's are
    absolute nS). braincore: ``plasticity: {rule: stdp, A_plus: 0.01, A_minus: 0.0105, eta: 12, w_min: 0,
    w_max: 12}`` on the ``exc->exc`` projection. Brian2: the equivalent ``Synapses`` with event-driven traces::

        on_pre:  ge_post += w;  w = clip(w - eta A_minus apost, 0, w_max);  apre += 1
        on_post: w = clip(w + eta A_plus apre, 0, w_max);  apost += 1

    which is braincore's step convention (``braincore/plasticity/stdp.py``): the spike is transmitted with the
    weight before the update, a presynaptic spike depresses by the postsynaptic trace of earlier spikes, then a
    postsynaptic spike potentiates by the presynaptic trace including this step's spikes (a pair in one step
    potentiates), traces decay exactly. (braincore clips once after both updates of a step, Brian2 after each:
    the same unless a weight hits a bound in a step with both a pre and a post spike.) Sanity columns: rates
    and the final mean exc->exc weight (``w_ee_nS``) of both simulators. One known difference of the
    simulated models (as in ``sim_coba.py``): Brian2's ``euler`` also integrates g_e and g_i (factor
    ``1 - dt/tau`` per step) while braincore decays synapses exactly (``exp(-dt/tau)``), so a spike's
    conductance carries 1 % more charge in braincore (area ``dt / (1 - exp(-dt/tau))`` = 5.05 ms vs 5 ms for
    tau_e, both kernels alike). The network is chaotic: rates agree to a few per cent, not spike for spike.

``izhikevich``
    Izhikevich (2003, IEEE TNN 14:1569; the paper's Matlab network): 1,000 Izhikevich neurons, 800 excitatory
    and 200 inhibitory, all-to-all coupling (autapses included, as the paper's ``S`` matrix) with instantaneous
    voltage jumps, weights ``0.5 U`` (excitatory) and ``-U`` (inhibitory), ``U`` uniform on [0, 1) mV, drawn once
    per seed and shared. **Per-population parameters**: braincore's ``izhikevich`` model takes one scalar per
    parameter and population in YAML (a list is refused), so the paper's per-neuron ``r`` is dropped in *both*
    simulators: excitatory cells are regular spiking (a = 0.02, b = 0.2, c = -65 mV, d = 8 mV, the paper's
    r = 0), inhibitory cells fast spiking (a = 0.1, b = 0.2, c = -65 mV, d = 2 mV, r = 1). v(0) = -65 mV,
    u(0) = b v(0). **Thalamic drive**: braincore has no Gaussian noise current, so instead of the paper's
    zero-mean ``5 randn`` / ``2 randn`` mV per ms each neuron gets its own Poisson train through an
    instantaneous synapse, in both simulators: ``--izh-rate-hz`` (default 25 Hz) with jumps of
    ``--izh-weight-exc-mV`` and ``--izh-weight-inh-mV`` (default 14 mV onto both). This gives ~4-6 Hz with
    population bursts (2-ms population counts with a Fano factor ~10, up to ~6 % of the network in 2 ms) and a
    slow rhythm, as in the paper. (Tuned on braincore, 1 s, two noise seeds. The paper's 5 : 2 ratio between the
    populations leaves the inhibitory cells nearly silent with positive-only kicks; much stronger drive, e.g.
    50 Hz x 10 mV, tips the network into runaway episodes in which every neuron fires every step for several
    ms, which the instantaneous all-to-all excitation, 200 mV if all excitatory cells fire, sustains.)
    Integration: forward Euler with
    ``v`` and ``u`` advanced from their old values, spike at ``v >= 30 mV`` (``braincore/neurons/izhikevich.py``;
    Brian2 ``method='euler'``). Step convention: braincore applies a voltage jump that arrives in a step before
    that step's update (a spike of step k arrives in step k + 1, after its target's own reset). Brian2's default
    schedule applies ``on_pre`` (and ``PoissonInput``) after the threshold and before the reset of the same
    step, so a jump onto a neuron that spikes in that step would be erased by its reset; the Brian2 side
    therefore runs the synaptic pathway and the Poisson input in the ``before_groups`` slot of the next step,
    which is braincore's order exactly (``--brian2-izh-when synapses`` gives Brian2's default), and the paper's
    Matlab order too (reset, then ``I = I + sum(S(:, fired), 2)`` acts on every neuron). Checked on a
    deterministic probe (100 such neurons all-to-all with weights 4 U mV, constant currents, random v(0),
    300 ms): braincore's PyTorch engine and Brian2 with ``before_groups`` give identical spike trains (6,675
    spikes); with Brian2's default slot, 1,889 spikes, diverging from the 43rd.

``cobahh``
    Brette et al. (2007) benchmark 3, Brian2's ``examples/COBAHH.py``: 4,000 Hodgkin-Huxley neurons of the
    Traub & Miles type (area 20,000 um^2, C_m 1 uF/cm^2, g_l 5e-5 S/cm^2, E_l -60 mV, E_K -90 mV, E_Na 50 mV,
    g_Na 100 mS/cm^2, g_Kd 30 mS/cm^2, V_T -63 mV; threshold v > -20 mV, refractory 3 ms), 3,200 excitatory
    and 800 inhibitory, random connectivity p = 0.02 (autapses possible, as ``connect(p=0.02)``), exponential
    conductances (w_e 6 nS, tau_e 5 ms, E_e 0 mV; w_i 67 nS, tau_i 10 ms, E_i -80 mV), no external input;
    initial v ~ E_l + (5 randn - 5) mV, g_e ~ (1.5 randn + 4) 10 nS, g_i ~ (12 randn + 20) 10 nS, m = n = h = 0;
    ``exponential_euler``. The rate functions are written with ``exprel`` (the same functions as the example's
    ``x / (exp(x) - 1)`` forms, without their removable singularities). **braincore**: ``configs/cobahh.yaml``,
    whose neuron is a user model written as equations in the YAML (see :func:`braincore_cobahh` for how the
    shared network is put in). One difference of the simulated models: Brian2 integrates g_e and g_i as state
    variables of the neuron, so its exponential Euler step treats the synaptic conductances as part of v's
    linear coefficient, ``dv/dt = A v + B`` with ``A = -(g_l + g_e + g_i + g_na m^3 h + g_kd n^4) / C_m``;
    braincore's conductance synapses supply the current ``I = g_e (E_e - v) + g_i (E_i - v)`` from the old v,
    held over the step (``A`` without g_e and g_i). Both are first-order accurate and the conductances decay
    exactly in both; the trajectories differ by O(dt) per step and the network is chaotic, so the rates agree
    statistically, not spike for spike.

Simulators (``--sims``), as in ``sim_coba.py``: ``braincore-native`` is the assembly run with ``backend: auto``:
when ``auto`` picks the native C engine it is timed (``compile_s``: a fresh compile of the C kernel), when it
falls back to the PyTorch engine the row shows the engine and ``sim.fallback_reason`` and is not timed (that
run is the ``braincore-torch`` row; ``--time-fallback`` times it anyway); ``braincore-torch`` forces the
PyTorch engine; ``brian2-standalone`` (C++ without OpenMP; ``compile_s`` = ``make``, part of ``build_s``;
``run_s`` timed inside the binary); ``brian2-cython`` (runtime; ``compile_s`` = an untimed warm-up that
compiles the Cython extensions into an empty cache, the timed runs load them from it).

Every workload's network (connectivity, weights, initial state) is drawn once with NumPy from ``--seed`` in this
process and written to one ``.npz``; every simulator builds from that file, so all run literally the same
network (the Poisson drive of ``izhikevich`` is the only run-time randomness, each simulator with its own
generator, so the spike counts of that workload agree statistically, not exactly). Each measurement runs in a
fresh subprocess, ``--repeat`` times (``--torch-repeat`` for the PyTorch engine), with one thread
(``OMP_NUM_THREADS=1``, ``torch.set_num_threads(1)``); rows report medians. Helpers: ``_harness.py`` (timing,
memory, subprocesses), ``sim_coba.py`` (the COBA network, braincore assembly and Brian2 objects).

Output: one JSON row per (workload, simulator) on stdout, then the summary table: times, spikes, rates per
population, ``w_ee_nS`` (coba_stdp: mean exc->exc weight after the run, w(0) = 6 nS), peak memory, the engine
braincore ran, and per workload the run-time ratios braincore / Brian2 standalone and Cython; below it the
fallback reasons. Fields of a row: ``workload``, ``simulator``, ``status`` (``ok``, ``fallback`` or ``not
supported yet``), ``engine``, ``fallback_reason``, ``N``, ``synapses``, ``method``, ``duration_ms``,
``dt_ms``, ``repeats``, ``build_s``, ``compile_s``, ``run_s``, ``run_s_all``, ``spikes``, ``mean_rate_hz``,
``rate_exc_hz``, ``rate_inh_hz``, ``events`` (recurrent synaptic events delivered), ``events_per_s``,
``w_ee_mean_nS``, ``w_ee_std_nS`` (coba_stdp), ``peak_rss_mb``, ``import_rss_mb``, ``end_rss_mb``,
``driver_rss_mb`` and ``binary_s`` (standalone), ``deterministic`` (all repeats gave the same spikes per neuron).

Examples::

    python benchmarks/engine_models.py --quick                   # smoke test: 100 ms, 1 repeat (~4 minutes)
    python benchmarks/engine_models.py --json-out benchmarks/results/engine_models.json \\
        --table-out benchmarks/results/engine_models.txt         # 1 s, 3 repeats
    python benchmarks/engine_models.py --workloads izhikevich --sims braincore-torch brian2-standalone
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sim_coba  # noqa: E402 - the COBA network, its braincore assembly and Brian2 objects
from _harness import (Measurement, environment, fmt, measure, one_thread, report, round_sig,  # noqa: E402
                      run_braincore, run_brian2)

WORKLOADS: tuple[str, ...] = ("coba_stdp", "izhikevich", "cobahh")
SIMULATORS: tuple[str, ...] = ("braincore-native", "braincore-torch", "brian2-standalone", "brian2-cython")
RESULT_MARK = "@@ENGINE_MODELS_RESULT "
DT = 0.1  # ms
#: workloads whose braincore side exists
BRAINCORE_SUPPORTED = {"coba_stdp": True, "izhikevich": True, "cobahh": True}
NOT_SUPPORTED = "not supported yet"


# ================================================================================== coba_stdp
COBA_N = 4000


def stdp_spec(eta: float, w_max: float) -> dict[str, Any]:
    """braincore's ``plasticity:`` mapping of the exc->exc projection (weights in nS)."""
    return {"rule": "stdp", "tau_plus": "20 ms", "tau_minus": "20 ms", "A_plus": 0.01, "A_minus": 0.0105,
            "eta": eta, "w_min": 0.0, "w_max": w_max, "pairing": "all_to_all", "weight_dependence": "additive"}


def brian2_stdp_model(eta: float, w_max: float) -> dict[str, Any]:
    """The Brian2 synapse model equivalent to :func:`stdp_spec` (see the module docstring)."""
    from brian2 import ms, nS

    return {"model": "w : siemens\n"
                     "dapre/dt = -apre/taupre : 1 (event-driven)\n"
                     "dapost/dt = -apost/taupost : 1 (event-driven)",
            "on_pre": "ge_post += w\n"
                      "w = clip(w - eta_minus*apost, wmin, wmax)\n"
                      "apre += 1",
            "on_post": "w = clip(w + eta_plus*apre, wmin, wmax)\n"
                       "apost += 1",
            "namespace": {"taupre": 20 * ms, "taupost": 20 * ms, "eta_plus": eta * 0.01 * nS,
                          "eta_minus": eta * 0.0105 * nS, "wmin": 0 * nS, "wmax": w_max * nS}}


def braincore_coba_stdp(net, spec, backend) -> Measurement:
    eta, w_max = spec["stdp_eta"], spec["stdp_wmax_nS"]

    def collect(sim):
        w = sim.weights("exc->exc")["weight"]
        return sim_coba.coba_counts(sim), {"w_ee_mean_nS": float(w.mean()), "w_ee_std_nS": float(w.std())}

    return run_braincore(lambda: sim_coba.coba_assembly(net, spec["duration"], backend, spec["seed"],
                                                        spec["drive_pA"], "euler", stdp_spec(eta, w_max)),
                         collect, backend=backend, method="euler", init=lambda sim: sim_coba.set_coba_state(sim, net),
                         run_fallback=spec["time_fallback"])


def brian2_coba_stdp(net, spec, mode) -> Measurement:
    def build():
        from brian2 import Network, nS

        objects, namespace = sim_coba.brian2_coba(net, "euler", 0, spec["drive_pA"],
                                                  brian2_stdp_model(spec["stdp_eta"], spec["stdp_wmax_nS"]))
        spikes, ee = objects[3], objects[4]

        def collect():
            w = np.asarray(ee.w[:] / nS)
            return np.asarray(spikes.count[:]), {"w_ee_mean_nS": float(w.mean()), "w_ee_std_nS": float(w.std())}

        return Network(*objects), namespace, collect

    return run_brian2(build, spec["duration"], mode, dt_ms=DT, seed=spec["seed"], method="euler",
                      cache_dir=spec.get("cython_cache"), warmup=spec.get("warmup", False),
                      prefix="engine_models_brian2_")


# ================================================================================== izhikevich
IZH_NE, IZH_NI = 800, 200
IZH_CELLS = {"exc": {"a": 0.02, "b": 0.2, "c": -65.0, "d": 8.0},   # regular spiking (the paper's r = 0)
             "inh": {"a": 0.1, "b": 0.2, "c": -65.0, "d": 2.0}}    # fast spiking (the paper's r = 1)
IZH_V0 = -65.0  # mV; u(0) = b v(0)


def draw_izhikevich(seed: int) -> dict[str, np.ndarray]:
    """The paper's coupling ``S`` as ``w[pre, post]`` (mV): ``0.5 U`` from excitatory, ``-U`` from inhibitory."""
    rng = np.random.default_rng(seed)
    n = IZH_NE + IZH_NI
    w = rng.random((n, n))
    w[:IZH_NE] *= 0.5
    w[IZH_NE:] *= -1.0
    return {"w": w}


def izh_ranges() -> dict[str, tuple[int, int]]:
    return {"exc": (0, IZH_NE), "inh": (IZH_NE, IZH_NE + IZH_NI)}


def braincore_izhikevich(net, spec, backend) -> Measurement:
    import torch

    w = net["w"]
    ranges = izh_ranges()
    drive = {"exc": spec["izh_weight_exc_mV"], "inh": spec["izh_weight_inh_mV"]}

    def build():
        from braincore.graph import Assembly

        a = Assembly(name="izhikevich2003")
        for name, (lo, hi) in ranges.items():
            a.add_population(name, "izhikevich", hi - lo, {**IZH_CELLS[name], "v_init": f"{IZH_V0} mV"},
                             method="euler")
        for source, (s_lo, s_hi) in ranges.items():
            for target, (t_lo, t_hi) in ranges.items():
                pre, post = np.meshgrid(np.arange(s_hi - s_lo), np.arange(t_hi - t_lo), indexing="ij")
                # the paper's distributions (overwritten below by the shared draw, synapse for synapse)
                weight = ({"dist": "uniform", "low": "0 mV", "high": "0.5 mV"} if source == "exc"
                          else {"dist": "uniform", "low": "0 mV", "high": "1 mV"})
                a.add_projection(source, target, {"type": "explicit", "pre": pre.ravel(), "post": post.ravel()},
                                 weight, {"type": "instantaneous"},
                                 sign="excitatory" if source == "exc" else "inhibitory")
        for name in ranges:
            a.add_input(f"{name}_thalamus", "poisson", name, rate=f"{spec['izh_rate_hz']} Hz",
                        weight=f"{drive[name]} mV", sources=1)
            a.add_monitor(f"{name}_spikes", "spikes", name)
        a.set_run(duration=spec["duration"], dt=DT, seed=spec["seed"], dtype="float64", backend=backend)
        return a

    def init(sim):
        """The shared weights into every projection (sparse vector and, when stored dense, the matrix)."""
        for proj in sim.projections:
            (s_lo, s_hi), (t_lo, t_hi) = ranges[proj.pre], ranges[proj.post]
            block = torch.as_tensor(w[s_lo:s_hi, t_lo:t_hi], dtype=proj.weight.dtype)
            rows = torch.repeat_interleave(torch.arange(proj.n_pre), proj.indptr[1:] - proj.indptr[:-1])
            proj.weight = block[rows, proj.post_idx].contiguous()
            if proj.dense is not None:
                proj.dense = block.clone()

    def collect(sim):
        return np.concatenate([sim.monitor(f"{name}_spikes")["counts"][0] for name in ranges]), {}

    return run_braincore(build, collect, backend=backend, method="euler", init=init,
                         run_fallback=spec["time_fallback"])


def brian2_izhikevich(net, spec, mode) -> Measurement:
    w = net["w"]
    n = w.shape[0]

    def build():
        from brian2 import Hz, Network, NeuronGroup, PoissonInput, SpikeMonitor, Synapses, mV

        eqs = """
        dv/dt = (0.04*v**2/mV + 5*v + 140*mV - u)/ms : volt
        du/dt = a*(b*v - u)/ms : volt
        a : 1 (constant)
        b : 1 (constant)
        c : volt (constant)
        d : volt (constant)
        """
        group = NeuronGroup(n, eqs, threshold="v >= vpeak", reset="v = c\nu += d", method="euler",
                            name="izhikevich")
        for name, (lo, hi) in izh_ranges().items():
            cell = IZH_CELLS[name]
            group.a[lo:hi] = cell["a"]
            group.b[lo:hi] = cell["b"]
            group.c[lo:hi] = cell["c"] * mV
            group.d[lo:hi] = cell["d"] * mV
        group.v = IZH_V0 * mV
        group.u = "b*v"
        syn = Synapses(group, group, "w : volt (constant)", on_pre="v_post += w", name="coupling")
        pre, post = np.meshgrid(np.arange(n, dtype=np.int32), np.arange(n, dtype=np.int32), indexing="ij")
        syn.connect(i=pre.ravel(), j=post.ravel())
        syn.w = w.ravel() * mV
        when = spec["brian2_izh_when"]
        syn.pre.when = when
        ne = IZH_NE
        thal_exc = PoissonInput(group[:ne], "v", 1, spec["izh_rate_hz"] * Hz,
                                weight=spec["izh_weight_exc_mV"] * mV, when=when)
        thal_inh = PoissonInput(group[ne:], "v", 1, spec["izh_rate_hz"] * Hz,
                                weight=spec["izh_weight_inh_mV"] * mV, when=when)
        spikes = SpikeMonitor(group, name="spikes")
        network = Network(group, syn, thal_exc, thal_inh, spikes)
        return network, {"vpeak": 30 * mV}, lambda: (np.asarray(spikes.count[:]), {})

    return run_brian2(build, spec["duration"], mode, dt_ms=DT, seed=spec["seed"], method="euler",
                      cache_dir=spec.get("cython_cache"), warmup=spec.get("warmup", False),
                      prefix="engine_models_brian2_")


# ================================================================================== cobahh
HH_N, HH_NE, HH_P = 4000, 3200, 0.02


def draw_cobahh(seed: int) -> dict[str, np.ndarray]:
    """Connectivity ``pre -> post`` (Bernoulli p = 0.02 per ordered pair, autapses possible) and initial state
    (v in mV, g_e and g_i in nS) of Brian2's COBAHH example."""
    rng = np.random.default_rng(seed)
    pres, posts = [], []
    for lo in range(0, HH_N, 500):
        hi = min(HH_N, lo + 500)
        i, j = np.nonzero(rng.random((hi - lo, HH_N)) < HH_P)
        pres.append(i + lo)
        posts.append(j)
    v0 = -60.0 + (rng.standard_normal(HH_N) * 5.0 - 5.0)
    ge0 = (rng.standard_normal(HH_N) * 1.5 + 4.0) * 10.0
    gi0 = (rng.standard_normal(HH_N) * 12.0 + 20.0) * 10.0
    return {"pre": np.concatenate(pres).astype(np.int64), "post": np.concatenate(posts).astype(np.int64),
            "v0": v0, "ge0": ge0, "gi0": gi0}


def brian2_cobahh(net, spec, mode) -> Measurement:
    def build():
        from brian2 import (Equations, Network, NeuronGroup, SpikeMonitor, Synapses, cm, ms, msiemens, mV,
                            nS, siemens, ufarad, umetre)

        area = 20000 * umetre ** 2
        namespace = {"Cm": (1 * ufarad * cm ** -2) * area, "gl": (5e-5 * siemens * cm ** -2) * area,
                     "El": -60 * mV, "EK": -90 * mV, "ENa": 50 * mV, "g_na": (100 * msiemens * cm ** -2) * area,
                     "g_kd": (30 * msiemens * cm ** -2) * area, "VT": -63 * mV, "taue": 5 * ms, "taui": 10 * ms,
                     "Ee": 0 * mV, "Ei": -80 * mV, "we": 6 * nS, "wi": 67 * nS}
        eqs = Equations("""
        dv/dt = (gl*(El-v) + ge*(Ee-v) + gi*(Ei-v) - g_na*(m*m*m)*h*(v-ENa) - g_kd*(n*n*n*n)*(v-EK))/Cm : volt
        dm/dt = alpha_m*(1-m) - beta_m*m : 1
        dn/dt = alpha_n*(1-n) - beta_n*n : 1
        dh/dt = alpha_h*(1-h) - beta_h*h : 1
        dge/dt = -ge*(1./taue) : siemens
        dgi/dt = -gi*(1./taui) : siemens
        alpha_m = 0.32*(mV**-1)*4*mV/exprel((13*mV-v+VT)/(4*mV))/ms : Hz
        beta_m = 0.28*(mV**-1)*5*mV/exprel((v-VT-40*mV)/(5*mV))/ms : Hz
        alpha_h = 0.128*exp((17*mV-v+VT)/(18*mV))/ms : Hz
        beta_h = 4./(1+exp((40*mV-v+VT)/(5*mV)))/ms : Hz
        alpha_n = 0.032*(mV**-1)*5*mV/exprel((15*mV-v+VT)/(5*mV))/ms : Hz
        beta_n = .5*exp((10*mV-v+VT)/(40*mV))/ms : Hz
        """)
        group = NeuronGroup(HH_N, eqs, threshold="v > -20*mV", refractory=3 * ms, method="exponential_euler",
                            name="cobahh")
        group.v = net["v0"] * mV
        group.ge = net["ge0"] * nS
        group.gi = net["gi0"] * nS
        pre, post = net["pre"], net["post"]
        exc = pre < HH_NE
        ce = Synapses(group, group, on_pre="ge += we", name="exc_synapses")
        ce.connect(i=pre[exc].astype(np.int32), j=post[exc].astype(np.int32))
        ci = Synapses(group, group, on_pre="gi += wi", name="inh_synapses")
        ci.connect(i=pre[~exc].astype(np.int32), j=post[~exc].astype(np.int32))
        spikes = SpikeMonitor(group, name="spikes")
        return Network(group, ce, ci, spikes), namespace, lambda: (np.asarray(spikes.count[:]), {})

    return run_brian2(build, spec["duration"], mode, dt_ms=DT, seed=spec["seed"], method="exponential_euler",
                      cache_dir=spec.get("cython_cache"), warmup=spec.get("warmup", False),
                      prefix="engine_models_brian2_")


# braincore side of cobahh: configs/cobahh.yaml (a user model written as equations in the YAML, the Traub-Miles
# neuron of Brian2's example, exponential Euler) with the shared network of ``draw_cobahh`` put in: the file's
# populations (model, size, method) and its projections' synapses, weights and signs, with explicit connectors
# from ``net["pre"]``, ``net["post"]``; the initial v of every neuron and the initial conductances of the synaptic
# groups (``sim.groups``: conductance kinds with tau 5 ms and 10 ms) from ``net["v0"]``, ``net["ge0"]``,
# ``net["gi0"]``; the file's 20 ms Poisson kick (which stands in for the random initial conductances when the file
# is run on its own) is left out, as are its random connectors and initial values.
COBAHH_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "cobahh.yaml"


def cobahh_ranges() -> dict[str, tuple[int, int]]:
    return {"exc": (0, HH_NE), "inh": (HH_NE, HH_N)}


def braincore_cobahh(net, spec, backend) -> Measurement:
    import torch

    ranges = cobahh_ranges()

    def build():
        from braincore.assembly_config import load_assembly
        from braincore.graph import Assembly

        config = load_assembly(COBAHH_CONFIG)
        a = Assembly(name="cobahh")
        for pop in config.populations():
            lo, hi = ranges[pop.name]
            assert pop.size == hi - lo, (pop.name, pop.size)
            a.add_population(pop.name, pop.model, pop.size, pop.params, method=pop.method)
        pre, post = net["pre"], net["post"]
        for proj in config.projections():
            (s_lo, s_hi), (t_lo, t_hi) = ranges[proj.pre], ranges[proj.post]
            keep = (pre >= s_lo) & (pre < s_hi) & (post >= t_lo) & (post < t_hi)
            connector = {"type": "explicit", "pre": pre[keep] - s_lo, "post": post[keep] - t_lo}
            a.add_projection(proj.pre, proj.post, connector, proj.weight, proj.synapse, name=proj.name,
                             sign=proj.sign)
        for name in ranges:
            a.add_monitor(f"{name}_spikes", "spikes", name)
        a.set_run(duration=spec["duration"], dt=DT, seed=spec["seed"], dtype="float64", backend=backend)
        return a

    def init(sim):
        for name, (lo, hi) in ranges.items():
            pop = sim.populations[name]
            pop.state.v.copy_(torch.as_tensor(net["v0"][lo:hi], dtype=torch.float64)[None])
            for index in pop.groups:
                group = sim.groups[index]
                source = {5.0: "ge0", 10.0: "gi0"}[group.tau]
                group.x.copy_(torch.as_tensor(net[source][lo:hi], dtype=torch.float64)[None])

    def collect(sim):
        return np.concatenate([sim.monitor(f"{name}_spikes")["counts"][0] for name in ranges]), {}

    return run_braincore(build, collect, backend=backend, method="exponential_euler", init=init,
                         run_fallback=spec["time_fallback"])


# ================================================================================== workers
DRAW = {"coba_stdp": lambda seed: sim_coba.draw_network(COBA_N, seed), "izhikevich": draw_izhikevich,
        "cobahh": draw_cobahh}
BRAINCORE = {"coba_stdp": braincore_coba_stdp, "izhikevich": braincore_izhikevich, "cobahh": braincore_cobahh}
BRIAN2 = {"coba_stdp": brian2_coba_stdp, "izhikevich": brian2_izhikevich, "cobahh": brian2_cobahh}


def worker(spec: dict[str, Any]) -> None:
    """Subprocess entry: measure one configuration and print the result after :data:`RESULT_MARK`."""
    net = sim_coba.load_network(spec["network"])
    sim = spec["simulator"]
    if sim.startswith("braincore-"):
        backend = {"native": "auto", "torch": "torch"}[sim.split("-", 1)[1]]
        result = BRAINCORE[spec["workload"]](net, spec, backend)
    else:
        result = BRIAN2[spec["workload"]](net, spec, sim.split("-", 1)[1])
    report(result, RESULT_MARK)


# ================================================================================== driver
def network_shape(workload: str, net: dict[str, np.ndarray]) -> tuple[int, int, np.ndarray]:
    """``(N, N_exc, pre)``: size, excitatory count and the presynaptic index of every recurrent synapse."""
    if workload == "izhikevich":
        n = net["w"].shape[0]
        return n, IZH_NE, np.repeat(np.arange(n), n)
    if workload == "coba_stdp":
        n = net["v0"].size
        return n, sim_coba.MODEL.n_exc(n), net["pre"]
    return HH_N, HH_NE, net["pre"]


def summarize(workload: str, sim: str, net: dict[str, np.ndarray], runs: Sequence[Measurement], duration: float,
              compile_s: Optional[float]) -> dict[str, Any]:
    """One output row: medians over the repeats ``runs`` of one simulator on one workload."""
    n, n_exc, pre = network_shape(workload, net)
    first = runs[0]
    row: dict[str, Any] = {"workload": workload, "simulator": sim, "status": "ok",
                           "engine": first.extra.get("engine", sim.split("-", 1)[1]),
                           "fallback_reason": first.extra.get("fallback_reason") or None,
                           "N": n, "synapses": int(pre.size), "method": first.method, "duration_ms": duration,
                           "dt_ms": DT, "repeats": len(runs)}

    def median(field: str) -> Optional[float]:
        values = [getattr(r, field) for r in runs if getattr(r, field) is not None]
        return round_sig(statistics.median(values)) if values else None

    row["build_s"] = median("build_s")
    row["compile_s"] = round_sig(compile_s) if compile_s is not None else median("compile_s")
    if first.run_s is None:  # built, not run: auto fell back to the torch engine
        row.update(status="fallback", run_s=None, note=first.extra.get("skipped"),
                   peak_rss_mb=median("peak_rss_mb"), import_rss_mb=median("import_rss_mb"))
        return row
    counts = np.asarray(first.counts, dtype=np.int64)
    seconds = duration / 1000.0
    run_s = statistics.median(r.run_s for r in runs)
    events = sim_coba.synaptic_events(counts, pre)
    row.update({
        "run_s": round_sig(run_s), "run_s_all": [round_sig(r.run_s) for r in runs],
        "spikes": int(counts.sum()), "mean_rate_hz": round_sig(counts.sum() / (n * seconds)),
        "rate_exc_hz": round_sig(counts[:n_exc].sum() / (n_exc * seconds)),
        "rate_inh_hz": round_sig(counts[n_exc:].sum() / ((n - n_exc) * seconds)),
        "events": events, "events_per_s": round_sig(events / run_s) if run_s else None,
        "peak_rss_mb": median("peak_rss_mb"), "import_rss_mb": median("import_rss_mb"),
        "end_rss_mb": median("end_rss_mb"),
        "deterministic": len({tuple(r.counts) for r in runs}) == 1,
    })
    for key in ("w_ee_mean_nS", "w_ee_std_nS"):
        if key in first.extra:
            row[key] = round_sig(statistics.median(r.extra[key] for r in runs), 5)
    for field in ("driver_rss_mb", "binary_s"):
        if getattr(first, field) is not None:
            row[field] = median(field)
    return row


def unsupported_row(workload: str, sim: str, net: dict[str, np.ndarray], duration: float) -> dict[str, Any]:
    n, _, pre = network_shape(workload, net)
    return {"workload": workload, "simulator": sim, "status": NOT_SUPPORTED, "engine": None,
            "fallback_reason": None, "N": n, "synapses": int(pre.size), "method": "-", "duration_ms": duration,
            "dt_ms": DT, "repeats": 0, "build_s": None, "compile_s": None, "run_s": None,
            "note": NOT_SUPPORTED}


def table(rows: Sequence[dict[str, Any]], title: str = "") -> str:
    """The summary table (medians), the run-time ratios per workload and the fallback reasons."""
    head = (f"{'workload':<10} {'simulator':<17} {'engine':>10} {'N':>5} {'synapses':>8} {'method':>17} "
            f"{'build_s':>7} {'compile_s':>9} {'run_s':>8} {'spikes':>7} {'rate_Hz':>7} {'exc_Hz':>6} "
            f"{'inh_Hz':>6} {'w_ee_nS':>7} {'peak_MB':>7}")
    lines = ([title] if title else []) + [head, "-" * len(head)]
    order = lambda r: (WORKLOADS.index(r["workload"]), SIMULATORS.index(r["simulator"]))  # noqa: E731
    for r in sorted(rows, key=order):
        start = (f"{r['workload']:<10} {r['simulator']:<17} {fmt(r.get('engine')):>10} {r['N']:>5} "
                 f"{r['synapses']:>8} {r['method']:>17} ")
        if r["status"] == NOT_SUPPORTED:
            lines.append(start + f"{'':>7} {NOT_SUPPORTED}")
            continue
        if r["status"] == "fallback":
            lines.append(start + f"{fmt(r['build_s']):>7} {fmt(r['compile_s']):>9} "
                                 f"  backend auto -> torch engine (not timed again: see braincore-torch)")
            continue
        lines.append(start + f"{fmt(r['build_s']):>7} {fmt(r['compile_s']):>9} {fmt(r['run_s'], '.4g'):>8} "
                             f"{r['spikes']:>7} {fmt(r['mean_rate_hz'], '.2f'):>7} {fmt(r['rate_exc_hz'], '.2f'):>6} "
                             f"{fmt(r['rate_inh_hz'], '.2f'):>6} {fmt(r.get('w_ee_mean_nS'), '.4f'):>7} "
                             f"{fmt(r['peak_rss_mb'], '.0f'):>7}")
    lines.append("")
    lines.append("run-time ratios (median run_s; < 1: braincore is faster; '-': not measured)")
    ratio_head = (f"{'workload':<10} {'native/standalone':>17} {'torch/standalone':>16} {'native/cython':>13} "
                  f"{'torch/cython':>12} {'standalone/cython':>17}")
    lines += [ratio_head, "-" * len(ratio_head)]
    by = {(r["workload"], r["simulator"]): r.get("run_s") for r in rows}

    def ratio(w: str, a: str, b: str) -> str:
        x, y = by.get((w, a)), by.get((w, b))
        return f"{x / y:.3f}" if x and y else "-"

    for w in [w for w in WORKLOADS if any(r["workload"] == w for r in rows)]:
        lines.append(f"{w:<10} {ratio(w, 'braincore-native', 'brian2-standalone'):>17} "
                     f"{ratio(w, 'braincore-torch', 'brian2-standalone'):>16} "
                     f"{ratio(w, 'braincore-native', 'brian2-cython'):>13} "
                     f"{ratio(w, 'braincore-torch', 'brian2-cython'):>12} "
                     f"{ratio(w, 'brian2-standalone', 'brian2-cython'):>17}")
    notes = [f"  {r['workload']}: sim.engine = {r['engine']}; sim.fallback_reason = {r['fallback_reason']}"
             for r in sorted(rows, key=order) if r["simulator"] == "braincore-native" and r.get("engine")]
    notes += [f"  {r['workload']}: {r['note']}" for r in sorted(rows, key=order)
              if r["status"] == NOT_SUPPORTED and r["simulator"] == "braincore-native"]
    if notes:
        lines += ["", "braincore backend auto (the braincore-native rows):"] + notes
    return "\n".join(lines)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=WORKLOADS, metavar="W",
                        help=f"workloads (default all: {', '.join(WORKLOADS)})")
    parser.add_argument("--sims", nargs="+", default=list(SIMULATORS), choices=SIMULATORS, metavar="SIM",
                        help=f"simulators (default all: {', '.join(SIMULATORS)})")
    parser.add_argument("--repeat", type=int, default=3, help="runs per simulator and workload; medians reported")
    parser.add_argument("--torch-repeat", type=int, default=None,
                        help="runs of the braincore torch engine (default: --repeat)")
    parser.add_argument("--duration", type=float, default=1000.0, help="simulated time in ms (default 1000)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the networks (and of the run-time noise)")
    parser.add_argument("--quick", action="store_true", help="smoke test: 1 repeat, 100 ms")
    parser.add_argument("--time-fallback", action="store_true",
                        help="time the braincore-native (backend auto) row even when it falls back to torch")
    parser.add_argument("--drive-pA", type=float, default=200.0, help="coba_stdp: constant current per neuron")
    parser.add_argument("--stdp-wmax-nS", type=float, default=12.0, help="coba_stdp: upper weight bound (2 w_e)")
    parser.add_argument("--stdp-eta", type=float, default=None,
                        help="coba_stdp: eta (the A's in units of eta nS; default w_max: A's relative to w_max)")
    parser.add_argument("--izh-rate-hz", type=float, default=25.0, help="izhikevich: thalamic Poisson rate (Hz)")
    parser.add_argument("--izh-weight-exc-mV", type=float, default=14.0, help="izhikevich: jump onto exc cells")
    parser.add_argument("--izh-weight-inh-mV", type=float, default=14.0, help="izhikevich: jump onto inh cells")
    parser.add_argument("--brian2-izh-when", default="before_groups", choices=("before_groups", "synapses"),
                        help="izhikevich: Brian2 slot of the voltage jumps (before_groups = braincore's order)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds allowed per subprocess")
    parser.add_argument("--json-out", type=Path, help="write {'meta': ..., 'rows': [...]} to this file")
    parser.add_argument("--table-out", type=Path, help="write the summary table to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeat, args.duration = 1, 100.0
        args.torch_repeat = 1
    if args.torch_repeat is None:
        args.torch_repeat = args.repeat
    if args.stdp_eta is None:
        args.stdp_eta = args.stdp_wmax_nS
    if args.repeat < 1 or args.torch_repeat < 1:
        parser.error("--repeat and --torch-repeat must be >= 1")
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    one_thread()  # inherited by every subprocess, and by Brian2's compiled binary
    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    sims = [s for s in SIMULATORS if s in args.sims]
    rows: list[dict[str, Any]] = []
    scratch = tempfile.mkdtemp(prefix="engine_models_")
    common = {"duration": args.duration, "seed": args.seed, "drive_pA": args.drive_pA,
              "stdp_eta": args.stdp_eta, "stdp_wmax_nS": args.stdp_wmax_nS, "izh_rate_hz": args.izh_rate_hz,
              "izh_weight_exc_mV": args.izh_weight_exc_mV, "izh_weight_inh_mV": args.izh_weight_inh_mV,
              "brian2_izh_when": args.brian2_izh_when, "time_fallback": args.time_fallback}
    try:
        for workload in [w for w in WORKLOADS if w in args.workloads]:
            start = time.perf_counter()
            net = DRAW[workload](args.seed)
            path = os.path.join(scratch, f"{workload}.npz")
            np.savez(path, **net)
            n, _, pre = network_shape(workload, net)
            log(f"{workload}: N={n}, {pre.size} synapses drawn in {time.perf_counter() - start:.2f} s")
            for sim in sims:
                if sim.startswith("braincore-") and not BRAINCORE_SUPPORTED[workload]:
                    row = unsupported_row(workload, sim, net, args.duration)
                    log(f"  {sim}: {row['note']}")
                    rows.append(row)
                    print(json.dumps(row), flush=True)
                    continue
                spec = {**common, "workload": workload, "simulator": sim, "network": path,
                        "cython_cache": os.path.join(scratch, f"cython_cache_{workload}")}
                compile_s = None
                if sim == "brian2-cython":
                    warm = measure(__file__, {**spec, "warmup": True}, args.timeout, RESULT_MARK)
                    compile_s = warm.compile_s
                    log(f"  {sim}: warm-up (code generation + compilation into the cache) {compile_s:.2f} s")
                repeat = args.torch_repeat if sim == "braincore-torch" else args.repeat
                runs = []
                for i in range(repeat):
                    result = measure(__file__, spec, args.timeout, RESULT_MARK)
                    runs.append(result)
                    if result.run_s is None:
                        log(f"  {sim}: engine {result.extra.get('engine')} "
                            f"(fallback_reason: {result.extra.get('fallback_reason')}); not timed")
                        break
                    engine = f" [{result.extra['engine']} engine]" if "engine" in result.extra else ""
                    weight = (f", w_ee {result.extra['w_ee_mean_nS']:.4f} nS" if "w_ee_mean_nS" in result.extra
                              else "")
                    log(f"  {sim}{engine} run {i + 1}/{repeat}: build {result.build_s:.2f} s, run "
                        f"{result.run_s:.3f} s, {sum(result.counts)} spikes{weight}, "
                        f"peak {result.peak_rss_mb:.0f} MB")
                row = summarize(workload, sim, net, runs, args.duration, compile_s)
                rows.append(row)
                print(json.dumps(row), flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    reps = (f"median of {args.repeat} run(s)" + (f" ({args.torch_repeat} for braincore-torch)"
                                                 if args.torch_repeat != args.repeat else ""))
    title = (f"engine models, {args.duration:g} ms at dt = {DT:g} ms, float64, seed {args.seed}, {reps}, one thread; "
             f"times in s, memory in MiB; w_ee_nS: mean exc->exc weight after the run (coba_stdp, w(0) = 6 nS)")
    text = table(rows, title)
    print()
    print(text)
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        meta = {"command": " ".join(["python", sys.argv[0], *(argv if argv is not None else sys.argv[1:])]),
                "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                "environment": environment()}
        args.json_out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    if args.table_out:
        args.table_out.parent.mkdir(parents=True, exist_ok=True)
        args.table_out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        worker(json.loads(sys.argv[2]))
    else:
        sys.exit(main())
