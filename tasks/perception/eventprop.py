"""Recurrent spiking networks trained with exact EventProp gradients on Spiking-Heidelberg-Digits-format data
(``kind: eventprop_classifier`` configs; Nowotny, Turner & Knight 2025, after Wunderlich & Pehle 2021).

**Data** (``data``): SHD's HDF5 files ``shd_train.h5`` and ``shd_test.h5`` (``spikes/times`` in s,
``spikes/units`` 0..699, ``labels``; read by :class:`braincore.data.events.SHDDataset`) in ``data.dir``. With
``dir: null`` a synthetic SHD-like set (:mod:`braincore.data.synthetic_shd`: 20 classes of formant-like spike
patterns over 700 channels, ``data.synthetic.train`` / ``test`` samples, seeded) is written in the same format
into ``<out>/synthetic_shd/`` and read back through the same reader. Input spikes are binned to the step
``floor(t / dt)``; spikes after the window ``network.duration`` are dropped. A seeded validation hold-out of
``training.validation`` samples is carved out of the training split (never trained on); the test split is scored
once, at the end.

**Network** (:class:`braincore.training.eventprop_grid.EventPropRSNN`, equations, units and sources there):
700 inputs -> ``network.hidden`` current-based LIF neurons (recurrent unless ``recurrent: false``; ``tau_mem``,
``tau_syn``, ``threshold``) -> one non-spiking leaky integrator per class, simulated on a grid of ``dt`` with
continuous spike times; gradients are EventProp's exact adjoint of that model.

**Loss** (``loss``): cross-entropy on the read-out ``readout: sum`` (the integral of the read-out voltage over
the trial, Nowotny et al.'s L_sum), ``sum_exp`` (weighted by ``e^{-t / tau_w}``, their loss shaping) or ``max``
(the maximum voltage); ``loss.regularizer`` the per-neuron spike-count regulariser towards ``target`` spikes per
trial (``lambda_upper`` above, ``lambda_lower`` below; 0: off).

**Output.** ``braincore run <config>`` prints the network, a progress bar (stderr) with loss, accuracy and hidden
spike count, one line per epoch (with the validation accuracy), the validation and test accuracy, the hidden
spikes per test sample, and finally a JSON line with all of it plus training and wall time. Checkpoints
``<out>/<name>.ckpt`` (atomic; every ``checkpoint_every`` optimiser steps and at every epoch end) resume exactly:
a rerun with the same config continues where it stopped (a checkpoint of another config is refused), Ctrl-C
writes a checkpoint and stops. Trainer: :class:`braincore.training.trainer.Trainer`.

**Measured** (``shd_eventprop.yaml``, seed 0, one CPU thread of a shared 2-core machine under load): on the
synthetic SHD-like set (1,300 training, 200 validation, 500 test samples, 20 classes), 15 epochs, 1,111 s of
training: 89.5 % validation, 88.6 % test. Not the real SHD (absent here; the paper: 93.5 +- 0.7 %).

Reference: T. Nowotny, J. P. Turner and J. C. Knight, "Loss shaping enhances exact gradient learning with
Eventprop in spiking neural networks", Neuromorph. Comput. Eng. (2025), arXiv:2212.01232 (SHD: 93.5 +- 0.7 % test
accuracy with augmentation, regularisation and delay-line inputs).
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from braincore.config import Flag, Integer, Kind, Quantity, Record, Text, register_kind
from braincore.errors import ConfigError
from tasks.common import (OutputName, config_key, device_problem, filled_record, lazy_attributes,
                          number, optimizer_schedule_problems, remember_document, resume_fit_score, seed_problem,
                          torch_run_setup, training_splits)
from tasks.perception.surrogate import SCHEMA as SURROGATE_SCHEMA
from tasks.perception.surrogate import build_schedule

if TYPE_CHECKING:
    import torch

#: the read-outs of braincore.training.eventprop_grid (here without PyTorch)
READOUTS = ("sum", "sum_exp", "max")
N_CHANNELS = 700




SCHEMA = Record({
    "kind": Text(required=True),
    "name": OutputName("eventprop", doc="names the checkpoint <out>/<name>.ckpt"),
    "seed": Integer(0, minimum=0),
    "device": Text("cpu", doc="cpu, cuda, cuda:1, ..., mps or auto (cuda when available, else cpu)"),
    "threads": Integer(None, minimum=1, doc="torch CPU threads (default: leave as is)"),
    "data": filled_record({
        "source": Text("shd", choices=("shd",), doc="SHD-format HDF5 files (spikes/times in s, spikes/units, "
                                                    "labels)"),
        "dir": Text(None, doc="folder with shd_train.h5 and shd_test.h5; null: write a synthetic SHD-like set "
                              "into <out>/synthetic_shd and use it"),
        "synthetic": filled_record({
            "train": Integer(2000, minimum=2, doc="synthetic training samples"),
            "test": Integer(500, minimum=1, doc="synthetic test samples"),
            "seed": Integer(0, minimum=0),
        }, doc="only with dir: null"),
    }),
    "network": filled_record({
        "hidden": Integer(256, minimum=1, doc="LIF neurons of the hidden layer"),
        "recurrent": Flag(True, doc="recurrent hidden weights (false: feed-forward)"),
        "tau_mem": Quantity("time", 20.0, exclusive_minimum=0.0, doc="membrane time constant"),
        "tau_syn": Quantity("time", 5.0, exclusive_minimum=0.0, doc="synaptic time constant"),
        "threshold": number(1.0, exclusive_minimum=0.0),
        "dt": Quantity("time", 1.0, exclusive_minimum=0.0, doc="time step (spike times stay continuous)"),
        "duration": Quantity("time", 1000.0, exclusive_minimum=0.0, doc="simulated window per sample"),
        "in_mean": number(0.03, doc="input weights N(in_mean, in_std)"),
        "in_std": number(0.01, minimum=0.0),
        "rec_std": number(0.02, minimum=0.0, doc="recurrent weights N(0, rec_std)"),
        "out_std": number(0.03, minimum=0.0, doc="read-out weights N(0, out_std)"),
    }),
    "loss": filled_record({
        "readout": Text("sum", choices=READOUTS, doc="sum: integral of the read-out voltage; sum_exp: weighted "
                                                    "by exp(-t / tau_w); max: its maximum"),
        "tau_w": Quantity("time", None, exclusive_minimum=0.0, doc="sum_exp only (default: network.duration)"),
        "regularizer": filled_record({
            "target": number(14.0, minimum=0.0, doc="spikes per hidden neuron per trial"),
            "lambda_upper": number(0.0, minimum=0.0, doc="strength above the target (0: off)"),
            "lambda_lower": number(None, minimum=0.0, doc="strength below the target (default: lambda_upper)"),
        }),
    }),
    "optimizer": SURROGATE_SCHEMA.fields["optimizer"],
    "schedule": SURROGATE_SCHEMA.fields["schedule"],
    "training": SURROGATE_SCHEMA.fields["training"],
    "evaluation": filled_record({
        "every_epoch": Flag(True, doc="score the validation split after every epoch"),
        "batch": Integer(256, minimum=1),
        "validation_samples": Integer(None, minimum=0, doc="default: the whole validation split"),
        "test_samples": Integer(None, minimum=1, doc="default: the whole test set"),
    }),
    "checkpoint_every": Integer(50, minimum=1, doc="optimiser steps between checkpoints (and every epoch end)"),
    "resume": Flag(True),
    "progress": Flag(True),
})


# ------------------------------------------------------------------------------------------ checks
def semantic_check(config: dict, doc, problems: list) -> None:
    """Cross-field checks, each reported at its own line and key."""
    remember_document(config, doc)
    device_problem(config, doc, problems)
    seed_problem(config, doc, problems)
    data, net, loss = config.get("data") or {}, config.get("network") or {}, config.get("loss") or {}
    given = doc.data if isinstance(doc.data, dict) else {}
    if data.get("dir") is not None and isinstance(given.get("data"), dict) and "synthetic" in given["data"]:
        problems.append(doc.problem(("data", "synthetic"), "synthetic data is written only with dir: null; "
                                                           "remove this key or dir"))
    dt, duration = net.get("dt"), net.get("duration")
    if isinstance(dt, float) and isinstance(duration, float):
        steps = duration / dt
        if abs(steps - round(steps)) > 1e-6 * max(1.0, steps) or round(steps) < 1:
            problems.append(doc.problem(("network", "duration"), f"must be a whole number of steps of dt = "
                                                                 f"{dt:g} ms, got {duration:g} ms"))
    for key in ("tau_mem", "tau_syn"):
        tau = net.get(key)
        if isinstance(tau, float) and isinstance(dt, float) and dt > tau:
            problems.append(doc.problem(("network", "dt"), f"a step of {dt:g} ms is longer than {key} = {tau:g} ms"))
    if loss.get("tau_w") is not None and loss.get("readout") != "sum_exp":
        problems.append(doc.problem(("loss", "tau_w"), "only the sum_exp read-out takes tau_w"))
    optimizer_schedule_problems(config, doc, problems)
    syn = data.get("synthetic") or {}
    val = (config.get("training") or {}).get("validation")
    if data.get("dir") is None and isinstance(val, int) and isinstance(syn.get("train"), int) \
            and val >= syn["train"]:
        problems.append(doc.problem(("training", "validation"), f"holds out {val} samples for validation, but the "
                                                                f"synthetic training split has {syn['train']}; "
                                                                f"leave at least one for training"))


# ------------------------------------------------------------------------------------------ data
class SpikeTable:
    """All samples of an SHD-format file as flat arrays: ``steps`` (int64, ``floor(t / dt)``, within the window
    only), ``units`` (int64) and ``offsets`` (``[n + 1]``), plus ``labels``; :meth:`events` gathers a batch."""

    def __init__(self, path: Path, dt: float, n_steps: int):
        from braincore.data.events import SHDDataset

        steps, units, offsets = [], [], [0]
        with SHDDataset(path, N_CHANNELS) as ds:
            labels = ds.labels.copy()
            for i in range(len(ds)):
                ev, _ = ds[i]
                k = np.floor(ev.t / 1e3 / dt).astype(np.int64)        # us -> ms -> steps
                keep = (k >= 0) & (k < n_steps)
                steps.append(k[keep])
                units.append(np.asarray(ev.x, dtype=np.int64)[keep])
                offsets.append(offsets[-1] + int(keep.sum()))
        self.steps = np.concatenate(steps) if steps else np.zeros(0, np.int64)
        self.units = np.concatenate(units) if units else np.zeros(0, np.int64)
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.labels = labels
        self.n_steps = n_steps

    def __len__(self) -> int:
        return len(self.labels)

    def events(self, index: "torch.Tensor"):
        """:class:`~braincore.training.eventprop_grid.InputEvents` of the samples ``index`` (on its device)."""
        import torch

        from braincore.training.eventprop_grid import input_events

        idx = index.detach().cpu().numpy().astype(np.int64)
        starts, stops = self.offsets[idx], self.offsets[idx + 1]
        lengths = stops - starts
        take = np.concatenate([np.arange(a, b) for a, b in zip(starts, stops)]) if len(idx) else np.zeros(0, int)
        sample = np.repeat(np.arange(len(idx)), lengths)
        dev = index.device
        return input_events(torch.from_numpy(self.steps[take]).to(dev), torch.from_numpy(sample).to(dev),
                            torch.from_numpy(self.units[take]).to(dev), len(idx), self.n_steps)


def data_files(config: dict, out_dir: Path) -> "tuple[Path, Path, str]":
    """``(train file, test file, description)``: ``data.dir``'s files, or the synthetic set written (once) into
    ``<out>/synthetic_shd``."""
    data = config["data"]
    if data["dir"] is not None:
        folder = Path(data["dir"]).expanduser()
        train, test = folder / "shd_train.h5", folder / "shd_test.h5"
        for path in (train, test):
            if not path.is_file():
                raise ConfigError(f"data.dir: {path} does not exist (expected shd_train.h5 and shd_test.h5 from "
                                  f"the SHD download)")
        return train, test, str(folder)
    from braincore.data.synthetic_shd import write_synthetic_shd

    syn = data["synthetic"]
    folder = out_dir / "synthetic_shd"
    stamp = folder / f"made_{syn['train']}_{syn['test']}_{syn['seed']}"
    if not stamp.is_file():
        write_synthetic_shd(folder, syn["train"], syn["test"], syn["seed"])
        stamp.write_text("synthetic SHD-like set (braincore.data.synthetic_shd)\n")
    return folder / "shd_train.h5", folder / "shd_test.h5", f"synthetic ({syn['train']} + {syn['test']})"


# ------------------------------------------------------------------------------------------ building
def grid_params(config: dict):
    from braincore.training.eventprop_grid import GridParams

    net, loss = config["network"], config["loss"]
    return GridParams(tau_mem=float(net["tau_mem"]), tau_syn=float(net["tau_syn"]), threshold=float(net["threshold"]),
                      dt=float(net["dt"]), steps=int(round(net["duration"] / net["dt"])), readout=loss["readout"],
                      tau_w=None if loss["tau_w"] is None else float(loss["tau_w"]))


def build_model(config: dict, n_classes: int) -> "torch.nn.Module":
    """The config's :class:`~braincore.training.eventprop_grid.EventPropRSNN` (weights from the global RNG)."""
    from braincore.training.eventprop_grid import EventPropRSNN

    net = config["network"]
    return EventPropRSNN(N_CHANNELS, net["hidden"], n_classes, grid_params(config), recurrent=net["recurrent"],
                         in_mean=net["in_mean"], in_std=net["in_std"], rec_std=net["rec_std"],
                         out_std=net["out_std"])


def _config_key(config: dict) -> str:
    """Everything that changes training (not evaluation sizes, progress or checkpoint frequency)."""
    return config_key(config, ("seed", "data", "network", "loss", "optimizer", "schedule", "training"))


# ------------------------------------------------------------------------------------------ the runner
def run(config: dict, options: dict) -> dict:
    import torch  # PyTorch and the trainer load to run a config, not to validate one

    from braincore.training.eventprop_grid import EventPropLoss
    from braincore.training.trainer import TensorData, Trainer, seed_everything

    wall = time.perf_counter()
    out_dir, progress, device = torch_run_setup(config, options)
    seed, tr, ev = config["seed"], config["training"], config["evaluation"]
    params = grid_params(config)
    train_file, test_file, source = data_files(config, out_dir)
    train_tab = SpikeTable(train_file, params.dt, params.steps)
    test_tab = SpikeTable(test_file, params.dt, params.steps)
    n_classes = int(max(int(train_tab.labels.max()), int(test_tab.labels.max())) + 1)
    train_idx, val_idx, n_test = training_splits(config, len(train_tab), len(test_tab))
    n_val = len(val_idx)

    # the test samples are numbered after the training file's, so one transform serves both
    both = _Concat(train_tab, test_tab)
    labels = torch.as_tensor(np.concatenate([train_tab.labels, test_tab.labels]), dtype=torch.long)

    def part(idx) -> tuple:
        take = torch.as_tensor(np.asarray(idx), dtype=torch.long)
        return take.to(device), labels[take].to(device)

    train_x, train_y = part(train_idx)
    train_data = TensorData(train_x, train_y, tr["batch"], seed=seed)
    validation = part(val_idx) if n_val else None
    test_set = part(np.arange(n_test) + len(train_tab))

    def transform(x, gen=None):
        return both.events(x)

    seed_everything(seed)
    model = build_model(config, n_classes)
    reg = config["loss"]["regularizer"]
    loss = EventPropLoss(reg["target"], reg["lambda_upper"], reg["lambda_lower"])
    opt = config["optimizer"]
    ckpt_path = out_dir / f"{config['name']}.ckpt"
    key = _config_key(config)
    trainer = Trainer(model, loss, optimizer=opt["kind"], lr=opt["lr"], weight_decay=opt["weight_decay"],
                      betas=(opt["beta1"], opt["beta2"]), schedule=build_schedule(config, len(train_data)),
                      batch_size=tr["batch"], eval_batch_size=ev["batch"], transform=transform, seed=seed,
                      device=device, grad_clip=opt["grad_clip"], checkpoint_path=ckpt_path,
                      checkpoint_every=config["checkpoint_every"], checkpoint_extra={"config_key": key},
                      progress=progress, resume=config["resume"])
    net = config["network"]
    sizes = [N_CHANNELS, net["hidden"], n_classes]
    n_params = sum(p.numel() for p in model.parameters())
    kind = "recurrent" if net["recurrent"] else "feed-forward"
    print(f"eventprop_classifier {config['name']}: {'-'.join(map(str, sizes))} ({kind} "
          f"LIF, {n_params} parameters), tau_mem {params.tau_mem:g} ms, tau_syn {params.tau_syn:g} ms, dt "
          f"{params.dt:g} ms x {params.steps} steps, read-out {params.readout}, data {source}, {opt['kind']} lr "
          f"{opt['lr']:g}; {tr['epochs']} epoch(s) x {len(train_data)} batches of {tr['batch']} "
          f"({train_data.samples} samples), validation {n_val}, test {n_test}, device {device}", flush=True)
    history, results = resume_fit_score(trainer, ckpt_path, key, config["resume"], train_data, tr["epochs"],
                                        validation, ev["every_epoch"], test_set)
    trainer.model.eval()
    with torch.no_grad():
        counts = [trainer.model(transform(test_set[0][i:i + ev["batch"]]))[1][0].sum().item()
                  for i in range(0, n_test, ev["batch"])]
    spikes = sum(counts) / n_test
    print(f"hidden spikes per test sample: {spikes:.1f} ({spikes / net['hidden']:.2f} per neuron)")
    summary = {"task": "eventprop_classifier", "name": config["name"], "data": source, "sizes": sizes,
               "recurrent": net["recurrent"], "readout": params.readout, "dt_ms": params.dt, "steps_T": params.steps,
               "parameters": n_params, "epochs": tr["epochs"], "batch": tr["batch"], "steps": trainer.step,
               "train_samples": train_data.samples, "validation_samples": n_val, "test_samples": n_test, **results,
               "hidden_spikes_per_sample": round(spikes, 2),
               "train_seconds": round(trainer.train_seconds, 2),
               "seconds_per_epoch": round(trainer.train_seconds / trainer.epoch, 2) if trainer.epoch else None,
               "wall_seconds": round(time.perf_counter() - wall, 2), "device": str(device),
               "history": history, "checkpoint": str(ckpt_path)}
    print(json.dumps(summary))
    return summary


class _Concat:
    """Two :class:`SpikeTable` s numbered one after the other."""

    def __init__(self, first: SpikeTable, second: SpikeTable):
        self.first, self.second = first, second

    def events(self, index: "torch.Tensor"):
        n = len(self.first)
        idx = index.detach().cpu().numpy().astype(np.int64)
        if (idx < n).all():
            return self.first.events(index)
        if (idx >= n).all():
            return self.second.events(index - n)
        raise ValueError("a batch mixes training and test samples")


KIND = register_kind(Kind("eventprop_classifier", SCHEMA, run, semantic_check,
                          "recurrent LIF networks trained with exact EventProp gradients (Nowotny, Turner & Knight "
                          "2025) on Spiking Heidelberg Digits files, or a synthetic SHD-like set"))

__getattr__ = lazy_attributes(__name__, {
    "torch": "torch",
    "Trainer": "braincore.training.trainer:Trainer",
})
