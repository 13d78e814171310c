"""Single-spike networks trained without a loop over time (``kind: single_spike`` configs; Taylor, King & Harper
2023, "FastSNN").

Every hidden unit fires at most once per image. The layers (:mod:`braincore.training.single_spike`, equations and
sources there) compute the free membrane of all ``T`` steps at once (``v = K I`` with the LIF kernel ``K[t, s] =
beta^(t - s)``), take the first threshold crossing as the spike (one reduction over time) and pass gradients
through it with a surrogate (the paper's straight-through ``gradient: paper``, or ``first``). A non-spiking leaky
read-out's membrane, summed (``loss.reduce: sum``, the paper's MLP) or maximised (``max``, its CNN) over time, is
trained with softmax cross-entropy.

**Data.** An MNIST-shaped IDX dataset (``data.dir``, else ``$BRAINCORE_DATA``, else ``../shared/data/<name>``);
another 28 x 28 dataset in IDX format runs with the same config by changing ``data.dir`` only (the number of
classes is read from the labels). Pixels ``x = p / 255``. A seeded validation hold-out of ``training.validation``
images is carved out of the training split (never trained on: tune on it); the test set is scored once, at the end.

**Encoders** (``encoder.kind``): ``latency``, the paper's code: every pixel spikes exactly once, at step
``floor((1 - x)(T - 1))`` of ``T = encoder.steps`` (:func:`~braincore.training.single_spike.latency_code`);
``current``: the pixels as a constant current ``gain x`` on every step.

**Network** (``network.layers``): ``{kind: dense, size}`` or ``{kind: conv, channels, kernel, padding, stride,
pool}`` (convs first; ``pool``: a max pool over space at every step after the conv's spikes), each with ``tau``
(the membrane time constant, in ms with the step ``network.dt``), ``leaky: false`` (no leak, ``beta = 1``: the
paper's CNN), ``learn_tau``, ``per_unit`` (one decay per unit, the paper's "heterogeneous" beta) and
``init_gain``; ``network.readout`` the same for the read-out; ``network.threshold``, ``network.surrogate`` (with
``surrogate_scale``, the fast sigmoid's slope, 10 as in the paper's code) and ``network.gradient``.

**Output.** ``braincore run <config>`` prints the network, a progress bar (stderr) with loss, accuracy and hidden
rate, one line per epoch (with the validation accuracy), the validation and test accuracy, the spikes per test
sample (all hidden layers together, and per layer), and finally a JSON line with all of it plus training and wall
time. Checkpoints ``<out>/<name>.ckpt`` (atomic; every ``checkpoint_every`` optimiser steps and at every epoch end)
resume exactly: a rerun with the same config continues where it stopped (a checkpoint of another config is
refused) and skips training that is complete. Trainer: :class:`braincore.training.trainer.Trainer`.

**Measured** (seed 0, one CPU thread of a shared 2-core machine): ``fastsnn_mlp.yaml`` (784-800-10, T = 100, 4
epochs, 915 s of training) 96.04 % validation, 96.09 % test, 275 spikes per test sample (the paper, 140 epochs with
augmentation: 97.91 %). ``benchmarks/bench_fastsnn.py`` (10,000 images, 3 epochs, the same network): 39.1 s per
epoch vs 22.0 s for the same sizes trained by BPTT through the fused multi-spike LIF layer (0.56x: slower on a
CPU, where the fused layer's time loop is cheap), 4.6x faster than the single-spike model stepped through time,
26 % fewer hidden spikes than the multi-spike network.

Reference: L. Taylor, A. King and N. Harper, "Robust and accelerated single-spike spiking neural network training
with applicability to challenging temporal tasks", arXiv:2205.15286 (code: github.com/webstorms/Block).
"""
from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from braincore.choices import SURROGATE_NAMES
from braincore.config import Flag, Integer, Kind, ListOf, Quantity, Record, Text, register_kind
from braincore.data import load_dataset
from braincore.errors import ConfigError
from tasks.common import (OutputName, batches, check_validation_split, config_key, device_problem, filled_record,
                          idx_shape, lazy_attributes, memory_problem, number, optimizer_schedule_problems,
                          remember_document, resume_fit_score, seed_problem, tensor_splits, torch_run_setup,
                          training_splits)
from tasks.perception.surrogate import SCHEMA as SURROGATE_SCHEMA
from tasks.perception.surrogate import build_schedule

if TYPE_CHECKING:
    import torch

#: the first-crossing gradients and read-out reductions of braincore.training.single_spike (here without PyTorch)
GRADIENTS = ("paper", "first")
REDUCTIONS = ("sum", "max", "mean")
ENCODERS = ("latency", "current")
LAYER_KINDS = ("dense", "conv")
CONV_ONLY = ("channels", "kernel", "stride", "padding", "pool")




_DECAY = {
    "tau": Quantity("time", None, exclusive_minimum=0.0, doc="membrane time constant (default 10 ms hidden, 20 ms "
                                                             "read-out); beta = exp(-dt / tau)"),
    "leaky": Flag(True, doc="false: no leak (beta = 1, integrate-and-fire), as in the paper's CNN"),
    "learn_tau": Flag(True, doc="learn the decay (clamped to [0, 1])"),
    "per_unit": Flag(True, doc="one decay per unit (the paper's heterogeneous beta); false: one per layer"),
    "init_gain": number(None, exclusive_minimum=0.0, doc="weights uniform in +-gain sqrt(1 / fan) (fan: n_in, "
                                                          "or kernel^2 for convs)"),
}

LAYER = Record({
    "kind": Text(required=True, choices=LAYER_KINDS),
    "size": Integer(None, minimum=1, doc="dense: units"),
    "channels": Integer(None, minimum=1, doc="conv: output channels"),
    "kernel": Integer(None, minimum=1, doc="conv: kernel size (default 5)"),
    "stride": Integer(None, minimum=1, doc="conv: stride (default 1)"),
    "padding": Integer(None, minimum=0, doc="conv: zero padding (default 0)"),
    "pool": Integer(None, minimum=1, doc="conv: max pool over pool x pool positions at every step (default 1: none)"),
    **_DECAY,
})

SCHEMA = Record({
    "kind": Text(required=True),
    "name": OutputName("single_spike", doc="names the checkpoint <out>/<name>.ckpt"),
    "seed": Integer(0, minimum=0),
    "device": Text("cpu", doc="cpu, cuda, cuda:1, ..., mps or auto (cuda when available, else cpu)"),
    "threads": Integer(None, minimum=1, doc="torch CPU threads (default: leave as is)"),
    "data": filled_record({
        "name": Text("mnist", doc="dataset folder name under the data root"),
        "dir": Text(None, doc="IDX dataset folder (default: $BRAINCORE_DATA or ../shared/data): the one key to "
                              "change for another 28 x 28 dataset"),
    }),
    "encoder": filled_record({
        "kind": Text("latency", choices=ENCODERS, doc="latency: one spike per pixel at floor((1 - x)(T - 1)); "
                                                      "current: a constant current gain x"),
        "steps": Integer(100, minimum=1, doc="time steps T"),
        "gain": number(None, exclusive_minimum=0.0, doc="current only (default 1)"),
    }),
    "network": Record({
        "dt": Quantity("time", 1.0, exclusive_minimum=0.0, doc="time step"),
        "layers": ListOf(LAYER, required=True, min_items=1),
        "readout": filled_record({k: v for k, v in _DECAY.items()}),
        "threshold": number(1.0, exclusive_minimum=0.0),
        "surrogate": Text("fast_sigmoid", choices=[s for s in SURROGATE_NAMES if s != "heaviside"]),
        "surrogate_scale": number(None, exclusive_minimum=0.0, doc="fast_sigmoid only: its slope (default 10, "
                                                                    "the paper's)"),
        "gradient": Text("paper", choices=GRADIENTS, doc="through the first crossing: paper (straight-through "
                                                         "z -> s) or first (up to the first spike)"),
    }, required=True),
    "loss": filled_record({
        "reduce": Text("sum", choices=REDUCTIONS, doc="of the read-out membrane over time"),
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


# ------------------------------------------------------------------------------------------ checks
def _geometry(layers: list, image: tuple) -> "tuple[list[int], list[str]]":
    """Units per layer for ``image = (H, W)`` and the problems of conv geometry, ``(units, problems)`` (problems
    as ``"i: message"``)."""
    units: list[int] = []
    problems: list[str] = []
    shape: tuple = (1, *image)
    for i, layer in enumerate(layers):
        if layer.get("kind") == "conv":
            if len(shape) != 3 or not isinstance(layer.get("channels"), int):
                return units, problems
            k, s, p = layer.get("kernel") or 5, layer.get("stride") or 1, layer.get("padding") or 0
            pool = layer.get("pool") or 1
            h, w = (shape[1] + 2 * p - k) // s + 1, (shape[2] + 2 * p - k) // s + 1
            if h < 1 or w < 1:
                problems.append(f"{i}:a {k}x{k} kernel does not fit the {shape[1]}x{shape[2]} input (padding {p})")
                return units, problems
            if pool > 1 and (h < pool or w < pool):
                problems.append(f"{i}:a {pool}x{pool} pool does not fit the {h}x{w} output of this conv")
                return units, problems
            units.append(layer["channels"] * h * w)
            shape = (layer["channels"], h // pool, w // pool) if pool > 1 else (layer["channels"], h, w)
        elif isinstance(layer.get("size"), int):
            units.append(layer["size"])
            shape = (layer["size"],)
        else:
            return units, problems
    return units, problems


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
    if enc.get("kind") == "latency" and enc.get("gain") is not None:
        problems.append(doc.problem(("encoder", "gain"), "only the 'current' encoder takes a gain"))
    layers = net.get("layers")
    if isinstance(layers, list):
        seen_dense = False
        for i, layer in enumerate(layers):
            if not layer:
                continue
            kind = layer.get("kind")
            if kind == "dense":
                seen_dense = True
                if layer.get("size") is None:
                    problems.append(doc.problem(("network", "layers", i), "a dense layer needs 'size'"))
                for key in CONV_ONLY:
                    if layer.get(key) is not None:
                        problems.append(doc.problem(("network", "layers", i, key), "only conv layers take this key"))
            elif kind == "conv":
                if seen_dense:
                    problems.append(doc.problem(("network", "layers", i, "kind"), "conv layers must come before "
                                                                                  "the dense layers"))
                if layer.get("channels") is None:
                    problems.append(doc.problem(("network", "layers", i), "a conv layer needs 'channels'"))
                if layer.get("size") is not None:
                    problems.append(doc.problem(("network", "layers", i, "size"), "a conv layer's size is its "
                                                                                  "channels; leave 'size' out"))
            if layer.get("leaky") is False and layer.get("tau") is not None:
                problems.append(doc.problem(("network", "layers", i, "tau"), "leaky: false has no time constant"))
    readout = net.get("readout") or {}
    if readout.get("leaky") is False and readout.get("tau") is not None:
        problems.append(doc.problem(("network", "readout", "tau"), "leaky: false has no time constant"))
    if net.get("surrogate_scale") is not None and net.get("surrogate") not in (None, "fast_sigmoid"):
        problems.append(doc.problem(("network", "surrogate_scale"), "only the fast_sigmoid surrogate takes a scale"))
    loss = config.get("loss") or {}
    if loss.get("label_smoothing") is not None and loss["label_smoothing"] >= 1:
        problems.append(doc.problem(("loss", "label_smoothing"), f"must be < 1, got {loss['label_smoothing']:g}"))
    optimizer_schedule_problems(config, doc, problems)
    # geometry and memory, when the image size is known (else the run reports a misfit when it builds the model)
    image = tuple(shape[1:3]) if shape is not None and len(shape) == 3 else (28, 28)
    batch, steps = (config.get("training") or {}).get("batch"), enc.get("steps")
    if isinstance(layers, list) and all(isinstance(l, dict) for l in layers):
        units, misfits = _geometry(layers, image)
        for item in misfits:
            i, message = item.split(":", 1)
            problems.append(doc.problem(("network", "layers", int(i), "kernel"), message))
        if len(units) == len(layers) and isinstance(batch, int) and isinstance(steps, int):
            activity = 6.0 * batch * steps * (image[0] * image[1] + sum(units)) * 4
            kernels = 2.0 * steps * steps * sum(u for u, l in zip(units, layers) if l.get("per_unit", True)) * 4
            memory_problem(config, doc, problems, ("network", "layers"),
                           [(f"the activity of {batch} samples x {steps} steps x {sum(units)} units", activity),
                            (f"the per-unit {steps} x {steps} decay kernels", kernels)])


# ------------------------------------------------------------------------------------------ building
def _pixels(x: "torch.Tensor", conv: bool) -> "torch.Tensor":
    import torch

    p = x.to(torch.float32) / 255.0
    if conv:
        return p.unsqueeze(1) if p.dim() == 3 else p          # [B, 1, H, W]
    return p.reshape(p.shape[0], -1)


def make_transform(enc: dict, conv: bool):
    """The encoder of a config as a trainer transform ``(x uint8 [B, H, W], generator) -> [T, B, ...]`` (images
    ``[T, B, 1, H, W]`` when the first layer is a conv, else flat ``[T, B, H W]``)."""
    from braincore.training.single_spike import latency_code

    steps = int(enc["steps"])
    if enc["kind"] == "latency":
        def transform(x, gen=None):
            return latency_code(_pixels(x, conv), steps)
    else:
        gain = float(enc["gain"] if enc["gain"] is not None else 1.0)

        def transform(x, gen=None):
            p = _pixels(x, conv) * gain
            return p.unsqueeze(0).expand(steps, *p.shape).contiguous()
    return transform


def _decay_options(spec: dict, dt: float, default_tau: float) -> dict:
    out = {"leaky": spec["leaky"], "learn_tau": spec["learn_tau"], "per_unit": spec["per_unit"]}
    if spec["leaky"]:
        out["tau"] = (spec["tau"] if spec["tau"] is not None else default_tau) / dt    # ms -> steps
    if spec.get("init_gain") is not None:
        out["init_gain"] = spec["init_gain"]
    return out


def build_model(config: dict, image: tuple, n_classes: int) -> "torch.nn.Module":
    """The config's :class:`~braincore.training.single_spike.SingleSpikeNetwork` (weights from the global RNG)."""
    from braincore.surrogate import FastSigmoid, get_surrogate
    from braincore.training.single_spike import build_network

    net = config["network"]
    dt = float(net["dt"])
    layers = []
    for layer in net["layers"]:
        spec: dict[str, Any] = {"kind": layer["kind"], **_decay_options(layer, dt, 10.0)}
        if layer["kind"] == "dense":
            spec["size"] = layer["size"]
        else:
            spec.update(channels=layer["channels"], kernel=layer["kernel"] or 5, stride=layer["stride"] or 1,
                        padding=layer["padding"] or 0, pool=layer["pool"] or 1)
        layers.append(spec)
    conv = net["layers"][0]["kind"] == "conv"
    in_shape = (1, *image) if conv else (int(np.prod(image)),)
    if net["surrogate"] == "fast_sigmoid":
        surrogate = FastSigmoid(net["surrogate_scale"] if net["surrogate_scale"] is not None else 10.0)
    else:
        surrogate = get_surrogate(net["surrogate"])
    try:
        return build_network(in_shape, layers, n_classes, _decay_options(net["readout"], dt, 20.0),
                             threshold=net["threshold"], surrogate=surrogate, gradient=net["gradient"])
    except ValueError as err:
        raise ConfigError(f"network: {err}") from None


def _config_key(config: dict) -> str:
    """Everything that changes training (not evaluation sizes, progress or checkpoint frequency)."""
    return config_key(config, ("seed", "data", "encoder", "network", "loss", "optimizer", "schedule", "training"))



# ------------------------------------------------------------------------------------------ the runner
def run(config: dict, options: dict) -> dict:

    from braincore.training.single_spike import SingleSpikeLoss, count_spikes
    from braincore.training.trainer import Trainer, seed_everything

    wall = time.perf_counter()
    out_dir, progress, device = torch_run_setup(config, options)
    seed, tr, ev = config["seed"], config["training"], config["evaluation"]
    data = config["data"]

    train = load_dataset("train", data["dir"], name=data["name"], as_torch=True)
    test = load_dataset("test", data["dir"], name=data["name"], as_torch=True)
    train_x, train_y, test_x, test_y = train.images, train.labels, test.images, test.labels
    if train_x.dim() != 3:
        raise ConfigError(f"data: expected images [N, H, W], got {tuple(train_x.shape)}")
    n_classes = int(max(int(train_y.max()), int(test_y.max())) + 1)
    image = (int(train_x.shape[1]), int(train_x.shape[2]))
    train_idx, val_idx, n_test = training_splits(config, len(train_y), len(test_y))
    n_val = len(val_idx)

    train_data, validation, test_set = tensor_splits(train_x, train_y, test_x, test_y, train_idx, val_idx, n_test,
                                                     tr["batch"], seed, device)
    conv = config["network"]["layers"][0]["kind"] == "conv"
    transform = make_transform(config["encoder"], conv)

    seed_everything(seed)
    model = build_model(config, image, n_classes)
    opt, loss = config["optimizer"], SingleSpikeLoss(config["loss"]["reduce"], config["loss"]["label_smoothing"])
    ckpt_path = out_dir / f"{config['name']}.ckpt"
    key = _config_key(config)
    trainer = Trainer(model, loss, optimizer=opt["kind"], lr=opt["lr"], weight_decay=opt["weight_decay"],
                      betas=(opt["beta1"], opt["beta2"]), schedule=build_schedule(config, len(train_data)),
                      batch_size=tr["batch"], eval_batch_size=ev["batch"], transform=transform, seed=seed,
                      device=device, grad_clip=opt["grad_clip"], checkpoint_path=ckpt_path,
                      checkpoint_every=config["checkpoint_every"], checkpoint_extra={"config_key": key},
                      progress=progress, resume=config["resume"])
    units = [int(np.prod(getattr(layer, "units"))) for layer in model.layers]
    sizes = [int(np.prod(image))] + units + [n_classes]
    n_params = sum(p.numel() for p in model.parameters())
    kinds = "-".join(layer["kind"] for layer in config["network"]["layers"])
    steps = config["encoder"]["steps"]
    print(f"single_spike {config['name']}: {'-'.join(map(str, sizes))} ({kinds}, {n_params} parameters), encoder "
          f"{config['encoder']['kind']} T = {steps}, gradient {config['network']['gradient']}, loss "
          f"{loss.reduce}, {opt['kind']} lr {opt['lr']:g}, schedule {config['schedule']['kind']}; {tr['epochs']} "
          f"epoch(s) x {len(train_data)} batches of {tr['batch']} ({train_data.samples} samples), validation "
          f"{n_val}, device {device}", flush=True)
    history, results = resume_fit_score(trainer, ckpt_path, key, config["resume"], train_data, tr["epochs"],
                                        validation, ev["every_epoch"], test_set)
    spikes = count_spikes(trainer.model, batches(test_set[0], ev["batch"]), lambda x: transform(x, None))
    per_layer = ", ".join(f"{c:.1f}" for c in spikes["per_layer"])
    print(f"spikes per test sample: {spikes['per_sample']:.1f} (per layer {per_layer}; {sum(units)} hidden units, "
          f"at most {spikes['max_per_unit']:g} per unit)")
    summary = {"task": "single_spike", "name": config["name"], "dataset": data["name"], "data_dir": data["dir"],
               "encoder": config["encoder"]["kind"], "steps_T": steps, "sizes": sizes, "layers": kinds,
               "gradient": config["network"]["gradient"], "parameters": n_params, "epochs": tr["epochs"],
               "batch": tr["batch"], "steps": trainer.step, "train_samples": train_data.samples,
               "validation_samples": n_val, "test_samples": n_test, **results,
               "spikes_per_sample": round(spikes["per_sample"], 3),
               "spikes_per_layer": [round(c, 3) for c in spikes["per_layer"]],
               "hidden_units": sum(units), "max_spikes_per_unit": spikes["max_per_unit"],
               "active_fraction": [round(a, 5) for a in spikes["active_fraction"]],
               "train_seconds": round(trainer.train_seconds, 2),
               "seconds_per_epoch": round(trainer.train_seconds / trainer.epoch, 2) if trainer.epoch else None,
               "wall_seconds": round(time.perf_counter() - wall, 2), "device": str(device),
               "history": history, "checkpoint": str(ckpt_path)}
    print(json.dumps(summary))
    return summary


KIND = register_kind(Kind("single_spike", SCHEMA, run, semantic_check,
                          "single-spike LIF networks (every unit fires at most once) trained without a loop over "
                          "time (Taylor, King & Harper, FastSNN): MLP and CNN on 28 x 28 IDX images"))

__getattr__ = lazy_attributes(__name__, {
    "torch": "torch",
    "Trainer": "braincore.training.trainer:Trainer",
    "count_spikes": "braincore.training.single_spike:count_spikes",
})
