"""CPU time per Diehl & Cook training presentation, this checkout against another one, taking turns.

Each measurement runs in its own process (one thread): ``--samples`` presentations (STDP, adaptive thresholds,
normalisation) after 5 untimed ones, timed with ``time.process_time`` so that other jobs on a shared machine
disturb the figure less than wall time would. ``--baseline PATH`` is another checkout of braincore (for example
``git worktree add ../hand f71fadc^``, the last commit with the hand-written Diehl & Cook engine, whose
``DiehlCookNetwork`` normalises by a separate call and has no ``steps`` argument: both are handled).

    python benchmarks/diehl_cook_ab.py --baseline ../hand --rounds 3
    python benchmarks/diehl_cook_ab.py --baseline ../hand --n-exc 100 --steps 250 --dt 1.0

Prints one line per measurement and the medians.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Optional, Sequence

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

WORKER = r"""
import inspect, os, sys, time
import torch
torch.set_num_threads(1)
sys.path.insert(0, {bench!r})
from stdp import _images
from braincore.networks.diehl_cook import DiehlCookNetwork, DiehlCookParams
n_exc, steps, dt, samples = {n_exc}, {steps}, {dt}, {samples}
images, _ = _images(200)
rates = images.reshape(len(images), -1).double() / 4.0
extra = {{"steps": steps}} if "steps" in inspect.signature(DiehlCookNetwork).parameters else {{}}
net = DiehlCookNetwork(DiehlCookParams.from_mapping({{"n_exc": n_exc, "dt": dt}}), seed=0, backend="native",
                       dtype=torch.float64, **extra)
separate_normalisation = not hasattr(net, "simulator")  # the hand engine normalised in a call of its own
def one(i):
    if separate_normalisation:
        net.normalize()
    net.present(rates[i % 200:i % 200 + 1], steps, learn=True)
for i in range(5):
    one(i)
start = time.process_time()
if hasattr(net, "present_many") and not {one_by_one}:  # the trials in one call, as the training runs them
    for begin in range(0, samples, 200):
        net.present_many(rates[:min(200, samples - begin)], learn=True)
else:
    for i in range(samples):
        one(i)
print((time.process_time() - start) / samples * 1e3)
"""


def measure(checkout: Path, args: argparse.Namespace) -> float:
    code = WORKER.format(bench=str(HERE), n_exc=args.n_exc, steps=args.steps, dt=args.dt, samples=args.samples,
                         one_by_one=bool(args.one_by_one))
    env = dict(os.environ, PYTHONPATH=str(checkout), OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=str(checkout), capture_output=True, text=True,
                          timeout=1800)  # cwd: "-c" puts the current folder first on sys.path
    if done.returncode != 0:
        raise SystemExit(f"{checkout}: {done.stderr[-2000:]}")
    return float(done.stdout.strip().splitlines()[-1])


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, required=True, help="another braincore checkout")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--n-exc", type=int, default=400)
    parser.add_argument("--steps", type=int, default=350)
    parser.add_argument("--dt", type=float, default=0.5)
    parser.add_argument("--one-by-one", action="store_true",
                        help="this checkout presents sample by sample (present), not in one run_trials call")
    args = parser.parse_args(argv)
    times: dict = {"this": [], "baseline": []}
    for r in range(args.rounds):
        for label, checkout in (("baseline", args.baseline.resolve()), ("this", ROOT)):
            ms = measure(checkout, args)
            times[label].append(ms)
            print(f"round {r + 1}: {label:8s} {ms:.3f} ms per sample (CPU)", flush=True)
    this, base = statistics.median(times["this"]), statistics.median(times["baseline"])
    print(f"median: this {this:.3f} ms, baseline {base:.3f} ms, this / baseline {this / base:.2f} "
          f"({args.n_exc} excitatory neurons, {args.steps} steps of {args.dt:g} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
