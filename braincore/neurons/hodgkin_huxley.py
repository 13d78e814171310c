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
"""
from __future__ import annotations

import warnings

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Optional

import torch

from ..params import NeuronParams, _any_le, _any_lt, _show, param
from .base import NeuronModel, filled

Tensor = torch.Tensor

#: temperature (degC) at which the rate functions hold unscaled (phi = 1)
REFERENCE_TEMPERATURE = 6.3

#: below this |y| the function y / (1 - exp(-y)) is evaluated by its series 1 + y/2
_SERIES_BOUND = 1e-6


class HHState(NamedTuple):
    """``v`` membrane potential (mV); ``m``, ``h``, ``n`` gating variables; ``above`` 1.0 where ``v`` was
    above ``v_spike`` after the last step (spike detection). All ``[B, N]`` in one dtype."""

    v: Tensor
    m: Tensor
    h: Tensor
    n: Tensor
    above: Tensor


@dataclass(frozen=True)
class HHParams(NeuronParams):
    """Parameters of :class:`HodgkinHuxley` (defaults: the squid giant axon at 6.3 degC)."""

    C_m: Any = param(1.0, "capacitance_density", "membrane capacitance")
    g_Na: Any = param(120.0, "conductance_density", "maximal sodium conductance")
    g_K: Any = param(36.0, "conductance_density", "maximal potassium conductance")
    g_L: Any = param(0.3, "conductance_density", "leak conductance")
    E_Na: Any = param(50.0, "voltage", "sodium reversal potential")
    E_K: Any = param(-77.0, "voltage", "potassium reversal potential")
    E_L: Any = param(-54.387, "voltage", "leak reversal potential")
    temperature: Any = param(REFERENCE_TEMPERATURE, "temperature", "temperature; rates scale by Q10 per 10 degC")
    Q10: Any = param(3.0, "dimensionless", "temperature coefficient of the gating rates")
    v_rest: Any = param(-65.0, "voltage", "initial potential (the gates start at their steady state there)")
    v_spike: Any = param(-20.0, "voltage", "spike detection level: a spike is an upward crossing")

    def check(self) -> list[str]:
        problems = super().check()
        for name in ("g_Na", "g_K", "g_L"):
            value = getattr(self, name)
            if _any_lt(value, 0.0):
                problems.append(f"{name} must be >= 0 mS/cm2, got {_show(value)}")
        if _any_le(self.Q10, 0.0):
            problems.append(f"Q10 must be > 0, got {_show(self.Q10)}")
        return problems


def temperature_factor(p: HHParams) -> Any:
    """``phi = Q10 ** ((temperature - 6.3) / 10)``, the factor on every gating rate (a float or a tensor)."""
    return p.Q10 ** ((p.temperature - REFERENCE_TEMPERATURE) / 10.0)


def _linoid(u: Tensor, k: float) -> Tensor:
    """``u / (1 - exp(-u / k))``, finite (value ``k``) and smooth at ``u = 0``."""
    y = u / k
    small = y.abs() < _SERIES_BOUND
    y_safe = torch.where(small, torch.ones_like(y), y)
    return k * torch.where(small, 1.0 + 0.5 * y, y_safe / -torch.expm1(-y_safe))


def hh_rates(v: Tensor) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
    """The opening and closing rates ``((alpha_m, beta_m), (alpha_h, beta_h), (alpha_n, beta_n))`` in 1/ms at
    6.3 degC, for ``v`` in mV."""
    alpha_m = 0.1 * _linoid(v + 40.0, 10.0)
    beta_m = 4.0 * torch.exp(-(v + 65.0) / 18.0)
    alpha_h = 0.07 * torch.exp(-(v + 65.0) / 20.0)
    beta_h = 1.0 / (1.0 + torch.exp(-(v + 35.0) / 10.0))
    alpha_n = 0.01 * _linoid(v + 55.0, 10.0)
    beta_n = 0.125 * torch.exp(-(v + 65.0) / 80.0)
    return (alpha_m, beta_m), (alpha_h, beta_h), (alpha_n, beta_n)


def hh_steady_state(v: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(m_inf, h_inf, n_inf)`` at the potential ``v`` (mV): ``alpha / (alpha + beta)`` for each gate."""
    (am, bm), (ah, bh), (an, bn) = hh_rates(v)
    return am / (am + bm), ah / (ah + bh), an / (an + bn)


Variables = tuple[Tensor, Tensor, Tensor, Tensor]


def _relaxation(y: Variables, current: Tensor, p: HHParams, phi: Any) -> list[tuple[Tensor, Tensor]]:
    """For each of ``(v, m, h, n)`` the pair ``(k_x, x_inf)`` with ``dx/dt = k_x (x_inf - x)``, evaluated at
    ``y``. ``k_x`` and ``x_inf`` do not depend on ``x`` itself (the system is conditionally linear)."""
    v, m, h, n = y
    g_na = p.g_Na * m ** 3 * h
    g_k = p.g_K * n ** 4
    g_tot = g_na + g_k + p.g_L
    v_inf = (current + g_na * p.E_Na + g_k * p.E_K + p.g_L * p.E_L) / g_tot
    pairs = [(g_tot / p.C_m, v_inf)]
    for alpha, beta in hh_rates(v):
        rate = alpha + beta
        pairs.append((phi * rate, alpha / rate))
    return pairs


def _derivatives(y: Variables, current: Tensor, p: HHParams, phi: Any) -> Variables:
    """``(dv/dt, dm/dt, dh/dt, dn/dt)`` at ``y`` (mV/ms and 1/ms)."""
    return tuple(k * (x_inf - x) for x, (k, x_inf) in zip(y, _relaxation(y, current, p, phi)))  # type: ignore


def _exponential_euler(y: Variables, current: Tensor, p: HHParams, phi: Any, dt: float) -> Variables:
    return tuple(x_inf + (x - x_inf) * torch.exp(-k * dt)  # type: ignore[return-value]
                 for x, (k, x_inf) in zip(y, _relaxation(y, current, p, phi)))


def _euler(y: Variables, current: Tensor, p: HHParams, phi: Any, dt: float) -> Variables:
    return tuple(x + dt * dx for x, dx in zip(y, _derivatives(y, current, p, phi)))  # type: ignore[return-value]


def _rk4(y: Variables, current: Tensor, p: HHParams, phi: Any, dt: float) -> Variables:
    def shifted(d: Variables, scale: float) -> Variables:
        return tuple(x + scale * dx for x, dx in zip(y, d))  # type: ignore[return-value]

    k1 = _derivatives(y, current, p, phi)
    k2 = _derivatives(shifted(k1, dt / 2), current, p, phi)
    k3 = _derivatives(shifted(k2, dt / 2), current, p, phi)
    k4 = _derivatives(shifted(k3, dt), current, p, phi)
    return tuple(x + dt / 6 * (a + 2 * b + 2 * c + d)  # type: ignore[return-value]
                 for x, a, b, c, d in zip(y, k1, k2, k3, k4))


_INTEGRATORS: dict[str, Callable[..., Variables]] = {
    "exponential_euler": _exponential_euler,
    "rk4": _rk4,
    "euler": _euler,
}


def hh_step(state: HHState, current: Tensor, p: HHParams, dt: float, method: str = "exponential_euler",
            spike_fn: Optional[Callable[[Tensor], Tensor]] = None) -> tuple[Tensor, HHState]:
    """Pure Hodgkin–Huxley step from ``t_k`` to ``t_k + dt`` (ms); ``current`` ``[B, N]`` in uA/cm2.

    Returns ``(spikes, state)``: ``spikes`` is 1.0 where ``v`` crossed ``v_spike`` upwards in this step. With a
    surrogate ``spike_fn`` the spikes are ``1 - spike_fn(v_spike - v)`` (forward: exactly ``v > v_spike``;
    backward: the surrogate derivative, all of which are symmetric).
    """
    if method not in _INTEGRATORS:
        raise ValueError(f"HodgkinHuxley: unknown method {method!r}; choose one of {', '.join(_INTEGRATORS)}")
    y = (state.v, state.m, state.h, state.n)
    v, m, h, n = _INTEGRATORS[method](y, current, p, temperature_factor(p), dt)
    distance = v - p.v_spike
    now_above = (distance > 0).to(v.dtype)
    crossing = now_above if spike_fn is None else 1.0 - spike_fn(-distance)
    spikes = crossing * (1.0 - state.above)
    return spikes, HHState(v, m, h, n, now_above)


class HodgkinHuxley(NeuronModel):
    """Hodgkin–Huxley neuron (squid giant axon). Equations, units, methods and spike detection: see
    :mod:`.hodgkin_huxley`. The input is a current density in uA/cm2.

    >>> import torch
    >>> hh = HodgkinHuxley(2, dt=0.01)
    >>> spikes, state = hh(torch.full((1, 2), 10.0))   # one 0.01 ms step under 10 uA/cm2
    """

    name = "hh"
    params_cls = HHParams
    state_cls = HHState
    methods = tuple(_INTEGRATORS)
    input_unit = "uA/cm2"

    #: largest dt (ms) at which the explicit methods stay stable at 6.3 degC (measured: Euler and RK4 diverge
    #: at 0.1 ms under a 3 uA/cm2 step, both are stable at 0.05 ms; the fast m gate makes the system stiff)
    explicit_dt_limit = 0.05

    def __init__(self, size: int, params=None, **kwargs):
        super().__init__(size, params, **kwargs)
        phi = float(torch.as_tensor(self.params.Q10) ** ((torch.as_tensor(self.params.temperature).max() - 6.3) / 10))
        limit = self.explicit_dt_limit / max(phi, 1.0)
        if self.method in ("euler", "rk4") and self.dt > limit:
            warnings.warn(f"HodgkinHuxley: the explicit method {self.method!r} is unstable at dt = {self.dt:g} ms "
                          f"(stable up to about {limit:g} ms at this temperature); use method='exponential_euler' "
                          f"or a smaller dt", RuntimeWarning, stacklevel=2)

    def initial_state(self, batch_size: int = 1, *, device=None, dtype=torch.float32) -> HHState:
        v = filled(batch_size, self.size, self.params.v_rest, device=device, dtype=dtype)
        m, h, n = hh_steady_state(v)
        return HHState(v, m, h, n, torch.zeros_like(v))

    def step(self, state: HHState, current: Tensor) -> tuple[Tensor, HHState]:
        return hh_step(state, current, self.params, self.dt, self.method, self.spike_fn)
