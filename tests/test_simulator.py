"""The clock-driven simulator: synaptic kernels against closed forms, delays, reproducibility, checkpoints."""
import math

import numpy as np
import pytest
import torch

from braincore.graph import Assembly
from braincore.simulator import Simulator


@pytest.fixture(autouse=True, params=["torch", "auto"])
def engine(request, monkeypatch):
    """Every test on the PyTorch engine and on ``auto`` (the native C engine wherever it supports the network)."""
    monkeypatch.setenv("BRAINCORE_BACKEND", request.param)
    return request.param

DT = 0.1


def one_to_one_pair(synapse, weight, delay="1 ms", post_params=None, dtype="float64", duration=40.0):
    """A driver neuron forced to spike once at t = 1 ms, projecting one-to-one onto a silent LIF."""
    a = Assembly(name="pair")
    a.add_population("pre", "lif", 1, params={"t_ref": "100 ms"})
    a.add_population("post", "lif", 1, params=post_params or {"v_th": "100 mV"})
    a.add_projection("pre", "post", connector={"type": "one_to_one"}, weight=weight, synapse=synapse,
                     delay=delay, name="syn")
    a.add_input("kick", "step_current", "pre", params={"amplitude": "100 nA", "start": "1 ms", "stop": "1.1 ms"})
    a.add_monitor("v", "state", "post", variables=["v"])
    a.add_monitor("pre_spikes", "spikes", "pre")
    a.set_run(duration=duration, dt=DT, dtype=dtype, seed=3)
    return a


def test_instantaneous_synapse_jumps_after_the_delay():
    sim = Simulator(one_to_one_pair({"type": "instantaneous"}, "2 mV", delay="1 ms")).run()
    spikes = sim.monitor("pre_spikes")
    assert list(spikes["step"]) == [10]  # the 100 nA kick crosses threshold within step 10 (t = 1 ms)
    v = sim.monitor("v")["v"][:, 0, 0]
    # delivered at step 10 + 10: added to v before that step's integration, then it relaxes with tau_m
    arrive = 20
    assert np.allclose(v[:arrive], -65.0)
    np.testing.assert_allclose(v[arrive], -65.0 + 2.0 * math.exp(-DT / 20.0), atol=1e-12)
    np.testing.assert_allclose(v[arrive + 50], -65.0 + 2.0 * math.exp(-51 * DT / 20.0), atol=1e-12)


def test_exponential_current_synapse_matches_closed_form():
    # I(t) = w exp(-(t - t_a)/tau_s), held per step; v follows the exact LIF response to that staircase.
    w, tau_s, tau_m, R = 0.5, 5.0, 20.0, 100.0
    sim = Simulator(one_to_one_pair({"type": "exponential", "tau": "5 ms"}, f"{w} nA")).run()
    v = sim.monitor("v")["v"][:, 0, 0]
    expected, vv = [], -65.0
    for k in range(len(v)):
        current = w * math.exp(-(k - 20) * DT / tau_s) if k >= 20 else 0.0
        v_inf = -65.0 + R * current
        vv = v_inf + (vv - v_inf) * math.exp(-DT / tau_m)
        expected.append(vv)
    np.testing.assert_allclose(v, expected, atol=1e-10)


def test_alpha_synapse_peaks_at_weight_one_tau_later():
    sim = Simulator(one_to_one_pair({"type": "alpha", "tau": "2 ms"}, "1 nA", post_params={
        "v_th": "100 mV", "tau_m": "0.01 ms"})).run()
    # with tau_m << dt the membrane follows R I within a step: v - v_rest ~= R * I(t)
    v = sim.monitor("v")["v"][:, 0, 0] + 65.0
    current = v / 100.0
    peak = int(np.argmax(current))
    assert peak == 20 + 20  # arrival step + tau / dt
    assert current[peak] == pytest.approx(1.0, rel=1e-6)


def test_conductance_synapse_drives_towards_reversal():
    # g(t) = w exp(-(t - t_a)/tau), I = g (E - v) * 1e-3 nA; a large inhibitory conductance pulls v to E_rev
    sim = Simulator(one_to_one_pair({"type": "conductance", "tau": "10 ms", "E_rev": "-80 mV"}, "500 nS")).run()
    v = sim.monitor("v")["v"][:, 0, 0]
    assert v[19] == pytest.approx(-65.0)
    assert -80.0 < v.min() < -75.0
    # first step after arrival: I = 500 nS * (-15 mV) = -7.5 nA held over the step
    v_inf = -65.0 + 100.0 * (500 * (-80.0 + 65.0) * 1e-3)
    assert v[20] == pytest.approx(v_inf + (-65.0 - v_inf) * math.exp(-DT / 20.0), abs=1e-10)


def test_heterogeneous_delays_arrive_at_their_own_steps():
    a = Assembly(name="delays")
    a.add_population("pre", "lif", 1, params={"t_ref": "100 ms"})
    a.add_population("post", "lif", 3, params={"v_th": "100 mV"})
    a.add_projection("pre", "post", connector={"type": "all_to_all"}, weight="1 mV",
                     synapse={"type": "instantaneous"}, delay={"dist": "uniform", "low": "0.5 ms", "high": "3 ms"},
                     name="syn")
    a.add_input("kick", "step_current", "pre", params={"amplitude": "100 nA", "start": "0 ms", "stop": "0.1 ms"})
    a.add_monitor("v", "state", "post", variables=["v"])
    a.set_run(duration=10.0, dt=DT, dtype="float64", seed=0)
    sim = Simulator(a)
    delays = sim.projections[0].delay.tolist()
    sim.run()
    v = sim.monitor("v")["v"][:, 0, :]
    for n, d in enumerate(delays):
        first = int(np.flatnonzero(v[:, n] > -65.0 + 1e-9)[0])
        assert first == d  # spike at step 0, arrives at step 0 + delay


def test_run_in_pieces_equals_one_run_and_checkpoint_resumes_exactly(tmp_path):
    from braincore.config import bundled_config_dir
    from braincore.assembly_config import load_assembly

    assembly = load_assembly(bundled_config_dir() / "coba.yaml")
    scaled = small_coba(assembly)
    whole = Simulator(scaled).run(60.0)
    parts = Simulator(scaled).run(25.0)
    path = parts.save(tmp_path / "ckpt.pt")
    parts.run(35.0)
    resumed = Simulator(scaled).load(path).run(35.0)
    for sim in (parts, resumed):
        for name in ("exc_spikes", "inh_spikes"):
            a, b = whole.monitor(name), sim.monitor(name)
            np.testing.assert_array_equal(a["step"], b["step"])
            np.testing.assert_array_equal(a["neuron"], b["neuron"])
        for pa, pb in zip(whole.populations.values(), sim.populations.values()):
            assert torch.equal(pa.state.v, pb.state.v)
    assert whole.spike_counts()["exc"] > 0


def small_coba(assembly, n_exc=400, n_inh=100):
    """The bundled COBA config scaled down, keeping the in-degree (p rescaled) so activity persists."""
    d = assembly.to_dict()
    d["populations"]["exc"]["size"] = n_exc
    d["populations"]["inh"]["size"] = n_inh
    for proj in d["projections"]:
        proj["connector"] = {"type": "fixed_probability", "p": 0.02 * 4000 / (n_exc + n_inh)}
    return Assembly.from_dict(d)


def test_batch_trials_are_independent_and_seeded():
    a = Assembly(name="noise")
    a.add_population("p", "lif", 50)
    a.add_input("drive", "poisson", "p", params={"rate": "800 Hz", "weight": "4 mV"})
    a.add_monitor("s", "spikes", "p")
    a.set_run(duration=200.0, dt=DT, seed=5, batch=3)
    s1 = Simulator(a).run()
    s2 = Simulator(a).run()
    c1 = s1.monitors[0].counts
    assert torch.equal(c1, s2.monitors[0].counts)  # same seed, same spikes
    assert not torch.equal(c1[0], c1[1])  # trials differ
    # Poisson drive: 800 Hz of 4 mV kicks -> mean depolarisation 800 * 4 * 0.02 = 64 mV above rest: fires
    assert c1.sum() > 0


def test_coba_rate_in_known_range():
    from braincore.config import bundled_config_dir
    from braincore.assembly_config import load_assembly

    # The full-size network: COBA is bistable (activity either self-sustains or dies out), and shrinking it
    # changes which. Brian2 2.9 on the same equations (Euler, dt 0.1 ms, 1 s) sustains 19.3-20.6 Hz with seeds
    # 3 and 4 and dies out (0.4 Hz) with seeds 1 and 2; the bundled seed must land in the sustained state.
    sim = Simulator(load_assembly(bundled_config_dir() / "coba.yaml")).run(400.0)
    rates = {m.target: float(m.counts.sum()) / (m.size * 0.4) for m in sim.monitors}
    assert 10.0 < rates["exc"] < 35.0, rates
    assert 10.0 < rates["inh"] < 35.0, rates


def test_explicit_weights_and_the_weights_accessor():
    a = Assembly(name="w")
    a.add_population("a", "lif", 6)
    a.add_population("b", "lif", 4)
    pre, post = np.array([0, 0, 3, 5]), np.array([1, 2, 0, 3])
    a.add_projection("a", "b", {"type": "explicit", "pre": pre, "post": post},
                     [0.1, 0.2, 0.3, 0.4], {"type": "exponential", "tau": "5 ms"}, name="ab", delay={"dist": "uniform",
                                                                                       "low": "1 ms", "high": "2 ms"})
    sim = Simulator(a)
    w = sim.weights("ab")
    # CSR by presynaptic neuron: the explicit pairs in order, their weights and delays of 10-20 steps
    assert w["pre"].tolist() == pre.tolist() and w["post"].tolist() == post.tolist()
    assert np.allclose(w["weight"], [0.1, 0.2, 0.3, 0.4])
    assert ((w["delay"] >= 10) & (w["delay"] <= 20)).all()
    with pytest.raises(KeyError, match="no projection named 'ba'; projections: ab"):
        sim.weights("ba")
    b = Assembly(name="bad")
    b.add_population("a", "lif", 6)
    b.add_population("b", "lif", 4)
    b.add_projection("a", "b", {"type": "explicit", "pre": pre, "post": post}, [0.1, 0.2, 0.3],
                     {"type": "exponential", "tau": "5 ms"})
    with pytest.raises(Exception, match="3 explicit values for 4 synapses"):
        Simulator(b)


def test_rest_returns_to_the_initial_state_and_keeps_what_was_learned():
    # a trial protocol: after rest() a second trial starts from exactly the first one's initial state (same
    # spikes when the input repeats), except the kept variable and the weights, which carry on
    a = Assembly(name="trials")
    a.add_population("pre", "lif", 20, params={"t_ref": "2 ms"})
    a.add_population("post", "alif", 10)
    a.add_projection("pre", "post", connector={"type": "all_to_all"}, weight="0.5 nA",
                     synapse={"type": "exponential", "tau": "5 ms"}, name="ff", storage="sparse",
                     plasticity=[{"rule": "stdp", "A_plus": 0.01, "w_max": 2.0},
                                 {"rule": "normalize", "total": 8.0, "every": 7}])
    a.add_input("drive", "constant_current", "pre", params={"amplitude": "2 nA"})
    a.add_monitor("post_spikes", "spikes", "post")
    a.set_run(duration=30.0, dt=DT, dtype="float64", seed=1)
    sim = Simulator(a)
    initial = {f: getattr(sim.populations["post"].state, f).clone() for f in sim.populations["post"].state._fields}
    sim.run()
    counter = int(sim.projections[0].rule_state["1.n"])
    learned = sim.projections[0].weight.clone()
    a_kept = sim.populations["post"].state.a.clone()
    after = sim.populations["post"].state
    assert any(not torch.equal(getattr(after, f), initial[f]) for f in ("v", "refrac")) and float(a_kept.sum()) > 0
    sim.rest(keep={"post": ["a"]})
    state = sim.populations["post"].state
    for f in state._fields:
        if f != "a":
            assert torch.equal(getattr(state, f), initial[f])
    assert torch.equal(state.a, a_kept)
    assert torch.equal(sim.projections[0].weight, learned)
    assert int(sim.projections[0].rule_state["1.n"]) == counter  # the normalisation keeps its phase
    for key, trace in sim.projections[0].rule_state.items():
        if key != "1.n":
            assert float(trace.abs().sum()) == 0.0
    assert all(float(g.x.abs().sum()) == 0.0 and float(g.ring.abs().sum()) == 0.0 for g in sim.groups)
    with pytest.raises(KeyError, match="no state variable b"):
        sim.rest(keep={"post": ["b"]})
    with pytest.raises(KeyError, match="no population named 'nope'"):
        sim.rest(keep={"nope": ["v"]})
