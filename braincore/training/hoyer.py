"""One-time-step spiking networks with Hoyer-regularised trainable thresholds (Datta, Liu & Beerel 2022).

A hidden layer ``l`` of the one-time-step (``T = 1``) SNN, for a sample's input ``x [N_in]`` (pixels for the
first layer, spikes after it):

- membrane ``u = W x + b`` (``[N]``; one step, so no leak or reset matters);
- the clipped activation ``z = clip(u / v_th, 0, 1)`` with a trainable threshold ``v_th > 0`` per layer;
- its **Hoyer extremum** ``E(z) = ||z||_2^2 / ||z||_1`` (over the sample's activation map of the layer;
  ``0 <= E(z) <= max z <= 1``), a data-dependent fraction of the threshold;
- the spike ``s = 1[z >= E(z)]``, i.e. ``u >= v_th E(z)`` (``u >= v_th`` always fires: ``z = 1 >= E``);
- gradient (straight-through in the clipped range, our reading of the paper's surrogate): ``ds/dz = 1`` and
  ``E(z)`` treated as a constant, so with ``z = clip(u / v_th, 0, 1)``:
  ``ds/du = 1 / v_th`` for ``0 < u < v_th`` (0 outside) and ``ds/dv_th = -u / v_th^2`` for ``0 < u < v_th``
  (0 outside: a saturated or silent unit does not move the threshold). Generalised by ``window`` and ``scale``
  to the gradient of ``scale x clip(u / v_th, 0, window)``; the authors' released code (HoyerBiAct /
  Spike_func) uses ``window = 2, scale = 0.5``;
- the **Hoyer regulariser** ``H(z) = ||z||_1^2 / ||z||_2^2`` (the squared Hoyer measure, ``1 <= H <= n`` for
  ``n`` entries; small means sparse), computed over the layer's whole activation map of the batch and added to
  the loss as ``lambda_H sum_l H(z_l) / n_l`` (divided by the map's size ``n_l`` here so that ``lambda_H`` does
  not depend on the batch or layer size: our scaling, documented in the task). It pushes ``z`` towards 0 or 1,
  moving membranes away from the threshold, and through ``z`` it trains ``v_th``.

The output layer is non-spiking: its membrane ``W s + b`` is the logit vector (cross-entropy). The first layer
receives the real-valued pixels (direct encoding), as in the paper.

**The ANN twin** (:class:`HoyerMLP` with ``spiking=False``): the same layer sizes with ReLU units, trained by the
same code (no regulariser), for the accuracy-vs-FLOPs comparison.

**Operations** (:func:`count_operations`, the paper's accuracy-vs-FLOPs convention): an SNN layer whose input is
spikes costs one accumulate (AC, a SynOp) per input spike per outgoing synapse, ``sum_j s_j x n_out``; a layer
with real-valued input (the first layer's pixels, every ANN layer) costs ``n_in x n_out`` MACs (dense, zeros
included). ``FLOPs = SynOps + 2 MACs`` and the energy ``0.9 pJ x SynOps + 4.6 pJ x MACs`` (45 nm, Horowitz 2014)
follow :mod:`braincore.training.efficiency`. The Hoyer extremum and the comparison (``~3 n`` operations per layer)
are not counted (the paper neglects them too).

Shapes: models take ``x [T = 1, B, N_in]`` and return ``(output [1, B, C], hidden)`` with ``hidden`` the list of
spike (SNN) or activation (ANN) tensors ``[1, B, N_l]``; the clipped maps of the last forward are kept in
``model.clipped`` for :class:`HoyerLoss`.

Reference: G. Datta, Z. Liu and P. A. Beerel, "Hoyer regularizer is all you need for ultra low-latency spiking
neural networks", arXiv:2212.10170 (2022). Where this is our reading: the extremum per sample (the released code
takes it over the whole batch map while training and a running average of it at inference; per sample keeps
inference batch-independent without a running statistic), ``E`` detached (as in that code), the
size-normalised regulariser.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .efficiency import ENERGY_45NM
from .losses import LossResult

Tensor = torch.Tensor

__all__ = ["hoyer_extremum", "hoyer_regulariser", "hoyer_spike", "HoyerLayer", "HoyerMLP", "HoyerLoss",
           "count_operations"]


def hoyer_extremum(z: Tensor) -> Tensor:
    """``E(z) = sum z^2 / sum |z|`` over every axis but the first (one value per sample, shape ``[B, 1, ...]``
    broadcastable to ``z``); an all-zero map gets ``E = 1`` (nothing fires)."""
    dims = tuple(range(1, z.dim()))
    l1 = z.abs().sum(dim=dims, keepdim=True)
    l2sq = (z * z).sum(dim=dims, keepdim=True)
    return torch.where(l1 > 0, l2sq / l1.clamp_min(torch.finfo(z.dtype).tiny), torch.ones_like(l1))


def hoyer_regulariser(z: Tensor, eps: float = 1e-12) -> Tensor:
    """``H(z) = ||z||_1^2 / ||z||_2^2`` over the whole tensor (a scalar in ``[1, z.numel()]``; ``eps`` guards an
    all-zero map, whose ``H`` is then 0)."""
    l1 = z.abs().sum()
    return l1 * l1 / ((z * z).sum() + eps)


def hoyer_spike(u: Tensor, threshold: Tensor, window: float = 1.0, scale: float = 1.0) -> "tuple[Tensor, Tensor]":
    """Spikes ``s = 1[z >= E(z)]`` and the clipped map ``z = clip(u / v_th, 0, 1)`` of membranes ``u [B, ...]``
    (module docstring: forward exact, ``E`` held constant in the gradient). The gradient is that of
    ``scale x clip(u / v_th, 0, window)``: ``window = scale = 1`` (default) is straight through ``z``;
    ``window = 2, scale = 0.5`` is the authors' released code (``0.5 / v_th`` on ``0 < u < 2 v_th``)."""
    x = u / threshold
    z = torch.clamp(x, 0.0, 1.0)
    fired = (z >= hoyer_extremum(z.detach())).to(z.dtype)
    g = z if window == 1.0 else torch.clamp(x, 0.0, window)
    return fired + scale * (g - g.detach()), z         # forward exactly 0/1


class HoyerLayer(nn.Module):
    """A dense one-time-step spiking layer ``n_in -> n_out`` with a trainable threshold (``forward(x [B, n_in])
    -> (s [B, n_out], z [B, n_out])``)."""

    def __init__(self, n_in: int, n_out: int, threshold: float = 1.0, window: float = 1.0, scale: float = 1.0):
        super().__init__()
        if not (threshold > 0 and window >= 1 and scale > 0):
            raise ValueError(f"need threshold > 0, window >= 1, scale > 0; got {threshold}, {window}, {scale}")
        self.window, self.scale = float(window), float(scale)
        self.linear = nn.Linear(n_in, n_out)
        self.threshold = nn.Parameter(torch.tensor(float(threshold)))

    def forward(self, x: Tensor) -> "tuple[Tensor, Tensor]":
        # the threshold is kept positive (a gradient step cannot flip the sign of the clipping)
        return hoyer_spike(self.linear(x), self.threshold.clamp_min(1e-3), self.window, self.scale)


class HoyerMLP(nn.Module):
    """``sizes = [N_in, N_1, ..., C]``: hidden :class:`HoyerLayer` s (``spiking=True``) or ReLU layers (the ANN
    twin) and a non-spiking linear read-out. ``forward(x [1, B, N_in]) -> (output [1, B, C], hidden)``."""

    def __init__(self, sizes: Sequence[int], spiking: bool = True, threshold: float = 1.0, window: float = 1.0,
                 scale: float = 1.0):
        super().__init__()
        if len(sizes) < 3:
            raise ValueError(f"need at least one hidden layer: sizes {list(sizes)}")
        self.sizes = [int(s) for s in sizes]
        self.spiking = bool(spiking)
        pairs = list(zip(self.sizes[:-2], self.sizes[1:-1]))
        self.layers = nn.ModuleList(HoyerLayer(a, b, threshold, window, scale) if spiking else nn.Linear(a, b)
                                    for a, b in pairs)
        self.readout = nn.Linear(self.sizes[-2], self.sizes[-1])
        self.clipped: list[Tensor] = []

    def thresholds(self) -> "list[float]":
        """The layers' thresholds ``v_th`` as used (clamped to >= 1e-3); empty for the ANN twin."""
        return [float(layer.threshold.detach().clamp_min(1e-3)) for layer in self.layers
                if isinstance(layer, HoyerLayer)]

    def forward(self, x: Tensor) -> "tuple[Tensor, list[Tensor]]":
        if x.dim() != 3 or x.shape[0] != 1:
            raise ValueError(f"HoyerMLP is a one-time-step model: need x [1, B, N], got {tuple(x.shape)}")
        h = x[0]
        hidden, clipped = [], []
        for layer in self.layers:
            if self.spiking:
                h, z = layer(h)
                clipped.append(z)
            else:
                h = F.relu(layer(h))
            hidden.append(h.unsqueeze(0))
        self.clipped = clipped
        return self.readout(h).unsqueeze(0), hidden


class HoyerLoss:
    """Cross-entropy of the read-out ``[1, B, C]`` plus ``coefficient x sum_l H(z_l) / n_l`` over the clipped
    maps of ``model``'s last forward while training (none for the ANN twin, none in evaluation); a
    ``(output, labels, hidden) -> LossResult``."""

    def __init__(self, model: HoyerMLP, coefficient: float = 0.0, label_smoothing: float = 0.0):
        if coefficient < 0 or not 0 <= label_smoothing < 1:
            raise ValueError(f"need coefficient >= 0 and 0 <= label_smoothing < 1, got {coefficient}, "
                             f"{label_smoothing}")
        self.model, self.coefficient, self.label_smoothing = model, float(coefficient), float(label_smoothing)

    def __call__(self, output: Tensor, labels: Tensor, hidden: Sequence[Tensor] = ()) -> LossResult:
        scores = output.sum(dim=0)
        task = F.cross_entropy(scores, labels, label_smoothing=self.label_smoothing)
        reg = task.new_zeros(())
        if self.coefficient > 0 and self.model.training:
            for z in self.model.clipped:
                reg = reg + hoyer_regulariser(z) / z.numel()
            reg = self.coefficient * reg
        return LossResult(task + reg, task.detach(), reg.detach(), scores.detach())

    def __repr__(self) -> str:
        return f"HoyerLoss(coefficient={self.coefficient:g})"


@torch.no_grad()
def count_operations(model: HoyerMLP, batches, transform=None) -> dict:
    """Per-sample spikes (SNN) or nonzero activations (ANN) per hidden layer, SynOps, MACs, FLOPs and energy (pJ)
    over ``batches`` of inputs (``transform(x) -> [1, B, N]`` applied first); module docstring for the rules."""
    was = model.training
    model.eval()
    samples, active = 0, [0.0] * len(model.layers)
    try:
        for x in batches:
            x = transform(x) if transform is not None else x
            _, hidden = model(x)
            samples += int(x.shape[1])
            for i, h in enumerate(hidden):
                active[i] += float((h != 0).sum())
    finally:
        model.train(was)
    if samples == 0:
        raise ValueError("count_operations: no samples")
    active = [a / samples for a in active]
    sizes = model.sizes
    macs = float(sizes[0] * sizes[1])                   # real-valued pixels into the first layer, both models
    synops = 0.0
    for i in range(1, len(sizes) - 1):                  # layer i's input: the output of hidden layer i - 1
        if model.spiking:
            synops += active[i - 1] * sizes[i + 1]
        else:
            macs += float(sizes[i] * sizes[i + 1])
    return {"samples": samples, "steps": 1, "active_per_layer": active,
            "spikes": sum(active) if model.spiking else 0.0, "synops": synops, "macs": macs,
            "flops": synops + 2.0 * macs, "energy_pj": ENERGY_45NM["ac"] * synops + ENERGY_45NM["mac"] * macs}
