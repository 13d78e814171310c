"""Unsupervised MNIST with STDP: the Diehl & Cook (2015) protocol (``kind: diehl_cook`` configs).

Train (labels unused): every training image is shown once per epoch for ``present`` (350 ms) as Poisson spike
trains (``pixel / 8 * intensity`` Hz, intensity 2), with STDP and adaptive thresholds on and the input weights
normalised before each presentation; a presentation that evokes fewer than ``min_spikes`` excitatory spikes is
repeated with the intensity raised by one. Then, with weights and thresholds frozen:

1. **labelling**: the responses to ``labelling.samples`` training images assign each excitatory neuron the
   class for which its mean response is highest (the paper's ``get_new_assignments``);
2. **classification**: a sample's class is the one whose assigned neurons have the highest mean spike count
   (``get_recognized_number_ranking``), scored on the validation split (carved from the training set with a
   seeded permutation, never used for training or labelling: tune on it) and on the test set.

Checkpoints (``<out>/diehl_cook.ckpt``) are written atomically every ``checkpoint_every`` training samples and
at the end of training; a rerun with the same config resumes from them exactly (weights, thresholds, random
generators and position) and skips training when it is complete. Ctrl-C during training stops after the
presentation in progress, writes a checkpoint there and prints the command that resumes. The last line printed is a JSON
object with
the test accuracy. The data directory comes from ``data.dir``, else ``$BRAINCORE_DATA``, else
``../shared/data/<data.name>``: any IDX dataset of 28x28 images with labels 0-9 works unchanged.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from braincore.config import Integer, Kind, Quantity, Record, Text, register_kind
from braincore.data import load_dataset, train_validation_split
from braincore.errors import ConfigError
from braincore.networks.params import DiehlCookParams
from tasks.common import (
    OutputName, assembly_memory_problems, check_split_at_run, check_validation_split, checkpoint_fields,
    config_error, config_key, data_field, device_problem, epoch_batch, evaluation_field, idx_shape, load_resumable,
    params_field, progress_bar, remember_document, run_setup, safe_points, seed_problem, training_field,
    lazy_attributes)

if TYPE_CHECKING:
    import torch

    from braincore.networks.diehl_cook import DiehlCookNetwork

MAX_INTENSITY_RAISES = 32  # a blank image never evokes spikes: stop raising the intensity after this many


SCHEMA = Record({
    "kind": Text(required=True),
    "name": OutputName("diehl_cook", doc="names the output files <out>/<name>.ckpt and <name>_fields.png"),
    "seed": Integer(0, minimum=0),
    "data": data_field(),
    "network": params_field(DiehlCookParams, "DiehlCookParams overrides, units allowed"),
    "backend": Text("auto", choices=("auto", "native", "torch")),
    "device": Text("cpu"),
    "batch": Integer(1, minimum=1, doc="samples per presentation, as trials of one simulation (updates averaged), "
                                       "or per merge of the parallel workers (with workers > 1)"),
    "workers": Integer(1, minimum=1, doc="native engine: threads that each learn online on their share of a batch "
                                         "from the batch-start state; their changes are averaged at the batch end"),
    "present": Quantity("time", 350.0, exclusive_minimum=0.0, doc="presentation time per sample"),
    "intensity": Quantity("dimensionless", 2.0, exclusive_minimum=0.0, doc="rate = pixel / 8 * intensity Hz"),
    "min_spikes": Integer(5, minimum=0),
    "training": training_field(),
    "labelling": Record({"samples": Integer(10000, minimum=10)}, default={"samples": 10000}),
    "evaluation": evaluation_field(),
    **checkpoint_fields(5000),
})


# ------------------------------------------------------------------------------------------ the protocol
def rates_of(images: torch.Tensor, intensity: float) -> torch.Tensor:
    """``[B, H, W]`` uint8 pixels -> ``[B, H*W]`` Poisson rates in Hz: ``pixel / 8 * intensity``."""
    import torch

    return images.reshape(images.shape[0], -1).to(torch.float64) / 8.0 * intensity


def present_with_retries(net: DiehlCookNetwork, images: torch.Tensor, steps: int, intensity: float,
                         min_spikes: int, learn: bool,
                         counts: "torch.Tensor | None" = None) -> tuple[torch.Tensor, int]:
    """Show ``images`` (a batch) until each evokes ``min_spikes`` spikes, raising the intensity by one per retry
    (the learning simulator normalises the weights at the end of every presentation, so each one starts from
    normalised weights). ``counts``: those of a first presentation already made. Returns counts ``[B, n_exc]``
    and the number of retries."""
    if counts is None:
        counts = net.present(rates_of(images, intensity), steps, learn=learn)
    retries = 0
    low = counts.sum(dim=1) < min_spikes
    while bool(low.any()) and retries < MAX_INTENSITY_RAISES:
        retries += 1
        again = low.nonzero().squeeze(1)
        counts[again] = net.present(rates_of(images[again], intensity + retries), steps, learn=learn)
        low = counts.sum(dim=1) < min_spikes
    return counts, retries


#: samples per :func:`present_in_turn` call on a network of batch 1 (the progress bar's and Ctrl-C's granularity)
SAMPLES_PER_CALL = 100


def present_in_turn(net: DiehlCookNetwork, images: torch.Tensor, steps: int, intensity: float, min_spikes: int,
                    learn: bool) -> tuple[torch.Tensor, int]:
    """:func:`present_with_retries` for each image in turn on a network of batch 1, the images between retries
    shown in one :meth:`DiehlCookNetwork.present_many` (the same presentations, in the same order, as one
    :func:`present_with_retries` per image). Returns counts ``[K, n_exc]`` and the number of retries."""
    import torch

    out = torch.zeros(images.shape[0], net.n_exc, dtype=torch.int64)
    start, retries = 0, 0
    while start < images.shape[0]:
        counts = net.present_many(rates_of(images[start:], intensity), learn=learn, stop_below=min_spikes)
        shown = counts.shape[0]
        out[start:start + shown] = counts
        if int(counts[-1].sum()) < min_spikes:  # the last one shown evoked too few spikes: louder, until it does
            last = start + shown - 1
            again, r = present_with_retries(net, images[last:last + 1], steps, intensity, min_spikes, learn,
                                            counts=counts[-1:].clone())
            out[last] = again[0]
            retries += r
        start += shown
    return out, retries


def assign_labels(responses: np.ndarray, labels: np.ndarray, n_classes: int = 10) -> np.ndarray:
    """Each neuron's class: the one with its highest mean response (``responses [S, N]``, ``labels [S]``).
    Classes without samples are never assigned."""
    means = np.full((n_classes, responses.shape[1]), -1.0)
    for c in range(n_classes):
        rows = labels == c
        if rows.any():
            means[c] = responses[rows].mean(axis=0)
    return means.argmax(axis=0)


def classify(responses: np.ndarray, assignments: np.ndarray, n_classes: int = 10) -> np.ndarray:
    """Per sample, the class whose assigned neurons fire most on average (classes with no neuron score 0)."""
    scores = np.zeros((responses.shape[0], n_classes))
    for c in range(n_classes):
        members = assignments == c
        if members.any():
            scores[:, c] = responses[:, members].mean(axis=1)
    return scores.argmax(axis=1)


def _respond(net, images, steps, config, learn, bar_desc, progress) -> np.ndarray:
    if net.backend == "native" and config["workers"] > 1 and not learn:
        return _respond_parallel(net, images, steps, config, bar_desc, progress)
    batch = net.batch
    out = np.zeros((images.shape[0], net.n_exc), dtype=np.int64)
    with progress_bar(images.shape[0], bar_desc, progress, unit="image") as bar:
        step = SAMPLES_PER_CALL if batch == 1 else batch
        for start in range(0, images.shape[0], step):
            chunk = images[start:start + step]
            present = present_in_turn if batch == 1 else present_with_retries
            counts, _ = present(net, chunk, steps, config["intensity"], config["min_spikes"], learn)
            out[start:start + len(chunk)] = counts.numpy()
            bar.update(len(chunk))
    return out


def _worker_seed(seed: int, position: int, k: int) -> int:
    return (seed * 1_000_003 + position * 97 + k * 7919 + 17) % (2 ** 63)


def run_workers(net: DiehlCookNetwork, images: torch.Tensor, steps: int, config: dict, learn: bool,
                position: int, bar=None) -> tuple[np.ndarray, int]:
    """Present ``images`` one by one on ``config["workers"]`` worker copies of ``net`` in parallel
    (:meth:`DiehlCookNetwork.run_parallel`), each taking a contiguous share; with ``learn`` the workers' changes
    are averaged into ``net``. Worker random streams are seeded from the run's seed and ``position``, so a run
    is reproducible and resumable. Returns counts ``[B, n_exc]`` and retries."""
    import torch

    out = np.zeros((images.shape[0], net.n_exc), dtype=np.int64)

    def work(worker: DiehlCookNetwork, share: np.ndarray) -> int:
        retries = 0
        for begin in range(0, len(share), SAMPLES_PER_CALL):  # the share's images in turn, a call per block
            block = share[begin:begin + SAMPLES_PER_CALL]
            counts, r = present_in_turn(worker, images[torch.as_tensor(block)], steps, config["intensity"],
                                        config["min_spikes"], learn)
            out[block] = counts.numpy()
            retries += r
            if bar is not None:
                bar.update(len(block))
        return retries

    seeds = [_worker_seed(config["seed"], position, k) for k in range(config["workers"])]
    return out, sum(net.run_parallel(images.shape[0], work, seeds, learn))


def _respond_parallel(net, images, steps, config, bar_desc, progress) -> np.ndarray:
    with progress_bar(images.shape[0], bar_desc, progress, unit="image") as bar:
        out, _ = run_workers(net, images, steps, config, False, position=10 ** 9, bar=bar)
    return out


def _config_key(config: dict) -> str:
    """What makes a checkpoint resumable: everything that changes training (not evaluation sizes)."""
    return config_key(config, ("seed", "network", "present", "intensity", "min_spikes", "batch", "workers", "backend",
                               "training"), data=config["data"]["name"])


# ------------------------------------------------------------------------------------------ the runner
def run(config: dict, options: dict) -> dict:
    import torch  # PyTorch and the network load to run a config, not to validate one

    from braincore.checkpoint import save_checkpoint
    from braincore.networks.diehl_cook import DiehlCookNetwork

    out_dir, progress = run_setup(config, options)
    seed = config["seed"]
    params = DiehlCookParams.from_mapping(config["network"])
    torch.manual_seed(seed)
    train = load_dataset("train", config["data"]["dir"], name=config["data"]["name"], as_torch=True)
    test = load_dataset("test", config["data"]["dir"], name=config["data"]["name"], as_torch=True)
    n_pixels = int(np.prod(train.images.shape[1:]))
    if n_pixels != params.n_in:
        raise config_error(config, ("network", "n_in") if "n_in" in config["network"] else ("network",),
                           f"network.n_in is {params.n_in:g} but the images have {n_pixels} pixels")
    tr = config["training"]
    check_split_at_run(config, len(train.labels), f"the training split of {config['data']['name']!r}")
    train_idx, val_idx = train_validation_split(len(train.labels), tr["validation"], seed)
    per_epoch = min(tr["samples"] or len(train_idx), len(train_idx))
    steps = int(round(config["present"] / params.dt))
    def build(batch: int) -> DiehlCookNetwork:
        return DiehlCookNetwork(params, seed=seed, backend=config["backend"], device=config["device"], steps=steps,
                                batch=batch)

    want_parallel = config["workers"] > 1
    net = build(1 if want_parallel else config["batch"])
    parallel = want_parallel and net.backend == "native"
    if want_parallel and not parallel:  # worker threads need the native engine; the batch runs as trials instead
        net = build(config["batch"])
    print(f"diehl_cook: {net.n_in} inputs -> {net.n_exc} excitatory + {net.n_exc} inhibitory LIF, "
          f"{config['present']:g} ms per sample ({steps} steps of {params.dt:g} ms), engine {net.backend} (generic "
          f"Assembly, batch {net.batch}); "
          f"training {tr['epochs']} epoch(s) x {per_epoch} samples, validation {len(val_idx)}")

    ckpt_path = out_dir / f"{config['name']}.ckpt"
    key = _config_key(config)
    position, train_seconds = 0, 0.0
    state = load_resumable(ckpt_path, key, config["resume"])
    if state is not None:
        net.load_state_dict(state["network"])
        position, train_seconds = int(state["position"]), float(state["train_seconds"])
        print(f"resumed from {ckpt_path} at training sample {position}")

    def save(pos: int, seconds: float) -> None:
        save_checkpoint(ckpt_path, {"config_key": key, "network": net.state_dict(), "position": pos,
                                    "train_seconds": seconds})

    total = tr["epochs"] * per_epoch
    batch = config["batch"]
    spikes_sum, retries_sum, shown = 0, 0, 0
    if position < total:
        with progress_bar(total, "training", progress, unit="sample", initial=position) as bar, \
                safe_points(ckpt_path, lambda: save(position, train_seconds)) as points:
            last_save = position
            while position < total:
                # a network of batch 1 shows its samples in turn, up to the next checkpoint in one call
                block = batch if batch > 1 or parallel else \
                    min(SAMPLES_PER_CALL, config["checkpoint_every"] - (position - last_save))
                epoch, take = epoch_batch(train_idx, position, per_epoch, max(1, block), seed)
                start = time.perf_counter()
                if batch == 1 and not parallel:
                    counts, retries = present_in_turn(net, train.images[torch.as_tensor(take)], steps,
                                                      config["intensity"], config["min_spikes"], learn=True)
                elif parallel:
                    counts_np, retries = run_workers(net, train.images[torch.as_tensor(take)], steps, config, True,
                                                     position)
                    counts = torch.from_numpy(counts_np)
                else:
                    counts, retries = present_with_retries(net, train.images[torch.as_tensor(take)], steps,
                                                           config["intensity"], config["min_spikes"], learn=True)
                train_seconds += time.perf_counter() - start
                position += len(take)
                spikes_sum += int(counts.sum())
                retries_sum += retries
                shown += len(take)
                bar.update(len(take))
                if shown % 100 < len(take):
                    bar.set_postfix_str(f"spikes/sample {spikes_sum / shown:.1f}, retries {retries_sum}")
                if position - last_save >= config["checkpoint_every"] or position == total:
                    save(position, train_seconds)
                    last_save = position
                points.stop(f"training sample {position}/{total}")  # Ctrl-C: checkpoint here and stop
        print(f"trained on {total} presentations in {train_seconds:.1f} s "
              f"({1000 * train_seconds / max(total, 1):.2f} ms per sample)")

    # labelling and evaluation, weights and thresholds frozen
    label_idx = train_idx[np.random.default_rng([seed, 10_000]).permutation(len(train_idx))]
    label_idx = label_idx[:config["labelling"]["samples"]]
    start = time.perf_counter()
    responses = _respond(net, train.images[torch.as_tensor(label_idx)], steps, config, False, "labelling", progress)
    assignments = assign_labels(responses, train.labels[torch.as_tensor(label_idx)].numpy())
    results: dict[str, Any] = {}
    ev = config["evaluation"]
    n_val = len(val_idx) if ev["validation_samples"] is None else min(ev["validation_samples"], len(val_idx))
    if n_val:
        vi = torch.as_tensor(val_idx[:n_val])
        pred = classify(_respond(net, train.images[vi], steps, config, False, "validation", progress), assignments)
        results["validation_accuracy"] = float((pred == train.labels[vi].numpy()).mean())
    n_test = len(test.labels) if ev["test_samples"] is None else min(ev["test_samples"], len(test.labels))
    pred = classify(_respond(net, test.images[:n_test], steps, config, False, "test", progress), assignments)
    results["test_accuracy"] = float((pred == test.labels[:n_test].numpy()).mean())
    eval_seconds = time.perf_counter() - start
    png = None if options.get("no_plot") else _plot_fields(net, assignments, out_dir / f"{config['name']}_fields.png")
    summary = {"task": "diehl_cook", "dataset": config["data"]["name"], "n_exc": net.n_exc, "engine": net.backend,
               "epochs": tr["epochs"], "train_samples": total, "labelling_samples": len(label_idx),
               "validation_samples": n_val, "test_samples": n_test, **results,
               "train_seconds": round(train_seconds, 2), "eval_seconds": round(eval_seconds, 2),
               "ms_per_train_sample": round(1000 * train_seconds / max(total, 1), 3),
               "neurons_per_class": np.bincount(assignments, minlength=10).tolist(), "checkpoint": str(ckpt_path),
               "fields_png": png}
    for name in ("validation_accuracy", "test_accuracy"):
        if name in results:
            print(f"{name.replace('_', ' ')}: {100 * results[name]:.2f} %")
    print(json.dumps(summary))
    return summary


def _plot_fields(net: DiehlCookNetwork, assignments: np.ndarray, path: Path) -> Optional[str]:
    """A grid of the learned receptive fields (input weights as images), titled by assigned class."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    side = int(round(net.n_in ** 0.5))
    if side * side != net.n_in:
        return None
    cols = int(np.ceil(np.sqrt(net.n_exc)))
    rows = int(np.ceil(net.n_exc / cols))
    w = net.w.detach().cpu().numpy()
    canvas = np.full((rows * side, cols * side), np.nan)
    for j in range(net.n_exc):
        r, c = divmod(j, cols)
        canvas[r * side:(r + 1) * side, c * side:(c + 1) * side] = w[:, j].reshape(side, side)
    fig, ax = plt.subplots(figsize=(8, 8 * rows / cols))
    ax.imshow(canvas, cmap="hot_r", interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(f"Diehl & Cook: input weights of {net.n_exc} excitatory neurons")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)


def _semantic_check(config: dict, doc, problems: list) -> None:
    """What the run would refuse, at its line: the device, a presentation shorter than a step, inputs that do not
    match the images, a validation hold-out that takes the whole training split (both read from the IDX headers
    when the data can be found now; otherwise the run checks them when it loads the data) and the memory."""
    remember_document(config, doc)
    device_problem(config, doc, problems)
    seed_problem(config, doc, problems)
    try:
        params = DiehlCookParams.from_mapping(config.get("network") or {})
    except ConfigError:
        return  # reported at the keys of network by its field
    if config.get("present") is not None and int(round(config["present"] / params.dt)) < 1:
        problems.append(doc.problem(("present",), f"shorter than one time step (network.dt = {params.dt:g} ms)"))
    shape = idx_shape(config.get("data") or {}, "train")
    if shape is not None:
        name = (config.get("data") or {}).get("name") or "mnist"
        check_validation_split(config, doc, problems, shape[0], f"the training split of {name!r}")
        pixels = int(np.prod(shape[1:]))
        if pixels != params.n_in:
            where = ("network", "n_in") if "n_in" in (config.get("network") or {}) else ("network",)
            problems.append(doc.problem(where, f"network.n_in is {params.n_in:g} but the images of {name!r} have "
                                               f"{pixels} pixels"))
    if config.get("batch") is not None and float(params.n_exc) >= 1 and float(params.n_in) >= 1:
        from braincore.networks.diehl_cook_graph import diehl_cook_assembly

        assembly = diehl_cook_assembly(params, steps=max(1, int(round((config.get("present") or 1.0) / params.dt))))
        assembly_memory_problems(assembly, doc, problems, ("network",) if config.get("network") else ("batch",),
                                 batch=config["batch"])


KIND = register_kind(Kind("diehl_cook", SCHEMA, run, _semantic_check,
                          "unsupervised MNIST with STDP (Diehl & Cook 2015): train, label, classify"))

# the names this module imported at its top before it left PyTorch to the runner (issue 16)
__getattr__ = lazy_attributes(__name__, {
    "torch": "torch",
    "save_checkpoint": "braincore.checkpoint:save_checkpoint",
    "DiehlCookNetwork": "braincore.networks.diehl_cook:DiehlCookNetwork",
})
