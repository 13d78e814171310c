"""Spiking predictive coding: the rules (braincore.plasticity.predictive_coding), the network
(braincore.networks.spiking_pc) and the task (tasks.perception.predictive_coding).

The rules are checked against their closed forms on hand-made tensors, the LIF units against the closed form of
their Euler recurrences, the settling against its purpose (the prediction error falls), the task against its
protocol (config errors, exact resumption, split-MNIST bookkeeping) and learning against chance (synthetic
bars always; real MNIST when ../shared/data/mnist is there).
"""
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from braincore.config import ConfigProblems, load_config, load_text, validate
from braincore.data import write_idx
from braincore.networks.spiking_pc import SpikingPCNetwork, SpikingPCParams, lif_step
from braincore.plasticity import predictive_coding as pc
from tasks.perception import predictive_coding as task

from ctrl_c import interrupted_cli_run, needs_sigint, press_ctrl_c_during, resume_message

ROOT = Path(__file__).resolve().parent.parent
MNIST = ROOT.parent / "shared" / "data" / "mnist"


# ------------------------------------------------------------------------------------------ the rules
def test_error_units_are_target_minus_prediction():
    target = torch.tensor([[1.0, 0.0, 0.5], [0.2, 0.3, 0.0]])
    w = torch.tensor([[1.0, 0.0], [0.5, -1.0], [0.0, 2.0]])
    pre = torch.tensor([[0.5, 0.25], [1.0, 0.0]])
    mu = pc.predict(w, pre)
    assert torch.allclose(mu, torch.tensor([[0.5, 0.0, 0.5], [1.0, 0.5, 0.0]]))
    e = pc.error_units(target, mu)
    assert torch.allclose(e, torch.tensor([[0.5, 0.0, 0.0], [-0.8, -0.2, 0.0]]))
    masked = pc.error_units(target, mu, mask=torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]]))
    assert torch.allclose(masked, torch.tensor([[0.5, 0.0, 0.0], [0.0, 0.0, 0.0]]))


def test_local_update_is_the_batch_averaged_outer_product_times_the_rate():
    g = torch.Generator().manual_seed(0)
    e, pre = torch.randn(4, 3, generator=g), torch.rand(4, 5, generator=g)
    dw = pc.local_update(e, pre, 0.1)
    closed = sum(torch.outer(e[b], pre[b]) for b in range(4)) * 0.1 / 4
    torch.testing.assert_close(dw, closed)
    torch.testing.assert_close(pc.error_weight_update(dw, 2.0), 2.0 * closed.t())
    # a single sample: exactly rate * e pre^T
    torch.testing.assert_close(pc.local_update(e[:1], pre[:1], 0.5), 0.5 * torch.outer(e[0], pre[0]))


def test_zero_error_leaves_weights_unchanged():
    pre = torch.rand(6, 7)
    assert torch.count_nonzero(pc.local_update(torch.zeros(6, 3), pre, 0.3)) == 0
    # in the network: blank images and silent hidden units (E = 0: no error reaches them) give zero updates
    params = SpikingPCParams.from_mapping({"steps": 12, "learn_steps": 12, "read_steps": 5})
    net = SpikingPCNetwork([16, 8, 3], params, seed=0)
    for e in net.E:
        e.zero_()
    before = [w.clone() for w in net.W]
    net.train_batch(torch.zeros(5, 4, 4, dtype=torch.uint8), torch.tensor([0, 1, 2, 0, 1]))
    for w0, w1 in zip(before, net.W):
        assert torch.equal(w0, w1)


def test_error_drive_and_trace():
    own, below = torch.tensor([[0.5, -1.0]]), torch.tensor([[1.0, 2.0, 0.0]])
    e_w = torch.tensor([[1.0, 0.0, 3.0], [0.0, 1.0, 0.0]])  # [n_pre=2, n_post=3]
    # -own + below E^T = [-0.5, 1] + [1, 2]
    torch.testing.assert_close(pc.error_drive(own, below, e_w), torch.tensor([[0.5, 3.0]]))
    a = torch.zeros(1, 1)
    for _ in range(50):
        a = pc.trace_step(a, torch.ones(1, 1), 1.0, 5.0)
    assert abs(float(a) - (1 - 0.8 ** 50)) < 1e-6  # a_n = 1 - (1 - dt/tau)^n under spikes at every step


# ------------------------------------------------------------------------------------------ LIF units
def test_lif_current_and_membrane_follow_their_euler_closed_forms():
    dt, tau_j, kappa, tau_m, gamma, R = 1.0, 4.0, 0.5, 10.0, 1.0, 2.0
    kw = dict(dt=dt, tau_j=tau_j, kappa_j=kappa, tau_m=tau_m, gamma_m=gamma, R_m=R, v_thr=1e9, t_ref=0.0)
    drive = torch.tensor([[0.3]], dtype=torch.float64)
    j = v = ref = torch.zeros(1, 1, dtype=torch.float64)
    a_j, a_v = 1 - dt * kappa / tau_j, 1 - dt * gamma / tau_m
    for n in range(1, 40):
        j, v, ref, s = lif_step(j, v, ref, drive, **kw)
        # j_n = (I / kappa) (1 - a_j^n);  v_n = a_v v_{n-1} + (dt R / tau_m) j_n, summed in closed form
        assert abs(float(j) - 0.3 / kappa * (1 - a_j ** n)) < 1e-12
        closed_v = sum(a_v ** (n - k) * dt * R / tau_m * 0.3 / kappa * (1 - a_j ** k) for k in range(1, n + 1))
        assert abs(float(v) - closed_v) < 1e-12 and float(s) == 0.0


def test_lif_fires_periodically_at_the_closed_form_time_under_a_constant_current():
    # tau_j = inf holds j: v_n = (R j / gamma)(1 - a^n) crosses v_thr first at n* = ceil(log(1 - thr g/(R j)) / log a),
    # resets to 0 and repeats: spikes at n*, 2 n*, ...
    dt, tau_m, gamma, R, thr, jc = 1.0, 8.0, 1.0, 1.0, 0.4, 0.7
    kw = dict(dt=dt, tau_j=math.inf, kappa_j=0.0, tau_m=tau_m, gamma_m=gamma, R_m=R, v_thr=thr, t_ref=0.0)
    a = 1 - dt * gamma / tau_m
    n_star = math.ceil(math.log(1 - thr * gamma / (R * jc)) / math.log(a))
    j, v, ref = torch.full((1, 1), jc, dtype=torch.float64), torch.zeros(1, 1, dtype=torch.float64), \
        torch.zeros(1, 1, dtype=torch.float64)
    times = []
    for n in range(1, 5 * n_star + 1):
        j, v, ref, s = lif_step(j, v, ref, torch.zeros(1, 1, dtype=torch.float64), **kw)
        if float(s):
            times.append(n)
    assert times == [n_star * k for k in range(1, 6)]


# ------------------------------------------------------------------------------------------ settling
def test_free_settling_is_a_feedforward_pass_in_spikes():
    # binary pixels (0 / 255) spike at every step (1000 Hz x 1 ms): a fixed input; learning off
    g = torch.Generator().manual_seed(3)
    images = (torch.rand(8, 64, generator=g) < 0.3).to(torch.uint8) * 255
    net = SpikingPCNetwork([64, 40, 4], SpikingPCParams.from_mapping({"steps": 200, "w_init": 1.0}), seed=1,
                           dtype=torch.float64)
    w0 = [w.clone() for w in net.W]
    free = net.settle(images, None, record=True)
    # label free and value = drive: no error anywhere, at every step (j stays 0)
    assert max(free["energy"]) == 0.0
    # each hidden unit fires at its prediction clip(W a, 0, 1) spikes per step (the input trace reaches 1 - 0.8^t;
    # the leak -v/tau_m costs at most v_thr dt / tau_m = 0.05 spike per step; Poisson-free input): over 200 steps
    # each count lies between 200 x clip(W x, 0, 1) - 0.05 x 200 and that value (measured: -8.8 .. 0)
    x = (images.double() / 255.0)
    expected = (x @ net.W[0].t()).clamp(0.0, 1.0) * 200
    deficit = expected - free["counts"][0]
    assert float(deficit.min()) >= -0.5 and float(deficit.max()) <= 0.05 * 200
    assert float(expected.std()) > 20  # the units span a range of rates, not all silent or saturated
    assert all(torch.equal(a, b) for a, b in zip(w0, net.W))


def test_clamped_settling_descends_the_prediction_energy_towards_the_label():
    g = torch.Generator().manual_seed(3)
    images = (torch.rand(8, 64, generator=g) < 0.3).to(torch.uint8) * 255
    labels = torch.arange(8) % 4
    # a strong feedback gain (beta 1, E = W^T) makes the label's pull visible; with a linear label layer the
    # dynamics are a descent of the energy sum_l 0.5 ||e_l||^2
    params = SpikingPCParams.from_mapping({"steps": 80, "w_init": 0.5, "beta": 1.0, "e_init": "transpose",
                                           "read_steps": 10, "learn_steps": 0, "label_output": "linear"})
    net = SpikingPCNetwork([64, 40, 4], params, seed=1, dtype=torch.float64)
    assert torch.equal(net.E[1], net.W[1].t())
    clamped = net.settle(images, labels, record=True)
    energy = clamped["energy"]
    # once the input trace has built up (the peak), inference lowers the total error (measured 5.6 -> 1.6)
    peak = int(np.argmax(energy))
    assert np.mean(energy[-10:]) < 0.5 * energy[peak]
    # and the label prediction ends closer to the clamped label than the free network's answer
    target = torch.nn.functional.one_hot(labels, 4).double()
    free = net.settle(images, None)["output"]
    # (measured squared errors 1.0 clamped vs 428 free: with w_init 0.5 the untrained free answer is far off)
    assert float(((target - clamped["output"]) ** 2).sum()) < 0.05 * float(((target - free) ** 2).sum())
    # a softmax label layer (error y - softmax = the cross-entropy gradient): the clamped label raises its own
    # probability above the free network's (measured mean 0.22 -> 0.79)
    net.p = SpikingPCParams.from_mapping({**{k: getattr(params, k) for k in ("steps", "read_steps", "learn_steps",
                                                                             "beta", "e_init")},
                                          "label_output": "softmax"})
    rows = torch.arange(8)
    p_free = net.settle(images, None)["output"][rows, labels]
    p_clamped = net.settle(images, labels)["output"][rows, labels]
    assert float(p_clamped.mean()) > float(p_free.mean()) + 0.3


# ------------------------------------------------------------------------------------------ the task
def _images(n: int, seed: int = 0):
    """Synthetic 28x28 'digits': class c is a bright 4-pixel-wide bar (horizontal for c < 5 at row 5c + 2,
    vertical for c >= 5 at column 5(c - 5) + 2), with pixel noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    images = rng.integers(0, 40, (n, 28, 28)).astype(np.uint8)
    for i, c in enumerate(labels):
        k = 5 * (c % 5) + 2
        if c < 5:
            images[i, k:k + 4, 2:26] = 255
        else:
            images[i, 2:26, k:k + 4] = 255
    return images, labels.astype(np.uint8)


def _dataset(folder: Path, n_train: int = 600, n_test: int = 200) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for n, seed, prefix in ((n_train, 0, "train"), (n_test, 1, "t10k")):
        images, labels = _images(n, seed)
        write_idx(folder / f"{prefix}-images-idx3-ubyte", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels)
    return folder


def _config(data: Path, **over) -> str:
    base = {"kind": "predictive_coding", "name": "pc", "seed": 1, "data": {"dir": str(data)}, "layers": [64],
            "network": {"steps": 20}, "batch": 20, "training": {"epochs": 1, "samples": 400, "validation": 100},
            "evaluation": {"test_samples": 200}, "checkpoint_every": 100, "progress": False}
    base.update(over)
    return json.dumps(base)  # JSON is YAML


def _run(text: str, out: Path, file: str = "pc.yaml") -> dict:
    kind, config = validate(load_text(text, file))
    return kind.runner(config, {"out": str(out), "no_plot": True})


def test_task_learns_a_synthetic_dataset_of_the_same_shape(tmp_path, capsys):
    data = _dataset(tmp_path / "bars")
    summary = _run(_config(data, training={"epochs": 2, "samples": 500, "validation": 100}), tmp_path / "out")
    # ten separable classes, chance 10 %: measured 100 % validation and test after 2 x 500 samples
    assert summary["test_accuracy"] >= 0.8 and summary["validation_accuracy"] >= 0.8
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last)["test_accuracy"] == summary["test_accuracy"]


def _split_run_and_its_checkpoint(tmp_path):
    """A two-task split config with checkpoints every 30 samples, the summary of its uninterrupted run and that
    run's checkpoint."""
    data = _dataset(tmp_path / "bars", n_train=300, n_test=100)
    text = _config(data, mode="split", split={"tasks": [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]], "epochs": 2,
                                              "samples": 40}, training={"validation": 50}, checkpoint_every=30,
                   evaluation={"test_samples": 100})
    whole = _run(text, tmp_path / "whole")
    return text, whole, torch.load(tmp_path / "whole" / "pc.ckpt", weights_only=True)


def test_interrupted_split_training_resumes_exactly(tmp_path, monkeypatch):
    text, whole, reference = _split_run_and_its_checkpoint(tmp_path)

    real, calls = task.train_step, {"n": 0}

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 7:  # 160 samples in batches of 20: stop inside the second task, after a checkpoint
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(task, "train_step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _run(text, tmp_path / "cut")
    monkeypatch.setattr(task, "train_step", real)
    cut = torch.load(tmp_path / "cut" / "pc.ckpt", weights_only=True)
    assert 0 < cut["position"] < 160 and len(json.loads(cut["results"])["after_task"]) == 1
    resumed = _run(text, tmp_path / "cut")
    state = torch.load(tmp_path / "cut" / "pc.ckpt", weights_only=True)
    mine, theirs = state["network"], reference["network"]
    for a, b in zip(mine["W"] + mine["E"], theirs["W"] + theirs["E"]):
        assert torch.equal(a, b)
    for name, tensor in reference["baseline"]["model"].items():
        assert torch.equal(state["baseline"]["model"][name], tensor)
    for key in ("spiking_pc", "backprop", "test_accuracy"):
        assert resumed[key] == whole[key]


def test_split_bookkeeping_forgetting_and_task_accuracies():
    per, mean = task.forgetting([[0.9, 0.1, 0.0], [0.8, 0.95, 0.2], [0.5, 0.7, 0.99]])
    assert per == pytest.approx([0.4, 0.25]) and mean == pytest.approx(0.325)
    scores = torch.tensor([[0.1, 0.9, 5.0], [0.8, 0.2, 0.0], [0.0, 0.3, 0.9], [0.0, 0.9, 0.3]])
    labels = torch.tensor([0, 0, 2, 1])
    aware, incremental = task.task_accuracies(scores, labels, [[0, 1], [2]])
    # task {0, 1}: rows 0, 1, 3; within the task row 0 says 1 (wrong), rows 1 and 3 right; over all classes
    # row 0 says 2 (wrong); task {2}: always right when restricted
    assert aware == pytest.approx([2 / 3, 1.0]) and incremental == pytest.approx([2 / 3, 1.0])


def test_config_errors_name_line_and_key(tmp_path):
    text = ("kind: predictive_coding\nnetwork: {steps: 20, tau_mm: 5 ms}\nmode: splitt\n"
            "training: {epoch: 2}\nnetwork_x: 1\n")
    with pytest.raises(ConfigProblems) as err:
        validate(load_text(text, "pc.yaml"))
    message = str(err.value)
    assert "pc.yaml:2" in message and "tau_mm" in message and "tau_m" in message
    assert "pc.yaml:3" in message and "splitt" in message
    assert "pc.yaml:4" in message and "epoch" in message and "epochs" in message
    assert "pc.yaml:5" in message and "network_x" in message


def test_bundled_configs_are_valid():
    kind, config = load_config(ROOT / "configs" / "perception" / "predictive_coding.yaml")
    assert kind.name == "predictive_coding" and config["mode"] == "standard"
    for name in ("predictive_coding_split.yaml", "predictive_coding_split_adam.yaml"):
        kind, config = load_config(ROOT / "configs" / "perception" / name)
        assert config["mode"] == "split" and config["split"]["tasks"] == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    assert config["baseline"]["optimizer"] == "adam"


def test_network_state_round_trips():
    net = SpikingPCNetwork([10, 6, 3], seed=4)
    other = SpikingPCNetwork([10, 6, 3], seed=9)
    other.load_state_dict(net.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(net.W + net.E, other.W + other.E))
    assert torch.equal(torch.rand(3, generator=net.rng), torch.rand(3, generator=other.rng))
    with pytest.raises(ValueError, match="do not fit"):
        SpikingPCNetwork([10, 5, 3]).load_state_dict(net.state_dict())


@pytest.mark.skipif(not MNIST.is_dir(), reason="MNIST not in ../shared/data/mnist")
def test_learns_real_mnist_digits(tmp_path):
    # 784-200-10 after 3,000 training images (one pass, ~4 s): must clear 70 % on 1,000 test images
    # (measured: 83.5 % with this seed, 81.4 and 83.2 % with seeds 1 and 2; chance is 10 %)
    text = json.dumps({"kind": "predictive_coding", "name": "mnist_small", "seed": 0, "data": {"dir": str(MNIST)},
                       "layers": [200], "training": {"epochs": 1, "samples": 3000, "validation": 0},
                       "baseline": {"enabled": False}, "evaluation": {"test_samples": 1000}, "progress": False})
    summary = _run(text, tmp_path)
    assert summary["test_accuracy"] >= 0.70


@needs_sigint
def test_ctrl_c_writes_a_checkpoint_where_it_stops_and_prints_how_to_resume(tmp_path, monkeypatch, capsys):
    from braincore.cli import main

    text, whole, reference = _split_run_and_its_checkpoint(tmp_path)
    (tmp_path / "pc.yaml").write_text(text)
    monkeypatch.chdir(tmp_path)
    cases = [  # Ctrl-C in the 3rd training batch of 20; in the evaluation after task 1 (stops at once)
        ("train_step", press_ctrl_c_during(task.train_step, 3), "training sample 60/160", 60),
        ("outputs", press_ctrl_c_during(task.outputs, 1),
         "the evaluation after task 1 (training sample 80/160; redone on resume)", 80)]
    for name, patched, where, position in cases:
        real = getattr(task, name)
        monkeypatch.setattr(task, name, patched)
        out = f"cut_{name}"
        last = interrupted_cli_run(["run", "pc.yaml", "--out", out, "--no-plot"], capsys)
        assert resume_message(where, f"{out}/pc.ckpt", f"braincore run pc.yaml --out {out}").match(last), last
        cut = torch.load(tmp_path / out / "pc.ckpt", weights_only=True)
        assert cut["position"] == position and json.loads(cut["results"])["after_task"] == []
        monkeypatch.setattr(task, name, real)
        assert main(["run", "pc.yaml", "--out", out, "--no-plot"]) == 0
        state = torch.load(tmp_path / out / "pc.ckpt", weights_only=True)
        for a, b in zip(state["network"]["W"] + state["network"]["E"],
                        reference["network"]["W"] + reference["network"]["E"]):
            assert torch.equal(a, b)
        resumed = json.loads((tmp_path / out / "pc.json").read_text())
        for key in ("spiking_pc", "backprop", "test_accuracy"):
            assert resumed[key] == whole[key]
