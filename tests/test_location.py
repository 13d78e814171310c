"""Location spiking neurons (braincore.training.location) and the ``location_snn`` task:

- a location LIF layer is a LIF recurrence over the location axis: equal to a hand-stepped loop over locations
  (spikes exactly, gradients against autograd through the reference recurrence) and, under a constant input, its
  first spike lies where the closed form ``V[l] = c (1 - beta^(l+1)) / (1 - beta)`` first reaches the threshold;
- the hybrid: shapes, fusion = weighted sum of the branch scores, twin sizes, efficiency counts by hand, and it
  learns a small synthetic event task;
- the task: YAML mistakes at file, line and key; a tiny IDX set end to end (final JSON line); an interrupted
  run resumes exactly.

The kind is imported directly (``tasks.perception.location``): until ``location_snn`` is an entry point in
pyproject.toml, ``braincore run`` does not discover it.
"""
import copy
import json
import math
from pathlib import Path

import pytest
import torch

from braincore.checkpoint import load_checkpoint
from braincore.config import ConfigProblems, load_config, load_text, validate
from braincore.errors import ConfigError
from braincore.training import location as loc
from braincore.training.fused_lif import lif_sequence_reference
from tasks.perception import location as task
from tiny_data import config_with, killed_at_step, tiny_idx

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "perception" / "saccade_location.yaml"


# ------------------------------------------------------------------------------------------ the neuron
def _hand_stepped(x, weight, bias, beta, theta):
    """Spikes ``[L, B, N]`` of ``V[l] = beta V[l-1] + sum_t W[n, t] x[t, l] + b - theta S[l-1]``, a Python loop
    over the locations ``l`` (the module docstring's equation, written out)."""
    T, B, L = x.shape
    v = torch.zeros(B, weight.shape[0], dtype=x.dtype)
    out = []
    for l in range(L):
        u = beta * v + x[:, :, l].T @ weight.T + bias
        s = (u >= theta).to(x.dtype)
        v = u - theta * s
        out.append(s)
    return torch.stack(out)


def test_location_lif_is_a_lif_recurrence_over_the_locations():
    torch.manual_seed(0)
    layer = loc.LocationLIF(6, 5, learn_tau=True, tau_m=4.0, init_gain=3.0).double()
    with torch.no_grad():
        layer.lif.beta_logit.copy_(torch.linspace(-1.0, 2.0, 5, dtype=torch.float64))   # per-unit decays
    x = (torch.rand(6, 3, 40, dtype=torch.float64) < 0.4).double()                        # [T, B, L] events
    spikes = layer(x)
    assert spikes.shape == (40, 3, 5)
    ref = _hand_stepped(x, layer.lif.weight.detach(), layer.lif.bias.detach(), layer.lif.beta.detach(), 1.0)
    assert torch.equal(spikes, ref) and 0 < int(ref.sum()) < ref.numel()     # same spikes, some but not all
    assert torch.equal(spikes, layer.lif(x.permute(2, 1, 0)))                # LIFLayer on the transposed tensor
    # gradients: autograd through the reference recurrence on the same current (float64: agreement to ~1e-12;
    # 1e-9 leaves room for the different summation order of the fused backward)
    probe = torch.randn(40, 3, 5, dtype=torch.float64)
    (spikes * probe).sum().backward()
    w = layer.lif.weight.detach().clone().requires_grad_()
    current = loc.to_locations(x) @ w.T + layer.lif.bias.detach()
    (lif_sequence_reference(current, layer.lif.beta.detach(), 1.0) * probe).sum().backward()
    torch.testing.assert_close(layer.lif.weight.grad, w.grad, rtol=1e-9, atol=1e-9)
    with pytest.raises(ValueError, match=r"input must be \[6, B, L\]"):
        layer(x[:5])


def test_the_first_location_spike_under_a_constant_input_matches_the_closed_form():
    # a constant current c per location: V[l] = c (1 - beta^(l+1)) / (1 - beta) until the first spike, so the
    # first spike is at the smallest l with beta^(l+1) <= 1 - theta (1 - beta) / c
    beta, theta = math.exp(-1 / 8.0), 1.0
    c = torch.tensor([0.15, 0.2, 0.3, 0.6, 1.5], dtype=torch.float64)
    layer = loc.LocationLIF(4, 5, tau_m=8.0, learn_tau=False, bias=False).double()
    with torch.no_grad():
        layer.lif.weight.copy_(c[:, None].expand(5, 4) / 4)                  # 4 time bins of 1 sum to c
    spikes = layer(torch.ones(4, 1, 60, dtype=torch.float64))[:, 0]          # [L, N]
    for n in range(5):
        expected = math.ceil(math.log(1 - theta * (1 - beta) / float(c[n])) / math.log(beta)) - 1
        assert int(spikes[:, n].nonzero()[0]) == expected, n


def _kernel(m, tau):
    """SLAYER's alpha kernel ``(m / tau) exp(1 - m / tau)``."""
    return m / tau * math.exp(1 - m / tau)


def test_the_srm_psp_is_the_alpha_kernel_convolution():
    current = torch.randn(30, 2, 3, dtype=torch.float64)
    tau = 3.5
    direct = torch.stack([sum((_kernel(m, tau) * current[k - m] for m in range(1, k + 1)),
                              torch.zeros(2, 3, dtype=torch.float64)) for k in range(30)])
    torch.testing.assert_close(loc.srm_psp(current, tau), direct, rtol=1e-12, atol=1e-12)   # float64 rounding


def test_location_srm_is_the_spike_response_model_over_the_locations():
    torch.manual_seed(5)
    layer = loc.LocationSRM(6, 4, tau=3.0, tau_ref=2.0, init_gain=4.0).double()
    x = (torch.rand(6, 2, 35, dtype=torch.float64) < 0.4).double()
    spikes = layer(x)
    assert spikes.shape == (35, 2, 4)
    # the module docstring's sums written out: u[k] = sum_m eps(m) I[k-m] + sum_m nu(m) S[k-m]
    current = loc.to_locations(x) @ layer.srm.weight.detach().T + layer.srm.bias.detach()
    ref = []
    for k in range(35):
        u = sum((_kernel(m, 3.0) * current[k - m] for m in range(1, k + 1)), torch.zeros(2, 4, dtype=torch.float64))
        u = u + sum((-2.0 * _kernel(m, 2.0) * ref[k - m] for m in range(1, k + 1)), torch.zeros(2, 4,
                                                                                               dtype=torch.float64))
        ref.append((u >= 1.0).double())
    assert torch.equal(spikes, torch.stack(ref)) and 0 < int(spikes.sum()) < spikes.numel()
    assert torch.equal(spikes, layer.srm(x.permute(2, 1, 0)))


# ------------------------------------------------------------------------------------------ the hybrid
def test_hybrid_shapes_fusion_and_twin_sizes():
    torch.manual_seed(1)
    x = (torch.rand(7, 4, 30) < 0.3).float()
    hybrid = loc.build_model("hybrid", 7, 30, 3, 10, time_fraction=0.4, weights=(0.7, 1.3))
    assert hybrid.hidden_sizes == {"time": 4, "location": 6}
    scores, hidden = hybrid(x)
    assert scores.shape == (1, 4, 3) and [h.shape for h in hidden] == [(7, 4, 4), (30, 4, 6)]
    parts = [branch(x)[0] for branch in hybrid.branches.values()]
    torch.testing.assert_close(scores[0], 0.7 * parts[0] + 1.3 * parts[1])
    for model in ("time", "location"):
        twin = loc.build_model(model, 7, 30, 3, 10)
        assert twin.hidden_sizes == {model: 10}
        _, (h,) = twin(x)
        assert h.shape == ((7 if model == "time" else 30), 4, 10)
    with pytest.raises(ValueError, match="unknown model"):
        loc.build_model("space", 7, 30, 3, 10)
    with pytest.raises(ValueError, match="empty"):
        loc.build_model("hybrid", 7, 30, 3, 1)


def test_efficiency_counts_by_hand():
    torch.manual_seed(2)
    model = loc.build_model("hybrid", 5, 12, 3, 8)
    x = (torch.rand(5, 6, 12) < 0.5).float() * 2
    eff = loc.efficiency(model, [x[:, :4], x[:, 4:]])
    _, (h_t, h_l) = model(x)
    events, st, sl = float(x.sum()), float(h_t.detach().sum()), float(h_l.detach().sum())
    assert eff["samples"] == 6 and eff["steps"] == {"time": 5, "location": 12}
    assert eff["spikes"] == pytest.approx((st + sl) / 6)
    assert eff["synops"] == pytest.approx((events * (4 + 4) + (st + sl) * 3) / 6)


@pytest.mark.parametrize("neuron", ["lif", "srm"])
def test_the_hybrid_learns_a_small_event_task(neuron):
    # class k: random events at the locations of band k (of 3), early in time for even samples, late for odd ones
    g = torch.Generator().manual_seed(3)
    n, T, L = 240, 8, 24
    labels = torch.randint(0, 3, (n,), generator=g)
    x = (torch.rand(T, n, L, generator=g) < 0.05).float()
    for i in range(n):
        band = slice(8 * int(labels[i]), 8 * int(labels[i]) + 8)
        steps = slice(0, 4) if i % 2 == 0 else slice(4, 8)
        x[steps, i, band] += (torch.rand(4, 8, generator=g) < 0.6).float()
    torch.manual_seed(4)
    model = loc.build_model("hybrid", T, L, 3, 16, neuron=neuron, tau_time=3.0, tau_location=3.0)
    opt, loss = torch.optim.Adam(model.parameters(), lr=1e-2), loc.ScoreLoss()
    for epoch in range(15):
        for b in range(0, 200, 20):
            out, hidden = model(x[:, b:b + 20])
            opt.zero_grad()
            loss(out, labels[b:b + 20], hidden).loss.backward()
            opt.step()
    with torch.no_grad():
        accuracy = float((model(x[:, 200:])[0][0].argmax(1) == labels[200:]).float().mean())
    assert accuracy >= 0.9, accuracy                                        # chance 1/3


# ------------------------------------------------------------------------------------------ the task
def test_the_bundled_config_validates():
    kind, config = load_config(CONFIG)
    assert kind.name == "location_snn" and config["network"]["model"] == "hybrid"
    assert config["data"] == {"source": "idx", "name": "mnist", "dir": None}


def test_yaml_mistakes_name_file_line_and_key():
    text = """kind: location_snn
events: {bins: 0, mode: counts}
network:
  model: time
  time_fraction: 0.3
  hiden: 8
  fusion: {weights: [1, 2, 3]}
  neuron: srn
loss: {label_smoothing: 1.5}
"""
    with pytest.raises(ConfigProblems) as err:
        validate(load_text(text, "bad.yaml"))
    text = str(err.value)
    for expected in [
        "bad.yaml:2: events.bins: ",
        "bad.yaml:2: events.mode: unknown value 'counts'; did you mean 'count'?",
        "bad.yaml:5: network.time_fraction: only the hybrid model splits its units",
        "bad.yaml:6: network.hiden: unknown key; did you mean 'hidden'?",
        "bad.yaml:7: network.fusion.weights: needs two weights [time, location], got 3",
        "bad.yaml:8: network.neuron: unknown value 'srn'; did you mean 'srm'?",
        "bad.yaml:9: loss.label_smoothing: must be < 1, got 1.5",
    ]:
        assert expected in text, text


def _tiny(data: Path, **overrides) -> dict:
    # contrast threshold 1.5: the dim noise of tiny_idx (intensity <= 60 / 255, a log change <= 1.2 over the
    # dark level) gives almost no events, the bright class block (log change 2.4) does: ~110 events per image
    settings = dict(data__dir=str(data), events__threshold=1.5, events__bins=8, events__downsample=4,
                    events__frame_us=10000.0,
                    network__hidden=24, training__epochs=3, training__samples=None, training__validation=50,
                    training__batch=25, optimizer__lr=1e-2, evaluation__test_samples=None,
                    evaluation__efficiency_samples=40, checkpoint_every=4)
    return config_with(CONFIG, **{**settings, **overrides})


@pytest.mark.parametrize("neuron, floor", [("lif", 0.7), ("srm", 0.5)])     # measured 0.93 and 0.75; chance 0.1
def test_a_tiny_idx_set_runs_end_to_end(tmp_path, capsys, neuron, floor):
    data = tiny_idx(tmp_path / "idx")
    summary = task.run(_tiny(data, network__neuron=neuron), {"out": str(tmp_path / "out")})
    assert summary["hidden"] == {"time": 12, "location": 12} and summary["train_samples"] == 250
    assert summary["bins_T"] == 8 and summary["locations_L"] == 9 * 9 * 2 and summary["neuron"] == neuron
    assert summary["test_accuracy"] >= floor, summary              # the class is the block's position
    eff = summary["efficiency"]
    assert eff["samples"] == 40 and eff["spikes_per_sample"] > 0 and eff["sequential_steps"] == {"time": 8,
                                                                                                  "location": 162}
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last)["test_accuracy"] == summary["test_accuracy"]


def test_an_interrupted_run_resumes_exactly(tmp_path, monkeypatch):
    data = tiny_idx(tmp_path / "idx", n_train=200, n_test=50)
    config = _tiny(data, network__model="time")          # 150 samples: 6 batches per epoch, checkpoints every 4
    straight = task.run(copy.deepcopy(config), {"out": str(tmp_path / "a")})
    with killed_at_step(monkeypatch, task.Trainer, 12), pytest.raises(KeyboardInterrupt):
        task.run(copy.deepcopy(config), {"out": str(tmp_path / "b")})
    ckpt = tmp_path / "b" / "saccade_location.ckpt"
    assert load_checkpoint(ckpt)["position"] == {"epoch": 1, "batch": 4, "step": 10}
    resumed = task.run(copy.deepcopy(config), {"out": str(tmp_path / "b")})
    a, b = load_checkpoint(tmp_path / "a" / "saccade_location.ckpt")["model"], load_checkpoint(ckpt)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["steps"] == straight["steps"] == 18
    for key in ("test_accuracy", "validation_accuracy", "efficiency"):
        assert resumed[key] == straight[key]
    with pytest.raises(ConfigError, match="another configuration"):
        task.run(_tiny(data, network__model="time", seed=1), {"out": str(tmp_path / "b")})
