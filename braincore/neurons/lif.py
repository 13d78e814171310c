"""Integrate-and-fire family: the perfect integrator (IF) and the current-based leaky integrate-and-fire (LIF).

LIF (Lapicque 1907; Gerstner, Kistler, Naud & Paninski 2014, ch. 1.3)::

    tau_m dv/dt = -(v - v_rest) + R_m I(t)           v in mV, tau_m in ms, R_m in MOhm, I in nA
    if v >= v_th:  spike, v <- v_reset (or v <- v - (v_th - v_reset)), refractory for t_ref

Between spikes, with ``I`` held over a step, the equation is linear, so the ``exact`` method integrates it
without error: ``v(t+dt) = v_inf + (v(t) - v_inf) exp(-dt/tau_m)`` with ``v_inf = v_rest + R_m I``.
``euler`` is forward Euler: ``v(t+dt) = v + dt/tau_m (v_rest - v + R_m I)``.

Under a constant suprathreshold current the interspike interval is (continuous time)
``T = t_ref + tau_m ln(R_m I / (R_m I - (v_th - v_reset)))`` when ``v_reset = v_rest``.

IF (perfect integrator, Lapicque's model without leak)::

    C_m dv/dt = I(t)                                 C_m in pF, I in nA: dv/dt = 1000 I / C_m mV/ms

The step convention (held input, threshold on the updated state, stamp at ``t_k``, reset, refractoriness)
is that of :mod:`braincore.neurons.base`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch

from ..params import NeuronParams, param
from .base import NeuronModel, countdown, filled, fire, refractory_steps, reset_membrane

Tensor = torch.Tensor

#: nA / pF expressed in mV / ms
NA_PER_PF_IN_MV_PER_MS = 1000.0


class LIFState(NamedTuple):
    """``v`` membrane potential (mV) and ``refrac`` refractory steps left, both ``[B, N]``."""

    v: Tensor
    refrac: Tensor


@dataclass(frozen=True)
class LIFParams(NeuronParams):
    """Parameters of :class:`LIF` (defaults: a generic cortical neuron, rheobase 0.15 nA)."""

    tau_m: Any = param(20.0, "time", "membrane time constant")
    R_m: Any = param(100.0, "resistance", "membrane resistance")
    v_rest: Any = param(-65.0, "voltage", "resting potential")
    v_reset: Any = param(-65.0, "voltage", "reset potential")
    v_th: Any = param(-50.0, "voltage", "firing threshold")
    t_ref: Any = param(2.0, "time", "absolute refractory period")
    reset: str = param("value", "choice", "'value' (v <- v_reset) or 'subtract' (v <- v - (v_th - v_reset))",
                       choices=("value", "subtract"))


def lif_step(state: LIFState, current: Tensor, p: LIFParams, dt: float, method: str = "exact",
             spike_fn=None) -> tuple[Tensor, LIFState]:
    """Pure LIF step from ``t_k`` to ``t_k + dt``; ``current`` ``[B, N]`` in nA. Returns ``(spikes, state)``."""
    refrac, active = countdown(state.refrac)
    v_inf = p.v_rest + p.R_m * current
    if method == "exact":
        decay = math.exp(-dt / p.tau_m) if isinstance(p.tau_m, (int, float)) else torch.exp(-dt / p.tau_m)
        v_new = v_inf + (state.v - v_inf) * decay
    elif method == "euler":
        v_new = state.v + dt / p.tau_m * (v_inf - state.v)
    else:
        raise ValueError(f"LIF: unknown method {method!r}")
    return _threshold_and_reset(state.v, v_new, active, refrac, p.v_th, p, dt, spike_fn)


def _threshold_and_reset(v_old: Tensor, v_new: Tensor, active: Tensor, refrac: Tensor, v_th: Any,
                         p: Any, dt: float, spike_fn) -> tuple[Tensor, LIFState]:
    """Clamp refractory neurons, test the threshold on the updated potential, reset, restart the counter."""
    v = torch.where(active, v_new, v_old)
    spikes = fire(v - v_th, active, spike_fn)
    v = reset_membrane(v, spikes, p.v_reset, v_th, p.reset)
    fired = spikes > 0
    refrac = torch.where(fired, torch.full_like(refrac, refractory_steps(p.t_ref, dt)), refrac)
    return spikes, LIFState(v, refrac)


class LIF(NeuronModel):
    """Current-based leaky integrate-and-fire neuron. Equations, units and methods: see :mod:`.lif`.

    >>> import torch
    >>> lif = LIF(3, tau_m="10 ms", t_ref="2 ms")
    >>> spikes, state = lif(torch.full((1, 3), 0.3))   # one 0.1 ms step under 0.3 nA
    """

    name = "lif"
    params_cls = LIFParams
    state_cls = LIFState
    methods = ("exact", "euler")
    input_unit = "nA"

    def initial_state(self, batch_size: int = 1, *, device=None, dtype=torch.float32) -> LIFState:
        v = filled(batch_size, self.size, self.params.v_rest, device=device, dtype=dtype)
        return LIFState(v, torch.zeros_like(v))

    def step(self, state: LIFState, current: Tensor) -> tuple[Tensor, LIFState]:
        return lif_step(state, current, self.params, self.dt, self.method, self.spike_fn)


@dataclass(frozen=True)
class IFParams(NeuronParams):
    """Parameters of :class:`IF` (a 250 pF integrator)."""

    C_m: Any = param(250.0, "capacitance", "membrane capacitance")
    v_rest: Any = param(-65.0, "voltage", "initial potential")
    v_reset: Any = param(-65.0, "voltage", "reset potential")
    v_th: Any = param(-50.0, "voltage", "firing threshold")
    t_ref: Any = param(2.0, "time", "absolute refractory period")
    reset: str = param("value", "choice", "'value' or 'subtract'", choices=("value", "subtract"))


def if_step(state: LIFState, current: Tensor, p: IFParams, dt: float, method: str = "exact",
            spike_fn=None) -> tuple[Tensor, LIFState]:
    """Pure IF step: ``v += dt * 1000 I / C_m`` (exact: the right-hand side is constant over the step)."""
    if method not in ("exact", "euler"):
        raise ValueError(f"IF: unknown method {method!r}")
    refrac, active = countdown(state.refrac)
    v_new = state.v + dt * NA_PER_PF_IN_MV_PER_MS * current / p.C_m
    return _threshold_and_reset(state.v, v_new, active, refrac, p.v_th, p, dt, spike_fn)


class IF(LIF):
    """Perfect (non-leaky) integrate-and-fire: ``C_m dv/dt = I``. Exact and Euler coincide."""

    name = "if"
    params_cls = IFParams

    def step(self, state: LIFState, current: Tensor) -> tuple[Tensor, LIFState]:
        return if_step(state, current, self.params, self.dt, self.method, self.spike_fn)
