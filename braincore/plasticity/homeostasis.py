"""Homeostatic plasticity: weight normalisation, multiplicative synaptic scaling, adaptive thresholds.

Hebbian rules (:mod:`.stdp`) are unstable on their own: potentiation raises the postsynaptic rate, which causes
more potentiation. The rules here keep a neuron's total input or its rate near a set point.

**Weight normalisation** (``normalize``; Diehl & Cook 2015, "Unsupervised learning of digit recognition using
spike-timing-dependent plasticity", Front Comput Neurosci 9:99). Every ``every`` steps (or when called
directly, ``rule.apply(view)``) the incoming weights of each postsynaptic neuron ``j`` are scaled so that they
sum to ``total``::

    w_ij <- w_ij * total / sum_i w_ij          for every j with  sum_i w_ij * total > 0

Diehl & Cook use ``total = 78`` for 784 inputs (0.1 per input on average), applied before each example
(350 ms of input and 150 ms of rest: ``every = 500 ms / dt``). ``by: pre`` normalises the outgoing weights of
each presynaptic neuron instead (``sum_j w_ij = total``). A neuron whose sum is zero (no synapses, or all
weights zero) is left unchanged, and so is one whose sum has the opposite sign to ``total`` (the rule is meant
for weights of one sign; it never divides by zero and never flips a sign). Only existing synapses are scaled:
absent synapses of a dense matrix stay zero. Units: ``total`` is in the weight's own unit (mV, nS...).

**Multiplicative synaptic scaling** (``synaptic_scaling``; Turrigiano, Leslie, Desai, Rutherford & Nelson
1998, Nature 391:892; in the form of van Rossum, Bi & Turrigiano 2000, J Neurosci 20:8812,
``dw/dt = beta w (a_goal - a)``). Each postsynaptic neuron ``j`` keeps a rate estimate ``r_j`` (Hz), the
low-pass filter ``tau_rate dr/dt = -r + rho(t)`` of its spike train, discretised exactly with the spike of
step ``k`` (``s_k`` = 0 or 1) spread over the step as a rate ``s_k * 1000 / dt`` (Hz, ``dt`` in ms)::

    r <- r * exp(-dt / tau_rate) + s_k * (1 - exp(-dt / tau_rate)) * 1000 / dt

(an exponential moving average of the per-step rate; for a regular train of period ``T`` its average over a
period in the steady state is exactly ``1000 / T`` Hz). ``r`` starts at ``r_target`` (no transient scaling
before the estimate has settled). Every ``every`` steps, after the trace update, all incoming weights of ``j``
are multiplied by one Euler step of ``dw/dt = eta w (r_target - r_j) / r_target``::

    w_ij <- clip(w_ij * max(0, 1 + eta * Dt * (r_target - rbar_j) / r_target), w_min, w_max)

with ``Dt = every * dt / 1000`` (s), ``eta`` in 1/s (a frequency: ``eta: 0.1 Hz`` moves a neuron firing at
half its target up by 5 % per second) and ``rbar_j`` the mean of ``r_j`` over the ``B`` trials of a batch
(weights are shared by the trials). A neuron above its target has all its incoming weights shrink, one below
grows them, one at its target keeps them; the ratios between a neuron's weights are preserved (until a bound
clips). The rule is meant for excitatory (positive) weights; keep ``tau_rate >> every * dt``.

**Adaptive thresholds** (Diehl & Cook's ``theta``: the threshold is ``v_thresh + theta``, ``theta`` jumps by
``theta_plus = 0.05 mV`` at each spike and decays with ``tau_theta = 1e7 ms``; it is frozen at test time).
This is not a synaptic rule: braincore's ``alif`` neuron (:mod:`braincore.neurons.alif`) already has this
form, ``b = b0 + beta a`` with ``a`` decaying with ``tau_a`` and jumping by ``delta_a`` at each spike. With::

    b0 = v_thresh,  beta = theta_plus (mV),  delta_a = 1,  tau_a = tau_theta

``a`` is the exponentially weighted spike count and ``beta a = theta = sum_k theta_plus exp(-(t - t_k) /
tau_theta)`` over the neuron's spikes ``t_k`` (the step convention of ``alif``: ``a`` jumps after the
threshold test of the spike's step, so a spike raises the threshold from the next step on).
:func:`diehl_cook_threshold_params` returns that mapping; ``frozen=True`` gives ``delta_a = 0`` and
``tau_a = inf`` (theta held at the value in the state, as in D&C's test phase: load the trained ``a``).
Diehl & Cook's excitatory neurons (conductance-based in the paper): ``v_rest = v_reset = -65 mV``,
``v_thresh = -52 mV`` (their code adds a -20 mV offset to the threshold and starts theta at 20 mV),
``tau_m = 100 ms``, ``t_ref = 5 ms``.

The step counter of ``every`` is part of the rule's state, so checkpoints resume on the same phase.
"""
from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

from ..errors import ConfigError
from ..params import NeuronParams, param
from ..units import parse_quantity
from .base import Plasticity, SynapseView

if TYPE_CHECKING:
    from torch import Tensor

def _every_problems(every: Any) -> list[str]:
    if not (isinstance(every, (int, float)) and float(every).is_integer() and every >= 1):
        return [f"every must be a whole number of steps >= 1, got {every!r}"]
    return []


@dataclass(frozen=True)
class NormalizeParams(NeuronParams):
    """Parameters of :class:`Normalize` (default: Diehl & Cook 2015, 78 for 784 inputs)."""

    total: Any = param(78.0, "dimensionless", "target sum of each neuron's weights (weight units)")
    every: Any = param(1, "dimensionless", "normalise every this many steps (a whole number >= 1)")
    by: str = param("post", "choice", "'post' (incoming weights of each post neuron) or 'pre' (outgoing)",
                    choices=("post", "pre"))

    def check(self) -> list[str]:
        problems = super().check() + _every_problems(self.every)
        if isinstance(self.total, (int, float)) and (self.total == 0 or not math.isfinite(self.total)):
            problems.append(f"total must be a nonzero finite number, got {self.total!r}")
        return problems


@dataclass(frozen=True)
class ScalingParams(NeuronParams):
    """Parameters of :class:`SynapticScaling`."""

    r_target: Any = param(5.0, "frequency", "target rate of each postsynaptic neuron")
    tau_rate: Any = param(1000.0, "time", "time constant of the rate estimate")
    eta: Any = param(0.1, "frequency", "scaling rate, 1/s: relative weight change per second per unit "
                                       "relative rate error")
    every: Any = param(1, "dimensionless", "scale every this many steps (a whole number >= 1)")
    w_min: Any = param(0.0, "dimensionless", "lower weight bound (weight units)")
    w_max: Any = param(math.inf, "dimensionless", "upper weight bound (weight units)")

    def check(self) -> list[str]:
        problems = super().check() + _every_problems(self.every)
        if isinstance(self.r_target, (int, float)) and not self.r_target > 0:
            problems.append(f"r_target must be > 0 Hz, got {self.r_target!r}")
        if isinstance(self.eta, (int, float)) and self.eta < 0:
            problems.append(f"eta must be >= 0 (1/s), got {self.eta!r}")
        bounds = (self.w_min, self.w_max)
        if all(isinstance(v, (int, float)) for v in bounds) and self.w_min > self.w_max:
            problems.append(f"w_min must be <= w_max, got {self.w_min!r} > {self.w_max!r}")
        return problems


def _counter(device) -> Tensor:
    import torch

    return torch.zeros((), dtype=torch.long, device=device)


def _due(state: dict, every: int) -> bool:
    """Advance the step counter; True on every ``every``-th call (always for ``every = 1``)."""
    state["n"] = state["n"] + 1
    return every == 1 or int(state["n"]) % every == 0


def _scale_rows(view: SynapseView, factor: Tensor, by: str) -> None:
    """Multiply the weights of post neuron ``j`` (``by="post"``) or pre neuron ``i`` by ``factor[j]``."""
    w = view.weight
    if view.dense:
        w.mul_(factor.unsqueeze(0) if by == "post" else factor.unsqueeze(1))
    else:
        w.mul_(factor[view.proj.post_idx if by == "post" else view.pre_of])


class Normalize(Plasticity):
    """Weight normalisation (Diehl & Cook 2015): see :mod:`.homeostasis`. Call :meth:`apply` directly or let
    the simulator call :meth:`step` (normalises every ``every`` steps)."""

    name = "normalize"
    params_cls = NormalizeParams

    def __init__(self, params: Optional[dict] = None, **overrides: Any):
        super().__init__(params, **overrides)
        self.every = int(self.params.every)

    def init_state(self, view: SynapseView, batch: int, device, dtype) -> dict:
        return {"n": _counter(device)}

    def sums(self, view: SynapseView) -> Tensor:
        """The current sum per post neuron ``[N_post]`` (``by: post``) or per pre neuron ``[N_pre]``."""
        import torch

        w, by = view.weight, self.params.by
        if view.dense:
            return w.sum(dim=0 if by == "post" else 1)
        n = view.n_post if by == "post" else view.n_pre
        index = view.proj.post_idx if by == "post" else view.pre_of
        return torch.zeros(n, dtype=w.dtype, device=w.device).index_add_(0, index, w)

    def apply(self, view: SynapseView) -> None:
        """Normalise now: every neuron's sum becomes ``total`` (zero or opposite-sign sums left as they are)."""
        import torch

        total = self.params.total
        sums = self.sums(view)
        ok = sums * total > 0
        factor = torch.where(ok, total / torch.where(ok, sums, torch.ones_like(sums)), torch.ones_like(sums))
        _scale_rows(view, factor, self.params.by)

    def step(self, view: SynapseView, state: dict, pre: Tensor, post: Tensor, dt: float) -> None:
        if _due(state, self.every):
            self.apply(view)


class SynapticScaling(Plasticity):
    """Multiplicative synaptic scaling towards a target rate (Turrigiano et al. 1998; van Rossum et al. 2000):
    see :mod:`.homeostasis` for the rate estimate, the update and its discretisation."""

    name = "synaptic_scaling"
    params_cls = ScalingParams

    def __init__(self, params: Optional[dict] = None, **overrides: Any):
        super().__init__(params, **overrides)
        self.every = int(self.params.every)

    def init_state(self, view: SynapseView, batch: int, device, dtype) -> dict:
        import torch

        r = torch.full((batch, view.n_post), float(self.params.r_target), device=device, dtype=dtype)
        return {"r": r, "n": _counter(device)}

    def step(self, view: SynapseView, state: dict, pre: Tensor, post: Tensor, dt: float) -> None:
        p = self.params
        decay = math.exp(-dt / p.tau_rate)
        state["r"] = state["r"] * decay + post * ((1.0 - decay) * 1000.0 / dt)
        if not _due(state, self.every):
            return
        error = (p.r_target - state["r"].mean(dim=0)) / p.r_target
        factor = (1.0 + p.eta * (self.every * dt / 1000.0) * error).clamp_(min=0.0)
        _scale_rows(view, factor, "post")
        view.clip_(p.w_min, p.w_max)  # absent synapses (zeros) stay absent even when w_min > 0


_ALIF_FROM_LIF = {"v_th": "b0"}
_LIF_KEYS = ("tau_m", "R_m", "v_rest", "v_reset", "v_th", "t_ref", "reset")


def diehl_cook_threshold_params(theta_plus_mV: Any = 0.05, tau_theta_ms: Any = 1e7, *, frozen: bool = False,
                                **lif: Any) -> dict[str, Any]:
    """``alif`` parameters reproducing Diehl & Cook's adaptive threshold ``v_th + theta`` (see
    :mod:`.homeostasis`): ``{"beta": theta_plus, "delta_a": 1, "tau_a": tau_theta}`` plus the LIF parameters
    given (``tau_m``, ``R_m``, ``v_rest``, ``v_reset``, ``v_th`` -> ``b0``, ``t_ref``, ``reset``; values as
    written, units allowed). ``theta_plus_mV`` and ``tau_theta_ms`` are numbers in mV and ms or quantities
    (``"0.05 mV"``). ``frozen=True``: theta no longer changes (``delta_a = 0``, ``tau_a = inf``), D&C's test
    phase. ``theta`` itself is ``beta * a`` with ``a`` the neuron's adaptation state.

    >>> diehl_cook_threshold_params(v_th="-52 mV", tau_m="100 ms")
    {'b0': '-52 mV', 'tau_m': '100 ms', 'beta': 0.05, 'tau_a': 10000000.0, 'delta_a': 1.0}
    """
    out: dict[str, Any] = {}
    unknown = [k for k in lif if k not in _LIF_KEYS]
    if unknown:
        hints = []
        for key in unknown:
            near = difflib.get_close_matches(key, _LIF_KEYS, n=1)
            hints.append(f"{key!r}" + (f" (did you mean {near[0]!r}?)" if near else ""))
        raise ConfigError(f"diehl_cook_threshold_params: unknown LIF parameter(s) {', '.join(hints)}; "
                          f"expected some of: {', '.join(_LIF_KEYS)}")
    for key, value in lif.items():
        out[_ALIF_FROM_LIF.get(key, key)] = value
    theta_plus = parse_quantity(theta_plus_mV, "voltage")
    tau_theta = parse_quantity(tau_theta_ms, "time")
    if not tau_theta > 0:
        raise ConfigError(f"diehl_cook_threshold_params: tau_theta must be > 0 ms, got {tau_theta:g}")
    out["beta"] = theta_plus
    out["tau_a"] = math.inf if frozen else tau_theta
    out["delta_a"] = 0.0 if frozen else 1.0
    return out


__all__ = ["Normalize", "NormalizeParams", "SynapticScaling", "ScalingParams", "diehl_cook_threshold_params"]
