"""The distributed clock-driven loop: an assembly's neurons partitioned over the ranks of a process group.

Scheme (NEST's; Morrison, Mehring, Geisel, Aertsen & Diesmann 2005, "Advancing the boundaries of high-
connectivity network simulation with distributed computing", Neural Comput 17:1776; Jordan et al. 2018)::

    rank r owns neurons O_r (braincore.distributed.partition), their state, their synaptic variables and ring
    buffers, their external inputs, and every synapse whose *target* is in O_r (post-synaptic alignment)

    D = min over projections of the delay (steps, >= 1): the minimum delay
    for each interval [t0, t0 + D):
        for k in t0 .. t0 + D - 1:            (no communication)
            1. deliver ring slot k (and this step's Poisson input) into the synaptic variables
            2. synaptic input (current, conductance x (E_rev - v) x 1e-3, or a voltage jump), neuron step
            3. buffer the owned neurons' spikes as codes  (k - t0) * N + g   (g: global neuron index)
            4. synaptic decay, record
        exchange: one all-gather of every rank's buffer (a header word with the count, then the codes)
        deliver:  sort the gathered codes (= by step, then global index); for each projection, in assembly
                  order, add the weights of the local synapses of the spiking pre neurons into the ring slot
                  (k + delay): index_add_, one synapse after the other

A spike emitted at ``t0 <= k < t0 + D`` arrives at ``k + d >= t0 + D`` (``d >= D``), i.e. after the exchange,
so buffering changes nothing: the schedule is that of :class:`braincore.simulator.Simulator` step for step
(deliver, input, neuron step, propagate with delay ``d``, decay).

Bit-identical results for every partition (1, 2, 3 ... ranks):

- every random number (connectivity, weights, delays, initial states, Poisson input counts) is a counter-based
  draw keyed by the global index of the neuron or synapse (:mod:`braincore.construction`,
  :mod:`braincore.counter_rng`);
- a post neuron's synaptic variable sums its inputs in an order that does not depend on the partition, the
  Simulator's: ring slot contributions by (emission step, projection, pre neuron, synapse), sequentially
  (``index_add_`` on the CPU adds one source element after the other); then the ring slot, then the Poisson counts
  ``n w``;
- elementwise float operations (``+ - * /``, comparisons) are exactly rounded in SIMD and scalar code alike, and
  PyTorch's unary functions (``exp``, ``log`` ...) treat a tensor's tail with the SIMD kernel; the per-element
  operation that is not position-independent, ``torch.pow`` with a non-integer exponent, is refused
  (:func:`partition_hazards`); the decays ``exp(-dt/tau)`` are Python floats, and no fused ``a + alpha b`` kernel
  is used (its SIMD body uses FMA, its scalar tail may not).

One description, one network: :class:`~braincore.simulator.Simulator` builds its network with the same
construction, so with no Poisson input this engine on any number of ranks and the Simulator (PyTorch and native
engines) compute the same spikes and states in float64 (``tests/test_distributed.py``). Poisson input differs:
this engine's counts come from the counter-based stream ``(seed, "poisson/<input>", neuron, step)``, the
Simulator's from ``torch.poisson`` (PyTorch engine) or the native engine's generator.

Supported (anything else raises :class:`ConfigError` naming it and why): every model with an equation definition
(:func:`model_problems`: each steps with its generated ``model.step``), scalar parameters, batch 1, CPU tensors
(gloo; NCCL and CUDA tensors would need a deterministic ``index_add_``); synapses ``instantaneous``,
``exponential``, ``alpha``, ``conductance``; every connector (``fixed_outdegree``, ``fixed_total``, ``explicit``
and ``file`` are drawn whole on every rank); every delay (the exchange interval is the smallest delay of the
network, per-synapse delays otherwise) and weight distribution, explicit weight lists; inputs ``poisson`` (one
stream per neuron: the sum of its ``sources`` trains, a Poisson count of mean ``rate dt sources`` per step),
``constant_current`` and ``step_current``; ``spikes`` monitors; no plasticity. ``storage`` is ignored (always CSR).

A state variable or weight that becomes NaN or infinite stops the run on every rank with the single-process
engines' :class:`~braincore.errors.NumericalError` (:meth:`DistributedSimulator.check_finite`).

Checkpoints are per rank (:meth:`DistributedSimulator.save`): each writes its own file, atomically, and a
resumed run (same world size and partition) is bit-identical to an uninterrupted one.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from ..checkpoint import restore_checkpoint, save_checkpoint
from ..neurons import get_model
from ..errors import ConfigError
from ..construction import build_projection, initial_values, parse_delay
from ..finite import raise_if_not_finite
from ..simulator import (
    DTYPES, FINITE_CHECK_EVERY, _quantity, deliver_arriving, synapse_factor, synapse_kind, synaptic_drive)
from ..synapses.csr import outgoing_rows, to_csr
from ..synapses.delays import delay_steps
from ..units import dimension_of
from ..validation import require_valid, weight_dimension
from . import rng
from .partition import PARTITION_SCHEMES, partition_table
from .support import SUPPORTED_INPUTS, check_supported, model_problems, partition_hazards

Tensor = torch.Tensor


# ------------------------------------------------------------------------------------------ communication
class Comm:
    """The process group seen by the engine: ``rank``, ``size`` and the few collectives it uses.

    Without an initialised ``torch.distributed`` (or with ``group=None`` and world size 1) it is a one-rank
    group whose collectives return their input."""

    def __init__(self, group: Any = None):
        import torch.distributed as dist

        self.dist = dist if dist.is_available() and dist.is_initialized() else None
        self.group = group
        self.rank = self.dist.get_rank(group) if self.dist else 0
        self.size = self.dist.get_world_size(group) if self.dist else 1

    def all_gather(self, tensor: Tensor) -> list[Tensor]:
        if self.size == 1:
            return [tensor]
        out = [torch.empty_like(tensor) for _ in range(self.size)]
        self.dist.all_gather(out, tensor, group=self.group)
        return out

    def all_gather_object(self, obj: Any) -> list:
        if self.size == 1:
            return [obj]
        out = [None] * self.size
        self.dist.all_gather_object(out, obj, group=self.group)
        return out

    def barrier(self) -> None:
        if self.size > 1:
            self.dist.barrier(group=self.group)


# ------------------------------------------------------------------------------------------ runtime pieces
@dataclass
class LocalPopulation:
    name: str
    model: Any
    state: Any
    owned: Tensor  # population indices of the owned neurons, ascending  [n]
    offset: int  # global index of the population's neuron 0
    size: int  # whole population
    groups: list = field(default_factory=list)
    current: Optional[Tensor] = None  # external current [1, n]
    exchanged: bool = False  # a pre population of some projection: its spikes are exchanged


@dataclass
class LocalGroup:
    post: str
    kind: str
    tau: float
    E_rev: Optional[float]
    factor: float
    decay: float
    x: Tensor  # [1, n]
    h: Optional[Tensor] = None
    ring: Optional[Tensor] = None  # [L, n]


@dataclass
class LocalProjection:
    """Incoming synapses of the owned post neurons, CSR by pre neuron (rows over the whole pre population)."""

    name: str
    pre: str
    post: str
    group: int
    delay: Optional[int]  # steps, when every synapse has it (None: see delays)
    indptr: Tensor  # [N_pre + 1]
    post_local: Tensor  # [S] positions in the owned post neurons
    weight: Tensor  # [S]
    n_synapses: int
    delays: Optional[Tensor] = None  # [S] steps, when they differ


@dataclass
class LocalInput:
    name: str
    type: str
    target: str
    positions: Tensor  # positions (in the owned neurons) of the targets this rank holds
    neurons: Tensor  # their population indices
    all_owned: bool  # positions == arange(n)
    group: Optional[int] = None
    scale: float = 0.0  # weight (x e for alpha kernels)
    table: Optional[Tensor] = None  # Poisson CDF
    base: Optional[Tensor] = None  # hash of (seed, stream, neuron), the per-neuron part of the key
    amplitude: float = 0.0
    start: int = 0
    stop: Optional[int] = None


@dataclass
class LocalSpikeMonitor:
    name: str
    target: str
    max_spikes: int
    chunks: list = field(default_factory=list)  # [n_i, 2] (step, population index)
    stored: int = 0
    dropped: int = 0
    counts: Optional[Tensor] = None  # [n] owned neurons


@dataclass
class ExchangeStats:
    """Communication counters of this rank (``bytes_*`` in bytes, times in seconds)."""

    intervals: int = 0
    spikes_sent: int = 0  # own spikes put into the exchange
    spikes_received: int = 0  # spikes of the other ranks
    bytes_sent: int = 0  # own payload (codes), once
    bytes_received: int = 0  # the other ranks' payload
    bytes_wire: int = 0  # what the all-gathers moved into this rank (headers and padding included)
    second_rounds: int = 0  # intervals whose spikes overflowed the buffer and needed a second all-gather
    comm_s: float = 0.0  # time in the collectives (waiting for slower ranks included)
    comm_min_s: float = 0.0  # the shortest exchange (about the all-gather's own latency)
    deliver_s: float = 0.0  # time sorting and delivering the gathered spikes
    step_s: float = 0.0  # time in the neuron/synapse updates

    def as_dict(self) -> dict:
        return dict(self.__dict__)


# ------------------------------------------------------------------------------------------ the engine
class DistributedSimulator:
    """Runs an :class:`~braincore.graph.Assembly` on the ranks of ``torch.distributed``'s default group (or
    ``group``), each rank holding its share (see the module docstring).

    ``partition``: ``blocks`` | ``round_robin`` | ``populations`` (:mod:`.partition`); ``dtype``, ``seed``,
    ``dt`` override the assembly's run settings. Call it on every rank with the same arguments.
    """

    def __init__(self, assembly, *, partition: str = "blocks", dtype: Optional[str] = None,
                 seed: Optional[int] = None, dt: Optional[float] = None, group: Any = None,
                 buffer: int = 64):
        require_valid(assembly)
        unsupported = check_supported(assembly, dtype=dtype)
        if unsupported:
            raise ConfigError("the distributed engine does not support this assembly:\n" + "\n".join(unsupported))
        if partition not in PARTITION_SCHEMES:
            raise ConfigError(f"partition: unknown scheme {partition!r}; use one of {', '.join(PARTITION_SCHEMES)}")
        run = assembly.run
        self.assembly = assembly
        self.comm = Comm(group)
        self.rank, self.world_size = self.comm.rank, self.comm.size
        self.partition = partition
        self.dt = float(dt if dt is not None else run.dt)
        self.dtype = DTYPES[dtype if dtype is not None else run.dtype]
        self.seed = int(seed if seed is not None else run.seed)
        self.duration = float(run.duration)
        self.step_count = 0
        self._finite_step = 0  # the step of the last check that found every state and weight finite
        self.stats = ExchangeStats()
        self._capacity = int(buffer)  # codes per rank per interval that fit in one all-gather (adapts)
        self._window_top = 0  # the largest count of the current 64-interval window
        dt_ = self.dtype

        # populations: sizes, global offsets, the owned share
        specs = list(assembly.populations())
        sizes = {s.name: s.size for s in specs}
        table = partition_table(sizes, self.world_size, partition)
        self.n_total = sum(sizes.values())
        self.populations: dict[str, LocalPopulation] = {}
        offset = 0
        for spec in specs:
            owned = table[self.rank][spec.name]
            n = int(owned.numel())
            cls = get_model(spec.model)
            kwargs = {"dt": self.dt, "method": spec.method}
            model = (cls.from_preset(spec.preset, max(n, 1), params=spec.params, **kwargs) if spec.preset
                     else cls(max(n, 1), spec.params, **kwargs))
            state = model.initial_state(1, dtype=dt_)
            state = type(state)(*(f[:, :n].contiguous() for f in state))
            for var, init in (spec.init or {}).items():
                value = initial_values(init, self.seed, f"init/{spec.name}/{var}", owned, 1, dt_)
                state = state._replace(**{var: value})
            self.populations[spec.name] = LocalPopulation(spec.name, model, state, owned, offset, spec.size)
            offset += spec.size

        # synaptic groups and projections
        self.groups: list[LocalGroup] = []
        index: dict = {}
        self.projections: list[LocalProjection] = []
        local_delays = []
        for spec in assembly.projections():
            pre, post = self.populations[spec.pre], self.populations[spec.post]
            where = f"projection {spec.name}"
            gi = self._group_for(spec.synapse, post, index, where)
            group = self.groups[gi]
            built = build_projection(spec, pre.size, post.size, kind=group.kind, seed=self.seed, dt=self.dt,
                                     dimension=weight_dimension(group.kind, post.model.input_unit), posts=post.owned)
            # CSR by pre over the owned post neurons (the Simulator's order restricted to them)
            post_local = torch.searchsorted(post.owned, built.post)
            delay = built.delay
            local_delays.append(delay)
            uniform = int(delay[0]) if delay.numel() and bool((delay == delay[0]).all()) else None
            self.projections.append(LocalProjection(spec.name, spec.pre, spec.post, gi, uniform,
                                                    to_csr(built.pre, post_local, pre.size), post_local,
                                                    built.weight.to(dt_), int(built.pre.numel()),
                                                    delays=None if uniform is not None else delay))
            pre.exchanged = True
        # the minimum and maximum delays over the whole network (every rank holds a share of the synapses)
        bounds = [(int(d.min()), int(d.max())) for d in local_delays if d.numel()]
        every = [b for mine in self.comm.all_gather_object(bounds) for b in mine]
        #: the minimum delay D (steps): spikes are exchanged once every D steps
        self.min_delay = min(b[0] for b in every) if every else 1
        self.max_delay = max(b[1] for b in every) if every else 1
        for proj in self.projections:  # a projection with no synapse here
            if proj.delay is None and proj.delays is None:
                proj.delay = self.min_delay
        self.ring_length = self.max_delay + 1
        for group in self.groups:
            n = self.populations[group.post].owned.numel()
            group.ring = torch.zeros(self.ring_length, n, dtype=dt_)

        self.inputs = [self._build_input(spec, index) for spec in assembly.inputs]
        for pop in self.populations.values():
            if any(i.target == pop.name and i.type != "poisson" for i in self.inputs):
                pop.current = torch.zeros(1, pop.owned.numel(), dtype=dt_)
        self.monitors = [LocalSpikeMonitor(s.name, s.target, int(s.max_spikes) if s.max_spikes is not None
                                           else 10_000_000) for s in assembly.monitors]
        # spike codes: (step offset within the interval) * N + global index
        self.code_dtype = torch.int32 if self.min_delay * self.n_total < 2 ** 31 - 1 else torch.int64
        self._pending: list[Tensor] = []  # this interval's codes, one tensor per step

    # -- construction helpers -------------------------------------------------------------------------
    def _group_for(self, synapse: Optional[dict], post: LocalPopulation, index: dict, where: str) -> int:
        kind, tau, E_rev = synapse_kind(synapse, where)
        key = (post.name, kind, tau, E_rev)
        if key not in index:
            n = post.owned.numel()
            x = torch.zeros(1, n, dtype=self.dtype)
            self.groups.append(LocalGroup(post.name, kind, tau, E_rev,
                                          synapse_factor(kind, post.model.input_unit, post.name),
                                          math.exp(-self.dt / tau) if tau > 0 else 0.0, x,
                                          h=torch.zeros_like(x) if kind == "alpha" else None))
            index[key] = len(self.groups) - 1
            post.groups.append(index[key])
        return index[key]

    def _build_input(self, spec, index: dict) -> LocalInput:
        pop = self.populations[spec.target]
        params = dict(spec.params or {})
        where = f"input {spec.name}"
        n = pop.owned.numel()
        if params.get("neurons") is not None:
            wanted = torch.as_tensor(sorted(set(int(i) for i in params["neurons"])), dtype=torch.long)
            mask = torch.isin(pop.owned, wanted)
            positions = mask.nonzero().squeeze(1)
        else:
            positions = torch.arange(n)
        inp = LocalInput(spec.name, spec.type, spec.target, positions, pop.owned[positions],
                         all_owned=positions.numel() == n)
        inp.start = int(round(_quantity(params.get("start", 0.0), "time", f"{where}: start") / self.dt))
        if params.get("stop") is not None:
            inp.stop = int(round(_quantity(params["stop"], "time", f"{where}: stop") / self.dt))
        if spec.type == "poisson":
            inp.group = self._group_for(params.get("synapse", {"type": "instantaneous"}), pop, index, where)
            group = self.groups[inp.group]
            weight = _quantity(params.get("weight", 0.0), weight_dimension(group.kind, pop.model.input_unit),
                               f"{where}: weight")
            inp.scale = weight * (math.e if group.kind == "alpha" else 1.0)
            rate = _quantity(params.get("rate", 0.0), "frequency", f"{where}: rate")
            inp.table = rng.cdf_table_poisson(rate * self.dt / 1000.0 * int(params.get("sources", 1)))
            inp.base = rng.hash_keys(self.seed, rng.stream_id(f"poisson/{spec.name}"), inp.neurons)
        else:
            inp.amplitude = _quantity(params.get("amplitude", 0.0), dimension_of(pop.model.input_unit),
                                      f"{where}: amplitude")
        return inp

    # -- the loop -------------------------------------------------------------------------------------
    @property
    def t(self) -> float:
        """Current time (ms): the start of the next step."""
        return self.step_count * self.dt

    def run(self, duration: Optional[float] = None) -> "DistributedSimulator":
        """Advance by ``duration`` ms (default: the assembly's duration) on every rank; returns self. A run may
        end inside a minimum-delay interval: its spikes wait in the buffer for the interval's exchange."""
        duration = self.duration if duration is None else float(duration)
        steps = int(round(duration / self.dt))
        if steps < 0:
            raise ConfigError(f"duration must be >= 0 ms, got {duration:g}")
        for m in self.monitors:
            if m.counts is None:
                m.counts = torch.zeros(self.populations[m.target].owned.numel(), dtype=torch.int64)
        D = self.min_delay
        with torch.no_grad():
            for _ in range(steps):
                t0 = time.perf_counter()
                self._step()
                self.stats.step_s += time.perf_counter() - t0
                if self.step_count % D == 0:
                    self._exchange_and_deliver(self.step_count - D)
                if self.step_count % FINITE_CHECK_EVERY == 0:
                    self.check_finite()
            self.check_finite()
        return self

    def check_finite(self) -> None:
        """Raise :class:`~braincore.errors.NumericalError` on every rank when a state variable or a weight is NaN
        or infinite on any rank, naming the population or projection, the counts over all ranks, the steps since
        the last check and the likely cause: the single-process engines' check
        (:func:`braincore.finite.raise_if_not_finite`), a collective here. The run calls it every
        :data:`~braincore.simulator.FINITE_CHECK_EVERY` steps (on every rank at the same step) and at its end."""
        raise_if_not_finite(
            self.assembly.name, self.dt, self._finite_step, self.step_count,
            [(proj.name, proj.weight, False) for proj in self.projections],
            [(name, var, value, getattr(pop.model, "method", None)) for name, pop in self.populations.items()
             for var, value in zip(pop.state._fields, pop.state) if isinstance(value, Tensor)],
            gather=self.comm.all_gather_object if self.world_size > 1 else None)
        self._finite_step = self.step_count

    def _step(self) -> None:
        k = self.step_count
        slot = k % self.ring_length
        deliver_arriving(self.groups, slot)
        for inp in self.inputs:
            if inp.type == "poisson" and k >= inp.start and (inp.stop is None or k < inp.stop):
                group = self.groups[inp.group]
                target = group.h if group.kind == "alpha" else group.x
                u = (rng._srl(rng.mix64(inp.base ^ k), 11).to(torch.float64) + 0.5) * rng._TWO_M53
                add = rng.inverse_cdf(inp.table, u).to(self.dtype) * inp.scale
                if inp.all_owned:
                    target[0] += add
                else:
                    target[0, inp.positions] += add
        for pop in self.populations.values():
            state, drive = synaptic_drive(pop.state, self._external_current(pop, k),
                                          [self.groups[gi] for gi in pop.groups])
            spikes, pop.state = pop.model.step(state, drive)
            fired = (spikes[0] > 0).nonzero().squeeze(1)
            if pop.exchanged and fired.numel():
                code = (k % self.min_delay) * self.n_total + pop.offset + pop.owned[fired]
                self._pending.append(code.to(self.code_dtype))
            for m in self.monitors:
                if m.target == pop.name:
                    self._record(m, k, pop, fired)
        for group in self.groups:
            if group.kind == "alpha":
                group.x += group.h * (self.dt / group.tau)
                group.x *= group.decay
                group.h *= group.decay
            elif group.kind != "instantaneous":
                group.x *= group.decay
        self.step_count = k + 1

    def _external_current(self, pop: LocalPopulation, k: int) -> Optional[Tensor]:
        if pop.current is None:
            return None
        pop.current.zero_()
        for inp in self.inputs:
            if inp.target != pop.name or inp.type == "poisson":
                continue
            if k < inp.start or (inp.stop is not None and k >= inp.stop):
                continue
            if inp.all_owned:
                pop.current += inp.amplitude
            else:
                pop.current[:, inp.positions] += inp.amplitude
        return pop.current.clone()

    def _record(self, m: LocalSpikeMonitor, k: int, pop: LocalPopulation, fired: Tensor) -> None:
        if fired.numel() == 0:
            return
        m.counts[fired] += 1
        room = m.max_spikes - m.stored
        if room < fired.numel():
            m.dropped += fired.numel() - max(room, 0)
            fired = fired[:max(room, 0)]
        if fired.numel():
            m.chunks.append(torch.stack([torch.full_like(fired, k), pop.owned[fired]], dim=1))
            m.stored += fired.numel()

    # -- the exchange ---------------------------------------------------------------------------------
    def _all_gather_codes(self, local: Tensor) -> Tensor:
        """Every rank's codes of the interval, concatenated (rank order). One all-gather of a buffer of
        ``1 + capacity`` words (the count, then the codes, padded with -1) when every rank's spikes fit, else a
        second all-gather of the exact maximum (and the capacity doubles until it would have fitted); every 64
        intervals the capacity is reset to fit the largest count seen (NEST adapts its buffers likewise)."""
        P, n, st = self.world_size, int(local.numel()), self.stats
        item = local.element_size()
        st.spikes_sent += n
        st.bytes_sent += n * item
        if P == 1:
            return local
        t0 = time.perf_counter()
        cap = self._capacity
        buf = torch.full((1 + cap,), -1, dtype=self.code_dtype)
        buf[0] = n
        buf[1:1 + min(n, cap)] = local[:cap]
        parts = self.comm.all_gather(buf)
        st.bytes_wire += (P - 1) * (1 + cap) * item
        counts = [int(p[0]) for p in parts]
        top = max(counts)
        if top > cap:  # overflow: a second round with the exact size
            st.second_rounds += 1
            while self._capacity < top:
                self._capacity *= 2
            big = torch.full((top,), -1, dtype=self.code_dtype)
            big[:n] = local
            parts = [p[:c] for p, c in zip(self.comm.all_gather(big), counts)]
            st.bytes_wire += (P - 1) * top * item
        else:
            parts = [p[1:1 + c] for p, c in zip(parts, counts)]
        # every rank sees the same counts, so every rank picks the same capacity (all-gathers need equal sizes):
        # each 64 intervals, the next power of two above 1.25 x the largest count seen, at least 16
        self._window_top = max(self._window_top, top)
        if st.intervals % 64 == 0:
            self._capacity = max(16, 1 << math.ceil(math.log2(1.25 * self._window_top + 1)))
            self._window_top = 0
        dt_comm = time.perf_counter() - t0
        st.comm_s += dt_comm
        st.comm_min_s = dt_comm if st.comm_min_s == 0.0 else min(st.comm_min_s, dt_comm)
        received = sum(counts) - n
        st.spikes_received += received
        st.bytes_received += received * item
        return torch.cat(parts)

    def _exchange_and_deliver(self, t0: int) -> None:
        """Exchange the spikes of the interval ``[t0, t0 + D)`` and schedule their arrivals."""
        local = (torch.cat(self._pending) if self._pending else torch.zeros(0, dtype=self.code_dtype))
        self._pending = []
        self.stats.intervals += 1
        codes = self._all_gather_codes(local)
        t1 = time.perf_counter()
        if codes.numel():
            codes = torch.sort(codes.long()).values  # by (step, global index): codes are unique
            offset, gid = codes // self.n_total, codes % self.n_total
            L = self.ring_length
            per_group: dict[int, list] = {}
            for p, proj in enumerate(self.projections):
                pre = self.populations[proj.pre]
                mask = (gid >= pre.offset) & (gid < pre.offset + pre.size)
                if not bool(mask.any()):
                    continue
                syn, row = outgoing_rows(proj.indptr, gid[mask] - pre.offset)
                if syn.numel() == 0:
                    continue
                step = offset[mask][row]
                delay = proj.delay if proj.delays is None else proj.delays[syn]
                slot = (t0 + step + delay) % L
                n = self.groups[proj.group].ring.shape[1]
                per_group.setdefault(proj.group, []).append((step * len(self.projections) + p,
                                                             slot * n + proj.post_local[syn], proj.weight[syn]))
            # the Simulator's order of additions: by emission step, then projection (assembly order), then pre
            # neuron and synapse -- so that a slot fed by several projections sums in the same order
            for gi, parts in per_group.items():
                index = torch.cat([part[1] for part in parts]) if len(parts) > 1 else parts[0][1]
                weight = torch.cat([part[2] for part in parts]) if len(parts) > 1 else parts[0][2]
                if len(parts) > 1 and self.min_delay > 1:
                    order = torch.sort(torch.cat([part[0] for part in parts]), stable=True).indices
                    index, weight = index[order], weight[order]
                self.groups[gi].ring.view(-1).index_add_(0, index, weight)
        self.stats.deliver_s += time.perf_counter() - t1

    # -- results --------------------------------------------------------------------------------------
    def local_synapses(self) -> dict[str, int]:
        """Synapses held by this rank, per projection (the incoming synapses of its neurons)."""
        return {p.name: p.n_synapses for p in self.projections}

    def local_spikes(self, name: str) -> dict:
        """This rank's part of a spike monitor: ``step`` and ``neuron`` (population indices), ``counts`` of the
        owned neurons and their indices ``owned``."""
        m = self._monitor(name)
        ev = torch.cat(m.chunks) if m.chunks else torch.zeros(0, 2, dtype=torch.long)
        return {"step": ev[:, 0].numpy(), "neuron": ev[:, 1].numpy(), "owned": self.populations[m.target].owned.numpy(),
                "counts": (m.counts if m.counts is not None else torch.zeros(0, dtype=torch.long)).numpy(),
                "dropped": m.dropped}

    def _monitor(self, name: str) -> LocalSpikeMonitor:
        for m in self.monitors:
            if m.name == name:
                return m
        raise KeyError(f"no monitor named {name!r}; monitors: {', '.join(m.name for m in self.monitors)}")

    def gather_monitors(self) -> Optional[dict]:
        """Every spike monitor, gathered (a collective: call on every rank): on rank 0 ``{name: {t, step,
        neuron, counts, dropped}}`` with the events sorted by (step, neuron) -- the layout of
        :meth:`braincore.simulator.Simulator.monitor` without the trial column -- and ``None`` elsewhere."""
        mine = {m.name: self.local_spikes(m.name) for m in self.monitors}
        every = self.comm.all_gather_object(mine)
        if self.rank != 0:
            return None
        out = {}
        for m in self.monitors:
            parts = [r[m.name] for r in every]
            step = np.concatenate([p["step"] for p in parts]).astype(np.int64)
            neuron = np.concatenate([p["neuron"] for p in parts]).astype(np.int64)
            order = np.lexsort((neuron, step))
            counts = np.zeros(self.populations[m.target].size, dtype=np.int64)
            for p in parts:
                counts[p["owned"]] = p["counts"]
            out[m.name] = {"t": step[order] * self.dt, "step": step[order], "neuron": neuron[order],
                           "counts": counts, "dropped": sum(p["dropped"] for p in parts)}
        return out

    def gather_state(self, population: str, variable: str = "v") -> Optional[Tensor]:
        """A state variable of a whole population ``[N]`` on rank 0 (``None`` elsewhere); a collective."""
        pop = self.populations[population]
        mine = (pop.owned, getattr(pop.state, variable)[0].clone())
        every = self.comm.all_gather_object(mine)
        if self.rank != 0:
            return None
        out = torch.empty(pop.size, dtype=self.dtype)
        for owned, values in every:
            out[owned] = values
        return out

    def gather_stats(self) -> list[dict]:
        """Every rank's :class:`ExchangeStats` with its synapse and neuron counts (a collective, all ranks)."""
        mine = {**self.stats.as_dict(), "rank": self.rank, "synapses": sum(self.local_synapses().values()),
                "neurons": sum(int(p.owned.numel()) for p in self.populations.values()),
                "capacity": self._capacity}
        return self.comm.all_gather_object(mine)

    # -- checkpoints ----------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """This rank's state: step, neuron and synaptic state, ring buffers, the spikes waiting for the
        exchange, monitors, counters; with the partition's identity (checked on load)."""
        return {
            "step_count": self.step_count, "seed": self.seed, "rank": self.rank, "world_size": self.world_size,
            "partition": self.partition, "capacity": self._capacity, "window_top": self._window_top,
            "owned": {n: p.owned.clone() for n, p in self.populations.items()},
            "populations": {n: {f: getattr(p.state, f).clone() for f in p.state._fields}
                            for n, p in self.populations.items()},
            "groups": [{"x": g.x.clone(), "h": g.h.clone() if g.h is not None else None, "ring": g.ring.clone()}
                       for g in self.groups],
            "pending": torch.cat(self._pending) if self._pending else torch.zeros(0, dtype=self.code_dtype),
            "monitors": {m.name: {"events": torch.cat(m.chunks) if m.chunks else torch.zeros(0, 2, dtype=torch.long),
                                  "dropped": m.dropped,
                                  "counts": m.counts.clone() if m.counts is not None else None}
                         for m in self.monitors},
            "stats": {k: v for k, v in self.stats.as_dict().items()},
        }

    def load_state_dict(self, state: dict) -> None:
        for key, mine in (("world_size", self.world_size), ("rank", self.rank), ("partition", self.partition),
                          ("seed", self.seed)):
            if state[key] != mine:
                raise ConfigError(f"checkpoint of {key} {state[key]!r} cannot be loaded here ({key} {mine!r}): "
                                  f"resume with the same world size, partition and seed")
        if set(state["owned"]) != set(self.populations) or any(
                not torch.equal(state["owned"][n], p.owned) for n, p in self.populations.items()) \
                or len(state["groups"]) != len(self.groups):
            raise ConfigError("checkpoint does not match this assembly's partition (different populations, sizes "
                              "or synapses)")
        self.step_count = self._finite_step = int(state["step_count"])
        self._capacity, self._window_top = int(state["capacity"]), int(state["window_top"])
        for name, fields in state["populations"].items():
            pop = self.populations[name]
            pop.state = type(pop.state)(**{f: fields[f].clone() for f in pop.state._fields})
        for group, saved in zip(self.groups, state["groups"]):
            group.x = saved["x"].clone()
            group.h = saved["h"].clone() if saved["h"] is not None else None
            group.ring = saved["ring"].clone()
        self._pending = [state["pending"].clone()] if state["pending"].numel() else []
        for m in self.monitors:
            saved = state["monitors"][m.name]
            m.chunks = [saved["events"].clone()] if saved["events"].numel() else []
            m.stored, m.dropped = int(saved["events"].shape[0]), int(saved["dropped"])
            m.counts = saved["counts"].clone() if saved["counts"] is not None else None
        self.stats = ExchangeStats(**state["stats"])

    def checkpoint_path(self, path) -> Path:
        """This rank's file for the checkpoint ``path``: ``<path>.rank<r>-of-<P>``."""
        path = Path(path)
        return path.with_name(f"{path.name}.rank{self.rank}-of-{self.world_size}")

    def save(self, path) -> Path:
        """Per-rank atomic checkpoint (:func:`braincore.checkpoint.save_checkpoint`), then a barrier so that
        the checkpoint is complete on every rank when any rank returns. Returns this rank's file."""
        out = save_checkpoint(self.checkpoint_path(path), {"distributed_simulator": self.state_dict()})
        self.comm.barrier()
        return out

    def load(self, path) -> "DistributedSimulator":
        """Restore this rank's file of the checkpoint ``path`` into this (identically built) simulator."""
        mine = self.checkpoint_path(path)
        if not mine.is_file():
            others = sorted(p.name for p in mine.parent.glob(f"{Path(path).name}.rank*-of-*"))
            if others:
                raise ConfigError(f"{path}: no file for rank {self.rank} of {self.world_size} ({mine.name}); the "
                                  f"checkpoint holds {', '.join(others)}: resume with the world size that wrote it")
        restore_checkpoint(mine, self.load_state_dict, "distributed_simulator", what="assembly and world size")
        return self


# ------------------------------------------------------------------------------------------ keyed draws
def draw_initial_keyed(spec: Any, seed: int, stream: str, neurons: Tensor, dtype) -> Tensor:
    """Initial values of the given neurons, trial 0 (:func:`braincore.construction.initial_values`)."""
    return initial_values(spec, seed, stream, neurons, 1, dtype)[0]


def projection_delay(spec: Any, dt: float, where: str) -> int:
    """A constant delay in steps (``None``: one step); distributions are drawn per synapse by
    :func:`braincore.construction.build_projection` instead."""
    if spec is None:
        return 1
    parsed = parse_delay(spec, where)
    if parsed["dist"] != "constant":
        raise ConfigError(f"{where}: a delay distribution has no single delay (drawn per synapse)")
    return int(delay_steps(torch.tensor([parsed["value"]], dtype=torch.float64), dt)[0])


__all__ = ["DistributedSimulator", "Comm", "ExchangeStats", "check_supported", "draw_initial_keyed",
           "model_problems", "partition_hazards", "projection_delay", "SUPPORTED_INPUTS"]
