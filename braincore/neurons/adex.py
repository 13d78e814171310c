"""Adaptive exponential integrate-and-fire neuron, AdEx (Brette & Gerstner 2005, J. Neurophysiol. 94:3637).

Equations::

    C dV/dt   = -g_L (V - E_L) + g_L Delta_T exp((V - V_T) / Delta_T) - w + I
    tau_w dw/dt = a (V - E_L) - w
    if V >= V_cut:  spike, V <- V_r,  w <- w + b,  refractory for t_ref

Canonical units: ``C`` pF; ``g_L`` and ``a`` nS; ``E_L``, ``V_T``, ``Delta_T``, ``V_r``, ``V_cut`` mV;
``tau_w`` and ``t_ref`` ms; ``b``, ``w`` and the input ``I`` nA. In these units ``nS * mV = pA = 1e-3 nA``
and ``nA / pF = 1000 mV/ms``, so the step integrates::

    dV/dt = (g_L (E_L - V) + g_L Delta_T exp((V - V_T)/Delta_T) + 1000 (I - w)) / C      [mV/ms]
    dw/dt = (1e-3 a (V - E_L) - w) / tau_w                                              [nA/ms]

Integration: ``euler`` only (forward Euler, both variables advanced from their old values), Brian2's choice
for this nonlinear model. During the absolute refractory period ``t_ref`` the potential is clamped at its
reset value while ``w`` keeps evolving (Brian2's ``(unless refractory)`` on ``dV/dt`` only). The step
convention (held input, threshold on the updated state, spike stamped at ``t_k``, reset, refractory
countdown) is that of :mod:`braincore.neurons.base`.

The spike cut-off ``V_cut`` is a parameter: the exponential drives ``V`` to infinity in finite time, and the
trajectory is stopped at ``V_cut`` (Brette & Gerstner 2005 and Touboul & Brette 2008 use
``V_T + 5 Delta_T``, the default here, -40.4 mV). Overflow guard: the exponent ``(V - V_T)/Delta_T`` is
clamped at :data:`EXP_ARG_MAX` = 50 (``exp(50) ~ 5e21``, finite in float32). Euler evaluates the exponential
only at the state at the start of a step, which is below ``V_cut`` (or at a reset value below it), so the
clamp changes no trajectory as long as ``V_cut <= V_T + 50 Delta_T``, which :meth:`AdExParams.check`
enforces; it only keeps a wildly out-of-range initial state from producing ``inf``/``nan``.

Defaults are the paper's values (Brette & Gerstner 2005, fitted to a regular-spiking cell): ``C`` 281 pF, ``g_L`` 30 nS,
``E_L`` -70.6 mV, ``V_T`` -50.4 mV, ``Delta_T`` 2 mV, ``tau_w`` 144 ms, ``a`` 4 nS, ``b`` 0.0805 nA,
``V_r = E_L``, ``V_cut = V_T + 5 Delta_T``, ``t_ref`` 0 ms. The state starts at rest, ``V = E_L``, ``w = 0``.

Presets (:attr:`AdEx.presets`) are the eight firing patterns of Naud, Marcille, Clopath & Gerstner 2008
(Biol. Cybern. 99:335), Table 1 / Fig. 4, all with ``V_T`` -50 mV and ``Delta_T`` 2 mV. The paper states
each pattern together with its step current, which is not a parameter and is listed here for reference:

================================  =====  ====  =====  ====  =====  ====  =====  ======
preset (Fig. 4 panel)             C pF   g_L   E_L    a nS  tau_w  b pA  V_r    I (pA)
================================  =====  ====  =====  ====  =====  ====  =====  ======
``tonic`` (a)                     200    10    -70    2     30     0     -58    500
``adapting`` (b)                  200    12    -70    2     300    60    -58    500
``initial_burst`` (c)             130    18    -58    4     150    120   -50    400
``regular_bursting`` (d)          200    10    -58    2     120    100   -46    210
``delayed_accelerating`` (e)      200    12    -70    -10   300    0     -58    300
``delayed_regular_bursting`` (f)  100    10    -65    -10   90     30    -47    110
``transient`` (g)                 100    10    -65    10    90     100   -47    180
``irregular`` (h)                 100    12    -60    -11   130    30    -48    160
================================  =====  ====  =====  ====  =====  ====  =====  ======

(``g_L`` in nS, ``E_L`` and ``V_r`` in mV, ``tau_w`` in ms.) These values agree with independent
transcriptions of the table, e.g. Brian2's ``Naud_et_al_2008_adex_firing_patterns`` example, whose 0 mV
spike-detection level the presets take as ``V_cut`` (any cut-off well above ``V_T`` gives nearly the same
spike times, since ``V`` diverges quickly past ``V_T``). The tests check that each set produces its named
pattern under its current; at 180 pA the ``transient`` set fires a single onset spike before falling silent.

The model is defined once, as equations (:data:`ADEX_DEFINITION`); every engine's step is generated from it.
"""
from __future__ import annotations

from typing import Any

from ..equations import NeuronDefinition
from ..params import _any_le, _numeric
from .defined import define_model, pure_step

#: nA / pF expressed in mV / ms
NA_PER_PF_IN_MV_PER_MS = 1000.0
#: nS * mV (= pA) expressed in nA
NS_MV_IN_NA = 1e-3
#: upper bound of the exponent (V - V_T)/Delta_T (overflow guard; see the module docstring)
EXP_ARG_MAX = 50.0

ADEX_DEFINITION = NeuronDefinition(
    name="adex",
    params={
        "C": (281.0, "capacitance", "membrane capacitance"),
        "g_L": (30.0, "conductance", "leak conductance"),
        "E_L": (-70.6, "voltage", "leak reversal potential (and initial potential)"),
        "V_T": (-50.4, "voltage", "threshold (rheobase) potential of the exponential term"),
        "Delta_T": (2.0, "voltage", "slope factor of the exponential term"),
        "tau_w": (144.0, "time", "adaptation time constant"),
        "a": (4.0, "conductance", "subthreshold adaptation coupling"),
        "b": (0.0805, "current", "spike-triggered adaptation increment"),
        "V_r": (-70.6, "voltage", "reset potential"),
        "V_cut": (-40.4, "voltage", "spike cut-off: V >= V_cut is a spike (default V_T + 5 Delta_T)"),
        "t_ref": (0.0, "time", "absolute refractory period (V clamped at V_r, w keeps evolving)"),
    },
    state={"v": ("voltage", "E_L"), "w": ("current", "0")},
    expressions={"spike_current": f"g_L*Delta_T*exp(min((v - V_T)/Delta_T, {EXP_ARG_MAX}))"},
    equations=("dv/dt = (g_L*(E_L - v) + spike_current + I - w) / C",
               "dw/dt = (-w + a*(v - E_L)) / tau_w"),
    threshold="v >= V_cut",
    reset=("v = V_r", "w = w + b"),
    refractory="t_ref", clamped=("v",),
    methods=("euler",),
    input_unit="nA",
)


def _check(self) -> list[str]:
    problems: list[str] = []
    if _any_le(self.g_L, 0.0):
        problems.append(f"g_L must be > 0 nS, got {self.g_L}")
    if _any_le(self.Delta_T, 0.0):
        problems.append(f"Delta_T must be > 0 mV, got {self.Delta_T}")
        return problems
    v_t, delta_t = _numeric(self.V_T), _numeric(self.Delta_T)
    v_cut, v_r = _numeric(self.V_cut), _numeric(self.V_r)
    if _any_le(v_cut - v_t, 0.0):
        problems.append(f"V_cut must lie above V_T, got V_cut = {self.V_cut} mV and V_T = {self.V_T} mV")
    if _any_le(v_t + EXP_ARG_MAX * delta_t - v_cut, -1e-12):
        problems.append(f"V_cut must be <= V_T + {EXP_ARG_MAX:g} Delta_T (beyond it the exponential's "
                        f"overflow guard would alter the dynamics), got V_cut = {self.V_cut} mV")
    if _any_le(v_cut - v_r, 0.0):
        problems.append(f"the reset V_r must lie below V_cut, got V_r = {self.V_r} mV and "
                        f"V_cut = {self.V_cut} mV")
    return problems


#: Naud et al. 2008, Table 1 (see the module docstring); V_T -50 mV, Delta_T 2 mV, V_cut 0 mV throughout.
_NAUD_2008 = {
    #                          C      g_L    E_L    a      tau_w  b      V_r
    "tonic":                    (200.0, 10.0, -70.0, 2.0, 30.0, 0.0, -58.0),
    "adapting":                 (200.0, 12.0, -70.0, 2.0, 300.0, 60.0, -58.0),
    "initial_burst":            (130.0, 18.0, -58.0, 4.0, 150.0, 120.0, -50.0),
    "regular_bursting":         (200.0, 10.0, -58.0, 2.0, 120.0, 100.0, -46.0),
    "delayed_accelerating":     (200.0, 12.0, -70.0, -10.0, 300.0, 0.0, -58.0),
    "delayed_regular_bursting": (100.0, 10.0, -65.0, -10.0, 90.0, 30.0, -47.0),
    "transient":                (100.0, 10.0, -65.0, 10.0, 90.0, 100.0, -47.0),
    "irregular":                (100.0, 12.0, -60.0, -11.0, 130.0, 30.0, -48.0),
}


def _naud_preset(C: float, g_L: float, E_L: float, a: float, tau_w: float, b_pA: float,
                 V_r: float) -> dict[str, Any]:
    return {"C": C, "g_L": g_L, "E_L": E_L, "V_T": -50.0, "Delta_T": 2.0, "a": a, "tau_w": tau_w,
            "b": f"{b_pA:g} pA", "V_r": V_r, "V_cut": 0.0}


ADEX_DEFINITION.presets.update({name: _naud_preset(*values) for name, values in _NAUD_2008.items()})

AdEx = define_model(ADEX_DEFINITION, "AdEx", check=_check, doc="""Adaptive exponential integrate-and-fire neuron.
Equations, units and presets: see :mod:`braincore.neurons.adex`.

    >>> import torch
    >>> cells = AdEx(3, t_ref="2 ms")
    >>> spikes, state = cells(torch.full((1, 3), 1.0))   # one 0.1 ms step under 1 nA
""")
AdExParams, AdExState = AdEx.params_cls, AdEx.state_cls
adex_step = pure_step(AdEx)
