"""Plasticity rules written as definitions (braincore.equations.rule): checked text, a user's rule on both engines."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from braincore.equations import EquationError
from braincore.equations.rule import RuleDefinition
from braincore.graph import Assembly
from braincore.plasticity import RULES, STDP
from braincore.plasticity.defined import define_rule
from braincore.simulator import Simulator

TAU = {"tau": (10.0, "time", "trace decay")}


def rule(**fields) -> RuleDefinition:
    base = dict(name="r", params=dict(TAU), traces={"x": ("pre", "tau")}, on_pre=["w += 0.1*x"], pairing=None)
    base.update(fields)
    return RuleDefinition(**base)


@pytest.mark.parametrize("fields, key, words", [
    ({"on_pre": ["w = x"]}, "on_pre[0]", "increments"),
    ({"on_pre": ["w += x*tau"]}, "on_pre[0]", "the increment is a time"),
    ({"on_pre": ["w += x*tua"]}, "on_pre[0]", "did you mean 'tau'"),
    ({"on_pre": ["v += x"]}, "on_pre[0]", "changes 'v'"),
    ({"traces": {"x": ("dendrite", "tau")}}, "traces.x", "side 'dendrite'"),
    ({"traces": {"x": ("pre", "eta")}}, "traces.x", "not a time parameter"),
    ({"traces": {"x": ("pre", "tau"), "c": ("synapse", "tau")}}, "traces.c", "never changed"),
    ({"on_pre": ["w += M*x"]}, "on_pre[0]", "unknown symbol 'M'"),  # M exists only in modulated rules
    ({"clip": True}, "clip", "w_min and w_max"),
    ({"params": {"tau": (10.0, "time"), "w": (1.0, "dimensionless")}}, "w", "reserved"),
    ({"pairing": "pairing"}, "pairing", "not a choice parameter"),
])
def test_bad_rule_text_is_an_error_naming_the_key(fields, key, words):
    with pytest.raises(EquationError) as err:
        rule(**fields).check()
    assert err.value.key == key and words in str(err.value), str(err.value)


def test_a_bad_parameter_value_of_a_defined_rule_names_the_parameter():
    with pytest.raises(Exception, match="tau_plus must be > 0"):
        STDP({"tau_plus": "-1 ms"})
    with pytest.raises(Exception, match="pairing must be 'all_to_all' or 'nearest'"):
        STDP({"pairing": "closest"})


def test_the_rule_text_is_hoisted_into_constants_shared_by_both_engines():
    program = RULES["stdp"]().program
    assert [s.target for s in program.on_pre] == ["w"] and len(program.constants) == 4  # 2 decays, 2 products
    assert all(sym.name in ("y",) or sym.name.startswith("_c") for sym in program.on_pre[0].expr.free_symbols)


#: a user's rule: depression on presynaptic spikes only, with a soft lower bound; potentiation gated by a
#: postsynaptic voltage-free "burst" trace crossing 1.5 (a nonlinear, thresholded term)
BURST = RuleDefinition(
    name="burst_rule",
    params={"tau_x": (15.0, "time", ""), "tau_b": (30.0, "time", ""), "a": (0.02, "dimensionless", ""),
            "d": (0.01, "dimensionless", ""), "w_min": (0.0, "dimensionless", ""),
            "w_max": (2.0, "dimensionless", "")},
    traces={"x": ("pre", "tau_x"), "b": ("post", "tau_b")},
    on_pre=["w -= d*(w - w_min)*exp(-b)"],
    on_post=["w += a*x*max(b - 1.5, 0)"],
    clip=True, pairing=None)
Burst = define_rule(BURST, "Burst")


def test_a_user_rule_runs_on_both_engines_with_identical_float64_weights():
    def network() -> Assembly:
        a = Assembly(name="user_rule")
        a.add_population("inp", "lif", 30, {"tau_m": "10 ms"},
                         init={"v": {"dist": "uniform", "low": "-70 mV", "high": "-52 mV"}})
        a.add_population("out", "lif", 20, init={"v": {"dist": "uniform", "low": "-70 mV", "high": "-52 mV"}})
        values = np.random.default_rng(1).random((1000, 30)) * 5.0
        a.add_input("noise", "time_varying_current", "inp", values=values.tolist())
        a.add_projection("inp", "out", {"type": "fixed_probability", "p": 0.6}, {"dist": "uniform", "low": 0.5,
                         "high": 1.5}, {"type": "exponential", "tau": "4 ms"}, "1 ms", storage="sparse",
                         plasticity={"rule": "stdp"})
        a.add_monitor("spikes", "spikes", "out")
        a.set_run(duration=100.0, dt=0.1, seed=2, dtype="float64")
        return a

    sims = {}
    for backend in ("torch", "native"):
        sim = Simulator(network(), backend=backend)
        proj = sim.projections[0]
        proj.rule = Burst()  # a rule object attached from Python (no registry entry needed)
        proj.rule_state = proj.rule.init_state(proj.view, sim.batch, sim.device, sim.dtype)
        sim.run()
        sims[backend] = sim
    assert sims["native"].engine == "native"
    wt, wn = (sims[b].weights("inp->out")["weight"] for b in ("torch", "native"))
    w0 = Simulator(network(), backend="torch").weights("inp->out")["weight"]
    assert np.abs(wt - w0).max() > 1e-3  # the rule acted
    assert np.array_equal(wt, wn)
    st, sn = (sims[b].projections[0].rule_state for b in ("torch", "native"))
    assert all(torch.equal(st[k], sn[k]) for k in st)


# ------------------------------------------------------------------------------------------ YAML
YAML_RULE = """\
kind: assembly
name: yaml_rule
populations:
  inp: {model: lif, size: 30, params: {tau_m: 10 ms}}
  out: {model: lif, size: 20}
inputs:
  - {name: drive, type: constant_current, target: inp, amplitude: 2.5 nA}
projections:
  - pre: inp
    post: out
    connector: {type: fixed_probability, p: 0.6}
    weight: {dist: uniform, low: 0.5, high: 1.5}
    synapse: {type: exponential, tau: 4 ms}
    storage: sparse
    plasticity:
      rule:
        name: my_stdp
        params: {tau_x: 20 ms, tau_y: 20 ms, a: 0.01, w_min: 0, w_max: 2}
        traces: {x: [pre, tau_x], y: [post, tau_y]}
        on_pre: ["w -= 1.05*a*y"]
        on_post: ["w += a*x"]
        clip: true
      a: 0.02
monitors:
  - {name: spikes, type: spikes, target: out}
duration: 60 ms
dt: 0.1 ms
seed: 1
dtype: float64
"""


def test_a_yaml_rule_equals_the_built_in_stdp_it_spells_out():
    """The YAML rule above is pair STDP with A_minus = 1.05 A_plus: same weights as ``rule: stdp`` bit for bit."""
    from braincore.assembly_config import assembly_from_text

    builtin = YAML_RULE.replace("""      rule:
        name: my_stdp
        params: {tau_x: 20 ms, tau_y: 20 ms, a: 0.01, w_min: 0, w_max: 2}
        traces: {x: [pre, tau_x], y: [post, tau_y]}
        on_pre: ["w -= 1.05*a*y"]
        on_post: ["w += a*x"]
        clip: true
      a: 0.02""", """      {rule: stdp, A_plus: 0.02, A_minus: 0.021, w_max: 2}""")
    results = []
    for text in (YAML_RULE, builtin):
        for backend in ("torch", "native"):
            sim = Simulator(assembly_from_text(text, "rule.yaml"), backend=backend).run()
            results.append(sim.weights("inp->out")["weight"])
    assert np.abs(results[0] - Simulator(assembly_from_text(YAML_RULE, "r.yaml")).weights("inp->out")["weight"]
                  ).max() > 1e-3
    assert np.array_equal(results[0], results[1])  # the user rule: torch = native
    assert np.allclose(results[0], results[2], rtol=1e-12, atol=1e-14)  # = the built-in rule (1.05*a vs 0.021)
    assert np.array_equal(results[2], results[3])


@pytest.mark.parametrize("old, new, key", [
    ('on_pre: ["w -= 1.05*a*y"]', 'on_pre: ["w -= 1.05*a*z"]', "on_pre"),
    ("traces: {x: [pre, tau_x], y: [post, tau_y]}", "traces: {x: [pre, tau_x], y: [post, a]}", "traces"),
    ("        clip: true", "        clip: true\n        colour: red", "colour"),
    ("params: {tau_x: 20 ms,", "params: {tau_x: 20 mV,", "traces"),
])
def test_a_bad_yaml_rule_is_reported_with_file_line_and_key(old, new, key):
    from braincore.assembly_config import assembly_from_text
    from braincore.config import ConfigProblems

    text = YAML_RULE.replace(old, new)
    assert text != YAML_RULE
    with pytest.raises(ConfigProblems) as info:
        assembly_from_text(text, "bad.yaml")
    message = str(info.value)
    line = next(i + 1 for i, row in enumerate(text.splitlines()) if row.strip().startswith(key))
    assert f"bad.yaml:{line}: projections[0].plasticity.rule.{key}" in message, message


def test_a_modulated_user_rule_with_a_synapse_trace_runs_on_both_engines():
    """A user's three-factor rule (eligibility trace per synapse, dopamine-gated weight change) written as a mapping:
    identical float64 weights and traces on both engines, and it learns only while the modulator is on."""
    from braincore.plasticity.defined import user_rule

    spec = {"name": "my_rstdp", "modulator": "dopamine",
            "params": {"tau_x": "20 ms", "tau_y": "20 ms", "tau_e": "200 ms", "a": 0.5, "eta": 0.002,
                       "w_min": 0.0, "w_max": 3.0},
            "traces": {"x": ["pre", "tau_x"], "y": ["post", "tau_y"], "e": ["synapse", "tau_e"]},
            "on_pre": ["e -= a*y"], "on_post": ["e += a*x"],
            "each_step": ["w += (dt/ms)*eta*M*e"], "each_step_when": "M != 0", "clip": True}
    assert user_rule(spec) is user_rule(dict(spec))  # equal mappings share one class

    def network() -> Assembly:
        a = Assembly(name="modulated")
        a.add_population("inp", "lif", 30, {"tau_m": "10 ms"},
                         init={"v": {"dist": "uniform", "low": "-70 mV", "high": "-52 mV"}})
        a.add_population("out", "lif", 20, init={"v": {"dist": "uniform", "low": "-70 mV", "high": "-52 mV"}})
        values = np.random.default_rng(3).random((1500, 30)) * 5.0
        a.add_input("noise", "time_varying_current", "inp", values=values.tolist())
        a.add_projection("inp", "out", {"type": "fixed_probability", "p": 0.6}, {"dist": "uniform", "low": 0.5,
                         "high": 1.5}, {"type": "exponential", "tau": "4 ms"}, "1 ms", storage="sparse",
                         plasticity={"rule": spec})
        a.add_modulator("dopamine", tau="50 ms")
        a.add_monitor("spikes", "spikes", "out")
        a.set_run(duration=150.0, dt=0.1, seed=2, dtype="float64", batch=1)
        return a

    sims = {}
    for backend in ("torch", "native"):
        sim = Simulator(network(), backend=backend)
        sim.run(60.0)
        before = sim.weights("inp->out")["weight"].copy()
        sim.modulators.pulse("dopamine", 1.0)
        sim.run(90.0)
        sims[backend] = (sim, before)
    (st, bt), (sn, _) = sims["torch"], sims["native"]
    assert sn.engine == "native"
    w0 = Simulator(network(), backend="torch").weights("inp->out")["weight"]
    assert np.array_equal(bt, w0)  # no modulator, no weight change (the eligibility trace builds up only)
    wt, wn = st.weights("inp->out")["weight"], sn.weights("inp->out")["weight"]
    assert np.abs(wt - w0).max() > 1e-3
    assert np.array_equal(wt, wn)
    assert all(torch.equal(st.projections[0].rule_state[k], sn.projections[0].rule_state[k])
               for k in st.projections[0].rule_state)
