"""Hippocampus: a fast one-shot associative memory in a CA3-like recurrent network (region type ``hippocampus``).

Anatomy (Marr 1971; McNaughton & Morris 1987; Treves & Rolls 1994; Rolls 2013). Area CA3 is a sheet of
pyramidal cells with an extensive recurrent collateral system (each cell contacts a few percent of the others, the
largest recurrent system of the brain) that makes it an autoassociative memory: an event, arriving as a sparse
pattern of activity through the mossy fibres of the dentate gyrus (strong "detonator" synapses that impose the
pattern), is stored in one shot by Hebbian potentiation of the recurrent synapses between co-active cells; later a
partial cue from the entorhinal cortex (perforant path) reactivates the rest of the pattern through those synapses:
**pattern completion**. Feedback inhibition by basket cells keeps the number of active cells roughly constant.

Populations: ``ca3`` (``size`` excitatory pyramidal cells, all-to-all recurrent collaterals without autapses) and
``basket`` (``inhibitory_size`` interneurons: excited by all of CA3, inhibiting all of CA3: k-winners-take-all).

Storage rule (clipped Hebbian, Willshaw, Buneman & Longuet-Higgins 1969; one-shot, as for a single presentation with
strong LTP): patterns are binary vectors xi^mu in {0, 1}^N with ``sparsity`` a (a N active cells each);
after storing patterns mu = 1..P the recurrent weight from cell j to cell i (i != j) is

    w_ij = w_rec  if xi_i^mu xi_j^mu = 1 for some stored mu (the two cells were co-active once),  else 0,

so storing is idempotent, needs no repetition and no normalisation. :func:`store_patterns` writes these weights
into a built simulator (from Python, between ``sim.run`` calls: the encoding phase), :func:`hebbian_weights` gives
the matrix. Capacity: the chance that a silent cell receives a spurious synapse from a cued cell is
1 - (1 - a^2)^P; recall stays clean while a cue of c a N cells drives a pattern cell through c a N synapses and a
non-pattern cell through about c a N (1 - (1 - a^2)^P) (Willshaw: ~ ln 2 / a^2 patterns at the limit).

Equations. LIF cells (braincore ``lif``), voltage-jump (delta) synapses: a spike of cell j moves v_i by w_ij after
``delay``; a basket spike moves a CA3 cell by -``w_inh``; a CA3 spike moves a basket cell by ``w_exc_inh``:

    tau_m dv/dt = -(v - v_rest) + (background and cue jumps),  spike at v_th, reset to v_reset, t_ref

with tau_m 20 ms, v_rest -70 mV, v_th -50 mV, v_reset -60 mV, t_ref 2 ms (CA3 pyramidal); tau_m 10 ms, t_ref
1 ms (basket). Background: ``background_rate`` (Hz) Poisson jumps of ``background_weight`` (mV) on every cell (a
sub-threshold spontaneous state: nearly silent). Cues come from the task through the ``in`` port (a Poisson input on the
cued cells, ``neurons: [...]``).

Behaviour (defaults, N = 400, a = 0.1; ``configs/memory/associative.yaml``, ``tests/test_cognitive_tasks.py``): a
50 % cue (20 of a pattern's 40 cells driven by 1 kHz of 1 mV jumps for 100 ms) recruits most of the other 20, and
hardly any other cell: the recall overlap m = (fraction of the pattern's cells active) - (fraction of the other
cells active) is ~0.97-0.98 for P = 10, 20 and 40 stored patterns, against ~0.48 for the cue alone (no stored
weights); at P = 80 the spurious synapses recruit almost every cell and recall fails (m ~ 0.02).

Ports: ``in`` and ``out`` (= ``ca3``), ``ca3``, ``basket`` (drive it to silence CA3 between recalls).

References: Willshaw, Buneman & Longuet-Higgins (1969) Nature 222:960; Marr (1971) Phil. Trans. R. Soc. B 262:23;
Hopfield (1982) PNAS 79:2554; McNaughton & Morris (1987) Trends Neurosci. 10:408; Treves & Rolls (1994)
Hippocampus 4:374; Nakazawa et al. (2002) Science 297:211 (CA3 NMDA receptors and pattern completion); Rolls
(2013) Front. Syst. Neurosci. 7:74.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from braincore.graph import Assembly
from braincore.errors import ConfigError
from braincore.region_types import register_region
from regions.prefrontal import _count, _quantities

PYRAMIDAL = {"tau_m": "20 ms", "v_rest": "-70 mV", "v_reset": "-60 mV", "v_th": "-50 mV", "t_ref": "2 ms"}
BASKET = {"tau_m": "10 ms", "v_rest": "-70 mV", "v_reset": "-60 mV", "v_th": "-50 mV", "t_ref": "1 ms"}


def build(size: int = 400, sparsity: float = 0.1, inhibitory_size: int = 50, w_rec: Any = "1.25 mV",
          w_exc_inh: Any = "1 mV", w_inh: Any = "1.5 mV", delay: Any = "1 ms", background_rate: Any = "1000 Hz",
          background_weight: Any = "0.5 mV") -> Assembly:
    """CA3-like one-shot autoassociative memory: recurrent pyramidal cells and feedback basket cells.

    Parameters (units allowed; bare numbers in mV, ms, Hz):

    - ``size`` (N >= 2), ``inhibitory_size`` (>= 1): cell counts; ``sparsity`` (a, in (0, 0.5]): the fraction of
      cells active in a stored pattern (used by the task and :func:`random_patterns`);
    - ``w_rec`` (mV): the weight of a potentiated recurrent synapse (all others are 0 until patterns are stored);
    - ``w_exc_inh`` (mV, CA3 -> basket), ``w_inh`` (mV, basket -> CA3, a magnitude), ``delay`` (ms);
    - ``background_rate`` (Hz) of ``background_weight`` (mV) Poisson voltage jumps onto every cell.

    See the module docstring for the storage rule, equations, behaviour and references.
    """
    items: list = []
    _count("size", size, 2, items)
    _count("inhibitory_size", inhibitory_size, 1, items)
    if isinstance(sparsity, bool) or not isinstance(sparsity, (int, float)) or not 0 < sparsity <= 0.5:
        items.append(("sparsity", f"expected a fraction in (0, 0.5], got {sparsity!r}"))
    elif isinstance(size, int) and not isinstance(size, bool) and size >= 2 and round(sparsity * size) < 2:
        items.append(("sparsity", f"{sparsity!r} of {size} cells is fewer than 2 cells per pattern"))
    try:
        q = _quantities({"w_rec": (w_rec, "voltage", False), "w_exc_inh": (w_exc_inh, "voltage", False),
                         "w_inh": (w_inh, "voltage", False), "delay": (delay, "time", True),
                         "background_rate": (background_rate, "frequency", False),
                         "background_weight": (background_weight, "voltage", False)})
    except ConfigError as err:
        items += err.items
    if items:
        raise ConfigError("\n".join(f"{k}: {m}" for k, m in items), items)
    a = Assembly(name="hippocampus")
    a.add_population("ca3", "lif", size, PYRAMIDAL, init={"v": {"dist": "uniform", "low": "-70 mV", "high": "-60 mV"}})
    a.add_population("basket", "lif", inhibitory_size, BASKET, init={"v": {"dist": "uniform", "low": "-70 mV",
                                                                          "high": "-60 mV"}})
    d = f"{q['delay']!r} ms"
    # all pairs exist, silent (0 mV) until store_patterns potentiates them: the CSR holds every candidate synapse
    a.add_projection("ca3", "ca3", {"type": "all_to_all", "allow_self": False}, "0 mV", delay=d, name="recurrent",
                     storage="sparse")
    a.add_projection("ca3", "basket", {"type": "all_to_all"}, f"{q['w_exc_inh']!r} mV", delay=d, name="ca3->basket",
                     sign="excitatory")
    a.add_projection("basket", "ca3", {"type": "all_to_all"}, f"{q['w_inh']!r} mV", delay=d, name="basket->ca3",
                     sign="inhibitory")
    for pop in ("ca3", "basket"):
        a.add_input(f"background_{pop}", "poisson", pop, rate=f"{q['background_rate']!r} Hz",
                    weight=f"{q['background_weight']!r} mV")
    a.add_port("in", "ca3")
    a.add_port("out", "ca3")
    a.add_port("ca3", "ca3")
    a.add_port("basket", "basket")
    return a


def random_patterns(n_patterns: int, size: int, sparsity: float, seed: int = 0) -> np.ndarray:
    """``[P, N]`` binary patterns, each with exactly ``round(sparsity * size)`` active cells chosen at random."""
    rng = np.random.default_rng(seed)
    k = int(round(sparsity * size))
    out = np.zeros((n_patterns, size), dtype=bool)
    for mu in range(n_patterns):
        out[mu, rng.choice(size, k, replace=False)] = True
    return out


def hebbian_weights(patterns: np.ndarray, w_rec: float) -> np.ndarray:
    """The clipped Hebbian matrix ``W[j, i]`` (pre j, post i): ``w_rec`` where j and i were co-active in some
    pattern, 0 elsewhere and on the diagonal."""
    x = np.asarray(patterns, dtype=np.float64)
    co = (x.T @ x) > 0
    np.fill_diagonal(co, False)
    return np.where(co, float(w_rec), 0.0)


def store_patterns(sim, patterns: np.ndarray, w_rec: Any, *, prefix: str = "") -> int:
    """One-shot storage: potentiate, in the running simulator ``sim``, the recurrent synapses between cells
    co-active in any of ``patterns`` (``[P, N]`` booleans) to ``w_rec`` (mV: the region's ``w_rec``);
    earlier stored patterns are kept (the rule is a clipped OR). ``prefix`` is the include prefix (``"hpc."``).
    Returns the number of potentiated synapses. Works on both engines (the native engine reads the weights at
    every ``run``)."""
    import torch

    name = f"{prefix}recurrent"
    proj = next((p for p in sim.projections if p.name == name), None)
    if proj is None:
        raise KeyError(f"no projection {name!r}: is the hippocampus included under the prefix {prefix!r}?")
    from braincore.units import parse_quantity

    w = parse_quantity(w_rec, "voltage")
    x = torch.as_tensor(np.asarray(patterns, dtype=bool))
    if x.ndim != 2 or x.shape[1] != proj.n_pre:
        raise ConfigError(f"patterns must be [P, {proj.n_pre}] booleans, got shape {tuple(x.shape)}")
    counts = (proj.indptr[1:] - proj.indptr[:-1]).cpu()
    pre = torch.repeat_interleave(torch.arange(proj.n_pre), counts)
    post = proj.post_idx.cpu()
    xf = x.to(torch.float64)
    co = ((xf.T @ xf) > 0)[pre, post]  # co-active pairs among the existing synapses
    weight = proj.weight.cpu().clone()
    weight[co.to(weight.device)] = w
    proj.weight = weight.to(proj.weight.device)
    if proj.dense is not None:
        dense = torch.zeros_like(proj.dense, device="cpu")
        dense.index_put_((pre, post), weight.to(dense.dtype), accumulate=True)
        proj.dense = dense.to(proj.dense.device)
    return int((weight != 0).sum())


def overlap(active: np.ndarray, pattern: np.ndarray) -> float:
    """Recall overlap m = (fraction of the pattern's cells active) - (fraction of the other cells active): 1 for
    perfect recall, 0 for activity unrelated to the pattern (Tsodyks & Feigel'man 1988 for binary units)."""
    active, pattern = np.asarray(active, dtype=bool), np.asarray(pattern, dtype=bool)
    hit = active[pattern].mean() if pattern.any() else 0.0
    false = active[~pattern].mean() if (~pattern).any() else 0.0
    return float(hit - false)


register_region("hippocampus", build,
                "CA3-like one-shot autoassociative memory: clipped Hebbian recurrent weights, pattern completion "
                "(Willshaw 1969; Treves & Rolls 1994)")
