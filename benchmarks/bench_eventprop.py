"""Training-step time and memory of EventProp against BPTT with surrogate gradients on the same SHD-sized network.

Nowotny, Turner & Knight (2025) report their GeNN EventProp 3x faster and using 4x less memory than a leading
surrogate-gradient BPTT implementation on SHD. This benchmark measures braincore's own pair on one workload:
700 inputs (a batch of the synthetic SHD-like set, :mod:`braincore.data.synthetic_shd`, ~1 s of events), one
recurrent layer of 256 current-based LIF neurons (tau_mem 20 ms, tau_syn 5 ms, threshold 1), 20 leaky-integrator
outputs, T = 1000 steps of 1 ms, batch 32, cross-entropy on the exponentially weighted sum of the read-out voltage;
one step = forward + backward + Adam. Variants:

- ``eventprop``: :class:`braincore.training.eventprop_grid.EventPropRSNN` (event lists in, spikes stored, exact
  adjoint, event-driven propagation);
- ``bptt_cuba``: the same current-based recurrent LIF network stepped in a torch time loop and trained by BPTT
  through braincore's fast-sigmoid surrogate (:mod:`braincore.surrogate`), dense ``[T, B, 700]`` input;
- ``bptt_lif``: braincore's fused recurrent :class:`~braincore.training.layers.LIFLayer` (a voltage-based LIF,
  no synaptic current: braincore's fastest BPTT path) with a :class:`~braincore.training.layers.LeakyReadout`.

Each variant runs in its own process (peak RSS is its own) with the same thread count and
``OMP_WAIT_POLICY=PASSIVE``; after warm-up steps the median step time is taken. Memory: the process's peak RSS, and the
peak RSS of the training steps alone (the kernel's ``VmHWM`` reset just before the first step) minus the RSS
then: the training step's working memory, without the interpreter, torch, the model and the data. Usage::

    python benchmarks/bench_eventprop.py [--threads 1] [--steps 5] [--json-out benchmarks/results/eventprop.json]

A benchmark, not a test: timings never enter the test suite.
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

N_IN, N_HID, N_OUT, T, BATCH = 700, 256, 20, 1000, 32
TAU_MEM, TAU_SYN, DT = 20.0, 5.0, 1.0
VARIANTS = ("eventprop", "bptt_cuba", "bptt_lif")


def _rss_mib() -> float:
    """The process's peak RSS so far (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _status_mib(field: str) -> float:
    """``VmRSS`` or ``VmHWM`` (the peak since the last reset) from ``/proc/self/status`` (MiB; NaN off Linux)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return float(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark (``VmHWM``; Linux >= 4.0), so that the training steps' own peak can be
    read afterwards."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _batch(dense_input: bool = True):
    """``(InputEvents, dense x [T, B, 700], labels, readout weights [T])`` of one synthetic SHD batch."""
    import numpy as np
    import torch

    from braincore.data.synthetic_shd import synthetic_shd_samples
    from braincore.training.eventprop_grid import GridParams, input_events

    times, units, labels = synthetic_shd_samples(BATCH, 0)
    step = np.concatenate([np.floor(t * 1e3 / DT).astype(np.int64) for t in times])
    sample = np.repeat(np.arange(BATCH), [len(t) for t in times])
    chan = np.concatenate(units).astype(np.int64)
    keep = step < T
    step, sample, chan = step[keep], sample[keep], chan[keep]
    events = input_events(torch.from_numpy(step), torch.from_numpy(sample), torch.from_numpy(chan), BATCH, T)
    dense = torch.zeros(T, BATCH, N_IN) if dense_input else torch.zeros(0)
    if dense_input:
        dense.index_put_((torch.from_numpy(step), torch.from_numpy(sample), torch.from_numpy(chan)),
                         torch.ones(len(step)), accumulate=True)
    params = GridParams(TAU_MEM, TAU_SYN, 1.0, DT, T, "sum_exp")
    return events, dense, torch.from_numpy(labels), params.weights(torch.device("cpu"), torch.float32) * DT, params


def build(name: str):
    """``(model, step_loss() -> loss)`` of one variant."""
    import math

    import torch
    from torch import nn

    events, dense, labels, wk, params = _batch(dense_input=name != "eventprop")
    torch.manual_seed(0)
    if name == "eventprop":
        from braincore.training.eventprop_grid import EventPropLoss, EventPropRSNN

        model = EventPropRSNN(N_IN, N_HID, N_OUT, params)
        loss_fn = EventPropLoss(14.0, 1e-4)

        def step_loss():
            y, hidden = model(events)
            return loss_fn(y, labels, hidden).loss
        return model, step_loss
    if name == "bptt_cuba":
        from braincore.surrogate import get_surrogate

        spike = get_surrogate("fast_sigmoid")
        alpha, beta = math.exp(-DT / TAU_MEM), math.exp(-DT / TAU_SYN)
        a, b = 1.0 / TAU_MEM, 1.0 / TAU_SYN
        gamma = a * (math.exp(-a * DT) - math.exp(-b * DT)) / (b - a)

        class Cuba(nn.Module):
            def __init__(self):
                super().__init__()
                self.w_in = nn.Parameter(torch.randn(N_IN, N_HID) * 0.01 + 0.03)
                self.w_rec = nn.Parameter(torch.randn(N_HID, N_HID) * 0.02)
                self.w_out = nn.Parameter(torch.randn(N_HID, N_OUT) * 0.03)

            def forward(self, x):
                cur = x @ self.w_in
                B = x.shape[1]
                V = I = x.new_zeros(B, N_HID)
                U = J = y = x.new_zeros(B, N_OUT)
                s = x.new_zeros(B, N_HID)
                for t in range(x.shape[0]):
                    I = beta * I + cur[t] + s @ self.w_rec
                    J = beta * J + s @ self.w_out
                    V = alpha * V + gamma * I
                    U = alpha * U + gamma * J
                    s = spike(V - 1.0)
                    V = V - s
                    y = y + wk[t] * U
                return y

        model = Cuba()

        def step_loss():
            return nn.functional.cross_entropy(model(dense), labels)
        return model, step_loss
    if name == "bptt_lif":
        from braincore.training import LeakyReadout, LIFLayer

        model = nn.Sequential(LIFLayer(N_IN, N_HID, recurrent=True, tau_m=TAU_MEM / DT, surrogate="fast_sigmoid"),
                              LeakyReadout(N_HID, N_OUT, tau=TAU_MEM / DT))

        def step_loss():
            out = model(dense)                                   # [T, B, C]
            return nn.functional.cross_entropy((out * wk[:, None, None]).sum(0), labels)
        return model, step_loss
    raise ValueError(f"unknown variant {name!r}")


def measure(name: str, threads: int, steps: int, warmup: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    model, step_loss = build(name)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    import gc

    gc.collect()
    before = _status_mib("VmRSS")
    reset = _reset_peak()
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        opt.zero_grad()
        loss = step_loss()
        loss.backward()
        opt.step()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    peak = _rss_mib()
    step_peak = _status_mib("VmHWM") if reset else peak
    return {"variant": name, "threads": threads, "median_step_s": round(statistics.median(times), 4),
            "min_step_s": round(min(times), 4), "steps": steps, "peak_rss_mib": round(peak, 1),
            "step_rss_growth_mib": round(step_peak - before, 1), "loss": round(float(loss.detach()), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--json-out")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.threads, args.steps, args.warmup)))
        return
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), OMP_WAIT_POLICY="PASSIVE")
    rows = []
    for name in args.variants.split(","):
        proc = subprocess.run([sys.executable, __file__, "--one", name, "--threads", str(args.threads),
                               "--steps", str(args.steps), "--warmup", str(args.warmup)],
                              capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            rows.append({"variant": name, "error": (proc.stderr.strip().splitlines() or ["failed"])[-1]})
        else:
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    done = {r["variant"]: r for r in rows if "median_step_s" in r}
    ratios = {}
    if "eventprop" in done:
        ep = done["eventprop"]
        print(f"\n{'variant':<12}{'median step s':>15}{'peak RSS MiB':>14}{'step growth MiB':>17}{'time / EP':>11}"
              f"{'growth / EP':>13}")
        for name, r in done.items():
            t_ratio = r["median_step_s"] / ep["median_step_s"]
            m_ratio = r["step_rss_growth_mib"] / max(ep["step_rss_growth_mib"], 1e-9)
            if name != "eventprop":
                ratios[name] = {"time_ratio": round(t_ratio, 2), "memory_growth_ratio": round(m_ratio, 2),
                                "peak_rss_ratio": round(r["peak_rss_mib"] / ep["peak_rss_mib"], 2)}
            print(f"{name:<12}{r['median_step_s']:>15.3f}{r['peak_rss_mib']:>14.0f}{r['step_rss_growth_mib']:>17.0f}"
                  f"{t_ratio:>11.2f}{m_ratio:>13.2f}")
    if args.json_out:
        result = {"workload": {"n_in": N_IN, "hidden": N_HID, "out": N_OUT, "steps_T": T, "dt_ms": DT,
                               "batch": BATCH, "tau_mem_ms": TAU_MEM, "tau_syn_ms": TAU_SYN},
                  "threads": args.threads, "rows": rows, "ratios_vs_eventprop": ratios,
                  "paper": "Nowotny, Turner & Knight 2025: GeNN EventProp 3x faster, 4x less memory than "
                           "surrogate-gradient BPTT (GPU)"}
        existing = {}
        if os.path.exists(args.json_out):
            with open(args.json_out) as fh:
                existing = json.load(fh)
        existing[f"threads_{args.threads}"] = result
        with open(args.json_out, "w") as fh:
            json.dump(existing, fh, indent=1)


if __name__ == "__main__":
    main()
