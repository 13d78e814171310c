"""Adaptive leaky integrate-and-fire (ALIF): a LIF neuron whose threshold rises with each spike.

Bellec, Salaj, Subramoney, Legenstein & Maass (2018), "Long short-term memory and learning-to-learn in
networks of spiking neurons" (LSNN), NeurIPS; Yin, Corradi & Bohté (2021), "Accurate and efficient
time-domain classification with adaptive spiking recurrent neural networks", Nat Mach Intell::

    tau_m dv/dt = -(v - v_rest) + R_m I(t)            mV, ms, MOhm, nA (as :mod:`braincore.neurons.lif`)
    tau_a da/dt = -a                                   a dimensionless
    b = b0 + beta * a                                  the adaptive threshold (mV); beta in mV
    if v >= b:  spike, v <- v_reset (or v <- v - (b - v_reset)), a <- a + delta_a, refractory for t_ref

``a`` decays with ``tau_a`` and jumps by ``delta_a`` at each spike. LSNN's discrete-time code jumps by
``1 - exp(-dt/tau_a)`` (so ``a`` is a low-pass filtered spike rate); set ``delta_a`` to that value to reproduce
it at a given ``dt``. Yin et al. use the same form with ``beta = 1.8`` for a unit baseline threshold.

Methods: ``exact`` (both variables decay exponentially over a step with the input held), ``euler``. The
threshold is tested on the updated ``v`` against ``b`` from the updated ``a`` (before the jump); step
convention as in :mod:`braincore.neurons.base`. During refractoriness ``v`` is clamped and ``a`` keeps
decaying (in Brian2 terms: ``v`` is ``(unless refractory)``, ``a`` is not).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch

from ..params import NeuronParams, param
from .base import NeuronModel, countdown, filled, fire, refractory_steps, reset_membrane

Tensor = torch.Tensor


class ALIFState(NamedTuple):
    """``v`` membrane potential (mV), ``a`` adaptation (dimensionless), ``refrac`` steps left; ``[B, N]``."""

    v: Tensor
    a: Tensor
    refrac: Tensor


@dataclass(frozen=True)
class ALIFParams(NeuronParams):
    """Parameters of :class:`ALIF`: a LIF with a 200 ms threshold adaptation of 1.8 mV per unit of ``a``."""

    tau_m: Any = param(20.0, "time", "membrane time constant")
    R_m: Any = param(100.0, "resistance", "membrane resistance")
    v_rest: Any = param(-65.0, "voltage", "resting potential")
    v_reset: Any = param(-65.0, "voltage", "reset potential")
    b0: Any = param(-50.0, "voltage", "baseline threshold")
    beta: Any = param(1.8, "voltage", "threshold increase per unit of adaptation a")
    tau_a: Any = param(200.0, "time", "adaptation time constant")
    delta_a: Any = param(1.0, "dimensionless", "jump of a at each spike")
    t_ref: Any = param(2.0, "time", "absolute refractory period")
    reset: str = param("value", "choice", "'value' (v <- v_reset) or 'subtract' (v <- v - (b - v_reset))",
                       choices=("value", "subtract"))


def _decay(dt: float, tau: Any) -> Any:
    return math.exp(-dt / tau) if isinstance(tau, (int, float)) else torch.exp(-dt / tau)


def alif_step(state: ALIFState, current: Tensor, p: ALIFParams, dt: float, method: str = "exact",
              spike_fn=None) -> tuple[Tensor, ALIFState]:
    """Pure ALIF step from ``t_k`` to ``t_k + dt``; ``current`` ``[B, N]`` in nA. Returns ``(spikes, state)``."""
    refrac, active = countdown(state.refrac)
    v_inf = p.v_rest + p.R_m * current
    if method == "exact":
        v_new = v_inf + (state.v - v_inf) * _decay(dt, p.tau_m)
        a = state.a * _decay(dt, p.tau_a)
    elif method == "euler":
        v_new = state.v + dt / p.tau_m * (v_inf - state.v)
        a = state.a - dt / p.tau_a * state.a
    else:
        raise ValueError(f"ALIF: unknown method {method!r}")
    v = torch.where(active, v_new, state.v)
    threshold = p.b0 + p.beta * a
    spikes = fire(v - threshold, active, spike_fn)
    v = reset_membrane(v, spikes, p.v_reset, threshold, p.reset)
    a = a + p.delta_a * spikes
    refrac = torch.where(spikes > 0, torch.full_like(refrac, refractory_steps(p.t_ref, dt)), refrac)
    return spikes, ALIFState(v, a, refrac)


class ALIF(NeuronModel):
    """Adaptive-threshold LIF (Bellec et al. 2018; Yin et al. 2021). Equations: see :mod:`.alif`."""

    name = "alif"
    params_cls = ALIFParams
    state_cls = ALIFState
    methods = ("exact", "euler")
    input_unit = "nA"

    def initial_state(self, batch_size: int = 1, *, device=None, dtype=torch.float32) -> ALIFState:
        v = filled(batch_size, self.size, self.params.v_rest, device=device, dtype=dtype)
        return ALIFState(v, torch.zeros_like(v), torch.zeros_like(v))

    def step(self, state: ALIFState, current: Tensor) -> tuple[Tensor, ALIFState]:
        return alif_step(state, current, self.params, self.dt, self.method, self.spike_fn)
