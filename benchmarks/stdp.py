#!/usr/bin/env python
"""STDP training speed: the Diehl & Cook (2015) network in braincore and in BindsNET, side by side.

One training presentation = ``steps`` steps of ``dt`` with Poisson inputs from an MNIST image (rates pixel / 4
Hz), STDP on, adaptive thresholds on, input weights normalised (to 78.4 for BindsNET, 78 for braincore, as each
ships it). Measured: wall seconds per training sample (median over ``--repeat`` timed blocks of ``--samples``
samples, after ``--warmup`` samples), samples per second, and peak memory; each configuration runs in a fresh
subprocess with one thread (``OMP_NUM_THREADS=1``, ``torch.set_num_threads(1)``).

Engines:

- ``braincore-native``: :class:`braincore.networks.diehl_cook.DiehlCookNetwork` (the network as an Assembly)
  on the generic native engine, one sample after the other (the paper's sequential learning), 25 samples per
  ``present_many`` call (``Simulator.run_trials``: the trials in one call into C, as the training shows them);
- ``braincore-parallel``: the C engine on ``--workers`` threads (one core each): each worker learns online on its
  share of a batch of ``--parallel-batch`` samples from the batch-start state, the workers' changes averaged at
  the batch end (the task's ``workers`` option); wall time per sample, so it counts the cores used;
- ``braincore-torch``: the PyTorch engine, one sample at a time (batch 1);
- ``braincore-batch``: the PyTorch engine with ``--batch`` samples in parallel (weight updates averaged);
- ``bindsnet``: ``bindsnet.models.DiehlAndCook2015`` (BindsNET's own version of the network: current-based,
  inhibition as a direct recurrent connection) run with ``network.run`` per sample, as its MNIST example does.

Default workloads (``--configs``): ``400x350x0.5`` (400 excitatory neurons, 350 steps of 0.5 ms: the issue's
figure) and ``100x250x1`` (100 neurons, 250 steps of 1 ms: BindsNET's example setting).

BindsNET install (it pins torch >= 2.14, which would pull CUDA wheels here; it runs on 2.13)::

    pip install --no-deps bindsnet==0.3.4 && pip install ale-py tensorboardX scikit-image scikit-learn pandas \\
        opencv-python-headless

It imports torchvision at import time for datasets this benchmark does not use; when the installed torchvision
cannot load (a wheel built for another torch), the worker gives it an empty stand-in module.

Example::

    python benchmarks/stdp.py --json-out benchmarks/results/stdp.json --table-out benchmarks/results/stdp.txt
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Any, Optional, Sequence

ROOT = Path(__file__).resolve().parent.parent
ENGINES = ("braincore-native", "braincore-parallel", "braincore-torch", "braincore-batch", "bindsnet")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _images(n: int):
    """``n`` MNIST training images ``[n, 28, 28]`` (uint8) from ../shared/data, or seeded random digits-like
    images (20 % of pixels lit) when the data is absent."""
    import numpy as np
    import torch

    try:
        from braincore.data import load_dataset

        images = load_dataset("train", as_torch=True).images[:n]
        return images, "mnist"
    except (FileNotFoundError, ImportError):
        rng = np.random.default_rng(0)
        lit = rng.random((n, 28, 28)) < 0.2
        return torch.from_numpy((lit * rng.integers(128, 256, (n, 28, 28))).astype(np.uint8)), "random"


def _stub_torchvision() -> None:
    """Give BindsNET an empty ``torchvision`` when the installed one cannot load (see the module docstring)."""
    try:
        import torchvision  # noqa: F401
        return
    except Exception:  # a torchvision built for another torch raises RuntimeError at import
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]

    class Stub(types.ModuleType):
        def __getattr__(self, name):
            if name.startswith("__"):
                raise AttributeError(name)
            if name[:1].isupper():
                value: Any = type(name, (object,), {"__init__": lambda self, *a, **k: None})
            else:
                value = Stub(f"{self.__name__}.{name}")
                sys.modules[value.__name__] = value
            setattr(self, name, value)
            return value

    for name in ("torchvision", "torchvision.models", "torchvision.datasets", "torchvision.transforms",
                 "torchvision.utils", "torchvision.datasets.utils"):
        sys.modules[name] = Stub(name)


# ------------------------------------------------------------------------------------------ workers
def _time_blocks(step, n_samples: int, warmup: int, repeat: int, per_call: int) -> list[float]:
    """Seconds per sample of ``repeat`` blocks of ``n_samples`` samples (``step(i)`` trains ``per_call``)."""
    i = 0
    while i < warmup:
        step(i)
        i += per_call
    out = []
    for _ in range(repeat):
        start, done = time.perf_counter(), 0
        while done < n_samples:
            step(i)
            i += per_call
            done += per_call
        out.append((time.perf_counter() - start) / done)
    return out


#: samples per timed call of the sequential native engine (DiehlCookNetwork.present_many, as the training shows them)
SAMPLES_IN_TURN = 25


def work_braincore(spec: dict) -> dict:
    import torch

    torch.set_num_threads(1)
    from braincore.networks.diehl_cook import DiehlCookNetwork, DiehlCookParams

    engine, n_exc, steps, dt = spec["engine"], spec["n_exc"], spec["steps"], spec["dt"]
    # samples per timed call: a batch of trials, a parallel batch, or (sequential native) samples shown in turn
    batch = {"braincore-batch": spec["batch"], "braincore-parallel": spec["parallel_batch"]}.get(
        engine, SAMPLES_IN_TURN)
    total = spec["warmup"] + spec["samples"] * spec["repeat"] + batch
    images, source = _images(total)
    rates = images.reshape(len(images), -1).double() / 4.0
    params = DiehlCookParams.from_mapping({"n_exc": n_exc, "dt": dt})
    native = engine in ("braincore-native", "braincore-parallel")
    net = DiehlCookNetwork(params, seed=0, backend="native" if native else "torch",
                           dtype=torch.float64 if native else torch.float32, steps=steps,
                           batch=batch if engine == "braincore-batch" else 1)
    spikes = []

    def learn_one(model, rows) -> int:  # normalised on the last step of each presentation
        if model.batch == 1:  # one sample after the other, in one run_trials call (as the training does)
            return int(model.present_many(rows, learn=True).sum())
        return int(model.present(rows, steps, learn=True).sum())

    def step(i: int) -> None:
        chunk = rates[i % len(rates):i % len(rates) + batch]
        if engine != "braincore-parallel":
            spikes.append(learn_one(net, chunk))
            return
        seeds = [i * 31 + k for k in range(spec["workers"])]
        spikes.append(sum(net.run_parallel(len(chunk), lambda worker, share: learn_one(
            worker, chunk[torch.as_tensor(share)]), seeds, learn=True)))

    times = _time_blocks(step, spec["samples"], spec["warmup"], spec["repeat"], batch)
    return {"s_per_sample_all": times, "spikes_per_sample": sum(spikes) / (len(spikes) * batch), "images": source,
            "batch": batch, "dtype": str(net.dtype).replace("torch.", "")}


def work_bindsnet(spec: dict) -> dict:
    import torch

    torch.set_num_threads(1)
    _stub_torchvision()
    from bindsnet.encoding import PoissonEncoder
    from bindsnet.models import DiehlAndCook2015

    n_exc, steps, dt = spec["n_exc"], spec["steps"], spec["dt"]
    total = spec["warmup"] + spec["samples"] * spec["repeat"] + 1
    images, source = _images(total)
    torch.manual_seed(0)
    # the settings of BindsNET's examples/mnist/eth_mnist.py
    net = DiehlAndCook2015(n_inpt=784, n_neurons=n_exc, exc=22.5, inh=120.0, dt=dt, norm=78.4, nu=(1e-4, 1e-2),
                           theta_plus=0.05, inpt_shape=(1, 28, 28))
    encoder = PoissonEncoder(time=int(steps * dt), dt=dt)
    from bindsnet.network.monitors import Monitor

    monitor = Monitor(net.layers["Ae"], state_vars=["s"], time=steps)
    net.add_monitor(monitor, name="Ae_spikes")
    spikes = []

    def step(i: int) -> None:
        image = images[i % len(images)].float()[None] / 4.0  # pixel / 4 Hz, as eth_mnist.py's intensity 128
        inputs = {"X": encoder(image).view(steps, 1, 1, 28, 28)}
        net.run(inputs=inputs, time=int(steps * dt))
        spikes.append(int(monitor.get("s").sum()))
        net.reset_state_variables()

    times = _time_blocks(step, spec["samples"], spec["warmup"], spec["repeat"], 1)
    return {"s_per_sample_all": times, "spikes_per_sample": sum(spikes) / len(spikes), "images": source,
            "batch": 1, "dtype": "float32"}


def worker(spec: dict) -> None:
    result = work_bindsnet(spec) if spec["engine"] == "bindsnet" else work_braincore(spec)
    result["peak_rss_mb"] = round(_peak_rss_mb(), 1)
    print(json.dumps(result))


# ------------------------------------------------------------------------------------------ driver
def run_one(spec: dict, python: str, timeout: float) -> Optional[dict]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    done = subprocess.run([python, __file__, "--worker", json.dumps(spec)], capture_output=True, text=True,
                          env=env, timeout=timeout)
    if done.returncode != 0:
        print(f"  {spec['engine']} failed:\n{done.stderr[-1500:]}", file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=ENGINES)
    parser.add_argument("--configs", nargs="+", default=["400x350x0.5", "100x250x1"],
                        help="NEURONSxSTEPSxDT_MS workloads")
    parser.add_argument("--samples", type=int, default=20, help="samples per timed block")
    parser.add_argument("--repeat", type=int, default=3, help="timed blocks; medians are reported")
    parser.add_argument("--warmup", type=int, default=3, help="untimed samples first")
    parser.add_argument("--batch", type=int, default=64, help="samples in parallel for braincore-batch")
    parser.add_argument("--workers", type=int, default=2, help="threads for braincore-parallel")
    parser.add_argument("--parallel-batch", type=int, default=16, help="samples per merge for braincore-parallel")
    parser.add_argument("--bindsnet-python", default=sys.executable, help="interpreter that has BindsNET")
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--table-out", type=Path)
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if args.worker:
        worker(json.loads(args.worker))
        return 0
    rows = []
    for config in args.configs:
        n_exc, steps, dt = config.split("x")
        for engine in args.engines:
            samples = args.samples * {"braincore-batch": args.batch,
                                      "braincore-parallel": args.parallel_batch}.get(engine, 1)
            if engine in ("braincore-torch", "bindsnet"):
                samples = max(5, args.samples // 2)  # the slow ones: fewer samples, same number of blocks
            spec = {"engine": engine, "n_exc": int(n_exc), "steps": int(steps), "dt": float(dt),
                    "samples": samples, "repeat": args.repeat, "warmup": args.warmup, "batch": args.batch,
                    "workers": args.workers, "parallel_batch": args.parallel_batch}
            print(f"{engine} {config} ...", file=sys.stderr, flush=True)
            python = args.bindsnet_python if engine == "bindsnet" else sys.executable
            result = run_one(spec, python, args.timeout)
            if result is None:
                continue
            median = statistics.median(result["s_per_sample_all"])
            row = {"engine": engine, "n_exc": int(n_exc), "steps": int(steps), "dt_ms": float(dt),
                   "s_per_sample": round(median, 6), "samples_per_s": round(1.0 / median, 1), **result}
            print(json.dumps(row), flush=True)
            rows.append(row)
    lines = [f"Diehl & Cook training presentation (STDP on), one thread (braincore-parallel: {args.workers} worker "
             f"threads, wall time per sample), median of {args.repeat} blocks",
             f"{'engine':<18} {'neurons':>7} {'steps':>5} {'dt':>4} {'batch':>5} {'ms/sample':>10} "
             f"{'samples/s':>10} {'spikes':>7} {'peak_MB':>8} {'vs bindsnet':>12}"]
    for r in rows:
        ref = next((q for q in rows if q["engine"] == "bindsnet" and q["n_exc"] == r["n_exc"]
                    and q["steps"] == r["steps"]), None)
        speed = f"{ref['s_per_sample'] / r['s_per_sample']:.1f}x" if ref else "-"
        lines.append(f"{r['engine']:<18} {r['n_exc']:>7} {r['steps']:>5} {r['dt_ms']:>4g} {r['batch']:>5} "
                     f"{1000 * r['s_per_sample']:>10.3f} {r['samples_per_s']:>10.1f} {r['spikes_per_sample']:>7.1f} "
                     f"{r['peak_rss_mb']:>8.0f} {speed:>12}")
    table = "\n".join(lines)
    print("\n" + table)
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps({"rows": rows, "args": {k: str(v) for k, v in vars(args).items()}},
                                            indent=1))
    if args.table_out:
        args.table_out.parent.mkdir(parents=True, exist_ok=True)
        args.table_out.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
