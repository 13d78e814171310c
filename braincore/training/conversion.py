"""ANN-to-SNN conversion of a trained ReLU (or quantisation-clip-floor) MLP into integrate-and-fire neurons.

**The ANN** (:class:`ReLUNet`): ``a_0 = x`` (pixels in [0, 1], ``[B, N]``), ``a_l = h(W_l a_{l-1} + b_l)`` for the
hidden layers, ``z = W_L a_{L-1} + b_L`` the logits. ``h`` is ReLU, or the quantisation-clip-floor-shift
activation of Bu et al. 2022 (:class:`QCFS`, "QCFS")::

    h(x) = lambda / L * clip(floor(x L / lambda + 1/2), 0, L)

with one trainable ``lambda`` per layer (the SNN's threshold after conversion) and ``L`` quantisation levels;
the floor passes gradients straight through (as in the authors' code). Forward ``x [1, B, N] -> [1, B, C]``, so
the project's :class:`~braincore.training.trainer.Trainer` trains it like any classifier (one "time step").

**Threshold balancing** (:func:`convert`). Layer ``l`` gets a scale ``lambda_l``: for ReLU the ``p``-th percentile
(``p = 99.9``) of all its activations on a set of training images, the *robust normalisation* of Rueckauer et al.
2017 (``p = 100``: the maximum, Diehl et al. 2015); for QCFS its trained ``lambda`` (Bu et al.). The read-out is
balanced by the percentile of its logits in both cases. The weights are then normalised so that every threshold
is 1 (``lambda_0 = 1``, the input range)::

    W'_l = W_l lambda_{l-1} / lambda_l,    b'_l = b_l / lambda_l,    theta_l = 1

**The SNN** (:func:`simulate`): integrate-and-fire neurons (no leak) with reset by subtraction, stepped
``t = 1..T``; the first layer receives the pixels as a constant current (no input encoding noise), the biases
are constant currents, spikes pass to the next layer in the same step::

    v_l[t] = v_l[t-1] + W'_l s_{l-1}[t] + b'_l        (s_0[t] = x)
    s_l[t] = H(v_l[t] - 1),   v_l[t] <- v_l[t] - s_l[t]
    v_l[0] = v0  (0 for ReLU conversions, 1/2 for QCFS: Bu et al.'s optimal initial membrane)

The read-out layer is an IF layer too (its spikes are counted); the class score after ``t`` steps is its
*integrated input* ``sum_{k <= t} (W'_L s_{L-1}[k] + b'_L)`` (= spikes + membrane - v0: a non-spiking
accumulator, no ties), so one run of ``T_max`` steps scores every ``T <= T_max``
(:func:`accuracy_curve`).

**Why rates approach the ANN.** Summing the update over ``t`` steps: ``v[t] - v0 = sum I - N(t)``, so the rate
``r = N(t)/t = mean input - (v[t] - v0)/t``. While ``v`` stays in ``[0, 1)`` (no spike is lost) the rate is the
clipped mean input up to ``1/t``: for a constant input ``c >= 0`` from ``v0`` the count is exactly
``N(t) = floor(t c + v0)`` for ``c <= 1`` (closed form, :func:`if_spike_count`), i.e. ``r = clip(c, 0, 1)``
within ``1/t``; with ``v0 = 1/2`` it is ``c`` rounded to the grid ``1/t`` -- exactly the QCFS ``h`` with
``lambda = 1`` and ``L = t``. Bu et al. prove more generally that with the shift 1/2 the *expected* conversion
error is zero for any ``T`` and ``L`` (under their assumption of uniformly distributed residual membranes); for
inputs that vary from step to step (deeper layers) it holds on average, not per neuron. Layer by layer the error
of the input rates propagates through ``W'`` and adds ``O(1/t)`` per layer.

**Efficiency** (the conventions of :mod:`braincore.training.efficiency`): spikes per sample (all hidden layers and
the read-out); synaptic operations = one accumulate per spike per outgoing synapse (``spikes_l n_{l+1}``); the
first layer's analog input costs ``T n_0 n_1`` MACs; the ANN costs ``sum n_{l-1} n_l`` MACs per image.

References: P. U. Diehl, D. Neil, J. Binas, M. Cook, S.-C. Liu, M. Pfeiffer, "Fast-classifying, high-accuracy
spiking deep networks through weight and threshold balancing", IJCNN 2015. B. Rueckauer, I.-A. Lungu, Y. Hu,
M. Pfeiffer, S.-C. Liu, "Conversion of continuous-valued deep networks to efficient event-driven networks for
image classification", Front. Neurosci. 11:682, 2017. T. Bu, W. Fang, J. Ding, P. Dai, Z. Yu, T. Huang, "Optimal
ANN-SNN conversion for high-accuracy and ultra-low-latency spiking neural networks", ICLR 2022.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

import numpy as np
import torch
from torch import nn

Tensor = torch.Tensor

__all__ = ["QCFS", "ReLUNet", "ConvertedSNN", "convert", "simulate", "accuracy_curve", "if_spike_count",
           "qcfs_value", "to_assembly", "ACTIVATIONS"]

ACTIVATIONS = ("relu", "qcfs")


def qcfs_value(x: float, lam: float, levels: int) -> float:
    """The QCFS activation's closed form ``lam / L * clip(floor(x L / lam + 1/2), 0, L)`` for one number."""
    return lam / levels * min(max(math.floor(x * levels / lam + 0.5), 0), levels)


def if_spike_count(current: float, steps: int, theta: float = 1.0, v0: float = 0.0) -> int:
    """Spikes of an IF neuron with reset by subtraction under a constant ``current`` for ``steps`` steps from
    ``v0`` (``0 <= v0 < theta``), at most one spike per step: ``clip(floor((t c + v0) / theta), 0, t)``."""
    return int(min(max(math.floor((steps * current + v0) / theta), 0), steps))


class _FloorSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return torch.floor(x)

    @staticmethod
    def backward(ctx, grad):
        return grad


class QCFS(nn.Module):
    """``lambda / L * clip(floor(x L / lambda + 1/2), 0, L)`` (Bu et al. 2022) with a trainable ``lambda``
    (initial ``lam``) and ``levels = L``; gradients through the floor are straight-through."""

    def __init__(self, levels: int = 8, lam: float = 8.0):
        super().__init__()
        if levels < 1:
            raise ValueError(f"levels must be >= 1, got {levels}")
        self.levels = int(levels)
        self.lam = nn.Parameter(torch.tensor(float(lam)))

    def forward(self, x: Tensor) -> Tensor:
        y = torch.clamp(x / self.lam, 0.0, 1.0)
        return _FloorSTE.apply(y * self.levels + 0.5) / self.levels * self.lam


class ReLUNet(nn.Module):
    """An MLP ``sizes[0] -> ... -> sizes[-1]`` with ReLU or QCFS hidden activations. ``forward(x [T, B, N])``
    scores the time-mean of ``x`` (the Trainer's ``[T, B, N]`` convention, ``T = 1`` here) and returns the logits
    ``[1, B, C]``; :meth:`activations` gives every layer's output for ``x [B, N]``."""

    def __init__(self, sizes: Sequence[int], activation: str = "relu", levels: int = 8, lam: float = 8.0):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}")
        if len(sizes) < 2:
            raise ValueError("sizes needs an input and an output size")
        self.sizes = [int(s) for s in sizes]
        self.activation = activation
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(self.sizes[:-1], self.sizes[1:]))
        n_hidden = len(self.sizes) - 2
        acts = [QCFS(levels, lam) if activation == "qcfs" else nn.ReLU() for _ in range(n_hidden)]
        self.acts = nn.ModuleList(acts)

    def activations(self, x: Tensor) -> list[Tensor]:
        """``[a_1, ..., a_{L-1}, z]``: the hidden activations and the logits for ``x [B, N]``."""
        out = []
        for linear, act in zip(self.linears[:-1], self.acts):
            x = act(linear(x))
            out.append(x)
        out.append(self.linears[-1](x))
        return out

    def forward(self, x: Tensor) -> Tensor:
        return self.activations(x.mean(dim=0))[-1].unsqueeze(0)


@dataclass
class ConvertedSNN:
    """Normalised weights ``[n_l, n_{l-1}]`` and biases of every layer (thresholds 1), the scales ``lambda_l``
    they were normalised by and the initial membrane ``v0`` (in units of the threshold)."""

    weights: list[Tensor]
    biases: list[Tensor]
    scales: list[float]
    v0: float

    @property
    def sizes(self) -> list[int]:
        return [int(self.weights[0].shape[1])] + [int(w.shape[0]) for w in self.weights]


@torch.no_grad()
def layer_scales(model: ReLUNet, x: Tensor, percentile: float = 99.9) -> list[float]:
    """``lambda_l`` per layer (module docstring): the ``percentile`` of layer ``l``'s activations over ``x [B, N]``
    (all units and samples), QCFS layers their trained ``lambda``; the read-out the percentile of its logits."""
    if not 0.0 < percentile <= 100.0:
        raise ValueError(f"percentile must lie in (0, 100], got {percentile}")
    acts = model.activations(x)
    scales = []
    for i, a in enumerate(acts):
        act = model.acts[i] if i < len(model.acts) else None
        if isinstance(act, QCFS):
            scales.append(float(act.lam.detach().abs()))
            continue
        value = float(np.percentile(a.detach().to(torch.float64).cpu().numpy(), percentile))   # linear interpolation
        scales.append(value if value > 0 else 1.0)
    return scales


@torch.no_grad()
def convert(model: ReLUNet, x: Tensor, percentile: float = 99.9, v0: Optional[float] = None,
            dtype: torch.dtype = torch.float64) -> ConvertedSNN:
    """The SNN of ``model`` balanced on ``x [B, N]`` (module docstring); ``v0`` default 1/2 for QCFS, 0 for
    ReLU."""
    scales = layer_scales(model, x, percentile)
    weights, biases = [], []
    prev = 1.0
    for linear, lam in zip(model.linears, scales):
        assert isinstance(linear, nn.Linear)
        weights.append(linear.weight.detach().to(dtype).cpu() * prev / lam)
        biases.append(linear.bias.detach().to(dtype).cpu() / lam)
        prev = lam
    if v0 is None:
        v0 = 0.5 if model.activation == "qcfs" else 0.0
    return ConvertedSNN(weights, biases, scales, float(v0))


@torch.no_grad()
def simulate(snn: ConvertedSNN, x: Tensor, steps: int, record: bool = False) -> dict:
    """Run ``snn`` on ``x [B, N]`` (pixels as constant currents) for ``steps`` steps (module docstring).

    Returns ``{"scores": [T, B, C] integrated read-out input after each step, "spikes": [n_layers] total spikes
    per layer (hidden layers and read-out, summed over the batch), "per_step": [T, n_layers] the same totals
    after each step (cumulative), "counts": [per layer, spike counts [B, n_l]],
    "membranes": final membranes per layer, "rasters": [per layer, [T, B, n_l]] (only with ``record``)}``."""
    w0 = snn.weights[0]
    x = x.to(w0.dtype).reshape(x.shape[0], -1)
    first = x @ w0.t() + snn.biases[0]                      # the constant input current of layer 1
    v = [torch.full((x.shape[0], w.shape[0]), snn.v0, dtype=w0.dtype) for w in snn.weights]
    counts = [torch.zeros_like(m) for m in v]
    rasters: list[list[Tensor]] = [[] for _ in v]
    integrated = torch.zeros_like(v[-1])
    scores = []
    per_step: list[list[float]] = []
    for _ in range(steps):
        s = x
        for i, (w, b) in enumerate(zip(snn.weights, snn.biases)):
            current = first if i == 0 else s @ w.t() + b   # s: the spikes of layer i - 1 in this step
            v[i] += current
            s = (v[i] >= 1.0).to(w0.dtype)
            v[i] -= s
            counts[i] += s
            if record:
                rasters[i].append(s)
        per_step.append([float(c.sum()) for c in counts])
        integrated += current
        scores.append(integrated.clone())
    out = {"scores": torch.stack(scores), "counts": counts, "membranes": v,
           "spikes": [float(c.sum()) for c in counts], "per_step": torch.tensor(per_step, dtype=torch.float64)}
    if record:
        out["rasters"] = [torch.stack(r) for r in rasters]
    return out


@torch.no_grad()
def accuracy_curve(snn: ConvertedSNN, batches: Iterable[tuple[Tensor, Tensor]], steps: int) -> dict:
    """Accuracy after every ``t = 1..steps`` from one run of ``steps`` per batch, and per-sample efficiency.

    Returns ``{"accuracy": [steps] list, "samples", "spikes_per_sample" (all layers over ``steps``),
    "spikes_per_layer", "synops_per_sample" (accumulates: spikes x fan-out, hidden layers' spikes only),
    "input_macs_per_sample" (``steps n_0 n_1``), "ann_macs_per_sample", "spikes_at": [steps] cumulative spikes
    per sample after each step, "synops_at": likewise}``."""
    sizes = snn.sizes
    correct = torch.zeros(steps, dtype=torch.long)
    n = 0
    per_layer = [0.0] * len(snn.weights)
    spikes_at = torch.zeros(steps, dtype=torch.float64)
    synops_at = torch.zeros(steps, dtype=torch.float64)
    fan_out = torch.tensor([float(s) for s in sizes[2:]] + [0.0], dtype=torch.float64)
    for x, labels in batches:
        run = simulate(snn, x, steps)
        correct += (run["scores"].argmax(dim=2) == labels.reshape(1, -1)).sum(dim=1).cpu()
        n += int(labels.shape[0])
        for i, c in enumerate(run["spikes"]):
            per_layer[i] += c
        cumulative = run["per_step"]                                # [T, layers], summed over the batch
        spikes_at += cumulative.sum(dim=1)
        synops_at += cumulative @ fan_out
    if n == 0:
        raise ValueError("accuracy_curve: no samples")
    return {"accuracy": (correct.to(torch.float64) / n).tolist(), "samples": n,
            "spikes_per_sample": sum(per_layer) / n, "spikes_per_layer": [c / n for c in per_layer],
            "synops_per_sample": float(synops_at[-1]) / n, "input_macs_per_sample": float(steps * sizes[0] * sizes[1]),
            "ann_macs_per_sample": float(sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))),
            "spikes_at": (spikes_at / n).tolist(), "synops_at": (synops_at / n).tolist()}


def to_assembly(snn: ConvertedSNN, x: Tensor, steps: int, name: str = "converted"):
    """The converted network for one image ``x [N]`` as an :class:`~braincore.graph.Assembly` the
    :class:`~braincore.simulator.Simulator` runs (``steps + L - 1`` steps, ``dt = 1 ms``, float64).

    Populations ``layer1 .. layerL``: ``if`` neurons with ``C_m = 1000 pF`` (so 1 nA over one 1 ms step raises
    ``v`` by 1 mV), ``v_th = 1 mV``, ``v_reset = v_rest = 0``, ``reset: subtract``, no refractory period, initial
    ``v = v0`` mV; projections ``all_to_all`` instantaneous synapses carrying ``W'`` in mV.

    What differs from :func:`simulate`, and why: the simulator has no analog (non-spike) connection, so layer 1's
    input ``W'_1 x + b'_1`` is computed here and given as a ``time_varying_current`` (the same every step), and a
    projection's delay is at least one step, so layer ``l`` sees the spikes of layer ``l - 1`` one step later.
    Layer ``l``'s bias current therefore starts at step ``l - 1`` (a ``time_varying_current`` of zeros before),
    and with ``v0 < 1`` layer ``l`` then does at step ``k + l - 1`` exactly what :func:`simulate` does at step
    ``k``: its raster is the reference raster delayed by ``l - 1`` steps.
    """
    from ..graph import Assembly

    a = Assembly(name)
    n_layers = len(snn.weights)
    params = {"C_m": "1000 pF", "v_th": "1 mV", "v_reset": "0 mV", "v_rest": "0 mV", "t_ref": "0 ms",
              "reset": "subtract"}
    total = steps + n_layers - 1
    first = (snn.weights[0] @ x.to(snn.weights[0].dtype).reshape(-1) + snn.biases[0]).tolist()
    for i, w in enumerate(snn.weights):
        pop = f"layer{i + 1}"
        a.add_population(pop, "if", int(w.shape[0]), params=dict(params), init={"v": f"{snn.v0!r} mV"})
        row = first if i == 0 else snn.biases[i].tolist()
        values = [[0.0] * len(row)] * i + [row] * (total - i)
        a.add_input(f"drive{i + 1}", "time_varying_current", pop, values=values)
        a.add_monitor(f"spikes{i + 1}", "spikes", pop)
        if i > 0:
            pre: list[int] = []
            post: list[int] = []
            n_pre, n_post = int(w.shape[1]), int(w.shape[0])
            for j in range(n_pre):
                pre.extend([j] * n_post)
                post.extend(range(n_post))
            a.add_projection(f"layer{i}", pop, {"type": "explicit", "pre": pre, "post": post},
                             w.t().reshape(-1).tolist(), {"type": "instantaneous"}, delay="1 ms",
                             name=f"w{i + 1}")
    a.set_run(duration=float(total), dt=1.0, dtype="float64", seed=0)
    return a


def simulate_assembly(assembly, sizes: Sequence[int], steps: int) -> list[Tensor]:
    """Run ``assembly`` (from :func:`to_assembly`) in the Simulator; the rasters ``[steps, n_l]`` of every layer,
    realigned (layer ``l`` shifted back by ``l - 1`` steps) to compare with :func:`simulate`'s."""
    from ..simulator import Simulator

    n_layers = len(sizes) - 1
    total = steps + n_layers - 1
    sim = Simulator(assembly, batch=1, dt=1.0, dtype="float64", device="cpu", backend="torch")
    sim.run(float(total))
    out = []
    for i in range(n_layers):
        m = sim.monitor(f"spikes{i + 1}")
        raster = torch.zeros(total, int(sizes[i + 1]), dtype=torch.float64)
        raster[torch.as_tensor(m["step"], dtype=torch.long), torch.as_tensor(m["neuron"], dtype=torch.long)] = 1.0
        out.append(raster[i:i + steps])
    return out
