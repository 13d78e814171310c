"""Proximal policy optimisation (Schulman et al. 2017) of the spiking actor-critics (:mod:`tasks.rl.networks`).

One **iteration** collects ``rollout`` steps from each of ``num_envs`` environments with the current stochastic
policy (Discrete actions: ``a ~ softmax(logits)``; a Box: a Gaussian ``u ~ N(mean, exp(log_std)^2)`` in the unit
box, clipped and scaled onto the action range by :meth:`.actions.ActionSpec.to_env` for the environment while the
unclipped ``u`` enters the probability ratios), then runs ``epochs`` passes of minibatch gradient steps on the
clipped objective::

    L = -E[min(rho A, clip(rho, 1 - eps, 1 + eps) A)] + c_v E[(V - R)^2] - c_H E[H(pi)]      rho = pi / pi_old

with advantages from generalised advantage estimation (GAE, Schulman et al. 2016)::

    delta_t = r_t + gamma (1 - term_t) V(s_{t+1}) - V(s_t)
    A_t = delta_t + gamma lambda (1 - done_t) A_{t+1},      R_t = A_t + V(s_t)

**Termination vs truncation** (gymnasium): ``term_t`` (the pole fell, the goal was reached) ends the return;
``trunc_t`` (the time limit) does not: the value of the episode's true last observation (``info["final_obs"]``)
is bootstrapped into ``r_t`` (``r_t <- r_t + gamma V(s_final)``), and in both cases the advantage recursion
stops at the episode boundary (``done_t = term_t or trunc_t``). Advantages are normalised per minibatch;
gradients clipped to ``max_grad_norm``; the learning rate decays linearly to ``lr * lr_final`` over the run.

``normalize_reward``: the rewards the learner sees are divided by the running standard deviation of the
discounted return ``G_t = gamma G_{t-1} (1 - done_{t-1}) + r_t`` (Welford's moments over all steps so far; the
``NormalizeReward`` of gymnasium and of the PPO implementations for MuJoCo), so one learning rate suits rewards of
any scale; the returns reported are the environment's own.

The learner's whole state (network, Adam, RNGs, environment states and the current observations, counters) is a
dict of tensors and plain values (:meth:`PPO.state_dict`), saved atomically between iterations: a resumed run
continues exactly as an uninterrupted one.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .encoders import ObservationEncoder
from .learner import VectorLearner

Tensor = torch.Tensor


@dataclass
class PPOSettings:
    num_envs: int = 8
    rollout: int = 128
    epochs: int = 4
    minibatches: int = 4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip: float = 0.2
    lr: float = 1e-3
    lr_final: float = 0.0
    value_coef: float = 0.5
    entropy_coef: float = 0.01
    max_grad_norm: float = 0.5
    total_steps: int = 200_000
    normalize_reward: bool = False


class PPO(VectorLearner):
    """A PPO learner for one environment id and one actor-critic (see the module docstring):
    :class:`~.networks.SpikingActorCritic` or :class:`~.networks.AssemblyActorCritic` (Discrete actions,
    ``forward -> (logits, value)``), :class:`~.networks.GaussianActorCritic` (a Box, ``forward -> (mean, value)``
    and ``distribution(mean)``)."""

    def __init__(self, env_id: str, model: torch.nn.Module, encoder: ObservationEncoder, settings: PPOSettings,
                 seed: int, env_kwargs: "dict | None" = None):
        self.s = settings
        self.start(env_id, model, encoder, settings.num_envs, seed, env_kwargs)
        if self.actions.continuous != hasattr(model, "distribution"):
            raise ValueError(f"{type(model).__name__} does not fit the action space {self.envs.single_action_space}")
        self.optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr, eps=1e-5)
        self.iterations = max(1, settings.total_steps // (settings.num_envs * settings.rollout))
        # reward normalisation: discounted return per environment, Welford moments (count, mean, M2) of it
        self._discounted = np.zeros(settings.num_envs)
        self._return_moments = [0, 0.0, 0.0]

    # -- acting ------------------------------------------------------------------------------------------
    def policy_value(self, obs) -> "tuple[Tensor, Tensor]":
        return self.model(self.encoder(obs))

    def greedy(self, obs: np.ndarray) -> np.ndarray:
        """The deterministic policy used for evaluation, as environment actions: the action channel with the
        largest logit, or the Gaussian's mean (clipped and scaled)."""
        with torch.no_grad():
            out, _ = self.policy_value(obs)
        return self.actions.to_env(out.numpy() if self.actions.continuous else out.argmax(dim=-1).numpy())

    def _distribution(self, out: Tensor) -> torch.distributions.Distribution:
        if self.actions.continuous:
            return self.model.distribution(out)
        return torch.distributions.Categorical(logits=out)

    def _sample(self, dist: torch.distributions.Distribution) -> Tensor:
        """A sample drawn from the learner's own generator (so a resumed run draws the same ones)."""
        if self.actions.continuous:
            mean, std = dist.base_dist.loc, dist.base_dist.scale
            return mean + std * torch.randn(mean.shape, generator=self.generator)
        return torch.multinomial(dist.probs, 1, generator=self.generator).squeeze(1)

    def _scaled_rewards(self, reward: np.ndarray, done: np.ndarray) -> np.ndarray:
        """Rewards divided by the running SD of the discounted return (``normalize_reward``, module docstring)."""
        self._discounted = self._discounted * self.s.gamma + reward
        count, mean, m2 = self._return_moments
        for g in self._discounted:
            count += 1
            step = g - mean
            mean += step / count
            m2 += step * (g - mean)
        self._return_moments = [count, mean, m2]
        self._discounted[done] = 0.0
        std = np.sqrt(m2 / count) if count > 1 else 1.0
        return reward / max(std, 1e-8)

    # -- one iteration -------------------------------------------------------------------------------------
    def iterate(self) -> dict:
        s, n = self.s, self.s.num_envs
        frac = self.iteration / self.iterations
        for group in self.optimizer.param_groups:
            group["lr"] = s.lr * (1.0 - frac * (1.0 - s.lr_final))
        obs_buf, act_buf, logp_buf, val_buf = [], [], [], []
        rew_buf = torch.zeros(s.rollout, n)
        term_buf = torch.zeros(s.rollout, n)
        done_buf = torch.zeros(s.rollout, n)
        self.model.eval()
        for t in range(s.rollout):
            self.encoder.observe(self.obs)  # online ranges: their warm-up
            x = self.encoder(self.obs)
            with torch.no_grad():
                out, value = self.model(x)
                dist = self._distribution(out)
                action = self._sample(dist)
                logp_buf.append(dist.log_prob(action))
            obs_buf.append(x)
            act_buf.append(action)
            val_buf.append(value)
            next_obs, env_reward, term, trunc, info = self.envs.step(self.actions.to_env(action.numpy()))
            done = np.logical_or(term, trunc)
            self.record(env_reward, done, self.steps + (t + 1) * n)
            if s.normalize_reward:
                env_reward = self._scaled_rewards(np.asarray(env_reward, dtype=np.float64), done)
            reward = torch.as_tensor(env_reward, dtype=torch.float32)
            if trunc.any():  # bootstrap truncated episodes from their true last observation
                idx = np.flatnonzero(np.logical_and(trunc, np.logical_not(term)))
                if idx.size:
                    final = np.stack([info["final_obs"][i] for i in idx])
                    with torch.no_grad():
                        _, v_final = self.policy_value(final)
                    reward[idx] += s.gamma * v_final
            rew_buf[t] = reward
            term_buf[t] = torch.as_tensor(term, dtype=torch.float32)
            done_buf[t] = torch.as_tensor(done, dtype=torch.float32)
            self.obs = next_obs
        with torch.no_grad():
            _, next_value = self.policy_value(self.obs)
        values = torch.stack(val_buf)
        adv = torch.zeros(s.rollout, n)
        last = torch.zeros(n)
        for t in reversed(range(s.rollout)):
            v_next = next_value if t == s.rollout - 1 else values[t + 1]
            # at an episode end the next observation belongs to a new episode: no bootstrap across it
            delta = rew_buf[t] + s.gamma * v_next * (1.0 - done_buf[t]) - values[t]
            last = delta + s.gamma * s.gae_lambda * (1.0 - done_buf[t]) * last
            adv[t] = last
        returns = adv + values
        stats = self._update(torch.cat(obs_buf), torch.cat(act_buf), torch.cat(logp_buf),
                             adv.reshape(-1), returns.reshape(-1))
        self.iteration += 1
        self.steps += s.rollout * n
        return stats

    def _update(self, obs: Tensor, actions: Tensor, logp_old: Tensor, adv: Tensor, returns: Tensor) -> dict:
        s = self.s
        self.model.train()
        total = obs.shape[0]
        size = max(1, total // s.minibatches)
        losses = []
        for _ in range(s.epochs):
            order = torch.randperm(total, generator=self.generator)
            for start in range(0, total, size):
                idx = order[start:start + size]
                out, value = self.model(obs[idx])
                dist = self._distribution(out)
                logp = dist.log_prob(actions[idx])
                ratio = torch.exp(logp - logp_old[idx])
                a = adv[idx]
                a = (a - a.mean()) / (a.std() + 1e-8)
                policy_loss = -torch.min(ratio * a, ratio.clamp(1 - s.clip, 1 + s.clip) * a).mean()
                value_loss = (value - returns[idx]).pow(2).mean()
                entropy = dist.entropy().mean()
                loss = policy_loss + s.value_coef * value_loss - s.entropy_coef * entropy
                self.optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), s.max_grad_norm)
                self.optimizer.step()
                losses.append((policy_loss.item(), value_loss.item(), entropy.item()))
        p, v, h = (float(np.mean(col)) for col in zip(*losses))
        return {"policy_loss": p, "value_loss": v, "entropy": h}

    # -- checkpoints -----------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {**self.learner_state(), "optimizer": self.optimizer.state_dict(),
                "discounted": self._discounted.tolist(), "return_moments": list(self._return_moments)}

    def load_state_dict(self, state: dict) -> None:
        self.load_learner_state(state)
        self.optimizer.load_state_dict(state["optimizer"])
        self._discounted = np.asarray(state.get("discounted", np.zeros(self.s.num_envs)), dtype=np.float64)
        self._return_moments = list(state.get("return_moments", [0, 0.0, 0.0]))
