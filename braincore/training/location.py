"""Location spiking neurons and the hybrid time/location network (Kang, Banerjee, Chopp, Katsaggelos & Cossairt,
"Event-driven tactile learning with location spiking neurons", IJCNN 2022, arXiv:2209.01080; extended as "Boost
event-driven tactile learning with location spiking neurons", Front. Neurosci. 17:1127537, 2023,
arXiv:2210.04277).

Event data binned as ``x [T, B, L]``: ``T`` time bins, ``B`` samples, ``L`` locations (taxels in the paper; here
sensor pixels x polarity, the channels of :func:`braincore.data.event_tensors.bin_events`).

**Time LIF** (the usual neuron, "TLIF"): each unit ``n`` of a layer integrates over time, one input feature per
location, ``V_n[t] = beta V_n[t-1] + sum_l W[n, l] x[t, l] + b_n - theta S_n[t-1]``, ``S_n[t] = H(V_n[t] -
theta)``: :class:`~braincore.training.layers.LIFLayer` on ``x`` as it is (``[T, B, L] -> [T, B, N]``).

**Location LIF** ("LLIF", the paper's new neuron): the roles of the two axes are swapped. The membrane runs over
the *locations* ``l = 0 .. L-1`` as its sequence, and the time bins are its input features:

    ``V_n[l] = beta V_n[l-1] + sum_t W[n, t] x[t, l] + b_n - theta S_n[l-1]``,  ``S_n[l] = H(V_n[l] - theta)``,

``V_n[-1] = 0``, ``beta = exp(-1 / tau)`` with ``tau`` in *locations*, soft reset by subtraction (the fused node,
:func:`braincore.training.fused_lif.lif_sequence`). :class:`LocationLIF` is exactly ``LIFLayer(T, N)`` applied to
the transposed tensor ``x.permute(2, 1, 0)`` (``[L, B, T]``); it returns location spikes ``[L, B, N]``. A unit
thus sees the whole time course of one location at once and carries state from location to location: it
extracts features along space (the paper's point: neighbouring taxels' time courses, which a time neuron sees
only as separate inputs). The order of the locations is the channel order ``c = (p H + y) W + x`` of the binning
(raster order within a polarity).

**Hybrid model** (LIF by default; the IJCNN paper pairs a TSRM network with an LSRM one, ``neuron = "srm"``, the
Frontiers paper also TLIF with LLIF neurons in graph networks): a *time branch* (time neurons, ``[T, B, L] -> [T,
B, H_t]``, a non-spiking leaky read-out over time :class:`~braincore.training.layers.LeakyReadout` -> ``[T, B,
K]``, averaged over ``T``) and a *location branch* (location neurons ``[L, B, H_l]``, a leaky read-out over
locations, averaged over ``L``) are fused by a weighted sum of their class scores, ``o = w_t o_time + w_l
o_location`` (``w`` fixed or learnable, default 1, 1). This is our reading: the papers' abstracts say the hybrid
"combines" the two networks; their full text (fusion weights, spike-count loss) could not be consulted here. The
twin models of the same size put all ``H_t + H_l`` hidden units in one branch: ``time`` (the ordinary SNN
baseline) or ``location``. Trained with cross-entropy of the fused scores (:class:`ScoreLoss`).

**Efficiency** (:func:`efficiency`): hidden spikes per sample; synaptic operations per sample, ``SynOps = sum
over presynaptic events of their fan-out`` (an input count ``k`` reaching ``H`` units counts ``k H``: ``E (H_t +
H_l)`` for ``E`` input events, plus hidden spikes ``x K`` into the read-outs); sequential steps per sample (``T``
for the time branch, ``L`` for the location branch).

**Spike response model** (``neuron = "srm"``; the IJCNN paper's TSRM/LSRM, in SLAYER's form, Shrestha & Orchard
2018): over any sequence axis ``k`` (time bins for TSRM, locations for LSRM, where :class:`LocationSRM` is
:class:`SRMLayer` on the transposed tensor),

    ``u_n[k] = sum_{m >= 1} eps(m) I_n[k - m] + sum_{m >= 1} nu(m) S_n[k - m]``,  ``S_n[k] = H(u_n[k] - theta)``,

with ``I = x W^T + b``, the PSP kernel ``eps(m) = (m / tau) exp(1 - m / tau)`` and the refractory kernel ``nu(m) =
-2 theta (m / tau_ref) exp(1 - m / tau_ref)`` (``tau``, ``tau_ref`` in steps of the axis). The PSP term is two
leaky integrations (:func:`~braincore.training.layers.leaky_integrate`, no Python loop; :func:`srm_psp`), the
refractory term a second-order recursion stepped with the spikes: ``p[k] = a p[k-1] + S[k-1]``, ``q[k] = a q[k-1] +
p[k]`` gives ``sum_{m >= 1} m a^m S[k - m] = a q[k]`` (``a = exp(-1 / tau_ref)``). ``H`` passes gradients
through the surrogate of :mod:`braincore.surrogate` (fast sigmoid by default), as the LIF layers do.

Not implemented (scope): the graph-network hybrid of the Frontiers paper.
"""
from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ..surrogate import get_surrogate
from .layers import LeakyReadout, LIFLayer, init_connections, leaky_integrate
from .losses import LossResult

Tensor = torch.Tensor

__all__ = ["MODELS", "NEURONS", "LocationLIF", "LocationSRM", "SRMLayer", "srm_psp", "Branch", "HybridNetwork",
           "ScoreLoss", "build_model", "efficiency", "to_locations"]

#: the model choices of :func:`build_model`
MODELS = ("hybrid", "time", "location")
#: the neuron models of a branch
NEURONS = ("lif", "srm")


def to_locations(x: Tensor) -> Tensor:
    """``[T, B, L] -> [L, B, T]``: the locations become the sequence axis and the time bins the features."""
    if x.dim() != 3:
        raise ValueError(f"to_locations: need [T, B, L], got {tuple(x.shape)}")
    return x.permute(2, 1, 0).contiguous()


class LocationLIF(nn.Module):
    """Location LIF neurons (module docstring): ``forward(x [T, B, L]) -> spikes [L, B, n_out]``, the membrane
    integrated over locations, with the ``n_in = T`` time bins as inputs. Keyword options as
    :class:`~braincore.training.layers.LIFLayer` (``tau_m`` counts locations)."""

    def __init__(self, n_steps: int, n_out: int, **options):
        super().__init__()
        self.n_steps, self.n_out = int(n_steps), int(n_out)
        self.lif = LIFLayer(n_steps, n_out, **options)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 3 or x.shape[0] != self.n_steps:
            raise ValueError(f"LocationLIF: input must be [{self.n_steps}, B, L], got {tuple(x.shape)}")
        return self.lif(to_locations(x))

    def extra_repr(self) -> str:
        return f"{self.n_steps} time bins -> {self.n_out} location neurons"


def srm_psp(current: Tensor, tau: float) -> Tensor:
    """``sum_{m >= 1} eps(m) I[k - m]`` over the first axis of ``current [S, ...]``, ``eps(m) = (m / tau) exp(1 -
    m / tau)``: two leaky integrations give ``Y[k] = sum_{m >= 0} (m + 1) a^m I[k - m]``, and ``sum_{m >= 1} m a^m
    I[k - m] = a Y[k - 1]`` (``a = exp(-1 / tau)``)."""
    a = math.exp(-1.0 / tau)
    twice = leaky_integrate(leaky_integrate(current, a), a)
    shifted = torch.cat([torch.zeros_like(twice[:1]), twice[:-1]])
    return (math.e / tau) * a * shifted


class SRMLayer(nn.Module):
    """Spike-response-model layer over the first axis (module docstring): ``forward(x [S, B, n_in]) -> spikes
    [S, B, n_out]``; weights as :class:`~braincore.training.layers.LIFLayer` (uniform ``+-init_gain /
    sqrt(n_in)``)."""

    def __init__(self, n_in: int, n_out: int, *, tau: float = 4.0, tau_ref: Optional[float] = None,
                 threshold: float = 1.0, surrogate: str = "fast_sigmoid", bias: bool = True, init_gain: float = 1.0):
        super().__init__()
        if tau <= 0 or (tau_ref is not None and tau_ref <= 0) or threshold <= 0:
            raise ValueError("SRMLayer: tau, tau_ref and threshold must be > 0")
        self.n_in, self.n_out = int(n_in), int(n_out)
        self.tau, self.tau_ref = float(tau), float(tau_ref if tau_ref is not None else tau)
        self.theta = float(threshold)
        self.surrogate = get_surrogate(surrogate)
        init_connections(self, n_in, n_out, bias, False, init_gain, 1.0, None)

    def membrane_free(self, x: Tensor) -> Tensor:
        """The PSP term ``[S, B, n_out]`` (the membrane without refractoriness)."""
        if x.dim() != 3 or x.shape[-1] != self.n_in:
            raise ValueError(f"SRMLayer: input must be [S, B, {self.n_in}], got {tuple(x.shape)}")
        weight, bias = self.weight, self.bias
        assert isinstance(weight, Tensor)
        current = x @ weight.T
        if isinstance(bias, Tensor):
            current = current + bias
        return srm_psp(current, self.tau)

    def forward(self, x: Tensor) -> Tensor:
        psp = self.membrane_free(x)
        a = math.exp(-1.0 / self.tau_ref)
        refractory = -2.0 * self.theta * (math.e / self.tau_ref) * a
        p = q = s = torch.zeros_like(psp[0])
        out = []
        for k in range(psp.shape[0]):
            p = a * p + s
            q = a * q + p
            s = self.surrogate(psp[k] + refractory * q - self.theta)
            out.append(s)
        return torch.stack(out)

    def extra_repr(self) -> str:
        return f"{self.n_in} -> {self.n_out}, tau={self.tau:g}, tau_ref={self.tau_ref:g}, theta={self.theta:g}"


class LocationSRM(nn.Module):
    """Location SRM neurons (LSRM, module docstring): ``forward(x [T, B, L]) -> spikes [L, B, n_out]``, the
    kernels running over locations and the ``T`` time bins the inputs; options as :class:`SRMLayer`."""

    def __init__(self, n_steps: int, n_out: int, **options):
        super().__init__()
        self.n_steps, self.n_out = int(n_steps), int(n_out)
        self.srm = SRMLayer(n_steps, n_out, **options)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 3 or x.shape[0] != self.n_steps:
            raise ValueError(f"LocationSRM: input must be [{self.n_steps}, B, L], got {tuple(x.shape)}")
        return self.srm(to_locations(x))


class Branch(nn.Module):
    """One branch: spiking layer then a leaky read-out over its sequence axis, scores = the read-out membrane
    averaged over that axis. ``axis = "time"``: ``LIFLayer(L, H)`` (or ``SRMLayer``) on ``[T, B, L]``;
    ``"location"``: :class:`LocationLIF` (or :class:`LocationSRM`) ``(T, H)``. ``neuron``: ``lif`` or ``srm``
    (``learn_tau``: LIF only). ``forward(x) -> (scores [B, K], spikes [S, B, H])``."""

    def __init__(self, axis: str, n_steps: int, n_locations: int, hidden: int, n_classes: int, *, tau: float,
                 readout_tau: float, threshold: float = 1.0, surrogate: str = "fast_sigmoid",
                 learn_tau: bool = True, neuron: str = "lif"):
        super().__init__()
        if axis not in ("time", "location"):
            raise ValueError(f"unknown branch axis {axis!r}")
        if neuron not in NEURONS:
            raise ValueError(f"unknown neuron {neuron!r}; choose one of {', '.join(NEURONS)}")
        self.axis, self.hidden = axis, int(hidden)
        self.layer: nn.Module
        if neuron == "lif":
            opts: "dict[str, Any]" = dict(tau_m=tau, threshold=threshold, surrogate=surrogate, learn_tau=learn_tau)
            self.layer = (LIFLayer(n_locations, hidden, **opts) if axis == "time"
                          else LocationLIF(n_steps, hidden, **opts))
        else:
            self.layer = (SRMLayer(n_locations, hidden, tau=tau, threshold=threshold, surrogate=surrogate)
                          if axis == "time" else LocationSRM(n_steps, hidden, tau=tau, threshold=threshold,
                                                             surrogate=surrogate))
        self.readout = LeakyReadout(hidden, n_classes, tau=readout_tau)

    def forward(self, x: Tensor) -> "tuple[Tensor, Tensor]":
        spikes = self.layer(x)
        return self.readout(spikes).mean(dim=0), spikes


class HybridNetwork(nn.Module):
    """Time branch and/or location branch, fused ``o = sum_b w_b o_b`` (module docstring).

    ``forward(x [T, B, L]) -> (scores [1, B, K], hidden spikes)``, hidden in branch order (time first), each
    ``[S, B, H_b]`` with ``S = T`` or ``L``. ``hidden`` maps ``"time"``/``"location"`` to branch sizes (a size of
    0 leaves the branch out)."""

    def __init__(self, n_steps: int, n_locations: int, n_classes: int, hidden: "dict[str, int]", *,
                 tau_time: float = 10.0, tau_location: float = 10.0, readout_tau: float = 10.0,
                 threshold: float = 1.0, surrogate: str = "fast_sigmoid", learn_tau: bool = True,
                 weights: Sequence[float] = (1.0, 1.0), learn_weights: bool = False, neuron: str = "lif"):
        super().__init__()
        self.n_steps, self.n_locations, self.n_classes = int(n_steps), int(n_locations), int(n_classes)
        self.branches = nn.ModuleDict()
        self._sizes: "dict[str, int]" = {}
        w = []
        for i, (axis, tau) in enumerate((("time", tau_time), ("location", tau_location))):
            size = int(hidden.get(axis, 0))
            if size > 0:
                self.branches[axis] = Branch(axis, n_steps, n_locations, size, n_classes, tau=tau,
                                             readout_tau=readout_tau, threshold=threshold, surrogate=surrogate,
                                             learn_tau=learn_tau, neuron=neuron)
                self._sizes[axis] = size
                w.append(float(weights[i]))
        if not self.branches:
            raise ValueError("HybridNetwork needs at least one branch with hidden units")
        fusion = torch.tensor(w)
        self.fusion: Optional[nn.Parameter]
        if learn_weights:
            self.fusion = nn.Parameter(fusion)
        else:
            self.fusion = None
            self.register_buffer("fusion_fixed", fusion)

    @property
    def hidden_sizes(self) -> "dict[str, int]":
        return dict(self._sizes)

    def fusion_weights(self) -> Tensor:
        """``[w_b]``, one per branch present (time first)."""
        if self.fusion is not None:
            return self.fusion
        fixed = self.fusion_fixed
        assert isinstance(fixed, Tensor)
        return fixed

    def forward(self, x: Tensor) -> "tuple[Tensor, list[Tensor]]":
        if x.dim() != 3 or x.shape[0] != self.n_steps or x.shape[2] != self.n_locations:
            raise ValueError(f"HybridNetwork: input must be [{self.n_steps}, B, {self.n_locations}], got "
                             f"{tuple(x.shape)}")
        w = self.fusion_weights()
        scores, hidden = None, []
        for i, branch in enumerate(self.branches.values()):
            s, spikes = branch(x)
            scores = w[i] * s if scores is None else scores + w[i] * s
            hidden.append(spikes)
        assert scores is not None
        return scores.unsqueeze(0), hidden


def build_model(model: str, n_steps: int, n_locations: int, n_classes: int, hidden: int, *,
                time_fraction: float = 0.5, **options) -> HybridNetwork:
    """``model``: ``hybrid`` (``round(time_fraction * hidden)`` time neurons, the rest location neurons),
    ``time`` or ``location`` (all ``hidden`` units in that branch): networks of the same hidden size."""
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
    if model == "hybrid":
        n_time = int(round(time_fraction * hidden))
        if not 0 < n_time < hidden:
            raise ValueError(f"hybrid: time_fraction {time_fraction} leaves a branch of {hidden} units empty")
        sizes = {"time": n_time, "location": hidden - n_time}
    else:
        sizes = {model: hidden}
    return HybridNetwork(n_steps, n_locations, n_classes, sizes, **options)


class ScoreLoss:
    """Cross-entropy of the fused scores ``[1, B, K]`` (a trainer loss ``(output, labels, hidden) ->
    LossResult``)."""

    def __init__(self, label_smoothing: float = 0.0):
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must lie in [0, 1), got {label_smoothing}")
        self.label_smoothing = float(label_smoothing)

    def __call__(self, output: Tensor, labels: Tensor, hidden: Sequence[Tensor] = ()) -> LossResult:
        scores = output.reshape(output.shape[-2], output.shape[-1])
        task = F.cross_entropy(scores, labels, label_smoothing=self.label_smoothing)
        return LossResult(task, task.detach(), task.new_zeros(()), scores.detach())


@torch.no_grad()
def efficiency(model: HybridNetwork, batches) -> dict:
    """Per-sample means over ``batches`` (inputs ``[T, B, L]``): ``input_events``, ``spikes`` (all hidden units),
    ``spikes_per_branch``, ``synops`` (module docstring) and ``steps`` (sequential steps per branch)."""
    was = model.training
    model.eval()
    events = spikes_total = synops = 0.0
    per_branch = {axis: 0.0 for axis in model.branches}
    samples = 0
    try:
        for x in batches:
            _, hidden = model(x)
            e = float(x.sum())
            events += e
            for axis, h in zip(model.branches, hidden):
                n = float(h.sum())
                per_branch[axis] += n
                spikes_total += n
                synops += e * model.hidden_sizes[axis] + n * model.n_classes
            samples += int(x.shape[1])
    finally:
        model.train(was)
    if samples == 0:
        raise ValueError("efficiency: no samples")
    steps = {axis: model.n_steps if axis == "time" else model.n_locations for axis in model.branches}
    return {"input_events": events / samples, "spikes": spikes_total / samples,
            "spikes_per_branch": {a: v / samples for a, v in per_branch.items()}, "synops": synops / samples,
            "steps": steps, "samples": samples}
