"""Compiling an Assembly to a trainable module and back: the module's spikes equal the Simulator's (float64,
exact rasters), weights round-trip exactly, gradients reach every projection, masks survive optimiser steps,
and what is not supported is refused by name."""
from pathlib import Path

import numpy as np
import pytest
import torch

from braincore.graph import Assembly
from braincore.errors import ConfigError
from braincore.simulator import Simulator
from braincore.training.compile import compile_assembly, export_weights, simulate_with_input_spikes

ROOT = Path(__file__).resolve().parent.parent
T, B = 60, 2


def feedforward() -> Assembly:
    """in -> hid (fused: subtract reset, no refractoriness, recurrent jumps) -> out (stepped: reset to a value,
    refractory), plus a skip in -> out through an alpha kernel with a 3-step delay, and external currents."""
    a = Assembly("ff")
    a.add_population("in", "lif", 20)
    a.add_population("hid", "lif", 15, params={"reset": "subtract", "t_ref": 0.0, "v_reset": "-60 mV"},
                     init={"v": "-58 mV"})
    a.add_population("out", "lif", 6, params={"t_ref": "2 ms", "v_reset": "-70 mV"})
    a.add_projection("in", "hid", {"type": "all_to_all"}, {"dist": "normal", "mean": "0.8 mV", "std": "2 mV"},
                     name="in_hid")
    a.add_projection("hid", "hid", {"type": "fixed_probability", "p": 0.3},
                     {"dist": "normal", "mean": "0 mV", "std": "3 mV"}, name="hid_hid")
    a.add_projection("hid", "out", {"type": "fixed_probability", "p": 0.5},
                     {"dist": "normal", "mean": "0.3 nA", "std": "0.3 nA"}, {"type": "exponential", "tau": "5 ms"},
                     name="hid_out", sign="excitatory")
    a.add_projection("in", "out", {"type": "fixed_indegree", "k": 5}, {"dist": "uniform", "low": 0.1, "high": 0.4},
                     {"type": "alpha", "tau": "3 ms"}, delay="1.5 ms", name="skip", sign="inhibitory")
    a.add_input("bias", "constant_current", "hid", amplitude="0.02 nA")
    a.add_input("pulse", "step_current", "out", amplitude="0.1 nA", start="5 ms", stop="15 ms", neurons=[0, 2])
    a.set_run(dt=0.5, dtype="float64", seed=4)
    return a


def recurrent() -> Assembly:
    """A fused recurrent population (euler LIF) and an E <-> I loop stepped as one block (an IF inhibitory
    population, an exponential E -> I kernel, a 2-step I -> E delay, alpha I -> I), read out by a population
    with a time-varying current."""
    a = Assembly("rec")
    a.add_population("in", "lif", 12)
    a.add_population("rec", "lif", 20, method="euler", params={"reset": "subtract", "t_ref": 0.0, "tau_m": "10 ms"})
    a.add_population("exc", "lif", 16, params={"t_ref": "1 ms"})
    a.add_population("inh", "if", 8, params={"C_m": "100 pF"})
    a.add_population("read", "lif", 4, params={"reset": "subtract", "t_ref": 0.0})
    a.add_projection("in", "rec", {"type": "fixed_probability", "p": 0.6},
                     {"dist": "normal", "mean": "4 mV", "std": "2 mV"}, name="in_rec")
    a.add_projection("rec", "rec", {"type": "all_to_all", "allow_self": False},
                     {"dist": "normal", "mean": "0 mV", "std": "2 mV"}, name="rec_rec")
    a.add_projection("in", "exc", {"type": "all_to_all"}, {"dist": "normal", "mean": "0.25 nA", "std": "0.2 nA"},
                     {"type": "exponential", "tau": "4 ms"}, name="in_exc")
    a.add_projection("exc", "exc", {"type": "fixed_probability", "p": 0.3},
                     {"dist": "normal", "mean": "0.5 mV", "std": "1 mV"}, name="exc_exc")
    a.add_projection("exc", "inh", {"type": "fixed_probability", "p": 0.5},
                     {"dist": "uniform", "low": 0.1, "high": 0.6}, {"type": "exponential", "tau": "3 ms"},
                     name="exc_inh", sign="excitatory")
    a.add_projection("inh", "exc", {"type": "fixed_probability", "p": 0.5}, {"dist": "uniform", "low": 1, "high": 3},
                     delay="1 ms", name="inh_exc", sign="inhibitory")
    a.add_projection("inh", "inh", {"type": "all_to_all"}, {"dist": "uniform", "low": 0.0, "high": 0.5},
                     {"type": "alpha", "tau": "2 ms"}, name="inh_inh", sign="inhibitory")
    a.add_projection("rec", "read", {"type": "all_to_all"}, {"dist": "normal", "mean": "0.3 mV", "std": "1 mV"},
                     name="rec_read")
    a.add_projection("exc", "read", {"type": "fixed_total", "n": 30},
                     {"dist": "normal", "mean": "1 mV", "std": "1 mV"}, name="exc_read")
    a.add_input("ramp", "time_varying_current", "read", values=[0.01 * k for k in range(40)])
    a.set_run(dt=0.5, dtype="float64", seed=7)
    return a


def input_spikes(n: int, seed: int = 0, p: float = 0.2, steps: int = T, batch: int = B) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(steps, batch, n, generator=g, dtype=torch.float64) < p).to(torch.float64)


def assert_rasters_equal(module_out: dict, reference: dict) -> None:
    for name, spikes in module_out.items():
        assert spikes.sum() > 0, f"{name} is silent: the comparison would be vacuous"
        assert torch.equal(spikes.detach(), reference[name]), \
            f"{name}: {int((spikes.detach() != reference[name]).sum())} spikes differ"


# ------------------------------------------------------------------------------------------ same spikes
@pytest.mark.parametrize("backend", ["torch", "auto"])
def test_feedforward_network_spikes_equal_the_simulator(backend):
    a = feedforward()
    x = {"in": input_spikes(20)}
    reference = simulate_with_input_spikes(a, x, backend=backend)
    auto = compile_assembly(a)
    assert auto.schedule == [(["hid"], "fused", ""),
                             (["out"], "stepped", "out: reset to a value; out: refractory for 4 steps")]
    assert_rasters_equal(auto(x), reference)
    assert_rasters_equal(compile_assembly(a, fused=False)(x), reference)
    assert torch.equal(reference["in"], x["in"])  # the relays fire at exactly the given steps


@pytest.mark.parametrize("backend", ["torch", "auto"])
def test_recurrent_network_spikes_equal_the_simulator(backend):
    a = recurrent()
    x = {"in": input_spikes(12, seed=1)}
    reference = simulate_with_input_spikes(a, x, backend=backend)
    net = compile_assembly(a)
    assert [(pops, how) for pops, how, _ in net.schedule] == [(["rec"], "fused"), (["exc", "inh"], "stepped"),
                                                              (["read"], "fused")]
    assert_rasters_equal(net(x), reference)
    assert_rasters_equal(compile_assembly(a, fused=False)(x), reference)


def test_fused_and_stepped_paths_give_the_same_gradients():
    # both differentiate the same update with the same surrogate; only the arithmetic order differs
    a = feedforward()
    x = {"in": input_spikes(20, seed=2)}
    grads = []
    for fused in (None, False):
        net = compile_assembly(a, fused=fused)
        out = net(x)
        (out["hid"].sum() + 2.0 * out["out"].sum()).backward()
        grads.append({k: w.grad.clone() for k, w in net.weights.items()})
    for key in grads[0]:
        torch.testing.assert_close(grads[0][key], grads[1][key], rtol=1e-9, atol=1e-12)


# ------------------------------------------------------------------------------------------ round trip
def test_modified_weights_round_trip_exactly_into_the_simulator():
    a = feedforward()
    before = a.to_dict()
    net = compile_assembly(a)
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for w in net.weights.values():
            w.add_(0.5 * torch.randn(w.shape, generator=g, dtype=w.dtype))  # some excitatory ones go negative
    x = {"in": input_spikes(20, seed=3)}
    out = net(x)
    exported = export_weights(net)
    assert a.to_dict() == before  # the description compiled is never changed
    assert_rasters_equal(out, simulate_with_input_spikes(exported, x))
    sim = Simulator(exported, backend="torch")
    for name in net.projection_names:
        mine, theirs = net.synapses(name), sim.weights(name)
        assert np.array_equal(mine["pre"].numpy(), theirs["pre"]) and np.array_equal(mine["post"].numpy(),
                                                                                      theirs["post"])
        assert np.array_equal(mine["weight"].numpy(), theirs["weight"]), name
    again = compile_assembly(exported)
    for name in net.projection_names:
        assert torch.equal(again.weight(name), net.weight(name).detach())
    assert exported.projection("in_hid").connector == {"type": "all_to_all"}  # deterministic connectors kept
    assert exported.projection("hid_hid").connector["type"] == "explicit"


def test_simulator_weights_load_back_into_the_module():
    a = feedforward()
    net = compile_assembly(a)
    sim = Simulator(a, backend="torch")
    with torch.no_grad():
        for w in net.weights.values():
            w.zero_()
    net.load_from_simulator(sim)
    for name in net.projection_names:
        assert np.array_equal(net.synapses(name)["weight"].numpy(), sim.weights(name)["weight"])


# ------------------------------------------------------------------------------------------ training
@pytest.mark.parametrize("fused", [None, False])
def test_gradients_reach_every_projection(fused):
    for make, n_in in ((feedforward, 20), (recurrent, 12)):
        net = compile_assembly(make(), fused=fused)
        out = net({"in": input_spikes(n_in, seed=4)})
        sum(o.sum() for o in out.values()).backward()
        for name, w in net.weights.items():
            assert w.grad is not None and torch.isfinite(w.grad).all(), name
            assert w.grad.abs().sum() > 0, name


def test_sparsity_mask_is_kept_through_optimiser_steps():
    a = feedforward()
    net = compile_assembly(a)
    mask = net.mask("hid_hid").clone()
    assert mask is not None and not mask.all() and mask.any()
    assert net.mask("in_hid") is None  # all-to-all: no mask
    original = Simulator(a, backend="torch").weights("hid_hid")
    opt = torch.optim.Adam(net.parameters(), lr=0.1, weight_decay=0.01)
    x = {"in": input_spikes(20, seed=6)}
    for _ in range(3):
        opt.zero_grad()
        out = net(x)
        (out["out"].sum() - out["hid"].mean()).backward()
        assert (net.weights["hid_hid"].grad[~mask] == 0).all()
        opt.step()
    assert torch.equal(net.mask("hid_hid"), mask)
    assert (net.weight("hid_hid")[~mask] == 0).all()
    assert (net.weights["hid_hid"][~mask] == 0).all()  # the raw parameter never moved off the synapses
    syn = export_weights(net).projection("hid_hid").connector
    assert syn["pre"] == original["pre"].tolist() and syn["post"] == original["post"].tolist()


def test_yaml_example_trains_then_simulates_with_plasticity():
    from braincore.assembly_config import load_assembly

    a = load_assembly(ROOT / "configs" / "examples" / "trainable_ff.yaml")
    net = compile_assembly(a, inputs=["in"], outputs=["out"], dtype="float64")
    assert [how for _, how, _ in net.schedule] == ["fused", "stepped"]
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    spikes = net({"in": input_spikes(40, seed=8, p=0.05, steps=50)})["out"]
    ((spikes.sum(dim=(0, 1)) - 3.0) ** 2).sum().backward()
    opt.step()
    sim = Simulator(export_weights(net), dtype="float64").run(50.0)
    assert sim.spike_counts()["hidden"] > 0
    before = net.synapses("hidden_out")["weight"].numpy()
    after = sim.weights("hidden_out")["weight"]
    assert not np.array_equal(before, after)  # STDP changed the trained weights during the simulation
    net.load_from_simulator(sim)
    assert np.array_equal(net.synapses("hidden_out")["weight"].numpy(), after)


# ------------------------------------------------------------------------------------------ refusals
def _base() -> Assembly:
    a = Assembly("bad")
    a.add_population("in", "lif", 4)
    a.add_population("hid", "lif", 3)
    return a


def _izhikevich(a):
    a.add_population("izh", "izhikevich", 2)
    a.add_projection("in", "izh", {"type": "all_to_all"}, 1.0)


def _conductance(a):
    a.add_projection("in", "hid", {"type": "all_to_all"}, "1 nS", {"type": "conductance", "tau": "5 ms",
                                                                   "E_rev": "0 mV"}, name="cond")


def _delays(a):
    a.add_projection("in", "hid", {"type": "all_to_all"}, "1 mV", delay={"dist": "uniform", "low": 0.1, "high": 2},
                     name="spread")


def _into_input(a):
    a.add_projection("in", "hid", {"type": "all_to_all"}, "1 mV")
    a.add_projection("hid", "in", {"type": "all_to_all"}, "1 mV", name="back")


def _poisson(a):
    a.add_projection("in", "hid", {"type": "all_to_all"}, "1 mV")
    a.add_input("noise", "poisson", "hid", rate="5 Hz", weight="1 mV")


def _random_init(a):
    a.add_projection("in", "hid", {"type": "all_to_all"}, "1 mV")
    a.add_population("rnd", "lif", 2, init={"v": {"dist": "uniform", "low": "-65 mV", "high": "-55 mV"}})
    a.add_projection("in", "rnd", {"type": "all_to_all"}, "1 mV")


@pytest.mark.parametrize("build, inputs, words", [
    (_izhikevich, None, ["'izh'", "izhikevich"]),
    (_conductance, None, ["'cond'", "conductance", "membrane potential"]),
    (_delays, None, ["'spread'", "different delays"]),
    (_into_input, ["in"], ["'back'", "input population"]),
    (_poisson, None, ["'noise'", "poisson", "ignore_inputs"]),
    (_random_init, None, ["'rnd'", "random initial state"]),
])
def test_unsupported_assemblies_raise_naming_what_and_why(build, inputs, words):
    a = _base()
    build(a)
    with pytest.raises(ConfigError) as err:
        compile_assembly(a, inputs=inputs)
    for word in words:
        assert word in str(err.value), str(err.value)


def test_ignored_inputs_and_forced_fusion():
    a = _base()
    _poisson(a)
    net = compile_assembly(a, ignore_inputs=["noise"])
    assert net(input_spikes(4, steps=5))["hid"].shape == (5, B, 3)
    a.add_population("slow", "lif", 2, params={"t_ref": "5 ms"})
    a.add_projection("in", "slow", {"type": "all_to_all"}, "1 mV")
    with pytest.raises(ConfigError, match="slow: reset to a value; slow: refractory"):
        compile_assembly(a, ignore_inputs=["noise"], fused=True)


# ------------------------------------------------------------------------------------------ the rule, derived
CONDUCTANCE_LIF = {  # a LIF written by a user in conductance form: C dV/dt = g_L (E_L - V) + I
    "params": {"C": "200 pF", "g_L": "10 nS", "E_L": "-65 mV", "V_th": "-52 mV", "V_r": "-60 mV"},
    "state": {"v": {"unit": "mV", "init": "E_L"}},
    "equations": ["dv/dt = (g_L*(E_L - v) + I) / C"],
    "threshold": "v >= V_th", "reset": ["v = V_r"], "refractory": "1 ms", "methods": ["exact", "euler"]}


def test_what_compiles_is_derived_from_the_definition():
    from braincore.neurons import MODELS
    from braincore.neurons.defined import user_model
    from braincore.training.compile import SUPPORTED_MODELS, linear_form

    assert set(SUPPORTED_MODELS) == {"lif", "if"}  # of the built-in models, exactly the one-variable linear ones
    defn = user_model(CONDUCTANCE_LIF, name="clif").definition
    for method in ("exact", "euler"):
        form, why = linear_form(defn, method, None)
        assert why == [] and (form.threshold, form.reset_to, str(form.rest)) == ("V_th", "V_r", "E_L")
    qif = dict(CONDUCTANCE_LIF, equations=["dv/dt = (g_L*(v - E_L)*(v - V_th)/(V_th - E_L) + I) / C"],
               methods=["euler"])
    _, why = linear_form(user_model(qif, name="qif").definition, "euler", None)
    assert any("not linear" in w for w in why), why
    _, why = linear_form(MODELS["gif"].definition, "exponential_euler", None)
    assert any("eta_1" in w for w in why), why


def _user_model_network(with_gif: bool) -> Assembly:
    a = Assembly("clif")
    a.add_population("in", "lif", 10)
    a.add_population("hid", "clif_test", 8, init={"v": "-60 mV"})
    a.add_projection("in", "hid", {"type": "all_to_all"}, {"dist": "normal", "mean": "0.4 nA", "std": "0.4 nA"},
                     {"type": "exponential", "tau": "4 ms"}, name="in_hid")
    a.add_projection("hid", "hid", {"type": "fixed_probability", "p": 0.4},
                     {"dist": "normal", "mean": "0 mV", "std": "2 mV"}, name="hid_hid")
    if with_gif:
        a.add_population("adapting", "gif", 2)
        a.add_projection("hid", "adapting", {"type": "all_to_all"}, "1 mV")
    a.set_run(dt=0.5, dtype="float64", seed=3)
    return a


def test_a_user_model_linear_between_spikes_compiles_and_matches_the_simulator():
    from braincore.neurons import MODELS, register
    from braincore.neurons.defined import user_model

    register(user_model(CONDUCTANCE_LIF, name="clif_test"))
    try:
        with pytest.raises(ConfigError, match="'adapting'.*'gif' is not supported.*eta_1"):
            compile_assembly(_user_model_network(with_gif=True))
        a = _user_model_network(with_gif=False)
        x = {"in": input_spikes(10, seed=2, p=0.3)}
        reference = simulate_with_input_spikes(a, x)
        net = compile_assembly(a)
        assert net.schedule[0][:2] == (["hid"], "stepped")
        assert_rasters_equal(net(x), reference)
    finally:
        MODELS.pop("clif_test", None)
