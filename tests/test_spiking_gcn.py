"""Spiking graph convolution (braincore.training.graph_conv) and the ``spiking_gcn`` task:

- the normalised adjacency against its closed form on a 3-node path (symmetric, a directed graph symmetrised,
  the in-degree normalisation, edge weights); the propagation against a dense matrix power;
- the Bernoulli encoder's rate against its expectation; the SBM generator's block structure;
- the task: both models learn an easy SBM well above chance; YAML mistakes at file, line and key; an interrupted
  run resumes exactly; the C. elegans connectome (skipped without the cect package).
"""
import copy
import json
import math
import sys
from pathlib import Path

import networkx as nx
import pytest
import torch

from braincore.checkpoint import load_checkpoint
from braincore.config import ConfigProblems, load_config, load_text, validate
from braincore.errors import ConfigError
from braincore.training import graph_conv as gc
from tasks.perception import spiking_gcn as task
from tiny_data import config_with, killed_at_step

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs" / "perception"


# ------------------------------------------------------------------------------------------ graph side
def test_symmetric_normalisation_of_a_path_matches_the_closed_form():
    # A + I of the path 0 - 1 - 2 has degrees (2, 3, 2): S_ij = 1 / sqrt(d_i d_j) on its nonzeros
    r6 = 1 / math.sqrt(6)
    expected = torch.tensor([[1 / 2, r6, 0], [r6, 1 / 3, r6], [0, r6, 1 / 2]])
    for graph in (nx.path_graph(3), nx.DiGraph([(0, 1), (1, 2)]), nx.DiGraph([(1, 0), (2, 1), (1, 2)])):
        s = gc.normalized_adjacency(graph, nodes=[0, 1, 2])
        assert s.is_sparse
        torch.testing.assert_close(s.to_dense(), expected, rtol=1e-6, atol=1e-7)   # float32 rounding


def test_in_degree_normalisation_keeps_direction_and_weights():
    # 0 -> 1 -> 2: node i averages itself and its in-neighbours: S[i, j] = Â[j, i] / sum_k Â[k, i]
    s = gc.normalized_adjacency(nx.DiGraph([(0, 1), (1, 2)]), nodes=[0, 1, 2], mode="in")
    torch.testing.assert_close(s.to_dense(), torch.tensor([[1.0, 0, 0], [0.5, 0.5, 0], [0, 0.5, 0.5]]))
    g = nx.DiGraph()
    g.add_edge(0, 1, weight=3.0)
    s = gc.normalized_adjacency(g, nodes=[0, 1], mode="in", weight="weight")
    torch.testing.assert_close(s.to_dense(), torch.tensor([[1.0, 0], [0.75, 0.25]]))
    # symmetric with weight 3: Â = [[1, 3], [3, 1]], degrees 4: S = Â / 4
    s = gc.normalized_adjacency(g, nodes=[0, 1], weight="weight")
    torch.testing.assert_close(s.to_dense(), torch.tensor([[0.25, 0.75], [0.75, 0.25]]))
    with pytest.raises(ValueError, match="unknown normalisation mode"):
        gc.normalized_adjacency(g, mode="out")


@pytest.mark.parametrize("hops", [0, 1, 3])
def test_propagation_equals_the_dense_matrix_power(hops):
    graph = nx.gnp_random_graph(30, 0.15, seed=1)
    x = torch.randn(30, 5, generator=torch.Generator().manual_seed(0))
    s = gc.normalized_adjacency(graph)
    dense = torch.linalg.matrix_power(s.to_dense().double(), hops) @ x.double()
    torch.testing.assert_close(gc.propagate(s, x, hops).double(), dense, rtol=1e-5, atol=1e-6)  # float32 products
    # S's eigenvalues lie in (-1, 1]: propagation never blows up
    assert torch.linalg.eigvalsh(s.to_dense().double()).abs().max() <= 1 + 1e-6   # float32 entries


def test_unit_scale_and_the_encoder_rate_match_their_expectation():
    x = torch.tensor([[0.0, 5.0, 2.0], [1.0, 5.0, 4.0], [0.5, 5.0, 3.0]])
    torch.testing.assert_close(gc.unit_scale(x), torch.tensor([[0.0, 0, 0], [1, 0, 1], [0.5, 0, 0.5]]))
    p = torch.tensor([[0.0, 0.1, 0.5, 0.9, 1.0]])
    spikes = gc.encode(p, 4000, torch.Generator().manual_seed(3))
    assert spikes.shape == (4000, 1, 5) and set(spikes.unique().tolist()) <= {0.0, 1.0}
    # the count is Binomial(T, p): its mean rate has std sqrt(p (1 - p) / T) <= 0.008; 5 std
    torch.testing.assert_close(spikes.mean(dim=0), p, rtol=0, atol=0.04)


def test_stochastic_block_model_has_its_blocks_and_class_features():
    graph, x, labels = gc.stochastic_block_model([80, 80, 80], 0.2, 0.02, features=8, noise=0.5, seed=4)
    assert graph.number_of_nodes() == 240 and x.shape == (240, 8) and labels.tolist() == [0] * 80 + [1] * 80 + [2] * 80
    within = sum(labels[u] == labels[v] for u, v in graph.edges())
    between = graph.number_of_edges() - within
    pairs_in, pairs_out = 3 * 80 * 79 / 2, 3 * 80 * 80
    # densities are binomial estimates over ~9500 and ~19200 pairs: std ~0.004 and ~0.001; 5 std
    assert abs(within / pairs_in - 0.2) < 0.02 and abs(between / pairs_out - 0.02) < 0.005
    means = torch.stack([x[labels == c].mean(0) for c in range(3)])
    spread = torch.stack([x[labels == c].std(0) for c in range(3)])
    assert (spread - 0.5).abs().max() < 0.15                   # the noise std, from 80 samples
    assert torch.cdist(means, means).fill_diagonal_(9).min() > 1.0   # distinct class means


def test_the_spiking_model_counts_operations():
    model = gc.build_spiking_gcn(6, [5], 3)
    assert len(model.layers) == 1 and model.readout.n_in == 5
    twin = gc.SGCNet(6, [5], 3)
    assert twin.macs_per_sample() == 6 * 5 + 5 * 3
    assert twin(torch.zeros(1, 4, 6)).shape == (1, 4, 3)


# ------------------------------------------------------------------------------------------ the task
def _easy(model: str, **overrides) -> dict:
    settings = dict(model=model, data__blocks=[50, 50, 50], data__p_in=0.12, data__p_out=0.005, data__noise=1.0,
                    data__features=8, training__epochs=25, training__batch=16, encoder__steps=10,
                    checkpoint_every=4)
    return config_with(CONFIGS / "sbm_spiking_gcn.yaml", **{**settings, **overrides})


@pytest.mark.parametrize("name", ["sbm_spiking_gcn", "celegans_spiking_gcn"])
def test_bundled_configs_validate(name):
    kind, config = load_config(CONFIGS / f"{name}.yaml")
    assert kind.name == "spiking_gcn" and config["name"] == name


@pytest.mark.parametrize("model", ["spiking", "gcn"])
def test_both_models_learn_an_easy_sbm(tmp_path, capsys, model):
    summary = task.run(_easy(model), {"out": str(tmp_path)})
    assert summary["test_accuracy"] >= 0.7, summary              # chance 1/3
    assert summary["train_nodes"] + summary["validation_nodes"] + summary["test_nodes"] == 150
    if model == "spiking":
        assert summary["spikes_per_node"] > 0 and summary["synops_per_node"] > 0 and summary["steps_T"] == 10
    else:
        assert summary["spikes_per_node"] == 0 and summary["macs_per_node"] == 8 * 3
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last)["test_accuracy"] == summary["test_accuracy"]


def test_the_celegans_source_without_cect_names_the_extra(tmp_path, monkeypatch):
    for name in ("cect", "cect.Cells", "cect.readers", "cect.readers.Cook2019HermReader"):
        monkeypatch.setitem(sys.modules, name, None)            # importing it raises ImportError
    config = config_with(CONFIGS / "celegans_spiking_gcn.yaml")
    with pytest.raises(ConfigError, match=r"data.source: celegans: .*pip install --no-deps cect"):
        task.run(config, {"out": str(tmp_path)})


def test_yaml_mistakes_name_file_line_and_key():
    text = """kind: spiking_gcn
model: gnn
data: {source: celegans, p_in: 0.1}
split: {validation: 0.5, test: 0.6}
network: {hiden: [4]}
"""
    with pytest.raises(ConfigProblems) as err:
        validate(load_text(text, "bad.yaml"))
    text = str(err.value)
    for expected in [
        "bad.yaml:2: model: unknown value 'gnn'",
        "bad.yaml:3: data.p_in: only the sbm source takes this key",
        "bad.yaml:4: split: validation + test = 1.1 leaves no training nodes",
        "bad.yaml:5: network.hiden: unknown key; did you mean 'hidden'?",
    ]:
        assert expected in text, text
    with pytest.raises(ConfigProblems, match=r"bad.yaml:2: data.p_out: a probability must be <= 1"):
        validate(load_text("kind: spiking_gcn\ndata: {source: sbm, p_out: 2}\n", "bad.yaml"))


def test_an_interrupted_run_resumes_exactly(tmp_path, monkeypatch):
    config = _easy("spiking", training__epochs=3)          # 60 training nodes: 4 batches per epoch, checkpoints every 4
    straight = task.run(copy.deepcopy(config), {"out": str(tmp_path / "a")})
    with killed_at_step(monkeypatch, task.Trainer, 7), pytest.raises(KeyboardInterrupt):
        task.run(copy.deepcopy(config), {"out": str(tmp_path / "b")})
    ckpt = tmp_path / "b" / "sbm_spiking_gcn.ckpt"
    assert load_checkpoint(ckpt)["position"]["step"] == 4
    resumed = task.run(copy.deepcopy(config), {"out": str(tmp_path / "b")})
    a, b = load_checkpoint(tmp_path / "a" / "sbm_spiking_gcn.ckpt")["model"], load_checkpoint(ckpt)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["steps"] == straight["steps"] == 12
    for key in ("test_accuracy", "validation_accuracy", "spikes_per_node", "synops_per_node"):
        assert resumed[key] == straight[key]
    drop = lambda h: [{k: v for k, v in e.items() if k != "train_seconds"} for e in h]  # noqa: E731
    assert drop(resumed["history"]) == drop(straight["history"])
    with pytest.raises(ConfigError, match="another configuration"):
        task.run(_easy("gcn", training__epochs=3), {"out": str(tmp_path / "b")})


@pytest.mark.slow   # cect reads the Excel sheets of Cook et al. (about 15 s)
def test_the_celegans_connectome_has_three_neuron_classes():
    pytest.importorskip("cect")
    graph, x, labels, names = gc.celegans_connectome()
    assert graph.is_directed() and len(names) == graph.number_of_nodes() == len(labels) == x.shape[0]
    assert 290 <= len(names) <= 302 and x.shape[1] == 6
    counts = torch.bincount(labels, minlength=3).tolist()
    assert all(c >= 60 for c in counts), counts                  # sensory, inter, motor: each a large class
    assert names.index("AVAL") >= 0 and labels[names.index("AVAL")] == gc.SIM_CLASSES.index("Interneuron")
