"""The ``eventprop_classifier`` kind (tasks/perception/eventprop.py): the bundled config validates; YAML mistakes
are reported at file, line and key; a small SHD-format set (written by the synthetic generator, read through
``data.dir`` like the real SHD) is learnt end to end with a final JSON line; ``dir: null`` writes and uses the
synthetic set; an interrupted run resumes exactly.
"""
import copy
import json
from pathlib import Path

import pytest
import torch

from braincore.checkpoint import load_checkpoint
from braincore.config import ConfigProblems, load_config, load_text, validate
from braincore.errors import ConfigError
from tasks.perception import eventprop as task
from tiny_data import config_with, killed_at_step

pytest.importorskip("h5py")
ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "perception" / "shd_eventprop.yaml"


def _shd(folder: Path, n_train: int = 160, n_test: int = 60) -> Path:
    """A 4-class SHD-format set, short words (0.15 s), written with the synthetic generator."""
    from braincore.data.synthetic_shd import SyntheticSHD, write_synthetic_shd

    write_synthetic_shd(folder, n_train, n_test, seed=0, spec=SyntheticSHD(classes=4, duration=0.15, onset=0.02,
                                                                          warp=0.1, shift=10, pair_spread=80.0))
    return folder


def _small(data: Path, **overrides) -> dict:
    settings = dict(data__dir=str(data), network__hidden=24, network__duration=200.0, training__epochs=3,
                    training__batch=20, training__validation=20, evaluation__batch=40, optimizer__lr=5e-3,
                    checkpoint_every=4, loss__regularizer={"target": 3.0, "lambda_upper": 1e-3, "lambda_lower": None})
    config = config_with(CONFIG, **{**settings, **overrides})
    config["data"]["synthetic"] = {"train": 2000, "test": 500, "seed": 0}    # the default: unused with a dir
    return config


def test_the_bundled_config_validates():
    kind, config = load_config(CONFIG)
    assert kind.name == "eventprop_classifier" and config["name"] == "shd_eventprop"
    assert config["network"]["dt"] == 1.0 and config["network"]["duration"] == 1000.0    # ms


def test_yaml_mistakes_name_file_line_and_key():
    text = """kind: eventprop_classifier
data: {dir: /somewhere, synthetic: {train: 10}}
network:
  hiden: 64
  dt: 3 ms
  tau_syn: 2 ms
  duration: 100 ms
loss: {readout: sum, tau_w: 20 ms}
schedule: {kind: step}
"""
    with pytest.raises(ConfigProblems) as err:
        validate(load_text(text, "bad.yaml"))
    text = str(err.value)
    for expected in [
        "bad.yaml:2: data.synthetic: synthetic data is written only with dir: null",
        "bad.yaml:4: network.hiden: unknown key; did you mean 'hidden'?",
        "bad.yaml:5: network.dt: a step of 3 ms is longer than tau_syn = 2 ms",
        "bad.yaml:7: network.duration: must be a whole number of steps of dt = 3 ms, got 100 ms",
        "bad.yaml:8: loss.tau_w: only the sum_exp read-out takes tau_w",
        "bad.yaml:9: schedule: schedule 'step' needs step_epochs",
    ]:
        assert expected in text, text


def test_a_small_shd_format_set_is_learnt_end_to_end(tmp_path, capsys):
    data = _shd(tmp_path / "shd")
    summary = task.run(_small(data, training__epochs=4), {"out": str(tmp_path / "out")})
    assert summary["sizes"] == [700, 24, 4] and summary["train_samples"] == 140 and summary["steps_T"] == 200
    assert summary["test_accuracy"] >= 0.6, summary                 # chance 0.25
    assert summary["hidden_spikes_per_sample"] > 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last)["test_accuracy"] == summary["test_accuracy"]


def test_without_a_dir_the_synthetic_set_is_written_and_used(tmp_path):
    config = _small(None, training__epochs=1, training__validation=10, evaluation__test_samples=20)
    config["data"] = {"source": "shd", "dir": None, "synthetic": {"train": 30, "test": 20, "seed": 1}}
    summary = task.run(config, {"out": str(tmp_path)})
    assert (tmp_path / "synthetic_shd" / "shd_train.h5").is_file() and summary["data"] == "synthetic (30 + 20)"
    assert summary["sizes"][2] == 20 and summary["train_samples"] == 20


def test_a_missing_data_dir_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="shd_train.h5"):
        task.run(_small(tmp_path / "nothing"), {"out": str(tmp_path / "out")})


def test_an_interrupted_run_resumes_exactly(tmp_path, monkeypatch):
    data = _shd(tmp_path / "shd", n_train=140, n_test=40)
    config = _small(data, training__epochs=2)          # 120 samples: 6 batches per epoch, checkpoints every 4
    straight = task.run(copy.deepcopy(config), {"out": str(tmp_path / "a")})
    # checkpoints at steps 4, 6 (epoch end), 10: step 11 is lost
    with killed_at_step(monkeypatch, task.Trainer, 12), pytest.raises(KeyboardInterrupt):
        task.run(copy.deepcopy(config), {"out": str(tmp_path / "b")})
    ckpt = tmp_path / "b" / "shd_eventprop.ckpt"
    assert load_checkpoint(ckpt)["position"] == {"epoch": 1, "batch": 4, "step": 10}
    resumed = task.run(copy.deepcopy(config), {"out": str(tmp_path / "b")})
    a, b = load_checkpoint(tmp_path / "a" / "shd_eventprop.ckpt")["model"], load_checkpoint(ckpt)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["steps"] == straight["steps"] == 12
    for key in ("test_accuracy", "validation_accuracy", "hidden_spikes_per_sample"):
        assert resumed[key] == straight[key]
    drop = lambda h: [{k: v for k, v in e.items() if k != "train_seconds"} for e in h]  # noqa: E731
    assert drop(resumed["history"]) == drop(straight["history"])
    with pytest.raises(ConfigError, match="another configuration"):
        task.run(_small(data, training__epochs=2, seed=1), {"out": str(tmp_path / "b")})
