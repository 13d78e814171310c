"""Location spiking neurons on event data: the hybrid time/location network against the time-only and
location-only networks of the same size (``kind: location_snn`` configs; Kang, Banerjee, Chopp, Katsaggelos &
Cossairt, "Event-driven tactile learning with location spiking neurons", IJCNN 2022, arXiv:2209.01080).

**Data.** MNIST-shaped IDX images (``data.dir``, else ``$BRAINCORE_DATA``, else ``../shared/data/<name>``; another
28 x 28 IDX dataset runs by changing ``data.dir`` only, the number of classes is read from the labels) turned into
event streams by simulated saccades (:func:`braincore.data.saccade_events.saccade_events`: three 100 ms saccades on
a 34 x 34 x 2 sensor, contrast threshold ``events.threshold``, frames every ``events.frame_us``), then binned
(:func:`braincore.data.event_tensors.bin_events`) into ``x [T, B, L]``: ``T = events.bins`` equal bins over the
300 ms, ``L = ceil(34 / s)^2 x 2`` locations after pooling pixels ``s x s`` (``events.downsample``), event counts
(``mode: count``) or 0/1 (``binary``). A seeded validation hold-out of ``training.validation`` images is carved out
of the training split (never trained on); ``training.samples`` picks a seeded subset of the rest; the test set
(``evaluation.test_samples``) is scored once, at the end. Events are made once per run (seconds for thousands
of images).

**Model** (``network.model``, :mod:`braincore.training.location`, equations there): ``hybrid``, a time-LIF branch
of ``round(time_fraction * hidden)`` units and a location-LIF branch of the rest, class scores fused by
``fusion.weights``; ``time``, all ``hidden`` units time neurons (the ordinary SNN of the same size); ``location``,
all location neurons. ``network.neuron``: ``lif`` (TLIF/LLIF) or ``srm`` (TSRM/LSRM, the IJCNN paper's
spike response model). Each branch: one spiking layer and a leaky read-out whose membrane is averaged over its
sequence; cross-entropy of the fused scores.

**Output.** ``braincore run <config>`` prints the model, a progress bar (stderr), one line per epoch (validation
accuracy), the validation and test accuracy, the efficiency measures on ``evaluation.efficiency_samples`` test
samples (input events, hidden spikes per sample and per branch, synaptic operations, sequential steps per
branch) and a final JSON line with all of it plus training and wall time. Checkpoints ``<out>/<name>.ckpt``
(atomic; every ``checkpoint_every`` optimiser steps and at every epoch end) resume exactly; a checkpoint of
another config is refused. Trainer: :class:`braincore.training.trainer.Trainer`.
"""
from __future__ import annotations

import json
import math
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from braincore.choices import SURROGATE_NAMES
from braincore.config import Flag, Integer, Kind, ListOf, Record, Text, register_kind
from braincore.data import load_dataset
from braincore.errors import ConfigError
from tasks.common import (OutputName, batches, check_validation_split, config_key, device_problem,
                          filled_record, idx_shape, lazy_attributes, number, optimizer_schedule_problems,
                          remember_document, resume_fit_score, seed_problem, torch_run_setup, training_splits)
from tasks.perception.surrogate import SCHEMA as SURROGATE_SCHEMA
from tasks.perception.surrogate import build_schedule

if TYPE_CHECKING:
    import torch

MODELS = ("hybrid", "time", "location")       # braincore.training.location.MODELS, here without PyTorch
NEURONS = ("lif", "srm")                      # braincore.training.location.NEURONS
SOURCES = ("idx",)
MODES = ("count", "binary")
SENSOR_SIDE = 34                              # the saccade sensor (N-MNIST's)
MAX_IMAGE = 28

SCHEMA = Record({
    "kind": Text(required=True),
    "name": OutputName("location_snn", doc="names the checkpoint <out>/<name>.ckpt"),
    "seed": Integer(0, minimum=0),
    "device": Text("cpu", doc="cpu, cuda, cuda:1, ..., mps or auto (cuda when available, else cpu)"),
    "threads": Integer(None, minimum=1, doc="torch CPU threads (default: leave as is)"),
    "data": filled_record({
        "source": Text("idx", choices=SOURCES, doc="idx: images turned into saccade events"),
        "name": Text("mnist", doc="dataset folder name under the data root"),
        "dir": Text(None, doc="IDX dataset folder (default: $BRAINCORE_DATA or ../shared/data): the one key to "
                              "change for another 28 x 28 dataset"),
    }),
    "events": filled_record({
        "threshold": number(0.3, exclusive_minimum=0.0, doc="contrast threshold C (change of ln(I + eps) per "
                                                            "event)"),
        "saccade_ms": number(100.0, exclusive_minimum=0.0, doc="duration of each of the three saccades, ms"),
        "frame_us": number(5000.0, exclusive_minimum=0.0, doc="time between rendered frames, microseconds"),
        "bins": Integer(20, minimum=1, doc="time bins T over the three saccades"),
        "downsample": Integer(3, minimum=1, doc="pool s x s sensor pixels into one location"),
        "mode": Text("count", choices=MODES, doc="count: events per bin; binary: 0/1"),
    }),
    "network": filled_record({
        "model": Text("hybrid", choices=MODELS, doc="hybrid (time + location branches), time or location only"),
        "hidden": Integer(128, minimum=1, doc="hidden units in all (the same for the three models)"),
        "neuron": Text("lif", choices=NEURONS, doc="lif: time/location LIF (TLIF, LLIF); srm: time/location spike "
                                                   "response model (TSRM, LSRM, the IJCNN paper's)"),
        "time_fraction": number(None, exclusive_minimum=0.0, doc="hybrid only: share of the hidden units in the "
                                                                  "time branch (default 0.5)"),
        "tau_time": number(5.0, exclusive_minimum=0.0, doc="time neurons' membrane constant, in time bins"),
        "tau_location": number(10.0, exclusive_minimum=0.0, doc="location neurons' membrane constant, in "
                                                                "locations"),
        "readout_tau": number(10.0, exclusive_minimum=0.0, doc="read-out constant, in steps of its branch"),
        "learn_tau": Flag(True, doc="lif only: learn one decay per unit (PLIF); srm kernels are fixed"),
        "threshold": number(1.0, exclusive_minimum=0.0),
        "surrogate": Text("fast_sigmoid", choices=[s for s in SURROGATE_NAMES if s != "heaviside"]),
        "fusion": filled_record({
            "weights": ListOf(number(None), default=[1.0, 1.0], doc="hybrid: [w_time, w_location]"),
            "learn": Flag(False, doc="learn the fusion weights"),
        }),
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


def locations(downsample: int) -> int:
    """``L``: pooled sensor pixels times two polarities."""
    side = math.ceil(SENSOR_SIDE / downsample)
    return side * side * 2


# ------------------------------------------------------------------------------------------ checks
def semantic_check(config: dict, doc, problems: list) -> None:
    """Cross-field checks, each reported at its own line and key."""
    remember_document(config, doc)
    device_problem(config, doc, problems)
    seed_problem(config, doc, problems)
    data, net = config.get("data") or {}, config.get("network") or {}
    shape = idx_shape(data, "train") if data else None
    if shape is not None:
        check_validation_split(config, doc, problems, shape[0], f"the training split of "
                                                                f"{data.get('name') or 'mnist'!r}")
        if len(shape) != 3 or shape[1] > MAX_IMAGE or shape[2] > MAX_IMAGE:
            problems.append(doc.problem(("data",), f"saccade events need images of at most {MAX_IMAGE} x "
                                                   f"{MAX_IMAGE}, got shape {tuple(shape)}"))
    model = net.get("model")
    if net.get("time_fraction") is not None:
        if model != "hybrid":
            problems.append(doc.problem(("network", "time_fraction"), "only the hybrid model splits its units"))
        elif net["time_fraction"] >= 1:
            problems.append(doc.problem(("network", "time_fraction"), f"must be < 1, got {net['time_fraction']:g}"))
    hidden, fraction = net.get("hidden"), net.get("time_fraction") or 0.5
    if model == "hybrid" and isinstance(hidden, int) and not 0 < round(fraction * hidden) < hidden:
        problems.append(doc.problem(("network", "hidden"), f"{hidden} units split {fraction:g} leaves a branch "
                                                           f"empty"))
    weights = (net.get("fusion") or {}).get("weights")
    if isinstance(weights, list) and len(weights) != 2:
        problems.append(doc.problem(("network", "fusion", "weights"), f"needs two weights [time, location], got "
                                                                      f"{len(weights)}"))
    loss = config.get("loss") or {}
    if loss.get("label_smoothing") is not None and loss["label_smoothing"] >= 1:
        problems.append(doc.problem(("loss", "label_smoothing"), f"must be < 1, got {loss['label_smoothing']:g}"))
    optimizer_schedule_problems(config, doc, problems)


# ------------------------------------------------------------------------------------------ data
def event_tensor(images: np.ndarray, ev: dict) -> np.ndarray:
    """``uint8 [N, h, w]`` images -> binned saccade events ``float32 [N, T, L]`` (module docstring)."""
    from braincore.data.event_tensors import bin_events
    from braincore.data.saccade_events import saccade_events

    duration = 3000.0 * float(ev["saccade_ms"])
    streams = saccade_events(images, threshold=float(ev["threshold"]), saccade_ms=float(ev["saccade_ms"]),
                             dt_us=float(ev["frame_us"]))
    out = np.zeros((len(streams), int(ev["bins"]), locations(int(ev["downsample"]))), dtype=np.float32)
    for i, stream in enumerate(streams):
        out[i] = bin_events(stream, n_bins=int(ev["bins"]), duration_us=duration, mode=ev["mode"],
                            downsample=int(ev["downsample"]))
    return out


def time_major(x: "torch.Tensor", generator: Any = None) -> "torch.Tensor":
    """The trainer transform: ``[B, T, L] -> [T, B, L]``."""
    return x.transpose(0, 1).contiguous()


def build_model(config: dict, n_classes: int) -> "torch.nn.Module":
    """The config's :class:`~braincore.training.location.HybridNetwork` (weights from the global RNG)."""
    from braincore.training.location import build_model as build

    net, ev = config["network"], config["events"]
    try:
        return build(net["model"], int(ev["bins"]), locations(int(ev["downsample"])), n_classes, net["hidden"],
                     time_fraction=net["time_fraction"] if net["time_fraction"] is not None else 0.5,
                     tau_time=net["tau_time"], tau_location=net["tau_location"], readout_tau=net["readout_tau"],
                     threshold=net["threshold"], surrogate=net["surrogate"], learn_tau=net["learn_tau"],
                     weights=[float(w) for w in net["fusion"]["weights"]], learn_weights=net["fusion"]["learn"],
                     neuron=net["neuron"])
    except ValueError as err:
        raise ConfigError(f"network: {err}") from None


def _config_key(config: dict) -> str:
    """Everything that changes training (not evaluation sizes, progress or checkpoint frequency)."""
    return config_key(config, ("seed", "data", "events", "network", "loss", "optimizer", "schedule", "training"))


# ------------------------------------------------------------------------------------------ the runner
def run(config: dict, options: dict) -> dict:
    import torch  # PyTorch and the trainer load to run a config, not to validate one

    from braincore.training.location import ScoreLoss, efficiency
    from braincore.training.trainer import TensorData, Trainer, seed_everything

    wall = time.perf_counter()
    out_dir, progress, device = torch_run_setup(config, options)
    seed, tr, ev, data = config["seed"], config["training"], config["evaluation"], config["data"]
    train = load_dataset("train", data["dir"], name=data["name"])
    test = load_dataset("test", data["dir"], name=data["name"])
    train_x, train_y = np.asarray(train.images), np.asarray(train.labels)
    test_x, test_y = np.asarray(test.images), np.asarray(test.labels)
    if train_x.ndim != 3 or train_x.shape[1] > MAX_IMAGE or train_x.shape[2] > MAX_IMAGE:
        raise ConfigError(f"data: saccade events need images [N, h, w] with h, w <= {MAX_IMAGE}, got "
                          f"{train_x.shape}")
    n_classes = int(max(int(train_y.max()), int(test_y.max())) + 1)
    train_idx, val_idx, n_test = training_splits(config, len(train_y), len(test_y))
    n_val = len(val_idx)

    started = time.perf_counter()
    events = config["events"]

    def part(images, labels) -> tuple:
        x = torch.from_numpy(event_tensor(images, events)).to(device)
        return x, torch.as_tensor(labels, dtype=torch.long).to(device)

    train_data = TensorData(*part(train_x[train_idx], train_y[train_idx]), tr["batch"], seed=seed)
    validation = part(train_x[val_idx], train_y[val_idx]) if n_val else None
    test_set = part(test_x[:n_test], test_y[:n_test])
    event_seconds = time.perf_counter() - started
    mean_events = float(train_data.inputs.sum()) / train_data.samples

    seed_everything(seed)
    model = build_model(config, n_classes)
    opt, net = config["optimizer"], config["network"]
    ckpt_path = out_dir / f"{config['name']}.ckpt"
    key = _config_key(config)
    trainer = Trainer(model, ScoreLoss(config["loss"]["label_smoothing"]), optimizer=opt["kind"], lr=opt["lr"],
                      weight_decay=opt["weight_decay"], betas=(opt["beta1"], opt["beta2"]),
                      schedule=build_schedule(config, len(train_data)), batch_size=tr["batch"],
                      eval_batch_size=ev["batch"], transform=time_major, seed=seed, device=device,
                      grad_clip=opt["grad_clip"], checkpoint_path=ckpt_path,
                      checkpoint_every=config["checkpoint_every"], checkpoint_extra={"config_key": key},
                      progress=progress, resume=config["resume"])
    sizes = model.hidden_sizes
    T, L = int(events["bins"]), locations(int(events["downsample"]))
    n_params = sum(p.numel() for p in model.parameters())
    print(f"location_snn {config['name']}: model {net['model']}, neuron {net['neuron']} (hidden {sizes}, "
          f"{n_params} parameters), "
          f"saccade events T = {T} bins x L = {L} locations ({events['mode']}, made in {event_seconds:.1f} s), "
          f"{opt['kind']} lr {opt['lr']:g}; {tr['epochs']} epoch(s) x {len(train_data)} batches of {tr['batch']} "
          f"({train_data.samples} samples), validation {n_val}, test {n_test}, device {device}", flush=True)
    history, results = resume_fit_score(trainer, ckpt_path, key, config["resume"], train_data, tr["epochs"],
                                        validation, ev["every_epoch"], test_set)
    n_eff = min(int(ev["efficiency_samples"]), n_test)
    eff = None
    if n_eff:
        eff = efficiency(trainer.model, (time_major(x) for x in batches(test_set[0][:n_eff], ev["batch"])))
        per_branch = ", ".join(f"{a} {v:.1f}" for a, v in eff["spikes_per_branch"].items())
        print(f"per test sample ({n_eff}): {eff['input_events']:.0f} input events, {eff['spikes']:.1f} hidden "
              f"spikes ({per_branch}), {eff['synops']:.0f} synaptic operations, sequential steps {eff['steps']}")
    summary = {"task": "location_snn", "name": config["name"], "dataset": data["name"], "data_dir": data["dir"],
               "model": net["model"], "neuron": net["neuron"], "hidden": sizes, "bins_T": T, "locations_L": L,
               "parameters": n_params,
               "epochs": tr["epochs"], "batch": tr["batch"], "steps": trainer.step,
               "train_samples": train_data.samples, "validation_samples": n_val, "test_samples": n_test, **results,
               "input_events_per_train_sample": round(mean_events, 1),
               "efficiency": None if eff is None else {
                   "samples": eff["samples"], "input_events": round(eff["input_events"], 1),
                   "spikes_per_sample": round(eff["spikes"], 3),
                   "spikes_per_branch": {a: round(v, 3) for a, v in eff["spikes_per_branch"].items()},
                   "synops_per_sample": round(eff["synops"], 1), "sequential_steps": eff["steps"]},
               "event_seconds": round(event_seconds, 2), "train_seconds": round(trainer.train_seconds, 2),
               "seconds_per_epoch": round(trainer.train_seconds / trainer.epoch, 2) if trainer.epoch else None,
               "wall_seconds": round(time.perf_counter() - wall, 2), "device": str(device),
               "history": history, "checkpoint": str(ckpt_path)}
    print(json.dumps(summary))
    return summary


KIND = register_kind(Kind("location_snn", SCHEMA, run, semantic_check,
                          "location spiking neurons (membrane integrated over space; Kang et al. 2022): hybrid "
                          "time + location SNN vs the time-only network of the same size, on saccade events made "
                          "from 28 x 28 IDX images"))

__getattr__ = lazy_attributes(__name__, {
    "torch": "torch",
    "Trainer": "braincore.training.trainer:Trainer",
})
