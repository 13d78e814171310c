"""EventProp at scale: batched, vectorised exact-gradient training of recurrent current-based LIF networks on a
time grid with continuous spike times (Wunderlich & Pehle 2021; Nowotny, Turner & Knight 2025).

The network of Nowotny et al.'s SHD experiments: ``N_in`` input channels (700 for SHD) -> one recurrent layer of
``N`` current-based LIF neurons -> ``C`` non-spiking leaky integrators whose voltage, summed (or maximised) over
the trial, gives the class scores. Weights are ``W_in [N_in, N]``, ``W_rec [N, N]``, ``W_out [N, C]`` (DESIGN:
``[pre, post]``). Time ``t`` in ms, potentials in units of the threshold ``theta``.

**Model.** Between events every neuron follows ``tau_mem dV/dt = -V + I``, ``tau_syn dI/dt = -I`` (the read-out
``U, J`` the same, without a threshold). With ``a = 1/tau_mem``, ``b = 1/tau_syn`` and ``phi(s) = (e^{-a s} -
e^{-b s}) / (b - a)``, one step of ``dt`` is the exact closed form::

    V <- alpha V + gamma I,   I <- beta I,        alpha = e^{-a dt}, beta = e^{-b dt}, gamma = a phi(dt)

**Grid with continuous spike times.** Time is cut into ``T`` steps ``[t_k, t_k + dt)`` (vectorised over batch and
neurons: one loop over steps, ``[B, N]`` tensors per step); spike *times* are continuous. Step ``k``:

1. input spikes of the step (data, binned at ``t_k``): ``I += W_in[c]`` for each (sample, channel ``c``);
2. spikes emitted in step ``k - 1`` at fraction ``rho_j`` arrive with a synaptic delay of one step, at
   ``t_k + rho_j dt``; their exact effect at ``t_{k+1}`` is ``I += W[j] e_I(rho_j)``, ``V += W[j] e_V(rho_j)``
   with ``e_I(rho) = e^{-b (1 - rho) dt}``, ``e_V(rho) = a phi((1 - rho) dt)`` (``W = W_rec`` into the hidden
   layer, ``W_out`` into the read-out): ``V^-_{k+1} = alpha V_k + gamma I_k^+ + sum_j W[j] e_V(rho_j)``;
3. a neuron with ``V^-_{k+1} >= theta`` spikes at ``t_s = t_k + rho dt``, the threshold crossing of the straight
   line between ``V_k`` and ``V^-_{k+1}``: ``rho = (theta - V_k) / (V^-_{k+1} - V_k)`` (error ``O(dt^2)``);
4. reset: ``theta`` is subtracted at ``t_s`` and decays to the step's end: ``V_{k+1} = V^-_{k+1} - theta
   e^{-a (1 - rho) dt}`` (exactly "V <- 0 at t_s" when ``V(t_s) = theta``). At most one spike per neuron and step
   (a neuron still above threshold spikes again in the next step, at ``rho = 0``, with no gradient through that
   ``rho``).

Every output is a smooth function of the weights wherever the set of (neuron, step) spikes is locally
constant; as ``dt -> 0`` the model tends to the continuous one of :mod:`braincore.training.eventprop` (the delay
and the interpolation error vanish; ``tests/test_eventprop_grid.py`` checks the convergence).

**Read-outs and losses** (Nowotny et al. 2025; ``y [B, C]`` over the read-out voltages ``U_1 .. U_T``)::

    sum:      y_c = dt sum_k U_k,c                     (their L_sum: the integral of V over the trial, in ms)
    sum_exp:  y_c = dt sum_k e^{-t_k / tau_w} U_k,c     (their exponentially weighted "loss shaping"; tau_w ms)
    max:      y_c = max_k U_k,c                        (their L_max)

with cross-entropy ``-log softmax(y)[label]`` (:func:`eventprop_cross_entropy`). The spike-count regulariser
(:func:`spike_count_regularizer`) is ``L_reg = (lambda / 2) sum_i (nbar_i - nu)^2`` over the hidden neurons,
``nbar_i`` the batch-mean spike count of neuron ``i`` and ``nu`` the target count (``lambda_upper`` above,
``lambda_lower`` below the target). A count is piecewise constant in the weights (its exact gradient is 0), so,
as in Nowotny et al.'s GeNN code, its gradient ``dL/dn_{b,i}`` is passed to every spike of neuron ``i`` in sample
``b`` as ``dL/dt_s = -dL/dn_{b,i}`` (per ms): too many spikes push spike times later, i.e. weights down. This is
the one term that is not an exact gradient; everything else is.

**Adjoint (EventProp).** The backward pass runs the same grid from ``t_T`` back to 0 with the costates ``lam_V =
dL/dV``, ``lam_I = dL/dI`` (and ``lam_U, lam_J`` of the read-out). Between events they decay in closed form,
the transpose of the forward step::

    lam_V <- alpha lam_V,   lam_I <- beta lam_I + gamma lam_V        (+ the read-out forcing dL/dU_k)

and at each stored spike ``(b, j, rho, D = V^-_{k+1} - V_k)`` they jump: with ``g_rho = dL/drho = -theta a dt
e^{-a (1 - rho) dt} lam_V(t_{k+1}) + e_I'(rho) dL/dp + e_V'(rho) dL/dq + dt dL/dt_s`` (``p = e_I(rho)``, ``q =
e_V(rho)`` the spike's weights into the next step; ``dL/dp = W[j] . lam_I``, ``dL/dq = W[j] . lam_V`` summed over
its targets, hidden and read-out), ``lam_V^-_{k+1} += -g_rho rho / D`` and ``lam_V(t_k) += g_rho (rho - 1) / D``.
Weight gradients are sums over events only: ``dL/dW_in[c] += lam_I^+(t_k)`` per input spike, ``dL/dW[j] +=
q lam_V^- + p lam_I`` per arriving spike. This is the exact gradient of the grid model above (not an
approximation of it): ``tests/test_eventprop_grid.py`` checks it against central finite differences in float64.

**Memory.** The forward pass keeps only the spikes (sample, neuron, ``rho``, ``D``: ``O(#spikes)``) and the
arg-max step of the ``max`` read-out, never the ``[T, B, N]`` state trajectory a BPTT implementation stores;
inputs are event lists (``O(#input spikes)``). Propagation is event-driven too: a step costs ``O(B N)``
elementwise work plus ``O(#spikes x fan-out)`` gathers and scatter-adds, with no dense ``[B, N] x [N, N]``
matmul. The code is device-agnostic torch (CPU and CUDA; on a GPU each step's ``nonzero`` synchronises).

References: T. C. Wunderlich and C. Pehle, "Event-based backpropagation can compute exact gradients for spiking
neural networks", Sci. Rep. 11:12829 (2021); T. Nowotny, J. P. Turner and J. C. Knight, "Loss shaping enhances
exact gradient learning with Eventprop in spiking neural networks", Neuromorph. Comput. Eng. (2025),
doi:10.1088/2634-4386/ada852 (arXiv:2212.01232; SHD 93.5 +- 0.7 % test accuracy with augmentation and delay
lines; 3x faster and 4x less memory than a surrogate-gradient BPTT implementation).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from .losses import LossResult

Tensor = torch.Tensor

__all__ = ["READOUTS", "GridParams", "InputEvents", "input_events", "eventprop_rsnn", "simulate_grid",
           "EventPropRSNN", "eventprop_cross_entropy", "spike_count_regularizer", "EventPropLoss"]

READOUTS = ("sum", "sum_exp", "max")


@dataclass(frozen=True)
class GridParams:
    """Time constants, step and window (ms), threshold (reset subtracts it), read-out and its ``tau_w`` (ms,
    ``sum_exp`` only; default: the window ``T dt``)."""

    tau_mem: float = 20.0
    tau_syn: float = 5.0
    threshold: float = 1.0
    dt: float = 1.0
    steps: int = 1000
    readout: str = "sum"
    tau_w: Optional[float] = None

    def __post_init__(self) -> None:
        for name in ("tau_mem", "tau_syn", "threshold", "dt"):
            value = getattr(self, name)
            if isinstance(value, bool) or not (isinstance(value, (int, float)) and math.isfinite(value)
                                               and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"steps must be an integer >= 1, got {self.steps!r}")
        if self.readout not in READOUTS:
            raise ValueError(f"readout must be one of {READOUTS}, got {self.readout!r}")
        if self.tau_w is not None and not (math.isfinite(self.tau_w) and self.tau_w > 0):
            raise ValueError(f"tau_w must be > 0 ms, got {self.tau_w!r}")

    @property
    def a(self) -> float:
        return 1.0 / self.tau_mem

    @property
    def b(self) -> float:
        return 1.0 / self.tau_syn

    @property
    def t_max(self) -> float:
        return self.steps * self.dt

    def phi(self, s: Tensor) -> Tensor:
        """``(e^{-a s} - e^{-b s}) / (b - a)``, stable as ``b -> a`` (limit ``s e^{-a s}``)."""
        d = self.b - self.a
        if d == 0.0:
            return s * torch.exp(-self.a * s)
        return torch.exp(-self.a * s) * (-torch.expm1(-d * s)) / d

    def dphi(self, s: Tensor) -> Tensor:
        """``d phi / ds``."""
        d = self.b - self.a
        if d == 0.0:
            return torch.exp(-self.a * s) * (1.0 - self.a * s)
        return (self.b * torch.exp(-self.b * s) - self.a * torch.exp(-self.a * s)) / d

    def step_factors(self) -> Tuple[float, float, float]:
        """``(alpha, beta, gamma)`` of one step."""
        s = torch.tensor(self.dt, dtype=torch.float64)
        return math.exp(-self.a * self.dt), math.exp(-self.b * self.dt), float(self.a * self.phi(s))

    def weights(self, device: torch.device, dtype: torch.dtype) -> Tensor:
        """``[T]`` read-out weights ``w_k`` of ``y = dt sum_k w_k U_{k+1}`` (``max``: unused, ones)."""
        t = (torch.arange(self.steps, device=device, dtype=torch.float64) + 1.0) * self.dt
        if self.readout == "sum_exp":
            tau_w = self.tau_w if self.tau_w is not None else self.t_max
            return torch.exp(-t / tau_w).to(dtype)
        return torch.ones(self.steps, device=device, dtype=dtype)


class InputEvents(NamedTuple):
    """Input spikes of a batch, sorted by step: ``step, sample, channel`` (int64 ``[S]``), ``offsets`` (``S_k``
    spikes of step ``k`` are ``offsets[k]:offsets[k+1]``; a Python list of ``T + 1`` ints), ``batch`` ``B``."""

    step: Tensor
    sample: Tensor
    channel: Tensor
    offsets: List[int]
    batch: int


def input_events(step: Tensor, sample: Tensor, channel: Tensor, batch: int, steps: int) -> InputEvents:
    """:class:`InputEvents` from unsorted ``(step, sample, channel)`` triples; steps outside ``[0, steps)`` are
    dropped."""
    if not (step.shape == sample.shape == channel.shape) or step.dim() != 1:
        raise ValueError(f"step, sample and channel must be 1-D of equal length, got {tuple(step.shape)}, "
                         f"{tuple(sample.shape)}, {tuple(channel.shape)}")
    keep = (step >= 0) & (step < steps)
    step, sample, channel = step[keep].long(), sample[keep].long(), channel[keep].long()
    if sample.numel() and (int(sample.min()) < 0 or int(sample.max()) >= batch):
        raise ValueError(f"sample indices must lie in [0, {batch})")
    order = torch.argsort(step, stable=True)
    step, sample, channel = step[order], sample[order], channel[order]
    counts = torch.bincount(step, minlength=steps).cpu()
    offsets = [0] + torch.cumsum(counts, 0).tolist()
    return InputEvents(step, sample, channel, offsets, int(batch))


# ------------------------------------------------------------------------------------------ forward
class _Spikes(NamedTuple):
    """Spikes of every step, concatenated: sample, neuron, ``rho``, ``D``, ``ok`` (a regular crossing, i.e. a
    gradient through ``rho``) and per-step ``offsets`` (Python list, ``T + 1``)."""

    sample: Tensor
    neuron: Tensor
    rho: Tensor
    denom: Tensor
    ok: Tensor
    offsets: List[int]


def _check(events: InputEvents, w_in: Tensor, w_rec: Tensor, w_out: Tensor, p: GridParams) -> None:
    if w_in.dim() != 2 or w_rec.dim() != 2 or w_out.dim() != 2:
        raise ValueError("weights must be 2-D: W_in [N_in, N], W_rec [N, N], W_out [N, C]")
    n = w_in.shape[1]
    if tuple(w_rec.shape) != (n, n) or w_out.shape[0] != n:
        raise ValueError(f"weights must be W_in [N_in, N], W_rec [N, N], W_out [N, C]; got {tuple(w_in.shape)}, "
                         f"{tuple(w_rec.shape)}, {tuple(w_out.shape)}")
    if not (w_in.dtype == w_rec.dtype == w_out.dtype) or not w_in.is_floating_point():
        raise ValueError("weights must share one floating-point dtype")
    if len(events.offsets) != p.steps + 1:
        raise ValueError(f"input events were binned for {len(events.offsets) - 1} steps, the network runs "
                         f"{p.steps}")
    if events.channel.numel() and (int(events.channel.min()) < 0 or int(events.channel.max()) >= w_in.shape[0]):
        raise ValueError(f"input channels must lie in [0, {w_in.shape[0]})")
    if events.batch < 1:
        raise ValueError(f"batch must be >= 1, got {events.batch}")


def _delivery(rho: Tensor, p: GridParams) -> Tuple[Tensor, Tensor]:
    """``(e_I(rho), e_V(rho))``: a spike's weight on ``I`` and ``V`` one step after its arrival at fraction
    ``rho`` of a step."""
    s = (1.0 - rho) * p.dt
    return torch.exp(-p.b * s), p.a * p.phi(s)


def _forward(events: InputEvents, w_in: Tensor, w_rec: Tensor, w_out: Tensor, p: GridParams,
             record: bool = False):
    """Run the grid model (module docstring). Returns ``(y [B, C], counts [B, N], spikes, argmax [B, C] or None,
    traces or None)``; ``traces`` (``record=True``, for tests) holds ``V, I, U`` at ``t_1 .. t_T``."""
    B, N, C = events.batch, w_in.shape[1], w_out.shape[1]
    dev, dt_ = w_in.device, w_in.dtype
    # constants as 0-d tensors: a Python float in a tensor op costs a conversion on every call
    alpha, beta, gamma, theta, one = (torch.tensor(v, device=dev, dtype=dt_) for v in
                                      (*p.step_factors(), p.threshold, 1.0))
    # one state for the hidden neurons (columns :N) and the read-out (N:), fed by W_cat = [W_rec | W_out]
    M = N + C
    w_cat = torch.cat([w_rec, w_out], 1)
    w_in_pad = torch.cat([w_in, w_in.new_zeros(w_in.shape[0], C)], 1)      # inputs reach the hidden columns only
    V = torch.zeros(B, M, device=dev, dtype=dt_)
    I = torch.zeros_like(V)
    y = torch.zeros(B, C, device=dev, dtype=dt_)
    arg = torch.zeros(B, C, device=dev, dtype=torch.long) if p.readout == "max" else None
    if arg is not None:
        y.fill_(-math.inf)
    wk = p.weights(dev, dt_) * p.dt
    prev_b: Optional[Tensor] = None
    prev_j: Optional[Tensor] = None
    prev_p: Optional[Tensor] = None
    prev_q: Optional[Tensor] = None
    s_b: List[Tensor] = []
    s_j: List[Tensor] = []
    s_r: List[Tensor] = []
    s_d: List[Tensor] = []
    s_ok: List[Tensor] = []
    offsets = [0]
    trace: Optional[List[Tuple[Tensor, Tensor, Tensor]]] = [] if record else None
    for k in range(p.steps):
        lo, hi = events.offsets[k], events.offsets[k + 1]
        if hi > lo:
            I.index_add_(0, events.sample[lo:hi], w_in_pad.index_select(0, events.channel[lo:hi]))
        Vm = alpha * V + gamma * I
        I = beta * I
        if prev_b is not None and prev_j is not None and prev_p is not None and prev_q is not None:
            wc = w_cat.index_select(0, prev_j)
            Vm.index_add_(0, prev_b, prev_q[:, None] * wc)
            I.index_add_(0, prev_b, prev_p[:, None] * wc)
        U = Vm[:, N:]
        if arg is not None:
            better = U > y
            y = torch.where(better, U, y)
            arg = torch.where(better, k, arg)
        else:
            y = y + wk[k] * U
        b_idx, j_idx = (Vm[:, :N] >= theta).nonzero(as_tuple=True)
        if b_idx.numel():
            flat = b_idx * M + j_idx
            v0 = V.view(-1).index_select(0, flat)
            ok = v0 < theta
            denom = Vm.view(-1).index_select(0, flat) - v0
            rho = torch.where(ok, (theta - v0) / torch.where(ok, denom, torch.ones_like(denom)),
                              torch.zeros_like(v0))
            s_k = (one - rho) * p.dt
            Vm.view(-1).index_add_(0, flat, -theta * torch.exp(s_k * -p.a))
            s_b.append(b_idx)
            s_j.append(j_idx)
            s_r.append(rho)
            s_d.append(denom)
            s_ok.append(ok)
            prev_p, prev_q = _delivery(rho, p)
        else:
            prev_p = prev_q = None
        prev_b, prev_j = b_idx, j_idx
        offsets.append(offsets[-1] + int(b_idx.numel()))
        V = Vm
        if trace is not None:
            trace.append((V[:, :N].clone(), I[:, :N].clone(), V[:, N:].clone()))
    empty_l = torch.zeros(0, dtype=torch.long, device=dev)
    empty_f = torch.zeros(0, dtype=dt_, device=dev)
    spikes = _Spikes(torch.cat(s_b) if s_b else empty_l, torch.cat(s_j) if s_j else empty_l,
                     torch.cat(s_r) if s_r else empty_f, torch.cat(s_d) if s_d else empty_f,
                     torch.cat(s_ok) if s_ok else torch.zeros(0, dtype=torch.bool, device=dev), offsets)
    counts = torch.zeros(B, N, device=dev, dtype=dt_)
    if spikes.sample.numel():
        counts.index_put_((spikes.sample, spikes.neuron), torch.ones_like(spikes.rho), accumulate=True)
    traces = None
    if trace is not None:
        traces = tuple(torch.stack([t[i] for t in trace]) for i in range(3))
    return y, counts, spikes, arg, traces


# ------------------------------------------------------------------------------------------ backward
def _backward(events: InputEvents, w_in: Tensor, w_rec: Tensor, w_out: Tensor, p: GridParams, spikes: _Spikes,
              arg: Optional[Tensor], g_y: Tensor, g_counts: Optional[Tensor]) -> Tuple[Tensor, Tensor, Tensor]:
    """The adjoint of :func:`_forward` (module docstring): ``(dL/dW_in, dL/dW_rec, dL/dW_out)``. Hidden and
    read-out costates share one ``[B, N + C]`` tensor, as the forward states do."""
    B, N, C = events.batch, w_in.shape[1], w_out.shape[1]
    dev, dt_ = w_in.device, w_in.dtype
    alpha, beta, gamma = (torch.tensor(v, device=dev, dtype=dt_) for v in p.step_factors())
    theta, a, dt = p.threshold, p.a, p.dt
    M = N + C
    w_cat = torch.cat([w_rec, w_out], 1)
    gV = torch.zeros(B, M, device=w_in.device, dtype=w_in.dtype)
    gI = torch.zeros_like(gV)
    d_in, d_cat = w_in.new_zeros(w_in.shape[0], M), torch.zeros_like(w_cat)
    flat_all = spikes.sample * M + spikes.neuron
    # every per-spike factor of the jumps depends on rho alone: computed once, vectorised over all spikes
    ok = spikes.ok.to(dt_)
    s_all = (1.0 - spikes.rho) * dt
    pp_all, qq_all = _delivery(spikes.rho, p)
    c_v = -theta * a * dt * torch.exp(-a * s_all) * ok            # g_rho = c_v lam_V + c_p dL/dp + c_q dL/dq + ...
    c_p = p.b * dt * pp_all * ok
    c_q = -dt * a * p.dphi(s_all) * ok
    safe = torch.where(spikes.ok, spikes.denom, torch.ones_like(spikes.denom))
    j_next, j_now = -spikes.rho / safe, (spikes.rho - 1.0) / safe  # d rho / d V^-_{k+1}, d rho / d V_k
    wk = p.weights(w_in.device, w_in.dtype) * p.dt
    # dL/dt_s of every spike from the count regulariser (pseudo-gradient, module docstring)
    # (times dt: its term of g_rho; zero where rho carries no gradient)
    g_t = -dt * g_counts[spikes.sample, spikes.neuron] * ok if g_counts is not None and spikes.sample.numel() \
        else None
    g_p: Optional[Tensor] = None        # dL/dp, dL/dq of the spikes of step k (filled at step k + 1)
    g_q: Optional[Tensor] = None
    off = spikes.offsets
    for k in range(p.steps - 1, -1, -1):
        # read-out forcing dL/dU_{k+1} (gV is a fresh tensor in every step: updated in place)
        if arg is None:
            gV[:, N:] += wk[k] * g_y
        else:
            gV[:, N:] += torch.where(arg == k, g_y, torch.zeros_like(g_y))
        # jumps at the spikes emitted in step k
        lo, hi = off[k], off[k + 1]
        gVm = gV
        if hi > lo:
            flat = flat_all[lo:hi]
            g_rho = c_v[lo:hi] * gV.view(-1).index_select(0, flat)
            if g_p is not None and g_q is not None:
                g_rho = g_rho + c_p[lo:hi] * g_p + c_q[lo:hi] * g_q
            if g_t is not None:
                g_rho = g_rho + g_t[lo:hi]
            gVm = gV.clone()
            gVm.view(-1).index_add_(0, flat, g_rho * j_next[lo:hi])
            gV_k = alpha * gVm
            gV_k.view(-1).index_add_(0, flat, g_rho * j_now[lo:hi])
        else:
            gV_k = alpha * gVm
        gA = gamma * gVm + beta * gI              # dL/dI_k^+ (after this step's inputs)
        # spikes of step k - 1 arrive in step k: weight gradients and their dL/dp, dL/dq
        plo, phi_ = (off[k - 1], off[k]) if k > 0 else (0, 0)
        if phi_ > plo:
            b_s, j_s = spikes.sample[plo:phi_], spikes.neuron[plo:phi_]
            pp, qq = pp_all[plo:phi_], qq_all[plo:phi_]
            gVm_b, gI_b = gVm.index_select(0, b_s), gI.index_select(0, b_s)
            d_cat.index_add_(0, j_s, qq[:, None] * gVm_b + pp[:, None] * gI_b)
            wc = w_cat.index_select(0, j_s)
            g_p = (wc * gI_b).sum(-1)
            g_q = (wc * gVm_b).sum(-1)
        else:
            g_p = g_q = None
        lo, hi = events.offsets[k], events.offsets[k + 1]
        if hi > lo:
            d_in.index_add_(0, events.channel[lo:hi], gA.index_select(0, events.sample[lo:hi]))
        gV, gI = gV_k, gA
    return d_in[:, :N].contiguous(), d_cat[:, :N].contiguous(), d_cat[:, N:].contiguous()


class _EventPropRSNN(torch.autograd.Function):
    @staticmethod
    def forward(ctx, w_in, w_rec, w_out, events, p):
        y, counts, spikes, arg, _ = _forward(events, w_in, w_rec, w_out, p)
        ctx.save_for_backward(w_in, w_rec, w_out, spikes.sample, spikes.neuron, spikes.rho, spikes.denom,
                              spikes.ok, *(() if arg is None else (arg,)))
        ctx.events, ctx.p, ctx.offsets = events, p, spikes.offsets
        ctx.set_materialize_grads(False)
        return y, counts

    @staticmethod
    def backward(ctx, g_y, g_counts):
        saved = ctx.saved_tensors
        w_in, w_rec, w_out = saved[:3]
        spikes = _Spikes(saved[3], saved[4], saved[5], saved[6], saved[7], ctx.offsets)
        arg = saved[8] if len(saved) > 8 else None
        if g_y is None:
            g_y = torch.zeros(ctx.events.batch, w_out.shape[1], dtype=w_out.dtype, device=w_out.device)
        d_in, d_rec, d_out = _backward(ctx.events, w_in, w_rec, w_out, ctx.p, spikes, arg, g_y, g_counts)
        return d_in, d_rec, d_out, None, None


def eventprop_rsnn(events: InputEvents, w_in: Tensor, w_rec: Tensor, w_out: Tensor,
                   params: GridParams) -> Tuple[Tensor, Tensor]:
    """``(y [B, C], spike counts [B, N])`` of the recurrent network on ``events``; differentiable in the three
    weights by the EventProp adjoint (the counts only through the regulariser's pseudo-gradient)."""
    _check(events, w_in, w_rec, w_out, params)
    return _EventPropRSNN.apply(w_in, w_rec, w_out, events, params)


def simulate_grid(events: InputEvents, w_in: Tensor, w_rec: Tensor, w_out: Tensor, params: GridParams) -> dict:
    """The forward pass with traces, for inspection and tests: ``{"y", "counts", "V", "I", "U" ([T, B, .] at
    t_1 .. t_T, after resets), "spike_sample", "spike_neuron", "spike_time" (ms)}``."""
    _check(events, w_in, w_rec, w_out, params)
    with torch.no_grad():
        y, counts, spikes, _, traces = _forward(events, w_in, w_rec, w_out, params, record=True)
    steps = torch.repeat_interleave(torch.arange(params.steps, device=w_in.device),
                                    torch.tensor(np.diff(spikes.offsets), device=w_in.device))
    return {"y": y, "counts": counts, "V": traces[0], "I": traces[1], "U": traces[2],
            "spike_sample": spikes.sample, "spike_neuron": spikes.neuron,
            "spike_time": (steps.to(spikes.rho.dtype) + spikes.rho) * params.dt}


# ------------------------------------------------------------------------------------------ losses
def eventprop_cross_entropy(y: Tensor, labels: Tensor) -> Tensor:
    """``mean_b -log softmax(y_b)[label_b]`` (Nowotny et al.'s L_sum / L_sum_exp / L_max with the read-out
    ``y`` of the matching kind)."""
    if y.dim() != 2 or labels.shape != y.shape[:1]:
        raise ValueError(f"y must be [B, C] and labels [B], got {tuple(y.shape)} and {tuple(labels.shape)}")
    return nn.functional.cross_entropy(y, labels)


def spike_count_regularizer(counts: Tensor, target: float, lambda_upper: float,
                            lambda_lower: Optional[float] = None) -> Tensor:
    """``sum_i (lambda_i / 2) (nbar_i - target)^2`` with ``nbar_i`` the batch-mean count of hidden neuron ``i``,
    ``lambda_i = lambda_upper`` where ``nbar_i > target`` else ``lambda_lower`` (default: the same)."""
    if counts.dim() != 2:
        raise ValueError(f"counts must be [B, N], got {tuple(counts.shape)}")
    lower = lambda_upper if lambda_lower is None else lambda_lower
    dev = counts.mean(0) - float(target)
    lam = torch.where(dev > 0, torch.full_like(dev, float(lambda_upper)), torch.full_like(dev, float(lower)))
    return 0.5 * (lam * dev * dev).sum()


class EventPropLoss:
    """Cross-entropy on the read-out plus the spike-count regulariser, as a trainer loss: ``(y [B, C], labels,
    [counts [B, N]]) -> LossResult`` (``lambda_upper = 0``: no regulariser)."""

    def __init__(self, target: float = 14.0, lambda_upper: float = 0.0, lambda_lower: Optional[float] = None):
        if target < 0 or lambda_upper < 0 or (lambda_lower is not None and lambda_lower < 0):
            raise ValueError("the regulariser's target and strengths must be >= 0")
        self.target, self.lambda_upper, self.lambda_lower = float(target), float(lambda_upper), lambda_lower

    def __call__(self, y: Tensor, labels: Tensor, hidden: Sequence[Tensor] = ()) -> LossResult:
        task = eventprop_cross_entropy(y, labels)
        reg = y.new_zeros(())
        if hidden and (self.lambda_upper > 0 or (self.lambda_lower or 0) > 0):
            reg = spike_count_regularizer(hidden[0], self.target, self.lambda_upper, self.lambda_lower)
        return LossResult(task + reg, task.detach(), reg.detach(), y.detach())


# ------------------------------------------------------------------------------------------ module
class EventPropRSNN(nn.Module):
    """``N_in -> N`` recurrent LIF ``-> C`` leaky-integrator read-out trained by grid EventProp (module
    docstring). ``forward(events) -> (y [B, C], [counts [B, N]])`` (the trainer's ``(output, hidden)``).

    Initial weights ``N(mean, std)``: ``W_in`` ``(in_mean, in_std)``, ``W_rec`` ``(0, rec_std)``, ``W_out``
    ``(0, out_std)`` (``recurrent=False``: no recurrent weights, a feed-forward hidden layer)."""

    def __init__(self, n_in: int, n_hidden: int, n_out: int, params: GridParams, *, recurrent: bool = True,
                 in_mean: float = 0.03, in_std: float = 0.01, rec_std: float = 0.02, out_std: float = 0.03,
                 generator: Optional[torch.Generator] = None, dtype: torch.dtype = torch.float32):
        super().__init__()
        if min(n_in, n_hidden, n_out) < 1:
            raise ValueError(f"layer sizes must be >= 1, got {n_in}, {n_hidden}, {n_out}")
        self.params, self.recurrent = params, bool(recurrent)
        self.sizes = (int(n_in), int(n_hidden), int(n_out))

        def normal(shape: Tuple[int, int], mean: float, std: float) -> Tensor:
            return torch.randn(shape, generator=generator, dtype=dtype) * std + mean

        self.w_in = nn.Parameter(normal((n_in, n_hidden), in_mean, in_std))
        self.w_out = nn.Parameter(normal((n_hidden, n_out), 0.0, out_std))
        if recurrent:
            self.w_rec = nn.Parameter(normal((n_hidden, n_hidden), 0.0, rec_std))
        else:
            self.register_buffer("w_rec", torch.zeros(n_hidden, n_hidden, dtype=dtype))

    def forward(self, events: InputEvents) -> Tuple[Tensor, List[Tensor]]:
        y, counts = eventprop_rsnn(events, self.w_in, self.w_rec, self.w_out, self.params)
        return y, [counts]

    def extra_repr(self) -> str:
        p = self.params
        return (f"sizes={list(self.sizes)}, recurrent={self.recurrent}, tau_mem={p.tau_mem} ms, "
                f"tau_syn={p.tau_syn} ms, dt={p.dt} ms, steps={p.steps}, readout={p.readout}")
