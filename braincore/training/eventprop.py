"""EventProp: exact event-based gradients for feed-forward networks of current-based LIF neurons.

Wunderlich & Pehle 2021 ("Event-based backpropagation can compute exact gradients for spiking neural
networks", Sci. Rep. 11:12829); loss forms after Nowotny, Turner & Knight 2022 ("Loss shaping enhances exact
gradient learning with Eventprop in spiking neural networks").

**Model** (continuous time, ``t`` in ms, potentials in units of the threshold scale the user picks)::

    tau_mem dV/dt = -V + I          tau_syn dI/dt = -I
    V(t) = threshold  ->  spike at t, V <- 0 (reset), and I_m <- I_m + W[n, m] in every neuron m of the next layer
    input spike of source n at t_k  ->  I_m <- I_m + W[n, m]

``W [N_in, N_out]`` (DESIGN: weights ``[N_pre, N_post]``), ``V(0) = I(0) = 0``, no refractory period, simulated
on ``[0, t_max]``. A layer's spikes depend only on the layer below, so layers are simulated one after another.

**Exact simulation.** The dynamics are linear, so between events (input spikes and the neuron's own resets)
the state has the closed form, with ``a = 1/tau_mem``, ``b = 1/tau_syn``, ``phi(s) = (e^{-a s} - e^{-b s}) /
(b - a)`` (``s e^{-a s}`` when the time constants are equal)::

    I(t0 + s) = I0 e^{-b s},     V(t0 + s) = V0 e^{-a s} + a I0 phi(s)

``V`` is a sum of two exponentials, so ``dV/ds`` changes sign at most once per interval, at a point with a
closed form; that splits the interval into at most two monotone pieces, and the first threshold crossing is
bracketed on a piece where ``V`` increases and solved by Newton's method safeguarded by bisection, iterated to
the dtype's precision (Newton steps below ``4 eps (1 + s)``, ``s`` in ms: in float64 spike times are exact
to ~1e-14 ms).
There is no time grid.

**Adjoint (backward pass).** With the costates ``lam_V = dL/dV(t)``, ``lam_I = dL/dI(t)`` of one layer (this
is Wunderlich & Pehle's Table 2 with ``lam_V = -tau_mem lam^WP_V``, ``lam_I = -tau_syn lam^WP_I``),
integrated from ``t_max`` back to 0, ``lam(t_max) = 0``::

    free:  dlam_V/dt = a lam_V - dl_V/dV,   dlam_I/dt = -a lam_V + b lam_I           (closed form between events)
    at a spike of neuron n at t_s (I_n = I_n(t_s), Vdot^- = a (I_n - threshold) > 0):
           lam_V,n^- = (a I_n lam_V,n^+ - dL/dt_s) / Vdot^-                              (lam_I continuous)
    at an input spike k of source n at t_k:
           dL/dW[n, :] += lam_I(t_k)
           dL/dt_k = sum_m W[n, m] (b lam_I,m(t_k) - a lam_V,m(t_k))

``dL/dt_s`` is whatever the layers above and the loss make of the spike time: the next layer's ``dL/dt_k`` of
its input spike (this reproduces WP's ``W^T (lam_V - lam_I)`` term) plus any direct loss term. So each layer
is one autograd node mapping input spike times to output spike times (:func:`lif_event_layer`), and the chain
of layers, read-outs and losses is composed by torch's autograd. Backward stores only the spike times, their
sources and ``I`` at each output spike: memory scales with the number of spikes, not with time steps.

**Read-outs** (non-spiking leaky integrators, same equations, no threshold; :func:`readout_event_layer`):

- ``"mean_voltage"``: ``y_m = (1/t_max) int_0^t_max V_m dt`` (Nowotny et al.'s "avg_var"); the adjoint has
  the constant forcing ``dl_V/dV = dL/dy_m / t_max``. Forward uses ``int V = tau_syn (I0 - I) - tau_mem (V - V0)``
  on each interval.
- ``"max_voltage"``: ``y_m = max_t V_m(t)`` ("max_var"; W&P's Yin-Yang read-out uses the voltage maximum too):
  ``lam_V,m`` jumps by ``dL/dy_m`` at the arg-max ``t*``. The maximum lies at an interior stationary point, at
  ``t_max``, at ``t = 0`` (``y = 0``), or at the kink an inhibitory input spike makes (``dV/dt`` jumps from
  positive to negative at ``t_k``); there ``t* = t_k`` moves with the input, adding ``dL/dy_m Vdot_m(t_k^-)`` to
  ``dL/dt_k`` and the jump of ``lam_V`` is applied just before ``t_k``.

Spike-time losses: :func:`first_spike_times` (``t_max`` for a silent neuron, with zero gradient) and
:func:`ttfs_cross_entropy`, W&P's time-to-first-spike loss
``-log softmax(-t / tau0)[label] + alpha (exp(t_label / tau1) - 1)``.

**Spike trains** are padded tensors: ``times [B, K]`` (ms; ``inf`` marks padding, spikes after ``t_max`` are
ignored) and ``index [B, K]`` (int64 source neuron). Gradients are exact where the spike count is locally
constant (the gradient does not see spikes appearing or vanishing: the known limit of exact-gradient methods),
and are checked against central finite differences of the same simulator (``tests/test_eventprop.py``).
Python-level event loops (vectorised over the batch and the neurons of a layer): meant for small and medium
networks; :class:`EventPropNetwork` is the second training mode next to the surrogate-gradient layers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, NamedTuple, Optional, Sequence, Tuple

import torch
from torch import nn

Tensor = torch.Tensor

__all__ = ["EventLIFParams", "SpikeTrain", "spike_train", "lif_event_layer", "readout_event_layer",
           "first_spike_times", "ttfs_cross_entropy", "EventPropNetwork"]

READOUTS = ("ttfs", "mean_voltage", "max_voltage")


@dataclass(frozen=True)
class EventLIFParams:
    """Time constants (ms), threshold (potential units, reset to 0) and simulated window ``[0, t_max]`` (ms)."""

    tau_mem: float = 20.0
    tau_syn: float = 5.0
    threshold: float = 1.0
    t_max: float = 100.0

    def __post_init__(self) -> None:
        for name in ("tau_mem", "tau_syn", "threshold", "t_max"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")

    @property
    def a(self) -> float:
        return 1.0 / self.tau_mem

    @property
    def b(self) -> float:
        return 1.0 / self.tau_syn


class SpikeTrain(NamedTuple):
    """Padded spikes of a batch: ``times [B, K]`` (ms, ``inf`` = padding), ``index [B, K]`` (int64 neuron)."""

    times: Tensor
    index: Tensor


def spike_train(spikes: Sequence[Sequence[Tuple[float, int]]], dtype: torch.dtype = torch.float64) -> SpikeTrain:
    """A :class:`SpikeTrain` from per-sample lists of ``(time_ms, neuron)`` pairs."""
    K = max((len(s) for s in spikes), default=0)
    times = torch.full((len(spikes), K), math.inf, dtype=dtype)
    index = torch.zeros((len(spikes), K), dtype=torch.long)
    for row, sample in enumerate(spikes):
        for col, (t, n) in enumerate(sample):
            times[row, col], index[row, col] = float(t), int(n)
    return SpikeTrain(times, index)


# ------------------------------------------------------------------------------------------ closed forms
def _phi(s: Tensor, p: EventLIFParams) -> Tensor:
    """``(e^{-a s} - e^{-b s}) / (b - a)``, stable as ``b -> a`` (limit ``s e^{-a s}``)."""
    d = p.b - p.a
    if d == 0.0:
        return s * torch.exp(-p.a * s)
    return torch.exp(-p.a * s) * (-torch.expm1(-d * s)) / d


def _free(V: Tensor, I: Tensor, s: Tensor, p: EventLIFParams) -> Tuple[Tensor, Tensor]:
    """State after ``s`` ms of free evolution."""
    return V * torch.exp(-p.a * s) + p.a * I * _phi(s, p), I * torch.exp(-p.b * s)


def _stationary_point(V0: Tensor, I0: Tensor, p: EventLIFParams) -> Tensor:
    """The ``s`` where ``dV/ds = 0`` (``nan`` where there is none): ``e^{(b-a)s} = b I0 / ((b-a) V0 + a I0)``,
    written as ``log1p((b-a)(I0-V0)/D) / (b-a)`` so that it stays finite as ``b -> a``."""
    d = p.b - p.a
    D = d * V0 + p.a * I0
    if d == 0.0:
        return (I0 - V0) / (p.a * I0)
    x = d * (I0 - V0) / D
    return torch.where(x > -1.0, torch.log1p(x.clamp(min=-1.0 + 1e-300)) / d, torch.full_like(x, math.nan))


def _first_crossing(V0: Tensor, I0: Tensor, S: Tensor, p: EventLIFParams) -> Tuple[Tensor, Tensor]:
    """First ``s`` in ``(0, S]`` with ``V(s) = threshold`` (``V0 < threshold``): ``(found, s)``, elementwise."""
    theta = p.threshold
    slope0 = I0 - V0                                             # sign of dV/ds at 0
    V_S, I_S = _free(V0, I0, S, p)
    slope_S = I_S - V_S
    rises_then_falls = (slope0 > 0) & (slope_S < 0)
    falls_then_rises = (slope0 <= 0) & (slope_S > 0)
    s_c = _stationary_point(V0, I0, p)
    s_c = torch.where(rises_then_falls | falls_then_rises, s_c.nan_to_num(0.0).clamp(min=0.0).minimum(S),
                      torch.zeros_like(S))
    lo = torch.where(falls_then_rises, s_c, torch.zeros_like(S))
    hi = torch.where(rises_then_falls, s_c, S)
    V_hi, _ = _free(V0, I0, hi, p)
    found = V_hi >= theta                                        # (a falling-only piece stays below V0)
    if not bool(found.any()):
        return found, S
    lo, hi = lo[found], hi[found]
    v0, i0 = V0[found], I0[found]
    x = hi.clone()
    tol = 4.0 * torch.finfo(x.dtype).eps
    for _ in range(100):
        V, I = _free(v0, i0, x, p)
        f = V - theta
        lo = torch.where(f < 0, x, lo)
        hi = torch.where(f >= 0, x, hi)
        fprime = p.a * (I - V)
        newton = x - f / fprime
        inside = (newton > lo) & (newton < hi) & torch.isfinite(newton)
        x_new = torch.where(inside, newton, 0.5 * (lo + hi))
        done = (x_new - x).abs() <= tol * (1.0 + x.abs())
        x = x_new
        if bool(done.all()):
            break
    s = S.clone()
    s[found] = x
    return found, s


def _check_train(train: SpikeTrain, n_in: int, who: str) -> None:
    times, index = train
    if times.dim() != 2 or index.shape != times.shape:
        raise ValueError(f"{who}: spike times and indices must both be [B, K], got {tuple(times.shape)} and "
                         f"{tuple(index.shape)}")
    if not times.is_floating_point() or index.dtype != torch.long:
        raise ValueError(f"{who}: spike times must be floating point and indices int64, got {times.dtype} and "
                         f"{index.dtype}")
    if bool(torch.isnan(times).any()) or bool((times < 0).any()):
        raise ValueError(f"{who}: spike times must be >= 0 ms (inf marks padding); got NaN or negative times")
    real = torch.isfinite(times)
    if bool(((index < 0) | (index >= n_in))[real].any()):
        raise ValueError(f"{who}: spike indices must lie in [0, {n_in}) for a layer with {n_in} inputs")


def _check_weight(weight: Tensor, train: SpikeTrain, who: str) -> None:
    if weight.dim() != 2:
        raise ValueError(f"{who}: weight must be [N_in, N_out], got {tuple(weight.shape)}")
    if weight.dtype != train.times.dtype:
        raise ValueError(f"{who}: weight dtype {weight.dtype} differs from the spike times' {train.times.dtype}")


def _sorted_inputs(times: Tensor, index: Tensor, p: EventLIFParams) -> Tuple[Tensor, Tensor, Tensor]:
    """Inputs in time order with out-of-window spikes as padding: ``(times, index, order)``."""
    times = torch.where(times <= p.t_max, times, torch.full_like(times, math.inf))
    times_sorted, order = torch.sort(times, dim=1, stable=True)
    return times_sorted, torch.gather(index, 1, order), order


# ------------------------------------------------------------------------------------------ forward
def _simulate(times: Tensor, index: Tensor, weight: Tensor, p: EventLIFParams, mode: str):
    """Event-driven simulation of one layer over sorted inputs. ``mode``: ``"spike"`` returns the output spikes
    ``(times, index, I_at_spike)``, padded; ``"mean_voltage"``/``"max_voltage"`` the read-out and what its
    backward needs."""
    B, K = times.shape
    N = weight.shape[1]
    V = times.new_zeros(B, N)
    I = times.new_zeros(B, N)
    t_now = times.new_zeros(B)
    rows_out: List[Tensor] = []
    cols_out: List[Tensor] = []
    t_out: List[Tensor] = []
    I_out: List[Tensor] = []
    integral = times.new_zeros(B, N)
    # max read-out: value, time, kink event position (-1: none) and dV/dt just before that event
    y_max = times.new_zeros(B, N)
    t_star = times.new_zeros(B, N)
    kink = torch.full((B, N), -1, dtype=torch.long, device=times.device)
    vdot_kink = times.new_zeros(B, N)
    for k in range(K + 1):
        t_next = times[:, k].clamp(max=p.t_max) if k < K else times.new_full((B,), p.t_max)
        S = (t_next - t_now)[:, None].expand(B, N).clone()
        if mode == "spike":
            t_local = t_now[:, None].expand(B, N).clone()
            active = torch.ones(B, N, dtype=torch.bool, device=times.device)
            while True:
                found, s = _first_crossing(V, I, S, p)
                found &= active
                if not bool(found.any()):
                    break
                r, c = found.nonzero(as_tuple=True)
                I_s = I[r, c] * torch.exp(-p.b * s[r, c])
                rows_out.append(r)
                cols_out.append(c)
                t_out.append(t_local[r, c] + s[r, c])
                I_out.append(I_s)
                V[r, c] = 0.0
                I[r, c] = I_s
                t_local[r, c] = t_local[r, c] + s[r, c]
                S[r, c] = S[r, c] - s[r, c]
                active = found
            V, I = _free(V, I, S, p)
        else:
            V_end, I_end = _free(V, I, S, p)
            if mode == "mean_voltage":
                integral += p.tau_syn * (I - I_end) - p.tau_mem * (V_end - V)
            else:
                # interior stationary point (a maximum when dV/ds goes from + to -)
                is_max = ((I - V) > 0) & ((I_end - V_end) < 0)
                s_c = torch.where(is_max, _stationary_point(V, I, p).nan_to_num(0.0).clamp(min=0.0), 0.0)
                s_c = torch.minimum(s_c, S)
                V_c, _ = _free(V, I, s_c, p)
                better = is_max & (V_c > y_max)
                y_max = torch.where(better, V_c, y_max)
                t_star = torch.where(better, t_now[:, None] + s_c, t_star)
                kink = torch.where(better, -1, kink)
                # the end of the interval: t_max, or the next input event (a kink if the input turns V down)
                better = V_end > y_max
                if k < K:
                    # before the input arrives dV/dt = a (I_end - V_end); a maximum only if the event makes it < 0
                    real = torch.isfinite(times[:, k])[:, None]
                    w_next = weight[torch.where(real[:, 0], index[:, k], 0)] * real
                    vdot_before = p.a * (I_end - V_end)
                    turns_down = (vdot_before >= 0) & (vdot_before + p.a * w_next < 0)
                    better &= turns_down
                    kink = torch.where(better, k, kink)
                    vdot_kink = torch.where(better, vdot_before, vdot_kink)
                else:
                    kink = torch.where(better, -1, kink)
                y_max = torch.where(better, V_end, y_max)
                t_star = torch.where(better, t_next[:, None].expand(B, N), t_star)
            V, I = V_end, I_end
        if k < K:
            real = torch.isfinite(times[:, k])
            if bool(real.any()):
                r = real.nonzero(as_tuple=True)[0]
                I[r] = I[r] + weight[index[r, k]]
        t_now = t_next
    if mode == "mean_voltage":
        return integral / p.t_max
    if mode == "max_voltage":
        return y_max, t_star, kink, vdot_kink
    # pad the output spikes per sample, in time order
    if rows_out:
        r = torch.cat(rows_out)
        c = torch.cat(cols_out)
        t = torch.cat(t_out)
        i_s = torch.cat(I_out)
    else:
        r = torch.zeros(0, dtype=torch.long, device=times.device)
        c, t, i_s = r.clone(), times.new_zeros(0), times.new_zeros(0)
    counts = torch.bincount(r, minlength=B)
    K_out = int(counts.max()) if B > 0 and r.numel() > 0 else 0
    out_t = times.new_full((B, K_out), math.inf)
    out_n = torch.zeros((B, K_out), dtype=torch.long, device=times.device)
    out_I = times.new_zeros(B, K_out)
    if r.numel():
        order = torch.argsort(t, stable=True)
        order = order[torch.argsort(r[order], stable=True)]           # by sample, then by time
        r, c, t, i_s = r[order], c[order], t[order], i_s[order]
        starts = torch.cumsum(counts, 0) - counts
        col = torch.arange(r.numel(), device=times.device) - starts[r]
        out_t[r, col], out_n[r, col], out_I[r, col] = t, c, i_s
    return out_t, out_n, out_I


# ------------------------------------------------------------------------------------------ backward
def _adjoint(times: Tensor, index: Tensor, weight: Tensor, p: EventLIFParams, *, out_t: Optional[Tensor] = None,
             out_n: Optional[Tensor] = None, out_I: Optional[Tensor] = None, g_out: Optional[Tensor] = None,
             forcing: Optional[Tensor] = None, max_t: Optional[Tensor] = None, max_g: Optional[Tensor] = None,
             max_kink: Optional[Tensor] = None, max_vdot: Optional[Tensor] = None,
             need_times: bool = True) -> Tuple[Tensor, Tensor]:
    """Integrate ``(lam_V, lam_I)`` of one layer from ``t_max`` back to 0 (module docstring); returns
    ``(dL/dW, dL/d input times)`` for sorted inputs. Events: inputs (kind 1), output spikes (kind 2) and, for the
    max read-out, the arg-max jumps (kind 0; listed first so a kink's jump comes just before its input)."""
    B, K = times.shape
    N = weight.shape[1]
    a, b = p.a, p.b
    ev_t = [times]
    ev_kind = [torch.ones(B, K, dtype=torch.long, device=times.device)]
    ev_n = [index]
    ev_pos = [torch.arange(K, device=times.device).expand(B, K)]
    if out_t is not None:
        ev_t.append(out_t)
        ev_kind.append(torch.full(out_t.shape, 2, dtype=torch.long, device=times.device))
        ev_n.append(out_n)
        ev_pos.append(torch.arange(out_t.shape[1], device=times.device).expand(B, -1))
    if max_t is not None:
        # kink maxima sit at their input's time (exactly, not recomputed)
        ev_t.insert(0, max_t)
        ev_kind.insert(0, torch.zeros(B, N, dtype=torch.long, device=times.device))
        ev_n.insert(0, torch.arange(N, device=times.device).expand(B, N))
        ev_pos.insert(0, torch.arange(N, device=times.device).expand(B, N))
    ev_t_all = torch.cat(ev_t, 1)
    real = torch.isfinite(ev_t_all)
    ev_t_all = torch.where(real, ev_t_all, torch.full_like(ev_t_all, p.t_max))
    order = torch.argsort(ev_t_all, dim=1, stable=True)
    ev_t_all = torch.gather(ev_t_all, 1, order)
    real = torch.gather(real, 1, order)
    kind = torch.gather(torch.cat(ev_kind, 1), 1, order)
    ev_n_all = torch.gather(torch.cat(ev_n, 1), 1, order)
    ev_pos_all = torch.gather(torch.cat(ev_pos, 1), 1, order)

    lam_V = times.new_zeros(B, N)
    lam_I = times.new_zeros(B, N)
    c = forcing
    g_W = torch.zeros_like(weight)
    g_times = torch.zeros_like(times)
    t_now = times.new_full((B,), p.t_max)

    def back(lam_V: Tensor, lam_I: Tensor, dt: Tensor) -> Tuple[Tensor, Tensor]:
        dt = dt[:, None]
        ea, eb, ph = torch.exp(-a * dt), torch.exp(-b * dt), _phi(dt, p)
        if c is None:
            return lam_V * ea, lam_I * eb + a * lam_V * ph
        return (lam_V * ea - c / a * torch.expm1(-a * dt),
                lam_I * eb - c / b * torch.expm1(-b * dt) + a * (lam_V - c / a) * ph)

    for j in range(ev_t_all.shape[1] - 1, -1, -1):
        t_j = ev_t_all[:, j]
        lam_V, lam_I = back(lam_V, lam_I, t_now - t_j)
        t_now = t_j
        kj, nj, pj, rj = kind[:, j], ev_n_all[:, j], ev_pos_all[:, j], real[:, j]
        sel = (rj & (kj == 1)).nonzero(as_tuple=True)[0]
        if sel.numel():
            n = nj[sel]
            g_W.index_add_(0, n, lam_I[sel])
            if need_times:
                g_times[sel, pj[sel]] = (weight[n] * (b * lam_I[sel] - a * lam_V[sel])).sum(-1)
            if max_kink is not None:
                # a kink maximum at this input: t* = t_k, d y / d t_k = Vdot(t_k^-)
                hit = max_kink[sel] == pj[sel, None]
                if bool(hit.any()) and need_times:
                    g_times[sel, pj[sel]] += (hit * max_g[sel] * max_vdot[sel]).sum(-1)
        sel = (rj & (kj == 2)).nonzero(as_tuple=True)[0]
        if sel.numel():
            n, pos = nj[sel], pj[sel]
            I_s = out_I[sel, pos]
            lam_V[sel, n] = (a * I_s * lam_V[sel, n] - g_out[sel, pos]) / (a * (I_s - p.threshold))
        sel = (rj & (kj == 0)).nonzero(as_tuple=True)[0]
        if sel.numel():
            n = nj[sel]
            lam_V[sel, n] = lam_V[sel, n] + max_g[sel, n]
    return g_W, g_times


# ------------------------------------------------------------------------------------------ autograd nodes
class _LIFEventLayer(torch.autograd.Function):
    @staticmethod
    def forward(ctx, times, index, weight, p):  # type: ignore[override]
        times_s, index_s, order = _sorted_inputs(times, index, p)
        out_t, out_n, out_I = _simulate(times_s, index_s, weight, p, "spike")
        ctx.save_for_backward(times_s, index_s, order, weight, out_t, out_n, out_I)
        ctx.p = p
        ctx.mark_non_differentiable(out_n)
        return out_t, out_n

    @staticmethod
    def backward(ctx, g_out_t, _g_out_n):  # type: ignore[override]
        times_s, index_s, order, weight, out_t, out_n, out_I = ctx.saved_tensors
        g_out = torch.zeros_like(out_t) if g_out_t is None else torch.where(torch.isfinite(out_t), g_out_t, 0.0)
        g_W, g_ts = _adjoint(times_s, index_s, weight, ctx.p, out_t=out_t, out_n=out_n, out_I=out_I, g_out=g_out,
                             need_times=ctx.needs_input_grad[0])
        g_times = torch.zeros_like(g_ts).scatter_(1, order, g_ts) if ctx.needs_input_grad[0] else None
        return g_times, None, g_W if ctx.needs_input_grad[2] else None, None


class _ReadoutEventLayer(torch.autograd.Function):
    @staticmethod
    def forward(ctx, times, index, weight, p, mode):  # type: ignore[override]
        times_s, index_s, order = _sorted_inputs(times, index, p)
        ctx.p, ctx.mode = p, mode
        if mode == "mean_voltage":
            y = _simulate(times_s, index_s, weight, p, mode)
            ctx.save_for_backward(times_s, index_s, order, weight)
            return y
        y, t_star, kink, vdot = _simulate(times_s, index_s, weight, p, mode)
        ctx.save_for_backward(times_s, index_s, order, weight, t_star, kink, vdot)
        return y

    @staticmethod
    def backward(ctx, g_y):  # type: ignore[override]
        p = ctx.p
        need_times = ctx.needs_input_grad[0]
        if ctx.mode == "mean_voltage":
            times_s, index_s, order, weight = ctx.saved_tensors
            g_W, g_ts = _adjoint(times_s, index_s, weight, p, forcing=g_y / p.t_max, need_times=need_times)
        else:
            times_s, index_s, order, weight, t_star, kink, vdot = ctx.saved_tensors
            # kink maxima: exactly at their input's (sorted) time; t = 0 maxima (y = 0) carry no gradient
            if times_s.shape[1]:
                t_star = torch.where(kink >= 0, torch.gather(times_s, 1, kink.clamp(min=0)), t_star)
            g_W, g_ts = _adjoint(times_s, index_s, weight, p, max_t=t_star, max_g=g_y, max_kink=kink,
                                 max_vdot=vdot, need_times=need_times)
        g_times = torch.zeros_like(g_ts).scatter_(1, order, g_ts) if need_times else None
        return g_times, None, g_W if ctx.needs_input_grad[2] else None, None, None


def lif_event_layer(train: SpikeTrain, weight: Tensor, params: EventLIFParams) -> SpikeTrain:
    """Output spikes of a layer of LIF neurons driven by ``train`` through ``weight [N_in, N_out]``, exactly
    (module docstring). Differentiable in ``weight`` and in ``train.times`` by the EventProp adjoint."""
    _check_weight(weight, train, "lif_event_layer")
    _check_train(train, weight.shape[0], "lif_event_layer")
    out_t, out_n = _LIFEventLayer.apply(train.times, train.index, weight, params)
    return SpikeTrain(out_t, out_n)


def readout_event_layer(train: SpikeTrain, weight: Tensor, params: EventLIFParams,
                        mode: str = "max_voltage") -> Tensor:
    """``[B, N_out]``: the maximum (``"max_voltage"``) or time average (``"mean_voltage"``) over ``[0, t_max]``
    of non-spiking leaky integrators driven by ``train`` (``params.threshold`` is unused)."""
    if mode not in ("mean_voltage", "max_voltage"):
        raise ValueError(f"read-out mode must be 'mean_voltage' or 'max_voltage', got {mode!r}")
    _check_weight(weight, train, "readout_event_layer")
    _check_train(train, weight.shape[0], "readout_event_layer")
    return _ReadoutEventLayer.apply(train.times, train.index, weight, params, mode)


def first_spike_times(train: SpikeTrain, n: int, t_max: float) -> Tensor:
    """``[B, n]``: each neuron's first spike time; ``t_max`` (no gradient) for a neuron that stayed silent."""
    times, index = train
    if times.shape[1] == 0:
        return times.new_full((times.shape[0], n), float(t_max))
    mine = index[:, :, None] == torch.arange(n, device=index.device)  # [B, K, n]
    cand = torch.where(mine & torch.isfinite(times)[:, :, None], times[:, :, None], math.inf)
    first = cand.min(dim=1).values
    return torch.where(torch.isfinite(first), first, torch.full_like(first, float(t_max)))


def ttfs_cross_entropy(first_times: Tensor, labels: Tensor, tau0: float = 0.5, tau1: float = 6.4,
                       alpha: float = 3e-3) -> Tensor:
    """Wunderlich & Pehle's time-to-first-spike loss, averaged over the batch:
    ``-log softmax(-t / tau0)[label] + alpha (exp(t_label / tau1) - 1)`` (``t``, ``tau0``, ``tau1`` in ms;
    defaults from their Yin-Yang experiment)."""
    if first_times.dim() != 2 or labels.shape != first_times.shape[:1]:
        raise ValueError(f"first_times must be [B, n] and labels [B], got {tuple(first_times.shape)} and "
                         f"{tuple(labels.shape)}")
    if tau0 <= 0 or tau1 <= 0:
        raise ValueError(f"tau0 and tau1 must be > 0 ms, got {tau0}, {tau1}")
    ce = nn.functional.cross_entropy(-first_times / tau0, labels)
    t_label = first_times.gather(1, labels[:, None])[:, 0]
    return ce + alpha * torch.expm1(t_label / tau1).mean()


# ------------------------------------------------------------------------------------------ module
class EventPropNetwork(nn.Module):
    """Feed-forward LIF network trained with exact EventProp gradients.

    ``sizes = [n_in, n_hidden..., n_out]``. Hidden layers are spiking LIF layers; the output layer is a
    spiking LIF layer read by first spike times (``readout="ttfs"``, use with :func:`ttfs_cross_entropy`) or a
    non-spiking leaky integrator (``"max_voltage"``, ``"mean_voltage"``: logits for a cross-entropy).
    ``forward(train) -> [B, n_out]``; :meth:`run` also returns every layer's spikes. Weights ``[N_in, N_out]``,
    drawn ``N(init_mean, init_std) * scale`` with ``scale = threshold / (psp_peak sqrt(n_in))``
    (``psp_peak``: the peak voltage of a unit-weight input spike), so ``n_in`` coincident inputs of mean weight
    reach ``init_mean sqrt(n_in)`` thresholds.
    """

    def __init__(self, sizes: Sequence[int], tau_mem: float = 20.0, tau_syn: float = 5.0, threshold: float = 1.0,
                 t_max: float = 100.0, readout: str = "ttfs", init_mean: float = 0.5, init_std: float = 1.0,
                 generator: Optional[torch.Generator] = None, dtype: torch.dtype = torch.float64):
        super().__init__()
        if len(sizes) < 2 or any(int(n) < 1 for n in sizes):
            raise ValueError(f"sizes must list >= 2 layer sizes, each >= 1, got {list(sizes)}")
        if readout not in READOUTS:
            raise ValueError(f"readout must be one of {READOUTS}, got {readout!r}")
        self.params = EventLIFParams(float(tau_mem), float(tau_syn), float(threshold), float(t_max))
        self.sizes, self.readout = [int(n) for n in sizes], readout
        p = self.params
        zero, one = torch.tensor(0.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64)
        s_peak = float(_stationary_point(zero, one, p))
        psp_peak = float(p.a * _phi(torch.tensor(s_peak, dtype=torch.float64), p))
        self.weights = nn.ParameterList()
        for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:]):
            scale = threshold / (psp_peak * math.sqrt(n_in))
            w = torch.randn(n_in, n_out, generator=generator, dtype=dtype) * init_std + init_mean
            self.weights.append(nn.Parameter(w * scale))

    def run(self, train: SpikeTrain) -> Tuple[Tensor, List[SpikeTrain]]:
        """``(output [B, n_out], spikes of every spiking layer)``."""
        spikes: List[SpikeTrain] = []
        x = SpikeTrain(train.times.to(self.weights[0].dtype), train.index)
        last = len(self.weights) - 1
        for i, w in enumerate(self.weights):
            if i == last and self.readout != "ttfs":
                return readout_event_layer(x, w, self.params, self.readout), spikes
            x = lif_event_layer(x, w, self.params)
            spikes.append(x)
        return first_spike_times(x, self.sizes[-1], self.params.t_max), spikes

    def forward(self, train: SpikeTrain) -> Tensor:
        return self.run(train)[0]

    def extra_repr(self) -> str:
        p = self.params
        return (f"sizes={self.sizes}, readout={self.readout}, tau_mem={p.tau_mem} ms, tau_syn={p.tau_syn} ms, "
                f"threshold={p.threshold}, t_max={p.t_max} ms")
