"""Plasticity on the native engine: every rule, generated from its definition (or, for the homeostatic rules,
written in C), gives the PyTorch engine's weights, traces and spikes in float64, and resumes exactly."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from braincore.graph import Assembly
from braincore.native import NativeUnavailable
from braincore.native.build import load_library
from braincore.simulator import Simulator

try:
    load_library("float64")
except NativeUnavailable as err:  # pragma: no cover - machines without a C compiler
    pytest.skip(f"native engine unavailable: {err}", allow_module_level=True)

RULES = {
    "stdp_additive": {"rule": "stdp", "A_plus": 0.05, "A_minus": 0.06, "w_max": 1.5},
    "stdp_nearest_multiplicative": {"rule": "stdp", "A_plus": 0.05, "A_minus": 0.06, "w_max": 1.5,
                                    "pairing": "nearest", "weight_dependence": "multiplicative"},
    "triplet": {"rule": "triplet_stdp", "A2_plus": 0.01, "A3_plus": 0.02, "A2_minus": 0.02, "w_max": 1.5},
    "triplet_nearest": {"rule": "triplet_stdp", "A2_plus": 0.01, "A3_plus": 0.02, "w_max": 1.5,
                        "pairing": "nearest"},
    "stdp_then_normalize_post": [{"rule": "stdp", "A_plus": 0.05, "w_max": 1.5},
                                 {"rule": "normalize", "total": 12.0, "every": 10}],
    "normalize_pre": {"rule": "normalize", "total": 9.0, "by": "pre", "every": 3},
    # normalised above w_max (about 25 synapses per post neuron share 35): every weight is clamped again at the
    # next STDP step, on both engines
    "stdp_then_normalize_over_w_max": [{"rule": "stdp", "A_plus": 0.05, "w_max": 1.0},
                                       {"rule": "normalize", "total": 35.0, "every": 10}],
    "synaptic_scaling": {"rule": "synaptic_scaling", "r_target": "10 Hz", "eta": "2 Hz", "every": 5, "w_max": 3.0},
    "rstdp_d1": {"rule": "rstdp", "eta": 0.01, "tau_c": "100 ms", "w_max": 2.0},
    "rstdp_d2_nearest_baseline": {"rule": "rstdp", "eta": 0.01, "tau_c": "50 ms", "receptor": "d2",
                                  "pairing": "nearest", "baseline": 0.2, "w_max": 2.0},
}


def plastic_network(rule, batch: int = 1, dtype: str = "float64", all_to_all: bool = False) -> Assembly:
    """Two LIF populations (the first driven by a fixed noisy current, trials differing by their initial
    potentials), a plastic projection with per-synapse delays and a recurrent static one. ``all_to_all``: the
    plastic projection connects every pair in order with one delay (the native engine's index-free loops)."""
    a = Assembly(name="plastic")
    a.add_population("inp", "lif", 50, {"tau_m": "10 ms"},
                     init={"v": {"dist": "uniform", "low": "-70 mV", "high": "-52 mV"}})
    a.add_population("out", "lif", 40, {"t_ref": "2 ms"},
                     init={"v": {"dist": "uniform", "low": "-70 mV", "high": "-52 mV"}})
    a.add_input("drive", "constant_current", "inp", amplitude="0.3 nA")
    noise = np.random.default_rng(0).random((3000, 50)) * 4.0
    a.add_input("noise", "time_varying_current", "inp", values=noise.tolist())
    a.add_projection("inp", "out", {"type": "all_to_all"} if all_to_all else {"type": "fixed_probability", "p": 0.5},
                     {"dist": "uniform", "low": 0.1 if all_to_all else 0.2, "high": 0.5 if all_to_all else 1.0},
                     {"type": "exponential", "tau": "5 ms"},
                     "1 ms" if all_to_all else {"dist": "uniform", "low": "0.5 ms", "high": "3 ms"},
                     plasticity=rule, storage="sparse")
    a.add_projection("out", "out", {"type": "fixed_probability", "p": 0.1}, "-0.5 mV")
    a.add_monitor("spikes", "spikes", "out")
    a.add_modulator("dopamine", tau="50 ms")
    a.set_run(duration=100.0, dt=0.1, seed=3, dtype=dtype, batch=batch)
    return a


def simulate(rule, backend: str, batch: int = 1, pieces=(40.0, 60.0), all_to_all: bool = False) -> Simulator:
    """Run in pieces with a dopamine pulse between them (the modulated rules learn; the others ignore it)."""
    sim = Simulator(plastic_network(rule, batch, all_to_all=all_to_all), backend=backend)
    for k, duration in enumerate(pieces):
        if k:
            reward(sim)
        sim.run(duration)
    return sim


def reward(sim: Simulator) -> None:
    sim.modulators.pulse("dopamine", torch.linspace(0.5, 1.0, sim.batch, dtype=torch.float64))


def assert_same(a: Simulator, b: Simulator, exact: bool = True) -> None:
    """Same spikes; weights, traces and modulators bit for bit (``exact``), or, with several trials, to 1e-13
    relative: the mean over trials of a weight change may be summed in another order (c_rule's docstring)."""
    sa, sb = a.monitor("spikes"), b.monitor("spikes")
    assert len(sa["t"]) > 100
    for key in ("step", "trial", "neuron"):
        assert np.array_equal(sa[key], sb[key]), key
    wa, wb = a.weights("inp->out")["weight"], b.weights("inp->out")["weight"]
    assert np.array_equal(wa, wb) if exact else np.allclose(wa, wb, rtol=1e-13, atol=1e-15)
    ra, rb = a.projections[0].rule_state, b.projections[0].rule_state
    assert set(ra) == set(rb)
    for key in ra:
        assert torch.equal(ra[key], rb[key]) if exact else torch.allclose(ra[key].double(), rb[key].double(),
                                                                            rtol=1e-13, atol=1e-15), key
    for name in a.modulators:
        assert torch.equal(a.modulators.value(name), b.modulators.value(name))


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("name", list(RULES))
def test_every_rule_runs_natively_with_the_torch_engines_weights_and_spikes(name, batch):
    torch_sim = simulate(RULES[name], "torch", batch)
    native_sim = simulate(RULES[name], "native", batch)
    assert native_sim.engine == "native" and torch_sim.engine == "torch"
    w0 = Simulator(plastic_network(RULES[name], batch), backend="torch").weights("inp->out")["weight"]
    assert not np.array_equal(w0, native_sim.weights("inp->out")["weight"])  # the rule did change the weights
    assert_same(torch_sim, native_sim, exact=batch == 1)


@pytest.mark.parametrize("name", list(RULES))
def test_every_rule_on_an_all_to_all_projection_matches_the_torch_engine_bit_for_bit(name):
    """The native engine's index-free loops for all-to-all projections with one trial (c_rule) perform the
    general loops' operations: spikes, weights and traces equal the PyTorch engine's in float64."""
    torch_sim = simulate(RULES[name], "torch", all_to_all=True)
    native_sim = simulate(RULES[name], "native", all_to_all=True)
    assert native_sim.engine == "native"
    w0 = Simulator(plastic_network(RULES[name], all_to_all=True), backend="torch").weights("inp->out")["weight"]
    assert not np.array_equal(w0, native_sim.weights("inp->out")["weight"])
    assert_same(torch_sim, native_sim)


def test_native_plasticity_resumes_exactly_and_engines_may_alternate(tmp_path):
    rule = [RULES["rstdp_d1"], {"rule": "normalize", "total": 12.0, "every": 10}]
    whole = simulate(rule, "native", 2, pieces=(40.0, 60.0))
    first = simulate(rule, "native", 2, pieces=(40.0,))
    path = first.save(tmp_path / "half.pt")
    resumed = Simulator(plastic_network(rule, 2), backend="native").load(path)
    reward(resumed)
    resumed.run(60.0)
    assert_same(whole, resumed)
    # the engines share one state: torch, then native, then torch gives the native-only result
    mixed = Simulator(plastic_network(rule, 2), backend="torch")
    mixed.run(20.0)
    mixed.backend, mixed._native_checked = "native", False
    mixed.run(20.0)
    mixed._engine, mixed.backend = None, "torch"
    reward(mixed)
    mixed.run(60.0)
    assert_same(whole, mixed, exact=False)


def test_modulator_channels_advance_step_by_step_natively():
    """The kernel decays each channel once per step, as the PyTorch engine does (not by factor ** steps)."""
    sims = []
    for backend in ("torch", "native"):
        sim = Simulator(plastic_network(None), backend=backend)
        sim.modulators.configure("dopamine", tau="20 ms", baseline=0.1)
        sim.modulators.set("dopamine", 1.0)
        held = sim.modulators.value("dopamine")
        sim.run(50.0)
        assert float(held[0]) == 1.0  # a value once read does not change
        sims.append(sim)
    a, b = (s.modulators.value("dopamine") for s in sims)
    assert torch.equal(a, b)
    assert float(a[0]) == pytest.approx(0.1 + 0.9 * np.exp(-50.0 / 20.0), rel=1e-12)


def test_dense_plastic_storage_is_named_as_the_reason_to_fall_back():
    a = Assembly(name="dense")
    a.add_population("p", "lif", 10)
    a.add_population("q", "lif", 10)
    a.add_projection("p", "q", {"type": "all_to_all"}, "1 mV", plasticity={"rule": "stdp"}, storage="dense")
    sim = Simulator(a, backend="auto")
    assert sim.engine == "torch" and "dense storage" in sim.fallback_reason
    auto = Assembly(name="auto")
    auto.add_population("p", "lif", 10)
    auto.add_population("q", "lif", 10)
    auto.add_projection("p", "q", {"type": "all_to_all"}, "1 mV", plasticity={"rule": "stdp"})
    assert Simulator(auto, backend="auto").engine == "native"  # auto storage keeps plastic synapses a list


def test_float32_plasticity_runs_natively_close_to_torch():
    rule = RULES["stdp_additive"]
    sims = []
    for backend in ("torch", "native"):
        sim = Simulator(plastic_network(rule, 1, "float32"), backend=backend).run(50.0)
        sims.append(sim)
    wa, wb = (s.weights("inp->out")["weight"] for s in sims)
    assert sims[1].engine == "native"
    # float32: the same operations, but the libraries may round exp() differently in the neuron step; the
    # weights stay within a few float32 ulps of the trace increments (A ~ 0.05, so 1e-5 is ~100 ulps)
    assert np.abs(wa - wb).max() < 1e-5


# ------------------------------------------------------------------------------------------ inputs
def test_spike_file_input_runs_natively_with_the_torch_engines_spikes_and_resumes(tmp_path):
    """Spike-file events (unsorted, repeated) give identical float64 spikes on both engines, across run calls."""
    rng = np.random.default_rng(4)
    times = rng.uniform(0.0, 80.0, 600)
    path = tmp_path / "events.npz"
    np.savez(path, times=times, neurons=rng.integers(0, 30, 600))

    def network() -> Assembly:
        a = Assembly(name="replay")
        a.add_population("p", "lif", 30)
        a.add_input("file", "spike_file", "p", path=str(path), weight="2 nA",
                    synapse={"type": "exponential", "tau": "3 ms"})
        a.add_projection("p", "p", {"type": "fixed_probability", "p": 0.2}, "1 mV",
                         plasticity={"rule": "stdp", "A_plus": 0.1}, storage="sparse")
        a.add_monitor("spikes", "spikes", "p")
        a.set_run(duration=80.0, dt=0.1, seed=1, dtype="float64", batch=2)
        return a

    sims = {}
    for backend in ("torch", "native"):
        sim = Simulator(network(), backend=backend)
        sim.run(33.3)
        sim.run(46.7)
        sims[backend] = sim
    assert sims["native"].engine == "native"
    a, b = sims["torch"].monitor("spikes"), sims["native"].monitor("spikes")
    assert len(a["t"]) > 50
    for key in ("step", "trial", "neuron"):
        assert np.array_equal(a[key], b[key])


def test_per_neuron_poisson_rates_run_natively():
    """set_poisson_rate with a [B, n] map on the native engine: each trial's neurons fire at their own rates
    (counts of a Poisson process: mean rate * T, checked to 5 standard deviations)."""
    a = Assembly(name="rates")
    a.add_population("p", "lif", 40, {"t_ref": "0 ms"})
    a.add_input("drive", "poisson", "p", rate="0 Hz", weight="30 mV")  # each input spike fires its neuron
    a.add_monitor("spikes", "spikes", "p")
    a.set_run(duration=1000.0, dt=0.1, seed=5, dtype="float64", batch=2)
    sim = Simulator(a, backend="native")
    rates = torch.zeros(2, 40, dtype=torch.float64)
    rates[0, :20], rates[1, 20:] = 50.0, 100.0
    sim.set_poisson_rate("drive", rates)
    sim.run()
    assert sim.engine == "native"
    counts = sim.monitors[0].counts.reshape(2, 40).double()
    for b, (lo, hi, rate) in enumerate(((0, 20, 50.0), (20, 40, 100.0))):
        total = float(counts[b, lo:hi].sum())
        expected = rate * 1.0 * 20
        assert abs(total - expected) < 5 * expected ** 0.5, (b, total, expected)
        assert float(counts[b].sum()) == total  # the other half of the trial is silent


@pytest.mark.parametrize("rate_hz, steps", [(20.0, 1000), (450.0, 200), (2000.0, 100)])
def test_native_poisson_counts_are_poisson(rate_hz, steps):
    """The kernel's Poisson inputs (rare counts drawn by skipping the zeros below 0.1 per step, multiplication of
    uniforms above): a non-leaky IF neuron with a huge threshold sums its input's counts, which over ``steps``
    steps are Poisson(lam T). Mean and variance within 5 standard errors, P(0) within 5 binomial standard
    errors, and neighbouring neurons uncorrelated (|r| < 5 / sqrt(n))."""
    n = 4000
    a = Assembly(name="poisson")
    a.add_population("p", "if", n, {"v_th": "1e9 mV"})
    a.add_input("drive", "poisson", "p", rate=f"{rate_hz} Hz", weight="1 mV")
    a.set_run(duration=steps * 0.1, dt=0.1, seed=3, dtype="float64")
    sim = Simulator(a, backend="native")
    v0 = sim.populations["p"].state.v.clone()
    sim.run()
    counts = (sim.populations["p"].state.v - v0).numpy().ravel()
    assert sim.engine == "native" and np.array_equal(counts, np.round(counts))
    lam = rate_hz * 0.1e-3 * steps
    assert abs(counts.mean() - lam) < 5 * np.sqrt(lam / n)
    assert abs(counts.var() - lam) < 5 * np.sqrt((2 * lam * lam + lam) / n)  # var of the sample variance
    p0 = np.exp(-lam)
    assert abs(np.mean(counts == 0) - p0) < 5 * np.sqrt(p0 * (1 - p0) / n) + 1e-12
    r = np.corrcoef(counts[:-1], counts[1:])[0, 1]
    assert abs(r) < 5 / np.sqrt(n)


@pytest.mark.parametrize("top_hz", [450.0, 2000.0])
def test_native_poisson_rate_maps_give_poisson_counts_per_neuron(top_hz):
    """A rate map (set_poisson_rate with [B, n]): the kernel draws only the non-zero rates, by thinning
    Poisson(lam_max) events (each kept with probability lam / lam_max) when lam_max < 0.1 per step, one deviate per
    neuron above. Each rate class's counts over T steps are Poisson(lam T): mean and variance within 5 standard
    errors; zero rates give no events; trial 1 (rates reversed) too."""
    n, steps = 3000, 400
    a = Assembly(name="rate_map")
    a.add_population("p", "if", n, {"v_th": "1e9 mV"})
    a.add_input("drive", "poisson", "p", rate="0 Hz", weight="1 mV")
    a.set_run(duration=steps * 0.1, dt=0.1, seed=11, dtype="float64", batch=2)
    sim = Simulator(a, backend="native")
    classes = torch.tensor([0.0, top_hz / 9.0, top_hz / 3.0, top_hz], dtype=torch.float64)
    rates = classes.repeat(n // 4)
    sim.set_poisson_rate("drive", torch.stack([rates, rates.flip(0)]))
    v0 = sim.populations["p"].state.v.clone()
    sim.run()
    counts = (sim.populations["p"].state.v - v0).numpy()
    assert sim.engine == "native" and np.array_equal(counts, np.round(counts))
    for b, trial_rates in enumerate((rates, rates.flip(0))):
        for hz in classes.tolist():
            c = counts[b][(trial_rates == hz).numpy()]
            lam = hz * 0.1e-3 * steps
            if lam == 0:
                assert not c.any()
                continue
            assert abs(c.mean() - lam) < 5 * np.sqrt(lam / len(c)), (b, hz, c.mean(), lam)
            assert abs(c.var() - lam) < 5 * np.sqrt((2 * lam * lam + lam) / len(c)), (b, hz, c.var(), lam)
