"""Single-spike layers without a time loop (braincore.training.single_spike) and the ``single_spike`` task:

- the vectorised layer equals a plain time-loop reference (spike times, membrane traces, gradients of the
  current and of the decays by autograd through the loop), for both first-crossing gradients, scalar and
  per-unit decays, dense and conv currents;
- its spikes equal those of an LIF unit stepped with reset and silenced after its spike; at most one spike per
  unit; the first crossing under a constant current against the closed form ``t* = -tau ln(1 - theta / (R I))``;
- the task: YAML mistakes at file, line and key; an interrupted run resumes exactly; a small synthetic IDX set is
  learnt (MLP and CNN configs); real MNIST (slow).
"""
import copy
import json
import math
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from braincore.checkpoint import load_checkpoint
from braincore.config import ConfigProblems, load_config, load_text, validate
from braincore.errors import ConfigError
from braincore.training import single_spike as ss
from tasks.perception import single_spike as task
from tiny_data import config_with, killed_at_step, tiny_idx

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs" / "perception"


# ------------------------------------------------------------------------------------------ the layer
def _pair(shape, beta_shape, seed, requires_grad=True):
    g = torch.Generator().manual_seed(seed)
    current = (torch.randn(shape, generator=g, dtype=torch.float64) * 0.5 + 0.25)
    beta = torch.rand(beta_shape, generator=g, dtype=torch.float64) * 0.5 + 0.5
    return current.requires_grad_(requires_grad), beta.requires_grad_(requires_grad)


@pytest.mark.parametrize("gradient", ss.GRADIENTS)
@pytest.mark.parametrize("shape, beta_shape", [((15, 4, 6), ()), ((15, 4, 6), (6,)), ((9, 3, 2, 3, 3), (2, 1, 1)),
                                               ((9, 3, 2, 3, 3), (2, 3, 3)), ((1, 2, 3), (3,))])
def test_vectorised_layer_equals_the_time_loop_reference(gradient, shape, beta_shape):
    current, beta = _pair(shape, beta_shape, seed=len(shape) + len(beta_shape))
    spikes, v = ss.single_spike_sequence(current, beta, 1.0, gradient=gradient)
    c2, b2 = current.detach().clone().requires_grad_(), beta.detach().clone().requires_grad_()
    ref_spikes, ref_v = ss.single_spike_reference(c2, b2, 1.0, gradient=gradient)
    assert torch.equal(spikes, ref_spikes.detach())           # the same spike times, exactly
    torch.testing.assert_close(v, ref_v, rtol=1e-12, atol=1e-12)
    assert 0 < int(spikes.sum()) < spikes[0].numel()          # some units spike, some do not
    g = torch.Generator().manual_seed(7)
    w_s, w_v = torch.randn(shape, generator=g, dtype=torch.float64), torch.randn(shape, generator=g,
                                                                                 dtype=torch.float64)
    ((spikes * w_s).sum() + 0.1 * (v * w_v).sum()).backward()
    ((ref_spikes * w_s).sum() + 0.1 * (ref_v * w_v).sum()).backward()
    torch.testing.assert_close(current.grad, c2.grad, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(beta.grad, b2.grad, rtol=1e-10, atol=1e-10)
    assert current.grad.abs().sum() > 0 and (beta.grad.abs().sum() > 0 or shape[0] == 1)   # T = 1: no decay


def test_the_paper_gradient_reaches_units_that_never_spike():
    """The straight-through z -> s gives every step a gradient (the paper's robustness to silent networks); the
    ``first`` gradient too, through the surrogate, as long as no spike came before."""
    current = torch.full((10, 1, 3), 0.01, dtype=torch.float64, requires_grad=True)   # far below threshold
    for gradient in ss.GRADIENTS:
        spikes, _ = ss.single_spike_sequence(current, 0.9, gradient=gradient)
        assert spikes.sum() == 0
        (grad,) = torch.autograd.grad(spikes.sum(), current)
        assert (grad > 0).all()


def _reset_lif(current, beta, theta=1.0):
    """An LIF unit stepped with reset to 0 and silenced after its first spike (the paper's sequential model)."""
    v = torch.zeros_like(current[0])
    done = torch.zeros_like(current[0], dtype=torch.bool)
    out = []
    for t in range(current.shape[0]):
        v = beta * v + current[t]
        s = (v >= theta) & ~done
        done |= s
        v = torch.where(done, torch.zeros_like(v), v)
        out.append(s.to(current.dtype))
    return torch.stack(out)


def test_spikes_equal_a_reset_lif_silenced_after_its_spike_and_at_most_one_per_unit():
    current, beta = _pair((40, 8, 30), (30,), seed=3, requires_grad=False)
    spikes, _ = ss.single_spike_sequence(current, beta)
    assert torch.equal(spikes, _reset_lif(current, beta))
    assert spikes.sum(0).max() == 1 and spikes.sum() > 20


@pytest.mark.parametrize("tau, drive", [(10.0, 1.05), (10.0, 1.5), (20.0, 3.0), (5.0, 1.2), (25.0, 1.01)])
def test_first_crossing_under_constant_current_matches_the_closed_form(tau, drive):
    """tau dv/dt = -v + R I from v(0) = 0 crosses theta at t* = -tau ln(1 - theta / (R I)). With the input
    I_t = (1 - beta) R I per step (exponential integration) the free membrane is exactly R I (1 - e^(-(t+1) dt /
    tau)) and step t covers the time (t + 1) dt, so the spike falls within one step of t*."""
    dt, theta, T = 0.5, 1.0, 400
    beta = math.exp(-dt / tau)
    current = torch.full((T, 1, 1), (1 - beta) * drive, dtype=torch.float64)
    spikes, v = ss.single_spike_sequence(current, beta, theta)
    times = (torch.arange(T, dtype=torch.float64) + 1) * dt
    torch.testing.assert_close(v[:, 0, 0], drive * (1 - torch.exp(-times / tau)), rtol=1e-9, atol=1e-12)
    t_star = -tau * math.log(1 - theta / drive)
    (k,) = torch.nonzero(spikes[:, 0, 0]).flatten().tolist()
    assert t_star <= (k + 1) * dt < t_star + dt


def test_latency_code_puts_one_spike_per_pixel_at_the_papers_step():
    x = torch.tensor([[0.0, 1.0, 0.5, 0.26]])
    spikes = ss.latency_code(x, 11)
    assert spikes.shape == (11, 1, 4) and torch.equal(spikes.sum(0), torch.ones(1, 4))
    assert torch.nonzero(spikes[:, 0].t())[:, 1].tolist() == [10, 0, 5, 7]   # floor((1 - x) 10)


def test_conv_and_dense_layers_equal_their_currents_through_the_reference():
    torch.manual_seed(0)
    conv = ss.SingleSpikeConv2d((2, 7, 7), 3, 3, padding=1, pool=2, tau=5.0, init_gain=3.0).double()
    x = (torch.rand(6, 4, 2, 7, 7, dtype=torch.float64) < 0.3).to(torch.float64)
    out = conv(x)
    current = F.conv2d(x.reshape(24, 2, 7, 7), conv.weight, conv.bias, padding=1).reshape(6, 4, 3, 7, 7)
    ref, _ = ss.single_spike_reference(current, conv.beta)
    assert torch.equal(out, ref) and out.sum() > 0
    assert conv.output(out).shape == (6, 4, 3, 3, 3) and conv.out_shape == (3, 3, 3)
    dense = ss.SingleSpikeDense(27, 5, tau=8.0, init_gain=4.0, per_unit=False).double()
    flat = conv.output(out)
    ref, _ = ss.single_spike_reference(flat.flatten(2) @ dense.weight.t() + dense.bias, dense.beta)
    assert torch.equal(dense(flat), ref)


def test_networks_fire_at_most_once_and_count_spikes():
    torch.manual_seed(1)
    x = ss.latency_code(torch.rand(5, 1, 12, 12), 6)
    net = ss.build_network((1, 12, 12), [{"kind": "conv", "channels": 4, "kernel": 3, "padding": 1, "pool": 2,
                                          "leaky": False, "init_gain": 3.0},
                                         {"kind": "dense", "size": 16, "init_gain": 3.0}], 3)
    out, hidden = net(x)
    assert out.shape == (6, 5, 3) and [h.shape for h in hidden] == [(6, 5, 4, 12, 12), (6, 5, 16)]
    assert all(h.sum(0).max() <= 1 for h in hidden)
    counts = ss.count_spikes(net, [x[:, :2], x[:, 2:]])
    assert counts["samples"] == 5 and counts["max_per_unit"] == 1.0
    expected = [float(h.detach().sum()) / 5 for h in hidden]
    assert counts["per_layer"] == pytest.approx(expected) and counts["per_sample"] == pytest.approx(sum(expected))
    mlp = ss.mlp(144, (20,), 3)
    assert [type(m).__name__ for m in mlp.layers] == ["SingleSpikeDense"] and mlp.layers[0].beta.shape == (20,)
    with pytest.raises(ValueError, match="conv layer needs image inputs"):
        ss.build_network((144,), [{"kind": "conv", "channels": 2}], 3)


# ------------------------------------------------------------------------------------------ the task
def _config(name: str, **overrides) -> dict:
    return config_with(CONFIGS / f"{name}.yaml", **overrides)


def _small_mlp(data: Path, **overrides) -> dict:
    settings = dict(data__dir=str(data), encoder__steps=20, training__epochs=3, training__validation=50,
                    training__batch=25, optimizer__lr=3e-3, checkpoint_every=4)
    config = _config("fastsnn_mlp", **{**settings, **overrides})
    config["network"]["layers"][0]["size"] = 32
    return config


@pytest.mark.parametrize("name", ["fastsnn_mlp", "fastsnn_cnn"])
def test_bundled_configs_validate(name):
    kind, config = load_config(CONFIGS / f"{name}.yaml")
    assert kind.name == "single_spike" and config["name"] == name


def test_yaml_mistakes_name_file_line_and_key():
    text = """kind: single_spike
encoder: {kind: latency, steps: 10, gain: 2}
network:
  layers:
    - {kind: dense, size: 16, kernel: 3}
    - {kind: conv, channels: 4}
    - {kind: dense, sise: 8}
    - {kind: dense, size: 8, leaky: false, tau: 5 ms}
  readout: {tau: 0 ms}
  surrogate: atan
  surrogate_scale: 3
  gradient: papr
loss: {reduce: median}
"""
    with pytest.raises(ConfigProblems) as err:
        validate(load_text(text, "bad.yaml"))
    text = str(err.value)
    for expected in [
        "bad.yaml:2: encoder.gain: only the 'current' encoder takes a gain",
        "bad.yaml:5: network.layers[0].kernel: only conv layers take this key",
        "bad.yaml:6: network.layers[1].kind: conv layers must come before the dense layers",
        "bad.yaml:7: network.layers[2].sise: unknown key; did you mean 'size'?",
        "bad.yaml:7: network.layers[2]: a dense layer needs 'size'",
        "bad.yaml:8: network.layers[3].tau: leaky: false has no time constant",
        "bad.yaml:9: network.readout.tau: must be > 0 ms",
        "bad.yaml:11: network.surrogate_scale: only the fast_sigmoid surrogate takes a scale",
        "bad.yaml:12: network.gradient: unknown value 'papr'; did you mean 'paper'?",
        "bad.yaml:13: loss.reduce: unknown value 'median'",
    ]:
        assert expected in text, text


def test_a_conv_that_does_not_fit_is_reported_at_its_line():
    text = """kind: single_spike
network:
  layers:
    - {kind: conv, channels: 4, kernel: 5, pool: 2}
    - {kind: conv, channels: 4, kernel: 13}
    - {kind: dense, size: 10}
"""
    with pytest.raises(ConfigProblems, match=r"bad.yaml:5: network.layers\[1\].kernel: a 13x13 kernel does not fit "
                                             r"the 12x12 input"):
        validate(load_text(text, "bad.yaml"))


def test_the_mlp_config_learns_a_small_synthetic_set_and_reports_spikes(tmp_path, capsys):
    data = tiny_idx(tmp_path / "idx")
    summary = task.run(_small_mlp(data, training__epochs=4), {"out": str(tmp_path / "out")})
    assert summary["sizes"] == [784, 32, 10] and summary["train_samples"] == 250
    assert summary["test_accuracy"] >= 0.8, summary          # chance 0.1
    assert 0 < summary["spikes_per_sample"] <= 32 and summary["max_spikes_per_unit"] == 1.0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last)["test_accuracy"] == summary["test_accuracy"]


def test_the_cnn_config_runs_end_to_end(tmp_path):
    data = tiny_idx(tmp_path / "idx")
    config = _config("fastsnn_cnn", data__dir=str(data), encoder__steps=8, training__epochs=6,
                     training__validation=50, training__batch=25, optimizer__lr=1e-2)
    config["network"]["layers"][0]["channels"] = 4
    config["network"]["layers"][1]["channels"] = 4
    config["network"]["layers"][2]["size"] = 32
    summary = task.run(config, {"out": str(tmp_path / "out")})
    assert summary["sizes"] == [784, 4 * 28 * 28, 4 * 14 * 14, 32, 10]
    assert summary["max_spikes_per_unit"] <= 1.0 and summary["test_accuracy"] >= 0.4, summary   # chance 0.1


def test_an_interrupted_run_resumes_exactly(tmp_path, monkeypatch):
    data = tiny_idx(tmp_path / "idx", n_train=200, n_test=50)
    config = _small_mlp(data)                          # 150 samples: 6 batches per epoch, checkpoints every 4
    straight = task.run(copy.deepcopy(config), {"out": str(tmp_path / "a")})
    # checkpoints at steps 4, 6 (epoch end), 10: step 11 is lost
    with killed_at_step(monkeypatch, task.Trainer, 12), pytest.raises(KeyboardInterrupt):
        task.run(copy.deepcopy(config), {"out": str(tmp_path / "b")})
    ckpt = tmp_path / "b" / "fastsnn_mlp.ckpt"
    assert load_checkpoint(ckpt)["position"] == {"epoch": 1, "batch": 4, "step": 10}
    resumed = task.run(copy.deepcopy(config), {"out": str(tmp_path / "b")})
    a, b = load_checkpoint(tmp_path / "a" / "fastsnn_mlp.ckpt")["model"], load_checkpoint(ckpt)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["steps"] == straight["steps"] == 18
    for key in ("test_accuracy", "validation_accuracy", "spikes_per_sample"):
        assert resumed[key] == straight[key]
    drop = lambda h: [{k: v for k, v in e.items() if k != "train_seconds"} for e in h]  # noqa: E731
    assert drop(resumed["history"]) == drop(straight["history"])
    with pytest.raises(ConfigError, match="another configuration"):
        task.run(_small_mlp(data, seed=1), {"out": str(tmp_path / "b")})


@pytest.mark.slow
def test_real_mnist_is_learnt(mnist_dir, tmp_path):
    config = _config("fastsnn_mlp", data__dir=str(mnist_dir), training__epochs=3, training__samples=10000,
                     evaluation__validation_samples=1000, evaluation__test_samples=2000)
    summary = task.run(config, {"out": str(tmp_path)})
    assert summary["test_accuracy"] >= 0.85, summary   # chance 0.1
