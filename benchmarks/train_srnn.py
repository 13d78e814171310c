"""Training-step time and peak memory of a recurrent spiking network, braincore vs snnTorch, SpikingJelly, Norse.

The SHD-shaped workload of issue 5: 700 sparse binary inputs (5 % density), T = 100 steps, batch 64, one
recurrent layer of 256 LIF units, 20 leaky-integrator outputs, cross-entropy on the maximum over time of the
read-out; one step = forward + backward + Adam. Every framework runs in its own process (so peak RSS is its
own), with the same thread count, ``OMP_WAIT_POLICY=PASSIVE`` (on a shared machine spinning threads can slow a
step many-fold), warm-up steps, then the median of repeated steps. The same run measures the FLOP/s of a large
``torch.matmul`` and states each step's arithmetic (dense FLOPs) divided by it: the machine's limit.

Every framework gets the same dense ``[T, B, 700]`` float tensor of binary spikes. braincore's ``LIFLayer``
detects that it is sparse (``sparse_input=None``) and computes the input current and its weight gradient from
the nonzero entries (``event_linear``), which the dense-FLOP limit does not assume; the peers multiply densely.

Peers are optional (``pip install --no-deps snntorch spikingjelly norse nir nirtorch loguru h5py``, which
keeps the installed torch); a missing one is reported and skipped. Usage::

    python benchmarks/train_srnn.py [--threads 2] [--steps 5] [--json-out F]

Prints one JSON row per framework and a table. A benchmark, not a test: timings never enter the test suite.
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

N_IN, N_HID, N_OUT, T, BATCH, DENSITY = 700, 256, 20, 100, 64, 0.05
TAU_MEM, TAU_OUT = 20.0, 20.0  # in steps


def step_flops() -> float:
    """Dense multiply-adds x 2 of one training step (forward and backward matmuls)."""
    fwd = 2 * T * BATCH * (N_IN * N_HID + N_HID * N_HID + N_HID * N_OUT)
    bwd = 2 * T * BATCH * (N_IN * N_HID + 2 * N_HID * N_HID + 2 * N_HID * N_OUT)  # no grad w.r.t. the inputs
    return float(fwd + bwd)


def matmul_flops_per_s(n: int = 2048, repeats: int = 5) -> float:
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.matmul(a, b)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        torch.matmul(a, b)
        times.append(time.perf_counter() - start)
    return 2.0 * n ** 3 / statistics.median(times)


# ------------------------------------------------------------------------------------------ models
def build(name: str):
    """(module, forward(x [T, B, N_IN]) -> read-out [T, B, N_OUT]) for one framework."""
    import math

    import torch
    from torch import nn

    beta, alpha = math.exp(-1.0 / TAU_MEM), math.exp(-1.0 / TAU_OUT)
    if name == "braincore":
        from braincore.training import LeakyReadout, LIFLayer

        model = nn.Sequential(LIFLayer(N_IN, N_HID, recurrent=True, tau_m=TAU_MEM, surrogate="fast_sigmoid"),
                              LeakyReadout(N_HID, N_OUT, tau=TAU_OUT))
        return model, model
    if name == "snntorch":
        import snntorch as snn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(N_IN, N_HID)
                self.lif = snn.RLeaky(beta=beta, linear_features=N_HID, reset_mechanism="subtract")
                self.out = nn.Linear(N_HID, N_OUT)

            def forward(self, x):
                cur = self.fc(x)
                spk, mem = self.lif.init_rleaky()
                y, ys = torch.zeros(x.shape[1], N_OUT), []
                for t in range(x.shape[0]):
                    spk, mem = self.lif(cur[t], spk, mem)
                    y = alpha * y + self.out(spk)
                    ys.append(y)
                return torch.stack(ys)

        model = Net()
        return model, model
    if name == "spikingjelly":
        from spikingjelly.activation_based import neuron, surrogate

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(N_IN, N_HID)
                self.rec = nn.Linear(N_HID, N_HID, bias=False)
                self.lif = neuron.LIFNode(tau=1.0 / (1.0 - beta), decay_input=False, v_reset=None,
                                          surrogate_function=surrogate.Sigmoid(), step_mode="s")
                self.out = nn.Linear(N_HID, N_OUT)

            def forward(self, x):
                from spikingjelly.activation_based import functional

                functional.reset_net(self)
                cur = self.fc(x)
                spk = torch.zeros(x.shape[1], N_HID)
                y, ys = torch.zeros(x.shape[1], N_OUT), []
                for t in range(x.shape[0]):
                    spk = self.lif(cur[t] + self.rec(spk))
                    y = alpha * y + self.out(spk)
                    ys.append(y)
                return torch.stack(ys)

        model = Net()
        return model, model
    if name == "norse":
        import norse.torch as norse

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.cell = norse.LIFRecurrentCell(N_IN, N_HID)
                self.out = norse.LILinearCell(N_HID, N_OUT)

            def forward(self, x):
                s_h, s_o, ys = None, None, []
                for t in range(x.shape[0]):
                    z, s_h = self.cell(x[t], s_h)
                    y, s_o = self.out(z, s_o)
                    ys.append(y)
                return torch.stack(ys)

        model = Net()
        return model, model
    raise ValueError(f"unknown framework {name!r}")


def measure(name: str, threads: int, steps: int, warmup: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model, forward = build(name)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(1)
    x = (torch.rand(T, BATCH, N_IN, generator=g) < DENSITY).float()
    labels = torch.randint(0, N_OUT, (BATCH,), generator=g)
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        opt.zero_grad()
        out = forward(x)
        loss = torch.nn.functional.cross_entropy(out.max(dim=0).values, labels)
        loss.backward()
        opt.step()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return {"framework": name, "threads": threads, "median_step_s": statistics.median(times),
            "min_step_s": min(times), "steps": steps, "peak_rss_mib": round(peak_mib, 1),
            "loss": float(loss.detach())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--frameworks", default="braincore,snntorch,spikingjelly,norse")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--json-out")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.threads, args.steps, args.warmup)))
        return
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), OMP_WAIT_POLICY="PASSIVE")
    import torch

    torch.set_num_threads(args.threads)
    limit = matmul_flops_per_s()
    flops = step_flops()
    rows = []
    for name in args.frameworks.split(","):
        proc = subprocess.run([sys.executable, __file__, "--one", name, "--threads", str(args.threads),
                               "--steps", str(args.steps), "--warmup", str(args.warmup)],
                              capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["failed"])[-1]
            rows.append({"framework": name, "error": last})
        else:
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    done = [r for r in rows if "median_step_s" in r]
    peers = [r for r in done if r["framework"] != "braincore"]
    ours = next((r for r in done if r["framework"] == "braincore"), None)
    print(f"\nmatmul {limit / 1e9:.0f} GFLOP/s on {args.threads} threads; a step's dense arithmetic "
          f"{flops / 1e9:.2f} GFLOP -> machine limit {flops / limit:.3f} s")
    print(f"{'framework':<14}{'median step s':>15}{'peak RSS MiB':>14}{'x limit':>9}{'vs braincore':>14}")
    for r in done:
        rel = r["median_step_s"] / ours["median_step_s"] if ours else float("nan")
        print(f"{r['framework']:<14}{r['median_step_s']:>15.3f}{r['peak_rss_mib']:>14.0f}"
              f"{r['median_step_s'] / (flops / limit):>9.1f}{rel:>14.2f}")
    if ours and peers:
        fastest = min(peers, key=lambda r: r["median_step_s"])
        ratio = fastest["median_step_s"] / ours["median_step_s"]
        print(f"fastest peer {fastest['framework']}: braincore is {ratio:.2f}x its speed")
    if args.json_out:
        with open(args.json_out, "w") as fh:
            json.dump({"matmul_flops_per_s": limit, "step_flops": flops, "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
