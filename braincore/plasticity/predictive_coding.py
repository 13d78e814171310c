"""Predictive-coding error units and local weight updates, on plain batched tensors.

The learning rules of *spiking neural coding* (A. Ororbia, "Spiking neural predictive coding for continually
learning from data streams", Neurocomputing 2023; arXiv:1908.08655), and of the neural generative/coding
family it belongs to (Ororbia & Kifer, "The neural coding framework for learning generative models", Nature
Communications 2022; Ororbia et al., "Lifelong neural predictive coding", arXiv:2004.10802), written for any
layer sizes and batch size ``B``. Used by :mod:`braincore.networks.spiking_pc`.

Notation (one projection ``pre -> post`` in which the *pre* layer predicts the *post* layer)::

    a_pre   [B, n_pre]     presynaptic activity: a spike trace (dimensionless, spikes per step) or spikes
    W       [n_post, n_pre] generative (prediction) weights, dimensionless
    mu      [B, n_post]    prediction of the post layer:                     mu = a_pre W^T           (1)
    e       [B, n_post]    error units: target minus prediction:            e  = m * (z - mu)         (2)
                           z is the post layer's own activity (its trace), or the clamped value of a
                           clamped layer (a label during training); m in {0, 1} masks unclamped units
    E       [n_pre, n_post] error (feedback) weights carrying e back to the pre layer
    I       [B, n_pre]     error drive of the pre layer's current:           I  = -e_pre + e E^T      (3)
                           (-e_pre: its own mismatch with the prediction it receives from above;
                            e E^T: the errors of the layer it predicts, fed back)

Local updates (no backpropagation: each change is a product of quantities present at the synapse)::

    dW = eta * e^T a_pre / B            (Hebbian: post-synaptic error x presynaptic trace)      (4)
    dE = beta * dW^T                    (error synapses follow the generative ones, paper eq.)   (5)

With ``E = W^T`` and a settled network, (3) is the gradient of the layer's energy ``0.5 ||e||^2`` and (4)
its descent; ``beta`` scales how fast the (independently initialised) error weights align with ``W^T``.
(5) keeps ``E - beta W^T`` constant, so that after enough learning ``E`` is ``beta W^T`` plus its fading
random start.

Units: all quantities are dimensionless (traces count spikes per step; weights map one trace to another);
``eta`` and ``beta`` are per-update learning rates. Updates are averaged over the batch.

The spike trace (the activity a layer uses to predict and to be predicted) is a leaky average of its spikes::

    a <- a + (dt / tau_tr) (s - a)                                                               (6)

so a neuron firing at every step has ``a -> 1``. The paper's trace adds 1 per spike and decays with
``tau_tr`` (``a <- a (1 - dt/tau_tr) + s``), i.e. ``tau_tr/dt`` times ours: the factor is absorbed in ``W``.
"""
from __future__ import annotations

from typing import Optional

import torch

Tensor = torch.Tensor

__all__ = ["predict", "error_units", "error_drive", "local_update", "error_weight_update", "trace_step",
           "prediction_energy"]


def predict(w: Tensor, pre: Tensor) -> Tensor:
    """Eq. (1): ``mu = pre W^T`` for ``W [n_post, n_pre]`` and ``pre [B, n_pre]`` -> ``[B, n_post]``."""
    return pre @ w.t()


def error_units(target: Tensor, prediction: Tensor, mask: Optional[Tensor] = None) -> Tensor:
    """Eq. (2): ``e = target - prediction``, times ``mask`` (1 = compared, 0 = unclamped: error zero)."""
    e = target - prediction
    return e if mask is None else e * mask


def error_drive(own_error: Optional[Tensor], below_error: Optional[Tensor], e_w: Optional[Tensor]) -> Tensor:
    """Eq. (3): ``I = -e_own + e_below E^T`` (``E [n_pre, n_post]``, ``e_below [B, n_post]``); either term may
    be ``None`` (a layer that is not predicted, or that predicts nothing)."""
    drive = None
    if own_error is not None:
        drive = -own_error
    if below_error is not None:
        fed = below_error @ e_w.t()
        drive = fed if drive is None else drive + fed
    if drive is None:
        raise ValueError("error_drive needs an own error or an error from below")
    return drive


def local_update(error: Tensor, pre: Tensor, rate: float) -> Tensor:
    """Eq. (4): ``dW = rate * error^T pre / B`` -> ``[n_post, n_pre]`` (batch-averaged outer product)."""
    return (error.t() @ pre) * (rate / error.shape[0])


def error_weight_update(dw: Tensor, beta: float) -> Tensor:
    """Eq. (5): ``dE = beta * dW^T``."""
    return dw.t() * beta


def trace_step(trace: Tensor, spikes: Tensor, dt: float, tau: float) -> Tensor:
    """Eq. (6): ``a + (dt/tau) (s - a)`` (a leaky running rate of the spikes, 1 at one spike per step)."""
    return trace + (dt / tau) * (spikes - trace)


def prediction_energy(errors: list) -> Tensor:
    """Per-sample total prediction error ``sum_l 0.5 ||e_l||^2`` -> ``[B]``."""
    return sum(0.5 * (e * e).sum(dim=1) for e in errors)
