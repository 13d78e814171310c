"""Post-synaptically aligned construction: a rank builds the incoming synapses of the neurons it owns, and only
those, from the shared seed (NEST's scheme: a connection lives on the process of its target).

Every random number of a synapse is keyed by ``(seed, stream, global post index, ...)`` (:mod:`.rng`), so the
synapses onto a post neuron are the same whichever rank builds them, and the union over ranks is the network
that one process would build. The row of a post neuron is its list of presynaptic indices, ascending; the
*slot* of a synapse is its position in that row, and keys its weight.

Connectors (NEST's ``conn_spec`` rules, the options of :mod:`braincore.synapses.connectors`):

``all_to_all``        every pre neuron (but ``j`` itself without self-connections).
``one_to_one``        pre ``j`` onto post ``j``.
``fixed_indegree k``  ``k`` distinct pre neurons out of the ``m`` allowed (``m = N_pre``, or ``N_pre - 1``
                      without self-connections; ``j' -> j' + (j' >= j)`` skips ``j``).
``fixed_probability`` in-degree ``K_j ~ Binomial(m, p)`` by inverse CDF of ``u(seed, "conn-degree/<proj>", j)``,
                      then ``K_j`` distinct pre neurons: given ``K_j``, the pre neurons of independent Bernoulli
                      trials are a uniform ``K_j``-subset, so this is pairwise Bernoulli (NEST
                      ``pairwise_bernoulli``) seen from the target. For ``p > 1/4`` a Bernoulli trial per pair,
                      ``u(seed, "conn-pair/<proj>", j, i) < p``, instead.

``k`` distinct values out of ``m`` per row (the rows of many post neurons at once):

- *sparse* (``k <= m/4``): draw ``k`` integers ``floor(u m)`` with ``u`` keyed ``(j, round 0, slot)``, sort the
  row, redraw each entry equal to its left neighbour with the key ``(j, round r, slot)``, repeat until the row
  holds no repeat. A row's rounds depend on its own draws only, and the procedure commutes with relabelling
  the ``m`` values, so the set is a uniform ``k``-subset.
- *dense* (``k > m/4``): every candidate ``i`` gets the 64-bit key ``hash(seed, stream, j, i)``; the row keeps
  the ``k`` smallest keys (a uniform ``k``-subset; key collisions have probability about ``m^2 / 2^64``).

Not supported here (they are aligned with the *pre*-synaptic neuron or global, so every rank would have to draw
the whole network): ``fixed_outdegree``, ``fixed_total``, ``explicit`` and ``file``.
"""
from __future__ import annotations

from typing import Any, Mapping, NamedTuple

import torch

from ..errors import ConfigError
from ..synapses.connectors import _validate
from . import rng

Tensor = torch.Tensor

#: connectors the distributed engine builds (post-synaptically aligned)
DISTRIBUTED_CONNECTORS = ("all_to_all", "one_to_one", "fixed_indegree", "fixed_probability")
_BLOCK = 1 << 22  # elements per block of dense draws


class Incoming(NamedTuple):
    """Synapses onto a set of post neurons: ``pre`` and ``post`` (population indices) and ``slot`` (position in
    the post neuron's row), ``LongTensor[S]`` each, sorted by ``(post, pre)``."""

    pre: Tensor
    post: Tensor
    slot: Tensor


def connector_options(spec: Mapping[str, Any], n_pre: int, n_post: int, same_population: bool,
                      where: str) -> dict:
    """The connector's options with defaults (``type``, ``exclude_self``, ``p``, ``k``), checked; raises
    :class:`ConfigError` naming the projection for invalid or unsupported connectors."""
    problems, opts = _validate(spec, n_pre, n_post, same_population, None)
    if problems:
        raise ConfigError("\n".join(f"{where}: {message}" for _, message in problems))
    if opts["type"] not in DISTRIBUTED_CONNECTORS:
        raise ConfigError(f"{where}: connector {opts['type']!r} is not supported by the distributed engine "
                          f"(supported: {', '.join(DISTRIBUTED_CONNECTORS)}): it is not aligned with the "
                          f"post-synaptic neuron, so every rank would have to draw the whole projection")
    return opts


def _rows(posts: Tensor, counts: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Flat ``(row id, post, slot)`` for rows of the given lengths."""
    total = int(counts.sum()) if counts.numel() else 0
    row = torch.repeat_interleave(torch.arange(posts.numel()), counts, output_size=total)
    start = torch.cumsum(counts, 0) - counts
    slot = torch.arange(total, dtype=torch.long) - start[row]
    return row, posts[row], slot


def distinct_per_row(seed: int, stream: int, posts: Tensor, counts: Tensor, m: int, dense: bool) -> Tensor:
    """For each post ``posts[r]``, ``counts[r]`` distinct values in ``[0, m)``, ascending, concatenated row after
    row (``LongTensor[sum(counts)]``); see the module docstring for the two procedures."""
    if dense:
        k = int(counts[0]) if counts.numel() else 0
        if bool((counts != k).any()):
            raise AssertionError("dense selection needs one count for all rows")
        out = []
        rows_per_block = max(1, _BLOCK // max(m, 1))
        cand = torch.arange(m, dtype=torch.long)
        for lo in range(0, posts.numel(), rows_per_block):
            block = posts[lo:lo + rows_per_block]
            keys = rng.hash_keys(seed, stream, block[:, None], cand[None, :])
            chosen = torch.topk(keys, k, dim=1, largest=False, sorted=False).indices
            out.append(torch.sort(chosen, dim=1).values.reshape(-1))
        return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)
    row, post, slot = _rows(posts, counts)
    values = rng.randint(seed, m, stream, post, 0, slot)
    r = 0
    while True:
        # sort within rows (row-major flat layout: key = row * m + value)
        key = row * m + values
        key = torch.sort(key).values
        values = key - row * m
        dup = torch.zeros_like(values, dtype=torch.bool)
        if values.numel() > 1:
            dup[1:] = (values[1:] == values[:-1]) & (row[1:] == row[:-1])
        todo = dup.nonzero().squeeze(1)
        if todo.numel() == 0:
            return values
        r += 1
        values[todo] = rng.randint(seed, m, stream, post[todo], r, slot[todo])


def incoming(opts: dict, n_pre: int, posts: Tensor, seed: int, name: str) -> Incoming:
    """The synapses onto the post neurons ``posts`` (sorted population indices) of the projection ``name``
    whose connector options are ``opts`` (:func:`connector_options`)."""
    ctype, exclude = opts["type"], opts["exclude_self"]
    m = n_pre - 1 if exclude else n_pre
    if ctype == "one_to_one":
        return Incoming(posts.clone(), posts.clone(), torch.zeros_like(posts))
    if ctype == "all_to_all":
        counts = torch.full((posts.numel(),), max(m, 0), dtype=torch.long)
        _, post, slot = _rows(posts, counts)
        pre = slot + ((slot >= post) & exclude).long()
        return Incoming(pre, post, slot)
    if ctype == "fixed_indegree":
        k = opts["k"]
        counts = torch.full((posts.numel(),), k, dtype=torch.long)
        pre = distinct_per_row(seed, rng.stream_id(f"conn-pick/{name}"), posts, counts, m, dense=k > m / 4)
    else:  # fixed_probability
        p = opts["p"]
        if p > 0.25:
            rows, pres = [], []
            cand = torch.arange(m, dtype=torch.long)
            stream = rng.stream_id(f"conn-pair/{name}")
            for lo in range(0, posts.numel(), max(1, _BLOCK // max(m, 1))):
                block = posts[lo:lo + max(1, _BLOCK // max(m, 1))]
                hit = rng.uniform(seed, stream, block[:, None], cand[None, :]) < p
                r, c = hit.nonzero(as_tuple=True)
                rows.append(block[r])
                pres.append(c)
            post = torch.cat(rows) if rows else torch.zeros(0, dtype=torch.long)
            pre = torch.cat(pres) if pres else torch.zeros(0, dtype=torch.long)
            counts = torch.bincount(torch.searchsorted(posts, post), minlength=posts.numel())
        else:
            table = rng.cdf_table_binomial(m, p)
            counts = rng.inverse_cdf(table, rng.uniform(seed, rng.stream_id(f"conn-degree/{name}"), posts))
            pre = distinct_per_row(seed, rng.stream_id(f"conn-pick/{name}"), posts, counts, m, dense=False)
    _, post, slot = _rows(posts, counts)
    if exclude:
        pre = pre + (pre >= post).long()
    return Incoming(pre, post, slot)


__all__ = ["DISTRIBUTED_CONNECTORS", "Incoming", "connector_options", "distinct_per_row", "incoming"]
