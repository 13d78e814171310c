"""Seconds per psMNIST training batch (forward + backward, 784 steps x 1 input) of the LMU variants and the LSTM
of the same parameter count, at one CPU thread.

Claim measured (Chilkuri & Eliasmith 2021, "Parallelizing Legendre memory unit training"): an LMU whose memory
is driven by the input alone trains without a loop over time (FFT convolutions), much faster than a recurrent
network stepped through the sequence. Measured side by side on the same random psMNIST-shaped batch:

- ``lmu_parallel``: :class:`braincore.training.lmu.LMUClassifier` with ``recurrent=False`` (the bundled
  ``psmnist_lmu.yaml`` network: d = 256, theta = 784, 212 hidden units), non-spiking (``alpha = 0``) and spiking
  (``alpha = 1``: the sigma-delta quantiser's loop over time added);
- ``lmu_recurrent``: the 2019 cell (``W_h h_(t-1)``, a loop over 784 steps), spiking;
- ``lstm``: :class:`braincore.training.baselines.RecurrentBaseline` (PyTorch's LSTM, 116 units, the parameter
  count of ``lmu_parallel``) and a linear read-out of the last step.

The median over ``--reps`` repetitions after one warm-up (the recurrent LMU: ``--slow-reps``).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_lmu.py [--batch 100] [--reps 5] [--slow-reps 1]
        [--json-out benchmarks/results/lmu.json]

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

from braincore.training.baselines import RecurrentBaseline  # noqa: E402
from braincore.training.lmu import LMUClassifier, parameter_count  # noqa: E402


class LSTMClassifier(nn.Module):
    def __init__(self, hidden: int):
        super().__init__()
        self.cell = RecurrentBaseline(1, hidden, cell="lstm")
        self.readout = nn.Linear(hidden, 10)

    def forward(self, x):
        return self.readout(self.cell(x)[-1]).unsqueeze(0)


def time_batch(model: nn.Module, x: torch.Tensor, reps: int) -> float:
    def once() -> float:
        start = time.perf_counter()
        model(x).sum().backward()
        model.zero_grad(set_to_none=True)
        return time.perf_counter() - start

    once()
    return statistics.median(once() for _ in range(reps))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--slow-reps", type=int, default=1)
    parser.add_argument("--json-out", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    x = torch.rand(784, args.batch, 1)
    rows = []
    for name, model, alpha, reps in [
            ("lmu_parallel", LMUClassifier(1, 10, recurrent=False), 0.0, args.reps),
            ("lmu_parallel", LMUClassifier(1, 10, recurrent=False), 1.0, args.reps),
            ("lmu_recurrent", LMUClassifier(1, 10, recurrent=True), 1.0, args.slow_reps),
            ("lstm", LSTMClassifier(116), None, args.reps)]:
        if alpha is not None:
            model.alpha = alpha
        seconds = time_batch(model, x, reps)
        params = parameter_count(model)
        rows.append({"model": name, "alpha": alpha, "parameters": params, "seconds_per_batch": round(seconds, 4)})
        print(f"{name:14s} alpha {alpha!s:4s} {params:7d} parameters: {seconds:.3f} s per batch of {args.batch}",
              flush=True)
    result = {"benchmark": "lmu", "batch": args.batch, "steps": 784, "rows": rows, "environment": environment()}
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
