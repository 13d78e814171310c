"""The one clock-driven loop: executes an :class:`~braincore.graph.Assembly` step by step.

The schedule of step ``k`` (time ``t_k = k dt``), for ``B`` independent trials at once:

1. **Deliver.** Spikes scheduled for step ``k`` by earlier steps (through per-synapse delays of at least one
   step, kept in a ring buffer per synaptic group) and this step's external input spikes (Poisson sources,
   spike files) are added to the synaptic variables: ``x += sum w``.
2. **Synaptic input.** Each population's input for the step is its external current plus, per synaptic group,
   ``x`` (current synapses, in the model's input unit) or ``x (E_rev - v) * c`` (conductance synapses, ``v``
   at ``t_k``; ``c = 1e-3`` converts nS * mV = pA to nA, ``c = 1`` for mS/cm2 * mV = uA/cm2). Instantaneous
   synapses add ``x`` (mV) to ``v`` directly, then clear.
3. **Neurons.** ``spikes, state = model.step(state, input)`` with the input held over the step (the model's
   own convention: threshold on the updated state, spike stamped at ``t_k``).
4. **Propagate.** Each projection schedules its spiking neurons' outgoing synapses into the ring buffer slot
   ``k + delay`` of the target group: event-driven for sparse projections (only the outgoing synapses of the
   neurons that spiked are touched), one matrix product for dense ones. Then the neuromodulator channels
   (:attr:`Simulator.modulators`, :mod:`braincore.modulators`) decay over the step, and the plasticity rules
   see this step's pre and post spikes (and, for three-factor rules, the modulators' values).
5. **Synaptic decay** over the step, exactly: exponential ``x <- x exp(-dt/tau)``; alpha, with a second
   variable ``h``: ``x <- (x + h dt/tau) exp(-dt/tau)``, ``h <- h exp(-dt/tau)`` (a spike adds ``w e`` to ``h``
   so that the conductance or current peaks at ``w`` one ``tau`` later).
6. **Record**, then ``k <- k + 1``.

Synaptic kernels (``synapse.type``): ``instantaneous`` (weight in mV), ``exponential`` (current, weight in the
post model's input unit), ``alpha`` (current, peak weight in the input unit), ``conductance`` (exponential
conductance with reversal potential ``E_rev``, weight in nS, or in mS/cm2 onto Hodgkin–Huxley neurons).
Projections that target the same population with the same kernel, ``tau`` and ``E_rev`` share one synaptic
variable (their effects add linearly).

Cost of a step (the PyTorch engine is a few dozen small tensor operations per step, each a few microseconds on
the CPU whatever the size): what stays the same for a run is looked up once (:class:`_StepPlan`); populations
with the same generated step, constants and synapse groups step as one flat tensor, their synaptic variables and
ring buffers one flat buffer per synapse kind (:class:`_MergedStep`), and a population's sparse projections into
such a buffer are joined into one (:class:`_JoinedProjection`); on the CPU a few spikes are propagated with one
``index_add_`` per spiking neuron (:data:`SPIKE_LOOP_MAX`); spike monitors count and store every 1024 steps.
None of this changes an operation on any element, nor the order of the additions into any element, so the
engine's float64 results stay those of the native engine, bit for bit.

Reproducibility: connectivity, weights, delays and initial states are counter-based draws keyed by ``seed``
and the index of each neuron or synapse (:mod:`braincore.construction`), so every engine -- PyTorch, native,
the distributed engine on any number of processes -- builds the same network on every device; run-time noise
comes from a generator on the simulation device seeded with ``seed + 1``. ``run(a); run(b)`` equals ``run(a + b)``;
:meth:`Simulator.save` and
:meth:`Simulator.load` checkpoint everything (neuron and synaptic state, ring buffers, weights, step counter,
RNG state, monitors, plasticity traces, neuromodulators) so that a resumed run is bit-identical to an
uninterrupted one.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence, Union

import numpy as np
import torch

from .checkpoint import restore_checkpoint, save_checkpoint
from .data.spikes import load_spike_file, load_values_file
from .devices import resolve_device
from .modulators import Modulators
from .synapses.csr import outgoing_rows
from .monitors import RateMonitor, SpikeMonitor, StateMonitor
from .neurons import get_model
from .errors import ConfigError
from .finite import raise_if_not_finite
from .neurons.base import NeuronModel
from .neurons.poisson import is_spike_source
from .units import UnitError, dimension_of, parse_quantity
from .validation import (BACKENDS, SYNAPSE_TYPES as _SYNAPSE_KEYS, require_valid, required_weight_dimension,
                         resolve_threads)

if TYPE_CHECKING:
    from .native.engine import NativeEngine

Tensor = torch.Tensor

SYNAPSE_TYPES = tuple(_SYNAPSE_KEYS)  # the synapse kinds an assembly may use (see braincore.validation)
DTYPES = {"float32": torch.float32, "float64": torch.float64}


# ------------------------------------------------------------------------------------------ runtime pieces
@dataclass
class SynapticGroup:
    """Synaptic variable(s) of one kind on one population: ``x`` ``[B, N]`` (and ``h`` for alpha kernels)."""

    post: str
    kind: str
    tau: float
    E_rev: Optional[float]
    factor: float  # conductance unit conversion into the model's input unit
    x: Tensor
    h: Optional[Tensor] = None
    ring: Optional[Tensor] = None  # [L, B, N] scheduled increments
    decay: float = 1.0

    def key(self) -> tuple:
        return (self.post, self.kind, self.tau, self.E_rev)


@dataclass
class ProjectionRuntime:
    """Built connectivity of one projection, CSR by presynaptic neuron."""

    name: str
    pre: str
    post: str
    group: int
    n_pre: int
    n_post: int
    indptr: Tensor  # [N_pre + 1]
    post_idx: Tensor  # [S] int32 (int64 for 2^31 post neurons or more)
    weight: Tensor  # [S] (signed for current kernels)
    delay: Tensor  # [S] steps >= 1, int16 (int32 above 32767 steps)
    uniform_delay: Optional[int]
    dense: Optional[Tensor] = None  # [N_pre, N_post] when stored dense
    plasticity: Any = None  # the spec as written
    rule: Any = None  # the plasticity rule (braincore.plasticity), its synapse view and its state (traces)
    view: Any = None
    rule_state: Optional[dict] = None


@dataclass
class InputRuntime:
    name: str
    type: str
    target: str
    group: Optional[int] = None  # synaptic group for spike inputs
    weight: float = 0.0
    rate_per_step: float = 0.0  # Poisson mean count per neuron per step
    rate_map: Optional[Tensor] = None  # per-trial, per-neuron mean counts per step [B, n] (set_poisson_rate)
    amplitude: Optional[Tensor] = None  # current [N] or scalar tensor
    start: int = 0
    stop: Optional[int] = None
    values: Optional[Tensor] = None  # [T, N] time-varying current
    spike_steps: Optional[Tensor] = None  # spike-file events: step and neuron
    spike_neurons: Optional[Tensor] = None
    neurons: Optional[Tensor] = None
    #: the spikes of a Poisson source population (braincore.neurons.poisson), named after it: its neurons fire
    #: in a step where their count is at least one (no synaptic group)
    fires: bool = False


class PopulationRuntime:
    """A population: its model, its state record (``[B, N]`` tensors), the indices of its synaptic groups and its
    external current buffer ``[B, N]`` (None without current inputs).

    The state of a population stepped with others (:class:`_MergedStep`) is made of views of their flat state only
    when it is read (between steps, by monitors, checks, checkpoints or the user); setting it replaces it."""

    def __init__(self, name: str, model: NeuronModel, state: Any, groups: Optional[list] = None,
                 current: Optional[Tensor] = None):
        self.name, self.model, self._state = name, model, state
        self.groups: list = groups if groups is not None else []
        self.current = current
        self._merged: Optional[_MergedStep] = None  # the merged step that holds the state, not yet read

    @property
    def state(self) -> Any:
        if self._merged is not None:
            self._state, self._merged = self._merged.state_of(self), None
        return self._state

    @state.setter
    def state(self, value: Any) -> None:
        self._state, self._merged = value, None


# ------------------------------------------------------------------------------------------ helpers
#: the PyTorch loop checks that every state variable and weight is finite once per this many steps (and at the
#: end of each run); the native engine after each run
FINITE_CHECK_EVERY = 1000
#: the native engine runs in chunks of at most this many steps, each followed by the same check
NATIVE_CHECK_EVERY = 10_000
#: on the CPU, a sparse projection whose presynaptic population fired at most this many spikes in a step adds each
#: spiking neuron's outgoing synapses with one ``index_add_`` (about 1 us per spike with its slices kept, 3 us
#: without); above it, one vectorised gather of all their synapses (a dozen calls, about 50 us, whatever the
#: count). Both add the same weights in the same order, so the choice changes the time of a step only.
SPIKE_LOOP_MAX = 32
#: the spike loop keeps each neuron's synapse slices (views) for projections of at most this many presynaptic
#: neurons (two or three views per neuron), and slices afresh at each spike above it
ROW_VIEWS_MAX_PRE = 50_000


def _check_rates(name: str, hz: Tensor) -> None:
    """A :class:`ValueError` unless every rate (Hz) of the input ``name`` is finite and >= 0 (one ``aminmax`` pass:
    a NaN makes both ends NaN, and the test fail)."""
    if hz.numel():
        low, high = torch.aminmax(hz.reshape(-1))
        if not (float(low) >= 0 and float(high) < math.inf):
            raise ValueError(f"input {name}: rates must be finite and >= 0 Hz")


def _own(value: Tensor) -> Tensor:
    """``value`` on the CPU, copied when it is a view of a larger buffer (the states, synaptic variables and rings of
    populations stepped together, :class:`_MergedStep`), so that a checkpoint holds only its own values."""
    value = value.cpu()
    if value.untyped_storage().nbytes() > value.numel() * value.element_size():
        value = value.clone()
    return value


def _flat_ring(ring: Tensor) -> tuple:
    """``(flat, slot_size)``: the ring buffer ``ring`` ``[L, B, N]`` as a 1-D view from its first element, where
    the element ``(slot, trial, neuron)`` is ``flat[slot * slot_size + trial * N + neuron]`` (``ring.view(-1)`` for
    a ring of its own; a ring of populations stepped together is a view of their flat ring, :class:`_MergedStep`,
    whose slots lie further apart)."""
    slot_size = ring.stride(0)
    span = (ring.shape[0] - 1) * slot_size + ring.shape[1] * ring.shape[2]
    return ring.as_strided((span,), (1,), ring.storage_offset()), slot_size


def _quantity(value: Any, dimension: str, where: str) -> float:
    try:
        return parse_quantity(value, dimension)
    except UnitError as err:
        raise ConfigError(f"{where}: {err}") from None


def synapse_factor(kind: str, input_unit: str, post: str) -> float:
    """How a synaptic variable becomes the model's input: conductance unit conversion (1 for currents)."""
    if kind != "conductance":
        return 1.0
    if input_unit == "nA":
        return 1e-3  # nS * mV = pA
    if input_unit == "uA/cm2":
        return 1.0  # mS/cm2 * mV = uA/cm2
    raise ConfigError(f"conductance synapses onto {post!r} are not supported: its model's input is in "
                      f"{input_unit!r} (needs nA or uA/cm2)")


def synapse_kind(synapse: Optional[dict], where: str) -> tuple:
    """``(kind, tau, E_rev)`` of a projection's or input's ``synapse`` mapping (default instantaneous), units
    parsed (ms, mV); an unknown kind is a :class:`ConfigError` naming ``where``."""
    synapse = dict(synapse or {"type": "instantaneous"})
    kind = synapse.get("type", "instantaneous")
    if kind not in SYNAPSE_TYPES:
        raise ConfigError(f"{where}: unknown synapse type {kind!r}; use one of {', '.join(SYNAPSE_TYPES)}")
    tau = _quantity(synapse["tau"], "time", f"{where}: synapse.tau") if kind != "instantaneous" else 0.0
    E_rev = _quantity(synapse["E_rev"], "voltage", f"{where}: synapse.E_rev") if kind == "conductance" else None
    return kind, tau, E_rev


def deliver_arriving(groups: list, slot: int, slots: Optional[list] = None) -> None:
    """Move the ring-buffer slot ``slot`` (the input arriving this step) into each synaptic group's variable
    (``h`` for alpha kernels, scaled by e so that a unit weight peaks at 1; ``x`` otherwise) and clear it.
    ``slots``: each group's ring as a list of slot views (``ring.unbind(0)``), when the caller keeps them.
    Shared by :class:`Simulator` and the distributed engine."""
    for i, group in enumerate(groups):
        arriving = group.ring[slot] if slots is None else slots[i][slot]
        if group.kind == "alpha":
            group.h += arriving * math.e
        else:
            group.x += arriving
        arriving.zero_()


def synaptic_drive(state, drive: Optional[Tensor], groups: list) -> tuple:
    """Apply a population's synaptic groups before its neuron step: instantaneous groups jump ``v`` (and are
    consumed), conductance groups add ``g (E_rev - v)``, current groups add their current to ``drive`` (the
    external current, or None). Returns ``(state, drive)``, ``drive`` zeros when nothing drives the population.
    Shared by :class:`Simulator` and the distributed engine, so both step populations identically."""
    for group in groups:
        if group.kind == "instantaneous":
            state = state._replace(v=state.v + group.x)
            group.x.zero_()
        elif group.kind == "conductance":
            term = group.x * torch.rsub(state.v, group.E_rev) * group.factor  # E_rev - v
            drive = term if drive is None else drive + term
        else:
            drive = group.x if drive is None else drive + group.x
    if drive is None:
        drive = torch.zeros_like(state.v)
    return state, drive


class _MergedStep:
    """Populations whose neurons step as one flat tensor: one call of the generated step (and one
    :func:`synaptic_drive`) for all of them instead of one each. They share the generated step and its constants,
    all plain numbers (so the step is elementwise and the same per element on the concatenation), whether an
    external current drives them, and the list of synaptic groups (kind, ``tau``, ``E_rev``, factor; none
    instantaneous, whose drive writes ``v``).

    The synaptic variables and ring buffers of the groups in the same position are moved into one flat buffer per
    position (:attr:`drive_groups`, which are delivered and decay in one operation each) and each group's ``x`` (and
    ``h``) becomes a ``[B, N]`` view of it, its ring an ``[L, B, N]`` view, so inputs, propagation, checkpoints and
    :meth:`Simulator.rest` work on them unchanged (and the sparse projections into a position may be joined,
    :class:`_JoinedProjection`).
    Each population's spikes are views of the flat results, and so is its state, made when it is read
    (:attr:`PopulationRuntime.state`); the next step reuses the flat state as long as no population's state was
    replaced (else it concatenates the states again). The
    arithmetic of every element is the population's own, so the results are the same to the bit."""

    def __init__(self, pops: list, sim: "Simulator"):
        self.pops = [pop for pop, _ in pops]
        self.model = self.pops[0].model
        self.shapes = [(sim.batch, pop.model.size) for pop in self.pops]
        sizes = [sim.batch * pop.model.size for pop in self.pops]
        self.offsets = [sum(sizes[:i]) for i in range(len(sizes))]
        self.drive_groups = []
        #: where each synaptic group (by index in ``sim.groups``) lies: its position, the offset of its population's
        #: piece in the flat buffers and the population's size
        self.places: dict[int, tuple[int, int, int]] = {}
        for i, (pop, offset) in enumerate(zip(self.pops, self.offsets)):
            for j, gi in enumerate(pop.groups):
                self.places[gi] = (j, offset, pop.model.size)
        for position in zip(*(groups for _, groups in pops)):
            first = position[0]
            x = self._merge([g.x for g in position])
            h = self._merge([g.h for g in position]) if first.h is not None else None
            h_views = self._views(h) if h is not None else [None] * len(position)
            ring = torch.cat([g.ring.reshape(g.ring.shape[0], -1) for g in position], dim=1)  # [L, sum B N]
            for g, x_view, h_view, ring_view in zip(position, self._views(x), h_views, self._ring_views(ring)):
                g.x, g.h, g.ring = x_view, h_view, ring_view
            self.drive_groups.append(SynapticGroup("", first.kind, first.tau, first.E_rev, first.factor, x, h=h,
                                                   ring=ring, decay=first.decay))
        self.flat_state: Any = None  # the flat state of the last step, and the per-population states made from it
        self.states: list = []  # (when read; else None)
        self.current: Optional[tuple] = None  # (each population's current tensor, their concatenation)

    @staticmethod
    def _merge(tensors: list) -> Tensor:
        return torch.cat([t.reshape(-1) for t in tensors])

    def _views(self, flat: Tensor) -> list:
        """Each population's ``[B, N]`` piece of the flat tensor ``flat`` (views)."""
        return [self._view(flat, i) for i in range(len(self.pops))]

    def _view(self, flat: Tensor, i: int) -> Tensor:
        """The ``[B, N]`` piece of population ``i`` of the flat tensor ``flat`` (a view)."""
        shape = self.shapes[i]
        return flat.as_strided(shape, (shape[1], 1), flat.storage_offset() + self.offsets[i])

    def _ring_views(self, ring: Tensor) -> list:
        """Each population's ``[L, B, N]`` piece of the flat ring ``ring`` ``[L, sum B N]`` (views)."""
        length, width = ring.shape
        base = ring.storage_offset()
        return [ring.as_strided((length,) + shape, (width, shape[1], 1), base + offset)
                for shape, offset in zip(self.shapes, self.offsets)]

    @staticmethod
    def signature(pop: PopulationRuntime, groups: list) -> Optional[tuple]:
        """What populations must share to step as one; ``None`` when ``pop`` steps alone."""
        from .neurons.defined import DefinedModel

        model = pop.model
        if not isinstance(model, DefinedModel) or type(model).step is not DefinedModel.step or \
                torch.is_grad_enabled():
            return None
        if not all(type(v) in (int, float) for v in model.constants.values()):
            return None  # per-neuron parameters: [N] tensors broadcast per population
        if any(g.kind == "instantaneous" for g in groups):
            return None
        constants = tuple(sorted((name, repr(v)) for name, v in model.constants.items()))  # repr: -0.0 != 0.0
        return (model._step, constants, pop.current is not None,
                tuple((g.kind, repr(g.tau), repr(g.E_rev), repr(g.factor), repr(g.decay)) for g in groups))

    def state_of(self, pop: PopulationRuntime) -> Any:
        """The state record of ``pop`` (one of :attr:`pops`) as views of the flat state of the last step."""
        i = self.pops.index(pop)
        flat = self.flat_state
        state = self.states[i] = type(flat)(*[self._view(f, i) for f in flat])
        return state

    def step(self, sim: "Simulator", k: int, spikes_of: dict) -> None:
        """Step the populations; their spikes (views) into ``spikes_of``."""
        pops = self.pops
        flat = self.flat_state
        if flat is None or not all(pop._merged is self or pop._state is state for pop, state in zip(pops, self.states)):
            flat = type(pops[0].state)(*[self._merge(fields) for fields in zip(*(pop.state for pop in pops))])
        current = None
        if pops[0].current is not None:
            currents = [sim._external_current(pop, k) for pop in pops]
            cached = self.current
            if cached is None or any(a is not b for a, b in zip(cached[0], currents)):
                cached = self.current = (currents, self._merge(currents))
            current = cached[1]
        state, drive = synaptic_drive(flat, current, self.drive_groups)
        spikes, flat = self.model.step(state, drive)
        self.flat_state = flat
        self.states = [None] * len(pops)  # made from the flat state when read (state_of)
        for pop, piece in zip(pops, self._views(spikes)):
            pop._state, pop._merged = None, self
            spikes_of[pop.name] = piece


class _JoinedProjection:
    """Sparse projections from one population into the synaptic groups of one position of a :class:`_MergedStep`
    (at most one projection into each group), propagated as one on the CPU: their synapses joined into one CSR by
    presynaptic neuron (a neuron's synapses of the first projection, then those of the next, ...) whose targets are
    indices into the position's flat ring. A few spikes (:data:`SPIKE_LOOP_MAX`) then cost one ``index_add_`` per
    spiking neuron instead of one per spiking neuron and projection; more take each projection's own vectorised
    path. Each ring element is the target of one of the projections only, so it receives the same additions in the
    same order as from that projection alone (spike after spike, synapse after synapse): the same sums to the bit.

    The joined arrays are copies, made when a run's :class:`_StepPlan` is built and kept by the simulator while the
    projections' tensors stay the same (:meth:`build`)."""

    def __init__(self, projections: list, targets: list, ring: Tensor, batch: int):
        first = projections[0]
        self.pre, self.n_pre, self.projections = first.pre, first.n_pre, projections
        self.ring, self.length, self.width = ring, ring.shape[0], ring.shape[1]
        self.slots = ring.unbind(0)  # the flat ring, slot by slot (views)
        delays = {proj.uniform_delay for proj in projections}
        self.uniform_delay: Optional[int] = delays.pop() if len(delays) == 1 and None not in delays else None
        device = first.indptr.device
        counts = [proj.indptr[1:] - proj.indptr[:-1] for proj in projections]
        indptr = torch.zeros(self.n_pre + 1, dtype=torch.long, device=device)
        torch.cumsum(torch.stack(counts).sum(0), 0, out=indptr[1:])
        total = int(indptr[-1])
        self.post = torch.empty(total, dtype=torch.long, device=device)  # flat ring index in trial 0
        self.weight = torch.empty(total, dtype=first.weight.dtype, device=device)
        self.delay = torch.empty(total, dtype=torch.long, device=device)  # int64: (delay + k) cannot overflow
        #: each synapse's target population size (a trial further in the flat ring), with more than one trial
        self.trial_stride = torch.empty(total, dtype=torch.long, device=device) if batch > 1 else None
        before = torch.zeros(self.n_pre, dtype=torch.long, device=device)  # synapses of earlier projections per row
        rows = torch.arange(self.n_pre, device=device)
        for proj, count, (offset, size) in zip(projections, counts, targets):
            row = torch.repeat_interleave(rows, count)
            index = torch.arange(row.numel(), device=device) - proj.indptr[row] + indptr[row] + before[row]
            self.post[index] = proj.post_idx.long() + offset
            self.weight[index] = proj.weight
            self.delay[index] = proj.delay.long()
            if self.trial_stride is not None:
                self.trial_stride[index] = size
            before += count
        self.rows = indptr.tolist()
        #: each presynaptic neuron's synapse slices (post, trial stride, weight, delay), made at its first spike
        self.views: Optional[dict] = {} if self.n_pre <= ROW_VIEWS_MAX_PRE else None

    @staticmethod
    def build(sim: "Simulator", merged: list) -> list:
        """The projections in the order to propagate them: :class:`_JoinedProjection` where projections from one
        population into one merged position can be joined (sparse, without plasticity, into different groups),
        else each :class:`ProjectionRuntime`. Only where the joined ones keep, for every synaptic group, the order
        in which the projections into it add their spikes (that of ``sim.projections``)."""
        projections = sim.projections
        places = {gi: (unit, place) for unit in merged for gi, place in unit.places.items()}
        families: dict = {}  # (pre, unit, position) -> indices of the projections that may be joined
        if sim.device.type == "cpu":
            for i, proj in enumerate(projections):
                found = places.get(proj.group)
                if found is not None and proj.dense is None and proj.rule is None:
                    families.setdefault((proj.pre, id(found[0]), found[1][0]), []).append(i)
        joins = [family for family in families.values()
                 if len(family) > 1 and len({projections[i].group for i in family}) == len(family)]
        while True:
            joined_in = {i: j for j, family in enumerate(joins) for i in family}
            rank: dict = {}  # projection -> the position of its item in the order
            items: list = []
            for i in range(len(projections)):
                j = joined_in.get(i)
                key = ("join", j) if j is not None else ("alone", i)
                if key not in rank:
                    rank[key] = len(items)
                    items.append(key)
                rank[i] = rank[key]
            last: dict = {}  # group -> (rank of the latest projection into it, that projection)
            broken: set = set()
            for i, proj in enumerate(projections):
                previous = last.get(proj.group)
                if previous is not None and previous[0] > rank[i]:
                    broken.update(joined_in.get(n) for n in (previous[1], i) if joined_in.get(n) is not None)
                last[proj.group] = (rank[i], i) if previous is None or rank[i] >= previous[0] else previous
            if not broken:
                break
            joins = [family for j, family in enumerate(joins) if j not in broken]
        cache = sim._joined
        order: list = []
        for kind, index in items:
            if kind == "alone":
                order.append(projections[index])
                continue
            family = [projections[i] for i in joins[index]]
            unit, (position, _, _) = places[family[0].group]
            targets = [places[proj.group][1][1:] for proj in family]
            stamp = [(t, t._version) for proj in family for t in (proj.indptr, proj.post_idx, proj.weight, proj.delay)]
            key = tuple(proj.name for proj in family)
            cached = cache.get(key)
            ring = unit.drive_groups[position].ring
            if cached is None or len(cached[0]) != len(stamp) or \
                    any(a is not b or v != w for (a, v), (b, w) in zip(cached[0], stamp)) or cached[1] != targets:
                joined = _JoinedProjection(family, targets, ring, sim.batch)
                cache[key] = (stamp, targets, joined)
            else:
                joined = cached[2]
                joined.ring, joined.slots = ring, ring.unbind(0)  # a new flat ring each run; the same synapses
            order.append(joined)
        return order

    def propagate(self, sim: "Simulator", spikes: Tensor, k: int, fired_of: dict) -> None:
        """Schedule the outgoing synapses of the spiking neurons (``spikes``: those of :attr:`pre`)."""
        pairs = sim._fired_list(self.pre, spikes, fired_of)
        if pairs is None:  # many spikes: each projection's vectorised path
            for proj in self.projections:
                sim._propagate(proj, spikes, k, fired_of)
            return
        views, rows = self.views, self.rows
        uniform = self.uniform_delay
        if uniform is not None:
            target = self.slots[(k + uniform) % self.length]
        else:
            flat_ring = self.ring.view(-1)
        for trial, i in pairs:
            row = views.get(i) if views is not None else None
            if row is None:
                start, stop = rows[i], rows[i + 1]
                stride = self.trial_stride[start:stop] if self.trial_stride is not None else None
                row = (self.post[start:stop], stride, self.weight[start:stop], self.delay[start:stop]) \
                    if start != stop else ()
                if views is not None:
                    views[i] = row
            if not row:
                continue
            post, stride, weight, delay = row
            if trial:
                post = post + stride * trial
            if uniform is not None:
                target.index_add_(0, post, weight)
            else:
                flat_ring.index_add_(0, (delay + k) % self.length * self.width + post, weight)


class _StepPlan:
    """What the PyTorch step needs that stays the same for a whole :meth:`Simulator.run`, looked up once instead
    of at every step: each population with its synaptic groups and its current inputs, the spike inputs, the
    plastic projections, the decaying groups, the monitors; on the CPU each sparse projection's row pointers as
    a Python list (one spiking neuron's synapses are then two slices, see :data:`SPIKE_LOOP_MAX`); and the caches
    filled while the run goes: each population's external current while its set of active constant inputs stays
    the same, and each Poisson input's rate tensor while its rate stays the same.

    Built at the first step of each run and dropped when a checkpoint is loaded, so whatever Python changed
    between runs (weights, connectivity, inputs, rates, monitors) is seen by the next run."""

    def __init__(self, sim: "Simulator"):
        groups = sim.groups
        self.populations = [(pop, [groups[gi] for gi in pop.groups]) for pop in sim.populations.values()
                            if not is_spike_source(pop.model)]
        #: Poisson source populations, each with the input that draws its spikes
        self.sources = [inp for inp in sim.inputs if inp.fires]
        by_signature: dict = {}
        for pop, pop_groups in self.populations:
            key = _MergedStep.signature(pop, pop_groups)
            by_signature.setdefault(key if key is not None else id(pop), []).append((pop, pop_groups))
        #: the units the neurons step in: a population alone, or a :class:`_MergedStep` of several
        self.units = [pops[0] if len(pops) == 1 else _MergedStep(pops, sim) for pops in by_signature.values()]
        merged = [unit for unit in self.units if isinstance(unit, _MergedStep)]
        alone = [group for unit in self.units if not isinstance(unit, _MergedStep) for group in unit[1]]
        #: the synaptic variables (with their rings) that are delivered and decay: each merged position's flat
        #: buffer, and the other groups
        self.delivering = alone + [g for unit in merged for g in unit.drive_groups]
        self.decaying = [g for g in self.delivering if g.kind != "instantaneous"]
        self.currents = {name: [inp for inp in sim.inputs if inp.target == name and inp.type.endswith("current")]
                         for name in sim.populations}
        self.spike_inputs = [inp for inp in sim.inputs if inp.type in ("poisson", "spike_file") and not inp.fires]
        self.plastic = [proj for proj in sim.projections if proj.rule is not None]
        self.monitors = [(monitor, monitor.target) for monitor in sim.monitors]
        self.rows: dict = {}
        if sim.device.type == "cpu":
            self.rows = {proj.name: proj.indptr.tolist() for proj in sim.projections if proj.dense is None}
        #: population -> (the active constant inputs, their summed current, the next step an input starts or stops)
        self.current_cache: dict = {}
        self.rate_cache: dict = {}  # Poisson input -> (rate per step, the [B, N] tensor of it)
        self.ring_slots = [group.ring.unbind(0) for group in self.delivering]  # each ring, slot by slot (views)
        #: the projections in the order they propagate, those joined into a merged position as one
        self.propagating = _JoinedProjection.build(sim, merged)
        self.row_views: dict = {}  # projection -> {presynaptic neuron: its synapses' post, weight, delay views}
        self.ring_trials: dict = {}  # (group, ring slot) -> that slot's [N] view of each trial


# ------------------------------------------------------------------------------------------ the simulator
class Simulator:
    """Builds the runtime of an assembly and runs the clock-driven loop (see the module docstring)."""

    def __init__(self, assembly, *, batch: Optional[int] = None, device: Optional[str] = None,
                 dtype: Optional[str] = None, seed: Optional[int] = None, dt: Optional[float] = None,
                 backend: Optional[str] = None, threads: Union[int, str, None] = None):
        from .construction import build_compact, initial_values

        require_valid(assembly)
        run = assembly.run
        self.assembly = assembly
        self.dt = float(dt if dt is not None else run.dt)
        self.batch = int(batch if batch is not None else run.batch)
        self.dtype = DTYPES[dtype if dtype is not None else run.dtype]
        self.seed = int(seed if seed is not None else run.seed)
        self.duration = float(run.duration)
        self.backend = backend if backend is not None else getattr(run, "backend", "auto")
        if self.backend == "auto" and os.environ.get("BRAINCORE_BACKEND"):
            self.backend = os.environ["BRAINCORE_BACKEND"]  # force one engine everywhere (debugging, tests)
        if self.backend not in BACKENDS:
            raise ConfigError(f"unknown backend {self.backend!r}; use auto, native or torch")
        #: threads of the native engine (each updates one part of every population and delivers spikes into it;
        #: results are the same for any number): ``threads`` here, else the run settings' ``threads``, else
        #: ``$BRAINCORE_THREADS``, else 1; ``"auto"``: the CPUs this process may use. Read when the engine is built.
        try:
            self.threads = resolve_threads(threads if threads is not None else getattr(run, "threads", None))
        except ValueError as err:
            raise ConfigError(str(err)) from None
        # device auto: CUDA when available, else the CPU (the CPU for backend native, which runs there only)
        self.device = resolve_device(device if device is not None else run.device, native=self.backend == "native")
        self._engine: Optional[NativeEngine] = None  # the native engine, built at the first run
        self._native_checked = False
        self._pending_native_rng = None
        #: why ``backend: auto`` runs on PyTorch (empty when the native engine runs)
        self.fallback_reason = ""
        self.step_count = 0
        self._finite_step = 0  # the step of the last check that found every state and weight finite
        self._finite_weights: dict = {}  # projection -> (tensor id, version) of weights found finite
        self._plan: Optional[_StepPlan] = None  # the PyTorch step's lookups for the current run
        self._joined: dict = {}  # the joined projections of the last plan, while their projections stay the same
        build_rng = torch.Generator().manual_seed(self.seed)
        self.rng = torch.Generator(device=self.device).manual_seed(self.seed + 1)
        dev, dt_, B = self.device, self.dtype, self.batch
        #: the neuromodulator channels (``sim.modulators.set("dopamine", 0.5)``), read by three-factor rules
        self.modulators = Modulators(B, dev, dt_)
        for name, spec in assembly.modulators.items():
            self.modulators.configure(name, tau=spec.get("tau"), baseline=spec.get("baseline"))
            if spec.get("value") is not None:
                self.modulators.set(name, float(spec["value"]))

        # populations
        self.populations: dict[str, PopulationRuntime] = {}
        for spec in assembly.populations():
            cls = get_model(spec.model)
            kwargs = {"dt": self.dt, "method": spec.method}
            model = (cls.from_preset(spec.preset, spec.size, params=spec.params, **kwargs) if spec.preset
                     else cls(spec.size, spec.params, **kwargs)).to(dev)
            state = model.initial_state(B, device=dev, dtype=dt_)
            for var, init in (spec.init or {}).items():  # counter-based: the same on every engine and partition
                value = initial_values(init, self.seed, f"init/{spec.name}/{var}", torch.arange(spec.size), B, dt_)
                state = state._replace(**{var: value.to(dev)})
            self.populations[spec.name] = PopulationRuntime(spec.name, model, state)
        #: each population's state after construction, for :meth:`rest`
        self._initial_states = {name: tuple(t.clone() for t in pop.state) for name, pop in self.populations.items()}
        self._fresh_rule_states: dict[str, dict] = {}  # projection -> its rule's initial state (Simulator.rest)

        # projections and the synaptic groups they feed
        self.groups: list[SynapticGroup] = []
        group_index: dict[tuple, int] = {}
        self.projections: list[ProjectionRuntime] = []
        max_delay = 1
        for spec in assembly.projections():
            pre, post = self.populations[spec.pre], self.populations[spec.post]
            gi = self._group_for(spec.synapse, post, group_index, where=f"projection {spec.name}")
            group = self.groups[gi]
            # compact storage (int32 post indices, int16 delays, weights in the run's dtype), built in place
            conn = build_compact(spec, pre.model.size, post.model.size, kind=group.kind, seed=self.seed,
                                 dimension=required_weight_dimension(group.kind, post.model.input_unit, spec.name),
                                 dt=self.dt, weight_dtype=dt_)
            n_syn = int(conn.post.numel())
            weight, delay = conn.weight, conn.delay
            max_delay = max(max_delay, int(delay.max()) if n_syn else 1)
            uniform = int(delay[0]) if n_syn and bool((delay == delay[0]).all()) else (1 if not n_syn else None)
            proj = ProjectionRuntime(spec.name, spec.pre, spec.post, gi, pre.model.size, post.model.size,
                                     conn.indptr.to(dev), conn.post.to(dev), weight.to(dev), delay.to(dev), uniform,
                                     plasticity=spec.plasticity)
            del conn
            # plastic synapses stay a synapse list where the native engine may run them (it updates the list)
            storage = "sparse" if (spec.plasticity and spec.storage == "auto" and self.backend != "torch"
                                   and self.device.type == "cpu") else spec.storage
            if self._store_dense(storage, n_syn, pre.model.size, post.model.size, uniform):
                dense = torch.zeros(pre.model.size, post.model.size, dtype=dt_)
                rows = torch.repeat_interleave(torch.arange(pre.model.size), proj.indptr.diff().cpu())
                dense.index_put_((rows, proj.post_idx.cpu().long()), weight, accumulate=True)
                proj.dense = dense.to(dev)
            if spec.plasticity:
                from .plasticity import SynapseView, make_rule

                proj.rule = make_rule(spec.plasticity)
                if getattr(proj.rule, "uses_modulators", False):
                    proj.rule.modulators = self.modulators
                    self._warn_undeclared_modulators(proj)
                proj.view = SynapseView(proj)
                proj.rule_state = proj.rule.init_state(proj.view, B, dev, dt_)
            self.projections.append(proj)

        # inputs (may add synaptic groups too)
        self.inputs: list[InputRuntime] = [self._build_input(spec, group_index, build_rng)
                                           for spec in assembly.inputs]
        for pop in self.populations.values():  # Poisson sources: their spikes, as an input named after them
            if is_spike_source(pop.model):
                source = InputRuntime(pop.name, "poisson", pop.name, fires=True)
                rate = getattr(pop.model.params, "rate")
                if isinstance(rate, Tensor) and rate.numel() > 1:
                    self._set_rate_map(source, rate, 1)
                else:
                    source.rate_per_step = float(rate) * self.dt / 1000.0
                self.inputs.append(source)
        for pop in self.populations.values():
            if any(i.target == pop.name and i.type.endswith("current") for i in self.inputs):
                pop.current = torch.zeros(B, pop.model.size, device=dev, dtype=dt_)

        # ring buffers: slot k % L holds what arrives at step k
        self.ring_length = max_delay + 1
        for group in self.groups:
            n = self.populations[group.post].model.size
            group.ring = torch.zeros(self.ring_length, B, n, device=dev, dtype=dt_)

        self.monitors = [self._build_monitor(spec) for spec in assembly.monitors]

    # -- trials ---------------------------------------------------------------------------------------
    def rest(self, keep: Optional[Mapping[str, Sequence[str]]] = None) -> "Simulator":
        """Return the network to its state after construction, keeping what it has learned: between the
        trials of a protocol (one image after another), as Brian2's ``restore`` of a state stored at the start.

        Every population's state variables take their initial values again, except those named in ``keep``
        (``{population: [variable, ...]}``, e.g. an adaptive threshold that learns across trials); synaptic
        variables and the spikes in flight are cleared; plasticity traces restart from their initial values.
        Kept: the weights, the step count, the random streams, the input rates, the monitors, the neuromodulator
        channels, and a homeostatic rule's step counter (so its phase). Returns ``self``."""
        copies, zeros = self._rest_plan(keep)
        with torch.no_grad():  # in place: the engines keep their bindings to the state tensors
            for dst, src in copies:
                dst.copy_(src)
            for buffer in zeros:
                buffer.zero_()
        return self

    def _rest_plan(self, keep: Optional[Mapping[str, Sequence[str]]]) -> tuple[list, list]:
        """What :meth:`rest` does, as ``(copies, zeros)``: ``(destination, initial value)`` pairs of tensors and
        the buffers to zero (run by :meth:`rest` in PyTorch, and between trials by the native engine's
        :meth:`run_trials`)."""
        keeping = {name: set(variables) for name, variables in (keep or {}).items()}
        for name, variables in keeping.items():
            if name not in self.populations:
                raise KeyError(f"rest: no population named {name!r}; populations: {', '.join(self.populations)}")
            unknown = variables - set(self.populations[name].state._fields)
            if unknown:
                raise KeyError(f"rest: population {name!r} has no state variable {', '.join(sorted(unknown))}; "
                               f"it has {', '.join(self.populations[name].state._fields)}")
        copies: list = []
        zeros: list = []
        for name, pop in self.populations.items():
            kept = keeping.get(name, set())
            copies += [(value, initial) for field_name, value, initial
                       in zip(pop.state._fields, pop.state, self._initial_states[name]) if field_name not in kept]
        for group in self.groups:
            zeros += [buffer for buffer in (group.x, group.ring, group.h) if buffer is not None]
        for proj in self.projections:
            if proj.rule is None:
                continue
            fresh = self._fresh_rule_states.get(proj.name)
            if fresh is None:  # a rule's initial state depends only on the projection, batch, device, dtype
                fresh = self._fresh_rule_states[proj.name] = proj.rule.init_state(proj.view, self.batch,
                                                                                   self.device, self.dtype)
            copies += [(value, fresh[key]) for key, value in (proj.rule_state or {}).items()
                       if not (value.dtype == torch.int64 and value.dim() == 0)]  # step counters keep their phase
        return copies, zeros

    def run_trials(self, duration: float, rates: Mapping[str, Any], *, counts: Union[str, Sequence[str]],
                   keep: Optional[Mapping[str, Sequence[str]]] = None, stop_below: int = 0) -> dict:
        """The trials of a protocol (one image after another): for each row ``k`` of the rates, exactly

            rest(keep); set_poisson_rate(name, rates[name][k]); every spike monitor's reset_counts(); run(duration)

        and the spike counts of the monitors ``counts`` after it. ``rates``: one Poisson input or source
        population ``name`` -> ``[K, n]`` or ``[K, B, n]`` rates in Hz (``K`` trials; ``n`` its target neurons;
        ``B`` the batch). ``stop_below > 0``: stop after the first trial in which some trial of the batch
        counted fewer than ``stop_below`` spikes in the first of ``counts`` (a protocol that presents such an
        input again, louder). Returns ``{monitor: int64 counts [K', B, n]}`` for the ``K' <= K`` trials run.

        On the native engine the trials run in C, a call per :data:`NATIVE_CHECK_EVERY` steps (the blow-up
        check after each call, not after each trial), when every monitor only counts spikes (its ``max_spikes``
        reached); otherwise, and on the PyTorch engine, trial by trial as above. Both give the same results."""
        steps = int(round(float(duration) / self.dt))
        if steps < 0:
            raise ConfigError(f"duration must be >= 0 ms, got {float(duration):g}")
        names = [counts] if isinstance(counts, str) else list(counts)
        by_name = {m.name: (r, m) for r, m in enumerate(self.monitors)}
        for name in names:
            if name not in by_name or not isinstance(by_name[name][1], SpikeMonitor):
                spike = ", ".join(m.name for m in self.monitors if isinstance(m, SpikeMonitor)) or "none"
                raise KeyError(f"run_trials: no spike monitor named {name!r}; spike monitors: {spike}")
        if len(rates) != 1:
            raise ValueError(f"run_trials: rates for exactly one Poisson input or source, got {len(rates)}")
        (input_name, table), = rates.items()
        table = torch.as_tensor(np.asarray(table) if not isinstance(table, torch.Tensor) else table)
        if table.dim() not in (2, 3) or table.shape[0] < 1:
            raise ValueError(f"run_trials: rates of {input_name!r} must be [K, n] or [K, B, n] (K >= 1 trials), got "
                             f"{tuple(table.shape)}")
        self.set_poisson_rate(input_name, table[0])  # checks the name and the shape of a trial's rates
        spike_monitors = [m for m in self.monitors if isinstance(m, SpikeMonitor)]
        engine = self.native_engine()
        plan = self._rest_plan(keep)
        in_c = engine is not None and engine.trials_reason() is None and all(
            dst.shape == src.shape and dst.dtype == src.dtype and dst.is_contiguous() and src.is_contiguous()
            for dst, src in plan[0]) and all(buffer.is_contiguous() for buffer in plan[1])
        if not in_c:
            return self._trials_in_python(duration, input_name, table, names, keep, stop_below, spike_monitors)
        q = self._poisson_index(input_name)
        inp = self.inputs[q]
        _check_rates(input_name, table)  # every trial's (set_poisson_rate checked the first one's shape)
        n = inp.rate_map.shape[1]
        sources = self._poisson_sources(q)
        # as set_poisson_rate scales each trial's rates: converted to the map's dtype, then times dt * sources
        scaled = table.to(dtype=self.dtype)
        if scaled.dim() == 2:
            scaled = scaled[:, None].expand(table.shape[0], self.batch, n)
        scaled = (scaled * (self.dt / 1000.0 * sources)).reshape(table.shape[0], self.batch * n).contiguous()
        for m in self.monitors:
            m.reset_counts()
            m.prepare(steps, self.batch, self.device, self.dtype)
        out = {name: torch.zeros(table.shape[0], self.batch, by_name[name][1].size, dtype=torch.int64)
               for name in names}
        per_call = max(1, NATIVE_CHECK_EVERY // max(1, steps))
        done = 0
        with torch.no_grad():
            while done < table.shape[0]:
                k = min(per_call, table.shape[0] - done)
                ran = engine.run_trials(steps, plan, q, scaled[done:done + k],
                                        [(by_name[name][0], out[name][done:done + k]) for name in names],
                                        stop_below)
                done += ran
                self.check_finite()
                # stopped by stop_below (on any trial of this call, its last one included), or done
                if ran < k or (stop_below > 0 and bool((out[names[0]][done - 1].sum(dim=1) < stop_below).any())):
                    break
        return {name: value[:done] for name, value in out.items()}

    def _trials_in_python(self, duration: float, input_name: str, table: Tensor, names: list, keep,
                          stop_below: int, spike_monitors: list) -> dict:
        """:meth:`run_trials` trial by trial (its definition)."""
        by_name = {m.name: m for m in self.monitors}
        out: dict = {name: [] for name in names}
        for k in range(table.shape[0]):
            self.rest(keep)
            self.set_poisson_rate(input_name, table[k])
            for m in spike_monitors:
                m.reset_counts()
            self.run(duration)
            for name in names:
                out[name].append(by_name[name].counts.cpu().clone())
            if stop_below > 0 and bool((by_name[names[0]].counts.sum(dim=1) < stop_below).any()):
                break
        return {name: torch.stack(values) for name, values in out.items()}

    # -- construction helpers -------------------------------------------------------------------------
    def _group_for(self, synapse: dict, post: PopulationRuntime, index: dict, where: str) -> int:
        if is_spike_source(post.model):
            raise ConfigError(f"{where}: population {post.name!r} is a Poisson source ({post.model.name}): it takes "
                              f"no input; set its rates with Simulator.set_poisson_rate({post.name!r}, ...)")
        kind, tau, E_rev = synapse_kind(synapse, where)
        key = (post.name, kind, tau, E_rev)
        if key not in index:
            factor = synapse_factor(kind, post.model.input_unit, post.name)
            n = post.model.size
            x = torch.zeros(self.batch, n, device=self.device, dtype=self.dtype)
            group = SynapticGroup(post.name, kind, tau, E_rev, factor, x,
                                  h=torch.zeros_like(x) if kind == "alpha" else None,
                                  decay=math.exp(-self.dt / tau) if tau > 0 else 0.0)
            index[key] = len(self.groups)
            self.groups.append(group)
            post.groups.append(index[key])
        return index[key]

    @staticmethod
    def _store_dense(storage: str, n_syn: int, n_pre: int, n_post: int, uniform: Optional[int]) -> bool:
        if uniform is None or storage == "sparse":
            if storage == "dense" and uniform is None:
                raise ConfigError("dense storage needs one delay for the whole projection")
            return False
        if storage == "dense":
            return True
        return n_pre * n_post <= 4_000_000 and n_syn >= 0.2 * n_pre * n_post  # 'auto'

    def _build_input(self, spec, group_index: dict, build_rng: torch.Generator) -> InputRuntime:
        pop = self.populations[spec.target]
        params = dict(spec.params or {})
        where = f"input {spec.name}"
        unit_dim = dimension_of(pop.model.input_unit)
        if is_spike_source(pop.model) and spec.type not in ("poisson", "spike_file"):
            raise ConfigError(f"{where}: population {pop.name!r} is a Poisson source ({pop.model.name}): it takes "
                              f"no input current")
        inp = InputRuntime(spec.name, spec.type, spec.target)
        neurons = params.get("neurons")
        if neurons is not None:
            inp.neurons = torch.as_tensor(neurons, dtype=torch.long, device=self.device)
        if spec.type in ("poisson", "spike_file"):
            synapse = params.get("synapse", {"type": "instantaneous"})
            inp.group = self._group_for(synapse, pop, group_index, where)
            kind = self.groups[inp.group].kind
            inp.weight = _quantity(params.get("weight", 0.0),
                                   required_weight_dimension(kind, pop.model.input_unit, where), f"{where}: weight")
            if spec.type == "poisson":
                rate = _quantity(params.get("rate", 0.0), "frequency", f"{where}: rate")
                inp.rate_per_step = rate * self.dt / 1000.0 * int(params.get("sources", 1))
                inp.start = int(round(_quantity(params.get("start", 0.0), "time", f"{where}: start") / self.dt))
                if params.get("stop") is not None:
                    inp.stop = int(round(_quantity(params["stop"], "time", f"{where}: stop") / self.dt))
            else:
                times, cells = load_spike_file(params["path"], pop.model.size, target=f"population {pop.name}")
                steps = np.round(times / self.dt).astype(np.int64)
                inp.spike_steps = torch.as_tensor(steps, device=self.device)
                inp.spike_neurons = torch.as_tensor(cells, device=self.device)
        elif spec.type in ("constant_current", "step_current"):
            inp.amplitude = torch.as_tensor(_quantity(params.get("amplitude", 0.0), unit_dim, f"{where}: amplitude"),
                                            device=self.device, dtype=self.dtype)
            inp.start = int(round(_quantity(params.get("start", 0.0), "time", f"{where}: start") / self.dt))
            if params.get("stop") is not None:
                inp.stop = int(round(_quantity(params["stop"], "time", f"{where}: stop") / self.dt))
        elif spec.type == "time_varying_current":
            values = params.get("values")
            if isinstance(values, str):
                values = load_values_file(values, len(neurons) if neurons is not None else pop.model.size)
            array = torch.as_tensor(np.asarray(values, dtype=float), dtype=self.dtype, device=self.device)
            inp.values = array[:, None] if array.ndim == 1 else array
        else:
            raise ConfigError(f"{where}: unknown input type {spec.type!r}")
        return inp

    def _build_monitor(self, spec):
        pop = self.populations[spec.target]
        if spec.type == "spikes":
            return SpikeMonitor(spec.name, spec.target, pop.model.size, spec.max_spikes)
        if spec.type == "state":
            return StateMonitor(spec.name, spec.target, spec.variables or ["v"], spec.neurons)
        if spec.type == "rate":
            return RateMonitor(spec.name, spec.target, pop.model.size, spec.bin if spec.bin else 1.0, self.dt)
        raise ConfigError(f"monitor {spec.name}: unknown type {spec.type!r}")

    # -- the loop -------------------------------------------------------------------------------------
    @property
    def t(self) -> float:
        """Current time (ms): the start of the next step."""
        return self.step_count * self.dt

    def run(self, duration: Optional[float] = None, *, progress: bool = False) -> "Simulator":
        """Advance by ``duration`` ms (default: the assembly's duration); returns self."""
        duration = self.duration if duration is None else float(duration)
        steps = int(round(duration / self.dt))
        if steps < 0:
            raise ConfigError(f"duration must be >= 0 ms, got {duration:g}")
        for monitor in self.monitors:
            if isinstance(monitor, StateMonitor):
                monitor.prepare(steps, self.batch, self.device, self.dtype,
                                self.populations[monitor.target].model.size)
            else:
                monitor.prepare(steps, self.batch, self.device, self.dtype)
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=steps, unit="step", desc=f"simulating ({self.engine})", mininterval=0.5,
                       leave=False)
        engine = self.native_engine()
        self._plan = None  # rebuilt at the first PyTorch step: sees what changed since the last run
        try:
            with torch.no_grad():
                if engine is not None:  # in chunks, each checked (run(a); run(b) equals run(a + b))
                    left = steps
                    while True:
                        chunk = min(left, NATIVE_CHECK_EVERY)
                        engine.run(chunk, bar)  # advances the modulator channels too, step by step
                        left -= chunk
                        if left <= 0:
                            break
                        self.check_finite()
                else:
                    for i in range(steps):
                        self._step()
                        if bar is not None and (i & 255) == 255:
                            bar.update(256)
                        if (i + 1) % FINITE_CHECK_EVERY == 0:
                            self.check_finite()
                self.check_finite()
        finally:
            if bar is not None:
                bar.close()
        return self

    def check_finite(self) -> None:
        """Raise :class:`~braincore.errors.NumericalError` when a population's state variable or a projection's
        weight is NaN or infinite, naming it, the steps since the last check (the run checks every
        :data:`FINITE_CHECK_EVERY` steps on the PyTorch engine, every :data:`NATIVE_CHECK_EVERY` steps on the
        native one, and at the end of each run) and the likely
        cause. Weights that no rule changes are checked again only after they were edited; on the native engine,
        weights that a normalisation pass rewrote on the last step are not read again (the pass checked them), and
        the rest is summed in one C call, counted exactly only when a sum is not finite."""
        weights = []
        engine = self._engine if self.backend != "torch" else None
        found_finite = engine.weights_found_finite() if engine is not None else set()
        for proj in self.projections:
            if proj.name in found_finite:
                continue
            weight = proj.view.weight if proj.view is not None else (proj.dense if proj.dense is not None
                                                                      else proj.weight)
            stamp = (id(weight), weight._version)
            if proj.rule is None and self._finite_weights.get(proj.name) == stamp:
                continue
            weights.append((proj.name, weight, proj.rule is not None, stamp))
        states = [(name, var, value, getattr(pop.model, "method", None)) for name, pop in self.populations.items()
                  for var, value in zip(pop.state._fields, pop.state)
                  if isinstance(value, Tensor) and value.is_floating_point()]
        if engine is None or not engine.all_finite([w for _, w, _, _ in weights] + [s[2] for s in states]):
            raise_if_not_finite(
                self.assembly.name, self.dt, self._finite_step, self.step_count,
                [(name, weight, plastic) for name, weight, plastic, _ in weights], states)
        for name, _, _, stamp in weights:  # all finite: checked again only after an edit
            self._finite_weights[name] = stamp
        self._finite_step = self.step_count

    @property
    def engine(self) -> str:
        """``"native"`` or ``"torch"``: which engine runs (or will run) this simulation."""
        return "native" if self.native_engine() is not None else "torch"

    def native_engine(self):
        """The native C engine for this simulation, or ``None`` when the backend is torch or (``auto``) the
        network or machine is not supported (then :attr:`fallback_reason` says why)."""
        if self.backend == "torch" or self._native_checked:
            return self._engine
        self._native_checked = True
        from .native import NativeEngine, NativeUnavailable

        try:
            self._engine = NativeEngine(self)
        except NativeUnavailable as err:
            if self.backend == "native":
                raise ConfigError(f"backend native: {err}") from None
            self.fallback_reason = str(err)
            return None
        if self._pending_native_rng is not None:
            self._engine.load_rng_tensor(self._pending_native_rng)
            self._pending_native_rng = None
        return self._engine

    def _step(self) -> None:
        plan = self._plan
        if plan is None:
            plan = self._plan = _StepPlan(self)
        k = self.step_count
        # 1. deliver scheduled spikes and this step's external spikes
        deliver_arriving(plan.delivering, k % self.ring_length, plan.ring_slots)
        for inp in plan.spike_inputs:
            if inp.type == "poisson":
                if k >= inp.start and (inp.stop is None or k < inp.stop):
                    self._deliver_poisson(inp)
            else:
                self._deliver_file(inp, k)
        # 2-3. synaptic input and neuron step (Poisson sources: their spikes drawn)
        spikes_of: dict = {inp.target: self._source_spikes(inp) for inp in plan.sources}
        for unit in plan.units:
            if isinstance(unit, _MergedStep):
                unit.step(self, k, spikes_of)
                continue
            pop, pop_groups = unit
            state, drive = synaptic_drive(pop.state, self._external_current(pop, k), pop_groups)
            spikes, pop.state = pop.model.step(state, drive)
            spikes_of[pop.name] = spikes
        # 4. propagate, then plasticity (which sees this step's pre and post spikes)
        fired_of: dict = {}  # each population's spikes, found once for its projections and monitors (_fired)
        for proj in plan.propagating:
            if isinstance(proj, _JoinedProjection):
                proj.propagate(self, spikes_of[proj.pre], k, fired_of)
            else:
                self._propagate(proj, spikes_of[proj.pre], k, fired_of)
        self.modulators.step(self.dt)
        for proj in plan.plastic:
            proj.rule.step(proj.view, proj.rule_state, spikes_of[proj.pre], spikes_of[proj.post], self.dt)
        # 5. decay
        for group in plan.decaying:
            if group.kind == "alpha":
                group.x.add_(group.h, alpha=self.dt / group.tau).mul_(group.decay)
                group.h.mul_(group.decay)
            else:
                group.x.mul_(group.decay)
        # 6. record
        for monitor, target in plan.monitors:
            if isinstance(monitor, StateMonitor):
                monitor.record(self.populations[target].state)
            elif isinstance(monitor, SpikeMonitor):
                monitor.record(k, spikes_of[target], fired=self._fired(target, spikes_of[target], fired_of))
            else:
                monitor.record(spikes_of[target])
        self.step_count = k + 1

    @staticmethod
    def _fired(pop: str, spikes: Tensor, fired_of: dict) -> Tensor:
        """``spikes.nonzero()`` (``[K, 2]``: trial, neuron) of population ``pop``, found once per step."""
        fired = fired_of.get(pop)
        if fired is None:
            fired = fired_of[pop] = spikes.nonzero()
        return fired

    @staticmethod
    def _fired_list(pop: str, spikes: Tensor, fired_of: dict) -> Optional[list]:
        """The spikes of population ``pop`` as a Python list of ``[trial, neuron]`` when there are at most
        :data:`SPIKE_LOOP_MAX` of them, else ``None``; found once per step, from :meth:`_fired`."""
        key = (pop, "list")
        if key not in fired_of:
            fired = Simulator._fired(pop, spikes, fired_of)
            fired_of[key] = fired.tolist() if fired.shape[0] <= SPIKE_LOOP_MAX else None
        return fired_of[key]

    def _external_current(self, pop: PopulationRuntime, k: int) -> Optional[Tensor]:
        """The external current into ``pop`` at step ``k`` (``None`` without current inputs). While the same
        constant inputs are active it is the same tensor, summed once (the plan's ``current_cache``, with the step at
        which an input starts or stops next: the steps of a run only increase); the neuron step and
        :func:`synaptic_drive` only read it."""
        if pop.current is None:
            return None
        plan = self._plan
        cached = plan.current_cache.get(pop.name)
        if cached is not None and k < cached[2]:  # no input starts or stops before cached[2]
            return cached[1]
        active, varying, until = [], False, math.inf
        for inp in plan.currents[pop.name]:
            if inp.type in ("constant_current", "step_current"):
                if k < inp.start:
                    until = min(until, inp.start)
                    continue
                if inp.stop is not None:
                    if k >= inp.stop:
                        continue
                    until = min(until, inp.stop)
            elif inp.type == "time_varying_current":
                if k >= inp.values.shape[0]:
                    continue
                varying = True
            active.append(inp)
        key = None if varying else tuple(map(id, active))
        if key is not None and cached is not None and cached[0] == key:
            plan.current_cache[pop.name] = (key, cached[1], until)
            return cached[1]
        pop.current.zero_()
        for inp in active:
            value = inp.values[k] if inp.type == "time_varying_current" else inp.amplitude
            if inp.neurons is None:
                pop.current += value
            else:
                pop.current[:, inp.neurons] += value
        current = pop.current.clone()
        if key is not None:
            plan.current_cache[pop.name] = (key, current, until)
        return current

    def _poisson_means(self, inp: InputRuntime, shape: tuple) -> Tensor:
        """The mean counts per step of Poisson input ``inp``, ``[B, n]``: its rate map, or its one rate as a
        tensor made once per run and rate (the plan's ``rate_cache``)."""
        if inp.rate_map is not None:
            return inp.rate_map
        cached = self._plan.rate_cache.get(id(inp)) if self._plan is not None else None
        if cached is None or cached[0] != inp.rate_per_step:
            cached = (inp.rate_per_step, torch.full(shape, inp.rate_per_step, device=self.device, dtype=self.dtype))
            if self._plan is not None:
                self._plan.rate_cache[id(inp)] = cached
        return cached[1]

    def _source_spikes(self, inp: InputRuntime) -> Tensor:
        """A Poisson source population's spikes in this step ``[B, n]``: a neuron fires when its Poisson count is
        at least one (braincore.neurons.poisson)."""
        lam = self._poisson_means(inp, (self.batch, self.populations[inp.target].model.size))
        return (torch.poisson(lam, generator=self.rng) > 0).to(self.dtype)

    def _deliver_poisson(self, inp: InputRuntime) -> None:
        group = self.groups[inp.group]
        target = group.h if group.kind == "alpha" else group.x
        scale = inp.weight * (math.e if group.kind == "alpha" else 1.0)
        lam = self._poisson_means(inp, target.shape if inp.neurons is None else (self.batch, len(inp.neurons)))
        if inp.neurons is None:
            target.add_(torch.poisson(lam, generator=self.rng), alpha=scale)
        else:
            target[:, inp.neurons] += scale * torch.poisson(lam, generator=self.rng)

    def _deliver_file(self, inp: InputRuntime, k: int) -> None:
        hits = inp.spike_neurons[inp.spike_steps == k]
        if hits.numel():
            group = self.groups[inp.group]
            target = group.h if group.kind == "alpha" else group.x
            scale = inp.weight * (math.e if group.kind == "alpha" else 1.0)
            ones = torch.full((hits.numel(),), scale, device=self.device, dtype=self.dtype)
            for b in range(self.batch):
                target[b].index_add_(0, hits, ones)

    def _propagate(self, proj: ProjectionRuntime, spikes: Tensor, k: int, fired_of: Optional[dict] = None) -> None:
        """Schedule the outgoing synapses of ``proj``'s spiking neurons into the ring buffer (see the module
        docstring, step 4). ``fired_of`` holds each population's spikes of this step, found once for all its
        projections and spike monitors (:meth:`_fired`, :meth:`_fired_list`; filled here when missing)."""
        ring = self.groups[proj.group].ring
        if proj.dense is not None:
            if bool(spikes.any()):
                ring[(k + proj.uniform_delay) % self.ring_length].addmm_(spikes, proj.dense)
            return
        fired_of = {} if fired_of is None else fired_of
        rows = self._plan.rows.get(proj.name) if self._plan is not None else None
        if rows is not None:
            pairs = self._fired_list(proj.pre, spikes, fired_of)
            if pairs is not None:
                if pairs:
                    self._propagate_each(proj, ring, rows, pairs, k)
                return
        fired = self._fired(proj.pre, spikes, fired_of)
        if fired.shape[0] == 0:
            return
        trial, neuron = fired[:, 0], fired[:, 1]
        syn, row = outgoing_rows(proj.indptr, neuron)  # all outgoing synapses of the spiking neurons
        if syn.numel() == 0:
            return
        n_post = proj.n_post
        # one trial: every spike is in trial 0, so the flat index is the postsynaptic neuron
        flat = proj.post_idx[syn] if self.batch == 1 else trial[row] * n_post + proj.post_idx[syn]
        if proj.uniform_delay is not None:
            ring[(k + proj.uniform_delay) % self.ring_length].view(-1).index_add_(0, flat, proj.weight[syn])
        else:
            slots = (k + proj.delay[syn].long()) % self.ring_length  # delays are int16: no overflow
            flat_ring, slot_size = _flat_ring(ring)
            flat_ring.index_add_(0, slots * slot_size + flat, proj.weight[syn])

    def _propagate_each(self, proj: ProjectionRuntime, ring: Tensor, rows: list, pairs: list, k: int) -> None:
        """:meth:`_propagate` for a few spikes on the CPU (``pairs``: ``[trial, neuron]`` of each): one
        ``index_add_`` per spiking neuron of its synapses ``rows[i]:rows[i + 1]`` (``rows``: the CSR row pointers
        as a Python list). The additions are those of the vectorised path in the same order (spike after spike,
        synapse after synapse), so the sums are the same to the bit. A neuron's slices of ``post_idx``, ``weight``
        and ``delay`` are views made at its first spike of the run and kept in the plan (for projections of at
        most :data:`ROW_VIEWS_MAX_PRE` presynaptic neurons): a projection's tensors are only replaced between
        runs, which make a new plan."""
        plan = self._plan
        views = plan.row_views.setdefault(proj.name, {}) if proj.n_pre <= ROW_VIEWS_MAX_PRE else None
        uniform = proj.uniform_delay is not None
        if uniform:
            slot = (k + proj.uniform_delay) % self.ring_length
            trials = plan.ring_trials.get((proj.group, slot))
            if trials is None:
                trials = plan.ring_trials[(proj.group, slot)] = ring[slot].unbind(0)
        else:
            (flat_ring, slot_size), length = _flat_ring(ring), self.ring_length
        for trial, i in pairs:
            row = views.get(i) if views is not None else None
            if row is None:
                start, stop = rows[i], rows[i + 1]
                row = (proj.post_idx[start:stop], proj.weight[start:stop], proj.delay[start:stop].long()) \
                    if start != stop else ()
                if views is not None:
                    views[i] = row
            if not row:
                continue
            post, weight, delay = row
            if uniform:
                trials[trial].index_add_(0, post, weight)
            else:
                slots = (delay + k) % length
                flat_ring.index_add_(0, slots * slot_size + (post + trial * proj.n_post), weight)

    def _warn_undeclared_modulators(self, proj) -> None:
        rules = getattr(proj.rule, "rules", [proj.rule])
        for rule in rules:
            name = getattr(getattr(rule, "params", None), "modulator", None)
            if getattr(rule, "uses_modulators", False) and name and name not in self.assembly.modulators:
                import warnings

                warnings.warn(f"projection {proj.name!r}: its {rule.name} rule listens to the modulator {name!r}, "
                              f"which the assembly does not declare (modulators: {{{name}: {{tau: ..., "
                              f"baseline: ...}}}}); it stays 0, and the weights unchanged, until set from Python "
                              f"(sim.modulators.set / pulse)", stacklevel=3)

    def set_poisson_rate(self, name: str, rate: Any) -> None:
        """Set the rate of the Poisson input ``name`` (per source) from the next step on: stimuli that change
        between :meth:`run` calls (a cue on, then off; an agent's observation).

        ``rate``: one rate for every neuron and trial (units allowed: ``"40 Hz"``; bare numbers in Hz); or an
        array or tensor of rates in Hz, ``[n]`` (one per target neuron, every
        trial) or ``[B, n]`` (one per trial and neuron), ``n`` being the input's target neurons (its ``neurons``
        list, else the whole population): the closed-loop input of a batch of environments. Checkpoints do not
        hold input rates: set them again after a :meth:`load`."""
        q = self._poisson_index(name)
        if q is None or self.inputs[q].type != "poisson":
            known = ", ".join(i.name for i in self.inputs if i.type == "poisson") or "none"
            raise KeyError(f"no Poisson input or Poisson source population named {name!r}; they are: {known}")
        inp = self.inputs[q]
        sources = self._poisson_sources(q)
        if isinstance(rate, (torch.Tensor, np.ndarray, list, tuple)):
            self._set_rate_map(inp, torch.as_tensor(np.asarray(rate) if not isinstance(rate, torch.Tensor)
                                                    else rate), sources)
            return
        hz = _quantity(rate, "frequency", f"input {name}: rate")
        if hz < 0:
            raise ConfigError(f"input {name}: rate must be >= 0 Hz, got {hz:g}")
        inp.rate_per_step = hz * self.dt / 1000.0 * sources
        inp.rate_map = None

    def _poisson_index(self, name: str) -> Optional[int]:
        """The index of the input ``name`` in :attr:`inputs`: a Poisson source population first, else the
        input of that name (``None`` without one)."""
        q = next((i for i, inp in enumerate(self.inputs) if inp.name == name and inp.fires), None)
        if q is None:
            q = next((i for i, inp in enumerate(self.inputs) if inp.name == name), None)
        return q

    def _poisson_sources(self, q: int) -> int:
        """Independent Poisson sources per target neuron of input ``q`` (1 for a source population): its rate in Hz
        becomes ``rate * dt / 1000 * sources`` expected spikes per step."""
        return 1 if self.inputs[q].fires else int(dict(self.assembly.inputs[q].params or {}).get("sources", 1))

    def _set_rate_map(self, inp: InputRuntime, hz: Tensor, sources: int) -> None:
        n = len(inp.neurons) if inp.neurons is not None else self.populations[inp.target].model.size
        if tuple(hz.shape) not in ((n,), (self.batch, n)):
            raise ValueError(f"input {inp.name}: rates must be [{n}] or [{self.batch}, {n}] (batch, target "
                             f"neurons), got {tuple(hz.shape)}")
        _check_rates(inp.name, hz)
        scale = self.dt / 1000.0 * sources
        current = inp.rate_map
        if current is not None and current.shape == (self.batch, n) and current.is_contiguous():
            # in place (its version counter tells the engines it changed): rates set at every trial of a protocol
            current.copy_(hz.expand(self.batch, n)).mul_(scale)
        else:
            inp.rate_map = (hz.to(device=self.device, dtype=self.dtype) * scale).expand(self.batch, n).contiguous()

    # -- results ----------------------------------------------------------------------------------------
    def monitor(self, name: str) -> dict:
        """A monitor's data (numpy arrays) by name."""
        for m in self.monitors:
            if m.name == name:
                return m.data(self.dt)
        raise KeyError(f"no monitor named {name!r}; monitors: {', '.join(m.name for m in self.monitors)}")

    def weights(self, projection: str) -> dict:
        """A projection's synapses as numpy arrays: ``pre``, ``post`` (indices), ``weight`` (its current value,
        in the weight unit of its synapse; signed for current synapses) and ``delay`` (steps)."""
        proj = next((p for p in self.projections if p.name == projection), None)
        if proj is None:
            raise KeyError(f"no projection named {projection!r}; projections: "
                           f"{', '.join(p.name for p in self.projections)}")
        if proj.view is not None:
            proj.view.sync()
        counts = (proj.indptr[1:] - proj.indptr[:-1]).cpu()
        pre = torch.repeat_interleave(torch.arange(proj.n_pre), counts)
        return {"pre": pre.numpy(), "post": proj.post_idx.cpu().numpy(), "weight": proj.weight.cpu().numpy(),
                "delay": proj.delay.cpu().numpy()}

    def spike_counts(self) -> dict:
        """Total spikes per population over the recorded runs (from spike monitors)."""
        return {m.target: int(m.counts.sum()) if m.counts is not None else 0 for m in self.monitors
                if isinstance(m, SpikeMonitor)}

    def save_npz(self, path) -> Path:
        """All monitors' data in one ``.npz`` (keys ``<monitor>/<field>``)."""
        arrays: dict[str, Any] = {}
        for m in self.monitors:
            for key, value in m.data(self.dt).items():
                if value is not None:
                    arrays[f"{m.name}/{key}"] = np.asarray(value)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, **arrays)
        return path

    # -- checkpoints ------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        for proj in self.projections:
            if proj.rule is not None:
                proj.view.sync()
        return {
            "step_count": self.step_count,
            "seed": self.seed,
            "rng": self.rng.get_state(),
            "populations": {name: {f: _own(getattr(p.state, f)) for f in p.state._fields}
                            for name, p in self.populations.items()},
            "groups": [{"x": _own(g.x), "h": _own(g.h) if g.h is not None else None,
                        "ring": _own(g.ring) if g.ring is not None else None}
                       for g in self.groups],
            "weights": {p.name: p.weight.cpu() for p in self.projections},
            "dense": {p.name: p.dense.cpu() for p in self.projections if p.dense is not None},
            "monitors": {m.name: m.state_dict() for m in self.monitors},
            "native_rng": self._engine.rng_tensor() if self._engine is not None else None,
            "plasticity": {p.name: {k: v.cpu() for k, v in (p.rule_state or {}).items()}
                           for p in self.projections if p.rule is not None},
            "modulators": self.modulators.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        if len(state["groups"]) != len(self.groups) or set(state["populations"]) != set(self.populations):
            raise ConfigError("checkpoint does not match this assembly (different populations or synapses)")
        self.step_count = int(state["step_count"])
        self._finite_step = self.step_count
        self._plan = None
        self._finite_weights.clear()
        self.rng.set_state(state["rng"])
        dev = self.device
        for name, fields in state["populations"].items():
            pop = self.populations[name]
            pop.state = type(pop.state)(**{f: fields[f].to(dev) for f in pop.state._fields})
        for group, saved in zip(self.groups, state["groups"]):
            group.x = saved["x"].to(dev)
            group.h = saved["h"].to(dev) if saved["h"] is not None else None
            group.ring = saved["ring"].to(dev)
        for proj in self.projections:
            proj.weight = state["weights"][proj.name].to(dev)
            if proj.name in state["dense"]:
                proj.dense = state["dense"][proj.name].to(dev)
        for m in self.monitors:
            m.load_state_dict(state["monitors"][m.name], dev)
        for proj in self.projections:
            if proj.rule is not None:
                proj.rule_state = {k: v.to(dev) for k, v in state["plasticity"][proj.name].items()}
        if "modulators" in state:  # checkpoints from before neuromodulators have none
            self.modulators.load_state_dict(state["modulators"])
        native_rng = state.get("native_rng")
        if native_rng is not None:
            if self._engine is not None:
                self._engine.load_rng_tensor(native_rng)
            else:
                self._pending_native_rng = native_rng

    def save(self, path) -> Path:
        """Atomic checkpoint of the full simulation state."""
        return save_checkpoint(path, {"simulator": self.state_dict()})

    def load(self, path) -> "Simulator":
        """Restore a checkpoint written by :meth:`save` into this (identically built) simulator."""
        restore_checkpoint(path, self.load_state_dict, "simulator", what="assembly")
        return self


def run_assembly(assembly, options: dict) -> dict:
    """The ``assembly`` config kind's runner: build, simulate with a progress bar, summarise, plot."""
    say = options.get("print", print)
    start = time.perf_counter()
    sim = Simulator(assembly)
    built = time.perf_counter()
    say(f"built {assembly.name or 'assembly'}: {sum(p.model.size for p in sim.populations.values())} neurons, "
        f"{sum(int(p.post_idx.numel()) for p in sim.projections)} synapses in {built - start:.2f} s")
    sim.run(progress=options.get("progress", True))
    elapsed = time.perf_counter() - built
    seconds = sim.t / 1000.0
    rates = {}
    for m in sim.monitors:
        if isinstance(m, SpikeMonitor) and m.counts is not None:
            rates[m.target] = float(m.counts.sum()) / (m.size * sim.batch * seconds) if seconds > 0 else 0.0
    say(f"simulated {sim.t:g} ms in {elapsed:.2f} s ({sim.step_count} steps, {sim.engine} engine"
        f"{'' if sim.engine == 'native' or sim.backend == 'torch' else '; native: ' + sim.fallback_reason})")
    for name, rate in rates.items():
        say(f"  {name:<24} mean rate {rate:7.2f} Hz")
    out = Path(options.get("out", "."))
    summary = {"kind": "assembly", "name": assembly.name, "simulated_ms": sim.t, "wall_s": elapsed,
               "build_s": built - start, "engine": sim.engine, "mean_rate_hz": rates, "spikes": sim.spike_counts()}
    if sim.monitors:
        summary["npz"] = str(sim.save_npz(out / f"{assembly.name or 'assembly'}.npz"))
    if not options.get("no_plot") and any(isinstance(m, SpikeMonitor) for m in sim.monitors):
        try:
            from .viz import plot_raster

            png = plot_raster(sim, out / f"{assembly.name or 'assembly'}_raster.png")
            summary["png"] = str(png)
            say(f"wrote {png}")
        except ImportError as err:
            say(f"no PNG written: {err}")
    return summary
