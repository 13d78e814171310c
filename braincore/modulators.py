"""Neuromodulators: named, global concentration channels ("dopamine", "acetylcholine", any name) that the
simulator broadcasts to the plasticity rules that listen (three-factor rules,
:mod:`braincore.plasticity.three_factor`).

Each :class:`Simulator <braincore.simulator.Simulator>` owns one :class:`Modulators` object,
``sim.modulators``. A channel holds one concentration per trial, ``[B]`` (so the trials of a batch can be
rewarded independently), with a resting level ``baseline`` and an optional decay time constant ``tau``::

    dM/dt = -(M - baseline) / tau + release(t)

(Izhikevich 2007, "Solving the distal reward problem through linkage of STDP and dopamine signaling",
Cereb Cortex 17:2443: extracellular dopamine ``d' = -d / tau_d + DA(t)``, ``tau_d = 200 ms``, with a phasic
release of 0.5 uM at a reward; a tonic release ``r`` is the same as ``baseline = r tau``.) Release is given
from Python between runs or steps:

- :meth:`Modulators.set` ``(name, value)``: the concentration becomes ``value`` (a float, or a tensor ``[B]``,
  one value per trial), then follows the decay from there;
- :meth:`Modulators.pulse` ``(name, amount)``: phasic release, ``M <- M + amount`` (float or ``[B]``), a
  delta-function ``release(t)``;
- :meth:`Modulators.configure` ``(name, tau=..., baseline=...)``: the channel's constants (units allowed:
  ``tau="200 ms"``). A channel used by :meth:`set` or :meth:`pulse` before being configured has no decay
  (``tau=None``: the concentration is held until changed) and baseline 0.

:meth:`Modulators.value` ``(name)`` returns the ``[B]`` concentration (zeros for a channel never set).
The simulator calls :meth:`Modulators.step` once per step, after propagation and before the plasticity rules,
which read the value after that step's decay: ``M <- baseline + (M - baseline) exp(-dt/tau)`` (the exact
solution between releases, so ``M(k dt) = baseline + (M0 - baseline) exp(-k dt / tau)``). A value set or
pulsed between two ``run`` calls is therefore first seen by the rules after one step's decay. The native C
engine (no plasticity) advances the channels by the same decay over each ``run``.
Units: concentrations are in whatever unit the model uses (dimensionless here; uM in Izhikevich 2007).

**Receptors.** A rule that listens to a channel states the receptor type of its synapses (``receptor``), which
gives the sign with which the modulator acts (:data:`RECEPTORS`):

- ``d1`` (``+1``): the modulator's sign as is: dopamine above baseline turns positive eligibility into
  potentiation (D1-type receptors, Gs-coupled, facilitate LTP in striatal direct-pathway neurons);
- ``d2`` (``-1``): the opposite sign: dopamine above baseline turns positive eligibility into depression
  (D2-type receptors, Gi-coupled, favour LTD in indirect-pathway neurons; a dopamine dip potentiates).

References: Shen, Flajolet, Greengard & Surmeier 2008, "Dichotomous dopaminergic control of striatal synaptic
plasticity", Science 321:848; Gurney, Humphries & Redgrave 2015, "A new framework for cortico-striatal
plasticity: behavioural theory meets in vitro data at the reinforcement-action interface", PLoS Biol
13:e1002034; Fremaux & Gerstner 2016, "Neuromodulated spike-timing-dependent plasticity, and theory of
three-factor learning rules", Front Neural Circuits 9:85. (The sign convention is the usual simplification of
these data; Gurney et al. 2015 give the full, timing-dependent picture.)

Checkpoints: :meth:`Modulators.state_dict` / :meth:`Modulators.load_state_dict` (the simulator includes them).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Iterator, Optional, Union

from .errors import ConfigError
from .params import torch_dtype
from .units import UnitError, parse_quantity

if TYPE_CHECKING:
    import torch
    from torch import Tensor

#: receptor type -> sign with which a modulator acts on a rule (see the module docstring)
RECEPTORS: dict[str, float] = {"d1": 1.0, "d2": -1.0}


def receptor_sign(receptor: str) -> float:
    """``+1`` for ``d1``, ``-1`` for ``d2``; a :class:`ConfigError` for anything else."""
    if receptor not in RECEPTORS:
        raise ConfigError(f"unknown receptor {receptor!r}; use one of {', '.join(RECEPTORS)}")
    return RECEPTORS[receptor]


class Channel:
    """One modulator: concentration ``value`` ``[B]``, resting level ``baseline``, decay ``tau`` (ms or None)."""

    def __init__(self, value: Tensor, tau: Optional[float] = None, baseline: float = 0.0):
        self.value = value
        self.tau = tau
        self.baseline = float(baseline)

    def __repr__(self) -> str:
        return f"Channel(tau={self.tau}, baseline={self.baseline}, value={self.value.tolist()})"


class Modulators:
    """The named neuromodulator channels of one simulation (``batch`` trials); see the module docstring."""

    def __init__(self, batch: int = 1, device: Any = "cpu", dtype: "torch.dtype | str" = "float64"):
        import torch

        self.batch = int(batch)
        self.device = torch.device(device)
        self.dtype = torch_dtype(dtype)
        self.channels: dict[str, Channel] = {}

    # -- configuration and release -------------------------------------------------------------------
    def configure(self, name: str, *, tau: Any = None, baseline: Any = None) -> Channel:
        """Create or update channel ``name``: decay time constant ``tau`` (ms, units allowed; ``None``: no
        decay) and resting level ``baseline``. A new channel starts at its baseline."""
        tau_ms = None
        if tau is not None:
            try:
                tau_ms = parse_quantity(tau, "time")
            except UnitError as err:
                raise ConfigError(f"modulator {name!r}: tau: {err}") from None
            if not tau_ms > 0:
                raise ConfigError(f"modulator {name!r}: tau must be > 0 ms, got {tau_ms:g}")
        base = 0.0 if baseline is None else float(baseline)
        channel = self.channels.get(name)
        if channel is None:
            channel = self.channels[name] = Channel(self._full(base), tau_ms, base)
        else:
            if tau is not None:
                channel.tau = tau_ms
            if baseline is not None:
                channel.baseline = base
        return channel

    def _channel(self, name: str) -> Channel:
        if not isinstance(name, str) or not name:
            raise ConfigError(f"a modulator name must be a non-empty string, got {name!r}")
        return self.channels[name] if name in self.channels else self.configure(name)

    def _full(self, value: float) -> Tensor:
        import torch

        return torch.full((self.batch,), float(value), device=self.device, dtype=self.dtype)

    def _per_trial(self, name: str, value: Union[float, Tensor]) -> Tensor:
        import torch

        if not isinstance(value, (torch.Tensor, int, float)):
            value = torch.as_tensor(value)  # a sequence or numpy array of per-trial values
        if isinstance(value, torch.Tensor):
            value = value.to(device=self.device, dtype=self.dtype)
            if value.dim() == 0:
                return value.expand(self.batch).clone()
            if value.shape != (self.batch,):
                raise ConfigError(f"modulator {name!r}: expected a float or a tensor of shape [{self.batch}] "
                                  f"(one value per trial), got shape {list(value.shape)}")
            return value.clone()
        return self._full(float(value))

    def set(self, name: str, value: Union[float, Tensor]) -> None:
        """Set the concentration of ``name`` (a float for all trials, or a tensor ``[B]``)."""
        channel = self._channel(name)
        channel.value = self._per_trial(name, value)

    def pulse(self, name: str, amount: Union[float, Tensor]) -> None:
        """Phasic release: add ``amount`` (float or ``[B]``) to the concentration of ``name``."""
        channel = self._channel(name)
        channel.value = channel.value + self._per_trial(name, amount)

    def value(self, name: str) -> Tensor:
        """The concentration ``[B]`` of ``name`` (zeros for a channel never set). Treat it as read-only: the
        object replaces, never modifies, its tensors, so a value read stays as it was."""
        channel = self.channels.get(name)
        return channel.value if channel is not None else self._full(0.0)

    def __contains__(self, name: str) -> bool:
        return name in self.channels

    def __iter__(self) -> Iterator[str]:
        return iter(self.channels)

    def __repr__(self) -> str:
        return f"Modulators({', '.join(f'{k}={v!r}' for k, v in self.channels.items())})"

    # -- time --------------------------------------------------------------------------------------------
    def step(self, dt: float, steps: int = 1) -> None:
        """Advance every channel by ``steps`` steps of ``dt`` ms: ``M <- baseline + (M - baseline) e^{-dt/tau}``
        once per step (for ``steps > 1``, the factor ``e^{-dt/tau}`` to the power ``steps``)."""
        for channel in self.channels.values():
            if channel.tau is None or steps <= 0:
                continue
            factor = math.exp(-dt / channel.tau)
            if steps > 1:
                factor = factor ** steps
            if channel.baseline == 0.0:
                channel.value = channel.value * factor
            else:
                channel.value = channel.baseline + (channel.value - channel.baseline) * factor

    # -- checkpoints -------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {name: {"value": ch.value.cpu(), "tau": ch.tau, "baseline": ch.baseline}
                for name, ch in self.channels.items()}

    def load_state_dict(self, state: dict) -> None:
        """Replace every channel by the saved ones (in place: the rules that hold this object see them)."""
        channels = {}
        for name, saved in state.items():
            value = saved["value"].to(device=self.device, dtype=self.dtype)
            if value.shape != (self.batch,):
                raise ConfigError(f"modulator {name!r}: checkpoint holds {list(value.shape)} values, "
                                  f"this simulation has batch {self.batch}")
            channels[name] = Channel(value, saved["tau"], saved["baseline"])
        self.channels = channels


__all__ = ["Modulators", "Channel", "RECEPTORS", "receptor_sign"]
