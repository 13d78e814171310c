"""Grid EventProp for recurrent LIF networks (braincore.training.eventprop_grid):

- exactness: the EventProp gradients of all three weight matrices equal central finite differences of the same
  forward simulator (float64, a small recurrent network, every read-out); the regulariser's pseudo-gradient equals
  the finite-difference gradient of the spike-time functional it is defined as;
- a second implementation: a feed-forward network (no recurrent weights) converges to the exact continuous-time
  EventProp of braincore.training.eventprop (read-out, spike times and gradients) as dt -> 0;
- closed forms: one neuron's membrane after an input spike, its threshold crossing and subtractive reset, the
  read-out's response to one hidden spike (delivered one step later);
- shapes and bad values are refused with clear errors; the synthetic SHD-like data is seeded and in SHD's format.
"""
import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from braincore.training import eventprop as ep
from braincore.training import eventprop_grid as eg

F64 = torch.float64


def _events(B, n_in, T, n, seed):
    g = torch.Generator().manual_seed(seed)
    return eg.input_events(torch.randint(0, T, (n,), generator=g), torch.randint(0, B, (n,), generator=g),
                           torch.randint(0, n_in, (n,), generator=g), B, T)


def _weights(n_in, n, c, seed):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n_in, n, dtype=F64, generator=g) * 0.6 + 0.5,
            torch.randn(n, n, dtype=F64, generator=g) * 0.5,
            torch.randn(n, c, dtype=F64, generator=g) * 0.5)


def _fd(loss, weights, eps=1e-6):
    """Central differences of ``loss(*weights)`` for every entry of every weight."""
    out = []
    for i, w in enumerate(weights):
        num = torch.zeros_like(w)
        for j in range(w.numel()):
            ws = [x.detach().clone() for x in weights]
            ws[i].view(-1)[j] += eps
            plus = float(loss(*ws))
            ws[i].view(-1)[j] -= 2 * eps
            num.view(-1)[j] = (plus - float(loss(*ws))) / (2 * eps)
        out.append(num)
    return out


# ------------------------------------------------------------------------------------------ exactness
@pytest.mark.parametrize("readout", eg.READOUTS)
def test_gradients_equal_finite_differences_of_the_same_simulator(readout):
    B, n_in, N, C, T = 3, 6, 5, 3, 50
    ev = _events(B, n_in, T, 180, seed=1)
    p = eg.GridParams(tau_mem=10.0, tau_syn=4.0, dt=0.5, steps=T, readout=readout, tau_w=12.0 if readout ==
                      "sum_exp" else None)
    labels = torch.tensor([0, 1, 2])
    weights = [w.requires_grad_() for w in _weights(n_in, N, C, seed=2)]

    def loss(w_in, w_rec, w_out):
        y, _ = eg.eventprop_rsnn(ev, w_in, w_rec, w_out, p)
        return F.cross_entropy(y, labels)

    sim = eg.simulate_grid(ev, *[w.detach() for w in weights], p)
    assert 30 < int(sim["counts"].sum()) < B * N * T / 4       # recurrent spiking, far from saturation
    grads = torch.autograd.grad(loss(*weights), weights)
    # eps = 1e-6 keeps every spike in its step (the spike set is locally constant); the central difference's
    # truncation error is O(eps^2) and its rounding error ~1e-16 / 1e-6 per unit loss: agreement to ~1e-8
    # absolute is expected (measured ~1e-8 on gradients of size 0.1-40)
    for g, num in zip(grads, _fd(loss, weights)):
        assert g.abs().max() > 1e-5
        torch.testing.assert_close(g, num, rtol=1e-6, atol=1e-6)


def test_the_count_regulariser_gradient_is_the_spike_time_pseudo_gradient():
    """Counts are piecewise constant; the regulariser's gradient is defined as dL/dt_s = -dL/dn per spike, i.e.
    it equals the gradient of the spike-time functional -sum_s dL/dn[b_s, i_s] t_s, checked by finite
    differences of the simulator's spike times."""
    B, n_in, N, C, T = 2, 6, 5, 3, 50
    ev = _events(B, n_in, T, 150, seed=4)
    p = eg.GridParams(tau_mem=10.0, tau_syn=4.0, dt=0.5, steps=T)
    weights = [w.requires_grad_() for w in _weights(n_in, N, C, seed=5)]
    _, counts = eg.eventprop_rsnn(ev, *weights, p)
    reg = eg.spike_count_regularizer(counts, target=2.0, lambda_upper=0.3, lambda_lower=0.1)
    grads = torch.autograd.grad(reg, weights)
    mean = counts.detach().mean(0)
    lam = torch.where(mean > 2.0, 0.3, 0.1)
    g_n = (lam * (mean - 2.0) / B).expand(B, N)                  # d reg / d counts[b, i]
    assert reg > 0 and counts.sum() > 20

    def functional(*ws):
        sim = eg.simulate_grid(ev, *ws, p)
        return -(g_n[sim["spike_sample"], sim["spike_neuron"]] * sim["spike_time"]).sum()

    for g, num in zip(grads, _fd(functional, weights)):
        torch.testing.assert_close(g, num, rtol=1e-6, atol=1e-7)   # as above, on a smaller functional


# ------------------------------------------------------------------------------------------ second implementation
def test_a_feed_forward_network_converges_to_continuous_eventprop_as_dt_shrinks():
    """The continuous reference has no step: differences come from the grid's one-step synaptic delay into the
    read-out (O(dt) in the read-out and its gradients) and the linear interpolation of crossings (O(dt^2) in
    the hidden spike times, whose inputs arrive exactly on grid points here)."""
    g = torch.Generator().manual_seed(3)
    B, n_in, N, C, K, t_max = 2, 5, 4, 3, 12, 30.0
    times = torch.randint(0, 20, (B, K), generator=g).to(F64)           # whole ms: on every grid below
    index = torch.randint(0, n_in, (B, K), generator=g)
    w_in = torch.randn(n_in, N, dtype=F64, generator=g) + 1.5
    w_out = torch.randn(N, C, dtype=F64, generator=g)
    r = torch.randn(B, C, dtype=F64, generator=g)
    P = ep.EventLIFParams(10.0, 4.0, 1.0, t_max)
    wi, wo = w_in.clone().requires_grad_(), w_out.clone().requires_grad_()
    hidden = ep.lif_event_layer(ep.SpikeTrain(times, index), wi, P)
    y_ref = ep.readout_event_layer(hidden, wo, P, "mean_voltage")
    (y_ref * r).sum().backward()
    ref_times = hidden.times[torch.isfinite(hidden.times)].detach().sort().values
    assert ref_times.numel() > 20
    errors = []
    for dt in (0.05, 0.01):
        T = int(round(t_max / dt))
        p = eg.GridParams(10.0, 4.0, 1.0, dt, T, "sum")
        ev = eg.input_events((times / dt).round().long().flatten(), torch.arange(B).repeat_interleave(K),
                             index.flatten(), B, T)
        a, c = w_in.clone().requires_grad_(), w_out.clone().requires_grad_()
        zero = torch.zeros(N, N, dtype=F64)
        y, _ = eg.eventprop_rsnn(ev, a, zero, c, p)
        ((y / t_max) * r).sum().backward()                          # sum read-out / t_max = mean voltage
        grid_times = eg.simulate_grid(ev, w_in, zero, w_out, p)["spike_time"].sort().values
        assert grid_times.numel() == ref_times.numel()
        errors.append(((y / t_max - y_ref).abs().max().item(), (grid_times - ref_times).abs().max().item(),
                       (a.grad - wi.grad).abs().max().item() / wi.grad.abs().max().item(),
                       (c.grad - wo.grad).abs().max().item()))
    (y5, t5, gi5, go5), (y1, t1, gi1, go1) = errors
    # measured: read-out error 0.05 dt, spike times 3e-5 ms at dt = 0.01, relative W_in gradient error 7e-4
    assert y1 < 0.1 * 0.01 and y5 < 0.1 * 0.05 and y5 / y1 > 3.0          # first order in dt
    assert t1 < 1e-3 and t5 / max(t1, 1e-12) > 10.0                       # second order in dt
    assert gi1 < 3e-3 and gi5 / gi1 > 3.0
    assert go1 < 0.1 * 0.01 and go5 / go1 > 3.0


# ------------------------------------------------------------------------------------------ closed forms
def _one_neuron(w, dt=0.1, T=400, c_out=None):
    p = eg.GridParams(tau_mem=10.0, tau_syn=4.0, threshold=1.0, dt=dt, steps=T)
    ev = eg.input_events(torch.tensor([0]), torch.tensor([0]), torch.tensor([0]), 1, T)
    w_out = torch.ones(1, 1, dtype=F64) if c_out is None else c_out
    return p, eg.simulate_grid(ev, torch.full((1, 1), w, dtype=F64), torch.zeros(1, 1, dtype=F64), w_out, p)


def test_membrane_after_one_input_spike_is_the_closed_form():
    """Below threshold: I(t) = w e^{-t/tau_syn}, V(t) = w a phi(t) at every grid point, to rounding."""
    w = 3.0
    p, sim = _one_neuron(w)
    t = (torch.arange(p.steps, dtype=F64) + 1) * p.dt
    a, b = 0.1, 0.25
    torch.testing.assert_close(sim["I"][:, 0, 0], w * torch.exp(-b * t), rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(sim["V"][:, 0, 0], w * a * (torch.exp(-a * t) - torch.exp(-b * t)) / (b - a),
                               rtol=1e-12, atol=1e-14)
    assert sim["counts"].sum() == 0


@pytest.mark.parametrize("w", [5.0, 6.0])
def test_threshold_crossing_and_reset_match_the_closed_form(w):
    """Above threshold: the spike time converges to the root t* of w a phi(t) = theta as dt^2 (linear
    interpolation), and after it V(t) = w a phi(t) - theta e^{-(t - t_s)/tau_mem} exactly (subtractive reset at
    the interpolated time t_s)."""
    a, b = 0.1, 0.25
    lo, hi = 0.0, math.log(b / a) / (b - a)                  # V rises up to its peak
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if w * a * (math.exp(-a * mid) - math.exp(-b * mid)) / (b - a) < 1.0 else (lo, mid)
    t_star = 0.5 * (lo + hi)
    errs = []
    for dt in (0.2, 0.1, 0.05):
        p, sim = _one_neuron(w, dt=dt, T=int(round(30 / dt)))
        assert int(sim["counts"].sum()) == 1
        t_s = float(sim["spike_time"][0])
        errs.append(abs(t_s - t_star))
        t = (torch.arange(p.steps, dtype=F64) + 1) * dt
        after = t >= t_s
        expected = w * a * (torch.exp(-a * t) - torch.exp(-b * t)) / (b - a) - torch.exp(-a * (t - t_s))
        torch.testing.assert_close(sim["V"][after, 0, 0], expected[after], rtol=1e-10, atol=1e-12)
    # linear interpolation misses V by at most dt^2 max|V''| / 8 within the step, i.e. the time by that over
    # V'(t*) (to leading order; a factor 2 of margin for the curvature of V near t*)
    s = torch.linspace(0.0, 30.0, 30001, dtype=F64)
    v2 = w * a * (a * a * torch.exp(-a * s) - b * b * torch.exp(-b * s)) / (b - a)
    v1 = w * a * (b * math.exp(-b * t_star) - a * math.exp(-a * t_star)) / (b - a)
    bound = float(v2.abs().max()) / (8.0 * v1)
    for dt, err in zip((0.2, 0.1, 0.05), errs):
        assert err <= 2.0 * bound * dt * dt, (dt, err, bound)


def test_the_readout_sees_a_hidden_spike_one_step_later():
    """The read-out (no threshold) after a hidden spike at t_s: U(t) = W_out a phi(t - t_s - dt) for t >=
    t_s + dt (the grid's one-step synaptic delay), and the sum read-out is dt sum_k U(t_k)."""
    w_out = torch.tensor([[0.7, -1.3]], dtype=F64)
    p, sim = _one_neuron(5.5, dt=0.1, T=300, c_out=w_out)
    assert int(sim["counts"].sum()) == 1
    t_s = float(sim["spike_time"][0])
    t = (torch.arange(p.steps, dtype=F64) + 1) * p.dt
    s = (t - t_s - p.dt).clamp(min=0.0)
    a, b = 0.1, 0.25
    expected = w_out[0] * (a * (torch.exp(-a * s) - torch.exp(-b * s)) / (b - a))[:, None]
    torch.testing.assert_close(sim["U"][:, 0, :], expected, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(sim["y"][0], p.dt * sim["U"][:, 0, :].sum(0), rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------------------------------ the module, errors
def test_the_module_trains_with_the_loss_and_counts_spikes():
    torch.manual_seed(0)
    p = eg.GridParams(steps=80)
    model = eg.EventPropRSNN(30, 16, 3, p, in_mean=0.3, in_std=0.1)
    ev = _events(4, 30, 80, 600, seed=7)
    y, hidden = model(ev)
    assert y.shape == (4, 3) and hidden[0].shape == (4, 16) and hidden[0].sum() > 0
    result = eg.EventPropLoss(target=2.0, lambda_upper=1e-2)(y, torch.tensor([0, 1, 2, 0]), hidden)
    result.loss.backward()
    assert result.regularizer > 0 and all(w.grad is not None and w.grad.abs().sum() > 0
                                          for w in (model.w_in, model.w_rec, model.w_out))
    ff = eg.EventPropRSNN(30, 16, 3, p, recurrent=False)
    assert [n for n, _ in ff.named_parameters()] == ["w_in", "w_out"] and ff.w_rec.abs().sum() == 0


def test_bad_shapes_and_values_are_refused():
    p = eg.GridParams(steps=10)
    ev = _events(2, 5, 10, 20, seed=0)
    w_in, w_rec, w_out = _weights(5, 4, 3, seed=0)
    with pytest.raises(ValueError, match="W_rec"):
        eg.eventprop_rsnn(ev, w_in, torch.zeros(3, 4, dtype=F64), w_out, p)
    with pytest.raises(ValueError, match="input channels"):
        eg.eventprop_rsnn(ev, w_in[:3], w_rec, w_out, p)
    with pytest.raises(ValueError, match="binned for 10 steps"):
        eg.eventprop_rsnn(ev, w_in, w_rec, w_out, eg.GridParams(steps=12))
    with pytest.raises(ValueError, match="dtype"):
        eg.eventprop_rsnn(ev, w_in, w_rec, w_out.float(), p)
    with pytest.raises(ValueError, match="sample indices"):
        eg.input_events(torch.tensor([0]), torch.tensor([2]), torch.tensor([0]), 2, 10)
    for bad in ({"tau_mem": 0.0}, {"dt": -1.0}, {"steps": 0}, {"readout": "median"}, {"tau_w": -2.0}):
        with pytest.raises(ValueError):
            eg.GridParams(**bad)
    with pytest.raises(ValueError, match="labels"):
        eg.eventprop_cross_entropy(torch.zeros(2, 3), torch.zeros(3, dtype=torch.long))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_equals_cpu():
    ev = _events(3, 8, 60, 200, seed=1)
    p = eg.GridParams(tau_mem=10.0, tau_syn=4.0, dt=0.5, steps=60)
    ws = [w.requires_grad_() for w in _weights(8, 6, 4, seed=2)]
    wc = [w.detach().cuda().requires_grad_() for w in ws]
    evc = eg.InputEvents(ev.step.cuda(), ev.sample.cuda(), ev.channel.cuda(), ev.offsets, ev.batch)
    for e, w in ((ev, ws), (evc, wc)):
        y, _ = eg.eventprop_rsnn(e, *w, p)
        F.cross_entropy(y, torch.tensor([0, 1, 2], device=y.device)).backward()
    for a, b in zip(ws, wc):
        torch.testing.assert_close(a.grad, b.grad.cpu(), rtol=1e-9, atol=1e-9)


# ------------------------------------------------------------------------------------------ synthetic SHD
def test_synthetic_shd_is_seeded_and_read_back_by_the_shd_reader(tmp_path):
    pytest.importorskip("h5py")
    from braincore.data.events import SHDDataset
    from braincore.data.synthetic_shd import SyntheticSHD, synthetic_shd_samples, write_synthetic_shd

    spec = SyntheticSHD(classes=5)
    train, test = write_synthetic_shd(tmp_path, 20, 10, seed=3, spec=spec)
    t, u, labels = synthetic_shd_samples(20, 6, spec)                   # the training split's seed: 2 * 3
    with SHDDataset(train) as ds, SHDDataset(test) as ds_test:
        assert len(ds) == 20 and len(ds_test) == 10 and ds.num_classes == 5
        assert np.array_equal(ds.labels, labels) and sorted(set(labels.tolist())) == [0, 1, 2, 3, 4]
        ev, label = ds[3]
        np.testing.assert_allclose(ev.t, t[3].astype(np.float64) * 1e6)
        assert np.array_equal(ev.x, u[3]) and label == labels[3]
    assert all(500 < len(x) < 6000 and x.min() >= 0 and x.max() < 1.5 for x in t)
    assert all(np.all(np.diff(x) >= 0) for x in t) and max(int(x.max()) for x in u) < 700
    t2, u2, l2 = synthetic_shd_samples(20, 6, spec)
    assert np.array_equal(l2, labels) and all(np.array_equal(a, b) for a, b in zip(t, t2))
