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


class AssemblyActorCritic(nn.Module):
    """The surrogate-gradient actor-critic on a YAML assembly: the local agent's own network, trained by PPO.

    The assembly is compiled (:func:`braincore.training.compile.compile_assembly`) with the sensory population
    as its input and the action population as its output; its Poisson inputs (observation, efference copy,
    exploration) are left out: the module is fed the sensory spikes directly and PPO explores by sampling.
    Per decision of ``steps`` time steps of ``dt``, the sensory cell ``i`` (replica of encoder channel ``c``)
    fires a regular train at ``r_c * max_rate`` (``s_k = floor((k + 1) p + phi_i) - floor(k p + phi_i)``,
    ``p = r_c max_rate dt``, a fixed random phase ``phi_i`` per cell: deterministic, so PPO's probability ratios
    compare the same network output), the action logits are the channels' spike counts times a learnable scale,
    and the value is a linear read-out of the sensory rates (a ventral-striatum critic). Gradients reach every
    projection of the assembly through surrogate spikes (widths in mV). :meth:`export` writes the trained
    weights back into a copy of the assembly, which the simulator (and the local agent) run unchanged.
    """

    def __init__(self, assembly, observation_population: str, actions_population: str, n_features: int,
                 n_actions: int, steps: int, max_rate: float, surrogate_slope: float = 1.0, seed: int = 0):
        super().__init__()
        from braincore.surrogate import get_surrogate
        from braincore.training.compile import compile_assembly

        ignore = [i.name for i in assembly.inputs if i.type in ("poisson", "spike_file")]
        self.assembly = assembly
        self.net = compile_assembly(assembly, inputs=[observation_population], outputs=[actions_population],
                                    ignore_inputs=ignore, dtype="float32",
                                    surrogate=get_surrogate("fast_sigmoid", slope=surrogate_slope))
        self.obs_name, self.act_name = observation_population, actions_population
        n_obs, n_act = self.net.size(observation_population), self.net.size(actions_population)
        if n_obs % n_features or n_act % n_actions:
            raise ValueError(f"population sizes {n_obs} (sensory) and {n_act} (actions) must be multiples of the "
                             f"{n_features} encoder channels and {n_actions} actions")
        self.replicas, self.channel = n_obs // n_features, n_act // n_actions
        self.n_actions, self.steps = int(n_actions), int(steps)
        self.p_max = float(max_rate) * float(assembly.run.dt) / 1000.0
        if not 0 < self.p_max <= 1:
            raise ValueError(f"max_rate x dt must be in (0, 1] spikes per step, got {self.p_max:g}")
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("phase", torch.rand(n_obs, generator=g))
        self.logit_scale = nn.Parameter(torch.tensor(0.5))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.value_head = nn.Linear(n_obs, 1)
        self.last_spikes: list[Tensor] = []

    def sensory_spikes(self, intensities: Tensor) -> Tensor:
        """Regular spike trains ``[T, B, n_obs]`` of the sensory cells for intensities ``[B, n_features]``."""
        p = intensities.repeat_interleave(self.replicas, dim=1) * self.p_max
        k = torch.arange(self.steps + 1, dtype=p.dtype).reshape(-1, 1, 1)
        counts = torch.floor(k * p + self.phase)
        return counts[1:] - counts[:-1]

    def forward(self, intensities: Tensor) -> "tuple[Tensor, Tensor]":
        x = self.sensory_spikes(intensities)
        spikes = self.net({self.obs_name: x})[self.act_name]
        self.last_spikes = [spikes]
        counts = spikes.sum(dim=0).reshape(spikes.shape[1], self.n_actions, self.channel).sum(-1)
        return self.logit_scale * counts, self.value_head(x.mean(dim=0)).squeeze(-1)

    def export(self):
        """A copy of the assembly with the trained weights (:func:`braincore.training.compile.export_weights`)."""
        from braincore.training.compile import export_weights

        return export_weights(self.net, self.assembly)


# ------------------------------------------------------------------------------------------ continuous control
class PopulationActor(nn.Module):
    """A population-coded spiking actor network (PopSAN; Tang, Kumar, Michmizos & Nandi 2020, IROS).

    ``forward(r [B, n_in]) -> u [B, D]``: the encoded observation (Gaussian receptive fields, :mod:`.encoders`;
    PopSAN's encoder population) drives, as a constant input current for ``steps`` time steps, LIF layers
    (:class:`~braincore.training.layers.LIFLayer`, surrogate gradients) and then an **action population** of
    ``population`` LIF cells per action component. Each component is decoded from its population's firing rates
    ``f_{d,k} = mean_t s_{t,d,k}`` (spikes per step) by its own weights and bias (PopSAN's group decoder)::

        o_d = sum_k w_{d,k} f_{d,k} + b_d,        u_d = tanh(o_d)  (deterministic: TD3)  or  o_d  (Gaussian mean)

    in the unit box (:class:`.actions.ActionSpec` scales it onto the environment's range). ``squash``: apply the
    tanh. Time constants in steps (``beta = exp(-1 / tau_m)``). Unlike PopSAN, the receptive fields are fixed (not
    learned) and the input is a current, not deterministic spikes: the encoder is shared with the other agents.
    """

    def __init__(self, n_in: int, n_out: int, hidden: Sequence[int] = (256, 256), population: int = 10,
                 steps: int = 5, tau_m: float = 4.0, init_gain: float = 2.0, surrogate: str = "fast_sigmoid",
                 squash: bool = True, seed: int = 0):
        super().__init__()
        if steps < 1 or population < 1 or not hidden:
            raise ValueError(f"need steps >= 1, population >= 1 and at least one hidden layer, got steps={steps}, "
                             f"population={population}, hidden={list(hidden)}")
        g = torch.Generator().manual_seed(seed)
        self.n_in, self.n_out, self.steps, self.population = int(n_in), int(n_out), int(steps), int(population)
        self.squash = bool(squash)
        sizes = [n_in, *hidden, n_out * population]
        self.layers = nn.ModuleList(LIFLayer(a, b, tau_m=tau_m, init_gain=init_gain, surrogate=surrogate,
                                             generator=g) for a, b in zip(sizes[:-1], sizes[1:]))
        bound = 1.0 / population ** 0.5
        self.decoder_weight = nn.Parameter((torch.rand(n_out, population, generator=g) * 2 - 1) * bound)
        self.decoder_bias = nn.Parameter(torch.zeros(n_out))
        self.last_spikes: list[Tensor] = []

    def forward(self, intensities: Tensor) -> Tensor:
        if intensities.dim() != 2 or intensities.shape[1] != self.n_in:
            raise ValueError(f"intensities must be [B, {self.n_in}], got {tuple(intensities.shape)}")
        x = intensities.unsqueeze(0).expand(self.steps, -1, -1)
        spikes = []
        for layer in self.layers:
            x = layer(x)
            spikes.append(x)
        self.last_spikes = spikes
        rates = x.mean(dim=0).reshape(-1, self.n_out, self.population)
        out = (rates * self.decoder_weight).sum(-1) + self.decoder_bias
        return torch.tanh(out) if self.squash else out


def mlp(n_in: int, hidden: Sequence[int], n_out: int, seed: int) -> nn.Sequential:
    """``Linear -> ReLU`` per hidden width, then a linear output (PyTorch's default initialisation, seeded)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layers: list[nn.Module] = []
        size = n_in
        for width in hidden:
            layers += [nn.Linear(size, width), nn.ReLU()]
            size = width
        layers.append(nn.Linear(size, n_out))
        return nn.Sequential(*layers)


class MLPActor(nn.Module):
    """The non-spiking actor of the same size: the same encoded input and hidden widths as
    :class:`PopulationActor`, ReLU units, ``u = tanh(o)`` (``squash``) or ``o``. The baseline of the comparison."""

    def __init__(self, n_in: int, n_out: int, hidden: Sequence[int] = (256, 256), squash: bool = True,
                 seed: int = 0):
        super().__init__()
        self.net, self.squash = mlp(n_in, hidden, n_out, seed), bool(squash)
        self.last_spikes: list[Tensor] = []

    def forward(self, intensities: Tensor) -> Tensor:
        out = self.net(intensities)
        return torch.tanh(out) if self.squash else out


class QCritic(nn.Module):
    """A non-spiking action-value network ``Q(s, u) = MLP([r, u])`` (encoded observation ``r [B, n_in]``, unit
    action ``u [B, D]`` -> ``[B]``): PopSAN trains its spiking actors with such deep critics."""

    def __init__(self, n_in: int, n_actions: int, hidden: Sequence[int] = (256, 256), seed: int = 0):
        super().__init__()
        self.net = mlp(n_in + n_actions, hidden, 1, seed)

    def forward(self, intensities: Tensor, actions: Tensor) -> Tensor:
        return self.net(torch.cat([intensities, actions], dim=-1)).squeeze(-1)


class GaussianActorCritic(nn.Module):
    """A Gaussian policy and a state value for PPO on a continuous action space.

    ``forward(r [B, n_in]) -> (mean [B, D], value [B])``: the mean from ``actor`` (a :class:`PopulationActor` or
    :class:`MLPActor` without the tanh), the value from a non-spiking MLP; the policy is
    ``pi(u | s) = N(mean, diag(exp(2 log_std)))`` with a learned, state-independent ``log_std [D]`` (as in
    PPO's MuJoCo experiments, Schulman et al. 2017).
    """

    def __init__(self, actor: nn.Module, n_in: int, n_actions: int, critic_hidden: Sequence[int] = (64, 64),
                 log_std: float = 0.0, seed: int = 0):
        super().__init__()
        self.actor = actor
        self.critic = mlp(n_in, critic_hidden, 1, seed + 1)
        self.log_std = nn.Parameter(torch.full((n_actions,), float(log_std)))

    @property
    def last_spikes(self) -> list:
        return getattr(self.actor, "last_spikes", [])

    def forward(self, intensities: Tensor) -> "tuple[Tensor, Tensor]":
        return self.actor(intensities), self.critic(intensities).squeeze(-1)

    def distribution(self, mean: Tensor) -> torch.distributions.Distribution:
        """``N(mean, exp(log_std)^2)`` over the components, as one event (log-probabilities summed)."""
        return torch.distributions.Independent(torch.distributions.Normal(mean, self.log_std.exp()), 1)
