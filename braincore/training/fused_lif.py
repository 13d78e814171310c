"""A fused LIF layer for surrogate-gradient training: the whole ``[T, B, N]`` sequence in one autograd node.

Discrete-time leaky integrate-and-fire units with reset by subtraction (the form snnTorch's ``Leaky``,
SpikingJelly's ``LIFNode`` with ``v_reset=None`` and Norse's discrete LIF share), for ``t = 1..T``::

    u_t = beta * v_{t-1} + I_t + s_{t-1} V^T          membrane before the spike (V: optional recurrent weights)
    s_t = H(u_t - theta)                              spike (Heaviside forward, surrogate sigma' backward)
    v_t = u_t - theta * s_t                           reset by subtraction
    v_0 = 0,  s_0 = 0

``I [T, B, N]`` is the input current (dimensionless, threshold units; a layer computes it for all steps with one
matrix product before the loop), ``beta`` the per-step decay (``exp(-dt / tau_m)``; a scalar or one per unit,
learnable as in PLIF, Fang et al. 2021), ``theta`` the threshold (scalar or per unit, learnable), ``V [N, N]``.

**Backward through time, by hand.** With ``g_x = dL/dx`` and ``sigma'_t = sigma'(u_t - theta)``, going back
from ``t = T`` (``g_u_{T+1} = 0``)::

    g_v_t = beta * g_u_{t+1}
    g_s_t = dL/ds_t (from the layers above) + g_u_{t+1} V
    g_u_t = g_v_t + (g_s_t - theta * g_v_t) * sigma'_t      (reset in the graph; detached: g_v_t + g_s_t sigma'_t)
    dL/dI_t = g_u_t,  dL/dV = sum_t g_u_t^T s_{t-1},  dL/dbeta = sum_t g_u_t v_{t-1}
    dL/dtheta = -sum_t [(g_s_t - theta g_v_t) sigma'_t + g_v_t s_t]   (detached reset: -sum_t g_s_t sigma'_t
                                                                        - sum_t g_v_t s_t)

Only ``u`` (``[T, B, N]``) is stored for backward: spikes and ``v`` are recomputed from it. Autograd through
the step function keeps about four tensors of that size per step, and one graph node per operation. The
gradients equal those of plain autograd through :func:`lif_sequence_reference` to float tolerance
(``tests/test_fused_lif.py``, several shapes and every surrogate).
"""
from __future__ import annotations

from typing import Optional, Union

import torch

from ..surrogate import Surrogate, get_surrogate, heaviside

Tensor = torch.Tensor

__all__ = ["lif_sequence", "lif_sequence_reference"]


def _check(current: Tensor, beta: Tensor, theta: Tensor, recurrent: Optional[Tensor]) -> None:
    if current.dim() != 3:
        raise ValueError(f"current must be [T, B, N], got {tuple(current.shape)}")
    n = current.shape[-1]
    for name, value in (("beta", beta), ("theta", theta)):
        if value.dim() > 1 or (value.dim() == 1 and value.shape[0] not in (1, n)):
            raise ValueError(f"{name} must be a scalar or have N = {n} entries, got shape {tuple(value.shape)}")
    if recurrent is not None and tuple(recurrent.shape) != (n, n):
        raise ValueError(f"recurrent weights must be [N, N] = [{n}, {n}], got {tuple(recurrent.shape)}")


def _reduce_to(grad: Tensor, like: Tensor) -> Tensor:
    """Sum a per-unit ``[N]`` gradient down to the shape of a scalar or per-unit parameter."""
    if like.dim() == 0:
        return grad.sum().reshape(())
    if like.shape[0] == 1:
        return grad.sum().reshape(1)
    return grad


class _FusedLIF(torch.autograd.Function):
    @staticmethod
    def forward(ctx, current, beta, theta, recurrent, surrogate, detach_reset):  # type: ignore[override]
        T = current.shape[0]
        u_all = torch.empty_like(current)
        v = torch.zeros_like(current[0])
        s = torch.zeros_like(current[0])
        spikes = torch.empty_like(current)
        for t in range(T):
            u = beta * v + current[t]
            if recurrent is not None:
                u = u + s @ recurrent.t()
            s = heaviside(u - theta)
            v = u - theta * s
            u_all[t] = u
            spikes[t] = s
        ctx.save_for_backward(u_all, beta, theta, recurrent if recurrent is not None else torch.empty(0))
        ctx.surrogate, ctx.detach_reset, ctx.has_recurrent = surrogate, detach_reset, recurrent is not None
        return spikes

    @staticmethod
    def backward(ctx, grad_spikes):  # type: ignore[override]
        u_all, beta, theta, recurrent = ctx.saved_tensors
        recurrent = recurrent if ctx.has_recurrent else None
        T = u_all.shape[0]
        g_current = torch.empty_like(u_all)
        g_u_next = torch.zeros_like(u_all[0])
        need_beta, need_theta = ctx.needs_input_grad[1], ctx.needs_input_grad[2]
        need_rec = ctx.has_recurrent and ctx.needs_input_grad[3]
        g_beta_acc = torch.zeros_like(u_all[0, 0]) if need_beta else None  # [N], summed over t and B
        g_theta_acc = torch.zeros_like(u_all[0, 0]) if need_theta else None
        g_rec = torch.zeros_like(recurrent) if need_rec else None
        s_all = heaviside(u_all - theta)
        for t in range(T - 1, -1, -1):
            sig = ctx.surrogate.derivative(u_all[t] - theta)
            g_v = beta * g_u_next
            g_s = grad_spikes[t]
            if recurrent is not None:
                g_s = g_s + g_u_next @ recurrent
            if ctx.detach_reset:
                through = g_s * sig
                g_u = g_v + through
            else:
                through = (g_s - theta * g_v) * sig
                g_u = g_v + through
            g_current[t] = g_u
            if t > 0:
                s_prev = s_all[t - 1]
                if need_beta:
                    g_beta_acc += (g_u * (u_all[t - 1] - theta * s_prev)).sum(dim=0)
                if need_rec:
                    g_rec += g_u.t() @ s_prev
            if need_theta:
                g_theta_acc -= (through + g_v * s_all[t]).sum(dim=0)
            g_u_next = g_u
        g_beta = _reduce_to(g_beta_acc, beta) if need_beta else None
        g_theta = _reduce_to(g_theta_acc, theta) if need_theta else None
        return g_current, g_beta, g_theta, g_rec, None, None


def _as_param(value: Union[float, Tensor], like: Tensor) -> Tensor:
    if isinstance(value, Tensor):
        return value.to(dtype=like.dtype, device=like.device) if value.dtype != like.dtype else value
    return torch.tensor(float(value), dtype=like.dtype, device=like.device)


def lif_sequence(current: Tensor, beta: Union[float, Tensor], theta: Union[float, Tensor] = 1.0,
                 recurrent: Optional[Tensor] = None, surrogate: "str | Surrogate" = "fast_sigmoid",
                 detach_reset: bool = False) -> Tensor:
    """Spikes ``[T, B, N]`` of LIF units driven by ``current [T, B, N]`` (module docstring), fused.

    ``beta`` and ``theta``: floats or tensors (scalar or ``[N]``, may require grad); ``recurrent``: ``[N, N]``
    or ``None``; ``surrogate``: a name of :mod:`braincore.surrogate` or an instance; ``detach_reset``: leave
    the reset out of the gradient (SpikingJelly's ``detach_reset=True``; snnTorch detaches it by default).
    """
    beta_t, theta_t = _as_param(beta, current), _as_param(theta, current)
    _check(current, beta_t, theta_t, recurrent)
    return _FusedLIF.apply(current, beta_t, theta_t, recurrent, get_surrogate(surrogate), bool(detach_reset))


def lif_sequence_reference(current: Tensor, beta: Union[float, Tensor], theta: Union[float, Tensor] = 1.0,
                           recurrent: Optional[Tensor] = None, surrogate: "str | Surrogate" = "fast_sigmoid",
                           detach_reset: bool = False) -> Tensor:
    """The same equations stepped with plain autograd (one graph node per operation): the reference the fused
    layer is tested against, and a readable statement of the model."""
    beta_t, theta_t = _as_param(beta, current), _as_param(theta, current)
    _check(current, beta_t, theta_t, recurrent)
    spike_fn = get_surrogate(surrogate)
    v = torch.zeros_like(current[0])
    s = torch.zeros_like(current[0])
    out = []
    for t in range(current.shape[0]):
        u = beta_t * v + current[t]
        if recurrent is not None:
            u = u + s @ recurrent.t()
        s = spike_fn(u - theta_t)
        v = u - theta_t * (s.detach() if detach_reset else s)
        out.append(s)
    return torch.stack(out)
