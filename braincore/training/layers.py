"""Trainable spiking layers over ``[T, B, N]`` sequences, built on the fused LIF and adaptive-LIF nodes.

:class:`LIFLayer`: ``x [T, B, n_in] -> spikes [T, B, n_out]``. The input current of every step comes from one
matrix product over all ``T x B`` rows before the time loop (``I = x W^T + b``); only the recurrence is stepped,
inside :func:`braincore.training.fused_lif.lif_sequence` (equations there). Options:

- ``recurrent``: recurrent weights ``V [n_out, n_out]`` (spikes of step ``t - 1`` drive step ``t``);
- ``tau_m`` (in steps: ``beta = exp(-1 / tau_m)``) and ``learn_tau``: a per-unit learnable decay, kept in
  ``(0, 1)`` by a sigmoid of a free parameter as in PLIF (Fang et al. 2021);
- ``threshold`` and ``learn_threshold`` (per unit, learnable);
- ``dropout``: one Bernoulli mask per sample and unit, held constant over the ``T`` steps (a dropped unit is
  silent for the whole sequence; survivors scaled by ``1 / (1 - p)``), training only;
- weights initialised uniformly in ``+-sqrt(1 / n_in)`` (PyTorch's Linear default) times ``init_gain``; the
  recurrent weights in ``+-sqrt(1 / n_out)`` times ``recurrent_gain``.

:class:`ALIFLayer`: the same options for adaptive LIF units (:func:`braincore.training.fused_alif.alif_sequence`,
Bellec et al. 2018; Yin, Corradi & Bohté 2021): ``tau_m`` and ``tau_adapt`` (in steps; ``beta = exp(-1 / tau_m)``,
``rho = exp(-1 / tau_adapt)``), each learnable per unit through a sigmoid-parameterised decay (``learn_tau``,
``learn_tau_adapt``; on by default, as in Yin et al.), ``threshold`` (``theta0``, optionally learnable) and a fixed
adaptation strength ``beta_adapt`` (1.8 as in both papers).

:class:`LeakyReadout`: non-spiking leaky integrators ``y_t = alpha y_{t-1} + x_t W^T + b`` (``alpha =
exp(-1 / tau)``), the usual read-out of a spiking classifier; returns ``[T, B, n_out]`` membrane traces, to be
reduced by max, mean or last step in the loss. The recursion over ``T`` is one matrix product with the decay
matrix (:func:`leaky_integrate`), not a Python loop.

Sparse inputs: both LIF layers take ``sparse_input`` (None: detect; True; False). When the input is sparse
(binary spikes at a few percent, e.g. SHD's 700 channels), the input current and its weight gradient are
computed from the nonzero entries only (:func:`braincore.training.fused_lif.event_linear`), with the same
result as the dense product to float rounding.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn

from ..surrogate import Surrogate, get_surrogate
from .fused_alif import alif_sequence
from .fused_lif import event_linear, is_sparse_input, lif_sequence

Tensor = torch.Tensor

__all__ = ["LIFLayer", "ALIFLayer", "LeakyReadout"]


def _check_sequence(x: Tensor, n_in: int, who: str) -> None:
    if x.dim() != 3 or x.shape[-1] != n_in:
        raise ValueError(f"{who}: input must be [T, B, {n_in}], got {tuple(x.shape)}")


def _input_current(x: Tensor, weight: Tensor, bias: Optional[Tensor], sparse_input: Optional[bool]) -> Tensor:
    """``I = x W^T + b`` for all ``T x B`` rows in one product: dense, or from the nonzero entries of ``x`` only
    (:func:`~braincore.training.fused_lif.event_linear`) when ``sparse_input`` is True, or None and ``x`` looks
    sparse (spikes at a few percent). Both give the same current and gradients to float rounding."""
    T, B, n_in = x.shape
    flat = x.reshape(T * B, n_in)
    if sparse_input or (sparse_input is None and is_sparse_input(flat)):
        current = event_linear(flat, weight, bias)
    else:
        current = nn.functional.linear(flat, weight, bias)
    return current.reshape(T, B, -1)


def init_connections(layer: nn.Module, n_in: int, n_out: int, bias: bool, recurrent: bool, init_gain: float,
                     recurrent_gain: float, generator: Optional[torch.Generator]) -> None:
    """``layer.weight`` ``[n_out, n_in]`` uniform in ``+-init_gain / sqrt(n_in)`` (PyTorch's ``nn.Linear`` bound
    times a gain), ``layer.bias`` (zeros, or None) and ``layer.recurrent`` ``[n_out, n_out]`` uniform in
    ``+-recurrent_gain / sqrt(n_out)`` (or None): shared by every spiking layer."""
    bound = math.sqrt(1.0 / n_in) * init_gain
    layer.weight = nn.Parameter(torch.empty(n_out, n_in).uniform_(-bound, bound, generator=generator))
    layer.bias = nn.Parameter(torch.zeros(n_out)) if bias else None
    if recurrent:
        rb = math.sqrt(1.0 / n_out) * recurrent_gain
        layer.recurrent = nn.Parameter(torch.empty(n_out, n_out).uniform_(-rb, rb, generator=generator))
    else:
        layer.register_parameter("recurrent", None)


class _SpikingLayer(nn.Module):
    """What LIF and ALIF layers share: the checks, the input (and optional recurrent) weights, bias, threshold,
    dropout held over time, and the forward skeleton ``x -> I = x W^T + b -> spikes``; a subclass supplies
    :meth:`_spikes` (its fused node)."""

    kind = "layer"

    def _setup(self, n_in: int, n_out: int, recurrent: bool, tau_m: float, threshold: float,
               learn_threshold: bool, surrogate: "str | Surrogate", detach_reset: bool, dropout: float, bias: bool,
               init_gain: float, recurrent_gain: float, generator: Optional[torch.Generator],
               sparse_input: Optional[bool]) -> None:
        if n_in < 1 or n_out < 1:
            raise ValueError(f"{self.kind} sizes must be >= 1, got n_in={n_in}, n_out={n_out}")
        if tau_m <= 0:
            raise ValueError(f"tau_m must be > 0 steps, got {tau_m}")
        if threshold <= 0:
            raise ValueError(f"threshold must be > 0, got {threshold}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.n_in, self.n_out = int(n_in), int(n_out)
        self.surrogate = get_surrogate(surrogate)
        self.detach_reset, self.dropout = bool(detach_reset), float(dropout)
        self.sparse_input = None if sparse_input is None else bool(sparse_input)
        init_connections(self, n_in, n_out, bias, recurrent, init_gain, recurrent_gain, generator)
        self.threshold = nn.Parameter(torch.full((n_out,), float(threshold))) if learn_threshold else None
        if not learn_threshold:
            self.register_buffer("threshold_fixed", torch.tensor(float(threshold)))

    def _spikes(self, current: Tensor, theta: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        _check_sequence(x, self.n_in, self.kind)
        B = x.shape[1]
        current = _input_current(x, self.weight, self.bias, self.sparse_input)
        theta = self.threshold if self.threshold is not None else self.threshold_fixed
        spikes = self._spikes(current, theta)
        if self.training and self.dropout > 0:
            keep = torch.rand(B, self.n_out, device=x.device) >= self.dropout
            spikes = spikes * (keep.to(spikes.dtype) / (1.0 - self.dropout))
        return spikes


class LIFLayer(_SpikingLayer):
    """Feed-forward or recurrent LIF layer (module docstring). ``forward(x [T, B, n_in]) -> [T, B, n_out]``."""

    kind = "LIFLayer"

    def __init__(self, n_in: int, n_out: int, *, recurrent: bool = False, tau_m: float = 10.0,
                 learn_tau: bool = False, threshold: float = 1.0, learn_threshold: bool = False,
                 surrogate: "str | Surrogate" = "fast_sigmoid", detach_reset: bool = False, dropout: float = 0.0,
                 bias: bool = True, init_gain: float = 1.0, recurrent_gain: float = 1.0,
                 generator: Optional[torch.Generator] = None, sparse_input: Optional[bool] = None):
        super().__init__()
        self._setup(n_in, n_out, recurrent, tau_m, threshold, learn_threshold, surrogate, detach_reset, dropout,
                    bias, init_gain, recurrent_gain, generator, sparse_input)
        beta = math.exp(-1.0 / tau_m)
        logit = torch.full((n_out,), math.log(beta / (1.0 - beta)))
        self.beta_logit = nn.Parameter(logit) if learn_tau else None
        if not learn_tau:
            self.register_buffer("beta_fixed", torch.tensor(beta))

    @property
    def beta(self) -> Tensor:
        """The per-step decay (``[n_out]`` if learnable, else a scalar)."""
        return torch.sigmoid(self.beta_logit) if self.beta_logit is not None else self.beta_fixed

    def _spikes(self, current: Tensor, theta: Tensor) -> Tensor:
        return lif_sequence(current, self.beta, theta, self.recurrent, self.surrogate, self.detach_reset)

    def extra_repr(self) -> str:
        return (f"{self.n_in} -> {self.n_out}, recurrent={self.recurrent is not None}, "
                f"surrogate={self.surrogate.name}, dropout={self.dropout}")


def _decay_logit(tau: float, n: int) -> Tensor:
    """``logit(exp(-1 / tau))`` repeated ``n`` times: the free parameter of a sigmoid-parameterised decay."""
    decay = math.exp(-1.0 / tau)
    return torch.full((n,), math.log(decay / (1.0 - decay)))


class ALIFLayer(_SpikingLayer):
    """Feed-forward or recurrent adaptive-LIF layer (module docstring).
    ``forward(x [T, B, n_in]) -> spikes [T, B, n_out]``."""

    kind = "ALIFLayer"

    def __init__(self, n_in: int, n_out: int, *, recurrent: bool = False, tau_m: float = 20.0,
                 tau_adapt: float = 200.0, learn_tau: bool = True, learn_tau_adapt: bool = True,
                 threshold: float = 1.0, learn_threshold: bool = False, beta_adapt: float = 1.8,
                 surrogate: "str | Surrogate" = "multi_gaussian", detach_reset: bool = False, dropout: float = 0.0,
                 bias: bool = True, init_gain: float = 1.0, recurrent_gain: float = 1.0,
                 generator: Optional[torch.Generator] = None, sparse_input: Optional[bool] = None):
        super().__init__()
        if tau_adapt <= 0:
            raise ValueError(f"tau_adapt must be > 0 steps, got {tau_adapt}")
        if beta_adapt < 0:
            raise ValueError(f"beta_adapt must be >= 0, got {beta_adapt}")
        self._setup(n_in, n_out, recurrent, tau_m, threshold, learn_threshold, surrogate, detach_reset, dropout,
                    bias, init_gain, recurrent_gain, generator, sparse_input)
        for name, tau, learn in (("beta", tau_m, learn_tau), ("rho", tau_adapt, learn_tau_adapt)):
            if learn:
                setattr(self, f"{name}_logit", nn.Parameter(_decay_logit(tau, n_out)))
            else:
                setattr(self, f"{name}_logit", None)
                self.register_buffer(f"{name}_fixed", torch.tensor(math.exp(-1.0 / tau)))
        self.register_buffer("beta_adapt", torch.tensor(float(beta_adapt)))

    @property
    def beta(self) -> Tensor:
        """The per-step membrane decay ``exp(-1 / tau_m)`` (``[n_out]`` if learnable, else a scalar)."""
        return torch.sigmoid(self.beta_logit) if self.beta_logit is not None else self.beta_fixed

    @property
    def rho(self) -> Tensor:
        """The per-step adaptation decay ``exp(-1 / tau_adapt)`` (``[n_out]`` if learnable, else a scalar)."""
        return torch.sigmoid(self.rho_logit) if self.rho_logit is not None else self.rho_fixed

    def _spikes(self, current: Tensor, theta: Tensor) -> Tensor:
        return alif_sequence(current, self.beta, self.rho, theta, self.beta_adapt, self.recurrent, self.surrogate,
                             self.detach_reset)

    def extra_repr(self) -> str:
        return (f"{self.n_in} -> {self.n_out}, recurrent={self.recurrent is not None}, "
                f"beta_adapt={float(self.beta_adapt)}, surrogate={self.surrogate.name}, dropout={self.dropout}")


def leaky_integrate(current: Tensor, alpha: float, block: int = 128) -> Tensor:
    """``y_t = alpha y_{t-1} + c_t`` (``y_0 = 0``) over the first dimension of ``current [T, ...]``, without a
    Python step per time step: inside a block of ``K <= block`` steps ``y = L c + alpha^(1..K) y_before`` with the
    ``[K, K]`` decay matrix ``L[t, k] = alpha^(t - k)`` (``t >= k``), one matrix product per block (autograd
    differentiates it as such: the backward is ``L^T`` times the incoming gradient). Equal to the step-by-step
    recursion to float rounding."""
    T = current.shape[0]
    if T == 0:
        return current.clone()
    flat = current.reshape(T, -1)
    K = min(T, block)
    steps = torch.arange(K, dtype=torch.float64)
    lags = steps[:, None] - steps[None, :]
    decay = torch.where(lags >= 0, alpha ** lags.clamp(min=0), torch.zeros(()))
    decay = decay.to(dtype=current.dtype, device=current.device)
    if T <= K:
        return (decay @ flat).reshape(current.shape)
    carry_decay = (alpha ** (steps + 1)).to(dtype=current.dtype, device=current.device)[:, None]
    out, y_last = [], None
    for start in range(0, T, K):
        chunk = flat[start:start + K]
        n = chunk.shape[0]
        y = decay[:n, :n] @ chunk
        if y_last is not None:
            y = y + carry_decay[:n] * y_last
        out.append(y)
        y_last = y[-1]
    return torch.cat(out).reshape(current.shape)


class LeakyReadout(nn.Module):
    """Leaky-integrator read-out: ``y_t = alpha y_{t-1} + x_t W^T + b`` -> ``[T, B, n_out]``."""

    def __init__(self, n_in: int, n_out: int, tau: float = 10.0, bias: bool = True):
        super().__init__()
        if tau <= 0:
            raise ValueError(f"tau must be > 0 steps, got {tau}")
        self.n_in, self.alpha = int(n_in), math.exp(-1.0 / tau)
        self.linear = nn.Linear(n_in, n_out, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        _check_sequence(x, self.n_in, "LeakyReadout")
        T, B, _ = x.shape
        current = self.linear(x.reshape(T * B, self.n_in)).reshape(T, B, -1)
        return leaky_integrate(current, self.alpha)
