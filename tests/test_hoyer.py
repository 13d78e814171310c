"""One-time-step Hoyer SNNs (braincore.training.hoyer) and the ``one_step_snn`` task (tasks/perception/hoyer.py):

- the Hoyer extremum and regulariser against closed forms on small vectors;
- the spike rule ``s = 1[z >= E(z)]`` against a per-sample NumPy reimplementation;
- the gradients of the membrane and of the threshold against the hand derivation (straight-through ``z``), and
  the threshold's gradient through the (smooth, interior) regulariser against central finite differences;
- operation counts against an explicit count; the model learns a tiny task;
- the task: the bundled config validates, YAML mistakes at file, line and key, an end-to-end run of the SNN and
  of its ANN twin, an interrupted run resumes exactly.

The kind is registered by importing tasks.perception.hoyer (the pyproject entry point is added by the lead).
"""
import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from braincore.checkpoint import load_checkpoint
from braincore.config import ConfigProblems, load_config, load_text, validate
from braincore.errors import ConfigError
from braincore.training import hoyer
from tasks.perception import hoyer as task
from tiny_data import config_with, killed_at_step, tiny_idx

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "perception" / "mnist_hoyer_one_step.yaml"


# ------------------------------------------------------------------------------------------ closed forms
@pytest.mark.parametrize("z, expected", [([1.0, 0.0, 0.0, 0.0], 1.0),          # one-hot: its single value
                                         ([0.3, 0.3, 0.3, 0.3], 0.3),          # constant: the constant
                                         ([0.5, 1.0, 0.0, 0.0], 1.25 / 1.5),   # (0.25 + 1) / (0.5 + 1)
                                         ([0.0, 0.0, 0.0, 0.0], 1.0)])         # all zero: E = 1, nothing fires
def test_hoyer_extremum_closed_forms(z, expected):
    e = hoyer.hoyer_extremum(torch.tensor([z], dtype=torch.float64))
    assert e.shape == (1, 1)
    assert float(e) == pytest.approx(expected, rel=1e-12)   # float64: a few ulps


@pytest.mark.parametrize("z, expected", [([1.0, 0.0, 0.0], 1.0), ([0.7, 0.7, 0.7, 0.7], 4.0),
                                         ([1.0, 1.0, 0.0, 0.0], 2.0), ([0.5, 1.0], 2.25 / 1.25)])
def test_hoyer_regulariser_closed_forms(z, expected):
    assert float(hoyer.hoyer_regulariser(torch.tensor(z, dtype=torch.float64))) == pytest.approx(expected,
                                                                                                  rel=1e-10)


def test_the_spike_rule_equals_a_per_sample_numpy_reimplementation():
    g = torch.Generator().manual_seed(0)
    u = torch.randn(6, 40, generator=g, dtype=torch.float64)
    v = torch.tensor(0.8, dtype=torch.float64)
    s, z = hoyer.hoyer_spike(u, v)
    un = u.numpy()
    for b in range(6):
        zb = np.clip(un[b] / 0.8, 0, 1)
        e = (zb ** 2).sum() / np.abs(zb).sum()
        assert np.array_equal(s[b].numpy(), (zb >= e).astype(float))
        assert np.allclose(z[b].numpy(), zb, rtol=0, atol=1e-15)
        assert np.all(s[b].numpy()[un[b] >= 0.8] == 1)      # at or above v_th always fires (z = 1 >= E)
        assert np.all(s[b].numpy()[un[b] <= 0] == 0)
    assert set(np.unique(s.numpy())) <= {0.0, 1.0}           # exactly binary in the forward pass
    # the hand example: z = (0.2, 0.5, 1, 0), E = 1.29 / 1.7 = 0.759: only the third unit fires
    s2, _ = hoyer.hoyer_spike(torch.tensor([[0.2, 0.5, 1.0, 0.0]]), torch.tensor(1.0))
    assert s2.tolist() == [[0.0, 0.0, 1.0, 0.0]]


def test_gradients_of_membrane_and_threshold_follow_the_hand_derivation():
    """ds/du = 1 / v_th and ds/dv_th = -u / v_th^2 on 0 < u < v_th, 0 outside (E held constant)."""
    g = torch.Generator().manual_seed(1)
    u = (torch.randn(4, 30, generator=g, dtype=torch.float64) * 1.5).requires_grad_()
    v = torch.tensor(0.9, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 30, generator=g, dtype=torch.float64)
    s, _ = hoyer.hoyer_spike(u, v)
    (s * w).sum().backward()
    inside = ((u > 0) & (u < 0.9)).to(torch.float64).detach()
    torch.testing.assert_close(u.grad, w * inside / 0.9, rtol=1e-12, atol=1e-15)
    expected_v = (w * inside * (-u.detach() / 0.9 ** 2)).sum()
    torch.testing.assert_close(v.grad, expected_v, rtol=1e-12, atol=1e-15)
    assert 0 < inside.sum() < inside.numel()


def test_the_released_codes_surrogate_window_and_scale():
    """window = 2, scale = 0.5: ds/du = 0.5 / v_th and ds/dv_th = -0.5 u / v_th^2 on 0 < u < 2 v_th; the same
    spikes as the default."""
    g = torch.Generator().manual_seed(4)
    u = (torch.randn(4, 30, generator=g, dtype=torch.float64) * 2).requires_grad_()
    v = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 30, generator=g, dtype=torch.float64)
    s, z = hoyer.hoyer_spike(u, v, window=2.0, scale=0.5)
    assert torch.equal(s, hoyer.hoyer_spike(u, v)[0])
    (s * w).sum().backward()
    inside = ((u > 0) & (u < 1.4)).to(torch.float64).detach()
    torch.testing.assert_close(u.grad, 0.5 * w * inside / 0.7, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(v.grad, (0.5 * w * inside * (-u.detach() / 0.7 ** 2)).sum(), rtol=1e-12, atol=1e-15)
    assert ((u > 0.7) & (u < 1.4)).any()                      # the window beyond v_th is exercised


def test_threshold_gradient_through_the_regulariser_matches_finite_differences():
    """H(clip(u / v_th, 0, 1)) is smooth in v_th while no membrane sits at 0 or v_th: central differences with
    h = 1e-6 in float64 have truncation error O(h^2) ~ 1e-12 relative, hence the 1e-6 tolerance."""
    g = torch.Generator().manual_seed(2)
    u = torch.randn(3, 50, generator=g, dtype=torch.float64)

    def reg(v):
        return hoyer.hoyer_regulariser(hoyer.hoyer_spike(u, v)[1])

    v = torch.tensor(1.1, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(reg(v), v)
    h = 1e-6
    fd = (reg(torch.tensor(1.1 + h, dtype=torch.float64)) - reg(torch.tensor(1.1 - h, dtype=torch.float64))) / (2 * h)
    assert float(grad) == pytest.approx(float(fd), rel=1e-6)
    assert abs(float(grad)) > 1e-3


def test_operation_counts_equal_an_explicit_count():
    torch.manual_seed(0)
    sizes = [12, 7, 5, 3]
    x = torch.rand(1, 9, 12)
    snn, ann = hoyer.HoyerMLP(sizes, spiking=True, threshold=0.3), hoyer.HoyerMLP(sizes, spiking=False)
    ops = hoyer.count_operations(snn, [x[:, :4], x[:, 4:]])
    _, hidden = snn(x)
    spikes = [float(h.detach().sum()) / 9 for h in hidden]
    assert ops["active_per_layer"] == pytest.approx(spikes, rel=1e-12)
    assert ops["synops"] == pytest.approx(spikes[0] * 5 + spikes[1] * 3, rel=1e-12)
    assert ops["macs"] == 12 * 7 and ops["flops"] == pytest.approx(ops["synops"] + 2 * 84)
    assert ops["energy_pj"] == pytest.approx(0.9 * ops["synops"] + 4.6 * 84)
    a = hoyer.count_operations(ann, [x])
    assert a["synops"] == 0 and a["macs"] == 12 * 7 + 7 * 5 + 5 * 3 and a["spikes"] == 0.0
    with pytest.raises(ValueError, match="one-time-step"):
        snn(torch.rand(2, 3, 12))


def test_the_model_learns_a_tiny_task_and_the_threshold_moves():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(3)
    x = torch.rand(200, 10, generator=g)
    y = (x[:, 0] > x[:, 1]).long()                           # a linearly separable two-class task
    model = hoyer.HoyerMLP([10, 32, 2], spiking=True)
    loss = hoyer.HoyerLoss(model, coefficient=0.01)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    v0 = model.thresholds()[0]
    for _ in range(150):
        out, _ = model(x.unsqueeze(0))
        result = loss(out, y)
        opt.zero_grad()
        result.loss.backward()
        opt.step()
    model.eval()
    out, _ = model(x.unsqueeze(0))
    assert float((out[0].argmax(1) == y).float().mean()) >= 0.85   # chance 0.5
    assert model.thresholds()[0] != v0 and float(result.regularizer) > 0


# ------------------------------------------------------------------------------------------ the task
def _small(data, **overrides):
    base = dict(data__dir=str(data), network__hidden=[32], training__epochs=3, training__validation=50,
                training__batch=25, evaluation__batch=50, optimizer__lr=3e-3, checkpoint_every=4)
    base.update(overrides)
    return config_with(CONFIG, **base)


def test_the_bundled_config_validates():
    kind, config = load_config(CONFIG)
    assert kind.name == "one_step_snn" and config["network"]["model"] == "snn"
    assert config["data"] == {"source": "idx", "name": "mnist", "dir": None}


def test_yaml_mistakes_name_file_line_and_key():
    text = """kind: one_step_snn
network:
  model: ann
  hiden: [10]
loss: {hoyer: 0.1, label_smoothing: 1.5}
optimizer: {beta1: 1.0}
"""
    with pytest.raises(ConfigProblems) as err:
        validate(load_text(text, "bad.yaml"))
    text = str(err.value)
    for expected in ["bad.yaml:4: network.hiden: unknown key; did you mean 'hidden'?",
                     "bad.yaml:5: loss.hoyer: the ann twin has no thresholds to regularise",
                     "bad.yaml:5: loss.label_smoothing: must be < 1",
                     "bad.yaml:6: optimizer.beta1: must be < 1"]:
        assert expected in text, text


def test_the_snn_and_its_ann_twin_learn_a_small_set_end_to_end(tmp_path, capsys):
    data = tiny_idx(tmp_path / "idx")
    snn = task.run(_small(data), {"out": str(tmp_path / "snn")})
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last)["test_accuracy"] == snn["test_accuracy"]
    assert snn["sizes"] == [784, 32, 10] and snn["steps_T"] == 1 and snn["test_accuracy"] >= 0.8, snn  # chance 0.1
    eff = snn["efficiency"]
    assert 0 < eff["spikes"] <= 32 and eff["synops"] == pytest.approx(eff["spikes"] * 10, rel=1e-3)
    assert len(snn["thresholds"]) == 1
    ann = task.run(_small(data, network__model="ann", loss__hoyer=0.0), {"out": str(tmp_path / "ann")})
    assert ann["test_accuracy"] >= 0.8 and ann["efficiency"]["macs"] == 784 * 32 + 32 * 10, ann
    assert ann["efficiency"]["flops"] > eff["flops"]        # the twin's dense second layer costs MACs


def test_an_interrupted_run_resumes_exactly(tmp_path, monkeypatch):
    data = tiny_idx(tmp_path / "idx", n_train=200, n_test=50)
    config = _small(data)                              # 150 samples: 6 batches per epoch, checkpoints every 4
    straight = task.run(copy.deepcopy(config), {"out": str(tmp_path / "a")})
    with killed_at_step(monkeypatch, task.Trainer, 12), pytest.raises(KeyboardInterrupt):
        task.run(copy.deepcopy(config), {"out": str(tmp_path / "b")})
    ckpt = tmp_path / "b" / "mnist_hoyer_one_step.ckpt"
    assert load_checkpoint(ckpt)["position"] == {"epoch": 1, "batch": 4, "step": 10}
    resumed = task.run(copy.deepcopy(config), {"out": str(tmp_path / "b")})
    a, b = load_checkpoint(tmp_path / "a" / "mnist_hoyer_one_step.ckpt")["model"], load_checkpoint(ckpt)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["steps"] == straight["steps"] == 18
    for key in ("test_accuracy", "validation_accuracy", "efficiency", "thresholds"):
        assert resumed[key] == straight[key]
    drop = lambda h: [{k: v for k, v in e.items() if k != "train_seconds"} for e in h]  # noqa: E731
    assert drop(resumed["history"]) == drop(straight["history"])
    with pytest.raises(ConfigError, match="another configuration"):
        task.run(_small(data, seed=1), {"out": str(tmp_path / "b")})
