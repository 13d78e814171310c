"""AdEx (Brette & Gerstner 2005): adaptation, Naud et al. 2008 firing patterns, refractoriness, Euler
convergence, Brian2 agreement, errors."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from braincore.neurons.adex import EXP_ARG_MAX, AdEx, AdExParams, AdExState
from braincore.errors import ConfigError
from braincore.neurons.injection import inject_current

DT = 0.1  # ms
REST_STEPS = 200  # 20 ms at rest before the step


def step_current(amplitude: float | np.ndarray, step_ms: float, n: int = 1) -> np.ndarray:
    """[T, n]: REST_STEPS of zero current, then ``amplitude`` (nA) for ``step_ms``."""
    on = np.broadcast_to(np.asarray(amplitude, dtype=float), (int(round(step_ms / DT)), n))
    return np.concatenate([np.zeros((REST_STEPS, n)), on])


def onset_times(times: np.ndarray) -> np.ndarray:
    return times - REST_STEPS * DT


def test_defaults_are_brette_gerstner_2005():
    p = AdExParams()
    assert (p.C, p.g_L, p.E_L, p.V_T, p.Delta_T) == (281.0, 30.0, -70.6, -50.4, 2.0)
    assert (p.tau_w, p.a, p.b, p.t_ref) == (144.0, 4.0, 0.0805, 0.0)
    assert p.V_r == p.E_L
    assert p.V_cut == pytest.approx(p.V_T + 5 * p.Delta_T)


def test_default_cell_adapts():
    model = AdEx(1, dt=DT)
    result = inject_current(model, step_current(1.0, 300.0))  # 1 nA, the Brian2 example's step
    times = result.spike_times[0]
    isi = np.diff(times)
    assert len(times) >= 8
    # Spike-frequency adaptation: every interval longer than the one before (13.7, 15.9, ... 35.6 ms), and
    # the last more than twice the first.
    assert np.all(np.diff(isi) > 0), isi
    assert isi[-1] > 2 * isi[0], isi
    # w jumps by b at each spike and decays by less than b in between, so right after each spike it is higher.
    w = result.traces["w"][:, 0]
    w_after = w[np.round(times / DT).astype(int)]
    assert np.all(np.diff(w_after) > 0), w_after
    assert w_after[0] == pytest.approx(model.params.b, rel=0.1)  # the first jump dominates w after spike 1


def test_no_adaptation_without_a_and_b():
    result = inject_current(AdEx(1, dt=DT, a=0.0, b=0.0), step_current(1.0, 300.0))
    isi = np.diff(result.spike_times[0])
    assert len(isi) >= 10
    # w stays 0 and every reset returns to the same state (V_r = E_L, w = 0): identical intervals.
    assert np.ptp(isi) < 1e-9, isi
    assert np.all(result.traces["w"] == 0.0)


# Naud et al. 2008, Table 1: each firing pattern with its step current (nA).
NAUD_CURRENTS = {"tonic": 0.5, "adapting": 0.5, "initial_burst": 0.4, "regular_bursting": 0.21,
                 "delayed_accelerating": 0.3, "delayed_regular_bursting": 0.11, "transient": 0.18,
                 "irregular": 0.16}


def naud_params(names: list[str]) -> dict[str, torch.Tensor]:
    """Per-neuron [N] parameters from the presets (unit strings parsed), so that one run covers all."""
    records = [AdExParams.from_mapping(AdEx.presets[n]) for n in names]
    fields = [f.name for f in dataclasses.fields(AdExParams) if f.name != "t_ref"]
    return {f: torch.tensor([getattr(r, f) for r in records], dtype=torch.float64) for f in fields}


@pytest.fixture(scope="module")
def naud_response() -> dict[str, np.ndarray]:
    """Spike times (ms from the step onset) of every Naud preset under its own current, 500 ms."""
    names = list(NAUD_CURRENTS)
    model = AdEx(len(names), naud_params(names), dt=DT)
    current = step_current(np.array([NAUD_CURRENTS[n] for n in names]), 500.0, len(names))
    result = inject_current(model, current)
    return {n: onset_times(t) for n, t in zip(names, result.spike_times)}


def test_naud_presets_are_table1():
    p = AdExParams.from_mapping(AdEx.presets["adapting"])
    assert (p.C, p.g_L, p.E_L, p.V_T, p.Delta_T, p.a, p.tau_w, p.V_r) == (200, 12, -70, -50, 2, 2, 300, -58)
    assert p.b == pytest.approx(0.060)  # 60 pA in nA
    assert AdExParams.from_mapping(AdEx.presets["tonic"]).b == 0.0
    assert set(AdEx.presets) == set(NAUD_CURRENTS)


def test_naud_patterns(naud_response):
    r = naud_response
    assert all(np.all(t >= 0) for t in r.values()), "a preset fired before its step"
    # Tonic (Fig. 4a): b = 0, only the weak subthreshold coupling; the ISI settles within a few spikes and
    # changes by < 10 % overall (9.3 -> 9.9 ms).
    isi = np.diff(r["tonic"])
    assert len(isi) > 30 and isi.max() < 1.1 * isi.min()
    # Adapting (4b): intervals grow monotonically to several times the first (11.6 -> 76 ms).
    isi = np.diff(r["adapting"])
    assert np.all(np.diff(isi) >= -DT) and isi[-1] > 4 * isi[0], isi
    # Initial burst (4c): two short intervals at the onset, then regular long ones.
    isi = np.diff(r["initial_burst"])
    assert np.all(isi[:2] < 10.0) and np.all(isi[2:] > 40.0), isi
    # Regular bursting (4d): short and long intervals alternate for the whole run (bimodal, repeated).
    isi = np.diff(r["regular_bursting"])
    assert np.sum(isi < 10.0) >= 3 and np.sum(isi > 100.0) >= 3 and np.all((isi < 10.0) | (isi > 100.0)), isi
    # Delayed accelerating (4e): a first spike delayed by > 25 ms, then intervals that shorten.
    times = r["delayed_accelerating"]
    isi = np.diff(times)
    assert times[0] > 25.0 and isi[-1] < 0.7 * isi[0], isi
    # Delayed regular bursting (4f): a delayed onset, then repeated bursts (bimodal ISIs).
    times = r["delayed_regular_bursting"]
    isi = np.diff(times)
    assert times[0] > 40.0 and np.sum(isi > 40.0) >= 3 and np.all((isi < 10.0) | (isi > 40.0)), isi
    # Transient (4g): spikes only at the onset, then silence although the current stays on.
    times = r["transient"]
    assert 1 <= len(times) and times[-1] < 100.0, times
    # Irregular (4h): sustained firing whose intervals keep varying (CV > 0.3 over the second half).
    times = r["irregular"]
    late = np.diff(times[times > 250.0])
    assert len(late) >= 5 and late.std() / late.mean() > 0.3, late


def test_refractory_period_clamps_v_and_lets_w_evolve():
    t_ref = 2.0
    model = AdEx(1, dt=DT, t_ref=t_ref)
    result = inject_current(model, step_current(3.0, 100.0))
    times = result.spike_times[0]
    assert len(times) >= 3 and np.all(np.diff(times) >= t_ref)
    k = int(round(times[0] / DT))
    steps = int(round(t_ref / DT))
    v, w = result.v[:, 0], result.traces["w"][:, 0]
    # After the spike at step k, V sits at V_r through steps k .. k+steps-1 and moves again at step k+steps.
    assert np.all(v[k:k + steps] == model.params.V_r)
    assert v[k + steps] != model.params.V_r
    # w decays through the refractory period (tau_w dw/dt = a (V_r - E_L) - w = -w < 0 here).
    assert np.all(np.diff(w[k:k + steps]) < 0)


def test_exponential_overflow_guard():
    model = AdEx(2)
    state = model.initial_state(1, dtype=torch.float32)
    wild = AdExState(torch.tensor([[1e4, -70.6]]), state.w, state.refrac)  # V far above V_T + 50 Delta_T
    spikes, new = model(torch.zeros(1, 2), wild)
    assert torch.isfinite(new.v).all() and torch.isfinite(new.w).all()
    assert spikes.tolist() == [[1.0, 0.0]]
    # The guard cannot touch a neuron below V_cut: the exponent there is < 5.
    assert (model.params.V_cut - model.params.V_T) / model.params.Delta_T < EXP_ARG_MAX


def test_initial_state_and_tensor_parameters():
    model = AdEx(3, {"E_L": torch.tensor([-70.0, -65.0, -60.0])})
    state = model.initial_state(4, dtype=torch.float64)
    assert state.v.shape == state.w.shape == state.refrac.shape == (4, 3)
    assert torch.equal(state.v[0], torch.tensor([-70.0, -65.0, -60.0], dtype=torch.float64))
    assert torch.count_nonzero(state.w) == 0


def _euler_crossing_time(dt: float, current: float) -> tuple[float, float]:
    """First spike stamp of the default cell, and the time its Euler polygon crosses V_cut, found on a run
    whose cut-off is moved up to V_T + 50 Delta_T (the trajectory before the crossing is unchanged)."""
    cut_model = AdEx(1, dt=dt)
    cut = inject_current(cut_model, np.full(int(round(20 / dt)), current))
    stamp = float(cut.spike_times[0][0])
    k = int(round(stamp / dt)) + 1  # V at t_0 .. t_k, with the crossing inside [t_{k-1}, t_k)
    p = cut_model.params
    free = inject_current(AdEx(1, dt=dt, V_cut=p.V_T + EXP_ARG_MAX * p.Delta_T), np.full(k, current))
    v = np.r_[p.E_L, free.v[:, 0]]
    assert v[k - 1] < p.V_cut <= v[k]
    return stamp, (k - 1) * dt + dt * (p.V_cut - v[k - 1]) / (v[k] - v[k - 1])


def test_first_spike_time_converges_like_dt():
    dts = [0.1, 0.05, 0.025, 0.0125]
    stamps, crossings = zip(*(_euler_crossing_time(dt, 1.0) for dt in dts))
    reference, _ = _euler_crossing_time(0.1 / 64, 1.0)
    # The stamp is the start of the step in which the Euler polygon crossed V_cut (base.py convention).
    for dt, stamp, crossing in zip(dts, stamps, crossings):
        assert crossing - dt < stamp <= crossing
    # Errors against a 64x finer run stay within 3 dt (one step of stamping plus Euler's first-order error,
    # whose coefficient is < 1 here) and shrink with dt.
    errors = [abs(s - reference) for s in stamps]
    for dt, err in zip(dts, errors):
        assert err <= 3 * dt, (dt, err)
    assert errors[-1] < errors[0] / 2
    # Without the grid quantisation the first-order rate is visible: halving dt halves the change.
    changes = np.abs(np.diff(crossings))
    ratios = changes[:-1] / changes[1:]
    assert np.all((ratios > 1.5) & (ratios < 2.5)), ratios


def test_unknown_preset_suggests_the_nearest():
    with pytest.raises(ConfigError, match="did you mean 'adapting'"):
        AdEx.from_preset("adaptin", 2)


@pytest.mark.parametrize("override, message", [
    ({"tau_w": 0.0}, "tau_w must be > 0"),
    ({"tau_w": "-5 ms"}, "tau_w must be > 0"),
    ({"C": 0.0}, "C must be > 0"),
    ({"g_L": -1.0}, "g_L must be > 0"),
    ({"Delta_T": 0.0}, "Delta_T must be > 0"),
    ({"V_cut": -55.0}, "V_cut must lie above V_T"),
    ({"V_cut": 200.0}, "V_cut must be <= V_T"),
    ({"V_r": -40.0}, "V_r must lie below V_cut"),
    ({"t_ref": -1.0}, "t_ref must be >= 0"),
    ({"tau_W": 100.0}, "did you mean 'tau_w'"),
    ({"b": "80 mV"}, "parameter 'b'"),
])
def test_invalid_parameters_are_config_errors(override, message):
    with pytest.raises(ConfigError, match=message):
        AdEx(2, override)


def test_surrogate_gradient_reaches_the_input():
    model = AdEx(2, surrogate="fast_sigmoid")
    current = torch.full((300, 1, 2), 1.0, requires_grad=True)
    result = model.run(current)
    result.spikes.sum().backward()
    assert result.spikes.sum() > 0
    assert current.grad is not None and current.grad.abs().sum() > 0


BRIAN2_EQS = """
dv/dt = (g_L*(E_L - v) + g_L*Delta_T*exp((v - V_T)/Delta_T) + I - w)/C : volt (unless refractory)
dw/dt = (a*(v - E_L) - w)/tau_w : amp
C : farad
g_L : siemens
E_L : volt
V_T : volt
Delta_T : volt
tau_w : second
a : siemens
b : amp
V_r : volt
V_cut : volt
I : amp
"""


@pytest.mark.reference
@pytest.mark.parametrize("case", ["default", "default_refractory", "naud_presets"])
def test_matches_brian2_spike_for_spike(case):
    brian2 = pytest.importorskip("brian2")
    from brian2_reference import run_brian2

    rng = np.random.default_rng(11)
    steps = 3000  # 300 ms at 0.1 ms, the current redrawn every 5 ms
    if case == "naud_presets":
        names = list(NAUD_CURRENTS)
        n, t_ref = len(names), 0.0
        params = naud_params(names)
        scale = np.array([NAUD_CURRENTS[name] for name in names])
        current = np.repeat(rng.uniform(0.0, 2.0, size=(steps // 50, n)), 50, axis=0) * scale
    else:
        n, t_ref = 6, (2.0 if case == "default_refractory" else 0.0)
        defaults = AdExParams()
        params = {f.name: torch.full((n,), float(getattr(defaults, f.name)), dtype=torch.float64)
                  for f in dataclasses.fields(AdExParams) if f.name != "t_ref"}
        current = np.repeat(rng.uniform(0.0, 2.5, size=(steps // 50, n)), 50, axis=0)
    ours = inject_current(AdEx(n, params, dt=DT, t_ref=t_ref), current)

    b2 = brian2
    units = {"C": b2.pF, "g_L": b2.nS, "E_L": b2.mV, "V_T": b2.mV, "Delta_T": b2.mV, "tau_w": b2.ms, "a": b2.nS,
             "b": b2.nA, "V_r": b2.mV, "V_cut": b2.mV}
    init = {name: params[name].numpy() * unit for name, unit in units.items()}
    init["v"] = params["E_L"].numpy() * b2.mV
    traces, times = run_brian2(BRIAN2_EQS, current, DT, current_unit="nA", threshold="v >= V_cut",
                               reset="v = V_r; w += b", refractory=t_ref * b2.ms, method="euler", init=init,
                               namespace={}, record=("v", "w"))
    total = 0
    for i, (mine, theirs) in enumerate(zip(ours.spike_times, times)):
        assert len(mine) == len(theirs), i
        assert np.max(np.abs(mine - theirs), initial=0.0) <= 1e-6, i
        total += len(mine)
    assert total >= 5 * n
    np.testing.assert_allclose(ours.v, traces["v"] * 1e3, rtol=0, atol=1e-7)  # V -> mV
    np.testing.assert_allclose(ours.traces["w"], traces["w"] * 1e9, rtol=0, atol=1e-12)  # A -> nA
