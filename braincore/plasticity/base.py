"""The interface between plasticity rules and the simulator's projections.

A rule (:class:`Plasticity`) owns its parameters (a :class:`~braincore.params.NeuronParams` record, so
YAML values take units and misspelt keys are reported) and keeps per-neuron traces in a state dict. Each step,
after the neurons have spiked and the spikes have been propagated, the simulator calls
``rule.step(view, state, pre_spikes, post_spikes, dt)`` with ``[B, N]`` spike tensors.

A :class:`SynapseView` hides the storage: rules ask for the weight changes of the synapses touched by this
step's spikes, ``(selection, values)`` pairs to apply as ``w[selection] += ...``, so the cost is proportional to
the spikes times their fan-out (sparse, CSR) or to one outer product (dense):

- :meth:`SynapseView.pre_events` ``(a, c)``: for the synapses ``i -> j`` of presynaptic neurons with
  ``a[:, i] != 0``: ``mean_b a[b, i] c[b, j]``;
- :meth:`SynapseView.post_events` ``(a, c)``: the same for the synapses onto postsynaptic neurons with
  ``c[:, j] != 0``.
"""
from __future__ import annotations

from typing import Any, Optional

import torch

from ..params import NeuronParams
from ..synapses.csr import outgoing

Tensor = torch.Tensor


class SynapseView:
    """Event-driven access to one projection's weights (sparse CSR, by presynaptic neuron)."""

    def __init__(self, proj):
        self.proj = proj
        self.n_pre, self.n_post = proj.n_pre, proj.n_post
        self.dense = proj.dense is not None
        if self.dense:
            mask = torch.zeros(proj.n_pre, proj.n_post, dtype=torch.bool, device=proj.indptr.device)
            pre = torch.repeat_interleave(torch.arange(proj.n_pre, device=mask.device),
                                          proj.indptr[1:] - proj.indptr[:-1])
            mask[pre, proj.post_idx] = True
            self.mask = mask.to(proj.dense.dtype)
        else:
            self.pre_of = torch.repeat_interleave(torch.arange(proj.n_pre, device=proj.indptr.device),
                                                  proj.indptr[1:] - proj.indptr[:-1])
            order = torch.argsort(proj.post_idx, stable=True)  # incoming synapses, grouped by post neuron
            self.by_post = order
            counts = torch.bincount(proj.post_idx, minlength=proj.n_post)
            self.indptr_post = torch.zeros(proj.n_post + 1, dtype=torch.long, device=order.device)
            torch.cumsum(counts, 0, out=self.indptr_post[1:])

    @property
    def weight(self) -> Tensor:
        """The weights rules change in place: ``[S]`` (sparse) or ``[N_pre, N_post]`` (dense)."""
        return self.proj.dense if self.dense else self.proj.weight

    def clip_(self, w_min: float, w_max: float) -> None:
        """Clamp the weights to ``[w_min, w_max]`` in place; in dense storage absent synapses stay zero."""
        w = self.weight
        w.clamp_(w_min, w_max)
        if self.dense:
            w.mul_(self.mask)

    def sync(self) -> None:
        """After a dense update, copy the matrix back into the per-synapse weight vector (for checkpoints)."""
        if self.dense:
            pre = torch.repeat_interleave(torch.arange(self.n_pre, device=self.proj.indptr.device),
                                          self.proj.indptr[1:] - self.proj.indptr[:-1])
            self.proj.weight = self.proj.dense[pre, self.proj.post_idx].contiguous()

    def pre_events(self, a: Tensor, c: Tensor) -> tuple[Any, Optional[Tensor]]:
        rows = (a != 0).any(dim=0).nonzero().squeeze(1)
        if rows.numel() == 0:
            return None, None
        if self.dense:
            return rows, (a[:, rows].t() @ c) / a.shape[0] * self.mask[rows]
        syn = outgoing(self.proj.indptr, rows)
        return syn, (a[:, self.pre_of[syn]] * c[:, self.proj.post_idx[syn]]).mean(dim=0)

    def post_events(self, a: Tensor, c: Tensor) -> tuple[Any, Optional[Tensor]]:
        cols = (c != 0).any(dim=0).nonzero().squeeze(1)
        if cols.numel() == 0:
            return None, None
        if self.dense:
            return (slice(None), cols), (a.t() @ c[:, cols]) / a.shape[0] * self.mask[:, cols]
        syn = self.by_post[outgoing(self.indptr_post, cols)]
        return syn, (a[:, self.pre_of[syn]] * c[:, self.proj.post_idx[syn]]).mean(dim=0)


class Plasticity:
    """Base of the plasticity rules: parameters from a mapping (units allowed), a state, a step."""

    name = "plasticity"
    params_cls = NeuronParams

    def __init__(self, params: Optional[dict] = None, **overrides: Any):
        values = dict(params or {})
        values.update(overrides)
        self.params = self.params_cls.from_mapping(values, where=type(self).__name__)

    def init_state(self, view: SynapseView, batch: int, device, dtype) -> dict:
        return {}

    def step(self, view: SynapseView, state: dict, pre: Tensor, post: Tensor, dt: float) -> None:
        raise NotImplementedError
