"""EventProp (braincore.training.eventprop): exact spike times and exact gradients of LIF networks.

Gradients are checked against central finite differences of the same event-driven simulator, in float64:
``(L(p + h) - L(p - h)) / 2h`` with ``h = 1e-5``. Its truncation error is ``h^2 |L'''| / 6 ~ 1e-10`` and its
rounding error ``~ (eps |L| + |dL/dt| * delta_t) / h`` with spike times solved to ``delta_t ~ 1e-14`` ms, i.e.
``~ 1e-9``; measured agreement is ~1e-7 relative (it shrinks 100x from h = 1e-4 to 1e-5 and grows as 1/h below,
as the two error terms predict). The tolerance, ``|fd - g| <= 1e-5 (|g| + 1e-3 max|g|)``, leaves a 100x margin;
a missing or wrong adjoint term gives errors of order one. A parameter whose perturbation adds or removes a
spike (where the loss is not differentiable) is skipped, and each test asserts that most were checked.
Closed forms: a single neuron's spike time for tau_mem = 2 tau_syn (a quadratic in exp(-t / tau_mem)) and its
derivatives; the read-outs of one input spike (smooth maximum, the kink an inhibitory spike makes, the mean).
"""
import math

import pytest
import torch

from braincore.training import (EventLIFParams, EventPropNetwork, SpikeTrain, first_spike_times,
                                lif_event_layer, readout_event_layer, spike_train, ttfs_cross_entropy)
from braincore.training.eventprop import _simulate, _sorted_inputs

F64 = torch.float64
H, RTOL = 1e-5, 1e-5


def _loss(net, train, labels):
    out, spikes = net.run(train)
    if net.readout == "ttfs":
        loss = ttfs_cross_entropy(out, labels)
    else:
        loss = torch.nn.functional.cross_entropy(out, labels)
    return loss, [int(torch.isfinite(s.times).sum()) for s in spikes]


def _check_against_finite_differences(net, train, labels, min_checked=0.8):
    times = train.times.clone().requires_grad_()
    loss, counts = _loss(net, SpikeTrain(times, train.index), labels)
    assert all(c > 0 for c in counts)                              # every spiking layer spikes
    loss.backward()
    grads = [w.grad.clone() for w in net.weights] + [times.grad.clone()]
    scale = max(float(g.abs().max()) for g in grads)
    assert scale > 0
    checked = total = 0
    for target, grad in zip(list(net.weights) + [train.times], grads):
        flat, gflat = target.data.view(-1), grad.view(-1)
        for i in range(flat.numel()):
            if target is train.times and not math.isfinite(float(flat[i])):
                continue
            total += 1
            old = float(flat[i])
            with torch.no_grad():
                flat[i] = old + H
                up, counts_up = _loss(net, train, labels)
                flat[i] = old - H
                down, counts_down = _loss(net, train, labels)
                flat[i] = old
            if counts_up != counts or counts_down != counts:
                continue                                           # a spike appeared or vanished
            fd = float(up - down) / (2 * H)
            assert abs(fd - float(gflat[i])) <= RTOL * (abs(float(gflat[i])) + 1e-3 * scale), (i, fd, float(gflat[i]))
            checked += 1
    assert checked >= min_checked * total, (checked, total)
    return counts


def _random_case(seed, sizes, readout, tau_mem=20.0, tau_syn=5.0, batch=2, n_spikes=8):
    g = torch.Generator().manual_seed(seed)
    net = EventPropNetwork(sizes, tau_mem=tau_mem, tau_syn=tau_syn, t_max=50.0, readout=readout, init_mean=0.6,
                           init_std=0.8, generator=g)
    times = torch.rand(batch, n_spikes, generator=g, dtype=F64) * 20.0
    index = torch.randint(0, sizes[0], (batch, n_spikes), generator=g)
    labels = torch.randint(0, sizes[-1], (batch,), generator=g)
    return net, SpikeTrain(times, index), labels


@pytest.mark.parametrize("readout, seed", [("ttfs", 0), ("max_voltage", 3), ("mean_voltage", 4)])
def test_gradients_equal_finite_differences(readout, seed):
    net, train, labels = _random_case(seed, [5, 4, 3], readout)
    _check_against_finite_differences(net, train, labels)


@pytest.mark.parametrize("tau_mem, tau_syn", [(10.0, 10.0), (5.0, 12.0)])
def test_gradients_for_other_time_constants(tau_mem, tau_syn):
    # equal time constants (phi's limit s e^{-a s}) and a synapse slower than the membrane
    net, train, labels = _random_case(1, [5, 4, 3], "max_voltage", tau_mem=tau_mem, tau_syn=tau_syn)
    with torch.no_grad():
        net.weights[0].mul_(0.5)
    _check_against_finite_differences(net, train, labels)


def test_gradients_of_a_deeper_network():
    net, train, labels = _random_case(2, [5, 4, 4, 3], "mean_voltage", batch=1, n_spikes=6)
    counts = _check_against_finite_differences(net, train, labels)
    assert len(counts) == 2


# ------------------------------------------------------------------------------------------ closed forms
def test_single_neuron_spike_time_and_its_derivatives():
    # tau_mem = 2 tau_syn: one input of weight w at t0 gives V = w (x - x^2), x = exp(-(t - t0) / tau_mem),
    # so the first crossing is x* = (1 + sqrt(1 - 4 theta / w)) / 2, t* = t0 - tau_mem ln x*, and
    # dt*/dw = -tau_mem theta / (x* w^2 sqrt(1 - 4 theta / w)), dt*/dt0 = 1
    params = EventLIFParams(tau_mem=20.0, tau_syn=10.0, threshold=1.0, t_max=60.0)
    for w_value, t0_value in ((4.5, 3.0), (8.0, 0.0), (20.0, 12.5)):
        w = torch.tensor([[w_value]], dtype=F64, requires_grad=True)
        t0 = torch.tensor([[t0_value]], dtype=F64, requires_grad=True)
        out = lif_event_layer(SpikeTrain(t0, torch.zeros(1, 1, dtype=torch.long)), w, params)
        root = math.sqrt(1 - 4 / w_value)
        x = (1 + root) / 2
        assert float(out.times.detach()[0, 0]) == pytest.approx(t0_value - 20.0 * math.log(x), rel=1e-13)
        out.times[0, 0].backward()
        assert float(w.grad) == pytest.approx(-20.0 / (x * w_value ** 2 * root), rel=1e-10)
        assert float(t0.grad) == pytest.approx(1.0, rel=1e-12)


def test_a_neuron_spikes_again_after_the_reset():
    # after the reset V = 0 and I = I(t1); the next crossing solves V(s) = a I(t1) phi(s) = theta again
    params = EventLIFParams(tau_mem=20.0, tau_syn=10.0, threshold=1.0, t_max=60.0)
    out = lif_event_layer(spike_train([[(0.0, 0)]]), torch.tensor([[20.0]], dtype=F64), params)
    t1, t2 = out.times[0, :2].tolist()
    i1 = 20.0 * math.exp(-t1 / 10.0)
    x = (1 + math.sqrt(1 - 4 / i1)) / 2                            # V = I1 (x - x^2) as above
    assert t2 == pytest.approx(t1 - 20.0 * math.log(x), rel=1e-13)


def _kernel(s, a, b):
    return a * (math.exp(-a * s) - math.exp(-b * s)) / (b - a)


def test_readouts_of_one_input_spike():
    params = EventLIFParams(tau_mem=20.0, tau_syn=5.0, t_max=80.0)
    a, b = 1 / 20.0, 1 / 5.0
    w = torch.tensor([[2.0, -1.0]], dtype=F64, requires_grad=True)
    t0 = torch.tensor([[7.0]], dtype=F64, requires_grad=True)
    train = SpikeTrain(t0, torch.zeros(1, 1, dtype=torch.long))
    # smooth maximum at s* = ln(b / a) / (b - a): y = w kernel(s*), dy/dw = kernel(s*), dy/dt0 = 0 (time shift);
    # the inhibited unit's maximum is V(0) = 0
    s_star = math.log(b / a) / (b - a)
    y = readout_event_layer(train, w, params, "max_voltage")
    assert y.detach()[0].tolist() == pytest.approx([2.0 * _kernel(s_star, a, b), 0.0], rel=1e-12)
    y[0, 0].backward()
    assert float(w.grad[0, 0]) == pytest.approx(_kernel(s_star, a, b), rel=1e-10)
    assert float(w.grad[0, 1]) == 0.0 and abs(float(t0.grad)) < 1e-10
    # mean: y = (w / T) int_0^{T - t0} kernel, dy/dw = that / T, dy/dt0 = -w kernel(T - t0) / T
    S = 80.0 - 7.0
    integral = a / (b - a) * ((1 - math.exp(-a * S)) / a - (1 - math.exp(-b * S)) / b)
    w.grad, t0.grad = None, None
    y = readout_event_layer(train, w, params, "mean_voltage")
    assert y.detach()[0].tolist() == pytest.approx([2.0 * integral / 80.0, -integral / 80.0], rel=1e-12)
    y[0, 0].backward()
    assert float(w.grad[0, 0]) == pytest.approx(integral / 80.0, rel=1e-12)
    assert float(t0.grad) == pytest.approx(-2.0 * _kernel(S, a, b) / 80.0, rel=1e-10)


def test_max_readout_at_the_kink_of_an_inhibitory_spike():
    # excitation w at 0, inhibition -u at t_k while V still rises: afterwards I < 0 and V falls for good, so the
    # maximum is V(t_k) = w kernel(t_k): dy/dw = kernel(t_k), dy/du = 0, dy/dt_k = w kernel'(t_k) = Vdot(t_k^-)
    params = EventLIFParams(tau_mem=20.0, tau_syn=5.0, t_max=80.0)
    a, b = 1 / 20.0, 1 / 5.0
    t_k = 4.0
    w = torch.tensor([[3.0], [-4.0]], dtype=F64, requires_grad=True)
    times = torch.tensor([[0.0, t_k]], dtype=F64, requires_grad=True)
    train = SpikeTrain(times, torch.tensor([[0, 1]]))
    y = readout_event_layer(train, w, params, "max_voltage")
    _, _, kink, _ = _simulate(*_sorted_inputs(times.detach(), train.index, params)[:2], w.detach(), params,
                              "max_voltage")
    assert int(kink[0, 0]) == 1                                    # found as a kink at the second input
    assert float(y.detach()) == pytest.approx(3.0 * _kernel(t_k, a, b), rel=1e-12)
    y.sum().backward()
    vdot = 3.0 * a * (-a * math.exp(-a * t_k) + b * math.exp(-b * t_k)) / (b - a)
    assert w.grad[:, 0].tolist() == pytest.approx([_kernel(t_k, a, b), 0.0], abs=1e-12)
    assert float(times.grad[0, 1]) == pytest.approx(vdot, rel=1e-10)
    assert float(times.grad[0, 0]) == pytest.approx(-vdot, rel=1e-10)   # only t_k - t_0 matters


def test_input_order_and_window():
    # spikes may come in any order (gradients are returned in the caller's order); spikes after t_max are ignored
    params = EventLIFParams(t_max=40.0)
    g = torch.Generator().manual_seed(5)
    w = (torch.rand(3, 4, generator=g, dtype=F64) * 8.0).requires_grad_()
    times = torch.tensor([[5.0, 1.0, 30.0, 3.0, 55.0, math.inf]], dtype=F64, requires_grad=True)
    index = torch.tensor([[0, 2, 1, 1, 0, 2]])
    out = lif_event_layer(SpikeTrain(times, index), w, params)
    first = first_spike_times(out, 4, params.t_max)
    first.sum().backward()
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    times2 = times.detach()[:, perm].clone().requires_grad_()
    w2 = w.detach().clone().requires_grad_()
    first2 = first_spike_times(lif_event_layer(SpikeTrain(times2, index[:, perm]), w2, params), 4, params.t_max)
    first2.sum().backward()
    assert torch.equal(first, first2) and bool((first < 40.0).any())
    torch.testing.assert_close(w.grad, w2.grad, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(times.grad[:, perm], times2.grad, rtol=1e-12, atol=1e-14)
    assert float(times.grad[0, 4]) == 0.0 and float(times.grad[0, 5]) == 0.0
    # an empty batch row and an empty train pass through
    empty = lif_event_layer(SpikeTrain(torch.zeros(2, 0, dtype=F64), torch.zeros(2, 0, dtype=torch.long)),
                            w.detach(), params)
    assert empty.times.shape == (2, 0)


def test_training_lowers_the_loss():
    # the second training mode: a few Adam steps on exact gradients separate two input patterns
    g = torch.Generator().manual_seed(0)
    net = EventPropNetwork([4, 6, 2], t_max=40.0, readout="max_voltage", init_mean=0.8, generator=g)
    train = spike_train([[(1.0, 0), (3.0, 1), (5.0, 0)], [(1.0, 2), (3.0, 3), (5.0, 2)]] * 2)
    labels = torch.tensor([0, 1, 0, 1])
    opt = torch.optim.Adam(net.parameters(), lr=0.1)
    losses = []
    for _ in range(25):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(train), labels)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.4 * losses[0]


def test_bad_inputs_are_reported():
    params = EventLIFParams()
    w = torch.ones(3, 2, dtype=F64)
    good = spike_train([[(1.0, 0), (2.0, 2)]])
    with pytest.raises(ValueError, match=r"\[B, K\]"):
        lif_event_layer(SpikeTrain(good.times[0], good.index[0]), w, params)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        lif_event_layer(spike_train([[(1.0, 3)]]), w, params)
    with pytest.raises(ValueError, match=">= 0 ms"):
        lif_event_layer(spike_train([[(-1.0, 0)]]), w, params)
    with pytest.raises(ValueError, match=">= 0 ms"):
        lif_event_layer(spike_train([[(math.nan, 0)]]), w, params)
    with pytest.raises(ValueError, match="int64"):
        lif_event_layer(SpikeTrain(good.times, good.index.int()), w, params)
    with pytest.raises(ValueError, match="dtype"):
        lif_event_layer(good, w.float(), params)
    with pytest.raises(ValueError, match=r"\[N_in, N_out\]"):
        lif_event_layer(good, torch.ones(3, dtype=F64), params)
    with pytest.raises(ValueError, match="tau_syn"):
        EventLIFParams(tau_syn=0.0)
    with pytest.raises(ValueError, match="t_max"):
        EventLIFParams(t_max=math.inf)
    with pytest.raises(ValueError, match="read-out mode"):
        readout_event_layer(good, w, params, "sum")
    with pytest.raises(ValueError, match="readout"):
        EventPropNetwork([3, 2], readout="max")
    with pytest.raises(ValueError, match="sizes"):
        EventPropNetwork([3])
    with pytest.raises(ValueError, match="labels"):
        ttfs_cross_entropy(torch.zeros(2, 3), torch.zeros(3, dtype=torch.long))
