"""The fused adaptive-LIF sequence (braincore.training.fused_alif): forward spikes equal those of plain autograd
through the step function bit for bit, and every gradient (current, membrane decay, adaptation decay, baseline
threshold, adaptation strength, recurrent weights) equals autograd's for several shapes, every surrogate,
recurrent or not, scalar and per-unit parameters, reset in or out of the graph. float64 and the same operations
in a different order, so agreement is to rounding (rtol 1e-10, atol 1e-12). Closed forms: ``beta_adapt = 0`` is
the fused LIF; a hand-computed single-neuron trace; the threshold after one spike."""
import pytest
import torch

from braincore.surrogate import SURROGATES
from braincore.training import alif_sequence, alif_sequence_reference, lif_sequence

SHAPES = [(1, 1, 1), (9, 3, 5), (24, 2, 12)]


def _inputs(shape, seed, per_unit, recurrent):
    g = torch.Generator().manual_seed(seed)
    T, B, N = shape
    n = N if per_unit else ()

    def rand(lo, hi):
        return (torch.rand(n, generator=g, dtype=torch.float64) * (hi - lo) + lo).requires_grad_()

    current = (torch.randn(shape, generator=g, dtype=torch.float64) * 0.8 + 0.6).requires_grad_()
    beta, rho = rand(0.45, 0.95), rand(0.6, 0.95)
    theta0, beta_adapt = rand(0.75, 1.25), rand(0.5, 2.0)
    rec = (torch.randn(N, N, generator=g, dtype=torch.float64) * 0.3).requires_grad_() if recurrent else None
    upstream = torch.randn(shape, generator=g, dtype=torch.float64)
    return current, beta, rho, theta0, beta_adapt, rec, upstream


def _grads(fn, current, beta, rho, theta0, beta_adapt, rec, upstream, surrogate, detach):
    leaves = [x for x in (current, beta, rho, theta0, beta_adapt, rec) if x is not None]
    spikes = fn(current, beta, rho, theta0, beta_adapt, rec, surrogate=surrogate, detach_reset=detach)
    return spikes.detach(), torch.autograd.grad((spikes * upstream).sum(), leaves)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("surrogate", [name for name in SURROGATES if name != "heaviside"])
@pytest.mark.parametrize("recurrent", [False, True])
def test_fused_gradients_equal_autograd(shape, surrogate, recurrent):
    for per_unit, detach in ((False, False), (True, True), (True, False)):
        args = _inputs(shape, seed=hash((shape, surrogate, recurrent, per_unit)) % 1000, per_unit=per_unit,
                       recurrent=recurrent)
        spikes, grads = _grads(alif_sequence, *args, surrogate, detach)
        ref_spikes, ref_grads = _grads(alif_sequence_reference, *args, surrogate, detach)
        assert torch.equal(spikes, ref_spikes)
        if shape != (1, 1, 1):
            assert 0 < float(spikes.mean()) < 1  # the test drives the units into spiking
            # and the adaptation matters here: without it the spikes differ
            assert not torch.equal(spikes, lif_sequence(args[0].detach(), args[1].detach(), args[3].detach(),
                                                        None if args[5] is None else args[5].detach()))
        for got, want in zip(grads, ref_grads):
            assert got.shape == want.shape
            torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_the_adaptation_path_carries_gradient():
    # the equality test above is sensitive to the gradient that flows from s_t through a_{t+1}: cutting that
    # path (the spike detached where it drives the adaptation) changes the gradients by far more than the
    # tolerance, and d/drho (which exists only through a) is far from zero
    current, beta, rho, theta0, beta_adapt, rec, upstream = _inputs((12, 2, 4), 3, per_unit=False, recurrent=True)
    leaves = (current, beta, rho, theta0, beta_adapt, rec)
    spikes = alif_sequence(*leaves, surrogate="atan")
    grads = torch.autograd.grad((spikes * upstream).sum(), leaves)
    assert abs(float(grads[2])) > 1e-2

    spike_fn = SURROGATES["atan"]()
    v = s = a = torch.zeros_like(current[0])
    out = []
    for t in range(current.shape[0]):
        a = rho * a + (1 - rho) * s.detach()          # the cut
        theta = theta0 + beta_adapt * a
        u = beta * v + current[t] + s @ rec.t()
        s = spike_fn(u - theta)
        v = u - theta * s
        out.append(s)
    cut = torch.autograd.grad((torch.stack(out) * upstream).sum(), leaves)
    assert torch.equal(torch.stack(out).detach(), spikes.detach())
    assert float((grads[0] - cut[0]).abs().max()) > 1e-3 * float(grads[0].abs().max())


def test_no_adaptation_is_the_fused_lif():
    current, beta, _, theta0, _, rec, upstream = _inputs((15, 3, 6), 7, per_unit=True, recurrent=True)
    for detach in (False, True):
        alif = alif_sequence(current, beta, 0.9, theta0, 0.0, rec, surrogate="atan", detach_reset=detach)
        lif = lif_sequence(current, beta, theta0, rec, surrogate="atan", detach_reset=detach)
        assert torch.equal(alif, lif) and 0 < float(lif.detach().mean()) < 1
        g_alif = torch.autograd.grad((alif * upstream).sum(), (current, beta, theta0, rec))
        g_lif = torch.autograd.grad((lif * upstream).sum(), (current, beta, theta0, rec))
        for got, want in zip(g_alif, g_lif):
            torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-14)


def test_single_neuron_trace_by_hand():
    # beta = rho = 1/2, theta0 = beta_adapt = 1, I = 3/4 (all exact in binary):
    # t  a_t     theta_t   u_t                       s_t  v_t
    # 1  0       1         0.75                      0    0.75
    # 2  0       1         0.375 + 0.75 = 1.125      1    0.125
    # 3  0.5     1.5       0.0625 + 0.75 = 0.8125    0    0.8125
    # 4  0.25    1.25      0.40625 + 0.75 = 1.15625  0    1.15625      (a plain LIF would spike here)
    # 5  0.125   1.125     0.578125 + 0.75 = 1.328   1    0.203125
    # 6  0.5625  1.5625    0.1015625 + 0.75          0    0.8515625
    current = torch.full((6, 1, 1), 0.75, dtype=torch.float64)
    spikes = alif_sequence(current, beta=0.5, rho=0.5, theta0=1.0, beta_adapt=1.0)[:, 0, 0]
    assert spikes.tolist() == [0.0, 1.0, 0.0, 0.0, 1.0, 0.0]
    assert lif_sequence(current, beta=0.5, theta=1.0)[:, 0, 0].tolist() == [0.0, 1.0, 0.0, 1.0, 0.0, 1.0]


def test_threshold_after_one_spike_is_the_closed_form():
    # beta = 0 (no membrane memory): u_t = I_t, so a unit spikes iff I_t >= theta_t. One spike at t = 1 gives
    # a_{1+j} = (1 - rho) rho^(j-1), theta_{1+j} = theta0 + beta_adapt (1 - rho) rho^(j-1). Probe it at step 1+j
    # with I exactly at the threshold (spikes) and a hair below (silent), one batch row per probe.
    rho, theta0, beta_adapt, eps = 0.75, 1.0, 2.0, 2.0 ** -30
    rows = []
    for j in range(1, 8):
        theta = theta0 + beta_adapt * (1 - rho) * rho ** (j - 1)
        for level in (theta, theta - eps):
            row = torch.zeros(9, dtype=torch.float64)
            row[0], row[j] = 5.0, level
            rows.append(row)
    current = torch.stack(rows, dim=1)[:, :, None].expand(9, len(rows), 1)
    spikes = alif_sequence(current, beta=0.0, rho=rho, theta0=theta0, beta_adapt=beta_adapt)[:, :, 0]
    assert bool((spikes[0] == 1).all())
    for r in range(len(rows)):
        j, at_threshold = r // 2 + 1, r % 2 == 0
        assert float(spikes[j, r]) == (1.0 if at_threshold else 0.0), (j, at_threshold)
        assert float(spikes[1:, r].sum()) == (1.0 if at_threshold else 0.0)


def test_bad_shapes_are_reported():
    with pytest.raises(ValueError, match=r"\[T, B, N\]"):
        alif_sequence(torch.zeros(3, 4), 0.9, 0.9)
    with pytest.raises(ValueError, match="rho"):
        alif_sequence(torch.zeros(3, 2, 4), 0.9, torch.ones(3))
    with pytest.raises(ValueError, match="beta_adapt"):
        alif_sequence(torch.zeros(3, 2, 4), 0.9, 0.9, 1.0, torch.ones(2, 4))
    with pytest.raises(ValueError, match="recurrent"):
        alif_sequence(torch.zeros(3, 2, 4), 0.9, 0.9, recurrent=torch.zeros(4, 3))
    with pytest.raises(ValueError, match="unknown surrogate"):
        alif_sequence(torch.zeros(3, 2, 4), 0.9, 0.9, surrogate="atann")


# ------------------------------------------------------------------------------------------ layer
def test_layer_equals_the_fused_node_on_its_input_projection_and_trains():
    from braincore.training import ALIFLayer, LeakyReadout

    torch.manual_seed(0)
    layer = ALIFLayer(6, 5, recurrent=True, tau_m=8.0, tau_adapt=30.0, learn_threshold=True,
                      init_gain=3.0).double()
    assert layer.beta.shape == (5,) and layer.rho.shape == (5,)
    torch.testing.assert_close(layer.rho, torch.full((5,), torch.exp(torch.tensor(-1 / 30.0)).item(),
                                                     dtype=torch.float64))
    x = (torch.rand(12, 4, 6, dtype=torch.float64) < 0.4).double()
    spikes = layer(x).detach()
    current = x @ layer.weight.t() + layer.bias
    ref = alif_sequence_reference(current, layer.beta, layer.rho, layer.threshold, 1.8, layer.recurrent)
    assert torch.equal(spikes, ref) and 0 < float(spikes.mean()) < 1
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
    names = {name for name, p in layer.named_parameters() if p.grad is not None and float(p.grad.abs().sum()) > 0}
    assert names == {"weight", "bias", "recurrent", "beta_logit", "rho_logit", "threshold"}
    assert losses[-1] < 0.5 * losses[0]


def test_layer_dropout_and_fixed_taus():
    from braincore.training import ALIFLayer

    torch.manual_seed(1)
    layer = ALIFLayer(4, 40, dropout=0.5, init_gain=5.0, learn_tau=False, learn_tau_adapt=False)
    assert layer.beta.dim() == 0 and layer.rho.dim() == 0 and len(list(layer.parameters())) == 2
    with torch.no_grad():
        layer.weight.abs_()
    x = torch.ones(30, 8, 4)
    spikes = layer(x).detach()
    silent = spikes.sum(dim=0) == 0
    assert 0.3 < float(silent.float().mean()) < 0.7
    assert set(spikes.unique().tolist()) <= {0.0, 2.0}
    layer.eval()
    kept = layer(x).detach()
    assert set(kept.unique().tolist()) <= {0.0, 1.0} and bool((kept.sum(dim=0) > 0).all())


def test_layer_rejects_bad_arguments():
    from braincore.training import ALIFLayer

    for kwargs, match in (({"tau_adapt": 0.0}, "tau_adapt"), ({"tau_m": -1.0}, "tau_m"),
                          ({"beta_adapt": -0.1}, "beta_adapt"), ({"dropout": 1.0}, "dropout"),
                          ({"threshold": 0.0}, "threshold")):
        with pytest.raises(ValueError, match=match):
            ALIFLayer(3, 4, **kwargs)
    with pytest.raises(ValueError, match=r"\[T, B, 3\]"):
        ALIFLayer(3, 4)(torch.zeros(5, 2, 4))
