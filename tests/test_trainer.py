"""The surrogate-gradient trainer (braincore.training.trainer), its losses (braincore.training.losses) and the
Sequential-style classifier (braincore.training.models).

Losses are checked against hand computations, schedules against hand values and PyTorch's own schedulers, the
rate regulariser by the sign of its gradient, and the trainer by an exact resume: N steps straight equal k steps,
a crash, a resume from the last checkpoint and the rest, bit for bit.
"""
import math

import numpy as np
import pytest
import torch

from braincore.checkpoint import load_checkpoint
from braincore.training.layers import LeakyReadout, LIFLayer
from braincore.training.losses import (
    ClassificationLoss, RateRegularizer, membrane_cross_entropy, rate_regularizer, reduce_time,
    spike_count_cross_entropy, spike_count_mse)
from braincore.training.models import ClassifierOutput, SpikingClassifier, build_classifier
from braincore.training.trainer import (
    IterableData, LRSchedule, TensorData, Trainer, capture_rng, make_optimizer, resolve_device, restore_rng)


# ------------------------------------------------------------------------------------------ losses
def _trace():
    # T = 3, B = 2, C = 2
    return torch.tensor([[[0.0, 1.0], [2.0, -1.0]],
                         [[3.0, 0.5], [1.0, 0.0]],
                         [[1.0, 2.0], [0.0, 4.0]]])


def test_time_reductions():
    y = _trace()
    assert reduce_time(y, "max").tolist() == [[3.0, 2.0], [2.0, 4.0]]
    assert reduce_time(y, "last").tolist() == [[1.0, 2.0], [0.0, 4.0]]
    torch.testing.assert_close(reduce_time(y, "mean"), torch.tensor([[4 / 3, 3.5 / 3], [1.0, 1.0]]))


def _ce(logits, label):
    return -(logits[label] - math.log(sum(math.exp(v) for v in logits)))


@pytest.mark.parametrize("reduce, scores", [("max", [[3.0, 2.0], [2.0, 4.0]]),
                                            ("last", [[1.0, 2.0], [0.0, 4.0]]),
                                            ("mean", [[4 / 3, 3.5 / 3], [1.0, 1.0]])])
def test_membrane_cross_entropy_by_hand(reduce, scores):
    labels = torch.tensor([0, 1])
    expected = (_ce(scores[0], 0) + _ce(scores[1], 1)) / 2
    got = membrane_cross_entropy(_trace(), labels, reduce)
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_spike_count_losses_by_hand():
    s = torch.zeros(4, 2, 3)
    s[:, 0, 0] = 1.0          # sample 0: counts [4, 1, 0]
    s[0, 0, 1] = 1.0
    s[1:3, 1, 2] = 1.0        # sample 1: counts [0, 0, 2]
    labels = torch.tensor([0, 1])
    ce = (_ce([4.0, 1.0, 0.0], 0) + _ce([0.0, 0.0, 2.0], 1)) / 2
    assert spike_count_cross_entropy(s, labels).item() == pytest.approx(ce, rel=1e-6)
    # targets: T * rate = 4 * 0.75 = 3 for the label, 4 * 0.25 = 1 for the others
    sq = [(4 - 3) ** 2, (1 - 1) ** 2, (0 - 1) ** 2, (0 - 1) ** 2, (0 - 3) ** 2, (2 - 1) ** 2]
    mse = spike_count_mse(s, labels, correct_rate=0.75, incorrect_rate=0.25)
    assert mse.item() == pytest.approx(sum(sq) / 6)


def test_rate_regularizer_by_hand():
    s = torch.zeros(4, 2, 2)          # T = 4, B = 2, N = 2
    s[:, 0, 0] = 1.0                  # rates: sample 0 [1, 0], sample 1 [0.5, 0]
    s[:2, 1, 0] = 1.0
    # lower 0.1: unit means over the batch [0.75, 0] -> relu(0.1 - .)^2 = [0, 0.01], mean 0.005
    # upper 0.3: population means per sample [0.5, 0.25] -> relu(. - 0.3)^2 = [0.04, 0], mean 0.02
    got = rate_regularizer([s], lower=0.1, upper=0.3, lower_strength=2.0, upper_strength=3.0)
    assert got.item() == pytest.approx(2 * 0.005 + 3 * 0.02)
    assert rate_regularizer([s, s], lower=0.1).item() == pytest.approx(2 * 0.005)  # summed over layers


def test_rate_regularizer_gradient_pushes_rates_into_the_bounds():
    busy = torch.full((5, 3, 4), 0.9, requires_grad=True)   # rate 0.9 > upper 0.2
    rate_regularizer([busy], upper=0.2).backward()
    assert (busy.grad > 0).all()                              # descent lowers the activity
    quiet = torch.full((5, 3, 4), 0.01, requires_grad=True)  # rate 0.01 < lower 0.05
    rate_regularizer([quiet], lower=0.05).backward()
    assert (quiet.grad < 0).all()                             # descent raises it
    fine = torch.full((5, 3, 4), 0.1, requires_grad=True)    # inside the bounds
    rate_regularizer([fine], lower=0.05, upper=0.2).backward()
    assert torch.count_nonzero(fine.grad) == 0


def test_classification_loss_adds_the_regularizer_and_scores():
    y = _trace()
    labels = torch.tensor([1, 1])
    hidden = [torch.ones(3, 2, 5)]
    reg = RateRegularizer(upper=0.5, upper_strength=4.0)         # rate 1: 4 * 0.25 = 1
    res = ClassificationLoss("membrane", reduce="last", regularizer=reg)(y, labels, hidden)
    task = membrane_cross_entropy(y, labels, "last")
    assert res.task.item() == pytest.approx(task.item())
    assert res.regularizer.item() == pytest.approx(1.0)
    assert res.loss.item() == pytest.approx(task.item() + 1.0)
    assert res.scores.argmax(1).tolist() == [1, 1]
    counts = ClassificationLoss("count_ce")(y, labels).scores
    torch.testing.assert_close(counts, y.sum(0))


def test_losses_reject_bad_arguments():
    y = _trace()
    with pytest.raises(ValueError, match="unknown loss kind"):
        ClassificationLoss("hinge")
    with pytest.raises(ValueError, match="unknown reduction 'median'"):
        ClassificationLoss("membrane", reduce="median")
    with pytest.raises(ValueError, match=r"labels must lie in 0..1"):
        membrane_cross_entropy(y, torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="integer class indices"):
        membrane_cross_entropy(y, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"labels must be \[B\] = \[2\]"):
        membrane_cross_entropy(y, torch.tensor([0, 1, 1]))
    with pytest.raises(ValueError, match=r"time-major \[T, B, C\]"):
        spike_count_cross_entropy(y[0], torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="correct_rate must lie in"):
        spike_count_mse(y, torch.tensor([0, 1]), correct_rate=2.0)
    with pytest.raises(ValueError, match="exceeds the upper bound"):
        RateRegularizer(lower=0.5, upper=0.1)
    with pytest.raises(ValueError, match="model must expose them"):
        rate_regularizer([], upper=0.1)


# ------------------------------------------------------------------------------------------ schedules
def test_warmup_step_and_none_schedules_by_hand():
    s = LRSchedule("step", warmup=4, step_size=3, gamma=0.5)
    assert [s.factor(k, 20) for k in range(12)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25]
    assert [LRSchedule("none", warmup=2).factor(k, 9) for k in range(4)] == [0.5, 1.0, 1.0, 1.0]
    c = LRSchedule("cosine", warmup=2, min_factor=0.1)
    assert c.factor(1, 10) == 1.0 and c.factor(2, 10) == 1.0
    assert c.factor(6, 10) == pytest.approx(0.1 + 0.9 * 0.5)   # half-way through the 8 cosine steps
    assert c.factor(10, 10) == pytest.approx(0.1)


def _torch_lrs(make_scheduler, steps, lr=0.1):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    sched = make_scheduler(opt)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_cosine_matches_torch():
    total = 17
    ours = [0.1 * LRSchedule("cosine", min_factor=0.2).factor(k, total) for k in range(total)]
    ref = _torch_lrs(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=total, eta_min=0.02), total)
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-12)


def test_one_cycle_matches_torch():
    total = 23
    s = LRSchedule("one_cycle", pct_start=0.25, div_factor=10.0, final_div_factor=100.0)
    ours = [0.1 * s.factor(k, total) for k in range(total)]
    ref = _torch_lrs(lambda o: torch.optim.lr_scheduler.OneCycleLR(
        o, max_lr=0.1, total_steps=total, pct_start=0.25, div_factor=10.0, final_div_factor=100.0,
        anneal_strategy="cos", cycle_momentum=False), total)
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-12)


def test_schedules_reject_bad_arguments():
    with pytest.raises(ValueError, match="unknown schedule 'cosin'"):
        LRSchedule("cosin")
    with pytest.raises(ValueError, match="needs step_size"):
        LRSchedule("step")
    with pytest.raises(ValueError, match="own warm-up"):
        LRSchedule("one_cycle", warmup=3)
    with pytest.raises(ValueError, match="warmup must be an integer"):
        LRSchedule("cosine", warmup=-1)
    with pytest.raises(ValueError, match="gamma must lie"):
        LRSchedule("step", step_size=2, gamma=1.5)
    with pytest.raises(ValueError, match="total >= 1"):
        LRSchedule().factor(0, 0)


# ------------------------------------------------------------------------------------------ data
def test_tensor_data_permutes_per_epoch_and_resumes_inside_an_epoch():
    x, y = torch.arange(10).float().view(10, 1), torch.arange(10)
    data = TensorData(x, y, 4, seed=3)
    assert len(data) == 3
    e0 = torch.cat([b[1] for b in data.batches(0)])
    e1 = torch.cat([b[1] for b in data.batches(1)])
    assert sorted(e0.tolist()) == list(range(10)) and sorted(e1.tolist()) == list(range(10))
    assert e0.tolist() != e1.tolist()
    assert e0.tolist() == torch.cat([b[1] for b in TensorData(x, y, 4, seed=3).batches(0)]).tolist()
    tail = torch.cat([b[1] for b in data.batches(0, start=1)])
    assert tail.tolist() == e0[4:].tolist()
    assert len(TensorData(x, y, 4, drop_last=True)) == 2
    with pytest.raises(ValueError, match="same N"):
        TensorData(x, y[:5], 4)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        TensorData(x, y, 0)


def test_iterable_data_needs_a_length_and_a_reiterable_source():
    batches = [(torch.zeros(2, 3, 1), torch.zeros(2, dtype=torch.long))] * 3
    assert len(IterableData(batches)) == 3
    assert len(list(IterableData(batches).batches(0, start=2))) == 1
    with pytest.raises(TypeError, match="one-shot iterator"):
        IterableData(iter(batches))
    with pytest.raises(TypeError, match="give batches_per_epoch"):
        len(IterableData(lambda epoch: iter(batches)))


# ------------------------------------------------------------------------------------------ model
def test_classifier_exposes_hidden_spikes_and_builder_checks_options():
    torch.manual_seed(0)
    model = build_classifier(6, [{"kind": "lif", "size": 5, "recurrent": True}, {"size": 4, "tau": 5.0}], 3,
                             {"kind": "leaky", "tau": 8.0})
    out = model(torch.rand(7, 2, 6))
    assert isinstance(out, ClassifierOutput)
    assert out.output.shape == (7, 2, 3) and [h.shape for h in out.hidden] == [(7, 2, 5), (7, 2, 4)]
    assert set(out.hidden[0].unique().tolist()) <= {0.0, 1.0}
    with pytest.raises(ValueError, match=r"layers\[0\]: lif layer: unknown option\(s\) tau_adapt"):
        build_classifier(6, [{"size": 5, "tau_adapt": 100.0}], 3)
    with pytest.raises(ValueError, match="unknown layer kind 'conv'"):
        build_classifier(6, [{"kind": "conv", "size": 5}], 3)
    with pytest.raises(ValueError, match="unknown readout kind"):
        build_classifier(6, [{"size": 5}], 3, {"kind": "softmax"})


# ------------------------------------------------------------------------------------------ trainer
def _problem(n=60, seed=0):
    """Two classes of noisy spike trains [B, T=8, N=6]: class 1 drives channels 0-2, class 0 channels 3-5."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    p = torch.full((n, 8, 6), 0.1)
    p[y == 1, :, :3] = 0.6
    p[y == 0, :, 3:] = 0.6
    return p, y


def _rate_transform(x, gen):
    # a stochastic encoder drawing from the trainer's generator: spike probabilities [B, T, N] -> spikes [T, B, N]
    return (torch.rand(x.shape, generator=gen) < x).float().transpose(0, 1)


def _make(tmp_path, name, transform=_rate_transform, **kw):
    torch.manual_seed(123)  # a different init every time is fine: a resume overwrites it
    model = SpikingClassifier([LIFLayer(6, 12, recurrent=True, dropout=0.2, learn_tau=True)], LeakyReadout(12, 2))
    kw.setdefault("checkpoint_every", 3)
    return Trainer(model, ClassificationLoss("membrane", reduce="mean", regularizer=RateRegularizer(0.02, 0.5)),
                   optimizer="adamw", lr=0.01, weight_decay=0.01, schedule=LRSchedule("cosine", warmup=2),
                   batch_size=12, transform=transform, seed=5, checkpoint_path=tmp_path / f"{name}.ckpt",
                   progress=False, log=lambda line: None, **kw)


class Crash(RuntimeError):
    pass


def test_resume_after_a_crash_is_bitwise_exact(tmp_path):
    x, y = _problem()
    val = _problem(24, seed=1)
    epochs = 3                                                         # 5 batches per epoch: 15 steps
    straight = _make(tmp_path, "straight")
    straight.fit((x, y), epochs, validation=val)

    def crashing(xb, gen):
        if crashed.step == 9 and crashed.model.training:               # dies inside step 10 (9 steps done)
            raise Crash("power cut")
        return _rate_transform(xb, gen)

    crashed = _make(tmp_path, "resumed", transform=crashing)
    with pytest.raises(Crash):
        crashed.fit((x, y), epochs, validation=val)
    on_disk = load_checkpoint(tmp_path / "resumed.ckpt")
    # checkpoints at steps 3 (mid-epoch), 5 (epoch end), 8 (epoch 2, batch 3): the crash lost step 9
    assert on_disk["position"] == {"epoch": 1, "batch": 3, "step": 8}

    resumed = _make(tmp_path, "resumed")
    assert resumed.resume()
    resumed.fit((x, y), epochs, validation=val)
    assert resumed.step == straight.step == 15
    for (name, a), (_, b) in zip(straight.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.equal(a, b), name
    sa, sb = straight.optimizer.state_dict()["state"], resumed.optimizer.state_dict()["state"]
    for key in sa:
        for field in sa[key]:
            assert torch.equal(sa[key][field], sb[key][field]), (key, field)
    strip = [{k: v for k, v in h.items() if k != "train_seconds"} for h in straight.history]
    assert strip == [{k: v for k, v in h.items() if k != "train_seconds"} for h in resumed.history]
    assert len(strip) == 3 and "validation_accuracy" in strip[0]


def test_max_steps_stops_with_a_checkpoint_and_fit_continues(tmp_path):
    x, y = _problem()
    straight = _make(tmp_path, "a", checkpoint_every=None)
    straight.fit((x, y), 2)
    part = _make(tmp_path, "b", checkpoint_every=None)
    part.fit((x, y), 2, max_steps=7)
    assert part.step == 7 and load_checkpoint(tmp_path / "b.ckpt")["position"]["step"] == 7
    again = _make(tmp_path, "b", checkpoint_every=None)
    again.resume()
    again.fit((x, y), 2)
    for a, b in zip(straight.model.parameters(), again.model.parameters()):
        assert torch.equal(a, b)


def test_trainer_learns_and_evaluation_leaves_the_training_rng_alone(tmp_path):
    x, y = _problem(120)
    trainer = _make(tmp_path, "learn", checkpoint_every=None)
    before = trainer.evaluate((x, y))["accuracy"]
    trainer.fit((x, y), 6)
    test = _problem(200, seed=2)
    state = capture_rng(trainer.generator)
    after = trainer.evaluate(test)
    assert torch.equal(state["torch"], torch.get_rng_state())
    assert torch.equal(state["generator"], trainer.generator.get_state())
    assert after["accuracy"] >= 0.9 and after["samples"] == 200, (before, after)
    assert after == trainer.evaluate(test)                              # repeatable despite the rate code
    assert trainer.history[-1]["train_accuracy"] > trainer.history[0]["train_accuracy"]


def test_rng_states_round_trip():
    gen = torch.Generator().manual_seed(1)
    state = capture_rng(gen)
    a = (torch.rand(3), np.random.rand(3), torch.rand(2, generator=gen))
    restore_rng(state, gen)
    b = (torch.rand(3), np.random.rand(3), torch.rand(2, generator=gen))
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and torch.equal(a[2], b[2])


def test_trainer_rejects_bad_arguments(tmp_path):
    model = SpikingClassifier([LIFLayer(6, 4)], LeakyReadout(4, 2))
    loss = ClassificationLoss()
    with pytest.raises(ValueError, match="unknown optimiser 'sgd'"):
        Trainer(model, loss, optimizer="sgd")
    with pytest.raises(ValueError, match="learning rate must be > 0"):
        make_optimizer(model.parameters(), lr=0.0)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        Trainer(model, loss, batch_size=0)
    with pytest.raises(ValueError, match="without checkpoint_path"):
        Trainer(model, loss, checkpoint_every=10)
    with pytest.raises(ValueError, match="epochs must be >= 0"):
        Trainer(model, loss, progress=False).fit(_problem(), -1)
    with pytest.raises(ValueError, match="default transform expects"):
        Trainer(model, loss, progress=False).fit((torch.zeros(4, 6), torch.zeros(4, dtype=torch.long)), 1)
    short = IterableData(lambda epoch: iter([_problem(4)]), batches_per_epoch=2)
    with pytest.raises(ValueError, match="ended after 1 batches, expected 2"):
        Trainer(model, loss, progress=False).fit(short, 1)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")


def test_a_diverging_loss_is_reported():
    model = SpikingClassifier([LIFLayer(6, 4)], LeakyReadout(4, 2))

    def nan_loss(output, labels, hidden):
        return ClassificationLoss()(output * float("nan"), labels, hidden)

    trainer = Trainer(model, nan_loss, progress=False)
    with pytest.raises(FloatingPointError, match="loss is nan at step 0"):
        trainer.fit(_problem(12), 1)
