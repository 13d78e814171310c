"""STDP rules against closed forms: the window, replayed spike trains (direct sums over spike pairs and
triplets, computed independently of the trace implementation), the triplet rule's frequency dependence,
bounds, batching, and the rules inside the simulator (dense = sparse, checkpoint resume)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from braincore.graph import Assembly
from braincore.errors import ConfigError
from braincore.plasticity import STDP, SynapseView, TripletSTDP, make_rule
from braincore.simulator import ProjectionRuntime, Simulator

DT = 0.1


def one_synapse(w0: float = 0.5, dense: bool = False) -> ProjectionRuntime:
    proj = ProjectionRuntime("p", "a", "b", 0, 1, 1, torch.tensor([0, 1]), torch.tensor([0]),
                             torch.tensor([w0], dtype=torch.float64), torch.tensor([1]), 1)
    if dense:
        proj.dense = torch.tensor([[w0]], dtype=torch.float64)
    return proj


def replay(rule, pre_steps, post_steps, n_steps: int, w0: float = 0.5, dense: bool = False,
           every_step: bool = False) -> float:
    """Run ``rule`` on one synapse with spikes at the given steps; returns the final weight.

    ``every_step``: call the rule at each of the ``n_steps`` steps, as the simulator does. Otherwise only at
    steps with a spike, with ``dt`` the time since the previous call: the traces then decay by
    ``exp(-gap/tau)`` in one factor instead of a product of per-step factors (equal up to rounding), which
    makes long protocols fast."""
    proj = one_synapse(w0, dense)
    view = SynapseView(proj)
    state = rule.init_state(view, 1, "cpu", torch.float64)
    pre_set, post_set = set(pre_steps), set(post_steps)
    steps = range(n_steps) if every_step else sorted(pre_set | post_set)
    last = -1
    for k in steps:
        pre = torch.tensor([[1.0 if k in pre_set else 0.0]], dtype=torch.float64)
        post = torch.tensor([[1.0 if k in post_set else 0.0]], dtype=torch.float64)
        rule.step(view, state, pre, post, (k - last) * DT)
        last = k
    return float(view.weight.reshape(-1)[0])


@pytest.mark.parametrize("pairing", ["all_to_all", "nearest"])
@pytest.mark.parametrize("dense", [False, True])
def test_pair_window_matches_closed_form(pairing, dense):
    rule = STDP(tau_plus="17 ms", tau_minus="34 ms", A_plus=0.01, A_minus=0.012, pairing=pairing,
                w_min=-10.0, w_max=10.0)
    for lag in (-300, -57, -1, 0, 1, 23, 250):  # post step - pre step
        dw = replay(rule, [400], [400 + lag], 800, dense=dense, every_step=lag in (-57, 23)) - 0.5
        t = lag * DT
        expected = 0.01 * math.exp(-t / 17.0) if lag >= 0 else -0.012 * math.exp(t / 34.0)
        assert dw == pytest.approx(expected, rel=1e-12, abs=1e-15), (lag, dw, expected)


def pair_sum(pre_t, post_t, A_plus, A_minus, tau_plus, tau_minus, nearest=False) -> float:
    """Direct sum over spike pairs (the definition of the rule), with the step convention of the module."""
    total = 0.0
    for tp in post_t:
        earlier = [tq for tq in pre_t if tq <= tp]
        for tq in (earlier[-1:] if nearest else earlier):
            total += A_plus * math.exp(-(tp - tq) / tau_plus)
    for tq in pre_t:
        earlier = [tp for tp in post_t if tp < tq]
        for tp in (earlier[-1:] if nearest else earlier):
            total -= A_minus * math.exp(-(tq - tp) / tau_minus)
    return total


def random_steps(rng, rate_hz: float, n_steps: int) -> list[int]:
    return sorted(np.nonzero(rng.random(n_steps) < rate_hz * DT / 1000.0)[0].tolist())


@pytest.mark.parametrize("pairing", ["all_to_all", "nearest"])
def test_replayed_trains_give_the_pair_sum(pairing):
    rng = np.random.default_rng(3)
    pre, post = random_steps(rng, 40.0, 5000), random_steps(rng, 30.0, 5000)
    pre.append(post[3])  # a simultaneous pair
    pre = sorted(set(pre))
    rule = STDP(A_plus=0.005, A_minus=0.006, tau_plus=15.0, tau_minus=25.0, pairing=pairing,
                w_min=-100.0, w_max=100.0)
    dw = replay(rule, pre, post, 5000) - 0.5
    expected = pair_sum([k * DT for k in pre], [k * DT for k in post], 0.005, 0.006, 15.0, 25.0,
                        nearest=pairing == "nearest")
    assert dw == pytest.approx(expected, rel=1e-10, abs=1e-13)


def triplet_sum(pre_t, post_t, p) -> float:
    """Pfister & Gerstner (2006) eqs. 3-4 as direct sums over earlier spikes (all-to-all)."""
    total = 0.0
    for n, tp in enumerate(post_t):
        r1 = sum(math.exp(-(tp - tq) / p.tau_plus) for tq in pre_t if tq <= tp)
        o2 = sum(math.exp(-(tp - t2) / p.tau_y) for t2 in post_t[:n])
        total += r1 * (p.A2_plus + p.A3_plus * o2)
    for m, tq in enumerate(pre_t):
        o1 = sum(math.exp(-(tq - tp) / p.tau_minus) for tp in post_t if tp < tq)
        r2 = sum(math.exp(-(tq - t2) / p.tau_x) for t2 in pre_t[:m])
        total -= o1 * (p.A2_minus + p.A3_minus * r2)
    return total


def test_triplet_replay_matches_direct_sums():
    rng = np.random.default_rng(5)
    pre, post = random_steps(rng, 30.0, 4000), random_steps(rng, 35.0, 4000)
    rule = TripletSTDP(w_min=-100.0, w_max=100.0, A2_plus=4e-3)  # visual-cortex set, a visible pair term
    dw = replay(rule, pre, post, 4000) - 0.5
    expected = triplet_sum([k * DT for k in pre], [k * DT for k in post], rule.params)
    assert dw == pytest.approx(expected, rel=1e-10, abs=1e-13)


def pairing_protocol(rule, lag_ms: float, freq_hz: float, pairs: int = 60) -> float:
    """Weight change after ``pairs`` pre/post pairs at ``freq_hz`` (post ``lag_ms`` after pre)."""
    period = int(round(1000.0 / freq_hz / DT))
    lag = int(round(lag_ms / DT))
    start = 400
    pre = [start + i * period for i in range(pairs)]
    post = [s + lag for s in pre]
    return replay(rule, pre, post, max(pre + post) + 2000, w0=0.5) - 0.5


def test_triplet_rule_frequency_dependence():
    # Sjoestroem et al. 2001 / Pfister & Gerstner 2006 (Fig. 4): at low pairing frequency post-before-pre
    # depresses and pre-before-post barely potentiates; at 50 Hz both orders potentiate, because the triplet
    # term (A3_plus o2) grows with the postsynaptic rate.
    rule = TripletSTDP(w_min=-100.0, w_max=100.0)
    low_neg, high_neg = pairing_protocol(rule, -10.0, 1.0), pairing_protocol(rule, -10.0, 50.0)
    low_pos, high_pos = pairing_protocol(rule, 10.0, 1.0), pairing_protocol(rule, 10.0, 50.0)
    assert low_neg < 0 < high_neg
    assert high_pos > low_pos and high_pos > 0
    # the pair rule with the same pair amplitudes has no such frequency dependence of sign
    pair = STDP(A_plus=6.2e-3, A_minus=7e-3, tau_plus=16.8, tau_minus=33.7, w_min=-100.0, w_max=100.0)
    assert pairing_protocol(pair, -10.0, 1.0) < 0 and pairing_protocol(pair, -10.0, 50.0) < 0


@pytest.mark.parametrize("dependence", ["additive", "multiplicative"])
def test_weights_stay_within_bounds(dependence):
    # soft bounds hold while eta A trace < 1: pairs every 20 ms keep the all-to-all trace below
    # 1 / (1 - exp(-20/20)) = 1.58, so A = 0.3 gives at most 0.48 of the distance to the bound per pair
    rule = STDP(A_plus=0.3, A_minus=0.3, w_min=0.0, w_max=1.0, weight_dependence=dependence)
    up = replay(rule, list(range(0, 30000, 200)), list(range(5, 30000, 200)), 30100, w0=0.5)
    down = replay(rule, list(range(5, 30000, 200)), list(range(0, 30000, 200)), 30100, w0=0.5)
    if dependence == "additive":
        assert up == 1.0 and down == 0.0  # clipped at the hard bounds
    else:
        # soft bounds: each pair also depresses by the pre spike 19.5 ms after the post one, so the weight
        # settles at a balance inside (0, 1), never on a bound
        assert 0.75 < up < 1.0 and 0.0 < down < 0.25


def test_batch_update_is_the_mean_over_trials():
    rule = STDP(w_min=-10.0, w_max=10.0)
    solo = [replay(rule, [100], [130], 400) - 0.5, replay(rule, [130], [100], 400) - 0.5]
    proj = one_synapse()
    view = SynapseView(proj)
    state = rule.init_state(view, 2, "cpu", torch.float64)
    for k in range(400):
        pre = torch.tensor([[float(k == 100)], [float(k == 130)]], dtype=torch.float64)
        post = torch.tensor([[float(k == 130)], [float(k == 100)]], dtype=torch.float64)
        rule.step(view, state, pre, post, DT)
    assert float(proj.weight[0]) - 0.5 == pytest.approx(sum(solo) / 2, rel=1e-12)


def test_unknown_rule_and_bad_parameters_are_reported():
    with pytest.raises(ConfigError, match="did you mean 'stdp'"):
        make_rule({"rule": "sdtp"})
    a = Assembly(name="bad")
    a.add_population("p", "lif", 10)
    a.add_projection("p", "p", {"type": "all_to_all"}, "0.1 mV",
                     plasticity={"rule": "stdp", "tau_plus": "20 mV", "A_plsu": 0.1})
    problems = "\n".join(map(str, a.validate()))
    assert "tau_plus" in problems and "A_plsu" in problems and "A_plus" in problems


def plastic_network(storage: str) -> Assembly:
    a = Assembly(name="plastic")
    a.add_population("inp", "lif", 30, {"v_th": "-50 mV", "v_rest": "-65 mV"})
    a.add_population("out", "lif", 10, {"v_th": "-50 mV", "v_rest": "-65 mV"})
    a.add_input("drive", "poisson", "inp", rate="40 Hz", weight="4 mV", sources=20)
    a.add_projection("inp", "out", {"type": "all_to_all"}, {"dist": "uniform", "low": 1.0, "high": 3.0},
                     None, "1 ms", storage=storage,
                     plasticity={"rule": "stdp", "A_plus": 0.05, "A_minus": 0.05, "w_max": 4.0})
    a.add_monitor("s", "spikes", "out")
    a.set_run(duration=100.0, dt=DT, seed=2, dtype="float64", batch=2, backend="torch")
    return a


def test_plasticity_in_the_simulator_dense_equals_sparse_and_resumes_exactly(tmp_path):
    sparse = Simulator(plastic_network("sparse")).run()
    dense = Simulator(plastic_network("dense")).run()
    dense.projections[0].view.sync()
    w0 = Simulator(plastic_network("sparse")).projections[0].weight
    assert not torch.allclose(sparse.projections[0].weight, w0)  # it learned something
    assert sparse.spike_counts()["out"] > 0
    torch.testing.assert_close(dense.projections[0].weight, sparse.projections[0].weight, rtol=0, atol=1e-12)
    parts = Simulator(plastic_network("sparse")).run(40.0)
    path = parts.save(tmp_path / "plastic.pt")
    resumed = Simulator(plastic_network("sparse")).load(path).run(60.0)
    assert torch.equal(resumed.projections[0].weight, sparse.projections[0].weight)


CHAIN_YAML = """
kind: assembly
name: chain
dt: 0.1 ms
duration: 100 ms
seed: 4
dtype: float64
populations:
  inp: {model: lif, size: 30, params: {v_th: -50 mV}}
  out: {model: lif, size: 10, params: {v_th: -50 mV}}
projections:
  - name: ff
    pre: inp
    post: out
    connector: {type: fixed_probability, p: 0.5}
    weight: {dist: uniform, low: 1 mV, high: 3 mV}
    plasticity:
      - {rule: stdp, A_plus: 0.05, A_minus: 0.05, w_max: 4.0}
      - {rule: normalize, total: 30.0}
inputs:
  - {name: drive, type: poisson, target: inp, params: {rate: 40 Hz, weight: 4 mV, sources: 20}}
"""


def test_a_list_of_rules_runs_in_order_and_resumes_exactly(tmp_path):
    from braincore.assembly_config import assembly_from_text
    from braincore.plasticity import RuleChain

    sim = Simulator(assembly_from_text(CHAIN_YAML, "chain.yaml"))
    assert isinstance(sim.projections[0].rule, RuleChain)
    sim.run(50)
    sim.save(tmp_path / "half.pt")
    sim.run(50)
    w = sim.weights("ff")
    # normalize runs after STDP every step: each neuron's incoming weights sum to 30 at the end
    sums = np.bincount(w["post"], weights=w["weight"], minlength=10)
    np.testing.assert_allclose(sums[sums != 0], 30.0, rtol=1e-12)
    resumed = Simulator(assembly_from_text(CHAIN_YAML, "chain.yaml")).load(tmp_path / "half.pt").run(50)
    np.testing.assert_array_equal(resumed.weights("ff")["weight"], w["weight"])


def test_errors_in_a_list_of_rules_name_the_item_and_line():
    from braincore.assembly_config import assembly_from_text
    from braincore.config import ConfigProblems

    bad = CHAIN_YAML.replace("{rule: normalize, total: 30.0}", "{rule: normalise, total: 30.0}")
    bad = bad.replace("A_minus: 0.05, w_max", "A_minsu: 0.05, w_max")
    with pytest.raises((ConfigProblems, ConfigError)) as err:
        assembly_from_text(bad, "chain.yaml")
    message = str(err.value)
    assert "plasticity.0.A_minsu" in message or "plasticity[0]" in message, message
    assert "normalise" in message and "did you mean 'normalize'" in message
