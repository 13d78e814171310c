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


# ------------------------------------------------------------------------------------------ fast paths
# Each optimisation of issue 5 picks an algorithm by data (events vs dense products, one thread vs several): every
# choice must give the reference's spikes and gradients, so the tests force each one.
@pytest.mark.parametrize("detach", [False, True])
@pytest.mark.parametrize("mode", ["events", "dense", "parallel"])
def test_every_recurrent_path_equals_autograd(monkeypatch, mode, detach):
    from braincore.training import fused_lif

    if mode == "events":           # every step's recurrent input and dL/dV from spike events
        monkeypatch.setattr(fused_lif, "STEP_EVENT_DENSITY", 1.0)
        monkeypatch.setattr(fused_lif, "EVENT_DENSITY", 1.0)
    elif mode == "dense":          # dense products throughout
        monkeypatch.setattr(fused_lif, "STEP_EVENT_DENSITY", 0.0)
        monkeypatch.setattr(fused_lif, "EVENT_DENSITY", 0.0)
    else:                          # the loops on the caller's threads
        monkeypatch.setattr(fused_lif, "SERIAL_STEP_WORK", None)
    g = torch.Generator().manual_seed(3)
    T, B, N = 30, 5, 24
    current = (torch.randn(T, B, N, generator=g, dtype=torch.float64) * 0.4 + 0.05).requires_grad_()
    beta = torch.full((N,), 0.9, dtype=torch.float64).requires_grad_()
    theta = torch.full((N,), 1.0, dtype=torch.float64).requires_grad_()
    rec = (torch.randn(N, N, generator=g, dtype=torch.float64) * 0.4).requires_grad_()
    upstream = torch.randn(T, B, N, generator=g, dtype=torch.float64)
    args = (current, beta, theta, rec, upstream, "fast_sigmoid", detach)
    spikes, grads = _grads(lif_sequence, *args)
    ref_spikes, ref_grads = _grads(lif_sequence_reference, *args)
    assert torch.equal(spikes, ref_spikes) and 0.01 < float(spikes.mean()) < 0.9
    for got, want in zip(grads, ref_grads):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_serial_loop_restores_the_thread_count():
    from braincore.training import fused_lif

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        with fused_lif._SerialLoop(work=1):
            inside = torch.get_num_threads()
        assert torch.get_num_threads() == 2
        assert inside == (1 if fused_lif._openmp_backend() else 2)
        with fused_lif._SerialLoop(work=1 << 40):       # large steps keep the caller's threads
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("density", [0.0, 0.05, 0.6])
def test_event_linear_equals_the_dense_product(binary, density):
    from braincore.training.fused_lif import event_linear

    g = torch.Generator().manual_seed(5)
    mask = torch.rand(50, 30, generator=g, dtype=torch.float64) < density
    x = mask.double() * (1.0 if binary else torch.randn(50, 30, generator=g, dtype=torch.float64))
    x.requires_grad_()
    weight = torch.randn(7, 30, generator=g, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(7, generator=g, dtype=torch.float64, requires_grad=True)
    upstream = torch.randn(50, 7, generator=g, dtype=torch.float64)
    outs = []
    for fn in (event_linear, torch.nn.functional.linear):
        out = fn(x, weight, bias)
        outs.append((out.detach(), torch.autograd.grad((out * upstream).sum(), (x, weight, bias))))
    torch.testing.assert_close(outs[0][0], outs[1][0], rtol=1e-12, atol=1e-12)
    for got, want in zip(outs[0][1], outs[1][1]):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="event_linear"):
        event_linear(x.detach()[None], weight)


def test_sparse_input_detection():
    from braincore.training.fused_lif import is_sparse_input

    g = torch.Generator().manual_seed(0)
    assert is_sparse_input((torch.rand(100, 64, 700, generator=g) < 0.05).float())
    assert not is_sparse_input(torch.rand(100, 64, 700, generator=g))
    assert not is_sparse_input((torch.rand(4, 4, 7, generator=g) < 0.05).float())   # too small to matter


@pytest.mark.parametrize("kind", ["lif", "alif"])
def test_layers_give_the_same_result_with_sparse_or_dense_input(kind):
    from braincore.training import ALIFLayer, LIFLayer

    g = torch.Generator().manual_seed(2)
    x = (torch.rand(40, 8, 120, generator=g) < 0.05).double()
    results = []
    for sparse in (True, False, None):
        torch.manual_seed(0)
        cls = LIFLayer if kind == "lif" else ALIFLayer
        layer = cls(120, 16, recurrent=True, init_gain=4.0, sparse_input=sparse).double()
        spikes = layer(x)
        loss = (spikes * torch.linspace(-1, 1, 16, dtype=torch.float64)).sum()
        grads = torch.autograd.grad(loss, [p for p in layer.parameters()])
        results.append((spikes.detach(), grads))
    assert 0 < float(results[0][0].mean()) < 1
    for spikes, grads in results[1:]:
        assert torch.equal(spikes, results[0][0])
        for got, want in zip(grads, results[0][1]):
            torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("T", [1, 7, 128, 300])
def test_leaky_integrate_equals_the_step_by_step_recursion(T):
    from braincore.training.layers import leaky_integrate

    g = torch.Generator().manual_seed(T)
    current = torch.randn(T, 3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    upstream = torch.randn(T, 3, 4, generator=g, dtype=torch.float64)
    alpha = 0.93
    y, ys = torch.zeros(3, 4, dtype=torch.float64), []
    for t in range(T):
        y = alpha * y + current[t]
        ys.append(y)
    ref = torch.stack(ys)
    got = leaky_integrate(current, alpha)
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(torch.autograd.grad((got * upstream).sum(), current)[0],
                               torch.autograd.grad((ref * upstream).sum(), current)[0], rtol=1e-12, atol=1e-12)


def test_event_linear_with_negative_zero_entries_equals_dense():
    """A ``-0.0`` input is found as an entry by the bit-pattern scan; its value (0) must contribute nothing."""
    from braincore.training.fused_lif import event_linear

    g = torch.Generator().manual_seed(3)
    x = (torch.rand(40, 30, generator=g, dtype=torch.float64) < 0.1).to(torch.float64)
    x[0, :5] = -0.0
    w = torch.randn(7, 30, generator=g, dtype=torch.float64, requires_grad=True)
    dense = torch.nn.functional.linear(x, w)
    events = event_linear(x, w)
    torch.testing.assert_close(events, dense, rtol=1e-12, atol=1e-12)
    up = torch.randn(40, 7, generator=g, dtype=torch.float64)
    (gw_events,) = torch.autograd.grad((events * up).sum(), w)
    (gw_dense,) = torch.autograd.grad((dense * up).sum(), w)
    torch.testing.assert_close(gw_events, gw_dense, rtol=1e-12, atol=1e-12)
