"""Graph convolution for spiking node classifiers (SpikingGCN, Zhu et al. 2022) and its non-spiking twin (SGC).

**Normalised adjacency** of a graph of ``N`` nodes with adjacency ``A`` (``A[i, j]`` the weight of edge ``i -> j``;
1 for unweighted graphs), self-loops added, ``Â = A + I``:

- ``mode="symmetric"`` (Kipf & Welling 2017; SGC; SpikingGCN): a directed graph is first symmetrised,
  ``A_s = max(A, A^T)`` (an edge either way links both nodes, with the larger weight), then
  ``S = D^-1/2 Â D^-1/2`` with ``D_ii = sum_j Â_ij`` (degree plus one);
- ``mode="in"`` (directed graphs kept directed): every node averages itself and its in-neighbours (the nodes
  that send it edges), ``S[i, j] = Â[j, i] / sum_k Â[k, i]`` (rows sum to 1, the random-walk normalisation of
  the in-degree).

**Propagation** (Wu et al. 2019, SGC; Zhu et al. 2022, eq. 2): ``X' = S^K X`` computed once, before training,
by ``K`` sparse products (``[N, N]`` sparse times ``[N, d]`` dense), ``K nnz(S) d`` multiply-accumulates.

**Spike encoding** (Zhu et al. 2022, section 3.2): ``X'`` is scaled to ``[0, 1]`` per feature over all nodes
(:func:`unit_scale`: ``(x - min) / (max - min)``, a constant feature becomes 0) and every entry spikes with that
probability at each of ``T`` steps (a Bernoulli rate code, :func:`braincore.encoding.rate`): spike trains
``[T, N, d]`` with mean ``T x'`` spikes per entry.

**Classifier.** The spiking model is a :class:`~braincore.training.models.SpikingClassifier`: optional hidden LIF
layers, then an LIF output layer ``d -> C`` (the paper's "fully connected layer combined with neuron nodes":
``v_t = beta v_{t-1} + W s_t + b``, spike when ``v_t >= theta``, reset by subtraction; trained through a
surrogate gradient), classified by spike counts (or a leaky membrane read-out). The twin (:class:`SGCNet`) is
SGC: the same layer sizes with ReLU between hidden layers and no spikes, on ``X'`` itself; with no hidden layer it
is SGC's logistic regression ``softmax(S^K X W)``. Both are trained by the same
:class:`~braincore.training.trainer.Trainer`; SGC sees ``X'`` as a one-step sequence ``[1, B, d]``.

**Data.** :func:`stochastic_block_model`: a graph of ``C`` blocks (``networkx.stochastic_block_model``, edge
probability ``p_in`` within a block and ``p_out`` between blocks), class = block, features
``x_i = mu_{c(i)} + sigma eps`` with class means ``mu_c`` drawn once (unit-variance Gaussian entries): difficulty
rises with ``p_out / p_in`` and ``sigma``. :func:`celegans_connectome` (needs the ``cect`` package): the
hermaphrodite connectome of Cook et al. 2019 (chemical synapses and gap junctions among the 302 neurons).

References: Z. Zhu, J. Peng, J. Li, L. Chen, Q. Yu and S. Luo, "Spiking Graph Convolutional Networks", IJCAI
2022 (arXiv:2205.02767); F. Wu et al., "Simplifying Graph Convolutional Networks", ICML 2019; T. N. Kipf and
M. Welling, "Semi-supervised classification with graph convolutional networks", ICLR 2017; S. J. Cook et al.,
"Whole-animal connectomes of both Caenorhabditis elegans sexes", Nature 571 (2019).
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Hashable, Optional, Sequence

import numpy as np
import torch
from torch import nn

from ..encoding import rate
from .layers import LIFLayer, LeakyReadout
from .models import SpikingClassifier, build_layer

if TYPE_CHECKING:
    import networkx as nx

Tensor = torch.Tensor

__all__ = ["MODES", "normalized_adjacency", "propagate", "unit_scale", "encode", "build_spiking_gcn", "SGCNet",
           "stochastic_block_model", "celegans_connectome", "CONNECTOME_EXTRA", "SIM_CLASSES"]

MODES = ("symmetric", "in")
#: what ``pip install`` needs for :func:`celegans_connectome`
CONNECTOME_EXTRA = 'pip install "braincore[celegans]"  (or: pip install --no-deps cect openpyxl pandas)'
#: the three classes of the C. elegans neurons (cect's get_SIM_class)
SIM_CLASSES = ("Sensory", "Interneuron", "Motorneuron")


def normalized_adjacency(graph: "nx.Graph", nodes: Optional[Sequence[Hashable]] = None, mode: str = "symmetric",
                         weight: Optional[str] = None, self_loops: bool = True) -> Tensor:
    """``S`` (module docstring) of a networkx graph as a sparse COO tensor ``[N, N]`` (float32, coalesced), rows
    and columns in the order of ``nodes`` (default ``list(graph)``). ``weight``: the edge attribute holding
    weights (None: 1 per edge). Existing self-loops are kept; ``self_loops`` adds ``I``."""
    if mode not in MODES:
        raise ValueError(f"unknown normalisation mode {mode!r}; choose one of {', '.join(MODES)}")
    order = list(graph) if nodes is None else list(nodes)
    index = {node: i for i, node in enumerate(order)}
    n = len(order)
    if n == 0:
        raise ValueError("normalized_adjacency: the graph has no nodes")
    entries: dict[tuple[int, int], float] = {}       # (i, j) -> Â[i, j], the larger weight of parallel edges

    def put(i: int, j: int, w: float) -> None:
        entries[(i, j)] = max(entries.get((i, j), w), w)

    for u, v, data in graph.edges(data=True):
        if u in index and v in index:
            w = float(data.get(weight, 1.0)) if weight is not None else 1.0
            put(index[u], index[v], w)
            if not graph.is_directed() or mode == "symmetric":
                put(index[v], index[u], w)
    if self_loops:
        for i in range(n):
            entries[(i, i)] = entries.get((i, i), 0.0) + 1.0
    keys = list(entries)
    rows = torch.tensor([k[0] for k in keys], dtype=torch.long)
    cols = torch.tensor([k[1] for k in keys], dtype=torch.long)
    vals = torch.tensor([entries[k] for k in keys], dtype=torch.float64)
    if mode == "symmetric":
        deg = torch.zeros(n, dtype=torch.float64).index_add_(0, rows, vals)        # D_ii = sum_j Â_ij
        inv = torch.where(deg > 0, deg.clamp(min=1e-300).rsqrt(), torch.zeros((), dtype=torch.float64))
        vals = inv[rows] * vals * inv[cols]
    else:
        rows, cols = cols, rows                                                     # S[i, j] from Â[j, i]
        deg = torch.zeros(n, dtype=torch.float64).index_add_(0, rows, vals)        # in-degree of i
        vals = vals / torch.where(deg > 0, deg, torch.ones((), dtype=torch.float64))[rows]
    indices = torch.stack([rows, cols]) if keys else torch.zeros(2, 0, dtype=torch.long)
    return torch.sparse_coo_tensor(indices, vals.to(torch.float32), (n, n), check_invariants=True).coalesce()


def propagate(adjacency: Tensor, features: Tensor, hops: int) -> Tensor:
    """``S^K X``: ``hops = K`` sparse (or dense) products of ``adjacency [N, N]`` with ``features [N, d]``."""
    if hops < 0:
        raise ValueError(f"hops must be >= 0, got {hops}")
    if features.dim() != 2 or features.shape[0] != adjacency.shape[0]:
        raise ValueError(f"features must be [N, d] with N = {adjacency.shape[0]}, got {tuple(features.shape)}")
    x = features.to(torch.float32)
    for _ in range(hops):
        x = torch.sparse.mm(adjacency, x) if adjacency.is_sparse else adjacency @ x
    return x


def unit_scale(x: Tensor) -> Tensor:
    """``(x - min) / (max - min)`` per column over all rows (``[N, d]``), in ``[0, 1]``; constant columns -> 0."""
    low, high = x.min(dim=0).values, x.max(dim=0).values
    span = high - low
    return torch.where(span > 0, (x - low) / torch.where(span > 0, span, torch.ones(())), torch.zeros(()))


def encode(x: Tensor, steps: int, generator: Optional[torch.Generator] = None) -> Tensor:
    """Bernoulli spike trains ``[T, B, d]`` of scaled features ``x [B, d]`` in ``[0, 1]`` (the paper's encoder:
    :func:`braincore.encoding.rate`)."""
    return rate(x, steps, generator=generator)


def build_spiking_gcn(n_in: int, hidden: Sequence[int], n_classes: int, *, tau: float = 10.0, threshold: float = 1.0,
                      surrogate: str = "fast_sigmoid", readout: str = "lif", readout_tau: float = 10.0,
                      generator: Optional[torch.Generator] = None) -> SpikingClassifier:
    """SpikingGCN's classifier on encoded ``X'``: LIF layers of sizes ``hidden`` (may be empty), then an LIF
    output layer (``readout="lif"``, classified by spike counts: the paper's) or a leaky membrane read-out
    (``"leaky"``). ``tau`` in steps."""
    layers: list[nn.Module] = []
    width = int(n_in)
    for size in hidden:
        layers.append(build_layer("lif", width, int(size), generator, tau=tau, threshold=threshold,
                                  surrogate=surrogate))
        width = int(size)
    out: nn.Module
    if readout == "lif":
        out = LIFLayer(width, int(n_classes), tau_m=tau, threshold=threshold, surrogate=surrogate,
                       generator=generator)
    elif readout == "leaky":
        out = LeakyReadout(width, int(n_classes), tau=readout_tau)
    else:
        raise ValueError(f"unknown readout {readout!r}; choose lif or leaky")
    return SpikingClassifier(layers, out)


class SGCNet(nn.Module):
    """The non-spiking twin: ``x [T, B, d] -> [T, B, C]``, the same layer sizes as the spiking model with ReLU
    between hidden layers (no hidden layer: SGC's logistic regression). ``macs_per_sample()``: its
    multiply-accumulates per node and step, ``sum_l n_l n_{l+1}``."""

    def __init__(self, n_in: int, hidden: Sequence[int], n_classes: int):
        super().__init__()
        sizes = [int(n_in), *map(int, hidden), int(n_classes)]
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.sizes = sizes

    def forward(self, x: Tensor) -> Tensor:
        for i, linear in enumerate(self.linears):
            x = linear(x)
            if i < len(self.linears) - 1:
                x = torch.relu(x)
        return x

    def macs_per_sample(self) -> int:
        return sum(a * b for a, b in zip(self.sizes[:-1], self.sizes[1:]))


# ------------------------------------------------------------------------------------------ data
def stochastic_block_model(sizes: Sequence[int], p_in: float, p_out: float, features: int, noise: float,
                           seed: int = 0) -> "tuple[nx.Graph, Tensor, Tensor]":
    """An undirected SBM graph with ``len(sizes)`` blocks (module docstring): ``(graph, X [N, d], labels [N])``
    with nodes ``0..N-1`` in block order, labels the blocks."""
    import networkx as nx

    if not 0 <= p_out <= 1 or not 0 <= p_in <= 1:
        raise ValueError(f"edge probabilities must lie in [0, 1], got p_in={p_in}, p_out={p_out}")
    k = len(sizes)
    probs = [[p_in if a == b else p_out for b in range(k)] for a in range(k)]
    graph = nx.stochastic_block_model(list(map(int, sizes)), probs, seed=int(seed))
    rng = np.random.default_rng([int(seed), 7])
    labels = np.repeat(np.arange(k), sizes)
    means = rng.standard_normal((k, int(features)))
    x = means[labels] + float(noise) * rng.standard_normal((len(labels), int(features)))
    return graph, torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(labels, dtype=torch.long)


def celegans_connectome(features: str = "degrees") -> "tuple[nx.DiGraph, Tensor, Tensor, list[str]]":
    """The C. elegans hermaphrodite neurons of Cook et al. 2019 (``cect``'s ``Cook2019HermReader``):
    ``(graph, X [N, d], labels [N], names)``, a directed graph over the neurons that cect classes as sensory,
    inter- or motor neurons (:data:`SIM_CLASSES`, labels 0, 1, 2; the few "Other" cells are left out), an edge
    ``u -> v`` where ``u`` makes chemical synapses onto ``v`` or the two share gap junctions (both ways), its
    ``weight`` the synapse count (chemical plus gap-junction). Node features (``features``):

    - ``degrees``: ``log(1 + .)`` of 6 counts per neuron: chemical in-degree, out-degree, gap-junction degree
      (partners) and the same three weighted by synapse counts;
    - ``identity``: one-hot node identity (``d = N``; the classes must then come from the graph alone).
    """
    try:
        cells = importlib.import_module("cect.Cells")               # untyped: imported by name
        reader = importlib.import_module("cect.readers.Cook2019HermReader")
    except ImportError as err:
        raise ImportError(f"the C. elegans connectome needs the cect package ({err}): {CONNECTOME_EXTRA}") from None
    import networkx as nx

    get_sim_class, is_any_neuron = cells.get_SIM_class, cells.is_any_neuron
    data = reader.get_instance()
    names_all = list(data.nodes)
    keep = [i for i, n in enumerate(names_all) if is_any_neuron(n) and get_sim_class(n) in SIM_CLASSES]
    names = [names_all[i] for i in keep]
    idx = np.asarray(keep)
    chem = np.asarray(data.connections["Generic_CS"], dtype=np.float64)[np.ix_(idx, idx)]
    gap = np.asarray(data.connections["Generic_GJ"], dtype=np.float64)[np.ix_(idx, idx)]
    gap = np.maximum(gap, gap.T)
    weights = chem + gap
    graph = nx.DiGraph()
    graph.add_nodes_from(names)
    for i, j in zip(*np.nonzero(weights)):
        graph.add_edge(names[i], names[j], weight=float(weights[i, j]))
    labels = torch.as_tensor([SIM_CLASSES.index(get_sim_class(n)) for n in names], dtype=torch.long)
    if features == "degrees":
        counts = np.stack([(chem > 0).sum(0), (chem > 0).sum(1), (gap > 0).sum(1), chem.sum(0), chem.sum(1),
                           gap.sum(1)], axis=1)
        x = torch.as_tensor(np.log1p(counts), dtype=torch.float32)
    elif features == "identity":
        x = torch.eye(len(names))
    else:
        raise ValueError(f"unknown connectome features {features!r}; choose degrees or identity")
    return graph, x, labels, names


def describe(graph: Any) -> str:
    """``"N nodes, E edges (directed|undirected)"``."""
    kind = "directed" if graph.is_directed() else "undirected"
    return f"{graph.number_of_nodes()} nodes, {graph.number_of_edges()} edges ({kind})"
