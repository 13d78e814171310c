"""Spiking agents in gymnasium environments (``kind: rl_agent`` configs).

``agent: gradient`` trains the surrogate-gradient spiking actor-critic of :mod:`tasks.rl.networks` with PPO
(:mod:`tasks.rl.ppo`); ``agent: local`` trains the corticostriatal synapses of the config's assembly (the usual
``populations``/``projections``/``inputs``/``modulators``/``include`` keys of ``kind: assembly``) by
dopamine-modulated STDP with a TD critic (:mod:`tasks.rl.local_agent`), no gradients. Both read observations
through :mod:`tasks.rl.encoders` (population coding for Box, one-hot for Discrete) and choose among the channels
of a Discrete action space. For a continuous (Box) action space the gradient agent uses the population-coded
spiking actor (PopSAN; or ``actor: mlp``, a non-spiking one of the same size) with non-spiking critics, trained by
TD3 (:mod:`tasks.rl.td3`, ``algorithm: td3``) or by PPO with a Gaussian policy (:mod:`tasks.rl.actions` scales and
clips the actions). Any other space is refused before training with a clear error.

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

from braincore.assembly_config import SCHEMA as ASSEMBLY_SCHEMA
from braincore.assembly_config import _semantic_check as assembly_check
from braincore.config import AnyMapping, Document, Flag, Integer, Kind, ListOf, Quantity, Record, Text, register_kind
from tasks.common import assembly_memory_problems, filled_record, layered_needs, memory_problem, lazy_attributes

from .actions import action_spec, check_action_space
from .encoders import ObservationEncoder, online_setting
from .envs import make_env

# the runners (.single, .parallel) import PyTorch: they load when a config runs, not when one is validated

NUMBER = Quantity("dimensionless")

TD3 = filled_record({
    "buffer_size": Integer(1_000_000, minimum=1, doc="replay buffer capacity (transitions)"),
    "batch_size": Integer(256, minimum=1),
    "start_steps": Integer(5000, minimum=0, doc="environment steps of uniformly random actions first"),
    "tau": Quantity("dimensionless", 0.005, exclusive_minimum=0.0, doc="target network update rate (<= 1)"),
    "actor_lr": Quantity("dimensionless", 1e-3, exclusive_minimum=0.0),
    "critic_lr": Quantity("dimensionless", 1e-3, exclusive_minimum=0.0),
    "policy_delay": Integer(2, minimum=1, doc="critic steps per actor and target step"),
    "noise": Text("gaussian", choices=("gaussian", "ou"), doc="exploration noise: white Gaussian, or "
                                                               "Ornstein-Uhlenbeck (temporally correlated)"),
    "exploration_noise": Quantity("dimensionless", 0.1, minimum=0.0, doc="its SD, in unit-box units"),
    "ou_theta": Quantity("dimensionless", 0.15, exclusive_minimum=0.0, doc="OU mean reversion per step (<= 1)"),
    "target_noise": Quantity("dimensionless", 0.2, minimum=0.0, doc="target policy smoothing SD"),
    "target_noise_clip": Quantity("dimensionless", 0.5, minimum=0.0),
    "steps_per_iteration": Integer(1000, minimum=1, doc="environment steps per iteration (progress, checkpoints)"),
}, doc="TD3 (gradient.algorithm: td3)")

GRADIENT = filled_record({
    "network": Text("pathways", choices=("pathways", "assembly"),
                    doc="pathways: the actor and critic LIF pathways below; assembly: the config's assembly, "
                        "compiled (sensory and action populations from the local section)"),
    "algorithm": Text("ppo", choices=("ppo", "td3"), doc="td3: continuous (Box) actions only"),
    "actor": Text("spiking", choices=("spiking", "mlp"),
                  doc="continuous actions: spiking: the population-coded spiking actor (PopSAN); mlp: a "
                      "non-spiking actor of the same size (the baseline)"),
    "population": Integer(10, minimum=1, doc="continuous actions: action-population cells per action component"),
    "critic_hidden": ListOf(Integer(minimum=1), default=[256, 256],
                            doc="continuous actions: hidden sizes of the non-spiking critics"),
    "log_std": Quantity("dimensionless", -0.5, doc="PPO, continuous actions: initial log SD of the Gaussian"),
    "normalize_reward": Flag(False, doc="PPO: divide rewards by the running SD of the discounted return"),
    "td3": TD3,
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
                                  "max_rate": Quantity("frequency", 100.0, exclusive_minimum=0.0),
                                  "cells_per_channel": Integer(None, minimum=1,
                                                               doc="size the population: this many cells per "
                                                                   "encoder channel (default: its YAML size)")}),
    "actions": Text("d1", doc="population split into one channel per action"),
    "cells_per_action": Integer(None, minimum=1, doc="size the action population (and the efference copy's "
                                                     "target): this many cells per action (default: YAML sizes)"),
    "exploration": filled_record({"input": Text("exploration", doc="'none' for no exploration input")}),
    "efference": filled_record({"input": Text("efference", doc="'none' for no efference copy"),
                                "rate": Quantity("frequency", 300.0, minimum=0.0)}),
    "decision": Quantity("time", 20.0, exclusive_minimum=0.0),
    "greedy_decision": Quantity("time", None, exclusive_minimum=0.0,
                                doc="the decision period with exploration off (evaluation; default: decision): a "
                                    "longer spike count averages out the sensory noise, the spiking argmax"),
    "commit": Quantity("time", 10.0, minimum=0.0),
    "reward_window": Quantity("time", 10.0, exclusive_minimum=0.0),
    "dopamine": filled_record({"channel": Text("dopamine"), "gain": Quantity("dimensionless", 1.0),
                               "scale": Flag(False, doc="divide the TD error by its running RMS before release "
                                                        "(the reward's unit drops out)")}),
    "critic": filled_record({"learning_rate": Quantity("dimensionless", 0.1, minimum=0.0),
                             "gamma": Quantity("dimensionless", 0.99, minimum=0.0),
                             "trace": Quantity("dimensionless", 0.0, minimum=0.0,
                                               doc="TD(lambda) trace decay of the critic (0: TD(0))"),
                             "initial": Quantity("dimensionless", 0.0,
                                                 doc="value of an unvisited state (optimism: the largest return)")}),
    "backend": Text("auto", choices=("auto", "native", "torch"), doc="the simulator's engine"),
    "reset_eligibility": Flag(False, doc="zero an environment's synaptic tags and plasticity traces when its "
                                         "episode ends (tags that outlive a step: tau_c >> the step)"),
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
        "range": Text("space", choices=("space", "online", "auto"),
                      doc="space: obs_low/obs_high, else the space's bounds; online: mean +- width std of the "
                          "first warmup observations; auto: the space's bounds where finite, online elsewhere"),
        "warmup": Integer(5000, minimum=1, doc="observations that estimate online ranges"),
        "width": Quantity("dimensionless", 3.0, exclusive_minimum=0.0, doc="online range: standard deviations "
                                                                          "each side of the mean"),
        "obs_low": ListOf(NUMBER, doc="range of each Box dimension (default: the space's bounds)"),
        "obs_high": ListOf(NUMBER)}),
    "gradient": GRADIENT,
    "local": LOCAL,
    "evaluation": filled_record({
        "episodes": Integer(100, minimum=1), "seed": Integer(10_000, minimum=0),
        "parallel": Integer(20, minimum=1, doc="episodes played at once (gradient agent)"),
        "target": Quantity("dimensionless", None, doc="mean return that counts as solved"),
        "every": Integer(None, minimum=1, doc="local agent: every this many training episodes, a check on "
                                             "check_episodes episodes (seeds check_seed + i); when it reaches the "
                                             "target (if set), the full evaluation; when that does too, training "
                                             "stops"),
        "check_episodes": Integer(16, minimum=1), "check_seed": Integer(20_000, minimum=0),
        "exploration": Flag(True, doc="local agent: keep the exploration input on while evaluating")}),
    "threads": Integer(None, minimum=1, doc="torch CPU threads (default: leave as is)"),
    "seeds": Integer(1, minimum=1, doc="train seeds seed..seed+seeds-1 in parallel processes (tasks.rl.parallel)"),
    "checkpoint_every": Integer(20, minimum=1, doc="PPO iterations (gradient) or steps of the vector of "
                                                    "environments (local)"),
    "resume": Flag(True),
    "progress": Flag(True),
})


def _semantic_check(config: dict, doc: Document, problems: list) -> None:
    n_actions, encoder = None, None
    env = config.get("env") or {}
    if env.get("id"):
        try:
            probe = make_env(env["id"], **(env.get("kwargs") or {}))
        except (ValueError, TypeError) as err:
            problems.append(doc.problem(("env", "id"), str(err)))
        else:
            try:
                spec = action_spec(probe.action_space)
                if config.get("agent") == "local":
                    check_action_space(probe.action_space)
                n_actions = spec.dim
                enc = config.get("encoder") or {}
                encoder = ObservationEncoder(probe.observation_space, enc.get("neurons_per_dim") or 10,
                                             enc.get("obs_low"), enc.get("obs_high"),
                                             online=online_setting(enc.get("range")),
                                             warmup=enc.get("warmup") or 5000,
                                             width=enc.get("width") or 3.0)
            except ValueError as err:
                problems.append(doc.problem(("env",), str(err)))
            probe.close()
    for path in (("gradient", "gamma"), ("gradient", "gae_lambda"), ("local", "critic", "gamma"),
                 ("local", "critic", "trace")):
        value = config
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if value is not None and value > 1:
            what = {"gamma": "a discount factor", "gae_lambda": "the GAE weight"}.get(path[-1], "a trace decay")
            problems.append(doc.problem(path, f"{what} must be in [0, 1], got {value:g} (returns would grow "
                                              f"without bound)"))
    gradient = config.get("gradient") or {}
    if n_actions is not None and config.get("agent") != "local":
        continuous = spec.continuous
        if continuous and gradient.get("network") == "assembly":
            problems.append(doc.problem(("gradient", "network"), f"action space {probe.action_space}: the assembly "
                                        f"reads Discrete action channels; continuous actions use the "
                                        f"population-coded actor (network: pathways)"))
        elif not continuous and gradient.get("algorithm") == "td3":
            problems.append(doc.problem(("gradient", "algorithm"), f"action space {probe.action_space}: TD3 needs "
                                        f"continuous (Box) actions; use gradient.algorithm: ppo"))
    for key in ("tau", "ou_theta"):
        value = (gradient.get("td3") or {}).get(key)
        if value is not None and value > 1:
            problems.append(doc.problem(("gradient", "td3", key), f"a rate per step in (0, 1], got {value:g}"))
    lr_final = gradient.get("lr_final")
    if lr_final is not None and lr_final > 1:
        problems.append(doc.problem(("gradient", "lr_final"), f"a fraction of lr in [0, 1], got {lr_final:g}"))
    uses_assembly = config.get("agent") == "local" or gradient.get("network") == "assembly"
    if uses_assembly:
        if not config.get("populations") and not config.get("include"):
            what = "agent: local" if config.get("agent") == "local" else "gradient.network: assembly"
            problems.append(doc.problem(("populations",), f"{what} needs an assembly (populations, projections, "
                                                          f"inputs, modulators)"))
            return
        assembly_check(config, doc, problems)
        assembly = config.get("_assembly")
        if assembly is not None:
            _local_section_problems(config, assembly, doc, problems, encoder, n_actions)
    elif config.get("agent") == "gradient" and encoder is not None and n_actions is not None:
        hidden = gradient.get("hidden")
        if isinstance(hidden, list) and all(isinstance(h, int) for h in hidden) and \
                all(isinstance(gradient.get(k), int) for k in ("num_envs", "rollout", "steps")):
            sizes = [encoder.size, *hidden, n_actions]
            needs = layered_needs(sizes, gradient["num_envs"], gradient["steps"]) * 2  # actor and critic pathways
            needs.append((f"the rollouts ({gradient['num_envs']} environments x {gradient['rollout']} steps x "
                          f"{encoder.size} inputs)",
                          4.0 * gradient["num_envs"] * gradient["rollout"] * encoder.size * 4))
            memory_problem(config, doc, problems, ("gradient", "hidden"), needs)


def _local_section_problems(config: dict, assembly, doc: Document, problems: list, encoder, n_actions) -> None:
    """The names the ``local`` section gives (populations, Poisson inputs, the dopamine channel) must exist in
    the assembly and fit the environment (sizes multiples of the encoder's channels and of the actions), each
    reported at its key; and the assembly must fit in memory with ``num_envs`` trials."""
    local = config.get("local") or {}
    agent = config.get("agent")
    populations = {p.name: p for p in assembly.populations()}
    known = ", ".join(sorted(populations)) or "none"
    obs = local.get("observation") or {}
    sized_obs, sized_actions = obs.get("cells_per_channel") is not None, local.get("cells_per_action") is not None
    checks = ((("local", "observation", "population"), obs.get("population"),
               encoder.size if encoder and not sized_obs else None, "the encoder's channels"),
              (("local", "actions"), local.get("actions"), n_actions if not sized_actions else None, "actions"))
    for path, name, divisor, what in checks:
        if not isinstance(name, str):
            continue
        resolved = assembly.resolve(name)
        if resolved is None:
            problems.append(doc.problem(path, f"no population {name!r} in the assembly (populations: {known})"))
        elif divisor and isinstance(populations[resolved].size, int) and populations[resolved].size % divisor:
            problems.append(doc.problem(path, f"population {name!r} has {populations[resolved].size} cells, not a "
                                              f"multiple of the {divisor} {what}"))
    if agent != "local":
        max_rate, dt = obs.get("max_rate"), assembly.run.dt
        if max_rate is not None and isinstance(dt, float) and max_rate * dt / 1000.0 > 1:
            problems.append(doc.problem(("local", "observation", "max_rate"),
                                        f"max_rate x dt = {max_rate * dt / 1000.0:g} spikes per step; at most 1"))
        return
    inputs = {i.name: i for i in assembly.inputs}
    poisson = ", ".join(sorted(n for n, i in inputs.items() if i.type == "poisson")) or "none"
    named = ((("local", "observation", "input"), obs.get("input"), False),
             (("local", "exploration", "input"), (local.get("exploration") or {}).get("input"), True),
             (("local", "efference", "input"), (local.get("efference") or {}).get("input"), True))
    for path, name, optional in named:
        if not isinstance(name, str) or (optional and name == "none"):
            continue
        if name not in inputs or inputs[name].type != "poisson":
            problems.append(doc.problem(path, f"no Poisson input named {name!r} in the assembly (Poisson inputs: "
                                              f"{poisson})"))
        elif path[1] == "observation" and isinstance(obs.get("population"), str) and \
                inputs[name].target != assembly.resolve(obs["population"]):
            problems.append(doc.problem(path, f"input {name!r} targets {inputs[name].target!r}, not the observation "
                                              f"population {obs['population']!r}"))
        elif path[1] == "efference" and n_actions and not sized_actions:
            target = populations.get(inputs[name].target)
            if target is not None and isinstance(target.size, int) and target.size % n_actions:
                problems.append(doc.problem(path, f"its target {target.name!r} has {target.size} cells, not a "
                                                  f"multiple of the {n_actions} actions"))
    channel = (local.get("dopamine") or {}).get("channel")
    if isinstance(channel, str) and channel not in assembly.modulators:
        declared = ", ".join(sorted(assembly.modulators)) or "none"
        problems.append(doc.problem(("local", "dopamine", "channel"),
                                    f"the assembly declares no modulator {channel!r} (modulators: {declared}); add "
                                    f"modulators: {{{channel}: {{tau: 5 ms}}}}"))
    if isinstance(local.get("num_envs"), int):
        assembly_memory_problems(assembly, doc, problems, ("local", "num_envs"), batch=local["num_envs"])


# ------------------------------------------------------------------------------------------ the runner
def run(config: dict, options: dict) -> dict:
    """One seed (:func:`tasks.rl.single.run_single`), or several in parallel under torchrun or with ``seeds: N``
    (:mod:`tasks.rl.parallel`)."""
    from .parallel import parallel_requested, run_parallel
    from .single import run_single

    return run_parallel(config, options, run_single) if parallel_requested(config) else run_single(config, options)


KIND = register_kind(Kind("rl_agent", SCHEMA, run, _semantic_check,
                          "a spiking agent in a gymnasium environment: PPO with surrogate gradients, or "
                          "dopamine-modulated STDP with a TD critic"))


# the names this module imported at its top before it left PyTorch to the runner (issue 16)
__getattr__ = lazy_attributes(__name__, {
    "run_single": "tasks.rl.single:run_single",
    "parallel_requested": "tasks.rl.parallel:parallel_requested",
    "run_parallel": "tasks.rl.parallel:run_parallel",
})
