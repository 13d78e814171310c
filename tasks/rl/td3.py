"""Twin delayed deep deterministic policy gradient (TD3; Fujimoto, van Hoof & Meger 2018) for a spiking actor.

The actor (:class:`~.networks.PopulationActor`, PopSAN, or the non-spiking :class:`~.networks.MLPActor` of the
same size) maps an encoded observation to a unit action ``u = mu(s)`` in ``[-1, 1]^D``; two non-spiking critics
``Q_1, Q_2`` (:class:`~.networks.QCritic`) and slowly following target copies ``mu', Q'_1, Q'_2`` learn from a
replay buffer of transitions ``(s, u, r, s', term)``::

    u' = clip(mu'(s') + clip(eps, -c, c), -1, 1),    eps ~ N(0, sigma_target^2)      (target policy smoothing)
    y  = r + gamma (1 - term) min_i Q'_i(s', u')                                      (clipped double Q)
    L_Q = sum_i E[(Q_i(s, u) - y)^2]
    every policy_delay critic steps:  L_mu = -E[Q_1(s, mu(s))];  theta' <- tau theta + (1 - tau) theta'

**Termination vs truncation:** only ``term`` (the episode really ended: the pole fell, the goal was reached) stops
the bootstrap; a time-limit truncation stores the episode's true last observation (``info["final_obs"]``) as
``s'`` with ``term = 0``, so its value is bootstrapped. **Exploration:** the first ``start_steps`` environment
steps act uniformly at random in the unit box; afterwards ``u = clip(mu(s) + n_t, -1, 1)`` with Gaussian noise
(``noise: gaussian``, ``n_t ~ N(0, sigma^2)``) or temporally correlated Ornstein-Uhlenbeck noise (``noise: ou``,
``n_{t+1} = n_t - theta n_t + sigma N(0, 1)``, reset at each episode start; it reaches the far goals of sparse-reward
tasks such as MountainCarContinuous). Actions reach the environment through
:meth:`.actions.ActionSpec.to_env` (clipped and scaled onto its range).

The learner's whole state (networks, targets, optimisers, the filled part of the replay buffer, RNGs, noise,
environment states, counters) is a dict of tensors and plain values (:meth:`TD3.state_dict`): a run checkpointed
between iterations resumes exactly.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch

from .encoders import ObservationEncoder
from .learner import VectorLearner

Tensor = torch.Tensor


@dataclass
class TD3Settings:
    num_envs: int = 1
    total_steps: int = 50_000
    buffer_size: int = 1_000_000
    batch_size: int = 256
    start_steps: int = 5000
    gamma: float = 0.99
    tau: float = 0.005
    actor_lr: float = 1e-3
    critic_lr: float = 1e-3
    policy_delay: int = 2
    noise: str = "gaussian"
    exploration_noise: float = 0.1
    ou_theta: float = 0.15
    target_noise: float = 0.2
    target_noise_clip: float = 0.5
    steps_per_iteration: int = 1000


class ReplayBuffer:
    """A ring buffer of transitions (raw observations ``[N, D_obs]``, unit actions, rewards, next observations,
    termination flags) as float32 tensors; ``state_dict`` keeps only the filled part."""

    def __init__(self, capacity: int, obs_dim: int, act_dim: int):
        self.capacity, self.size, self.next = int(capacity), 0, 0
        self.obs = torch.zeros(capacity, obs_dim)
        self.next_obs = torch.zeros(capacity, obs_dim)
        self.actions = torch.zeros(capacity, act_dim)
        self.rewards = torch.zeros(capacity)
        self.terms = torch.zeros(capacity)

    def add(self, obs, actions, rewards, next_obs, terms) -> None:
        for row in range(len(rewards)):
            i = self.next
            self.obs[i] = torch.as_tensor(obs[row])
            self.next_obs[i] = torch.as_tensor(next_obs[row])
            self.actions[i] = torch.as_tensor(actions[row])
            self.rewards[i] = float(rewards[row])
            self.terms[i] = float(terms[row])
            self.next = (i + 1) % self.capacity
            self.size = min(self.size + 1, self.capacity)

    def sample(self, n: int, generator: torch.Generator) -> tuple:
        idx = torch.randint(0, self.size, (n,), generator=generator)
        return self.obs[idx], self.actions[idx], self.rewards[idx], self.next_obs[idx], self.terms[idx]

    def state_dict(self) -> dict:
        n = self.size
        return {"size": n, "next": self.next, "obs": self.obs[:n].clone(), "next_obs": self.next_obs[:n].clone(),
                "actions": self.actions[:n].clone(), "rewards": self.rewards[:n].clone(),
                "terms": self.terms[:n].clone()}

    def load_state_dict(self, state: dict) -> None:
        n = int(state["size"])
        self.size, self.next = n, int(state["next"])
        for name in ("obs", "next_obs", "actions", "rewards", "terms"):
            getattr(self, name)[:n] = state[name]


class TD3(VectorLearner):
    """A TD3 learner for one environment id with a Box action space (see the module docstring). One
    :meth:`iterate` plays ``steps_per_iteration`` steps of the vector of environments, each followed by one
    gradient step per environment once ``start_steps`` have been collected."""

    def __init__(self, env_id: str, actor: torch.nn.Module, critics: "tuple[torch.nn.Module, torch.nn.Module]",
                 encoder: ObservationEncoder, settings: TD3Settings, seed: int, env_kwargs: "dict | None" = None):
        if settings.noise not in ("gaussian", "ou"):
            raise ValueError(f"noise must be 'gaussian' or 'ou', got {settings.noise!r}")
        self.s = settings
        self.start(env_id, actor, encoder, settings.num_envs, seed, env_kwargs)
        if not self.actions.continuous:
            raise ValueError(f"TD3 needs a continuous (Box) action space, {env_id} has "
                             f"{self.envs.single_action_space}: use algorithm: ppo")
        self.critics = torch.nn.ModuleList(critics)
        self.target_actor = copy.deepcopy(actor).requires_grad_(False)
        self.target_critics = copy.deepcopy(self.critics).requires_grad_(False)
        self.actor_optimizer = torch.optim.Adam(actor.parameters(), lr=settings.actor_lr)
        self.critic_optimizer = torch.optim.Adam(self.critics.parameters(), lr=settings.critic_lr)
        obs_dim = int(np.prod(self.envs.single_observation_space.shape))
        self.buffer = ReplayBuffer(min(settings.buffer_size, settings.total_steps), obs_dim, self.actions.dim)
        per_iteration = settings.steps_per_iteration * settings.num_envs
        self.iterations = max(1, -(-settings.total_steps // per_iteration))
        self.updates = 0
        self._noise = np.zeros((settings.num_envs, self.actions.dim))

    # -- acting ------------------------------------------------------------------------------------------
    def greedy(self, obs: np.ndarray) -> np.ndarray:
        """The deterministic policy ``mu(s)``, as environment actions (evaluation)."""
        with torch.no_grad():
            return self.actions.to_env(self.model(self.encoder(obs)).numpy())

    def _explore(self, obs: np.ndarray) -> np.ndarray:
        s, n, d = self.s, self.s.num_envs, self.actions.dim
        if self.steps < s.start_steps:
            return (torch.rand(n, d, generator=self.generator) * 2 - 1).numpy()
        with torch.no_grad():
            u = self.model(self.encoder(obs)).numpy()
        draw = torch.randn(n, d, generator=self.generator).numpy() * s.exploration_noise
        self._noise = self._noise - s.ou_theta * self._noise + draw if s.noise == "ou" else draw
        return np.clip(u + self._noise, -1.0, 1.0)

    # -- learning ------------------------------------------------------------------------------------------
    def targets(self, rewards: Tensor, next_intensities: Tensor, terms: Tensor) -> Tensor:
        """The critics' regression targets ``y = r + gamma (1 - term) min_i Q'_i(s', u')`` with the smoothed target
        action ``u'`` (module docstring): ``[N]`` from rewards ``[N]``, encoded next observations and flags."""
        s = self.s
        with torch.no_grad():
            shape = (rewards.shape[0], self.actions.dim)
            eps = (torch.randn(shape, generator=self.generator) * s.target_noise).clamp(-s.target_noise_clip,
                                                                                        s.target_noise_clip)
            u_next = (self.target_actor(next_intensities) + eps).clamp(-1.0, 1.0)
            q_next = torch.min(self.target_critics[0](next_intensities, u_next),
                               self.target_critics[1](next_intensities, u_next))
            return rewards + s.gamma * (1.0 - terms) * q_next

    def _update(self) -> None:
        s = self.s
        obs, u, r, next_obs, term = self.buffer.sample(s.batch_size, self.generator)
        x, x_next = self.encoder(obs.numpy()), self.encoder(next_obs.numpy())
        y = self.targets(r, x_next, term)
        critic_loss = sum(((q(x, u) - y) ** 2).mean() for q in self.critics)
        self.critic_optimizer.zero_grad()
        critic_loss.backward()
        self.critic_optimizer.step()
        self.updates += 1
        if self.updates % s.policy_delay:
            return
        actor_loss = -self.critics[0](x, self.model(x)).mean()
        self.actor_optimizer.zero_grad()
        actor_loss.backward()
        self.actor_optimizer.step()
        with torch.no_grad():
            for net, target in ((self.model, self.target_actor), (self.critics, self.target_critics)):
                for p, tp in zip(net.parameters(), target.parameters()):
                    tp.lerp_(p, s.tau)

    def iterate(self) -> dict:
        s, n = self.s, self.s.num_envs
        self.model.eval()
        steps = min(s.steps_per_iteration, -(-(s.total_steps - self.steps) // n))
        for _ in range(steps):
            self.encoder.observe(self.obs)
            unit = self._explore(self.obs)
            next_obs, reward, term, trunc, info = self.envs.step(self.actions.to_env(unit))
            stored_next = np.array(next_obs, copy=True)
            done = np.logical_or(term, trunc)
            for i in np.flatnonzero(done):  # the true last observation of a finished episode
                stored_next[i] = info["final_obs"][i]
            self.buffer.add(self.obs, unit, reward, stored_next, term)
            self.steps += n
            self._noise[self.record(reward, done, self.steps)] = 0.0
            self.obs = next_obs
            if self.steps >= s.start_steps and self.buffer.size >= s.batch_size:
                self.model.train()
                for _ in range(n):
                    self._update()
                self.model.eval()
        self.iteration += 1
        return {"updates": self.updates}

    # -- checkpoints -----------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {**self.learner_state(), "critics": self.critics.state_dict(),
                "target_actor": self.target_actor.state_dict(), "target_critics": self.target_critics.state_dict(),
                "actor_optimizer": self.actor_optimizer.state_dict(),
                "critic_optimizer": self.critic_optimizer.state_dict(), "buffer": self.buffer.state_dict(),
                "updates": self.updates, "noise": torch.as_tensor(self._noise)}

    def load_state_dict(self, state: dict) -> None:
        self.load_learner_state(state)
        self.critics.load_state_dict(state["critics"])
        self.target_actor.load_state_dict(state["target_actor"])
        self.target_critics.load_state_dict(state["target_critics"])
        self.actor_optimizer.load_state_dict(state["actor_optimizer"])
        self.critic_optimizer.load_state_dict(state["critic_optimizer"])
        self.buffer.load_state_dict(state["buffer"])
        self.updates = int(state["updates"])
        self._noise = state["noise"].numpy().astype(np.float64)
