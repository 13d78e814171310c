"""Spiking graph convolutional networks for node classification (``kind: spiking_gcn`` configs; Zhu et al. 2022,
"Spiking Graph Convolutional Networks", IJCAI), side by side with their non-spiking twin (SGC, Wu et al. 2019).

The graph side (:mod:`braincore.training.graph_conv`, equations there): ``S = D^-1/2 (A + I) D^-1/2`` of any
networkx graph (``graph.mode: symmetric``; directed graphs are symmetrised) or the in-degree normalisation that
keeps direction (``mode: in``), ``X' = S^K X`` once (``graph.hops = K``), each feature scaled to ``[0, 1]`` over
all nodes. ``model: spiking`` (SpikingGCN): the scaled ``X'`` of each node as Bernoulli spike trains of ``T =
encoder.steps`` steps, optional hidden LIF layers (``network.hidden``), an LIF output layer classified by its
spike counts (``network.readout: lif``, the paper's; or a ``leaky`` membrane read-out), trained with a surrogate
gradient on the spike-count MSE to target rates (``network.loss: count_mse``; ``count_ce``, the softmax of the
counts, leaves an output neuron silent for good on the SBM sets: 67 % where count_mse gets 98 %).
``model: gcn``: the equal-size non-spiking twin, SGC (the same layer sizes with ReLU on the same scaled ``X'``;
no hidden layer: SGC's logistic regression ``softmax(S^K X W)``), trained by the same Trainer, optimiser and
schedule: the same config file runs either.

**Data** (``data.source``): ``sbm``, a stochastic block model (``blocks`` sizes, ``p_in``, ``p_out``,
``features`` dimensions with class means and Gaussian ``noise``; difficulty grows with ``p_out / p_in`` and
``noise``); ``celegans``: the C. elegans hermaphrodite connectome (Cook et al. 2019, from the ``cect`` package,
an optional extra) with the neurons' classes (sensory / inter / motor) as labels and ``connectome_features``
``degrees`` (6 log synapse and partner counts) or ``identity`` (one-hot). The nodes are split once (seeded) into
``split.validation`` and ``split.test`` fractions, the rest trains (transductive: the propagation sees the whole
graph, the loss only the training nodes' labels). The validation nodes are for tuning; the test nodes are scored
once, at the end.

**Output.** ``braincore run <config>`` prints the graph and model, a progress bar, one line per epoch (validation
accuracy), validation and test accuracy, the efficiency per test node (input spikes, spikes, synaptic operations
and MACs of the classifier, steps ``T``; the propagation's ``K nnz(S) d / N`` MACs per node, shared by both
models, apart), then a JSON line with all of it plus training and wall time. Checkpoints ``<out>/<name>.ckpt``
(atomic; every ``checkpoint_every`` optimiser steps and at every epoch end) resume exactly; a checkpoint of
another config is refused.

**Measured** (seed 0, one CPU thread): the 4-block SBM of ``sbm_spiking_gcn.yaml`` 69.17 % test for SpikingGCN
(T = 20; 73.75 % at T = 100) vs 77.08 % for the SGC twin; its hard variant (p_in 0.02, p_out 0.015, noise 3)
43.75 % (T = 100: 47.92 %) vs 47.08 %; the C. elegans neuron classes 55.00 % vs 60.00 % (chance 25 % and a 42 %
majority class). The paper (citation graphs, not available offline here): SpikingGCN within about a point of
SGC/GCN.
"""
from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from braincore.choices import SURROGATE_NAMES
from braincore.config import Flag, Integer, Kind, ListOf, Record, Text, register_kind
from braincore.errors import ConfigError
from tasks.common import (OutputName, config_key, device_problem, filled_record, lazy_attributes, number,
                          optimizer_schedule_problems, remember_document, resume_fit_score, seed_problem,
                          torch_run_setup)
from tasks.perception.surrogate import SCHEMA as SURROGATE_SCHEMA
from tasks.perception.surrogate import build_schedule

if TYPE_CHECKING:
    import torch

SOURCES = ("sbm", "celegans")
MODELS = ("spiking", "gcn")
SBM_KEYS = ("blocks", "p_in", "p_out", "features", "noise")

SCHEMA = Record({
    "kind": Text(required=True),
    "name": OutputName("spiking_gcn", doc="names the checkpoint <out>/<name>.ckpt"),
    "seed": Integer(0, minimum=0, doc="seeds the graph, the split, the weights and the spike draws"),
    "device": Text("cpu", doc="cpu, cuda, cuda:1, ..., mps or auto"),
    "threads": Integer(None, minimum=1, doc="torch CPU threads (default: leave as is)"),
    "model": Text("spiking", choices=MODELS, doc="spiking: SpikingGCN; gcn: the same-size non-spiking twin (SGC)"),
    "data": filled_record({
        "source": Text("sbm", choices=SOURCES, doc="sbm: a stochastic block model; celegans: the C. elegans "
                                                   "connectome (needs the cect package)"),
        "blocks": ListOf(Integer(None, minimum=1), doc="sbm: nodes per block (class); default [100, 100, 100]"),
        "p_in": number(None, minimum=0.0, doc="sbm: edge probability within a block (default 0.05)"),
        "p_out": number(None, minimum=0.0, doc="sbm: edge probability between blocks (default 0.01)"),
        "features": Integer(None, minimum=1, doc="sbm: feature dimensions (default 16)"),
        "noise": number(None, minimum=0.0, doc="sbm: feature noise std around the unit-variance class means "
                                               "(default 2)"),
        "connectome_features": Text(None, choices=("degrees", "identity"), doc="celegans: degrees (default) or "
                                                                                "identity"),
    }),
    "graph": filled_record({
        "mode": Text("symmetric", choices=("symmetric", "in"), doc="symmetric: D^-1/2 (A + I) D^-1/2 (directed "
                                                                     "graphs symmetrised); in: in-degree mean"),
        "hops": Integer(2, minimum=0, doc="K: X' = S^K X"),
        "weighted": Flag(False, doc="use the edge weights (synapse counts of the connectome); false: 1 per edge"),
    }),
    "split": filled_record({
        "validation": number(0.2, exclusive_minimum=0.0, doc="fraction of the nodes held out for validation"),
        "test": number(0.4, exclusive_minimum=0.0, doc="fraction of the nodes scored once at the end"),
    }),
    "encoder": filled_record({
        "steps": Integer(20, minimum=1, doc="time steps T of the Bernoulli spike trains (spiking only)"),
    }),
    "network": filled_record({
        "hidden": ListOf(Integer(None, minimum=1), default=[], doc="hidden layer sizes (default none: the "
                                                                   "paper's single LIF layer)"),
        "tau": number(10.0, exclusive_minimum=0.0, doc="LIF membrane time constant in steps"),
        "threshold": number(1.0, exclusive_minimum=0.0),
        "surrogate": Text("fast_sigmoid", choices=[s for s in SURROGATE_NAMES if s != "heaviside"]),
        "readout": Text("lif", choices=("lif", "leaky"), doc="lif: spiking output neurons, classified by spike "
                                                             "counts; leaky: membrane (mean over time)"),
        "loss": Text("count_mse", choices=("count_mse", "count_ce"), doc="lif read-out: count_mse (target rates "
                                                                          "0.8 correct / 0.2 other, default) or "
                                                                          "count_ce (softmax of the counts)"),
    }),
    "optimizer": SURROGATE_SCHEMA.fields["optimizer"],
    "schedule": SURROGATE_SCHEMA.fields["schedule"],
    "training": filled_record({
        "epochs": Integer(100, minimum=0),
        "batch": Integer(64, minimum=1, doc="nodes per batch"),
    }),
    "evaluation": filled_record({
        "every_epoch": Flag(True, doc="score the validation nodes after every epoch"),
        "batch": Integer(1000, minimum=1),
    }),
    "checkpoint_every": Integer(200, minimum=1, doc="optimiser steps between checkpoints (and every epoch end)"),
    "resume": Flag(True),
    "progress": Flag(True),
})


def semantic_check(config: dict, doc, problems: list) -> None:
    """Cross-field checks, each reported at its own line and key."""
    remember_document(config, doc)
    device_problem(config, doc, problems)
    seed_problem(config, doc, problems)
    data = config.get("data") or {}
    if data.get("source") == "celegans":
        for key in SBM_KEYS:
            if data.get(key) is not None:
                problems.append(doc.problem(("data", key), "only the sbm source takes this key"))
    elif data.get("source") == "sbm":
        if data.get("connectome_features") is not None:
            problems.append(doc.problem(("data", "connectome_features"), "only the celegans source takes this key"))
        for key in ("p_in", "p_out"):
            if data.get(key) is not None and data[key] > 1:
                problems.append(doc.problem(("data", key), f"a probability must be <= 1, got {data[key]:g}"))
        blocks = data.get("blocks")
        if isinstance(blocks, list) and len(blocks) < 2:
            problems.append(doc.problem(("data", "blocks"), "needs at least 2 blocks (classes)"))
    split = config.get("split") or {}
    val, test = split.get("validation"), split.get("test")
    if isinstance(val, (int, float)) and isinstance(test, (int, float)) and val + test >= 1:
        problems.append(doc.problem(("split",), f"validation + test = {val + test:g} leaves no training nodes"))
    if config.get("model") == "gcn" and (config.get("network") or {}).get("readout") == "leaky":
        problems.append(doc.problem(("network", "readout"), "the gcn model has no spiking read-out; leave it out"))
    optimizer_schedule_problems(config, doc, problems)


def _config_key(config: dict) -> str:
    """Everything that changes training (not evaluation sizes, progress or checkpoint frequency)."""
    return config_key(config, ("seed", "model", "data", "graph", "split", "encoder", "network", "optimizer",
                               "schedule", "training"))


def load_graph(config: dict) -> "tuple[Any, torch.Tensor, torch.Tensor]":
    """The config's ``(graph, features [N, d], labels [N])`` (nodes in the order of ``list(graph)``)."""
    from braincore.training.graph_conv import celegans_connectome, stochastic_block_model

    data = config["data"]
    if data["source"] == "sbm":
        return stochastic_block_model(data["blocks"] or [100, 100, 100],
                                      0.05 if data["p_in"] is None else data["p_in"],
                                      0.01 if data["p_out"] is None else data["p_out"],
                                      data["features"] or 16, 2.0 if data["noise"] is None else data["noise"],
                                      seed=config["seed"])
    try:
        graph, x, labels, _ = celegans_connectome(data["connectome_features"] or "degrees")
    except ImportError as err:
        raise ConfigError(f"data.source: celegans: {err}") from None
    return graph, x, labels


def node_split(n: int, validation: float, test: float, seed: int) -> "tuple[np.ndarray, np.ndarray, np.ndarray]":
    """Seeded ``(train, validation, test)`` node indices (sorted): the first ``round(validation n)`` of a
    permutation validate, the next ``round(test n)`` test, the rest train."""
    order = np.random.default_rng([int(seed), 3]).permutation(n)
    n_val, n_test = int(round(validation * n)), int(round(test * n))
    if n_val < 1 or n_test < 1 or n - n_val - n_test < 1:
        raise ConfigError(f"split: {n} nodes cannot give {n_val} validation, {n_test} test and some training nodes")
    return np.sort(order[n_val + n_test:]), np.sort(order[:n_val]), np.sort(order[n_val:n_val + n_test])


# ------------------------------------------------------------------------------------------ the runner
def run(config: dict, options: dict) -> dict:
    import torch

    from braincore.training.efficiency import measure
    from braincore.training.graph_conv import (SGCNet, build_spiking_gcn, describe, encode, normalized_adjacency,
                                               propagate, unit_scale)
    from braincore.training.losses import ClassificationLoss
    from braincore.training.trainer import TensorData, Trainer, seed_everything

    wall = time.perf_counter()
    out_dir, progress, device = torch_run_setup(config, options)
    seed, tr, ev, net, g = config["seed"], config["training"], config["evaluation"], config["network"], config["graph"]
    graph, features, labels = load_graph(config)
    adjacency = normalized_adjacency(graph, mode=g["mode"], weight="weight" if g["weighted"] else None)
    started = time.perf_counter()
    x = unit_scale(propagate(adjacency, features, g["hops"]))
    propagate_seconds = time.perf_counter() - started
    n_nodes, n_features = x.shape
    n_classes = int(labels.max()) + 1
    train_idx, val_idx, test_idx = node_split(n_nodes, config["split"]["validation"], config["split"]["test"], seed)

    def part(idx) -> "tuple[torch.Tensor, torch.Tensor]":
        take = torch.as_tensor(idx, dtype=torch.long)
        return x[take].to(device), labels[take].to(device)

    train_x, train_y = part(train_idx)
    train_data = TensorData(train_x, train_y, tr["batch"], seed=seed)
    validation, test_set = part(val_idx), part(test_idx)
    spiking = config["model"] == "spiking"
    steps = config["encoder"]["steps"] if spiking else 1
    if spiking:
        def transform(xb, gen=None):
            return encode(xb, steps, gen)
    else:
        def transform(xb, gen=None):
            return xb.unsqueeze(0)                                  # [1, B, d]: one step of real values

    seed_everything(seed)
    model: torch.nn.Module
    if spiking:
        model = build_spiking_gcn(n_features, net["hidden"], n_classes, tau=net["tau"], threshold=net["threshold"],
                                  surrogate=net["surrogate"], readout=net["readout"], readout_tau=net["tau"])
        loss = ClassificationLoss(net["loss"]) if net["readout"] == "lif" else ClassificationLoss("membrane",
                                                                                                 reduce="mean")
    else:
        model = SGCNet(n_features, net["hidden"], n_classes)
        loss = ClassificationLoss("membrane", reduce="last")        # T = 1: the logits
    opt = config["optimizer"]
    ckpt_path = out_dir / f"{config['name']}.ckpt"
    key = _config_key(config)
    trainer = Trainer(model, loss, optimizer=opt["kind"], lr=opt["lr"], weight_decay=opt["weight_decay"],
                      betas=(opt["beta1"], opt["beta2"]), schedule=build_schedule(config, len(train_data)),
                      batch_size=tr["batch"], eval_batch_size=ev["batch"], transform=transform, seed=seed,
                      device=device, grad_clip=opt["grad_clip"], checkpoint_path=ckpt_path,
                      checkpoint_every=config["checkpoint_every"], checkpoint_extra={"config_key": key},
                      progress=progress, resume=config["resume"])
    sizes = [n_features, *net["hidden"], n_classes]
    n_params = sum(p.numel() for p in model.parameters())
    what = (f"SpikingGCN (LIF, T = {steps}, readout {net['readout']})" if spiking
            else "SGC twin (non-spiking, same sizes)")
    print(f"spiking_gcn {config['name']}: {config['data']['source']} graph {describe(graph)}, {n_classes} classes, "
          f"S ({g['mode']}) ^ {g['hops']} X; {what} {'-'.join(map(str, sizes))} ({n_params} parameters); "
          f"nodes {len(train_idx)} train / {len(val_idx)} validation / {len(test_idx)} test; {tr['epochs']} "
          f"epoch(s) x {len(train_data)} batches of {tr['batch']}, {opt['kind']} lr {opt['lr']:g}, device {device}",
          flush=True)
    history, results = resume_fit_score(trainer, ckpt_path, key, config["resume"], train_data, tr["epochs"],
                                        validation, ev["every_epoch"], test_set)
    propagation_macs = g["hops"] * adjacency._nnz() * n_features / n_nodes
    efficiency: dict
    if spiking:
        gen = torch.Generator(device=device).manual_seed(seed + 17)
        efficiency = measure(trainer.model, transform, test_set[0], ev["batch"], gen)
        gen = torch.Generator(device=device).manual_seed(seed + 17)
        efficiency["input_spikes"] = float(transform(test_set[0], gen).sum()) / len(test_idx)
    else:
        macs = float(model.macs_per_sample())   # type: ignore[operator]
        efficiency = {"samples": len(test_idx), "steps": 1, "spikes": 0.0, "input_spikes": 0.0, "synops": 0.0,
                      "macs": macs, "flops": 2 * macs}
    efficiency["propagation_macs"] = round(propagation_macs, 2)
    print(f"per test node: {efficiency['input_spikes']:.1f} input spikes, {efficiency['spikes']:.2f} spikes, "
          f"{efficiency['synops']:.0f} synaptic operations, {efficiency['macs']:.0f} MACs over {steps} step(s) "
          f"(+ {propagation_macs:.0f} MACs of S^K X, once)")
    summary = {"task": "spiking_gcn", "name": config["name"], "model": config["model"],
               "source": config["data"]["source"], "nodes": n_nodes, "edges": graph.number_of_edges(),
               "classes": n_classes, "sizes": sizes, "parameters": n_params, "hops": g["hops"], "steps_T": steps,
               "epochs": tr["epochs"], "batch": tr["batch"], "steps": trainer.step,
               "train_nodes": len(train_idx), "validation_nodes": len(val_idx), "test_nodes": len(test_idx),
               **results,
               "spikes_per_node": round(float(efficiency["spikes"]), 3),
               "input_spikes_per_node": round(float(efficiency["input_spikes"]), 3),
               "synops_per_node": round(float(efficiency["synops"]), 1),
               "macs_per_node": round(float(efficiency["macs"]), 1),
               "efficiency": {k: v for k, v in efficiency.items() if k != "layers"},
               "propagate_seconds": round(propagate_seconds, 4),
               "train_seconds": round(trainer.train_seconds, 2),
               "wall_seconds": round(time.perf_counter() - wall, 2), "device": str(device),
               "history": history, "checkpoint": str(ckpt_path)}
    print(json.dumps(summary))
    return summary


KIND = register_kind(Kind("spiking_gcn", SCHEMA, run, semantic_check,
                          "spiking graph convolutional networks (SpikingGCN, Zhu et al. 2022) and their same-size "
                          "SGC twin: node classification on a stochastic block model or the C. elegans connectome"))

__getattr__ = lazy_attributes(__name__, {
    "torch": "torch",
    "Trainer": "braincore.training.trainer:Trainer",
})
