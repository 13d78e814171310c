"""Efficiency measures of a trained classifier: spikes, synaptic operations, multiply-accumulates, time steps.

The measures every perception row reports, counted on encoded inputs ``x [T, B, N]`` by running the network's
layers (:class:`~braincore.training.models.SpikingClassifier`: hidden layers, then the read-out) once:

- **spikes**: the spikes each spiking layer emits, per sample (``sum_t sum_i s_ti``), and its rate in spikes
  per unit and step;
- **synaptic operations** (SynOps, accumulates, AC): one accumulate per spike per outgoing synapse. A layer
  ``n_in -> n_out`` whose input is binary (spikes) performs ``sum_t sum_j x_tj x n_out`` accumulates on its input
  weights, and a recurrent spiking layer ``sum_t sum_i s_ti x n_out`` more on its recurrent weights (a spike of
  unit ``i`` reaches every unit of its own layer: feed-forward fan-out plus recurrent fan-out, Yin, Corradi &
  Bohté 2021; Merolla et al. 2014). The costs are booked on the receiving layer (its incoming synapses);
- **multiply-accumulates** (MACs): connections that carry real values cost one MAC per synapse and step,
  whether the value is zero or not (dense hardware): the first layer's non-binary input currents (pixels,
  ``T x n_in x n_out``; Yin et al. count the encoding layer's real-valued inputs as MACs too), a read-out
  driven by a non-spiking layer, and every non-spiking layer with a ``macs_per_step()`` method
  (:class:`~braincore.training.baselines.RecurrentBaseline`: ``T x gates (n_in + n_out) n_out``; gate
  nonlinearities and element-wise products not counted);
- **FLOPs**: ``SynOps + 2 MACs`` (an accumulate is one floating-point operation, a MAC two);
- **state updates**: ``T x units`` of the spiking layers and the leaky read-out (each unit's membrane decay per
  step; adaptive units also decay their threshold), reported apart, not folded into the MACs;
- **steps** ``T``.

An energy estimate follows from a cost per operation: ``E = e_AC SynOps + e_MAC MACs``. :data:`ENERGY_45NM` is the
usual convention (Horowitz, ISSCC 2014, 45 nm CMOS, 32-bit floating point: an add 0.9 pJ, a multiply 3.7 pJ, so
a MAC 4.6 pJ), used e.g. by Panda et al. 2020 and many SNN papers after them; it is a derived figure, not a
measurement.

:func:`count_operations` counts one batch (sums over it, :class:`OperationCount`); :func:`measure` averages
over a data set in batches and gives the per-sample record the ``spiking_classifier`` runs print in their final
JSON line (``efficiency``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import torch
from torch import nn

from .layers import LeakyReadout

Tensor = torch.Tensor

__all__ = ["ENERGY_45NM", "LayerCount", "OperationCount", "count_operations", "measure", "energy_pj", "is_binary"]

#: energy per operation in pJ: accumulate (32-bit float add) and multiply-accumulate (add + multiply), 45 nm
ENERGY_45NM = {"ac": 0.9, "mac": 4.6}


def is_binary(x: Tensor) -> bool:
    """Whether every entry of ``x`` is 0 or 1 (a spike train)."""
    return bool(((x == 0) | (x == 1)).all())


@dataclass
class LayerCount:
    """Counts of one layer over a batch (sums over samples): its output spikes (``None`` when it does not
    spike), the accumulates and MACs of its incoming connections, and its state updates."""

    kind: str
    units: int
    spikes: Optional[float]
    synops: float
    macs: float
    state_updates: float


@dataclass
class OperationCount:
    """The counts of a batch of ``samples`` inputs of ``steps`` steps (sums over the batch, per layer)."""

    samples: int
    steps: int
    layers: list = field(default_factory=list)

    def total(self, name: str) -> float:
        return float(sum(getattr(layer, name) or 0.0 for layer in self.layers))

    def __add__(self, other: "OperationCount") -> "OperationCount":
        if self.steps != other.steps or len(self.layers) != len(other.layers):
            raise ValueError("OperationCount: can only add counts of the same network and sequence length")
        layers = [LayerCount(a.kind, a.units, None if a.spikes is None else a.spikes + (b.spikes or 0.0),
                             a.synops + b.synops, a.macs + b.macs, a.state_updates + b.state_updates)
                  for a, b in zip(self.layers, other.layers)]
        return OperationCount(self.samples + other.samples, self.steps, layers)

    def per_sample(self) -> dict:
        """The record: per-sample spikes (total and per layer), SynOps, MACs, FLOPs, state updates, the mean
        rate of the spiking units (spikes per unit and step) and the steps."""
        n = max(self.samples, 1)
        spiking = [layer for layer in self.layers if layer.spikes is not None]
        units = sum(layer.units for layer in spiking)
        synops, macs = self.total("synops") / n, self.total("macs") / n
        return {
            "samples": self.samples, "steps": self.steps,
            "spikes": self.total("spikes") / n,
            "spikes_per_layer": [None if layer.spikes is None else layer.spikes / n for layer in self.layers],
            "rate": self.total("spikes") / (n * self.steps * units) if units else None,
            "synops": synops, "macs": macs, "flops": synops + 2 * macs,
            "state_updates": self.total("state_updates") / n,
            "layers": [layer.kind for layer in self.layers],
        }


def _kind(layer: nn.Module) -> str:
    cell = getattr(layer, "cell", None)
    return str(cell) if isinstance(cell, str) else type(layer).__name__


@torch.no_grad()
def count_operations(model: nn.Module, x: Tensor) -> OperationCount:
    """The counts (module docstring) of ``model`` on ``x [T, B, N]``: its ``layers`` in order, then its
    ``readout``, in evaluation mode (no dropout). A layer's output is a spike train when it is binary and the
    layer is neither a leaky read-out nor has a ``macs_per_step`` (a non-spiking state that happens to be 0 or 1
    stays non-spiking)."""
    if x.dim() != 3:
        raise ValueError(f"count_operations: inputs must be time-major [T, B, N], got {tuple(x.shape)}")
    was_training = model.training
    model.eval()
    try:
        T, B, _ = x.shape
        count = OperationCount(int(B), int(T))
        inp, spikes_in = x, is_binary(x)
        layers: list = [*model.layers, model.readout]  # type: ignore[misc]  # a SpikingClassifier's
        for layer in layers:
            out = layer(inp)
            out = out[0] if isinstance(out, tuple) else out
            n_in, n_out = int(inp.shape[-1]), int(out.shape[-1])
            non_spiking = hasattr(layer, "macs_per_step")
            synops = macs = 0.0
            if non_spiking:
                macs += T * B * float(layer.macs_per_step())
            elif spikes_in:
                synops += float(inp.sum()) * n_out
            else:
                macs += T * B * float(n_in * n_out)
            spiking = not non_spiking and not isinstance(layer, LeakyReadout) and is_binary(out)
            recurrent = getattr(layer, "recurrent", None)
            if spiking and isinstance(recurrent, Tensor):
                synops += float(out.sum()) * n_out
            states = 0.0 if non_spiking else float(T * B * n_out)
            count.layers.append(LayerCount(_kind(layer), n_out, float(out.sum()) if spiking else None, synops, macs,
                                           states))
            inp, spikes_in = out, spiking
        return count
    finally:
        model.train(was_training)


def measure(model: nn.Module, transform: Callable[[Tensor, Optional[torch.Generator]], Tensor], images: Tensor,
            batch: int = 200, generator: Optional[torch.Generator] = None) -> dict:
    """The per-sample record (:meth:`OperationCount.per_sample`) of ``model`` over ``images`` (sample-major,
    encoded batch by batch with ``transform(x, generator) -> [T, B, N]``), in batches of ``batch``."""
    if len(images) == 0:
        raise ValueError("measure: no samples to count on")
    total: Optional[OperationCount] = None
    for start in range(0, len(images), batch):
        count = count_operations(model, transform(images[start:start + batch], generator))
        total = count if total is None else total + count
    assert total is not None
    return total.per_sample()


def energy_pj(record: dict, costs: Optional[dict] = None) -> float:
    """``e_AC SynOps + e_MAC MACs`` in pJ per sample from a :func:`measure` record (default :data:`ENERGY_45NM`)."""
    costs = ENERGY_45NM if costs is None else costs
    return costs["ac"] * record["synops"] + costs["mac"] * record["macs"]
