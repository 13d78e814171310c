"""The hybrid-spiking Legendre Memory Unit on (permuted) sequential images (``kind: lmu_classifier`` configs;
Voelker, Rasmussen & Eliasmith 2020, on the LMU of Voelker, Kajic & Eliasmith 2019).

An LMU layer (:mod:`braincore.training.lmu`: equations, units and papers there) reads the image one pixel per
step (``encoder.kind: pixels``, 784 steps for 28 x 28; ``permutation: <seed>`` gives permuted sequential MNIST)
or one row per step (``rows``). Its memory is the fixed Legendre delay system (``network.order`` ``d``, window
``network.theta`` steps, default the whole sequence), driven by the input; its hidden layer
``a_t = f(W_x x_t + W_m m_t [+ W_h h_{t-1}] + b)`` is quantised by a sigma-delta "spiking" activation (integer
spike counts ``n_t``, quantum ``1 / spiking.dt``, error carried to the next step) and a linear read-out of the last
hidden state (or of its low-pass, ``network.readout_tau`` steps) is trained with softmax cross-entropy.

**Interpolation to spikes** (``spiking:``): the hidden output is ``h = a + alpha (n / dt - a)`` with a
straight-through gradient; ``alpha`` is 0 (the non-spiking LMU) before ``start_epoch`` epochs of training, rises
linearly to 1 over ``ramp_epochs`` epochs (0: a jump) and stays 1 (the hybrid-spiking LMU). It is a function of
the optimiser step, so a resumed run follows the same ramp exactly. Validation during training uses the
``alpha`` of the last step trained.

**Data.** An MNIST-shaped IDX dataset (``data.dir``, else ``$BRAINCORE_DATA``, else ``../shared/data/<name>``);
another 28 x 28 dataset runs with the same config by changing ``data.dir`` only (classes read from the labels).
A seeded validation hold-out of ``training.validation`` images comes out of the training split; ``training.
samples`` trains on a fixed seeded subset of the rest. The data loading and the encoders are those of ``kind:
spiking_classifier`` (:mod:`tasks.perception.surrogate`).

**Output.** ``braincore run <config>`` prints the network, a progress bar (stderr), one line per epoch, the
validation and test accuracy at the final ``alpha``, the test accuracy of the non-spiking (``alpha = 0``) and the
spiking (``alpha = 1``) network with the same weights, the spiking network's bits per activation and significant
bits per weight multiply on the test set (definitions in :mod:`braincore.training.lmu`), and a final JSON line
with all of it, the parameter count and the times. Checkpoints ``<out>/<name>.ckpt`` (atomic; every
``checkpoint_every`` optimiser steps and at every epoch end) resume exactly; a checkpoint of another config is
refused.

**Network variants.** ``recurrent: false`` (default): no ``W_h``, the parallel LMU of Chilkuri & Eliasmith 2021:
memory and hidden drive of all steps by FFT convolutions, no loop over time but the quantiser's (cheap) one;
``recurrent: true``: the 2019 cell's ``W_h h_{t-1}`` (a loop over the steps). On one CPU thread a training batch
of 100 psMNIST sequences takes 1.09 s parallel, 1.33 s recurrent, 0.72 s for PyTorch's LSTM of the parallel LMU's
parameter count (``benchmarks/bench_lmu.py``).

**Measured** (seed 0, one CPU thread of a shared 2-core machine; budget: 3 epochs of a fixed 20,000-image subset,
alpha 0 in epoch 1, ramped over epoch 2, 1 in epoch 3): ``psmnist_lmu.yaml`` (parallel, 56,827 parameters) 88.94 %
test accuracy spiking, 90.37 % with the same weights non-spiking, 88.50 % validation; the spiking hidden layer
1.92 bits per activation, 1.00 significant bits per weight multiply, 12.3 % of unit-steps non-zero; 1786 s of
training, 2241 s wall. ``psmnist_lmu_recurrent.yaml`` (the 2019 cell, 101,771 parameters, same budget) 91.99 %
spiking, 92.62 % non-spiking, 2.65 bits per activation, 1.01 significant bits per weight multiply, 685 s of
training, 1101 s wall. ``psmnist_lmu_lstm.yaml`` (LSTM, 56,386 parameters, same budget) 49.83 %. The papers, with
full training: LMU 97.15 % (2019, 102k parameters); the spiking LMU's activities "at most 3.74 bits on average
with 1.26 significant bits multiplying each weight" (2020 abstract).

References: A. R. Voelker, D. Rasmussen and C. Eliasmith, arXiv:2002.03553 (2020); A. R. Voelker, I. Kajic and
C. Eliasmith, NeurIPS 2019; N. R. Chilkuri and C. Eliasmith, ICML 2021.
"""
from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING


from braincore.config import Flag, Integer, Kind, Record, Text, register_kind
from braincore.errors import ConfigError
from tasks.common import (OutputName, batches, check_validation_split, config_key, device_problem, filled_record,
                          idx_shape, lazy_attributes, memory_problem, number, optimizer_schedule_problems,
                          remember_document, resume_fit_score, seed_problem, tensor_splits, torch_run_setup,
                          training_splits)
from tasks.perception.surrogate import SCHEMA as SURROGATE_SCHEMA
from tasks.perception.surrogate import build_schedule

if TYPE_CHECKING:
    import torch

#: the sequence encoders of kind spiking_classifier this kind takes, and the hidden activations (lmu.ACTIVATIONS)
ENCODERS = ("pixels", "rows")
ACTIVATIONS = ("relu", "tanh")




SCHEMA = Record({
    "kind": Text(required=True),
    "name": OutputName("lmu_classifier", doc="names the checkpoint <out>/<name>.ckpt"),
    "seed": Integer(0, minimum=0),
    "device": Text("cpu", doc="cpu, cuda, cuda:1, ..., mps or auto (cuda when available, else cpu)"),
    "threads": Integer(None, minimum=1, doc="torch CPU threads (default: leave as is)"),
    "data": filled_record({
        "source": Text("idx", choices=("idx",)),
        "name": Text("mnist", doc="dataset folder name under the data root"),
        "dir": Text(None, doc="IDX dataset folder (default: $BRAINCORE_DATA or ../shared/data): the one key to "
                              "change for another 28 x 28 dataset"),
    }),
    "encoder": filled_record({
        "kind": Text("pixels", choices=ENCODERS, doc="pixels: one pixel per step (H W steps); rows: one row per "
                                                     "step (H steps of W inputs)"),
        "gain": number(1.0, exclusive_minimum=0.0, doc="input x = gain p / 255"),
        "permutation": Integer(None, minimum=0, doc="pixels: seed of one fixed pixel order (permuted sequential "
                                                    "MNIST; default: raster order)"),
    }),
    "network": filled_record({
        "order": Integer(256, minimum=1, doc="memory dimensions d per input channel (Legendre polynomials)"),
        "theta": number(None, exclusive_minimum=0.0, doc="memory window in steps (default: the sequence length)"),
        "hidden": Integer(212, minimum=1, doc="hidden units"),
        "memory_inputs": Integer(1, minimum=1, doc="input channels u = E x of the memory, each with its own d "
                                                   "dimensions"),
        "recurrent": Flag(False, doc="W_h h_(t-1) in the hidden layer (the 2019 cell; a loop over time)"),
        "activation": Text("relu", choices=ACTIVATIONS),
        "readout_tau": number(None, exclusive_minimum=0.0, doc="read-out of the hidden low-pass with this time "
                                                                "constant in steps (default: the last step)"),
    }),
    "spiking": filled_record({
        "dt": number(1.0, exclusive_minimum=0.0, doc="quantiser step: counts n = quantised a dt, output n / dt"),
        "v0": number(0.5, minimum=0.0, doc="initial quantiser state (0.5: the first step rounds)"),
        "start_epoch": number(0.0, minimum=0.0, doc="training epochs before alpha leaves 0"),
        "ramp_epochs": number(1.0, minimum=0.0, doc="epochs over which alpha rises linearly to 1 (0: a jump)"),
    }),
    "loss": filled_record({"label_smoothing": number(0.0, minimum=0.0)}),
    "optimizer": SURROGATE_SCHEMA.fields["optimizer"],
    "schedule": SURROGATE_SCHEMA.fields["schedule"],
    "training": SURROGATE_SCHEMA.fields["training"],
    "evaluation": SURROGATE_SCHEMA.fields["evaluation"],
    "checkpoint_every": Integer(200, minimum=1, doc="optimiser steps between checkpoints (and every epoch end)"),
    "resume": Flag(True),
    "progress": Flag(True),
})


def _sequence(enc: dict, image: tuple) -> tuple[int, int]:
    """``(steps T, inputs per step)`` of the encoder for images ``(H, W)``."""
    if enc.get("kind") == "rows":
        return image[0], image[1]
    return image[0] * image[1], 1


def semantic_check(config: dict, doc, problems: list) -> None:
    """Cross-field checks, each reported at its own line and key."""
    remember_document(config, doc)
    device_problem(config, doc, problems)
    seed_problem(config, doc, problems)
    data, enc, net = config.get("data") or {}, config.get("encoder") or {}, config.get("network") or {}
    shape = idx_shape(data, "train") if data else None
    if shape is not None:
        check_validation_split(config, doc, problems, shape[0], f"the training split of "
                                                                f"{data.get('name') or 'mnist'!r}")
    if enc.get("kind") == "rows" and enc.get("permutation") is not None:
        problems.append(doc.problem(("encoder", "permutation"), "only the 'pixels' encoder takes a permutation"))
    loss = config.get("loss") or {}
    if loss.get("label_smoothing") is not None and loss["label_smoothing"] >= 1:
        problems.append(doc.problem(("loss", "label_smoothing"), f"must be < 1, got {loss['label_smoothing']:g}"))
    spk = config.get("spiking") or {}
    if spk.get("v0") is not None and spk["v0"] >= 1:
        problems.append(doc.problem(("spiking", "v0"), f"the quantiser state lies in [0, 1): got {spk['v0']:g}"))
    optimizer_schedule_problems(config, doc, problems)
    # memory of one training batch: the hidden drive, activations and counts (and FFT buffers) over all steps
    image = tuple(shape[1:3]) if shape is not None and len(shape) == 3 else (28, 28)
    steps, _ = _sequence(enc, image)
    batch, hidden, order = (config.get("training") or {}).get("batch"), net.get("hidden"), net.get("order")
    k = net.get("memory_inputs") or 1
    if all(isinstance(v, int) for v in (batch, hidden, order)):
        activity = 10.0 * batch * 2 * steps * hidden * 4
        response = 2.0 * steps * order * (k * hidden + 1) * 4
        memory_problem(config, doc, problems, ("network", "hidden"),
                       [(f"the hidden activity of {batch} samples x {steps} steps x {hidden} units", activity),
                        (f"the {steps}-step memory kernels", response)])


def _config_key(config: dict) -> str:
    """Everything that changes training (not evaluation sizes, progress or checkpoint frequency)."""
    return config_key(config, ("seed", "data", "encoder", "network", "spiking", "loss", "optimizer", "schedule",
                               "training"))


def make_transform(enc: dict):
    """The encoder as a trainer transform ``(x uint8 [B, H, W], generator) -> [T, B, n]``: the ``pixels``/``rows``
    encoders of ``kind: spiking_classifier`` (:func:`tasks.perception.surrogate.make_transform`)."""
    from tasks.perception.surrogate import make_transform as sequence_transform

    transform, _ = sequence_transform({"kind": enc["kind"], "steps": None, "gain": enc["gain"],
                                       "permutation": enc["permutation"]}, 1.0)
    return transform


def build_model(config: dict, image: tuple, n_classes: int) -> "torch.nn.Module":
    """The config's :class:`~braincore.training.lmu.LMUClassifier` (weights from the global RNG)."""
    from braincore.training.lmu import LMUClassifier

    net, spk = config["network"], config["spiking"]
    steps, n_in = _sequence(config["encoder"], image)
    try:
        return LMUClassifier(n_in, n_classes, order=net["order"], theta=float(net["theta"] or steps),
                             hidden=net["hidden"], memory_inputs=net["memory_inputs"], recurrent=net["recurrent"],
                             activation=net["activation"], spike_dt=spk["dt"], v0=spk["v0"],
                             readout_tau=net["readout_tau"], max_steps=steps)
    except ValueError as err:
        raise ConfigError(f"network: {err}") from None



# ------------------------------------------------------------------------------------------ the runner
def run(config: dict, options: dict) -> dict:

    from braincore.training.lmu import AlphaScheduleTrainer, activity_measures, alpha_ramp, parameter_count
    from braincore.training.losses import ClassificationLoss
    from braincore.training.trainer import seed_everything
    from tasks.perception.surrogate import _load_data

    wall = time.perf_counter()
    out_dir, progress, device = torch_run_setup(config, options)
    seed, tr, ev, spk = config["seed"], config["training"], config["evaluation"], config["spiking"]
    data = config["data"]
    train_x, train_y, test_x, test_y, n_classes = _load_data(config)
    if train_x.dim() != 3:
        raise ConfigError(f"data: expected images [N, H, W], got {tuple(train_x.shape)}")
    image = (int(train_x.shape[1]), int(train_x.shape[2]))
    train_idx, val_idx, n_test = training_splits(config, len(train_y), len(test_y))
    n_val = len(val_idx)

    train_data, validation, test_set = tensor_splits(train_x, train_y, test_x, test_y, train_idx, val_idx, n_test,
                                                     tr["batch"], seed, device)
    transform = make_transform(config["encoder"])

    seed_everything(seed)
    model = build_model(config, image, n_classes)
    per_epoch = len(train_data)

    def schedule(step: int) -> float:
        return alpha_ramp(step, per_epoch, spk["start_epoch"], spk["ramp_epochs"])

    opt = config["optimizer"]
    loss = ClassificationLoss("membrane", reduce="last", label_smoothing=config["loss"]["label_smoothing"])
    ckpt_path = out_dir / f"{config['name']}.ckpt"
    key = _config_key(config)
    trainer = AlphaScheduleTrainer(model, loss, optimizer=opt["kind"], lr=opt["lr"], weight_decay=opt["weight_decay"],
                             betas=(opt["beta1"], opt["beta2"]), schedule=build_schedule(config, per_epoch),
                             batch_size=tr["batch"], eval_batch_size=ev["batch"], transform=transform, seed=seed,
                             device=device, grad_clip=opt["grad_clip"], checkpoint_path=ckpt_path,
                             checkpoint_every=config["checkpoint_every"], checkpoint_extra={"config_key": key},
                             progress=progress, resume=config["resume"], alpha_schedule=schedule)
    n_params = parameter_count(model)
    net = config["network"]
    steps, n_in = _sequence(config["encoder"], image)
    enc = config["encoder"]
    order = f", permutation {enc['permutation']}" if enc["kind"] == "pixels" and enc["permutation"] is not None \
        else ""
    print(f"lmu_classifier {config['name']}: {steps} steps x {n_in} input(s){order}, memory d = {net['order']} "
          f"theta = {model.theta:g}, {net['hidden']} {net['activation']} hidden units "
          f"({'recurrent' if net['recurrent'] else 'parallel'}), {n_classes} classes, {n_params} parameters; "
          f"spiking dt {spk['dt']:g}, alpha 0 -> 1 from epoch {spk['start_epoch']:g} over {spk['ramp_epochs']:g}; "
          f"{opt['kind']} lr {opt['lr']:g}, schedule {config['schedule']['kind']}; {tr['epochs']} epoch(s) x "
          f"{per_epoch} batches of {tr['batch']} ({train_data.samples} samples), validation {n_val}, device "
          f"{device}", flush=True)
    history, results = resume_fit_score(trainer, ckpt_path, key, config["resume"], train_data, tr["epochs"],
                                        validation, ev["every_epoch"], test_set)
    alpha_final = schedule(max(trainer.step - 1, 0))
    by_alpha = {}
    for name, alpha in (("nonspiking", 0.0), ("spiking", 1.0)):
        trainer.alpha_override = alpha
        by_alpha[name] = trainer.evaluate(test_set, f"test, alpha {alpha:g}")["accuracy"]
    trainer.alpha_override = None
    measures = activity_measures(trainer.model, (transform(x, None) for x in batches(test_set[0], ev["batch"])))
    print(f"test accuracy non-spiking (alpha 0): {100 * by_alpha['nonspiking']:.2f} %, spiking (alpha 1): "
          f"{100 * by_alpha['spiking']:.2f} %; spiking hidden layer: {measures['bits_per_activation']:.2f} bits per "
          f"activation, {measures['significant_bits_per_weight_multiply']:.2f} significant bits per weight "
          f"multiply, {100 * measures['nonzero_fraction']:.1f} % of unit-steps non-zero, largest count "
          f"{measures['max_count']:g}")
    summary = {"task": "lmu_classifier", "name": config["name"], "dataset": data["name"], "data_dir": data["dir"],
               "encoder": enc["kind"], "permutation": enc["permutation"], "steps_T": steps, "order": net["order"],
               "theta": model.theta, "hidden": net["hidden"], "recurrent": net["recurrent"], "parameters": n_params,
               "epochs": tr["epochs"], "batch": tr["batch"], "steps": trainer.step,
               "train_samples": train_data.samples, "validation_samples": n_val, "test_samples": n_test,
               "alpha_final": alpha_final, **results,
               "test_accuracy_nonspiking": by_alpha["nonspiking"], "test_accuracy_spiking": by_alpha["spiking"],
               **{k: round(v, 5) for k, v in measures.items()},
               "train_seconds": round(trainer.train_seconds, 2),
               "seconds_per_epoch": round(trainer.train_seconds / trainer.epoch, 2) if trainer.epoch else None,
               "wall_seconds": round(time.perf_counter() - wall, 2), "device": str(device),
               "history": history, "checkpoint": str(ckpt_path)}
    print(json.dumps(summary))
    return summary


KIND = register_kind(Kind("lmu_classifier", SCHEMA, run, semantic_check,
                          "the hybrid-spiking Legendre Memory Unit (Voelker, Rasmussen & Eliasmith 2020) on "
                          "(permuted) sequential 28 x 28 IDX images"))

__getattr__ = lazy_attributes(__name__, {
    "torch": "torch",
    "Trainer": "braincore.training.lmu:AlphaScheduleTrainer",
})
