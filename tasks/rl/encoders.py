"""Observation encoders for spiking agents: gymnasium observations -> input intensities in ``[0, 1]``.

- ``Box`` observations (continuous, ``[D]``): **population coding with Gaussian receptive fields** (Bohte, Kok &
  La Poutré 2002; :func:`braincore.encoding.population_rates`): each dimension ``d`` is covered by ``m`` neurons
  with centres evenly spaced over ``[low_d, high_d]``; neuron ``(d, j)`` has intensity
  ``exp(-(clip(x_d) - c_{d,j})^2 / (2 sigma_d^2))``, ``sigma_d = spacing_d / 1.5``. Unbounded components need a
  range from the config (``obs_low``/``obs_high``); values outside it drive the edge neuron.
- ``Discrete(n)`` observations: **one-hot** (neuron ``s`` at intensity 1, the others 0), so ``m`` is ignored.

The intensities are dimensionless; an agent turns them into Poisson rates (``intensity * max_rate``) or into
constant input currents. Any other observation space (Dict, Tuple, MultiDiscrete, images as Box are allowed but
costly) raises a :class:`ValueError` that names the space and what is supported.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Sequence

import numpy as np
from gymnasium import spaces

if TYPE_CHECKING:
    import torch

    Tensor = torch.Tensor


class ObservationEncoder:
    """Maps a batch of observations ``[B, ...]`` to intensities ``[B, size]`` (see the module docstring)."""

    def __init__(self, space: spaces.Space, neurons_per_dim: int = 10, low: Optional[Sequence[float]] = None,
                 high: Optional[Sequence[float]] = None):
        self.space = space
        if isinstance(space, spaces.Discrete):
            self.kind = "one_hot"
            self.n = int(space.n)
            self.start = int(space.start)
            self.size = self.n
            return
        if not isinstance(space, spaces.Box) or len(space.shape) != 1:
            raise ValueError(f"observation space {space} is not supported: spiking agents encode a 1-D Box "
                             f"(population coding) or a Discrete space (one-hot)")
        if neurons_per_dim < 2:
            raise ValueError(f"obs_neurons must be >= 2 per dimension, got {neurons_per_dim}")
        self.kind = "population"
        dims = space.shape[0]
        lo = np.asarray(space.low, dtype=np.float64) if low is None else np.asarray(low, dtype=np.float64)
        hi = np.asarray(space.high, dtype=np.float64) if high is None else np.asarray(high, dtype=np.float64)
        for name, value in (("obs_low", lo), ("obs_high", hi)):
            if value.shape != (dims,):
                raise ValueError(f"{name} must have {dims} values (one per observation dimension), got "
                                 f"{value.tolist()}")
        if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
            bad = [d for d in range(dims) if not (np.isfinite(lo[d]) and np.isfinite(hi[d]))]
            raise ValueError(f"observation dimensions {bad} are unbounded in {space}: give their range in the "
                             f"config (obs_low, obs_high: {dims} values each)")
        if not (hi > lo).all():
            raise ValueError(f"obs_high must exceed obs_low in every dimension, got low {lo.tolist()}, "
                             f"high {hi.tolist()}")
        self.m = int(neurons_per_dim)
        self._bounds = (lo, hi)  # tensors on first use: validating a config builds the encoder without PyTorch
        self._bound_cache: Optional[tuple[Tensor, Tensor]] = None
        self.size = dims * self.m

    @property
    def low(self) -> Tensor:
        """The lower end of each observation dimension's range (float32)."""
        return self._bound_tensors()[0]

    @property
    def high(self) -> Tensor:
        """The upper end of each observation dimension's range (float32)."""
        return self._bound_tensors()[1]

    def _bound_tensors(self) -> tuple[Tensor, Tensor]:
        if self._bound_cache is None:
            import torch

            lo, hi = self._bounds
            self._bound_cache = (torch.as_tensor(lo, dtype=torch.float32), torch.as_tensor(hi, dtype=torch.float32))
        return self._bound_cache

    def __call__(self, obs) -> Tensor:
        """Intensities ``[B, size]`` (float32) of a batch of observations ``[B, D]`` or ``[B]`` (Discrete)."""
        import torch

        from braincore.encoding import population_rates

        if self.kind == "one_hot":
            idx = torch.as_tensor(np.asarray(obs), dtype=torch.long).reshape(-1) - self.start
            if bool(((idx < 0) | (idx >= self.n)).any()):
                raise ValueError(f"observation {obs} outside Discrete({self.n})")
            return torch.nn.functional.one_hot(idx, self.n).to(torch.float32)
        x = torch.as_tensor(np.asarray(obs, dtype=np.float32))
        if x.ndim == 1:
            x = x[None]
        return population_rates(x, self.m, self.low, self.high)


def check_action_space(space: spaces.Space) -> int:
    """The number of actions of a ``Discrete`` action space; a :class:`ValueError` for any other space."""
    if not isinstance(space, spaces.Discrete):
        raise ValueError(f"action space {space} is not supported: spiking agents choose among the channels of a "
                         f"Discrete action space (continuous control would need a different read-out)")
    if int(space.start) != 0:
        raise ValueError(f"action space {space}: actions must start at 0")
    return int(space.n)
