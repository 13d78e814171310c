"""The interface between plasticity rules and the simulator's projections.

A rule (:class:`Plasticity`) owns its parameters (a :class:`~braincore.params.NeuronParams` record, so
YAML values take units and misspelt keys are reported) and keeps per-neuron traces in a state dict. Each step,
after the neurons have spiked and the spikes have been propagated, the simulator calls
``rule.step(view, state, pre_spikes, post_spikes, dt)`` with ``[B, N]`` spike tensors.

A :class:`SynapseView` hides the storage: the weights (``[S]`` sparse, ``[N_pre, N_post]`` dense), the
presynaptic neuron of each synapse and the incoming synapses of each postsynaptic neuron (by-post order), so a
rule touches only the synapses of this step's spikes (:mod:`.defined` derives that from a rule's definition).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from ..params import NeuronParams

if TYPE_CHECKING:
    from torch import Tensor

class SynapseView:
    """Event-driven access to one projection's weights (sparse CSR, by presynaptic neuron)."""

    def __init__(self, proj):
        import torch

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
        import torch

        if self.dense:
            pre = torch.repeat_interleave(torch.arange(self.n_pre, device=self.proj.indptr.device),
                                          self.proj.indptr[1:] - self.proj.indptr[:-1])
            self.proj.weight = self.proj.dense[pre, self.proj.post_idx].contiguous()


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
