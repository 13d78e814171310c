"""Simulator.run_trials: the trials of a protocol (rest, a row of rates, counts reset, run) in one call, in C on
the native engine; the same counts, weights, state and step count as the trial-by-trial loop that defines it."""
import pytest
import torch

from braincore.assembly_config import assembly_from_text
from braincore.simulator import Simulator

try:
    from braincore.native.build import load_library

    load_library("float64")
    NATIVE = True
except Exception:  # pragma: no cover - machines without a C compiler
    NATIVE = False

NET = """\
kind: assembly
name: trials
dt: 0.5 ms
seed: 3
populations:
  src: {model: poisson, size: 60}
  exc: {model: lif, size: 12, params: {tau_m: 10 ms, v_th: -55 mV}}
  inh: {model: lif, size: 4, params: {tau_m: 5 ms}}
projections:
  - name: src_exc
    pre: src
    post: exc
    connector: {type: all_to_all}
    weight: {dist: uniform, low: 0.2 nS, high: 0.8 nS}
    synapse: {type: conductance, tau: 2 ms, E_rev: 0 mV}
    storage: sparse
    plasticity:
      - {rule: stdp, tau_plus: 10 ms, tau_minus: 10 ms, A_plus: 0.05, A_minus: 0.04, w_min: 0.0, w_max: 1.5}
      - {rule: normalize, by: post, total: 30.0, every: 100}
  - {name: exc_inh, pre: exc, post: inh, connector: {type: all_to_all}, weight: 3 mV, delay: 1.5 ms,
     synapse: {type: instantaneous}}
  - {name: inh_exc, pre: inh, post: exc, connector: {type: all_to_all}, weight: 2 mV, delay: 1 ms,
     synapse: {type: instantaneous}, sign: inhibitory}
inputs:
  - {name: noise, type: poisson, target: inh, rate: 0 Hz, weight: 1 mV}
monitors:
  - {name: exc_spikes, type: spikes, target: exc, max_spikes: 0}
  - {name: inh_spikes, type: spikes, target: inh, max_spikes: 0}
"""
KEEP = {"exc": ["v"]}     # one state variable carried from trial to trial (as an adaptive threshold would be)
STEPS = 120


def _sim(batch: int = 2, text: str = NET) -> Simulator:
    sim = Simulator(assembly_from_text(text + "backend: native\n", "trials.yaml"), batch=batch, dtype="float64")
    assert sim.engine == "native"
    return sim


def _rates(trials: int, batch: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.rand(trials, batch, 60, generator=g, dtype=torch.float64) * 300.0


def _by_hand(sim: Simulator, table: torch.Tensor, stop_below: int = 0) -> dict:
    """The definition: rest, the trial's rates, counts reset, run; the counts after each."""
    out = {"exc_spikes": [], "inh_spikes": []}
    for k in range(table.shape[0]):
        sim.rest(KEEP)
        sim.set_poisson_rate("src", table[k])
        for m in sim.monitors:
            m.reset_counts()
        sim.run(STEPS * sim.dt)
        for name in out:
            out[name].append(next(m for m in sim.monitors if m.name == name).counts.clone())
        if stop_below and bool((out["exc_spikes"][-1].sum(dim=1) < stop_below).any()):
            break
    return {name: torch.stack(v) for name, v in out.items()}


def _same_network(a: Simulator, b: Simulator) -> None:
    assert a.step_count == b.step_count
    for pa, pb in zip(a.projections, b.projections):
        assert torch.equal(pa.weight, pb.weight), pa.name
        for key in pa.rule_state or {}:
            assert torch.equal(pa.rule_state[key], pb.rule_state[key]), (pa.name, key)
    for name in a.populations:
        for va, vb in zip(a.populations[name].state, b.populations[name].state):
            assert torch.equal(va, vb), name


@pytest.mark.skipif(not NATIVE, reason="no C compiler")
def test_trials_in_c_equal_the_trial_by_trial_loop_with_plasticity_delays_and_kept_state():
    table = _rates(7, 2)
    a, b = _sim(), _sim()
    assert a.native_engine().trials_reason() is None
    got = a.run_trials(STEPS * a.dt, {"src": table}, counts=["exc_spikes", "inh_spikes"], keep=KEEP)
    want = _by_hand(b, table)
    assert got["exc_spikes"].shape == (7, 2, 12) and got["inh_spikes"].shape == (7, 2, 4)
    assert torch.equal(got["exc_spikes"], want["exc_spikes"]) and torch.equal(got["inh_spikes"], want["inh_spikes"])
    assert int(got["exc_spikes"].sum()) > 0 and int(got["inh_spikes"].sum()) > 0   # the test sees activity
    _same_network(a, b)
    assert not torch.equal(a.projections[0].weight, _sim().projections[0].weight)  # and learning
    # and the simulator goes on as after the loop: one more run gives the same spikes
    a.run(50 * a.dt), b.run(50 * b.dt)
    _same_network(a, b)


@pytest.mark.skipif(not NATIVE, reason="no C compiler")
def test_one_rate_row_for_every_trial_of_the_batch_and_a_poisson_input():
    # [K, n] rates: the same for each trial of the batch; the rates of an input (not a source population)
    text = NET.replace("src: {model: poisson, size: 60}", "src: {model: lif, size: 60}").replace(
        "inputs:\n", "inputs:\n  - {name: drive, type: poisson, target: src, rate: 0 Hz, weight: 20 mV}\n")
    table = _rates(4, 1)[:, 0]
    a, b = _sim(3, text), _sim(3, text)
    got = a.run_trials(STEPS * a.dt, {"drive": table}, counts="exc_spikes", keep=KEEP)
    out = []
    for k in range(4):
        b.rest(KEEP)
        b.set_poisson_rate("drive", table[k])
        for m in b.monitors:
            m.reset_counts()
        b.run(STEPS * b.dt)
        out.append(b.monitors[0].counts.clone())
    assert torch.equal(got["exc_spikes"], torch.stack(out)) and int(got["exc_spikes"].sum()) > 0
    _same_network(a, b)


@pytest.mark.skipif(not NATIVE, reason="no C compiler")
@pytest.mark.parametrize("per_call", [None, 2, 4])   # trials per call into C: the silent trial 3 inside the
def test_stop_below_ends_after_the_first_trial_with_too_few_spikes(per_call, monkeypatch):  # 2nd call, or its last
    import braincore.simulator as simulator

    if per_call is not None:
        monkeypatch.setattr(simulator, "NATIVE_CHECK_EVERY", per_call * STEPS)
    table = _rates(6, 1)
    table[3] = 0.0                                     # trial 3: no input, no exc spikes
    a, b = _sim(1), _sim(1)
    got = a.run_trials(STEPS * a.dt, {"src": table}, counts="exc_spikes", keep=KEEP, stop_below=1)
    assert got["exc_spikes"].shape[0] == 4 and int(got["exc_spikes"][3].sum()) == 0
    assert (got["exc_spikes"][:3].sum(dim=2) >= 1).all()
    want = _by_hand(b, table, stop_below=1)
    assert torch.equal(got["exc_spikes"], want["exc_spikes"])
    _same_network(a, b)


@pytest.mark.skipif(not NATIVE, reason="no C compiler")
def test_a_monitor_that_stores_spikes_runs_the_trials_in_python_with_the_same_results():
    text = NET.replace("target: inh, max_spikes: 0}", "target: inh}")
    a, b = _sim(2, text), _sim(2, text)
    assert "stores spikes" in a.native_engine().trials_reason()
    table = _rates(3, 2)
    got = a.run_trials(STEPS * a.dt, {"src": table}, counts="exc_spikes", keep=KEEP)
    want = _by_hand(b, table)
    assert torch.equal(got["exc_spikes"], want["exc_spikes"])
    assert len(a.monitor("inh_spikes")["step"]) == len(b.monitor("inh_spikes")["step"]) > 0
    _same_network(a, b)


def test_the_pytorch_engine_runs_the_definition():
    a = Simulator(assembly_from_text(NET + "backend: torch\n", "trials.yaml"), batch=2, dtype="float64")
    b = Simulator(assembly_from_text(NET + "backend: torch\n", "trials.yaml"), batch=2, dtype="float64")
    table = _rates(3, 2)
    got = a.run_trials(STEPS * a.dt, {"src": table}, counts="exc_spikes", keep=KEEP)
    assert torch.equal(got["exc_spikes"], _by_hand(b, table)["exc_spikes"])
    _same_network(a, b)


def test_errors_name_what_is_wrong():
    sim = Simulator(assembly_from_text(NET + "backend: torch\n", "trials.yaml"), batch=2, dtype="float64")
    table = _rates(2, 2)
    with pytest.raises(KeyError, match="no spike monitor named 'nope'.*exc_spikes"):
        sim.run_trials(1.0, {"src": table}, counts="nope")
    with pytest.raises(KeyError, match="no Poisson input or Poisson source population named 'x'"):
        sim.run_trials(1.0, {"x": table}, counts="exc_spikes")
    with pytest.raises(ValueError, match=r"must be \[K, n\] or \[K, B, n\]"):
        sim.run_trials(1.0, {"src": table[0, 0]}, counts="exc_spikes")
    with pytest.raises(ValueError, match="exactly one"):
        sim.run_trials(1.0, {"src": table, "noise": table}, counts="exc_spikes")
    with pytest.raises(ValueError, match=r"rates must be \[60\] or \[2, 60\]"):
        sim.run_trials(1.0, {"src": table[:, :, :5]}, counts="exc_spikes")
