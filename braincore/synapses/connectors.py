"""Connectivity of a projection between two populations: which presynaptic neuron connects to which postsynaptic.

``build_connectivity(spec, n_pre, n_post, generator=g)`` turns a connector spec (a mapping with a ``type`` and
its options, as written in a YAML config) into a :class:`Connectivity` ``(pre, post)``: two ``LongTensor[S]``
of neuron indices, one entry per synapse, sorted by ``(pre, post)`` so that :func:`braincore.synapses.csr.to_csr`
can index the outgoing synapses of every presynaptic neuron (the event-driven propagation layout).

Connectors (options in :data:`CONNECTOR_OPTIONS`; the names follow NEST's ``conn_spec`` rules and PyNN's
connectors)
------------------------------------------------------------------------------------------------------------
``all_to_all``        every pair ``(i, j)``; ``S = N_pre * N_post`` (``N (N - 1)`` without self-connections).
``one_to_one``        ``i -> i``; needs ``N_pre == N_post``.
``fixed_probability`` each pair independently with probability ``p`` (Erdős–Rényi; NEST ``pairwise_bernoulli``):
                      ``S ~ Binomial(N_pre * N_post, p)``.
``fixed_indegree``    every postsynaptic neuron receives exactly ``k`` distinct presynaptic neurons, drawn
                      uniformly among all ``k``-subsets (NEST ``fixed_indegree`` without multapses).
``fixed_outdegree``   every presynaptic neuron projects to exactly ``k`` distinct postsynaptic neurons.
``fixed_total``       exactly ``n`` synapses, a uniformly drawn ``n``-subset of the allowed pairs (or, with
                      ``multapses: true``, ``n`` pairs drawn independently with replacement).
``explicit``          the pairs listed in ``pre`` and ``post`` (repeated pairs are multapses and are kept).
``file``              the pairs stored in an ``.npz`` file with integer arrays ``pre`` and ``post`` (and
                      optionally ``weight`` and ``delay``, read by :func:`load_connectivity_file`).

Self-connections. ``same_population=True`` says that pre and post are the same population, so that the pair
``i -> i`` is an autapse. The random connectors and ``all_to_all`` take ``allow_self`` (default ``true``);
``allow_self: false`` excludes the pairs ``i -> i``. Between different populations ``allow_self`` has no effect.

Algorithms (vectorised, never an ``N_pre x N_post`` matrix for the sparse cases)
---------------------------------------------------------------------------------
*Distinct samples per row.* ``k`` distinct values out of ``m`` for many rows at once (rows are postsynaptic
neurons for ``fixed_indegree``, presynaptic ones for ``fixed_outdegree`` and ``fixed_probability``):

- *sparse* (``k <= m / 4``): draw ``k`` values per row with replacement, sort each row, redraw the entries
  that equal their left neighbour, and repeat on the rows that still hold a repeat. The procedure commutes
  with every relabelling of the ``m`` values, so the final set is uniform over the ``k``-subsets. With
  ``k <= m / 4`` a draw repeats with probability below 1/4, so the work is ``O(S log k)`` and the rounds few.
- *dense* (``k > m / 4``, where the output holds at least a quarter of the full matrix anyway): each row
  gives every candidate ``j`` the integer key ``r * m + j`` with ``r`` uniform in ``[0, 2^62 / m)`` (so keys
  never tie and the selection is deterministic) and keeps the ``k`` smallest keys (a uniform random
  ``k``-subset up to ties of ``r``, of probability about ``m^3 / 2^63`` per row), in blocks of rows of at
  most 2^22 keys.

Self-exclusion draws from the ``m - 1`` other values and maps ``j -> j + (j >= i)``, a bijection onto
``{0..m-1} \\ {i}``, so uniformity is kept.

*fixed_probability* draws each presynaptic neuron's out-degree ``K_i ~ Binomial(m, p)`` (``m = N_post``, or
``N_post - 1`` without self-connections) and then ``K_i`` distinct targets as above: given ``K_i``, the
targets of independent Bernoulli trials are a uniform ``K_i``-subset, so this is exactly pairwise Bernoulli.
For ``p > 1/4`` (or small problems) a Bernoulli trial is drawn for every pair instead, in blocks of at most
2^22 pairs.

*fixed_total* draws linear pair indices ``q`` in ``[0, M)`` (``M`` allowed pairs; ``pre = q // m``,
``post = q % m``, shifted past ``pre`` without self-connections): with multapses ``n`` independent uniform
integers, without them ``n`` distinct ones (the sparse procedure above with one row, or the first ``n`` of a
random permutation when ``n > M / 4``).

Reproducibility. Everything is drawn from the given CPU ``torch.Generator`` with integer sampling
(``randint``, ``randperm``) and float64 uniforms compared with ``p``; the binomial counts use
``torch.binomial`` in float64. Orders of operations are fixed, so a seed gives the same synapses on every
machine (for a given PyTorch version).

Errors. Every option is checked; all problems are reported at once in one
:class:`~braincore.errors.ConfigError` whose messages name the connector, the option and the value
given, with a suggestion for misspelt options or types. :func:`check_connector` returns the same messages
without building anything (for the config layer), and :func:`connector_problems` the same as
``(option, message)`` pairs. :func:`expected_synapses` gives the expected synapse count without building.
"""
from __future__ import annotations

import difflib
import numbers
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, NamedTuple, Optional, Union

import numpy as np

from ..errors import ConfigError
from ..units import UnitError, parse_quantity

if TYPE_CHECKING:
    import torch
    from torch import Tensor

PathLike = Union[str, Path]

#: connector type -> {option: description}; ``type`` itself is not listed
CONNECTOR_OPTIONS: dict[str, dict[str, str]] = {
    "all_to_all": {
        "allow_self": "keep the pairs i -> i when pre and post are the same population (default true)",
    },
    "one_to_one": {},
    "fixed_probability": {
        "p": "probability in [0, 1] that a pair is connected, independently for every pair (required)",
        "allow_self": "allow i -> i when pre and post are the same population (default true)",
    },
    "fixed_indegree": {
        "k": "number of distinct presynaptic neurons of every postsynaptic neuron, an integer >= 0 (required)",
        "allow_self": "allow i -> i when pre and post are the same population (default true)",
    },
    "fixed_outdegree": {
        "k": "number of distinct postsynaptic neurons of every presynaptic neuron, an integer >= 0 (required)",
        "allow_self": "allow i -> i when pre and post are the same population (default true)",
    },
    "fixed_total": {
        "n": "total number of synapses, an integer >= 0 (required)",
        "allow_self": "allow i -> i when pre and post are the same population (default true)",
        "multapses": "draw pairs with replacement, so that a pair may repeat (default false)",
    },
    "explicit": {
        "pre": "list of presynaptic indices, in [0, N_pre) (required)",
        "post": "list of postsynaptic indices, in [0, N_post), as long as pre (required)",
    },
    "file": {
        "path": "an .npz file with integer arrays 'pre' and 'post' (optionally float arrays 'weight' and "
                "'delay'); a relative path is resolved against the config's folder (required)",
    },
}

#: options that must be given, per connector
_REQUIRED: dict[str, tuple[str, ...]] = {
    "fixed_probability": ("p",), "fixed_indegree": ("k",), "fixed_outdegree": ("k",), "fixed_total": ("n",),
    "explicit": ("pre", "post"), "file": ("path",),
}

#: at most this many random keys or Bernoulli draws are held at once by the dense (blocked) samplers
_BLOCK = 1 << 22
#: the sparse (redraw-repeats) sampler is used when k <= m * _SPARSE_FRACTION
_SPARSE_FRACTION = 0.25


class Connectivity(NamedTuple):
    """Synapses of a projection: ``pre[s] -> post[s]`` for ``s`` in ``[0, S)``, sorted by ``(pre, post)``.

    ``pre`` and ``post`` are ``LongTensor[S]`` on the CPU. Sorted by presynaptic index first, so that the
    synapses of presynaptic neuron ``i`` are the contiguous slice ``indptr[i]:indptr[i + 1]`` of
    :func:`braincore.synapses.csr.to_csr`.
    """

    pre: Tensor
    post: Tensor

    @property
    def num_synapses(self) -> int:
        return int(self.pre.numel())


def connector_names() -> list[str]:
    """The connector types, e.g. ``["all_to_all", "one_to_one", "fixed_probability", ...]``."""
    return list(CONNECTOR_OPTIONS)


# ------------------------------------------------------------------------------------------ validation
def _is_int(value: Any) -> bool:
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_real(value: Any) -> bool:
    return isinstance(value, (numbers.Real, np.floating, np.integer)) and not isinstance(value, (bool, np.bool_))


def _suggest(word: str, choices) -> str:
    """``"; did you mean 'x'?"`` for the closest choice (difflib), or one that prefixes it (``prob`` -> ``p``)."""
    word, choices = str(word), list(choices)
    near = difflib.get_close_matches(word, choices, n=1)
    if not near and word:
        near = sorted((c for c in choices if word.startswith(c) or c.startswith(word)), key=len, reverse=True)
    return f"; did you mean {near[0]!r}?" if near else ""


def _index_array(value: Any, name: str, ctype: str, problems: list) -> Optional[np.ndarray]:
    """A 1-D integer array from a list / tuple / ndarray / tensor, or None (with a problem) when it is not one."""
    import torch

    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (list, tuple, np.ndarray)):
        problems.append((name, f"{ctype}: {name} must be a list of integer indices, got {_short(value)}"))
        return None
    array = np.asarray(value)
    if array.ndim != 1 or (array.size and array.dtype.kind not in "iu"):
        if array.ndim == 1 and array.dtype == object and all(_is_int(v) for v in array.tolist()):
            array = array.astype(np.int64)
        else:
            problems.append((name, f"{ctype}: {name} must be a flat list of integer indices, got {_short(value)}"))
            return None
    return array.astype(np.int64, copy=False)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_range(array: np.ndarray, name: str, size: int, ctype: str, problems: list, who: str) -> None:
    if array.size == 0:
        return
    bad = np.flatnonzero((array < 0) | (array >= size))
    if bad.size:
        first = int(bad[0])
        problems.append((name, f"{ctype}: {name}[{first}] = {int(array[first])} is out of range for the "
                               f"{who} population of size {size} (expected 0 <= index < {size}; "
                               f"{bad.size} bad entr{'y' if bad.size == 1 else 'ies'})"))


def _resolve(path: PathLike, base_dir: Optional[PathLike]) -> Path:
    path = Path(path)
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    return path


def _validate(spec: Any, n_pre: Any, n_post: Any, same_population: bool,
              base_dir: Optional[PathLike]) -> tuple[list, dict]:
    """All problems of ``spec`` as ``[(key or None, message)]``, and its options with defaults filled in."""
    problems: list[tuple[Optional[str], str]] = []
    for name, size in (("n_pre", n_pre), ("n_post", n_post)):
        if not _is_int(size) or size <= 0:
            problems.append((None, f"{name} must be a positive integer, got {size!r}"))
    sizes_ok = not problems
    if sizes_ok and same_population and n_pre != n_post:
        problems.append((None, f"same_population needs n_pre == n_post, got n_pre={n_pre}, n_post={n_post}"))
    if not isinstance(spec, Mapping):
        problems.append((None, f"a connector must be a mapping with a 'type' key (one of: "
                               f"{', '.join(CONNECTOR_OPTIONS)}), got {_short(spec)}"))
        return problems, {}
    ctype = spec.get("type")
    if ctype is None:
        problems.append(("type", f"connector: missing 'type' (expected one of: {', '.join(CONNECTOR_OPTIONS)})"))
        return problems, {}
    if not isinstance(ctype, str) or ctype not in CONNECTOR_OPTIONS:
        problems.append(("type", f"unknown connector type {ctype!r}{_suggest(ctype, CONNECTOR_OPTIONS)} "
                                 f"(expected one of: {', '.join(CONNECTOR_OPTIONS)})"))
        return problems, {}
    known = CONNECTOR_OPTIONS[ctype]
    for key in spec:
        if key != "type" and key not in known:
            expected = ", ".join(known) if known else "no options"
            problems.append((key, f"{ctype}: unknown option {key!r}{_suggest(key, known)} (expected {expected})"))
    for key in _REQUIRED.get(ctype, ()):
        if spec.get(key) is None:
            what = known[key].replace(" (required)", "")
            problems.append((key, f"{ctype}: missing required option {key!r} ({what})"))

    opts: dict[str, Any] = {"type": ctype}
    for flag, default in (("allow_self", True), ("multapses", False)):
        if flag in known:
            value = spec.get(flag, default)
            if not isinstance(value, (bool, np.bool_)):
                problems.append((flag, f"{ctype}: {flag} must be true or false, got {value!r}"))
            opts[flag] = bool(value) if isinstance(value, (bool, np.bool_)) else default
    exclude_self = bool(same_population) and not opts.get("allow_self", True)
    opts["exclude_self"] = exclude_self

    if ctype == "one_to_one" and sizes_ok and n_pre != n_post:
        problems.append((None, f"one_to_one needs populations of equal size, got n_pre={n_pre}, n_post={n_post}"))

    if ctype == "fixed_probability" and spec.get("p") is not None:
        p = spec["p"]
        if not _is_real(p) or not 0.0 <= float(p) <= 1.0:
            problems.append(("p", f"fixed_probability: p must be a number in [0, 1], got {p!r}"))
        else:
            opts["p"] = float(p)

    if ctype in ("fixed_indegree", "fixed_outdegree") and spec.get("k") is not None:
        k = spec["k"]
        if not _is_int(k) or k < 0:
            problems.append(("k", f"{ctype}: k must be an integer >= 0, got {k!r}"))
        else:
            opts["k"] = int(k)
            if sizes_ok:
                pool, who = (n_pre, "presynaptic") if ctype == "fixed_indegree" else (n_post, "postsynaptic")
                available = pool - 1 if exclude_self else pool
                if k > available:
                    why = " (self-connections excluded)" if exclude_self else ""
                    problems.append(("k", f"{ctype}: k = {k} distinct {who} neurons requested, but only "
                                          f"{available} are available{why}; use k <= {available}"))

    if ctype == "fixed_total" and spec.get("n") is not None:
        n = spec["n"]
        if not _is_int(n) or n < 0:
            problems.append(("n", f"fixed_total: n must be an integer >= 0, got {n!r}"))
        else:
            opts["n"] = int(n)
            if sizes_ok:
                allowed = n_pre * n_post - (n_pre if exclude_self else 0)
                if not opts["multapses"] and n > allowed:
                    problems.append(("n", f"fixed_total: n = {n} synapses without multapses, but only {allowed} "
                                          f"distinct pairs are allowed; use n <= {allowed} or multapses: true"))
                if opts["multapses"] and n > 0 and allowed == 0:
                    problems.append(("n", f"fixed_total: n = {n} synapses requested but no pair is allowed"))

    if ctype == "explicit" and spec.get("pre") is not None and spec.get("post") is not None:
        pre = _index_array(spec["pre"], "pre", ctype, problems)
        post = _index_array(spec["post"], "post", ctype, problems)
        if pre is not None and post is not None:
            if pre.size != post.size:
                problems.append(("post", f"explicit: pre and post must have the same length, got "
                                         f"{pre.size} pre and {post.size} post indices"))
            if sizes_ok:
                _check_range(pre, "pre", n_pre, ctype, problems, "presynaptic")
                _check_range(post, "post", n_post, ctype, problems, "postsynaptic")
            opts["pre"], opts["post"] = pre, post

    if ctype == "file" and spec.get("path") is not None:
        raw = spec["path"]
        if not isinstance(raw, (str, Path)):
            problems.append(("path", f"file: path must be a string, got {raw!r}"))
        else:
            path = _resolve(raw, base_dir)
            opts["path"] = path
            try:
                data = _read_npz(path)
            except ConfigError as err:
                problems.append(("path", str(err)))
            else:
                if sizes_ok:
                    _check_range(data["pre"], "pre", n_pre, f"file {path}", problems, "presynaptic")
                    _check_range(data["post"], "post", n_post, f"file {path}", problems, "postsynaptic")
                opts["data"] = data
    return problems, opts


def connector_problems(spec: Mapping[str, Any], n_pre: int, n_post: int, same_population: bool = False, *,
                       base_dir: Optional[PathLike] = None) -> list[tuple[Optional[str], str]]:
    """The problems of :func:`check_connector` as ``(option, message)`` pairs: ``option`` is the key of ``spec``
    that the message is about (``None`` when it is about the spec or the sizes as a whole)."""
    problems, _ = _validate(spec, n_pre, n_post, same_population, base_dir)
    return problems


def check_connector(spec: Mapping[str, Any], n_pre: int, n_post: int, same_population: bool = False, *,
                    base_dir: Optional[PathLike] = None) -> list[str]:
    """The problems of a connector spec for populations of ``n_pre`` and ``n_post`` neurons, without building.

    Returns an empty list when :func:`build_connectivity` would succeed. Each message names the connector,
    the option and the value given, e.g. ``"fixed_probability: p must be a number in [0, 1], got 1.5"``.
    A ``file`` connector's file is opened to check its arrays and index ranges.
    """
    return [message for _, message in connector_problems(spec, n_pre, n_post, same_population, base_dir=base_dir)]


def _number(value: Any) -> Optional[float]:
    try:
        return parse_quantity(value, "dimensionless")
    except UnitError:
        return None


def expected_synapses(connector: Mapping, n_pre: int, n_post: int, same_population: bool = False) -> Optional[float]:
    """Expected number of synapses of a connector (``None`` when not computable without building it).

    all_to_all ``N_pre N_post``, one_to_one ``N``, fixed_probability ``p N_pre N_post``, fixed_indegree
    ``k N_post``, fixed_outdegree ``k N_pre``, fixed_total ``n``, explicit: the number of listed pairs (a
    ``file`` connector: ``None``). Within one population, ``allow_self: false`` removes the ``N``
    self-connections from all_to_all and fixed_probability. The options are not checked (see
    :func:`check_connector`).
    """
    if not isinstance(connector, Mapping):
        return None
    kind = connector.get("type")
    no_self = same_population and connector.get("allow_self") is False
    if kind == "all_to_all":
        return float(n_pre * n_post - (min(n_pre, n_post) if no_self else 0))
    if kind == "one_to_one":
        return float(min(n_pre, n_post)) if not no_self else 0.0
    if kind == "fixed_probability":
        p = _number(connector.get("p"))
        if p is None:
            return None
        pairs = n_pre * n_post - (min(n_pre, n_post) if no_self else 0)
        return p * pairs
    if kind in ("fixed_indegree", "fixed_outdegree"):
        k = _number(connector.get("k"))
        return None if k is None else k * (n_post if kind == "fixed_indegree" else n_pre)
    if kind == "fixed_total":
        n = _number(connector.get("n"))
        return n
    if kind == "explicit" and isinstance(connector.get("pre"), (list, tuple)):
        return float(len(connector["pre"]))
    return None


# ------------------------------------------------------------------------------------------ building
def build_connectivity(spec: Mapping[str, Any], n_pre: int, n_post: int, *, generator: torch.Generator,
                       same_population: bool = False, base_dir: Optional[PathLike] = None) -> Connectivity:
    """Build the synapses of a projection from ``n_pre`` to ``n_post`` neurons.

    ``spec`` is a mapping such as ``{"type": "fixed_indegree", "k": 80, "allow_self": False}`` (see the module
    docstring and :data:`CONNECTOR_OPTIONS`); ``generator`` is a CPU ``torch.Generator`` and the only source
    of randomness; ``same_population`` says that pre and post are one population (so ``i -> i`` is a
    self-connection); ``base_dir`` resolves a relative ``file`` path.

    Returns :class:`Connectivity` ``(pre, post)``, ``LongTensor[S]`` sorted by ``(pre, post)``. Raises
    :class:`ConfigError` listing every problem of the spec.
    """
    import torch

    _check_generator(generator)
    problems, opts = _validate(spec, n_pre, n_post, same_population, base_dir)
    if problems:
        raise ConfigError("\n".join(message for _, message in problems), list(problems))
    ctype, exclude_self = opts["type"], opts["exclude_self"]
    if ctype == "all_to_all":
        return _all_to_all(n_pre, n_post, exclude_self)
    if ctype == "one_to_one":
        index = torch.arange(n_pre, dtype=torch.long)
        return Connectivity(index, index.clone())
    if ctype == "fixed_probability":
        return _fixed_probability(opts["p"], n_pre, n_post, exclude_self, generator)
    if ctype == "fixed_indegree":
        # rows are the postsynaptic neurons, each drawing k presynaptic ones
        rows, cols = _fixed_degree(n_post, n_pre, opts["k"], exclude_self, generator)
        return _sorted(cols, rows, n_post)
    if ctype == "fixed_outdegree":
        rows, cols = _fixed_degree(n_pre, n_post, opts["k"], exclude_self, generator)
        return Connectivity(rows, cols)  # already sorted by (row, col)
    if ctype == "fixed_total":
        return _fixed_total(opts["n"], n_pre, n_post, exclude_self, opts["multapses"], generator)
    if ctype == "explicit":
        return _sorted(torch.from_numpy(opts["pre"].copy()), torch.from_numpy(opts["post"].copy()), n_post)
    if ctype == "file":
        data = opts["data"]
        return _sorted(torch.from_numpy(data["pre"]), torch.from_numpy(data["post"]), n_post)
    raise AssertionError(ctype)  # pragma: no cover  (every type is handled above)


def _check_generator(generator: Any) -> None:
    import torch

    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator (e.g. torch.Generator().manual_seed(1)), "
                        f"got {type(generator).__name__}")
    if generator.device.type != "cpu":
        raise ValueError(f"generator must be a CPU torch.Generator (results are then the same on every "
                         f"machine), got one on {generator.device}")


def _sort_order(pre: Tensor, post: Tensor, n_post: int) -> Tensor:
    """The stable permutation that sorts pairs by ``(pre, post)``."""
    import torch

    return torch.sort(pre * n_post + post, stable=True).indices


def _sorted(pre: Tensor, post: Tensor, n_post: int) -> Connectivity:
    order = _sort_order(pre, post, n_post)
    return Connectivity(pre[order].contiguous(), post[order].contiguous())


def _all_to_all(n_pre: int, n_post: int, exclude_self: bool) -> Connectivity:
    import torch

    pre = torch.arange(n_pre, dtype=torch.long).repeat_interleave(n_post)
    post = torch.arange(n_post, dtype=torch.long).repeat(n_pre)
    if exclude_self:
        keep = pre != post
        pre, post = pre[keep], post[keep]
    return Connectivity(pre, post)


def _skip_self(rows: Tensor, cols: Tensor) -> Tensor:
    """Map draws ``j`` in ``[0, m - 1)`` to ``[0, m) \\ {row}``: ``j -> j + (j >= row)`` (order preserving)."""
    return cols + (cols >= rows).long()


def _distinct_sparse(rows: Tensor, n_rows: int, m: int, generator: torch.Generator) -> Tensor:
    """For each entry of ``rows`` (non-decreasing row ids), a value in ``[0, m)`` such that the values of one
    row are distinct and sorted; each row's set is a uniform random subset of its size (redraw repeats).

    Entries are handled as keys ``row * m + value``: sorted once, then only the rows that still hold a
    repeated value are redrawn and re-sorted, in place (each row keeps its slice of positions).
    """
    import torch

    total = rows.numel()
    if total == 0:
        return rows.new_empty(0)
    keys = rows * m + torch.randint(0, m, (total,), generator=generator, dtype=torch.long)
    keys = torch.sort(keys).values  # rows are sorted, so every row keeps its slice of positions
    where = None  # positions (in keys) of the entries still being worked on; None: all of them
    work = keys
    while True:
        repeat = torch.nonzero(work[1:] == work[:-1]).squeeze(1) + 1
        if repeat.numel() == 0:
            break
        row = torch.div(work[repeat], m, rounding_mode="floor")
        work[repeat] = row * m + torch.randint(0, m, (repeat.numel(),), generator=generator, dtype=torch.long)
        flagged = torch.zeros(n_rows, dtype=torch.bool)
        flagged[row] = True
        keep = flagged[torch.div(work, m, rounding_mode="floor")]
        where = torch.nonzero(keep).squeeze(1) if where is None else where[keep]
        work = torch.sort(work[keep]).values
        keys[where] = work
    return keys - rows * m


def _distinct_dense(n_rows: int, k: int, m: int, generator: torch.Generator) -> Tensor:
    """``[n_rows, k]``: per row the sorted ``k`` smallest of ``m`` random keys' candidates (a uniform
    ``k``-subset of ``[0, m)``), in blocks of at most :data:`_BLOCK` keys."""
    import torch

    out = torch.empty((n_rows, k), dtype=torch.long)
    if k == 0 or n_rows == 0:
        return out
    span = max(1, (1 << 62) // m)  # random high digits; the candidate index as low digits breaks ties
    candidates = torch.arange(m, dtype=torch.long)
    block = max(1, _BLOCK // m)
    for start in range(0, n_rows, block):  # loops over blocks of rows, not over neurons
        stop = min(n_rows, start + block)
        keys = torch.randint(0, span, (stop - start, m), generator=generator, dtype=torch.long) * m + candidates
        chosen = torch.topk(keys, k, dim=1, largest=False, sorted=False).values % m
        out[start:stop] = torch.sort(chosen, dim=1).values
    return out


def _fixed_degree(n_rows: int, pool: int, k: int, exclude_self: bool,
                  generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """``(rows, cols)``: every row gets ``k`` distinct cols of ``[0, pool)`` (not itself with ``exclude_self``),
    sorted by ``(row, col)``."""
    import torch

    m = pool - 1 if exclude_self else pool
    rows = torch.arange(n_rows, dtype=torch.long).repeat_interleave(k)
    if k <= _SPARSE_FRACTION * m:
        cols = _distinct_sparse(rows, n_rows, m, generator)
    else:
        cols = _distinct_dense(n_rows, k, m, generator).reshape(-1)
    if exclude_self:
        cols = _skip_self(rows, cols)
    return rows, cols


def _fixed_probability(p: float, n_pre: int, n_post: int, exclude_self: bool,
                       generator: torch.Generator) -> Connectivity:
    import torch

    m = n_post - 1 if exclude_self else n_post
    if p == 0.0 or m == 0:
        empty = torch.empty(0, dtype=torch.long)
        return Connectivity(empty, empty.clone())
    if p > _SPARSE_FRACTION or n_pre * m <= _BLOCK // 64:
        return _bernoulli_blocks(p, n_pre, n_post, exclude_self, generator)
    counts = torch.binomial(torch.full((n_pre,), float(m), dtype=torch.float64),
                            torch.full((n_pre,), p, dtype=torch.float64), generator=generator).long()
    rows = torch.repeat_interleave(torch.arange(n_pre, dtype=torch.long), counts)
    cols = _distinct_sparse(rows, n_pre, m, generator)
    if exclude_self:
        cols = _skip_self(rows, cols)
    return Connectivity(rows, cols)


def _bernoulli_blocks(p: float, n_pre: int, n_post: int, exclude_self: bool,
                      generator: torch.Generator) -> Connectivity:
    """A Bernoulli(p) draw for every allowed pair, blocks of presynaptic rows at a time (dense regime)."""
    import torch

    block = max(1, _BLOCK // n_post)
    pres, posts = [], []
    for start in range(0, n_pre, block):  # loops over blocks of rows, not over neurons
        stop = min(n_pre, start + block)
        hit = torch.rand((stop - start, n_post), generator=generator, dtype=torch.float64) < p
        if exclude_self:
            rows = torch.arange(start, stop)
            inside = rows < n_post
            hit[torch.nonzero(inside).squeeze(1), rows[inside]] = False
        pair = torch.nonzero(hit)  # row-major, hence sorted by (pre, post)
        pres.append(pair[:, 0] + start)
        posts.append(pair[:, 1])
    return Connectivity(torch.cat(pres), torch.cat(posts))


def _fixed_total(n: int, n_pre: int, n_post: int, exclude_self: bool, multapses: bool,
                 generator: torch.Generator) -> Connectivity:
    import torch

    m = n_post - 1 if exclude_self else n_post
    allowed = n_pre * m
    if n == 0:
        empty = torch.empty(0, dtype=torch.long)
        return Connectivity(empty, empty.clone())
    if multapses:
        index = torch.sort(torch.randint(0, allowed, (n,), generator=generator, dtype=torch.long)).values
    elif n <= _SPARSE_FRACTION * allowed:
        index = _distinct_sparse(torch.zeros(n, dtype=torch.long), 1, allowed, generator)
    else:
        index = torch.sort(torch.randperm(allowed, generator=generator)[:n]).values
    pre = torch.div(index, m, rounding_mode="floor")
    post = index - pre * m
    if exclude_self:
        post = _skip_self(pre, post)
    return Connectivity(pre, post)


# ------------------------------------------------------------------------------------------ files
def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a connectivity file, checked for names, shapes and types (not yet sorted)."""
    if not path.is_file():
        raise ConfigError(f"file: no such connectivity file {str(path)!r} (expected an .npz with arrays "
                          f"'pre' and 'post')")
    try:
        with np.load(path, allow_pickle=False) as npz:
            data = {name: np.asarray(npz[name]) for name in npz.files}
    except Exception as err:  # a corrupt or non-npz file
        raise ConfigError(f"file: cannot read {str(path)!r} as an .npz archive ({err})") from None
    problems = []
    missing = [name for name in ("pre", "post") if name not in data]
    if missing:
        problems.append(f"file {path}: missing array(s) {', '.join(map(repr, missing))} (found: "
                        f"{', '.join(map(repr, data)) or 'none'}; expected 'pre', 'post', optionally 'weight', "
                        f"'delay')")
    extra = [name for name in data if name not in ("pre", "post", "weight", "delay")]
    if extra:
        problems.append(f"file {path}: unknown array(s) {', '.join(map(repr, extra))} (expected 'pre', 'post', "
                        f"'weight', 'delay')")
    length = None
    for name in ("pre", "post", "weight", "delay"):
        if name not in data:
            continue
        array = data[name]
        kinds = "iu" if name in ("pre", "post") else "iuf"
        if array.ndim != 1 or (array.size and array.dtype.kind not in kinds):
            what = "integer" if name in ("pre", "post") else "numeric"
            problems.append(f"file {path}: array {name!r} must be 1-D {what}, got shape {array.shape} of "
                            f"{array.dtype}")
            continue
        if length is None:
            length = array.size
        elif array.size != length:
            problems.append(f"file {path}: array {name!r} has {array.size} entries, expected {length} like 'pre'")
        data[name] = array.astype(np.int64 if name in ("pre", "post") else np.float64, copy=False)
    if problems:
        raise ConfigError("\n".join(problems))
    return data


def load_connectivity_file(path: PathLike, *, base_dir: Optional[PathLike] = None) -> dict[str, Tensor]:
    """Read a connectivity ``.npz``: ``{"pre", "post"}`` (``LongTensor[S]``) and, when stored, ``"weight"``
    and ``"delay"`` (``float64 Tensor[S]``; weights in the canonical unit of the synapse's dimension, e.g. nS,
    delays in ms).

    All arrays are reordered by the same stable ``(pre, post)`` sort as :func:`build_connectivity` applies to
    a ``file`` connector, so ``weight[s]`` belongs to synapse ``s`` of the built :class:`Connectivity`.
    Raises :class:`ConfigError` for a missing or malformed file.
    """
    import torch

    data = _read_npz(_resolve(path, base_dir))
    pre, post = torch.from_numpy(data["pre"]), torch.from_numpy(data["post"])
    span = int(post.max()) + 1 if post.numel() else 1
    if post.numel() and int(post.min()) < 0:
        raise ConfigError(f"file {path}: array 'post' holds negative indices (min {int(post.min())})")
    order = _sort_order(pre, post, span)
    return {name: torch.from_numpy(array)[order].contiguous() for name, array in data.items()}
