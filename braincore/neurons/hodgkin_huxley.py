"""Hodgkin–Huxley model of the squid giant axon (Hodgkin & Huxley 1952, J Physiol 117:500–544).

Equations (modern convention, resting potential about -65 mV)::

    C_m dV/dt = I - g_Na m^3 h (V - E_Na) - g_K n^4 (V - E_K) - g_L (V - E_L)
    dx/dt     = phi (alpha_x(V) (1 - x) - beta_x(V) x)          for the gates x in m, h, n
    phi       = Q10 ** ((temperature - 6.3) / 10)                (phi = 1 at 6.3 degC, Q10 = 3)

with ``V`` in mV and the rates in 1/ms (the rate functions of Gerstner, Kistler, Naud & Paninski 2014,
*Neuronal Dynamics*, ch. 2.2, and of Brian2's Hodgkin–Huxley examples)::

    alpha_m = 0.1 (V + 40) / (1 - exp(-(V + 40) / 10))     beta_m = 4 exp(-(V + 65) / 18)
    alpha_h = 0.07 exp(-(V + 65) / 20)                      beta_h = 1 / (1 + exp(-(V + 35) / 10))
    alpha_n = 0.01 (V + 55) / (1 - exp(-(V + 55) / 10))    beta_n = 0.125 exp(-(V + 65) / 80)

``alpha_m`` and ``alpha_n`` have removable singularities at V = -40 and -55 mV; they are evaluated as
``u / (1 - exp(-u/k)) = k y / -expm1(-y)`` with ``y = u/k`` (Brian2's ``1/exprel``), and as the series
``k (1 + y/2)`` where ``|y| < 1e-6`` (so the value is exact to rounding and its gradient finite everywhere).

Units (canonical, see :mod:`braincore.units`): ``C_m`` in uF/cm2 (1.0), ``g_Na``, ``g_K``, ``g_L`` in mS/cm2
(120, 36, 0.3), reversal potentials in mV (50, -77, -54.387), ``temperature`` in degC (6.3), the injected
current ``I`` in uA/cm2 (uA/cm2 / (uF/cm2) = mV/ms). The state starts at rest: ``V = v_rest`` (-65 mV) and
each gate at its steady state ``x_inf(V) = alpha_x / (alpha_x + beta_x)``.

Integration methods (the input ``I`` is held over the step; every update uses the old values of all
variables). Each equation is linear in its own variable, ``dx/dt = k_x (x_inf - x)``, with ``k_x`` and
``x_inf`` depending only on the *other* variables (for ``V``: ``k_V = g_tot / C_m`` and
``V_inf = (I + g_Na m^3 h E_Na + g_K n^4 E_K + g_L E_L) / g_tot``, ``g_tot = g_Na m^3 h + g_K n^4 + g_L``;
for a gate: ``k_x = phi (alpha_x + beta_x)``):

- ``exponential_euler`` (default), exactly Brian2's ``exponential_euler``: ``k_x`` and ``x_inf`` are computed
  from the old state and held over the step, and every variable relaxes exactly,
  ``x <- x_inf + (x - x_inf) exp(-k_x dt)``. First order, unconditionally stable, gates stay in [0, 1];
- ``rk4``: the classic four-stage Runge–Kutta method on the whole system (fourth order);
- ``euler``: forward Euler, ``x <- x + dt dx/dt`` (first order; needs dt of about 0.02 ms or less).

Spike detection: the model has no reset. A spike is an upward crossing of ``v_spike`` (default -20 mV), as
in Brian2's ``threshold='v > -20*mV', refractory='v > -20*mV'``: Brian2 updates
``not_refractory = not_refractory or not (v > v_spike)`` on the old potential at the start of a step and
clears it at a spike, which amounts to: a spike in the step from ``t_k`` to ``t_k + dt`` iff the updated
potential is strictly above ``v_spike`` and the neuron was not already above it after the previous step.
The state variable ``above`` (1.0 or 0.0, in the state's dtype) records ``V > v_spike`` after each step; it
starts at 0 (Brian2's ``not_refractory`` starts True). The spike is stamped at ``t_k``, the step start
(:mod:`braincore.neurons.base`).

The model is defined once, as equations (:data:`HH_DEFINITION`); every engine's step, the rate functions
:func:`hh_rates` and the steady states :func:`hh_steady_state` are derived from it.
"""
from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from ..equations import NeuronDefinition
from ..params import _any_le, _any_lt, _show
from .defined import DefinedModel, define_model, expression_function, pure_step

if TYPE_CHECKING:
    from torch import Tensor

#: temperature (degC) at which the rate functions hold unscaled (phi = 1)
REFERENCE_TEMPERATURE = 6.3

_RATES = {
    "alpha_m": "1/exprel(-(v + 40*mV)/(10*mV)) / ms",
    "beta_m": "4*exp(-(v + 65*mV)/(18*mV)) / ms",
    "alpha_h": "0.07*exp(-(v + 65*mV)/(20*mV)) / ms",
    "beta_h": "1/(1 + exp(-(v + 35*mV)/(10*mV))) / ms",
    "alpha_n": "0.1/exprel(-(v + 55*mV)/(10*mV)) / ms",
    "beta_n": "0.125*exp(-(v + 65*mV)/(80*mV)) / ms",
}

HH_DEFINITION = NeuronDefinition(
    name="hh",
    params={
        "C_m": (1.0, "capacitance_density", "membrane capacitance"),
        "g_Na": (120.0, "conductance_density", "maximal sodium conductance"),
        "g_K": (36.0, "conductance_density", "maximal potassium conductance"),
        "g_L": (0.3, "conductance_density", "leak conductance"),
        "E_Na": (50.0, "voltage", "sodium reversal potential"),
        "E_K": (-77.0, "voltage", "potassium reversal potential"),
        "E_L": (-54.387, "voltage", "leak reversal potential"),
        "temperature": (REFERENCE_TEMPERATURE, "temperature", "temperature; rates scale by Q10 per 10 degC"),
        "Q10": (3.0, "dimensionless", "temperature coefficient of the gating rates"),
        "v_rest": (-65.0, "voltage", "initial potential (the gates start at their steady state there)"),
        "v_spike": (-20.0, "voltage", "spike detection level: a spike is an upward crossing"),
    },
    state={"v": ("voltage", "v_rest"),
           "m": ("dimensionless", "alpha_m/(alpha_m + beta_m)"),
           "h": ("dimensionless", "alpha_h/(alpha_h + beta_h)"),
           "n": ("dimensionless", "alpha_n/(alpha_n + beta_n)"),
           "above": ("dimensionless", "0")},
    expressions={"phi": f"Q10**((temperature - {REFERENCE_TEMPERATURE}*degC)/(10*degC))", **_RATES},
    equations=("dv/dt = (I - g_Na*m**3*h*(v - E_Na) - g_K*n**4*(v - E_K) - g_L*(v - E_L)) / C_m",
               "dm/dt = phi*(alpha_m*(1 - m) - beta_m*m)",
               "dh/dt = phi*(alpha_h*(1 - h) - beta_h*h)",
               "dn/dt = phi*(alpha_n*(1 - n) - beta_n*n)"),
    threshold="v > v_spike and above == 0",
    after=("above = v > v_spike",),
    methods=("exponential_euler", "rk4", "euler"),
    input_unit="uA/cm2",
)


def _check(self) -> list[str]:
    problems: list[str] = []
    for name in ("g_Na", "g_K", "g_L"):
        value = getattr(self, name)
        if _any_lt(value, 0.0):
            problems.append(f"{name} must be >= 0 mS/cm2, got {_show(value)}")
    if _any_le(self.Q10, 0.0):
        problems.append(f"Q10 must be > 0, got {_show(self.Q10)}")
    return problems


def temperature_factor(p: Any) -> Any:
    """``phi = Q10 ** ((temperature - 6.3) / 10)``, the factor on every gating rate (a float or a tensor)."""
    return expression_function(HH_DEFINITION, "phi")(Q10=p.Q10, temperature=p.temperature)


def hh_rates(v: Any) -> tuple:
    """The opening and closing rates ``((alpha_m, beta_m), (alpha_h, beta_h), (alpha_n, beta_n))`` in 1/ms at
    6.3 degC, for ``v`` in mV (from the definition's expressions)."""
    values = [expression_function(HH_DEFINITION, name)(v=v) for name in _RATES]
    return (values[0], values[1]), (values[2], values[3]), (values[4], values[5])


def hh_steady_state(v: Tensor) -> tuple:
    """``(m_inf, h_inf, n_inf)`` at the potential ``v`` (mV): ``alpha / (alpha + beta)`` for each gate."""
    (am, bm), (ah, bh), (an, bn) = hh_rates(v)
    return am / (am + bm), ah / (ah + bh), an / (an + bn)


class _HHModel(DefinedModel):
    """Warns where an explicit method is unstable at the chosen dt."""

    #: largest dt (ms) at which the explicit methods stay stable at 6.3 degC (measured: Euler and RK4 diverge
    #: at 0.1 ms under a 3 uA/cm2 step, both are stable at 0.05 ms; the fast m gate makes the system stiff)
    explicit_dt_limit = 0.05

    def __init__(self, size: int, params=None, **kwargs):
        import torch

        super().__init__(size, params, **kwargs)
        phi = float(torch.as_tensor(self.params.Q10) ** ((torch.as_tensor(self.params.temperature).max() - 6.3) / 10))
        limit = self.explicit_dt_limit / max(phi, 1.0)
        if self.method in ("euler", "rk4") and self.dt > limit:
            warnings.warn(f"HodgkinHuxley: the explicit method {self.method!r} is unstable at dt = {self.dt:g} ms "
                          f"(stable up to about {limit:g} ms at this temperature); use method='exponential_euler' "
                          f"or a smaller dt", RuntimeWarning, stacklevel=2)


HodgkinHuxley = define_model(HH_DEFINITION, "HodgkinHuxley", params_name="HHParams", state_name="HHState",
                             aliases=("hodgkin_huxley",), check=_check, base=_HHModel,
                             doc="""Hodgkin–Huxley neuron (squid giant axon).
Equations, units, methods and spike detection: see :mod:`braincore.neurons.hodgkin_huxley`. The input is a current
density in uA/cm2.

    >>> import torch
    >>> hh = HodgkinHuxley(2, dt=0.01)
    >>> spikes, state = hh(torch.full((1, 2), 10.0))   # one 0.01 ms step under 10 uA/cm2
""")
HHParams, HHState = HodgkinHuxley.params_cls, HodgkinHuxley.state_cls
hh_step = pure_step(HodgkinHuxley)
