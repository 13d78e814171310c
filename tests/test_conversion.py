"""ANN-to-SNN conversion (braincore.training.conversion) and the ``ann_to_snn`` task:

- an IF neuron with reset by subtraction under a constant input fires ``floor(T c + v0)`` spikes (clipped to
  ``[0, T]``), with ``v0 = 1/2`` the QCFS value with ``L = T``; the QCFS activation against its closed form;
- threshold balancing picks the percentile (numpy's) and the weight normalisation keeps the ANN's function;
- the converted network's firing rates approach the normalised ANN activations as ``1/T``;
- the converted network built as an Assembly runs in the Simulator with the same spikes (float64, exact);
- the task: YAML mistakes at file, line and key; runs end to end; an interrupted run resumes exactly.
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
from braincore.training import conversion as cv
from tasks.perception import conversion as task
from tiny_data import config_with, killed_at_step, tiny_idx

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs" / "perception"


def _identity_snn(n: int, v0: float) -> cv.ConvertedSNN:
    return cv.ConvertedSNN([torch.eye(n, dtype=torch.float64)], [torch.zeros(n, dtype=torch.float64)], [1.0], v0)


# ------------------------------------------------------------------------------------------ closed forms
@pytest.mark.parametrize("v0", [0.0, 0.5])
@pytest.mark.parametrize("steps", [1, 3, 16, 100])
def test_if_with_subtractive_reset_counts_floor_of_t_c_plus_v0(v0, steps):
    """Dyadic currents k/64 add up exactly in float64, so the count must equal the closed form exactly."""
    c = torch.tensor([k / 64 for k in range(-16, 96)], dtype=torch.float64)
    run = cv.simulate(_identity_snn(len(c), v0), c.reshape(1, -1), steps)
    counts = run["counts"][0][0].tolist()
    expected = [cv.if_spike_count(float(ci), steps, 1.0, v0) for ci in c]
    assert counts == expected
    assert expected == [min(max(math.floor(steps * float(ci) + v0), 0), steps) for ci in c]
    # reset by subtraction conserves charge: v(T) = v0 + T c - N for inputs that never go below 0
    inside = (c >= 0) & (c <= 1)
    torch.testing.assert_close(run["membranes"][0][0][inside], v0 + steps * c[inside] - run["counts"][0][0][inside],
                               rtol=0, atol=1e-12)
    if v0 == 0.5:   # the rate is c rounded to the grid 1/T: the QCFS activation with lambda = 1, L = T
        assert counts == [round(steps * cv.qcfs_value(float(ci), 1.0, steps)) for ci in c]   # (the level index)


def test_qcfs_activation_matches_its_closed_form_and_passes_gradients_straight_through():
    act = cv.QCFS(levels=4, lam=2.0).double()
    x = torch.linspace(-1.0, 3.0, 81, dtype=torch.float64, requires_grad=True)
    y = act(x)
    assert y.detach().tolist() == [cv.qcfs_value(float(v), 2.0, 4) for v in x.detach()]
    assert cv.qcfs_value(0.3, 2.0, 4) == 0.5 and cv.qcfs_value(0.24, 2.0, 4) == 0.0 and cv.qcfs_value(9, 2.0, 4) == 2
    y.sum().backward()
    inside = (x >= 0) & (x <= 2)                    # torch's clamp passes the gradient at its bounds
    assert torch.all(x.grad[inside] == 1) and torch.all(x.grad[~inside] == 0)    # d clip / dx, floor transparent
    assert act.lam.grad is not None and act.lam.grad != 0


# ------------------------------------------------------------------------------------------ balancing
def test_balancing_picks_the_percentile_and_normalisation_keeps_the_function():
    torch.manual_seed(0)
    model = cv.ReLUNet([12, 9, 7, 3]).double()
    x = torch.rand(400, 12, dtype=torch.float64)
    acts = model.activations(x)
    for p in (99.9, 99.0, 100.0):
        scales = cv.layer_scales(model, x, p)
        assert scales == pytest.approx([np.percentile(a.detach().numpy(), p) for a in acts], rel=1e-12)
    snn = cv.convert(model, x, 99.9)
    assert snn.v0 == 0.0 and snn.sizes == [12, 9, 7, 3]
    a = x                                            # the normalised ANN: a_l / lambda_l = relu(W' a_{l-1} + b')
    for i, (w, b) in enumerate(zip(snn.weights, snn.biases)):
        z = a @ w.t() + b
        a = torch.relu(z) if i < len(snn.weights) - 1 else z
        torch.testing.assert_close(a, acts[i].detach() / snn.scales[i], rtol=1e-12, atol=1e-12)
    qcfs = cv.ReLUNet([12, 9, 3], "qcfs", levels=4, lam=1.5)
    snn = cv.convert(qcfs, x.float(), 99.9)
    assert snn.scales[0] == 1.5 and snn.v0 == 0.5     # QCFS: the trained lambda; the read-out: the percentile
    with pytest.raises(ValueError, match="percentile"):
        cv.layer_scales(model, x, 0.0)


def test_firing_rates_approach_the_normalised_activations_as_one_over_t():
    """Layer 1's input is constant, so its rate is the clipped input within 1/T (closed form above). Deeper
    layers receive the previous layer's spikes, whose rate error is itself O(1/T): summing the update over T
    steps gives r_l = W' r_{l-1} + b' - (v(T) - v0)/T while v stays bounded, so each layer adds O(1/T) to the
    error propagated through W'. Checked: the mean error at T = 2048 is below 10/T, and at least 8x smaller than
    at T = 64 (1/T predicts 32x; the slack covers the start-up transient of deeper layers)."""
    torch.manual_seed(2)
    model = cv.ReLUNet([20, 16, 12, 4]).double()
    x = torch.rand(30, 20, dtype=torch.float64)
    snn = cv.convert(model, x, 100.0)                # the maximum: no activation on these images is clipped
    target = [a.detach() / s for a, s in zip(model.activations(x), snn.scales)][:-1]
    errors = {}
    for steps in (64, 2048):
        run = cv.simulate(snn, x, steps)
        errors[steps] = [float((c / steps - t).abs().mean()) for c, t in zip(run["counts"], target)]
        first = (run["counts"][0] / steps - target[0]).abs().max()
        assert first <= 1.0 / steps + 1e-12
    for short, long in zip(errors[64], errors[2048]):
        assert long < 10.0 / 2048 and long * 8 < short


def test_the_curve_and_its_operation_counts_equal_a_recount_from_the_rasters():
    """Accuracy after t steps = argmax of the read-out's integrated input after t steps; spikes and synaptic
    operations (spikes x fan-out, the read-out's spikes reach nothing) recounted from the recorded rasters."""
    torch.manual_seed(4)
    model = cv.ReLUNet([16, 10, 8, 4]).double()
    x, labels = torch.rand(24, 16, dtype=torch.float64), torch.randint(0, 4, (24,))
    snn = cv.convert(model, x, 99.0)
    curve = cv.accuracy_curve(snn, [(x[:10], labels[:10]), (x[10:], labels[10:])], 12)
    run = cv.simulate(snn, x, 12, record=True)
    integrated = torch.zeros(24, 4, dtype=torch.float64)
    for t in range(12):
        hidden = run["rasters"][1][t]
        integrated += hidden @ snn.weights[2].t() + snn.biases[2]
        assert curve["accuracy"][t] == pytest.approx(float((integrated.argmax(1) == labels).double().mean()))
        upto = [r[:t + 1].sum() / 24 for r in run["rasters"]]
        assert curve["spikes_at"][t] == pytest.approx(float(sum(upto)), rel=1e-12)
        assert curve["synops_at"][t] == pytest.approx(float(upto[0] * 8 + upto[1] * 4), rel=1e-12)
    assert curve["samples"] == 24 and curve["ann_macs_per_sample"] == 16 * 10 + 10 * 8 + 8 * 4
    assert curve["input_macs_per_sample"] == 12 * 16 * 10 and curve["synops_per_sample"] == curve["synops_at"][-1]


# ------------------------------------------------------------------------------------------ the simulator
@pytest.mark.parametrize("activation", ["relu", "qcfs"])
def test_the_assembly_in_the_simulator_fires_the_same_spikes(activation):
    """Both run in float64 with the same additions per step (one current per neuron, then subtract 1), so the
    rasters must agree exactly once the simulator's one-step delay per layer is undone (to_assembly docstring)."""
    torch.manual_seed(3)
    model = cv.ReLUNet([16, 10, 8, 4], activation, levels=4, lam=1.0).double()
    x = torch.rand(50, 16, dtype=torch.float64)
    snn = cv.convert(model, x, 99.0)
    steps = 20
    ref = cv.simulate(snn, x[:2], steps, record=True)
    for b in range(2):
        rasters = cv.simulate_assembly(cv.to_assembly(snn, x[b], steps), snn.sizes, steps)
        for layer, raster in enumerate(rasters):
            assert raster.sum() > 0, f"layer {layer + 1} is silent: the comparison would be vacuous"
            assert torch.equal(raster, ref["rasters"][layer][:, b])


# ------------------------------------------------------------------------------------------ the task
def _small(data: Path, name: str = "mnist_conversion", **overrides) -> dict:
    settings = dict(data__dir=str(data), training__epochs=3, training__validation=50, training__batch=25,
                    optimizer__lr=3e-3, checkpoint_every=4, conversion__balance_samples=100, conversion__steps=32,
                    conversion__report=[1, 4, 32], evaluation__batch=40)
    config = config_with(CONFIGS / f"{name}.yaml", **{**settings, **overrides})
    config["network"]["hidden"] = [32, 32]
    return config


@pytest.mark.parametrize("name", ["mnist_conversion", "mnist_conversion_qcfs"])
def test_bundled_configs_validate(name):
    kind, config = load_config(CONFIGS / f"{name}.yaml")
    assert kind.name == "ann_to_snn" and config["name"] == name


def test_yaml_mistakes_name_file_line_and_key():
    text = """kind: ann_to_snn
network:
  activation: relu
  levels: 4
  hiden: [10]
conversion:
  percentile: 101
  steps: 8
  report: [1, 16]
  v0: 1.5
optimizer: {kind: adam, beta1: 1.2}
"""
    with pytest.raises(ConfigProblems) as err:
        validate(load_text(text, "bad.yaml"))
    text = str(err.value)
    for expected in [
        "bad.yaml:4: network.levels: only the qcfs activation takes this key",
        "bad.yaml:5: network.hiden: unknown key; did you mean 'hidden'?",
        "bad.yaml:7: conversion.percentile: must be <= 100, got 101",
        "bad.yaml:9: conversion.report[1]: 16 exceeds conversion.steps = 8",
        "bad.yaml:10: conversion.v0: must be < 1 (a threshold), got 1.5",
        "bad.yaml:11: optimizer.beta1: must be < 1, got 1.2",
    ]:
        assert expected in text, text


@pytest.mark.parametrize("name", ["mnist_conversion", "mnist_conversion_qcfs"])
def test_the_configs_run_end_to_end_and_the_snn_reaches_the_ann(name, tmp_path, capsys):
    data = tiny_idx(tmp_path / "idx")
    summary = task.run(_small(data, name, training__epochs=6), {"out": str(tmp_path / "out"), "no_plot": True})
    assert summary["sizes"] == [784, 32, 32, 10] and summary["train_samples"] == 250
    assert summary["ann_test_accuracy"] >= 0.8, summary                     # chance 0.1
    # 100 test images: at T = 32 the SNN is within 10 points of its ANN (rate error O(1/T) per layer)
    assert summary["snn_test_accuracy"]["32"] >= summary["ann_test_accuracy"] - 0.1, summary
    assert len(summary["snn_test_curve"]) == 32 and summary["plot"] is None
    assert 0 < summary["spikes_per_sample"]["4"] < summary["spikes_per_sample"]["32"]
    assert summary["synops_per_sample"]["32"] > 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last)["snn_test_accuracy"] == summary["snn_test_accuracy"]


def test_an_interrupted_run_resumes_exactly(tmp_path, monkeypatch):
    data = tiny_idx(tmp_path / "idx", n_train=200, n_test=50)
    config = _small(data)                             # 150 samples: 6 batches per epoch, checkpoints every 4
    options = {"no_plot": True}
    straight = task.run(copy.deepcopy(config), {"out": str(tmp_path / "a"), **options})
    with killed_at_step(monkeypatch, task.Trainer, 12), pytest.raises(KeyboardInterrupt):
        task.run(copy.deepcopy(config), {"out": str(tmp_path / "b"), **options})
    ckpt = tmp_path / "b" / "mnist_conversion.ckpt"
    assert load_checkpoint(ckpt)["position"] == {"epoch": 1, "batch": 4, "step": 10}
    resumed = task.run(copy.deepcopy(config), {"out": str(tmp_path / "b"), **options})
    a, b = load_checkpoint(tmp_path / "a" / "mnist_conversion.ckpt")["model"], load_checkpoint(ckpt)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["steps"] == straight["steps"] == 18
    for key in ("ann_test_accuracy", "snn_test_curve", "scales", "spikes_per_sample"):
        assert resumed[key] == straight[key]


@pytest.mark.slow
def test_real_mnist_converts(mnist_dir, tmp_path):
    config = config_with(CONFIGS / "mnist_conversion.yaml", data__dir=str(mnist_dir), training__epochs=2,
                         training__samples=10000, evaluation__validation_samples=1000,
                         evaluation__test_samples=1000, conversion__steps=64,
                         conversion__report=[8, 64])
    summary = task.run(config, {"out": str(tmp_path), "no_plot": True})
    assert summary["snn_test_accuracy"]["64"] >= 0.9, summary
