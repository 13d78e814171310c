"""The Diehl & Cook (2015) network: unsupervised digit learning with STDP, lateral inhibition and adaptive
thresholds.

P. U. Diehl and M. Cook, "Unsupervised learning of digit recognition using spike-timing-dependent plasticity",
Front. Comput. Neurosci. 9:99 (2015), and the authors' Brian code (``Diehl_and_Cook_spiking_MNIST.py``), whose
numbers are the defaults here.

**Architecture.** ``n_in`` Poisson inputs (one per pixel) -> ``n_exc`` excitatory neurons (all-to-all, plastic
weights ``w`` in ``[0, w_max]``) -> one inhibitory partner each (one-to-one, ``w_ei``), which inhibits every
other excitatory neuron (``w_ie``): a soft winner-take-all.

**The network is an Assembly** (:func:`diehl_cook_assembly`), run by braincore's generic engines like any
other: the native C engine on the CPU (generated from the definitions below), the PyTorch engine elsewhere.
Populations: ``input`` (``n_in`` Poisson sources, :mod:`braincore.neurons.poisson`: each fires in a step where
its Poisson count is at least one),
``exc`` (the model :data:`EXCITATORY_MODEL`), ``inh`` (braincore's ``lif``, Euler). Conductances are
dimensionless, in units of the leak conductance (``g_L = 1 nS``: a weight of 1 nS is one leak conductance); mV,
ms::

    excitatory:  tau_e dv/dt = (v_rest_e - v) + g_e (E_exc_e - v) + g_i (E_inh_e - v)
                 spike when v > v_th_e + theta and timer > t_hold;  v <- v_reset_e, clamped for t_ref_e,
                 theta <- theta + theta_plus, timer <- 0;  dtheta/dt = -theta / tau_theta;  dtimer/dt = timer_rate
    inhibitory:  tau_i du/dt = (v_rest_i - u) + g_e (E_exc_i - u) + g_i (E_inh_i - u)
                 spike when u >= v_th_i (not refractory);  u <- v_reset_i, clamped for t_ref_i
    synapses:    conductance kernels: dg/dt = -g / tau (exact decay); a spike adds its weight to g one step later

``v_th_e`` is the paper's ``v_thresh_e - offset`` = -52 - 20 = -72 mV with ``theta`` starting at 20 mV. The
timer reproduces the original code's ``dtimer/dt = 100 ms/s`` (``timer_rate = 0.1``): with ``t_hold = 5 ms``
an excitatory neuron can fire again only 50 ms after a spike. Membrane equations are integrated with forward
Euler, as the authors' Brian 1 code did.

**Projections:** ``input -> exc`` all-to-all, plastic, initial weights ``U(0.003, 0.303)`` (the code's
``(U(0, 1) + 0.01) * 0.3``); ``exc -> inh`` one-to-one, ``w_ei``; ``inh -> exc`` all-to-all without the
partner, ``w_ie``.

**STDP** on the input weights (the code's "pre-and-post" rule: nearest-spike traces set to 1 at a spike) is
braincore's ``triplet_stdp`` rule with nearest pairing, ``A2_plus = 0``, ``A3_plus = nu_post``, ``A2_minus =
nu_pre``, ``A3_minus = 0``, ``tau_plus = tau_pre``, ``tau_minus = tau_post1``, ``tau_y = tau_post2``::

    input spike i:       pre_i <- 1;   w_ij <- w_ij - nu_pre post1_j                        for all j
    excitatory spike j:  w_ij <- w_ij + nu_post pre_i post2_j;  post1_j, post2_j <- 1
    then w clipped to [0, w_max]; traces decay exactly: pre (tau_pre), post1 (tau_post1), post2 (tau_post2)

``post2`` is read before its own reset (the code's ``post2before``). Weight normalisation (braincore's
``normalize`` rule, ``total = norm_total``) runs in the same rule chain on the last step of every training
presentation, so each presentation starts from normalised weights, as in the paper (and once at construction).

**Protocol** (one presentation, :meth:`DiehlCookNetwork.present`): the network rests
(:meth:`braincore.simulator.Simulator.rest`: ``v = v_rest``, conductances, traces and spikes in flight cleared;
``theta`` and the weights kept; the original code instead simulates a 150 ms pause, over which these relax most
of the way; theta, whose time constant is 10^4 s, is kept); input ``i`` fires in a step with probability
``1 - exp(-rate_i dt)`` (the code: ``rate_i dt``; they differ by at most 5e-4 at 63.75 Hz and 0.5 ms),
``rate_i = pixel_i / 8 * intensity`` Hz. With fewer than ``min_spikes`` excitatory spikes, the task shows the
sample again with the intensity raised by one. Learning uses one simulator (STDP, normalisation, theta rising
and decaying) and testing another (no plasticity, theta frozen), sharing the weights and thresholds.

**Batches** of ``B`` samples run as ``B`` trials of one simulation: every trial sees the same weights, the weight
changes are averaged over the trials (the generic engines' rule), and so are the threshold changes (theta is
averaged over the trials after each presentation). ``B = 1`` is the paper's sequential learning.

**Divergence from the paper:** the random input delays (0-10 ms) of the original code are left out, as in
BindsNET's version; the pause between samples is a reset (see Protocol); conductances decay exactly rather than
by Euler steps (at dt = 0.5 ms and tau = 1 ms Euler halves ``g`` per step, exact decay keeps 61 %: the same
weight carries 27 % more charge, which the learned weights and thresholds absorb).
"""
from __future__ import annotations

import ctypes
from dataclasses import asdict
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch

from ..devices import resolve_device
from ..errors import ConfigError
from .diehl_cook_graph import EXCITATORY_MODEL, diehl_cook_assembly  # without PyTorch (config validation)
from .params import DiehlCookParams  # the record, importable without PyTorch

Tensor = torch.Tensor


def native_available() -> Optional[str]:
    """``None`` when the native engine can be used, else the reason it cannot."""
    from ..native.build import NativeUnavailable, load_library

    try:
        load_library("float64")
        return None
    except NativeUnavailable as err:
        return str(err)


class DiehlCookNetwork:
    """The network's learnable state and its protocol, on braincore's generic engines.

    Two simulators of :func:`diehl_cook_assembly` share the weights ``w`` and thresholds ``theta``: one learns,
    one tests (built when first needed). ``present(rates_hz, learn=...)`` shows a batch ``[B, n_in]`` (Hz) for
    ``steps`` steps from rest and returns the excitatory spike counts ``[B, n_exc]``.

    ``backend``: ``"native"`` (the C engine; CPU), ``"torch"`` (any device) or ``"auto"`` (native when the
    machine can build it and the device is the CPU). ``dtype``: float64 by default on both engines.
    """

    def __init__(self, params: Optional[DiehlCookParams] = None, *, seed: int = 0, backend: str = "auto",
                 device: Any = "cpu", dtype: torch.dtype = torch.float64, steps: int = 700, batch: int = 1):
        self.p = params or DiehlCookParams()
        self.n_in, self.n_exc = int(self.p.n_in), int(self.p.n_exc)
        if self.n_in < 1 or self.n_exc < 1 or (self.n_in, self.n_exc) != (self.p.n_in, self.p.n_exc):
            raise ConfigError(f"diehl_cook: n_in and n_exc must be positive integers, got {self.p.n_in}, "
                              f"{self.p.n_exc}")
        if backend not in ("auto", "native", "torch"):
            raise ConfigError(f"diehl_cook: unknown backend {backend!r}; use auto, native or torch")
        if int(steps) < 1 or int(batch) < 1:
            raise ConfigError(f"diehl_cook: steps and batch must be >= 1, got {steps}, {batch}")
        self.device = resolve_device(device, native=backend == "native")
        reason = native_available() if self.device.type == "cpu" else "the native engine runs on the CPU only"
        if backend == "native" and reason:
            raise ConfigError(f"diehl_cook: backend 'native' is unavailable: {reason}")
        self.backend = "native" if backend in ("auto", "native") and reason is None else "torch"
        self.dtype = dtype
        self.steps, self.batch, self.seed = int(steps), int(batch), int(seed)
        self._sims: dict = {}
        self._current: Optional[bool] = None  # which simulator holds the up-to-date weights and thresholds
        train = self._sim(True)
        self._current = True
        self._normalize_now(train)

    # ---------------------------------------------------------------------------------------------- simulators
    def _sim(self, learn: bool):
        """The learning or the testing simulator (built once)."""
        if learn not in self._sims:
            from ..simulator import Simulator

            assembly = diehl_cook_assembly(self.p, learn=learn, steps=self.steps, seed=self.seed)
            dtype = "float64" if self.dtype == torch.float64 else "float32"
            sim = Simulator(assembly, batch=self.batch, device=str(self.device), dtype=dtype,
                            backend=self.backend, seed=self.seed + (0 if learn else 1))
            self._sims[learn] = sim
        return self._sims[learn]

    def _activate(self, learn: bool):
        """The simulator for ``learn``, holding the current weights and thresholds."""
        sim = self._sim(learn)
        if self._current is not None and self._current != learn:
            source = self._sims[self._current]
            sim.projections[0].weight.copy_(source.projections[0].weight)
            sim.populations["exc"].state.theta.copy_(source.populations["exc"].state.theta)
        self._current = learn
        return sim

    @property
    def simulator(self):
        """The simulator that holds the current weights and thresholds."""
        return self._sims[self._current]

    def _normalize_now(self, sim) -> None:
        from ..plasticity import Normalize

        if float(self.p.norm_total) > 0:
            Normalize({"total": float(self.p.norm_total)}).apply(sim.projections[0].view)

    # ---------------------------------------------------------------------------------------------- state
    @property
    def w(self) -> torch.Tensor:
        """The input weights as a matrix ``[n_in, n_exc]`` (leak units; a copy)."""
        proj = self.simulator.projections[0]
        pre = torch.repeat_interleave(torch.arange(proj.n_pre, device=proj.indptr.device), proj.indptr.diff())
        dense = torch.zeros(self.n_in, self.n_exc, dtype=proj.weight.dtype, device=proj.weight.device)
        dense[pre, proj.post_idx] = proj.weight
        return dense

    @property
    def theta(self) -> torch.Tensor:
        """The adaptive thresholds ``[n_exc]`` (mV; one per neuron, equal across trials)."""
        return self.simulator.populations["exc"].state.theta[0].clone()

    def normalize(self) -> None:
        """Scale each excitatory neuron's input weights to sum to ``norm_total`` now (no-op when it is 0). The
        learning simulator also does it on the last step of every presentation."""
        self._normalize_now(self.simulator)

    # ---------------------------------------------------------------------------------------------- running
    def present(self, rates_hz: torch.Tensor, steps: Optional[int] = None, *, learn: bool,
                return_inhibitory: bool = False):
        """Show ``rates_hz [B, n_in]`` (``B`` at most the network's ``batch``) for ``steps`` steps (the
        network's) from rest; returns the excitatory spike counts ``[B, n_exc]`` (and the inhibitory ones).
        With fewer samples than trials the spare trials get no input (no spikes, no weight changes, but the
        mean over the trials still divides by ``batch``)."""
        if steps is not None and int(steps) != self.steps:
            raise ValueError(f"diehl_cook: this network presents for {self.steps} steps (its normalisation phase); "
                             f"got steps={steps}: build it with steps={steps}")
        rates_hz = torch.as_tensor(rates_hz)
        if rates_hz.dim() != 2 or rates_hz.shape[1] != self.n_in or not 1 <= rates_hz.shape[0] <= self.batch:
            raise ValueError(f"diehl_cook: rates must be [B, {self.n_in}] Hz with 1 <= B <= {self.batch}, got "
                             f"{tuple(rates_hz.shape)}")
        n = rates_hz.shape[0]
        sim = self._activate(learn)
        sim.rest(keep={"exc": ["theta"]})
        if n == self.batch:
            full = rates_hz.detach()
        else:  # the spare trials get no input
            full = torch.zeros(self.batch, self.n_in, dtype=torch.float64)
            full[:n] = rates_hz.detach().to("cpu", torch.float64)
        sim.set_poisson_rate("input", full)
        monitors = {m.name: m for m in sim.monitors}
        for m in monitors.values():
            m.reset_counts()
        sim.run(self.steps * float(self.p.dt))
        if learn and self.batch > 1:  # one threshold per neuron: the trials' changes averaged
            theta = sim.populations["exc"].state.theta
            theta.copy_(theta.mean(dim=0, keepdim=True).expand_as(theta))
        counts = monitors["exc_spikes"].counts[:n].cpu().clone()
        if return_inhibitory:
            return counts, monitors["inh_spikes"].counts[:n].cpu().clone()
        return counts

    def present_many(self, rates_hz: torch.Tensor, *, learn: bool, stop_below: int = 0) -> torch.Tensor:
        """Show the samples ``rates_hz [K, n_in]`` one after another, each as :meth:`present` shows it (a network
        of ``batch`` 1), in one :meth:`~braincore.simulator.Simulator.run_trials` (on the native engine, one
        call into C per 10,000 steps). ``stop_below > 0``: stop after the first sample that evoked fewer than
        ``stop_below`` excitatory spikes. Returns the counts ``[K', n_exc]`` of the ``K' <= K`` samples shown."""
        if self.batch != 1:
            raise ValueError(f"diehl_cook: present_many shows one sample at a time (a network of batch 1); this "
                             f"one has batch {self.batch}: use present")
        rates_hz = torch.as_tensor(rates_hz)
        if rates_hz.dim() != 2 or rates_hz.shape[1] != self.n_in or rates_hz.shape[0] < 1:
            raise ValueError(f"diehl_cook: rates must be [K, {self.n_in}] Hz with K >= 1, got "
                             f"{tuple(rates_hz.shape)}")
        sim = self._activate(learn)
        counts = sim.run_trials(self.steps * float(self.p.dt), {"input": rates_hz.detach()}, counts="exc_spikes",
                                keep={"exc": ["theta"]}, stop_below=stop_below)
        return counts["exc_spikes"][:, 0].clone()

    # ---------------------------------------------------------------------------------------------- workers
    def worker(self, seed: int) -> "DiehlCookNetwork":
        """A copy for a parallel worker: its own simulators and random streams (seeded by ``seed``), this
        network's weights and thresholds, the same parameters and engine. Learn on it, then :meth:`merge`."""
        clone = DiehlCookNetwork(self.p, seed=int(seed), backend=self.backend, device=self.device,
                                 dtype=self.dtype, steps=self.steps, batch=1)
        clone.copy_from(self)
        return clone

    def copy_from(self, other: "DiehlCookNetwork") -> None:
        """Take ``other``'s weights and thresholds (same shapes)."""
        sim, src = self.simulator, other.simulator
        sim.projections[0].weight.copy_(src.projections[0].weight)
        theta = sim.populations["exc"].state.theta
        theta.copy_(src.populations["exc"].state.theta[:1].expand_as(theta))

    def run_parallel(self, n_items: int, work: Callable[["DiehlCookNetwork", np.ndarray], Any],
                     seeds: Sequence[int], learn: bool) -> list:
        """Split ``range(n_items)`` into ``len(seeds)`` contiguous shares and call ``work(worker, share)`` for
        each on its own worker (reseeded with ``seeds[k]``, starting from this network's state) in parallel
        threads (the native engine releases the GIL); with ``learn`` the workers' changes are then averaged in
        (:meth:`merge`). Workers are built once and reused. Returns the results of ``work`` in share order."""
        from concurrent.futures import ThreadPoolExecutor

        k_workers = max(1, min(len(seeds), n_items))
        shares = np.array_split(np.arange(n_items), k_workers)
        pool_of = getattr(self, "_workers", None) or []
        while len(pool_of) < k_workers:
            pool_of.append(self.worker(seeds[len(pool_of)]))
        self._workers = pool_of
        workers = pool_of[:k_workers]
        for worker, seed in zip(workers, seeds):
            worker.copy_from(self)
            worker.reseed(seed)
        with ThreadPoolExecutor(max_workers=k_workers) as pool:
            results = list(pool.map(work, workers, shares))
        if learn:
            self.merge(workers)
        return results

    def merge(self, workers: Sequence["DiehlCookNetwork"]) -> None:
        """Average the workers' weights and thresholds into this network (model averaging; the workers started
        from this network's state, so this adds the mean of their changes)."""
        if not workers:
            return
        sim = self.simulator
        sim.projections[0].weight.copy_(torch.stack([k.simulator.projections[0].weight for k in workers]).mean(0))
        theta = sim.populations["exc"].state.theta
        theta.copy_(torch.stack([k.theta for k in workers]).mean(0).expand_as(theta))

    def reseed(self, seed: int) -> None:
        """Restart both simulators' random streams from ``seed`` (testing from ``seed + 1``)."""
        for learn, sim in self._sims.items():
            _reseed(sim, int(seed) + (0 if learn else 1))

    # ---------------------------------------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        sim = self.simulator
        out = {"w": sim.projections[0].weight.detach().cpu().clone(), "theta": self.theta.cpu(),
               "learning": torch.tensor(int(bool(self._current))), "n": torch.tensor([self.n_in, self.n_exc])}
        for learn, s in self._sims.items():
            tag = "train" if learn else "test"
            out[f"{tag}_rng"] = _rng_state(s)
            for proj in s.projections:
                for key, value in (proj.rule_state or {}).items():
                    if value.dtype == torch.int64 and value.dim() == 0:
                        out[f"{tag}_counter/{key}"] = value.detach().cpu().clone()
        return out

    def load_state_dict(self, state: dict) -> None:
        if tuple(state["n"].tolist()) != (self.n_in, self.n_exc):
            raise ValueError(f"diehl_cook: checkpoint of a {tuple(state['n'].tolist())} network does not fit this "
                             f"network {(self.n_in, self.n_exc)}")
        learning = bool(int(state["learning"]))
        sim = self._sim(learning)
        self._current = learning
        sim.projections[0].weight.copy_(state["w"].to(sim.projections[0].weight))
        theta = sim.populations["exc"].state.theta
        theta.copy_(state["theta"].to(theta).expand_as(theta))
        for learn in (True, False):
            tag = "train" if learn else "test"
            if f"{tag}_rng" not in state:
                continue
            s = self._sim(learn)
            _load_rng_state(s, state[f"{tag}_rng"])
            for proj in s.projections:
                for key in list((proj.rule_state or {}).keys()):
                    saved = state.get(f"{tag}_counter/{key}")
                    if saved is not None:
                        proj.rule_state[key].copy_(saved)

    def params_dict(self) -> dict:
        return asdict(self.p)


def _rng_state(sim) -> torch.Tensor:
    """The simulator's random stream as one int64 tensor: the native generator's words or torch's state."""
    engine = sim.native_engine()
    if engine is not None:
        return engine.rng_tensor()
    return sim.rng.get_state().to(torch.int64) if sim.device.type == "cpu" else torch.zeros(0, dtype=torch.int64)


def _load_rng_state(sim, state: torch.Tensor) -> None:
    engine = sim.native_engine()
    if engine is not None:
        engine.load_rng_tensor(state)
    elif state.numel() and sim.device.type == "cpu":
        sim.rng.set_state(state.to(torch.uint8))


def _reseed(sim, seed: int) -> None:
    engine = sim.native_engine()
    if engine is not None:
        engine.lib.bc_seed(engine.rng_state.ctypes.data, ctypes.c_uint64((seed + 1) & (2 ** 64 - 1)))
    sim.rng.manual_seed(seed + 1)


__all__ = ["DiehlCookNetwork", "DiehlCookParams", "EXCITATORY_MODEL", "diehl_cook_assembly", "native_available"]
