"""The Legendre Memory Unit and its hybrid-spiking version (braincore.training.lmu) and the ``lmu_classifier`` task:

- the delay system's A, B against the closed form written out for d = 3; the zero-order hold against scipy's
  ``cont2discrete`` and against ``Bbar = A^-1 (Abar - I) B``; the delay property (the shifted-Legendre read-out of
  the memory reproduces ``u(t - theta')`` of a smooth input);
- the parallel memory (FFT convolution with the impulse response) equals the recurrence; the hidden drive computed
  without forming the memory equals ``W_m m``;
- the sigma-delta quantiser: the loop equals the closed form ``floor(v0 + S_t) - floor(v0 + S_(t-1))``, its
  running sum stays within one quantum of the activations' ``[-v0, 1 - v0)``; the straight-through gradient;
  ``alpha = 0`` is exactly the non-spiking network, ``alpha = 1`` outputs counts / dt; significant bits;
- the task: bundled configs validate (the LSTM config has the LMU's parameter count to 1 %), YAML mistakes at
  file, line and key, a small 6 x 6 sequence set is learnt end to end with the final JSON line, an interrupted
  run resumes exactly (also the alpha ramp).
"""
import copy
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from braincore.checkpoint import load_checkpoint
from braincore.config import ConfigProblems, load_config, load_text, validate
from braincore.data.idx import write_idx
from braincore.training import lmu
from tasks.perception import lmu as task
from tiny_data import config_with, killed_at_step

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs" / "perception"


# ------------------------------------------------------------------------------------------ the memory
def test_delay_system_matches_the_closed_form_for_d3():
    a, b = lmu.legendre_delay(3, 2.0)
    expected_a = np.array([[-1, -1, -1], [3, -3, -3], [-5, 5, -5]]) / 2.0
    expected_b = np.array([[1], [-3], [5]]) / 2.0
    assert np.array_equal(a, expected_a) and np.array_equal(b, expected_b)


def test_zero_order_hold_against_scipy_and_the_closed_form():
    from scipy.linalg import expm
    from scipy.signal import cont2discrete

    a, b = lmu.legendre_delay(8, 13.0)
    abar, bbar = lmu.discretize_zoh(a, b, 0.7)
    ref = cont2discrete((a, b, np.eye(8), np.zeros((8, 1))), 0.7, method="zoh")
    # float64 matrix exponentials of a well-conditioned 9 x 9 matrix agree to ~1e-15; 1e-12 leaves room
    assert np.abs(abar - ref[0]).max() < 1e-12 and np.abs(bbar - ref[1]).max() < 1e-12
    assert np.abs(abar - expm(a * 0.7)).max() < 1e-12
    closed = np.linalg.solve(a, (abar - np.eye(8)) @ b)
    assert np.abs(bbar - closed).max() < 1e-10


def test_the_memory_holds_a_delayed_window_of_a_smooth_input():
    order, theta, dt, period = 12, 100.0, 0.1, 150.0
    a, b = lmu.legendre_delay(order, theta)
    abar, bbar = lmu.discretize_zoh(a, b, dt)
    t = np.arange(4000) * dt
    u = torch.as_tensor(np.sin(2 * np.pi * t / period), dtype=torch.float64).view(-1, 1, 1)
    m = lmu.memory_sequential(u, torch.as_tensor(abar), torch.as_tensor(bbar))[-1, 0, 0].numpy()
    for r in (0.0, 0.25, 0.5, 0.75, 1.0):
        decoded = lmu.shifted_legendre(order, np.array(r)) @ m
        target = np.sin(2 * np.pi * (t[-1] - r * theta) / period)
        # a 12-term Legendre series of a window holding 2/3 of a sine period, and the ZOH of a smooth input:
        # errors of a few 1e-3 (largest at the window's ends); 0.02 is a fifth of a percent of the swing x 10
        assert abs(decoded - target) < 0.02, (r, decoded, target)


def test_parallel_memory_equals_the_recurrence():
    a, b = lmu.legendre_delay(10, 25.0)
    abar, bbar = lmu.discretize_zoh(a, b)
    response = torch.as_tensor(lmu.impulse_response(abar, bbar, 40)[:, :, 0])
    u = torch.randn(37, 3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    seq = lmu.memory_sequential(u, torch.as_tensor(abar), torch.as_tensor(bbar))
    par = lmu.memory_parallel(u, response)
    assert par.shape == seq.shape == (37, 3, 2, 10)
    assert torch.allclose(par, seq, atol=1e-11, rtol=0)   # float64 FFT round-off ~1e-14 x sum |u|


def test_hidden_drive_without_the_memory_equals_w_m_m():
    torch.manual_seed(0)
    net = lmu.LMUClassifier(3, 4, order=16, theta=20, hidden=8, memory_inputs=2, max_steps=30).double()
    x = torch.rand(30, 5, 3, dtype=torch.float64)
    assert torch.allclose(net.memory_drive(x), net.memory_kernel(net.memory(x)), atol=1e-12, rtol=0)


# ------------------------------------------------------------------------------------------ quantiser
def test_sigma_delta_loop_equals_closed_form_and_bounds_the_summed_error():
    g = torch.Generator().manual_seed(1)
    a = torch.rand(200, 4, 7, dtype=torch.float64, generator=g) * 3.0
    for dt, v0 in ((1.0, 0.5), (0.37, 0.0), (2.5, 0.9)):
        n = lmu.sigma_delta(a, dt, v0)
        assert torch.equal(n, lmu.sigma_delta_closed_form(a, dt, v0))
        assert torch.equal(n, n.round()) and (n >= 0).all()
        err = torch.cumsum(a * dt, 0) - torch.cumsum(n, 0)      # = v_t - v0 with v_t in [0, 1)
        assert (err >= -v0 - 1e-12).all() and (err < 1 - v0 + 1e-12).all()
    signed = torch.randn(100, 6, dtype=torch.float64, generator=g)
    err = torch.cumsum(signed, 0) - torch.cumsum(lmu.sigma_delta(signed, 1.0, 0.5), 0)
    assert err.abs().max() <= 0.5 + 1e-12                        # v0 = 0.5: the running sum is rounded


def test_straight_through_gradient_and_the_alpha_endpoints():
    a = torch.rand(10, 3, dtype=torch.float64, requires_grad=True)
    n = lmu.sigma_delta(a.detach(), 0.5)
    for alpha in (0.0, 0.3, 1.0):
        h = lmu.quantize(a, n, 0.5, alpha)
        (grad,) = torch.autograd.grad((h * torch.arange(3.0, dtype=torch.float64)).sum(), a)
        assert torch.equal(grad, torch.arange(3.0, dtype=torch.float64).expand(10, 3))
        assert torch.allclose(h, a + alpha * (n / 0.5 - a))
    assert lmu.quantize(a, n, 0.5, 0.0) is a


@pytest.mark.parametrize("recurrent", [False, True])
def test_alpha_zero_is_exactly_the_non_spiking_network_and_alpha_one_spikes(recurrent):
    torch.manual_seed(3)
    net = lmu.LMUClassifier(2, 5, order=6, theta=12, hidden=7, recurrent=recurrent, spike_dt=1.0, max_steps=15)
    x = torch.rand(15, 4, 2)
    drive = net.input_kernel(x) + net.memory_drive(x)
    h = torch.zeros(4, 7)
    for t in range(15):   # the plain LMU, no quantiser anywhere
        h = torch.relu(drive[t] + (net.recurrent_kernel(h) if recurrent else 0))
    net.alpha = 0.0
    assert torch.equal(net(x)[0], net.readout(h))
    net.alpha = 1.0
    hs, counts = net.hidden_sequence(x)
    assert torch.allclose(hs, counts, atol=1e-6) and torch.equal(counts, counts.round())


def test_significant_bits_and_alpha_ramp():
    n = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7, 8, 12, -6, 255, 256])
    assert lmu.significant_bits(n).tolist() == [0, 1, 1, 2, 1, 3, 2, 3, 1, 2, 2, 8, 1]
    assert [lmu.alpha_ramp(s, 10, 1.0, 2.0) for s in (0, 9, 10, 20, 30, 40)] == [0, 0, 0, 0.5, 1, 1]
    assert [lmu.alpha_ramp(s, 10, 0.5, 0.0) for s in (4, 5)] == [0.0, 1.0]


def test_activity_measures_of_a_known_count_pattern(monkeypatch):
    net = lmu.LMUClassifier(1, 2, order=2, theta=3, hidden=3, max_steps=4)
    counts = torch.tensor([[[0., 1., 3.]], [[0., 2., 0.]], [[0., 1., 6.]]])    # [T=3, B=1, H=3]
    monkeypatch.setattr(net, "forward_with_counts", lambda x: (None, counts))
    m = lmu.activity_measures(net, [torch.zeros(3, 1, 1)])
    # per unit log2(1 + max): 0, log2 3, log2 7; significant bits of 1, 3, 2, 1, 6: 1, 2, 1, 1, 2
    assert m["bits_per_activation"] == pytest.approx((math.log2(3) + math.log2(7)) / 3)
    assert m["significant_bits_per_weight_multiply"] == pytest.approx(7 / 5)
    assert m["nonzero_fraction"] == pytest.approx(5 / 9) and m["max_count"] == 6


# ------------------------------------------------------------------------------------------ the task
def _tiny_sequences(folder: Path, n_train: int = 240, n_test: int = 60) -> Path:
    """6 x 6 IDX images (36 steps as pixels): dim noise with a bright row ``c`` for class ``c`` (0-5)."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for split, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 6, n).astype(np.uint8)
        images = (rng.random((n, 6, 6)) * 60).astype(np.uint8)
        images[np.arange(n), labels, :] = 255
        write_idx(folder / f"{split}-images-idx3-ubyte", images)
        write_idx(folder / f"{split}-labels-idx1-ubyte", labels)
    return folder


def _small(data: Path, **overrides) -> dict:
    settings = dict(data__dir=str(data), training__epochs=3, training__validation=40, training__batch=25,
                    training__samples=None, evaluation__validation_samples=None, optimizer__lr=1e-2,
                    network__order=12, network__theta=None, network__hidden=24, checkpoint_every=4,
                    spiking__start_epoch=1.0, spiking__ramp_epochs=1.0, evaluation__batch=50)
    return config_with(CONFIGS / "psmnist_lmu.yaml", **{**settings, **overrides})


def test_bundled_configs_validate_and_the_lstm_matches_the_parameter_count():
    from tasks.perception import surrogate

    kind, config = load_config(CONFIGS / "psmnist_lmu.yaml")
    assert kind.name == "lmu_classifier" and config["encoder"]["permutation"] is not None
    lstm_kind, lstm_config = load_config(CONFIGS / "psmnist_lmu_lstm.yaml")
    assert lstm_kind.name == "spiking_classifier"
    assert lstm_config["encoder"] == {**lstm_config["encoder"], "kind": "pixels",
                                      "permutation": config["encoder"]["permutation"]}
    n_lmu = lmu.parameter_count(task.build_model(config, (28, 28), 10))
    n_lstm = sum(p.numel() for p in surrogate.build_model(lstm_config, 1, 10).parameters())
    assert n_lmu == 56827 and abs(n_lstm - n_lmu) / n_lmu < 0.01, (n_lmu, n_lstm)
    kind, recurrent = load_config(CONFIGS / "psmnist_lmu_recurrent.yaml")
    assert kind.name == "lmu_classifier" and recurrent["network"]["recurrent"]
    # the 2019 cell: 1 + 212 (1 + 1) + 256 x 212 + 212 x 212 + 212 x 10 + 10, the paper's "102k"
    assert lmu.parameter_count(task.build_model(recurrent, (28, 28), 10)) == 101771


def test_yaml_mistakes_name_file_line_and_key():
    text = """kind: lmu_classifier
encoder: {kind: rows, permutation: 3}
network:
  hiden: 10
  activation: sigmoid
spiking: {v0: 1.5, ramp_epochs: -1}
loss: {label_smoothing: 1}
"""
    with pytest.raises(ConfigProblems) as err:
        validate(load_text(text, "bad.yaml"))
    text = str(err.value)
    for expected in [
        "bad.yaml:2: encoder.permutation: only the 'pixels' encoder takes a permutation",
        "bad.yaml:4: network.hiden: unknown key; did you mean 'hidden'?",
        "bad.yaml:5: network.activation: unknown value 'sigmoid'",
        "bad.yaml:6: spiking.v0: the quantiser state lies in [0, 1)",
        "bad.yaml:6: spiking.ramp_epochs: must be >= 0",
        "bad.yaml:7: loss.label_smoothing: must be < 1",
    ]:
        assert expected in text, text


def test_a_small_sequence_set_is_learnt_end_to_end(tmp_path, capsys):
    data = _tiny_sequences(tmp_path / "idx")
    summary = task.run(_small(data, training__epochs=4), {"out": str(tmp_path / "out")})
    assert summary["steps_T"] == 36 and summary["theta"] == 36 and summary["train_samples"] == 200
    assert summary["alpha_final"] == 1.0
    # chance is 1/6; the spiking network (trained spiking for the last two epochs) learns the rows
    assert summary["test_accuracy_spiking"] >= 0.6 and summary["test_accuracy"] == summary["test_accuracy_spiking"]
    assert summary["bits_per_activation"] > 0 and summary["significant_bits_per_weight_multiply"] >= 1
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last)["test_accuracy_nonspiking"] == summary["test_accuracy_nonspiking"]


def test_an_interrupted_run_resumes_exactly_along_the_alpha_ramp(tmp_path, monkeypatch):
    data = _tiny_sequences(tmp_path / "idx", n_train=190, n_test=40)
    config = _small(data)                          # 150 samples: 6 batches per epoch, alpha ramps over epoch 2
    straight = task.run(copy.deepcopy(config), {"out": str(tmp_path / "a")})
    # checkpoints at steps 4, 6 (epoch end), 10: step 11 (alpha 5/6 of the ramp) is lost
    with killed_at_step(monkeypatch, task.Trainer, 12), pytest.raises(KeyboardInterrupt):
        task.run(copy.deepcopy(config), {"out": str(tmp_path / "b")})
    ckpt = tmp_path / "b" / "psmnist_lmu.ckpt"
    assert load_checkpoint(ckpt)["position"] == {"epoch": 1, "batch": 4, "step": 10}
    resumed = task.run(copy.deepcopy(config), {"out": str(tmp_path / "b")})
    a, b = load_checkpoint(tmp_path / "a" / "psmnist_lmu.ckpt")["model"], load_checkpoint(ckpt)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["steps"] == straight["steps"] == 18
    for key in ("test_accuracy_spiking", "test_accuracy_nonspiking", "validation_accuracy", "bits_per_activation"):
        assert resumed[key] == straight[key]
    drop = lambda h: [{k: v for k, v in e.items() if k != "train_seconds"} for e in h]  # noqa: E731
    assert drop(resumed["history"]) == drop(straight["history"])
    with pytest.raises(Exception, match="another configuration"):
        task.run(_small(data, seed=1), {"out": str(tmp_path / "b")})
