"""GIF (Mensi et al. 2012; Pozzorini et al. 2015): registration by its file alone, closed forms of the linear
subthreshold system for every method (with error bounds derived from the method), spike-triggered jumps and
refractoriness, the decay of the moving threshold, the LIF limit, Brian2 agreement, and the PyTorch and native
engines in an Assembly."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from braincore.errors import ConfigError
from braincore.neurons import MODELS, get_model
from braincore.neurons.gif import GIF, GIF_DEFINITION, GIFParams, GIFState
from braincore.neurons.injection import inject_current
from braincore.neurons.lif import LIF

DT = 0.1  # ms
P = GIFParams()
TAU_M = P.C / P.g_L  # pF / nS = ms
NA_PER_NS_IN_MV = 1000.0  # nA / nS = V
NA_PER_PF_IN_MV_PER_MS = 1000.0


def run(model: GIF, current: np.ndarray, state=None):
    """Run ``current`` [T, N] (nA) in float64; returns (spikes [T, N], {field: [T, N]})."""
    x = torch.as_tensor(current, dtype=torch.float64)[:, None, :]
    result = model.run(x, state=state, record=GIFState._fields[:-1])
    return result.spikes[:, 0].numpy(), {k: v[:, 0].numpy() for k, v in result.traces.items()}


def state_with(n: int, **values: float) -> GIFState:
    base = GIF(n).initial_state(1, dtype=torch.float64)
    return base._replace(**{k: torch.full((1, n), float(v), dtype=torch.float64) for k, v in values.items()})


# -- one file ----------------------------------------------------------------------------------------------------
def test_registered_by_its_own_file_alone():
    assert get_model("gif") is GIF and MODELS["gif"].definition is GIF_DEFINITION
    package = Path(__file__).resolve().parent.parent / "braincore" / "neurons" / "__init__.py"
    assert "gif" not in package.read_text().lower()  # discovered, not listed


def test_defaults_are_the_fitted_values_of_nests_gif_example():
    assert (P.C, P.g_L, P.E_L, P.V_reset, P.V_T_star, P.t_ref) == (83.1, 3.7, -67.0, -36.7, -39.6, 4.0)
    assert (P.q_eta_1, P.q_eta_2, P.tau_eta_1, P.tau_eta_2) == (0.0567, -0.0069, 57.8, 218.2)
    assert (P.q_gamma_1, P.q_gamma_2, P.tau_gamma_1, P.tau_gamma_2) == (11.7, 1.8, 53.8, 640.0)
    assert GIF.methods == ("exponential_euler", "euler", "rk4")
    with pytest.raises(ConfigError, match="exact"):
        GIF(1, method="exact")


def test_units_are_rescaled_and_checked():
    cell = GIF(1, q_eta_1="20 pA", C="0.1 nF", tau_gamma_2="0.5 s")
    assert cell.params.q_eta_1 == pytest.approx(0.02) and cell.params.C == pytest.approx(100.0)
    assert cell.params.tau_gamma_2 == pytest.approx(500.0)
    with pytest.raises(ConfigError, match="g_L must be > 0"):
        GIF(1, g_L=0.0)
    with pytest.raises(ConfigError):
        GIF(1, q_gamma_1="3 nA")  # a current where a voltage is expected


# -- closed forms of the subthreshold (linear) system -------------------------------------------------------------
def step_response(t: np.ndarray, amplitude: float) -> np.ndarray:
    """V(t) from rest under a step current, no spike: E_L + (I/g_L)(1 - exp(-t/tau_m))."""
    return P.E_L + NA_PER_NS_IN_MV * amplitude / P.g_L * (1.0 - np.exp(-t / TAU_M))


@pytest.mark.parametrize("method", GIF.methods)
def test_step_current_from_rest_matches_the_closed_form(method):
    amplitude = 0.08  # nA: V_inf = E_L + 21.6 mV = -45.4 mV, below V_T_star
    steps = 2000
    spikes, tr = run(GIF(1, dt=DT, method=method), np.full((steps, 1), amplitude))
    assert spikes.sum() == 0
    t = DT * np.arange(1, steps + 1)
    error = np.abs(tr["v"][:, 0] - step_response(t, amplitude)).max()
    h, swing = DT / TAU_M, NA_PER_NS_IN_MV * amplitude / P.g_L
    if method == "exponential_euler":
        # with eta = 0 the update is the exact propagator of the linear ODE: rounding only
        assert error < 1e-11
    elif method == "euler":
        # Euler on x' = -x/tau: A (exp(-nh) - (1-h)^n) ~ A n h^2/2 exp(-nh), largest at nh = 1: A h / (2e)
        bound = swing * h / (2 * math.e)
        assert 0.9 * bound < error < 1.1 * bound
    else:
        # RK4: |exp(-h) - sum_{j<=4} (-h)^j/j!| ~ h^5/120 per step, over ~1/h steps: A h^4 / 120
        assert error < swing * h ** 4 / 120 * 2 + 1e-12


def coupled_solution(t: np.ndarray, v0: float, amplitude: float, eta0: tuple) -> np.ndarray:
    """V(t) of C V' = -g_L (V - E_L) - eta_1 - eta_2 + I with eta_k = eta0_k exp(-t/tau_eta_k), no spike."""
    v_inf = P.E_L + NA_PER_NS_IN_MV * amplitude / P.g_L
    u = (v0 - v_inf) * np.exp(-t / TAU_M)
    for q, tau in zip(eta0, (P.tau_eta_1, P.tau_eta_2)):
        u -= NA_PER_PF_IN_MV_PER_MS * q / P.C * (np.exp(-t / tau) - np.exp(-t / TAU_M)) / (1 / TAU_M - 1 / tau)
    return v_inf + u


@pytest.mark.parametrize("method, order", [("exponential_euler", 1), ("euler", 1), ("rk4", 4)])
def test_adaptation_currents_follow_the_closed_form_and_the_methods_order(method, order):
    """After a spike the currents eta_k decay and pull V down: a linear system with the closed form above. Errors
    at dt and dt/2 shrink by 2^order; exponential Euler's error comes only from holding eta_k over a step, so it is
    below sum_k |eta_k| dt / (2 tau_eta_k g_L) (the error current eta_k dt / (2 tau_eta_k), filtered by the
    membrane)."""
    v0, amplitude, eta0 = -40.0, 0.05, (0.3, -0.1)
    errors = []
    for dt in (DT, DT / 2):
        steps = int(round(150.0 / dt))
        state = state_with(1, v=v0, eta_1=eta0[0], eta_2=eta0[1])
        cell = GIF(1, dt=dt, method=method, V_T_star=100.0)
        spikes, tr = run(cell, np.full((steps, 1), amplitude), state)
        assert spikes.sum() == 0
        t = dt * np.arange(1, steps + 1)
        np.testing.assert_allclose(tr["eta_1"][:, 0], eta0[0] * np.exp(-t / P.tau_eta_1),
                                   rtol=1e-6 if method != "euler" else 1e-2)
        errors.append(np.abs(tr["v"][:, 0] - coupled_solution(t, v0, amplitude, eta0)).max())
    ratio = errors[0] / errors[1]
    assert 2 ** order * 0.85 < ratio < 2 ** order * 1.15, (errors, ratio)
    if method == "exponential_euler":
        bound = sum(abs(q) * DT / (2 * tau * P.g_L) for q, tau in zip(eta0, (P.tau_eta_1, P.tau_eta_2)))
        assert errors[0] < NA_PER_NS_IN_MV * bound


# -- spikes: jumps, refractoriness, the moving threshold -----------------------------------------------------------
def first_spike(method: str = "exponential_euler", amplitude: float = 0.4, steps: int = 3000):
    cell = GIF(1, dt=DT, method=method)
    current = np.zeros((steps, 1))
    current[:80] = amplitude  # an 8 ms pulse: one spike (at about 6.5 ms), then silence
    spikes, tr = run(cell, current)
    k = np.flatnonzero(spikes[:, 0])
    assert len(k) == 1, k
    return int(k[0]), tr


@pytest.mark.parametrize("method", GIF.methods)
def test_a_spike_resets_v_and_jumps_every_kernel(method):
    k, tr = first_spike(method)
    assert tr["v"][k, 0] == P.V_reset
    for name in ("eta_1", "eta_2", "gamma_1", "gamma_2"):
        assert tr[name][k - 1, 0] == 0.0 and tr[name][k, 0] == getattr(P, "q_" + name)
    refractory = int(round(P.t_ref / DT))
    assert np.all(tr["v"][k:k + refractory, 0] == P.V_reset)  # clamped while refractory
    assert tr["v"][k + refractory, 0] != P.V_reset
    assert tr["eta_1"][k + refractory, 0] < P.q_eta_1  # the kernels decay meanwhile


def test_the_moving_threshold_decays_with_tau_gamma():
    k, tr = first_spike("exponential_euler")
    n = np.arange(len(tr["v"]) - k)
    for i, tau in ((1, P.tau_gamma_1), (2, P.tau_gamma_2)):
        q = getattr(P, f"q_gamma_{i}")
        np.testing.assert_allclose(tr[f"gamma_{i}"][k:, 0], q * np.exp(-n * DT / tau), rtol=1e-12)
    k_euler, tr_euler = first_spike("euler")
    n = np.arange(len(tr_euler["v"]) - k_euler)
    np.testing.assert_allclose(tr_euler["gamma_1"][k_euler:, 0], P.q_gamma_1 * (1 - DT / P.tau_gamma_1) ** n,
                               rtol=1e-10)


def test_the_threshold_is_v_above_v_t_star_plus_gamma():
    """Hold V just below, then just above V_T = V_T_star + gamma_1 + gamma_2 (gammas set by hand): with g_L tiny
    and C huge V barely moves, so the spike decides on the threshold alone."""
    gammas = (3.0, 1.5)
    v_t = P.V_T_star + sum(gammas)
    for offset, expect in ((-1e-3, 0.0), (1e-3, 1.0)):
        cell = GIF(1, dt=DT, C=1e9, g_L=1e-9, tau_gamma_1=1e12, tau_gamma_2=1e12)
        state = state_with(1, v=v_t + offset, gamma_1=gammas[0], gamma_2=gammas[1])
        spikes, _ = cell(torch.zeros(1, 1, dtype=torch.float64), state)
        assert float(spikes) == expect


def test_adapts_under_a_constant_current():
    spikes, _ = run(GIF(1, dt=DT), np.full((10000, 1), 0.2))
    isi = np.diff(np.flatnonzero(spikes[:, 0])) * DT
    assert len(isi) >= 5 and isi[-1] > 2.0 * isi[0]


def test_without_kernels_gif_is_the_lif_neuron():
    """q_eta = q_gamma = 0: C V' = -g_L (V - E_L) + I with V > V_T_star is the LIF with tau_m = C/g_L,
    R_m = 1/g_L, v_th = V_T_star (LIF's exact method and GIF's exponential Euler coincide when eta = 0)."""
    rng = np.random.default_rng(3)
    current = np.repeat(rng.uniform(0.0, 0.5, size=(60, 5)), 50, axis=0)
    gif = GIF(5, dt=DT, q_eta_1=0.0, q_eta_2=0.0, q_gamma_1=0.0, q_gamma_2=0.0)
    lif = LIF(5, dt=DT, tau_m=TAU_M, R_m=NA_PER_NS_IN_MV / P.g_L, v_rest=P.E_L, v_reset=P.V_reset,
              v_th=P.V_T_star, t_ref=P.t_ref)
    ours, theirs = inject_current(gif, current), inject_current(lif, current)
    assert sum(len(t) for t in ours.spike_times) > 20
    for a, b in zip(ours.spike_times, theirs.spike_times):
        assert len(a) == len(b) and np.max(np.abs(a - b), initial=0.0) <= DT + 1e-9
    np.testing.assert_allclose(ours.v, theirs.v, rtol=0, atol=1e-9)


# -- Brian2 -------------------------------------------------------------------------------------------------------
BRIAN2_EQS = """
dv/dt = (-g_L*(v - E_L) - eta_1 - eta_2 + I) / C : volt (unless refractory)
deta_1/dt = -eta_1 / tau_eta_1 : amp
deta_2/dt = -eta_2 / tau_eta_2 : amp
dgamma_1/dt = -gamma_1 / tau_gamma_1 : volt
dgamma_2/dt = -gamma_2 / tau_gamma_2 : volt
I : amp
"""


@pytest.mark.reference
@pytest.mark.parametrize("method", GIF.methods)
def test_matches_brian2_spike_for_spike(method):
    brian2 = pytest.importorskip("brian2")
    from brian2_reference import run_brian2

    b2 = brian2
    amplitudes = np.array([0.11, 0.15, 0.2, 0.35, 0.6])  # nA; the rheobase g_L (V_T_star - E_L) is 0.101 nA
    steps = 4000  # 400 ms
    current = np.tile(amplitudes, (steps, 1))
    ours = inject_current(GIF(len(amplitudes), dt=DT, method=method), current)
    namespace = {"C": P.C * b2.pF, "g_L": P.g_L * b2.nS, "E_L": P.E_L * b2.mV, "V_reset": P.V_reset * b2.mV,
                 "V_T_star": P.V_T_star * b2.mV, "q_eta_1": P.q_eta_1 * b2.nA, "q_eta_2": P.q_eta_2 * b2.nA,
                 "tau_eta_1": P.tau_eta_1 * b2.ms, "tau_eta_2": P.tau_eta_2 * b2.ms,
                 "q_gamma_1": P.q_gamma_1 * b2.mV, "q_gamma_2": P.q_gamma_2 * b2.mV,
                 "tau_gamma_1": P.tau_gamma_1 * b2.ms, "tau_gamma_2": P.tau_gamma_2 * b2.ms}
    traces, times = run_brian2(
        BRIAN2_EQS, current, DT, current_unit="nA", threshold="v > V_T_star + gamma_1 + gamma_2",
        reset="v = V_reset; eta_1 += q_eta_1; eta_2 += q_eta_2; gamma_1 += q_gamma_1; gamma_2 += q_gamma_2",
        refractory=P.t_ref * b2.ms, method=method, init={"v": P.E_L * b2.mV}, namespace=namespace,
        record=("v", "eta_1", "gamma_1"))
    total = 0
    for i, (mine, theirs) in enumerate(zip(ours.spike_times, times)):
        assert len(mine) == len(theirs), (i, mine, theirs)
        # the same steps (measured: times equal to 6e-14 ms, the rounding of t), far inside one step
        assert np.max(np.abs(mine - theirs), initial=0.0) <= 1e-6, i
        total += len(mine)
    assert total >= 30
    np.testing.assert_allclose(ours.v, traces["v"] * 1e3, rtol=0, atol=1e-9)  # V -> mV (measured 3e-13)
    np.testing.assert_allclose(ours.traces["eta_1"], traces["eta_1"] * 1e9, rtol=0, atol=1e-9)  # A -> nA
    np.testing.assert_allclose(ours.traces["gamma_1"], traces["gamma_1"] * 1e3, rtol=0, atol=1e-6)


# -- an Assembly on both engines ----------------------------------------------------------------------------------
def gif_network(batch: int = 2):
    from braincore.graph import Assembly

    a = Assembly(name="gif_net")
    a.add_population("exc", "gif", 60, init={"v": {"dist": "uniform", "low": "-67 mV", "high": "-45 mV"}})
    a.add_population("inh", "gif", 20, {"q_gamma_1": "5 mV", "q_eta_1": "10 pA", "t_ref": "2 ms"},
                     method="rk4")
    a.add_population("slow", "gif", 20, method="euler")
    a.add_projection("exc", "exc", {"type": "fixed_probability", "p": 0.1}, "0.5 mV", None,
                     {"dist": "uniform", "low": "0.5 ms", "high": "2 ms"})
    a.add_projection("exc", "inh", {"type": "fixed_indegree", "k": 10}, "0.3 nA", {"type": "exponential",
                     "tau": "3 ms"}, "1 ms")
    a.add_projection("inh", "exc", {"type": "fixed_probability", "p": 0.3}, "2 nS",
                     {"type": "conductance", "tau": "8 ms", "E_rev": "-80 mV"}, "1 ms", sign="inhibitory")
    a.add_projection("exc", "slow", {"type": "fixed_indegree", "k": 5}, "1 mV", None, "0.5 ms")
    a.add_input("bias", "constant_current", "exc", amplitude="0.16 nA")
    a.add_input("ramp", "time_varying_current", "slow", values=list(np.linspace(0.0, 0.4, 1500)))
    for pop in ("exc", "inh", "slow"):
        a.add_monitor(f"{pop}_spikes", "spikes", pop)
    a.add_monitor("exc_state", "state", "exc", ["v", "eta_1", "gamma_1"], neurons=[0, 7])
    a.set_run(duration=150.0, dt=DT, seed=5, dtype="float64", batch=batch)
    return a


def test_assembly_runs_on_the_pytorch_and_native_engines_with_identical_spikes():
    from braincore.simulator import Simulator

    native = pytest.importorskip("braincore.native")
    try:
        native.load_library("float64")
    except native.NativeUnavailable as err:  # no C compiler on this machine
        pytest.skip(f"native engine unavailable: {err}")
    torch_sim = Simulator(gif_network(), backend="torch").run()
    native_sim = Simulator(gif_network(), backend="native").run()
    assert torch_sim.engine == "torch" and native_sim.engine == "native"
    counts = native_sim.spike_counts()
    assert all(c > 0 for c in counts.values()), counts
    for pop in ("exc", "inh", "slow"):
        a, b = torch_sim.monitor(f"{pop}_spikes"), native_sim.monitor(f"{pop}_spikes")
        assert len(a["step"]) > 0
        for key in ("step", "trial", "neuron"):
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{pop}/{key}")
    a, b = torch_sim.monitor("exc_state"), native_sim.monitor("exc_state")
    for key in ("v", "eta_1", "gamma_1"):
        np.testing.assert_allclose(a[key], b[key], rtol=0, atol=1e-9, err_msg=key)
    for name, pop in torch_sim.populations.items():
        for field in pop.state._fields:
            torch.testing.assert_close(getattr(pop.state, field), getattr(native_sim.populations[name].state, field),
                                       rtol=0.0, atol=1e-9)
