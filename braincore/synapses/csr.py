"""Compressed sparse rows over presynaptic neurons: the layout of event-driven spike propagation.

Synapses sorted by presynaptic index (as :func:`braincore.synapses.connectors.build_connectivity` returns
them) are grouped into rows: the synapses of presynaptic neuron ``i`` are ``indptr[i] : indptr[i + 1]``.
At each step only the rows of the neurons that spiked are read (:func:`outgoing`), so the cost of
propagation is proportional to the number of spikes times the out-degree, not to the number of synapses.

Example::

    conn = build_connectivity({"type": "fixed_indegree", "k": 80}, n, n, generator=g)
    indptr = to_csr(conn.pre, conn.post, n)
    syn = outgoing(indptr, torch.nonzero(spikes).squeeze(1))   # synapse indices of the spiking neurons
    input.index_add_(0, conn.post[syn], weight[syn])            # deliver
"""
from __future__ import annotations

from typing import TYPE_CHECKING


if TYPE_CHECKING:
    from torch import Tensor

def to_csr(pre: Tensor, post: Tensor, n_pre: int) -> Tensor:
    """Row pointers ``indptr`` (``LongTensor[n_pre + 1]``) of synapses sorted by presynaptic index.

    ``indptr[0] = 0`` and ``indptr[i + 1] - indptr[i]`` is the out-degree of presynaptic neuron ``i``, so its
    synapses are ``indptr[i] : indptr[i + 1]``. ``pre`` (``LongTensor[S]``) must be non-decreasing and in
    ``[0, n_pre)``; ``post`` (``LongTensor[S]``) is only checked for its length (its order within a row is
    kept as given). Raises ``ValueError`` otherwise. The result is on ``pre``'s device.
    """
    import torch

    if pre.ndim != 1 or post.ndim != 1 or pre.numel() != post.numel():
        raise ValueError(f"to_csr: pre and post must be 1-D of the same length, got shapes "
                         f"{tuple(pre.shape)} and {tuple(post.shape)}")
    if isinstance(n_pre, bool) or not isinstance(n_pre, int) or n_pre < 0:
        raise ValueError(f"to_csr: n_pre must be an integer >= 0, got {n_pre!r}")
    if pre.dtype.is_floating_point or pre.dtype == torch.bool:
        raise ValueError(f"to_csr: pre must hold integer indices, got {pre.dtype}")
    pre = pre.long()
    if pre.numel():
        if bool((pre[1:] < pre[:-1]).any()):
            raise ValueError("to_csr: pre must be sorted (non-decreasing); sort the synapses by (pre, post) first, "
                             "as build_connectivity does")
        low, high = int(pre[0]), int(pre[-1])
        if low < 0 or high >= n_pre:
            raise ValueError(f"to_csr: pre indices must be in [0, {n_pre}), got range [{low}, {high}]")
    counts = torch.bincount(pre, minlength=n_pre)
    indptr = torch.zeros(n_pre + 1, dtype=torch.long, device=pre.device)
    torch.cumsum(counts, dim=0, out=indptr[1:])
    return indptr


def outgoing(indptr: Tensor, spiking_pre_indices: Tensor) -> Tensor:
    """Indices (``LongTensor``) of all synapses of the given presynaptic neurons, row after row.

    ``spiking_pre_indices`` is a ``LongTensor[K]`` of presynaptic indices (in the order given; a repeated index
    gives its synapses again) or a ``BoolTensor[n_pre]`` spike mask. With ``start = indptr[i]`` and
    ``length = indptr[i + 1] - indptr[i]`` the result is the concatenation of ``start, ..., start + length - 1``
    over the given ``i``, computed without a Python loop as::

        arange(L) + repeat_interleave(start - offset, length)     # offset = exclusive cumsum of length

    so for sorted indices the result is ascending. Cost ``O(K + L)`` with ``L`` the number of synapses
    returned.
    """
    import torch

    if spiking_pre_indices.dtype == torch.bool:
        if spiking_pre_indices.numel() != indptr.numel() - 1:
            raise ValueError(f"outgoing: a spike mask must have n_pre = {indptr.numel() - 1} entries, got "
                             f"{spiking_pre_indices.numel()}")
        index = torch.nonzero(spiking_pre_indices.reshape(-1)).squeeze(1)
    else:
        if spiking_pre_indices.dtype.is_floating_point:
            raise ValueError(f"outgoing: expected integer neuron indices or a bool mask, got "
                             f"{spiking_pre_indices.dtype}")
        index = spiking_pre_indices.reshape(-1).long()
    n_pre = indptr.numel() - 1
    if index.numel() and (int(index.min()) < 0 or int(index.max()) >= n_pre):
        raise ValueError(f"outgoing: presynaptic indices must be in [0, {n_pre}), got range "
                         f"[{int(index.min())}, {int(index.max())}]")
    return outgoing_rows(indptr, index)[0]


def outgoing_rows(indptr: Tensor, index: Tensor) -> tuple[Tensor, Tensor]:
    """:func:`outgoing` for a ``LongTensor`` of valid indices (unchecked), plus for each synapse returned the
    position in ``index`` of the neuron it belongs to (to expand per-spike data such as the trial).

    ``synapse = arange(total) + repeat(start - offset, length)`` and ``row = repeat(arange(K), length)``,
    with ``offset`` the exclusive cumulative sum of the lengths."""
    import torch

    start = indptr[index]
    length = indptr[index + 1] - start
    total = int(length.sum()) if index.numel() else 0
    if total == 0:
        empty = torch.empty(0, dtype=torch.long, device=indptr.device)
        return empty, empty
    offset = torch.cumsum(length, 0) - length
    syn = torch.arange(total, dtype=torch.long, device=indptr.device) + torch.repeat_interleave(
        start - offset, length, output_size=total)
    row = torch.repeat_interleave(torch.arange(index.numel(), device=indptr.device), length, output_size=total)
    return syn, row
