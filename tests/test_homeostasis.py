"""Homeostatic plasticity against closed forms: weight normalisation (sums, ratios, mask, every step in the
simulator), multiplicative synaptic scaling (the rate trace of a regular train, the product of the per-step
factors, direction, equilibrium, bounds), validation, checkpoint resume, and Diehl & Cook's adaptive threshold
as an ``alif`` population.

Tolerances: everything runs in float64 (eps = 2.2e-16). A sum of n <= 40 positive terms has a relative rounding
error below n * eps ~ 1e-14, and a trace multiplied by a rounded decay factor at each of K <= 2e4 steps drifts
by at most ~K * eps ~ 5e-12 relative from the closed form's single exp(); so ``rel=1e-12`` for sums and ratios,
``rel=1e-10`` for long products and traces (a margin of ~20 over those bounds)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from braincore.graph import Assembly
from braincore.neurons import ALIF
from braincore.errors import ConfigError
from braincore.plasticity import (Normalize, SynapseView, SynapticScaling, diehl_cook_threshold_params,
                                  make_rule)
from braincore.simulator import ProjectionRuntime, Simulator

DT = 0.1


# -- helpers -------------------------------------------------------------------------------------------------
def projection(mask: np.ndarray, weights: np.ndarray, dense: bool = False) -> ProjectionRuntime:
    """A projection with synapses where ``mask[i, j]`` (CSR by pre), weights ``weights[i, j]``."""
    n_pre, n_post = mask.shape
    pre, post = np.nonzero(mask)  # row-major: sorted by pre, as CSR needs
    indptr = np.zeros(n_pre + 1, dtype=np.int64)
    np.cumsum(np.bincount(pre, minlength=n_pre), out=indptr[1:])
    w = torch.tensor(weights[pre, post], dtype=torch.float64)
    proj = ProjectionRuntime("p", "a", "b", 0, n_pre, n_post, torch.tensor(indptr), torch.tensor(post),
                             w, torch.ones(len(pre), dtype=torch.long), 1)
    if dense:
        proj.dense = torch.tensor(np.where(mask, weights, 0.0), dtype=torch.float64)
    return proj


def random_connectivity(seed: int = 0, n_pre: int = 40, n_post: int = 12):
    """Random mask (p = 0.4) with an empty post column (2), an empty pre row (5), and random weights."""
    rng = np.random.default_rng(seed)
    mask = rng.random((n_pre, n_post)) < 0.4
    mask[:, 2] = False
    mask[5, :] = False
    weights = rng.uniform(0.1, 2.0, (n_pre, n_post))
    return mask, weights


def as_matrix(proj: ProjectionRuntime) -> np.ndarray:
    """The weights as an ``[N_pre, N_post]`` array (zeros where there is no synapse)."""
    if proj.dense is not None:
        return proj.dense.numpy().copy()
    out = np.zeros((proj.n_pre, proj.n_post))
    pre = np.repeat(np.arange(proj.n_pre), np.diff(proj.indptr.numpy()))
    out[pre, proj.post_idx.numpy()] = proj.weight.numpy()
    return out


# -- normalize -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dense", [False, True])
@pytest.mark.parametrize("by", ["post", "pre"])
def test_normalize_sets_sums_keeps_ratios_and_mask(dense, by):
    mask, weights = random_connectivity()
    mask[:, 7] &= False
    mask[3, 7] = mask[8, 7] = True          # post 7: two synapses ...
    weights[3, 7] = weights[8, 7] = 0.0     # ... of zero weight: a zero sum with synapses, left unchanged
    proj = projection(mask, weights, dense)
    before = as_matrix(proj)
    rule = Normalize(total="7.8", by=by)
    rule.apply(SynapseView(proj))
    after = as_matrix(proj)
    axis = 0 if by == "post" else 1
    sums_before, sums_after = before.sum(axis=axis), after.sum(axis=axis)
    nonzero = sums_before > 0
    assert (~nonzero).sum() >= 1 and nonzero.sum() >= 10  # both kinds of row present
    np.testing.assert_allclose(sums_after[nonzero], 7.8, rtol=1e-12)
    assert np.array_equal(sums_after[~nonzero], sums_before[~nonzero])  # zero sums: untouched, no NaN
    assert np.isfinite(after).all()
    assert np.array_equal(after[~mask], np.zeros((~mask).sum()))        # absent synapses stay absent
    ratio = np.divide(after, before, out=np.full_like(after, np.nan), where=before > 0)
    for row in (ratio.T if by == "post" else ratio):                     # one factor per post (pre) neuron
        row = row[~np.isnan(row)]
        if row.size:
            np.testing.assert_allclose(row, row[0], rtol=1e-12)
    if dense:  # the per-synapse vector follows after sync (what checkpoints save)
        SynapseView(proj).sync()
        sparse = projection(mask, weights)
        rule.apply(SynapseView(sparse))
        torch.testing.assert_close(proj.weight, sparse.weight, rtol=1e-13, atol=0)  # other summation order


def test_normalize_leaves_opposite_sign_rows_and_runs_every_n_steps():
    mask = np.ones((3, 2), dtype=bool)
    weights = np.array([[1.0, -1.0], [2.0, -2.0], [3.0, -0.5]])
    proj = projection(mask, weights)
    view = SynapseView(proj)
    rule = Normalize(total=1.0, every=3)
    state = rule.init_state(view, 1, "cpu", torch.float64)
    silent = torch.zeros(1, 3, dtype=torch.float64), torch.zeros(1, 2, dtype=torch.float64)
    for _ in range(2):
        rule.step(view, state, *silent, DT)
    assert np.array_equal(as_matrix(proj), weights)  # not yet: every 3rd step
    rule.step(view, state, *silent, DT)
    after = as_matrix(proj)
    np.testing.assert_allclose(after[:, 0], weights[:, 0] / 6.0, rtol=1e-15)
    assert np.array_equal(after[:, 1], weights[:, 1])  # negative sum, positive total: no sign flip


def normalize_network(storage: str, every: int = 1) -> Assembly:
    a = Assembly(name="normalized")
    a.add_population("inp", "lif", 30, {"v_th": "-50 mV", "v_rest": "-65 mV"})
    a.add_population("out", "lif", 10, {"v_th": "-50 mV", "v_rest": "-65 mV"})
    a.add_input("drive", "poisson", "inp", rate="40 Hz", weight="4 mV", sources=20)
    a.add_projection("inp", "out", {"type": "fixed_probability", "p": 0.5},
                     {"dist": "uniform", "low": 1.0, "high": 3.0}, None, "1 ms", storage=storage,
                     plasticity={"rule": "normalize", "total": "12", "every": every})
    a.set_run(duration=100.0, dt=DT, seed=4, dtype="float64", batch=2, backend="torch")
    return a


@pytest.mark.parametrize("storage", ["sparse", "dense"])
def test_normalize_in_the_simulator_holds_the_sums_every_step(storage):
    sim = Simulator(normalize_network(storage))
    proj = sim.projections[0]
    sums0 = np.bincount(proj.post_idx.numpy(), proj.weight.numpy(), minlength=10)
    assert (sums0 > 0).all() and np.abs(sums0 - 12.0).min() > 1.0  # the built weights are not normalised
    for _ in range(50):
        sim.run(DT)
        proj.view.sync()
        sums = np.bincount(proj.post_idx.numpy(), proj.weight.numpy(), minlength=10)
        np.testing.assert_allclose(sums, 12.0, rtol=1e-12)
    # ratios within each neuron's incoming weights are those of the built weights
    w0 = Simulator(normalize_network(storage)).projections[0].weight.numpy()
    np.testing.assert_allclose(proj.weight.numpy(), w0 * (12.0 / sums0)[proj.post_idx.numpy()], rtol=1e-12)


# -- synaptic scaling ----------------------------------------------------------------------------------------
def rate_trace(spike_steps, n_steps: int, tau: float, r0: float) -> np.ndarray:
    """Closed form of the rate trace after each step k: r0 d^(k+1) + (1-d)(1000/dt) sum_{s<=k} d^(k-s)."""
    k = np.arange(n_steps)
    jump = -math.expm1(-DT / tau) * 1000.0 / DT
    r = r0 * np.exp(-(k + 1) * DT / tau)
    for s in spike_steps:
        r = r + np.where(k >= s, jump * np.exp(-(k - s) * DT / tau), 0.0)
    return r


def drive(rule, proj, post_steps_per_trial, n_steps: int, r0=None):
    """Step ``rule`` on ``proj`` with the given postsynaptic spike steps (one list per trial and post neuron:
    ``post_steps_per_trial[b][j]``); no presynaptic spikes. Returns the rule state."""
    view = SynapseView(proj)
    batch, n_post = len(post_steps_per_trial), proj.n_post
    state = rule.init_state(view, batch, "cpu", torch.float64)
    if r0 is not None:
        state["r"] = torch.as_tensor(r0, dtype=torch.float64).clone()
    spikes = torch.zeros(n_steps, batch, n_post, dtype=torch.float64)
    for b, per_neuron in enumerate(post_steps_per_trial):
        for j, steps in enumerate(per_neuron):
            spikes[list(steps), b, j] = 1.0
    pre = torch.zeros(batch, proj.n_pre, dtype=torch.float64)
    for k in range(n_steps):
        rule.step(view, state, pre, spikes[k], DT)
    return state


def test_rate_trace_matches_its_closed_form_and_averages_to_the_rate():
    tau, period, n = 50.0, 250, 20000  # 40 Hz for 2 s; the start (r0 = target) is forgotten after 40 tau
    rule = SynapticScaling(tau_rate=tau, r_target=7.0, eta=0.0)
    proj = projection(np.ones((1, 1), bool), np.ones((1, 1)))
    spikes = list(range(3, n, period))
    trace = []
    view = SynapseView(proj)
    state = rule.init_state(view, 1, "cpu", torch.float64)
    for k in range(n):
        rule.step(view, state, torch.zeros(1, 1, dtype=torch.float64),
                  torch.tensor([[float(k in spikes)]], dtype=torch.float64), DT)
        trace.append(float(state["r"][0, 0]))
    np.testing.assert_allclose(trace, rate_trace(spikes, n, tau, 7.0), rtol=1e-10)
    # the average over one period of the steady state is the rate, exactly (the transient is e^-38 ~ 3e-17)
    assert np.mean(trace[-period:]) == pytest.approx(1000.0 / (period * DT), rel=1e-12)
    assert float(proj.weight[0]) == 1.0  # eta = 0: no scaling


@pytest.mark.parametrize("every", [1, 7])
@pytest.mark.parametrize("dense", [False, True])
def test_scaling_is_the_product_of_the_per_step_factors(every, dense):
    # two post neurons, two trials: neuron 0 fires at 20 Hz in trial 0 and 10 Hz in trial 1 (batch mean
    # 15 Hz > target 5 Hz: shrinks), neuron 1 at 2 Hz in trial 0 and silent in trial 1 (1 Hz < 5 Hz: grows);
    # ``trains[b][j]``: trial b, neuron j
    tau, n, eta, target = 200.0, 6000, 2.0, 5.0
    mask = np.array([[True, True], [True, False], [False, True]])
    weights = np.array([[1.0, 0.5], [2.0, 9.9], [9.9, 1.5]])
    proj = projection(mask, weights, dense)
    trains = [[range(10, n, 500), range(25, n, 5000)], [range(40, n, 1000), []]]
    rule = SynapticScaling(r_target=f"{target} Hz", tau_rate=f"{tau} ms", eta=eta, every=every)
    drive(rule, proj, trains, n)
    rbar = [np.mean([rate_trace(trains[b][j], n, tau, target) for b in range(2)], axis=0) for j in range(2)]
    due = np.arange(1, n + 1) % every == 0
    factors = [np.prod(np.maximum(0.0, 1.0 + eta * every * DT / 1000.0 * (target - r[due]) / target))
               for r in rbar]
    after = as_matrix(proj)
    expected = np.where(mask, weights * np.array(factors)[None, :], 0.0)
    np.testing.assert_allclose(after, expected, rtol=1e-10, atol=0)
    assert factors[0] < 0.99 and factors[1] > 1.01  # above target shrinks, below grows


def test_no_scaling_at_the_target_rate():
    # a regular train at exactly the target (5 Hz), the trace started on its periodic steady state: the
    # relative errors sum to zero over each period, so the weight only moves by second-order terms
    # (c^2/2 sum e_k^2 with c = eta dt = 1e-5, |e_k| <= 0.1, 1e5 steps: < 1e-7), while 10 % off target
    # moves it by ~ eta * 0.1 * 10 s = 10 %
    tau, period, n, eta = 1000.0, 2000, 100000, 0.1
    proj = projection(np.ones((2, 3), bool), np.full((2, 3), 0.5))
    steps = list(range(0, n, period))
    # the trace before step 0 after 400 s (400 tau) of the same train, last spike at step -period
    jump = -math.expm1(-DT / tau) * 1000.0 / DT
    warm = jump * sum(math.exp(-(-1 - s) * DT / tau) for s in range(-200 * period, 0, period))
    rule = SynapticScaling(r_target=5.0, tau_rate=tau, eta=eta)
    faster, slower = range(1, n, int(period / 1.1)), range(1, n, int(period / 0.9))  # 5.5 Hz, 4.5 Hz
    trains = [[steps, faster, slower]]
    r0 = [[warm, 5.0 * 1.1, 5.0 * 0.9]]
    drive(rule, proj, trains, n, r0=r0)
    w = as_matrix(proj)
    assert np.abs(w[:, 0] / 0.5 - 1.0).max() < 1e-7  # measured: 1.7e-8
    assert w[0, 1] < 0.5 * 0.95 and w[0, 2] > 0.5 * 1.05


@pytest.mark.parametrize("dense", [False, True])
def test_scaling_respects_the_bounds_and_the_mask(dense):
    mask = np.array([[True, False], [True, True], [False, True]])
    weights = np.array([[1.0, 0.0], [1.5, 1.0], [0.0, 2.0]])
    proj = projection(mask, weights, dense)
    # post 0 silent (grows to w_max), post 1 at 1 kHz (shrinks to w_min), fast scaling
    rule = SynapticScaling(r_target=5.0, tau_rate=10.0, eta=50.0, w_min=0.25, w_max=3.0)
    drive(rule, proj, [[[], range(0, 20000, 10)]], 20000)
    after = as_matrix(proj)
    assert np.array_equal(after[mask], np.array([3.0, 3.0, 0.25, 0.25]))
    assert np.array_equal(after[~mask], np.zeros(2))  # w_min > 0 does not create synapses


def test_misspelt_or_bad_parameters_are_reported():
    with pytest.raises(ConfigError, match="did you mean 'r_target'"):
        make_rule({"rule": "synaptic_scaling", "r_targt": "5 Hz"})
    with pytest.raises(ConfigError, match="tau_rate"):
        make_rule({"rule": "synaptic_scaling", "tau_rate": "5 mV"})
    with pytest.raises(ConfigError, match="did you mean 'normalize'"):
        make_rule({"rule": "normalise"})
    with pytest.raises(ConfigError, match="every must be a whole number"):
        make_rule({"rule": "normalize", "every": 2.5})
    with pytest.raises(ConfigError, match="by must be 'post' or 'pre'"):
        Normalize(by="both")
    with pytest.raises(ConfigError, match="w_min must be <= w_max"):
        SynapticScaling(w_min=2.0, w_max=1.0)
    a = Assembly(name="bad")
    a.add_population("p", "lif", 10)
    a.add_projection("p", "p", {"type": "all_to_all"}, "0.1 mV",
                     plasticity={"rule": "normalize", "totl": 78, "every": 0})
    problems = "\n".join(map(str, a.validate()))
    assert "totl" in problems and "'total'" in problems and "every" in problems


def scaling_network(storage: str, rule: dict) -> Assembly:
    a = Assembly(name="homeostatic")
    a.add_population("inp", "lif", 30, {"v_th": "-50 mV", "v_rest": "-65 mV"})
    a.add_population("out", "lif", 10, {"v_th": "-50 mV", "v_rest": "-65 mV"})
    a.add_input("drive", "poisson", "inp", rate="40 Hz", weight="4 mV", sources=20)
    a.add_projection("inp", "out", {"type": "fixed_probability", "p": 0.5},
                     {"dist": "uniform", "low": 1.0, "high": 3.0}, None, "1 ms", storage=storage, plasticity=rule)
    a.add_monitor("s", "spikes", "out")
    a.set_run(duration=100.0, dt=DT, seed=2, dtype="float64", batch=2, backend="torch")
    return a


@pytest.mark.parametrize("rule", [
    {"rule": "synaptic_scaling", "r_target": "20 Hz", "tau_rate": "50 ms", "eta": "5 Hz", "every": 3},
    {"rule": "normalize", "total": 20.0, "every": 7, "by": "pre"},
], ids=["synaptic_scaling", "normalize"])
def test_rules_in_the_simulator_dense_equals_sparse_and_resume_exactly(tmp_path, rule):
    sparse = Simulator(scaling_network("sparse", rule)).run()
    dense = Simulator(scaling_network("dense", rule)).run()
    dense.projections[0].view.sync()
    w0 = Simulator(scaling_network("sparse", rule)).projections[0].weight
    assert not torch.allclose(sparse.projections[0].weight, w0)  # the rule changed the weights
    assert sparse.spike_counts()["out"] > 0
    torch.testing.assert_close(dense.projections[0].weight, sparse.projections[0].weight, rtol=1e-12, atol=0)
    # 40 ms = 400 steps is not a multiple of `every`: the counter in the checkpoint keeps the phase
    parts = Simulator(scaling_network("sparse", rule)).run(40.0)
    path = parts.save(tmp_path / "homeostatic.pt")
    resumed = Simulator(scaling_network("sparse", rule)).load(path).run(60.0)
    assert torch.equal(resumed.projections[0].weight, sparse.projections[0].weight)
    assert all(torch.equal(resumed.projections[0].rule_state[k], sparse.projections[0].rule_state[k])
               for k in sparse.projections[0].rule_state)


# -- Diehl & Cook's adaptive threshold as alif -----------------------------------------------------------------
def test_diehl_cook_mapping():
    params = diehl_cook_threshold_params(v_th="-52 mV", tau_m="100 ms", t_ref=5.0)
    assert params == {"b0": "-52 mV", "tau_m": "100 ms", "t_ref": 5.0, "beta": 0.05, "tau_a": 1e7,
                      "delta_a": 1.0}
    assert diehl_cook_threshold_params("0.1 mV", "2 s", frozen=True) == {"beta": 0.1, "tau_a": math.inf,
                                                                         "delta_a": 0.0}
    with pytest.raises(ConfigError, match="did you mean 'v_th'"):
        diehl_cook_threshold_params(v_thr=-52.0)


@pytest.mark.parametrize("tau_theta", [1e7, 30.0])  # D&C's (decay invisible in 1 s) and a visible decay
def test_alif_reproduces_theta_closed_form(tau_theta):
    params = diehl_cook_threshold_params(theta_plus_mV=0.05, tau_theta_ms=tau_theta, v_th=-52.0, v_rest=-65.0,
                                         v_reset=-65.0, tau_m=100.0, t_ref=5.0)
    model = ALIF(3, params, dt=DT)
    state = model.initial_state(1, dtype=torch.float64)
    current = torch.tensor([[0.15, 0.2, 0.4]], dtype=torch.float64)  # nA: v_inf = -50, -45, -25 mV
    spikes_at: list[list[int]] = [[], [], []]
    n = 10000
    for k in range(n):
        spikes, state = model.step(state, current)
        for j in np.nonzero(spikes[0].numpy())[0]:
            spikes_at[j].append(k)
        if k % 997 == 0 or k == n - 1:
            theta = (model.params.beta * state.a[0]).numpy()
            closed = [sum(0.05 * math.exp(-(k - s) * DT / tau_theta) for s in spikes_at[j]) for j in range(3)]
            np.testing.assert_allclose(theta, closed, rtol=1e-10, atol=1e-15)
    assert [len(s) for s in spikes_at][0] >= 3 and len(spikes_at[2]) > len(spikes_at[1]) > len(spikes_at[0])
    if tau_theta == 1e7:  # theta only grows: inter-spike intervals lengthen
        isi = np.diff(spikes_at[2])
        assert isi[-1] > isi[0] and (np.diff(isi) >= 0).all()


def test_frozen_theta_is_added_to_the_threshold():
    # test phase: theta (from training, here 3 mV) no longer changes, and the neuron fires at the first step
    # where the LIF trajectory v_k = v_inf + (v_rest - v_inf) exp(-(k+1) dt / tau_m) reaches -52 + 3 mV
    params = diehl_cook_threshold_params(frozen=True, v_th=-52.0, v_rest=-65.0, tau_m=100.0)
    model = ALIF(1, params, dt=DT)
    state = model.initial_state(1, dtype=torch.float64)
    state = state._replace(a=torch.full_like(state.a, 3.0 / 0.05))
    current = torch.full((1, 1), 0.2, dtype=torch.float64)  # v_inf = -45 mV
    first = None
    for k in range(3000):
        spikes, state = model.step(state, current)
        if first is None and spikes.any():
            first = k
    k = np.arange(3000)
    v = -45.0 + (-65.0 + 45.0) * np.exp(-(k + 1) * DT / 100.0)
    assert first == int(np.argmax(v >= -49.0))
    assert float(state.a[0, 0]) * 0.05 == pytest.approx(3.0, rel=1e-15)
