"""Recorders for the simulator: spikes (bounded memory), state variables of chosen neurons, population rates.

Monitors preallocate their buffers for a run (``prepare(steps)``) and copy into them with one tensor write a
step; nothing grows a Python list in the hot loop. All outputs are CPU numpy arrays via :meth:`data`.

- :class:`SpikeMonitor`: ``(step, trial, neuron)`` triples of every spike, up to ``max_spikes`` (default 10
  million); beyond that spikes are counted but not stored, and ``dropped`` says how many.
- :class:`StateMonitor`: variables of chosen neurons after each step, ``[T, B, n]`` per variable.
- :class:`RateMonitor`: the population rate (Hz, mean over neurons) in bins of ``bin`` ms, ``[bins, B]``.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch

Tensor = torch.Tensor


class SpikeMonitor:
    """All spikes of one population, as index triples, with a hard memory bound.

    Each step's spikes wait as ``(step, [K, 2] trial-neuron indices)`` until :data:`PENDING_STEPS` steps have
    spikes, then are counted and joined into one ``[n, 3]`` chunk of triples: a step costs no tensor operation.
    Reading :attr:`counts`, :meth:`data`, :meth:`state_dict` and :meth:`add_triples` join what waits first, so
    what they see is always exact."""

    #: steps with spikes that wait (as index tensors) before they are counted and joined into one chunk
    PENDING_STEPS = 1024

    def __init__(self, name: str, target: str, size: int, max_spikes: Optional[int] = None):
        self.name, self.target, self.size = name, target, size
        self.max_spikes = int(max_spikes) if max_spikes is not None else 10_000_000
        self._chunks: list[Tensor] = []
        self._pending: list[tuple[int, Tensor, int]] = []  # (step, indices, how many of them are stored)
        self.stored = 0
        self.dropped = 0
        self._counts: Optional[Tensor] = None

    @property
    def counts(self) -> Optional[Tensor]:
        """Spikes per ``[B, N]`` (int64), always exact."""
        if self._pending:
            self._join_pending()
        return self._counts

    @counts.setter
    def counts(self, value: Optional[Tensor]) -> None:
        if self._pending:
            self._join_pending()
        self._counts = value

    def prepare(self, steps: int, batch: int, device, dtype) -> None:
        if self.counts is None:
            self.counts = torch.zeros(batch, self.size, device=device, dtype=torch.int64)

    def reset_counts(self) -> None:
        """Start the per-neuron counts afresh (from the next run): spikes per window of a closed loop, e.g. an
        agent's decision period (the stored triples are kept)."""
        self.counts = None

    def record(self, step: int, spikes: Tensor, fired: Optional[Tensor] = None) -> None:
        """Count and store the spikes of step ``step`` (``spikes`` ``[B, N]``, a spike where ``> 0``).
        ``fired``: their ``(trial, neuron)`` indices ``[K, 2]`` when the caller has them already
        (``spikes.nonzero()`` of 0/1 spikes); the monitor keeps it, unmodified."""
        idx = (spikes > 0).nonzero() if fired is None else fired
        count = idx.shape[0]
        if count == 0:
            return
        kept = min(count, max(self.max_spikes - self.stored, 0))
        self.dropped += count - kept
        self.stored += kept
        self._pending.append((step, idx, kept))
        if len(self._pending) >= self.PENDING_STEPS:
            self._join_pending()

    def _join_pending(self) -> None:
        """Count the waiting spikes and join the stored ones into one chunk of ``(step, trial, neuron)``."""
        pending, self._pending = self._pending, []
        if not pending:
            return
        idx = torch.cat([i for _, i, _ in pending])
        one = torch.ones((), device=idx.device, dtype=torch.int64)
        self._counts.index_put_((idx[:, 0], idx[:, 1]), one, accumulate=True)
        kept = [(s, i if n == i.shape[0] else i[:n]) for s, i, n in pending if n]
        if kept:
            if any(n < i.shape[0] for _, i, n in pending):  # some beyond max_spikes: counted, not stored
                idx = torch.cat([i for _, i in kept])
            steps = torch.tensor([s for s, _ in kept], dtype=idx.dtype, device=idx.device)
            lengths = torch.tensor([i.shape[0] for _, i in kept], device=idx.device)
            step_col = torch.repeat_interleave(steps, lengths, output_size=idx.shape[0])
            self._chunks.append(torch.cat([step_col[:, None], idx], dim=1))

    def add_triples(self, triples: Tensor) -> None:
        """Append ``[n, 3]`` triples recorded elsewhere (the native engine), after those waiting."""
        self._join_pending()
        self._chunks.append(triples)
        self.stored += triples.shape[0]

    def data(self, dt: float) -> dict:
        self._join_pending()
        triples = torch.cat(self._chunks).cpu().numpy() if self._chunks else np.zeros((0, 3), np.int64)
        return {"t": triples[:, 0] * dt, "step": triples[:, 0], "trial": triples[:, 1], "neuron": triples[:, 2],
                "counts": self.counts.cpu().numpy() if self.counts is not None else None,
                "dropped": self.dropped}

    def state_dict(self) -> dict:
        self._join_pending()
        triples = torch.cat(self._chunks) if self._chunks else torch.zeros(0, 3, dtype=torch.int64)
        return {"triples": triples.cpu(), "dropped": self.dropped,
                "counts": self.counts.cpu() if self.counts is not None else None}

    def load_state_dict(self, state: dict, device) -> None:
        self._pending = []
        self._chunks = [state["triples"].to(device)] if state["triples"].numel() else []
        self.stored = int(state["triples"].shape[0])
        self.dropped = int(state["dropped"])
        self.counts = state["counts"].to(device) if state["counts"] is not None else None


class StateMonitor:
    """Chosen state variables of chosen neurons after every step."""

    def __init__(self, name: str, target: str, variables: Sequence[str], neurons: Optional[Sequence[int]] = None):
        self.name, self.target = name, target
        self.variables = list(variables)
        self.neurons = None if neurons is None else torch.as_tensor(list(neurons), dtype=torch.long)
        self._buffers: dict[str, list[Tensor]] = {v: [] for v in self.variables}
        self._current: dict[str, Tensor] = {}
        self._filled = 0

    def prepare(self, steps: int, batch: int, device, dtype, size: int) -> None:
        n = size if self.neurons is None else len(self.neurons)
        if self.neurons is not None:
            self.neurons = self.neurons.to(device)
        self._current = {v: torch.empty(steps, batch, n, device=device, dtype=dtype) for v in self.variables}
        for v in self.variables:
            self._buffers[v].append(self._current[v])
        self._filled = 0

    def record(self, state) -> None:
        for v in self.variables:
            value = getattr(state, v)
            self._current[v][self._filled] = value if self.neurons is None else value.index_select(1, self.neurons)
        self._filled += 1

    def data(self, dt: float) -> dict:
        out = {v: torch.cat(chunks).cpu().numpy() if chunks else np.zeros((0,)) for v, chunks in self._buffers.items()}
        steps = next(iter(out.values())).shape[0] if out else 0
        out["t"] = (np.arange(steps) + 1) * dt  # values after each step, i.e. at t_{k+1}
        return out

    def state_dict(self) -> dict:
        return {v: (torch.cat(chunks).cpu() if chunks else None) for v, chunks in self._buffers.items()}

    def load_state_dict(self, state: dict, device) -> None:
        self._buffers = {v: ([t.to(device)] if t is not None else []) for v, t in state.items()}


class RateMonitor:
    """Population rate in Hz (mean over the population's neurons) per time bin, per trial."""

    def __init__(self, name: str, target: str, size: int, bin_ms: float, dt: float):
        self.name, self.target, self.size = name, target, size
        self.steps_per_bin = max(1, int(round(bin_ms / dt)))
        self.bin_ms = self.steps_per_bin * dt
        self._bins: list[Tensor] = []
        self._acc: Optional[Tensor] = None
        self._in_bin = 0

    def prepare(self, steps: int, batch: int, device, dtype) -> None:
        if self._acc is None:
            self._acc = torch.zeros(batch, device=device, dtype=torch.float64)

    def record(self, spikes: Tensor) -> None:
        self._acc += spikes.sum(dim=1, dtype=torch.float64)
        self._in_bin += 1
        if self._in_bin == self.steps_per_bin:
            self._bins.append(self._acc / (self.size * self.bin_ms / 1000.0))
            self._acc = torch.zeros_like(self._acc)
            self._in_bin = 0

    def record_counts(self, counts: Tensor) -> None:
        """Record many steps at once from spike counts ``[steps, B]`` (the native engine's output)."""
        i, steps = 0, counts.shape[0]
        while i < steps:
            take = min(self.steps_per_bin - self._in_bin, steps - i)
            self._acc += counts[i:i + take].to(self._acc.device).sum(dim=0, dtype=torch.float64)
            self._in_bin += take
            i += take
            if self._in_bin == self.steps_per_bin:
                self._bins.append(self._acc / (self.size * self.bin_ms / 1000.0))
                self._acc = torch.zeros_like(self._acc)
                self._in_bin = 0

    def data(self, dt: float) -> dict:
        rates = torch.stack(self._bins).cpu().numpy() if self._bins else np.zeros((0, 0))
        return {"t": np.arange(len(self._bins)) * self.bin_ms, "rate_hz": rates, "bin_ms": self.bin_ms}

    def state_dict(self) -> dict:
        return {"bins": torch.stack(self._bins).cpu() if self._bins else None,
                "acc": self._acc.cpu() if self._acc is not None else None, "in_bin": self._in_bin}

    def load_state_dict(self, state: dict, device) -> None:
        self._bins = list(state["bins"].to(device)) if state["bins"] is not None else []
        self._acc = state["acc"].to(device) if state["acc"] is not None else None
        self._in_bin = int(state["in_bin"])
