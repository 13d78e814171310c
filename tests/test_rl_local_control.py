"""The local-learning agent on control tasks (issue 18, part 1): observation ranges estimated online, the TD(lambda)
critic, the agent sized from the environment's spaces, learning without any gradient, checks during training, and
`braincore run CONFIG --env ENV_ID`. The full CartPole training is a slow test (README row)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from gymnasium import spaces

from braincore.config import ConfigProblems, load_config, load_text, validate
from regions.dopamine import TDCritic
from tasks.rl.encoders import ObservationEncoder

CONFIG = "configs/rl/cartpole_local.yaml"


# ------------------------------------------------------------------------------------------ online ranges
def test_online_ranges_are_the_mean_and_sd_of_the_warm_up_then_frozen():
    space = spaces.Box(-np.inf, np.inf, shape=(2,), dtype=np.float32)
    enc = ObservationEncoder(space, 5, online=True, warmup=300, width=2.0)
    rng = np.random.default_rng(0)
    first = rng.normal([1.0, -3.0], [0.5, 4.0], size=(300, 2))
    for chunk in np.array_split(first, 7):                   # batches of any size, as a vector of environments
        enc.observe(chunk)
    mean, std = first.mean(axis=0), first.std(axis=0)         # Welford's moments: the population SD
    np.testing.assert_allclose(enc.low.numpy(), mean - 2.0 * std, rtol=1e-5)
    np.testing.assert_allclose(enc.high.numpy(), mean + 2.0 * std, rtol=1e-5)
    enc.observe(rng.normal(100.0, 1.0, size=(50, 2)))        # after the warm-up: frozen
    np.testing.assert_allclose(enc.high.numpy(), mean + 2.0 * std, rtol=1e-5)
    again = ObservationEncoder(space, 5, online=True, warmup=300, width=2.0)
    again.load_state_dict(enc.state_dict())                  # part of the agent's checkpoint
    x = rng.normal([1.0, -3.0], [0.5, 4.0], size=(4, 2))
    assert torch.equal(again(x), enc(x))
    # the centre field of each dimension answers the mean most
    assert enc(mean[None]).reshape(2, 5).argmax(dim=1).tolist() == [2, 2]


def test_auto_ranges_keep_the_space_bounds_where_finite_and_estimate_the_rest():
    space = spaces.Box(np.array([-4.8, -np.inf]), np.array([4.8, np.inf]), dtype=np.float64)
    enc = ObservationEncoder(space, 5, online="auto", warmup=100, width=3.0)
    x = np.random.default_rng(1).normal([0.0, 2.0], [0.1, 0.5], size=(100, 2))
    enc.observe(x)
    np.testing.assert_allclose(enc.low.numpy(), [-4.8, x[:, 1].mean() - 3 * x[:, 1].std()], rtol=1e-5)
    np.testing.assert_allclose(enc.high.numpy(), [4.8, x[:, 1].mean() + 3 * x[:, 1].std()], rtol=1e-5)


def test_online_ranges_refuse_fixed_ones_and_unbounded_spaces_name_the_option():
    space = spaces.Box(-np.inf, np.inf, shape=(2,), dtype=np.float32)
    with pytest.raises(ValueError, match="not both"):
        ObservationEncoder(space, 5, low=[0, 0], high=[1, 1], online=True)
    with pytest.raises(ValueError, match="range: online"):
        ObservationEncoder(space, 5)


# ------------------------------------------------------------------------------------------ TD(lambda) critic
def test_td_lambda_critic_in_closed_form_and_traces_restart_with_the_episode():
    gamma, lam, alpha = 0.9, 0.5, 0.25
    critic = TDCritic(2, learning_rate=alpha, gamma=gamma, trace_decay=lam)
    a, b = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    d1 = critic.error(a, [0.0], b, [False])                  # V = 0: delta 0, no change
    assert float(d1) == 0.0 and critic.weight.tolist() == [0.0, 0.0]
    d2 = critic.error(b, [1.0], a, [True])                   # terminal: delta = 1 - V(b) = 1
    assert float(d2) == 1.0
    # trace after two steps: gamma lambda phi(a) + phi(b) = [0.45, 1]; |phi(b)|^2 = 1
    np.testing.assert_allclose(critic.weight.numpy(), [alpha * 0.45, alpha * 1.0])
    critic.end_episodes(np.array([True]))
    assert critic.traces.abs().sum() == 0.0
    td0 = TDCritic(2, learning_rate=alpha, gamma=gamma)      # lambda 0: only the last state learns
    td0.error(a, [0.0], b, [False])
    td0.error(b, [1.0], a, [True])
    np.testing.assert_allclose(td0.weight.numpy(), [0.0, alpha])
    state = critic.state_dict()
    other = TDCritic(2, learning_rate=alpha, gamma=gamma, trace_decay=lam)
    other.load_state_dict(state)
    assert torch.equal(other.traces, critic.traces) and torch.equal(other.weight, critic.weight)


# ------------------------------------------------------------------------------------------ the agent
def _small_config(text_changes: dict | None = None) -> dict:
    _, config = load_config(CONFIG)
    config["local"]["num_envs"] = 4
    config["progress"] = False
    for key, value in (text_changes or {}).items():
        target = config
        *path, last = key.split(".")
        for part in path:
            target = target[part]
        target[last] = value
    return config


def _agent(config: dict, env_id: str = "CartPole-v1"):
    from tasks.rl.envs import make_env
    from tasks.rl.single import _encoder, _local_agent

    probe = make_env(env_id)
    encoder = _encoder(config, probe.observation_space)
    return _local_agent({**config, "env": {"id": env_id, "kwargs": {}}}, encoder, int(probe.action_space.n))


def test_the_agent_is_sized_from_the_environment_spaces():
    config = _small_config()
    cartpole = _agent(config)
    pops = cartpole.sim.populations
    assert pops["bg.ctx"].model.size == 4 * 40 and pops["bg.d1"].model.size == 2 * 10
    assert pops["bg.thal"].model.size == 2 * 10                 # the efference copy's target, one-to-one with d1
    config["encoder"] = {**config["encoder"], "obs_low": None, "obs_high": None, "range": "auto"}  # as --env does
    acrobot = _agent(config, "Acrobot-v1")                     # 6 observations, 3 actions: the same config
    pops = acrobot.sim.populations
    assert pops["bg.ctx"].model.size == 4 * 60 and pops["bg.d1"].model.size == 3 * 10
    cartpole.close()
    acrobot.close()


def test_the_agent_learns_without_any_gradient_only_through_its_plasticity_rules():
    config = _small_config({"local.backend": "torch"})
    agent = _agent(config)
    sim = agent.sim
    weights = {p.name: sim.weights(p.name)["weight"].copy() for p in sim.projections}
    for _ in range(30):
        agent.train_step()
    for p in sim.projections:                                  # nothing asks for or holds a gradient
        assert not p.weight.requires_grad and p.weight.grad is None
    for pop in sim.populations.values():
        assert all(not v.requires_grad for v in pop.state)
    assert agent.critic.weight.grad is None and not agent.critic.weight.requires_grad
    changed = {p.name for p in sim.projections if not np.array_equal(weights[p.name], sim.weights(p.name)["weight"])}
    plastic = {p.name for p in sim.projections if p.rule is not None}
    assert changed and changed <= plastic                      # only the corticostriatal weights, by their rules
    learned = np.abs(sim.weights("bg.corticostriatal")["weight"] - weights["bg.corticostriatal"]).max()
    # without dopamine the three-factor rule changes nothing: the weights stay where normalisation holds them (up to
    # the float32 rounding of its rescaling every step)
    quiet = _agent(_small_config({"local.backend": "torch", "local.dopamine.gain": 0.0}))
    quiet.train_step()                                         # the first step normalises the initial weights
    held = quiet.sim.weights("bg.corticostriatal")["weight"].copy()
    for _ in range(30):
        quiet.train_step()
    drift = np.abs(quiet.sim.weights("bg.corticostriatal")["weight"] - held).max()
    assert drift < 1e-4 < 0.01 < learned, (drift, learned)
    agent.close()
    quiet.close()


def test_checks_during_training_do_not_change_it():
    config = _small_config({"local.backend": "torch"})
    a, b = _agent(config), _agent(config)
    for _ in range(15):
        a.train_step()
        b.train_step()
    a.evaluate(4, 20_000, exploration=False)                   # a check: learning off, then back
    for _ in range(15):
        a.train_step()
        b.train_step()
    np.testing.assert_array_equal(a.sim.weights("bg.corticostriatal")["weight"],
                                  b.sim.weights("bg.corticostriatal")["weight"])
    assert a.episode_returns == b.episode_returns and torch.equal(a.critic.weight, b.critic.weight)
    a.close()
    b.close()


def test_greedy_decisions_count_for_longer_and_training_keeps_its_own_period():
    """With exploration off the channels' spikes are counted for ``greedy_decision`` ms, in training for
    ``decision`` ms; a check switches to the greedy period and back."""
    config = _small_config({"local.backend": "torch", "local.decision": 10.0, "local.greedy_decision": 40.0,
                            "local.commit": 30.0, "local.reward_window": 10.0})
    agent = _agent(config)
    sim, per_ms = agent.sim, 1.0 / agent.sim.dt

    def steps(action) -> int:
        start = sim.step_count
        action()
        return sim.step_count - start

    assert steps(agent.train_step) == round((10 + 30 + 10) * per_ms)
    assert steps(lambda: agent.greedy(agent.obs)) == round((40 + 30 + 10) * per_ms)
    assert steps(lambda: agent.policy(agent.obs)) == round((10 + 30 + 10) * per_ms)   # exploration back on
    agent.evaluate(2, 20_000, exploration=False)
    assert agent.decision_period == 10.0
    default = _agent(_small_config({"local.backend": "torch", "local.greedy_decision": None}))
    default.set_exploration(False)
    assert default.decision_period == default.s.decision                            # unset: the same period
    agent.close()
    default.close()


# ------------------------------------------------------------------------------------------ --env
def test_run_env_override_runs_the_config_on_another_environment(tmp_path, capsys):
    import json

    from braincore.cli import main

    text = open(CONFIG).read().replace("episodes: 1000", "episodes: 3").replace("num_envs: 16", "num_envs: 2")
    text = text.replace("evaluation: {episodes: 100,", "evaluation: {episodes: 2,").replace("every: 25", "every: 2")
    text = text.replace("file: control_actor.yaml", f"file: {Path(CONFIG).parent.resolve() / 'control_actor.yaml'}")
    (tmp_path / "agent.yaml").write_text(text)
    assert main(["run", str(tmp_path / "agent.yaml"), "--env", "Acrobot-v1", "--out", str(tmp_path / "out"),
                 "--no-plot", "--json"]) == 0
    out = capsys.readouterr().out
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["env"] == "Acrobot-v1" and summary["train_episodes"] >= 3 and summary["eval_episodes"] == 2
    assert {"eval_return_mean", "eval_return_std", "train_seconds", "checks"} <= set(summary)
    assert "observation ranges: auto" in out and "target" not in summary   # CartPole's target is not Acrobot's


def test_run_env_override_refuses_what_the_agent_cannot_take(tmp_path):
    from braincore.cli import main

    code = main(["run", CONFIG, "--env", "Pendulum-v1", "--out", str(tmp_path)])  # a Box action space
    assert code != 0
    code = main(["run", "configs/perception/diehl_cook.yaml", "--env", "CartPole-v1", "--out", str(tmp_path)])
    assert code != 0


def test_config_errors_for_the_new_keys():
    text = open(CONFIG).read().replace("trace: 0.0", "trace: 1.5").replace("range: space", "range: guess")
    text = text.replace("greedy_decision: 50 ms", "greedy_decision: 50 Hz")
    with pytest.raises(ConfigProblems) as err:
        validate(load_text(text, "configs/rl/agent.yaml"))
    message = str(err.value)
    assert "trace" in message and "range" in message and "greedy_decision" in message and "agent.yaml:" in message


@pytest.mark.slow
def test_bundled_local_cartpole_config_solves_cartpole(tmp_path):
    """The README row: `pytest -m slow tests/test_rl_local_control.py`."""
    from tasks.rl.task import run

    _, config = load_config(CONFIG)
    config["progress"] = False
    summary = run(config, {"out": str(tmp_path), "no_plot": True})
    assert summary["solved"] is True and summary["episodes_to_solve"] <= 1000


@pytest.mark.slow
def test_bundled_local_cartpole_config_learns_acrobot_unchanged(tmp_path, capsys):
    """The README's Acrobot row (`--env Acrobot-v1`): -98.5 / -117.9 / -162.7 over seeds 0-2, where a random policy
    scores about -500 and every episode of a policy that never swings up is truncated at -500. The bound, -250,
    is half of that: it says the agent learned to swing up, not that it met the issue's -100 (one seed of three
    did)."""
    import json

    from braincore.cli import main

    assert main(["run", CONFIG, "--env", "Acrobot-v1", "--out", str(tmp_path), "--no-plot", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["env"] == "Acrobot-v1" and summary["eval_return_mean"] > -250
