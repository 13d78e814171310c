"""Surrogate spike functions: exact Heaviside forward, closed-form backward, gradients through LIF runs."""
import math

import pytest
import torch

from braincore.neurons.lif import LIF
from braincore.surrogate import SURROGATES, Heaviside, Surrogate, get_surrogate, heaviside

# x = v - v_th on both sides of the threshold, 0 and -0 included
X = torch.tensor([-30.0, -2.0, -1.0, -0.7, -0.5, -0.1, -1e-9, -0.0, 0.0, 1e-9, 0.1, 0.3, 0.5, 1.0, 1.5, 4.0, 30.0],
                 dtype=torch.float64)


def normal_pdf(x, mu, sd):
    return torch.exp(-0.5 * ((x - mu) / sd) ** 2) / (sd * math.sqrt(2 * math.pi))


# name -> (parameters, closed-form derivative written out independently of braincore.surrogate)
CLOSED_FORMS = {
    "fast_sigmoid": [({}, lambda x: 1 / (1 + 25.0 * x.abs()) ** 2),
                     ({"slope": 4.0}, lambda x: 1 / (1 + 4.0 * x.abs()) ** 2)],
    "atan": [({}, lambda x: (2.0 / 2) / (1 + (math.pi / 2 * 2.0 * x) ** 2)),
             ({"alpha": 5.0}, lambda x: (5.0 / 2) / (1 + (math.pi / 2 * 5.0 * x) ** 2))],
    "triangle": [({}, lambda x: 0.3 * torch.clamp(1 - x.abs() / 1.0, min=0)),
                 ({"gamma": 1.0, "width": 0.5}, lambda x: 1.0 * torch.clamp(1 - x.abs() / 0.5, min=0))],
    "multi_gaussian": [
        ({}, lambda x: 0.5 * ((1 + 0.15) * normal_pdf(x, 0, 0.5) - 0.15 * normal_pdf(x, 0.5, 3.0)
                              - 0.15 * normal_pdf(x, -0.5, 3.0))),
        ({"sigma": 0.2, "h": 0.3, "s": 4.0, "gamma": 1.0},
         lambda x: 1.0 * ((1.3) * normal_pdf(x, 0, 0.2) - 0.3 * normal_pdf(x, 0.2, 0.8)
                          - 0.3 * normal_pdf(x, -0.2, 0.8))),
    ],
}
CASES = [(name, params, f) for name, forms in CLOSED_FORMS.items() for params, f in forms]


def test_every_registered_surrogate_is_covered():
    assert set(SURROGATES) == set(CLOSED_FORMS) | {"heaviside"}


@pytest.mark.parametrize("name", list(SURROGATES))
@pytest.mark.parametrize("requires_grad", [False, True])
def test_forward_is_exactly_heaviside(name, requires_grad):
    x = X.clone().requires_grad_(requires_grad)
    s = get_surrogate(name)(x)
    expected = torch.tensor([0.0] * 7 + [1.0] * 10, dtype=torch.float64)   # x >= 0 (also -0.0 and 0.0) -> 1
    assert s.dtype == x.dtype
    assert torch.equal(s.detach(), expected)
    assert torch.equal(heaviside(X), expected)
    assert torch.equal(get_surrogate(name)(X.float()), expected.float())


@pytest.mark.parametrize("name,params,closed_form", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_backward_is_the_closed_form_derivative(name, params, closed_form):
    x = X.clone().requires_grad_(True)
    s = get_surrogate(name, **params)(x)
    (grad,) = torch.autograd.grad(s.sum(), x)
    torch.testing.assert_close(grad, closed_form(X), rtol=1e-12, atol=1e-15)
    # the incoming gradient is multiplied through (chain rule)
    w = torch.linspace(-2, 3, len(X), dtype=torch.float64)
    x = X.clone().requires_grad_(True)
    (grad_w,) = torch.autograd.grad((get_surrogate(name, **params)(x) * w).sum(), x)
    torch.testing.assert_close(grad_w, w * closed_form(X), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name,params,closed_form", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_derivative_method_matches_autograd_and_peaks_at_threshold(name, params, closed_form):
    sg = get_surrogate(name, **params)
    torch.testing.assert_close(sg.derivative(X), closed_form(X), rtol=1e-12, atol=1e-15)
    d = sg.derivative(torch.linspace(-3, 3, 601, dtype=torch.float64))
    assert int(d.argmax()) == 300                                  # maximal at x = 0, symmetric
    torch.testing.assert_close(d, d.flip(0), rtol=0, atol=1e-15)


def test_heaviside_gives_zero_gradient():
    for spec in (None, "heaviside", Heaviside()):
        sg = get_surrogate(spec)
        assert isinstance(sg, Heaviside)
        x = X.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(sg(x).sum(), x)
        assert torch.equal(grad, torch.zeros_like(X))


def test_get_surrogate_errors_and_pass_through():
    with pytest.raises(ValueError, match=r"unknown surrogate 'fast_sigmod' \(did you mean 'fast_sigmoid'\?\)"):
        get_surrogate("fast_sigmod")
    with pytest.raises(ValueError, match="unknown surrogate 'atanh'.*did you mean 'atan'"):
        get_surrogate("atanh")
    with pytest.raises(ValueError, match="choose one of heaviside, fast_sigmoid, atan, triangle, multi_gaussian"):
        get_surrogate("sigmoidal-xyz")
    with pytest.raises(ValueError, match="bad parameters for surrogate 'atan'"):
        get_surrogate("atan", slope=3.0)
    with pytest.raises(ValueError, match="slope must be > 0"):
        get_surrogate("fast_sigmoid", slope=0.0)
    sg = get_surrogate("triangle", gamma=0.5)
    assert get_surrogate(sg) is sg
    with pytest.raises(ValueError, match="only be given with a surrogate name"):
        get_surrogate(sg, gamma=1.0)
    assert isinstance(get_surrogate(), Surrogate) and get_surrogate().name == "fast_sigmoid"


# --------------------------------------------------------------------------------------------------------------
# gradients through the LIF neuron
# --------------------------------------------------------------------------------------------------------------
def test_gradient_flows_through_a_multistep_lif_run():
    torch.manual_seed(0)
    model = LIF(4, surrogate="fast_sigmoid", reset="subtract")
    # 1-3 nA drives v_inf = 35..235 mV: first spikes after ~8-16 steps of 0.1 ms, then 2 ms refractory
    currents = (1.0 + 2.0 * torch.rand(120, 3, 4, dtype=torch.float64)).requires_grad_(True)
    res = model.run(currents)
    assert res.spikes.dtype == torch.float64
    n = res.spikes.sum()
    assert n > 12                                               # every neuron fired, most several times
    n.backward()
    g = currents.grad
    assert g is not None and torch.isfinite(g).all()
    assert g.abs().sum() > 0
    # the first step's input reaches every later spike through the membrane potential and the resets
    assert torch.all(g[0] != 0)


def test_single_step_gradient_is_surrogate_times_dv_dI():
    # exact method from rest: v_new = v_rest + R_m I (1 - exp(-dt/tau_m)), spike = H(v_new - v_th), so
    # d spike / d I = sigma'(v_new - v_th) R_m (1 - exp(-dt/tau_m))
    model = LIF(4, surrogate="fast_sigmoid", reset="subtract")
    p, dt = model.params, model.dt
    gain = p.R_m * (1 - math.exp(-dt / p.tau_m))                   # dv_new / dI, MOhm = mV / nA
    I = torch.tensor([[10.0, 29.9, 30.1, 45.0], [0.0, 30.0, 30.08, 100.0]], dtype=torch.float64,
                     requires_grad=True)
    spikes, state = model(I)
    (grad,) = torch.autograd.grad(spikes.sum(), I)
    v_new = p.v_rest + I.detach() * gain
    x = v_new - p.v_th
    assert torch.equal(spikes.detach(), (x >= 0).double())
    assert 0 < spikes.sum() < spikes.numel()                        # both sides of the threshold tested
    expected = 1 / (1 + 25.0 * x.abs()) ** 2 * gain
    # x = v_new - v_th cancels near the threshold (|x| ~ 0.01 mV from ~50 mV terms), so the model's
    # v_inf + (v_rest - v_inf) exp(-dt/tau) and the form above differ by ~1e-14 mV: ~1e-11 relative in grad
    torch.testing.assert_close(grad, expected, rtol=1e-10, atol=0)


def test_two_step_gradient_includes_the_subtractive_reset():
    # No spike at step 1 (s1 = 0), but with reset="subtract" v1' = v1 - s1 (v_th - v_reset) still carries
    # d s1 / d v1 = sigma'(x1) backward, so d s2 / d I1 = sigma'(x2) * decay * gain * (1 - (v_th - v_reset) sigma'(x1)).
    model = LIF(2, surrogate="fast_sigmoid", reset="subtract")
    p, dt = model.params, model.dt
    decay = math.exp(-dt / p.tau_m)
    gain = p.R_m * (1 - decay)
    I = torch.tensor([[[29.0, 20.0]], [[31.0, 40.0]]], dtype=torch.float64, requires_grad=True)   # [T=2, B=1, N=2]
    res = model.run(I)
    assert res.spikes[0].sum() == 0
    (grad,) = torch.autograd.grad(res.spikes[1].sum(), I)

    def sg(x):
        return 1 / (1 + 25.0 * x.abs()) ** 2

    I1, I2 = I.detach()[0], I.detach()[1]
    v1 = p.v_rest + gain * I1
    v2 = (p.v_rest + p.R_m * I2) + (v1 - (p.v_rest + p.R_m * I2)) * decay
    x1, x2 = v1 - p.v_th, v2 - p.v_th
    expected_I1 = sg(x2) * decay * gain * (1 - (p.v_th - p.v_reset) * sg(x1))
    expected_I2 = sg(x2) * p.R_m * (1 - decay)
    torch.testing.assert_close(grad[0], expected_I1, rtol=1e-10, atol=0)
    torch.testing.assert_close(grad[1], expected_I2, rtol=1e-10, atol=0)


def test_lif_without_surrogate_has_zero_gradient():
    model = LIF(3, surrogate="heaviside")
    I = torch.full((50, 2, 3), 40.0, dtype=torch.float64, requires_grad=True)
    res = model.run(I)
    assert res.spikes.sum() > 0
    (grad,) = torch.autograd.grad(res.spikes.sum(), I)
    assert torch.equal(grad, torch.zeros_like(I))
