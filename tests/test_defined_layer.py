"""DefinedLayer: any model defined as equations as a trainable layer (generated step, surrogate gradient, BPTT).
Gradients against finite differences (float64), every registered model, and a small GIF network that learns."""
from __future__ import annotations

import pytest
import torch

from braincore.errors import ConfigError
from braincore.neurons import MODELS
from braincore.neurons.defined import DefinedModel
from braincore.surrogate import Surrogate
from braincore.training import DefinedLayer, LeakyReadout


class SmoothSpike(Surrogate):
    """A sigmoid forward with its exact derivative backward: the network is then a smooth function of its weights,
    so BPTT through the generated step must equal finite differences (the ordinary surrogate's forward is a step
    function, whose finite differences are zero or undefined)."""

    name = "smooth"

    def __init__(self, k: float):
        self.k = k

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        s = torch.sigmoid(self.k * x)
        return self.k * s * (1 - s)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.k * x)


def finite_difference(loss_fn, tensor: torch.Tensor, index: tuple, eps: float = 1e-6) -> float:
    with torch.no_grad():
        old = tensor[index].item()
        tensor[index] = old + eps
        up = loss_fn().item()
        tensor[index] = old - eps
        down = loss_fn().item()
        tensor[index] = old
    return (up - down) / (2 * eps)


def gif_inputs(T: int = 40, B: int = 2, n_in: int = 3) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return (torch.rand(T, B, n_in, generator=g, dtype=torch.float64) < 0.4).to(torch.float64)


def test_bptt_through_the_generated_step_matches_finite_differences():
    """Smooth spikes (t_ref = 0, so every step is differentiable): reset, eta and gamma jumps, the moving
    threshold, the recurrence and two learned parameters all lie on the gradient paths."""
    torch.manual_seed(0)
    layer = DefinedLayer(3, 2, "gif", dt=1.0, recurrent=True, surrogate=SmoothSpike(0.5), learn=("V_T_star",
                         "tau_eta_1"), t_ref=0.0, init_gain=3.0, generator=torch.Generator().manual_seed(2)).double()
    x = gif_inputs()
    c = torch.randn(40, 2, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(3))

    def loss():
        spikes, traces, _ = layer.run(x, record=("v", "gamma_1"))
        return (spikes * c).sum() + 1e-2 * (traces["v"] * c).sum() + 1e-2 * traces["gamma_1"].sum()

    spikes = layer(x)
    assert float(spikes.sum()) > 5.0  # sigmoid "spikes": a good share of the steps are above threshold
    value = loss()
    value.backward()
    checks = [(layer.weight, (0, 1)), (layer.weight, (1, 2)), (layer.bias, (0,)), (layer.recurrent, (0, 1)),
              (layer.recurrent, (1, 1)), (layer.learned["V_T_star"], (1,)), (layer.learned["tau_eta_1"], (0,))]
    for tensor, index in checks:
        fd = finite_difference(loss, tensor, index)
        assert tensor.grad[index].item() == pytest.approx(fd, rel=1e-5, abs=1e-8), (index, fd)
        assert abs(fd) > 1e-6  # the path carries gradient


def test_gradients_between_spikes_match_finite_differences_with_refractoriness():
    """Hard threshold, refractory period and the zero-derivative spike function: for a perturbation that moves no
    spike, the membrane trace is a smooth function of the weights, and autograd through resets, clamping and
    refractory masks must equal finite differences of it."""
    layer = DefinedLayer(3, 2, "gif", dt=0.5, recurrent=True, surrogate="heaviside", init_gain=2.0,
                         generator=torch.Generator().manual_seed(4)).double()
    with torch.no_grad():
        layer.bias.fill_(0.5)  # nA, above the rheobase g_L (V_T_star - E_L) = 0.1 nA: the layer fires
    x = gif_inputs(T=120)
    c = torch.randn(120, 2, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    spikes, traces, _ = layer.run(x, record=("v",))
    assert 3 <= float(spikes.sum()) and int(layer.cell.constants["_ref_steps"]) == 8

    def loss():
        return (layer.run(x, record=("v", "eta_1"))[1]["v"] * c).sum()

    loss().backward()
    for tensor, index in [(layer.weight, (0, 0)), (layer.weight, (1, 2)), (layer.bias, (1,))]:
        fd = finite_difference(loss, tensor, index)
        with torch.no_grad():
            assert torch.equal(layer(x), spikes)  # no spike moved
        assert tensor.grad[index].item() == pytest.approx(fd, rel=1e-6, abs=1e-9)
        assert abs(fd) > 1e-6


@pytest.mark.parametrize("name", sorted({cls.definition.name for cls in MODELS.values()
                                         if issubclass(cls, DefinedModel)}))
def test_every_defined_model_trains_by_its_registry_name(name):
    layer = DefinedLayer(4, 3, name, dt=0.1, recurrent=True, surrogate_params={"slope": 1.0},
                         generator=torch.Generator().manual_seed(0))
    x = torch.rand(30, 2, 4, generator=torch.Generator().manual_seed(1)) * 5.0
    spikes = layer(x)
    assert spikes.shape == (30, 2, 3) and set(spikes.unique().tolist()) <= {0.0, 1.0}
    spikes.sum().backward()
    for p in (layer.weight, layer.recurrent):
        assert p.grad is not None and torch.isfinite(p.grad).all()
    assert float(layer.weight.grad.abs().sum()) > 0


def test_forward_is_the_simulators_step():
    """Without learned parameters the layer runs the model's own step: the same spikes as the model's run()."""
    layer = DefinedLayer(3, 4, "gif", dt=0.5, bias=False, init_gain=5.0,
                         generator=torch.Generator().manual_seed(7)).double()
    x = gif_inputs(T=200, n_in=3)
    current = x @ layer.weight.detach().t()
    expected = layer.cell.run(current, record=("v",)).spikes
    assert float(expected.sum()) > 5
    torch.testing.assert_close(layer(x).detach(), expected, rtol=0, atol=0)


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ConfigError, match="unknown neuron model 'gifx'.*did you mean 'gif'"):
        DefinedLayer(2, 2, "gifx")
    with pytest.raises(ConfigError, match="cannot learn 'tau'"):
        DefinedLayer(2, 2, "gif", learn=("tau",))
    with pytest.raises(ConfigError, match="refractory period"):
        DefinedLayer(2, 2, "gif", learn=("t_ref",))
    with pytest.raises(ValueError, match=r"\[T, B, 2\]"):
        DefinedLayer(2, 2, "gif")(torch.zeros(5, 2))


def test_a_small_gif_network_learns_a_two_class_task():
    """Two classes of Poisson inputs (channels 0-9 or 10-19 at 20% per 1 ms step, the rest at 2%): a recurrent
    GIF layer and a leaky read-out, cross-entropy on the mean read-out. Seeded; the loss falls at least five-fold and
    every sample ends up classified."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    T, B, n_in, hidden = 40, 16, 20, 12
    labels = torch.arange(B) % 2
    rates = torch.full((B, n_in), 0.02)
    rates[labels == 0, :10] = 0.2
    rates[labels == 1, 10:] = 0.2
    x = (torch.rand(T, B, n_in, generator=g) < rates).float()
    layer = DefinedLayer(n_in, hidden, "gif", dt=1.0, recurrent=True, recurrent_gain=0.2, init_gain=2.0,
                         surrogate_params={"slope": 1.0}, generator=g)
    readout = LeakyReadout(hidden, 2, tau=20.0)
    optimiser = torch.optim.Adam(list(layer.parameters()) + list(readout.parameters()), lr=0.02)
    losses = []
    for _ in range(30):
        y = readout(layer(x)).mean(0)
        loss = torch.nn.functional.cross_entropy(y, labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    with torch.no_grad():
        y = readout(layer(x)).mean(0)
    assert losses[-1] < losses[0] / 5, losses
    assert bool((y.argmax(1) == labels).all())
