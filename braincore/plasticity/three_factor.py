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
2. the pair-STDP schedule of :mod:`.stdp` (same traces, same same-step convention: a pre and a
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
``rule.modulators = Modulators(batch)`` yourself. The rule is a :class:`~braincore.equations.rule.RuleDefinition`:
the PyTorch step and the native engine's C code are generated from it, so ``rstdp`` runs on both engines.
"""
from __future__ import annotations

from ..equations.rule import PAIRINGS, RuleDefinition
from ..modulators import RECEPTORS
from .defined import define_rule


def _modulator_problems(p) -> list:
    if not (isinstance(p.modulator, str) and p.modulator):
        return [f"modulator: expected a channel name such as 'dopamine', got {p.modulator!r}"]
    return []


RSTDP_DEFINITION = RuleDefinition(
    name="rstdp",
    params={
        "modulator": ("dopamine", "choice", "name of the neuromodulator channel (sim.modulators)"),
        "receptor": ("d1", "choice", "'d1' (modulator acts with its sign) or 'd2' (opposite sign)"),
        "tau_c": (1000.0, "time", "decay of the eligibility trace"),
        "tau_plus": (20.0, "time", "decay of the presynaptic trace (potentiation window)"),
        "tau_minus": (20.0, "time", "decay of the postsynaptic trace (depression window)"),
        "A_plus": (1.0, "dimensionless", "eligibility added per pre-before-post pair at dt = 0"),
        "A_minus": (1.5, "dimensionless", "eligibility removed per post-before-pre pair at dt = 0"),
        "eta": (1.0, "dimensionless", "weight change per ms per unit of eligibility and of modulator"),
        "baseline": (0.0, "dimensionless", "modulator level that changes no weight"),
        "w_min": (0.0, "dimensionless", "lower weight bound (weight units)"),
        "w_max": (4.0, "dimensionless", "upper weight bound (weight units)"),
        "pairing": ("all_to_all", "choice", "'all_to_all' or 'nearest'"),
    },
    choices={"receptor": tuple(RECEPTORS), "pairing": PAIRINGS},
    traces={"x": ("pre", "tau_plus"), "y": ("post", "tau_minus"), "c": ("synapse", "tau_c")},
    on_pre=["c -= A_minus*y"],
    on_post=["c += A_plus*x"],
    each_step=["w += (dt/ms)*eta*sign*(M - baseline)*c"],
    each_step_when="M != baseline",
    clip=True,
    modulator="modulator",
    derived={"sign": (lambda p: RECEPTORS[p.receptor], "+1 for d1 receptors, -1 for d2 (braincore.modulators)")},
)

RSTDP = define_rule(RSTDP_DEFINITION, "RSTDP", params_name="RSTDPParams", check=_modulator_problems,
                    doc="Reward-modulated (three-factor) pair STDP with eligibility traces; see :mod:`.three_factor`.")
RSTDPParams = RSTDP.params_cls

__all__ = ["RSTDP", "RSTDPParams", "RSTDP_DEFINITION"]
