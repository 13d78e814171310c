"""Models defined as equations (braincore.equations): unit checking, the methods, user models, clear errors."""
from __future__ import annotations

import math

import pytest
import torch

from braincore.errors import ConfigError
from braincore.neurons import LIF, AdEx
from braincore.neurons.defined import user_model

USER_LIF = {
    "params": {"tau_m": "20 ms", "R_m": "100 MOhm", "v_rest": "-65 mV", "v_th": "-50 mV", "v_reset": "-65 mV"},
    "state": {"v": {"unit": "mV", "init": "v_rest"}},
    "equations": ["dv/dt = (v_rest - v + R_m*I) / tau_m"],
    "threshold": "v >= v_th", "reset": ["v = v_reset"], "refractory": "2 ms", "methods": ["exact", "euler"],
}


@pytest.mark.parametrize("method", ["exact", "euler"])
def test_a_user_lif_is_the_builtin_lif_bit_for_bit(method):
    user = user_model(USER_LIF, name="my_lif")
    current = 0.1 + 0.3 * torch.rand(3000, 2, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    a = user(5, method=method).run(current)
    b = LIF(5, method=method).run(current)
    assert int(a.spikes.sum()) > 10
    assert torch.equal(a.spikes, b.spikes) and torch.equal(a.traces["v"], b.traces["v"])


def test_exact_method_matches_the_closed_form_relaxation():
    lif = LIF(1, dt=0.1, v_th="1000 mV")
    result = lif.run(torch.full((100, 1, 1), 0.1, dtype=torch.float64))
    t = 0.1 * torch.arange(1, 101, dtype=torch.float64)
    expected = -65.0 + 100 * 0.1 * (1 - torch.exp(-t / 20.0))
    torch.testing.assert_close(result.traces["v"][:, 0, 0], expected, rtol=0, atol=1e-12)


def test_units_are_rescaled_between_terms():
    # AdEx writes g_L (E_L - v) [nS mV = pA] + I [nA]: the generated step must weigh I by 1000 against pA
    model = AdEx(1, dt=0.01, g_L="30 nS", C="281 pF", V_cut="0 mV")
    state = model.initial_state(1, dtype=torch.float64)
    _, new = model.step(state, torch.tensor([[1.0]], dtype=torch.float64))
    p = model.params
    expected = p.E_L + 0.01 * (p.g_L * p.Delta_T * math.exp((p.E_L - p.V_T) / p.Delta_T) + 1000.0 * 1.0) / p.C
    assert new.v.item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("change,message", [
    ({"equations": ["dv/dt = (v + I) / tau_m"]}, "cannot add a voltage and a current"),
    ({"equations": ["dv/dt = (v_rest - v + R_m*I) / taux"]}, "did you mean 'tau_m'"),
    ({"equations": ["dv/dt = (v_rest - v + R_m*I)"]}, "dv/dt must be a"),
    ({"state": {"v": "mV", "w": "nA"}}, "'w' is never updated"),
    ({"threshold": "v >= 3*nA"}, "cannot compare a voltage and a current"),
    ({"reset": ["u = v_reset"]}, "not a state variable"),
    ({"equations": ["dv/dt = exp(v) / tau_m"]}, "argument of exp() must be dimensionless"),
    ({"methods": ["exact"], "equations": ["dv/dt = (v_rest - v)*v/mV / tau_m"]}, "not linear"),
    ({"params": dict(USER_LIF["params"], tau_m="0 ms")}, "tau_m must be"),
    ({"equations": ["dv/dt = (v_rest - v + R_m*I) / tau_m +"]}, "cannot parse"),
    ({"colour": "red"}, "unknown key 'colour'"),
])
def test_bad_equations_are_reported_before_anything_runs(change, message):
    spec = dict(USER_LIF, **change)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        model = user_model(spec)
        model(3)


def test_a_parameter_that_divides_must_not_be_zero():
    spec = dict(USER_LIF, params=dict(USER_LIF["params"], k="2"),
                equations=["dv/dt = (v_rest - v + R_m*I) / tau_m / k"])
    model = user_model(spec)
    model(2)
    with pytest.raises(ConfigError, match="k must be non-zero"):
        model(2, k=0.0)


def test_the_generated_step_carries_surrogate_gradients():
    lif = LIF(4, surrogate="fast_sigmoid", dt=1.0, tau_m="5 ms")
    current = torch.full((50, 1, 4), 0.3, requires_grad=True)
    lif.run(current).spikes.sum().backward()
    assert current.grad is not None and float(current.grad.abs().sum()) > 0
