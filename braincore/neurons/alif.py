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
decaying (in Brian2 terms: ``v`` is ``(unless refractory)``, ``a`` is not). Defined once as equations
(:data:`ALIF_DEFINITION`); every engine's step is generated from it.
"""
from __future__ import annotations

from ..equations import NeuronDefinition
from .defined import define_model, pure_step

ALIF_DEFINITION = NeuronDefinition(
    name="alif",
    params={
        "tau_m": (20.0, "time", "membrane time constant"),
        "R_m": (100.0, "resistance", "membrane resistance"),
        "v_rest": (-65.0, "voltage", "resting potential"),
        "v_reset": (-65.0, "voltage", "reset potential"),
        "b0": (-50.0, "voltage", "baseline threshold"),
        "beta": (1.8, "voltage", "threshold increase per unit of adaptation a"),
        "tau_a": (200.0, "time", "adaptation time constant"),
        "delta_a": (1.0, "dimensionless", "jump of a at each spike"),
        "t_ref": (2.0, "time", "absolute refractory period"),
        "reset": ("value", "choice", "'value' (v <- v_reset) or 'subtract' (v <- v - (b - v_reset))"),
    },
    choices={"reset": ("value", "subtract")},
    state={"v": ("voltage", "v_rest"), "a": ("dimensionless", "0")},
    equations=("dv/dt = (v_rest - v + R_m*I) / tau_m", "da/dt = -a / tau_a"),
    threshold="v >= b0 + beta*a",
    reset={"value": ["v = v_reset", "a = a + delta_a"],
           "subtract": ["v = v - (b0 + beta*a - v_reset)", "a = a + delta_a"]},
    reset_choice="reset",
    refractory="t_ref", clamped=("v",),
    methods=("exact", "euler"),
    input_unit="nA",
)

ALIF = define_model(ALIF_DEFINITION, "ALIF", aliases=("adaptive_lif",),
                    doc="Adaptive-threshold LIF (Bellec et al. 2018; Yin et al. 2021). Equations: see :mod:`.alif`.")
ALIFParams, ALIFState = ALIF.params_cls, ALIF.state_cls
alif_step = pure_step(ALIF)
