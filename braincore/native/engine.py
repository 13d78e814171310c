"""The native CPU engine: runs a :class:`~braincore.simulator.Simulator`'s loop in compiled C.

The PyTorch engine pays a fixed interpreter and dispatch cost of roughly 100-200 microseconds per time step
whatever the network's size, which dominates networks of up to tens of thousands of neurons. This engine
hands the whole loop to ``kernel.c`` (compiled once per machine, :mod:`.build`): the C code reads and writes
the simulator's own tensors in place (neuron state, synaptic variables, ring buffers, weights, spike counts),
so checkpoints, monitors and the PyTorch engine all see one state, and a run may switch engines between calls.

The neuron models' C code is generated from their definitions (:mod:`braincore.equations.c_code`): every model
defined as equations runs here, built-in or written by a user, with scalar or per-neuron parameters. What is
supported follows from that (anything else makes ``backend: auto`` fall back to PyTorch, and ``backend: native``
fail with the reason, :func:`unsupported_reasons`): CPU tensors in float32 or float64; every defined neuron model
(a surrogate spike function changes only gradients, and the simulator runs without) and Poisson source
populations; every synaptic kernel and delay; Poisson, spike-file, constant, step and time-varying current inputs;
spike, rate and state monitors.

In float64 the engine reproduces the PyTorch engine's operations in the same order: for models without per-step
transcendental functions (IF, LIF, ALIF, Izhikevich, GIF) the spikes and state are bit for bit the same on
networks without Poisson inputs; where the step calls ``exp`` (AdEx, Hodgkin–Huxley) the two libraries' ``exp`` may
differ in the last bit. Poisson inputs are drawn with the kernel's own generator (xoshiro256**,
seeded from the simulator's seed), reproducible and checkpointed, but a different stream from PyTorch's.

Threads (``Simulator(threads=N)``): every population is cut into one part per thread (:func:`partition`), each
thread updates its part and delivers spikes only into its own post-synaptic neurons (rows cut by part,
``bc_row_cuts``), in the order of one thread, so the results are bit for bit the same for any number of threads
(kernel.c's threads section); Poisson inputs, rules and recording run on the calling thread.
"""
from __future__ import annotations

import ctypes
import math
import warnings
from typing import Optional, Sequence

import numpy as np
import torch

from ..equations.c_code import constant_names, dispatch_function, model_function
from ..equations.c_rule import rule_constant_names, rule_dispatch, rule_function
from ..neurons.poisson import is_spike_source
from .build import NativeUnavailable, load_generated

c_int32, c_int64, c_double, c_void_p = ctypes.c_int32, ctypes.c_int64, ctypes.c_double, ctypes.c_void_p
P_int32, P_int64 = ctypes.POINTER(ctypes.c_int32), ctypes.POINTER(ctypes.c_int64)
P_double = ctypes.POINTER(ctypes.c_double)
SYNAPSE_CODES = {"instantaneous": 0, "exponential": 1, "alpha": 2, "conductance": 3}
INPUT_CODES = {"poisson": 0, "constant_current": 1, "step_current": 1, "time_varying_current": 2, "spike_file": 3}
SPIKE_BUFFER_MIN = 1 << 18  # triples per spike monitor between flushes (at least B * N)
#: steps per call of the C loop (about 0.5 s for the 15.6 M synapses of configs/brunel.yaml): a signal handler
#: (Ctrl-C) runs only between calls
CHUNK_STEPS = 1000


class Pop(ctypes.Structure):
    _fields_ = [("model", c_int32), ("n", c_int32), ("ref_steps", c_int32), ("v_index", c_int32),
                ("state", ctypes.POINTER(c_void_p)), ("K", ctypes.POINTER(c_double)),
                ("arrays", ctypes.POINTER(c_void_p)),
                ("n_groups", c_int32), ("n_inputs", c_int32), ("groups", P_int32), ("inputs", P_int32),
                ("drive", c_void_p), ("fired", P_int32), ("n_fired", P_int32), ("bounds", P_int32),
                ("part_fired", P_int32)]


class Group(ctypes.Structure):
    _fields_ = [("kind", c_int32), ("post", c_int32), ("n", c_int32), ("has_poisson", c_int32),
                ("fed", c_int32), ("pad", c_int32), ("decay", c_double), ("dt_over_tau", c_double), ("E_rev", c_double), ("factor", c_double),
                ("x", c_void_p), ("h", c_void_p), ("ring", c_void_p)]


class Proj(ctypes.Structure):
    _fields_ = [("pre", c_int32), ("group", c_int32), ("uniform_delay", c_int32), ("n_post", c_int32),
                ("full", c_int32), ("same", c_int32),
                ("indptr", P_int64), ("post", P_int32), ("delay", ctypes.POINTER(ctypes.c_int16)),
                ("delay32", P_int32), ("w", c_void_p), ("w_same", c_double), ("cuts", P_int64)]


class Input(ctypes.Structure):
    _fields_ = [("type", c_int32), ("group", c_int32), ("pop", c_int32), ("n_neurons", c_int32),
                ("scale", c_double), ("lam", c_double), ("amplitude", c_double),
                ("start", c_int64), ("stop", c_int64), ("T", c_int64),
                ("neurons", P_int64), ("values", c_void_p), ("ncols", c_int64), ("lams", c_void_p),
                ("limits", P_double), ("nz_ptr", P_int64), ("nz_index", P_int64), ("nz_accept", P_double),
                ("nz_max", P_double),
                ("ev_steps", P_int64), ("ev_neurons", P_int64), ("n_events", c_int64), ("cursor", c_int64),
                ("ev_index", P_int64), ("ev_count", P_int64), ("fires", c_int32), ("pad", c_int32)]


class Rec(ctypes.Structure):
    _fields_ = [("type", c_int32), ("pop", c_int32), ("cap", c_int64), ("filled", c_int64), ("room", c_int64),
                ("dropped", c_int64), ("triples", P_int64), ("counts", P_int64)]


P_uint8 = ctypes.POINTER(ctypes.c_uint8)


class Rule(ctypes.Structure):
    _fields_ = [("kind", c_int32), ("proj", c_int32), ("modulator", c_int32), ("first", c_int32),
                ("n_act_pre", c_int32), ("n_act_post", c_int32), ("every", c_int32), ("by", c_int32),
                ("K", ctypes.POINTER(c_double)), ("traces", ctypes.POINTER(c_void_p)),
                ("indptr_post", P_int64), ("by_post", P_int64), ("pre_of", P_int32),
                ("flag_pre", P_uint8), ("flag_post", P_uint8), ("seen_pre", P_uint8), ("seen_post", P_uint8),
                ("act_pre", P_int32), ("act_post", P_int32), ("counter", P_int64), ("scratch", c_void_p),
                ("finite_at", c_int64)]


class Trials(ctypes.Structure):
    """``bc_run_trials``'s description of a protocol's trials (kernel.c)."""
    _pointer_types = {"copy_dst": ctypes.POINTER(c_void_p), "copy_src": ctypes.POINTER(c_void_p),
                      "copy_bytes": P_int64, "zero_dst": ctypes.POINTER(c_void_p), "zero_bytes": P_int64,
                      "out_rec": P_int32, "out": ctypes.POINTER(c_void_p)}
    _fields_ = [("n_copies", c_int64), ("n_zeros", c_int64), ("copy_dst", ctypes.POINTER(c_void_p)),
                ("copy_src", ctypes.POINTER(c_void_p)), ("copy_bytes", P_int64),
                ("zero_dst", ctypes.POINTER(c_void_p)), ("zero_bytes", P_int64), ("rates", c_void_p),
                ("m", c_int64), ("input", c_int32), ("n_out", c_int32), ("out_rec", P_int32),
                ("out", ctypes.POINTER(c_void_p)), ("stop_below", c_int64)]


class Chan(ctypes.Structure):
    _fields_ = [("factor", c_double), ("baseline", c_double), ("decays", c_int32), ("zero_baseline", c_int32),
                ("value", c_void_p)]


class Net(ctypes.Structure):
    _fields_ = [("B", c_int32), ("L", c_int32), ("n_pops", c_int32), ("n_groups", c_int32), ("n_projs", c_int32),
                ("n_inputs", c_int32), ("n_recs", c_int32), ("n_rules", c_int32), ("n_chans", c_int32),
                ("threads", c_int32), ("k", c_int64),
                ("pops", ctypes.POINTER(Pop)), ("groups", ctypes.POINTER(Group)), ("projs", ctypes.POINTER(Proj)),
                ("inputs", ctypes.POINTER(Input)), ("recs", ctypes.POINTER(Rec)), ("rng", c_void_p),
                ("rules", ctypes.POINTER(Rule)), ("chans", ctypes.POINTER(Chan)), ("parts", c_int32),
                ("pad2", c_int32)]


def projection_rules(proj) -> list:
    """``(rule, state key prefix)`` of each rule on ``proj``, in the order they step (a chain flattened)."""
    if proj.rule is None:
        return []
    rules = getattr(proj.rule, "rules", None)
    if rules is None:
        return [(proj.rule, "")]
    return [(rule, f"{i}.") for i, rule in enumerate(rules)]


def _tightest_bounds(proj, normalize, dt: float) -> tuple[float, float]:
    """The largest ``w_min`` and the least ``w_max`` of the rules on ``proj`` that hold its weights in bounds (other
    than ``normalize``); ``(-inf, inf)`` without any. The kernel's normalisation pass asks those rules to clip every
    weight at their next step only when a weight it scaled leaves this range (inside it, no clip changes one)."""
    low, high = -math.inf, math.inf
    for rule, _ in projection_rules(proj):
        program = getattr(rule, "program", None)
        if rule is normalize or program is None or not program.clip:
            continue
        values = rule.constants(dt)
        low, high = max(low, float(values["w_min"])), min(high, float(values["w_max"]))
    return low, high


def _rule_reason(proj) -> Optional[str]:
    from ..plasticity.defined import DefinedRule
    from ..plasticity.homeostasis import Normalize, SynapticScaling

    if proj.rule is None:
        return None
    if proj.dense is not None:
        return (f"projection {proj.name!r}: plasticity on dense storage (the native engine updates the synapse "
                f"list; use storage: sparse, which backend auto/native picks by itself)")
    for rule, _ in projection_rules(proj):
        if not isinstance(rule, (DefinedRule, Normalize, SynapticScaling)):
            return f"projection {proj.name!r}: plasticity rule {rule.name!r} has no native form"
    return None


#: inner part boundaries are multiples of this many neurons: the generated loops then split each part into vector
#: iterations, vector epilogue and scalar remainder exactly where they split the whole population (a neuron's vector
#: math call, whose last bit may differ from the scalar call's, is the same whatever the number of threads), and the
#: threshold scan's blocks of 64 are the same blocks
PART_ALIGN = 64
#: parts per thread. Each thread runs its own parts every step (their data stay in its core's cache), and takes
#: those of a thread the machine has not scheduled (kernel.c, threads section). The results do not depend on the
#: number of parts; more parts per thread cost speed (COBA 64k on 2 threads: 2.4 s with 4, 1.0-1.2 s with 1)
PARTS_PER_THREAD = 1


def partition(n: int, parts: int) -> np.ndarray:
    """Boundaries ``[parts + 1]`` (int32) of ``n`` neurons cut into ``parts`` contiguous parts of about equal size,
    one per thread (part ``t`` is neurons ``bounds[t]`` to ``bounds[t+1] - 1``); inner boundaries are multiples of
    :data:`PART_ALIGN`, so a small population leaves parts empty (one of fewer than 64 neurons is all in the last)."""
    inner = [(n * t // parts) // PART_ALIGN * PART_ALIGN for t in range(1, parts)]
    return np.asarray([0] + inner + [n], dtype=np.int32)


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
    from ..monitors import RateMonitor, SpikeMonitor, StateMonitor

    out = []
    if sim.device.type != "cpu":
        out.append(f"device {sim.device} (the native engine runs on the CPU)")
    if sim.dtype not in (torch.float32, torch.float64):
        out.append(f"dtype {sim.dtype}")
    for pop in sim.populations.values():
        model = pop.model
        if is_spike_source(model):
            continue
        if getattr(model, "definition", None) is None:
            out.append(f"population {pop.name!r}: model {model.name!r} is not defined as equations")
            continue
        for key, value in model.constants.items():
            if isinstance(value, torch.Tensor) and value.numel() not in (1, model.size):
                out.append(f"population {pop.name!r}: {key!r} has {value.numel()} values for {model.size} neurons")
    for inp in sim.inputs:
        if inp.type not in INPUT_CODES:
            out.append(f"input {inp.name!r}: type {inp.type!r}")
    for m in sim.monitors:
        if not isinstance(m, (SpikeMonitor, RateMonitor, StateMonitor)):
            out.append(f"monitor {m.name!r}: {type(m).__name__}")
    for proj in sim.projections:
        reason = _rule_reason(proj)
        if reason:
            out.append(reason)
    return out


class NativeEngine:
    """Binds a simulator's runtime to the C kernel; :meth:`run` advances it by whole steps."""

    def __init__(self, sim):
        reasons = unsupported_reasons(sim)
        if reasons:
            raise NativeUnavailable("the native engine does not support: " + "; ".join(reasons))
        self.sim = sim
        self.precision = "float64" if sim.dtype == torch.float64 else "float32"
        self.real = np.float64 if sim.dtype == torch.float64 else np.float32
        self._static()
        self.rng_state = np.zeros(4, dtype=np.uint64)
        self._same: dict = {}  # projection index -> (weight tensor, its version, the common value or None)
        self._limits: dict = {}  # input index -> (rate map, its version) last planned by _poisson_plan
        self._clipped: dict = {}  # rule index -> (weight tensor, its version) after the last run
        self._plan_arrays: dict = {}  # input index -> the arrays bc_poisson_plan fills (see _poisson_plan)
        self._traces_bound: dict = {}  # rule index -> ((trace tensor, address) list, the C pointer array)
        self._bound: Optional[list] = None
        self._finite_args: Optional[tuple] = None
        self._recs: Optional[tuple] = None  # run's monitor records, kept while the monitors stay the same  # all_finite's last tensors and their C arguments  # (tensor, address) of each tensor bound at the last run (_bind)
        self._plastic = {j for j, _, _, _ in self.rule_entries}  # projections whose weights a rule changes
        self.lib.bc_seed(self.rng_state.ctypes.data, ctypes.c_uint64((sim.seed + 1) & 0xFFFFFFFFFFFFFFFF))

    def source(self) -> str:
        """The C source of this network's engine: the kernel template with its models' generated steps."""
        functions = []
        for k, (defn, method, option, arrays, groups, external) in enumerate(self.model_keys):
            scalars = [key for key in constant_names(defn.program(method, option)) if key not in arrays]
            functions.append(model_function(defn, method, option, f"model_{k}", scalars, list(arrays), groups,
                                            external))
        names = [f"model_{k}" for k in range(len(self.model_keys))]
        rules = [rule_function(defn, defn.program(variant), f"rule_{k}", nearest)
                 for k, (defn, variant, nearest) in enumerate(self.rule_keys)]
        return "".join(functions) + dispatch_function(names) + "".join(rules) + \
            rule_dispatch([f"rule_{k}" for k in range(len(self.rule_keys))])

    def _poisson_fed(self, g: int) -> bool:
        """Whether Poisson or spike-file inputs add to synaptic group ``g`` (it then takes its ring slot first)."""
        return any(inp.type in ("poisson", "spike_file") and inp.group == g for inp in self.sim.inputs)

    def _fed(self, g: int) -> bool:
        """Whether a projection delivers into synaptic group ``g`` (else its ring buffer is never read)."""
        return any(proj.group == g for proj in self.sim.projections)

    # -- arrays that do not change during a simulation --------------------------------------------------
    def _static(self) -> None:
        sim = self.sim
        names = list(sim.populations)
        self.pop_index = {name: i for i, name in enumerate(names)}
        B = sim.batch
        self._keep = []  # numpy arrays whose memory the C structures point into
        self._state_ptrs = []  # per population: the C array of its state tensors' addresses (bound per run)
        self.pops = (Pop * len(names))()
        self.model_keys: list = []  # one generated C function per distinct (definition, method, option, arrays)
        layouts = []
        for name in names:
            m = sim.populations[name].model
            if is_spike_source(m):  # no generated step: the kernel draws its spikes (step_source)
                layouts.append(([], [], -1))
                continue
            scalars, arrays = [], []
            for key in constant_names(m.program):
                value = m.constants[key]
                is_array = isinstance(value, torch.Tensor) and value.numel() > 1
                (arrays if is_array else scalars).append(key)
            # the step is generated per model and per synaptic input: the kinds of the population's groups, in
            # order, each with whether it takes its ring slot in the step, and whether external currents come first
            pop = sim.populations[name]
            groups = tuple((sim.groups[g].kind, not self._poisson_fed(g) and self._fed(g)) for g in pop.groups)
            external = any(inp.target == name and inp.type.endswith("current") for inp in sim.inputs)
            model_key = (m.definition, m.method, m.option, tuple(arrays), groups, external)
            if model_key not in self.model_keys:
                self.model_keys.append(model_key)
            layouts.append((scalars, arrays, self.model_keys.index(model_key)))
        self.rule_keys: list = []  # one generated C function per distinct (rule definition, variant, pairing)
        for proj in sim.projections:
            for rule, _ in projection_rules(proj):
                if hasattr(rule, "definition"):
                    key = (rule.definition, rule.variant, rule.nearest)
                    if key not in self.rule_keys:
                        self.rule_keys.append(key)
        self.lib = load_generated(self.source(), self.precision)
        #: threads of bc_run: every population cut into this many parts (one where the build has no OpenMP)
        self.threads = max(1, int(getattr(sim, "threads", 1)))
        #: why fewer threads run than the simulator asked for ("" when as many)
        self.threads_note = ""
        if self.threads > 1 and not self.lib.bc_openmp():
            self.threads_note = (f"the native engine runs one thread, not {self.threads}: the C compiler has no "
                                 f"OpenMP here (-fopenmp), or BRAINCORE_NO_OPENMP is set")
            warnings.warn(self.threads_note, RuntimeWarning, stacklevel=2)
            self.threads = 1
        #: parts of every population (one with one thread)
        self.parts = T = self.threads * PARTS_PER_THREAD if self.threads > 1 else 1
        self._bounds = []  # per population: its part boundaries [T + 1]
        for i, name in enumerate(names):
            pop = sim.populations[name]
            m = pop.model
            n = m.size
            P = self.pops[i]
            scalars, arrays, P.model = layouts[i]
            P.n = n
            source = is_spike_source(m)
            P.ref_steps = 0 if source else int(m.constants.get("_ref_steps", 0))
            P.v_index = 0 if source else m.definition.state_fields.index(m.definition.voltage)
            K = np.array([float(m.constants[k]) for k in scalars] or [0.0], dtype=np.float64)
            array_values = [np.ascontiguousarray(torch.as_tensor(m.constants[k]).reshape(-1).cpu().numpy(),
                                                 dtype=self.real) for k in arrays]
            array_ptrs = (c_void_p * max(1, len(arrays)))(*[a.ctypes.data for a in array_values])
            state_ptrs = (c_void_p * max(1, len(pop.state)))()
            self._keep += [K, array_values, array_ptrs, state_ptrs]
            P.K = K.ctypes.data_as(ctypes.POINTER(c_double))
            P.arrays = ctypes.cast(array_ptrs, ctypes.POINTER(c_void_p))
            P.state = ctypes.cast(state_ptrs, ctypes.POINTER(c_void_p))
            self._state_ptrs.append(state_ptrs)
            groups = np.asarray(pop.groups, dtype=np.int32)
            inputs = np.asarray([j for j, inp in enumerate(sim.inputs)
                                 if inp.target == name and inp.type.endswith("current")], dtype=np.int32)
            drive = np.zeros(n, dtype=self.real)
            fired = np.zeros(B * n, dtype=np.int32)
            n_fired = np.zeros(B, dtype=np.int32)
            bounds = partition(n, T)
            part_fired = np.zeros(B * T, dtype=np.int32)
            self._bounds.append(bounds)
            self._keep += [groups, inputs, drive, fired, n_fired, bounds, part_fired]
            P.bounds, P.part_fired = _ptr(bounds, ctypes.c_int32), _ptr(part_fired, ctypes.c_int32)
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
            G.has_poisson, G.fed = int(self._poisson_fed(g)), int(self._fed(g))

        self.projs = (Proj * max(1, len(sim.projections)))()
        for j, proj in enumerate(sim.projections):
            J = self.projs[j]
            # the simulator's own index and delay arrays where they are int32 / int16 (no copy), else converted
            indptr = np.ascontiguousarray(proj.indptr.cpu().numpy(), dtype=np.int64)
            post = np.ascontiguousarray(proj.post_idx.cpu().numpy(), dtype=np.int32)
            delay = proj.delay.cpu().numpy()
            delay = np.ascontiguousarray(delay, dtype=np.int16 if delay.dtype == np.int16 else np.int32)
            self._keep += [indptr, post, delay]
            J.pre, J.group, J.n_post = self.pop_index[proj.pre], proj.group, proj.n_post
            J.uniform_delay = proj.uniform_delay if proj.uniform_delay is not None else -1
            J.full = int(len(post) == proj.n_pre * proj.n_post and bool(
                (indptr == np.arange(proj.n_pre + 1, dtype=np.int64) * proj.n_post).all()) and bool(
                (post.reshape(proj.n_pre, proj.n_post) == np.arange(proj.n_post, dtype=np.int32)).all()))
            J.indptr, J.post = _ptr(indptr, ctypes.c_int64), _ptr(post, ctypes.c_int32)
            if delay.dtype == np.int16:
                J.delay = _ptr(delay, ctypes.c_int16)
            else:
                J.delay32 = _ptr(delay, ctypes.c_int32)
            if T > 1 and not J.full:  # each row cut into its synapses onto each part of the post population
                cuts = np.empty(proj.n_pre * (T + 1), dtype=np.int64)
                post_bounds = self._bounds[self.pop_index[sim.groups[proj.group].post]]
                if self.lib.bc_row_cuts(indptr.ctypes.data, post.ctypes.data, proj.n_pre, post_bounds.ctypes.data,
                                        T, cuts.ctypes.data) == 0:
                    self._keep.append(cuts)
                    J.cuts = _ptr(cuts, ctypes.c_int64)

        self.inputs = (Input * max(1, len(sim.inputs)))()
        self._event_steps: dict[int, np.ndarray] = {}  # spike-file inputs: event steps, sorted (cursor search)
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
                Q.fires = int(inp.fires)
                kind = sim.groups[inp.group].kind if inp.group is not None else None
                Q.scale = inp.weight * (math.e if kind == "alpha" else 1.0)
                m = len(inp.neurons) if inp.neurons is not None else sim.populations[inp.target].model.size
                events = (np.empty(max(1, m), dtype=np.int64), np.empty(max(1, m), dtype=np.int64))
                self._keep += list(events)
                Q.ev_index, Q.ev_count = (_ptr(e, ctypes.c_int64) for e in events)
                Q.lam = inp.rate_per_step
                Q.start, Q.stop = inp.start, inp.stop if inp.stop is not None else -1
            elif inp.type == "spike_file":  # events sorted by step (stable: a file's order within a step is kept)
                order = np.argsort(inp.spike_steps.cpu().numpy(), kind="stable")
                steps = np.ascontiguousarray(inp.spike_steps.cpu().numpy()[order], dtype=np.int64)
                neurons = np.ascontiguousarray(inp.spike_neurons.cpu().numpy()[order], dtype=np.int64)
                self._keep += [steps, neurons]
                Q.ev_steps, Q.ev_neurons, Q.n_events = _ptr(steps, ctypes.c_int64), _ptr(neurons, ctypes.c_int64), len(steps)
                Q.scale = inp.weight * (math.e if sim.groups[inp.group].kind == "alpha" else 1.0)
                self._event_steps[q] = steps
            elif inp.type in ("constant_current", "step_current"):
                Q.amplitude = float(inp.amplitude)
                Q.start, Q.stop = inp.start, inp.stop if inp.stop is not None else -1
            else:
                values = np.ascontiguousarray(inp.values.cpu().numpy(), dtype=self.real)
                self._keep.append(values)
                Q.values, Q.T, Q.ncols = values.ctypes.data, values.shape[0], values.shape[1]

        self._static_rules()

    def _static_rules(self) -> None:
        """The C rule records: kinds, constants, the by-post synapse order and scratch (traces bound per run)."""
        from ..plasticity.homeostasis import Normalize

        sim, B = self.sim, self.sim.batch
        entries = [(j, proj, rule, prefix) for j, proj in enumerate(sim.projections)
                   for rule, prefix in projection_rules(proj)]
        self.rule_entries = entries
        self.rules = (Rule * max(1, len(entries)))()
        for r, (j, proj, rule, prefix) in enumerate(entries):
            R = self.rules[r]
            R.proj = j
            view = proj.view
            if hasattr(rule, "definition"):
                R.kind = self.rule_keys.index((rule.definition, rule.variant, rule.nearest))
                values = rule.constants(sim.dt)
                K = np.array([float(values[k]) for k in rule_constant_names(rule.program)], dtype=np.float64)
            elif isinstance(rule, Normalize):
                R.kind, R.every, R.by = -1, int(rule.params.every), int(rule.params.by == "pre")
                low, high = _tightest_bounds(proj, rule, sim.dt)
                K = np.array([float(rule.params.total), low, high], dtype=np.float64)
            else:  # SynapticScaling: the constants of homeostasis.SynapticScaling.step, computed as it does
                p, dt = rule.params, sim.dt
                decay = math.exp(-dt / p.tau_rate)
                R.kind, R.every = -2, int(rule.params.every)
                K = np.array([decay, (1.0 - decay) * 1000.0 / dt, p.r_target, p.eta * (R.every * dt / 1000.0),
                              p.w_min, p.w_max], dtype=np.float64)
            indptr_post = np.ascontiguousarray(view.indptr_post.cpu().numpy(), dtype=np.int64)
            by_post = np.ascontiguousarray(view.by_post.cpu().numpy(), dtype=np.int64)
            pre_of = np.ascontiguousarray(view.pre_of.cpu().numpy(), dtype=np.int32)
            n_pre, n_post = proj.n_pre, proj.n_post
            flags = [np.zeros(B * n_pre, dtype=np.uint8), np.zeros(B * n_post, dtype=np.uint8),
                     np.zeros(n_pre, dtype=np.uint8), np.zeros(n_post, dtype=np.uint8)]
            acts = [np.zeros(max(1, n_pre), dtype=np.int32), np.zeros(max(1, n_post), dtype=np.int32)]
            scratch = np.zeros(max(1, n_pre, n_post), dtype=self.real)
            self._keep += [K, indptr_post, by_post, pre_of, scratch] + flags + acts
            R.K = K.ctypes.data_as(ctypes.POINTER(c_double))
            R.indptr_post, R.by_post, R.pre_of = (_ptr(indptr_post, ctypes.c_int64), _ptr(by_post, ctypes.c_int64),
                                                  _ptr(pre_of, ctypes.c_int32))
            R.flag_pre, R.flag_post, R.seen_pre, R.seen_post = (_ptr(f, ctypes.c_uint8) for f in flags)
            R.act_pre, R.act_post = (_ptr(a, ctypes.c_int32) for a in acts)
            R.scratch = scratch.ctypes.data
            R.finite_at = -1

    def _bind_rules(self) -> tuple:
        """Point the rule records at this run's trace tensors and modulator channels (which Python may have
        replaced or pulsed between runs). Channel values are copied first: the kernel advances them in place, and
        :class:`~braincore.modulators.Modulators` promises that a value once read does not change."""
        sim, dtype = self.sim, self.sim.dtype
        channels = list(sim.modulators.channels.items())
        chans = (Chan * max(1, len(channels)))()
        for c, (name, channel) in enumerate(channels):
            channel.value = channel.value.clone()
            C = chans[c]
            C.decays = int(channel.tau is not None)
            C.factor = math.exp(-sim.dt / channel.tau) if channel.tau is not None else 1.0
            C.baseline, C.zero_baseline = channel.baseline, int(channel.baseline == 0.0)
            C.value = _tensor_ptr(channel.value, dtype)
        index = {name: c for c, (name, _) in enumerate(channels)}
        for r, (j, proj, rule, prefix) in enumerate(self.rule_entries):
            R = self.rules[r]
            # clip every weight on the first step only when Python may have set weights out of bounds: a new
            # tensor, or one modified in place since the last run (torch counts in-place edits; the kernel's
            # own writes through the pointer are not counted)
            seen = self._clipped.get(r)
            # (or when the kernel asked for it: a normalisation scaled the weights on the last step of the last run)
            R.first = int(bool(R.first) or seen is None or seen[0] is not proj.weight or
                          seen[1] != proj.weight._version)
            state = proj.rule_state
            if hasattr(rule, "definition"):
                names = [prefix + name for name, _, _ in rule.program.traces]
                R.modulator = index.get(rule.modulator_name, -1) if rule.program.uses_modulator else -1
            else:
                names = [prefix + "r"] if prefix + "r" in state else []
                R.modulator = -1
                counter = state[prefix + "n"]
                if counter.dtype != torch.int64 or counter.device.type != "cpu":
                    state[prefix + "n"] = counter = counter.to("cpu", torch.int64)
                R.counter = ctypes.cast(counter.data_ptr(), P_int64)
            for name in names:
                if not state[name].is_contiguous():
                    state[name] = state[name].contiguous()
            tensors = [(state[name], state[name].data_ptr()) for name in names]
            bound = self._traces_bound.get(r)
            if bound is None or len(bound[0]) != len(tensors) or any(
                    a is not b or pa != pb for (a, pa), (b, pb) in zip(tensors, bound[0])):
                ptrs = (c_void_p * max(1, len(names)))(*[_tensor_ptr(state[name], dtype) for name in names])
                R.traces = ctypes.cast(ptrs, ctypes.POINTER(c_void_p))
                bound = self._traces_bound[r] = (tensors, ptrs)  # held: no address reused unnoticed
        self._chans = chans
        return chans, len(channels)

    def _same_weight(self, j: int, weight: torch.Tensor) -> Optional[float]:
        """The value of every weight of projection ``j`` when they are all equal (COBA's ``ge += we``: the kernel
        then delivers that number without reading the weights), else ``None``; decided once per weight tensor and
        in-place edit (torch's version counter)."""
        cached = self._same.get(j)
        if cached is None or cached[0] is not weight or cached[1] != weight._version:
            value = None
            if weight.numel():
                low, high = torch.aminmax(weight.reshape(-1))
                value = float(low) if bool(low == high) else None  # NaN != NaN: never "same"
            self._same[j] = cached = (weight, weight._version, value)
        return cached[2]

    def _spike_buffer(self, r: int, cap: int) -> np.ndarray:
        """A reusable ``[cap, 3]`` buffer for monitor ``r``'s spike triples (the kernel writes before Python reads)."""
        buffers = self.__dict__.setdefault("_spike_buffers", {})
        buf = buffers.get(r)
        if buf is None or buf.shape[0] < cap:
            buf = buffers[r] = np.empty((cap, 3), dtype=np.int64)
        return buf

    def _poisson_plan(self, q: int, rate_map: Optional[torch.Tensor], Q: "Input") -> None:
        """Bind what the kernel draws a Poisson rate map ``[B, m]`` from, computed once per map (not per neuron
        and step): ``exp(-lam)`` in float64 (the deviate's stopping product) and, per trial, the neurons with a
        non-zero rate, each rate over the trial's largest (the thinning sampler's acceptance); all ``NULL``
        without a map."""
        if rate_map is None:
            self._limits.pop(q, None)
            self._plan_arrays.pop(q, None)
            Q.limits = Q.nz_ptr = Q.nz_index = Q.nz_accept = Q.nz_max = None
            return
        cached = self._limits.get(q)
        if cached is not None and cached[0] is rate_map and cached[1] == rate_map._version:
            return  # planned and bound at an earlier run, unchanged since
        B = rate_map.shape[0]
        m = rate_map.numel() // max(1, B)
        arrays = self._plan_arrays.get(q)
        if arrays is None or arrays[0].shape[0] != B * m:  # reused from map to map (and bound once)
            arrays = self._plan_arrays[q] = (np.empty(B * m), np.empty(B + 1, dtype=np.int64),
                                             np.empty(B * m, dtype=np.int64), np.empty(B * m), np.empty(B))
            limits, ptr, index, accept, lam_max = arrays
            Q.limits, Q.nz_accept, Q.nz_max = (a.ctypes.data_as(P_double) for a in (limits, accept, lam_max))
            Q.nz_ptr, Q.nz_index = ptr.ctypes.data_as(P_int64), index.ctypes.data_as(P_int64)
        lams = rate_map if rate_map.is_contiguous() else rate_map.contiguous()
        _tensor_ptr(lams, self.sim.dtype)
        self.lib.bc_poisson_plan(lams.data_ptr(), B, m, *(a.ctypes.data for a in arrays))
        self._limits[q] = (rate_map, rate_map._version)

    # -- per call: tensors may have been replaced (checkpoint loads, weight edits) -------------------------
    def _bound_tensors(self) -> list:
        """The tensors whose addresses the C records hold, in binding order."""
        sim = self.sim
        out = [value for name in self.pop_index for value in sim.populations[name].state]
        for group in sim.groups:
            out += (group.x, group.h, group.ring)
        return out + [proj.weight for proj in sim.projections]

    def _bind(self) -> None:
        sim, dtype = self.sim, self.sim.dtype
        tensors = self._bound_tensors()
        bound = self._bound
        if bound is None or len(bound) != len(tensors) or any(
                a is not b or (a is not None and a.data_ptr() != ptr) for a, (b, ptr) in zip(tensors, bound)):
            # a tensor was replaced (a checkpoint load, an assignment) since the last run: bind them all again
            for name, i in self.pop_index.items():
                state = sim.populations[name].state
                for j, value in enumerate(state):
                    self._state_ptrs[i][j] = _tensor_ptr(value, dtype)
            for g, group in enumerate(sim.groups):
                G = self.groups[g]
                G.x, G.h, G.ring = (_tensor_ptr(group.x, dtype), _tensor_ptr(group.h, dtype),
                                    _tensor_ptr(group.ring, dtype))
            for j, proj in enumerate(sim.projections):
                self.projs[j].w = _tensor_ptr(proj.weight, dtype)
            # the tensors are held here, so an address cannot be reused by another tensor unnoticed
            self._bound = [(t, t.data_ptr() if t is not None else 0) for t in tensors]
        for j, proj in enumerate(sim.projections):
            if j in self._plastic:
                continue
            J = self.projs[j]
            same = self._same_weight(j, proj.weight)
            J.same, J.w_same = int(same is not None), same if same is not None else 0.0
        for q, inp in enumerate(sim.inputs):
            Q = self.inputs[q]
            if inp.type == "poisson":  # rates may have changed between runs (Simulator.set_poisson_rate)
                Q.lam = inp.rate_per_step
                Q.lams = _tensor_ptr(inp.rate_map, dtype) if inp.rate_map is not None else None
                self._poisson_plan(q, inp.rate_map, Q)
            elif inp.type == "spike_file":  # the first event at or after this step (runs may resume anywhere)
                Q.cursor = int(np.searchsorted(self._event_steps[q], sim.step_count, side="left"))

    def run(self, steps: int, bar=None) -> None:
        """Advance ``steps`` steps, flushing spike buffers into the simulator's monitors as they fill. State
        monitors read the state tensors (which the kernel updates in place) after every step, so with one the
        kernel is called once per step."""
        from ..monitors import RateMonitor, SpikeMonitor, StateMonitor

        sim = self.sim
        self._bind()
        records_state = any(isinstance(m, StateMonitor) for m in sim.monitors)
        # at most CHUNK_STEPS steps per call into C: Python sees Ctrl-C (and updates the bar) between calls
        chunk = 1 if records_state else CHUNK_STEPS
        recs, buffers = self._records(max(1, min(chunk, steps)))
        net = self._net(recs)
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
                        m.add_triples(torch.from_numpy(buffers[r][:filled].copy()))
                    m.dropped += int(recs[r].dropped)
                elif isinstance(m, RateMonitor):
                    m.record_counts(torch.from_numpy(buffers[r][:done]))
                elif done:
                    m.record(sim.populations[m.target].state)
            left -= done
            sim.step_count = int(net.k)
            if bar is not None:
                bar.update(done)
        if steps > 0:
            self._ran()

    def _records(self, rate_rows: int) -> tuple:
        """The C monitor records (and their buffers: ``rate_rows`` steps of a rate monitor), kept from the last
        run while the monitors, their buffers' sizes and count tensors are the same."""
        from ..monitors import SpikeMonitor, StateMonitor

        sim, B = self.sim, self.sim.batch
        caps = [max(1, min(max(SPIKE_BUFFER_MIN, 4 * B * sim.populations[m.target].model.size),
                           m.max_spikes - m.stored)) if isinstance(m, SpikeMonitor) else 0 for m in sim.monitors]
        key = (tuple(map(id, sim.monitors)), tuple(caps), rate_rows)
        if self._recs is not None and self._recs[0] == key:
            recs, buffers = self._recs[1], self._recs[2]
            for r, m in enumerate(sim.monitors):  # a monitor's counts may be a new tensor (reset_counts)
                if isinstance(m, SpikeMonitor):
                    recs[r].counts = ctypes.cast(_tensor_ptr(m.counts, torch.int64), P_int64)
            return recs, buffers
        recs = (Rec * max(1, len(sim.monitors)))()
        buffers = []
        for r, m in enumerate(sim.monitors):
            R = recs[r]
            R.pop = self.pop_index[m.target]
            if isinstance(m, SpikeMonitor):
                R.type = 0
                # room for what the monitor may still store (spikes past its max_spikes are only counted)
                R.cap = caps[r]
                buf = self._spike_buffer(r, R.cap)
                R.triples = _ptr(buf, ctypes.c_int64)
                R.counts = ctypes.cast(_tensor_ptr(m.counts, torch.int64), P_int64)
            elif isinstance(m, StateMonitor):
                R.type = 2  # read from Python after each step
                buf = None
            else:
                R.type = 1
                buf = np.zeros((rate_rows, B), dtype=np.int64)
                R.counts = _ptr(buf, ctypes.c_int64)
            buffers.append(buf)
        self._recs = (key, recs, buffers, list(sim.monitors))  # the monitors held: their ids stay theirs
        return recs, buffers

    def _net(self, recs) -> "Net":
        """The C network record of this run: its rules and modulator channels bound (:meth:`_bind_rules`)."""
        sim = self.sim
        chans, n_chans = self._bind_rules()
        return Net(B=sim.batch, L=sim.ring_length, n_pops=len(self.pops), n_groups=len(sim.groups),
                   n_projs=len(sim.projections), n_inputs=len(sim.inputs), n_recs=len(sim.monitors),
                   n_rules=len(self.rule_entries), n_chans=n_chans, threads=self.threads, parts=self.parts,
                   k=sim.step_count, pops=self.pops, groups=self.groups, projs=self.projs, inputs=self.inputs,
                   recs=recs, rng=self.rng_state.ctypes.data, rules=self.rules, chans=chans)

    def _ran(self) -> None:
        """After a run of at least one step: the weights are within bounds (until Python edits them)."""
        for r, (_, proj, _, _) in enumerate(self.rule_entries):
            self._clipped[r] = (proj.weight, proj.weight._version)

    # -- trials in one call -----------------------------------------------------------------------------
    def trials_reason(self) -> Optional[str]:
        """Why :meth:`run_trials` cannot run this network's trials in C (``None`` when it can): every monitor
        must be a spike monitor that only counts (``max_spikes`` reached), as the trials are not returned to
        Python between steps."""
        from ..monitors import SpikeMonitor

        for m in self.sim.monitors:
            if not isinstance(m, SpikeMonitor):
                return f"monitor {m.name!r} records more than spike counts"
            if m.max_spikes - m.stored > 0:
                return f"spike monitor {m.name!r} stores spikes (max_spikes {m.max_spikes})"
        return None

    def run_trials(self, steps: int, rest: tuple, input_index: int, rates: torch.Tensor,
                   outputs: Sequence[tuple], stop_below: int) -> int:
        """Run ``len(rates)`` trials of ``steps`` steps in one call into C (``bc_run_trials``): before each, the
        simulator's rest plan ``rest`` (``(copies [(dst, src)], zeros [tensor])``), row ``k`` of ``rates``
        (``[K, B*m]``, mean counts per step, this engine's dtype) into input ``input_index``'s rate map, and
        every spike monitor's counts zeroed; after each, the counts of ``outputs`` (``(monitor index, int64
        tensor [K, B, n])``) copied out. Returns the trials run (fewer when one counted fewer than
        ``stop_below`` spikes in some trial of the batch in the first output). :meth:`trials_reason` must be
        ``None``; the caller has set the first trial's rates (so the map and its plan arrays exist)."""
        sim = self.sim
        self._bind()
        recs, _ = self._records(1)
        net = self._net(recs)
        for r in range(len(sim.monitors)):
            recs[r].filled, recs[r].dropped, recs[r].room = 0, 0, 0
        copies, zeros = rest
        held = [t for pair in copies for t in pair] + list(zeros) + [rates] + [out for _, out in outputs]
        for t in held:
            if t.device.type != "cpu" or not t.is_contiguous():
                raise ValueError("run_trials: every tensor must be a contiguous CPU tensor")
        n_trials = int(rates.shape[0])
        Q = self.inputs[input_index]
        if not Q.lams or not Q.limits:
            raise ValueError("run_trials: set the input's rates (a map) before the trials")
        vp = c_void_p
        arrays = dict(
            copy_dst=(vp * max(1, len(copies)))(*[d.data_ptr() for d, _ in copies]),
            copy_src=(vp * max(1, len(copies)))(*[s.data_ptr() for _, s in copies]),
            copy_bytes=(c_int64 * max(1, len(copies)))(*[d.numel() * d.element_size() for d, _ in copies]),
            zero_dst=(vp * max(1, len(zeros)))(*[z.data_ptr() for z in zeros]),
            zero_bytes=(c_int64 * max(1, len(zeros)))(*[z.numel() * z.element_size() for z in zeros]),
            out_rec=(c_int32 * max(1, len(outputs)))(*[r for r, _ in outputs]),
            out=(vp * max(1, len(outputs)))(*[out.data_ptr() for _, out in outputs]))
        spec = Trials(n_copies=len(copies), n_zeros=len(zeros), rates=_tensor_ptr(rates, sim.dtype),
                      m=rates.shape[1] // sim.batch, input=input_index, n_out=len(outputs),
                      stop_below=int(stop_below),
                      **{name: ctypes.cast(a, Trials._pointer_types[name]) for name, a in arrays.items()})
        done = int(self.lib.bc_run_trials(ctypes.byref(net), ctypes.byref(spec), int(steps), n_trials))
        for r, m in enumerate(sim.monitors):
            m.dropped += int(recs[r].dropped)
        sim.step_count = int(net.k)
        if done * steps > 0:
            self._ran()
        return done

    def weights_found_finite(self) -> set:
        """Names of the projections whose every weight the kernel found finite on the last step run: those whose
        rule chain ends with a normalisation that ran then (its pass writes every weight and notes whether all
        are finite), so the blow-up check need not read them again."""
        last: dict = {}
        for r, (_, proj, _, _) in enumerate(self.rule_entries):
            last[proj.name] = r
        step = self.sim.step_count - 1
        found = set()
        for name, r in last.items():
            proj, after_run = self.rule_entries[r][1], self._clipped.get(r)
            unedited = after_run is not None and after_run[0] is proj.weight and after_run[1] == proj.weight._version
            if unedited and self.rules[r].kind == -1 and self.rules[r].finite_at == step:
                found.add(name)
        return found

    def all_finite(self, tensors: list) -> Optional[bool]:
        """``True`` when the sum of every tensor is finite, so that none holds a NaN or an infinity (one C call
        over them all: the blow-up check's fast path); ``False`` when a sum is not (the caller counts exactly:
        finite values whose sum overflows also land there); ``None`` when a tensor is not a contiguous CPU
        tensor of the engine's dtype (the caller checks in PyTorch)."""
        key = tuple(map(id, tensors))
        cached = self._finite_args
        if cached is None or cached[0] != key or any(t.data_ptr() != p for t, p in zip(tensors, cached[2])):
            dtype = self.sim.dtype
            if any(t.dtype != dtype or t.device.type != "cpu" or not t.is_contiguous() for t in tensors):
                return None
            ptrs = np.fromiter((t.data_ptr() for t in tensors), dtype=np.uint64, count=len(tensors))
            lens = np.fromiter((t.numel() for t in tensors), dtype=np.int64, count=len(tensors))
            # the tensors are held, so that their ids name them while the entry lives
            cached = self._finite_args = (key, list(tensors), ptrs.tolist(), ptrs, lens)
        ptrs, lens = cached[3], cached[4]
        return int(self.lib.bc_first_nonfinite(ptrs.ctypes.data, lens.ctypes.data, len(tensors))) < 0

    # -- checkpoints ------------------------------------------------------------------------------------
    def rng_tensor(self) -> torch.Tensor:
        return torch.from_numpy(self.rng_state.view(np.int64).copy())

    def load_rng_tensor(self, state: torch.Tensor) -> None:
        self.rng_state[:] = state.numpy().view(np.uint64)
