"""The local-rule agent: a spiking actor learning by dopamine-modulated STDP, with a TD critic; no gradients.

The network is any assembly (YAML) run by :class:`braincore.simulator.Simulator` with one trial per environment
of a vector of ``num_envs`` (batch = environments). It needs three things, named in the config's ``local``
section: a Poisson input onto a sensory population (``observation``: the encoder's intensities ``r`` in
``[0, 1]``, each replicated over ``size / encoder size`` cells, drive them at ``r * max_rate``), an action
population split into one equal channel per action (``actions``), and corticostriatal projections onto it with a
three-factor rule (``rstdp``) listening to the dopamine channel. Each environment step ``t``:

1. **decide** for ``decision`` ms: the observation drives the cortex; the action is the channel with the most
   spikes (ties broken at random); an optional Poisson ``exploration`` input into the striatum makes the choice
   stochastic (the spiking counterpart of a softmax policy);
   **commit** for ``commit`` ms: an efference copy of the choice (Poisson input ``efference`` at
   ``efference_rate`` onto the chosen channel's cells of its target, a thalamic population with channel-specific
   thalamostriatal projections) makes the chosen channel fire while the sensory cells are still active, so the
   eligibility tags the synapses of the chosen action (as thalamostriatal feedback does in basal-ganglia models
   of action selection);
2. the environment steps; the critic (:class:`regions.dopamine.TDCritic`, linear in the encoder's intensities)
   computes ``delta_t = r_t + gamma (1 - term_t) V(s_{t+1}) - V(s_t)`` (a truncated episode bootstraps from its
   true last observation) and learns;
3. **reinforce** for ``reward_window`` ms: observation input off, dopamine set to ``gain * delta_t`` per trial;
   ``rstdp`` turns the eligibility ``c`` tagged during the decision (pre-before-post pairs between the active
   sensory cells and the striatal cells that fired, mostly the winning channel's) into
   ``dw = eta s M c dt``; then the dopamine is set back to 0.

So the corticostriatal weights of the chosen action in the visited state grow when the outcome was better than
predicted and shrink when worse: an actor-critic (Barto, Sutton & Anderson 1983) in which every weight change is
local (pre, post and a broadcast neuromodulator), as in the spiking actor-critic models of Potjans, Morrison &
Diesmann 2009 (Neural Comput 21:301) and Fremaux, Sprekeler & Gerstner 2013 (PLoS Comput Biol 9:e1003024).
Evaluation silences the exploration input and freezes learning (dopamine stays 0, so ``rstdp`` changes nothing).

**Control tasks** (``configs/rl/cartpole_local.yaml``). A table lake is learned from one-step credit; balancing a
pole is not. What the agent adds, each a setting, and what each is worth on CartPole-v1 (seeds 0 and 1;
"solved": the mean over the 100 evaluation episodes reaches 475; otherwise the evaluation mean after 1,000
episodes; the bundled config solves at 375 and 350 episodes on these seeds):

- a greedy read-out: with exploration off (checks, evaluation) the channels' spikes are counted for
  ``greedy_decision = 50 ms`` instead of the training's 10 ms, so the count's Poisson noise no longer decides
  (relative SD down by sqrt(5)) and the agent acts on its weights, the spiking counterpart of acting by argmax.
  Without it (every decision 10 ms): not solved, 371 / 242 (all 5 seeds: mean 327); a 50 ms read-out of those
  same final weights gives 442 (seed 0). Training keeps the 10 ms count: its noise is the exploration;
- eligibility across decisions: ``tau_c`` of the corticostriatal ``rstdp`` longer than a step (400 ms against a
  50 ms step: the actor's lambda 0.88). With ``tau_c = 20 ms`` (lambda 0.08): not solved, 234 / 369;
- a critic: without it (``critic.learning_rate: 0``, so ``delta = r``, a dopamine that always says "better")
  the agent falls to the worst policy, 9 / 9;
- heterosynaptic normalisation by pre (``normalize``): not needed here, both seeds solve without it, at 325 and
  750 episodes (slower and less steady on seed 1); it was worth 185 -> 222 before the greedy read-out;
- the critic's TD(lambda) traces (``critic.trace``, :class:`regions.dopamine.TDCritic`) did not help: TD(0)
  reached 376 / 242 against 222 / 204 with ``trace: 0.8`` (both before the greedy read-out; the actor's tags
  already carry the credit back);
- tags on the chosen channel only: with normalisation, only the difference between the chosen and the other
  channels' tags teaches. A 10 ms efference copy left the other channel's tags at 0.7 of the chosen one's and the
  agent near 150; strong fast-spiking inhibition (4 mV) and a 30 ms copy at 600 Hz bring them to about 0.2;
- a learning rate small enough for a tag of tens of pair-units (``eta = 5e-5``): ``2e-3`` and ``8e-3`` oscillated
  and collapsed.

The sensory and action populations are sized from the environment's spaces (``cells_per_channel``,
``cells_per_action``), the TD error is divided by its running RMS (``scale_dopamine``), the tags of an environment
restart with its episode (``reset_eligibility``), and :meth:`DopamineAgent.evaluate` runs checks that leave the
training as it was. Training stops at the first check (16 episodes) whose full 100-episode evaluation reaches the
target. The bundled config solves CartPole-v1 in 5 of 5 seeds, at 275-375 episodes (README).
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from braincore.errors import ConfigError
from braincore.simulator import Simulator
from regions.dopamine import TDCritic

from .encoders import ObservationEncoder
from .envs import evaluate, make_vector_env, restore, snapshot

Tensor = torch.Tensor

MONITOR = "_agent_action_counts"
#: the rate of the running mean of delta^2 that scales the dopamine (scale_dopamine): about 100 steps of the
#: vector of environments
DELTA_RATE = 0.01


@dataclass
class LocalSettings:
    observation_input: str = "observation"
    observation_population: str = "ctx"
    max_rate: float = 100.0          # Hz at intensity 1
    actions: str = "d1"
    exploration_input: Optional[str] = "exploration"
    efference_input: Optional[str] = "efference"
    efference_rate: float = 300.0    # Hz, onto the chosen channel's cells of the efference input's target
    decision: float = 20.0           # ms
    greedy_decision: Optional[float] = None  # ms, the decision period without exploration (default: decision)
    commit: float = 10.0             # ms
    reward_window: float = 10.0      # ms
    channel: str = "dopamine"
    gain: float = 1.0
    critic_lr: float = 0.1
    critic_initial: float = 0.0      # V of an unvisited state (optimistic: the largest return)
    critic_trace: float = 0.0        # TD(lambda) trace decay of the critic (0: TD(0))
    gamma: float = 0.95
    scale_dopamine: bool = False     # dopamine = gain * delta / RMS(delta) (running): the reward's scale drops out
    num_envs: int = 16
    episodes: int = 1000
    backend: str = "torch"           # the simulator's engine (configs: auto, the native one on the CPU when it can)
    reset_eligibility: bool = False  # zero a trial's plasticity traces and tags when its episode ends
    cells_per_channel: Optional[int] = None  # sensory cells per encoder channel (sizes the observation population)
    cells_per_action: Optional[int] = None   # action cells per action (sizes the action and efference populations)


class DopamineAgent:
    """Trains the assembly's corticostriatal synapses by dopamine (see the module docstring)."""

    def __init__(self, assembly, env_id: str, encoder: ObservationEncoder, n_actions: int, settings: LocalSettings,
                 seed: int, env_kwargs: "dict | None" = None, device: Optional[str] = None):
        s = self.s = settings
        assembly = assembly.copy()
        names = {p.name for p in assembly.populations()}
        for key, name in (("observation.population", s.observation_population), ("actions", s.actions)):
            if name not in names:
                raise ConfigError(f"local.{key}: no population {name!r} in the assembly (populations: "
                                  f"{', '.join(sorted(names))})")
        inputs = {i.name: i for i in assembly.inputs}
        # sizes that follow from the environment: the same config then runs on another observation or action space
        if s.cells_per_channel is not None:
            assembly.resize(s.observation_population, s.cells_per_channel * encoder.size)
        if s.cells_per_action is not None:
            assembly.resize(s.actions, s.cells_per_action * n_actions)
            efference = inputs.get(s.efference_input) if s.efference_input is not None else None
            if efference is not None and efference.target != s.actions:
                assembly.resize(efference.target, s.cells_per_action * n_actions)
        obs_size = assembly.population(s.observation_population).size
        if obs_size % encoder.size:
            raise ConfigError(f"local.observation: population {s.observation_population!r} has {obs_size} cells, "
                              f"not a multiple of the encoder's {encoder.size} channels")
        act_size = assembly.population(s.actions).size
        if act_size % n_actions:
            raise ConfigError(f"local.actions: population {s.actions!r} has {act_size} cells, not a multiple of "
                              f"the {n_actions} actions")
        inputs = {i.name: i for i in assembly.inputs}
        for key, name in (("observation.input", s.observation_input), ("exploration.input", s.exploration_input),
                          ("efference.input", s.efference_input)):
            if name is not None and (name not in inputs or inputs[name].type != "poisson"):
                raise ConfigError(f"local.{key}: no Poisson input named {name!r} in the assembly")
        if inputs[s.observation_input].target != s.observation_population:
            raise ConfigError(f"local.observation: input {s.observation_input!r} targets "
                              f"{inputs[s.observation_input].target!r}, not {s.observation_population!r}")
        if s.channel not in assembly.modulators:
            raise ConfigError(f"local.dopamine.channel: the assembly declares no modulator {s.channel!r} "
                              f"(modulators: {{{s.channel}: {{tau: 5 ms}}}})")
        self.efference_size = 0
        if s.efference_input is not None:
            size = assembly.population(inputs[s.efference_input].target).size
            if size % n_actions:
                raise ConfigError(f"local.efference: its target {inputs[s.efference_input].target!r} has {size} "
                                  f"cells, not a multiple of the {n_actions} actions")
            self.efference_size = size // n_actions
        assembly.add_monitor(MONITOR, "spikes", s.actions, max_spikes=0)
        self.env_id, self.encoder, self.n_actions = env_id, encoder, int(n_actions)
        self.replicas = obs_size // encoder.size
        self.channel_size = act_size // n_actions
        self.sim = Simulator(assembly, batch=s.num_envs, seed=seed, backend=s.backend, device=device)
        self.monitor = next(m for m in self.sim.monitors if m.name == MONITOR)
        self.decision_period = s.decision  # ms; greedy_decision while exploration is off (set_exploration)
        self.exploration_rate = None
        if s.exploration_input is not None:
            spec = inputs[s.exploration_input]
            self.exploration_rate = dict(spec.params or {}).get("rate", 0.0)
        self.critic = TDCritic(encoder.size, s.critic_lr, s.gamma, s.gain, s.channel, s.critic_initial,
                               s.critic_trace)
        self.delta_square = 1.0  # running mean of delta^2 (scale_dopamine)
        self.generator = torch.Generator().manual_seed(seed)
        self.seed = int(seed)
        self.envs = make_vector_env(env_id, s.num_envs, env_kwargs)
        self.obs, _ = self.envs.reset(seed=[self.seed * 1000 + i for i in range(s.num_envs)])
        self.episodes = 0
        self.steps = 0
        self.episode_returns: list[float] = []
        self.episode_steps: list[int] = []
        self._running = np.zeros(s.num_envs)

    # -- the network's two phases --------------------------------------------------------------------------
    def decide(self, intensities: Tensor) -> "tuple[Tensor, Tensor]":
        """Run one decision period; returns the actions ``[B]`` and the channel spike counts ``[B, A]``."""
        rates = intensities.repeat_interleave(self.replicas, dim=1) * self.s.max_rate
        self.sim.set_poisson_rate(self.s.observation_input, rates)
        self.monitor.reset_counts()  # counts of this decision period only
        self.sim.run(self.decision_period)
        counts = self.monitor.counts.reshape(self.sim.batch, self.n_actions, self.channel_size).sum(-1)
        jitter = torch.rand(counts.shape, generator=self.generator, dtype=torch.float64)
        return (counts.to(torch.float64) + 0.5 * jitter).argmax(dim=1), counts

    def commit(self, actions: Tensor) -> None:
        """The efference copy of the choice for ``commit`` ms, observation still on: the chosen channel's
        thalamic cells drive its striatal cells, so the corticostriatal eligibility concentrates on the synapses
        from the active sensory cells to the chosen action."""
        if self.s.efference_input is None or self.s.commit <= 0:
            return
        rates = torch.zeros(self.sim.batch, self.n_actions, self.efference_size, dtype=torch.float64)
        rates[torch.arange(self.sim.batch), actions] = self.s.efference_rate
        self.sim.set_poisson_rate(self.s.efference_input, rates.reshape(self.sim.batch, -1))
        self.sim.run(self.s.commit)
        self.sim.set_poisson_rate(self.s.efference_input, 0.0)

    def reinforce(self, delta: Tensor) -> None:
        """Release ``gain * delta`` on the dopamine channel for the reward window, observation input off (with
        ``scale_dopamine``, ``delta`` over the running root mean square of the errors: what matters is whether
        an outcome is better or worse than predicted relative to the usual surprise, not the reward's unit)."""
        self.sim.set_poisson_rate(self.s.observation_input, 0.0)
        if self.s.scale_dopamine:
            self.delta_square += DELTA_RATE * (float((delta * delta).mean()) - self.delta_square)
            delta = delta / math.sqrt(self.delta_square + 1e-12)
        self.critic.release(self.sim, delta)
        self.sim.run(self.s.reward_window)
        self.sim.modulators.set(self.s.channel, 0.0)

    def set_exploration(self, on: bool) -> None:
        """Exploration input on (training) or off (greedy: evaluation), and with it the decision period."""
        self.decision_period = self.s.decision if on or self.s.greedy_decision is None else self.s.greedy_decision
        if self.exploration_rate is not None:
            self.sim.set_poisson_rate(self.s.exploration_input, self.exploration_rate if on else 0.0)

    # -- training ------------------------------------------------------------------------------------------
    def train_step(self) -> None:
        """One step of every environment: decide, act, TD error, dopamine; the eligibility of an environment
        whose episode ended restarts (the critic's traces; with ``reset_eligibility``, the trial's synaptic
        tags)."""
        self.encoder.observe(self.obs)
        phi = self.encoder(self.obs)
        actions, _ = self.decide(phi)
        self.commit(actions)
        next_obs, reward, term, trunc, info = self.envs.step(actions.numpy())
        done = np.logical_or(term, trunc)
        last = np.array(next_obs, copy=True)
        for i in np.flatnonzero(done):
            last[i] = info["final_obs"][i]
        delta = self.critic.error(phi, reward, self.encoder(last), term)
        self.reinforce(delta)
        if done.any():
            self.critic.end_episodes(done)
            if self.s.reset_eligibility:
                self._forget_tags(done)
        self._running += reward
        for i in np.flatnonzero(done):
            self.episode_returns.append(float(self._running[i]))
            self.episode_steps.append(self.steps + self.s.num_envs)
            self._running[i] = 0.0
        self.episodes += int(done.sum())
        self.steps += self.s.num_envs  # environment steps, all environments together (as PPO counts them)
        self.obs = next_obs

    def _forget_tags(self, done: np.ndarray) -> None:
        """Zero the plasticity traces (eligibility ``c`` and the pair traces) of the trials whose episode ended:
        a new episode does not inherit credit for the last one's decisions."""
        rows = torch.as_tensor(done, dtype=torch.bool)
        for proj in self.sim.projections:
            for value in (proj.rule_state or {}).values():
                if value.dim() >= 2 and value.shape[0] == self.sim.batch and value.is_floating_point():
                    value[rows] = 0.0

    def policy(self, obs: np.ndarray) -> np.ndarray:
        """The evaluation policy: the network as trained (exploration input as set by :meth:`set_exploration`),
        without learning (no dopamine, so ``rstdp`` changes nothing); a smaller batch is padded to the
        simulator's."""
        n = len(obs)
        phi = self.encoder(obs)
        if n < self.sim.batch:
            phi = torch.cat([phi, phi[:1].expand(self.sim.batch - n, -1)])
        actions, _ = self.decide(phi)
        self.sim.set_poisson_rate(self.s.observation_input, 0.0)
        self.sim.run(self.s.commit + self.s.reward_window)  # the same rhythm as in training, without dopamine
        return actions[:n].numpy()

    def evaluate(self, episodes: int, seed: int, exploration: bool, env_kwargs: "dict | None" = None) -> list:
        """Returns of ``episodes`` evaluation episodes (seeds ``seed + i``), learning off, the exploration input
        on or off; the training goes on afterwards exactly as if none had run (the simulator's state, traces,
        tags and random streams, and the agent's generator, are restored)."""
        # a copy: the state dict holds the simulator's own tensors, which the evaluation would advance in place
        saved, generator = copy.deepcopy(self.sim.state_dict()), self.generator.get_state()
        self.set_exploration(exploration)
        try:
            return evaluate(self.env_id, self.policy, episodes, seed, self.s.num_envs, env_kwargs)
        finally:
            self.sim.load_state_dict(saved)
            self.generator.set_state(generator)
            self.set_exploration(True)

    def greedy(self, obs: np.ndarray) -> np.ndarray:
        """:meth:`policy` with the exploration input silenced."""
        self.set_exploration(False)
        try:
            return self.policy(obs)
        finally:
            self.set_exploration(True)

    def policy_table(self, repeats: int = 15) -> np.ndarray:
        """For a Discrete observation space: the action chosen most often in each state over ``repeats``
        decisions (exploration as set), ``[n_states]``."""
        if self.encoder.kind != "one_hot":
            raise ValueError("policy_table needs a Discrete observation space")
        states = np.arange(self.encoder.n) + self.encoder.start
        votes = np.zeros((self.encoder.n, self.n_actions), dtype=np.int64)
        for start in range(0, self.encoder.n, self.sim.batch):
            chunk = states[start:start + self.sim.batch]
            for _ in range(repeats):
                votes[np.arange(start, start + len(chunk)), self.policy(chunk)] += 1
        return votes.argmax(axis=1)

    # -- checkpoints ---------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"simulator": self.sim.state_dict(), "critic": self.critic.state_dict(),
                "encoder": self.encoder.state_dict(), "delta_square": self.delta_square,
                "generator": self.generator.get_state(), "episodes": self.episodes, "steps": self.steps,
                "episode_returns": list(self.episode_returns), "episode_steps": list(self.episode_steps),
                "running": self._running.tolist(), "obs": torch.as_tensor(np.asarray(self.obs)),
                "envs": snapshot(self.envs)}

    def load_state_dict(self, state: dict) -> None:
        self.sim.load_state_dict(state["simulator"])
        self.critic.load_state_dict(state["critic"])
        self.encoder.load_state_dict(state.get("encoder", {}))
        self.delta_square = float(state.get("delta_square", 1.0))
        self.generator.set_state(state["generator"])
        self.episodes, self.steps = int(state["episodes"]), int(state["steps"])
        self.episode_returns = list(state["episode_returns"])
        self.episode_steps = list(state["episode_steps"])
        self._running = np.asarray(state["running"], dtype=np.float64)
        self.obs = state["obs"].numpy()
        restore(self.envs, state["envs"])
        self.set_exploration(True)

    def close(self) -> None:
        self.envs.close()
