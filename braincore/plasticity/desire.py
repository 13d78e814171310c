"""Desire backpropagation: supervised STDP for multi-layer spiking networks, on plain tensors.

D. Gerlinghoff, T. Luo, R. S. M. Goh and W.-F. Wong, "Desire backpropagation: a lightweight training algorithm
for multi-layer spiking neural networks based on spike-timing-dependent plasticity", Neurocomputing (2023),
arXiv:2211.05412. Authors' code: github.com/DanielGerlinghoff/desire-backpropagation
(``desire_pytorch.py``). Sources: the abstract (98.41 % on MNIST, 87.56 % on Fashion-MNIST, three-layer
fully connected networks, ternary desires from the output error, desire-gated STDP) and, for every equation and
number below, the authors' code at its final commit (5e86036), whose README names the MNIST reproduction
command (150 epochs); the full paper text was not available to us, so where it and the code might differ we
follow the code.

**Idea.** Every neuron gets a ternary *desire* ``d in {-1, 0, +1}``: ``+1`` "should spike more", ``-1`` "should
spike less", ``0`` "don't care". The output desires come from the label and the output spike counts; hidden
desires are obtained layer by layer backwards from the next layer's desires, errors and weights ("desire
backpropagation"); then each synapse learns with STDP, gated and signed by its postsynaptic neuron's desire.

**Notation** (one sample; every function here is batched over a leading ``B``). ``T`` time steps; ``n_j`` the
spike count of neuron ``j`` over the ``T`` steps; ``m`` the *error margin* (spikes); the normalised rate
``r_j = n_j / (T - m)`` (so ``T - m`` spikes already count as "fully on"; ``r`` may exceed 1).

1. **Output desire** (label ``c``, threshold ``theta_out``, 0.30)::

       d_c = +1  if 1 - r_c > theta_out  else 0        (the labelled neuron should fire more)
       d_k = -1  if r_k > theta_out      else 0        (k != c: every other neuron should fire less)

2. **Error of a neuron with a desire** (its L1 distance to the target rate 1 for ``+1``, 0 for ``-1``),
   signed by the desire::

       e_j = d_j * | [d_j = +1] - r_j |                (0 where d_j = 0)

3. **Desire propagation** from layer ``l`` (weights ``W[j, i]``, post ``j``, pre ``i``) to layer ``l - 1``
   (threshold ``theta_hid``, 0.05)::

       s_i = sum_j W[j, i] e_j ,      d_i = sign(s_i) if |s_i| >= theta_hid else 0

   i.e. a presynaptic neuron should fire more when, weighted by the synapses, the neurons it excites want more
   spikes (and those it inhibits want fewer), by a margin. Neurons silenced by dropout pass no desire back.

4. **Desire-gated STDP** (learning rate ``eta``, 1e-5, per sample and synapse): each postsynaptic spike with a
   non-zero desire adds (``d = +1``, potentiation) or subtracts (``d = -1``, depression) the presynaptic trace::

       x_i(t) = beta x_i(t-1) + min(s_i(t), 1)                         (presynaptic trace, beta = 0.75)
       dW[j, i] = eta * d_j * sum_t o_j(t) x_i(t)                      (o_j(t) in {0, 1}: post spike)

   ``x_i(t)`` includes the presynaptic spike of the same step (it caused the postsynaptic spike, which is
   computed from step ``t``'s input): causal pre-before-post pairs potentiate for ``d = +1``. There is no
   anti-causal (post-before-pre) term; with ``d = 0`` nothing changes. The trace decays like the membrane.

**Units.** Everything is dimensionless: time is counted in steps, rates are spike counts over ``T - m``,
weights are in units of the firing threshold (1.0), ``eta`` is weight per (spike x trace).

**Batching.** Desires are per sample. :func:`desire_stdp_delta` sums the per-sample updates over the batch by
default (``reduction="sum"``), so ``eta`` keeps the paper's per-sample meaning (the paper trains online,
one sample at a time: a batch of ``B`` equals ``B`` online steps made with the weights of the batch's start);
``reduction="mean"`` averages instead.

Functions: :func:`spike_rate`, :func:`output_desire`, :func:`desire_error`, :func:`propagate_desire`,
:func:`presynaptic_traces`, :func:`desire_stdp_delta`, :func:`desire_stdp_update`. A ready network:
:class:`braincore.networks.desire_mlp.DesireMLP`. Minimal use, one training step of any stack of layers::

    d = [None] * L;  d[-1] = output_desire(counts[-1], labels, T)
    for l in range(L - 1, 0, -1):
        d[l - 1] = propagate_desire(d[l], counts[l], weights[l], T)
    for l in range(L):
        desire_stdp_update(weights[l], d[l], presynaptic_traces(inputs[l], 0.75), spikes[l], 1e-5)
"""
from __future__ import annotations

from typing import Optional

import torch

from .desire_defaults import ERROR_MARGIN, LEARNING_RATE, THETA_HID, THETA_OUT

Tensor = torch.Tensor

__all__ = ["spike_rate", "output_desire", "desire_error", "propagate_desire", "presynaptic_traces",
           "desire_stdp_delta", "desire_stdp_update"]

# defaults (THETA_OUT, THETA_HID, ERROR_MARGIN, LEARNING_RATE): the authors' desire_pytorch.py (final commit), in
# .desire_defaults, which imports without PyTorch


def _check_2d(name: str, x: Tensor) -> None:
    if not isinstance(x, Tensor) or x.dim() != 2:
        raise ValueError(f"{name} must be a [B, N] tensor, got "
                         f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}")


def spike_rate(counts: Tensor, steps: int, error_margin: float = ERROR_MARGIN) -> Tensor:
    """``r = counts / (steps - error_margin)`` (float): the rate a neuron is judged by; ``T - m`` spikes = 1."""
    if steps - error_margin <= 0:
        raise ValueError(f"steps - error_margin must be > 0, got steps={steps}, error_margin={error_margin}")
    counts = counts if counts.is_floating_point() else counts.to(torch.get_default_dtype())
    return counts / float(steps - error_margin)


def output_desire(counts: Tensor, labels: Tensor, steps: int, threshold: float = THETA_OUT,
                  error_margin: float = ERROR_MARGIN) -> Tensor:
    """Ternary desires ``[B, C]`` (int8) of the output layer from its spike counts ``[B, C]`` and ``labels [B]``.

    The labelled neuron wants ``+1`` while ``1 - r > threshold``; each other neuron wants ``-1`` while
    ``r > threshold``; otherwise ``0`` (``r = counts / (steps - error_margin)``).
    """
    _check_2d("counts", counts)
    labels = torch.as_tensor(labels, device=counts.device)
    if labels.dim() != 1 or labels.shape[0] != counts.shape[0]:
        raise ValueError(f"labels must be [B] = [{counts.shape[0]}], got {tuple(labels.shape)}")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= counts.shape[1]):
        raise ValueError(f"labels must lie in 0..{counts.shape[1] - 1}")
    rate = spike_rate(counts, steps, error_margin)
    target = torch.zeros(counts.shape, dtype=torch.bool, device=counts.device)
    target[torch.arange(counts.shape[0], device=counts.device), labels.long()] = True
    more = target & ((1.0 - rate) > threshold)
    less = ~target & (rate > threshold)
    return more.to(torch.int8) - less.to(torch.int8)


def desire_error(desire: Tensor, counts: Tensor, steps: int, error_margin: float = ERROR_MARGIN) -> Tensor:
    """Signed errors ``e = d * |[d = +1] - r|`` ``[B, N]`` (float; 0 where the desire is 0)."""
    _check_2d("desire", desire)
    if desire.shape != counts.shape:
        raise ValueError(f"desire {tuple(desire.shape)} and counts {tuple(counts.shape)} must have the same shape")
    rate = spike_rate(counts, steps, error_margin)
    d = desire.to(rate.dtype)
    return d * ((desire > 0).to(rate.dtype) - rate).abs()


def propagate_desire(desire: Tensor, counts: Tensor, weights: Tensor, steps: int, threshold: float = THETA_HID,
                     error_margin: float = ERROR_MARGIN, mask: Optional[Tensor] = None) -> Tensor:
    """Desires ``[B, N_pre]`` (int8) of a layer's inputs from the layer's desires and spike counts ``[B, N_post]``.

    ``weights`` is ``[N_post, N_pre]``; ``s = e @ W`` with the signed errors ``e`` of :func:`desire_error`;
    ``d_pre = sign(s)`` where ``|s| >= threshold``, else 0. ``mask [B, N_post]`` (bool, optional) removes
    neurons silenced by dropout from the sum.
    """
    if threshold < 0:
        raise ValueError(f"threshold must be >= 0, got {threshold}")
    if weights.dim() != 2 or weights.shape[0] != desire.shape[-1]:
        raise ValueError(f"weights must be [N_post, N_pre] with N_post = {desire.shape[-1]}, "
                         f"got {tuple(weights.shape)}")
    err = desire_error(desire, counts, steps, error_margin).to(weights.dtype)
    if mask is not None:
        err = err * mask.to(err.dtype)
    s = err @ weights
    active = s.abs() >= threshold
    return (torch.sign(s) * active).to(torch.int8)


def presynaptic_traces(spikes: Tensor, beta: float) -> Tensor:
    """STDP traces ``x(t) = beta x(t-1) + min(s(t), 1)`` of presynaptic spikes ``[B, T, N]`` -> ``[B, T, N]``."""
    if spikes.dim() != 3:
        raise ValueError(f"spikes must be [B, T, N], got {tuple(spikes.shape)}")
    s = spikes.clamp(max=1.0) if spikes.is_floating_point() else spikes.to(torch.get_default_dtype())
    out = torch.empty_like(s)
    x = torch.zeros_like(s[:, 0])
    for t in range(s.shape[1]):
        x = x * beta + s[:, t]
        out[:, t] = x
    return out


def desire_stdp_delta(desire: Tensor, pre_traces: Tensor, post_spikes: Tensor, lr: float = LEARNING_RATE,
                      reduction: str = "sum", mask: Optional[Tensor] = None) -> Tensor:
    """Weight change ``[N_post, N_pre]``: ``lr * sum_b sum_t d[b, j] o[b, t, j] x[b, t, i]`` (``reduction="sum"``;
    ``"mean"`` divides by ``B``).

    ``desire [B, N_post]`` ternary; ``pre_traces [B, T, N_pre]`` (see :func:`presynaptic_traces`);
    ``post_spikes [B, T, N_post]`` (any non-zero value counts as one spike); ``mask [B, N_post]`` (optional,
    bool) freezes the synapses of dropped-out neurons.
    """
    _check_2d("desire", desire)
    if post_spikes.dim() != 3 or pre_traces.dim() != 3:
        raise ValueError(f"pre_traces and post_spikes must be [B, T, N], got {tuple(pre_traces.shape)} and "
                         f"{tuple(post_spikes.shape)}")
    B, T, n_post = post_spikes.shape
    if desire.shape != (B, n_post) or pre_traces.shape[:2] != (B, T):
        raise ValueError(f"shapes disagree: desire {tuple(desire.shape)}, pre_traces {tuple(pre_traces.shape)}, "
                         f"post_spikes {tuple(post_spikes.shape)}")
    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
    gate = desire.to(pre_traces.dtype)
    if mask is not None:
        gate = gate * mask.to(gate.dtype)
    post = (post_spikes != 0).to(pre_traces.dtype) * gate[:, None, :]
    delta = post.reshape(B * T, n_post).transpose(0, 1) @ pre_traces.reshape(B * T, -1)
    scale = lr / B if reduction == "mean" else lr
    return delta * scale


def desire_stdp_update(weights: Tensor, desire: Tensor, pre_traces: Tensor, post_spikes: Tensor,
                       lr: float = LEARNING_RATE, reduction: str = "sum", mask: Optional[Tensor] = None) -> Tensor:
    """Add :func:`desire_stdp_delta` to ``weights [N_post, N_pre]`` in place; returns the change."""
    delta = desire_stdp_delta(desire, pre_traces, post_spikes, lr, reduction, mask)
    if delta.shape != weights.shape:
        raise ValueError(f"weights {tuple(weights.shape)} do not match the update {tuple(delta.shape)}")
    weights.add_(delta.to(weights.dtype))
    return delta
