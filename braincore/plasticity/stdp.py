"""Spike-timing-dependent plasticity: pair-based and triplet rules, trace-based (cost per spike, not per pair).

**Pair STDP** (Bi & Poo 1998; Song, Miller & Abbott 2000; Morrison, Diesmann & Gerstner 2008). For a pair of a
presynaptic spike at ``t_pre`` and a postsynaptic spike at ``t_post``, ``dt = t_post - t_pre``::

    dw = + eta A_plus  f_+(w) exp(-dt / tau_plus)     if dt >= 0   (potentiation: pre before or with post)
    dw = - eta A_minus f_-(w) exp( dt / tau_minus)    if dt <  0   (depression: post before pre)

computed with one trace per neuron (``x`` presynaptic, ``y`` postsynaptic), decaying exactly over each step,
``x <- x exp(-dt/tau_plus)``. Pairing schemes:

- ``all_to_all``: every pre spike pairs with every post spike (``x <- x + 1`` at a spike);
- ``nearest``: symmetric nearest-spike pairing (``x <- 1`` at a spike): a post spike pairs only with the last
  pre spike before it, and a pre spike only with the last post spike before it.

Weight dependence: ``additive`` (``f_+ = f_- = 1``, then a hard clip to ``[w_min, w_max]``) or
``multiplicative`` (soft bounds, van Rossum, Bi & Turrigiano 2000; Guetig et al. 2003 with ``mu = 1``:
``f_+ = w_max - w``, ``f_- = w - w_min``, so weights approach but never cross the bounds as long as each
update moves less than the distance to the bound, ``eta A trace < 1``).

**Triplet STDP** (Pfister & Gerstner 2006, eqs. 3-4): presynaptic traces ``r1`` (``tau_plus``) and ``r2``
(``tau_x``), postsynaptic traces ``o1`` (``tau_minus``) and ``o2`` (``tau_y``)::

    at a pre spike:   w <- w - eta o1 (A2_minus + A3_minus r2)   then r1 += 1, r2 += 1
    at a post spike:  w <- w + eta r1 (A2_plus  + A3_plus  o2)   then o1 += 1, o2 += 1

(the ``r2``, ``o2`` read are those before this spike's own increment: the "epsilon" of the paper). Default
parameters: the paper's minimal all-to-all model fitted to visual cortex (Table 2).

**The step convention** (each step ``k``, after the neurons have spiked; shared by both rules):

1. decay every trace over the step;
2. presynaptic spikes of step ``k`` depress, reading the postsynaptic traces (spikes of steps ``< k``), then
   increment the presynaptic traces;
3. postsynaptic spikes of step ``k`` potentiate, reading the presynaptic traces (spikes of steps ``<= k``),
   then increment the postsynaptic traces.

So a pre and a post spike in the same step count as ``dt = 0``: potentiation by ``A_plus`` (Brian2's order
for ``on_pre`` before ``on_post``). The presynaptic spike time is its emission step: axonal delays do not
shift the pairing (a dendritic-delay-free convention; NEST splits delays differently).

Weights are shared by the ``B`` trials of a batch: the update is the mean over trials (for ``B = 1``, the
exact rule). Units: ``A_*`` and ``eta`` are dimensionless factors of the weight's own unit (a change of
``eta * A_plus`` nS per pair for conductance weights); ``tau_*`` in ms.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch

from ..params import NeuronParams, param
from .base import Plasticity, SynapseView

Tensor = torch.Tensor


@dataclass(frozen=True)
class STDPParams(NeuronParams):
    """Parameters of :class:`STDP` (defaults: Song, Miller & Abbott 2000, ``A_minus / A_plus = 1.05``)."""

    tau_plus: Any = param(20.0, "time", "decay of the presynaptic trace (potentiation window)")
    tau_minus: Any = param(20.0, "time", "decay of the postsynaptic trace (depression window)")
    A_plus: Any = param(0.01, "dimensionless", "potentiation per pair at dt = 0 (times eta, in weight units)")
    A_minus: Any = param(0.0105, "dimensionless", "depression per pair at dt = 0 (times eta)")
    eta: Any = param(1.0, "dimensionless", "learning rate (scales A_plus and A_minus)")
    w_min: Any = param(0.0, "dimensionless", "lower weight bound (weight units)")
    w_max: Any = param(1.0, "dimensionless", "upper weight bound (weight units)")
    pairing: str = param("all_to_all", "choice", "'all_to_all' or 'nearest'")
    weight_dependence: str = param("additive", "choice", "'additive' (hard bounds) or 'multiplicative' (soft)")


@dataclass(frozen=True)
class TripletParams(NeuronParams):
    """Parameters of :class:`TripletSTDP` (defaults: Pfister & Gerstner 2006, visual cortex, all-to-all)."""

    tau_plus: Any = param(16.8, "time", "decay of r1")
    tau_minus: Any = param(33.7, "time", "decay of o1")
    tau_x: Any = param(101.0, "time", "decay of r2")
    tau_y: Any = param(125.0, "time", "decay of o2")
    A2_plus: Any = param(5e-10, "dimensionless", "pair potentiation")
    A3_plus: Any = param(6.2e-3, "dimensionless", "triplet potentiation")
    A2_minus: Any = param(7e-3, "dimensionless", "pair depression")
    A3_minus: Any = param(2.3e-4, "dimensionless", "triplet depression")
    eta: Any = param(1.0, "dimensionless", "learning rate")
    w_min: Any = param(0.0, "dimensionless", "lower weight bound (weight units)")
    w_max: Any = param(1.0, "dimensionless", "upper weight bound (weight units)")
    pairing: str = param("all_to_all", "choice", "'all_to_all' or 'nearest'")


def _check_choice(value: str, allowed: tuple, what: str) -> None:
    if value not in allowed:
        from ..errors import ConfigError

        raise ConfigError(f"{what}: unknown value {value!r}; use one of {', '.join(allowed)}")


def bump(trace: Tensor, spikes: Tensor, pairing: str) -> Tensor:
    """Trace after this step's spikes: ``+1`` (all-to-all) or set to 1 (nearest), where ``spikes`` is 1."""
    if pairing == "all_to_all":
        return trace + spikes
    return torch.where(spikes > 0, torch.ones_like(trace), trace)


def pair_traces(state: dict, pre: Tensor, post: Tensor, dt: float, p: Any,
                depress: Callable[[Tensor], None], potentiate: Callable[[Tensor], None]) -> None:
    """One step of the pair-STDP trace schedule (the module's step convention), shared by the pair rules.

    ``state["x"]`` ``[B, N_pre]`` and ``state["y"]`` ``[B, N_post]`` decay over ``dt`` (``p.tau_plus``,
    ``p.tau_minus``); ``depress(y)`` is called with the decayed postsynaptic trace (this step's presynaptic
    spikes pair with earlier postsynaptic ones), then the presynaptic trace takes this step's spikes
    (``p.pairing``), then ``potentiate(x)`` is called with it; last the postsynaptic trace takes this step's
    spikes. The callbacks apply the pair increments (``A_minus * y``, ``A_plus * x``) to whatever the rule
    changes: the weights (:class:`STDP`) or an eligibility trace (:mod:`.three_factor`).
    """
    x = state["x"] * math.exp(-dt / p.tau_plus)
    y = state["y"] * math.exp(-dt / p.tau_minus)
    depress(y)
    x = bump(x, pre, p.pairing)
    potentiate(x)
    state["x"], state["y"] = x, bump(y, post, p.pairing)


class STDP(Plasticity):
    """Pair-based STDP on one projection. Equations, pairing, bounds and step convention: see :mod:`.stdp`."""

    name = "stdp"
    params_cls = STDPParams

    def __init__(self, params: Optional[dict] = None, **overrides: Any):
        super().__init__(params, **overrides)
        p = self.params
        _check_choice(p.pairing, ("all_to_all", "nearest"), "stdp: pairing")
        _check_choice(p.weight_dependence, ("additive", "multiplicative"), "stdp: weight_dependence")

    def init_state(self, view: SynapseView, batch: int, device, dtype) -> dict:
        return {"x": torch.zeros(batch, view.n_pre, device=device, dtype=dtype),
                "y": torch.zeros(batch, view.n_post, device=device, dtype=dtype)}

    def step(self, view: SynapseView, state: dict, pre: Tensor, post: Tensor, dt: float) -> None:
        p = self.params
        w = view.weight

        def depress(y: Tensor) -> None:
            sel, pairs = view.pre_events(pre, y)        # pre spikes depress by the post trace
            if sel is not None:
                scale = (w[sel] - p.w_min) if p.weight_dependence == "multiplicative" else 1.0
                w[sel] -= p.eta * p.A_minus * scale * pairs

        def potentiate(x: Tensor) -> None:
            sel, pairs = view.post_events(x, post)      # post spikes potentiate by the updated pre trace
            if sel is not None:
                scale = (p.w_max - w[sel]) if p.weight_dependence == "multiplicative" else 1.0
                w[sel] += p.eta * p.A_plus * scale * pairs

        pair_traces(state, pre, post, dt, p, depress, potentiate)
        if p.weight_dependence == "additive":
            view.clip_(p.w_min, p.w_max)


class TripletSTDP(Plasticity):
    """Triplet STDP (Pfister & Gerstner 2006) on one projection; see :mod:`.stdp`. Hard bounds."""

    name = "triplet_stdp"
    params_cls = TripletParams

    def __init__(self, params: Optional[dict] = None, **overrides: Any):
        super().__init__(params, **overrides)
        _check_choice(self.params.pairing, ("all_to_all", "nearest"), "triplet_stdp: pairing")

    def init_state(self, view: SynapseView, batch: int, device, dtype) -> dict:
        pre = torch.zeros(batch, view.n_pre, device=device, dtype=dtype)
        post = torch.zeros(batch, view.n_post, device=device, dtype=dtype)
        return {"r1": pre, "r2": pre.clone(), "o1": post, "o2": post.clone()}

    def step(self, view: SynapseView, state: dict, pre: Tensor, post: Tensor, dt: float) -> None:
        p = self.params
        r1 = state["r1"] * math.exp(-dt / p.tau_plus)
        r2 = state["r2"] * math.exp(-dt / p.tau_x)
        o1 = state["o1"] * math.exp(-dt / p.tau_minus)
        o2 = state["o2"] * math.exp(-dt / p.tau_y)
        w = view.weight
        # pre spikes: w -= o1_j (A2- + A3- r2_i), r2 before this spike's increment
        sel, change = view.pre_events(pre * (p.A2_minus + p.A3_minus * r2), o1)
        if sel is not None:
            w[sel] -= p.eta * change
        r1, r2 = bump(r1, pre, p.pairing), bump(r2, pre, p.pairing)
        # post spikes: w += r1_i (A2+ + A3+ o2_j), o2 before this spike's increment
        sel, change = view.post_events(r1, post * (p.A2_plus + p.A3_plus * o2))
        if sel is not None:
            w[sel] += p.eta * change
        view.clip_(p.w_min, p.w_max)
        state.update(r1=r1, r2=r2, o1=bump(o1, post, p.pairing), o2=bump(o2, post, p.pairing))
