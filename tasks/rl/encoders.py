"""Observation encoders for spiking agents: gymnasium observations -> input intensities in ``[0, 1]``.

- ``Box`` observations (continuous, ``[D]``): **population coding with Gaussian receptive fields** (Bohte, Kok &
  La Poutré 2002; :func:`braincore.encoding.population_rates`): each dimension ``d`` is covered by ``m`` neurons
  with centres evenly spaced over ``[low_d, high_d]``; neuron ``(d, j)`` has intensity
  ``exp(-(clip(x_d) - c_{d,j})^2 / (2 sigma_d^2))``, ``sigma_d = spacing_d / 1.5``. Unbounded components need a
  range from the config (``obs_low``/``obs_high``); values outside it drive the edge neuron.
- ``Discrete(n)`` observations: **one-hot** (neuron ``s`` at intensity 1, the others 0), so ``m`` is ignored.
- **Ranges estimated online** (``online=True``, the config's ``encoder: {range: online}``; ``"auto"`` / ``range:
  auto``: only the dimensions the space leaves unbounded, the others keep its bounds): every dimension's
  range is ``mean_d +- width * std_d`` of the observations seen while training, estimated over the first
  ``warmup`` observations (Welford's running moments) and frozen after them, so that the receptive fields no longer
  move under the weights that learned on them. The same agent then runs on environments whose observation scale
  it was not told (unbounded velocities, changed physical constants). Until a dimension has been seen to vary its
  range is ``mean +- width`` (a unit standard deviation). The moments are part of the agent's checkpoint.

The intensities are dimensionless; an agent turns them into Poisson rates (``intensity * max_rate``) or into
constant input currents. Any other observation space (Dict, Tuple, MultiDiscrete, an image: a Box of rank > 1)
raises a :class:`ValueError` that names the space and what is supported.
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
                 high: Optional[Sequence[float]] = None, online: "bool | str" = False, warmup: int = 5000,
                 width: float = 3.0):
        self.space = space
        self.online = bool(online) and not isinstance(space, spaces.Discrete)
        if isinstance(space, spaces.Discrete):
            self.kind = "one_hot"
            self.n = int(space.n)
            self.start = int(space.start)
            self.size = self.n
            return
        if isinstance(space, spaces.Box) and len(space.shape) > 1:
            raise ValueError(f"observation space {space} is not supported: an image (a Box of rank "
                             f"{len(space.shape)}) would need a convolutional spiking encoder, which the agents do "
                             f"not have yet; they encode a 1-D Box (population coding) or a Discrete space (one-hot)")
        if not isinstance(space, spaces.Box):
            raise ValueError(f"observation space {space} is not supported: spiking agents encode a 1-D Box "
                             f"(population coding) or a Discrete space (one-hot)")
        if neurons_per_dim < 2:
            raise ValueError(f"obs_neurons must be >= 2 per dimension, got {neurons_per_dim}")
        self.kind = "population"
        dims = space.shape[0]
        self.m = int(neurons_per_dim)
        self.size = dims * self.m
        self._bound_cache: Optional[tuple[Tensor, Tensor]] = None
        if self.online:
            if low is not None or high is not None:
                raise ValueError("obs_low/obs_high fix the ranges: give them, or range: online, not both")
            if warmup < 1 or not width > 0:
                raise ValueError(f"online ranges need warmup >= 1 observations and width > 0, got {warmup}, {width}")
            self.warmup, self.width = int(warmup), float(width)
            # online="auto": only the unbounded dimensions are estimated; bounded ones keep the space's bounds
            self.fixed = (np.isfinite(space.low) & np.isfinite(space.high)) if online == "auto" else \
                np.zeros(dims, dtype=bool)
            self._space_bounds = (np.asarray(space.low, dtype=np.float64), np.asarray(space.high, dtype=np.float64))
            # Welford's running moments per dimension: count, mean, sum of squared deviations
            self.moments = (0, np.zeros(dims), np.zeros(dims))
            self._bounds = self._online_bounds()
            return
        lo = np.asarray(space.low, dtype=np.float64) if low is None else np.asarray(low, dtype=np.float64)
        hi = np.asarray(space.high, dtype=np.float64) if high is None else np.asarray(high, dtype=np.float64)
        for name, value in (("obs_low", lo), ("obs_high", hi)):
            if value.shape != (dims,):
                raise ValueError(f"{name} must have {dims} values (one per observation dimension), got "
                                 f"{value.tolist()}")
        if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
            bad = [d for d in range(dims) if not (np.isfinite(lo[d]) and np.isfinite(hi[d]))]
            raise ValueError(f"observation dimensions {bad} are unbounded in {space}: give their range in the "
                             f"config (obs_low, obs_high: {dims} values each), or estimate it (range: online)")
        if not (hi > lo).all():
            raise ValueError(f"obs_high must exceed obs_low in every dimension, got low {lo.tolist()}, "
                             f"high {hi.tolist()}")
        self._bounds = (lo, hi)  # tensors on first use: validating a config builds the encoder without PyTorch

    # -- online ranges ---------------------------------------------------------------------------------------
    def _online_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        count, mean, m2 = self.moments
        std = np.sqrt(m2 / count) if count > 1 else np.zeros_like(mean)
        std = np.where(std > 1e-8, std, 1.0)
        lo, hi = self._space_bounds
        return np.where(self.fixed, lo, mean - self.width * std), np.where(self.fixed, hi, mean + self.width * std)

    def observe(self, obs) -> None:
        """Add a batch of observations ``[B, D]`` to the running moments while the warm-up lasts (a no-op for
        fixed ranges and after it)."""
        if not self.online or self.moments[0] >= self.warmup:
            return
        count, mean, m2 = self.moments
        for x in np.asarray(obs, dtype=np.float64).reshape(-1, len(mean))[: self.warmup - count]:
            count += 1
            step = x - mean
            mean = mean + step / count
            m2 = m2 + step * (x - mean)
        self.moments = (count, mean, m2)
        self._bounds = self._online_bounds()
        self._bound_cache = None

    def state_dict(self) -> dict:
        """The running moments of online ranges (empty for fixed ranges)."""
        if not self.online:
            return {}
        import torch

        count, mean, m2 = self.moments
        return {"count": torch.tensor(count), "mean": torch.as_tensor(mean), "m2": torch.as_tensor(m2)}

    def load_state_dict(self, state: dict) -> None:
        if not self.online:
            return
        self.moments = (int(state["count"]), state["mean"].numpy().astype(np.float64),
                        state["m2"].numpy().astype(np.float64))
        self._bounds = self._online_bounds()
        self._bound_cache = None

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


def online_setting(range_setting: Optional[str]) -> "bool | str":
    """The encoder's ``online`` argument for a config's ``encoder.range`` (``space``, ``online`` or ``auto``)."""
    return {"online": True, "auto": "auto"}.get(range_setting or "space", False)
