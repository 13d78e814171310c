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

**Cost.** ``u`` and the spikes (``[T, B, N]`` each) are stored for backward; ``v`` is recomputed from them. The
forward substitutes ``v_{t-1} = u_{t-1} - theta s_{t-1}``, so a step is ``u_t = I_t + beta u_{t-1} +
s_{t-1} (V^T - diag(beta theta))``: the reset joins the recurrent product, three operations per step. The
backward likewise folds ``-theta beta g_u_{t+1}`` into ``g_u_{t+1} (V - diag(theta beta))`` (three operations
per step, ``sigma'`` computed for all steps at once) and takes the parameter gradients after the loop in one
product each (``dL/dV`` from the spike events when spikes are sparse). The recurrent input of a step whose
spikes are very sparse is propagated as events. Small per-step work runs on one intra-op thread
(:data:`SERIAL_STEP_WORK`). :func:`event_linear` computes a layer's input current from the nonzero entries of a
sparse input (binary input spikes) and its weight gradient likewise. Every path gives the reference's
spikes and gradients to float rounding; the gradients equal those of plain autograd through
:func:`lif_sequence_reference` (``tests/test_fused_lif.py``, several shapes, every surrogate, each fast path
forced in turn).
"""
from __future__ import annotations

from typing import Optional, Union

import torch

from ..surrogate import FastSigmoid, Surrogate, get_surrogate

Tensor = torch.Tensor

__all__ = ["lif_sequence", "lif_sequence_reference", "event_linear", "is_sparse_input"]


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


# ------------------------------------------------------------------------------------------ performance helpers
# Events instead of dense products where activity is low (DESIGN.md, "Spikes are sparse"). The choice between
# the two only changes the order of floating-point additions, never the result beyond rounding.
EVENT_DENSITY = 0.05        # whole sequences: at or below this fraction of nonzero entries, use events
STEP_EVENT_DENSITY = 0.01   # one step's [B, N] spikes (the product is cheap, so the crossover is lower: ~0.02)
# The time loops are chains of small dependent operations (a [B, N] x [N, N] product and a few [B, N] updates per
# step). Waking a second intra-op thread for each costs about as much as it saves when idle and several times
# more on a busy machine, so loops whose per-step product is below this many multiply-adds run on one thread
# (OpenMP builds only; the caller's setting is restored on exit). None: never.
SERIAL_STEP_WORK: Optional[int] = 1 << 23


def _openmp_backend() -> bool:
    global _OPENMP
    if _OPENMP is None:
        try:
            _OPENMP = "parallel backend: OpenMP" in torch.__config__.parallel_info()
        except Exception:  # pragma: no cover - unusual builds
            _OPENMP = False
    return _OPENMP


_OPENMP: Optional[bool] = None


class _SerialLoop:
    """Context: one intra-op thread for a time loop whose per-step work is ``work`` multiply-adds, if that is
    below :data:`SERIAL_STEP_WORK` (see there); restores the caller's thread count."""

    def __init__(self, work: int):
        self.saved = 0
        if SERIAL_STEP_WORK is not None and work < SERIAL_STEP_WORK and _openmp_backend():
            n = torch.get_num_threads()
            if n > 1:
                self.saved = n

    def __enter__(self):
        if self.saved:
            torch.set_num_threads(1)
        return self

    def __exit__(self, *exc):
        if self.saved:
            torch.set_num_threads(self.saved)
        return False


def _flat_nonzero(x: Tensor) -> Tensor:
    """1-D int64 positions of the nonzero entries of ``x`` (flattened, row-major order). Floats are scanned as
    their bit patterns (one pass, no boolean copy): a ``-0.0`` then counts as an entry, which is harmless
    because callers use the entry's value (0) or take the input to be binary spikes (never ``-0.0``)."""
    flat = x.reshape(-1)
    if flat.dtype == torch.float32:
        return flat.view(torch.int32).nonzero().squeeze(1)
    if flat.dtype == torch.float64:
        return flat.view(torch.int64).nonzero().squeeze(1)
    mask = flat if flat.dtype == torch.bool else flat.bool()
    return mask.nonzero().squeeze(1)


def _surrogate_derivative(surrogate: Surrogate, x: Tensor) -> Tensor:
    """``surrogate.derivative(x)``, computed in place in ``x`` (a temporary) for the fast sigmoid: every
    ``[T, B, N]`` temporary costs page faults on CPU. The same operations, so the same bits."""
    if type(surrogate) is FastSigmoid:
        x.abs_().mul_(surrogate.slope).add_(1.0)
        return x.mul_(x).reciprocal_()
    return surrogate.derivative(x)


def _spike_input(out: Tensor, current: Tensor, s_prev: Tensor, weights: Tensor) -> None:
    """``out = current + s_prev @ weights`` (``s_prev [B, N]`` binary spikes, ``weights [N, M]``): by events (the
    rows of ``weights`` of the units that spiked, added to their samples) when few units spiked, else one
    product."""
    k = int(torch.count_nonzero(s_prev))
    if k > STEP_EVENT_DENSITY * s_prev.numel():
        torch.addmm(current, s_prev, weights, out=out)
        return
    out.copy_(current)
    if k:
        idx = s_prev.nonzero()
        out.index_add_(0, idx[:, 0], weights.index_select(0, idx[:, 1]))


def _group_sum(grad: Tensor, rows: Tensor, cols: Tensor, values: Optional[Tensor], n_cols: int) -> Tensor:
    """``X^T @ grad`` (``[n_cols, M]``) for a sparse ``X [R, n_cols]`` given by its nonzero entries ``(rows, cols,
    values)`` (``values`` None: all ones) and a dense ``grad [R, M]``: the entries grouped by column (a stable
    sort) and each group's rows of ``grad`` summed (one ``embedding_bag``); the dense ``X`` is never formed."""
    key = cols.to(torch.int32) if n_cols < 2 ** 31 else cols   # integer sorts are much faster on 32 bits
    order = torch.sort(key, stable=True).indices
    counts = torch.bincount(cols, minlength=n_cols)
    offsets = counts.cumsum(0) - counts
    weights = values.index_select(0, order) if values is not None else None
    return torch.nn.functional.embedding_bag(rows.index_select(0, order), grad, offsets, mode="sum",
                                             per_sample_weights=weights)


def _outer_sum(grad: Tensor, spikes: Tensor) -> Tensor:
    """``grad^T @ spikes`` (``[M, N]``) for binary ``spikes [R, N]``: by events when they are sparse."""
    R, N = spikes.shape
    where = _flat_nonzero(spikes)
    if where.numel() > EVENT_DENSITY * spikes.numel():
        return grad.t() @ spikes
    rows, cols = torch.div(where, N, rounding_mode="floor"), where.remainder(N)
    return _group_sum(grad, rows, cols, None, N).t()


class _EventLinear(torch.autograd.Function):
    """``x @ W^T + b`` for a sparse ``x [R, n_in]``: its nonzero entries found once, the forward a sum of the
    weight columns of each row's active inputs, the weight gradient a sum of the gradient rows of each input's
    active rows (``embedding_bag`` both ways); the gradient w.r.t. ``x`` (when needed) is the dense ``G W``."""

    @staticmethod
    def forward(ctx, x, weight, bias):  # type: ignore[override]
        R, n_in = x.shape
        flat = x.reshape(-1)
        where = _flat_nonzero(flat)
        rows, cols = torch.div(where, n_in, rounding_mode="floor"), where.remainder(n_in)
        values = flat.index_select(0, where)
        if bool((values == 1).all()):
            values = None                                             # binary input (spikes): no weights needed
        counts = torch.bincount(rows, minlength=R)
        offsets = counts.cumsum(0) - counts
        out = torch.nn.functional.embedding_bag(cols, weight.detach().t().contiguous(), offsets, mode="sum",
                                                per_sample_weights=values)
        if bias is not None:
            out.add_(bias)
        ctx.save_for_backward(rows, cols, values if values is not None else torch.empty(0), weight)
        ctx.binary, ctx.n_in = values is None, n_in
        return out

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        rows, cols, values, weight = ctx.saved_tensors
        grad = grad.contiguous()
        g_x = grad @ weight if ctx.needs_input_grad[0] else None
        g_w = None
        if ctx.needs_input_grad[1]:
            g_w = _group_sum(grad, rows, cols, None if ctx.binary else values, ctx.n_in).t().contiguous()
        g_b = grad.sum(dim=0) if ctx.needs_input_grad[2] else None
        return g_x, g_w, g_b


def event_linear(x: Tensor, weight: Tensor, bias: Optional[Tensor] = None) -> Tensor:
    """``torch.nn.functional.linear(x, weight, bias)`` for a 2-D ``x`` computed from its nonzero entries only
    (fast when ``x`` is sparse, e.g. spikes at a few percent); equal to the dense product to float rounding,
    gradients included (w.r.t. ``x`` too)."""
    if x.dim() != 2 or weight.dim() != 2 or x.shape[1] != weight.shape[1]:
        raise ValueError(f"event_linear: x [R, {weight.shape[-1]}] expected, got {tuple(x.shape)}")
    return _EventLinear.apply(x, weight, bias)


def is_sparse_input(x: Tensor, max_density: float = 0.1, sample: int = 4096) -> bool:
    """Whether ``x`` looks sparse enough for :func:`event_linear` to beat a dense product: on CPU, at least
    ``2**15`` entries, and at most ``max_density`` nonzero among ``sample`` evenly spaced entries (an estimate
    that only chooses the algorithm, never changes the result beyond rounding)."""
    n = x.numel()
    if x.device.type != "cpu" or n < 2 ** 15:
        return False
    probe = x.reshape(-1)[:: max(1, n // sample)]
    return int(torch.count_nonzero(probe)) <= max_density * probe.numel()


# ------------------------------------------------------------------------------------------ the fused node
class _FusedLIF(torch.autograd.Function):
    @staticmethod
    def forward(ctx, current, beta, theta, recurrent, surrogate, detach_reset):  # type: ignore[override]
        T, B, N = current.shape
        u_all = torch.empty((T, B, N), dtype=current.dtype, device=current.device)
        spikes = torch.empty_like(u_all)
        # v_{t-1} = u_{t-1} - theta s_{t-1}, so u_t = I_t + beta u_{t-1} + s_{t-1} (V^T - diag(beta theta)):
        # the reset joins the recurrent product (or, without recurrence, one multiply-add), three operations
        # per step and no separate v.
        reset = (beta * theta).expand(N)
        if recurrent is not None:
            weights = recurrent.detach().t() - torch.diag_embed(reset)   # row j: what a spike of j adds
        else:
            neg_reset = -reset
        with _SerialLoop(B * N * N if recurrent is not None else 0):
            us, ss, cs = u_all.unbind(0), spikes.unbind(0), current.unbind(0)   # all step views at once
            us[0].copy_(cs[0])                                            # v_0 = 0, s_0 = 0
            torch.ge(us[0], theta, out=ss[0])                             # H(u - theta)
            for t in range(1, T):
                u, s_prev = us[t], ss[t - 1]
                if recurrent is not None:
                    _spike_input(u, cs[t], s_prev, weights)
                else:
                    torch.addcmul(cs[t], s_prev, neg_reset, out=u)
                u.addcmul_(beta, us[t - 1])
                torch.ge(u, theta, out=ss[t])
        ctx.save_for_backward(u_all, spikes, beta, theta, recurrent if recurrent is not None else torch.empty(0))
        ctx.surrogate, ctx.detach_reset, ctx.has_recurrent = surrogate, detach_reset, recurrent is not None
        return spikes

    @staticmethod
    def backward(ctx, grad_spikes):  # type: ignore[override]
        u_all, spikes, beta, theta, recurrent = ctx.saved_tensors
        recurrent = recurrent if ctx.has_recurrent else None
        T, B, N = u_all.shape
        need_beta, need_theta = ctx.needs_input_grad[1], ctx.needs_input_grad[2]
        need_rec = ctx.has_recurrent and ctx.needs_input_grad[3]
        grad_spikes = grad_spikes.contiguous()
        sig = _surrogate_derivative(ctx.surrogate, u_all - theta)    # sigma'_t for every t at once
        # g_u_t = beta g_u_{t+1} + sigma'_t (g_s_t - theta beta g_u_{t+1}) (detached reset: without the last term),
        # g_s_t = dL/ds_t + g_u_{t+1} V. With recurrence the per-unit -theta beta term joins the product:
        # g_u_{t+1} (V - diag(theta beta)), three operations per step and no [T, B, N] temporary.
        g = torch.empty_like(u_all)                                   # g[t] = dL/du_t = dL/dI_t
        if recurrent is not None:
            rec = recurrent.detach()
            if not ctx.detach_reset:
                rec = rec - torch.diag_embed((theta * beta).expand(N))
            with _SerialLoop(B * N * N):
                gs, sigs, gus = grad_spikes.unbind(0), sig.unbind(0), g.unbind(0)
                torch.mul(gs[T - 1], sigs[T - 1], out=gus[T - 1])
                for t in range(T - 2, -1, -1):
                    g_next, out = gus[t + 1], gus[t]
                    torch.addmm(gs[t], g_next, rec, out=out)
                    out.mul_(sigs[t])
                    out.addcmul_(beta, g_next)
        else:
            decay = beta if ctx.detach_reset else (sig * (-theta)).add_(1.0).mul_(beta)
            per_step_decay = decay.dim() == 3
            torch.mul(grad_spikes, sig, out=g)
            with _SerialLoop(0):
                for t in range(T - 2, -1, -1):
                    g[t].addcmul_(decay[t] if per_step_decay else decay, g[t + 1])
        g_rec = g_beta = g_theta = None
        if need_rec:                                                  # sum_t g_u_t^T s_{t-1}
            g_rec = _outer_sum(g[1:].reshape(-1, N), spikes[:-1].reshape(-1, N))
        if need_beta:                                                 # sum_t g_u_t v_{t-1}
            v_prev = torch.addcmul(u_all[:-1], spikes[:-1], theta, value=-1.0)
            g_beta = _reduce_to((g[1:] * v_prev).sum(dim=(0, 1)), beta)
        if need_theta:                                                # -sum_t g_u_t + sum_t beta g_u_{t+1} (1 - s_t)
            kept = (1.0 - spikes[:-1]).mul_(g[1:]).mul_(beta)
            g_theta = _reduce_to(kept.sum(dim=(0, 1)) - g.sum(dim=(0, 1)), theta)
        return g, g_beta, g_theta, g_rec, None, None


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
