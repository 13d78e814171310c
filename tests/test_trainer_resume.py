"""Trainer.fit resumes what it checkpointed (issue 16): a run interrupted (Ctrl-C, a crash) and run again ends
with exactly the weights and history of a run never interrupted; a rerun after completion trains nothing; two
fresh runs start from the same seeded weights; a checkpoint of another run is refused with the file and the
differences named; Ctrl-C is taken at the end of a batch, after a checkpoint."""
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ctrl_c import needs_sigint
import torch

from braincore.checkpoint import load_checkpoint, save_checkpoint
from braincore.progress import TrainingInterrupted, interrupt_guard
from braincore.training import ClassificationLoss, LRSchedule, Trainer
from braincore.training.layers import LeakyReadout, LIFLayer
from braincore.training.models import SpikingClassifier
from braincore.training.trainer import CheckpointMismatch

ROOT = Path(__file__).resolve().parent.parent



def _problem(n=60, seed=0):
    """Two classes of spike probabilities [B, T=8, N=6]: class 1 drives channels 0-2, class 0 channels 3-5."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    p = torch.full((n, 8, 6), 0.1)
    p[y == 1, :, :3] = 0.6
    p[y == 0, :, 3:] = 0.6
    return p, y


def _encode(x, gen):
    return (torch.rand(x.shape, generator=gen) < x).float().transpose(0, 1)


def _model(hidden=12):
    return SpikingClassifier([LIFLayer(6, hidden, recurrent=True, dropout=0.2, learn_tau=True)],
                             LeakyReadout(hidden, 2))


def _trainer(path, transform=_encode, hidden=12, **kw):
    """A fresh trainer, as a script run again would make it: the model built by the trainer from its seed."""
    kw.setdefault("seed", 5)
    kw.setdefault("lr", 0.01)
    kw.setdefault("checkpoint_every", 3)
    return Trainer(lambda: _model(hidden), ClassificationLoss("membrane", reduce="mean"), optimizer="adamw",
                   weight_decay=0.01, schedule=LRSchedule("cosine", warmup=2), batch_size=12, transform=transform,
                   checkpoint_path=path, progress=False, log=lambda line: None, **kw)


def _strip(history):
    return [{k: v for k, v in h.items() if k != "train_seconds"} for h in history]


def _same_weights(a: Trainer, b: Trainer) -> None:
    for (name, x), (_, y) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert torch.equal(x, y), name


EPOCHS = 4  # 5 batches of 12 per epoch: 20 optimiser steps


@pytest.fixture
def straight(tmp_path):
    x, y = _problem()
    trainer = _trainer(tmp_path / "straight.ckpt")
    trainer.fit((x, y), EPOCHS, validation=_problem(24, seed=1))
    assert trainer.step == 20 and len(trainer.history) == EPOCHS
    return trainer


def _counting(counter):
    """The rate encoder, counting the training batches it encodes (a resumed run encodes only the rest)."""

    def transform(x, gen):
        if x.shape[0] == 12 and counter.get("trainer") is not None and counter["trainer"].model.training:
            counter["batches"] = counter.get("batches", 0) + 1
        return _encode(x, gen)

    return transform


def _fit_until_ctrl_c(trainer, *args, **kw):
    """``trainer.fit`` expecting TrainingInterrupted; a plain KeyboardInterrupt (Ctrl-C not held back) fails the
    test instead of stopping the test session."""
    try:
        trainer.fit(*args, **kw)
    except TrainingInterrupted as err:
        return err
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C was not held back to a safe point: a bare KeyboardInterrupt came out of fit")
    pytest.fail("fit ended without the Ctrl-C being taken")


def _interrupt_at(step_to_signal, during_validation=False):
    """A transform that sends this process SIGINT (a real Ctrl-C) while encoding the batch of optimiser step
    ``step_to_signal + 1`` (or, with ``during_validation``, inside the validation after that step)."""
    state = {"trainer": None, "sent": False}

    def transform(x, gen):
        t = state["trainer"]
        training = t.model.training
        if not state["sent"] and t.step == step_to_signal and training != during_validation:
            state["sent"] = True
            signal.raise_signal(signal.SIGINT)
        return _encode(x, gen)

    return state, transform


@needs_sigint
def test_ctrl_c_mid_epoch_checkpoints_at_the_batch_end_and_a_rerun_ends_identical(tmp_path, straight):
    x, y = _problem()
    val = _problem(24, seed=1)
    path = tmp_path / "run.ckpt"
    state, transform = _interrupt_at(7)
    first = _trainer(path, transform=transform)
    state["trainer"] = first
    err = _fit_until_ctrl_c(first, (x, y), EPOCHS, validation=val)
    # the batch in progress was finished (step 8), then checkpointed: epoch 2, batch 3 of 5
    assert "epoch 2/4, batch 3/5 (step 8)" in str(err) and err.checkpoint == path
    assert load_checkpoint(path)["position"] == {"epoch": 1, "batch": 3, "step": 8}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left

    counter = {}
    again = _trainer(path, transform=_counting(counter))   # the script run again: a fresh model, fit resumes
    counter["trainer"] = again
    again.fit((x, y), EPOCHS, validation=val)
    assert again.step == 20 and counter["batches"] == 12   # only the 12 batches not trained before
    _same_weights(straight, again)
    assert _strip(again.history) == _strip(straight.history)


@needs_sigint
def test_ctrl_c_during_the_epoch_end_validation_resumes_with_that_validation(tmp_path, straight):
    x, y = _problem()
    val = _problem(24, seed=1)
    path = tmp_path / "run.ckpt"
    state, transform = _interrupt_at(10, during_validation=True)   # after epoch 2's last batch (step 10)
    first = _trainer(path, transform=transform)
    state["trainer"] = first
    assert "the end of epoch 2/4" in str(_fit_until_ctrl_c(first, (x, y), EPOCHS, validation=val))
    saved = load_checkpoint(path)
    assert saved["position"] == {"epoch": 1, "batch": 5, "step": 10} and len(saved["history"]) == 1
    counter = {}
    again = _trainer(path, transform=_counting(counter))
    counter["trainer"] = again
    again.fit((x, y), EPOCHS, validation=val)
    assert counter["batches"] == 10
    _same_weights(straight, again)
    assert _strip(again.history) == _strip(straight.history)


def test_interrupted_after_k_epochs_then_resumed_equals_one_go(tmp_path, straight):
    """A crash (any exception, no checkpoint at that moment) after 2 epochs and a bit: the rerun resumes from
    the last periodic checkpoint and ends identical."""
    x, y = _problem()
    val = _problem(24, seed=1)
    path = tmp_path / "run.ckpt"

    class PowerCut(RuntimeError):
        pass

    holder = {}

    def dying(xb, gen):
        if holder["t"].step == 11 and holder["t"].model.training:
            raise PowerCut("power cut")
        return _encode(xb, gen)

    first = _trainer(path, transform=dying)
    holder["t"] = first
    with pytest.raises(PowerCut):
        first.fit((x, y), EPOCHS, validation=val)
    assert load_checkpoint(path)["position"] == {"epoch": 2, "batch": 0, "step": 10}  # the epoch-2 checkpoint
    counter = {}
    again = _trainer(path, transform=_counting(counter))
    counter["trainer"] = again
    again.fit((x, y), EPOCHS, validation=val)
    assert counter["batches"] == 10
    _same_weights(straight, again)
    assert _strip(again.history) == _strip(straight.history)
    losses = [h["train_loss"] for h in again.history]
    assert losses == [h["train_loss"] for h in straight.history] and len(set(losses)) == EPOCHS


def test_a_rerun_after_completion_trains_nothing(tmp_path):
    x, y = _problem()
    path = tmp_path / "run.ckpt"
    done = _trainer(path)
    history = done.fit((x, y), 2)
    lines = []

    def never(xb, gen):
        raise AssertionError("trained again")

    rerun = Trainer(lambda: _model(), ClassificationLoss("membrane", reduce="mean"), optimizer="adamw",
                    weight_decay=0.01, schedule=LRSchedule("cosine", warmup=2), batch_size=12, transform=never,
                    seed=5, lr=0.01, checkpoint_path=path, checkpoint_every=3, progress=False, log=lines.append)
    assert rerun.fit((x, y), 2) == history
    assert rerun.step == 10 and any("nothing to train" in line for line in lines), lines
    _same_weights(done, rerun)


def test_two_fresh_runs_start_from_the_same_seeded_weights(tmp_path):
    torch.manual_seed(1)
    before = torch.get_rng_state()
    a = _trainer(tmp_path / "a.ckpt")
    b = _trainer(tmp_path / "b.ckpt")
    assert torch.equal(torch.get_rng_state(), before)   # building the model leaves the global RNG alone
    _same_weights(a, b)
    other = _trainer(tmp_path / "c.ckpt", seed=6)
    assert not torch.equal(other.model.readout.linear.weight, a.model.readout.linear.weight)
    x, y = _problem()
    a.fit((x, y), 2)
    b.fit((x, y), 2)
    _same_weights(a, b)
    assert a.history[-1]["train_loss"] == b.history[-1]["train_loss"]
    with pytest.raises(TypeError, match="not a torch.nn.Module"):
        Trainer(lambda: "a model", ClassificationLoss("membrane"))
    with pytest.raises(TypeError, match="must be a torch.nn.Module or a function"):
        Trainer(42, ClassificationLoss("membrane"))


@pytest.mark.parametrize("change, message", [
    ({"hidden": 16}, r"model: shapes layers\.0\.weight \[12, 6\] -> \[16, 6\]"),
    ({"seed": 6}, r"seed: 5 in the checkpoint, 6 now"),
    ({"lr": 0.02}, r"optimizer\.lr: 0\.01 in the checkpoint, 0\.02 now"),
    ({"data": 72}, r"data\.samples: 60 in the checkpoint, 72 now"),
])
def test_a_checkpoint_of_another_run_is_refused_with_the_file_and_the_difference(tmp_path, change, message):
    path = tmp_path / "run.ckpt"
    x, y = _problem()
    _trainer(path).fit((x, y), 1)
    change = dict(change)
    n = change.pop("data", 60)
    x2, y2 = _problem(n)
    other = _trainer(path, **change)
    with pytest.raises(CheckpointMismatch, match=re.escape(str(path)) + ": this checkpoint belongs to another run") \
            as info:
        other.fit((x2, y2), 2)
    assert re.search(message, str(info.value)), str(info.value)
    assert "resume=False" in str(info.value)
    # resume=False trains afresh and overwrites the checkpoint
    fresh = _trainer(path, resume=False, **change)
    fresh.fit((x2, y2), 1)
    assert load_checkpoint(path)["run_key"]["seed"] == fresh.seed
    assert load_checkpoint(path)["run_key"]["data"]["samples"] == n


def test_explicit_resume_checks_the_key_too_and_old_checkpoints_are_refused_by_fit(tmp_path):
    path = tmp_path / "run.ckpt"
    x, y = _problem()
    _trainer(path).fit((x, y), 1)
    with pytest.raises(CheckpointMismatch, match="seed: 5 in the checkpoint, 7 now"):
        _trainer(tmp_path / "elsewhere.ckpt", seed=7).resume(path)
    # a checkpoint without a run key (an older braincore): fit cannot tell, so it refuses
    state = load_checkpoint(path)
    del state["run_key"]
    old = tmp_path / "old.ckpt"
    save_checkpoint(old, {k: v for k, v in state.items() if k != "format_version"})
    with pytest.raises(CheckpointMismatch, match="has no run key"):
        _trainer(old).fit((x, y), 2)


def test_checkpoints_hold_only_plain_values(tmp_path):
    path = tmp_path / "run.ckpt"
    x, y = _problem()
    _trainer(path).fit((x, y), 1)
    raw = torch.load(path, weights_only=True)       # no pickled objects, the run key included
    assert raw["run_key"]["tensors"]["layers.0.weight"] == [12, 6]
    assert raw["run_key"]["optimizer"] == {"kind": "adamw", "lr": 0.01, "weight_decay": 0.01,
                                           "betas": [0.9, 0.999]}


@needs_sigint
def test_the_interrupt_guard_defers_one_ctrl_c_and_not_two():
    with interrupt_guard() as guard:
        assert guard.active
        signal.raise_signal(signal.SIGINT)
        assert guard.requested                       # held back
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)       # the second one stops at once
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with interrupt_guard() as guard:
        with pytest.raises(KeyboardInterrupt):
            with guard.immediate():
                signal.raise_signal(signal.SIGINT)
    with interrupt_guard(enabled=False) as guard:
        assert not guard.active
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)


def _readme_trainer_block() -> str:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    found = [b for b in blocks if 'checkpoint_path="run/ckpt.pt"' in b]
    assert len(found) == 1, "the README's Trainer example (checkpoint_path=\"run/ckpt.pt\") not found"
    return found[0]


def test_the_readme_trainer_example_resumes_and_repeats(tmp_path):
    """The README's claim: a rerun resumes from run/ckpt.pt (here: already done) and prints the same number;
    a fresh run (run/ deleted) prints it too."""
    script = tmp_path / "example.py"
    script.write_text(_readme_trainer_block())
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))

    def run():
        done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
                              env=env, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout.strip().splitlines()

    first = run()
    assert (tmp_path / "run" / "ckpt.pt").is_file()
    second = run()
    assert second[-1] == first[-1] and any("nothing to train" in line for line in second), second
    for f in (tmp_path / "run").iterdir():
        f.unlink()
    assert run()[-1] == first[-1]
