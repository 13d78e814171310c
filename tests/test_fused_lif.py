"""The fused LIF sequence (braincore.training.fused_lif): forward spikes and every gradient equal those of plain
autograd through the step function, for several shapes, every surrogate, recurrent or not, learnable decay and
threshold (scalar and per unit), reset in or out of the graph. float64, so agreement is to ~1e-12."""
import pytest
import torch

from braincore.surrogate import SURROGATES
from braincore.training import lif_sequence, lif_sequence_reference

SHAPES = [(1, 1, 1), (7, 3, 5), (25, 4, 16)]


def _inputs(shape, seed, per_unit, recurrent):
    g = torch.Generator().manual_seed(seed)
    T, B, N = shape
    current = (torch.randn(shape, generator=g, dtype=torch.float64) * 0.8 + 0.4).requires_grad_()
    beta = (torch.rand(N if per_unit else (), generator=g, dtype=torch.float64) * 0.5 + 0.45).requires_grad_()
    theta = (torch.rand(N if per_unit else (), generator=g, dtype=torch.float64) * 0.5 + 0.75).requires_grad_()
    rec = (torch.randn(N, N, generator=g, dtype=torch.float64) * 0.3).requires_grad_() if recurrent else None
    upstream = torch.randn(shape, generator=g, dtype=torch.float64)
    return current, beta, theta, rec, upstream


def _grads(fn, current, beta, theta, rec, upstream, surrogate, detach):
    leaves = [x for x in (current, beta, theta, rec) if x is not None]
    spikes = fn(current, beta, theta, rec, surrogate=surrogate, detach_reset=detach)
    return spikes.detach(), torch.autograd.grad((spikes * upstream).sum(), leaves)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("surrogate", [name for name in SURROGATES if name != "heaviside"])
@pytest.mark.parametrize("recurrent", [False, True])
def test_fused_gradients_equal_autograd(shape, surrogate, recurrent):
    for per_unit, detach in ((False, False), (True, True), (True, False)):
        args = _inputs(shape, seed=hash((shape, surrogate, recurrent, per_unit)) % 1000, per_unit=per_unit,
                       recurrent=recurrent)
        spikes, grads = _grads(lif_sequence, *args, surrogate, detach)
        ref_spikes, ref_grads = _grads(lif_sequence_reference, *args, surrogate, detach)
        assert torch.equal(spikes, ref_spikes)
        assert 0 < float(spikes.mean()) < 1 or shape == (1, 1, 1)  # the test drives the units into spiking
        for got, want in zip(grads, ref_grads):
            assert got.shape == want.shape
            torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_forward_is_the_closed_form_of_a_constant_current():
    # beta = 1 (no leak), theta = 1, I = 0.25 (exact in binary): the membrane reaches 1 at every 4th step and the
    # subtraction leaves exactly 0: spikes at steps 4, 8, ..., 20
    current = torch.full((20, 1, 1), 0.25, dtype=torch.float64)
    spikes = lif_sequence(current, beta=1.0, theta=1.0)[:, 0, 0]
    assert spikes.nonzero().flatten().tolist() == [3, 7, 11, 15, 19]
    # with a leak beta the first spike comes when I (1 - beta^k) / (1 - beta) >= theta (closed form)
    beta, current_value = 0.9, 0.15
    k = next(k for k in range(1, 100) if current_value * (1 - beta ** k) / (1 - beta) >= 1.0)
    first = lif_sequence(torch.full((60, 1, 1), current_value, dtype=torch.float64), beta)[:, 0, 0]
    assert int(first.nonzero()[0]) == k - 1


def test_bad_shapes_are_reported():
    with pytest.raises(ValueError, match=r"\[T, B, N\]"):
        lif_sequence(torch.zeros(3, 4), 0.9)
    with pytest.raises(ValueError, match="beta"):
        lif_sequence(torch.zeros(3, 2, 4), torch.ones(3))
    with pytest.raises(ValueError, match="recurrent"):
        lif_sequence(torch.zeros(3, 2, 4), 0.9, recurrent=torch.zeros(4, 3))
    with pytest.raises(ValueError, match="unknown surrogate"):
        lif_sequence(torch.zeros(3, 2, 4), 0.9, surrogate="fast_sigmoyd")


# ------------------------------------------------------------------------------------------ layers
def test_layer_equals_the_fused_node_on_its_input_projection_and_trains():
    from braincore.training import LeakyReadout, LIFLayer

    torch.manual_seed(0)
    layer = LIFLayer(6, 5, recurrent=True, learn_tau=True, learn_threshold=True, init_gain=3.0).double()
    x = (torch.rand(12, 4, 6, dtype=torch.float64) < 0.4).double()
    spikes = layer(x).detach()
    current = x @ layer.weight.t() + layer.bias
    ref = lif_sequence_reference(current, layer.beta, layer.threshold, layer.recurrent)
    assert torch.equal(spikes, ref) and 0 < float(spikes.mean()) < 1
    # a few Adam steps on a read-out loss lower it: gradients reach every parameter
    readout = LeakyReadout(5, 3, tau=5.0).double()
    target = torch.tensor([0, 1, 2, 1])
    opt = torch.optim.Adam(list(layer.parameters()) + list(readout.parameters()), lr=0.05)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(readout(layer(x)).max(dim=0).values, target)
        loss.backward()
        losses.append(float(loss.detach()))
        opt.step()
    assert all(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in layer.parameters())
    assert losses[-1] < 0.5 * losses[0]


def test_dropout_mask_is_constant_over_time_and_off_in_eval():
    from braincore.training import LIFLayer

    torch.manual_seed(1)
    layer = LIFLayer(4, 50, dropout=0.5, init_gain=5.0)
    with torch.no_grad():
        layer.weight.abs_()                             # every unit fires under this input, unless dropped
    x = torch.ones(30, 8, 4)
    spikes = layer(x).detach()
    silent = spikes.sum(dim=0) == 0                    # [B, N]: dropped units never spike
    assert 0.3 < float(silent.float().mean()) < 0.7
    assert set(spikes.unique().tolist()) <= {0.0, 2.0}  # survivors scaled by 1 / (1 - p)
    layer.eval()
    kept = layer(x).detach()
    assert set(kept.unique().tolist()) <= {0.0, 1.0} and bool((kept.sum(dim=0) > 0).all())


def test_layer_rejects_bad_arguments():
    from braincore.training import LIFLayer

    with pytest.raises(ValueError, match="dropout"):
        LIFLayer(3, 4, dropout=1.0)
    with pytest.raises(ValueError, match=r"\[T, B, 3\]"):
        LIFLayer(3, 4)(torch.zeros(5, 2, 4))
