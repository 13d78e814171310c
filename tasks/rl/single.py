"""One training run of a ``kind: rl_agent`` config with one seed (:func:`run_single`), and the agents it builds.

Shared by the config kind's runner (:func:`tasks.rl.task.run`, which runs one seed with it) and the parallel
seeds (:mod:`tasks.rl.parallel`, which runs it once per seed), so that neither of those imports the other.

The run trains with a progress bar (episode return, its moving average over the last 100 episodes), writes
atomic checkpoints (``<out>/<name>.ckpt``) every ``checkpoint_every`` iterations (gradient) or environment steps
(local) and on Ctrl-C (after the iteration or step in progress, printing the command that resumes), and resumes
from them exactly, evaluates ``evaluation.episodes`` episodes with fixed seeds
(``evaluation.seed + i``), writes the learning curve (``<out>/<name>_learning_curve.png``) and prints a final
JSON line; for toy-text environments (FrozenLake) it also states the learned policy's exact value next to the
optimum (:mod:`tasks.rl.tabular`).
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from braincore.checkpoint import save_checkpoint
from tasks.common import config_key, load_resumable, progress_bar, run_setup, safe_points

from .actions import ActionSpec, action_spec
from .encoders import ObservationEncoder, online_setting
from .envs import evaluate, make_env

__all__ = ["run_single"]


# ------------------------------------------------------------------------------------------ agents
def _encoder(config: dict, space) -> ObservationEncoder:
    enc = config["encoder"]
    return ObservationEncoder(space, enc["neurons_per_dim"], enc["obs_low"], enc["obs_high"],
                              online=online_setting(enc["range"]), warmup=enc["warmup"], width=enc["width"])


def _gradient_agent(config: dict, encoder: ObservationEncoder, actions: ActionSpec):
    from .networks import SpikingActorCritic

    g = config["gradient"]
    n_actions = actions.dim
    if actions.continuous:
        return _continuous_agent(config, encoder, actions)
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


def _continuous_agent(config: dict, encoder: ObservationEncoder, actions: ActionSpec):
    """The population-coded spiking actor (or the non-spiking one of the same size) for a Box action space, with
    non-spiking critics, trained by TD3 (a deterministic policy) or PPO (a Gaussian one)."""
    from .networks import GaussianActorCritic, MLPActor, PopulationActor, QCritic

    g, seed = config["gradient"], config["seed"]
    td3 = g["algorithm"] == "td3"
    if g["actor"] == "spiking":
        actor = PopulationActor(encoder.size, actions.dim, hidden=g["hidden"], population=g["population"],
                                steps=g["steps"], tau_m=g["tau_m"], init_gain=g["init_gain"],
                                surrogate=g["surrogate"], squash=td3, seed=seed)
    else:
        actor = MLPActor(encoder.size, actions.dim, hidden=g["hidden"], squash=td3, seed=seed)
    if not td3:
        return _ppo(config, GaussianActorCritic(actor, encoder.size, actions.dim, g["critic_hidden"], g["log_std"],
                                                seed=seed), encoder)
    from .td3 import TD3, TD3Settings

    critics = (QCritic(encoder.size, actions.dim, g["critic_hidden"], seed=seed + 1),
               QCritic(encoder.size, actions.dim, g["critic_hidden"], seed=seed + 2))
    settings = TD3Settings(num_envs=g["num_envs"], total_steps=g["total_steps"], gamma=g["gamma"], **g["td3"])
    return TD3(config["env"]["id"], actor, critics, encoder, settings, seed, config["env"]["kwargs"])


def _ppo(config: dict, model, encoder: ObservationEncoder):
    from .ppo import PPO, PPOSettings

    g = config["gradient"]
    names = ("num_envs", "rollout", "epochs", "minibatches", "gamma", "gae_lambda", "clip", "lr", "lr_final",
             "value_coef", "entropy_coef", "max_grad_norm", "total_steps", "normalize_reward")
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
        greedy_decision=c["greedy_decision"],
        reward_window=c["reward_window"], channel=c["dopamine"]["channel"], gain=c["dopamine"]["gain"],
        critic_lr=c["critic"]["learning_rate"], critic_initial=c["critic"]["initial"], gamma=c["critic"]["gamma"],
        critic_trace=c["critic"]["trace"], scale_dopamine=c["dopamine"]["scale"], num_envs=c["num_envs"],
        episodes=c["episodes"], backend=c["backend"], cells_per_channel=c["observation"]["cells_per_channel"],
        cells_per_action=c["cells_per_action"], reset_eligibility=c["reset_eligibility"])
    return DopamineAgent(config["_assembly"], config["env"]["id"], encoder, n_actions, settings, config["seed"],
                         config["env"]["kwargs"], device=config["device"])


def _describe_gradient(config: dict, encoder: ObservationEncoder, actions: ActionSpec) -> str:
    g = config["gradient"]
    if g["network"] == "assembly":
        steps = int(round(config["local"]["decision"] / config["_assembly"].run.dt))
        return f"the assembly's network, compiled ({steps} steps per decision)"
    if not actions.continuous:
        return f"spiking actor-critic {encoder.size}-{g['hidden']}-{actions.dim} ({g['steps']} steps per decision)"
    if g["actor"] == "mlp":
        return f"non-spiking actor {encoder.size}-{g['hidden']}-{actions.dim} (ReLU), critics {g['critic_hidden']}"
    return f"population-coded spiking actor {encoder.size}-{g['hidden']}-{actions.dim}x{g['population']} " \
           f"({g['steps']} steps per action), non-spiking critics {g['critic_hidden']}"


def _moving_average(values: list, window: int = 100) -> float:
    return float(np.mean(values[-window:])) if values else 0.0


# ------------------------------------------------------------------------------------------ the run
def run_single(config: dict, options: dict) -> dict:
    out_dir, progress = run_setup(config, options)
    torch.manual_seed(config["seed"])
    env_id, kind = config["env"]["id"], config["agent"]
    probe = make_env(env_id, **config["env"]["kwargs"])
    encoder = _encoder(config, probe.observation_space)
    actions = action_spec(probe.action_space)
    n_actions = actions.dim
    agent = _gradient_agent(config, encoder, actions) if kind == "gradient" else \
        _local_agent(config, encoder, n_actions)
    key = config_key(config, ("seed", "env", "agent", "encoder", kind, "populations", "projections", "inputs",
                              "include", "modulators", "dt"))
    ckpt_path = out_dir / f"{config['name']}.ckpt"
    train_seconds = 0.0
    state = load_resumable(ckpt_path, key, config["resume"])
    if state is not None:
        agent.load_state_dict(state["agent"])
        train_seconds = float(state["train_seconds"])
        print(f"resumed from {ckpt_path}")

    ev = config["evaluation"]
    # the local agent's checks during training (evaluation.every): [episodes, steps, check mean, full mean or None]
    checks: list = list(state.get("checks", [])) if state is not None else []
    solved_at = state.get("solved_at") if state is not None else None
    final_returns: "list | None" = None

    def save(seconds: float) -> None:
        save_checkpoint(ckpt_path, {"config_key": key, "agent": agent.state_dict(), "train_seconds": seconds,
                                    "checks": checks, "solved_at": solved_at})

    if kind == "gradient":
        total, done, unit = agent.iterations, agent.iteration, "iteration"
        print(f"rl_agent: {env_id}, {_describe_gradient(config, encoder, actions)}, "
              f"{config['gradient']['algorithm'].upper()} over {config['gradient']['total_steps']} environment "
              f"steps")
    else:
        total, done, unit = agent.s.episodes, agent.episodes, "episode"
        print(f"rl_agent: {env_id}, dopamine-modulated STDP agent ({len(agent.sim.populations)} populations), "
              f"{agent.s.episodes} episodes on {agent.s.num_envs} environments")
    since_save = 0
    with progress_bar(total, "training", progress, unit=unit) as bar, \
            safe_points(ckpt_path, lambda: save(train_seconds)) as points:
        bar.update(min(done, total))
        while done < total and solved_at is None:
            start = time.perf_counter()
            if kind == "gradient":
                agent.iterate()
                new = agent.iteration
            else:
                agent.train_step()
                new = min(agent.episodes, total)
            train_seconds += time.perf_counter() - start
            if kind == "local" and ev["every"] and agent.episodes // ev["every"] > len(checks):
                final_returns = _check(agent, config, checks)
                if final_returns is not None:
                    solved_at = agent.episodes
            bar.update(new - done)
            done = new
            since_save += 1
            returns = agent.episode_returns
            if returns:
                bar.set_postfix_str(f"return {returns[-1]:.1f}, last 100 {_moving_average(returns):.2f}",
                                    refresh=False)
            if since_save >= config["checkpoint_every"] or done >= total or solved_at is not None:
                save(train_seconds)
                since_save = 0
            points.stop(f"{unit} {done}/{total}")  # Ctrl-C: checkpoint here and stop
    print(f"trained: {len(agent.episode_returns)} episodes, {agent.steps} steps, {train_seconds:.1f} s")

    start = time.perf_counter()
    if kind == "local":
        returns = final_returns if final_returns is not None else \
            agent.evaluate(ev["episodes"], ev["seed"], ev["exploration"], config["env"]["kwargs"])
    else:
        returns = evaluate(env_id, agent.greedy, ev["episodes"], ev["seed"], ev["parallel"], config["env"]["kwargs"])
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
        steps_at = getattr(agent, "episode_steps", None)
        summary["steps_to_target_100"] = int(steps_at[hit - 1]) if hit is not None and steps_at else None
        if kind == "local" and ev["every"]:
            summary["episodes_to_solve"] = solved_at  # the first check whose full evaluation reached the target
            summary["steps_to_solve"] = next((c[1] for c in checks if c[3] is not None and c[3] >= ev["target"]),
                                             None)
    if kind == "local" and ev["every"]:
        summary["checks"] = checks
    if kind == "gradient" and config["gradient"]["network"] == "assembly":
        summary.update(_simulate_exported(config, agent, encoder, n_actions))
    if hasattr(probe.unwrapped, "P") and kind == "local":
        summary.update(_tabular_report(agent, probe))
    probe.close()
    if not options.get("no_plot"):
        g = config["gradient"]
        title = "dopamine-modulated STDP" if kind == "local" else f"{g['algorithm'].upper()}, " + \
            ("non-spiking actor" if actions.continuous and g["actor"] == "mlp" else "spiking, surrogate gradients")
        png = _plot_curve(agent, out_dir / f"{config['name']}_learning_curve.png", env_id, title, ev["target"],
                          checks)
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


def _check(agent, config: dict, checks: list) -> "list | None":
    """A check during training (``evaluation.every``): ``check_episodes`` episodes on their own seeds; when their
    mean reaches the target (if one is set), the full evaluation on the evaluation seeds. Appends ``[episodes,
    steps, check mean, full mean or None]`` to ``checks``; returns the full evaluation's returns when they reach
    the target (training is then done), else ``None``. Neither changes the training
    (:meth:`DopamineAgent.evaluate`)."""
    ev, kwargs = config["evaluation"], config["env"]["kwargs"]
    quick = float(np.mean(agent.evaluate(ev["check_episodes"], ev["check_seed"], ev["exploration"], kwargs)))
    full = None
    if ev["target"] is not None and quick >= ev["target"]:
        returns = agent.evaluate(ev["episodes"], ev["seed"], ev["exploration"], kwargs)
        full = float(np.mean(returns))
    checks.append([agent.episodes, agent.steps, round(quick, 3), None if full is None else round(full, 3)])
    return returns if full is not None and full >= ev["target"] else None


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


def _plot_curve(agent, path: Path, env_id: str, title: str, target, checks: "list | None" = None) -> "Path | None":
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
    if checks:
        ax.plot([c[0] for c in checks], [c[2] for c in checks], "o", ms=3, color="C2",
                label="check (learning off)")
        full = [c for c in checks if c[3] is not None]
        if full:
            ax.plot([c[0] for c in full], [c[3] for c in full], "s", ms=5, color="C3",
                    label="full evaluation")
    if target is not None:
        ax.axhline(target, color="k", ls="--", lw=1, label=f"target {target:g}")
    ax.set_xlabel("training episode")
    ax.set_ylabel("return")
    ax.set_title(f"{env_id}: {title}")
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
