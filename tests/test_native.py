"""The native C engine against the PyTorch engine (the reference), and its own guarantees.

In float64 the C kernel performs the PyTorch engine's operations in the same order, so on networks without
Poisson noise both engines must produce the same spikes (exact equality of every (step, trial, neuron)
triple) and the same final state (alpha kernels to 1e-9: ATen may fuse ``x + c h`` into one FMA, which
rounds once instead of twice). Poisson inputs come from the kernel's own generator; they are checked against
Poisson statistics and for reproducibility instead.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from braincore.graph import Assembly
from braincore.errors import ConfigError
from braincore.simulator import Simulator

native = pytest.importorskip("braincore.native")
try:
    native.load_library("float64")
    native.load_library("float32")
except native.NativeUnavailable as err:  # no C compiler on this machine
    pytest.skip(f"native engine unavailable: {err}", allow_module_level=True)

DT = 0.1
LIF_CELL = {"tau_m": "20 ms", "R_m": "100 MOhm", "v_rest": "-60 mV", "v_reset": "-60 mV", "v_th": "-50 mV",
            "t_ref": "2 ms"}


def mixed_network(dtype: str = "float64", batch: int = 2) -> Assembly:
    """Every model, kernel, delay kind and deterministic input the native engine supports, recurrently wired."""
    a = Assembly(name="mixed")
    init = {"v": {"dist": "uniform", "low": "-60 mV", "high": "-50 mV"}}
    a.add_population("lif", "lif", 120, LIF_CELL, init=init)
    a.add_population("lif_euler", "lif", 60, dict(LIF_CELL, reset="subtract"), method="euler", init=init)
    a.add_population("integrator", "if", 40, {"C_m": "200 pF", "v_rest": "-60 mV", "v_reset": "-60 mV",
                                              "v_th": "-50 mV", "t_ref": "1 ms"})
    alif = {"tau_m": "20 ms", "R_m": "100 MOhm", "v_rest": "-60 mV", "v_reset": "-60 mV", "b0": "-50 mV",
            "beta": "2 mV", "tau_a": "100 ms", "t_ref": "2 ms"}
    a.add_population("alif", "alif", 50, alif, init=init)
    a.add_population("alif_euler", "alif", 30, dict(alif, reset="subtract"), method="euler", init=init)
    ampa = {"type": "conductance", "tau": "5 ms", "E_rev": "0 mV"}
    gaba = {"type": "conductance", "tau": "10 ms", "E_rev": "-80 mV"}
    a.add_projection("lif", "lif", {"type": "fixed_probability", "p": 0.1}, "2 nS", ampa,
                     {"dist": "uniform", "low": "0.1 ms", "high": "3 ms"}, sign="excitatory")
    a.add_projection("lif", "alif", {"type": "fixed_indegree", "k": 12}, {"dist": "normal", "mean": 0.05,
                     "std": 0.02}, {"type": "exponential", "tau": "3 ms"}, "1.5 ms")
    a.add_projection("alif", "lif", {"type": "fixed_probability", "p": 0.2}, "20 nS", gaba, "0.5 ms",
                     sign="inhibitory")
    a.add_projection("lif", "lif_euler", {"type": "all_to_all"}, "0.3 mV", None, "1 ms", storage="dense")
    a.add_projection("lif_euler", "integrator", {"type": "fixed_probability", "p": 0.3}, "0.2 nA",
                     {"type": "alpha", "tau": "2 ms"}, {"dist": "uniform", "low": "0.1 ms", "high": "2 ms"})
    a.add_projection("integrator", "alif_euler", {"type": "fixed_indegree", "k": 5}, "1 mV", None, "0.2 ms")
    a.add_projection("alif_euler", "alif_euler", {"type": "fixed_probability", "p": 0.2}, "-0.5 mV")
    a.add_input("bias", "constant_current", "lif", amplitude="0.12 nA")
    a.add_input("pulse", "step_current", "lif_euler", amplitude="0.25 nA", start="20 ms", stop="120 ms")
    a.add_input("ramp", "time_varying_current", "integrator",
                values=list(np.linspace(0.0, 0.3, 1500)))
    a.add_input("few", "constant_current", "alif", amplitude="0.2 nA", neurons=[0, 3, 7, 11])
    a.add_input("tonic", "constant_current", "alif_euler", amplitude="0.11 nA")
    for pop in ("lif", "lif_euler", "integrator", "alif", "alif_euler"):
        a.add_monitor(f"{pop}_spikes", "spikes", pop)
    a.add_monitor("lif_rate", "rate", "lif", bin="5 ms")
    a.set_run(duration=200.0, dt=DT, seed=7, dtype=dtype, batch=batch)
    return a


def assert_same_run(sim_a: Simulator, sim_b: Simulator, state_atol: float = 0.0) -> None:
    for monitor in sim_a.monitors:
        a, b = sim_a.monitor(monitor.name), sim_b.monitor(monitor.name)
        if "rate_hz" in a:
            np.testing.assert_array_equal(a["rate_hz"], b["rate_hz"])
            continue
        if "step" not in a:  # a state monitor
            for key, value in a.items():
                np.testing.assert_allclose(value, b[key], rtol=0.0, atol=state_atol, err_msg=f"{monitor.name}/{key}")
            continue
        for key in ("step", "trial", "neuron", "counts"):
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{monitor.name}/{key}")
    for name, pop in sim_a.populations.items():
        other = sim_b.populations[name].state
        for field in pop.state._fields:
            torch.testing.assert_close(getattr(pop.state, field), getattr(other, field), rtol=0.0, atol=state_atol)


def test_native_engine_is_chosen_and_matches_torch_spike_for_spike_in_float64():
    torch_sim = Simulator(mixed_network(), backend="torch").run()
    native_sim = Simulator(mixed_network(), backend="native").run()
    assert native_sim.engine == "native" and torch_sim.engine == "torch"
    counts = native_sim.spike_counts()
    assert all(c > 0 for c in counts.values()), counts  # every population takes part
    assert_same_run(torch_sim, native_sim, state_atol=1e-9)


def test_float32_runs_agree_statistically():
    # float32: the scalar constants round to float32 in both engines, yet ATen's vectorised kernels may order
    # or fuse operations differently; spikes then drift apart after many steps, rates may not.
    t = Simulator(mixed_network("float32", batch=1), backend="torch").run().spike_counts()
    n = Simulator(mixed_network("float32", batch=1), backend="native").run().spike_counts()
    for pop in t:
        assert abs(t[pop] - n[pop]) <= 0.05 * t[pop] + 5, (pop, t[pop], n[pop])


def test_engines_can_alternate_within_one_simulation():
    whole = Simulator(mixed_network(), backend="torch").run()
    mixed = Simulator(mixed_network(), backend="native").run(80.0)
    mixed.backend, mixed._engine, mixed._native_checked = "torch", None, False
    mixed.run(120.0)
    assert_same_run(whole, mixed, state_atol=1e-9)


def test_weights_edited_in_place_between_runs_reach_the_native_kernel():
    """Projections whose weights are all equal are delivered as one number (no weight loads); editing one weight in
    place between runs must end that: spikes stay the PyTorch engine's, before and after the edit."""
    sims = [Simulator(mixed_network(), backend=backend) for backend in ("torch", "native")]
    for sim in sims:
        sim.run(80.0)
        weight = sim.projections[0].weight  # lif -> lif, "2 nS" everywhere
        assert bool((weight == weight[0]).all())
        weight[::3] *= 4.0
        sim.run(120.0)
    assert sims[1].engine == "native"
    assert_same_run(*sims, state_atol=1e-9)
    untouched = Simulator(mixed_network(), backend="native").run()
    assert untouched.spike_counts() != sims[1].spike_counts()  # the edit changed the network's activity


def poisson_network(rate: str, sources: int, n: int = 400, batch: int = 1) -> Assembly:
    a = Assembly(name="poisson")
    a.add_population("p", "lif", n, dict(LIF_CELL, v_th="1000 mV"))  # never fires: v integrates the input
    a.add_input("drive", "poisson", "p", rate=rate, weight="1 nA", sources=sources,
                synapse={"type": "exponential", "tau": "1e9 ms"})  # x accumulates the counts (no decay)
    a.add_monitor("s", "spikes", "p")
    a.set_run(duration=100.0, dt=DT, seed=3, dtype="float64", batch=batch)
    return a


@pytest.mark.parametrize("rate,sources", [("50 Hz", 1), ("20 Hz", 100), ("40 Hz", 10000)])
def test_native_poisson_counts_have_poisson_mean_and_variance(rate, sources):
    # lambda per step: 0.005 (mostly zeros), 0.2 (multiplication method), 40 (transformed rejection).
    # After 1000 steps each neuron's total is Poisson(1000 lambda); over 400 neurons the sample mean has a
    # relative standard error of 1/sqrt(400 * 1000 lambda) <= 0.7 %, the sample variance one of
    # ~sqrt(2/399) = 7 %; tolerances are 5 and 4 standard errors.
    sim = Simulator(poisson_network(rate, sources), backend="native")
    sim.run()
    group = sim.groups[0]
    totals = group.x[0].numpy() / 1.0  # 1 nA per event, no decay over 100 ms (tau 1e9 ms)
    lam = float(rate.split()[0]) * sources * DT / 1000.0 * 1000
    assert totals.mean() == pytest.approx(lam, rel=5 / math.sqrt(400 * lam))
    assert totals.var(ddof=1) == pytest.approx(lam, rel=4 * math.sqrt(2 / 399))
    np.testing.assert_allclose(totals, np.round(totals), atol=1e-6 * lam)  # whole counts


def test_native_poisson_run_is_reproducible_and_resumes_bit_identically(tmp_path):
    a = Assembly(name="noisy")
    a.add_population("p", "lif", 200, LIF_CELL)
    a.add_projection("p", "p", {"type": "fixed_probability", "p": 0.05}, "0.5 mV", None,
                     {"dist": "uniform", "low": "0.1 ms", "high": "2 ms"})
    a.add_input("drive", "poisson", "p", rate="9 Hz", weight="1.2 mV", sources=100)
    a.add_monitor("s", "spikes", "p")
    a.add_monitor("r", "rate", "p", bin="3 ms")
    a.set_run(duration=100.0, dt=DT, seed=11, dtype="float64", batch=2, backend="native")
    whole = Simulator(a).run()
    again = Simulator(a).run()
    assert_same_run(whole, again)
    parts = Simulator(a).run(37.0)
    path = parts.save(tmp_path / "ckpt.pt")
    parts.run(63.0)
    resumed = Simulator(a).load(path).run(63.0)
    assert_same_run(whole, parts)
    assert_same_run(whole, resumed)
    counts = whole.monitors[0].counts
    assert counts.sum() > 100 and not torch.equal(counts[0], counts[1])  # active, trials independent


def test_spike_buffer_flushes_and_max_spikes_bound(monkeypatch):
    import braincore.native.engine as engine

    monkeypatch.setattr(engine, "SPIKE_BUFFER_MIN", 16)  # force many flushes
    for max_spikes in (None, 250):
        results = []
        for backend in ("torch", "native"):
            a = mixed_network()
            a.monitors[:] = [dataclasses.replace(spec, max_spikes=max_spikes) if spec.type == "spikes" else spec
                             for spec in a.monitors]
            results.append(Simulator(a, backend=backend).run(60.0))
        assert_same_run(*results, state_atol=1e-9)
        if max_spikes:
            m = results[1].monitors[0]
            assert m.stored == max_spikes and m.dropped == int(m.counts.sum()) - max_spikes > 0


def test_backend_native_reports_what_it_cannot_run_and_auto_falls_back():
    a = Assembly(name="plastic")
    a.add_population("p", "lif", 10, LIF_CELL)
    a.add_projection("p", "p", {"type": "all_to_all"}, "1 mV", None, "1 ms",
                     plasticity={"rule": "synaptic_scaling"}, name="pp", storage="dense")
    a.set_run(duration=5.0, dt=DT)
    reasons = native.unsupported_reasons(Simulator(a, backend="torch"))
    assert any("dense storage" in reason for reason in reasons)  # plasticity natively updates a synapse list
    with pytest.raises(ConfigError) as err:
        Simulator(a, backend="native").run()
    assert "pp" in str(err.value)
    auto = Simulator(a).run()
    assert auto.engine == "torch" and "pp" in auto.fallback_reason


def nonlinear_network(batch: int = 2) -> Assembly:
    """Izhikevich, AdEx and Hodgkin–Huxley populations (every method), per-neuron parameters, state monitors."""
    a = Assembly(name="nonlinear")
    a.add_population("izh", "izhikevich", 80, preset="chattering",
                     init={"v": {"dist": "uniform", "low": "-70 mV", "high": "-50 mV"}})
    a.add_population("adex", "adex", 40, preset="adapting", init={"v": {"dist": "uniform", "low": "-70 mV",
                                                                      "high": "-55 mV"}})
    a.add_population("adex_ref", "adex", 30, {"t_ref": "2 ms"})
    for method in ("exponential_euler", "rk4", "euler"):
        a.add_population(f"hh_{method}", "hh", 20, method=method)
    a.add_projection("izh", "izh", {"type": "fixed_probability", "p": 0.1}, "1.5 mV", None,
                     {"dist": "uniform", "low": "0.1 ms", "high": "2 ms"})
    a.add_projection("izh", "adex", {"type": "fixed_indegree", "k": 10}, "3 nS",
                     {"type": "conductance", "tau": "5 ms", "E_rev": "0 mV"}, "1 ms", sign="excitatory")
    a.add_projection("adex", "hh_exponential_euler", {"type": "fixed_indegree", "k": 8}, "0.5 uA/cm2",
                     {"type": "exponential", "tau": "2 ms"}, "0.5 ms")
    a.add_projection("hh_exponential_euler", "hh_rk4", {"type": "all_to_all"}, "0.05 mS/cm2",
                     {"type": "conductance", "tau": "3 ms", "E_rev": "0 mV"}, "1 ms")
    a.add_input("thalamus", "constant_current", "izh", amplitude=6.0)
    a.add_input("bias", "constant_current", "adex_ref", amplitude="0.9 nA")
    a.add_input("pulse", "step_current", "hh_exponential_euler", amplitude="7 uA/cm2", start="5 ms", stop="60 ms")
    a.add_input("ramp", "time_varying_current", "hh_euler", values=list(np.linspace(0.0, 12.0, 1200)))
    for pop in ("izh", "adex", "adex_ref", "hh_exponential_euler", "hh_rk4", "hh_euler"):
        a.add_monitor(f"{pop}_spikes", "spikes", pop)
    a.add_monitor("hh_v", "state", "hh_rk4", ["v", "m"], neurons=[0, 5])
    a.set_run(duration=100.0, dt=0.02, seed=11, dtype="float64", batch=batch)
    return a


def test_nonlinear_models_run_natively_with_the_torch_engines_spikes():
    torch_sim = Simulator(nonlinear_network(), backend="torch").run()
    native_sim = Simulator(nonlinear_network(), backend="native").run()
    assert native_sim.engine == "native"
    counts = native_sim.spike_counts()
    assert all(c > 0 for c in counts.values()), counts
    # Izhikevich has no transcendental function: bit for bit; AdEx and HH call exp, whose last bit may differ
    # between ATen's vectorised exp and the C library's: spikes identical, state to 1e-9 mV.
    assert_same_run(torch_sim, native_sim, state_atol=1e-9)
    a, b = torch_sim.monitor("hh_v"), native_sim.monitor("hh_v")
    np.testing.assert_allclose(a["v"], b["v"], rtol=0, atol=1e-9)
    torch.testing.assert_close(torch_sim.populations["izh"].state.v, native_sim.populations["izh"].state.v,
                               rtol=0, atol=0)


def test_the_scalar_math_build_is_used_where_vector_math_does_not_link(monkeypatch, tmp_path):
    """Without a usable libmvec the kernel is built with the scalar libm (a failed vector build is remembered next
    to the library, not retried), and gives the vector build's spikes on a network whose steps call exp and
    expm1 (states within 1e-9: the two differ in the last bits of those calls)."""
    from braincore.native import build

    vector = Simulator(nonlinear_network(batch=1), backend="native").run(40.0)
    monkeypatch.setenv("BRAINCORE_CACHE", str(tmp_path))
    monkeypatch.setattr(build, "VECTOR_MATH_LIBS", ("-lbraincore_no_such_library",))
    build.load_generated.cache_clear()
    try:
        scalar = Simulator(nonlinear_network(batch=1), backend="native").run(40.0)
        assert scalar.engine == "native"
        assert len(list(tmp_path.glob("*.failed"))) == 1 and len(list(tmp_path.glob("*.so"))) == 1
        build.load_generated.cache_clear()  # as a new process: the note stops a second vector compile
        Simulator(nonlinear_network(batch=1), backend="native").run(1.0)
        assert len(list(tmp_path.glob("*.failed"))) == 1 and len(list(tmp_path.glob("*.so"))) == 1
    finally:
        build.load_generated.cache_clear()
    assert_same_run(vector, scalar, state_atol=1e-9)


def test_per_neuron_parameters_run_natively():
    a = Assembly(name="hetero")
    a.add_population("p", "lif", 50, dict(LIF_CELL, tau_m=torch.linspace(10.0, 30.0, 50, dtype=torch.float64)))
    a.add_input("bias", "constant_current", "p", amplitude="0.15 nA")
    a.add_monitor("s", "spikes", "p")
    a.set_run(duration=100.0, dt=DT, dtype="float64")
    torch_sim = Simulator(a, backend="torch").run()
    native_sim = Simulator(a, backend="native").run()
    assert native_sim.spike_counts()["p"] > 0
    assert_same_run(torch_sim, native_sim)


def test_unknown_backend_is_a_validation_problem():
    a = mixed_network()
    a.set_run(backend="nativ")
    problems = a.validate()
    assert any("backend" in str(p) and "native" in str(p) for p in problems), problems


def twin_network(batch: int = 2) -> Assembly:
    """Two populations with the same model, parameters, inputs and synapse groups (the PyTorch engine steps them as
    one flat tensor), each with current, conductance and alpha groups, uniform and per-synapse delays; a pulse
    makes many neurons fire in the same step (the vectorised propagation) besides steps with few spikes (the
    spike loop), and a third population with other parameters steps alone."""
    a = Assembly(name="twins")
    init = {"v": {"dist": "uniform", "low": "-60 mV", "high": "-50 mV"}}
    for name in ("left", "right"):
        a.add_population(name, "lif", 150, LIF_CELL, init=init)
        a.add_input(f"{name}_bias", "constant_current", name, amplitude="0.1 nA")
        a.add_input(f"{name}_pulse", "step_current", name, amplitude="0.4 nA", start="40 ms", stop="42 ms")
        a.add_monitor(f"{name}_spikes", "spikes", name)
    a.add_population("other", "lif", 60, dict(LIF_CELL, tau_m="10 ms"), init=init)
    a.add_input("other_bias", "constant_current", "other", amplitude="0.16 nA")
    a.add_monitor("other_spikes", "spikes", "other")
    a.add_monitor("left_v", "state", "left", variables=["v"], neurons=[0, 5, 149])
    ampa = {"type": "conductance", "tau": "5 ms", "E_rev": "0 mV"}
    alpha = {"type": "alpha", "tau": "2 ms"}
    for pre, post in (("left", "right"), ("right", "left"), ("left", "left"), ("right", "right")):
        a.add_projection(pre, post, {"type": "fixed_probability", "p": 0.1}, "1 nS", ampa,
                         {"dist": "uniform", "low": "0.1 ms", "high": "3 ms"}, sign="excitatory")
        a.add_projection(pre, post, {"type": "fixed_indegree", "k": 8}, "0.02 nA", alpha, "0.5 ms")
    a.add_projection("other", "left", {"type": "fixed_indegree", "k": 5}, "0.02 nA", alpha, "1 ms")
    a.add_projection("left", "other", {"type": "fixed_probability", "p": 0.1}, "1 nS", ampa, "0.2 ms")
    a.set_run(duration=120.0, dt=DT, seed=5, dtype="float64", batch=batch)
    return a


@pytest.mark.parametrize("batch", [1, 2])
def test_torch_fast_paths_give_the_reference_paths_and_the_native_spikes(batch, monkeypatch, tmp_path):
    # the PyTorch engine's fast paths (populations stepped as one flat tensor, one index_add_ per spiking neuron)
    # against its plain paths and the native engine, bit for bit; and a resumed run equal to an uninterrupted one
    import braincore.simulator as simulator

    fast = Simulator(twin_network(batch), backend="torch").run()
    assert any(isinstance(unit, simulator._MergedStep) for unit in fast._plan.units)
    native_sim = Simulator(twin_network(batch), backend="native").run()
    assert all(c > 0 for c in native_sim.spike_counts().values())
    assert_same_run(fast, native_sim, state_atol=1e-9)
    with monkeypatch.context() as m:
        m.setattr(simulator._MergedStep, "signature", staticmethod(lambda pop, groups: None))
        m.setattr(simulator, "SPIKE_LOOP_MAX", 0)
        plain = Simulator(twin_network(batch), backend="torch").run()
    assert_same_run(fast, plain)
    resumed = Simulator(twin_network(batch), backend="torch").run(50.0)
    resumed.save(tmp_path / "half.pt")
    again = Simulator(twin_network(batch), backend="torch").load(tmp_path / "half.pt").run(70.0)
    resumed.run(70.0)
    assert_same_run(fast, resumed)
    for name in ("left_spikes", "right_spikes", "other_spikes"):  # the loaded run holds the first half too
        np.testing.assert_array_equal(fast.monitor(name)["step"], again.monitor(name)["step"])


def pair_network(batch: int = 1) -> Assembly:
    """An excitatory and an inhibitory population with the same model and synapse groups (stepped as one flat
    tensor), whose projections into each merged position are joined (:class:`~braincore.simulator._JoinedProjection`):
    conductance synapses with per-synapse delays and with one delay, alpha currents, weights that differ from
    synapse to synapse (so that an addition out of order would show), a population stepping alone that projects
    into a joined group after the joined projections, and a pulse into the excitatory population only (steps in
    which it propagates by the vectorised path while the inhibitory one loops over its few spikes)."""
    a = Assembly(name="pair")
    init = {"v": {"dist": "uniform", "low": "-60 mV", "high": "-50 mV"}}
    for name, size in (("exc", 160), ("inh", 40)):
        a.add_population(name, "lif", size, LIF_CELL, init=init)
        a.add_input(f"{name}_bias", "constant_current", name, amplitude="0.1 nA")
        a.add_monitor(f"{name}_spikes", "spikes", name)
    a.add_input("exc_pulse", "step_current", "exc", amplitude="40 nA", start="40 ms", stop="40.1 ms")
    a.add_population("other", "lif", 30, dict(LIF_CELL, tau_m="10 ms"), init=init)
    a.add_input("other_bias", "constant_current", "other", amplitude="0.16 nA")
    a.add_monitor("other_spikes", "spikes", "other")
    a.add_monitor("inh_v", "state", "inh", variables=["v"], neurons=[0, 7, 39])
    ampa = {"type": "conductance", "tau": "5 ms", "E_rev": "0 mV"}
    gaba = {"type": "conductance", "tau": "10 ms", "E_rev": "-80 mV"}
    alpha = {"type": "alpha", "tau": "2 ms"}
    weight = {"dist": "uniform", "low": "0.5 nS", "high": "1.5 nS"}
    delays = {"dist": "uniform", "low": "0.1 ms", "high": "3 ms"}
    for post in ("exc", "inh"):
        a.add_projection("exc", post, {"type": "fixed_probability", "p": 0.15}, weight, ampa, delays,
                         sign="excitatory")
    for post in ("exc", "inh"):
        a.add_projection("inh", post, {"type": "fixed_probability", "p": 0.15}, dict(weight, high="3 nS"), gaba,
                         "0.5 ms", sign="inhibitory")
        a.add_projection("inh", post, {"type": "fixed_indegree", "k": 6},
                         {"dist": "uniform", "low": "0.01 nA", "high": "0.03 nA"}, alpha, "1 ms")
    a.add_projection("other", "exc", {"type": "fixed_indegree", "k": 5}, "1 nS", ampa, "0.2 ms",
                     sign="excitatory")
    a.add_projection("other", "inh", {"type": "fixed_probability", "p": 0.5}, "0.5 nS", ampa, "0.3 ms",
                     sign="excitatory", storage="dense")
    a.set_run(duration=120.0, dt=DT, seed=7, dtype="float64", batch=batch)
    return a


def assert_same_synapses(sim_a: Simulator, sim_b: Simulator) -> None:
    for a, b in zip(sim_a.groups, sim_b.groups):
        for name in ("x", "h", "ring"):
            if getattr(a, name) is not None:
                torch.testing.assert_close(getattr(a, name), getattr(b, name), rtol=0.0, atol=0.0)


@pytest.mark.parametrize("batch", [1, 2])
def test_joined_projections_give_the_reference_paths_and_the_native_spikes(batch, monkeypatch, tmp_path):
    # projections into populations stepped together, joined into one per presynaptic population and synapse group
    # position, against each projection alone, the plain paths and the native engine, bit for bit (synaptic
    # variables and rings too); and a resumed run equal to an uninterrupted one
    import braincore.simulator as simulator

    fast = Simulator(pair_network(batch), backend="torch").run(60.0)
    joined = [p for p in fast._plan.propagating if isinstance(p, simulator._JoinedProjection)]
    assert sorted(tuple(q.name for q in p.projections) for p in joined) == [
        ("exc->exc", "exc->inh"), ("inh->exc", "inh->inh"), ("inh->exc#2", "inh->inh#2")]
    assert {p.uniform_delay for p in joined} == {None, 5, 10}
    fast.run(60.0)
    native_sim = Simulator(pair_network(batch), backend="native").run()
    assert all(c > 0 for c in native_sim.spike_counts().values())
    assert_same_run(fast, native_sim, state_atol=1e-9)
    with monkeypatch.context() as m:  # each projection alone
        m.setattr(simulator._JoinedProjection, "build", staticmethod(lambda sim, merged: list(sim.projections)))
        alone = Simulator(pair_network(batch), backend="torch").run()
    assert_same_run(fast, alone)
    assert_same_synapses(fast, alone)
    with monkeypatch.context() as m:  # nothing merged, every spike by the vectorised path
        m.setattr(simulator._MergedStep, "signature", staticmethod(lambda pop, groups: None))
        m.setattr(simulator, "SPIKE_LOOP_MAX", 0)
        plain = Simulator(pair_network(batch), backend="torch").run()
    assert not any(isinstance(p, simulator._JoinedProjection) for p in plain._plan.propagating)
    assert_same_run(fast, plain)
    assert_same_synapses(fast, plain)
    resumed = Simulator(pair_network(batch), backend="torch").run(50.0)
    resumed.save(tmp_path / "half.pt")
    again = Simulator(pair_network(batch), backend="torch").load(tmp_path / "half.pt").run(70.0)
    assert_same_run(fast, again)
    assert_same_synapses(fast, again)
    for name in ("exc_spikes", "inh_spikes", "other_spikes"):
        np.testing.assert_array_equal(fast.monitor(name)["step"], again.monitor(name)["step"])


def test_projections_are_joined_only_where_each_group_keeps_its_order():
    # in the twin network the projections into each group come from both populations in the opposite order of the
    # joins (right->left before left->left): joining would add them out of order, so none is joined
    import braincore.simulator as simulator

    sim = Simulator(twin_network(1), backend="torch").run(1.0)
    assert any(isinstance(unit, simulator._MergedStep) for unit in sim._plan.units)
    assert sim._plan.propagating == sim.projections


def test_states_of_populations_stepped_together_read_edited_and_replaced_between_runs(monkeypatch):
    # a merged population's state is made of views of the flat state when read: edits in place and replaced states
    # between runs take effect as they do on populations stepped alone
    import braincore.simulator as simulator

    def edited_run(sim: Simulator) -> Simulator:
        sim.run(30.0)
        exc = sim.populations["exc"]
        exc.state.v[:, :20] += 2.0  # in place
        sim.run(30.0)
        inh = sim.populations["inh"]
        inh.state = inh.state._replace(v=inh.state.v - 1.5)  # replaced
        return sim.run(30.0)

    fast = edited_run(Simulator(pair_network(2), backend="torch"))
    assert any(isinstance(unit, simulator._MergedStep) for unit in fast._plan.units)
    with monkeypatch.context() as m:
        m.setattr(simulator._MergedStep, "signature", staticmethod(lambda pop, groups: None))
        alone = edited_run(Simulator(pair_network(2), backend="torch"))
    assert_same_run(fast, alone)
    assert_same_synapses(fast, alone)
