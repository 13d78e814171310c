"""Hodgkin–Huxley: rest, rheobase, spike shape, repetitive firing, temperature, convergence in dt, agreement
with Brian2 and the removable singularities of the rate functions.

Every simulation here runs in float64 through :func:`inject_current` unless stated otherwise; runs are
batched over neurons (one column per amplitude or parameter) to stay fast.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from braincore.errors import ConfigError
from braincore.neurons.hodgkin_huxley import (HHParams, HodgkinHuxley, hh_rates, hh_steady_state, hh_step,
                                              temperature_factor)
from braincore.neurons.injection import inject_current

V_REST = -65.0
V_SPIKE = -20.0


def crossing_time(v: np.ndarray, v0: float, dt: float, level: float = V_SPIKE) -> float:
    """Time (ms) of the first upward crossing of ``level`` by a trace ``v[k]`` = V at ``(k + 1) dt`` that starts
    at ``v0`` at t = 0, linearly interpolated between the two steps around it (sub-step resolution)."""
    vv = np.concatenate([[v0], v])
    up = np.flatnonzero((vv[1:] > level) & (vv[:-1] <= level))
    assert up.size, "no upward crossing"
    k = up[0]
    return (k + (level - vv[k]) / (vv[k + 1] - vv[k])) * dt


def steps(duration_ms: float, dt: float) -> int:
    return int(round(duration_ms / dt))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_rest_is_stable(dtype):
    model = HodgkinHuxley(1, dt=0.025)
    state = model.initial_state(1, dtype=dtype)
    assert state.v.dtype == dtype and float(state.v) == V_REST
    for gate, value in zip((state.m, state.h, state.n), hh_steady_state(torch.tensor(V_REST, dtype=torch.float64))):
        assert float(gate) == pytest.approx(float(value), rel=1e-6)
    result = inject_current(model, np.zeros(steps(50.0, model.dt)), dtype=dtype)
    assert result.v.dtype == (np.float64 if dtype == torch.float64 else np.float32)
    assert np.abs(result.v - V_REST).max() < 0.1
    assert not result.spikes.any()


def test_rheobase_between_2_and_7_uA_per_cm2():
    """Protocol: a current step of amplitude I applied from rest at t = 0 and held for 100 ms (exponential
    Euler, dt = 0.025 ms); the rheobase is the smallest I that gives at least one spike. Bisection, vectorised:
    each round simulates 32 amplitudes spanning the bracket at once and keeps the sub-bracket where firing
    starts. (The classic HH axon fires one onset spike from about 2.25 uA/cm2; repetitive firing needs about
    6.3 uA/cm2.)"""
    dt, n_amps = 0.025, 32
    lo, hi = 0.0, 10.0
    for _ in range(2):
        amps = np.linspace(lo, hi, n_amps)
        result = inject_current(HodgkinHuxley(n_amps, dt=dt), np.tile(amps, (steps(100.0, dt), 1)))
        fired = result.spikes.any(axis=0)
        assert not fired[0] and fired[-1], "the bracket must hold the rheobase"
        first = int(np.argmax(fired))
        assert fired[first:].all(), "every amplitude above the rheobase fires"
        lo, hi = amps[first - 1], amps[first]
    assert hi - lo < 0.02
    rheobase = hi
    assert 2.0 < rheobase < 7.0
    assert rheobase == pytest.approx(2.25, abs=0.05)


@pytest.fixture(scope="module")
def ten_uA_run():
    """150 ms of 10 uA/cm2 at 6.3 and 16.3 degC (two neurons with a tensor temperature), dt = 0.025 ms."""
    dt = 0.025
    temperature = torch.tensor([6.3, 16.3], dtype=torch.float64)
    model = HodgkinHuxley(2, dt=dt, temperature=temperature)
    return inject_current(model, np.full((steps(150.0, dt), 2), 10.0)), dt


def firing_rate(spike_times: np.ndarray, after_ms: float = 50.0) -> float:
    """Steady firing rate (Hz): the inverse of the mean interspike interval after a transient."""
    return 1000.0 / np.diff(spike_times[spike_times >= after_ms]).mean()


def test_spike_peaks_near_40_mV(ten_uA_run):
    result, _ = ten_uA_run
    v, spikes = result.v[:, 0], result.spikes[:, 0]
    onsets = np.flatnonzero(spikes)
    peaks = [v[a:b].max() for a, b in zip(onsets, np.append(onsets[1:], len(v)))]
    assert len(peaks) > 5
    assert all(25.0 < peak < 50.0 for peak in peaks), peaks
    assert v.min() > -80.0  # the afterhyperpolarisation stays above E_K = -77 mV (within integration error)


def test_sustained_repetitive_firing_at_10_uA_per_cm2(ten_uA_run):
    result, dt = ten_uA_run
    times = result.spike_times[0]
    end = len(result.t) * dt
    rate = firing_rate(times)
    assert 60.0 < rate < 70.0, rate
    assert end - times[-1] < 2 * 1000.0 / rate, "firing is sustained to the end of the step"
    # one spike per crossing: no double counts while v stays above v_spike
    assert np.diff(times).min() > 5.0


def test_temperature_scales_rates_and_raises_firing_rate(ten_uA_run):
    assert temperature_factor(HHParams()) == 1.0
    assert temperature_factor(HHParams(temperature=16.3)) == pytest.approx(3.0)
    assert temperature_factor(HHParams(temperature=26.3, Q10=2.0)) == pytest.approx(4.0)
    result, _ = ten_uA_run
    cold, warm = (firing_rate(times) for times in result.spike_times)
    assert warm > 1.5 * cold, (cold, warm)


def test_temperature_is_a_rate_factor():
    """At 16.3 degC one exponential-Euler step of the gates equals a step three times as long at 6.3 degC (the
    gates' update depends on the old V only, and phi multiplies every rate)."""
    current = torch.zeros(1, 1, dtype=torch.float64)
    warm, cold = HodgkinHuxley(1, dt=0.1, temperature=16.3), HodgkinHuxley(1, dt=0.3)
    state = cold.initial_state(1, dtype=torch.float64)._replace(v=torch.full((1, 1), -50.0, dtype=torch.float64))
    _, a = warm.step(state, current)
    _, b = cold.step(state, current)
    for x, y in zip(a[1:4], b[1:4]):
        assert float(x) == pytest.approx(float(y), rel=1e-12)


DTS = (0.05, 0.025, 0.0125, 0.00625)


@pytest.fixture(scope="module")
def first_spike_times():
    """Interpolated first crossing of -20 mV under 10 uA/cm2 from rest, for each method and dt."""
    out = {}
    for method in HodgkinHuxley.methods:
        for dt in DTS:
            result = inject_current(HodgkinHuxley(1, dt=dt, method=method), np.full(steps(4.0, dt), 10.0))
            t_cross = crossing_time(result.v[:, 0], V_REST, dt)
            stamped = result.spike_times[0][0]
            assert stamped <= t_cross < stamped + dt + 1e-12, "spike stamped at the start of its step"
            out[method, dt] = t_cross
    return out


@pytest.mark.parametrize("method", HodgkinHuxley.methods)
def test_first_spike_time_converges_as_dt_shrinks(method, first_spike_times):
    times = np.array([first_spike_times[method, dt] for dt in DTS])
    gaps = np.abs(np.diff(times))
    assert np.all(gaps[1:] < gaps[:-1]), (method, times)
    assert gaps[-1] < 0.02


def test_exponential_euler_and_rk4_agree_at_small_dt(first_spike_times):
    dt = DTS[-1]
    assert abs(first_spike_times["exponential_euler", dt] - first_spike_times["rk4", dt]) < 0.05
    assert abs(first_spike_times["euler", dt] - first_spike_times["rk4", dt]) < 0.05


def test_rate_functions_are_finite_at_removable_singularities():
    for dtype in (torch.float64, torch.float32):
        v = torch.tensor([-40.0, -55.0], dtype=dtype, requires_grad=True)
        (alpha_m, _), _, (alpha_n, _) = hh_rates(v)
        assert float(alpha_m[0]) == pytest.approx(1.0) and float(alpha_n[1]) == pytest.approx(0.1)
        (alpha_m.sum() + alpha_n.sum()).backward()
        assert torch.isfinite(v.grad).all()
    # continuous across the singular points, and the closed form elsewhere
    eps = torch.tensor([-1e-3, -1e-7, 0.0, 1e-7, 1e-3], dtype=torch.float64)
    (alpha_m, _), _, (alpha_n, _) = hh_rates(-40.0 + eps)
    assert torch.allclose(alpha_m, 1.0 + eps / 20.0, rtol=0, atol=1e-9)
    (_, _), _, (alpha_n, _) = hh_rates(-55.0 + eps)
    assert torch.allclose(alpha_n, 0.1 + eps / 200.0, rtol=0, atol=1e-10)
    v = torch.tensor([-70.0, 0.0, 30.0], dtype=torch.float64)
    (alpha_m, _), _, (alpha_n, _) = hh_rates(v)
    assert torch.allclose(alpha_m, 0.1 * (v + 40) / (1 - torch.exp(-(v + 40) / 10)), rtol=1e-14)
    assert torch.allclose(alpha_n, 0.01 * (v + 55) / (1 - torch.exp(-(v + 55) / 10)), rtol=1e-14)


def test_surrogate_spikes_match_and_carry_gradient():
    dt = 0.025
    current = torch.full((steps(4.0, dt), 1, 1), 10.0, dtype=torch.float64, requires_grad=True)
    plain = HodgkinHuxley(1, dt=dt).run(current.detach())
    trained = HodgkinHuxley(1, dt=dt, surrogate="fast_sigmoid").run(current)
    assert torch.equal(plain.spikes, trained.spikes) and plain.spikes.sum() == 1
    trained.spikes.sum().backward()
    assert torch.isfinite(current.grad).all() and current.grad.abs().sum() > 0


def test_step_rejects_unknown_method_and_params_check_units():
    model = HodgkinHuxley(1, g_Na="0.12 S/cm2", temperature="10 degC", v_spike="-0.02 V")
    assert model.params.g_Na == pytest.approx(120.0) and model.params.v_spike == pytest.approx(-20.0)
    state = model.initial_state(1)
    with pytest.raises(ValueError, match="unknown method"):
        hh_step(state, torch.zeros(1, 1), model.params, 0.01, method="rk2")
    with pytest.raises(ConfigError, match="g_K must be >= 0"):
        HodgkinHuxley(1, g_K=-1.0)
    with pytest.raises(ConfigError, match="unknown method"):
        HodgkinHuxley(1, method="heun")


# -- Brian2 as independent reference -----------------------------------------------------------------------

BRIAN2_EQUATIONS = """
dv/dt = (I * I_unit - gNa * m**3 * h * (v - ENa) - gK * n**4 * (v - EK) - gL * (v - EL)) / Cm : volt
dm/dt = phi * (alpha_m * (1 - m) - beta_m * m) : 1
dh/dt = phi * (alpha_h * (1 - h) - beta_h * h) : 1
dn/dt = phi * (alpha_n * (1 - n) - beta_n * n) : 1
alpha_m = 1 / exprel(-(v + 40*mV) / (10*mV)) / ms : Hz
beta_m = 4 * exp(-(v + 65*mV) / (18*mV)) / ms : Hz
alpha_h = 0.07 * exp(-(v + 65*mV) / (20*mV)) / ms : Hz
beta_h = 1 / (1 + exp(-(v + 35*mV) / (10*mV))) / ms : Hz
alpha_n = 0.1 / exprel(-(v + 55*mV) / (10*mV)) / ms : Hz
beta_n = 0.125 * exp(-(v + 65*mV) / (80*mV)) / ms : Hz
I : 1  # in uA/cm2 (I_unit)
"""


@pytest.mark.reference
@pytest.mark.parametrize("method, dt, temperature", [("exponential_euler", 0.01, 6.3), ("exponential_euler", 0.1, 16.3),
                                                     ("rk4", 0.025, 10.0), ("euler", 0.01, 6.3)])
def test_matches_brian2(method, dt, temperature):
    """Brian2 with the same equations (``1/exprel`` for the singular rates), ``threshold='v > -20*mV'`` and
    ``refractory='v > -20*mV'``, under a piecewise-constant current (rest, 3 uA/cm2: one onset spike, 10 and
    15 uA/cm2: repetitive firing, off). The algorithms are the same, so spike times agree exactly and the
    traces to rounding (about 1e-11 mV)."""
    b2 = pytest.importorskip("brian2")
    from brian2_reference import run_brian2

    t = np.arange(steps(30.0, dt)) * dt
    base = np.select([t < 2.0, t < 12.0, t < 25.0], [0.0, 3.0, 10.0], 0.0)
    current = np.stack([base, 1.5 * base], axis=1)
    model = HodgkinHuxley(2, dt=dt, method=method, temperature=temperature)
    ours = inject_current(model, current)
    p, rest = model.params, model.initial_state(1, dtype=torch.float64)
    per_cm2 = b2.cm ** -2
    namespace = dict(Cm=p.C_m * b2.uF * per_cm2, gNa=p.g_Na * b2.msiemens * per_cm2,
                     gK=p.g_K * b2.msiemens * per_cm2, gL=p.g_L * b2.msiemens * per_cm2, ENa=p.E_Na * b2.mV,
                     EK=p.E_K * b2.mV, EL=p.E_L * b2.mV, phi=temperature_factor(p), I_unit=b2.uA * per_cm2)
    init = {"v": p.v_rest * b2.mV, **{g: getattr(rest, g)[0].numpy() for g in "mhn"}}
    traces, times = run_brian2(BRIAN2_EQUATIONS, current, dt, current_unit="1", threshold="v > -20*mV",
                               reset=None, refractory="v > -20*mV", method=method, init=init,
                               namespace=namespace, record=("v", "m", "h", "n"))
    for ours_times, ref_times in zip(ours.spike_times, times):
        assert len(ours_times) >= 2 and len(ours_times) == len(ref_times), (ours_times, ref_times)
        np.testing.assert_allclose(ours_times, ref_times, rtol=0, atol=1e-9)
    np.testing.assert_allclose(ours.v, traces["v"] * 1e3, rtol=0, atol=1e-6)  # volt -> mV
    for gate in "mhn":
        np.testing.assert_allclose(ours.traces[gate], traces[gate], rtol=0, atol=1e-9)
