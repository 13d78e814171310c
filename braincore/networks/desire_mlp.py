"""The fully connected spiking network of desire backpropagation (Gerlinghoff et al. 2023), batched on PyTorch.

D. Gerlinghoff, T. Luo, R. S. M. Goh and W.-F. Wong, "Desire backpropagation: a lightweight training algorithm
for multi-layer spiking neural networks based on spike-timing-dependent plasticity", Neurocomputing (2023),
arXiv:2211.05412 (98.41 % on MNIST, 87.56 % on Fashion-MNIST with three-layer networks). The defaults
are those of the authors' code (``desire_pytorch.py`` at its final commit 5e86036 of
github.com/DanielGerlinghoff/desire-backpropagation), from which every fact below is taken; the learning rule
itself is :mod:`braincore.plasticity.desire`.

**Architecture** (MNIST): 784 inputs -> 1600 -> 800 -> 10, all-to-all, no biases (the code's MNIST config;
Fashion-MNIST uses 1000 -> 100). Weights ``W[l]`` are ``[N_post, N_pre]``, initialised Kaiming-normal
(``N(0, 2 / N_pre)``), unbounded.

**Input encoding** (deterministic rate code, ``T = 20`` steps): each pixel ``p in [0, 1]`` (``uint8 / 255``)
drives a non-leaky integrate-and-fire neuron: ``u += p``; spike when ``u >= 1``; ``u -= 1``. A pixel therefore
fires about ``floor(p T)`` regularly spaced spikes.

**Why layer-wise tensor code, not an Assembly.** Desire backpropagation sets a per-neuron "desire" from the layer
above's error, once per sample, and applies STDP-like updates gated by it to whole weight matrices; forward passes
are batched matrix products over ``T = 20`` steps with no delays (or one uniform layer delay). The simulator's
event-driven projections and trace-based rules do not express the backward desire pass, so the network keeps its
own loop (:mod:`braincore.plasticity.desire` holds the rule). The neuron is the discrete-time form of the
authors' code, ``v <- beta v + input`` without a ``dt`` or membrane resistance; the ``lif`` definition's exact
update (``v_rest + (v - v_rest) beta + R_m I (1 - beta)``) scales the input by ``1 - beta``, so reusing it would
change the published network (issue 15 leaves this open).

**Neurons** (LIF, discrete time, threshold ``v_th = 1``, leak ``beta = 1 - 2^-2 = 0.75``, reset by
subtraction)::

    v(t) = beta v(t-1) + sum_i W[j, i] s_i(t);   o_j(t) = [v(t) >= v_th];   v(t) -= v_th o_j(t)

With ``layer_delay = 0`` (default) a layer's output at step ``t`` is computed from its input at the same step;
with ``layer_delay = k`` every hidden layer's spikes reach the next layer ``k`` steps later (the first layer still
sees the pixels without delay): ``s_in^{(l)}(t) = s^{(l-1)}(t - k)``, zero for ``t < k``. The authors' code has
``k = 1`` (each layer reads the previous layer's spike buffer of the step before), so there the second hidden layer
sees ``T - 1`` and the output ``T - 2`` steps of input. Either way the whole network is evaluated layer by layer
with all ``T`` input currents in one matrix product, then the membrane recursion over ``T``; the STDP traces are
those of the (delayed) input the layer actually received.

**Dropout** (training only, the code's defaults 0.0 on the input, 0.3 on the hidden layers, none on the
output): one Bernoulli mask per sample and neuron, fixed over the ``T`` steps; a dropped neuron never spikes,
passes no desire back and does not learn; surviving spikes are scaled by ``1 / (1 - p)`` as input to the next
layer (their STDP traces are clipped to 1, their error uses the unscaled counts).

**Training step** (a batch of ``B`` samples, see :mod:`braincore.plasticity.desire`): forward pass; output
desires from the label (``theta_out = 0.30``, error margin 4 spikes); desires propagated backwards
(``theta_hid = 0.05``) with the weights of the batch's start; every layer learns by desire-gated STDP with
``eta = lr exp(-lr_decay epoch)`` (``lr = 1e-5``, ``lr_decay = 0.04``), updates summed over the batch (the
paper learns online, ``B = 1``).

**Classification:** the output neuron with the most spikes; a tie for the maximum counts as wrong (as in the
code's scoring): :meth:`DesireMLP.predict` returns -1 then.
"""
from __future__ import annotations

import math
from typing import Optional

import torch

from ..devices import resolve_device
from ..errors import ConfigError
from .params import DesireParams  # the record, importable without PyTorch
from ..plasticity import desire as rule

Tensor = torch.Tensor


def encode(images: Tensor, steps: int, dtype=torch.float32) -> Tensor:
    """``[B, ...]`` images (uint8 0..255, or floats in [0, 1]) -> input spikes ``[B, T, n_in]`` (0/1) from
    non-leaky integrate-and-fire neurons driven by the pixel values (``u += p``, spike at ``u >= 1``, ``u -= 1``)."""
    x = images.reshape(images.shape[0], -1)
    x = x.to(dtype) / 255.0 if not x.is_floating_point() else x.to(dtype)
    u = torch.zeros_like(x)
    out = torch.empty(x.shape[0], steps, x.shape[1], dtype=dtype, device=x.device)
    for t in range(steps):
        u += x
        s = u >= 1.0
        u -= s.to(dtype)
        out[:, t] = s
    return out


class DesireMLP:
    """A fully connected LIF network trained by desire backpropagation (batched; any device and dtype).

    ``forward(images, train)`` returns per-layer spike trains; ``train_step(images, labels, epoch)`` does one
    batched training step; ``counts(images)`` gives the output spike counts ``[B, n_out]`` (no dropout);
    ``predict`` / ``accuracy`` score them; ``state_dict`` / ``load_state_dict`` hold weights and the dropout RNG.
    """

    def __init__(self, params: Optional[DesireParams] = None, *, seed: int = 0, device="cpu",
                 dtype=torch.float32):
        self.p = params if params is not None else DesireParams()
        problems = self.p.check()
        if problems:
            raise ConfigError("; ".join(problems))
        self.device, self.dtype = resolve_device(device), dtype
        self.sizes = self.p.sizes
        self.steps = int(self.p.steps)
        init = torch.Generator().manual_seed(int(seed))
        self.weights = [
            (torch.randn(n_post, n_pre, generator=init, dtype=torch.float64)
             * math.sqrt(float(self.p.init_gain) / n_pre)).to(device=self.device, dtype=dtype)
            for n_pre, n_post in zip(self.sizes[:-1], self.sizes[1:])]
        self.rng = torch.Generator(device=self.device).manual_seed(int(seed) + 1)

    @property
    def n_layers(self) -> int:
        return len(self.weights)

    # ---------------------------------------------------------------------------------------- dynamics
    def _lif(self, current: Tensor, mask: Optional[Tensor]) -> Tensor:
        """Membrane recursion over T for input currents ``[B, T, N]`` -> spikes ``[B, T, N]`` (0/1)."""
        beta, v_th = float(self.p.beta), float(self.p.v_th)
        v = torch.zeros_like(current[:, 0])
        out = torch.empty_like(current)
        for t in range(current.shape[1]):
            v = v * beta + current[:, t]
            s = v >= v_th
            if mask is not None:
                s = s & mask
            s = s.to(current.dtype)
            v = v - v_th * s
            out[:, t] = s
        return out

    def _mask(self, batch: int, n: int, p: float) -> Optional[Tensor]:
        if p <= 0.0:
            return None
        return torch.rand(batch, n, generator=self.rng, device=self.device, dtype=self.dtype) >= p

    def forward(self, images: Tensor, train: bool = False) -> tuple[list[Tensor], list[Optional[Tensor]]]:
        """Spike trains ``[B, T, N_l]`` of every layer (0: the encoded input; 0/1 values, before dropout scaling)
        and the dropout masks ``[B, N_l]`` (``None``: no dropout) used."""
        if images.shape[0] == 0 or images[0].numel() != self.sizes[0]:
            raise ValueError(f"images must be [B, ...] with {self.sizes[0]} pixels each, got {tuple(images.shape)}")
        x = encode(images.to(self.device), self.steps, self.dtype)
        spikes, masks = [x], [None]
        if train:
            m = self._mask(x.shape[0], x.shape[2], float(self.p.dropout_in))
            if m is not None:
                x = x * m[:, None, :]
                spikes[0], masks[0] = x, m
        for l, w in enumerate(self.weights):
            last = l == self.n_layers - 1
            p = float(self.p.dropout_hid) if (train and not last) else 0.0
            inp = self.layer_input(spikes, l)
            inp = inp if masks[l] is None else inp / (1.0 - self._p_of(l))
            B, T, n_pre = inp.shape
            current = (inp.reshape(B * T, n_pre) @ w.t()).reshape(B, T, -1)
            m = self._mask(B, w.shape[0], p)
            spikes.append(self._lif(current, m))
            masks.append(m)
        return spikes, masks

    def layer_input(self, spikes: list[Tensor], layer: int) -> Tensor:
        """The 0/1 spike train ``[B, T, N_pre]`` that ``weights[layer]`` receives: ``spikes[layer]`` delayed by
        ``layer_delay`` steps for every layer after the first (zeros shifted in)."""
        s, k = spikes[layer], int(self.p.layer_delay)
        if layer == 0 or k == 0:
            return s
        return torch.cat([torch.zeros_like(s[:, :k]), s[:, :-k]], dim=1)

    def _p_of(self, layer: int) -> float:
        return float(self.p.dropout_in) if layer == 0 else float(self.p.dropout_hid)

    def learning_rate(self, epoch: int) -> float:
        """``lr exp(-lr_decay epoch) lr_gamma^(number of lr_milestones <= epoch)``: the same for a given epoch
        whatever the total number of epochs (so a longer run continues a shorter one exactly)."""
        passed = sum(1 for m in self.p.lr_milestones if epoch >= m)
        return float(self.p.lr) * math.exp(-float(self.p.lr_decay) * epoch) * float(self.p.lr_gamma) ** passed

    def train_step(self, images: Tensor, labels: Tensor, epoch: int = 0) -> Tensor:
        """One batched desire-backpropagation step; returns the output spike counts ``[B, n_out]`` (training
        pass, with dropout)."""
        labels = torch.as_tensor(labels, device=self.device)
        spikes, masks = self.forward(images, train=True)
        counts = [s.sum(dim=1) for s in spikes]
        T, p = self.steps, self.p
        desires: list[Tensor] = [None] * (self.n_layers + 1)  # type: ignore[list-item]
        desires[-1] = rule.output_desire(counts[-1], labels, T, float(p.theta_out), float(p.error_margin))
        for l in range(self.n_layers, 1, -1):  # layer l's desire -> layer l-1 (through weights[l-1])
            desires[l - 1] = rule.propagate_desire(desires[l], counts[l], self.weights[l - 1], T,
                                                   float(p.theta_hid), float(p.error_margin), masks[l])
        lr = self.learning_rate(epoch)
        beta = float(p.beta)
        for l in range(self.n_layers):
            traces = rule.presynaptic_traces(self.layer_input(spikes, l), beta)
            rule.desire_stdp_update(self.weights[l], desires[l + 1], traces, spikes[l + 1], lr, p.reduction,
                                    masks[l + 1])
        return counts[-1]

    @torch.no_grad()
    def counts(self, images: Tensor, chunk: int = 500) -> Tensor:
        """Output spike counts ``[B, n_out]`` (inference: no dropout, no learning)."""
        out = []
        for start in range(0, images.shape[0], chunk):
            out.append(self.forward(images[start:start + chunk], train=False)[0][-1].sum(dim=1))
        return torch.cat(out) if out else torch.zeros(0, self.sizes[-1], device=self.device, dtype=self.dtype)

    @staticmethod
    def predict(counts: Tensor) -> Tensor:
        """The class with the most output spikes; -1 where the maximum is shared (scored as wrong)."""
        top = counts.max(dim=1, keepdim=True).values
        unique = (counts == top).sum(dim=1) == 1
        return torch.where(unique, counts.argmax(dim=1), torch.full_like(unique, -1, dtype=torch.long))

    def accuracy(self, images: Tensor, labels: Tensor) -> float:
        pred = self.predict(self.counts(images)).cpu()
        return float((pred == torch.as_tensor(labels).cpu()).double().mean()) if len(pred) else float("nan")

    # ---------------------------------------------------------------------------------------- state
    def state_dict(self) -> dict:
        return {"weights": [w.detach().cpu().clone() for w in self.weights],
                "rng": self.rng.get_state() if self.device.type == "cpu" else self.rng.get_state().cpu(),
                "sizes": torch.tensor(self.sizes)}

    def load_state_dict(self, state: dict) -> None:
        sizes = [int(s) for s in state["sizes"]]
        if sizes != self.sizes:
            raise ValueError(f"desire_mlp: checkpoint layer sizes {sizes} do not fit this network {self.sizes}")
        for w, saved in zip(self.weights, state["weights"]):
            w.copy_(saved.to(w))
        self.rng.set_state(state["rng"])
