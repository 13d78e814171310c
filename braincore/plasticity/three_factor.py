"""Three-factor (reward-modulated) STDP with eligibility traces: ``rstdp``.

**The rule** (Izhikevich 2007, "Solving the distal reward problem through linkage of STDP and dopamine
signaling", Cereb Cortex 17:2443, eqs. 1-2; Fremaux & Gerstner 2016, "Neuromodulated spike-timing-dependent
plasticity, and theory of three-factor learning rules", Front Neural Circuits 9:85). Pre/post spike pairs do
not change the weight; they tag the synapse with an eligibility trace ``c`` that decays with ``tau_c``, and a
neuromodulator ``M`` (a named channel of :mod:`braincore.modulators`, e.g. dopamine) turns the tag into a
weight change::

    dc/dt = -c / tau_c + sum_pairs STDP(t_post - t_pre) delta(t - t_pair)
    dw/dt = eta * s * (M(t) - baseline) * c              s = +1 (receptor d1) or -1 (receptor d2)

where ``STDP`` is the pair window of :mod:`.stdp` (``+A_plus exp(-dt/tau_plus)`` when the post spike of the
pair comes ``dt >= 0`` after the pre spike, ``-A_minus exp(dt/tau_minus)`` when it comes before) and
``t_pair`` is the time of the pair's second spike: the increments that :class:`.stdp.STDP` adds to ``w``
go into ``c``. Hard bounds ``w_min <= w <= w_max``. A reward that arrives up to about ``tau_c`` after the pairing that
caused it still credits that synapse (the distal reward problem). ``baseline`` is the modulator level that
changes nothing (Fremaux & Gerstner's ``M - <M>``: set it to the channel's resting level to learn only from
phasic deviations). Receptors ``d1``/``d2``: see :mod:`braincore.modulators` (Shen et al. 2008; Gurney et al.
2015).

**Defaults** (Izhikevich 2007): ``tau_c = 1000 ms``, ``A_plus = 1.0``, ``A_minus = 1.5``,
``tau_plus = tau_minus = 20 ms``, all-to-all pairing, ``eta = 1`` (his ``s' = c d``), weights in ``[0, 4]``
(his maximal synaptic weight, 4 mV), ``modulator: dopamine``, ``receptor: d1``, ``baseline = 0``.
Units: ``eta`` is a weight change per ms per unit of eligibility per unit of modulator (with ``eta = 1``,
``c = 1`` and ``M = 1`` held for 1 ms the weight grows by 1, so scale ``eta`` down to the weight's own
scale; ``M`` integrates to ``0.5 * 200 = 100`` unit-ms after one of Izhikevich's 0.5 uM dopamine pulses).

**Step convention** (each step ``k``, after the neurons have spiked and the simulator has stepped the
modulators, :meth:`braincore.modulators.Modulators.step`):

1. ``c <- c exp(-dt/tau_c)``;
2. the pair-STDP schedule of :func:`.stdp.pair_traces` (same traces, same same-step convention: a pre and a
   post spike in the same step count as ``dt = 0``, potentiation), its increments added to ``c`` instead of
   ``w``;
3. ``w <- clip(w + dt * eta * s * mean_b[(M_b - baseline) c_b], w_min, w_max)`` (forward Euler with this
   step's ``c`` and ``M``: with ``M`` constant, ``Delta w = eta s (M - baseline) dt sum_k c_k``).

So the rule must be called every step (the simulator does): unlike :class:`.stdp.STDP`, the weight integrates
``c`` over time. **Batches:** each trial ``b`` has its own traces and eligibility (``[B, S]``, or
``[B, N_pre, N_post]`` for dense projections, zero where there is no synapse) and its own modulator value
``M_b`` (``Modulators.set(name, tensor[B])``); the shared weights change by the mean over trials.

**Cost.** ``c`` decays every step: ``O(B S)`` per step (``B N_pre N_post`` for dense storage), whatever the
spike rate, plus ``O(B S)`` for the weight update in every step where ``M != baseline`` in some trial (skipped
otherwise). Pair increments cost the spikes times their fan-out, as for STDP. This is the price of an exact
per-synapse trace; it dominates for large, sparsely active projections.

**Interface.** The rule declares ``uses_modulators = True``; the simulator then sets ``rule.modulators`` to its
:class:`~braincore.modulators.Modulators` before the first step. To call :meth:`RSTDP.step` directly, set
``rule.modulators = Modulators(batch)`` yourself. The native C engine has no plasticity: simulations with
``rstdp`` run on PyTorch (``backend: auto`` falls back automatically).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

import torch

from ..modulators import RECEPTORS
from ..errors import ConfigError
from ..params import NeuronParams, param
from ..synapses.csr import outgoing
from .base import Plasticity, SynapseView
from .stdp import pair_traces

Tensor = torch.Tensor

PAIRINGS = ("all_to_all", "nearest")


@dataclass(frozen=True)
class RSTDPParams(NeuronParams):
    """Parameters of :class:`RSTDP` (defaults: Izhikevich 2007; see :mod:`.three_factor`)."""

    modulator: str = param("dopamine", "choice", "name of the neuromodulator channel (sim.modulators)")
    receptor: str = param("d1", "choice", "'d1' (modulator acts with its sign) or 'd2' (opposite sign)")
    tau_c: Any = param(1000.0, "time", "decay of the eligibility trace")
    tau_plus: Any = param(20.0, "time", "decay of the presynaptic trace (potentiation window)")
    tau_minus: Any = param(20.0, "time", "decay of the postsynaptic trace (depression window)")
    A_plus: Any = param(1.0, "dimensionless", "eligibility added per pre-before-post pair at dt = 0")
    A_minus: Any = param(1.5, "dimensionless", "eligibility removed per post-before-pre pair at dt = 0")
    eta: Any = param(1.0, "dimensionless", "weight change per ms per unit of eligibility and of modulator")
    baseline: Any = param(0.0, "dimensionless", "modulator level that changes no weight")
    w_min: Any = param(0.0, "dimensionless", "lower weight bound (weight units)")
    w_max: Any = param(4.0, "dimensionless", "upper weight bound (weight units)")
    pairing: str = param("all_to_all", "choice", "'all_to_all' or 'nearest'")


def _choice_problems(values: dict) -> list[tuple[str, str]]:
    problems = []
    for key, allowed in (("receptor", tuple(RECEPTORS)), ("pairing", PAIRINGS)):
        if key in values and values[key] not in allowed:
            problems.append((key, f"rstdp: {key}: unknown value {values[key]!r}; use one of {', '.join(allowed)}"))
    if "modulator" in values and not (isinstance(values["modulator"], str) and values["modulator"]):
        problems.append(("modulator", f"rstdp: modulator: expected a channel name such as 'dopamine', "
                                      f"got {values['modulator']!r}"))
    return problems


def add_at_pre_spikes(view: SynapseView, c: Tensor, a: Tensor, b: Tensor, scale: float) -> None:
    """Per trial, ``c[:, i -> j] += scale * a[:, i] * b[:, j]`` for the synapses of the presynaptic neurons
    with ``a[:, i] != 0`` in some trial (the per-trial counterpart of :meth:`SynapseView.pre_events`)."""
    rows = (a != 0).any(dim=0).nonzero().squeeze(1)
    if rows.numel() == 0:
        return
    if view.dense:
        c[:, rows, :] += scale * a[:, rows, None] * b[:, None, :] * view.mask[rows]
    else:
        syn = outgoing(view.proj.indptr, rows)
        c[:, syn] += scale * a[:, view.pre_of[syn]] * b[:, view.proj.post_idx[syn]]


def add_at_post_spikes(view: SynapseView, c: Tensor, a: Tensor, b: Tensor, scale: float) -> None:
    """Per trial, ``c[:, i -> j] += scale * a[:, i] * b[:, j]`` for the synapses onto the postsynaptic neurons
    with ``b[:, j] != 0`` in some trial (the per-trial counterpart of :meth:`SynapseView.post_events`)."""
    cols = (b != 0).any(dim=0).nonzero().squeeze(1)
    if cols.numel() == 0:
        return
    if view.dense:
        c[:, :, cols] += scale * a[:, :, None] * b[:, None, cols] * view.mask[:, cols]
    else:
        syn = view.by_post[outgoing(view.indptr_post, cols)]
        c[:, syn] += scale * a[:, view.pre_of[syn]] * b[:, view.proj.post_idx[syn]]


class RSTDP(Plasticity):
    """Reward-modulated (three-factor) pair STDP with eligibility traces; see :mod:`.three_factor`."""

    name = "rstdp"
    params_cls = RSTDPParams
    #: the simulator sets :attr:`modulators` on rules that declare this
    uses_modulators = True

    def __init__(self, params: Optional[dict] = None, **overrides: Any):
        values = dict(params or {})
        values.update(overrides)
        problems = _choice_problems(values)  # reported together with the parameter problems, if any
        try:
            super().__init__(values)
        except ConfigError as err:
            message = "\n".join([str(err)] + [msg for _, msg in problems])
            raise ConfigError(message, (list(err.items) or [(None, str(err))]) + problems) from None
        if problems:
            raise ConfigError("\n".join(msg for _, msg in problems), problems)
        self.sign = RECEPTORS[self.params.receptor]
        self.modulators = None  # a braincore.modulators.Modulators, set by the simulator

    def init_state(self, view: SynapseView, batch: int, device, dtype) -> dict:
        shape = (batch, view.n_pre, view.n_post) if view.dense else (batch, int(view.proj.post_idx.numel()))
        return {"x": torch.zeros(batch, view.n_pre, device=device, dtype=dtype),
                "y": torch.zeros(batch, view.n_post, device=device, dtype=dtype),
                "c": torch.zeros(shape, device=device, dtype=dtype)}

    def step(self, view: SynapseView, state: dict, pre: Tensor, post: Tensor, dt: float) -> None:
        p = self.params
        if self.modulators is None:
            raise RuntimeError("rstdp: no modulators: the Simulator sets rule.modulators; to call step() "
                               "directly, set rule.modulators = braincore.modulators.Modulators(batch) first")
        c = state["c"] * math.exp(-dt / p.tau_c)  # every synapse, every step: O(B S)

        def depress(y: Tensor) -> None:  # pre spikes: c -= A_minus * (post trace)
            add_at_pre_spikes(view, c, pre, y, -p.A_minus)

        def potentiate(x: Tensor) -> None:  # post spikes: c += A_plus * (pre trace, with this step's spikes)
            add_at_post_spikes(view, c, x, post, p.A_plus)

        pair_traces(state, pre, post, dt, p, depress, potentiate)
        state["c"] = c
        m = self.modulators.value(p.modulator)
        if m.shape[0] != c.shape[0]:
            raise RuntimeError(f"rstdp: modulator {p.modulator!r} has {m.shape[0]} trial values, the "
                               f"projection {c.shape[0]} trials")
        m = m - p.baseline if p.baseline != 0.0 else m
        if not bool((m != 0).any()):
            return
        w = view.weight
        scale = p.eta * self.sign * dt
        if view.dense:
            dw = torch.tensordot(m, c, dims=1) / c.shape[0]  # mean over trials, [N_pre, N_post]
            w.add_(dw, alpha=scale)
        else:
            w.add_((m[:, None] * c).mean(dim=0), alpha=scale)
        view.clip_(p.w_min, p.w_max)  # absent dense synapses keep their zero


__all__ = ["RSTDP", "RSTDPParams", "add_at_pre_spikes", "add_at_post_spikes"]
