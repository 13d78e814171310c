"""One description, one network: the construction every engine shares (the PyTorch and native engines of
:class:`~braincore.simulator.Simulator`, and :class:`~braincore.distributed.DistributedSimulator` on any number
of processes).

Every random number of the network is a counter-based draw (:mod:`braincore.counter_rng`): a pure function of
``(seed, purpose, index)``, never of a generator's history. So any process can build any slice of the network
-- the neurons it owns, the synapses onto them -- and the union of the slices is bit for bit the network one
process builds. The keys (``stream`` is :func:`~braincore.counter_rng.stream_id` of the string given):

====================  =====================================  ===============================================
what                  stream                                 further key
====================  =====================================  ===============================================
initial state         ``init/<population>/<variable>``       ``(trial, neuron)``
in-degree             ``conn-degree/<projection>``           ``(post)``       fixed_probability, p <= 1/4
chosen pre neurons    ``conn-pick/<projection>``             ``(post, round, slot)`` or ``(post, candidate)``
pair trial            ``conn-pair/<projection>``             ``(post, pre)``  fixed_probability, p > 1/4
out-degree targets    ``conn-pick/<projection>``             ``(pre, ...)``   fixed_outdegree
whole-projection pick ``conn-pick/<projection>``             ``(0, round, slot)`` or ``(0, pair)`` fixed_total
weight                ``weight/<projection>``                ``(post, slot)``
delay                 ``delay/<projection>``                 ``(post, slot)``
====================  =====================================  ===============================================

``slot`` is a synapse's position in its post neuron's row (the row lists the presynaptic neurons ascending;
repeated pairs -- multapses -- in the order the connector made them).

Connectors (every one of :mod:`braincore.synapses.connectors`):

- *post-aligned* (:data:`POST_ALIGNED`: ``all_to_all``, ``one_to_one``, ``fixed_indegree``,
  ``fixed_probability``): a process draws the rows of its own post neurons only (NEST's scheme);
  ``fixed_probability`` draws the in-degree ``K_j ~ Binomial(m, p)`` by inverse CDF, then ``K_j`` distinct pre
  neurons (pairwise Bernoulli seen from the target; a Bernoulli trial per pair for ``p > 1/4``).
- *whole-projection* (``fixed_outdegree``, ``fixed_total``, ``explicit``, ``file``): aligned with the pre neuron
  or global, so every process draws (or reads) the whole projection and keeps its rows: the same network on
  every partition, at the cost of the whole projection's draws on every process. Explicit weight lists
  (``weight: [...]``, in the connector's ``(pre, post)`` order) need the whole projection too.

Weights: constant, uniform, normal, lognormal (``exp`` through NumPy on whole arrays), with ``clip``, and
explicit lists; delays: constant, uniform, normal, with ``clip`` (steps as :func:`braincore.synapses.delay_steps`).
A normal weight or delay with ``truncate: [lo, hi]`` is the truncated normal (NEST's ``redraw``), one uniform per
synapse keyed like the normal draw, by inverse transform (:func:`braincore.synapses.weights.truncated_normal_of`).

The generator-based functions of :mod:`braincore.synapses` (``build_connectivity``, ``init_weights``,
``init_delays``) stay as a library for user code and give other (equally distributed) draws; no engine uses them.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, NamedTuple, Optional

import numpy as np
import torch

from . import counter_rng as rng
from .errors import ConfigError
from .units import dimension_of, parse_quantity

Tensor = torch.Tensor

#: connectors whose rows are drawn per post neuron (a process draws only its own rows)
POST_ALIGNED = ("all_to_all", "one_to_one", "fixed_indegree", "fixed_probability")
#: connectors every process builds whole (aligned with the pre neuron, or global), then keeps its rows
WHOLE_PROJECTION = ("fixed_outdegree", "fixed_total", "explicit", "file")
_BLOCK = 1 << 22  # elements per block of dense draws


class Incoming(NamedTuple):
    """Synapses onto a set of post neurons: ``pre`` and ``post`` (population indices) and ``slot`` (position in
    the post neuron's row), ``LongTensor[S]`` each, sorted by ``(post, slot)`` (= by ``(post, pre)``)."""

    pre: Tensor
    post: Tensor
    slot: Tensor


class BuiltProjection(NamedTuple):
    """A projection's synapses onto the requested post neurons, sorted by ``(pre, post, slot)`` (the CSR order of
    event-driven propagation): ``pre``, ``post``, ``slot`` (``LongTensor[S]``), ``weight`` (float64, signed as the
    engines store it), ``delay`` (``LongTensor[S]`` steps >= 1)."""

    pre: Tensor
    post: Tensor
    slot: Tensor
    weight: Tensor
    delay: Tensor


# ------------------------------------------------------------------------------------------ connectivity
def connector_options(spec: Mapping[str, Any], n_pre: int, n_post: int, same_population: bool, where: str,
                      base_dir=None) -> dict:
    """The connector's options with defaults (``type``, ``exclude_self``, ``p``, ``k``, ``n`` ...), checked;
    raises :class:`ConfigError` naming ``where`` (the projection) for an invalid connector."""
    from .synapses.connectors import _validate

    problems, opts = _validate(spec, n_pre, n_post, same_population, base_dir)
    if problems:
        raise ConfigError("\n".join(f"{where}: {message}" for _, message in problems))
    opts["n_pre"], opts["n_post"] = int(n_pre), int(n_post)
    return opts


def stable_order(keys: Tensor, n_keys: int) -> Tensor:
    """The stable sorting permutation of integer ``keys`` in ``[0, n_keys)`` (equal keys keep their order): NumPy's
    radix sort when the keys fit 16 bits (linear time, about 3x faster than a comparison sort here), else
    ``torch.sort(stable=True)``."""
    if n_keys <= 1 << 16 and keys.numel() > 1:
        import numpy as np

        order = np.argsort(keys.numpy().astype(np.uint16), kind="stable")
        return torch.from_numpy(order.astype(np.int64, copy=False))
    return torch.sort(keys, stable=True).indices


def _rows(posts: Tensor, counts: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Flat ``(row id, post, slot)`` for rows of the given lengths."""
    total = int(counts.sum()) if counts.numel() else 0
    row = torch.repeat_interleave(torch.arange(posts.numel()), counts, output_size=total)
    start = torch.cumsum(counts, 0) - counts
    slot = torch.arange(total, dtype=torch.long) - start[row]
    return row, posts[row], slot


def distinct_per_row(seed: int, stream: int, rows: Tensor, counts: Tensor, m: int, dense: bool) -> Tensor:
    """For each row key ``rows[r]``, ``counts[r]`` distinct values in ``[0, m)``, ascending, concatenated row after
    row (``LongTensor[sum(counts)]``), every draw keyed by the row key:

    - *sparse* (``k <= m/4``): ``k`` integers ``floor(u m)``, ``u`` keyed ``(row, round 0, slot)``; sort the row,
      redraw each entry equal to its left neighbour with the key ``(row, round r, slot)``, until no repeat. A
      row's rounds depend on its own draws only, and the procedure commutes with relabelling the ``m`` values,
      so the set is a uniform ``k``-subset.
    - *dense* (``k > m/4``, one ``k`` for all rows): every candidate ``i`` gets the 64-bit key
      ``hash(seed, stream, row, i)``; the row keeps the ``k`` smallest (a uniform ``k``-subset; key collisions
      have probability about ``m^2 / 2^64``).
    """
    if dense:
        k = int(counts[0]) if counts.numel() else 0
        if bool((counts != k).any()):
            raise AssertionError("dense selection needs one count for all rows")
        out = []
        rows_per_block = max(1, _BLOCK // max(m, 1))
        cand = torch.arange(m, dtype=torch.long)
        for lo in range(0, rows.numel(), rows_per_block):
            block = rows[lo:lo + rows_per_block]
            keys = rng.hash_keys(seed, stream, block[:, None], cand[None, :])
            chosen = torch.topk(keys, k, dim=1, largest=False, sorted=False).indices
            out.append(torch.sort(chosen, dim=1).values.reshape(-1))
        return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)
    row, key_of_row, slot = _rows(rows, counts)
    # the key (seed, stream, row key, 0, slot), its shared part hashed once per row
    first = rng.hash_keys(seed, stream, rows, 0)[row]
    values = torch.clamp((rng.uniform_of(rng.extend_hash(first, slot)) * m).to(torch.int64), max=m - 1)
    k = int(counts[0]) if counts.numel() else 0
    if k and bool((counts == k).all()):  # one length for all rows: sort each row (faster than one global sort)
        values = torch.sort(values.view(-1, k), dim=1).values.reshape(-1)
    else:  # sort within rows (row-major flat layout)
        values = torch.sort(row * m + values).values - row * m
    where = None  # positions of the rows still being worked on (None: all)
    r = 0
    while True:
        sub_row = row if where is None else row[where]
        sub = values if where is None else values[where]
        dup = torch.zeros_like(sub, dtype=torch.bool)
        if sub.numel() > 1:
            dup[1:] = (sub[1:] == sub[:-1]) & (sub_row[1:] == sub_row[:-1])
        todo = dup.nonzero().squeeze(1)
        if todo.numel() == 0:
            return values
        r += 1
        at = todo if where is None else where[todo]
        values[at] = rng.randint(seed, m, stream, key_of_row[at], r, slot[at])
        # re-sort only the rows that were redrawn (the others are sorted and free of repeats)
        flagged = torch.zeros(rows.numel(), dtype=torch.bool)
        flagged[row[at]] = True
        keep = flagged[sub_row]
        where = keep.nonzero().squeeze(1) if where is None else where[keep]
        sub_row = row[where]
        values[where] = torch.sort(sub_row * m + values[where]).values - sub_row * m


def _by_post(pre: Tensor, post: Tensor, n_pre: int, n_post: int) -> Incoming:
    """Pairs in the connector's order -> sorted by ``(post, pre)`` (stable: multapses keep their order), slots.
    Pairs already ordered by ``pre`` need a stable sort by ``post`` only."""
    if pre.numel() < 2 or bool((pre[1:] >= pre[:-1]).all()):
        order = stable_order(post, n_post)
    else:
        order = torch.sort(post * n_pre + pre, stable=True).indices
    pre, post = pre[order].contiguous(), post[order].contiguous()
    counts = torch.bincount(post, minlength=n_post)
    start = torch.cumsum(counts, 0) - counts
    slot = torch.arange(post.numel(), dtype=torch.long) - start[post]
    return Incoming(pre, post, slot)


def _fixed_total_pairs(seed: int, stream: int, n: int, m: int, n_pre: int, exclude: bool) -> tuple[Tensor, Tensor]:
    """``(pre, post)`` of a ``fixed_total`` connector with multapses (``n > 0`` synapses, ``m`` candidate post
    neurons per pre neuron), ordered by ``(pre, post)``: ``n`` draws ``q`` uniform in ``[0, n_pre m)``, keyed
    ``(0, i)``, sorted, ``q = pre m + post`` (post shifted past pre when excluding self-pairs)."""
    q = torch.sort(rng.randint(seed, n_pre * m, stream, 0, torch.arange(n, dtype=torch.long))).values
    pre = torch.div(q, m, rounding_mode="floor")
    post = q - pre * m
    if exclude:
        post = post + (post >= pre).long()
    return pre, post


def _fixed_total_torch(seed: int, stream: int, n: int, n_pre: int, n_post: int, m: int,
                       exclude: bool) -> tuple[Tensor, Tensor, Tensor]:
    """The PyTorch path of :func:`braincore.native.construct.fixed_total`: ``(pre, post, slot)`` in CSR order."""
    syn = _by_post(*_fixed_total_pairs(seed, stream, n, m, n_pre, exclude), n_pre, n_post)
    order = stable_order(syn.pre, n_pre)
    return syn.pre[order], syn.post[order], syn.slot[order]


def _whole(opts: dict, seed: int, name: str) -> Incoming:
    """Every synapse of a whole-projection connector, sorted by ``(post, slot)``."""
    ctype, exclude = opts["type"], opts["exclude_self"]
    n_pre, n_post = opts["n_pre"], opts["n_post"]
    stream = rng.stream_id(f"conn-pick/{name}")
    if ctype == "fixed_outdegree":
        m, k = (n_post - 1 if exclude else n_post), opts["k"]
        pres = torch.arange(n_pre, dtype=torch.long)
        post = distinct_per_row(seed, stream, pres, torch.full((n_pre,), k, dtype=torch.long), m, dense=k > m / 4)
        pre = pres.repeat_interleave(k)
        if exclude:
            post = post + (post >= pre).long()
    elif ctype == "fixed_total":
        m, n = (n_post - 1 if exclude else n_post), opts["n"]
        allowed = n_pre * m
        if n == 0 or allowed == 0:
            q = torch.zeros(0, dtype=torch.long)
        elif opts["multapses"]:
            return _by_post(*_fixed_total_pairs(seed, stream, n, m, n_pre, exclude), n_pre, n_post)
        else:
            q = distinct_per_row(seed, stream, torch.zeros(1, dtype=torch.long), torch.tensor([n]), allowed,
                                 dense=n > allowed / 4)
        pre = torch.div(q, m, rounding_mode="floor") if m else q
        post = q - pre * m
        if exclude:
            post = post + (post >= pre).long()
    elif ctype == "explicit":
        pre, post = torch.from_numpy(opts["pre"].copy()), torch.from_numpy(opts["post"].copy())
    elif ctype == "file":
        pre, post = torch.from_numpy(opts["data"]["pre"].copy()), torch.from_numpy(opts["data"]["post"].copy())
    else:  # pragma: no cover
        raise AssertionError(ctype)
    return _by_post(pre.long(), post.long(), n_pre, n_post)


def select_posts(syn: Incoming, posts: Tensor) -> Incoming:
    """The synapses of ``syn`` onto the (sorted) post neurons ``posts``."""
    keep = torch.isin(syn.post, posts)
    return Incoming(syn.pre[keep], syn.post[keep], syn.slot[keep])


def incoming(opts: dict, n_pre: int, posts: Tensor, seed: int, name: str) -> Incoming:
    """The synapses onto the post neurons ``posts`` (sorted population indices) of the projection ``name``
    whose connector options are ``opts`` (:func:`connector_options`), sorted by ``(post, slot)``."""
    ctype, exclude = opts["type"], opts["exclude_self"]
    if ctype in WHOLE_PROJECTION:
        whole = _whole(opts, seed, name)
        return whole if posts.numel() == opts["n_post"] else select_posts(whole, posts)
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
        if m <= 0 or p == 0.0:
            counts = torch.zeros(posts.numel(), dtype=torch.long)
            pre = torch.zeros(0, dtype=torch.long)
        elif p > 0.25:
            rows, pres = [], []
            cand = torch.arange(m, dtype=torch.long)
            stream = rng.stream_id(f"conn-pair/{name}")
            step = max(1, _BLOCK // max(m, 1))
            for lo in range(0, posts.numel(), step):
                block = posts[lo:lo + step]
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


# ------------------------------------------------------------------------------------------ values
def _any_quantity(value: Any) -> float:
    """A number, or a string whose own unit decides its dimension (initial state values)."""
    if isinstance(value, str):
        parts = value.strip().split(maxsplit=1)
        if len(parts) == 2:
            return parse_quantity(value, dimension_of(parts[1]))
    return parse_quantity(value, "dimensionless")


def initial_values(spec: Any, seed: int, stream: str, neurons: Tensor, trials: int, dtype) -> Tensor:
    """``[trials, n]`` initial values of the given neurons (population indices): a constant,
    ``{dist: uniform, low, high}`` or ``{dist: normal, mean, std}`` (units allowed), the draw of trial ``b``,
    neuron ``i`` keyed by ``(seed, stream, b, i)``."""
    n = neurons.numel()
    if not isinstance(spec, dict):
        return torch.full((trials, n), _any_quantity(spec), dtype=dtype)
    dist = spec.get("dist", "constant")
    sid = rng.stream_id(stream)
    trial = torch.arange(trials, dtype=torch.long)[:, None]
    if dist == "constant":
        return torch.full((trials, n), _any_quantity(spec["value"]), dtype=dtype)
    if dist == "uniform":
        low, high = _any_quantity(spec["low"]), _any_quantity(spec["high"])
        return (low + (high - low) * rng.uniform(seed, sid, trial, neurons[None, :])).to(dtype)
    if dist == "normal":
        mean, std = _any_quantity(spec["mean"]), _any_quantity(spec["std"])
        return (mean + std * rng.normal(seed, sid, trial, neurons[None, :])).to(dtype)
    raise ConfigError(f"unknown initial-value distribution {dist!r}; use constant, uniform or normal")


#: synapses per chunk of the weight and delay draws (the values of a chunk, and its temporaries, stay in cache)
_CHUNK = 1 << 16


def _uniform_of_synapses(seed: int, sid: int, post: Tensor, slot: Tensor, *tail: int) -> Tensor:
    """``rng.uniform(seed, sid, post, slot, *tail)``, in C where it can (the same numbers)."""
    from .native import construct

    fast = construct.uniform(seed, (sid,), post, slot, tail)
    return fast if fast is not None else rng.uniform(seed, sid, post, slot, *tail)


def _values(parsed: dict, seed: int, sid: int, post: Tensor, slot: Tensor) -> Tensor:
    """float64 values of a parsed weight or delay spec for the synapses ``(post, slot)``, clip applied."""
    from .synapses.weights import lognormal_parameters, truncated_normal_of

    dist = parsed["dist"]
    if dist == "constant":
        values = torch.full((post.numel(),), parsed["value"], dtype=torch.float64)
    elif dist == "uniform":
        values = parsed["low"] + (parsed["high"] - parsed["low"]) * _uniform_of_synapses(seed, sid, post, slot)
    elif dist == "normal" and parsed.get("truncate") is not None:  # redrawn outside the bounds, as NEST's redraw
        from .native import construct

        values = construct.truncated_normal(seed, (sid,), post, slot, parsed["mean"], parsed["std"],
                                            parsed["truncate"])
        if values is None:
            values = truncated_normal_of(_uniform_of_synapses(seed, sid, post, slot), parsed["mean"],
                                         parsed["std"], parsed["truncate"])
    elif dist in ("normal", "lognormal"):  # rng.normal's Box-Muller (NumPy's log and cos, on the whole array)
        u1 = _uniform_of_synapses(seed, sid, post, slot, 0).numpy()
        u2 = _uniform_of_synapses(seed, sid, post, slot, 1).numpy()
        z = torch.from_numpy(np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * math.pi * u2))
        if dist == "normal":
            values = parsed["mean"] + parsed["std"] * z
        else:
            mu, sigma = lognormal_parameters(parsed["mean"], parsed["std"])
            values = rng.lognormal_exp(mu + sigma * z)
    else:  # pragma: no cover
        raise AssertionError(dist)
    if parsed["clip"] is not None:
        lo, hi = parsed["clip"]
        values = torch.clamp(values, min=lo, max=hi)
    return values


def _chunk_of(parsed: dict, n: int) -> int:
    """Synapses per chunk: elementwise draws go chunk by chunk; the Box-Muller normals (NumPy's transcendental
    functions) on the whole array, as always."""
    return max(1, n) if parsed["dist"] in ("normal", "lognormal") and parsed.get("truncate") is None else _CHUNK


def _draw_into(parsed: dict, seed: int, stream: str, post: Tensor, slot: Tensor, out: Tensor,
               finish=None) -> Tensor:
    """``out[:] = finish(values)`` (``finish``: an elementwise function, or none) for the float64 values of a parsed
    weight or delay spec of the synapses ``(post, slot)``, chunk by chunk; returns ``out``."""
    sid, n = rng.stream_id(stream), post.numel()
    chunk = _chunk_of(parsed, n)
    for lo in range(0, n, chunk):
        values = _values(parsed, seed, sid, post[lo:lo + chunk], slot[lo:lo + chunk])
        out[lo:lo + chunk] = values if finish is None else finish(values)
    return out


def _draw(parsed: dict, seed: int, stream: str, post: Tensor, slot: Tensor) -> Tensor:
    """float64 values of a parsed weight or delay spec for the synapses ``(post, slot)``, clip applied."""
    return _draw_into(parsed, seed, stream, post, slot, torch.empty(post.numel(), dtype=torch.float64))


def parse_weight(spec: Any, dimension: str, where: str) -> dict:
    from .synapses.weights import _parse_spec

    parsed, problems = _parse_spec(spec, dimension)
    if parsed is None:
        raise ConfigError("\n".join(f"{where}: {message}" for _, message in problems))
    return parsed


def parse_delay(spec: Any, where: str) -> dict:
    from .synapses.delays import _parse

    parsed, problems = _parse(spec)
    if parsed is None:
        raise ConfigError("\n".join(f"{where}: {message}" for _, message in problems))
    return parsed


def connector_rank(whole: Incoming, n_post: int) -> Tensor:
    """For every synapse of a whole projection (sorted by ``(post, slot)``), its index in the connector's
    ``(pre, post)`` order -- the order of explicit weight lists."""
    order = torch.sort(whole.pre * n_post + whole.post, stable=True).indices
    rank = torch.empty_like(order)
    rank[order] = torch.arange(order.numel(), dtype=torch.long)
    return rank


def signed_weights(weight: Tensor, sign: Optional[str], kind: str) -> Tensor:
    """Dale's law as the engines store weights: ``inhibitory`` -> ``|w|`` on conductance synapses (the reversal
    potential gives the sign), ``-|w|`` on the others; ``excitatory`` -> negative draws clipped to 0."""
    if sign == "inhibitory":
        return weight.abs() if kind == "conductance" else -weight.abs()
    if sign == "excitatory":
        return weight.clamp(min=0.0)
    return weight


def build_projection(spec, n_pre: int, n_post: int, *, kind: str, dimension: str, seed: int, dt: float,
                     posts: Optional[Tensor] = None, default_delay: Optional[Any] = None) -> BuiltProjection:
    """The synapses of the projection ``spec`` (an assembly's projection: ``name``, ``pre``, ``post``,
    ``connector``, ``weight``, ``delay``, ``sign``) onto ``posts`` (default: every post neuron): connectivity,
    float64 signed weights (``kind``: the synapse kind, ``dimension``: the weight's), delays in steps of ``dt``
    (``spec.delay`` or ``default_delay``; ``None``: one step). Sorted by ``(pre, post, slot)``."""
    where = f"projection {spec.name}"
    all_posts = torch.arange(n_post, dtype=torch.long)
    posts = all_posts if posts is None else posts
    opts = connector_options(spec.connector, n_pre, n_post, spec.pre == spec.post, where)
    parsed = parse_weight(spec.weight, dimension, where)
    if parsed["dist"] == "explicit":
        whole = incoming(opts, n_pre, all_posts, seed, spec.name)
        values = parsed["values"]
        if values.numel() != whole.pre.numel():
            raise ConfigError(f"{where}: weight: {values.numel()} explicit values for {whole.pre.numel()} synapses "
                              f"(one value per synapse, in the connector's (pre, post) order)")
        weight = values.to(torch.float64)[connector_rank(whole, n_post)]
        keep = torch.isin(whole.post, posts)
        syn = Incoming(whole.pre[keep], whole.post[keep], whole.slot[keep])
        weight = weight[keep]
    else:
        syn = incoming(opts, n_pre, posts, seed, spec.name)
        weight = _draw(parsed, seed, f"weight/{spec.name}", syn.post, syn.slot)
    weight = signed_weights(weight, spec.sign, kind)
    delay = _delays(spec, seed, dt, default_delay, syn.post, syn.slot, torch.long)
    # CSR order: by pre, then post, then slot: the synapses come sorted by (post, slot), so a stable sort by pre
    order = stable_order(syn.pre, n_pre)
    return BuiltProjection(syn.pre[order], syn.post[order], syn.slot[order], weight[order], delay[order])


def _delays(spec, seed: int, dt: float, default_delay: Optional[Any], post: Tensor, slot: Tensor,
            dtype: Optional[torch.dtype]) -> Tensor:
    """The delays (steps >= 1) of the synapses ``(post, slot)`` of ``spec``: ``spec.delay``, else ``default_delay``,
    else one step. ``dtype``: ``torch.long``, or ``None`` for the narrowest of int16 and int32 that holds them."""
    from .synapses.delays import delay_steps

    delay_spec = spec.delay if spec.delay is not None else default_delay
    parsed = None if delay_spec is None else parse_delay(delay_spec, f"projection {spec.name}")
    n = post.numel()
    if parsed is None or parsed["dist"] == "constant":
        steps = 1 if parsed is None else int(delay_steps(torch.tensor([parsed["value"]], dtype=torch.float64), dt)[0])
        narrow = torch.int16 if steps <= _INT16_MAX else torch.int32
        return torch.full((n,), steps, dtype=dtype or narrow)
    out = torch.empty(n, dtype=dtype or torch.int16)
    sid = rng.stream_id(f"delay/{spec.name}")
    chunk = _chunk_of(parsed, n)
    for lo in range(0, n, chunk):
        steps = delay_steps(_values(parsed, seed, sid, post[lo:lo + chunk], slot[lo:lo + chunk]), dt)
        if out.dtype != torch.long and steps.numel() and int(steps.max()) > torch.iinfo(out.dtype).max:
            out = out.to(torch.int32 if int(steps.max()) <= torch.iinfo(torch.int32).max else torch.long)
        out[lo:lo + chunk] = steps
    return out


_INT16_MAX = (1 << 15) - 1


class CompactProjection(NamedTuple):
    """A projection's synapses as the engines store them, CSR by presynaptic neuron (rows sorted by
    ``(post, slot)``): ``indptr`` (int64 ``[n_pre + 1]``), ``post`` (int32; int64 for 2^31 post neurons or more),
    ``weight`` (the requested dtype, signed as the engines store it), ``delay`` (steps >= 1: int16, int32 where a
    delay exceeds 32767 steps). About 10 bytes per synapse with float32 weights."""

    indptr: Tensor
    post: Tensor
    weight: Tensor
    delay: Tensor


def build_compact(spec, n_pre: int, n_post: int, *, kind: str, dimension: str, seed: int, dt: float,
                  weight_dtype: torch.dtype = torch.float64, default_delay: Optional[Any] = None) -> CompactProjection:
    """:func:`build_projection` onto every post neuron, stored compactly (:class:`CompactProjection`): the same
    synapses, weights (rounded to ``weight_dtype``) and delays, bit for bit. A ``fixed_total`` connector with
    multapses is built in CSR order directly (:func:`braincore.native.construct.fixed_total`, where the C code is
    available), its weights and delays drawn chunk by chunk into their final arrays: a few bytes per synapse of
    temporary memory instead of the int64 arrays and sorts of the general path."""
    from .native import construct

    where = f"projection {spec.name}"
    opts = connector_options(spec.connector, n_pre, n_post, spec.pre == spec.post, where)
    parsed = parse_weight(spec.weight, dimension, where)
    fast = None
    if opts["type"] == "fixed_total" and opts["multapses"] and parsed["dist"] != "explicit":
        fast = construct.fixed_total(seed, rng.stream_id(f"conn-pick/{spec.name}"), opts["n"], n_pre, n_post,
                                     opts["exclude_self"])
    if fast is None:
        conn = build_projection(spec, n_pre, n_post, kind=kind, dimension=dimension, seed=seed, dt=dt,
                                default_delay=default_delay)
        from .synapses import to_csr

        indptr = to_csr(conn.pre, conn.post, n_pre)
        delay = conn.delay
        high = int(delay.max()) if delay.numel() else 1
        delay = delay.to(torch.int16 if high <= _INT16_MAX else torch.int32 if high < 1 << 31 else torch.long)
        post = conn.post.to(torch.int32) if n_post < 1 << 31 else conn.post
        return CompactProjection(indptr, post, conn.weight.to(weight_dtype), delay)
    indptr, post, slot = fast
    weight = _draw_into(parsed, seed, f"weight/{spec.name}", post, slot,
                        torch.empty(post.numel(), dtype=weight_dtype),
                        finish=lambda values: signed_weights(values, spec.sign, kind))
    delay = _delays(spec, seed, dt, default_delay, post, slot, None)
    return CompactProjection(indptr, post, weight, delay)


__all__ = ["POST_ALIGNED", "WHOLE_PROJECTION", "Incoming", "BuiltProjection", "connector_options",
           "distinct_per_row", "incoming", "select_posts", "initial_values", "connector_rank", "signed_weights",
           "build_projection", "build_compact", "CompactProjection", "parse_weight", "parse_delay"]
