"""Brain regions (regions/): cortex, thalamus, basal ganglia, dopamine, motor; the CBGT loop config (selection and
switching), D1/D2 learning of opposite signs, parameter errors. Small networks, a few seconds each."""
from pathlib import Path

import numpy as np
import pytest

from braincore.assembly_config import assembly_from_text, load_assembly
from braincore.config import ConfigProblems, load_text, validate
from braincore.graph import Assembly
from braincore.errors import ConfigError
from braincore.region_types import build_region, region_types
from braincore.simulator import Simulator
from regions.basal_ganglia import basal_ganglia
from regions.dopamine import RewardPredictionError, dopamine
from regions.motor import channel_rates, motor, selected_channel
from regions.thalamus import thalamus

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "brain" / "cbgt_loop.yaml"

PORTS = {
    "cortex": {"in_0", "out_0", "in_1", "out_1", "inh"},
    "sensory_cortex": {"in_0", "out_0", "inh"},
    "association_cortex": {"in_0", "out_0", "inh"},
    "thalamus": {"in_0", "gate_0", "out_0", "trn_in_0", "in_1", "gate_1", "out_1", "trn_in_1"},
    "basal_ganglia": {f"{p}_{c}" for p in ("in_d1", "in_d2", "in_stn", "out") for c in (0, 1)},
    "motor": {"in_0", "out_0", "in_1", "out_1", "inh"},
    "dopamine": {"in", "out"},
}


@pytest.mark.parametrize("name", sorted(PORTS))
def test_each_region_builds_validates_and_has_its_ports(name):
    types = region_types()
    assert name in types and types[name].description
    params = {} if name == "dopamine" else {"channels": 2}
    a = build_region(name, params)
    assert a.validate() == []
    assert PORTS[name] <= set(a.ports)
    assert all(a.resolve(port) is not None for port in a.ports)
    host = Assembly("host")
    host.include(a, "r")
    assert host.validate() == [] and all(host.resolve(f"r.{p}") for p in PORTS[name])
    assert any(m.type == "spikes" for m in a.monitors)


def test_region_docstrings_name_anatomy_parameters_and_references():
    import regions.basal_ganglia as bg
    import regions.cortex as cx
    import regions.dopamine as da
    import regions.motor as mo
    import regions.thalamus as th

    for module in (bg, cx, da, mo, th):
        doc = module.__doc__
        assert "**Anatomy" in doc and "**Parameters**" in doc and "References" in doc and "**Ports" in doc


def test_bad_parameters_are_reported_with_their_names():
    with pytest.raises(ConfigError) as err:
        build_region("basal_ganglia", {"channels": 0, "w_d1_gpi": "1 ms", "eta_gpi": -1})
    keys = {key for key, _ in err.value.items}
    assert {("params", "channels"), ("params", "w_d1_gpi"), ("params", "eta_gpi")} <= keys
    with pytest.raises(ConfigError, match="variant: unknown value 'motor'"):
        build_region("cortex", {"variant": "motor"})
    with pytest.raises(ConfigError, match="n_relay"):
        thalamus(n_relay=0)
    with pytest.raises(ConfigError, match="channel"):
        dopamine(channel="da.x")
    text = """
kind: assembly
include:
  bg: {region: basal_ganglia, params: {channels: 2, k_focused: 1.5}}
  th: {region: thalamus, params: {tau_trn: 5 mV}}
"""
    with pytest.raises(ConfigProblems) as problems:
        assembly_from_text(text, "x.yaml")
    message = str(problems.value)
    assert "x.yaml:4: include.bg.params.k_focused: expected an integer >= 1, got 1.5" in message
    assert "x.yaml:5: include.th.params.tau_trn:" in message


def _bg_loop(rates: list, swap_at: float = None, duration: float = 600.0, seed: int = 1) -> Simulator:
    """Basal ganglia, thalamus and motor (small), cortex replaced by Poisson trains of ``rates`` Hz onto the
    striatum and STN of each channel (``rates`` reversed from ``swap_at`` ms on)."""
    channels = len(rates)
    a = Assembly("bg_loop", duration=f"{duration} ms", seed=seed)
    a.include(basal_ganglia(channels=channels, n_msn=20, n_stn=10, n_gpe=10, n_gpi=10, k_focused=10,
                            w_d1_gpi="5 mV", w_d2_gpe="2 mV", w_gpe_gpi="0.8 mV", w_gpe_stn="0.6 mV",
                            k_diffuse=3, w_stn_gpi="1 mV", w_stn_gpe="0.4 mV"), "bg")
    a.include(thalamus(channels=channels, n_relay=10, n_trn=5, k=5, w_relay_trn="1.2 mV", w_trn_relay="0.8 mV",
                       w_trn_lateral="0.4 mV"), "thal")
    a.include(motor(channels=channels, n=10, n_inh=5, k=5, w_recurrent="0.4 mV", w_exc_inh="0.8 mV",
                    w_inh_exc="1.2 mV"), "motor")
    for c in range(channels):
        a.add_projection(f"bg.out_{c}", f"thal.gate_{c}", {"type": "fixed_indegree", "k": 10}, "1 mV",
                         delay="2 ms", sign="inhibitory")
        a.add_projection(f"thal.out_{c}", f"motor.in_{c}", {"type": "fixed_indegree", "k": 10}, "1 mV",
                         delay="2 ms", sign="excitatory")
        windows = [(0.0, swap_at, rates[c]), (swap_at, None, rates[::-1][c])] if swap_at else [(0.0, None, rates[c])]
        for w, (start, stop, rate) in enumerate(windows):
            for port, k in (("in_d1", 20), ("in_d2", 20), ("in_stn", 10)):
                params = {"rate": f"{rate} Hz", "sources": k, "weight": "0.5 mV", "start": f"{start} ms"}
                if stop is not None:
                    params["stop"] = f"{stop} ms"
                a.add_input(f"ctx_{port}_{c}_{w}", "poisson", f"bg.{port}_{c}", params)
    return Simulator(a).run()


def test_basal_ganglia_selects_the_channel_with_the_strongest_input():
    sim = _bg_loop([45.0, 16.0, 5.0])
    gpi = channel_rates(sim, "bg", "gpi_{c}", 200.0)
    relay = channel_rates(sim, "thal", "relay_{c}", 200.0)
    m = channel_rates(sim, "motor", "m_{c}", 200.0)
    assert int(np.argmin(gpi)) == 0 and gpi[0] < 0.3 * min(gpi[1:]), gpi
    assert int(np.argmax(relay)) == 0 and relay[0] > 3 * max(relay[1:]), relay
    assert int(np.argmax(m)) == 0 and selected_channel(sim, "motor", 200.0) == 0, m
    # diffuse STN excitation: the losers' output rises above its level without a salient channel. A rate of 10
    # neurons over 200 ms moves by ~10% with the network's random draw (seed 1 alone gave 0.80 with the old
    # generator-drawn network and 0.75 with the counter-based one), so the ratio is averaged over three networks
    ratios = []
    for seed in (1, 2, 3):
        loser = gpi if seed == 1 else channel_rates(_bg_loop([45.0, 16.0, 5.0], seed=seed), "bg", "gpi_{c}", 200.0)
        rest = channel_rates(_bg_loop([5.0, 5.0, 5.0], duration=400.0, seed=seed), "bg", "gpi_{c}", 200.0)
        ratios.append(min(loser[1:]) / float(np.mean(rest)))
    assert float(np.mean(ratios)) > 0.8, ratios


def test_selection_switches_when_the_inputs_swap():
    sim = _bg_loop([45.0, 16.0, 5.0], swap_at=500.0, duration=1000.0)
    assert selected_channel(sim, "motor", 200.0, 500.0) == 0
    assert selected_channel(sim, "motor", 700.0, 1000.0) == 2
    assert int(np.argmin(channel_rates(sim, "bg", "gpi_{c}", 700.0, 1000.0))) == 2
    assert selected_channel(sim, "motor", 0.0, 1.0) is None  # nothing selected in an empty window


def test_poisson_inputs_take_start_and_stop_windows_on_both_engines():
    for backend in ("torch", "native"):
        a = Assembly("window", duration="300 ms", seed=0, backend=backend)
        a.add_population("p", "lif", 5, {"tau_m": "10 ms"})
        a.add_input("on", "poisson", "p", rate="2000 Hz", weight="5 mV", start="100 ms", stop="200 ms")
        a.add_monitor("s", "spikes", "p")
        sim = Simulator(a).run()
        t = sim.monitor("s")["t"]
        assert len(t) > 20 and t.min() >= 100.0 and t.max() < 205.0, (backend, t.min(), t.max())
    bad = Assembly("bad")
    bad.add_population("p", "lif", 1)
    bad.add_input("x", "poisson", "p", rate="5 Hz", weight="1 mV", start="2 ms", stop="1 ms")
    assert any("stop" in p and "after start" in p for p in bad.validate())


def test_d1_and_d2_synapses_change_with_opposite_signs_under_a_dopamine_burst():
    a = Assembly("learning", duration="300 ms", dt="0.2 ms", seed=2)
    a.add_population("ctx", "lif", 30, {"tau_m": "10 ms"})
    a.add_input("drive", "poisson", "ctx", rate="60 Hz", weight="1 mV", sources=50)
    a.include(basal_ganglia(channels=1, n_msn=10, n_stn=5, n_gpe=5, n_gpi=5, k_focused=5, k_diffuse=2,
                            monitors=False), "bg")
    a.include(dopamine(n=5, monitors=False), "snc")
    rule = {"rule": "rstdp", "modulator": "dopamine", "A_plus": 1.0, "A_minus": 0.5, "tau_c": "500 ms",
            "eta": 1e-4, "w_min": 0.0, "w_max": 4.0}
    for receptor in ("d1", "d2"):
        a.add_projection("ctx", f"bg.in_{receptor}_0", {"type": "fixed_indegree", "k": 20}, "0.8 mV",
                         delay="2 ms", name=f"ctx_{receptor}", sign="excitatory",
                         plasticity={**rule, "receptor": receptor})
    assert "dopamine" in a.modulators and a.modulators["dopamine"]["tau"] == "200 ms"
    sim = Simulator(a)
    w0 = {r: sim.weights(f"ctx_{r}")["weight"].copy() for r in ("d1", "d2")}
    sim.run(150)
    for r in ("d1", "d2"):  # no dopamine yet: eligibility only, weights unchanged
        np.testing.assert_array_equal(sim.weights(f"ctx_{r}")["weight"], w0[r])
    critic = RewardPredictionError(learning_rate=0.5, gain=1.0)
    delta = critic(sim, reward=1.0, key="trial")  # better than expected: a burst
    assert delta == 1.0 and critic.expected("trial") == 0.5
    sim.run(150)
    change = {r: float((sim.weights(f"ctx_{r}")["weight"] - w0[r]).mean()) for r in ("d1", "d2")}
    assert change["d1"] > 0 > change["d2"], change
    assert critic(None, reward=1.0, key="trial") == 0.5  # the prediction improves: a smaller error


def test_cbgt_loop_config_validates_and_a_short_version_selects_and_switches(tmp_path):
    a = load_assembly(CONFIG)
    assert {"ctx", "bg", "thal", "motor"} <= set(a.regions) and a.validate() == []
    text = CONFIG.read_text()
    short = (text.replace("duration: 2000 ms", "duration: 800 ms").replace("stop: 1000 ms", "stop: 400 ms")
             .replace("start: 1000 ms", "start: 400 ms").replace("stop: 2000 ms", "stop: 800 ms")
             .replace("settle: 200 ms", "settle: 150 ms"))
    kind, config = validate(load_text(short, str(CONFIG)))
    lines = []
    summary = kind.runner(config, {"out": str(tmp_path), "no_plot": True, "progress": False, "print": lines.append})
    assert summary["selections"] == [0, 2] and summary["all_correct"], "\n".join(lines)
    first, second = summary["windows"]
    assert first["gpi_lowest"] == 0 and first["thalamus_highest"] == 0
    assert second["gpi_lowest"] == 2 and second["thalamus_highest"] == 2
    assert second["gpi_latency_ms"] is not None and second["gpi_latency_ms"] < 150
    assert any("selected: channel 2" in line for line in lines) and lines[-1].startswith("{")
    bad = short.replace("stop: 800 ms}", "stop: 900 ms}")
    with pytest.raises(ConfigProblems, match="after the end of the run"):
        validate(load_text(bad, str(CONFIG)))


def test_graph_of_the_loop_draws(tmp_path):
    pytest.importorskip("matplotlib")
    from braincore.cli import main

    assert main(["graph", str(CONFIG), "--out", str(tmp_path / "g.png")]) == 0
    assert (tmp_path / "g.png").stat().st_size > 10_000
