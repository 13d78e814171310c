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
