"""Izhikevich (2003) simple model: the paper's firing classes, Euler convergence, Brian2 agreement, errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from braincore.errors import ConfigError
from braincore.neurons.injection import inject_current
from braincore.neurons.izhikevich import Izhikevich, IzhikevichParams, IzhikevichState, izhikevich_step

DT = 0.1  # ms
REST_MS = 50.0  # zero-current lead-in before the step, as in the paper's Fig. 2 protocol
STEP_MS = 1000.0
I_STEP = 10.0  # the paper's step amplitude for the cortical classes of Fig. 2
BURST_GAP = 4.0  # ISI gap ratio that marks a bursting train (see widest_isi_gap and the tests using it)

# (a, b, c, d) read off Izhikevich 2003, Fig. 2 (and the same values in his published code).
PAPER_FIG2 = {
    "regular_spiking": (0.02, 0.2, -65.0, 8.0),
    "intrinsically_bursting": (0.02, 0.2, -55.0, 4.0),
    "chattering": (0.02, 0.2, -50.0, 2.0),
    "fast_spiking": (0.1, 0.2, -65.0, 2.0),
    "low_threshold_spiking": (0.02, 0.25, -65.0, 2.0),
    "thalamo_cortical": (0.02, 0.25, -65.0, 0.05),
    "resonator": (0.1, 0.26, -65.0, 2.0),
}


def preset_tensors(names: list[str]) -> dict[str, torch.Tensor]:
    """Per-neuron parameters [N] built from the presets, so that one run covers every class."""
    return {k: torch.tensor([Izhikevich.presets[n][k] for n in names], dtype=torch.float64) for k in "abcd"}


def widest_isi_gap(isi: np.ndarray) -> float:
    """The largest ratio between neighbouring values of the sorted ISIs: near 1 for a tonic train, large
    when the ISIs fall into two separated groups (short intra-burst and long inter-burst intervals)."""
    s = np.sort(isi)
    return float(np.max(s[1:] / s[:-1]))


@pytest.fixture(scope="module")
def step_response() -> dict[str, np.ndarray]:
    """Spike times (ms from the step onset) of every preset under I = 10, all simulated in one run.

    Every class starts from the paper's v = -65 mV, u = b v. The b = 0.2 classes relax from there to their
    rest (-70 mV) without firing; the resonator (b = 0.26, rest -62.6 mV) fires a rebound spike during the
    lead-in, so silence before the step is checked only for the former."""
    names = list(Izhikevich.presets)
    model = Izhikevich(len(names), preset_tensors(names), dt=DT)
    n_rest, n_step = int(round(REST_MS / DT)), int(round(STEP_MS / DT))
    current = np.concatenate([np.zeros((n_rest, len(names))), np.full((n_step, len(names)), I_STEP)])
    result = inject_current(model, current)
    return {name: times - REST_MS for name, times in zip(names, result.spike_times)}


def test_presets_are_the_papers_fig2_values():
    for name, (a, b, c, d) in PAPER_FIG2.items():
        assert Izhikevich.presets[name] == {"a": a, "b": b, "c": c, "d": d}
    assert set(Izhikevich.presets) == set(PAPER_FIG2)


def test_every_preset_fires_under_the_step(step_response):
    for name, times in step_response.items():
        assert np.sum(times >= 0) >= 10, f"{name}: {len(times)} spikes in {STEP_MS} ms"
    for name in ("regular_spiking", "intrinsically_bursting", "chattering", "fast_spiking"):
        assert np.all(step_response[name] >= 0), f"{name} fired before the step"


def test_regular_spiking_adapts(step_response):
    isi = np.diff(step_response["regular_spiking"])
    # Spike-frequency adaptation: the intervals never shorten (up to two grid steps of stamping jitter)...
    assert np.all(np.diff(isi) >= -2 * DT), isi
    # ...and lengthen markedly: the paper's RS trace (Fig. 2) starts with an interval about half the steady
    # one; here 19.5 ms then 45.1 ms. A factor 1.5 separates that from a tonic train.
    assert isi[-1] >= 1.5 * isi[0], isi
    # It is a train of single spikes, not bursts (gap ratio 2.3, below the bursting criterion of 4).
    assert widest_isi_gap(isi) < BURST_GAP


def test_fast_spiking_fires_fast_without_adaptation(step_response):
    times = step_response["fast_spiking"]
    isi = np.diff(times)
    # High rate: > 100 Hz at I = 10 (measured 131 Hz), against 23 Hz for regular spiking.
    assert len(times) / (STEP_MS / 1000.0) > 100.0
    assert len(times) > 4 * len(step_response["regular_spiking"])
    # "Practically without any adaptation" (the paper): u relaxes with time constant 1/a = 10 ms, so the
    # model's FS cell has a brief onset transient (ISIs 4.2, 5.8, 7.2 ms here) that is over by 3/a = 30 ms;
    # from then on the ISIs stay within two grid steps (the spike-stamping jitter of an interval) of their
    # median for the rest of the second: no progressive slowing.
    late = isi[times[1:] > 30.0]
    assert np.all(np.abs(late - np.median(late)) <= 2 * DT + 1e-9), late
    # And a train of single spikes, no bursts (gap ratio 1.4).
    assert widest_isi_gap(isi) < BURST_GAP


@pytest.mark.parametrize("name", ["chattering", "intrinsically_bursting"])
def test_bursting_classes(step_response, name):
    isi = np.diff(step_response[name])
    # Bimodal ISIs: a gap of at least a factor 4 separates short intra-burst from long inter-burst intervals.
    # The single-spike trains stay well below it (RS 2.3, its adaptation ratio; FS 1.4); CH measures 9.1 and
    # IB 8.1.
    assert widest_isi_gap(isi) >= BURST_GAP, isi
    short, long_ = isi[isi < 10.0], isi[isi >= 10.0]
    assert short.max() <= 6.0 and long_.min() >= 25.0, isi
    if name == "chattering":
        # Repetitive bursts (the paper's "fast rhythmic bursting"): many bursts of at least 3 spikes each.
        burst_sizes = np.diff(np.flatnonzero(np.r_[True, isi >= 10.0, True]))
        assert len(long_) >= 10 and np.all(burst_sizes[:-1] >= 3), burst_sizes
    else:
        # Intrinsic bursting: one stereotypical burst at the onset, then repetitive single spikes.
        assert np.all(isi[:2] < 10.0) and np.all(isi[2:] >= 25.0), isi


def test_initial_state_and_tensor_parameters():
    model = Izhikevich(3, {"b": torch.tensor([0.2, 0.25, 0.26])}, v_init=-70.0)
    state = model.initial_state(2, dtype=torch.float64)
    assert isinstance(state, IzhikevichState)
    assert state.v.shape == state.u.shape == (2, 3)
    assert torch.allclose(state.v, torch.full((2, 3), -70.0, dtype=torch.float64))
    assert torch.allclose(state.u, torch.tensor([0.2, 0.25, 0.26], dtype=torch.float64) * -70.0)
    spikes, new = model(torch.zeros(2, 3, dtype=torch.float64), state)
    assert spikes.shape == (2, 3) and new.v.dtype == torch.float64


def test_step_is_forward_euler_with_reset():
    p = IzhikevichParams()
    v = torch.tensor([[-60.0, 29.0]], dtype=torch.float64)
    u = torch.tensor([[-12.0, -5.0]], dtype=torch.float64)
    i = torch.tensor([[3.0, 50.0]], dtype=torch.float64)
    spikes, new = izhikevich_step(IzhikevichState(v, u), i, p, 0.5)
    dv = 0.04 * v**2 + 5 * v + 140 - u + i
    du = p.a * (p.b * v - u)
    assert spikes.tolist() == [[0.0, 1.0]]
    assert new.v[0, 0] == pytest.approx(float(v[0, 0] + 0.5 * dv[0, 0]), abs=1e-12)
    assert new.v[0, 1] == p.c  # the second neuron crossed 30 mV and was reset
    assert new.u[0, 0] == pytest.approx(float(u[0, 0] + 0.5 * du[0, 0]), abs=1e-12)
    assert new.u[0, 1] == pytest.approx(float(u[0, 1] + 0.5 * du[0, 1] + p.d), abs=1e-12)


def _euler_crossing_time(dt: float, current: float, level: float) -> tuple[float, float]:
    """First spike stamp of the RS cell, and the time its Euler polygon crosses ``level``, found on a run
    whose cut-off is moved out of the way (the trajectory before the crossing is unchanged)."""
    cut = inject_current(Izhikevich.from_preset("regular_spiking", 1, dt=dt), np.full(int(round(20 / dt)), current))
    stamp = float(cut.spike_times[0][0])
    k = int(round(stamp / dt)) + 1  # v at t_0 .. t_k, with the crossing inside [t_{k-1}, t_k)
    uncut = Izhikevich.from_preset("regular_spiking", 1, dt=dt, v_peak=1e6)
    free = inject_current(uncut, np.full(k, current))
    v = np.r_[uncut.params.v_init, free.v[:, 0]]
    assert v[k - 1] < level <= v[k]
    return stamp, (k - 1) * dt + dt * (level - v[k - 1]) / (v[k] - v[k - 1])


def test_first_spike_time_converges_like_dt():
    dts = [0.1, 0.05, 0.025, 0.0125]
    stamps, crossings = zip(*(_euler_crossing_time(dt, I_STEP, 30.0) for dt in dts))
    reference, _ = _euler_crossing_time(0.1 / 64, I_STEP, 30.0)
    # The stamp is the start of the step in which the Euler polygon crossed v_peak (the base.py convention),
    # so it lags that crossing by less than one step.
    for dt, stamp, crossing in zip(dts, stamps, crossings):
        assert crossing - dt < stamp <= crossing
    # Errors against a 64x finer run stay within 3 dt (one step of stamping plus Euler's first-order error,
    # whose coefficient is ~1 here) and so shrink with dt.
    errors = [abs(s - reference) for s in stamps]
    for dt, err in zip(dts, errors):
        assert err <= 3 * dt, (dt, err)
    assert errors[-1] < errors[0] / 2
    # Without the grid quantisation the first-order rate is visible: halving dt halves the change.
    changes = np.abs(np.diff(crossings))
    ratios = changes[:-1] / changes[1:]
    assert np.all((ratios > 1.6) & (ratios < 2.5)), ratios


def test_unknown_preset_suggests_the_nearest():
    with pytest.raises(ConfigError, match="did you mean 'chattering'"):
        Izhikevich.from_preset("chatering", 2)


def test_invalid_parameters_are_config_errors():
    with pytest.raises(ConfigError, match="v_peak"):
        Izhikevich(2, c=35.0)
    with pytest.raises(ConfigError, match="did you mean 'v_peak'"):
        Izhikevich(2, v_peek=30.0)
    with pytest.raises(ConfigError, match="unknown method"):
        Izhikevich(2, method="rk4")


def test_surrogate_gradient_reaches_the_input():
    model = Izhikevich(2, surrogate="fast_sigmoid", dt=0.5)
    current = torch.full((200, 1, 2), 10.0, requires_grad=True)
    result = model.run(current)
    result.spikes.sum().backward()
    assert result.spikes.sum() > 0
    assert current.grad is not None and current.grad.abs().sum() > 0


BRIAN2_EQS = """
dv/dt = (0.04*v**2/mV + 5*v + 140*mV - u + I*mV)/ms : volt
du/dt = a*(b*v - u)/ms : volt
a : 1
b : 1
c : volt
d : volt
I : 1
"""


@pytest.mark.reference
def test_matches_brian2_spike_for_spike():
    brian2 = pytest.importorskip("brian2")
    from brian2_reference import run_brian2

    names = list(Izhikevich.presets)
    n, steps = len(names), 3000  # every preset, 300 ms at 0.1 ms
    rng = np.random.default_rng(7)
    current = np.repeat(rng.uniform(-2.0, 15.0, size=(steps // 100, n)), 100, axis=0)  # 10 ms pieces
    params = preset_tensors(names)
    ours = inject_current(Izhikevich(n, params, dt=DT), current)

    mV = brian2.mV
    init = {"a": params["a"].numpy(), "b": params["b"].numpy(), "c": params["c"].numpy() * mV,
            "d": params["d"].numpy() * mV, "v": -65.0 * mV, "u": params["b"].numpy() * -65.0 * mV}
    traces, times = run_brian2(BRIAN2_EQS, current, DT, current_unit="1", threshold="v >= 30*mV",
                               reset="v = c; u += d", method="euler", init=init, namespace={}, record=("v", "u"))
    total = 0
    for name, mine, theirs in zip(names, ours.spike_times, times):
        assert len(mine) == len(theirs), name
        assert np.max(np.abs(mine - theirs), initial=0.0) <= 1e-6, name
        total += len(mine)
    assert total > 100
    np.testing.assert_allclose(ours.v, traces["v"] * 1e3, rtol=0, atol=1e-7)  # V -> mV
    np.testing.assert_allclose(ours.traces["u"], traces["u"] * 1e3, rtol=0, atol=1e-7)
