"""A fused adaptive-LIF (ALIF) layer for surrogate-gradient training: the whole ``[T, B, N]`` sequence in one
autograd node.

The adaptive LIF of Bellec et al. 2018 ("Long short-term memory and learning-to-learn in networks of spiking
neurons", the LSNN) in the discrete form of Yin, Corradi & Bohté 2021 ("Accurate and efficient time-domain
classification with adaptive spiking recurrent neural networks", Nature Machine Intelligence): a spike raises
the unit's threshold, which relaxes back to ``theta0`` with its own, slower, time constant. For ``t = 1..T``::

    a_t     = rho * a_{t-1} + (1 - rho) * s_{t-1}     adaptation variable (a low-pass of the unit's spikes)
    theta_t = theta0 + beta_adapt * a_t               adaptive threshold
    u_t     = beta * v_{t-1} + I_t + s_{t-1} V^T      membrane before the spike (V: optional recurrent weights)
    s_t     = H(u_t - theta_t)                        spike (Heaviside forward, surrogate sigma' backward)
    v_t     = u_t - theta_t * s_t                     reset by subtraction of the current threshold
    v_0 = a_0 = 0,  s_0 = 0

Everything is dimensionless (threshold units). ``I [T, B, N]`` is the input current (a layer computes it for
all steps with one matrix product before the loop); ``beta = exp(-dt / tau_m)`` and ``rho = exp(-dt / tau_adp)``
are per-step decays, scalars or one per unit, learnable as in Yin et al. (who train ``tau_m`` and ``tau_adp``);
``theta0`` (baseline threshold) and ``beta_adapt`` (adaptation strength; Bellec et al. and Yin et al. use 1.8)
are scalars or per unit and may be learnable too; ``V [N, N]``. With ``beta_adapt = 0`` this is exactly
:func:`braincore.training.fused_lif.lif_sequence`.

**Backward through time, by hand.** With ``g_x = dL/dx`` (``G_u_t``, ``G_a_t`` the *total* gradients of the
step-``t`` membrane and adaptation variable) and ``sigma'_t = sigma'(u_t - theta_t)``, going back from
``t = T`` (``G_u_{T+1} = G_a_{T+1} = 0``)::

    g_v_t     = beta * G_u_{t+1}
    g_s_t     = dL/ds_t (from the layers above) + G_u_{t+1} V + (1 - rho) * G_a_{t+1}     (s_t drives a_{t+1})
    through_t = (g_s_t - theta_t * g_v_t) * sigma'_t      (detached reset: g_s_t * sigma'_t)
    G_u_t     = g_v_t + through_t
    g_theta_t = -through_t - g_v_t * s_t                  (theta_t enters the spike and the reset)
    G_a_t     = rho * G_a_{t+1} + beta_adapt * g_theta_t

    dL/dI_t = G_u_t,  dL/dV = sum_t G_u_t^T s_{t-1},  dL/dbeta = sum_t G_u_t v_{t-1}
    dL/drho = sum_t G_a_t (a_{t-1} - s_{t-1}),  dL/dtheta0 = sum_t g_theta_t,  dL/dbeta_adapt = sum_t g_theta_t a_t

(sums over the batch too, and down to the parameter's shape). ``detach_reset`` removes only the spike's path
through the reset (``v_t = u_t - theta_t * stop_grad(s_t)``): the threshold still enters the reset, and the
spike still drives the adaptation.

Only ``u`` (``[T, B, N]``) is stored for backward. ``a`` and ``s`` are recomputed from it at the start of
backward by one elementwise sweep over ``t`` that repeats the forward's operations exactly, so it gives the
same bits. Autograd through the step function keeps about six tensors of that size per step. The gradients
equal those of plain autograd through :func:`alif_sequence_reference` to float64 rounding
(``tests/test_fused_alif.py``: several shapes, every surrogate, with and without recurrence and a detached
reset).
"""
from __future__ import annotations

from typing import Optional, Tuple, Union

import torch

from ..surrogate import Surrogate, get_surrogate, heaviside
from .fused_lif import _as_param, _reduce_to

Tensor = torch.Tensor

__all__ = ["alif_sequence", "alif_sequence_reference"]


def _check(current: Tensor, params: Tuple[Tuple[str, Tensor], ...], recurrent: Optional[Tensor]) -> None:
    if current.dim() != 3:
        raise ValueError(f"current must be [T, B, N], got {tuple(current.shape)}")
    n = current.shape[-1]
    for name, value in params:
        if value.dim() > 1 or (value.dim() == 1 and value.shape[0] not in (1, n)):
            raise ValueError(f"{name} must be a scalar or have N = {n} entries, got shape {tuple(value.shape)}")
    if recurrent is not None and tuple(recurrent.shape) != (n, n):
        raise ValueError(f"recurrent weights must be [N, N] = [{n}, {n}], got {tuple(recurrent.shape)}")


def _adapt(a: Tensor, s: Tensor, rho: Tensor, theta0: Tensor, beta_adapt: Tensor) -> Tuple[Tensor, Tensor]:
    """One step of the adaptation: ``(a_t, theta_t)`` from ``a_{t-1}`` and ``s_{t-1}``. Shared by forward and
    backward's recomputation so both produce the same bits."""
    a = rho * a + (1.0 - rho) * s
    return a, theta0 + beta_adapt * a


class _FusedALIF(torch.autograd.Function):
    @staticmethod
    def forward(ctx, current, beta, rho, theta0, beta_adapt, recurrent, surrogate,  # type: ignore[override]
                detach_reset):
        T = current.shape[0]
        u_all = torch.empty_like(current)
        spikes = torch.empty_like(current)
        v = torch.zeros_like(current[0])
        s = torch.zeros_like(current[0])
        a = torch.zeros_like(current[0])
        for t in range(T):
            a, theta = _adapt(a, s, rho, theta0, beta_adapt)
            u = beta * v + current[t]
            if recurrent is not None:
                u = u + s @ recurrent.t()
            s = heaviside(u - theta)
            v = u - theta * s
            u_all[t] = u
            spikes[t] = s
        empty = torch.empty(0)
        ctx.save_for_backward(u_all, beta, rho, theta0, beta_adapt, recurrent if recurrent is not None else empty)
        ctx.surrogate, ctx.detach_reset, ctx.has_recurrent = surrogate, detach_reset, recurrent is not None
        return spikes

    @staticmethod
    def backward(ctx, grad_spikes):  # type: ignore[override]
        u_all, beta, rho, theta0, beta_adapt, recurrent = ctx.saved_tensors
        recurrent = recurrent if ctx.has_recurrent else None
        T = u_all.shape[0]
        # recompute a_t and s_t (same operations as forward, hence the same values)
        a_all = torch.empty_like(u_all)
        s_all = torch.empty_like(u_all)
        a = torch.zeros_like(u_all[0])
        s = torch.zeros_like(u_all[0])
        for t in range(T):
            a, theta = _adapt(a, s, rho, theta0, beta_adapt)
            s = heaviside(u_all[t] - theta)
            a_all[t], s_all[t] = a, s

        need = ctx.needs_input_grad
        need_beta, need_rho, need_theta0, need_badapt = need[1], need[2], need[3], need[4]
        need_rec = ctx.has_recurrent and need[5]
        zeros_n = lambda flag: torch.zeros_like(u_all[0, 0]) if flag else None  # noqa: E731 - [N] accumulators
        acc_beta, acc_rho, acc_theta0, acc_badapt = (zeros_n(need_beta), zeros_n(need_rho), zeros_n(need_theta0),
                                                     zeros_n(need_badapt))
        g_rec = torch.zeros_like(recurrent) if need_rec else None
        g_current = torch.empty_like(u_all)
        g_u_next = torch.zeros_like(u_all[0])
        g_a_next = torch.zeros_like(u_all[0])
        for t in range(T - 1, -1, -1):
            theta = theta0 + beta_adapt * a_all[t]
            sig = ctx.surrogate.derivative(u_all[t] - theta)
            g_v = beta * g_u_next
            g_s = grad_spikes[t] + (1.0 - rho) * g_a_next
            if recurrent is not None:
                g_s = g_s + g_u_next @ recurrent
            through = (g_s * sig) if ctx.detach_reset else (g_s - theta * g_v) * sig
            g_u = g_v + through
            g_theta = -through - g_v * s_all[t]
            g_a = rho * g_a_next + beta_adapt * g_theta
            g_current[t] = g_u
            if t > 0:
                s_prev = s_all[t - 1]
                if need_beta:
                    v_prev = u_all[t - 1] - (theta0 + beta_adapt * a_all[t - 1]) * s_prev
                    acc_beta += (g_u * v_prev).sum(dim=0)
                if need_rho:
                    acc_rho += (g_a * (a_all[t - 1] - s_prev)).sum(dim=0)
                if need_rec:
                    g_rec += g_u.t() @ s_prev
            if need_theta0:
                acc_theta0 += g_theta.sum(dim=0)
            if need_badapt:
                acc_badapt += (g_theta * a_all[t]).sum(dim=0)
            g_u_next, g_a_next = g_u, g_a
        return (g_current,
                _reduce_to(acc_beta, beta) if need_beta else None,
                _reduce_to(acc_rho, rho) if need_rho else None,
                _reduce_to(acc_theta0, theta0) if need_theta0 else None,
                _reduce_to(acc_badapt, beta_adapt) if need_badapt else None,
                g_rec, None, None)


def _prepare(current, beta, rho, theta0, beta_adapt, recurrent):
    params = tuple((name, _as_param(value, current)) for name, value in
                   (("beta", beta), ("rho", rho), ("theta0", theta0), ("beta_adapt", beta_adapt)))
    _check(current, params, recurrent)
    return [p for _, p in params]


def alif_sequence(current: Tensor, beta: Union[float, Tensor], rho: Union[float, Tensor],
                  theta0: Union[float, Tensor] = 1.0, beta_adapt: Union[float, Tensor] = 1.8,
                  recurrent: Optional[Tensor] = None, surrogate: "str | Surrogate" = "multi_gaussian",
                  detach_reset: bool = False) -> Tensor:
    """Spikes ``[T, B, N]`` of adaptive LIF units driven by ``current [T, B, N]`` (module docstring), fused.

    ``beta``, ``rho``, ``theta0``, ``beta_adapt``: floats or tensors (scalar or ``[N]``, may require grad);
    ``recurrent``: ``[N, N]`` or ``None``; ``surrogate``: a name of :mod:`braincore.surrogate` or an instance
    (default: Yin et al.'s multi-Gaussian); ``detach_reset``: leave the spike's path through the reset out of
    the gradient.
    """
    beta_t, rho_t, theta0_t, badapt_t = _prepare(current, beta, rho, theta0, beta_adapt, recurrent)
    return _FusedALIF.apply(current, beta_t, rho_t, theta0_t, badapt_t, recurrent, get_surrogate(surrogate),
                            bool(detach_reset))


def alif_sequence_reference(current: Tensor, beta: Union[float, Tensor], rho: Union[float, Tensor],
                            theta0: Union[float, Tensor] = 1.0, beta_adapt: Union[float, Tensor] = 1.8,
                            recurrent: Optional[Tensor] = None, surrogate: "str | Surrogate" = "multi_gaussian",
                            detach_reset: bool = False) -> Tensor:
    """The same equations stepped with plain autograd (one graph node per operation): the reference the fused
    layer is tested against, and a readable statement of the model."""
    beta_t, rho_t, theta0_t, badapt_t = _prepare(current, beta, rho, theta0, beta_adapt, recurrent)
    spike_fn = get_surrogate(surrogate)
    v = torch.zeros_like(current[0])
    s = torch.zeros_like(current[0])
    a = torch.zeros_like(current[0])
    out = []
    for t in range(current.shape[0]):
        a = rho_t * a + (1.0 - rho_t) * s
        theta = theta0_t + badapt_t * a
        u = beta_t * v + current[t]
        if recurrent is not None:
            u = u + s @ recurrent.t()
        s = spike_fn(u - theta)
        v = u - theta * (s.detach() if detach_reset else s)
        out.append(s)
    return torch.stack(out)
