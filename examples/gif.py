"""The GIF neuron (Mensi et al. 2012; Pozzorini et al. 2015): its adaptation under a step current, and a small GIF
network trained by surrogate gradients through the model's generated step (braincore.training.DefinedLayer).

    python examples/gif.py --out docs            # writes docs/gif.png and prints the training losses

Left panel: V and the moving threshold V_T = V_T_star + gamma_1 + gamma_2 of one GIF neuron (NEST's fitted
defaults) under a 0.2 nA step; the interspike intervals lengthen as eta_k and gamma_k build up. Right panel: the
cross-entropy of a recurrent GIF layer (12 units) with a leaky read-out on a two-class Poisson task (seeded).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from braincore.neurons import get_model, inject_current
from braincore.training import DefinedLayer, LeakyReadout


def adaptation(current_na: float = 0.2, duration_ms: float = 500.0, dt: float = 0.1) -> dict:
    steps = int(round(duration_ms / dt))
    drive = np.zeros(steps)
    drive[int(round(50.0 / dt)):] = current_na
    clamp = inject_current(get_model("gif")(1, dt=dt), drive[:, None])
    p = get_model("gif").params_cls()
    threshold = p.V_T_star + clamp.traces["gamma_1"][:, 0] + clamp.traces["gamma_2"][:, 0]
    times = clamp.spike_times[0]
    return {"t": clamp.t, "v": clamp.v[:, 0], "threshold": threshold, "spike_times": times,
            "isi": np.diff(times)}


def train(iterations: int = 30, seed: int = 0) -> list[float]:
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    T, B, n_in, hidden = 40, 16, 20, 12
    labels = torch.arange(B) % 2
    rates = torch.full((B, n_in), 0.02)
    rates[labels == 0, :10] = 0.2
    rates[labels == 1, 10:] = 0.2
    x = (torch.rand(T, B, n_in, generator=g) < rates).float()
    layer = DefinedLayer(n_in, hidden, "gif", dt=1.0, recurrent=True, recurrent_gain=0.2, init_gain=2.0,
                         surrogate_params={"slope": 1.0}, generator=g)
    readout = LeakyReadout(hidden, 2, tau=20.0)
    optimiser = torch.optim.Adam(list(layer.parameters()) + list(readout.parameters()), lr=0.02)
    losses = []
    for _ in range(iterations):
        loss = torch.nn.functional.cross_entropy(readout(layer(x)).mean(0), labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    return losses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="gif_out", help="folder for gif.png and gif.json (default gif_out)")
    parser.add_argument("--iterations", type=int, default=30, help="training iterations (default 30)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    trace = adaptation()
    losses = train(args.iterations)
    isi = trace["isi"]
    print(f"GIF under 0.2 nA: {len(trace['spike_times'])} spikes in 450 ms; first ISI {isi[0]:.1f} ms, "
          f"last {isi[-1]:.1f} ms")
    print(f"training: cross-entropy {losses[0]:.3f} -> {losses[-1]:.3f} in {len(losses)} iterations")
    (out / "gif.json").write_text(json.dumps({"spike_times_ms": trace["spike_times"].tolist(), "losses": losses}))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6), gridspec_kw={"width_ratios": [2, 1]})
    left.plot(trace["t"], trace["v"], lw=0.8, label="V")
    left.plot(trace["t"], trace["threshold"], lw=0.8, label="V_T = V_T* + gamma_1 + gamma_2")
    left.set_xlabel("time (ms)")
    left.set_ylabel("mV")
    left.set_title("GIF, 0.2 nA step from 50 ms (NEST's fitted defaults)")
    left.legend(loc="lower right", fontsize=8)
    right.plot(np.arange(1, len(losses) + 1), losses, marker=".")
    right.set_xlabel("iteration")
    right.set_ylabel("cross-entropy")
    right.set_title("recurrent GIF layer, two-class task")
    fig.tight_layout()
    fig.savefig(out / "gif.png", dpi=120)
    print(f"wrote {out / 'gif.png'}")


if __name__ == "__main__":
    main()
