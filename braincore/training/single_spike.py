"""Single-spike LIF layers trained without a loop over time (Taylor, King & Harper 2023, "FastSNN").

Every unit of these layers fires **at most once** per sample. Because a unit is silent after its spike, its reset
never influences its output, so the whole trajectory can be computed as if there were no reset: a linear filter
of the input current, evaluated for all ``T`` steps at once, followed by a search for the first threshold
crossing, also done for all steps at once. No Python loop over time steps runs, forward or backward.

**Model** (discrete time, steps ``t = 0 .. T-1`` of ``dt``; dimensionless threshold units)::

    I_t  = W x_t + b                                    input current (dense: a matrix product; conv: conv2d,
                                                         the same weights at every step)
    v_t  = beta v_{t-1} + I_t,  v_{-1} = 0              free membrane (no reset)
         = sum_{s <= t} beta^(t - s) I_s                -> v = K I with the Toeplitz kernel K[t, s] = beta^(t-s)
    f_t  = H(v_t - theta)                               "faulty" spikes: every step above threshold
    z_t  = sum_{s <= t} (t - s + 1) f_s                 = cumsum(cumsum(f))_t  (the paper's convolution with
                                                         the kernel phi = [T, T-1, ..., 1])
    s_t  = 1 if z_t == 1 else 0                         the first crossing only: z_t = 1 exactly when f_t = 1
                                                         and f_s = 0 for all s < t

``beta = exp(-dt / tau)`` is the per-step decay (``tau`` the membrane time constant; ``beta = 1``: a non-leaky
integrator), a scalar or one per unit ("heterogeneous", the paper's default), learnable (clamped to ``[0, 1]``,
as in the paper). ``theta`` is the threshold (1 in the paper). ``H(x) = 1`` for ``x >= 0`` (braincore's
convention; the paper's code uses ``x > 0``, which differs only on exact ties). Units: ``x``, ``I``, ``v`` and
``theta`` are dimensionless (the threshold is 1), time is counted in steps of ``dt``.

The same unit driven by a constant current is the textbook LIF: with ``I_t = (1 - beta) R I`` (exponential
integration of ``tau dv/dt = -v + R I``) the free membrane is ``v_t = R I (1 - beta^(t+1))``, i.e. the exact
continuous solution at ``(t + 1) dt``, so the first crossing lies within one step of ``t* = -tau ln(1 - theta /
(R I))`` (``tests/test_single_spike.py``).

**Gradient.** ``H`` gets a surrogate derivative ``sigma'(v - theta)`` (default: the fast sigmoid
``1 / (1 + k |x|)^2`` with ``k = 10``, the paper code's ``scale``). Two ways through the first-crossing search:

- ``gradient="paper"`` (default; the paper's ``MethodFastNaive.g``): ``s = z - stopgrad(z - [z == 1])``, a
  straight-through identity from ``z`` to ``s``, so ``dL/df_s = sum_{t >= s} (t - s + 1) dL/ds_t`` and
  ``dL/dv_t = sigma'(v_t - theta) dL/df_t``. Every step carries a gradient, also in units that never spike
  (the paper's point about robustness to silent networks).
- ``gradient="first"``: ``s_t = f_t m_t`` with the mask ``m_t = [no crossing before t]`` held constant, so
  ``dL/dv_t = sigma'(v_t - theta) dL/ds_t`` up to and including the first spike and 0 after it.

The backward of the kernel product is its transpose, ``dL/dI = K^T dL/dv``, and ``dL/dbeta`` comes from the
kernel's entries (``d beta^n / d beta = n beta^(n-1)``), by autograd.

**Cost.** The filter is one ``[T, T] x [T, B N]`` matrix product (scalar ``beta``) or ``N`` batched
``[T, T] x [T, B]`` products (per-unit ``beta``): ``O(T^2 B N)`` multiply-adds, but parallel over time; the
first crossing is one reduction over time of ``uint8`` scores (:func:`first_spike_scores`), and the ``"paper"``
backward one more ``[T, T]`` product (the cumulative sums written as a triangular matrix). A fused multi-spike
LIF layer (:mod:`braincore.training.fused_lif`) needs ``O(T B N)`` work, but in ``T`` sequential steps; which is
faster depends on the machine (``benchmarks/bench_fastsnn.py`` measures it).

**Networks** (:func:`build_network`, :func:`mlp`, :func:`cnn`): single-spike dense and conv layers (conv layers
optionally followed by a max pool over space at every step, as in the paper, whose output may then carry more
than one spike per pooled position; the units themselves still fire at most once), then a non-spiking read-out:
leaky integrators ``y_t = beta_o y_{t-1} + W s_t + b`` (:class:`LeakyIntegratorReadout`, learnable per-unit
decay), whose membrane is summed (MLP) or maximised (CNN) over time and trained with softmax cross-entropy
(:class:`SingleSpikeLoss`). The paper's networks: MNIST MLP 784-800-10 (``tau = 10`` steps hidden, 20 read-out,
``T = 100``, sum over time); CNN conv5x5(32)-pool2-conv5x5(64)-pool2-dense(1000)-10 (``beta = 1`` everywhere,
``T = 8``, max over time), both with the paper's single-spike latency input (each pixel ``x in [0, 1]`` spikes
once, at step ``floor((1 - x)(T - 1))``: :func:`latency_code`).

**Source and what was followed.** L. Taylor, A. King and N. Harper, "Robust and accelerated single-spike spiking
neural network training with applicability to challenging temporal tasks", arXiv:2205.15286 (2022; ICLR 2023
submission). Followed: the equations above as implemented in the authors' code (github.com/webstorms/Block,
``block/nn/methods.py`` ``MethodFastNaive``: the no-reset membrane by a convolution with ``beta^k``, the
``phi`` convolution, the ``g`` straight-through; ``block/nn/surrogate.py``: fast sigmoid, scale 10 in the layers;
``block/models``: the architectures, per-unit learnable ``beta`` clamped to ``[0, 1]``, initial weights uniform in
``+-sqrt(1 / fan)`` with ``fan = n_in`` (dense) or ``k^2`` (conv: the kernel area only, not the channels), zero
biases, a non-spiking no-reset read-out summed or maxed over time, cross-entropy; ``block/datasets/transforms.py``:
the latency code). The double cumulative sum and the ``uint8`` first-crossing search are this module's equivalent
of the paper's convolutions (same values, same gradients). Not confirmed: the paper's text itself (only its
abstract and results table were available: MNIST MLP 97.91 %, CNN 99.3 %, up to 13.98x training speedup, up to
81 % fewer spikes), so any detail stated only in the text (and a 95.7 % spike reduction quoted elsewhere) could
not be checked; the paper's training also used data augmentation (random perspective, crops, noise) and a
step schedule that reloads the best model at each decay, which are not reproduced here.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, NamedTuple, Optional, Sequence, Union

import torch
from torch import nn
from torch.nn import functional as F

from ..surrogate import FastSigmoid, Surrogate, get_surrogate
from .fused_lif import _surrogate_derivative
from .layers import _input_current
from .losses import LossResult

Tensor = torch.Tensor

__all__ = ["GRADIENTS", "REDUCTIONS", "decay_kernel", "leaky_filter", "first_spike_scores", "single_spike",
           "single_spike_sequence", "single_spike_reference", "latency_code", "SingleSpikeDense",
           "SingleSpikeConv2d", "LeakyIntegratorReadout", "SingleSpikeNetwork", "SingleSpikeLoss", "build_network",
           "mlp", "cnn", "count_spikes", "paper_surrogate"]

#: the two gradients through the first-crossing search (module docstring)
GRADIENTS = ("paper", "first")
#: reductions of the read-out membrane over time
REDUCTIONS = ("sum", "max", "mean")


def paper_surrogate() -> Surrogate:
    """The paper code's surrogate: fast sigmoid ``1 / (1 + 10 |x|)^2``."""
    return FastSigmoid(10.0)


# ------------------------------------------------------------------------------------------ the filter
def decay_kernel(beta: Tensor, steps: int) -> Tensor:
    """The lower-triangular Toeplitz kernel ``K[..., t, s] = beta^(t - s)`` for ``s <= t`` (0 above the diagonal),
    shape ``[*beta.shape, T, T]``; differentiable in ``beta`` (also at ``beta = 0``: the diagonal is the constant
    1 and only lags >= 1 are raised to a power)."""
    T = int(steps)
    t = torch.arange(T, device=beta.device)
    lags = (t[:, None] - t[None, :]).to(beta.dtype)
    positive = lags > 0
    safe = torch.where(positive, lags, torch.ones((), dtype=beta.dtype, device=beta.device))
    powers = torch.pow(beta[..., None, None], safe)
    eye = torch.eye(T, dtype=beta.dtype, device=beta.device)
    return torch.where(positive, powers, eye)


def _filter_with(K: Tensor, x: Tensor) -> Tensor:
    """``K x`` over the first dimension of ``x [T, B, *units]``: one product with ``K [T, T]``, or ``N`` batched
    products with ``K [N, T, T]`` (one kernel per unit)."""
    T = x.shape[0]
    if K.dim() == 2:
        return (K @ x.reshape(T, -1)).reshape(x.shape)
    B, N = x.shape[1], K.shape[0]
    # [T, B, N] -> [N, T, B] is the 2-D transpose of [T B, N]: one blocked copy each way (bmm would otherwise copy
    # the strided batch matrix by matrix)
    flat = x.reshape(T * B, N).t().contiguous().reshape(N, T, B)
    return torch.bmm(K, flat).reshape(N, T * B).t().contiguous().reshape(x.shape)


class _LeakyFilter(torch.autograd.Function):
    """``v = K(beta) I``; backward by the adjoint of the recursion: ``dL/dI = K^T dL/dv`` and
    ``dL/dbeta = sum_{t >= 1} (dL/dI_t) v_{t-1}`` (no ``[N, T, T]`` kernel gradient)."""

    @staticmethod
    def forward(ctx, current, beta):  # type: ignore[override]
        T = current.shape[0]
        units = tuple(current.shape[2:])
        b = beta.reshape(()) if beta.numel() == 1 else beta.expand(units).reshape(-1)
        K = decay_kernel(b, T)
        v = _filter_with(K, current)
        ctx.save_for_backward(K, v, beta)
        return v

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        K, v, beta = ctx.saved_tensors
        g_current = _filter_with(K.transpose(-1, -2), grad.contiguous())
        g_beta = None
        if ctx.needs_input_grad[1]:
            prod = (g_current[1:] * v[:-1]).sum(dim=(0, 1))              # [*units]
            g_beta = prod.sum() if beta.numel() == 1 else prod.sum_to_size(beta.shape)
            g_beta = g_beta.reshape(beta.shape)
        return g_current, g_beta


def leaky_filter(current: Tensor, beta: Tensor) -> Tensor:
    """``v_t = beta v_{t-1} + I_t`` (``v_{-1} = 0``) over the first dimension of ``current [T, B, *units]``, for all
    ``t`` at once: ``v = K I`` with :func:`decay_kernel`. ``beta``: a scalar (one ``[T, T] x [T, B N]`` product) or a
    tensor broadcastable to the unit shape (one kernel per unit, ``N`` batched ``[T, T] x [T, B]`` products).
    Differentiable in both (backward: the adjoint recursion, see :class:`_LeakyFilter`)."""
    if current.dim() < 2:
        raise ValueError(f"leaky_filter: current must be [T, B, ...], got {tuple(current.shape)}")
    if beta.numel() != 1:
        try:
            torch.broadcast_shapes(tuple(beta.shape), tuple(current.shape[2:]))
        except RuntimeError:
            raise ValueError(f"leaky_filter: beta of shape {tuple(beta.shape)} does not broadcast to the units "
                             f"{tuple(current.shape[2:])}") from None
    return _LeakyFilter.apply(current, beta)


# ------------------------------------------------------------------------------------------ the first crossing
def first_spike_scores(above: Tensor) -> tuple[Tensor, Tensor]:
    """``(scores, best)`` for a boolean ``above [T, ...]``: ``scores[t] = (T - t) above[t]`` (integers, ``uint8`` for
    ``T <= 255``) and ``best = max_t scores[t]``, so a unit's first crossing is at ``t = T - best`` and ``best = 0``
    means it never crosses. One reduction over time, no loop."""
    T = above.shape[0]
    dtype = torch.uint8 if T <= 255 else (torch.int16 if T <= 32767 else torch.int32)
    weights = torch.arange(T, 0, -1, device=above.device).to(dtype).reshape((T,) + (1,) * (above.dim() - 1))
    scores = above.to(dtype) * weights
    return scores, scores.amax(dim=0)


def _paper_backward_matrix(T: int, dtype: torch.dtype, device) -> Tensor:
    """``P^T`` with ``P[t, s] = t - s + 1`` (``s <= t``): ``dL/df = P^T dL/ds``, the backward of
    ``z = cumsum(cumsum(f))`` written as one product."""
    t = torch.arange(T, device=device)
    lags = (t[:, None] - t[None, :]).to(dtype)
    P = torch.where(lags >= 0, lags + 1, torch.zeros((), dtype=dtype, device=device))
    return P.t().contiguous()


class _SingleSpike(torch.autograd.Function):
    """Membrane ``v [T, ...]`` -> first-crossing spikes; backward as in the module docstring."""

    @staticmethod
    def forward(ctx, v, theta, surrogate, gradient):  # type: ignore[override]
        scores, best = first_spike_scores(v >= theta)
        spikes = ((scores == best.unsqueeze(0)) & (best > 0).unsqueeze(0)).to(v.dtype)
        ctx.save_for_backward(v, best)
        ctx.theta, ctx.surrogate, ctx.gradient = theta, surrogate, gradient
        return spikes

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        v, best = ctx.saved_tensors
        T = v.shape[0]
        sig = _surrogate_derivative(ctx.surrogate, v - ctx.theta)     # a fresh temporary, computed in place
        if ctx.gradient == "paper":
            P_t = _paper_backward_matrix(T, grad.dtype, grad.device)
            g_f = (P_t @ grad.reshape(T, -1)).reshape(grad.shape)
            return sig.mul_(g_f), None, None, None
        weights = torch.arange(T, 0, -1, device=v.device).to(best.dtype).reshape((T,) + (1,) * (v.dim() - 1))
        upto = weights >= best.unsqueeze(0)            # t <= first crossing (every t without a crossing)
        return sig.mul_(grad).mul_(upto), None, None, None


def single_spike(v: Tensor, theta: float = 1.0, surrogate: "str | Surrogate | None" = None,
                 gradient: str = "paper") -> Tensor:
    """The first-crossing spikes ``s [T, ...]`` of a free membrane ``v [T, ...]`` (module docstring)."""
    if gradient not in GRADIENTS:
        raise ValueError(f"unknown gradient {gradient!r}; choose one of {', '.join(GRADIENTS)}")
    if v.dim() < 1 or v.shape[0] < 1:
        raise ValueError(f"single_spike: v must be [T, ...] with T >= 1, got {tuple(v.shape)}")
    sur = paper_surrogate() if surrogate is None else get_surrogate(surrogate)
    return _SingleSpike.apply(v, float(theta), sur, gradient)


def _as_beta(beta: Union[float, Tensor], like: Tensor) -> Tensor:
    if isinstance(beta, Tensor):
        return beta.to(dtype=like.dtype, device=like.device)
    return torch.tensor(float(beta), dtype=like.dtype, device=like.device)


def single_spike_sequence(current: Tensor, beta: Union[float, Tensor], theta: float = 1.0,
                          surrogate: "str | Surrogate | None" = None, gradient: str = "paper") -> tuple[Tensor, Tensor]:
    """``(spikes, v)`` of single-spike LIF units driven by ``current [T, B, *units]``, both ``[T, B, *units]``,
    computed without a loop over time (module docstring). ``beta``: float or tensor (scalar or broadcastable to
    the unit shape, may require grad); ``v`` is the free (no-reset) membrane."""
    if current.dim() < 2:
        raise ValueError(f"current must be [T, B, ...], got {tuple(current.shape)}")
    v = leaky_filter(current, _as_beta(beta, current))
    return single_spike(v, theta, surrogate, gradient), v


def single_spike_reference(current: Tensor, beta: Union[float, Tensor], theta: float = 1.0,
                           surrogate: "str | Surrogate | None" = None,
                           gradient: str = "paper") -> tuple[Tensor, Tensor]:
    """The same model stepped through time with plain autograd (one graph node per operation and step): the
    reference :func:`single_spike_sequence` is tested against, and a readable statement of it."""
    if gradient not in GRADIENTS:
        raise ValueError(f"unknown gradient {gradient!r}; choose one of {', '.join(GRADIENTS)}")
    sur = paper_surrogate() if surrogate is None else get_surrogate(surrogate)
    b = _as_beta(beta, current)
    v = torch.zeros_like(current[0])
    crossed = torch.zeros_like(current[0])      # c_t = sum_{s <= t} f_s
    z = torch.zeros_like(current[0])            # z_t = sum_{s <= t} c_s
    spikes, trace = [], []
    for t in range(current.shape[0]):
        v = b * v + current[t]
        f = sur(v - theta) if v.requires_grad else (v >= theta).to(v.dtype)
        if gradient == "paper":
            crossed = crossed + f
            z = z + crossed
            s = z - (z - (z == 1).to(z.dtype)).detach()
        else:
            s = f * (crossed == 0).to(f.dtype)   # no crossing before t (a constant mask)
            crossed = crossed + f.detach()
        spikes.append(s)
        trace.append(v)
    return torch.stack(spikes), torch.stack(trace)


# ------------------------------------------------------------------------------------------ input code
def latency_code(x: Tensor, steps: int) -> Tensor:
    """The paper's single-spike input: every element of ``x [B, ...]`` (intensities in ``[0, 1]``) spikes exactly
    once, at step ``floor((1 - x)(T - 1))`` (``x = 1`` at step 0, ``x = 0`` at the last step). Returns
    ``[T, B, ...]`` float spikes."""
    T = int(steps)
    if T < 1:
        raise ValueError(f"latency_code: steps must be >= 1, got {steps}")
    k = torch.floor((1.0 - x.clamp(0.0, 1.0)) * (T - 1)).long().clamp_(0, T - 1)
    out = torch.zeros((T,) + tuple(x.shape), dtype=torch.float32, device=x.device)
    out.scatter_(0, k.unsqueeze(0), 1.0)
    return out


# ------------------------------------------------------------------------------------------ layers
class _Decay(nn.Module):
    """A per-step decay ``beta = exp(-1 / tau)`` (``tau`` in steps; ``leaky=False``: ``beta = 1``), a scalar or one
    per unit of ``shape``, learnable as a raw parameter clamped to ``[0, 1]`` (the paper's choice)."""

    def _setup_decay(self, tau: float, leaky: bool, learn_tau: bool, per_unit: bool, shape: tuple) -> None:
        if leaky and not tau > 0:
            raise ValueError(f"tau must be > 0 steps, got {tau}")
        value = math.exp(-1.0 / tau) if leaky else 1.0
        raw = torch.full(tuple(shape) if per_unit else (), value)
        if learn_tau:
            self.beta_raw = nn.Parameter(raw)
        else:
            self.register_buffer("beta_raw", raw)

    @property
    def beta(self) -> Tensor:
        return self.beta_raw.clamp(0.0, 1.0)


class _SingleSpikeLayer(_Decay):
    def _setup(self, units: tuple, tau: float, leaky: bool, learn_tau: bool, per_unit: bool, threshold: float,
               surrogate, gradient: str) -> None:
        if not threshold > 0:
            raise ValueError(f"threshold must be > 0, got {threshold}")
        if gradient not in GRADIENTS:
            raise ValueError(f"unknown gradient {gradient!r}; choose one of {', '.join(GRADIENTS)}")
        self.units, self.threshold, self.gradient = tuple(units), float(threshold), gradient
        self.surrogate = paper_surrogate() if surrogate is None else get_surrogate(surrogate)
        self._setup_decay(tau, leaky, learn_tau, per_unit, units)

    def _spikes(self, current: Tensor) -> Tensor:
        v = leaky_filter(current, self.beta)
        return single_spike(v, self.threshold, self.surrogate, self.gradient)

    def output(self, spikes: Tensor) -> Tensor:
        """What the next layer receives (the spikes; conv layers pool them)."""
        return spikes


class SingleSpikeDense(_SingleSpikeLayer):
    """Dense single-spike LIF layer: ``x [T, B, n_in]`` (trailing dims are flattened) -> spikes ``[T, B, n_out]``.

    ``tau`` in steps (``leaky=False``: ``beta = 1``), ``learn_tau`` and ``per_unit`` (one decay per unit) as in the
    paper; weights uniform in ``+-init_gain / sqrt(n_in)``, zero bias."""

    def __init__(self, n_in: int, n_out: int, *, tau: float = 10.0, leaky: bool = True, learn_tau: bool = True,
                 per_unit: bool = True, threshold: float = 1.0, surrogate: "str | Surrogate | None" = None,
                 gradient: str = "paper", init_gain: float = 1.0, bias: bool = True,
                 generator: Optional[torch.Generator] = None):
        super().__init__()
        if n_in < 1 or n_out < 1:
            raise ValueError(f"SingleSpikeDense sizes must be >= 1, got n_in={n_in}, n_out={n_out}")
        self.n_in, self.n_out = int(n_in), int(n_out)
        bound = init_gain / math.sqrt(n_in)
        self.weight = nn.Parameter(torch.empty(n_out, n_in).uniform_(-bound, bound, generator=generator))
        self.bias = nn.Parameter(torch.zeros(n_out)) if bias else None
        self._setup((n_out,), tau, leaky, learn_tau, per_unit, threshold, surrogate, gradient)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() > 3:
            x = x.flatten(2)
        if x.dim() != 3 or x.shape[-1] != self.n_in:
            raise ValueError(f"SingleSpikeDense: input must be [T, B, {self.n_in}], got {tuple(x.shape)}")
        return self._spikes(_input_current(x, self.weight, self.bias, None))

    def extra_repr(self) -> str:
        return f"{self.n_in} -> {self.n_out}, per_unit_beta={self.beta_raw.dim() > 0}, gradient={self.gradient}"


class SingleSpikeConv2d(_SingleSpikeLayer):
    """Convolutional single-spike LIF layer: ``x [T, B, C, H, W]`` -> spikes ``[T, B, C', H', W']`` (the same kernel
    at every step: one ``conv2d`` over all ``T B`` frames), then optionally a ``pool x pool`` max pool at every
    step for the next layer (:meth:`output`). ``in_shape = (C, H, W)`` fixes the unit shape (per-unit decays).
    Weights uniform in ``+-init_gain / kernel`` (the paper's bound ``sqrt(1 / k^2)``), zero bias."""

    def __init__(self, in_shape: Sequence[int], channels: int, kernel: int = 5, *, stride: int = 1, padding: int = 0,
                 pool: int = 1, tau: float = 10.0, leaky: bool = True, learn_tau: bool = True, per_unit: bool = True,
                 threshold: float = 1.0, surrogate: "str | Surrogate | None" = None, gradient: str = "paper",
                 init_gain: float = 1.0, bias: bool = True, generator: Optional[torch.Generator] = None):
        super().__init__()
        if len(in_shape) != 3:
            raise ValueError(f"SingleSpikeConv2d: in_shape must be (C, H, W), got {tuple(in_shape)}")
        C, H, W = (int(n) for n in in_shape)
        if min(C, H, W, channels, kernel, stride, pool) < 1 or padding < 0:
            raise ValueError("SingleSpikeConv2d: sizes, kernel, stride and pool must be >= 1 and padding >= 0")
        h, w = (H + 2 * padding - kernel) // stride + 1, (W + 2 * padding - kernel) // stride + 1
        if h < 1 or w < 1:
            raise ValueError(f"SingleSpikeConv2d: a {kernel}x{kernel} kernel does not fit a {H}x{W} input "
                             f"(padding {padding})")
        if pool > 1 and (h < pool or w < pool):
            raise ValueError(f"SingleSpikeConv2d: a {pool}x{pool} pool does not fit the {h}x{w} output")
        self.in_shape, self.kernel, self.stride, self.padding, self.pool = (C, H, W), kernel, stride, padding, pool
        bound = init_gain / kernel
        self.weight = nn.Parameter(torch.empty(channels, C, kernel, kernel).uniform_(-bound, bound,
                                                                                      generator=generator))
        self.bias = nn.Parameter(torch.zeros(channels)) if bias else None
        self._setup((channels, h, w), tau, leaky, learn_tau, per_unit, threshold, surrogate, gradient)

    @property
    def out_shape(self) -> tuple:
        """The shape ``(C', H'', W'')`` of :meth:`output` (after the pool)."""
        c, h, w = self.units
        return (c, h // self.pool, w // self.pool) if self.pool > 1 else (c, h, w)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 5 or tuple(x.shape[2:]) != self.in_shape:
            raise ValueError(f"SingleSpikeConv2d: input must be [T, B, {', '.join(map(str, self.in_shape))}], got "
                             f"{tuple(x.shape)}")
        T, B = x.shape[:2]
        current = F.conv2d(x.reshape(T * B, *self.in_shape), self.weight, self.bias, self.stride, self.padding)
        return self._spikes(current.reshape(T, B, *self.units))

    def output(self, spikes: Tensor) -> Tensor:
        if self.pool == 1:
            return spikes
        T, B = spikes.shape[:2]
        pooled = F.max_pool2d(spikes.reshape(T * B, *self.units), self.pool)
        return pooled.reshape(T, B, *pooled.shape[1:])

    def extra_repr(self) -> str:
        return (f"{self.in_shape} -> {self.units}, kernel={self.kernel}, padding={self.padding}, pool={self.pool}, "
                f"gradient={self.gradient}")


class LeakyIntegratorReadout(_Decay):
    """Non-spiking read-out ``y_t = beta_o y_{t-1} + W s_t + b`` -> ``[T, B, n_out]`` (the paper's no-reset read-out
    membrane), computed with :func:`leaky_filter`; per-unit learnable decay by default."""

    def __init__(self, n_in: int, n_out: int, *, tau: float = 20.0, leaky: bool = True, learn_tau: bool = True,
                 per_unit: bool = True, init_gain: float = 1.0, generator: Optional[torch.Generator] = None):
        super().__init__()
        self.n_in, self.n_out = int(n_in), int(n_out)
        bound = init_gain / math.sqrt(n_in)
        self.weight = nn.Parameter(torch.empty(n_out, n_in).uniform_(-bound, bound, generator=generator))
        self.bias = nn.Parameter(torch.zeros(n_out))
        self._setup_decay(tau, leaky, learn_tau, per_unit, (n_out,))

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() > 3:
            x = x.flatten(2)
        if x.dim() != 3 or x.shape[-1] != self.n_in:
            raise ValueError(f"LeakyIntegratorReadout: input must be [T, B, {self.n_in}], got {tuple(x.shape)}")
        return leaky_filter(_input_current(x, self.weight, self.bias, None), self.beta)

    def extra_repr(self) -> str:
        return f"{self.n_in} -> {self.n_out}"


class NetworkOutput(NamedTuple):
    """``output [T, B, C]`` (read-out membrane) and ``hidden``: the spikes of every hidden layer (before pooling)."""

    output: Tensor
    hidden: list


class SingleSpikeNetwork(nn.Module):
    """Single-spike layers in sequence, then a read-out: ``x [T, B, ...] -> (output, hidden)``, the interface of
    :class:`braincore.training.trainer.Trainer`."""

    def __init__(self, layers: Sequence[nn.Module], readout: nn.Module):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.readout = readout

    def forward(self, x: Tensor) -> NetworkOutput:
        hidden = []
        for layer in self.layers:
            spikes = layer(x)
            hidden.append(spikes)
            x = layer.output(spikes)
        return NetworkOutput(self.readout(x), hidden)


def _layer_options(spec: Mapping[str, Any], allowed: set, where: str) -> dict:
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise ValueError(f"{where}: unknown option(s) {', '.join(unknown)} (expected {', '.join(sorted(allowed))})")
    return {k: v for k, v in spec.items() if v is not None}


_COMMON = {"tau", "leaky", "learn_tau", "per_unit", "init_gain", "bias"}


def build_network(in_shape: Sequence[int], layers: Sequence[Mapping[str, Any]], n_out: int,
                  readout: Optional[Mapping[str, Any]] = None, *, threshold: float = 1.0,
                  surrogate: "str | Surrogate | None" = None, gradient: str = "paper",
                  generator: Optional[torch.Generator] = None) -> SingleSpikeNetwork:
    """A :class:`SingleSpikeNetwork` from layer descriptions.

    ``in_shape``: ``(n,)`` for flat inputs or ``(C, H, W)`` for images (needed by conv layers). Layers:
    ``{"kind": "dense", "size": n, ...}`` or ``{"kind": "conv", "channels": c, "kernel": 5, "padding": 2,
    "stride": 1, "pool": 2, ...}``, each with optional ``tau`` (steps), ``leaky``, ``learn_tau``, ``per_unit``,
    ``init_gain``, ``bias``; conv layers must come before dense ones. ``readout``: ``{"tau", "leaky", "learn_tau",
    "per_unit", "init_gain"}`` of :class:`LeakyIntegratorReadout`.
    """
    if not layers:
        raise ValueError("build_network: at least one hidden layer is needed")
    shape = tuple(int(n) for n in in_shape)
    shared = {"threshold": threshold, "surrogate": surrogate, "gradient": gradient, "generator": generator}
    built: list[nn.Module] = []
    for i, spec in enumerate(layers):
        spec = dict(spec)
        kind = spec.pop("kind", "dense")
        where = f"layers[{i}] ({kind})"
        if kind == "conv":
            if len(shape) != 3:
                raise ValueError(f"{where}: a conv layer needs image inputs (C, H, W), got {shape} (conv layers "
                                 f"come before dense ones)")
            opts = _layer_options(spec, _COMMON | {"channels", "kernel", "stride", "padding", "pool"}, where)
            if "channels" not in opts:
                raise ValueError(f"{where}: 'channels' is required")
            layer: Any = SingleSpikeConv2d(shape, opts.pop("channels"), **opts, **shared)
            shape = layer.out_shape
        elif kind == "dense":
            opts = _layer_options(spec, _COMMON | {"size"}, where)
            if "size" not in opts:
                raise ValueError(f"{where}: 'size' is required")
            layer = SingleSpikeDense(int(math.prod(shape)), opts.pop("size"), **opts, **shared)
            shape = (layer.n_out,)
        else:
            raise ValueError(f"{where}: unknown layer kind {kind!r} (expected dense or conv)")
        built.append(layer)
    opts = _layer_options(dict(readout or {}), {"tau", "leaky", "learn_tau", "per_unit", "init_gain"}, "readout")
    return SingleSpikeNetwork(built, LeakyIntegratorReadout(int(math.prod(shape)), n_out, **opts,
                                                            generator=generator))


def mlp(n_in: int = 784, hidden: Sequence[int] = (800,), n_out: int = 10, *, tau: float = 10.0,
        readout_tau: float = 20.0, **options: Any) -> SingleSpikeNetwork:
    """The paper's MLP (784-800-10, ``tau`` 10 steps hidden and 20 read-out, per-unit learnable decays)."""
    return build_network((n_in,), [{"kind": "dense", "size": n, "tau": tau} for n in hidden], n_out,
                         {"tau": readout_tau}, **options)


def cnn(in_shape: Sequence[int] = (1, 28, 28), channels: Sequence[int] = (32, 64), dense: int = 1000,
        n_out: int = 10, **options: Any) -> SingleSpikeNetwork:
    """The paper's CNN: 5x5 convs (padding 2) each followed by a 2x2 max pool, a dense layer, a read-out; no leak
    (``beta = 1``, learnable) anywhere."""
    layers: list[dict] = [{"kind": "conv", "channels": c, "kernel": 5, "padding": 2, "pool": 2, "leaky": False}
                          for c in channels]
    layers.append({"kind": "dense", "size": dense, "leaky": False})
    return build_network(in_shape, layers, n_out, {"leaky": False}, **options)


# ------------------------------------------------------------------------------------------ loss and counts
class SingleSpikeLoss:
    """Cross-entropy of the read-out membrane ``[T, B, C]`` reduced over time by ``sum`` (the paper's MLP), ``max``
    (its CNN) or ``mean``; a callable ``(output, labels, hidden) -> LossResult`` for the trainer."""

    def __init__(self, reduce: str = "sum", label_smoothing: float = 0.0):
        if reduce not in REDUCTIONS:
            raise ValueError(f"unknown reduction {reduce!r}; choose one of {', '.join(REDUCTIONS)}")
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must lie in [0, 1), got {label_smoothing}")
        self.reduce, self.label_smoothing = reduce, float(label_smoothing)

    def scores(self, output: Tensor) -> Tensor:
        if self.reduce == "sum":
            return output.sum(dim=0)
        return output.amax(dim=0) if self.reduce == "max" else output.mean(dim=0)

    def __call__(self, output: Tensor, labels: Tensor, hidden: Sequence[Tensor] = ()) -> LossResult:
        if output.dim() != 3 or labels.dim() != 1 or labels.shape[0] != output.shape[1]:
            raise ValueError(f"SingleSpikeLoss: need output [T, B, C] and labels [B], got {tuple(output.shape)} and "
                             f"{tuple(labels.shape)}")
        scores = self.scores(output)
        task = F.cross_entropy(scores, labels, label_smoothing=self.label_smoothing)
        return LossResult(task, task.detach(), task.new_zeros(()), scores.detach())

    def __repr__(self) -> str:
        return f"SingleSpikeLoss(reduce={self.reduce!r})"


@torch.no_grad()
def count_spikes(model: nn.Module, batches, transform=None) -> dict:
    """Spikes of the hidden layers of ``model`` (any model returning ``(output, hidden)``) over ``batches`` (an
    iterable of input batches, or of ``(x, labels)`` pairs), after ``transform(x)`` when given: ``{"per_sample":
    mean spikes per sample of all hidden layers together, "per_layer": [...], "units": [...], "max_per_unit": the
    most spikes any unit fired for one sample, "active_fraction": [fraction of (unit, sample) pairs with a spike,
    per layer], "samples"}``. The model is put in eval mode for the count and restored after."""
    was_training = model.training
    model.eval()
    per_layer: list[float] = []
    active: list[float] = []
    units: list[int] = []
    max_unit, samples = 0.0, 0
    try:
        for item in batches:
            x = item[0] if isinstance(item, (tuple, list)) else item
            inputs = transform(x) if transform is not None else x
            _, hidden = model(inputs)
            if not per_layer:
                per_layer, active = [0.0] * len(hidden), [0.0] * len(hidden)
                units = [int(math.prod(h.shape[2:])) for h in hidden]
            B = int(hidden[0].shape[1]) if hidden else 0
            for i, h in enumerate(hidden):
                count = h.sum(dim=0)                        # [B, *units]
                per_layer[i] += float(count.sum())
                active[i] += float((count > 0).sum())
                max_unit = max(max_unit, float(count.max()))
            samples += B
    finally:
        model.train(was_training)
    if samples == 0:
        raise ValueError("count_spikes: no samples")
    return {"per_sample": sum(per_layer) / samples, "per_layer": [c / samples for c in per_layer], "units": units,
            "max_per_unit": max_unit,
            "active_fraction": [a / (samples * n) for a, n in zip(active, units)], "samples": samples}
