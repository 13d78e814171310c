"""Action spaces the agents handle, and the one place where a network's action becomes the environment's.

- ``Discrete(n)`` (``start`` 0): the agent picks one of ``n`` action channels.
- ``Box`` of rank 1 with finite bounds (continuous control): the networks act in the **unit box** ``[-1, 1]^D``;
  :meth:`ActionSpec.to_env` maps a unit action ``u`` to the environment's range by
  ``a = low + (clip(u, -1, 1) + 1) (high - low) / 2`` (clipped first, so a Gaussian policy's sample outside the box
  acts at the bound, while the learner keeps the unclipped sample for its probability ratios).

Anything else (MultiDiscrete, Dict, an unbounded or image-shaped Box) raises a :class:`ValueError` naming the
space and what is supported, before training starts.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from gymnasium import spaces


@dataclass(frozen=True)
class ActionSpec:
    """A Discrete space (``n`` actions) or a continuous one (``dim`` components between ``low`` and ``high``)."""

    n: Optional[int] = None
    low: Optional[np.ndarray] = None
    high: Optional[np.ndarray] = None

    @property
    def continuous(self) -> bool:
        return self.n is None

    @property
    def dim(self) -> int:
        """Outputs the network needs: channels (Discrete) or action components (Box)."""
        return int(self.n) if self.n is not None else int(np.asarray(self.low).size)

    def to_env(self, unit: np.ndarray) -> np.ndarray:
        """Environment actions ``[B, D]`` of unit actions ``[B, D]`` (continuous; see the module docstring), or
        the integer actions ``[B]`` themselves (Discrete)."""
        if not self.continuous:
            return np.asarray(unit).astype(np.int64)
        u = np.clip(np.asarray(unit, dtype=np.float64), -1.0, 1.0)
        return (self.low + (u + 1.0) * 0.5 * (self.high - self.low)).astype(np.float32)


def action_spec(space: spaces.Space) -> ActionSpec:
    """The :class:`ActionSpec` of a gymnasium action space, or a :class:`ValueError` saying what is supported."""
    if isinstance(space, spaces.Discrete):
        return ActionSpec(n=check_action_space(space))
    if isinstance(space, spaces.Box):
        if len(space.shape) != 1:
            raise ValueError(f"action space {space} is not supported: a continuous action space must be a 1-D Box")
        low, high = np.asarray(space.low, dtype=np.float64), np.asarray(space.high, dtype=np.float64)
        if not (np.isfinite(low).all() and np.isfinite(high).all()) or not (high > low).all():
            raise ValueError(f"action space {space} is not supported: continuous actions need finite bounds with "
                             f"high > low (the actor's unit box is scaled onto them)")
        return ActionSpec(low=low, high=high)
    raise ValueError(f"action space {space} is not supported: agents act in a Discrete space (one channel per "
                     f"action) or a 1-D Box with finite bounds (continuous control, gradient agent)")


def check_action_space(space: spaces.Space) -> int:
    """The number of actions of a ``Discrete`` action space (the local agent's channels); a :class:`ValueError`
    for any other space."""
    if not isinstance(space, spaces.Discrete):
        raise ValueError(f"action space {space} is not supported by the local agent: it chooses among the "
                         f"channels of a Discrete action space; for continuous control use agent: gradient "
                         f"(a population-coded spiking actor, PPO or TD3)")
    if int(space.start) != 0:
        raise ValueError(f"action space {space}: actions must start at 0")
    return int(space.n)
