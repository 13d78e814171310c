"""Spiking agents in gymnasium environments (``kind: rl_agent`` configs).

``agent: gradient`` trains the surrogate-gradient spiking actor-critic of :mod:`tasks.rl.networks` with PPO
(:mod:`tasks.rl.ppo`); ``agent: local`` trains the corticostriatal synapses of the config's assembly (the usual
``populations``/``projections``/``inputs``/``modulators``/``include`` keys of ``kind: assembly``) by
dopamine-modulated STDP with a TD critic (:mod:`tasks.rl.local_agent`), no gradients. Both read observations
through :mod:`tasks.rl.encoders` (population coding for Box, one-hot for Discrete) and choose among the channels
of a Discrete action space; any other space is refused before training with a clear error.

The run trains with a progress bar (episode return, its moving average over the last 100 episodes), writes
atomic checkpoints (``<out>/<name>.ckpt``: network, optimiser or plastic weights and traces, critic, RNGs, the
environments' states and the episodes in flight) every ``checkpoint_every`` iterations (gradient) or
environment steps (local) and resumes from them exactly, evaluates ``evaluation.episodes`` episodes with fixed
seeds (``evaluation.seed + i``), writes the learning curve (``<out>/<name>_learning_curve.png``), and prints a
final JSON line (mean evaluation return, whether it reaches ``evaluation.target``, wall times). For toy-text
environments (FrozenLake) it also states the learned policy's exact value next to the optimum
(:mod:`tasks.rl.tabular`).
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from braincore.assembly_config import SCHEMA as ASSEMBLY_SCHEMA
from braincore.assembly_config import _semantic_check as assembly_check
from braincore.checkpoint import save_checkpoint
from braincore.config import AnyMapping, Document, Flag, Integer, Kind, ListOf, Quantity, Record, Text, register_kind
from tasks.common import config_key, filled_record, load_resumable, progress_bar, run_setup

from .encoders import ObservationEncoder, check_action_space
from .envs import evaluate, make_env

NUMBER = Quantity("dimensionless")

GRADIENT = filled_record({
    "network": Text("pathways", choices=("pathways", "assembly"),
                    doc="pathways: the actor and critic LIF pathways below; assembly: the config's assembly, "
                        "compiled (sensory and action populations from the local section)"),
    "hidden": ListOf(Integer(minimum=1), default=[128], doc="LIF layer sizes of each pathway"),
    "steps": Integer(8, minimum=1, doc="time steps per environment step"),
    "tau_m": Quantity("dimensionless", 4.0, exclusive_minimum=0.0, doc="membrane time constant, in steps"),
    "tau_out": Quantity("dimensionless", 4.0, exclusive_minimum=0.0, doc="read-out time constant, in steps"),
    "input": Text("current", choices=("current", "spikes")),
    "init_gain": Quantity("dimensionless", 2.0, exclusive_minimum=0.0),
    "surrogate": Text("fast_sigmoid"),
    "total_steps": Integer(100_000, minimum=1, doc="environment steps (all environments together)"),
    "num_envs": Integer(8, minimum=1),
    "rollout": Integer(128, minimum=1, doc="steps per environment per iteration"),
    "epochs": Integer(4, minimum=1), "minibatches": Integer(4, minimum=1),
    "lr": Quantity("dimensionless", 1e-3, exclusive_minimum=0.0),
    "lr_final": Quantity("dimensionless", 0.0, minimum=0.0, doc="final learning rate as a fraction of lr"),
    "gamma": Quantity("dimensionless", 0.99, minimum=0.0), "gae_lambda": Quantity("dimensionless", 0.95, minimum=0.0),
    "clip": Quantity("dimensionless", 0.2, exclusive_minimum=0.0),
    "entropy_coef": Quantity("dimensionless", 0.01, minimum=0.0),
    "value_coef": Quantity("dimensionless", 0.5, minimum=0.0),
    "max_grad_norm": Quantity("dimensionless", 0.5, exclusive_minimum=0.0),
}, doc="the surrogate-gradient actor-critic and PPO")

LOCAL = filled_record({
    "observation": filled_record({"input": Text("observation"), "population": Text("ctx"),
                                  "max_rate": Quantity("frequency", 100.0, exclusive_minimum=0.0)}),
    "actions": Text("d1", doc="population split into one channel per action"),
    "exploration": filled_record({"input": Text("exploration", doc="'none' for no exploration input")}),
    "efference": filled_record({"input": Text("efference", doc="'none' for no efference copy"),
                                "rate": Quantity("frequency", 300.0, minimum=0.0)}),
    "decision": Quantity("time", 20.0, exclusive_minimum=0.0),
    "commit": Quantity("time", 10.0, minimum=0.0),
    "reward_window": Quantity("time", 10.0, exclusive_minimum=0.0),
    "dopamine": filled_record({"channel": Text("dopamine"), "gain": Quantity("dimensionless", 1.0)}),
    "critic": filled_record({"learning_rate": Quantity("dimensionless", 0.1, minimum=0.0),
                             "gamma": Quantity("dimensionless", 0.99, minimum=0.0),
                             "initial": Quantity("dimensionless", 0.0,
                                                 doc="value of an unvisited state (optimism: the largest return)")}),
    "num_envs": Integer(16, minimum=1),
    "episodes": Integer(1000, minimum=1, doc="training episodes (all environments together)"),
}, doc="the dopamine-modulated STDP agent")

SCHEMA = Record({
    **ASSEMBLY_SCHEMA.fields,
    "env": Record({"id": Text(required=True, doc="a gymnasium id, e.g. CartPole-v1"),
                   "kwargs": AnyMapping(default={}, doc="keyword arguments of gym.make")}, required=True),
    "agent": Text("gradient", choices=("gradient", "local")),
    "encoder": filled_record({
        "neurons_per_dim": Integer(10, minimum=2, doc="receptive fields per Box dimension"),
        "obs_low": ListOf(NUMBER, doc="range of each Box dimension (default: the space's bounds)"),
        "obs_high": ListOf(NUMBER)}),
    "gradient": GRADIENT,
    "local": LOCAL,
    "evaluation": filled_record({
        "episodes": Integer(100, minimum=1), "seed": Integer(10_000, minimum=0),
        "parallel": Integer(20, minimum=1, doc="episodes played at once (gradient agent)"),
        "target": Quantity("dimensionless", None, doc="mean return that counts as solved"),
        "exploration": Flag(True, doc="local agent: keep the exploration input on while evaluating")}),
    "threads": Integer(None, minimum=1, doc="torch CPU threads (default: leave as is)"),
    "seeds": Integer(1, minimum=1, doc="train seeds seed..seed+seeds-1 in parallel processes (tasks.rl.parallel)"),
    "checkpoint_every": Integer(20, minimum=1, doc="PPO iterations (gradient) or steps of the vector of "
                                                    "environments (local)"),
    "resume": Flag(True),
    "progress": Flag(True),
})


def _semantic_check(config: dict, doc: Document, problems: list) -> None:
    env = config.get("env") or {}
    if env.get("id"):
        try:
            probe = make_env(env["id"], **(env.get("kwargs") or {}))
        except (ValueError, TypeError) as err:
            problems.append(doc.problem(("env", "id"), str(err)))
        else:
            try:
                check_action_space(probe.action_space)
                enc = config.get("encoder") or {}
                ObservationEncoder(probe.observation_space, enc.get("neurons_per_dim") or 10,
                                   enc.get("obs_low"), enc.get("obs_high"))
            except ValueError as err:
                problems.append(doc.problem(("env",), str(err)))
            probe.close()
    uses_assembly = config.get("agent") == "local" or (config.get("gradient") or {}).get("network") == "assembly"
    if uses_assembly:
        if not config.get("populations") and not config.get("include"):
            what = "agent: local" if config.get("agent") == "local" else "gradient.network: assembly"
            problems.append(doc.problem(("populations",), f"{what} needs an assembly (populations, projections, "
                                                          f"inputs, modulators)"))
            return
        assembly_check(config, doc, problems)


# ------------------------------------------------------------------------------------------ agents
def _encoder(config: dict, space) -> ObservationEncoder:
    enc = config["encoder"]
    return ObservationEncoder(space, enc["neurons_per_dim"], enc["obs_low"], enc["obs_high"])


def _gradient_agent(config: dict, encoder: ObservationEncoder, n_actions: int):
    from .networks import SpikingActorCritic

    g = config["gradient"]
    if g["network"] == "assembly":
        from .networks import AssemblyActorCritic

        obs = config["local"]["observation"]
        steps = int(round(config["local"]["decision"] / config["_assembly"].run.dt))
        model = AssemblyActorCritic(config["_assembly"], obs["population"], config["local"]["actions"],
                                    encoder.size, n_actions, steps, obs["max_rate"], seed=config["seed"])
        return _ppo(config, model, encoder)
    model = SpikingActorCritic(encoder.size, n_actions, hidden=g["hidden"], steps=g["steps"], tau_m=g["tau_m"],
                               tau_out=g["tau_out"], input_mode=g["input"], init_gain=g["init_gain"],
                               surrogate=g["surrogate"], seed=config["seed"])
    return _ppo(config, model, encoder)


def _ppo(config: dict, model, encoder: ObservationEncoder):
    from .ppo import PPO, PPOSettings

    g = config["gradient"]
    names = ("num_envs", "rollout", "epochs", "minibatches", "gamma", "gae_lambda", "clip", "lr", "lr_final",
             "value_coef", "entropy_coef", "max_grad_norm", "total_steps")
    settings = PPOSettings(**{k: g[k] for k in names})
    return PPO(config["env"]["id"], model, encoder, settings, config["seed"], config["env"]["kwargs"])


def _local_agent(config: dict, encoder: ObservationEncoder, n_actions: int):
    from .local_agent import DopamineAgent, LocalSettings

    c = config["local"]
    optional = {"none": None}
    settings = LocalSettings(
        observation_input=c["observation"]["input"], observation_population=c["observation"]["population"],
        max_rate=c["observation"]["max_rate"], actions=c["actions"],
        exploration_input=optional.get(c["exploration"]["input"], c["exploration"]["input"]),
        efference_input=optional.get(c["efference"]["input"], c["efference"]["input"]),
        efference_rate=c["efference"]["rate"], decision=c["decision"], commit=c["commit"],
        reward_window=c["reward_window"], channel=c["dopamine"]["channel"], gain=c["dopamine"]["gain"],
        critic_lr=c["critic"]["learning_rate"], critic_initial=c["critic"]["initial"], gamma=c["critic"]["gamma"],
        num_envs=c["num_envs"],
        episodes=c["episodes"])
    return DopamineAgent(config["_assembly"], config["env"]["id"], encoder, n_actions, settings, config["seed"],
                         config["env"]["kwargs"], device=config["device"])


def _moving_average(values: list, window: int = 100) -> float:
    return float(np.mean(values[-window:])) if values else 0.0


# ------------------------------------------------------------------------------------------ the runner
def run(config: dict, options: dict) -> dict:
    """One seed (:func:`run_single`), or several in parallel under torchrun or with ``seeds: N``
    (:mod:`tasks.rl.parallel`)."""
    from .parallel import parallel_requested, run_parallel

    return run_parallel(config, options, run_single) if parallel_requested(config) else run_single(config, options)


def run_single(config: dict, options: dict) -> dict:
    out_dir, progress = run_setup(config, options)
    torch.manual_seed(config["seed"])
    env_id, kind = config["env"]["id"], config["agent"]
    probe = make_env(env_id, **config["env"]["kwargs"])
    encoder = _encoder(config, probe.observation_space)
    n_actions = check_action_space(probe.action_space)
    agent = (_gradient_agent if kind == "gradient" else _local_agent)(config, encoder, n_actions)
    key = config_key(config, ("seed", "env", "agent", "encoder", kind, "populations", "projections", "inputs",
                              "include", "modulators", "dt"))
    ckpt_path = out_dir / f"{config['name']}.ckpt"
    train_seconds = 0.0
    state = load_resumable(ckpt_path, key, config["resume"])
    if state is not None:
        agent.load_state_dict(state["agent"])
        train_seconds = float(state["train_seconds"])
        print(f"resumed from {ckpt_path}")

    def save(seconds: float) -> None:
        save_checkpoint(ckpt_path, {"config_key": key, "agent": agent.state_dict(), "train_seconds": seconds})

    if kind == "gradient":
        total, done, unit = agent.iterations, agent.iteration, "iteration"
        network = (f"the assembly's network, compiled ({agent.model.steps} steps per decision)"
                   if config["gradient"]["network"] == "assembly" else
                   f"spiking actor-critic {encoder.size}-{config['gradient']['hidden']}-{n_actions} "
                   f"({config['gradient']['steps']} steps per decision)")
        print(f"rl_agent: {env_id}, {network}, PPO over {agent.iterations * agent.s.num_envs * agent.s.rollout} "
              f"environment steps")
    else:
        total, done, unit = agent.s.episodes, agent.episodes, "episode"
        print(f"rl_agent: {env_id}, dopamine-modulated STDP agent ({len(agent.sim.populations)} populations), "
              f"{agent.s.episodes} episodes on {agent.s.num_envs} environments")
    since_save = 0
    with progress_bar(total, "training", progress, unit=unit) as bar:
        bar.update(min(done, total))
        while done < total:
            start = time.perf_counter()
            if kind == "gradient":
                agent.iterate()
                new = agent.iteration
            else:
                agent.train_step()
                new = min(agent.episodes, total)
            train_seconds += time.perf_counter() - start
            bar.update(new - done)
            done = new
            since_save += 1
            returns = agent.episode_returns
            if returns:
                bar.set_postfix_str(f"return {returns[-1]:.1f}, last 100 {_moving_average(returns):.2f}",
                                    refresh=False)
            if since_save >= config["checkpoint_every"] or done >= total:
                save(train_seconds)
                since_save = 0
    print(f"trained: {len(agent.episode_returns)} episodes, {agent.steps} steps, {train_seconds:.1f} s")

    ev = config["evaluation"]
    start = time.perf_counter()
    if kind == "local":
        agent.set_exploration(ev["exploration"])
        policy, parallel = agent.policy, agent.s.num_envs
    else:
        policy, parallel = agent.greedy, ev["parallel"]
    returns = evaluate(env_id, policy, ev["episodes"], ev["seed"], parallel, config["env"]["kwargs"])
    eval_seconds = time.perf_counter() - start
    mean = float(np.mean(returns))
    summary: dict[str, Any] = {
        "task": "rl_agent", "env": env_id, "env_kwargs": config["env"]["kwargs"], "agent": kind,
        "seed": config["seed"], "train_episodes": len(agent.episode_returns), "train_steps": agent.steps,
        "final_train_return_100": round(_moving_average(agent.episode_returns), 4),
        "eval_episodes": len(returns), "eval_seed": ev["seed"], "eval_return_mean": round(mean, 4),
        "eval_return_std": round(float(np.std(returns)), 4), "eval_return_min": float(np.min(returns)),
        "train_seconds": round(train_seconds, 2), "eval_seconds": round(eval_seconds, 2),
    }
    if ev["target"] is not None:
        summary["target"] = ev["target"]
        summary["solved"] = bool(mean >= ev["target"])
        hit = _first_solved(agent.episode_returns, ev["target"])
        summary["episodes_to_target_100"] = hit
    if kind == "gradient" and config["gradient"]["network"] == "assembly":
        summary.update(_simulate_exported(config, agent, encoder, n_actions))
    if hasattr(probe.unwrapped, "P") and kind == "local":
        summary.update(_tabular_report(agent, probe))
    probe.close()
    if not options.get("no_plot"):
        png = _plot_curve(agent, out_dir / f"{config['name']}_learning_curve.png", env_id, kind, ev["target"])
        if png:
            summary["learning_curve"] = str(png)
    summary["checkpoint"] = str(ckpt_path)
    print(f"evaluation over {len(returns)} episodes (seeds {ev['seed']}..{ev['seed'] + len(returns) - 1}): "
          f"mean return {mean:.3f} (std {np.std(returns):.3f}, min {np.min(returns):.1f})"
          + (f"; target {ev['target']:g}: {'reached' if summary['solved'] else 'not reached'}"
             if ev["target"] is not None else ""))
    agent.close()
    print(json.dumps(summary))
    return summary


def _first_solved(returns: list, target: float, window: int = 100) -> "int | None":
    """The number of training episodes after which the moving average over ``window`` first reaches target."""
    if len(returns) < window:
        return None
    avg = np.convolve(np.asarray(returns, dtype=float), np.ones(window) / window, mode="valid")
    hits = np.flatnonzero(avg >= target)
    return int(hits[0] + window) if hits.size else None


def _simulate_exported(config: dict, ppo, encoder: ObservationEncoder, n_actions: int) -> dict:
    """The gradient-trained weights written back into the assembly and run by the simulator: the local agent's
    policy (Poisson sensory spikes, spike-count choice, exploration off) on the exported network, its weights
    frozen (the plasticity rules are left out of this evaluation copy; the exported description keeps them)."""
    ev = config["evaluation"]
    from braincore.graph import Assembly

    data = ppo.model.export().to_dict()
    for projection in data["projections"]:
        projection.pop("plasticity", None)
    exported = Assembly.from_dict(data)
    agent = _local_agent({**config, "_assembly": exported}, encoder, n_actions)
    agent.set_exploration(False)
    returns = evaluate(config["env"]["id"], agent.policy, ev["episodes"], ev["seed"], agent.s.num_envs,
                       config["env"]["kwargs"])
    agent.close()
    mean = float(np.mean(returns))
    print(f"the trained weights exported to the assembly and run by the simulator: mean return {mean:.3f}")
    return {"simulator_eval_return_mean": round(mean, 4)}


def _tabular_report(agent, env) -> dict:
    from .tabular import best_stationary_policy, optimal_values, policy_values

    horizon = env.spec.max_episode_steps or 100
    table = agent.policy_table()
    v_star = optimal_values(env, horizon)[0]
    best, v_best = best_stationary_policy(env, horizon)
    v_pi = policy_values(env, table, horizon)[0]
    print(f"learned policy (majority action per state): exact value {v_pi:.4f} from the start state; best "
          f"stationary policy {v_best:.4f} ({100 * v_pi / max(v_best, 1e-12):.1f} %); optimum with a clock "
          f"{v_star:.4f}")
    return {"policy": [int(a) for a in table], "policy_value": round(float(v_pi), 4),
            "best_stationary_policy": [int(a) for a in best], "best_stationary_value": round(v_best, 4),
            "optimal_value": round(float(v_star), 4),
            "policy_optimality": round(float(v_pi / max(v_best, 1e-12)), 4)}


def _plot_curve(agent, path: Path, env_id: str, kind: str, target) -> "Path | None":
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    returns = np.asarray(agent.episode_returns, dtype=float)
    if returns.size == 0:
        return None
    fig, ax = plt.subplots(figsize=(7, 3.5))
    x = np.arange(1, returns.size + 1)
    ax.plot(x, returns, lw=0.5, alpha=0.4, label="episode return")
    if returns.size >= 10:
        w = min(100, returns.size)
        ax.plot(x[w - 1:], np.convolve(returns, np.ones(w) / w, mode="valid"), lw=2, label=f"mean of last {w}")
    if target is not None:
        ax.axhline(target, color="k", ls="--", lw=1, label=f"target {target:g}")
    ax.set_xlabel("training episode")
    ax.set_ylabel("return")
    ax.set_title(f"{env_id}: {'PPO, surrogate gradients' if kind == 'gradient' else 'dopamine-modulated STDP'}")
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


KIND = register_kind(Kind("rl_agent", SCHEMA, run, _semantic_check,
                          "a spiking agent in a gymnasium environment: PPO with surrogate gradients, or "
                          "dopamine-modulated STDP with a TD critic"))
