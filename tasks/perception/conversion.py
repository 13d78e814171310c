"""ANN-to-SNN conversion (``kind: ann_to_snn`` configs): train a ReLU (or QCFS) MLP, convert it to
integrate-and-fire neurons with reset by subtraction, and score the SNN at every number of time steps.

The equations, the balancing and the papers are in :mod:`braincore.training.conversion`: robust normalisation
(the ``conversion.percentile``-th percentile of each layer's activations on ``conversion.balance_samples``
training images, Rueckauer et al. 2017; 100: the maximum, Diehl et al. 2015) for ReLU networks, the trained
``lambda`` of the quantisation-clip-floor-shift activation for ``network.activation: qcfs`` (Bu et al. 2022, with
the initial membrane at half the threshold).

**Data.** An MNIST-shaped IDX dataset (``data.dir``, else ``$BRAINCORE_DATA``, else ``../shared/data/<name>``);
another 28 x 28 dataset runs with the same config by changing ``data.dir`` only. Pixels ``x = p / 255``; a seeded
validation hold-out of ``training.validation`` images is never trained on; the test set is scored once.

**Output.** ``braincore run <config>`` prints the network, a progress bar (stderr) and one line per epoch of the
ANN's training (checkpoints ``<out>/<name>.ckpt``, atomic, resumable: a rerun continues where it stopped and
skips finished training), the ANN's validation and test accuracy, the layer scales, the SNN's validation and test
accuracy at the ``conversion.report`` step counts (all from one run of ``conversion.steps`` steps), spikes and
synaptic operations per test sample, a plot ``<out>/<name>_accuracy.png`` of test accuracy against ``T``
(unless ``--no-plot``; needs matplotlib) and finally a JSON line with all of it.

**Measured** (MNIST, seed 0, one CPU thread of a shared 2-core machine, 784-500-500-10, 6 epochs):
``mnist_conversion.yaml`` (ReLU, 99.9th percentile) ANN 98.26 %, SNN 91.47 / 98.22 / 98.36 / 98.27 % test at
T = 4 / 8 / 32 / 128 (688 spikes, 148k synaptic operations per image at T = 8), 72.8 s wall;
``mnist_conversion_qcfs.yaml`` (QCFS, L = 4) ANN 97.99 %, SNN 93.07 / 97.91 / 98.00 / 98.10 % at T = 1 / 2 / 4 / 8
(505 spikes, 71k synaptic operations at T = 2), 62.9 s wall.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import numpy as np

from braincore.config import Flag, Integer, Kind, ListOf, Record, Text, register_kind
from braincore.data import load_dataset
from braincore.errors import ConfigError
from tasks.common import (OutputName, check_validation_split, config_key, device_problem, filled_record, idx_shape,
                          lazy_attributes, number, optimizer_schedule_problems, remember_document, resume_fit_score,
                          seed_problem, tensor_splits, torch_run_setup, training_splits)
from tasks.perception.surrogate import SCHEMA as SURROGATE_SCHEMA
from tasks.perception.surrogate import build_schedule

if TYPE_CHECKING:
    import torch

ACTIVATIONS = ("relu", "qcfs")   # braincore.training.conversion.ACTIVATIONS, here without PyTorch

SCHEMA = Record({
    "kind": Text(required=True),
    "name": OutputName("ann_to_snn", doc="names the checkpoint <out>/<name>.ckpt and the plot"),
    "seed": Integer(0, minimum=0),
    "device": Text("cpu", doc="cpu, cuda, ... or auto (training the ANN; the SNN runs on the CPU in float64)"),
    "threads": Integer(None, minimum=1, doc="torch CPU threads (default: leave as is)"),
    "data": filled_record({
        "source": Text("idx", choices=("idx",), doc="IDX image files"),
        "name": Text("mnist", doc="dataset folder name under the data root"),
        "dir": Text(None, doc="IDX dataset folder: the one key to change for another 28 x 28 dataset"),
    }),
    "network": filled_record({
        "hidden": ListOf(Integer(None, minimum=1), default=[500, 500], min_items=1, doc="hidden layer sizes"),
        "activation": Text("relu", choices=ACTIVATIONS, doc="relu, or qcfs (Bu et al. 2022)"),
        "levels": Integer(None, minimum=1, doc="qcfs: quantisation levels L (default 4)"),
        "lambda_init": number(None, exclusive_minimum=0.0, doc="qcfs: initial lambda (default 8, the paper's "
                                                                "code)"),
    }),
    "conversion": filled_record({
        "percentile": number(99.9, exclusive_minimum=0.0, doc="robust normalisation percentile (100: maximum)"),
        "balance_samples": Integer(5000, minimum=1, doc="training images the activations are measured on"),
        "steps": Integer(128, minimum=1, doc="time steps T_max of the SNN run"),
        "report": ListOf(Integer(None, minimum=1), default=[1, 2, 4, 8, 16, 32, 64, 128],
                         doc="step counts whose accuracy is printed (all of 1..steps are in the JSON)"),
        "v0": number(None, minimum=0.0, doc="initial membrane in units of the threshold (default: 0.5 for "
                                            "qcfs, 0 for relu); must be < 1"),
    }),
    "optimizer": SURROGATE_SCHEMA.fields["optimizer"],
    "schedule": SURROGATE_SCHEMA.fields["schedule"],
    "training": SURROGATE_SCHEMA.fields["training"],
    "evaluation": filled_record({
        "every_epoch": Flag(True, doc="score the validation split after every epoch"),
        "batch": Integer(1000, minimum=1),
        "validation_samples": Integer(None, minimum=0, doc="default: the whole validation split"),
        "test_samples": Integer(None, minimum=1, doc="default: the whole test set"),
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
    data, net, conv = config.get("data") or {}, config.get("network") or {}, config.get("conversion") or {}
    shape = idx_shape(data, "train") if data else None
    if shape is not None:
        check_validation_split(config, doc, problems, shape[0], f"the training split of "
                                                                f"{data.get('name') or 'mnist'!r}")
    if net.get("activation") == "relu":
        for key in ("levels", "lambda_init"):
            if net.get(key) is not None:
                problems.append(doc.problem(("network", key), "only the qcfs activation takes this key"))
    percentile = conv.get("percentile")
    if percentile is not None and percentile > 100:
        problems.append(doc.problem(("conversion", "percentile"), f"must be <= 100, got {percentile:g}"))
    if conv.get("v0") is not None and conv["v0"] >= 1:
        problems.append(doc.problem(("conversion", "v0"), f"must be < 1 (a threshold), got {conv['v0']:g}"))
    steps, report = conv.get("steps"), conv.get("report")
    if isinstance(steps, int) and isinstance(report, list):
        for i, t in enumerate(report):
            if isinstance(t, int) and t > steps:
                problems.append(doc.problem(("conversion", "report", i), f"{t} exceeds conversion.steps = {steps}"))
    optimizer_schedule_problems(config, doc, problems)


def _config_key(config: dict) -> str:
    """Everything that changes the ANN's training (the conversion is redone on every run: it is cheap)."""
    return config_key(config, ("seed", "data", "network", "optimizer", "schedule", "training"))


def _flat(x: "torch.Tensor") -> "torch.Tensor":
    import torch

    return x.to(torch.float32).reshape(x.shape[0], -1) / 255.0


def _transform(x, gen=None):
    return _flat(x).unsqueeze(0)                     # [1, B, N]: the Trainer's [T, B, N] with T = 1


def _plot(curve: list, ann: float, report: list, path: Path, title: str) -> Optional[str]:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    steps = np.arange(1, len(curve) + 1)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(steps, 100 * np.asarray(curve), label="converted SNN")
    ax.axhline(100 * ann, color="k", ls="--", lw=1, label="ANN")
    ax.scatter(report, [100 * curve[t - 1] for t in report], s=12)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("time steps T")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return str(path)


# ------------------------------------------------------------------------------------------ the runner
def run(config: dict, options: dict) -> dict:
    import torch

    from braincore.progress import progress_bar
    from braincore.training.conversion import ReLUNet, accuracy_curve, convert
    from braincore.training.single_spike import SingleSpikeLoss
    from braincore.training.trainer import Trainer, seed_everything

    wall = time.perf_counter()
    out_dir, progress, device = torch_run_setup(config, options)
    seed, tr, ev, net, conv = config["seed"], config["training"], config["evaluation"], config["network"], \
        config["conversion"]
    data = config["data"]
    train = load_dataset("train", data["dir"], name=data["name"], as_torch=True)
    test = load_dataset("test", data["dir"], name=data["name"], as_torch=True)
    train_x, train_y, test_x, test_y = train.images, train.labels, test.images, test.labels
    if train_x.dim() != 3:
        raise ConfigError(f"data: expected images [N, H, W], got {tuple(train_x.shape)}")
    n_classes = int(max(int(train_y.max()), int(test_y.max())) + 1)
    n_in = int(train_x.shape[1] * train_x.shape[2])
    train_idx, val_idx, n_test = training_splits(config, len(train_y), len(test_y))
    n_val = len(val_idx)

    train_data, validation, test_set = tensor_splits(train_x, train_y, test_x, test_y, train_idx, val_idx, n_test,
                                                     tr["batch"], seed, device)

    seed_everything(seed)
    sizes = [n_in, *net["hidden"], n_classes]
    levels = net["levels"] if net["levels"] is not None else 4
    lam = net["lambda_init"] if net["lambda_init"] is not None else 8.0
    model = ReLUNet(sizes, net["activation"], levels=levels, lam=lam)
    opt = config["optimizer"]
    ckpt_path = out_dir / f"{config['name']}.ckpt"
    key = _config_key(config)
    trainer = Trainer(model, SingleSpikeLoss("sum"), optimizer=opt["kind"], lr=opt["lr"],
                      weight_decay=opt["weight_decay"], betas=(opt["beta1"], opt["beta2"]),
                      schedule=build_schedule(config, len(train_data)), batch_size=tr["batch"],
                      eval_batch_size=ev["batch"], transform=_transform, seed=seed, device=device,
                      grad_clip=opt["grad_clip"], checkpoint_path=ckpt_path,
                      checkpoint_every=config["checkpoint_every"], checkpoint_extra={"config_key": key},
                      progress=progress, resume=config["resume"])
    activation = net["activation"] + (f" (L = {levels})" if net["activation"] == "qcfs" else "")
    print(f"ann_to_snn {config['name']}: ANN {'-'.join(map(str, sizes))} {activation}, {opt['kind']} lr "
          f"{opt['lr']:g}; {tr['epochs']} epoch(s) x {len(train_data)} batches of {tr['batch']} "
          f"({train_data.samples} samples), validation {n_val}; SNN: IF, reset by subtraction, "
          f"T = {conv['steps']}", flush=True)
    history, ann = resume_fit_score(trainer, ckpt_path, key, config["resume"], train_data, tr["epochs"],
                                    validation, ev["every_epoch"], test_set)

    # conversion: balance on training images (never the validation or test images)
    started = time.perf_counter()
    trained = trainer.model.to("cpu").eval()
    assert isinstance(trained, ReLUNet)
    balance = _flat(train_x[torch.as_tensor(train_idx[:conv["balance_samples"]], dtype=torch.long)])
    snn = convert(trained, balance, conv["percentile"], conv["v0"])
    print("layer scales (lambda): " + ", ".join(f"{s:.4g}" for s in snn.scales) + f"; initial membrane {snn.v0:g}")
    steps = conv["steps"]

    def pairs(x, y, desc: str):
        with progress_bar(len(y), f"SNN {desc}, T = {steps}", progress, "image") as bar:
            for start in range(0, len(y), ev["batch"]):
                yield _flat(x[start:start + ev["batch"]].cpu()), y[start:start + ev["batch"]].cpu()
                bar.update(min(ev["batch"], len(y) - start))

    val_curve = None
    if validation is not None:
        val_curve = accuracy_curve(snn, pairs(validation[0], validation[1], "validation"), steps)
    curve = accuracy_curve(snn, pairs(test_set[0], test_set[1], "test"), steps)
    snn_seconds = time.perf_counter() - started
    report = sorted({t for t in conv["report"] if t <= steps})
    for t in report:
        line = f"T = {t:4d}: test {100 * curve['accuracy'][t - 1]:.2f} %"
        if val_curve is not None:
            line += f", validation {100 * val_curve['accuracy'][t - 1]:.2f} %"
        print(line + f", spikes/sample {curve['spikes_at'][t - 1]:.1f}, synops/sample {curve['synops_at'][t - 1]:.0f}")
    per_layer = ", ".join(f"{c:.1f}" for c in curve["spikes_per_layer"])
    print(f"over T = {steps}: {curve['spikes_per_sample']:.1f} spikes per test sample (per layer {per_layer}), "
          f"{curve['synops_per_sample']:.0f} synaptic operations, {curve['input_macs_per_sample']:.0f} input MACs "
          f"(ANN: {curve['ann_macs_per_sample']:.0f} MACs)")
    png = None
    if not options.get("no_plot"):
        png = _plot(curve["accuracy"], ann["test_accuracy"], report, out_dir / f"{config['name']}_accuracy.png",
                    f"{config['name']}: {activation}, {data['name']}")
    summary = {"task": "ann_to_snn", "name": config["name"], "dataset": data["name"], "data_dir": data["dir"],
               "sizes": sizes, "activation": net["activation"],
               "levels": levels if net["activation"] == "qcfs" else None, "epochs": tr["epochs"],
               "train_samples": train_data.samples, "validation_samples": n_val, "test_samples": n_test,
               "ann_validation_accuracy": ann.get("validation_accuracy"), "ann_test_accuracy": ann["test_accuracy"],
               "percentile": conv["percentile"], "scales": [round(s, 6) for s in snn.scales], "v0": snn.v0,
               "steps_T": steps,
               "snn_test_accuracy": {str(t): curve["accuracy"][t - 1] for t in report},
               "snn_validation_accuracy": ({str(t): val_curve["accuracy"][t - 1] for t in report}
                                           if val_curve is not None else None),
               "snn_test_curve": [round(a, 6) for a in curve["accuracy"]],
               "spikes_per_sample": {str(t): round(curve["spikes_at"][t - 1], 3) for t in report},
               "synops_per_sample": {str(t): round(curve["synops_at"][t - 1], 1) for t in report},
               "spikes_per_layer": [round(c, 3) for c in curve["spikes_per_layer"]],
               "input_macs_per_sample_per_step": curve["input_macs_per_sample"] / steps,
               "ann_macs_per_sample": curve["ann_macs_per_sample"],
               "steps": trainer.step, "train_seconds": round(trainer.train_seconds, 2),
               "snn_seconds": round(snn_seconds, 2), "wall_seconds": round(time.perf_counter() - wall, 2),
               "device": str(device), "history": history, "checkpoint": str(ckpt_path), "plot": png}
    print(json.dumps(summary))
    return summary


KIND = register_kind(Kind("ann_to_snn", SCHEMA, run, semantic_check,
                          "ANN-to-SNN conversion of a trained ReLU or QCFS MLP (threshold balancing, IF neurons "
                          "with reset by subtraction) with its accuracy at every number of time steps"))

__getattr__ = lazy_attributes(__name__, {
    "torch": "torch",
    "Trainer": "braincore.training.trainer:Trainer",
})
