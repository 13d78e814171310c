"""Which process owns which neuron: partitions of an assembly's populations over ``P`` ranks.

A rank owns a set of neurons; it holds their state, their incoming synapses (post-synaptic alignment, as NEST
does) and their external inputs. Neurons are named by ``(population, index)``; the *global* index of a neuron
is its population's offset (populations in assembly order) plus its index, the order in which exchanged spikes
are delivered. Every scheme is a pure function of the population sizes and ``P``, so every rank computes the
same table without talking to the others.

Schemes (``partition: {scheme: ...}`` in a ``kind: distributed`` config):

``blocks`` (default)
    every population is cut into ``P`` contiguous blocks of ``floor(n/P)`` or ``ceil(n/P)`` neurons, block ``r``
    on rank ``r``: each rank holds a share of every population (balanced whatever the activity of each
    population), and spikes of every population travel between all ranks.
``round_robin``
    global neuron ``g`` on rank ``g mod P``: NEST's distribution of nodes over virtual processes (balanced at
    the level of single neurons).
``populations``
    whole populations on one rank where they fit: populations larger than ``ceil(N/P)`` are cut into that many
    near-equal contiguous pieces, then all pieces, largest first, go to the least loaded rank (ties: lowest
    rank). Keeps small populations (regions) together -- useful when most projections stay within a region.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Mapping

from ..errors import ConfigError

if TYPE_CHECKING:
    from torch import Tensor

PARTITION_SCHEMES = ("blocks", "round_robin", "populations")


def _block(n: int, parts: int, r: int) -> tuple[int, int]:
    return (r * n) // parts, ((r + 1) * n) // parts


def partition_table(sizes: Mapping[str, int], world_size: int, scheme: str = "blocks") -> list[dict[str, Tensor]]:
    """For each rank ``r < world_size``, ``{population: sorted LongTensor of the indices it owns}``.

    ``sizes`` maps population names (in assembly order) to sizes. Every neuron is owned by exactly one rank.
    Raises :class:`ConfigError` for an unknown scheme or a world size < 1.
    """
    if scheme not in PARTITION_SCHEMES:
        raise ConfigError(f"partition: unknown scheme {scheme!r}; use one of {', '.join(PARTITION_SCHEMES)}")
    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
        raise ConfigError(f"partition: the world size must be an integer >= 1, got {world_size!r}")
    import torch  # here, not at the top: the config kind names the schemes without PyTorch

    P = world_size
    table: list[dict[str, Tensor]] = [{} for _ in range(P)]
    if scheme == "blocks":
        for name, n in sizes.items():
            for r in range(P):
                lo, hi = _block(n, P, r)
                table[r][name] = torch.arange(lo, hi, dtype=torch.long)
    elif scheme == "round_robin":
        offset = 0
        for name, n in sizes.items():
            index = torch.arange(n, dtype=torch.long)
            rank_of = (index + offset) % P
            for r in range(P):
                table[r][name] = index[rank_of == r]
            offset += n
    else:  # populations
        total = sum(sizes.values())
        target = max(1, math.ceil(total / P))
        pieces = []  # (size, population order, piece, population, lo, hi)
        for order, (name, n) in enumerate(sizes.items()):
            parts = max(1, math.ceil(n / target))
            for q in range(parts):
                lo, hi = _block(n, parts, q)
                pieces.append((hi - lo, order, q, name, lo, hi))
        pieces.sort(key=lambda piece: (-piece[0], piece[1], piece[2]))
        load = [0] * P
        chunks: list[dict[str, list]] = [{name: [] for name in sizes} for _ in range(P)]
        for size, _, _, name, lo, hi in pieces:
            r = min(range(P), key=lambda i: (load[i], i))
            load[r] += size
            chunks[r][name].append(torch.arange(lo, hi, dtype=torch.long))
        for r in range(P):
            for name in sizes:
                parts = chunks[r][name]
                table[r][name] = (torch.sort(torch.cat(parts)).values if parts
                                  else torch.zeros(0, dtype=torch.long))
    return table


__all__ = ["PARTITION_SCHEMES", "partition_table"]
