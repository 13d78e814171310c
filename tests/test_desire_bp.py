"""Desire backpropagation: the rule (braincore.plasticity.desire), the network (braincore.networks.desire_mlp) and
the MNIST task (tasks.perception.desire_bp).

The rule's pieces are checked against the paper's definitions on hand-made cases (output desire from counts and
label, ternary propagation through the weights, STDP gated and signed by the desire); the network and the task
must learn a synthetic dataset of MNIST's shape, resume exactly after an interruption, and (when
../shared/data/mnist is there) learn real digits.
"""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from braincore.config import ConfigProblems, load_config, load_text, validate
from braincore.data import write_idx
from braincore.networks.desire_mlp import DesireMLP, DesireParams, encode
from braincore.errors import ConfigError
from braincore.plasticity import desire as rule
from tasks.perception import desire_bp as task

from ctrl_c import interrupted_cli_run, needs_sigint, press_ctrl_c_during, resume_message

ROOT = Path(__file__).resolve().parent.parent
MNIST = ROOT.parent / "shared" / "data" / "mnist"


# ------------------------------------------------------------------------------------------ the rule
def test_output_desire_follows_the_label_and_the_thresholded_rates():
    # T = 20, margin 4: rate = count / 16, threshold 0.3
    counts = torch.tensor([[16, 5, 4, 0],     # label 0 saturated (1 - 1 = 0): 0; 5/16 = 0.3125 > 0.3: -1; 4/16: 0
                           [0, 0, 10, 11],    # label 3 at 11/16: 1 - 0.6875 = 0.3125 > 0.3: +1; 10/16: -1
                           [0, 12, 0, 0],     # label 1 at 12/16: 1 - 0.75 = 0.25: 0
                           [20, 0, 0, 0]])    # label 2 silent: +1; neuron 0 over-saturated (1.25): -1
    labels = torch.tensor([0, 3, 1, 2])
    d = rule.output_desire(counts, labels, steps=20, threshold=0.3, error_margin=4)
    assert d.dtype == torch.int8
    assert d.tolist() == [[0, -1, 0, 0], [0, 0, -1, 1], [0, 0, 0, 0], [-1, 0, 1, 0]]


def test_desire_error_is_the_signed_distance_to_the_target_rate():
    d = torch.tensor([[1, -1, 0, 1]], dtype=torch.int8)
    counts = torch.tensor([[4.0, 8.0, 16.0, 20.0]])
    e = rule.desire_error(d, counts, steps=20, error_margin=4)
    torch.testing.assert_close(e, torch.tensor([[0.75, -0.5, 0.0, 0.25]]))  # +|1 - 0.25|, -|0 - 0.5|, 0, +|1 - 1.25|


def test_desire_propagates_as_ternary_signs_of_weighted_errors():
    # two post neurons, three pre neurons; post 0 wants more (silent: e = +1), post 1 wants less (16 spikes: e = -1)
    w = torch.tensor([[0.5, -0.5, 0.01],
                      [0.2, 0.3, 0.00]])
    d = torch.tensor([[1, -1]], dtype=torch.int8)
    counts = torch.tensor([[0.0, 16.0]])
    # s = W[0] - W[1] = [0.3, -0.8, 0.01]: |0.01| < 0.05 -> don't care
    assert rule.propagate_desire(d, counts, w, 20, threshold=0.05).tolist() == [[1, -1, 0]]
    # a dropped-out post neuron 1 passes nothing back: s = W[0] = [0.5, -0.5, 0.01]
    mask = torch.tensor([[True, False]])
    assert rule.propagate_desire(d, counts, w, 20, 0.05, mask=mask).tolist() == [[1, -1, 0]]
    mask = torch.tensor([[False, True]])  # s = -W[1] = [-0.2, -0.3, 0]
    assert rule.propagate_desire(d, counts, w, 20, 0.05, mask=mask).tolist() == [[-1, -1, 0]]
    # no desire anywhere: no desire below
    zero = torch.zeros(1, 2, dtype=torch.int8)
    assert rule.propagate_desire(zero, counts, w, 20).tolist() == [[0, 0, 0]]


def test_presynaptic_traces_decay_and_include_the_current_spike():
    s = torch.tensor([[[1.0], [0.0], [1.43], [0.0]]])  # a dropout-scaled spike is clipped to 1
    x = rule.presynaptic_traces(s, 0.75)
    torch.testing.assert_close(x.flatten(), torch.tensor([1.0, 0.75, 1.5625, 1.171875]))


def _one_pair():
    # pre 0 spikes at t = 0 and 1, pre 1 never; post 0 spikes at t = 1
    pre = torch.zeros(1, 3, 2)
    pre[0, 0, 0] = pre[0, 1, 0] = 1.0
    post = torch.zeros(1, 3, 1)
    post[0, 1, 0] = 1.0
    return rule.presynaptic_traces(pre, 0.5), post


def test_zero_desire_changes_no_weight():
    traces, post = _one_pair()
    w = torch.randn(1, 2)
    before = w.clone()
    delta = rule.desire_stdp_update(w, torch.zeros(1, 1, dtype=torch.int8), traces, post, lr=0.1)
    assert torch.equal(w, before) and torch.count_nonzero(delta) == 0


@pytest.mark.parametrize("sign", [1, -1])
def test_update_sign_follows_the_desire_and_only_active_inputs_change(sign):
    traces, post = _one_pair()
    w = torch.zeros(1, 2)
    delta = rule.desire_stdp_update(w, torch.tensor([[sign]], dtype=torch.int8), traces, post, lr=0.1)
    # the post spike at t = 1 reads pre 0's trace 0.5 * 1 + 1 = 1.5; pre 1 is silent
    torch.testing.assert_close(delta, torch.tensor([[sign * 0.15, 0.0]]))
    torch.testing.assert_close(w, delta)


def test_batch_updates_are_summed_or_averaged():
    traces, post = _one_pair()
    d = torch.tensor([[1]], dtype=torch.int8)
    one = rule.desire_stdp_delta(d, traces, post, lr=0.1)
    two = rule.desire_stdp_delta(d.repeat(2, 1), traces.repeat(2, 1, 1), post.repeat(2, 1, 1), lr=0.1)
    mean = rule.desire_stdp_delta(d.repeat(2, 1), traces.repeat(2, 1, 1), post.repeat(2, 1, 1), 0.1, "mean")
    torch.testing.assert_close(two, 2 * one)
    torch.testing.assert_close(mean, one)
    masked = rule.desire_stdp_delta(d, traces, post, 0.1, mask=torch.tensor([[False]]))
    assert torch.count_nonzero(masked) == 0


def test_shapes_and_values_are_validated():
    with pytest.raises(ValueError, match=r"counts must be a \[B, N\]"):
        rule.output_desire(torch.zeros(3), torch.zeros(3, dtype=torch.long), 20)
    with pytest.raises(ValueError, match="labels must lie in"):
        rule.output_desire(torch.zeros(2, 3), torch.tensor([0, 3]), 20)
    with pytest.raises(ValueError, match="labels must be"):
        rule.output_desire(torch.zeros(2, 3), torch.tensor([0]), 20)
    with pytest.raises(ValueError, match="steps - error_margin"):
        rule.spike_rate(torch.zeros(1, 1), 4, 4)
    with pytest.raises(ValueError, match=r"weights must be \[N_post, N_pre\]"):
        rule.propagate_desire(torch.zeros(1, 2, dtype=torch.int8), torch.zeros(1, 2), torch.zeros(3, 2), 20)
    with pytest.raises(ValueError, match="shapes disagree"):
        rule.desire_stdp_delta(torch.zeros(1, 2, dtype=torch.int8), torch.zeros(1, 3, 4), torch.zeros(1, 3, 1))
    with pytest.raises(ValueError, match="reduction"):
        rule.desire_stdp_delta(torch.zeros(1, 1, dtype=torch.int8), torch.zeros(1, 3, 4), torch.zeros(1, 3, 1),
                               reduction="max")
    with pytest.raises(ValueError, match="do not match"):
        rule.desire_stdp_update(torch.zeros(2, 2), torch.zeros(1, 1, dtype=torch.int8), torch.zeros(1, 3, 4),
                                torch.zeros(1, 3, 1))


# ------------------------------------------------------------------------------------------ the network
def test_encoding_is_a_deterministic_integrate_and_fire_rate_code():
    img = torch.tensor([[0, 255, 128, 51]], dtype=torch.uint8)
    s = encode(img, 20)
    assert s.shape == (1, 20, 4)
    assert s.sum(dim=1).tolist() == [[0.0, 20.0, 10.0, 4.0]]  # floor(p T)
    assert s[0, :, 2].tolist()[:4] == [0.0, 1.0, 0.0, 1.0]  # 128/255 ~ 0.502: every other step


def test_network_step_matches_the_rule_applied_by_hand():
    p = DesireParams.from_mapping({"n_in": 4, "hidden": [6], "n_out": 3, "dropout_hid": 0.0, "lr": 0.01,
                                   "init_gain": 6.0})
    net = DesireMLP(p, seed=3, dtype=torch.float64)
    w0 = [w.clone() for w in net.weights]
    images = torch.tensor([[255, 200, 30, 90], [10, 0, 255, 128]], dtype=torch.uint8)
    labels = torch.tensor([1, 2])
    spikes, _ = net.forward(images, train=True)
    counts = [s.sum(1) for s in spikes]
    d2 = rule.output_desire(counts[2], labels, 20)
    d1 = rule.propagate_desire(d2, counts[2], w0[1], 20)
    expected = [w0[0] + rule.desire_stdp_delta(d1, rule.presynaptic_traces(spikes[0], 0.75), spikes[1], 0.01),
                w0[1] + rule.desire_stdp_delta(d2, rule.presynaptic_traces(spikes[1], 0.75), spikes[2], 0.01)]
    net.train_step(images, labels, epoch=0)
    for got, want in zip(net.weights, expected):
        torch.testing.assert_close(got, want)
    assert any(not torch.equal(a, b) for a, b in zip(net.weights, w0))  # something learned
    # the learning rate decays by exp(-lr_decay epoch)
    assert net.learning_rate(10) == pytest.approx(0.01 * np.exp(-0.4))
    # milestones multiply by lr_gamma from their epoch on
    stepped = DesireMLP(DesireParams.from_mapping({"n_in": 4, "hidden": [6], "n_out": 3, "lr": 0.01,
                                                   "lr_milestones": [5, 8], "lr_gamma": 0.5}))
    assert stepped.learning_rate(4) == pytest.approx(0.01 * np.exp(-0.16))
    assert stepped.learning_rate(5) == pytest.approx(0.01 * np.exp(-0.2) * 0.5)
    assert stepped.learning_rate(9) == pytest.approx(0.01 * np.exp(-0.36) * 0.25)


def _step_by_step(net: DesireMLP, images: torch.Tensor, delay: int) -> list:
    """Independent reference: the network advanced one time step at a time, every layer in turn (as the authors'
    loop), a hidden layer's spike of step t reaching the next layer at step t + delay."""
    x = encode(images, net.steps, torch.float64)
    B, T = x.shape[0], net.steps
    out = [x] + [torch.zeros(B, T, w.shape[0], dtype=torch.float64) for w in net.weights]
    v = [torch.zeros(B, w.shape[0], dtype=torch.float64) for w in net.weights]
    for t in range(T):
        for l, w in enumerate(net.weights):
            src = t if l == 0 else t - delay
            inp = out[l][:, src] if src >= 0 else torch.zeros(B, w.shape[1], dtype=torch.float64)
            v[l] = 0.75 * v[l] + inp @ w.t()
            fired = (v[l] >= 1.0).double()
            v[l] -= fired
            out[l + 1][:, t] = fired
    return out


@pytest.mark.parametrize("delay", [0, 1, 2])
def test_layer_delay_matches_a_step_by_step_simulation(delay):
    p = DesireParams.from_mapping({"n_in": 6, "hidden": [10, 8], "n_out": 3, "dropout_hid": 0.0, "steps": 12,
                                   "init_gain": 8.0, "layer_delay": delay, "lr": 0.01})
    net = DesireMLP(p, seed=5, dtype=torch.float64)
    images = torch.randint(0, 256, (4, 6), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    spikes, _ = net.forward(images)
    want = _step_by_step(net, images, delay)
    for got, ref in zip(spikes, want):
        assert torch.equal(got, ref)
    assert all(s.sum() > 0 for s in spikes)  # every layer spikes: the comparison is not vacuous
    if delay:  # nothing reaches layer l before step (l - 1) * delay
        assert spikes[3][:, :delay].sum() == 0 and spikes[2][:, :delay].sum() == 0
    # learning pairs each post spike with the trace of the input the layer actually received
    w0 = [w.clone() for w in net.weights]
    labels = torch.tensor([0, 1, 2, 0])
    counts = [s.sum(1) for s in want]
    d3 = rule.output_desire(counts[3], labels, 12)
    d2 = rule.propagate_desire(d3, counts[3], w0[2], 12)
    d1 = rule.propagate_desire(d2, counts[2], w0[1], 12)
    delayed = [want[0]] + [torch.cat([torch.zeros_like(s[:, :delay]), s[:, :12 - delay]], 1) for s in want[1:3]]
    net.train_step(images, labels)
    for l, d in enumerate((d1, d2, d3)):
        want_w = w0[l] + rule.desire_stdp_delta(d, rule.presynaptic_traces(delayed[l], 0.75), want[l + 1], 0.01)
        torch.testing.assert_close(net.weights[l], want_w)


def test_network_state_round_trips_and_checks_sizes():
    p = DesireParams.from_mapping({"n_in": 16, "hidden": [8], "n_out": 4})
    a, b = DesireMLP(p, seed=1), DesireMLP(p, seed=2)
    b.load_state_dict(a.state_dict())
    assert all(torch.equal(x, y) for x, y in zip(a.weights, b.weights))
    assert torch.equal(a.rng.get_state(), b.rng.get_state())
    other = DesireMLP(DesireParams.from_mapping({"n_in": 16, "hidden": [9], "n_out": 4}))
    with pytest.raises(ValueError, match="layer sizes"):
        other.load_state_dict(a.state_dict())
    with pytest.raises(ValueError, match="pixels"):
        a.forward(torch.zeros(2, 5, 5))
    assert DesireMLP.predict(torch.tensor([[1, 5, 2], [3, 3, 0]])).tolist() == [1, -1]  # ties are wrong


def test_bad_parameters_are_reported():
    with pytest.raises(ConfigError, match="hidden must be a list of positive integers"):
        DesireParams.from_mapping({"hidden": [100, 0]})
    with pytest.raises(ConfigError, match="dropout_hid must be in"):
        DesireParams.from_mapping({"dropout_hid": 1.0})
    with pytest.raises(ConfigError, match="error_margin must be < steps"):
        DesireParams.from_mapping({"steps": 4, "error_margin": 4})
    with pytest.raises(ConfigError, match="thetta_out"):
        DesireParams.from_mapping({"thetta_out": 0.3})
    with pytest.raises(ConfigError, match="lr_milestones must be"):
        DesireParams.from_mapping({"lr_milestones": [3.5]})
    with pytest.raises(ConfigError, match="layer_delay must be"):
        DesireParams.from_mapping({"steps": 4, "error_margin": 1, "layer_delay": 4})


# ------------------------------------------------------------------------------------------ the task
def _images(n: int, seed: int = 0):
    """Synthetic 28x28 'digits': class c is a bright 4-pixel bar (horizontal for c < 5, vertical otherwise) plus
    pixel noise (as tests/test_diehl_cook.py)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    images = rng.integers(0, 40, (n, 28, 28)).astype(np.uint8)
    for i, c in enumerate(labels):
        k = 5 * (c % 5) + 2
        if c < 5:
            images[i, k:k + 4, 2:26] = 255
        else:
            images[i, 2:26, k:k + 4] = 255
    return images, labels


def _dataset(folder: Path, n_train: int = 600, n_test: int = 200) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for n, seed, prefix in ((n_train, 0, "train"), (n_test, 1, "t10k")):
        images, labels = _images(n, seed)
        write_idx(folder / f"{prefix}-images-idx3-ubyte", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels.astype(np.uint8))
    return folder


def _config(data: Path, **over) -> str:
    base = {"kind": "desire_bp", "name": "dbp", "seed": 1, "data": {"dir": str(data)},
            "network": {"hidden": [128, 64], "lr": 1e-4}, "batch": 16,
            "training": {"epochs": 2, "samples": 400, "validation": 100}, "evaluation": {"test_samples": 200},
            "checkpoint_every": 50, "progress": False}
    base.update(over)
    return json.dumps(base)  # JSON is YAML


def _run(text: str, out: Path, file: str = "dbp.yaml") -> dict:
    kind, config = validate(load_text(text, file))
    return kind.runner(config, {"out": str(out)})


def test_task_learns_a_synthetic_dataset_of_the_same_shape(tmp_path, capsys):
    summary = _run(_config(_dataset(tmp_path / "bars")), tmp_path / "out")
    # ten separable classes, 800 training presentations: chance is 10 % (measured: 100 % validation and test)
    assert summary["test_accuracy"] >= 0.9 and summary["validation_accuracy"] >= 0.9
    assert len(summary["history"]) == 2
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last)["test_accuracy"] == summary["test_accuracy"]


def test_interrupted_training_resumes_exactly(tmp_path, monkeypatch):
    data = _dataset(tmp_path / "bars", n_train=300, n_test=50)
    text = _config(data, training={"epochs": 2, "samples": 64, "validation": 50}, batch=8,
                   evaluation={"test_samples": 50}, checkpoint_every=24)
    whole = _run(text, tmp_path / "whole")
    reference = torch.load(tmp_path / "whole" / "dbp.ckpt", weights_only=True)

    real, calls = task.train_batch, {"n": 0}

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 11:  # after the checkpoint at 88 of 128 samples (epoch end 64, then 64 + 24)
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(task, "train_batch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _run(text, tmp_path / "cut")
    monkeypatch.setattr(task, "train_batch", real)
    assert torch.load(tmp_path / "cut" / "dbp.ckpt", weights_only=True)["position"] == 88
    resumed = _run(text, tmp_path / "cut")
    state = torch.load(tmp_path / "cut" / "dbp.ckpt", weights_only=True)
    for got, want in zip(state["network"]["weights"], reference["network"]["weights"]):
        assert torch.equal(got, want)
    assert torch.equal(state["network"]["rng"], reference["network"]["rng"])
    assert resumed["test_accuracy"] == whole["test_accuracy"]
    drop_time = lambda h: [{k: v for k, v in e.items() if k != "train_seconds"} for e in h]  # noqa: E731
    assert drop_time(resumed["history"]) == drop_time(whole["history"])
    # a different configuration refuses the checkpoint
    with pytest.raises(ConfigError, match="another configuration"):
        _run(_config(data, training={"epochs": 2, "samples": 64, "validation": 50}, batch=4,
                     evaluation={"test_samples": 50}), tmp_path / "cut")


def test_more_epochs_extend_a_finished_run_exactly(tmp_path):
    # the lr schedule lr exp(-decay epoch) does not depend on the total: 2 epochs, then the same config asking for
    # 3, ends with the weights of a straight 3-epoch run
    data = _dataset(tmp_path / "bars", n_train=300, n_test=50)
    config = lambda epochs: _config(data, training={"epochs": epochs, "samples": 64, "validation": 50},  # noqa: E731
                                    batch=8, evaluation={"test_samples": 50})
    straight = _run(config(3), tmp_path / "straight")
    _run(config(2), tmp_path / "extended")
    extended = _run(config(3), tmp_path / "extended")
    a = torch.load(tmp_path / "straight" / "dbp.ckpt", weights_only=True)["network"]["weights"]
    b = torch.load(tmp_path / "extended" / "dbp.ckpt", weights_only=True)["network"]["weights"]
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert extended["test_accuracy"] == straight["test_accuracy"] and len(extended["history"]) == 3


def test_config_errors_name_line_and_key(tmp_path):
    text = ("kind: desire_bp\nnetwork: {hidden: [100], thetta_hid: 0.05}\nbatch: 0\n"
            "training: {epoch: 2}\nnetwork_x: 1\n")
    with pytest.raises(ConfigProblems) as err:
        validate(load_text(text, "dbp.yaml"))
    message = str(err.value)
    assert "dbp.yaml:2" in message and "thetta_hid" in message and "theta_hid" in message
    assert "dbp.yaml:3" in message and "batch" in message
    assert "dbp.yaml:4" in message and "epoch" in message and "epochs" in message
    assert "dbp.yaml:5" in message and "network_x" in message


@pytest.mark.parametrize("name", ["desire_bp.yaml", "desire_bp_paper.yaml"])
def test_bundled_configs_are_valid(name):
    kind, config = load_config(ROOT / "configs" / "perception" / name)
    assert kind.name == "desire_bp"
    p = DesireParams.from_mapping(config["network"])
    assert p.sizes[0] == 784 and p.sizes[-1] == 10 and int(p.steps) == 20


@pytest.mark.skipif(not MNIST.is_dir(), reason="MNIST not in ../shared/data/mnist")
def test_learns_real_mnist_digits(tmp_path):
    # the paper's rule and settings on a 784-300-10 network after 3,000 training images (batch 16, lr 1e-4):
    # measured 85.8 % (seed 0; 83.6 % with seed 1) on the first 500 test images; chance is 10 %
    text = json.dumps({"kind": "desire_bp", "name": "mnist_small", "seed": 0, "data": {"dir": str(MNIST)},
                       "network": {"hidden": [300], "lr": 1e-4}, "batch": 16,
                       "training": {"epochs": 1, "samples": 3000, "validation": 0},
                       "evaluation": {"test_samples": 500}, "progress": False})
    summary = _run(text, tmp_path)
    assert summary["test_accuracy"] >= 0.75


@needs_sigint
def test_ctrl_c_writes_a_checkpoint_where_it_stops_and_prints_how_to_resume(tmp_path, monkeypatch, capsys):
    from braincore.cli import main

    data = _dataset(tmp_path / "bars", n_train=300, n_test=50)
    text = _config(data, training={"epochs": 2, "samples": 64, "validation": 50}, batch=8,
                   evaluation={"test_samples": 50}, checkpoint_every=24)
    whole = _run(text, tmp_path / "whole")
    reference = torch.load(tmp_path / "whole" / "dbp.ckpt", weights_only=True)
    (tmp_path / "dbp.yaml").write_text(text)
    monkeypatch.chdir(tmp_path)
    drop_time = lambda h: [{k: v for k, v in e.items() if k != "train_seconds"} for e in h]  # noqa: E731
    cases = [  # Ctrl-C in the 12th training batch; in the validation after epoch 1 (stops at once)
        ("train_batch", press_ctrl_c_during(task.train_batch, 12), "training sample 96/128", 96),
        ("_score", press_ctrl_c_during(task._score, 1, lambda *a, **k: a[3] == "validation"),
         "the validation after epoch 1 (training sample 64/128; redone on resume)", 64)]
    for name, patched, where, position in cases:
        real = getattr(task, name)
        monkeypatch.setattr(task, name, patched)
        out = f"cut_{name}"
        last = interrupted_cli_run(["run", "dbp.yaml", "--out", out], capsys)
        assert resume_message(where, f"{out}/dbp.ckpt", f"braincore run dbp.yaml --out {out}").match(last), last
        assert torch.load(tmp_path / out / "dbp.ckpt", weights_only=True)["position"] == position
        monkeypatch.setattr(task, name, real)
        assert main(["run", "dbp.yaml", "--out", out]) == 0
        state = torch.load(tmp_path / out / "dbp.ckpt", weights_only=True)
        for got, want in zip(state["network"]["weights"], reference["network"]["weights"]):
            assert torch.equal(got, want)
        resumed = json.loads((tmp_path / out / "dbp.json").read_text())
        assert resumed["test_accuracy"] == whole["test_accuracy"]
        assert drop_time(resumed["history"]) == drop_time(whole["history"])  # the epoch-1 validation was redone
