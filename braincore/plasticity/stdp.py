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
exact rule). Both rules are :class:`~braincore.equations.rule.RuleDefinition` s: the PyTorch step
(:mod:`.defined`) and the native engine's C code (:mod:`braincore.equations.c_rule`) are generated from them. Units:
``A_*`` and ``eta`` are dimensionless factors of the weight's own unit (a change of
``eta * A_plus`` nS per pair for conductance weights); ``tau_*`` in ms.
"""
from __future__ import annotations

from ..equations.rule import PAIRINGS, RuleDefinition
from .defined import define_rule

_PAIRING = ("all_to_all", "choice", "'all_to_all' (a spike adds 1 to its traces) or 'nearest' (sets them to 1)")

STDP_DEFINITION = RuleDefinition(
    name="stdp",
    params={
        "tau_plus": (20.0, "time", "decay of the presynaptic trace (potentiation window)"),
        "tau_minus": (20.0, "time", "decay of the postsynaptic trace (depression window)"),
        "A_plus": (0.01, "dimensionless", "potentiation per pair at dt = 0 (times eta, in weight units)"),
        "A_minus": (0.0105, "dimensionless", "depression per pair at dt = 0 (times eta)"),
        "eta": (1.0, "dimensionless", "learning rate (scales A_plus and A_minus)"),
        "w_min": (0.0, "dimensionless", "lower weight bound (weight units)"),
        "w_max": (1.0, "dimensionless", "upper weight bound (weight units)"),
        "pairing": _PAIRING,
        "weight_dependence": ("additive", "choice", "'additive' (hard bounds) or 'multiplicative' (soft bounds)"),
    },
    choices={"pairing": PAIRINGS, "weight_dependence": ("additive", "multiplicative")},
    traces={"x": ("pre", "tau_plus"), "y": ("post", "tau_minus")},
    on_pre={"additive": ["w -= eta*A_minus*y"], "multiplicative": ["w -= eta*A_minus*(w - w_min)*y"]},
    on_post={"additive": ["w += eta*A_plus*x"], "multiplicative": ["w += eta*A_plus*(w_max - w)*x"]},
    clip={"additive": True, "multiplicative": False},
    variant="weight_dependence",
)

TRIPLET_DEFINITION = RuleDefinition(
    name="triplet_stdp",
    params={
        "tau_plus": (16.8, "time", "decay of r1"),
        "tau_minus": (33.7, "time", "decay of o1"),
        "tau_x": (101.0, "time", "decay of r2"),
        "tau_y": (125.0, "time", "decay of o2"),
        "A2_plus": (5e-10, "dimensionless", "pair potentiation"),
        "A3_plus": (6.2e-3, "dimensionless", "triplet potentiation"),
        "A2_minus": (7e-3, "dimensionless", "pair depression"),
        "A3_minus": (2.3e-4, "dimensionless", "triplet depression"),
        "eta": (1.0, "dimensionless", "learning rate"),
        "w_min": (0.0, "dimensionless", "lower weight bound (weight units)"),
        "w_max": (1.0, "dimensionless", "upper weight bound (weight units)"),
        "pairing": _PAIRING,
    },
    choices={"pairing": PAIRINGS},
    traces={"r1": ("pre", "tau_plus"), "r2": ("pre", "tau_x"), "o1": ("post", "tau_minus"), "o2": ("post", "tau_y")},
    # r2 and o2 are read before this spike's own increment (the paper's epsilon)
    on_pre=["w -= eta*o1*(A2_minus + A3_minus*r2)"],
    on_post=["w += eta*r1*(A2_plus + A3_plus*o2)"],
    clip=True,
)

STDP = define_rule(STDP_DEFINITION, "STDP", params_name="STDPParams",
                   doc="Pair-based STDP on one projection. Equations, pairing, bounds and step convention: see "
                       ":mod:`.stdp` (defaults: Song, Miller & Abbott 2000, ``A_minus / A_plus = 1.05``).")
TripletSTDP = define_rule(TRIPLET_DEFINITION, "TripletSTDP", params_name="TripletParams",
                          doc="Triplet STDP (Pfister & Gerstner 2006, visual cortex all-to-all defaults) on one "
                              "projection; see :mod:`.stdp`. Hard bounds.")
STDPParams = STDP.params_cls
TripletParams = TripletSTDP.params_cls

__all__ = ["STDP", "STDPParams", "TripletSTDP", "TripletParams", "STDP_DEFINITION", "TRIPLET_DEFINITION"]
