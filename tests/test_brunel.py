"""Brunel (2000) model A: configs/brunel.yaml is the paper's network, and braincore reproduces its asynchronous
irregular (AI) state (Fig. 8C, g = 5, nu_ext / nu_thr = 2) against the mean-field theory.

The AI checks run the config itself, full size (N_E = 10,000, N_I = 2,500, 15.6 million synapses, 500 ms): about
3 s to build and 2.5 s to run on two cores with the native engine.

The contrast (g = 3, excitation-dominated) runs a scaled-down network. The mean-field theory
(braincore.analysis.brunel_rate) depends on C_E, J, g, gamma = C_I / C_E and eta only, not on N, so it keeps the
paper's in-degrees C_E = 1000, C_I = 250 and J = 0.1 mV and shrinks N to N_E = 2000, N_I = 500: the connection
probability epsilon = C_E / N_E grows to 0.5, which adds shared-input correlations but leaves the mean input where
the theory puts it. (At g = 3 every neuron fires at 500 Hz: full size would take ~14 s.)

Measured (native engine, seed 1, 400 ms after a 100 ms transient), E / I:
  config (g = 5, eta = 2):  37.84 / 38.05 Hz, ISI CV 0.461 / 0.462, chi(2 ms) 0.135 / 0.131, chi(1 ms) 0.11
  theory: Brunel's Table 1 38.0 Hz (his simulation 37.7 Hz); braincore.analysis.brunel_rate 37.95 Hz, CV 0.68
  scaled N_E = 4000 (epsilon 0.25), seeds 1-4: 38.2-38.5 Hz, CV 0.42, chi(2 ms) 0.19-0.22
  g = 3, eta = 2, N_E = 2000:  500 Hz (= 1 / t_ref), CV 0.000, chi(1 ms) 0.10 (see the xfail below)

The PyTorch engine gives the same statistics (38.7 Hz, CV 0.42, chi 0.24 at N_E = 4000) but takes minutes for
these runs, so the tests skip without the native engine.
"""
from pathlib import Path

import pytest

from braincore import analysis as A
from braincore.assembly_config import load_assembly
from braincore.graph import Assembly
from braincore.simulator import Simulator
from braincore.units import parse_quantity

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "brunel.yaml"
TRANSIENT = 100.0  # ms dropped before measuring (the uniform initial potentials relax within a few tau)

J, C_E, TAU, THETA = 0.1, 1000, 20.0, 20.0


def brunel_assembly(order: int = 2500, g: float = 5.0, eta: float = 2.0, *, c_e: int = C_E, duration: float = 600.0,
                    seed: int = 1) -> Assembly:
    """Brunel's model A with N_E = 4 order, N_I = order, in-degrees c_e and c_e / 4, through the Python API."""
    nu_ext = eta * A.nu_threshold(THETA, J, c_e, TAU)
    a = Assembly("brunel", duration=f"{duration} ms", dt="0.1 ms", seed=seed)
    cell = {"tau_m": "20 ms", "R_m": "100 MOhm", "v_rest": "0 mV", "v_reset": "10 mV", "v_th": "20 mV",
            "t_ref": "2 ms"}
    init = {"v": {"dist": "uniform", "low": "0 mV", "high": "20 mV"}}
    a.add_population("exc", "lif", 4 * order, cell, init=init)
    a.add_population("inh", "lif", order, cell, init=init)
    for pre, k, weight, sign in (("exc", c_e, J, "excitatory"), ("inh", c_e // 4, g * J, "inhibitory")):
        for post in ("exc", "inh"):
            a.add_projection(pre, post, {"type": "fixed_indegree", "k": k}, f"{weight} mV",
                             {"type": "instantaneous"}, "1.5 ms", name=pre[0] + post[0], sign=sign)
    for post in ("exc", "inh"):
        a.add_input(f"ext_{post[0]}", "poisson", post, rate=f"{nu_ext} Hz", sources=c_e, weight=f"{J} mV")
    a.add_monitor("exc_spikes", "spikes", "exc")
    a.add_monitor("inh_spikes", "spikes", "inh")
    return a


def simulate(assembly: Assembly) -> dict:
    """Run on the native engine (skip without it); per population: rate, mean ISI CV, chi (1 and 2 ms bins)."""
    sim = Simulator(assembly)
    if sim.engine != "native":
        pytest.skip(f"native engine unavailable ({sim.fallback_reason}); PyTorch takes minutes here")
    sim.run()
    window = sim.t - TRANSIENT
    out = {}
    for pop in ("exc", "inh"):
        n = sim.populations[pop].model.size
        times, neurons = A.spikes_of(sim.monitor(f"{pop}_spikes"), t_start=TRANSIENT)
        out[pop] = {"rate": A.mean_rate(times, n, window), "cv": A.isi_cv(times, neurons, n)[1],
                    "chi1": A.synchrony_chi(times, neurons, n, window, bin_ms=1.0),
                    "chi2": A.synchrony_chi(times, neurons, n, window, bin_ms=2.0)}
    return out


# ------------------------------------------------------------------------------------------ the config
_value = parse_quantity
CELL_DIMENSIONS = {"tau_m": "time", "v_rest": "voltage", "v_reset": "voltage", "v_th": "voltage", "t_ref": "time"}


def test_config_is_the_papers_network_in_the_ai_state():
    config, built = load_assembly(CONFIG), brunel_assembly(2500, g=5.0, eta=2.0)
    assert not config.validate()
    assert {p.name: p.size for p in config.populations()} == {"exc": 10_000, "inh": 2_500}
    for pop in config.populations():
        p = {key: _value(pop.params[key], dim) for key, dim in CELL_DIMENSIONS.items()}
        # tau 20 ms, theta = 20 mV and V_r = 10 mV above rest, tau_rp 2 ms
        assert p == {"tau_m": 20.0, "v_rest": 0.0, "v_reset": 10.0, "v_th": 20.0, "t_ref": 2.0}
    g_of = {}
    for proj in config.projections():
        twin = built.projection(proj.name)
        assert (proj.pre, proj.post, proj.sign, proj.synapse) == (twin.pre, twin.post, twin.sign, twin.synapse)
        assert proj.connector == twin.connector                      # fixed in-degree 1000 / 250
        assert _value(proj.delay, "time") == 1.5
        assert _value(proj.weight, "voltage") == pytest.approx(_value(twin.weight, "voltage"))
        g_of[proj.name] = _value(proj.weight, "voltage") / J
    assert g_of == pytest.approx({"ee": 1.0, "ei": 1.0, "ie": 5.0, "ii": 5.0})   # g = 5
    for inp in config.inputs:
        # C_E sources at eta nu_thr = 2 x 10 Hz, weight J
        assert inp.params["sources"] == C_E
        assert _value(inp.params["rate"], "frequency") == pytest.approx(2.0 * A.nu_threshold())
        assert _value(inp.params["weight"], "voltage") == pytest.approx(J)


# ------------------------------------------------------------------------------------------ the AI state
@pytest.fixture(scope="module")
def ai_state():
    # the config as shipped: full size, 500 ms
    return simulate(load_assembly(CONFIG))


def test_ai_rate_is_the_mean_field_rate(ai_state):
    # Brunel's simulation was within 1 % of his theory at this point (37.7 vs 38.0 Hz). The sampling error of the
    # mean rate is negligible (10,000 neurons x 0.4 s x 38 Hz = 152,000 spikes: 0.3 %, less the slow common
    # fluctuations that chi measures); the theory leaves out finite-size correlations, dt = 0.1 ms and braincore
    # letting refractory membranes collect input (each worth up to a few %): 5 % allowed. Measured +0.0 % (E),
    # +0.5 % (I); +0.7 to +1.5 % at N_E = 4000.
    theory = A.brunel_rate(5.0, 2.0)["rate"]
    for pop in ("exc", "inh"):
        assert ai_state[pop]["rate"] == pytest.approx(theory, rel=0.05)


def test_ai_firing_is_irregular(ai_state):
    # The point is mean-driven (mu = 21 mV > theta), so firing is irregular but less than Poisson: the diffusion
    # theory gives CV 0.68, simulations of the spiking network 0.35-0.46 (Brunel's Fig. 8C; the shot noise of
    # 0.1 mV jumps and the 2 ms refractory period regularise). The bound 0.3 separates it from the regular states
    # (CV < 0.1, the synchronous regular state below); each neuron's ~15 intervals give its CV to ~0.25, the
    # mean over 10,000 neurons to ~0.003. Measured 0.461 (0.42 at N_E = 4000).
    for pop in ("exc", "inh"):
        assert 0.3 < ai_state[pop]["cv"] < 1.0


def test_ai_population_is_asynchronous(ai_state):
    # chi = 1 for full synchrony, 1/sqrt(10000) = 0.01 for independent neurons. A pair of neurons shares epsilon =
    # 10 % of its recurrent inputs and the AI state of Fig. 8C keeps a weak fast oscillation, so chi is above
    # 1/sqrt(N): measured 0.14 (2 ms bins), 0.11 (1 ms). The bound 0.3 lies between that and the paper's
    # synchronous regular state (chi(1 ms) 0.52 in a reference model A at N_E = 2000, see the xfail below).
    for pop in ("exc", "inh"):
        assert ai_state[pop]["chi2"] < 0.3
        assert ai_state[pop]["chi1"] < 0.3


# ------------------------------------------------------------------------------------------ contrast: g = 3
@pytest.fixture(scope="module")
def sr_scaled():
    # excitation-dominated (g = 3 < 4): N_E = 2000, N_I = 500 (epsilon = 0.5) suffice, 300 ms
    return simulate(brunel_assembly(500, g=3.0, eta=2.0, duration=300.0))


def test_excitation_dominated_network_fires_regularly_at_high_rate(sr_scaled):
    # Fig. 8A: neurons fire regularly (CV < 0.1) at rates near saturation, an order of magnitude above the AI state
    # (the paper's SR state: about 330 Hz). braincore: 500 Hz and CV 0.000 (see the xfail below for why).
    for pop in ("exc", "inh"):
        assert sr_scaled[pop]["cv"] < 0.1
        assert 300.0 <= sr_scaled[pop]["rate"] <= 1000.0 / 2.0 + 1e-6       # at most 1 / t_ref


@pytest.mark.xfail(strict=True, reason=(
    "braincore adds instantaneous (voltage-jump) inputs that arrive during the refractory period to the clamped "
    "membrane (Simulator._step and the native kernel's apply_group: v += x before the refractory clamp), while "
    "Brunel's neurons are insensitive to input while refractory (NEST iaf_psc_delta's default). With ~200 mV of "
    "mean drive per tau at g = 3 every neuron fires again the step its refractory period ends: a refractory-"
    "locked 500 Hz state with spread phases (chi 0.10) instead of Fig. 8A's synchronous regular state. An "
    "independent numpy model A that discards refractory input gives 332 Hz and chi(1 ms) 0.52 at this size; "
    "one that keeps it, 476 Hz and chi 0.33."))
def test_excitation_dominated_network_is_synchronous_as_in_the_paper(sr_scaled):
    for pop in ("exc", "inh"):
        assert 280.0 <= sr_scaled[pop]["rate"] <= 380.0
        assert sr_scaled[pop]["chi1"] > 0.4
