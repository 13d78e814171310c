"""Legendre Memory Units (LMU) and the hybrid-spiking LMU: a linear memory of the last ``theta`` steps of the input
in Legendre coordinates, a hidden layer whose activations are quantised into spike counts with temporally
diffused error, trained while interpolating from the non-spiking to the spiking network.

**Memory** (Voelker, Kajic & Eliasmith 2019, eqs. 1-4). The ``d``-dimensional state ``m`` of the linear system
``theta dm/dt = A m + B u`` holds the window ``u(t - theta'), 0 <= theta' <= theta`` of a scalar input ``u``::

    A_ij = (2i + 1) { -1 if i < j ; (-1)^(i - j + 1) if i >= j },      B_i = (2i + 1) (-1)^i,     i, j = 0 .. d-1

and reads it back with the shifted Legendre polynomials ``P~_i(r) = (-1)^i sum_k C(i,k) C(i+k,k) (-r)^k``::

    u(t - theta') ~= sum_i P~_i(theta' / theta) m_i(t)                                    (the delay property)

:func:`legendre_delay` returns ``A / theta`` and ``B / theta`` (the rates per unit time, as keras-lmu), and
:func:`discretize_zoh` the zero-order-hold discretisation of one step ``dt`` (the matrix exponential of the
block matrix ``[[A, B], [0, 0]] dt``): ``Abar = e^(A dt)``, ``Bbar = A^-1 (e^(A dt) - I) B``; the memory update
is ``m_t = Abar m_{t-1} + Bbar u_t`` with ``m_0 = 0``. ``theta`` and ``dt`` are in time steps (``dt = 1``).

**The cell** (2019, eqs. 6-7): ``u_t = e_x x_t + e_h h_{t-1} + e_m m_{t-1}``,
``h_t = f(W_x x_t + W_h h_{t-1} + W_m m_t)``. Here the memory is driven by the input alone (``e_h = e_m = 0``;
``u_t = E x_t`` with ``memory_inputs`` channels, each with its own ``d``-dimensional memory), as in keras-lmu's
psMNIST model (``hidden_to_memory=False, memory_to_memory=False``), so the memory is a linear time-invariant
filter of the input: ``m_t = sum_{s <= t} H_(t-s) u_s`` with the impulse response ``H_k = Abar^k Bbar``, computed
for all steps at once by an FFT convolution (Chilkuri & Eliasmith 2021, "Parallelizing Legendre memory unit
training"; :func:`memory_parallel`, tested against the recurrence :func:`memory_sequential`; the network convolves
the input directly with ``W_m H_t``, :meth:`LMUClassifier.memory_drive`, never forming ``m``). The hidden layer
is either recurrent (``W_h``; the 2019 cell, a loop over time) or not (``W_h = 0``; Chilkuri & Eliasmith's
parallel LMU, no loop over time but the quantiser's element-wise one).

**Quantised ("spiking") activation with temporally diffused error** (Voelker, Rasmussen & Eliasmith 2020; the
forward pass of KerasSpiking/PyTorchSpiking's ``SpikingActivation``): a first-order sigma-delta modulator per
unit, with ``a_t = f(z_t)`` the non-spiking activation and a quantum of ``1/dt``::

    v_t = v_{t-1} + a_t dt,     n_t = floor(v_t),     v_t <- v_t - n_t,     q_t = n_t / dt       (v_0 = v0)

(``v0``: a constant, 0.5 by default, so that the first step rounds; KerasSpiking draws it uniformly in [0, 1)).

``n_t`` is the integer spike count of step ``t`` (a multi-bit "spike" when > 1); the rounding error is carried
to the next step, so ``|sum_t a_t dt - sum_t n_t| < 1`` at every ``t`` (one quantum in all, however long the
sequence). Equivalently ``n_t = floor(v0 + S_t) - floor(v0 + S_(t-1))`` with ``S_t = sum_{s<=t} a_s dt``
(:func:`sigma_delta_closed_form`, loop-free, float64; :func:`sigma_delta` is the loop, cheaper on a CPU: ``v``
stays in [0, 1) so float32 keeps its resolution). Training interpolates::

    h_t = a_t + alpha (q_t - a_t),       dh_t / da_t = 1  (straight-through)

``alpha = 0``: exactly the non-spiking LMU; ``alpha = 1``: the hybrid-spiking LMU (spiking hidden layer, the
memory stays a real-valued linear system). :class:`AlphaScheduleTrainer` ramps ``alpha`` with the optimiser step.

**Measures** (of the spike counts ``n`` on a data set, :func:`activity_measures`): *bits per activation*, the
bits needed for each unit's count, ``log2(1 + max |n|)`` over the unit's steps and samples (+1 sign bit when
counts are negative), averaged over the units; *significant bits per weight multiply*, for every non-zero count
(one multiply of a weight by ``n``) the span of its binary digits from the highest to the lowest set bit,
``bit_length(|n|) - trailing_zeros(|n|)`` (1 for ``n = 1, 2, 4, ...``: an add or a shift), averaged over the
non-zero counts. Our reading of the paper's definitions (the text was not available to us; its abstract:
"activities ... at most 3.74 bits on average with 1.26 significant bits multiplying each weight").

References: A. R. Voelker, I. Kajic and C. Eliasmith, "Legendre Memory Units: continuous-time representation in
recurrent neural networks", NeurIPS 2019 (psMNIST 97.15 % with d = 256, theta = 784, 212 hidden units, about
102k parameters); A. R. Voelker, D. Rasmussen and C. Eliasmith, "A spike in performance: training hybrid-spiking
neural networks with quantized activation functions", arXiv:2002.03553 (2020); N. R. Chilkuri and C. Eliasmith,
"Parallelizing Legendre memory unit training", ICML 2021; code: github.com/nengo/keras-lmu,
github.com/nengo/pytorch-spiking.
"""
from __future__ import annotations

import math
from typing import Callable, Iterable, Optional

import numpy as np
import torch
from torch import nn

from .trainer import Trainer

Tensor = torch.Tensor

__all__ = ["legendre_delay", "discretize_zoh", "shifted_legendre", "impulse_response", "memory_sequential",
           "memory_parallel", "sigma_delta", "sigma_delta_closed_form", "quantize", "alpha_ramp", "LMUClassifier",
           "AlphaScheduleTrainer", "activity_measures", "significant_bits", "parameter_count", "ACTIVATIONS"]

ACTIVATIONS = ("relu", "tanh")


# ------------------------------------------------------------------------------------------ the memory
def legendre_delay(order: int, theta: float) -> tuple[np.ndarray, np.ndarray]:
    """``(A / theta [d, d], B / theta [d, 1])`` of the Legendre delay system (module docstring), float64."""
    if int(order) < 1 or not theta > 0:
        raise ValueError(f"legendre_delay: order must be >= 1 and theta > 0, got {order}, {theta}")
    q = np.arange(int(order), dtype=np.float64)
    rate = (2 * q + 1) / float(theta)
    i, j = np.meshgrid(q, q, indexing="ij")
    a = rate[:, None] * np.where(i < j, -1.0, (-1.0) ** (i - j + 1))
    b = (rate * (-1.0) ** q)[:, None]
    return a, b


def discretize_zoh(a: np.ndarray, b: np.ndarray, dt: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Zero-order hold of ``dm/dt = a m + b u`` over ``dt``: ``(Abar, Bbar) = blocks of expm([[a, b], [0, 0]] dt)``."""
    d, k = b.shape
    block = np.zeros((d + k, d + k))
    block[:d, :d], block[:d, d:] = a * dt, b * dt
    e = torch.linalg.matrix_exp(torch.as_tensor(block, dtype=torch.float64)).numpy()
    return e[:d, :d].copy(), e[:d, d:].copy()


def shifted_legendre(order: int, r: np.ndarray) -> np.ndarray:
    """``P~_i(r)`` for ``i = 0 .. order-1`` at ``r`` in [0, 1]: ``[order, *r.shape]`` (the delay read-out)."""
    r = np.asarray(r, dtype=np.float64)
    out = np.zeros((int(order), *r.shape))
    for i in range(int(order)):
        out[i] = (-1) ** i * sum(math.comb(i, k) * math.comb(i + k, k) * (-r) ** k for k in range(i + 1))
    return out


def impulse_response(abar: np.ndarray, bbar: np.ndarray, steps: int) -> np.ndarray:
    """``H [steps, d, k]`` with ``H_t = Abar^t Bbar`` (float64): the memory's response to a unit input at step 0."""
    out = np.empty((int(steps), *bbar.shape))
    h = bbar.copy()
    for t in range(int(steps)):
        out[t] = h
        h = abar @ h
    return out


def memory_sequential(u: Tensor, abar: Tensor, bbar: Tensor) -> Tensor:
    """The recurrence ``m_t = Abar m_{t-1} + Bbar u_t`` (``m_0 = 0``) per input channel: ``u [T, B, k]`` ->
    ``m [T, B, k, d]`` (``bbar [d, 1]``: every channel has its own memory). The reference of
    :func:`memory_parallel`."""
    steps, batch, k = u.shape
    m = u.new_zeros(batch, k, abar.shape[0])
    out = []
    for t in range(steps):
        m = m @ abar.t() + u[t].unsqueeze(-1) * bbar[:, 0]
        out.append(m)
    return torch.stack(out)


def memory_parallel(u: Tensor, response: Tensor) -> Tensor:
    """The memory of all steps at once: ``m_t = sum_{s <= t} H_(t-s) u_s`` by an FFT convolution over time.

    ``u [T, B, k]``, ``response [T', d]`` (``H_t`` of :func:`impulse_response` for one channel, ``T' >= T``)
    -> ``m [T, B, k, d]``."""
    steps = u.shape[0]
    if response.shape[0] < steps:
        raise ValueError(f"memory_parallel: the impulse response has {response.shape[0]} steps, the input {steps}")
    n = 2 * steps
    uf = torch.fft.rfft(u.permute(1, 2, 0), n=n)                                  # [B, k, F]
    hf = torch.fft.rfft(response[:steps].t().to(u.dtype), n=n)                    # [d, F]
    m = torch.fft.irfft(uf.unsqueeze(2) * hf, n=n)[..., :steps]                   # [B, k, d, T]
    return m.permute(3, 0, 1, 2)


# ------------------------------------------------------------------------------------------ quantisation
@torch.no_grad()
def sigma_delta(a: Tensor, dt: float = 1.0, v0: float = 0.5) -> Tensor:
    """Integer spike counts ``n [T, ...]`` (in ``a``'s dtype) of the sigma-delta quantiser for activations
    ``a [T, ...]``, stepped through time (``v += a dt; n = floor(v); v -= n``, ``v`` in [0, 1) stays exact to the
    dtype's resolution). :func:`sigma_delta_closed_form` is the same without a loop."""
    out = torch.empty_like(a)
    v = torch.full_like(a[0], v0)
    for t in range(a.shape[0]):
        v.add_(a[t], alpha=dt)
        torch.floor(v, out=out[t])
        v.sub_(out[t])
    return out


def sigma_delta_closed_form(a: Tensor, dt: float = 1.0, v0: float = 0.5) -> Tensor:
    """:func:`sigma_delta` without a loop: ``n_t = floor(v0 + S_t) - floor(v0 + S_(t-1))``, ``S_t = sum_{s<=t}
    a_s dt`` (in float64; returned in ``a``'s dtype)."""
    s = torch.cumsum(a.detach().to(torch.float64) * dt, dim=0) + v0
    level = torch.floor(s)
    first = torch.full_like(level[:1], math.floor(v0))
    return torch.diff(level, dim=0, prepend=first).to(a.dtype)


def quantize(a: Tensor, counts: Tensor, dt: float, alpha: float) -> Tensor:
    """``a + alpha (counts / dt - a)`` with the straight-through gradient ``d/da = 1``; ``alpha = 0`` returns ``a``
    itself (exactly the non-spiking network)."""
    if alpha == 0:
        return a
    return a + alpha * (counts / dt - a).detach()


def alpha_ramp(step: int, steps_per_epoch: int, start_epoch: float, ramp_epochs: float) -> float:
    """The interpolation ``alpha`` of optimiser step ``step`` (0-based): 0 before ``start_epoch`` epochs, rising
    linearly to 1 over ``ramp_epochs`` epochs (a jump when 0), 1 after."""
    epoch = step / max(int(steps_per_epoch), 1)
    if ramp_epochs <= 0:
        return 1.0 if epoch >= start_epoch else 0.0
    return float(min(max((epoch - start_epoch) / ramp_epochs, 0.0), 1.0))


# ------------------------------------------------------------------------------------------ the network
class LMUClassifier(nn.Module):
    """An LMU layer and a linear read-out: ``x [T, B, n_in] -> logits [1, B, n_classes]`` (module docstring).

    ``u_t = E x_t`` (``memory_inputs`` channels); ``m_t`` the Legendre memory of each channel (``order`` ``d``,
    window ``theta`` steps; fixed, not trained); ``a_t = f(W_x x_t + W_m m_t + W_h h_{t-1} + b)`` (``W_h`` only
    if ``recurrent``; ``f`` relu or tanh); ``h_t = a_t + alpha (n_t / dt - a_t)`` with the sigma-delta counts
    ``n_t`` (``spike_dt`` the quantiser's ``dt``, ``v0`` its initial state); the read-out ``W_o r + b_o`` of
    ``r = h_T`` (``readout_tau`` ``None``) or of the low-pass ``r = sum_t (1 - beta) beta^(T-1-t) h_t``,
    ``beta = exp(-1 / readout_tau)``. ``alpha`` (attribute, default 0) is set by the trainer.

    Initialisation (from the global RNG): ``E = 1`` (keras-lmu's psMNIST ``kernel_initializer="ones"``), ``W_x``,
    ``W_m``, ``W_o`` uniform ``+-sqrt(1 / fan_in)`` (variance ``1 / (3 fan_in)``), ``W_h`` orthogonal
    times 0.5 (spectral radius 0.5: with relu units an orthogonal ``W_h`` let activity grow over 784 steps),
    biases 0.
    """

    abar: Tensor
    bbar: Tensor
    response: Tensor

    def __init__(self, n_in: int, n_classes: int, *, order: int = 256, theta: float = 784.0, hidden: int = 212,
                 memory_inputs: int = 1, recurrent: bool = False, activation: str = "relu", spike_dt: float = 1.0,
                 v0: float = 0.5, readout_tau: Optional[float] = None, max_steps: int = 784):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}")
        if min(n_in, n_classes, order, hidden, memory_inputs, max_steps) < 1:
            raise ValueError("LMUClassifier: sizes must be >= 1")
        if not spike_dt > 0:
            raise ValueError(f"LMUClassifier: spike_dt must be > 0, got {spike_dt}")
        self.n_in, self.n_classes, self.order, self.theta = int(n_in), int(n_classes), int(order), float(theta)
        self.hidden, self.memory_inputs, self.recurrent = int(hidden), int(memory_inputs), bool(recurrent)
        self.activation, self.spike_dt, self.v0, self.readout_tau = activation, float(spike_dt), float(v0), readout_tau
        self.alpha = 0.0
        a, b = legendre_delay(self.order, self.theta)
        abar, bbar = discretize_zoh(a, b, 1.0)
        self.register_buffer("abar", torch.as_tensor(abar, dtype=torch.float32))
        self.register_buffer("bbar", torch.as_tensor(bbar, dtype=torch.float32))
        self.register_buffer("response", torch.as_tensor(impulse_response(abar, bbar, max_steps)[:, :, 0],
                                                         dtype=torch.float32))
        self.encoder = nn.Parameter(torch.ones(self.memory_inputs, self.n_in))
        self.input_kernel = nn.Linear(self.n_in, self.hidden)
        self.memory_kernel = nn.Linear(self.memory_inputs * self.order, self.hidden, bias=False)
        self.recurrent_kernel = nn.Linear(self.hidden, self.hidden, bias=False) if self.recurrent else None
        self.readout = nn.Linear(self.hidden, self.n_classes)
        with torch.no_grad():
            for lin in (self.input_kernel, self.memory_kernel, self.readout):
                bound = 1.0 / math.sqrt(lin.in_features)
                lin.weight.uniform_(-bound, bound)
                if lin.bias is not None:
                    lin.bias.zero_()
            if self.recurrent_kernel is not None:
                nn.init.orthogonal_(self.recurrent_kernel.weight, gain=0.5)   # contracting: relu units stay bounded

    def _f(self, z: Tensor) -> Tensor:
        return torch.relu(z) if self.activation == "relu" else torch.tanh(z)

    def memory(self, x: Tensor) -> Tensor:
        """``m [T, B, memory_inputs * d]`` of the inputs ``x [T, B, n_in]``."""
        steps = x.shape[0]
        if steps > self.response.shape[0]:
            raise ValueError(f"LMUClassifier: {steps} steps, built for at most {self.response.shape[0]}")
        u = x @ self.encoder.t()                                                       # [T, B, k]
        return memory_parallel(u, self.response).flatten(2)

    def memory_drive(self, x: Tensor) -> Tensor:
        """``W_m m_t`` for all steps ``[T, B, hidden]``, without forming ``m``: the input channels ``u_c`` convolved
        with the kernels ``G_c,t = W_m,c H_t`` (an FFT convolution over time; equal to ``memory_kernel(memory(x))``,
        about ``order / hidden`` times fewer operations and no ``[T, B, d]`` tensor)."""
        steps = x.shape[0]
        if steps > self.response.shape[0]:
            raise ValueError(f"LMUClassifier: {steps} steps, built for at most {self.response.shape[0]}")
        u = x @ self.encoder.t()                                                       # [T, B, k]
        w = self.memory_kernel.weight.view(self.hidden, self.memory_inputs, self.order)
        kernels = torch.einsum("td,hkd->kht", self.response[:steps].to(x.dtype), w)     # [k, H, T]
        n = 2 * steps
        uf = torch.fft.rfft(u.permute(1, 2, 0), n=n)                                  # [B, k, F]
        gf = torch.fft.rfft(kernels, n=n)                                              # [k, H, F]
        drive = torch.fft.irfft(torch.einsum("bkf,khf->bhf", uf, gf), n=n)[..., :steps]
        return drive.permute(2, 0, 1)

    def hidden_sequence(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(h [T, B, hidden], counts [T, B, hidden])`` (counts of the quantiser, also when ``alpha = 0``)."""
        if x.dim() != 3 or x.shape[-1] != self.n_in:
            raise ValueError(f"LMUClassifier: expected x [T, B, {self.n_in}], got {tuple(x.shape)}")
        drive = self.input_kernel(x) + self.memory_drive(x)                            # [T, B, H]
        alpha, dt = float(self.alpha), self.spike_dt
        if self.recurrent_kernel is None:
            a = self._f(drive)
            counts = sigma_delta(a, dt, self.v0)
            return quantize(a, counts, dt, alpha), counts
        h = drive.new_zeros(drive.shape[1:])
        v = torch.full_like(h, self.v0)
        hs, ns = [], []
        for drive_t in drive.unbind(0):   # one backward node (indexing drive[t] would add a [T, B, H] grad per step)
            a = self._f(drive_t + self.recurrent_kernel(h))
            v = v + a.detach() * dt
            n = torch.floor(v)
            v = v - n
            h = quantize(a, n, dt, alpha)
            hs.append(h)
            ns.append(n)
        return torch.stack(hs), torch.stack(ns)

    def readout_input(self, h: Tensor) -> Tensor:
        if self.readout_tau is None:
            return h[-1]
        beta = math.exp(-1.0 / float(self.readout_tau))
        steps = h.shape[0]
        w = (1 - beta) * beta ** torch.arange(steps - 1, -1, -1, dtype=h.dtype, device=h.device)
        return torch.einsum("t,tbh->bh", w, h)

    def forward_with_counts(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h, counts = self.hidden_sequence(x)
        return self.readout(self.readout_input(h)).unsqueeze(0), counts

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_with_counts(x)[0]

    def extra_repr(self) -> str:
        return (f"n_in={self.n_in}, order={self.order}, theta={self.theta:g}, hidden={self.hidden}, "
                f"recurrent={self.recurrent}, activation={self.activation}, spike_dt={self.spike_dt:g}, "
                f"readout_tau={self.readout_tau}")


# ------------------------------------------------------------------------------------------ training, measures
class AlphaScheduleTrainer(Trainer):
    """A :class:`~braincore.training.trainer.Trainer` that sets ``model.alpha = alpha_schedule(step)`` before every
    optimiser step (``step`` restored from checkpoints, so a resumed run follows the same ramp), and for
    evaluations ``alpha_override`` when set, else the ``alpha`` of the last step trained."""

    def __init__(self, *args, alpha_schedule: Callable[[int], float], **kwargs):
        super().__init__(*args, **kwargs)
        self.alpha_schedule = alpha_schedule
        self.alpha_override: Optional[float] = None

    def train_step(self, x: Tensor, labels: Tensor, total: int):
        setattr(self.model, "alpha", float(self.alpha_schedule(self.step)))
        return super().train_step(x, labels, total)

    def evaluate(self, data, desc: Optional[str] = None) -> dict:
        alpha = self.alpha_override if self.alpha_override is not None else self.alpha_schedule(max(self.step - 1, 0))
        setattr(self.model, "alpha", float(alpha))
        return super().evaluate(data, desc)


def significant_bits(counts: Tensor) -> Tensor:
    """``bit_length(|n|) - trailing_zeros(|n|)`` of integer-valued ``counts`` (0 where ``n = 0``)."""
    n = counts.detach().abs().to(torch.int64)
    out = torch.zeros_like(n)
    nz = n > 0
    v = n[nz]
    length = torch.floor(torch.log2(v.to(torch.float64))).to(torch.int64) + 1
    trailing = torch.log2((v & -v).to(torch.float64)).round().to(torch.int64)
    out[nz] = length - trailing
    return out


@torch.no_grad()
def activity_measures(model: LMUClassifier, batches: Iterable[Tensor]) -> dict:
    """The spiking network's (``alpha = 1``) activity over ``batches`` of inputs ``[T, B, n_in]``: bits per
    activation, significant bits per weight multiply (module docstring), non-zero counts per unit and step,
    spike counts per unit and step (``mean |n|``) and the largest count."""
    was, training = model.alpha, model.training
    model.eval()
    model.alpha = 1.0
    peak = None
    negative = False
    total = nonzero = sig = abs_sum = 0.0
    try:
        for x in batches:
            _, counts = model.forward_with_counts(x)
            c = counts.abs()
            m = c.amax(dim=(0, 1))
            peak = m if peak is None else torch.maximum(peak, m)
            negative = negative or bool((counts < 0).any())
            total += counts.numel()
            nonzero += float((counts != 0).sum())
            sig += float(significant_bits(counts).sum())
            abs_sum += float(c.sum())
    finally:
        model.alpha = was
        model.train(training)
    if peak is None:
        raise ValueError("activity_measures: no batches")
    bits = torch.log2(1 + peak.to(torch.float64)) + (1.0 if negative else 0.0) * (peak > 0)
    return {"bits_per_activation": float(bits.mean()),
            "significant_bits_per_weight_multiply": sig / nonzero if nonzero else 0.0,
            "nonzero_fraction": nonzero / total, "spikes_per_unit_step": abs_sum / total,
            "max_count": float(peak.max())}


def parameter_count(model: nn.Module) -> int:
    """Trained parameters (the fixed memory matrices are buffers, not counted)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
