"""Plots as PNG files: voltage traces with spikes, galleries of models. Needs the ``plot`` extra (matplotlib).

All functions write a file and return its path; they never open windows (the Agg backend is used).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError("plots need matplotlib: pip install 'braincore[plot]'") from err

from .neurons.injection import ClampResult

PathLike = Union[str, Path]


def _draw_trace(ax, result: ClampResult, index: int = 0, stimulus: Optional[tuple] = None) -> None:
    t_end = result.t + (result.t[1] - result.t[0] if len(result.t) > 1 else 0.0)  # v[k] is the value at t_{k+1}
    ax.plot(t_end, result.v[:, index], lw=0.8, color="#1f4e79")
    spikes = result.spike_times[index]
    if len(spikes):
        top = max(float(np.max(result.v[:, index])), -40.0)
        ax.plot(spikes, np.full(len(spikes), top + 5.0), "|", color="#c0392b", ms=6)
    if stimulus is not None:
        ax.axvspan(stimulus[0], stimulus[1], color="#f4d03f", alpha=0.15, lw=0)
    ax.set_xlim(0, t_end[-1] if len(t_end) else 1)
    ax.grid(alpha=0.3, lw=0.5)


def plot_trace(result: ClampResult, path: PathLike, *, title: str = "", stimulus: Optional[tuple] = None,
               current: Optional[np.ndarray] = None, unit: str = "") -> Path:
    """One neuron's membrane potential (spikes marked above it) and, optionally, the injected current."""
    rows = 2 if current is not None else 1
    fig, axes = plt.subplots(rows, 1, figsize=(8, 3.2 + 1.3 * (rows - 1)), sharex=True,
                             gridspec_kw={"height_ratios": [3, 1][:rows]}, squeeze=False)
    _draw_trace(axes[0, 0], result, 0, stimulus)
    axes[0, 0].set_ylabel("v (mV)")
    axes[0, 0].set_title(title)
    if current is not None:
        axes[1, 0].plot(result.t, current, color="#7d3c98", lw=0.8, drawstyle="steps-post")
        axes[1, 0].set_ylabel(f"I ({unit})" if unit and unit != "1" else "I")
        axes[1, 0].grid(alpha=0.3, lw=0.5)
    axes[-1, 0].set_xlabel("time (ms)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def plot_gallery(results: Sequence[ClampResult], labels: Sequence[str], path: PathLike, *, title: str = "",
                 columns: int = 2, stimulus: Optional[tuple] = None) -> Path:
    """A grid of voltage traces, one panel per model, with the stimulus window shaded."""
    n = len(results)
    columns = max(1, min(columns, n))
    rows = (n + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(5.2 * columns, 2.1 * rows), squeeze=False, sharex=True)
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.axis("off")
            continue
        _draw_trace(ax, results[i], 0, stimulus)
        ax.set_title(labels[i], fontsize=9)
        if i % columns == 0:
            ax.set_ylabel("v (mV)")
    for ax in axes[-1]:
        ax.set_xlabel("time (ms)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
