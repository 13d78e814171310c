"""Continuous control (issue 18, part 2): action scaling and clipping, the population-coded spiking actor, TD3's
targets with truncation bootstrapped and termination not, PPO's Gaussian policy, exact resume, learning on a small
control task, config errors. The README rows (Pendulum, MountainCarContinuous) are `-m slow`."""
from __future__ import annotations

import textwrap

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

from braincore.config import ConfigProblems, load_text, validate
from tasks.rl.actions import action_spec
from tasks.rl.encoders import ObservationEncoder
from tasks.rl.envs import evaluate
from tasks.rl.networks import GaussianActorCritic, MLPActor, PopulationActor, QCritic
from tasks.rl.ppo import PPO, PPOSettings
from tasks.rl.td3 import TD3, TD3Settings

REACH = "braincore-test/Reach-v0"


class Reach(gym.Env):
    """A point on a line, ``x in [-1, 1]``, pushed by a force ``a in [-2, 2]`` (``x <- clip(x + 0.2 a)``); reward
    ``-|x - 0.5|`` per step; the episode terminates when ``x >= 0.95`` (overshoot) and is truncated after 20 steps.
    The best policy moves to 0.5 and stays: a return of about -1 from a start in [-0.5, 0.5]; a random one loses
    about -10. ``received`` keeps every action the environment was given."""

    received: list = []

    def __init__(self):
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        self.action_space = spaces.Box(-2.0, 2.0, shape=(1,), dtype=np.float32)
        self.x = 0.0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x = float(self.np_random.uniform(-0.5, 0.5))
        return np.array([self.x], dtype=np.float32), {}

    def step(self, action):
        Reach.received.append(np.array(action, copy=True))
        self.x = float(np.clip(self.x + 0.2 * float(np.asarray(action).reshape(-1)[0]), -1.0, 1.0))
        return np.array([self.x], dtype=np.float32), -abs(self.x - 0.5), self.x >= 0.95, False, {}


if REACH not in gym.registry:
    gym.register(REACH, entry_point=Reach, max_episode_steps=20)


def _encoder():
    return ObservationEncoder(spaces.Box(-1.0, 1.0, shape=(1,)), 8)


def _td3(seed=0, actor="spiking", total=600, **kw) -> TD3:
    enc = _encoder()
    net = PopulationActor(enc.size, 1, hidden=(32,), population=4, steps=3, seed=seed) if actor == "spiking" \
        else MLPActor(enc.size, 1, hidden=(32,), seed=seed)
    critics = (QCritic(enc.size, 1, (32, 32), seed=seed + 1), QCritic(enc.size, 1, (32, 32), seed=seed + 2))
    settings = TD3Settings(total_steps=total, **{"start_steps": 100, "batch_size": 32, "steps_per_iteration": 100,
                                                 **kw})
    return TD3(REACH, net, critics, enc, settings, seed)


# ------------------------------------------------------------------------------------------ action spaces
def test_unit_actions_are_clipped_then_scaled_onto_the_range():
    spec = action_spec(spaces.Box(np.array([-2.0, 0.0]), np.array([2.0, 10.0]), dtype=np.float32))
    assert spec.continuous and spec.dim == 2
    out = spec.to_env(np.array([[-1.0, 1.0], [0.0, 0.0], [3.0, -5.0], [0.5, -0.5]]))
    np.testing.assert_allclose(out, [[-2.0, 10.0], [0.0, 5.0], [2.0, 0.0], [1.0, 2.5]])
    assert out.dtype == np.float32
    discrete = action_spec(spaces.Discrete(3))
    assert not discrete.continuous and discrete.dim == 3
    np.testing.assert_array_equal(discrete.to_env(np.array([2, 0])), [2, 0])


@pytest.mark.parametrize("space, message", [
    (spaces.Box(-np.inf, np.inf, shape=(2,)), "finite bounds"),
    (spaces.Box(-1, 1, shape=(2, 2)), "1-D Box"),
    (spaces.MultiDiscrete([2, 3]), "not supported"),
])
def test_action_spaces_the_agents_cannot_handle_are_refused(space, message):
    with pytest.raises(ValueError, match=message):
        action_spec(space)


def test_image_observations_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="convolutional spiking encoder"):
        ObservationEncoder(spaces.Box(0, 255, shape=(8, 8, 3), dtype=np.uint8))


# ------------------------------------------------------------------------------------------ networks
def test_population_actor_decodes_rates_of_each_component_population():
    actor = PopulationActor(6, 2, hidden=(16,), population=5, steps=4, seed=0)
    r = torch.rand(3, 6)
    u = actor(r)
    assert u.shape == (3, 2) and bool((u.abs() <= 1).all())
    rates = actor.last_spikes[-1].mean(dim=0).reshape(3, 2, 5)  # spikes per step of each action population
    expected = torch.tanh((rates * actor.decoder_weight).sum(-1) + actor.decoder_bias)
    torch.testing.assert_close(u, expected)
    u.sum().backward()  # surrogate gradients reach the first layer
    assert actor.layers[0].weight.grad is not None and actor.layers[0].weight.grad.abs().sum() > 0


def test_gaussian_log_probabilities_sum_over_components():
    model = GaussianActorCritic(MLPActor(4, 2, (8,), squash=False), 4, 2, (8,), log_std=-0.3)
    mean = torch.tensor([[0.1, -0.2]])
    u = torch.tensor([[0.5, 0.4]])
    std = np.exp(-0.3)
    closed = sum(-0.5 * ((a - m) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi)
                 for a, m in ((0.5, 0.1), (0.4, -0.2)))
    assert model.distribution(mean).log_prob(u).item() == pytest.approx(closed, rel=1e-5)


# ------------------------------------------------------------------------------------------ TD3
def test_td3_stores_true_last_observations_and_bootstraps_truncation_only():
    td3 = _td3(total=200, start_steps=200)  # random actions only: many episodes end both ways
    Reach.received = []
    td3.iterate()
    td3.iterate()
    n = td3.buffer.size
    obs, nxt, terms = td3.buffer.obs[:n, 0], td3.buffer.next_obs[:n, 0], td3.buffer.terms[:n]
    assert bool((terms[nxt >= 0.95] == 1).all()) and bool((terms[nxt < 0.95] == 0).all())
    assert terms.sum() > 0, "no episode terminated: the test needs both kinds of ending"
    # each stored next observation is the state the action led to (never the next episode's first state)
    actions = td3.buffer.actions[:n, 0]
    moved = (obs + 0.2 * 2.0 * actions.clamp(-1, 1)).clamp(-1, 1)
    torch.testing.assert_close(nxt, moved, atol=1e-5, rtol=0)
    assert len(td3.episode_returns) >= 10
    # every action the environment received lies in its range [-2, 2]
    assert max(abs(float(a[0])) for a in Reach.received) <= 2.0

    class Constant(torch.nn.Module):
        def forward(self, x, u):
            return torch.full((x.shape[0],), 4.0)

    td3.target_critics = torch.nn.ModuleList([Constant(), Constant()])
    y = td3.targets(torch.tensor([1.0, 1.0]), torch.zeros(2, td3.encoder.size), torch.tensor([0.0, 1.0]))
    torch.testing.assert_close(y, torch.tensor([1.0 + 0.99 * 4.0, 1.0]))  # truncated or mid-episode; terminated


def test_td3_resumes_exactly_including_the_replay_buffer():
    straight = _td3()
    for _ in range(4):
        straight.iterate()
    first = _td3()
    for _ in range(2):
        first.iterate()
    state = first.state_dict()
    second = _td3(seed=7)
    second.load_state_dict(state)
    for _ in range(2):
        second.iterate()
    for a, b in zip(list(straight.model.parameters()) + list(straight.critics.parameters()),
                    list(second.model.parameters()) + list(second.critics.parameters())):
        assert torch.equal(a, b)
    assert straight.episode_returns == second.episode_returns
    np.testing.assert_array_equal(straight.obs, second.obs)


def test_td3_trains_the_spiking_actor_to_reach_the_target():
    td3 = _td3(seed=1, total=1500)
    before = np.mean(evaluate(REACH, td3.greedy, 10, 500))
    while td3.iteration < td3.iterations:
        td3.iterate()
    after = np.mean(evaluate(REACH, td3.greedy, 10, 500))
    assert after > -4.0 and after > before + 2.0, (before, after)


def test_td3_refuses_a_discrete_action_space():
    enc = ObservationEncoder(gym.make("CartPole-v1").observation_space, 4, low=[-2.4, -3, -0.21, -3.5],
                             high=[2.4, 3, 0.21, 3.5])
    with pytest.raises(ValueError, match="TD3 needs a continuous"):
        TD3("CartPole-v1", MLPActor(enc.size, 1), (QCritic(enc.size, 1), QCritic(enc.size, 1)), enc,
            TD3Settings(), 0)


# ------------------------------------------------------------------------------------------ PPO, Gaussian
def _gaussian_ppo(seed=0, log_std=0.5, **kw) -> PPO:
    enc = _encoder()
    model = GaussianActorCritic(PopulationActor(enc.size, 1, hidden=(16,), population=4, steps=3, squash=False,
                                                seed=seed), enc.size, 1, (16,), log_std=log_std, seed=seed)
    return PPO(REACH, model, enc, PPOSettings(num_envs=2, rollout=40, total_steps=160, **kw), seed)


def test_gaussian_ppo_keeps_unclipped_samples_and_sends_clipped_scaled_actions():
    ppo = _gaussian_ppo(log_std=0.7)
    captured = {}
    ppo._update = lambda obs, act, logp, adv, ret: captured.update(act=act, logp=logp) or {}
    Reach.received = []
    ppo.iterate()
    act = captured["act"]
    assert act.shape == (80, 1) and bool((act.abs() > 1).any())  # samples beyond the unit box are kept ...
    sent = np.concatenate(Reach.received)
    assert sent.min() >= -2.0 and sent.max() <= 2.0              # ... and act at the range's bounds
    np.testing.assert_allclose(np.sort(sent), np.sort(np.clip(act.numpy()[:, 0], -1, 1) * 2.0), rtol=1e-6)


def test_gaussian_ppo_resumes_exactly_with_reward_normalisation():
    def run(split):
        first = _gaussian_ppo(normalize_reward=True)
        first.iterate()
        if split:
            state = first.state_dict()
            first = _gaussian_ppo(seed=3, normalize_reward=True)
            first.load_state_dict(state)
        first.iterate()
        return first

    a, b = run(False), run(True)
    for p, q in zip(a.model.parameters(), b.model.parameters()):
        assert torch.equal(p, q)
    assert a._return_moments == b._return_moments and a._return_moments[0] == 160


def test_reward_normalisation_divides_by_the_sd_of_the_discounted_return():
    ppo = _gaussian_ppo(normalize_reward=True, gamma=0.5)
    rewards = [np.array([1.0, 2.0]), np.array([1.0, 2.0]), np.array([1.0, 2.0])]
    done = [np.array([False, False]), np.array([False, True]), np.array([False, False])]
    out = [ppo._scaled_rewards(r, d) for r, d in zip(rewards, done)]
    returns = [1.0, 2.0, 1.5, 3.0, 1.75, 2.0]  # G = 0.5 G + r; env 1's return restarts after its episode ends
    for k, r in enumerate(out):
        seen = np.asarray(returns[: 2 * (k + 1)])
        np.testing.assert_allclose(r, rewards[k] / max(seen.std(), 1e-8) if len(seen) > 1 else rewards[k])


# ------------------------------------------------------------------------------------------ configs
def _validate(text: str):
    return validate(load_text(textwrap.dedent(text), "rl.yaml"))


def test_config_errors_for_algorithms_and_spaces_that_do_not_fit():
    with pytest.raises(ConfigProblems, match="rl.yaml:4: gradient.algorithm: .*TD3 needs continuous"):
        _validate("""\
            kind: rl_agent
            env: {id: CartPole-v1}
            encoder: {obs_low: [-2.4, -3, -0.21, -3.5], obs_high: [2.4, 3, 0.21, 3.5]}
            gradient: {algorithm: td3}
            """)
    with pytest.raises(ConfigProblems) as err:
        _validate("""\
            kind: rl_agent
            env: {id: Pendulum-v1}
            gradient: {algorithm: td3, td3: {tau: 2, noise: pink}}
            """)
    text = str(err.value)
    assert "rl.yaml:3: gradient.td3.tau" in text and "rl.yaml:3: gradient.td3.noise" in text


@pytest.mark.parametrize("name, algorithm", [("pendulum", "td3"), ("pendulum_mlp", "td3"), ("pendulum_ppo", "ppo"),
                                             ("mountaincar_continuous", "td3"), ("mountaincar_continuous_mlp", "td3"),
                                             ("halfcheetah", "td3"), ("halfcheetah_mlp", "td3")])
def test_bundled_continuous_configs_validate(name, algorithm):
    from braincore.config import load_config

    if name.startswith("halfcheetah"):
        pytest.importorskip("mujoco")
    kind, config = load_config(f"configs/rl/{name}.yaml")
    assert kind.name == "rl_agent" and config["gradient"]["algorithm"] == algorithm


def test_continuous_run_writes_its_summary(tmp_path):
    from tasks.rl.task import run

    _, config = _validate(f"""\
        kind: rl_agent
        name: reach
        env: {{id: {REACH}}}
        encoder: {{neurons_per_dim: 6}}
        gradient: {{algorithm: td3, hidden: [16], steps: 2, population: 3, critic_hidden: [16], num_envs: 2,
                   total_steps: 300, td3: {{start_steps: 100, batch_size: 16, steps_per_iteration: 50}}}}
        evaluation: {{episodes: 4, target: -3}}
        progress: false
        """)
    summary = run(config, {"out": str(tmp_path), "no_plot": True})
    assert summary["train_steps"] == 300 and summary["eval_episodes"] == 4 and "solved" in summary


@pytest.mark.slow
@pytest.mark.parametrize("name", ["pendulum", "mountaincar_continuous"])
def test_bundled_continuous_configs_reach_their_targets(tmp_path, name):
    """The README's rows (5-15 minutes each here): `pytest -m slow tests/test_rl_continuous.py`."""
    from braincore.config import load_config
    from tasks.rl.task import run

    _, config = load_config(f"configs/rl/{name}.yaml")
    config["progress"] = False
    assert run(config, {"out": str(tmp_path), "no_plot": True})["solved"] is True


def test_mujoco_environments_resume_exactly():
    pytest.importorskip("mujoco")
    from tasks.rl.envs import make_vector_env, restore, snapshot

    vec = make_vector_env("HalfCheetah-v5", 2)
    vec.reset(seed=[1, 2])
    rng = np.random.default_rng(0)
    for _ in range(3):
        vec.step(rng.uniform(-1, 1, (2, 6)).astype(np.float32))
    snap = snapshot(vec)
    actions = rng.uniform(-1, 1, (5, 2, 6)).astype(np.float32)
    a = [vec.step(x)[0] for x in actions]
    restore(vec, snap)
    b = [vec.step(x)[0] for x in actions]
    np.testing.assert_array_equal(np.stack(a), np.stack(b))
