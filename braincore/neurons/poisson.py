"""Poisson spike sources: a population whose neurons fire as independent Poisson processes (Brian2's
``PoissonGroup``, NEST's ``poisson_generator`` into ``parrot_neuron``s, BindsNET's ``Input`` layer of Poisson
trains).

In a clock-driven step of length ``dt`` neuron ``i`` fires when its Poisson count ``n_i ~ Poisson(rate_i dt)``
is at least one, that is with probability::

    P(spike in a step) = 1 - exp(-rate_i dt)          rate in Hz, dt in s

(at most one spike per step; the Bernoulli rate ``rate dt`` of Brian2's ``PoissonGroup`` differs from it by
``(rate dt)^2 / 2``). ``rate``: one value or one per neuron (Hz); :meth:`braincore.simulator.Simulator.set_poisson_rate`
with the population's name changes it between runs, one rate, ``[n]`` or ``[B, n]`` (one per trial: a batch of
stimuli). The draws are those of Poisson inputs, by the same samplers: ``torch.poisson`` with the simulator's
generator on the PyTorch engine, the kernel's xoshiro256** sampler (at a cost per spike, not per neuron) on the
native one; the two engines draw from their own streams.

A source has no state variables and no input: projections and inputs onto it are refused when the network is
validated. It replaces the relay neurons that repeat a Poisson input (an integrate-and-fire neuron whose input
jump exceeds its threshold): the same spike trains, without a membrane to integrate and test for every neuron and
step.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

from ..errors import ConfigError
from ..params import FLOAT32, NeuronParams, _any_lt, _show, param
from .base import NeuronModel


@dataclass(frozen=True)
class PoissonParams(NeuronParams):
    rate: Any = param(0.0, "frequency", "mean rate of each source (one value, or one per neuron)")

    def check(self) -> list[str]:
        problems = super().check()
        if not problems and _any_lt(self.rate, 0.0):
            problems.append(f"rate must be >= 0 Hz, got {_show(self.rate)}")
        return problems


class PoissonState(NamedTuple):
    """A source has no state variables."""


class PoissonSource(NeuronModel):
    """Independent Poisson spike sources: each neuron fires in a step with probability 1 - exp(-rate dt).

    Stepped by the simulator's engines, which draw its spikes; it takes no input (see the module docstring)."""

    name: ClassVar[str] = "poisson"
    aliases: ClassVar[tuple[str, ...]] = ("poisson_group",)
    params_cls: ClassVar[type[NeuronParams]] = PoissonParams
    state_cls: ClassVar[type] = PoissonState
    methods: ClassVar[tuple[str, ...]] = ("exact",)
    #: the engines draw this population's spikes instead of stepping a membrane
    spike_source: ClassVar[bool] = True
    definition = None

    def initial_state(self, batch_size: int = 1, *, device: Any = None, dtype: Any = FLOAT32) -> PoissonState:
        return PoissonState()

    def step(self, state: Any, current: Any) -> tuple:
        raise ConfigError("a Poisson source population is stepped by the simulator (Simulator.run), which draws "
                          "its spikes; it has no membrane to step with an input current")


def is_spike_source(model: Any) -> bool:
    """Whether a model (class or instance) is a spike source whose spikes the engines draw."""
    return bool(getattr(model, "spike_source", False))


__all__ = ["PoissonParams", "PoissonSource", "PoissonState", "is_spike_source"]
