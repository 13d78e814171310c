"""Spiking RL agents in gymnasium environments: encoders, the TD critic, dopamine signs, PPO and the local-rule
agent, exact resume, config errors (issue 7). Full trainings are in the README (and `-m slow`)."""
from __future__ import annotations

import json
import textwrap

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

from braincore.config import ConfigProblems, load_text, validate
from braincore.graph import Assembly
from regions.dopamine import TDCritic
from tasks.rl.actions import check_action_space
from tasks.rl.encoders import ObservationEncoder
from tasks.rl.envs import evaluate, make_vector_env, restore, snapshot
from tasks.rl.local_agent import DopamineAgent, LocalSettings
from tasks.rl.networks import SpikingActorCritic
from tasks.rl.ppo import PPO, PPOSettings
from tasks.rl.tabular import best_stationary_policy, greedy_policy, optimal_values, policy_values

from ctrl_c import interrupted_cli_run, needs_sigint, press_ctrl_c_during, resume_message

TINY_LAKE = ["SH", "FG"]  # start, hole / frozen, goal: down then right; a random walk succeeds 1/3 of the time


# ------------------------------------------------------------------------------------------ encoders and spaces
def test_box_population_code_and_discrete_one_hot():
    box = spaces.Box(low=np.array([-1.0, 0.0]), high=np.array([1.0, 2.0]), dtype=np.float32)
    enc = ObservationEncoder(box, 5)
    r = enc(np.array([[-1.0, 2.0], [0.0, 1.0]]))
    assert r.shape == (2, 10)
    assert r[0, 0] == 1.0 and r[0, 9] == 1.0      # edges drive the edge neurons fully
    assert r[1, 2] == 1.0 and r[1, 7] == 1.0      # centres
    one_hot = ObservationEncoder(spaces.Discrete(4))
    np.testing.assert_array_equal(one_hot(np.array([2, 0])).numpy(), [[0, 0, 1, 0], [1, 0, 0, 0]])
    with pytest.raises(ValueError, match="outside Discrete"):
        one_hot(np.array([4]))


@pytest.mark.parametrize("space, message", [
    (spaces.Dict({"a": spaces.Discrete(2)}), "not supported"),
    (spaces.Box(0, 1, shape=(2, 2)), "not supported"),
    (spaces.Box(-np.inf, np.inf, shape=(3,)), "unbounded"),
])
def test_unsupported_observation_spaces_are_refused(space, message):
    with pytest.raises(ValueError, match=message):
        ObservationEncoder(space)


def test_only_discrete_action_spaces():
    assert check_action_space(spaces.Discrete(3)) == 3
    with pytest.raises(ValueError, match="Discrete action space"):
        check_action_space(spaces.Box(-2, 2, shape=(1,)))


# ------------------------------------------------------------------------------------------ the critic
def test_td_critic_error_and_update_in_closed_form():
    critic = TDCritic(3, learning_rate=0.5, gamma=0.9)
    critic.weight[:] = torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64)
    phi = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 1.0, 0]])
    phi_next = torch.tensor([[0, 1.0, 0], [0, 0, 1.0], [0, 0, 1.0]])
    delta = critic.error(phi, [0.0, 1.0, 1.0], phi_next, [False, False, True])
    # r + gamma V(s') - V(s): 0 + 0.9*2 - 1; 1 + 0.9*4 - 2; terminal: 1 + 0 - 2
    np.testing.assert_allclose(delta.numpy(), [0.8, 2.6, -1.0])
    # normalised LMS: w_s += alpha delta (one-hot features, |phi|^2 = 1), summed over the batch
    np.testing.assert_allclose(critic.weight.numpy(), [1.0 + 0.4, 2.0 + 0.5 * (2.6 - 1.0), 4.0])
    optimistic = TDCritic(3, learning_rate=0.5, gamma=0.9, initial=1.0)   # unvisited states predict 1
    delta = optimistic.error(phi[:1], [0.0], phi_next[:1], [False])
    np.testing.assert_allclose(delta.numpy(), [0.9 - 1.0])                 # the first visit disappoints


def test_tabular_values_closed_form():
    env = gym.make("FrozenLake-v1", desc=TINY_LAKE, is_slippery=False)
    v = optimal_values(env, horizon=100)
    np.testing.assert_allclose(v, [1.0, 0.0, 1.0, 0.0])  # hole and goal are terminal (value 0)
    assert policy_values(env, [0, 0, 2, 0], 100)[0] == 0.0  # always left from the start: never arrives
    assert policy_values(env, [2, 0, 2, 0], 100)[0] == 0.0  # right from the start: the hole
    assert policy_values(env, [1, 0, 2, 0], 1)[0] == 0.0    # down, right: two steps needed, one allowed
    assert policy_values(env, [1, 0, 2, 0], 2)[0] == 1.0
    slippery = gym.make("FrozenLake-v1", is_slippery=True)
    v_star = optimal_values(slippery, 100)[0]
    assert 0.70 < v_star < 0.78  # the known optimum of the slippery 4x4 lake with its 100-step limit (~0.74)
    best = greedy_policy(slippery, optimal_values(slippery, 99))
    assert policy_values(slippery, best, 100)[0] == pytest.approx(v_star, rel=0.02)
    stationary, v_stationary = best_stationary_policy(slippery, 100)
    assert v_stationary <= v_star and v_stationary == pytest.approx(policy_values(slippery, stationary, 100)[0])
    assert v_stationary >= policy_values(slippery, best, 100)[0]  # coordinate ascent never loses value
    tiny_policy, tiny_value = best_stationary_policy(env, 100)
    assert tiny_value == 1.0 and tiny_policy[0] == 1 and tiny_policy[2] == 2


# ------------------------------------------------------------------------------------------ dopamine -> D1 / D2
def _tiny_assembly(receptors=("d1",)) -> Assembly:
    a = Assembly("agent", dt="1 ms", seed=3)
    a.add_population("ctx", "lif", 8, {"tau_m": "10 ms"})
    a.add_population("thal", "lif", 8, {"tau_m": "10 ms"})
    a.add_modulator("dopamine", tau="5 ms", baseline=0.0)
    a.add_input("observation", "poisson", "ctx", rate="0 Hz", weight="20 mV")
    a.add_input("efference", "poisson", "thal", rate="0 Hz", weight="20 mV")
    for receptor in receptors:
        a.add_population(receptor, "lif", 8, {"tau_m": "10 ms"})
        a.add_projection("ctx", receptor, {"type": "all_to_all"}, "1.5 mV", name=f"ctx_{receptor}",
                         sign="excitatory",
                         plasticity={"rule": "rstdp", "modulator": "dopamine", "receptor": receptor, "tau_c": "20 ms",
                                     "A_plus": 1.0, "A_minus": 0.0, "eta": 0.1, "w_min": 0.0, "w_max": 4.0})
        a.add_projection("thal", receptor, {"type": "one_to_one"}, "12 mV", name=f"thal_{receptor}",
                         sign="excitatory")
    return a


def _agent(assembly, env_kwargs=None, num_envs=2, seed=0, **settings) -> DopamineAgent:
    kwargs = {"desc": TINY_LAKE, "is_slippery": False} if env_kwargs is None else env_kwargs
    env = gym.make("FrozenLake-v1", **kwargs)
    settings = {"exploration_input": None, **settings}
    s = LocalSettings(observation_population="ctx", actions="d1", max_rate=200.0, num_envs=num_envs, **settings)
    return DopamineAgent(assembly, "FrozenLake-v1", ObservationEncoder(env.observation_space), 4, s, seed, kwargs)


@pytest.mark.parametrize("sign", [1.0, -1.0, 0.0])
def test_reward_drives_dopamine_with_the_right_sign_into_d1_and_d2(sign):
    agent = _agent(_tiny_assembly(("d1", "d2")))
    w0 = {r: agent.sim.weights(f"ctx_{r}")["weight"].copy() for r in ("d1", "d2")}
    phi = agent.encoder(np.array([0, 0]))           # both trials in state 0: ctx cells 0 and 1 (2 per state)
    actions = torch.tensor([1, 1])
    agent.decide(phi)
    agent.commit(actions)                            # the chosen channel (cells 2, 3) fires with state 0's cells
    for r in ("d1", "d2"):                           # no dopamine yet: eligibility only
        np.testing.assert_array_equal(agent.sim.weights(f"ctx_{r}")["weight"], w0[r])
    agent.reinforce(torch.tensor([sign, sign], dtype=torch.float64))
    change = {}
    for r in ("d1", "d2"):
        w = agent.sim.weights(f"ctx_{r}")
        dw = (w["weight"] - w0[r]).reshape(8, 8)
        change[r] = dw[:2, 2:4].mean()               # state 0's cells -> the chosen channel
        assert np.abs(dw[2:, :]).max() == 0.0         # silent sensory cells: no eligibility, no change
    if sign == 0.0:
        assert change["d1"] == 0.0 and change["d2"] == 0.0
    else:                                            # a burst potentiates D1 and depresses D2; a dip the reverse
        assert np.sign(change["d1"]) == sign and np.sign(change["d2"]) == -sign, change
        assert abs(change["d1"]) > 0.01


def test_local_agent_steps_real_environments_and_learns_a_tiny_lake():
    from braincore.assembly_config import load_assembly

    bundled = load_assembly("configs/rl/striatal_actor.yaml")  # the network of configs/rl/frozenlake*.yaml
    agent = _agent(bundled, num_envs=8, seed=1, gamma=0.9, exploration_input="exploration")
    before = np.mean(evaluate("FrozenLake-v1", agent.policy, 48, 500, parallel=8,
                              env_kwargs={"desc": TINY_LAKE, "is_slippery": False}))
    while agent.episodes < 300:
        agent.train_step()
    assert agent.episode_returns and set(np.unique(agent.episode_returns)) <= {0.0, 1.0}
    after = np.mean(evaluate("FrozenLake-v1", agent.policy, 48, 500, parallel=8,
                             env_kwargs={"desc": TINY_LAKE, "is_slippery": False}))
    # a random walk reaches the goal in 1/3 of the episodes; the learned policy almost always
    assert before < 0.7 and after >= 0.9, (before, after)
    assert agent.critic.value(agent.encoder(np.array([0])))[0] > 0.5  # the start state predicts the reward


def test_local_agent_resumes_exactly():
    straight = _agent(_tiny_assembly(), num_envs=4, seed=2)
    for _ in range(12):
        straight.train_step()
    first = _agent(_tiny_assembly(), num_envs=4, seed=2)
    for _ in range(5):
        first.train_step()
    state = first.state_dict()
    second = _agent(_tiny_assembly(), num_envs=4, seed=99)
    second.load_state_dict(state)
    for _ in range(7):
        second.train_step()
    np.testing.assert_array_equal(second.sim.weights("ctx_d1")["weight"], straight.sim.weights("ctx_d1")["weight"])
    assert second.episode_returns == straight.episode_returns
    np.testing.assert_array_equal(second.critic.weight.numpy(), straight.critic.weight.numpy())


def test_local_agent_reports_missing_pieces():
    a = _tiny_assembly()
    with pytest.raises(Exception, match="no population 'striatum'"):
        env = gym.make("FrozenLake-v1", desc=TINY_LAKE, is_slippery=False)
        DopamineAgent(a, "FrozenLake-v1", ObservationEncoder(env.observation_space), 4,
                      LocalSettings(actions="striatum", exploration_input=None), 0, {"desc": TINY_LAKE})


def test_assembly_actor_critic_trains_the_assembly_and_exports_it():
    from braincore.simulator import Simulator
    from tasks.rl.networks import AssemblyActorCritic

    a = _tiny_assembly()
    model = AssemblyActorCritic(a, "ctx", "d1", n_features=4, n_actions=4, steps=10, max_rate=200.0)
    x = model.sensory_spikes(torch.eye(4))
    assert x.shape == (10, 4, 8)
    np.testing.assert_allclose(x[:, 0, :2].sum(0).numpy(), 2.0, atol=1.0)   # 200 Hz for 10 ms: 2 spikes (+-1)
    assert float(x[:, 0, 2:].sum()) == 0.0                                   # the other states' cells are silent
    logits, value = model(torch.eye(4))
    assert logits.shape == (4, 4) and value.shape == (4,)
    (logits[:, 1].sum() - logits[:, 0].sum() + value.sum()).backward()
    grad = model.net.weights["ctx_d1"].grad
    assert grad is not None and float(grad.abs().sum()) > 0
    with torch.no_grad():
        model.net.weights["ctx_d1"].mul_(1.5)
    sim = Simulator(model.export(), batch=1)
    np.testing.assert_allclose(sim.weights("ctx_d1")["weight"],
                               model.net.weight("ctx_d1").detach().numpy().reshape(-1), rtol=1e-6)


# ------------------------------------------------------------------------------------------ PPO
def _ppo(seed=0, total=4096, **kw) -> PPO:
    env = gym.make("CartPole-v1")
    enc = ObservationEncoder(env.observation_space, 6, low=[-2.4, -3, -0.21, -3.5], high=[2.4, 3, 0.21, 3.5])
    model = SpikingActorCritic(enc.size, 2, hidden=(32,), steps=4, seed=seed)
    return PPO("CartPole-v1", model, enc, PPOSettings(num_envs=4, rollout=64, total_steps=total, **kw), seed)


def test_ppo_resumes_exactly_including_environments_in_flight():
    straight = _ppo()
    for _ in range(4):
        straight.iterate()
    first = _ppo()
    for _ in range(2):
        first.iterate()
    state = first.state_dict()
    second = _ppo(seed=5)
    second.load_state_dict(state)
    for _ in range(2):
        second.iterate()
    for a, b in zip(straight.model.parameters(), second.model.parameters()):
        assert torch.equal(a, b)
    assert straight.episode_returns == second.episode_returns
    np.testing.assert_array_equal(straight.obs, second.obs)


def test_ppo_raises_the_return_of_cartpole():
    ppo = _ppo(seed=1, total=16384, lr=2e-3)
    before = np.mean(evaluate("CartPole-v1", ppo.greedy, 10, 100))
    while ppo.iteration < ppo.iterations:
        ppo.iterate()
    after = np.mean(evaluate("CartPole-v1", ppo.greedy, 10, 100))
    assert after > max(2 * before, 100.0), (before, after)


def test_truncated_episodes_are_bootstrapped_terminated_ones_are_not():
    """With a constant-value critic V = c and reward 1 per step, the GAE targets at an episode's last step are
    1 + gamma c after a truncation (time limit) and 1 after a termination."""
    env_kw = {"max_episode_steps": 3}
    env = gym.make("CartPole-v1", **env_kw)
    enc = ObservationEncoder(env.observation_space, 4, low=[-2.4, -3, -0.21, -3.5], high=[2.4, 3, 0.21, 3.5])

    class Constant(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.logits = torch.nn.Parameter(torch.zeros(2))

        def forward(self, x):
            return self.logits.expand(x.shape[0], 2), torch.full((x.shape[0],), 5.0)

    ppo = PPO("CartPole-v1", Constant(), enc, PPOSettings(num_envs=1, rollout=3, total_steps=3, gamma=0.5,
                                                            gae_lambda=0.0, epochs=1, minibatches=1), 0, env_kw)
    captured = {}
    ppo._update = lambda obs, act, logp, adv, ret: captured.update(ret=ret) or {}
    ppo.iterate()
    # steps 1, 2: 1 + 0.5 * 5; step 3 is truncated by the time limit: 1 + 0.5 * V(final obs) = 3.5 too
    np.testing.assert_allclose(captured["ret"].numpy(), [3.5, 3.5, 3.5])
    vec = make_vector_env("CartPole-v1", 1)
    vec.reset(seed=0)
    done = False
    while not done:  # a falling pole: terminated, not truncated
        _, _, term, trunc, _ = vec.step(np.array([0]))
        done = bool(term[0] or trunc[0])
    assert term[0] and not trunc[0]


def test_env_snapshot_round_trip():
    vec = make_vector_env("Acrobot-v1", 2)
    vec.reset(seed=[1, 2])
    vec.step(np.array([0, 2]))
    snap = snapshot(vec)
    a = [vec.step(np.array([1, 1]))[0] for _ in range(5)]
    restore(vec, snap)
    b = [vec.step(np.array([1, 1]))[0] for _ in range(5)]
    np.testing.assert_array_equal(np.stack(a), np.stack(b))


# ------------------------------------------------------------------------------------------ the config kind
def _validate(text: str):
    return validate(load_text(textwrap.dedent(text), "rl.yaml"))


def test_config_errors_name_line_and_key():
    with pytest.raises(ConfigProblems) as err:
        _validate("""\
            kind: rl_agent
            env: {id: CartPole-v1}
            gradient: {hiden: [64]}
            encoder: {neurons_per_dim: 10}
            """)
    text = str(err.value)
    assert "rl.yaml:3: gradient.hiden: unknown key; did you mean 'hidden'?" in text
    assert "unbounded" in text  # CartPole's velocities need obs_low/obs_high
    with pytest.raises(ConfigProblems, match="rl.yaml:2: env: action space .* not supported by the local agent"):
        _validate("""\
            kind: rl_agent
            env: {id: Pendulum-v1}
            agent: local
            """)
    with pytest.raises(ConfigProblems, match="agent: local needs an assembly"):
        _validate("""\
            kind: rl_agent
            env: {id: FrozenLake-v1}
            agent: local
            """)


def test_bundled_rl_configs_validate():
    from braincore.config import load_config

    for name in ("cartpole", "acrobot", "frozenlake", "frozenlake_slippery", "frozenlake_gradient"):
        kind, config = load_config(f"configs/rl/{name}.yaml")
        assert kind.name == "rl_agent"


def test_rl_task_runs_and_resumes_from_its_checkpoint(tmp_path, capsys):
    from tasks.rl.task import run

    text = """\
        kind: rl_agent
        name: tiny
        env: {id: CartPole-v1}
        encoder: {neurons_per_dim: 4, obs_low: [-2.4, -3, -0.21, -3.5], obs_high: [2.4, 3, 0.21, 3.5]}
        gradient: {hidden: [16], steps: 2, total_steps: 512, num_envs: 2, rollout: 64}
        evaluation: {episodes: 3, target: 475}
        checkpoint_every: 1
        progress: false
        """
    _, config = _validate(text)
    first = run(config, {"out": str(tmp_path), "no_plot": True})
    assert first["train_steps"] == 512 and first["eval_episodes"] == 3 and first["solved"] is False
    assert (tmp_path / "tiny.ckpt").is_file()
    _, config = _validate(text)
    again = run(config, {"out": str(tmp_path), "no_plot": True})  # complete: resumes, trains nothing more
    assert "resumed from" in capsys.readouterr().out
    assert again["eval_return_mean"] == first["eval_return_mean"]
    assert again["train_seconds"] == first["train_seconds"]
    json.dumps(again)


@pytest.mark.slow
@pytest.mark.parametrize("name, key", [("cartpole", "solved"), ("acrobot", "solved"), ("frozenlake", "solved")])
def test_bundled_rl_configs_reach_their_targets(tmp_path, name, key):
    """The README's rows (about 0.5-2 minutes each here): `pytest -m slow tests/test_rl.py`."""
    from braincore.config import load_config
    from tasks.rl.task import run

    _, config = load_config(f"configs/rl/{name}.yaml")
    config["progress"] = False
    assert run(config, {"out": str(tmp_path), "no_plot": True})[key] is True


def test_gradient_training_of_the_bundled_assembly_runs_and_is_simulated(tmp_path):
    """configs/rl/frozenlake_gradient.yaml, shortened: PPO on the compiled assembly, then the exported weights
    (plasticity left out, weights frozen) run by the simulator."""
    from braincore.config import load_config
    from tasks.rl.task import run

    _, config = load_config("configs/rl/frozenlake_gradient.yaml")
    config["gradient"]["total_steps"] = 2048
    config["evaluation"]["episodes"] = 4
    config["progress"] = False
    summary = run(config, {"out": str(tmp_path), "no_plot": True})
    assert summary["train_steps"] == 2048 and 0.0 <= summary["simulator_eval_return_mean"] <= 1.0


@needs_sigint
def test_ctrl_c_writes_a_checkpoint_where_it_stops_and_prints_how_to_resume(tmp_path, monkeypatch, capsys):
    from braincore.cli import main

    text = textwrap.dedent("""\
        kind: rl_agent
        name: tiny
        env: {id: CartPole-v1}
        encoder: {neurons_per_dim: 4, obs_low: [-2.4, -3, -0.21, -3.5], obs_high: [2.4, 3, 0.21, 3.5]}
        gradient: {hidden: [16], steps: 2, total_steps: 512, num_envs: 2, rollout: 64}
        evaluation: {episodes: 3}
        checkpoint_every: 3
        progress: false
        """)
    (tmp_path / "tiny.yaml").write_text(text)
    monkeypatch.chdir(tmp_path)
    assert main(["run", "tiny.yaml", "--out", "whole", "--no-plot"]) == 0
    whole = json.loads((tmp_path / "whole" / "tiny.json").read_text())
    real = PPO.iterate
    monkeypatch.setattr(PPO, "iterate", press_ctrl_c_during(real, 2))  # Ctrl-C in the 2nd of 4 iterations
    last = interrupted_cli_run(["run", "tiny.yaml", "--out", "cut", "--no-plot"], capsys)
    assert resume_message("iteration 2/4", "cut/tiny.ckpt", "braincore run tiny.yaml --out cut").match(last), last
    monkeypatch.setattr(PPO, "iterate", real)
    assert main(["run", "tiny.yaml", "--out", "cut", "--no-plot"]) == 0
    assert "resumed from cut/tiny.ckpt" in capsys.readouterr().out
    resumed = json.loads((tmp_path / "cut" / "tiny.json").read_text())
    for key in ("train_episodes", "train_steps", "final_train_return_100", "eval_return_mean"):
        assert resumed[key] == whole[key], key
