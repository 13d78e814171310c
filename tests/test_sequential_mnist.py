"""Sequential and permuted sequential MNIST (issue 19 part 2, Yin, Corradi & Bohté 2021) in the
``spiking_classifier`` task, and the efficiency counts every perception row reports:

- the ``pixels`` encoder: one pixel per step in raster order, or in one fixed permutation drawn from its seed,
  the same for every batch (training and test);
- the non-spiking layer kinds ``rnn``, ``gru``, ``lstm`` (:class:`RecurrentBaseline`): shapes, the LSTM against a
  step-by-step implementation of its equations, the MAC count's closed form, wrong keys reported at file, line
  and key;
- :mod:`braincore.training.efficiency`: spikes, synaptic operations and MACs against hand-computed closed forms
  on tiny networks with fixed spikes, and on a real LIF layer whose spikes copy its input;
- the bundled configs on a small 8 x 8 IDX set (64 steps, not 784): they learn, print the efficiency record,
  and the LSTM config resumes exactly after a kill. The 784-step run is ``slow``.
"""
import copy
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from braincore.checkpoint import load_checkpoint
from braincore.config import ConfigProblems, load_config, load_text, validate
from braincore.data.idx import write_idx
from braincore.training import efficiency as eff
from braincore.training.baselines import RecurrentBaseline
from braincore.training.layers import LeakyReadout, LIFLayer
from braincore.training.models import SpikingClassifier, build_classifier, build_layer
from tasks.perception import surrogate as task
from tiny_data import config_with, killed_at_step, tiny_idx

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs" / "perception"
NAMES = ["smnist_srnn", "psmnist_srnn", "psmnist_lstm"]


def _encoder(**enc) -> dict:
    base = {"steps": None, "gain": 1.0, "permutation": None, "max_rate": 100.0, "tau": 5.0, "threshold": 0.01,
            "linear": False, "normalize": None}
    return {**base, **enc}


# ------------------------------------------------------------------------------------------ the encoder
@pytest.mark.parametrize("name", NAMES)
def test_bundled_configs_validate(name):
    kind, config = load_config(CONFIGS / f"{name}.yaml")
    assert kind.name == "spiking_classifier" and config["name"] == name
    assert config["data"] == {**config["data"], "source": "idx", "name": "mnist", "dir": None}
    assert config["encoder"]["kind"] == "pixels"
    assert config["encoder"]["permutation"] == (None if name == "smnist_srnn" else 0)


def test_pixels_in_raster_order_one_per_step():
    images = torch.randint(0, 256, (3, 28, 28), dtype=torch.uint8)
    transform, n_inputs = task.make_transform(_encoder(kind="pixels", gain=2.0), 1.0)
    x = transform(images, None)
    assert x.shape == (784, 3, 1) and n_inputs((28, 28)) == 1
    torch.testing.assert_close(x[:, :, 0], 2.0 * images.reshape(3, 784).t().float() / 255)   # x[t] = pixel t
    assert task.pixel_order(None, 784) is None


def test_a_permutation_is_one_fixed_order_from_its_seed():
    images = torch.randint(0, 256, (5, 28, 28), dtype=torch.uint8)
    transform, _ = task.make_transform(_encoder(kind="pixels", permutation=3), 1.0)
    order = np.random.default_rng(3).permutation(784)              # the documented definition
    assert torch.equal(task.pixel_order(3, 784), torch.as_tensor(order))
    x = transform(images, None)
    flat = images.reshape(5, 784).float() / 255
    for t in (0, 1, 400, 783):
        torch.testing.assert_close(x[t, :, 0], flat[:, order[t]])
    # the same order for every batch (training batches, validation, test): a batch of the first two images
    # sees them exactly as the batch of five did, and a fresh transform of the same config agrees
    assert torch.equal(transform(images[:2], None), x[:, :2])
    again, _ = task.make_transform(_encoder(kind="pixels", permutation=3), 1.0)
    assert torch.equal(again(images, torch.Generator().manual_seed(9)), x)
    other, _ = task.make_transform(_encoder(kind="pixels", permutation=4), 1.0)
    assert not torch.equal(other(images, None), x)
    assert sorted(x[:, 0, 0].tolist()) == sorted(flat[0].tolist())   # a permutation: every pixel once


# ------------------------------------------------------------------------------------------ the layer kinds
@pytest.mark.parametrize("cell, gates", [("rnn", 1), ("gru", 3), ("lstm", 4)])
def test_non_spiking_layer_kinds_build_and_give_time_major_states(cell, gates):
    torch.manual_seed(0)
    model = build_classifier(3, [{"kind": cell, "size": 6, "recurrent": False, "dropout": 0.0}], 4,
                             {"kind": "leaky", "tau": 2.0})
    out = model(torch.rand(7, 2, 3))
    assert out.output.shape == (7, 2, 4) and out.hidden == []      # a cell's state is not a spike train
    layer = model.layers[0]
    assert isinstance(layer, RecurrentBaseline) and layer.macs_per_step() == gates * (3 + 6) * 6
    weights = sum(p.numel() for name, p in layer.rnn.named_parameters() if name.startswith("weight"))
    assert layer.macs_per_step() == weights                        # one MAC per weight and step
    mixed = build_classifier(3, [{"kind": "alif", "size": 5, "recurrent": True}, {"kind": cell, "size": 6}], 4)
    out = mixed(torch.rand(7, 2, 3))
    assert len(out.hidden) == 1 and out.hidden[0].shape == (7, 2, 5)


def test_wrong_options_of_a_cell_are_named():
    with pytest.raises(ValueError, match=r"gru layer: unknown option\(s\) forget_bias"):
        build_layer("gru", 3, 4, forget_bias=1.0)
    with pytest.raises(ValueError, match=r"lstm layer: unknown option\(s\) tau.*forget_bias only"):
        build_layer("lstm", 3, 4, tau=20.0)
    with pytest.raises(ValueError, match=r"layers\[0\]: rnn layer: unknown option\(s\) recurrent"):
        build_classifier(3, [{"kind": "rnn", "size": 4, "recurrent": True}], 2)


def test_the_lstm_equals_its_equations_stepped_by_hand():
    """A second implementation of the LSTM equations (module docstring of baselines) over 6 steps; float64, so
    the two agree to rounding (1e-12)."""
    g = torch.Generator().manual_seed(1)
    layer = RecurrentBaseline(3, 5, cell="lstm", forget_bias=1.0, generator=g).double()
    x = torch.randn(6, 2, 3, generator=g, dtype=torch.float64)
    p = dict(layer.rnn.named_parameters())
    w_i, w_h, b = p["weight_ih_l0"], p["weight_hh_l0"], p["bias_ih_l0"] + p["bias_hh_l0"]
    h = c = torch.zeros(2, 5, dtype=torch.float64)
    states = []
    for t in range(6):
        i, f, gg, o = (x[t] @ w_i.t() + h @ w_h.t() + b).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(gg)
        h = torch.sigmoid(o) * torch.tanh(c)
        states.append(h)
    torch.testing.assert_close(layer(x), torch.stack(states), rtol=1e-12, atol=1e-12)
    # the forget bias: both forget-gate biases raised by half of it over PyTorch's U(-1/sqrt(5), 1/sqrt(5))
    assert (p["bias_ih_l0"][5:10] > 0.5 - 1 / math.sqrt(5)).all()


BAD = """kind: spiking_classifier
data: {source: spike_patterns, patterns: {train: 600}}
encoder: {kind: spikes, permutation: 1}
network:
  layers:
    - {kind: lstm, size: 16, tau: 20 ms, surrogate: atan, recurrent: true}
    - {kind: alif, size: 8, forget_bias: 1.0}
    - {kind: gru, size: 8, dropout: 0.1, threshold: 2}
training: {validation: 100}
"""


def test_yaml_mistakes_of_the_new_kinds_name_file_line_and_key():
    with pytest.raises(ConfigProblems) as err:
        validate(load_text(BAD, "bad.yaml"))
    text = str(err.value)
    assert "bad.yaml:3: encoder.permutation: only the 'pixels' encoder takes a permutation" in text
    assert "bad.yaml:6: network.layers[0].tau: a non-spiking lstm layer has no tau" in text
    assert "bad.yaml:6: network.layers[0].surrogate: a non-spiking lstm layer has no surrogate" in text
    assert "bad.yaml:6: network.layers[0].recurrent: a lstm layer is recurrent by construction" in text
    assert "bad.yaml:7: network.layers[1].forget_bias: only lstm layers take a forget-gate bias" in text
    assert "bad.yaml:8: network.layers[2].dropout: a gru layer takes no dropout" in text
    assert "bad.yaml:8: network.layers[2].threshold: a non-spiking gru layer has no threshold" in text
    assert len(err.value.problems) == 7, text
    pixels = """kind: spiking_classifier
data: {source: idx, dir: /nonexistent}
encoder: {kind: pixels, steps: 784}
network:
  layers:
    - {kind: lstm, size: 16}
loss: {rate_upper: 0.1}
"""
    with pytest.raises(ConfigProblems) as err:
        validate(load_text(pixels, "bad.yaml"))
    text = str(err.value)
    assert "bad.yaml:3: encoder.steps: encoder 'pixels': the number of steps is the number of pixels" in text
    assert "bad.yaml:7: loss.rate_upper: bounds hidden spike rates, but no hidden layer spikes" in text


# ------------------------------------------------------------------------------------------ the counts
class FixedSpikes(nn.Module):
    """A stand-in spiking layer ``n_in -> n_out`` that emits given spikes whatever its input (counts only)."""

    def __init__(self, n_in: int, spikes: torch.Tensor, recurrent: bool):
        super().__init__()
        self.n_in, self.spikes = n_in, spikes
        n = spikes.shape[-1]
        self.recurrent = nn.Parameter(torch.zeros(n, n)) if recurrent else None

    def forward(self, x):
        assert x.shape[:2] == self.spikes.shape[:2] and x.shape[-1] == self.n_in
        return self.spikes


def _spikes(shape, p, seed):
    return (torch.rand(shape, generator=torch.Generator().manual_seed(seed)) < p).float()


@pytest.mark.parametrize("binary_input", [True, False])
def test_synaptic_operations_and_macs_match_their_closed_forms(binary_input):
    T, B = 9, 4
    x = _spikes((T, B, 3), 0.3, 0) if binary_input else torch.rand(T, B, 3) + 0.1
    s1, s2 = _spikes((T, B, 4), 0.2, 1), _spikes((T, B, 5), 0.4, 2)
    model = SpikingClassifier([FixedSpikes(3, s1, recurrent=True), FixedSpikes(4, s2, recurrent=False)],
                              LeakyReadout(5, 2, tau=3.0))
    count = eff.count_operations(model, x)
    # by hand: each spike reaches every unit of the next layer (and, recurrent, of its own layer)
    syn1 = (x.sum() * 4 if binary_input else 0) + s1.sum() * 4
    mac1 = 0 if binary_input else T * B * 3 * 4                   # real-valued inputs: every synapse, every step
    expected = [(s1.sum(), syn1, mac1), (s2.sum(), s1.sum() * 5, 0), (None, s2.sum() * 2, 0)]
    for layer, (spikes, synops, macs) in zip(count.layers, expected):
        assert layer.spikes == (None if spikes is None else float(spikes))
        assert layer.synops == float(synops) and layer.macs == float(macs)
    record = count.per_sample()
    assert record["steps"] == T and record["samples"] == B
    assert record["spikes"] == pytest.approx(float(s1.sum() + s2.sum()) / B, rel=1e-12)
    assert record["spikes_per_layer"] == pytest.approx([float(s1.sum()) / B, float(s2.sum()) / B, None])
    total_syn = float(syn1 + s1.sum() * 5 + s2.sum() * 2)
    assert record["synops"] == pytest.approx(total_syn / B, rel=1e-12)
    assert record["macs"] == mac1 / B and record["flops"] == pytest.approx(record["synops"] + 2 * record["macs"])
    assert record["state_updates"] == T * (4 + 5 + 2)
    assert record["rate"] == pytest.approx(float(s1.sum() + s2.sum()) / (B * T * 9), rel=1e-12)
    assert eff.energy_pj(record) == pytest.approx(0.9 * record["synops"] + 4.6 * record["macs"])


def test_a_recurrent_cell_costs_its_macs_and_its_readout_dense_macs():
    T, B = 5, 3
    torch.manual_seed(0)
    model = build_classifier(2, [{"kind": "alif", "size": 4, "recurrent": True}, {"kind": "lstm", "size": 6}], 3)
    x = _spikes((T, B, 2), 0.5, 3)
    count = eff.count_operations(model, x)
    with torch.no_grad():
        spikes = model.layers[0](x)
    assert count.layers[0].synops == float(x.sum() * 4 + spikes.sum() * 4) and count.layers[0].macs == 0
    # the lstm: 4 (n_in + n) n MACs per step, whatever its input; its spikes are not counted as synops
    assert (count.layers[1].spikes, count.layers[1].synops) == (None, 0.0)
    assert count.layers[1].macs == T * B * 4 * (4 + 6) * 6 and count.layers[1].state_updates == 0
    assert count.layers[2].macs == T * B * 6 * 3 and count.layers[2].synops == 0   # real-valued into the read-out


def test_a_real_lif_layer_whose_spikes_copy_its_input_is_counted_in_closed_form():
    """A LIF layer with identity weights of 2, no memory (tau 0.05 steps: beta = e^-20 = 2e-9) and
    threshold 1 spikes exactly where its input does: SynOps = input spikes x fan-out, twice over (input weights
    and, recurrent with zero weights, the recurrent fan-out)."""
    T, B, n = 12, 3, 4
    layer = LIFLayer(n, n, recurrent=True, tau_m=0.05, bias=False)
    with torch.no_grad():
        layer.weight.copy_(2 * torch.eye(n))
        layer.recurrent.zero_()
    model = SpikingClassifier([layer], LeakyReadout(n, 2))
    x = _spikes((T, B, n), 0.3, 4)
    with torch.no_grad():
        assert torch.equal(layer(x), x)
    record = eff.measure(model, lambda images, gen: images.transpose(0, 1), x.transpose(0, 1), batch=2)
    assert record["samples"] == B and record["spikes"] == pytest.approx(float(x.sum()) / B)
    assert record["synops"] == pytest.approx(float(x.sum()) * (n + n + 2) / B)   # in, recurrent, read-out


# ------------------------------------------------------------------------------------------ the configs
def small_idx(folder: Path, n_train: int = 400, n_test: int = 100, side: int = 8, classes: int = 4) -> Path:
    """8 x 8 IDX images (64 steps as a pixel sequence) of dim noise with class ``c``'s bright 2 x 2 block in one
    of ``classes`` corners-and-centre places: a 64-step stand-in for sequential MNIST."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    places = [(0, 0), (0, side - 2), (side - 2, 0), (side - 2, side - 2), (side // 2 - 1, side // 2 - 1)]
    for split, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, classes, n).astype(np.uint8)
        images = (rng.random((n, side, side)) * 60).astype(np.uint8)
        for i, c in enumerate(labels):
            r, col = places[c]
            images[i, r:r + 2, col:col + 2] = 255
        write_idx(folder / f"{split}-images-idx3-ubyte", images)
        write_idx(folder / f"{split}-labels-idx1-ubyte", labels)
    return folder


def _small(name: str, data: Path, **overrides) -> dict:
    settings = dict(data__dir=str(data), training__samples=None, training__validation=50, training__batch=25,
                    evaluation__validation_samples=None, evaluation__efficiency_samples=40, checkpoint_every=100)
    config = config_with(CONFIGS / f"{name}.yaml", **{**settings, **overrides})
    layers = config["network"]["layers"]
    for layer in layers:
        layer["size"] = min(layer["size"], 32)
    return config


@pytest.mark.parametrize("name, epochs, lr", [("psmnist_srnn", 6, 0.01), ("psmnist_lstm", 10, 0.01)])
def test_the_sequence_configs_learn_a_small_pixel_sequence_task(tmp_path, capsys, name, epochs, lr):
    data = small_idx(tmp_path / "idx")
    summary = task.run(_small(name, data, training__epochs=epochs, optimizer__lr=lr), {"out": str(tmp_path / "o")})
    assert summary["sizes"][0] == 1 and summary["train_samples"] == 350
    assert summary["test_accuracy"] >= 0.6, summary                # chance: 0.25 (4 classes)
    record = summary["efficiency"]
    assert record["steps"] == 64 and record["samples"] == 40
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["efficiency"] == record
    if name == "psmnist_lstm":                                     # 4 (1 + 32) 32 per step, + the read-out
        assert record["macs"] == 64 * (4 * 33 * 32 + 32 * 4) and record["synops"] == 0 and record["spikes"] == 0
    else:                                                          # the pixels are real-valued: 1 x 32 MACs
        assert record["macs"] == 64 * 32 and record["synops"] > 0 and record["spikes"] > 0


def test_the_lstm_config_resumes_exactly_after_a_kill(tmp_path, monkeypatch):
    data = small_idx(tmp_path / "idx")
    config = _small("psmnist_lstm", data, training__epochs=2, checkpoint_every=5)
    straight = task.run(copy.deepcopy(config), {"out": str(tmp_path / "a")})
    with killed_at_step(monkeypatch, task.Trainer, 18), pytest.raises(KeyboardInterrupt):
        task.run(copy.deepcopy(config), {"out": str(tmp_path / "b")})   # 14 steps per epoch: killed in epoch 2
    resumed = task.run(copy.deepcopy(config), {"out": str(tmp_path / "b")})
    a = load_checkpoint(tmp_path / "a" / "psmnist_lstm.ckpt")["model"]
    b = load_checkpoint(tmp_path / "b" / "psmnist_lstm.ckpt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["test_accuracy"] == straight["test_accuracy"] and resumed["efficiency"] == straight["efficiency"]


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_the_bundled_configs_run_784_steps(tmp_path, name):
    """The configs as they are (784-step sequences), on a tiny 28 x 28 IDX set, shrunk layers, one epoch."""
    data = tiny_idx(tmp_path / "idx", n_train=150, n_test=50)
    config = _small(name, data, training__epochs=1)
    summary = task.run(config, {"out": str(tmp_path / "o")})
    assert summary["efficiency"]["steps"] == 784 and summary["train_samples"] == 100
