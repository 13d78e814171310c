"""The ``spiking_classifier`` task (tasks.perception.surrogate): the synthetic spike-pattern task learns, YAML
mistakes are reported with file, line and key before anything runs, an interrupted run resumes exactly, the
encoders give the documented shapes, the MNIST configs run end to end on a tiny IDX dataset, and (when
../shared/data/mnist is there) real digits are learnt.
"""
import copy
import json
from pathlib import Path

import pytest
import torch

from braincore.checkpoint import load_checkpoint
from braincore.config import ConfigProblems, load_config, load_text, validate
from braincore.errors import ConfigError
from tasks.perception import surrogate as task
from tiny_data import config_with, killed_at_step, tiny_idx

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs" / "perception"


def _config(name: str, **overrides) -> dict:
    return config_with(CONFIGS / f"{name}.yaml", **overrides)


@pytest.mark.parametrize("name", ["spike_patterns", "mnist_ff", "mnist_rows_alif"])
def test_bundled_configs_validate(name):
    kind, config = load_config(CONFIGS / f"{name}.yaml")
    assert kind.name == "spiking_classifier" and config["name"] == name


def test_spike_patterns_are_seeded_and_noisy_copies_of_class_templates():
    a = task.spike_pattern_dataset(50, classes=3, channels=8, steps=12, rate=0.2, seed=4)
    b = task.spike_pattern_dataset(50, classes=3, channels=8, steps=12, rate=0.2, seed=4)
    other = task.spike_pattern_dataset(50, classes=3, channels=8, steps=12, rate=0.2, seed=4, stream=1)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], other[0])
    assert a[0].shape == (50, 12, 8) and a[0].dtype == torch.uint8 and set(a[1].tolist()) == {0, 1, 2}
    clean = task.spike_pattern_dataset(50, classes=3, channels=8, steps=12, rate=0.2, seed=4, jitter=0,
                                       deletion=0.0, noise=0.0)
    x, y = clean
    for c in range(3):  # without noise every sample of a class is its template
        members = x[y == c]
        assert (members == members[0]).all()
    with pytest.raises(ValueError, match="deletion must lie in"):
        task.spike_pattern_dataset(5, deletion=1.5)


def test_synthetic_task_learns(tmp_path, capsys):
    summary = task.run(_config("spike_patterns"), {"out": str(tmp_path)})
    assert summary["test_accuracy"] >= 0.8            # chance: 0.1 (10 classes)
    assert summary["history"][-1]["validation_accuracy"] > summary["history"][0]["validation_accuracy"]
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last)["test_accuracy"] == summary["test_accuracy"]
    assert (tmp_path / "spike_patterns.ckpt").is_file()


def _state(path):
    return load_checkpoint(path)["model"]


def test_an_interrupted_run_resumes_exactly(tmp_path, monkeypatch):
    config = _config("spike_patterns", training__epochs=3, checkpoint_every=7)
    straight = task.run(copy.deepcopy(config), {"out": str(tmp_path / "a")})

    # checkpoints at 7, 14, 20 (epoch end), 27 (epoch 2, batch 7): steps 28-30 are lost
    with killed_at_step(monkeypatch, task.Trainer, 31), pytest.raises(KeyboardInterrupt):
        task.run(copy.deepcopy(config), {"out": str(tmp_path / "b")})
    assert load_checkpoint(tmp_path / "b" / "spike_patterns.ckpt")["position"] == {"epoch": 1, "batch": 7,
                                                                                     "step": 27}
    resumed = task.run(copy.deepcopy(config), {"out": str(tmp_path / "b")})
    a, b = _state(tmp_path / "a" / "spike_patterns.ckpt"), _state(tmp_path / "b" / "spike_patterns.ckpt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["test_accuracy"] == straight["test_accuracy"] and resumed["steps"] == straight["steps"] == 60
    drop = lambda h: [{k: v for k, v in e.items() if k != "train_seconds"} for e in h]  # noqa: E731
    assert drop(resumed["history"]) == drop(straight["history"])
    # a complete run is not trained again; another configuration's checkpoint is refused
    again = task.run(copy.deepcopy(config), {"out": str(tmp_path / "b")})
    assert again["test_accuracy"] == straight["test_accuracy"]
    with pytest.raises(ConfigError, match="another configuration"):
        task.run(_config("spike_patterns", training__epochs=3, seed=1), {"out": str(tmp_path / "b")})


def _doc(text: str):
    return load_text(text, "bad.yaml")


GOOD = """kind: spiking_classifier
data: {source: spike_patterns}
encoder: {kind: spikes}
network:
  layers:
    - {kind: lif, size: 16}
training: {validation: 500}
"""


def test_the_minimal_config_is_valid_and_filled_with_defaults():
    _, config = validate(_doc(GOOD))
    assert config["training"]["batch"] == 128 and config["loss"]["kind"] == "membrane"
    assert config["network"]["readout"]["kind"] == "leaky" and config["data"]["patterns"]["classes"] == 10


def test_yaml_mistakes_name_file_line_and_key():
    text = """kind: spiking_classifier
data: {source: spike_patterns}
encoder: {kind: rate}
network:
  layers:
    - {kind: lif, size: 16, dropuot: 0.1}
    - {kind: lif, size: 8, tau_adapt: 100}
    - {kind: alif, size: 0}
  readout: {kind: leaky}
loss: {kind: count_ce}
optimzer: {lr: 0.1}
schedule: {kind: step}
"""
    with pytest.raises(ConfigProblems) as err:
        validate(_doc(text))
    problems = {(p.line, ".".join(map(str, p.keypath))): p.message for p in err.value.problems}
    text = str(err.value)
    assert "bad.yaml:6: network.layers[0].dropuot: unknown key; did you mean 'dropout'?" in text
    assert "bad.yaml:11: optimzer: unknown key; did you mean 'optimizer'?" in text
    assert "bad.yaml:7: network.layers[1].tau_adapt: only adaptive layers (kind: alif)" in text
    assert "bad.yaml:8: network.layers[2].size: expected an integer >= 1, got 0" in text
    assert "bad.yaml:3: encoder.kind: data.source 'spike_patterns' is spike trains already" in text
    assert "bad.yaml:9: network.readout.kind: loss 'count_ce' counts output spikes" in text
    assert "bad.yaml:12: schedule: schedule 'step' needs step_epochs" in text
    # the default hold-out of 5000 samples would leave none of the 2000 generated ones to train on
    assert "bad.yaml:1: training.validation: holds out 5000 samples for validation (the default), but " \
        "data.patterns.train has 2000" in text
    assert len(problems) == 9, text  # the missing encoder.steps for 'rate' too


def test_a_cuda_config_without_cuda_fails_clearly(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ConfigError, match="CUDA is not available.*set device: cpu"):
        task.run(_config("spike_patterns", device="cuda"), {"out": str(tmp_path)})


def test_encoders_give_time_major_inputs():
    images = torch.randint(0, 256, (3, 28, 28), dtype=torch.uint8)
    base = {"steps": None, "gain": 1.0, "max_rate": 100.0, "tau": 5.0, "threshold": 0.01, "linear": False,
            "normalize": None}
    rows, n = task.make_transform({**base, "kind": "rows"}, 1.0)
    x = rows(images, None)
    assert x.shape == (28, 3, 28) and n((28, 28)) == 28
    torch.testing.assert_close(x[5, 1], images[1, 5].float() / 255)
    current, n = task.make_transform({**base, "kind": "current", "steps": 4, "gain": 2.0}, 1.0)
    x = current(images, None)
    assert x.shape == (4, 3, 784) and n((28, 28)) == 784
    torch.testing.assert_close(x[3], 2.0 * images.reshape(3, -1).float() / 255)
    rate, _ = task.make_transform({**base, "kind": "rate", "steps": 6}, 1.0)
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    assert torch.equal(rate(images, g1), rate(images, g2))
    latency, _ = task.make_transform({**base, "kind": "latency", "steps": 10, "linear": True}, 1.0)
    spikes = latency(images, None)
    assert spikes.shape == (10, 3, 784) and spikes.sum(0).max() <= 1


@pytest.mark.parametrize("name, layers", [
    ("mnist_ff", [{"kind": "lif", "size": 32, "tau": 10.0, "learn_tau": True, "dropout": 0.2}]),
    ("mnist_rows_alif", [{"kind": "alif", "size": 32, "recurrent": True, "tau": 20.0, "tau_adapt": 200.0,
                          "surrogate": "multi_gaussian"}]),
])
def test_mnist_configs_run_end_to_end_on_a_tiny_idx_dataset(tmp_path, name, layers):
    data = tiny_idx(tmp_path / "idx")
    config = _config(name, data__dir=str(data), training__epochs=4, training__validation=50, optimizer__lr=0.01,
                     training__batch=25, encoder__steps=None if name == "mnist_rows_alif" else 8)
    config["network"]["layers"] = [{**{k: None for k in task.LAYER.fields}, **layer} for layer in layers]
    summary = task.run(config, {"out": str(tmp_path / "out")})
    assert summary["sizes"] == [784 if name == "mnist_ff" else 28, 32, 10]
    assert summary["train_samples"] == 250 and summary["validation_samples"] == 50
    assert summary["test_accuracy"] >= 0.5, summary   # chance 0.1


def test_real_mnist_is_learnt_quickly(mnist_dir, tmp_path):
    config = _config("mnist_ff", data__dir=str(mnist_dir), training__epochs=2, training__samples=3000,
                     optimizer__lr=0.005,
                     training__batch=100, encoder__steps=10, evaluation__validation_samples=1000,
                     evaluation__test_samples=1000)
    config["network"]["layers"] = [{**{k: None for k in task.LAYER.fields}, "kind": "lif", "size": 128,
                                    "tau": 10.0, "dropout": 0.0}]
    summary = task.run(config, {"out": str(tmp_path)})
    assert summary["test_accuracy"] >= 0.85, summary   # chance 0.1
