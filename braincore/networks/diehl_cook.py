"""The Diehl & Cook (2015) network: unsupervised digit learning with STDP, lateral inhibition and adaptive
thresholds.

P. U. Diehl and M. Cook, "Unsupervised learning of digit recognition using spike-timing-dependent plasticity",
Front. Comput. Neurosci. 9:99 (2015), and the authors' Brian code (``Diehl_and_Cook_spiking_MNIST.py``), whose
numbers are the defaults here.

**Architecture.** ``n_in`` Poisson inputs (one per pixel) -> ``n_exc`` excitatory neurons (all-to-all, plastic
weights ``w`` in ``[0, w_max]``) -> one inhibitory partner each (one-to-one, ``w_ei``), which inhibits every
other excitatory neuron (``w_ie``): a soft winner-take-all.

**Neurons** (conductances ``g`` are dimensionless, in units of the leak conductance; mV, ms)::

    excitatory:  tau_e dv/dt = (v_rest_e - v) + g_e (E_exc_e - v) + g_i (E_inh_e - v)
                 spike when v > v_th_e + theta and timer > t_hold;  v <- v_reset_e, clamped for t_ref_e,
                 theta <- theta + theta_plus, timer <- 0;  dtheta/dt = -theta / tau_theta;  dtimer/dt = timer_rate
    inhibitory:  tau_i du/dt = (v_rest_i - u) + g_e (E_exc_i - u) + g_i (E_inh_i - u)
                 spike when u > v_th_i (not refractory);  u <- v_reset_i, clamped for t_ref_i
    synapses:    dg_e/dt = -g_e / tau_ge,  dg_i/dt = -g_i / tau_gi;  a spike adds its weight to g

``v_th_e`` is the paper's ``v_thresh_e - offset`` = -52 - 20 = -72 mV with ``theta`` starting at 20 mV. The
timer reproduces the original code's ``dtimer/dt = 100 ms/s`` (``timer_rate = 0.1``): with ``t_hold = 5 ms``
an excitatory neuron can fire again only 50 ms after a spike.

**STDP** on the input weights (the code's "pre-and-post" rule: nearest-spike traces set to 1 at a spike)::

    input spike i:       pre_i <- 1;   w_ij <- max(0, w_ij - nu_pre post1_j)                 for all j
    excitatory spike j:  w_ij <- min(w_max, w_ij + nu_post pre_i post2_j);  post1_j, post2_j <- 1
    traces decay exactly: pre (tau_pre 20 ms), post1 (tau_post1 20 ms), post2 (tau_post2 40 ms)

``post2`` is read before its own reset (the code's ``post2before``). This is braincore's ``triplet_stdp`` with
nearest pairing, ``A2_plus = 0``, ``A3_plus = nu_post``, ``A2_minus = nu_pre``, ``A3_minus = 0``,
``tau_plus = tau_pre``, ``tau_minus = tau_post1``, ``tau_y = tau_post2``.

**Step order** (dt = 0.5 ms), as in Brian: (1) forward Euler for every neuron variable from the previous step's
conductances (the original Brian 1 code integrated these non-linear equations with Euler), exact decay of the
STDP traces; (2) thresholds; (3) synapses: input spikes, then excitatory, then inhibitory spikes, each adding to
conductances that act from the next step (zero synaptic delay), with the STDP updates; (4) resets.

**Protocol** (one presentation): the state starts at rest (``v = v_rest``, conductances and traces zero; the
original code instead simulates a 150 ms pause, over which these relax most of the way; theta, whose time
constant is 10^4 s, is kept); input ``i`` spikes with probability ``rate_i dt`` per step, ``rate_i = pixel_i /
8 * intensity`` Hz (intensity 2: at most 63.75 Hz). Before each training presentation the input weights of each
excitatory neuron are scaled to sum to ``norm_total`` (78 for 784 inputs). With fewer than ``min_spikes``
excitatory spikes, the sample is shown again with the intensity raised by one.

**Engines.** ``native`` (C, one sample at a time, float64: exactly the paper's sequential learning) and
``torch`` (any device and dtype, a batch of ``B`` samples in parallel: every trial sees the same weights and the
weight and theta changes are averaged over the batch; for ``B = 1`` it is the same computation as the native
engine).

**Divergence from the paper:** the random input delays (0-10 ms) of the original code are left out, as in
BindsNET's version; the pause between samples is a reset (see Protocol).
"""
from __future__ import annotations

import ctypes
import math
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch

from ..errors import ConfigError
from ..params import NeuronParams, param

Tensor = torch.Tensor


@dataclass(frozen=True)
class DiehlCookParams(NeuronParams):
    """Parameters of :class:`DiehlCookNetwork` (defaults: Diehl & Cook 2015, the authors' code)."""

    n_in: Any = param(784, "dimensionless", "inputs (pixels)")
    n_exc: Any = param(400, "dimensionless", "excitatory neurons (and as many inhibitory)")
    dt: Any = param(0.5, "time", "time step")
    v_rest_e: Any = param(-65.0, "voltage", "excitatory resting potential")
    v_reset_e: Any = param(-65.0, "voltage", "excitatory reset")
    v_th_e: Any = param(-72.0, "voltage", "excitatory threshold without theta (v_thresh_e - offset)")
    tau_e: Any = param(100.0, "time", "excitatory membrane time constant")
    E_exc_e: Any = param(0.0, "voltage", "excitatory reversal potential (excitatory neurons)")
    E_inh_e: Any = param(-100.0, "voltage", "inhibitory reversal potential (excitatory neurons)")
    tau_ge_e: Any = param(1.0, "time", "excitatory conductance decay (excitatory neurons)")
    tau_gi_e: Any = param(2.0, "time", "inhibitory conductance decay (excitatory neurons)")
    t_ref_e: Any = param(5.0, "time", "excitatory refractory period (membrane clamped)")
    t_hold: Any = param(5.0, "time", "the timer must exceed this to fire")
    timer_rate: Any = param(0.1, "dimensionless", "timer speed (ms per ms): 0.1 holds 50 ms after a spike")
    theta_init: Any = param(20.0, "voltage", "initial adaptive threshold theta")
    theta_plus: Any = param(0.05, "voltage", "theta increment per spike")
    tau_theta: Any = param(1e7, "time", "theta decay")
    v_rest_i: Any = param(-60.0, "voltage", "inhibitory resting potential")
    v_reset_i: Any = param(-45.0, "voltage", "inhibitory reset")
    v_th_i: Any = param(-40.0, "voltage", "inhibitory threshold")
    tau_i: Any = param(10.0, "time", "inhibitory membrane time constant")
    E_exc_i: Any = param(0.0, "voltage", "excitatory reversal potential (inhibitory neurons)")
    E_inh_i: Any = param(-85.0, "voltage", "inhibitory reversal potential (inhibitory neurons)")
    tau_ge_i: Any = param(1.0, "time", "excitatory conductance decay (inhibitory neurons)")
    tau_gi_i: Any = param(2.0, "time", "inhibitory conductance decay (inhibitory neurons)")
    t_ref_i: Any = param(2.0, "time", "inhibitory refractory period")
    w_ei: Any = param(10.4, "dimensionless", "excitatory -> inhibitory partner weight (leak units)")
    w_ie: Any = param(17.0, "dimensionless", "inhibitory -> other excitatory weight (leak units)")
    tau_pre: Any = param(20.0, "time", "presynaptic trace decay")
    tau_post1: Any = param(20.0, "time", "postsynaptic depression trace decay")
    tau_post2: Any = param(40.0, "time", "postsynaptic potentiation trace decay")
    nu_pre: Any = param(1e-4, "dimensionless", "depression rate")
    nu_post: Any = param(1e-2, "dimensionless", "potentiation rate")
    w_max: Any = param(1.0, "dimensionless", "upper weight bound")
    w_init_max: Any = param(0.3, "dimensionless", "initial weights ~ 0.3 (U(0, 1) + 0.01)")
    norm_total: Any = param(78.0, "dimensionless", "sum of each neuron's input weights (0: no normalisation)")


_C_FIELDS = ("dt", "v_rest_e", "v_reset_e", "v_th_e", "tau_e", "E_exc_e", "E_inh_e", "tau_ge_e", "tau_gi_e",
             "t_ref_e", "t_hold", "timer_rate", "theta_plus", "tau_theta", "v_rest_i", "v_reset_i", "v_th_i", "tau_i",
             "E_exc_i", "E_inh_i", "tau_ge_i", "tau_gi_i", "t_ref_i", "w_ei", "w_ie", "tau_pre", "tau_post1",
             "tau_post2", "nu_pre", "nu_post", "w_max")


class _DCNet(ctypes.Structure):
    _fields_ = ([(name, ctypes.c_int32) for name in ("n_in", "n_exc", "T", "learn", "adapt", "pad")]
                + [(name, ctypes.c_double) for name in _C_FIELDS]
                + [("w", ctypes.c_void_p), ("theta", ctypes.c_void_p), ("rng", ctypes.c_void_p)])


@lru_cache(maxsize=None)
def _library() -> ctypes.CDLL:
    from ..native.build import NativeUnavailable, compile_and_load

    lib = compile_and_load(Path(__file__).resolve().parent.parent / "native" / "diehl_cook.c", "diehl_cook")
    lib.dc_abi_version.restype = ctypes.c_int32
    if lib.dc_abi_version() != 1:
        raise NativeUnavailable("diehl_cook.c: unexpected ABI version")
    lib.dc_present.restype = ctypes.c_int64
    lib.dc_present.argtypes = [ctypes.c_void_p] * 5
    lib.dc_normalize.restype = None
    lib.dc_normalize.argtypes = [ctypes.c_void_p, ctypes.c_double]
    lib.dc_seed.restype = None
    lib.dc_seed.argtypes = [ctypes.c_void_p, ctypes.c_uint64]
    return lib


def native_available() -> Optional[str]:
    """``None`` when the native engine can be used, else the reason it cannot."""
    from ..native.build import NativeUnavailable

    try:
        _library()
        return None
    except NativeUnavailable as err:
        return str(err)


class DiehlCookNetwork:
    """The network's learnable state (``w [n_in, n_exc]``, ``theta [n_exc]`` mV) and its two engines.

    ``present(rates_hz, ...)`` shows a batch of inputs ``[B, n_in]`` (Hz) for ``steps`` steps and returns the
    excitatory spike counts ``[B, n_exc]``. ``backend``: ``"native"`` (CPU, float64, one sample after the
    other), ``"torch"`` (batched, any device/dtype) or ``"auto"`` (native when available on the CPU).
    """

    def __init__(self, params: Optional[DiehlCookParams] = None, *, seed: int = 0, backend: str = "auto",
                 device: Any = "cpu", dtype: torch.dtype = torch.float64):
        self.p = params or DiehlCookParams()
        self.n_in, self.n_exc = int(self.p.n_in), int(self.p.n_exc)
        if self.n_in < 1 or self.n_exc < 1 or (self.n_in, self.n_exc) != (self.p.n_in, self.p.n_exc):
            raise ConfigError(f"diehl_cook: n_in and n_exc must be positive integers, got {self.p.n_in}, "
                              f"{self.p.n_exc}")
        if backend not in ("auto", "native", "torch"):
            raise ConfigError(f"diehl_cook: unknown backend {backend!r}; use auto, native or torch")
        self.device = torch.device(device)
        reason = native_available() if self.device.type == "cpu" else "the native engine runs on the CPU only"
        if backend == "native" and reason:
            raise ConfigError(f"diehl_cook: backend 'native' is unavailable: {reason}")
        self.backend = "native" if backend in ("auto", "native") and reason is None else "torch"
        self.dtype = torch.float64 if self.backend == "native" else dtype
        p = self.p
        gen = torch.Generator().manual_seed(seed)
        w = (torch.rand(self.n_in, self.n_exc, generator=gen, dtype=torch.float64) + 0.01) * p.w_init_max
        self.w = w.to(self.device, self.dtype).contiguous()
        self.theta = torch.full((self.n_exc,), float(p.theta_init), dtype=self.dtype, device=self.device)
        self.torch_rng = torch.Generator(device=self.device).manual_seed(seed + 1)
        self.native_rng = np.zeros(4, dtype=np.uint64)
        if self.backend == "native":
            _library().dc_seed(self.native_rng.ctypes.data, ctypes.c_uint64(seed + 1))

    # ---------------------------------------------------------------------------------------------- weights
    def normalize(self) -> None:
        """Scale each excitatory neuron's input weights to sum to ``norm_total`` (no-op when it is 0)."""
        total = float(self.p.norm_total)
        if total <= 0:
            return
        sums = self.w.sum(dim=0)
        scale = torch.where(sums > 0, total / sums, torch.ones_like(sums))
        self.w.mul_(scale)

    # ---------------------------------------------------------------------------------------------- running
    def present(self, rates_hz: Tensor, steps: int, *, learn: bool, adapt: Optional[bool] = None,
                input_spikes: Optional[Tensor] = None, return_inhibitory: bool = False):
        """Show ``rates_hz [B, n_in]`` for ``steps`` steps from rest; returns spike counts ``[B, n_exc]``.

        ``learn``: STDP on; ``adapt`` (default: ``learn``): theta rises and decays. ``input_spikes
        [steps, B, n_in]`` replaces the Poisson draw (for tests and replays).
        """
        adapt = learn if adapt is None else adapt
        rates_hz = torch.as_tensor(rates_hz)
        if rates_hz.dim() != 2 or rates_hz.shape[1] != self.n_in:
            raise ValueError(f"diehl_cook: rates must be [B, {self.n_in}] Hz, got {tuple(rates_hz.shape)}")
        if input_spikes is not None and tuple(input_spikes.shape) != (steps, *rates_hz.shape):
            raise ValueError(f"diehl_cook: input_spikes must be [{steps}, {rates_hz.shape[0]}, {self.n_in}], "
                             f"got {tuple(input_spikes.shape)}")
        if self.backend == "native":
            return self._present_native(rates_hz, steps, learn, adapt, input_spikes, return_inhibitory)
        return self._present_torch(rates_hz, steps, learn, adapt, input_spikes, return_inhibitory)

    def _present_native(self, rates_hz, steps, learn, adapt, input_spikes, return_inhibitory):
        p, lib = self.p, _library()
        net = _DCNet(n_in=self.n_in, n_exc=self.n_exc, T=steps, learn=int(learn), adapt=int(adapt), pad=0,
                     **{name: float(getattr(p, name)) for name in _C_FIELDS})
        net.w, net.theta, net.rng = self.w.data_ptr(), self.theta.data_ptr(), self.native_rng.ctypes.data
        probs = np.ascontiguousarray((rates_hz.detach().cpu().double() * (p.dt / 1000.0)).numpy())
        B = probs.shape[0]
        counts = np.zeros((B, self.n_exc), dtype=np.int64)
        inh = np.zeros((B, self.n_exc), dtype=np.int64)
        spikes = None
        if input_spikes is not None:
            spikes = np.ascontiguousarray(input_spikes.detach().cpu().numpy().astype(np.uint8).transpose(1, 0, 2))
        for b in range(B):
            explicit = spikes[b].ctypes.data if spikes is not None else None
            lib.dc_present(ctypes.byref(net), explicit, probs[b].ctypes.data, counts[b].ctypes.data,
                           inh[b].ctypes.data)
        counts_t = torch.from_numpy(counts)
        return (counts_t, torch.from_numpy(inh)) if return_inhibitory else counts_t

    def _present_torch(self, rates_hz, steps, learn, adapt, input_spikes, return_inhibitory):
        p, dev, dt_ = self.p, self.device, self.dtype
        B, n = rates_hz.shape[0], self.n_exc
        prob = (rates_hz.to(dev, dt_) * (p.dt / 1000.0))
        dt = float(p.dt)
        full = lambda value: torch.full((B, n), float(value), dtype=dt_, device=dev)  # noqa: E731
        zeros = lambda: torch.zeros(B, n, dtype=dt_, device=dev)  # noqa: E731
        v_e, v_i = full(p.v_rest_e), full(p.v_rest_i)
        ge_e, gi_e, ge_i, gi_i, ref_e, ref_i = (zeros() for _ in range(6))
        timer = full(p.t_hold + 1.0)
        post1, post2 = zeros(), zeros()
        pre = torch.zeros(B, self.n_in, dtype=dt_, device=dev)
        counts, inh_counts = zeros(), zeros()
        d_pre, d_p1, d_p2 = (math.exp(-dt / t) for t in (p.tau_pre, p.tau_post1, p.tau_post2))
        a_ge_e, a_gi_e, a_ge_i, a_gi_i = (1.0 - dt / t for t in (p.tau_ge_e, p.tau_gi_e, p.tau_ge_i, p.tau_gi_i))
        theta_keep = 1.0 - dt / p.tau_theta
        w, theta = self.w, self.theta
        for k in range(steps):
            # (1) forward Euler from the previous step's values
            dv = ((p.v_rest_e - v_e) + ge_e * (p.E_exc_e - v_e) + gi_e * (p.E_inh_e - v_e)) / p.tau_e
            refractory = ref_e > 0
            v_e = torch.where(refractory, v_e, v_e + dt * dv)
            ref_e = torch.where(refractory, ref_e - dt, ref_e)
            ge_e, gi_e = ge_e * a_ge_e, gi_e * a_gi_e
            if adapt:
                theta.mul_(theta_keep)
            timer = timer + dt * p.timer_rate
            du = ((p.v_rest_i - v_i) + ge_i * (p.E_exc_i - v_i) + gi_i * (p.E_inh_i - v_i)) / p.tau_i
            refractory_i = ref_i > 0
            v_i = torch.where(refractory_i, v_i, v_i + dt * du)
            ref_i = torch.where(refractory_i, ref_i - dt, ref_i)
            ge_i, gi_i = ge_i * a_ge_i, gi_i * a_gi_i
            post1, post2, pre = post1 * d_p1, post2 * d_p2, pre * d_pre
            # (2) thresholds
            fired_e = ((v_e > p.v_th_e + theta) & (timer > p.t_hold)).to(dt_)
            fired_i = ((v_i > p.v_th_i) & (ref_i <= 0)).to(dt_)
            # (3) synapses: inputs (with depression), excitatory (with potentiation), inhibitory
            if input_spikes is not None:
                s_in = input_spikes[k].to(dev, dt_)
            else:
                s_in = (torch.rand(B, self.n_in, generator=self.torch_rng, device=dev, dtype=dt_) < prob).to(dt_)
            ge_e = ge_e + s_in @ w
            if learn:
                rows = s_in.any(dim=0).nonzero().squeeze(1)
                if rows.numel():
                    pre = torch.where(s_in > 0, torch.ones_like(pre), pre)
                    w[rows] = (w[rows] - p.nu_pre * (s_in[:, rows].t() @ post1) / B).clamp_(min=0.0)
            ge_i = ge_i + p.w_ei * fired_e
            counts += fired_e
            if learn:
                cols = fired_e.any(dim=0).nonzero().squeeze(1)
                if cols.numel():
                    gain = fired_e[:, cols] * post2[:, cols] * p.nu_post
                    w[:, cols] = (w[:, cols] + (pre.t() @ gain) / B).clamp_(max=p.w_max)
                    post1 = torch.where(fired_e > 0, torch.ones_like(post1), post1)
                    post2 = torch.where(fired_e > 0, torch.ones_like(post2), post2)
            gi_e = gi_e + p.w_ie * (fired_i.sum(dim=1, keepdim=True) - fired_i)
            inh_counts += fired_i
            # (4) resets
            spiked, spiked_i = fired_e > 0, fired_i > 0
            v_e = torch.where(spiked, torch.full_like(v_e, p.v_reset_e), v_e)
            ref_e = torch.where(spiked, torch.full_like(ref_e, p.t_ref_e), ref_e)
            timer = torch.where(spiked, torch.zeros_like(timer), timer)
            if adapt:
                theta.add_(fired_e.mean(dim=0), alpha=p.theta_plus)
            v_i = torch.where(spiked_i, torch.full_like(v_i, p.v_reset_i), v_i)
            ref_i = torch.where(spiked_i, torch.full_like(ref_i, p.t_ref_i), ref_i)
        counts = counts.round().long().cpu()
        return (counts, inh_counts.round().long().cpu()) if return_inhibitory else counts

    # ---------------------------------------------------------------------------------------------- workers
    def worker(self, seed: int) -> "DiehlCookNetwork":
        """A copy for a parallel worker: its own weights, thresholds and random stream (seeded by ``seed``),
        the same parameters and engine. Learn on it, then :meth:`merge` the workers back."""
        clone = object.__new__(DiehlCookNetwork)
        clone.__dict__.update(self.__dict__)
        clone.w, clone.theta = self.w.clone(), self.theta.clone()
        clone.torch_rng = torch.Generator(device=self.device).manual_seed(int(seed))
        clone.native_rng = np.zeros(4, dtype=np.uint64)
        if self.backend == "native":
            _library().dc_seed(clone.native_rng.ctypes.data, ctypes.c_uint64(int(seed)))
        return clone

    def run_parallel(self, n_items: int, work: Callable[["DiehlCookNetwork", np.ndarray], Any],
                     seeds: Sequence[int], learn: bool) -> list:
        """Split ``range(n_items)`` into ``len(seeds)`` contiguous shares and call ``work(worker, share)`` for
        each on its own :meth:`worker` copy (seeded by ``seeds[k]``) in parallel threads (the native engine
        releases the GIL); with ``learn`` the workers' changes are then averaged in (:meth:`merge`). Returns
        the results of ``work`` in share order."""
        from concurrent.futures import ThreadPoolExecutor

        k_workers = max(1, min(len(seeds), n_items))
        shares = np.array_split(np.arange(n_items), k_workers)
        workers = [self.worker(seed) for seed in seeds[:k_workers]]
        with ThreadPoolExecutor(max_workers=k_workers) as pool:
            results = list(pool.map(work, workers, shares))
        if learn:
            self.merge(workers)
        return results

    def merge(self, workers: Sequence["DiehlCookNetwork"]) -> None:
        """Average the workers' changes into this network: ``w <- w + mean_k (w_k - w)``, same for ``theta``
        (model averaging; the workers started from this network's state)."""
        if not workers:
            return
        self.w.copy_(torch.stack([k.w for k in workers]).mean(dim=0))
        self.theta.copy_(torch.stack([k.theta for k in workers]).mean(dim=0))

    # ---------------------------------------------------------------------------------------------- state
    def state_dict(self) -> dict:
        return {"w": self.w.detach().cpu().clone(), "theta": self.theta.detach().cpu().clone(),
                "torch_rng": self.torch_rng.get_state() if self.device.type == "cpu" else torch.zeros(0),
                "native_rng": torch.from_numpy(self.native_rng.view(np.int64).copy()),
                "params": torch.tensor([float(getattr(self.p, f)) for f in ("n_in", "n_exc")])}

    def load_state_dict(self, state: dict) -> None:
        if tuple(state["w"].shape) != tuple(self.w.shape):
            raise ValueError(f"diehl_cook: checkpoint weights {tuple(state['w'].shape)} do not fit this network "
                             f"{tuple(self.w.shape)}")
        self.w.copy_(state["w"].to(self.w))
        self.theta.copy_(state["theta"].to(self.theta))
        if state["torch_rng"].numel() and self.device.type == "cpu":
            self.torch_rng.set_state(state["torch_rng"])
        self.native_rng[:] = state["native_rng"].numpy().view(np.uint64)

    def params_dict(self) -> dict:
        return asdict(self.p)
