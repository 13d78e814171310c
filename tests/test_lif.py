"""IF, LIF and adaptive LIF against closed forms, against Brian2, and under the documented step convention."""
import math

import numpy as np
import pytest
import torch

from braincore.errors import ConfigError
from braincore.neurons import ALIF, IF, LIF, get_model, inject_current
from braincore.neurons.base import refractory_steps


def closed_form_isi(I, tau_m=20.0, R_m=100.0, v_th=-50.0, v_rest=-65.0, t_ref=2.0):
    """Continuous-time LIF interspike interval under constant current I (nA), reset to rest."""
    drive = R_m * I
    return t_ref + tau_m * math.log(drive / (drive - (v_th - v_rest)))


@pytest.mark.parametrize("dt", [0.1, 0.01])
@pytest.mark.parametrize("current", [0.16, 0.2, 0.3, 0.6, 1.5])
def test_lif_isi_matches_closed_form(current, dt):
    # With exact integration the only error is the time grid: a crossing inside step k is stamped at t_k,
    # and integration restarts on the grid after t_ref, so the steady ISI lies in [T - dt, T).
    T_expected = closed_form_isi(current)
    steps = int(round((6 * T_expected + 10) / dt))
    res = inject_current(LIF(1, dt=dt), np.full(steps, current))
    times = res.spike_times[0]
    assert len(times) >= 5
    isi = np.diff(times)[1:]  # the first interval starts from rest, not from reset; both are equal here
    assert np.all(isi >= T_expected - dt - 1e-9) and np.all(isi < T_expected + 1e-9), (isi, T_expected)


def test_lif_subthreshold_trace_is_exact():
    # v(t) = v_rest + R I (1 - exp(-t/tau)) exactly on the grid (exact method, held constant input).
    dt, I = 0.1, 0.1
    res = inject_current(LIF(1, dt=dt), np.full(2000, I))
    t_end = (np.arange(2000) + 1) * dt
    expected = -65.0 + 100.0 * I * (1 - np.exp(-t_end / 20.0))
    assert not res.spikes.any()
    np.testing.assert_allclose(res.v[:, 0], expected, rtol=0, atol=1e-10)


def test_lif_euler_converges_to_exact_first_order():
    # Forward Euler's global error on the subthreshold trajectory halves when dt halves (first order),
    # measured against the exact solution at t = 10 ms.
    errors = []
    for dt in (0.2, 0.1, 0.05, 0.025):
        steps = int(round(10 / dt))
        exact = inject_current(LIF(1, dt=dt, method="exact"), np.full(steps, 0.1)).v[-1, 0]
        euler = inject_current(LIF(1, dt=dt, method="euler"), np.full(steps, 0.1)).v[-1, 0]
        errors.append(abs(euler - exact))
    ratios = np.array(errors[:-1]) / np.array(errors[1:])
    np.testing.assert_allclose(ratios, 2.0, rtol=0.05)
    # and the exact method's first spike converges to the continuous crossing time
    t_cross = 20.0 * math.log(30.0 / 15.0)
    exact_fine = inject_current(LIF(1, dt=0.001), np.full(40000, 0.3)).spike_times[0][0]
    assert t_cross - 0.001 - 1e-9 <= exact_fine < t_cross + 1e-9


def test_refractory_period_sets_isi_under_saturating_current():
    # A current that crosses threshold within one step fires once every round(t_ref / dt) steps.
    for t_ref in (0.0, 1.0, 2.5, 5.0):
        dt = 0.1
        res = inject_current(LIF(1, dt=dt, t_ref=t_ref), np.full(1000, 1000.0))
        isi_steps = np.diff(np.flatnonzero(res.spikes[:, 0]))
        assert np.all(isi_steps == max(refractory_steps(t_ref, dt), 1))


def test_membrane_clamped_at_reset_during_refractoriness():
    res = inject_current(LIF(1, dt=0.1, t_ref=3.0, v_reset=-70.0), np.full(600, 0.5))
    k = np.flatnonzero(res.spikes[:, 0])[0]
    # the spike found in step k is reset at the end of step k; steps k+1 .. k+29 are clamped
    np.testing.assert_allclose(res.v[k:k + 30, 0], -70.0)
    assert res.v[k + 30, 0] > -70.0


def test_reset_by_subtraction_keeps_the_overshoot():
    model = LIF(1, dt=1.0, t_ref=0.0, reset="subtract", v_reset=-65.0)
    state = model.initial_state(1, dtype=torch.float64)
    state = state._replace(v=torch.tensor([[-50.5]], dtype=torch.float64))
    spikes, new = model.step(state, torch.tensor([[2.0]], dtype=torch.float64))
    v_new = (-65.0 + 200.0) + (-50.5 - 135.0) * math.exp(-1 / 20.0)
    assert spikes.item() == 1.0
    assert new.v.item() == pytest.approx(v_new - 15.0, abs=1e-12)


def test_if_integrates_current_linearly():
    # C dv/dt = I: v rises 1000 I / C mV per ms; ISI = (v_th - v_reset) C / (1000 I) + t_ref on the grid.
    res = inject_current(IF(1, dt=0.1, C_m=250.0, t_ref=0.0), np.full(100, 0.1))
    np.testing.assert_allclose(res.v[:10, 0], -65.0 + 0.04 * np.arange(1, 11), atol=1e-9)
    res = inject_current(IF(1, dt=0.1, C_m=250.0, t_ref=0.0), np.full(5000, 1.0))
    assert np.all(np.diff(res.spike_times[0]) == pytest.approx(3.7, abs=0.1 + 1e-9))


def test_alif_threshold_adapts_and_reduces_to_lif_without_adaptation():
    I = np.full(5000, 0.4)
    adaptive = inject_current(ALIF(1, beta=1.8, tau_a=200.0), I)
    isi = np.diff(adaptive.spike_times[0])
    assert isi[-1] > 1.5 * isi[0] and np.all(np.diff(isi) >= -0.1 - 1e-9)
    plain = inject_current(ALIF(1, beta=0.0, b0=-50.0), I)
    lif = inject_current(LIF(1), I)
    np.testing.assert_array_equal(plain.spikes, lif.spikes)
    np.testing.assert_allclose(plain.v, lif.v, atol=1e-12)


def test_alif_adaptation_variable_decays_exponentially_and_jumps():
    model = ALIF(1, dt=0.1, tau_a=50.0, delta_a=0.5)
    res = inject_current(model, np.r_[np.full(30, 100.0), np.zeros(1000)])
    a = res.traces["a"][:, 0]
    n_spikes = res.spikes.sum()
    last = np.flatnonzero(res.spikes[:, 0])[-1]
    # after the last spike, a decays with exp(-dt/tau_a) per step
    ratios = a[last + 2:last + 200] / a[last + 1:last + 199]
    np.testing.assert_allclose(ratios, math.exp(-0.1 / 50.0), rtol=1e-12)
    assert n_spikes >= 2


def test_batch_and_heterogeneous_parameters_equal_separate_runs():
    torch.manual_seed(0)
    currents = 0.1 + 0.5 * torch.rand(400, 3, 4, dtype=torch.float64)
    tau = torch.tensor([5.0, 10.0, 20.0, 40.0], dtype=torch.float64)
    model = LIF(4, tau_m=tau)
    together = model.run(currents)
    for n in range(4):
        single = LIF(1, tau_m=float(tau[n]))
        for b in range(3):
            alone = single.run(currents[:, b:b + 1, n:n + 1])
            assert torch.equal(alone.spikes[:, 0, 0], together.spikes[:, b, n])


def test_float32_and_float64_agree_on_spike_times():
    currents = np.repeat(0.1 + 0.4 * np.random.default_rng(1).random((40, 5)), 50, axis=0)
    r64 = inject_current(LIF(5), currents, dtype=torch.float64)
    r32 = inject_current(LIF(5), currents, dtype=torch.float32)
    for a, b in zip(r64.spike_times, r32.spike_times):
        assert len(a) == len(b) and np.max(np.abs(a - b), initial=0) <= 0.1 + 1e-6


def test_clear_errors():
    with pytest.raises(ConfigError, match="did you mean 'tau_m'"):
        LIF(3, tau_mm=10.0)
    with pytest.raises(ConfigError, match="is a voltage, expected a time"):
        LIF(3, tau_m="10 mV")
    with pytest.raises(ConfigError, match="tau_m must be > 0"):
        LIF(3, tau_m=-1.0)
    with pytest.raises(ConfigError, match="reset must be"):
        LIF(3, reset="zero")
    with pytest.raises(ConfigError, match="unknown method"):
        LIF(3, method="rk4")
    with pytest.raises(ConfigError, match=r"shape \[T, B, N\] with N = 3"):
        LIF(3).run(torch.zeros(10, 3))
    with pytest.raises(ConfigError, match="did you mean 'lif'"):
        get_model("lfi")
    with pytest.raises(ConfigError, match="positive integer"):
        LIF(0)


def test_unit_strings_are_parsed():
    model = LIF(2, tau_m="0.01 s", v_th="-0.052 V", R_m="1e8 Ohm", t_ref="2000 us", dt="100 us")
    assert model.params.tau_m == pytest.approx(10.0)
    assert model.params.v_th == pytest.approx(-52.0)
    assert model.params.R_m == pytest.approx(100.0)
    assert model.params.t_ref == pytest.approx(2.0)
    assert model.dt == pytest.approx(0.1)


# ---------------------------------------------------------------------------------------------- Brian2
def _random_current(steps, n, low, high, hold, seed):
    rng = np.random.default_rng(seed)
    values = low + (high - low) * rng.random((steps // hold + 1, n))
    return np.repeat(values, hold, axis=0)[:steps]


@pytest.mark.reference
@pytest.mark.parametrize("method", ["exact", "euler"])
def test_lif_matches_brian2_spike_for_spike(method):
    b2 = pytest.importorskip("brian2")
    from brian2_reference import run_brian2

    current = _random_current(5000, 6, 0.05, 0.45, 37, seed=2)
    ref_v, ref_times = run_brian2(
        "dv/dt = (-(v - v_rest) + R_m*I)/tau_m : volt (unless refractory)\nI : amp", current, 0.1,
        current_unit="nA", threshold="v >= v_th", reset="v = v_reset", refractory=2 * b2.ms, method=method,
        init={"v": -65 * b2.mV},
        namespace=dict(v_rest=-65 * b2.mV, R_m=100 * b2.Mohm, tau_m=20 * b2.ms, v_th=-50 * b2.mV,
                       v_reset=-65 * b2.mV))
    ours = inject_current(LIF(6, dt=0.1, method=method), current)
    for mine, theirs in zip(ours.spike_times, ref_times):
        assert len(mine) == len(theirs) and len(mine) > 3
        np.testing.assert_allclose(mine, theirs, atol=1e-9)
    np.testing.assert_allclose(ours.v, ref_v["v"] * 1e3, atol=1e-8)


@pytest.mark.reference
def test_alif_matches_brian2_spike_for_spike():
    b2 = pytest.importorskip("brian2")
    from brian2_reference import run_brian2

    current = _random_current(6000, 5, 0.1, 0.6, 53, seed=3)
    eqs = """
    dv/dt = (-(v - v_rest) + R_m*I)/tau_m : volt (unless refractory)
    da/dt = -a/tau_a : 1
    I : amp
    """
    ref_v, ref_times = run_brian2(
        eqs, current, 0.1, current_unit="nA", threshold="v >= b0 + beta*a",
        reset="v = v_reset\na += delta_a", refractory=2 * b2.ms, method="exact",
        init={"v": -65 * b2.mV}, record=("v", "a"),
        namespace=dict(v_rest=-65 * b2.mV, R_m=100 * b2.Mohm, tau_m=20 * b2.ms, b0=-50 * b2.mV,
                       beta=1.8 * b2.mV, tau_a=200 * b2.ms, delta_a=1.0, v_reset=-65 * b2.mV))
    ours = inject_current(ALIF(5, dt=0.1), current)
    for mine, theirs in zip(ours.spike_times, ref_times):
        assert len(mine) == len(theirs) and len(mine) > 3
        np.testing.assert_allclose(mine, theirs, atol=1e-9)
    np.testing.assert_allclose(ours.traces["a"], ref_v["a"], atol=1e-9)


@pytest.mark.reference
def test_if_matches_brian2():
    b2 = pytest.importorskip("brian2")
    from brian2_reference import run_brian2

    current = _random_current(3000, 4, 0.0, 0.5, 41, seed=4)
    ref_v, ref_times = run_brian2(
        "dv/dt = I/C_m : volt (unless refractory)\nI : amp", current, 0.1, current_unit="nA",
        threshold="v >= v_th", reset="v = v_reset", refractory=2 * b2.ms, method="euler",
        init={"v": -65 * b2.mV}, namespace=dict(C_m=250 * b2.pF, v_th=-50 * b2.mV, v_reset=-65 * b2.mV))
    ours = inject_current(IF(4, dt=0.1), current)
    for mine, theirs in zip(ours.spike_times, ref_times):
        assert len(mine) == len(theirs)
        np.testing.assert_allclose(mine, theirs, atol=1e-9)
