"""What the gradient learners (:class:`~.ppo.PPO`, :class:`~.td3.TD3`) share: a vector of environments with its
action space, the episode bookkeeping, the random streams, and the part of the checkpoint these make up.

The environments are ``num_envs`` copies (:func:`.envs.make_vector_env`), reset with seeds ``seed * 1000 + i``;
``episode_returns`` lists the return of every training episode in the order they ended and ``episode_steps`` the
global environment step at which each ended. The learner's own generator (``torch.Generator`` seeded with
``seed``) draws its samples, minibatches and noise; the global torch generator is seeded too (Bernoulli input
spikes draw from it). :meth:`VectorLearner.learner_state` holds all of this as tensors and plain values, with the
environments' own dynamic state (:func:`.envs.snapshot`), so that a run checkpointed between iterations resumes
exactly.
"""
from __future__ import annotations

import numpy as np
import torch

from .actions import action_spec
from .encoders import ObservationEncoder
from .envs import make_vector_env, restore, snapshot


class VectorLearner:
    """Base of the gradient learners (module docstring). A subclass calls :meth:`start` in its constructor and
    adds its own state to :meth:`learner_state`."""

    def start(self, env_id: str, model: torch.nn.Module, encoder: ObservationEncoder, num_envs: int, seed: int,
              env_kwargs: "dict | None") -> None:
        self.env_id, self.model, self.encoder, self.seed = env_id, model, encoder, int(seed)
        self.envs = make_vector_env(env_id, num_envs, env_kwargs)
        self.actions = action_spec(self.envs.single_action_space)
        self.iteration = 0
        self.steps = 0
        self.episode_returns: list[float] = []
        self.episode_steps: list[int] = []
        self._running = np.zeros(num_envs)
        self.generator = torch.Generator().manual_seed(self.seed)
        torch.manual_seed(self.seed)
        self.obs, _ = self.envs.reset(seed=[self.seed * 1000 + i for i in range(num_envs)])

    def record(self, rewards, done: np.ndarray, step: int) -> np.ndarray:
        """Add the step's ``rewards`` to the running returns; the environments whose episode ended (``done``) log
        their return at global step ``step`` and start again. Returns their indices."""
        self._running += rewards
        ended = np.flatnonzero(done)
        for i in ended:
            self.episode_returns.append(float(self._running[i]))
            self.episode_steps.append(int(step))
            self._running[i] = 0.0
        return ended

    def learner_state(self) -> dict:
        return {"model": self.model.state_dict(), "iteration": self.iteration, "steps": self.steps,
                "episode_returns": list(self.episode_returns), "episode_steps": list(self.episode_steps),
                "running": self._running.tolist(), "generator": self.generator.get_state(),
                "torch_rng": torch.get_rng_state(), "obs": torch.as_tensor(np.asarray(self.obs)),
                "envs": snapshot(self.envs), "encoder": self.encoder.state_dict()}

    def load_learner_state(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.iteration, self.steps = int(state["iteration"]), int(state["steps"])
        self.episode_returns = list(state["episode_returns"])
        self.episode_steps = list(state["episode_steps"])
        self._running = np.asarray(state["running"], dtype=np.float64)
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        self.obs = state["obs"].numpy()
        restore(self.envs, state["envs"])
        self.encoder.load_state_dict(state.get("encoder", {}))

    def close(self) -> None:
        self.envs.close()
