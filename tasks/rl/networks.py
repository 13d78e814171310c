"""The surrogate-gradient spiking actor-critic: a cortex -> striatum network trained by PPO.

Per environment step the encoded observation (intensities ``r [B, n_in]`` in ``[0, 1]``, see
:mod:`tasks.rl.encoders`) is presented for ``steps`` time steps, either as a constant input current
(``input: current``, ``x_t = r``) or as Bernoulli spikes (``input: spikes``, ``x_t ~ Bernoulli(r p_max)``). Two
pathways share that input:

- the **actor** ("cortex -> dorsal striatum"): LIF layers (:class:`braincore.training.layers.LIFLayer`,
  discrete LIF with reset by subtraction, surrogate gradients) and a leaky-integrator read-out with one unit per
  action channel; the action logits are the read-out's membrane potential averaged over the ``steps``
  (``logits_a = mean_t y_{t,a}``), and the policy is ``pi(a | s) = softmax(logits)_a``;
- the **critic** ("cortex -> ventral striatum"): the same structure with one read-out unit, the state value
  ``V(s) = mean_t y_t``.

Separate actor and critic pathways avoid the interference of a shared torso (a common choice for PPO on classic
control). Time constants are in steps (``beta = exp(-1 / tau_m)``).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from braincore.training.layers import LeakyReadout, LIFLayer

Tensor = torch.Tensor


class SpikingPathway(nn.Module):
    """LIF layers and a leaky read-out: ``[T, B, n_in] -> [B, n_out]`` (the read-out's mean over time)."""

    def __init__(self, n_in: int, hidden: Sequence[int], n_out: int, tau_m: float, tau_out: float,
                 init_gain: float, surrogate: str, generator: torch.Generator):
        super().__init__()
        layers, size = [], n_in
        for width in hidden:
            layers.append(LIFLayer(size, width, tau_m=tau_m, init_gain=init_gain, surrogate=surrogate,
                                   generator=generator))
            size = width
        self.layers = nn.ModuleList(layers)
        self.readout = LeakyReadout(size, n_out, tau=tau_out)

    def forward(self, x: Tensor) -> "tuple[Tensor, list[Tensor]]":
        spikes = []
        for layer in self.layers:
            x = layer(x)
            spikes.append(x)
        return self.readout(x).mean(dim=0), spikes


class SpikingActorCritic(nn.Module):
    """Spiking actor and critic pathways over one encoded observation (see the module docstring).

    ``forward(r [B, n_in]) -> (logits [B, n_actions], value [B])``; :attr:`last_spikes` keeps the hidden spike
    trains of the last call (``[T, B, N]`` per layer, actor first) for rate read-outs and plots.
    """

    def __init__(self, n_in: int, n_actions: int, hidden: Sequence[int] = (128,), steps: int = 8,
                 tau_m: float = 4.0, tau_out: float = 4.0, input_mode: str = "current", input_gain: float = 1.0,
                 max_prob: float = 0.8, init_gain: float = 2.0, surrogate: str = "fast_sigmoid", seed: int = 0):
        super().__init__()
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        if input_mode not in ("current", "spikes"):
            raise ValueError(f"input must be 'current' or 'spikes', got {input_mode!r}")
        if not hidden:
            raise ValueError("hidden must list at least one LIF layer size")
        g = torch.Generator().manual_seed(seed)
        self.n_in, self.n_actions, self.steps = int(n_in), int(n_actions), int(steps)
        self.input_mode, self.input_gain, self.max_prob = input_mode, float(input_gain), float(max_prob)
        with torch.random.fork_rng(devices=[]):  # the read-outs' nn.Linear draws from the global generator
            torch.manual_seed(seed)
            self.actor = SpikingPathway(n_in, hidden, n_actions, tau_m, tau_out, init_gain, surrogate, g)
            self.critic = SpikingPathway(n_in, hidden, 1, tau_m, tau_out, init_gain, surrogate, g)
        with torch.no_grad():  # small initial logits: a near-uniform first policy (as in PPO implementations)
            self.actor.readout.linear.weight.mul_(0.1)
            self.actor.readout.linear.bias.zero_()
        self.last_spikes: list[Tensor] = []

    def sequence(self, intensities: Tensor) -> Tensor:
        """The input sequence ``[T, B, n_in]`` of a batch of intensities ``[B, n_in]``."""
        if intensities.dim() != 2 or intensities.shape[1] != self.n_in:
            raise ValueError(f"intensities must be [B, {self.n_in}], got {tuple(intensities.shape)}")
        x = intensities.unsqueeze(0).expand(self.steps, -1, -1)
        if self.input_mode == "spikes":
            x = torch.bernoulli(x * self.max_prob)
        return x * self.input_gain

    def forward(self, intensities: Tensor) -> "tuple[Tensor, Tensor]":
        x = self.sequence(intensities)
        logits, actor_spikes = self.actor(x)
        value, critic_spikes = self.critic(x)
        self.last_spikes = actor_spikes + critic_spikes
        return logits, value.squeeze(-1)
