"""NeuroGym tasks (``kind: neurogym``): the trial batcher, the performance measure, the SRNN and RNN agents
(supervised and reinforcement), checkpoint resume, config validation and the missing-neurogym error. Everything but
the last section runs on a small fake TrialEnv written here, so CI needs no neurogym."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from braincore.config import ConfigProblems, load_text, validate
from tasks.cognitive import trials as ng

ROOT = Path(__file__).resolve().parents[1]


class FakeTrialEnv:
    """A two-choice NeuroGym-like TrialEnv: ``fixation`` (2-3 steps), ``stimulus`` (3 steps: channel ``g`` of 1..2
    on, plus noise scaled down by ``coh``), ``decision`` (2 steps, answer ``g``); observation 0 is the fixation
    cue. ``step`` rewards +1 for the right choice in the decision period (which ends the trial), 0 for a wrong
    one, -0.1 for leaving fixation earlier."""

    def __init__(self, dt: int = 100, noise: float = 0.0):
        self.dt, self.noise = dt, noise
        self.rng = np.random.RandomState(0)
        self.action_space = SimpleNamespace(n=3)
        self.observation_space = SimpleNamespace(shape=(3,))
        self.t = self.t_ind = 0

    def seed(self, seed=None):
        self.rng = np.random.RandomState(seed)

    def new_trial(self, **kwargs):
        trial = {"ground_truth": int(self.rng.randint(1, 3)), "coh": 50.0}
        trial.update(kwargs)
        fix = 2 + int(self.rng.randint(0, 2))
        T = fix + 3 + 2
        ob = np.zeros((T, 3), dtype=np.float32)
        ob[:fix + 3, 0] = 1.0
        ob[fix:fix + 3, trial["ground_truth"]] = 1.0
        ob[fix:fix + 3, 1:] += self.noise * (1 - trial["coh"] / 100) * self.rng.randn(3, 2)
        gt = np.zeros(T, dtype=np.int64)
        gt[fix + 3:] = trial["ground_truth"]
        self.ob, self.gt, self.trial = ob, gt, trial
        self.start_ind = {"fixation": 0, "stimulus": fix, "decision": fix + 3}
        self.end_ind = {"fixation": fix, "stimulus": fix + 3, "decision": T}
        return trial

    def step(self, action):
        reward, new = 0.0, False
        if self.t_ind >= self.start_ind["decision"]:
            if action != 0:
                new, reward = True, 1.0 if action == self.gt[self.t_ind] else 0.0
        elif action != 0:
            reward = -0.1
        self.t_ind += 1
        if self.t_ind >= len(self.gt):
            new = True
        if new:
            self.t = self.t_ind = 0
            self.new_trial()
        return self.ob[self.t_ind], reward, False, False, {"new_trial": new}


# ------------------------------------------------------------------------------------------ batcher and measure
def test_batch_starts_trials_together_and_pads_their_end():
    env = FakeTrialEnv()
    env.seed(3)
    b = ng.trial_batch(env, 16)
    T = b.gt.shape[0]
    assert b.ob.shape == (T, 16, 3) and b.ob.dtype == np.float32 and b.gt.dtype == np.int64
    lengths = b.mask.sum(axis=0)
    assert set(lengths) == {7, 8} and T == 8                      # both lengths occur; padded to the longest
    assert b.mask[0].all() and (b.ob[0, :, 0] == 1).all()            # every trial starts on the first step
    short = np.flatnonzero(lengths == 7)[0]
    assert not b.mask[-1, short] and b.gt[-1, short] == 0 and not b.ob[-1, short].any()
    assert b.decision[5:7, short].all() and not b.decision[-1, short]
    assert (b.gt[b.decision] > 0).all() and (b.gt[~b.decision] == 0).all()
    assert set(b.onset) == {2, 3}
    assert [i["ground_truth"] for i in b.infos] == list(b.gt[b.decision.argmax(axis=0), np.arange(16)])
    env.seed(3)
    again = ng.trial_batch(env, 16)
    assert np.array_equal(again.ob, b.ob)                           # seeded: the same trials


def test_a_trials_score_does_not_depend_on_its_batch():
    from tasks.cognitive.agents import AgentSpec, RecurrentAgent, predict

    env = FakeTrialEnv(noise=1.0)
    env.seed(5)
    trials = [ng.draw_trial(env) for _ in range(12)]
    for model in ("srnn", "rnn"):
        agent = RecurrentAgent(AgentSpec(model, 3, 3, hidden=16, seed=3))
        together = ng.stack_trials(trials)
        actions, _, _ = predict(agent, together)
        alone = [predict(agent, ng.stack_trials([t]))[0][:, 0] for t in trials]
        for b, a in enumerate(alone):
            assert np.array_equal(actions[:len(a), b], a)


def test_performance_measure_closed_form_cases():
    env = FakeTrialEnv()
    env.seed(0)
    b = ng.trial_batch(env, 50)
    assert ng.trial_scores(b.gt, b).mean() == 1.0                   # a perfect predictor
    assert ng.trial_scores(np.zeros_like(b.gt), b).mean() == 0.0    # always fixating
    assert ng.trial_scores(b.gt, b, "steps").mean() == 1.0
    assert ng.trial_scores(np.zeros_like(b.gt), b, "steps").mean() == 0.0
    # the decision is the first non-fixation action of the decision period: a right answer later does not count
    late, first, cols = b.gt.copy(), b.decision.argmax(axis=0), np.arange(b.size)
    late[first, cols] = 3 - b.gt[first, cols]
    assert ng.trial_scores(late, b).mean() == 0.0
    assert ng.trial_scores(late, b, "steps").mean() == pytest.approx(0.5)
    # leaving fixation before the decision period does not decide the trial
    early = b.gt.copy()
    early[0] = 1
    assert ng.trial_scores(early, b).mean() == 1.0
    # a constant choice is right on the trials with that answer; chance = the best constant action
    frac1 = float((b.gt[first, cols] == 1).mean())
    assert ng.trial_scores(np.ones_like(b.gt), b).mean() == pytest.approx(frac1)
    assert ng.chance_level([b], 3) == pytest.approx(max(frac1, 1 - frac1))
    with pytest.raises(ValueError, match="actions must be"):
        ng.trial_scores(b.gt[:-1], b)


def test_reaction_time_variant_answers_from_stimulus_onset():
    env = FakeTrialEnv()
    env.seed(1)
    t = ng.draw_trial(env, reaction_time=True)
    s0, s1 = env.start_ind["stimulus"], env.end_ind["stimulus"]
    assert len(t.gt) == s1 and t.decision[s0 + 1:].all() and not t.decision[:s0 + 1].any()
    assert (t.gt[s0 + 1:] == env.trial["ground_truth"]).all() and t.gt[s0] == 0


# ------------------------------------------------------------------------------------------ the agents
def _setup(noise: float = 0.0):
    from tasks.cognitive.agents import TaskSetup

    return TaskSetup(lambda: FakeTrialEnv(noise=noise))


@pytest.mark.parametrize("model", ["srnn", "rnn"])
def test_supervised_agents_learn_an_easy_task(model):
    import torch

    from tasks.cognitive.agents import AgentSpec, RecurrentAgent, Trainer, TrainSettings, evaluate

    torch.set_num_threads(1)
    agent = RecurrentAgent(AgentSpec(model, 3, 3, hidden=32, seed=1))
    task = _setup()
    before = evaluate(agent, task, 200, seed=99)["perf"]
    trainer = Trainer(agent, task, TrainSettings(steps=80, batch=32, lr=1e-2, decision_weight=3.0, log_every=20))
    for _ in range(80):
        trainer.train_step()
    after = evaluate(agent, task, 200, seed=99)
    assert after["perf"] >= 0.85 > before and after["chance"] < 0.65
    assert [h["step"] for h in trainer.history] == [20, 40, 60, 80]


def test_reinforcement_runs_on_the_envs_rewards_and_improves():
    import torch

    from tasks.cognitive.agents import AgentSpec, RecurrentAgent, Trainer, TrainSettings, evaluate

    torch.set_num_threads(1)
    agent = RecurrentAgent(AgentSpec("rnn", 3, 3, hidden=32, seed=2))
    task = _setup()
    before = evaluate(agent, task, 200, seed=99)["perf"]
    trainer = Trainer(agent, task, TrainSettings(steps=150, batch=32, lr=1e-2, log_every=50), "reinforcement")
    for _ in range(150):
        out = trainer.train_step()
    assert np.isfinite(out["loss"])
    rewards = [h["reward"] for h in trainer.history]
    assert rewards[-1] > rewards[0] and rewards[-1] > 0.6           # the env's own rewards went up
    assert evaluate(agent, task, 200, seed=99)["perf"] > max(before, 0.7)


def test_reinforcement_with_spiking_agent_runs():
    from tasks.cognitive.agents import AgentSpec, RecurrentAgent, Trainer, TrainSettings

    trainer = Trainer(RecurrentAgent(AgentSpec("srnn", 3, 3, hidden=16)), _setup(),
                      TrainSettings(steps=3, batch=8, log_every=1), "reinforcement")
    for _ in range(3):
        out = trainer.train_step()
    assert np.isfinite(out["loss"]) and len(trainer.history) == 3 and trainer.history[0]["reward"] is not None


def test_returns_and_play():
    from tasks.cognitive.agents import discounted_returns, play

    r = np.array([[0.0], [0.0], [1.0], [0.0]], dtype=np.float32)
    assert np.allclose(discounted_returns(r, 0.5)[:, 0], [0.25, 0.5, 1.0, 0.0])
    envs = [FakeTrialEnv() for _ in range(2)]
    batch = ng.stack_trials([ng.draw_trial(e) for e in envs])
    actions = batch.gt.copy()
    rewards, alive = play(envs, actions, batch)
    assert (rewards.sum(axis=0) == 1.0).all()
    assert (alive.sum(axis=0) == batch.mask.sum(axis=0) - 1).all()  # the trial ends at the first decision step


def test_resume_from_state_is_exact(tmp_path):
    import torch

    from braincore.checkpoint import load_checkpoint, save_checkpoint
    from tasks.cognitive.agents import AgentSpec, RecurrentAgent, Trainer, TrainSettings

    def trainer():
        return Trainer(RecurrentAgent(AgentSpec("srnn", 3, 3, hidden=16, seed=4)), _setup(noise=0.5),
                       TrainSettings(steps=10, batch=8, log_every=3))

    straight = trainer()
    for _ in range(10):
        straight.train_step()
    first = trainer()
    for _ in range(6):
        first.train_step()
    save_checkpoint(tmp_path / "c.ckpt", first.state())
    second = trainer()
    second.load_state(load_checkpoint(tmp_path / "c.ckpt"))
    for _ in range(4):
        second.train_step()
    for a, b in zip(straight.agent.state_dict().values(), second.agent.state_dict().values()):
        assert torch.equal(a, b)
    assert straight.history == second.history


def test_psychometric_readout():
    from tasks.cognitive.agents import AgentSpec, RecurrentAgent, TaskSetup, psychometric

    task = TaskSetup(lambda: FakeTrialEnv(noise=1.0), reaction_time=True)
    out = psychometric(RecurrentAgent(AgentSpec("rnn", 3, 3, hidden=8)), task, [0.0, 50.0], 20, seed=0)
    assert [r["coherence"] for r in out["rows"]] == [0.0, 50.0] and out["dt_ms"] == 100
    for r in out["rows"]:
        assert 0 <= r["accuracy"] <= 1 and r["trials"] == 20
        assert r["rt_ms"] is None or 100 <= r["rt_ms"] <= 300       # within the 3-step stimulus


# ------------------------------------------------------------------------------------------ configs
def _validate(text: str):
    return validate(load_text(textwrap.dedent(text), "ng.yaml"))


def test_config_validates_and_fills_defaults():
    _, config = _validate("""
        kind: neurogym
        tasks:
          - PerceptualDecisionMaking-v0
          - {id: ReadySetGo-v0, measure: steps, kwargs: {dt: 50}}
        psychometric: {task: PerceptualDecisionMaking-v0}
        regions: {decision: {trials: 10, circuit: {batch: 5, threshold: 25 Hz}}}
    """)
    assert config["model"] == "both" and config["training"] == "supervised"
    pdm = "PerceptualDecisionMaking-v0"
    assert config["tasks"][0] == {"id": pdm, "kwargs": {}, "label": pdm, "measure": "final", "period": None,
                                  "reaction_time": False}
    assert config["tasks"][1]["kwargs"] == {"dt": 50} and config["network"]["hidden"] == 64
    assert config["regions"]["decision"]["circuit"] == {"batch": 5, "threshold": 25.0}
    assert config["regions"]["working_memory"] is None


@pytest.mark.parametrize("text, where, words", [
    ("tasks: [PerceptualDecisionMaking-v1]", "ng.yaml:2: tasks[0]", "did you mean 'PerceptualDecisionMaking-v0'"),
    ("tasks: [{id: GoNoGo-v0}]", "ng.yaml:2: tasks[0].id", "did you mean 'GoNogo-v0'"),
    ("tasks: [GoNogo-v0]\noptimisation: {steps: 5}", "ng.yaml:3: optimisation", "did you mean 'optimization'"),
    ("tasks: [GoNogo-v0]\noptimization: {step: 5}", "ng.yaml:3: optimization.step", "did you mean 'steps'"),
    ("tasks: [{id: GoNogo-v0, measure: last}]", "ng.yaml:2: tasks[0].measure", "expected one of 'final', 'steps'"),
    ("tasks: [GoNogo-v0]\nmodel: snn", "ng.yaml:3: model", "expected one of 'srnn', 'rnn', 'both'"),
    ("tasks: [GoNogo-v0]\npsychometric: {task: PerceptualDecisionMaking-v0}", "ng.yaml:3: psychometric.task",
     "not a task of this config"),
    ("tasks: [{id: GoNogo-v0, reaction_time: true}]\ntraining: reinforcement", "ng.yaml:2: tasks[0].reaction_time",
     "supervised only"),
    ("tasks: []\nregions: {decision: {circuit: {treshold: 20 Hz}}}", "ng.yaml:3: regions.decision.circuit.treshold",
     "did you mean 'threshold'"),
    ("tasks: []\nregions: {decision: {circuit: {coherences: [0.1, 0.2]}}}",
     "ng.yaml:3: regions.decision.circuit.coherences", "set from the NeuroGym trials"),
    ("tasks: [GoNogo-v0, GoNogo-v0]", "ng.yaml:2: tasks[1]", "give one a 'label'"),
])
def test_config_errors_name_file_line_key_and_expected(text, where, words):
    with pytest.raises(ConfigProblems) as err:
        _validate("kind: neurogym\n" + text)
    message = str(err.value)
    assert where in message and words in message, message


def test_validating_imports_neither_torch_nor_neurogym(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("kind: neurogym\ntasks: [PerceptualDecisionMaking-v0]\nregions: {decision: {trials: 4}}\n")
    code = (f"import sys; from braincore.config import load_config; load_config({str(path)!r}); "
            "print(sorted(m for m in ('torch', 'neurogym') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("name", ["neurogym_supervised", "neurogym_reinforcement", "neurogym_regions"])
def test_bundled_configs_validate(name):
    validate(load_text((ROOT / "configs" / "cognitive" / f"{name}.yaml").read_text(), f"{name}.yaml"))


def test_clear_error_when_neurogym_is_missing(monkeypatch, tmp_path):
    from tasks.cognitive.neurogym_tasks import run

    monkeypatch.setitem(sys.modules, "neurogym", None)             # import neurogym -> ImportError
    with pytest.raises(ng.NeurogymMissing, match="pip install --no-deps neurogym"):
        ng.make_env("PerceptualDecisionMaking-v0")
    _, config = _validate("kind: neurogym\ntasks: [GoNogo-v0]\nprogress: false")
    with pytest.raises(ImportError, match="pip install --no-deps neurogym"):
        run(config, {"out": str(tmp_path)})


# ------------------------------------------------------------------------------------------ real neurogym
def test_real_neurogym_trials_and_measure():
    pytest.importorskip("neurogym")
    env = ng.make_env("PerceptualDecisionMaking-v0", {"dt": 100}, seed=0)
    b = ng.trial_batch(env, 20)
    assert b.ob.shape[1:] == (20, 3) and ng.n_actions(env) == 3
    assert ng.trial_scores(b.gt, b).mean() == 1.0 and ng.trial_scores(np.zeros_like(b.gt), b).mean() == 0.0
    assert set(np.unique(b.gt[-1])) <= {1, 2} and all("coh" in i for i in b.infos)
    # the env's own step through a trial drawn here (the reinforcement path)
    from tasks.cognitive.agents import play

    envs = [ng.make_env("PerceptualDecisionMaking-v0", seed=s) for s in range(4)]
    trials = []
    for e in envs:
        trials.append(ng.draw_trial(e))
        e.t = e.t_ind = 0
    batch = ng.stack_trials(trials)
    rewards, _ = play(envs, batch.gt, batch)
    assert (rewards.sum(axis=0) == 1.0).all()


def test_real_neurogym_run_and_bad_kwargs(tmp_path):
    pytest.importorskip("neurogym")
    from tasks.cognitive.neurogym_tasks import run

    _, config = _validate("""
        kind: neurogym
        tasks: [PerceptualDecisionMaking-v0]
        model: srnn
        network: {hidden: 8}
        optimization: {steps: 3, batch: 4}
        evaluation: {trials: 10}
        progress: false
        regions: {decision: {trials: 4, stimulus_ms: 300, circuit: {batch: 4}}, working_memory: {trials: 2}}
    """)
    summary = run(config, {"out": str(tmp_path), "no_plot": True})
    assert [r["model"] for r in summary["results"]] == ["srnn"] and 0 <= summary["results"][0]["perf"] <= 1
    assert [r["model"] for r in summary["regions"]] == ["decision attractor", "prefrontal working memory"]
    assert (tmp_path / "neurogym" / "PerceptualDecisionMaking-v0_srnn.ckpt").is_file()
    again = run(config, {"out": str(tmp_path), "no_plot": True})   # resumed: training done, the result reloaded
    assert again["results"][0]["perf"] == summary["results"][0]["perf"]
    _, bad = _validate("kind: neurogym\ntasks: [{id: GoNogo-v0, kwargs: {dtt: 100}}]\nprogress: false")
    with pytest.raises(ConfigProblems, match=r"ng.yaml:2: tasks\[0\].kwargs: neurogym could not make 'GoNogo-v0'"):
        run(bad, {"out": str(tmp_path)})
