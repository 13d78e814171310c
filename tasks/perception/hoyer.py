"""One-time-step SNNs with Hoyer-regularised trainable thresholds (``kind: one_step_snn`` configs; Datta, Liu &
Beerel 2022, arXiv:2212.10170).

Every image is presented once (``T = 1``, direct encoding: pixels ``x = p / 255`` drive the first layer). Each
hidden layer (:mod:`braincore.training.hoyer`, equations there) fires ``s = 1[z >= E(z)]`` with
``z = clip(W x / v_th, 0, 1)``, ``E(z) = ||z||_2^2 / ||z||_1`` the Hoyer extremum and ``v_th`` a trainable
threshold per layer; the loss is cross-entropy of a non-spiking read-out plus
``loss.hoyer x sum_l H(z_l) / n_l`` (``H = ||z||_1^2 / ||z||_2^2``). ``network.model: ann`` trains the same-size
ReLU network with the same code (no regulariser): the twin of the accuracy-vs-FLOPs comparison.

**Data.** An MNIST-shaped IDX dataset (``data.dir``, else ``$BRAINCORE_DATA``, else ``../shared/data/<name>``);
another 28 x 28 dataset in IDX format runs with the same config by changing ``data.dir`` only (the number of
classes is read from the labels). A seeded validation hold-out of ``training.validation`` images is carved out
of the training split (never trained on); the test set is scored once, at the end.

**Output.** ``braincore run <config>`` prints the network, a progress bar (stderr), one line per epoch (with the
validation accuracy), the validation and test accuracy, the learnt thresholds, the operations per test sample
(spikes, SynOps, MACs, FLOPs = SynOps + 2 MACs, energy at 45 nm) and finally a JSON line with all of it plus
training and wall time. Checkpoints ``<out>/<name>.ckpt`` (atomic; every ``checkpoint_every`` optimiser steps and
at every epoch end) resume exactly; a checkpoint of another config is refused. Trainer:
:class:`braincore.training.trainer.Trainer`.

**Measured** (seed 0, one CPU thread of a shared 2-core machine, 4 epochs, 55,000 training images):
``mnist_hoyer_one_step.yaml`` (784-800-800-10, lambda_H 0.01) 97.98 % test at ``T = 1`` (97.86 % validation),
335 spikes, 8.38e4 SynOps, 6.27e5 MACs, 1.34 MFLOPs per test sample, 49 s of training; the ReLU twin 98.15 %
test, 2.55 MFLOPs (1.9x); without the regulariser 98.18 % test with 371 spikes (single seed: the accuracy
differences are within seed noise). The paper's results are on CIFAR / ImageNet convnets, not this MLP.

Reference: G. Datta, Z. Liu and P. A. Beerel, "Hoyer regularizer is all you need for ultra low-latency spiking
neural networks", arXiv:2212.10170 (2022).
"""
from __future__ import annotations

import json
import time


from braincore.config import Flag, Integer, Kind, ListOf, Record, Text, register_kind
from braincore.data import load_dataset
from braincore.errors import ConfigError
from tasks.common import (OutputName, batches, check_validation_split, config_key, device_problem, filled_record,
                          idx_shape, lazy_attributes, number, optimizer_schedule_problems, remember_document,
                          resume_fit_score, seed_problem, tensor_splits, torch_run_setup, training_splits)
from tasks.perception.surrogate import SCHEMA as SURROGATE_SCHEMA
from tasks.perception.surrogate import build_schedule

MODELS = ("snn", "ann")

SCHEMA = Record({
    "kind": Text(required=True),
    "name": OutputName("one_step_snn", doc="names the checkpoint <out>/<name>.ckpt"),
    "seed": Integer(0, minimum=0),
    "device": Text("cpu", doc="cpu, cuda, cuda:1, ..., mps or auto (cuda when available, else cpu)"),
    "threads": Integer(None, minimum=1, doc="torch CPU threads (default: leave as is)"),
    "data": filled_record({
        "source": Text("idx", choices=("idx",), doc="IDX image files"),
        "name": Text("mnist", doc="dataset folder name under the data root"),
        "dir": Text(None, doc="IDX dataset folder (default: $BRAINCORE_DATA or ../shared/data): the one key to "
                              "change for another 28 x 28 dataset"),
    }),
    "network": filled_record({
        "model": Text("snn", choices=MODELS, doc="snn: one-time-step Hoyer spiking layers; ann: the ReLU twin"),
        "hidden": ListOf(Integer(None, minimum=1), default=[800, 800], min_items=1, doc="hidden layer sizes"),
        "threshold": number(1.0, exclusive_minimum=0.0, doc="snn: initial trainable threshold v_th of every layer"),
        "surrogate_window": number(1.0, minimum=1.0, doc="snn: the spike's gradient is that of scale x clip(u / "
                                                          "v_th, 0, window); 1: straight through z; 2: the "
                                                          "authors' code"),
        "surrogate_scale": number(1.0, exclusive_minimum=0.0, doc="snn: see surrogate_window (0.5 in the "
                                                                   "authors' code)"),
    }),
    "loss": filled_record({
        "hoyer": number(1e-2, minimum=0.0, doc="snn: lambda_H, the Hoyer regulariser's coefficient (H / n per "
                                               "layer)"),
        "label_smoothing": number(0.0, minimum=0.0),
    }),
    "optimizer": SURROGATE_SCHEMA.fields["optimizer"],
    "schedule": SURROGATE_SCHEMA.fields["schedule"],
    "training": SURROGATE_SCHEMA.fields["training"],
    "evaluation": SURROGATE_SCHEMA.fields["evaluation"],
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
    shape = idx_shape(data, "train") if data else None
    if shape is not None:
        check_validation_split(config, doc, problems, shape[0], f"the training split of "
                                                                f"{data.get('name') or 'mnist'!r}")
    net, loss = config.get("network") or {}, config.get("loss") or {}
    if net.get("model") == "ann" and loss.get("hoyer"):
        problems.append(doc.problem(("loss", "hoyer"), "the ann twin has no thresholds to regularise; set 0"))
    if loss.get("label_smoothing") is not None and loss["label_smoothing"] >= 1:
        problems.append(doc.problem(("loss", "label_smoothing"), f"must be < 1, got {loss['label_smoothing']:g}"))
    optimizer_schedule_problems(config, doc, problems)


def _config_key(config: dict) -> str:
    """Everything that changes training (not evaluation sizes, progress or checkpoint frequency)."""
    return config_key(config, ("seed", "data", "network", "loss", "optimizer", "schedule", "training"))


def _transform(x, gen=None):
    """``uint8 [B, H, W] -> [1, B, H W]`` pixels in [0, 1] (one time step, direct encoding)."""
    import torch

    return (x.to(torch.float32) / 255.0).reshape(1, x.shape[0], -1)


def run(config: dict, options: dict) -> dict:

    from braincore.training.hoyer import HoyerLoss, HoyerMLP, count_operations
    from braincore.training.trainer import Trainer, seed_everything

    wall = time.perf_counter()
    out_dir, progress, device = torch_run_setup(config, options)
    seed, tr, ev, net = config["seed"], config["training"], config["evaluation"], config["network"]
    data = config["data"]
    train = load_dataset("train", data["dir"], name=data["name"], as_torch=True)
    test = load_dataset("test", data["dir"], name=data["name"], as_torch=True)
    train_x, train_y, test_x, test_y = train.images, train.labels, test.images, test.labels
    if train_x.dim() != 3:
        raise ConfigError(f"data: expected images [N, H, W], got {tuple(train_x.shape)}")
    n_classes = int(max(int(train_y.max()), int(test_y.max())) + 1)
    train_idx, val_idx, n_test = training_splits(config, len(train_y), len(test_y))
    n_val = len(val_idx)

    train_data, validation, test_set = tensor_splits(train_x, train_y, test_x, test_y, train_idx, val_idx, n_test,
                                                     tr["batch"], seed, device)

    seed_everything(seed)
    sizes = [int(train_x.shape[1] * train_x.shape[2]), *net["hidden"], n_classes]
    spiking = net["model"] == "snn"
    model = HoyerMLP(sizes, spiking=spiking, threshold=net["threshold"], window=net["surrogate_window"],
                     scale=net["surrogate_scale"])
    loss = HoyerLoss(model, config["loss"]["hoyer"] if spiking else 0.0, config["loss"]["label_smoothing"])
    opt = config["optimizer"]
    ckpt_path = out_dir / f"{config['name']}.ckpt"
    key = _config_key(config)
    trainer = Trainer(model, loss, optimizer=opt["kind"], lr=opt["lr"], weight_decay=opt["weight_decay"],
                      betas=(opt["beta1"], opt["beta2"]), schedule=build_schedule(config, len(train_data)),
                      batch_size=tr["batch"], eval_batch_size=ev["batch"], transform=_transform, seed=seed,
                      device=device, grad_clip=opt["grad_clip"], checkpoint_path=ckpt_path,
                      checkpoint_every=config["checkpoint_every"], checkpoint_extra={"config_key": key},
                      progress=progress, resume=config["resume"])
    n_params = sum(p.numel() for p in model.parameters())
    print(f"one_step_snn {config['name']}: {net['model']} {'-'.join(map(str, sizes))} ({n_params} parameters), "
          f"T = 1, {loss!r}, {opt['kind']} lr {opt['lr']:g}, schedule {config['schedule']['kind']}; "
          f"{tr['epochs']} epoch(s) x {len(train_data)} batches of {tr['batch']} ({train_data.samples} samples), "
          f"validation {n_val}, device {device}", flush=True)
    history, results = resume_fit_score(trainer, ckpt_path, key, config["resume"], train_data, tr["epochs"],
                                        validation, ev["every_epoch"], test_set)
    n_ops = min(n_test, ev["efficiency_samples"]) if ev["efficiency_samples"] else 0
    ops = count_operations(model, batches(test_set[0][:n_ops], ev["batch"]), _transform) if n_ops else None
    thresholds = [round(t, 5) for t in model.thresholds()] if spiking else None
    if thresholds is not None:
        print(f"learnt thresholds v_th: {', '.join(f'{t:.4f}' for t in thresholds)}")
    if ops is not None:
        per_layer = ", ".join(f"{a:.1f}" for a in ops["active_per_layer"])
        print(f"per test sample ({ops['samples']} samples): {'spikes' if spiking else 'nonzero activations'} "
              f"{per_layer} (of {', '.join(map(str, net['hidden']))}), SynOps {ops['synops']:.4g}, MACs "
              f"{ops['macs']:.4g}, FLOPs {ops['flops']:.4g}, energy {ops['energy_pj'] / 1e6:.4g} uJ (45 nm)")
    summary = {"task": "one_step_snn", "name": config["name"], "model": net["model"], "dataset": data["name"],
               "data_dir": data["dir"], "steps_T": 1, "sizes": sizes, "parameters": n_params,
               "hoyer": loss.coefficient, "epochs": tr["epochs"], "batch": tr["batch"], "steps": trainer.step,
               "train_samples": train_data.samples, "validation_samples": n_val, "test_samples": n_test, **results,
               "thresholds": thresholds,
               "efficiency": None if ops is None else {k: (round(v, 4) if isinstance(v, float) else
                                                           [round(a, 4) for a in v] if isinstance(v, list) else v)
                                                       for k, v in ops.items()},
               "train_seconds": round(trainer.train_seconds, 2),
               "seconds_per_epoch": round(trainer.train_seconds / trainer.epoch, 2) if trainer.epoch else None,
               "wall_seconds": round(time.perf_counter() - wall, 2), "device": str(device),
               "history": history, "checkpoint": str(ckpt_path)}
    print(json.dumps(summary))
    return summary


KIND = register_kind(Kind("one_step_snn", SCHEMA, run, semantic_check,
                          "one-time-step SNNs with Hoyer-regularised trainable thresholds (Datta, Liu & Beerel "
                          "2022) and their same-size ReLU twin: MLP on 28 x 28 IDX images"))

__getattr__ = lazy_attributes(__name__, {
    "torch": "torch",
    "Trainer": "braincore.training.trainer:Trainer",
})
