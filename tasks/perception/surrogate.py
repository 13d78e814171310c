"""Spiking classifiers trained with surrogate gradients (``kind: spiking_classifier`` configs).

A config describes the data, the encoder, a stack of spiking layers with a read-out, the loss, the optimiser,
the learning-rate schedule and the training budget; :class:`braincore.training.trainer.Trainer` does the rest
(progress bar, per-epoch validation, atomic checkpoints that resume exactly, see its docstring). The network
is :class:`braincore.training.models.SpikingClassifier`: LIF layers (:class:`~braincore.training.layers.LIFLayer`,
discrete-time LIF with reset by subtraction, ``u_t = beta v_{t-1} + W x_t + V s_{t-1}``, ``s_t = H(u_t - 1)``)
or adaptive-LIF layers (:class:`~braincore.training.layers.ALIFLayer`, Yin, Corradi & Bohté 2021: the threshold
``1 + 1.8 a_t`` rises with the unit's low-passed spikes ``a_t``), then a leaky read-out ``y_t = alpha y_{t-1} +
W s_t`` (membrane losses) or a LIF output layer (spike-count losses); losses in
:mod:`braincore.training.losses`. Layer kinds ``rnn``, ``gru`` and ``lstm`` are the non-spiking recurrent
baselines (:class:`~braincore.training.baselines.RecurrentBaseline`, e.g. ``{kind: lstm, size: 128,
forget_bias: 1}``), trained by the same code under the same read-out and loss so that a spiking network's
accuracy and operation counts can be set against them; the spiking-only keys (``tau``, ``threshold``,
``surrogate``, ...) are errors on them, as ``forget_bias`` is on anything but ``lstm``. Time constants are in
ms with a step of ``network.dt`` (1 ms by default, so a bare ``tau: 10`` is 10 steps).

**Data** (``data.source``):

- ``idx``: an MNIST-shaped IDX dataset (``data.dir``, else ``$BRAINCORE_DATA``, else ``../shared/data/<name>``),
  pixels ``x = p / 255`` in ``[0, 1]``; a seeded validation hold-out of ``training.validation`` images is carved
  from the training set (never trained on: tune on it); the test set is scored once, at the end.
- ``spike_patterns``: a synthetic task generated from the seed (:func:`spike_pattern_dataset`): each class is a
  fixed random spike pattern ``[T, C]`` (every channel fires at each step with probability ``rate``); a sample
  is its class's pattern with every spike moved by a uniform jitter of up to ``jitter`` steps, deleted with
  probability ``deletion``, plus noise spikes with probability ``noise`` per step and channel. Trains in
  seconds; the fast tests use it.

**Encoders** (``encoder.kind``; images flattened to ``N = H W`` inputs unless ``rows`` or ``pixels``):

- ``rate``: Bernoulli spikes, ``P(spike) = gain x`` per step for ``steps`` steps (:func:`braincore.encoding.rate`);
- ``poisson``: ``P(spike) = x max_rate dt / 1000`` (:func:`braincore.encoding.poisson`);
- ``latency``: one spike per pixel above ``threshold``, earlier for brighter pixels (linear or RC mapping,
  :func:`braincore.encoding.latency`);
- ``current``: the pixels as a constant input current ``gain x`` on every step ("direct" coding);
- ``rows``: the image fed row by row, ``T = H`` steps of ``W`` inputs, ``gain x_row`` (28 x 28 for MNIST);
- ``pixels``: the image fed pixel by pixel, ``T = H W`` steps of one input ``gain x_t`` (sequential MNIST: 784
  steps); with ``permutation: <seed>`` the pixel order is one fixed random permutation drawn from that seed
  (permuted sequential MNIST, the same order for every image, in training and test);
- ``spikes``: the data are spike trains already (``spike_patterns``).

Stochastic encoders draw from the trainer's seeded generator (saved in checkpoints), evaluation from its own.

**Output.** ``braincore run <config>`` prints the network, a progress bar (stderr) with loss, accuracy and hidden
rate, one line per epoch (with the validation accuracy when ``evaluation.every_epoch``), and finally a JSON
line with the test accuracy, epochs, training and wall time, and an ``efficiency`` record counted on the first
``evaluation.efficiency_samples`` test images (spikes per sample and per layer, synaptic operations, MACs,
FLOPs, time steps: :mod:`braincore.training.efficiency`, the same measures for every perception row).
Checkpoints ``<out>/<name>.ckpt`` are written every ``checkpoint_every`` optimiser steps and at every epoch
end; a rerun with the same config resumes from them exactly (a checkpoint of another config is refused) and
skips training that is complete. ``device: cuda`` runs on a GPU (a clear error when there is none).

**Measured** (seed 0; the bundled configs; tuned on the validation split, test scored once):
``mnist_ff.yaml`` (rate code, 784-800-800-10 LIF, 30 epochs, H200) 98.52 % validation, 98.67 % test;
``mnist_rows_alif.yaml`` (rows, 28-256-256-10 recurrent ALIF, 15 epochs, one CPU thread, 10.6 min) 98.64 %
validation, 98.53 % test; ``psmnist_srnn.yaml`` / ``psmnist_lstm.yaml`` (permuted pixels, 784 steps; a CPU
budget run far below the paper's): the header comments of the files and ``benchmarks/results/srnn_efficiency.json``;
``spike_patterns.yaml`` (10 classes, 6 epochs, under a second of training) ~99 %.

References: F. Zenke and T. P. Vogels, Neural Comput. 33 (2021) (surrogate gradients, rate regularisers);
B. Yin, F. Corradi and S. M. Bohté, "Accurate and efficient time-domain classification with adaptive spiking
recurrent neural networks", Nat. Mach. Intell. 3 (2021); W. Fang et al., "Incorporating learnable membrane
time constant to enhance learning of spiking neural networks", ICCV 2021; J. K. Eshraghian et al., Proc. IEEE
111 (2023).
"""
from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, Callable, Optional

import numpy as np

from braincore.choices import (LAYER_KINDS, LOSS_KINDS, OPTIMIZERS, READOUT_KINDS, RECURRENT_CELL_KINDS, REDUCTIONS,
                               SCHEDULES, SURROGATE_NAMES)
from braincore.config import Flag, Integer, Kind, ListOf, Quantity, Record, Text, register_kind
from braincore.data import load_dataset
from braincore.errors import ConfigError
from tasks.common import (OutputName, check_validation_split, config_key, device_problem, filled_record, idx_shape,
                          layered_needs, lazy_attributes, memory_problem, number, optimizer_schedule_problems,
                          remember_document, resume_fit_score, seed_problem, tensor_splits, torch_run_setup,
                          training_splits)

if TYPE_CHECKING:
    import torch

    from braincore.training.losses import ClassificationLoss
    from braincore.training.trainer import LRSchedule

ENCODERS = ("rate", "poisson", "latency", "current", "rows", "pixels", "spikes")
SOURCES = ("idx", "spike_patterns")
#: layer keys that only adaptive-LIF layers take
ALIF_ONLY = ("tau_adapt", "learn_tau_adapt", "beta_adapt")
#: layer keys that only spiking layers (lif, alif) take, not the non-spiking rnn / gru / lstm cells
SPIKING_ONLY = ("tau", "learn_tau", "threshold", "learn_threshold", "surrogate", "detach_reset", "init_gain",
                "recurrent_gain") + ALIF_ONLY


def _time(default: Any, doc: str = "") -> Quantity:
    return Quantity("time", default, exclusive_minimum=0.0, doc=doc)


PATTERNS = filled_record({
    "classes": Integer(10, minimum=2), "channels": Integer(40, minimum=1),
    "steps": Integer(40, minimum=1, doc="time steps of a pattern"),
    "rate": number(0.05, minimum=0.0, doc="spike probability per step and channel of a class pattern"),
    "jitter": Integer(1, minimum=0, doc="each spike moves by up to this many steps"),
    "deletion": number(0.1, minimum=0.0, doc="probability that a spike is dropped"),
    "noise": number(0.01, minimum=0.0, doc="probability of an extra spike per step and channel"),
    "train": Integer(2000, minimum=2, doc="generated training samples (the validation split comes out of them)"),
    "test": Integer(1000, minimum=1, doc="generated test samples"),
})

LAYER = Record({
    "kind": Text("lif", choices=LAYER_KINDS),
    "size": Integer(required=True, minimum=1),
    "recurrent": Flag(False),
    "tau": _time(None, "membrane time constant (default: the layer's, 10 steps LIF / 20 steps ALIF)"),
    "learn_tau": Flag(None, doc="learnable per-unit decay (default: off for lif, on for alif)"),
    "threshold": number(None, exclusive_minimum=0.0),
    "learn_threshold": Flag(None),
    "dropout": number(0.0, minimum=0.0, doc="per sample and unit, constant over time"),
    "surrogate": Text(None, choices=SURROGATE_NAMES),
    "detach_reset": Flag(None),
    "init_gain": number(None, exclusive_minimum=0.0),
    "recurrent_gain": number(None, exclusive_minimum=0.0),
    "tau_adapt": _time(None, "alif: adaptation time constant"),
    "learn_tau_adapt": Flag(None, doc="alif: learnable adaptation decay"),
    "beta_adapt": number(None, minimum=0.0, doc="alif: threshold increase per unit of adaptation"),
    "forget_bias": number(None, doc="lstm: added to the forget gate's bias (1 for long sequences)"),
})

SCHEMA = Record({
    "kind": Text(required=True),
    "name": OutputName("spiking_classifier", doc="names the checkpoint <out>/<name>.ckpt"),
    "seed": Integer(0, minimum=0),
    "device": Text("cpu", doc="cpu, cuda, cuda:1, ..., mps or auto (cuda when available, else cpu)"),
    "threads": Integer(None, minimum=1, doc="torch CPU threads (default: leave as is)"),
    "data": Record({
        "source": Text("idx", choices=SOURCES),
        "name": Text("mnist", doc="idx: dataset folder name under the data root"),
        "dir": Text(None, doc="idx: dataset folder (default: $BRAINCORE_DATA or ../shared/data)"),
        "patterns": PATTERNS,
    }, required=True),
    "encoder": Record({
        "kind": Text(required=True, choices=ENCODERS),
        "steps": Integer(None, minimum=1, doc="time steps (not for rows/pixels/spikes: fixed by the data)"),
        "gain": number(1.0, exclusive_minimum=0.0, doc="rate: P = gain x (<= 1); current, rows, pixels: I = gain x"),
        "permutation": Integer(None, minimum=0, doc="pixels: seed of one fixed pixel order (default: raster order)"),
        "max_rate": Quantity("frequency", 100.0, exclusive_minimum=0.0, doc="poisson: rate of x = 1"),
        "tau": number(5.0, exclusive_minimum=0.0, doc="latency: time constant in steps (RC mapping)"),
        "threshold": number(0.01, minimum=0.0, doc="latency: pixels at or below never spike"),
        "linear": Flag(False, doc="latency: linear instead of RC mapping"),
        "normalize": Flag(None, doc="latency: stretch the mapping over the window"),
    }, required=True),
    "network": Record({
        "dt": _time(1.0, "time step"),
        "layers": ListOf(LAYER, required=True, min_items=1),
        "readout": filled_record({
            "kind": Text("leaky", choices=READOUT_KINDS),
            "tau": _time(None, "read-out time constant (default 10 steps)"),
            "threshold": number(None, exclusive_minimum=0.0, doc="lif read-out only"),
            "surrogate": Text(None, choices=SURROGATE_NAMES, doc="lif read-out only"),
        }),
    }, required=True),
    "loss": filled_record({
        "kind": Text("membrane", choices=LOSS_KINDS),
        "reduce": Text("max", choices=REDUCTIONS, doc="membrane: reduction of the read-out over time"),
        "label_smoothing": number(0.0, minimum=0.0),
        "correct_rate": number(0.8, minimum=0.0, doc="count_mse: target rate of the label's output"),
        "incorrect_rate": number(0.2, minimum=0.0, doc="count_mse: target rate of the others"),
        "rate_lower": number(None, minimum=0.0, doc="per-unit lower bound on hidden rates (spikes/step)"),
        "rate_upper": number(None, minimum=0.0, doc="per-sample upper bound on the population rate"),
        "lower_strength": number(1.0, minimum=0.0),
        "upper_strength": number(1.0, minimum=0.0),
    }),
    "optimizer": filled_record({
        "kind": Text("adam", choices=OPTIMIZERS),
        "lr": number(1e-3, exclusive_minimum=0.0),
        "weight_decay": number(0.0, minimum=0.0),
        "beta1": number(0.9, minimum=0.0), "beta2": number(0.999, minimum=0.0),
        "grad_clip": number(None, exclusive_minimum=0.0, doc="clip the gradient norm (default: off)"),
    }),
    "schedule": filled_record({
        "kind": Text("none", choices=SCHEDULES),
        "warmup_epochs": number(0.0, minimum=0.0, doc="linear warm-up (not for one_cycle)"),
        "step_epochs": number(None, exclusive_minimum=0.0, doc="step: decay every this many epochs"),
        "gamma": number(0.1, exclusive_minimum=0.0, doc="step: decay factor"),
        "min_factor": number(0.0, minimum=0.0, doc="cosine: final lr / lr"),
        "pct_start": number(0.3, exclusive_minimum=0.0, doc="one_cycle: fraction of steps rising"),
        "div_factor": number(25.0, minimum=1.0), "final_div_factor": number(1e4, minimum=1.0),
    }),
    "training": filled_record({
        "epochs": Integer(1, minimum=0),
        "batch": Integer(128, minimum=1),
        "samples": Integer(None, minimum=1, doc="a fixed seeded subset of the training split (default: all)"),
        "validation": Integer(5000, minimum=0, doc="samples held out of the training set"),
    }),
    "evaluation": filled_record({
        "every_epoch": Flag(True, doc="score the validation split after every epoch"),
        "batch": Integer(1000, minimum=1),
        "validation_samples": Integer(None, minimum=0, doc="default: the whole validation split"),
        "test_samples": Integer(None, minimum=1, doc="default: the whole test set"),
        "efficiency_samples": Integer(1000, minimum=0, doc="test samples on which spikes, synaptic operations "
                                                           "and MACs are counted (0: none)"),
    }),
    "checkpoint_every": Integer(500, minimum=1, doc="optimiser steps between checkpoints (and every epoch end)"),
    "resume": Flag(True),
    "progress": Flag(True),
})


def _data_checks(config: dict, doc, problems: list) -> None:
    """The device, a validation hold-out that takes the whole training split (the generated patterns' count, or
    the IDX header when the data can be found now; otherwise the run checks it when it loads the data), and the
    memory of the layers over a training batch."""
    remember_document(config, doc)
    device_problem(config, doc, problems)
    seed_problem(config, doc, problems)
    data, enc, net = config.get("data") or {}, config.get("encoder") or {}, config.get("network") or {}
    patterns = data.get("patterns") or {}
    shape = None
    if data.get("source") == "spike_patterns":
        if isinstance(patterns.get("train"), int):
            check_validation_split(config, doc, problems, patterns["train"], "data.patterns.train")
        if isinstance(patterns.get("steps"), int) and isinstance(patterns.get("channels"), int):
            shape = (patterns.get("train") or 1, patterns["steps"], patterns["channels"])
    elif data.get("source") == "idx":
        shape = idx_shape(data, "train")
        if shape is not None:
            check_validation_split(config, doc, problems, shape[0], f"the training split of "
                                                                     f"{data.get('name') or 'mnist'!r}")
    layers = net.get("layers")
    batch = (config.get("training") or {}).get("batch")
    if not (isinstance(layers, list) and all(isinstance(l, dict) and isinstance(l.get("size"), int) for l in layers)
            and isinstance(batch, int)):
        return
    kind = enc.get("kind")
    if shape is None or len(shape) < 3:
        n_in, steps = 1, enc.get("steps") or 1  # unknown until the data is loaded: the layers alone
    elif kind in ("rows", "spikes"):
        n_in, steps = shape[2], shape[1]
    elif kind == "pixels":
        n_in, steps = 1, int(np.prod(shape[1:]))
    else:
        n_in, steps = int(np.prod(shape[1:])), enc.get("steps") or 1
    sizes = [n_in, *[l["size"] for l in layers], 10]
    recurrent = [l["size"] for l in layers if l.get("recurrent")]
    memory_problem(config, doc, problems, ("network", "layers"),
                   layered_needs(sizes, batch, int(steps), 4, recurrent=recurrent))


def semantic_check(config: dict, doc, problems: list) -> None:
    """Cross-field checks, each reported at its own line and key."""
    _data_checks(config, doc, problems)
    data, enc, net, loss = config.get("data"), config.get("encoder"), config.get("network"), config.get("loss")
    if data and enc and enc.get("kind"):
        kind = enc["kind"]
        if data.get("source") == "spike_patterns" and kind != "spikes":
            problems.append(doc.problem(("encoder", "kind"), f"data.source 'spike_patterns' is spike trains "
                                                             f"already: use encoder kind 'spikes', not {kind!r}"))
        if data.get("source") == "idx" and kind == "spikes":
            problems.append(doc.problem(("encoder", "kind"), "images need an encoder (rate, poisson, latency, "
                                                             "current, rows or pixels), not 'spikes'"))
        if kind in ("rate", "poisson", "latency", "current") and enc.get("steps") is None:
            problems.append(doc.problem(("encoder",), f"encoder {kind!r} needs 'steps' (time steps per sample)"))
        if kind in ("rows", "pixels", "spikes") and enc.get("steps") is not None:
            what = {"rows": "the image height (28 for MNIST)", "pixels": "the number of pixels (784 for MNIST)",
                    "spikes": "data.patterns.steps"}[kind]
            problems.append(doc.problem(("encoder", "steps"), f"encoder {kind!r}: the number of steps is {what}; "
                                                              "leave 'steps' out"))
        if kind != "pixels" and enc.get("permutation") is not None:
            problems.append(doc.problem(("encoder", "permutation"), "only the 'pixels' encoder takes a permutation"))
        if kind == "rate" and enc.get("gain") is not None and enc["gain"] > 1:
            problems.append(doc.problem(("encoder", "gain"), f"rate: gain x is a spike probability, so gain must be "
                                                             f"<= 1, got {enc['gain']:g}"))
        if kind == "poisson" and enc.get("max_rate") and net and net.get("dt"):
            p = enc["max_rate"] * net["dt"] / 1000.0
            if p > 1:
                problems.append(doc.problem(("encoder", "max_rate"), f"max_rate * dt = {p:g} spikes per step > 1"))
        if kind == "latency" and not enc.get("linear") and enc.get("threshold") == 0:
            problems.append(doc.problem(("encoder", "threshold"), "latency: the RC mapping needs threshold > 0"))
    if data and data.get("patterns"):
        for key in ("rate", "deletion", "noise"):
            v = data["patterns"].get(key)
            if v is not None and v > 1:
                problems.append(doc.problem(("data", "patterns", key), f"a probability, must be <= 1, got {v:g}"))
    if net and isinstance(net.get("layers"), list):
        for i, layer in enumerate(net["layers"]):
            if not layer:
                continue
            _layer_problems(layer, i, doc, problems)
            if layer.get("dropout") is not None and layer["dropout"] >= 1:
                problems.append(doc.problem(("network", "layers", i, "dropout"),
                                            f"must be < 1, got {layer['dropout']:g}"))
        spiking = [l for l in net["layers"] if l and l.get("kind") not in RECURRENT_CELL_KINDS]
        if loss and not spiking:
            for key in ("rate_lower", "rate_upper"):
                if loss.get(key) is not None:
                    problems.append(doc.problem(("loss", key), "bounds hidden spike rates, but no hidden layer "
                                                               "spikes (rnn, gru and lstm layers do not)"))
    readout = net.get("readout") if net else None
    if readout and loss and loss.get("kind"):
        spiking = loss["kind"] != "membrane"
        if spiking and readout.get("kind") != "lif":
            problems.append(doc.problem(("network", "readout", "kind"), f"loss {loss['kind']!r} counts output "
                                                                        "spikes: the read-out must be 'lif'"))
        if not spiking and readout.get("kind") == "lif":
            problems.append(doc.problem(("network", "readout", "kind"), "loss 'membrane' needs the non-spiking "
                                                                        "'leaky' read-out"))
        if readout.get("kind") == "leaky":
            for key in ("threshold", "surrogate"):
                if readout.get(key) is not None:
                    problems.append(doc.problem(("network", "readout", key), "only a 'lif' read-out takes this key"))
    if loss:
        for key in ("correct_rate", "incorrect_rate", "rate_lower", "rate_upper"):
            if loss.get(key) is not None and loss[key] > 1:
                problems.append(doc.problem(("loss", key), f"spikes per step: must be <= 1, got {loss[key]:g}"))
        if loss.get("label_smoothing") is not None and loss["label_smoothing"] >= 1:
            problems.append(doc.problem(("loss", "label_smoothing"), f"must be < 1, got {loss['label_smoothing']:g}"))
        lo, hi = loss.get("rate_lower"), loss.get("rate_upper")
        if lo is not None and hi is not None and lo > hi:
            problems.append(doc.problem(("loss", "rate_lower"), f"lower bound {lo:g} exceeds rate_upper {hi:g}"))
    optimizer_schedule_problems(config, doc, problems)


def _layer_problems(layer: dict, i: int, doc, problems: list) -> None:
    """Keys a layer of its kind does not take: adaptive-only keys on lif, spiking-only keys on rnn / gru / lstm,
    ``forget_bias`` on anything but lstm."""
    kind = layer.get("kind")
    where = ("network", "layers", i)
    if kind == "lif":
        for key in ALIF_ONLY:
            if layer.get(key) is not None:
                problems.append(doc.problem((*where, key), "only adaptive layers (kind: alif) take this key"))
    if kind in RECURRENT_CELL_KINDS:
        for key in SPIKING_ONLY:
            if layer.get(key) is not None:
                problems.append(doc.problem((*where, key), f"a non-spiking {kind} layer has no {key}: only spiking "
                                                           "layers (kind: lif, alif) take this key"))
        if layer.get("recurrent"):
            problems.append(doc.problem((*where, "recurrent"), f"a {kind} layer is recurrent by construction; "
                                                               "leave 'recurrent' out"))
        if layer.get("dropout"):
            problems.append(doc.problem((*where, "dropout"), f"a {kind} layer takes no dropout (spiking layers "
                                                             "only)"))
    if kind != "lstm" and layer.get("forget_bias") is not None:
        problems.append(doc.problem((*where, "forget_bias"), "only lstm layers take a forget-gate bias"))


# ------------------------------------------------------------------------------------------ data
def spike_pattern_dataset(n: int, *, classes: int = 10, channels: int = 40, steps: int = 40, rate: float = 0.05,
                          jitter: int = 1, deletion: float = 0.1, noise: float = 0.01, seed: int = 0,
                          stream: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` samples of the synthetic spike-pattern task (module docstring): ``(uint8 [n, steps, channels],
    int64 [n])``.

    The class patterns depend on ``seed`` only; the samples (labels, jitter, deletions, noise) on ``(seed,
    stream)``, so different streams (training, test) are independent draws of the same task.
    """
    import torch

    if classes < 2 or channels < 1 or steps < 1 or n < 1:
        raise ValueError(f"spike_pattern_dataset: need classes >= 2, channels, steps, n >= 1; got {classes}, "
                         f"{channels}, {steps}, {n}")
    for name, p in (("rate", rate), ("deletion", deletion), ("noise", noise)):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"spike_pattern_dataset: {name} must lie in [0, 1], got {p}")
    templates = np.random.default_rng([seed, 0]).random((classes, steps, channels)) < rate
    rng = np.random.default_rng([seed, 1, stream])
    labels = rng.integers(0, classes, n)
    sample, t, c = np.nonzero(templates[labels])
    keep = rng.random(sample.shape[0]) >= deletion
    shift = rng.integers(-jitter, jitter + 1, sample.shape[0]) if jitter else 0
    t = np.clip(t + shift, 0, steps - 1)
    x = np.zeros((n, steps, channels), dtype=np.uint8)
    x[sample[keep], t[keep], c[keep]] = 1
    x |= (rng.random((n, steps, channels)) < noise).astype(np.uint8)
    return torch.from_numpy(x), torch.from_numpy(labels.astype(np.int64))


def _load_data(config: dict) -> tuple:
    """``(train_x, train_y, test_x, test_y, n_classes)``; inputs sample-major uint8 ([N, H, W] or [N, T, C])."""
    data = config["data"]
    if data["source"] == "spike_patterns":
        p = dict(data["patterns"])
        n_train, n_test = p.pop("train"), p.pop("test")
        seed = config["seed"]
        tx, ty = spike_pattern_dataset(n_train, seed=seed, stream=0, **p)
        sx, sy = spike_pattern_dataset(n_test, seed=seed, stream=1, **p)
        return tx, ty, sx, sy, p["classes"]
    train = load_dataset("train", data["dir"], name=data["name"], as_torch=True)
    test = load_dataset("test", data["dir"], name=data["name"], as_torch=True)
    n_classes = int(max(int(train.labels.max()), int(test.labels.max())) + 1)
    return train.images, train.labels, test.images, test.labels, n_classes


def make_transform(enc: dict, dt: float) -> tuple[Callable[[torch.Tensor, torch.Generator], torch.Tensor], Callable]:
    """``(transform, n_inputs)``: the encoder of a config as a trainer transform ``(x, generator) -> [T, B, N]``,
    and a function of the sample shape giving the number of inputs per step."""
    import torch

    from braincore import encoding

    kind, steps, gain = enc["kind"], enc["steps"], float(enc["gain"])

    def pixels(x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], -1).to(torch.float32) / 255.0

    if kind == "rate":
        def transform(x, gen):
            return encoding.rate(pixels(x) * gain, steps, generator=gen)
    elif kind == "poisson":
        def transform(x, gen):
            return encoding.poisson(pixels(x), steps, dt=dt, max_rate=enc["max_rate"], generator=gen)
    elif kind == "latency":
        def transform(x, gen):
            return encoding.latency(pixels(x), steps, tau=enc["tau"], threshold=enc["threshold"],
                                    linear=enc["linear"], normalize=enc["normalize"])
    elif kind == "current":
        def transform(x, gen):
            p = pixels(x) * gain
            return p.unsqueeze(0).expand(steps, *p.shape)
    elif kind == "rows":
        def transform(x, gen):
            if x.dim() != 3:
                raise ValueError(f"rows encoder: expected images [B, H, W], got {tuple(x.shape)}")
            return x.transpose(0, 1).to(torch.float32) * (gain / 255.0)
    elif kind == "pixels":
        def transform(x, gen):
            seq = pixels(x)
            order = pixel_order(enc.get("permutation"), seq.shape[1])
            if order is not None:
                seq = seq[:, order.to(seq.device)]
            return (seq * gain).t().unsqueeze(-1)
    else:  # spikes
        def transform(x, gen):
            return x.transpose(0, 1).to(torch.float32)

    def n_inputs(sample_shape: tuple) -> int:
        if kind == "pixels":
            return 1
        return int(sample_shape[-1]) if kind in ("rows", "spikes") else int(np.prod(sample_shape))

    return transform, n_inputs


_PIXEL_ORDERS: dict = {}


def pixel_order(seed: Optional[int], n_pixels: int) -> Optional["torch.Tensor"]:
    """The fixed pixel order of permuted sequential MNIST for ``seed`` (``None``: raster order, no permutation).

    ``numpy.random.default_rng(seed).permutation(n_pixels)``: the same order on every machine and run.
    """
    import torch

    if seed is None:
        return None
    key = (int(seed), int(n_pixels))
    if key not in _PIXEL_ORDERS:
        _PIXEL_ORDERS[key] = torch.as_tensor(np.random.default_rng(int(seed)).permutation(n_pixels), dtype=torch.long)
    return _PIXEL_ORDERS[key]


def _layer_options(layer: dict, dt: float) -> dict:
    out = {k: v for k, v in layer.items() if v is not None}
    for key in ("tau", "tau_adapt"):
        if key in out:
            out[key] = out[key] / dt  # ms -> steps
    return out


def build_model(config: dict, n_in: int, n_classes: int) -> torch.nn.Module:
    """The config's :class:`~braincore.training.models.SpikingClassifier` (weights from the global RNG)."""
    from braincore.training.models import build_classifier

    net = config["network"]
    dt = net["dt"]
    layers = [_layer_options(layer, dt) for layer in net["layers"]]
    readout = {k: v for k, v in net["readout"].items() if v is not None}
    if "tau" in readout:
        readout["tau"] = readout["tau"] / dt
    try:
        return build_classifier(n_in, layers, n_classes, readout)
    except ValueError as err:
        raise ConfigError(f"network: {err}") from None


def build_loss(config: dict) -> ClassificationLoss:
    from braincore.training.losses import ClassificationLoss, RateRegularizer

    cfg = config["loss"]
    reg = None
    if cfg["rate_lower"] is not None or cfg["rate_upper"] is not None:
        reg = RateRegularizer(cfg["rate_lower"], cfg["rate_upper"], cfg["lower_strength"], cfg["upper_strength"])
    return ClassificationLoss(cfg["kind"], reduce=cfg["reduce"], label_smoothing=cfg["label_smoothing"],
                              correct_rate=cfg["correct_rate"], incorrect_rate=cfg["incorrect_rate"],
                              regularizer=reg)


def build_schedule(config: dict, steps_per_epoch: int) -> LRSchedule:
    from braincore.training.trainer import LRSchedule

    s = config["schedule"]
    return LRSchedule(s["kind"], warmup=int(round(s["warmup_epochs"] * steps_per_epoch)),
                      step_size=max(1, int(round(s["step_epochs"] * steps_per_epoch))) if s["step_epochs"] else None,
                      gamma=s["gamma"], min_factor=s["min_factor"], pct_start=s["pct_start"],
                      div_factor=s["div_factor"], final_div_factor=s["final_div_factor"])


def _config_key(config: dict) -> str:
    """Everything that changes training (not evaluation sizes, progress or checkpoint frequency)."""
    return config_key(config, ("seed", "data", "encoder", "network", "loss", "optimizer", "schedule", "training"))


# ------------------------------------------------------------------------------------------ the runner
def run(config: dict, options: dict) -> dict:

    from braincore.training.trainer import Trainer, seed_everything

    wall = time.perf_counter()
    out_dir, progress, device = torch_run_setup(config, options)
    seed = config["seed"]
    tr, ev = config["training"], config["evaluation"]

    train_x, train_y, test_x, test_y, n_classes = _load_data(config)
    train_idx, val_idx, n_test = training_splits(config, len(train_y), len(test_y))
    n_val = len(val_idx)
    transform, n_inputs = make_transform(config["encoder"], config["network"]["dt"])
    n_in = n_inputs(tuple(train_x.shape[1:]))
    if config["encoder"]["kind"] == "rows" and train_x.dim() != 3:
        raise ConfigError(f"encoder rows: the data must be images [N, H, W], got {tuple(train_x.shape)}")

    train, validation, test = tensor_splits(train_x, train_y, test_x, test_y, train_idx, val_idx, n_test, tr["batch"],
                                            seed, device)

    seed_everything(seed)
    model = build_model(config, n_in, n_classes)
    opt, loss = config["optimizer"], build_loss(config)
    ckpt_path = out_dir / f"{config['name']}.ckpt"
    key = _config_key(config)
    trainer = Trainer(model, loss, optimizer=opt["kind"], lr=opt["lr"], weight_decay=opt["weight_decay"],
                      betas=(opt["beta1"], opt["beta2"]), schedule=build_schedule(config, len(train)),
                      batch_size=tr["batch"], eval_batch_size=ev["batch"], transform=transform, seed=seed,
                      device=device, grad_clip=opt["grad_clip"], checkpoint_path=ckpt_path,
                      checkpoint_every=config["checkpoint_every"], checkpoint_extra={"config_key": key},
                      progress=progress, resume=config["resume"])
    sizes = [n_in] + [layer["size"] for layer in config["network"]["layers"]] + [n_classes]
    kinds = "-".join(("r" if layer["recurrent"] else "") + layer["kind"] for layer in config["network"]["layers"])
    n_params = sum(p.numel() for p in model.parameters())
    print(f"spiking_classifier {config['name']}: {'-'.join(map(str, sizes))} ({kinds}, {n_params} parameters), "
          f"encoder {config['encoder']['kind']}, loss {loss.kind}, {opt['kind']} lr {opt['lr']:g}, schedule "
          f"{config['schedule']['kind']}; {tr['epochs']} epoch(s) x {len(train)} batches of {tr['batch']} "
          f"({train.samples} samples), validation {n_val}, device {device}", flush=True)
    history, results = resume_fit_score(trainer, ckpt_path, key, config["resume"], train, tr["epochs"],
                                        validation, ev["every_epoch"], test)
    summary = {"task": "spiking_classifier", "name": config["name"], "dataset": _dataset_name(config),
               "encoder": config["encoder"]["kind"], "sizes": sizes, "layers": kinds, "parameters": n_params,
               "epochs": tr["epochs"], "batch": tr["batch"], "steps": trainer.step,
               "train_samples": train.samples, "validation_samples": n_val, "test_samples": n_test, **results,
               "train_seconds": round(trainer.train_seconds, 2),
               "wall_seconds": round(time.perf_counter() - wall, 2), "device": str(device),
               "history": history, "checkpoint": str(ckpt_path)}
    if ev["efficiency_samples"]:
        summary["efficiency"] = measure_efficiency(model, transform, test[0][:ev["efficiency_samples"]],
                                                   min(ev["batch"], 200), seed, device)
        summary["wall_seconds"] = round(time.perf_counter() - wall, 2)
    print(json.dumps(summary))
    return summary


def measure_efficiency(model: torch.nn.Module, transform: Callable, images: torch.Tensor, batch: int, seed: int,
                       device: Any) -> dict:
    """Spikes, synaptic operations, MACs, FLOPs and steps per sample of ``model`` on ``images``
    (:func:`braincore.training.efficiency.measure`; stochastic encoders draw from a generator seeded by ``seed``,
    apart from the trainer's), printed as one line; the record for the final JSON line."""
    import torch

    from braincore.training.efficiency import measure

    generator = torch.Generator(device=device).manual_seed(int(seed))
    record = measure(model, transform, images, batch, generator)
    rate = "" if record["rate"] is None else f", rate {record['rate']:.4f}"
    print(f"efficiency on {record['samples']} test samples: {record['spikes']:.1f} spikes, {record['synops']:.4g} "
          f"SynOps, {record['macs']:.4g} MACs per sample over {record['steps']} steps{rate}", flush=True)
    return record


def _dataset_name(config: dict) -> str:
    return config["data"]["name"] if config["data"]["source"] == "idx" else "spike_patterns"


KIND = register_kind(Kind("spiking_classifier", SCHEMA, run, semantic_check,
                          "spiking classifiers (LIF / adaptive LIF, feed-forward or recurrent) trained with "
                          "surrogate gradients, and RNN/GRU/LSTM baselines: MNIST rate/latency/row/pixel codes, "
                          "(permuted) sequential MNIST, synthetic spike patterns"))

# the names this module imported at its top before it left PyTorch to the runner (issue 16)
__getattr__ = lazy_attributes(__name__, {
    "torch": "torch",
    "encoding": "braincore.encoding",
    "SURROGATES": "braincore.surrogate:SURROGATES",
    "ClassificationLoss": "braincore.training.losses:ClassificationLoss",
    "RateRegularizer": "braincore.training.losses:RateRegularizer",
    "build_classifier": "braincore.training.models:build_classifier",
    "LRSchedule": "braincore.training.trainer:LRSchedule",
    "TensorData": "braincore.training.trainer:TensorData",
    "Trainer": "braincore.training.trainer:Trainer",
    "resolve_device": "braincore.training.trainer:resolve_device",
    "seed_everything": "braincore.training.trainer:seed_everything",
})
