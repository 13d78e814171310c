"""Izhikevich's simple model of spiking neurons (Izhikevich 2003, IEEE Trans. Neural Netw. 14:1569).

Equations (the paper's eqs. 1–3)::

    dv/dt = 0.04 v^2 + 5 v + 140 - u + I
    du/dt = a (b v - u)
    if v >= v_peak (30 mV):  spike, v <- c,  u <- u + d

Units follow the paper, whose numbers carry no units: read with ``v`` in mV and ``t`` in ms, the equations
are (as written for Brian2 in the reference test)::

    dv/dt = (0.04 v^2 / mV + 5 v + 140 mV - u + I mV) / ms
    du/dt = a (b v - u) / ms

so ``u``, ``c`` and ``d`` are in mV, ``a`` and ``b`` are dimensionless, and the input ``I`` is a bare number:
:attr:`Izhikevich.input_unit` is ``"1"``, the paper's units, so ``I = 10`` is the paper's ``I = 10`` (a
current already divided by the membrane capacitance, in mV/ms).

The initial state is ``v = v_init`` (default -65 mV, the paper's value) and ``u = b * v_init``.

Integration: ``euler`` only, forward Euler with both variables advanced from their old values (as Brian2's
``euler``; the paper's own Matlab code takes two 0.5 ms half steps for ``v`` and updates ``u`` after ``v``,
a different scheme). The model has no refractory period (neither the paper nor Brian2's version has one):
the reset to ``c`` below threshold is what separates spikes. Nothing guards the quadratic: the Euler
trajectory is exactly Brian2's, and ``v`` cannot run away within a step from below ``v_peak`` unless ``dt``
or ``I`` is absurdly large.

The step convention (held input, threshold on the updated state, spike stamped at ``t_k``, reset) is that
of :mod:`braincore.neurons.base`.

Presets (:attr:`Izhikevich.presets`) are the cortical and thalamic cell classes of the paper's Fig. 2:

============================  =====  =====  ====  ====
preset                        a      b      c     d
============================  =====  =====  ====  ====
``regular_spiking``           0.02   0.2    -65   8
``intrinsically_bursting``    0.02   0.2    -55   4
``chattering``                0.02   0.2    -50   2
``fast_spiking``              0.1    0.2    -65   2
``low_threshold_spiking``     0.02   0.25   -65   2
``thalamo_cortical``          0.02   0.25   -65   0.05
``resonator``                 0.1    0.26   -65   2
============================  =====  =====  ====  ====

(The paper's thalamo-cortical panels also start from ``v = -63`` or ``-87`` mV; set ``v_init`` for those.)

The model is defined once, as equations (:data:`IZHIKEVICH_DEFINITION`); every engine's step is generated from it.
"""
from __future__ import annotations

from ..equations import NeuronDefinition
from ..params import _any_le, _numeric
from .defined import define_model, pure_step

IZHIKEVICH_DEFINITION = NeuronDefinition(
    name="izhikevich",
    params={
        "a": (0.02, "dimensionless", "rate of the recovery variable u (per ms)"),
        "b": (0.2, "dimensionless", "sensitivity of u to the subthreshold fluctuations of v"),
        "c": (-65.0, "voltage", "after-spike reset value of v"),
        "d": (8.0, "voltage", "after-spike increment of u"),
        "v_peak": (30.0, "voltage", "spike cut-off: v >= v_peak is a spike"),
        "v_init": (-65.0, "voltage", "initial membrane potential (u starts at b * v_init)"),
    },
    state={"v": ("voltage", "v_init"), "u": ("voltage", "b*v_init")},
    equations=("dv/dt = (0.04*v**2/mV + 5*v + 140*mV - u + I*mV) / ms",
               "du/dt = a*(b*v - u) / ms"),
    threshold="v >= v_peak",
    reset=("v = c", "u = u + d"),
    methods=("euler",),
    input_unit="1",
)


def _check(p) -> list[str]:
    if _any_le(_numeric(p.v_peak) - _numeric(p.c), 0.0):
        return [f"the reset c must lie below the spike cut-off v_peak, got c = {p.c} mV and v_peak = {p.v_peak} mV"]
    return []


IZHIKEVICH_DEFINITION.presets.update({
    "regular_spiking": {"a": 0.02, "b": 0.2, "c": -65.0, "d": 8.0},
    "intrinsically_bursting": {"a": 0.02, "b": 0.2, "c": -55.0, "d": 4.0},
    "chattering": {"a": 0.02, "b": 0.2, "c": -50.0, "d": 2.0},
    "fast_spiking": {"a": 0.1, "b": 0.2, "c": -65.0, "d": 2.0},
    "low_threshold_spiking": {"a": 0.02, "b": 0.25, "c": -65.0, "d": 2.0},
    "thalamo_cortical": {"a": 0.02, "b": 0.25, "c": -65.0, "d": 0.05},
    "resonator": {"a": 0.1, "b": 0.26, "c": -65.0, "d": 2.0},
})

Izhikevich = define_model(IZHIKEVICH_DEFINITION, "Izhikevich", check=_check, doc="""Izhikevich (2003) simple spiking
neuron. Equations, units and presets: see :mod:`braincore.neurons.izhikevich`.

    >>> import torch
    >>> cells = Izhikevich.from_preset("chattering", 4)
    >>> spikes, state = cells(torch.full((1, 4), 10.0))   # one 0.1 ms step under I = 10
""")
IzhikevichParams, IzhikevichState = Izhikevich.params_cls, Izhikevich.state_cls
izhikevich_step = pure_step(Izhikevich)
