"""Single-spike training without a time loop (FastSNN) vs multi-spike BPTT through braincore's fused LIF layer, in
one run: training seconds per epoch, the speed ratio, test accuracy and hidden spikes per sample.

Claim measured (Taylor, King & Harper, arXiv:2205.15286): single-spike networks trained with vectorised operations
only train much faster (up to 13.98x in the paper's abstract) and with far fewer spikes (up to 81 % fewer) than
multi-spike networks. Note: the paper's speedups are measured on a GPU and, according to its repository
(github.com/webstorms/Block, README "Dataset results" b), against the *sequential single-spike* model; its spike
reductions against the multi-spike model. This script measures all three side by side on the same data:

- ``single_spike``: :func:`braincore.training.single_spike.mlp` (the paper's MLP: per-unit learnable decays,
  latency input, the paper's first-crossing gradient), trained with no loop over time;
- ``multi_spike_bptt``: the same sizes with braincore's fused multi-spike LIF layer
  (:class:`braincore.training.layers.LIFLayer`: reset by subtraction, per-unit learnable decay, the same
  surrogate), BPTT through its hand-written fused backward; the same read-out, loss and optimiser;
- ``single_spike_sequential``: the single-spike model stepped through time with plain autograd
  (:func:`~braincore.training.single_spike.single_spike_reference`, the same values and gradients as the
  vectorised one), the paper's own baseline; timed on ``--ref-batches`` batches and scaled to an epoch.

Every model starts from the same seed, sees the same latency-coded MNIST subset in the same order, with the same
batch size, epochs, Adam learning rate and the same read-out (:class:`LeakyIntegratorReadout`, summed over time)
and loss. "seconds per epoch" is the median over the epochs (training steps only, no evaluation). Spikes are
counted over the test subset (hidden units only; the read-out does not spike).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_fastsnn.py [--samples 10000] [--epochs 3] [--steps 100]
        [--hidden 800] [--batch 128] [--data-dir DIR] [--json-out benchmarks/results/fastsnn.json]

A benchmark, not a test: timings never enter the test suite.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _harness import environment  # noqa: E402

from braincore.data import load_dataset  # noqa: E402
from braincore.training.layers import LIFLayer  # noqa: E402
from braincore.training.single_spike import (LeakyIntegratorReadout, SingleSpikeDense, SingleSpikeLoss,  # noqa: E402
                                             SingleSpikeNetwork, count_spikes, latency_code, mlp,
                                             paper_surrogate, single_spike_reference)


class _Plain(nn.Module):
    """A multi-spike layer in a :class:`SingleSpikeNetwork` (its output is its spikes)."""

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer

    def forward(self, x):
        return self.layer(x)

    def output(self, spikes):
        return spikes


class _SequentialDense(SingleSpikeDense):
    """The single-spike dense layer stepped through time with autograd (the paper's sequential baseline)."""

    def _spikes(self, current):
        spikes, _ = single_spike_reference(current, self.beta, self.threshold, self.surrogate, self.gradient)
        return spikes


def build(name: str, n_in: int, hidden: int, n_out: int, tau: float, readout_tau: float, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    if name == "single_spike":
        return mlp(n_in, (hidden,), n_out, tau=tau, readout_tau=readout_tau)
    if name == "single_spike_sequential":
        layer = _SequentialDense(n_in, hidden, tau=tau)
    else:
        layer = _Plain(LIFLayer(n_in, hidden, tau_m=tau, learn_tau=True, surrogate=paper_surrogate()))
    return SingleSpikeNetwork([layer], LeakyIntegratorReadout(hidden, n_out, tau=readout_tau))


def encode(images: torch.Tensor, steps: int) -> torch.Tensor:
    return latency_code(images.reshape(images.shape[0], -1).to(torch.float32) / 255.0, steps)


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, epochs: int, batch: int, steps: int, lr: float,
          seed: int, max_batches: int = 0) -> dict:
    """Adam on ``(x, y)``; the same seeded order for every model. Returns per-epoch and per-batch seconds."""
    loss_fn = SingleSpikeLoss("sum")
    opt = torch.optim.Adam(model.parameters(), lr)
    epoch_seconds, batch_seconds, losses = [], [], []
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(seed + epoch))
        total = 0.0
        for b, start in enumerate(range(0, x.shape[0], batch)):
            if max_batches and b >= max_batches:
                break
            idx = order[start:start + batch]
            inputs = encode(x[idx], steps)            # encoding is part of the timed step, for every model
            tick = time.perf_counter()
            out, hidden = model(inputs)
            result = loss_fn(out, y[idx], hidden)
            opt.zero_grad(set_to_none=True)
            result.loss.backward()
            opt.step()
            dt = time.perf_counter() - tick
            batch_seconds.append(dt)
            total += dt
            losses.append(float(result.task))
        epoch_seconds.append(total)
        if max_batches:
            break
    return {"epoch_seconds": epoch_seconds, "batch_seconds": batch_seconds, "final_loss": losses[-1]}


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, batch: int = 500) -> dict:
    model.eval()
    correct = 0
    for start in range(0, x.shape[0], batch):
        out, _ = model(encode(x[start:start + batch], steps))
        correct += int((out.sum(0).argmax(1) == y[start:start + batch]).sum())
    spikes = count_spikes(model, (x[s:s + batch] for s in range(0, x.shape[0], batch)), lambda b: encode(b, steps))
    return {"test_accuracy": correct / x.shape[0], "spikes_per_sample": spikes["per_sample"],
            "max_spikes_per_unit": spikes["max_per_unit"], "active_fraction": spikes["active_fraction"][0]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--samples", type=int, default=10000, help="training images (the first of a seeded permutation)")
    p.add_argument("--test-samples", type=int, default=10000)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=100, help="time steps T (the paper's MLP: 100)")
    p.add_argument("--hidden", type=int, default=800)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--tau", type=float, default=10.0, help="hidden membrane time constant, steps")
    p.add_argument("--readout-tau", type=float, default=20.0)
    p.add_argument("--ref-batches", type=int, default=10, help="batches of the sequential baseline (0: skip it)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=None, help="IDX folder (default: $BRAINCORE_DATA or ../shared/data/mnist)")
    p.add_argument("--json-out", default=str(Path(__file__).resolve().parent / "results" / "fastsnn.json"))
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    train_set = load_dataset("train", args.data_dir, as_torch=True)
    test_set = load_dataset("test", args.data_dir, as_torch=True)
    pick = torch.randperm(len(train_set.labels), generator=torch.Generator().manual_seed(args.seed))[:args.samples]
    x, y = train_set.images[pick], train_set.labels[pick]
    tx, ty = test_set.images[:args.test_samples], test_set.labels[:args.test_samples]
    n_in, n_out = x[0].numel(), int(train_set.labels.max()) + 1
    batches = -(-x.shape[0] // args.batch)
    print(f"MNIST {x.shape[0]} training / {tx.shape[0]} test images, latency code T = {args.steps}, "
          f"{n_in}-{args.hidden}-{n_out}, batch {args.batch} ({batches} per epoch), {args.epochs} epochs, Adam "
          f"lr {args.lr:g}, {torch.get_num_threads()} thread(s)", flush=True)

    rows = {}
    names = ["single_spike", "multi_spike_bptt"] + (["single_spike_sequential"] if args.ref_batches else [])
    for name in names:
        model = build(name, n_in, args.hidden, n_out, args.tau, args.readout_tau, args.seed)
        ref = name == "single_spike_sequential"
        run = train(model, x, y, epochs=args.epochs, batch=args.batch, steps=args.steps, lr=args.lr,
                    seed=args.seed, max_batches=args.ref_batches if ref else 0)
        per_batch = statistics.median(run["batch_seconds"])
        row = {"seconds_per_batch_median": round(per_batch, 4)}
        if ref:
            row["seconds_per_epoch"] = round(per_batch * batches, 2)
            row["seconds_per_epoch_note"] = f"median of {len(run['batch_seconds'])} batches x {batches} batches"
        else:
            row["seconds_per_epoch"] = round(statistics.median(run["epoch_seconds"]), 2)
            row["epoch_seconds"] = [round(s, 2) for s in run["epoch_seconds"]]
            row.update({k: (round(v, 5) if isinstance(v, float) else v)
                        for k, v in evaluate(model, tx, ty, args.steps).items()})
        row["final_train_loss"] = round(run["final_loss"], 4)
        rows[name] = row
        print(f"{name}: {json.dumps(row)}", flush=True)

    single, multi = rows["single_spike"], rows["multi_spike_bptt"]
    summary = {
        "speed_ratio_multi_over_single": round(multi["seconds_per_epoch"] / single["seconds_per_epoch"], 3),
        "spike_reduction_percent": round(100 * (1 - single["spikes_per_sample"] / multi["spikes_per_sample"]), 2),
        "accuracy_difference_single_minus_multi": round(single["test_accuracy"] - multi["test_accuracy"], 5)}
    if "single_spike_sequential" in rows:
        summary["speed_ratio_sequential_over_single"] = round(
            rows["single_spike_sequential"]["seconds_per_epoch"] / single["seconds_per_epoch"], 3)
    print()
    print(f"{'network':26s} {'s/epoch':>9s} {'s/batch':>8s} {'test acc':>9s} {'spikes/sample':>14s}")
    for name, row in rows.items():
        acc = f"{100 * row['test_accuracy']:.2f} %" if "test_accuracy" in row else "-"
        sp = f"{row['spikes_per_sample']:.1f}" if "spikes_per_sample" in row else "-"
        print(f"{name:26s} {row['seconds_per_epoch']:9.2f} {row['seconds_per_batch_median']:8.3f} {acc:>9s} "
              f"{sp:>14s}")
    print(f"multi-spike / single-spike time per epoch: {summary['speed_ratio_multi_over_single']:.2f}x; spikes: "
          f"{summary['spike_reduction_percent']:.1f} % fewer with single spikes")
    if "speed_ratio_sequential_over_single" in summary:
        print(f"sequential / vectorised single-spike time per epoch: "
              f"{summary['speed_ratio_sequential_over_single']:.2f}x")
    out = {"benchmark": "bench_fastsnn", "settings": vars(args), "train_samples": int(x.shape[0]),
           "test_samples": int(tx.shape[0]), "batches_per_epoch": batches, "rows": rows, "summary": summary,
           "paper": {"source": "arXiv:2205.15286 abstract and results table", "speedup_up_to": 13.98,
                     "spike_reduction_up_to_percent": 81, "mnist_mlp_test_accuracy": 97.91,
                     "mnist_cnn_test_accuracy": 99.3, "hardware": "GPU"},
           "environment": environment()}
    path = Path(args.json_out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
