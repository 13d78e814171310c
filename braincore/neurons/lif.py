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
is that of :mod:`braincore.neurons.base`. Both models are defined once, as equations (:data:`LIF_DEFINITION`,
:data:`IF_DEFINITION`); the PyTorch step and the native engine's C code are generated from them
(:mod:`braincore.equations`).
"""
from __future__ import annotations

from ..equations import NeuronDefinition
from .defined import define_model, pure_step

#: nA / pF expressed in mV / ms
NA_PER_PF_IN_MV_PER_MS = 1000.0

_RESET = {"value": ["v = v_reset"], "subtract": ["v = v - (v_th - v_reset)"]}
_RESET_DOC = "'value' (v <- v_reset) or 'subtract' (v <- v - (v_th - v_reset))"

LIF_DEFINITION = NeuronDefinition(
    name="lif",
    params={
        "tau_m": (20.0, "time", "membrane time constant"),
        "R_m": (100.0, "resistance", "membrane resistance"),
        "v_rest": (-65.0, "voltage", "resting potential"),
        "v_reset": (-65.0, "voltage", "reset potential"),
        "v_th": (-50.0, "voltage", "firing threshold"),
        "t_ref": (2.0, "time", "absolute refractory period"),
        "reset": ("value", "choice", _RESET_DOC),
    },
    choices={"reset": ("value", "subtract")},
    state={"v": ("voltage", "v_rest")},
    equations=("dv/dt = (v_rest - v + R_m*I) / tau_m",),
    threshold="v >= v_th",
    reset=_RESET, reset_choice="reset",
    refractory="t_ref", clamped=("v",),
    methods=("exact", "euler"),
    input_unit="nA",
    doc="Current-based leaky integrate-and-fire neuron (Lapicque 1907; Gerstner et al. 2014).",
)

IF_DEFINITION = NeuronDefinition(
    name="if",
    params={
        "C_m": (250.0, "capacitance", "membrane capacitance"),
        "v_rest": (-65.0, "voltage", "initial potential"),
        "v_reset": (-65.0, "voltage", "reset potential"),
        "v_th": (-50.0, "voltage", "firing threshold"),
        "t_ref": (2.0, "time", "absolute refractory period"),
        "reset": ("value", "choice", "'value' or 'subtract'"),
    },
    choices={"reset": ("value", "subtract")},
    state={"v": ("voltage", "v_rest")},
    equations=("dv/dt = I / C_m",),
    threshold="v >= v_th",
    reset=_RESET, reset_choice="reset",
    refractory="t_ref", clamped=("v",),
    methods=("exact", "euler"),
    input_unit="nA",
    doc="Perfect (non-leaky) integrate-and-fire: C_m dv/dt = I. Exact and Euler coincide.",
)

LIF = define_model(LIF_DEFINITION, "LIF", doc="""Current-based leaky integrate-and-fire neuron. Equations, units and
methods: see :mod:`braincore.neurons.lif`.

    >>> import torch
    >>> lif = LIF(3, tau_m="10 ms", t_ref="2 ms")
    >>> spikes, state = lif(torch.full((1, 3), 0.3))   # one 0.1 ms step under 0.3 nA
""")
LIFParams, LIFState = LIF.params_cls, LIF.state_cls
lif_step = pure_step(LIF)

IF = define_model(IF_DEFINITION, "IF", state_name="LIFState",
                  doc="Perfect (non-leaky) integrate-and-fire: ``C_m dv/dt = I``. Exact and Euler coincide.")
IFParams = IF.params_cls
IF.state_cls = LIFState
if_step = pure_step(IF)
