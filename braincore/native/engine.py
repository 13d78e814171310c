"""The native CPU engine: runs a :class:`~braincore.simulator.Simulator`'s loop in compiled C.

The PyTorch engine pays a fixed interpreter and dispatch cost of roughly 100-200 microseconds per time step
whatever the network's size, which dominates networks of up to tens of thousands of neurons. This engine
hands the whole loop to ``kernel.c`` (compiled once per machine, :mod:`.build`): the C code reads and writes
the simulator's own tensors in place (neuron state, synaptic variables, ring buffers, weights, spike counts),
so checkpoints, monitors and the PyTorch engine all see one state, and a run may switch engines between calls.

Supported (anything else makes ``backend: auto`` fall back to PyTorch, and ``backend: native`` fail with the
reason): CPU tensors in float32 or float64; LIF (exact or Euler), IF and ALIF populations with per-population
(scalar) parameters (a surrogate spike function changes only gradients, and the simulator runs without); every synaptic kernel and delay; Poisson, constant, step and
time-varying current inputs; spike and rate monitors.

In float64 the engine reproduces the PyTorch engine's spikes bit for bit on networks without Poisson inputs
(same operations in the same order). Poisson inputs are drawn with the kernel's own generator (xoshiro256**,
seeded from the simulator's seed), reproducible and checkpointed, but a different stream from PyTorch's.
"""
from __future__ import annotations

import ctypes
import math
from typing import Optional

import numpy as np
import torch

from .build import NativeUnavailable, load_library

c_int32, c_int64, c_double, c_void_p = ctypes.c_int32, ctypes.c_int64, ctypes.c_double, ctypes.c_void_p
P_int32, P_int64 = ctypes.POINTER(ctypes.c_int32), ctypes.POINTER(ctypes.c_int64)

MODEL_CODES = {("lif", "exact"): 0, ("lif", "euler"): 1, ("if", "exact"): 2, ("if", "euler"): 2,
               ("alif", "exact"): 3, ("alif", "euler"): 4}
SYNAPSE_CODES = {"instantaneous": 0, "exponential": 1, "alpha": 2, "conductance": 3}
INPUT_CODES = {"poisson": 0, "constant_current": 1, "step_current": 1, "time_varying_current": 2}
SPIKE_BUFFER_MIN = 1 << 18  # triples per spike monitor between flushes (at least B * N)


class Pop(ctypes.Structure):
    _fields_ = [("model", c_int32), ("n", c_int32), ("reset_subtract", c_int32), ("ref_steps", c_int32),
                ("v", c_void_p), ("a", c_void_p), ("refrac", c_void_p),
                ("decay_m", c_double), ("v_rest", c_double), ("R_m", c_double), ("v_reset", c_double),
                ("v_th", c_double), ("decay_a", c_double), ("beta", c_double), ("delta_a", c_double),
                ("n_groups", c_int32), ("n_inputs", c_int32), ("groups", P_int32), ("inputs", P_int32),
                ("drive", c_void_p), ("fired", P_int32), ("n_fired", P_int32)]


class Group(ctypes.Structure):
    _fields_ = [("kind", c_int32), ("post", c_int32), ("n", c_int32), ("has_poisson", c_int32),
                ("decay", c_double), ("dt_over_tau", c_double), ("E_rev", c_double), ("factor", c_double),
                ("x", c_void_p), ("h", c_void_p), ("ring", c_void_p)]


class Proj(ctypes.Structure):
    _fields_ = [("pre", c_int32), ("group", c_int32), ("uniform_delay", c_int32), ("n_post", c_int32),
                ("indptr", P_int64), ("post", P_int32), ("delay", P_int32), ("w", c_void_p)]


class Input(ctypes.Structure):
    _fields_ = [("type", c_int32), ("group", c_int32), ("pop", c_int32), ("n_neurons", c_int32),
                ("scale", c_double), ("lam", c_double), ("amplitude", c_double),
                ("start", c_int64), ("stop", c_int64), ("T", c_int64),
                ("neurons", P_int64), ("values", c_void_p), ("ncols", c_int64)]


class Rec(ctypes.Structure):
    _fields_ = [("type", c_int32), ("pop", c_int32), ("cap", c_int64), ("filled", c_int64), ("room", c_int64),
                ("dropped", c_int64), ("triples", P_int64), ("counts", P_int64)]


class Net(ctypes.Structure):
    _fields_ = [("B", c_int32), ("L", c_int32), ("n_pops", c_int32), ("n_groups", c_int32), ("n_projs", c_int32),
                ("n_inputs", c_int32), ("n_recs", c_int32), ("pad", c_int32), ("k", c_int64),
                ("pops", ctypes.POINTER(Pop)), ("groups", ctypes.POINTER(Group)), ("projs", ctypes.POINTER(Proj)),
                ("inputs", ctypes.POINTER(Input)), ("recs", ctypes.POINTER(Rec)), ("rng", c_void_p)]


def _ptr(array: np.ndarray, ctype):
    return array.ctypes.data_as(ctypes.POINTER(ctype))


def _tensor_ptr(t: Optional[torch.Tensor], dtype: torch.dtype) -> Optional[int]:
    if t is None:
        return None
    if t.device.type != "cpu" or t.dtype != dtype or not t.is_contiguous():
        raise NativeUnavailable(f"a tensor is not a contiguous CPU {dtype} tensor ({t.device}, {t.dtype})")
    return t.data_ptr()


def unsupported_reasons(sim) -> list[str]:
    """Why the native engine cannot run ``sim`` (empty when it can)."""
    from ..monitors import RateMonitor, SpikeMonitor

    out = []
    if sim.device.type != "cpu":
        out.append(f"device {sim.device} (the native engine runs on the CPU)")
    if sim.dtype not in (torch.float32, torch.float64):
        out.append(f"dtype {sim.dtype}")
    for pop in sim.populations.values():
        model = pop.model
        if (model.name, model.method) not in MODEL_CODES:
            out.append(f"population {pop.name!r}: model {model.name!r} with method {model.method!r}")
            continue
        for key, value in vars(model.params).items():
            if isinstance(value, torch.Tensor):
                out.append(f"population {pop.name!r}: per-neuron parameter {key!r}")
    for inp in sim.inputs:
        if inp.type not in INPUT_CODES:
            out.append(f"input {inp.name!r}: type {inp.type!r}")
    for m in sim.monitors:
        if not isinstance(m, (SpikeMonitor, RateMonitor)):
            out.append(f"monitor {m.name!r}: {type(m).__name__} (record state with backend: torch)")
    for proj in sim.projections:
        if proj.rule is not None:
            out.append(f"projection {proj.name!r}: plasticity")
    return out


class NativeEngine:
    """Binds a simulator's runtime to the C kernel; :meth:`run` advances it by whole steps."""

    def __init__(self, sim):
        reasons = unsupported_reasons(sim)
        if reasons:
            raise NativeUnavailable("the native engine does not support: " + "; ".join(reasons))
        self.sim = sim
        self.precision = "float64" if sim.dtype == torch.float64 else "float32"
        self.lib = load_library(self.precision)
        self.real = np.float64 if sim.dtype == torch.float64 else np.float32
        self.rng_state = np.zeros(4, dtype=np.uint64)
        self.lib.bc_seed(self.rng_state.ctypes.data, ctypes.c_uint64((sim.seed + 1) & 0xFFFFFFFFFFFFFFFF))
        self._static()

    # -- arrays that do not change during a simulation --------------------------------------------------
    def _static(self) -> None:
        sim = self.sim
        names = list(sim.populations)
        self.pop_index = {name: i for i, name in enumerate(names)}
        B = sim.batch
        self._keep = []  # numpy arrays whose memory the C structures point into
        self.pops = (Pop * len(names))()
        for i, name in enumerate(names):
            pop = sim.populations[name]
            p, m, dt = pop.model.params, pop.model, sim.dt
            n = m.size
            P = self.pops[i]
            P.model = MODEL_CODES[(m.name, m.method)]
            P.n = n
            P.reset_subtract = int(p.reset == "subtract")
            from ..neurons.base import refractory_steps

            P.ref_steps = refractory_steps(p.t_ref, dt)
            exact = m.method == "exact"
            if m.name == "if":
                P.decay_m, P.R_m = dt * 1000.0, float(p.C_m)
                P.v_th = float(p.v_th)
            else:
                P.decay_m = math.exp(-dt / p.tau_m) if exact else dt / p.tau_m
                P.R_m, P.v_rest = float(p.R_m), float(p.v_rest)
                if m.name == "alif":
                    P.v_th, P.beta, P.delta_a = float(p.b0), float(p.beta), float(p.delta_a)
                    P.decay_a = math.exp(-dt / p.tau_a) if exact else dt / p.tau_a
                else:
                    P.v_th = float(p.v_th)
            P.v_reset = float(p.v_reset)
            groups = np.asarray(pop.groups, dtype=np.int32)
            inputs = np.asarray([j for j, inp in enumerate(sim.inputs)
                                 if inp.target == name and inp.type.endswith("current")], dtype=np.int32)
            drive = np.zeros(n, dtype=self.real)
            fired = np.zeros(B * n, dtype=np.int32)
            n_fired = np.zeros(B, dtype=np.int32)
            self._keep += [groups, inputs, drive, fired, n_fired]
            P.n_groups, P.groups = len(groups), _ptr(groups, ctypes.c_int32)
            P.n_inputs, P.inputs = len(inputs), _ptr(inputs, ctypes.c_int32)
            P.drive, P.fired, P.n_fired = drive.ctypes.data, _ptr(fired, ctypes.c_int32), _ptr(n_fired, ctypes.c_int32)

        self.groups = (Group * max(1, len(sim.groups)))()
        for g, group in enumerate(sim.groups):
            G = self.groups[g]
            G.kind = SYNAPSE_CODES[group.kind]
            G.post = self.pop_index[group.post]
            G.n = sim.populations[group.post].model.size
            G.decay = group.decay
            G.dt_over_tau = sim.dt / group.tau if group.tau > 0 else 0.0
            G.E_rev = group.E_rev if group.E_rev is not None else 0.0
            G.factor = group.factor
            G.has_poisson = int(any(inp.type == "poisson" and inp.group == g for inp in sim.inputs))

        self.projs = (Proj * max(1, len(sim.projections)))()
        for j, proj in enumerate(sim.projections):
            J = self.projs[j]
            indptr = np.ascontiguousarray(proj.indptr.cpu().numpy(), dtype=np.int64)
            post = np.ascontiguousarray(proj.post_idx.cpu().numpy(), dtype=np.int32)
            delay = np.ascontiguousarray(proj.delay.cpu().numpy(), dtype=np.int32)
            self._keep += [indptr, post, delay]
            J.pre, J.group, J.n_post = self.pop_index[proj.pre], proj.group, proj.n_post
            J.uniform_delay = proj.uniform_delay if proj.uniform_delay is not None else -1
            J.indptr, J.post, J.delay = _ptr(indptr, ctypes.c_int64), _ptr(post, ctypes.c_int32), _ptr(delay, ctypes.c_int32)

        self.inputs = (Input * max(1, len(sim.inputs)))()
        for q, inp in enumerate(sim.inputs):
            Q = self.inputs[q]
            Q.type = INPUT_CODES[inp.type]
            Q.pop = self.pop_index[inp.target]
            Q.group = inp.group if inp.group is not None else -1
            if inp.neurons is not None:
                neurons = np.ascontiguousarray(inp.neurons.cpu().numpy(), dtype=np.int64)
                self._keep.append(neurons)
                Q.neurons, Q.n_neurons = _ptr(neurons, ctypes.c_int64), len(neurons)
            if inp.type == "poisson":
                kind = sim.groups[inp.group].kind
                Q.scale = inp.weight * (math.e if kind == "alpha" else 1.0)
                Q.lam = inp.rate_per_step
                Q.start, Q.stop = inp.start, inp.stop if inp.stop is not None else -1
            elif inp.type in ("constant_current", "step_current"):
                Q.amplitude = float(inp.amplitude)
                Q.start, Q.stop = inp.start, inp.stop if inp.stop is not None else -1
            else:
                values = np.ascontiguousarray(inp.values.cpu().numpy(), dtype=self.real)
                self._keep.append(values)
                Q.values, Q.T, Q.ncols = values.ctypes.data, values.shape[0], values.shape[1]

    # -- per call: tensors may have been replaced (checkpoint loads, weight edits) -------------------------
    def _bind(self) -> None:
        sim, dtype = self.sim, self.sim.dtype
        for name, i in self.pop_index.items():
            state = sim.populations[name].state
            P = self.pops[i]
            P.v = _tensor_ptr(state.v, dtype)
            P.refrac = _tensor_ptr(state.refrac, dtype)
            P.a = _tensor_ptr(getattr(state, "a", None), dtype)
        for g, group in enumerate(sim.groups):
            G = self.groups[g]
            G.x, G.h, G.ring = (_tensor_ptr(group.x, dtype), _tensor_ptr(group.h, dtype),
                                _tensor_ptr(group.ring, dtype))
        for j, proj in enumerate(sim.projections):
            self.projs[j].w = _tensor_ptr(proj.weight, dtype)

    def run(self, steps: int, bar=None) -> None:
        """Advance ``steps`` steps, flushing spike buffers into the simulator's monitors as they fill."""
        from ..monitors import RateMonitor, SpikeMonitor

        sim = self.sim
        self._bind()
        B = sim.batch
        chunk = steps if bar is None else 1000
        recs = (Rec * max(1, len(sim.monitors)))()
        buffers = []
        for r, m in enumerate(sim.monitors):
            R = recs[r]
            R.pop = self.pop_index[m.target]
            n = sim.populations[m.target].model.size
            if isinstance(m, SpikeMonitor):
                R.type = 0
                R.cap = max(SPIKE_BUFFER_MIN, 4 * B * n)
                buf = np.zeros((R.cap, 3), dtype=np.int64)
                R.triples = _ptr(buf, ctypes.c_int64)
                R.counts = ctypes.cast(_tensor_ptr(m.counts, torch.int64), P_int64)
            else:
                R.type = 1
                buf = np.zeros((max(1, min(chunk, steps)), B), dtype=np.int64)
                R.counts = _ptr(buf, ctypes.c_int64)
            buffers.append(buf)
        net = Net(B=B, L=sim.ring_length, n_pops=len(self.pops), n_groups=len(sim.groups),
                  n_projs=len(sim.projections), n_inputs=len(sim.inputs), n_recs=len(sim.monitors),
                  k=sim.step_count, pops=self.pops, groups=self.groups, projs=self.projs, inputs=self.inputs,
                  recs=recs, rng=self.rng_state.ctypes.data)
        left = steps
        while left > 0:
            for r, m in enumerate(sim.monitors):
                if isinstance(m, SpikeMonitor):
                    recs[r].filled, recs[r].dropped = 0, 0
                    recs[r].room = max(0, m.max_spikes - m.stored)
            done = int(self.lib.bc_run(ctypes.byref(net), min(chunk, left)))
            for r, m in enumerate(sim.monitors):
                if isinstance(m, SpikeMonitor):
                    filled = int(recs[r].filled)
                    if filled:
                        m._chunks.append(torch.from_numpy(buffers[r][:filled].copy()))
                        m.stored += filled
                    m.dropped += int(recs[r].dropped)
                elif isinstance(m, RateMonitor):
                    m.record_counts(torch.from_numpy(buffers[r][:done]))
            left -= done
            sim.step_count = int(net.k)
            if bar is not None:
                bar.update(done)

    # -- checkpoints ------------------------------------------------------------------------------------
    def rng_tensor(self) -> torch.Tensor:
        return torch.from_numpy(self.rng_state.view(np.int64).copy())

    def load_rng_tensor(self, state: torch.Tensor) -> None:
        self.rng_state[:] = state.numpy().view(np.uint64)
