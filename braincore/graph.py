"""Assemblies: spiking networks described as a ``networkx`` graph of populations and projections.

An :class:`Assembly` is a *description*; it never simulates (the simulator and the training compilers read it,
see DESIGN.md). Its :attr:`~Assembly.graph` is a ``networkx.MultiDiGraph`` (multi, because two projections may
join the same pair of populations):

- a **node** per population, named by its (qualified) population name, with the attributes
  ``spec`` (:class:`PopulationSpec`), ``kind="population"``, ``model``, ``size`` and ``region``;
- an **edge** ``(pre, post, key=projection name)`` per projection, with the attributes ``spec``
  (:class:`ProjectionSpec`) and ``kind="projection"``.

So every networkx algorithm works on it directly (``nx.shortest_path(a.graph, "thalamus", "cortex")``,
``a.graph.in_degree("exc")``, ``nx.simple_cycles(a.graph)``). Build it in Python::

    a = Assembly("ei")
    a.add_population("exc", "lif", 3200, params={"tau_m": "20 ms"})
    a.add_population("inh", "lif", 800)
    a.add_projection("exc", "inh", connector={"type": "fixed_probability", "p": 0.02}, weight="6 nS",
                     synapse={"type": "conductance", "tau": "5 ms", "E_rev": "0 mV"}, delay="0.1 ms")
    a.add_input("drive", "poisson", "exc", rate="5 Hz", weight="1 nS", sources=20,
                synapse={"type": "conductance", "tau": "5 ms", "E_rev": "0 mV"})
    a.add_monitor("exc_spikes", "spikes", "exc", max_spikes=100_000)
    a.check()                       # raises ConfigError listing every problem

or from YAML (``kind: assembly``, see :mod:`braincore.assembly_config`).

Composition: :meth:`Assembly.include` copies a sub-assembly under a prefix: its population ``striatum_d1``
becomes ``bg.striatum_d1`` (whose :attr:`PopulationSpec.region` is ``"bg"``), and each of its ports ``in``
becomes the alias ``bg.in``. Projections, inputs and monitors may name a population or a port; ports are
resolved to populations when the projection is added (or as soon as the name becomes known).

Values: the specs keep parameters, connectors, weights, synapses and delays *raw* (numbers in canonical units,
or strings with units such as ``"6 nS"``, or distribution mappings ``{dist: uniform, low: -60 mV, high: -50 mV}``
/ ``{dist: normal, mean: .., std: ..}``), because their dimension depends on the model they act on; the run
settings (:class:`RunSpec`) and monitor bins are canonical floats (ms).

Weights: the dimension of a projection's weight follows from its synapse type and the post model's input unit
(:func:`weight_dimension`): conductance synapses take conductances (nS) onto current-driven models (input in nA)
and conductance densities (mS/cm2) onto Hodgkin–Huxley (input in uA/cm2); current-based synapses
(``exponential``, ``alpha``) take the post model's input unit (nA, uA/cm2, or plain numbers for Izhikevich);
``instantaneous`` (delta) synapses jump the membrane potential by the weight (mV). A projection ``delay`` of
``None`` means one time step. Weights are magnitudes when ``sign`` is given (the simulator applies the sign).

Validation (:meth:`Assembly.validate`) returns *every* problem at once, each naming its population, projection,
input or monitor; :meth:`Assembly.issues` returns the same problems as :class:`Issue` records with a key path
inside the item, which the YAML loader maps back to file lines. The checks themselves, and the vocabulary they
check against (:data:`~braincore.validation.SYNAPSE_TYPES`, :data:`~braincore.validation.INPUT_PARAMS` ...), live
in :mod:`braincore.validation`; connector, weight and delay options are checked by :mod:`braincore.synapses`.
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Optional, Sequence

import networkx as nx

from .errors import ConfigError  # noqa: F401  (re-exported: AssemblyError is a ConfigError)
from .synapses.connectors import expected_synapses
from .units import UnitError, parse_quantity
from .validation import AssemblyError, Issue, _suggest, assembly_issues
# the vocabulary and checks that :mod:`braincore.validation` holds, importable from here as before
from .validation import (BACKENDS, CONNECTOR_TYPES, DISTRIBUTIONS, DTYPES, INIT_DISTRIBUTIONS,  # noqa: F401
                         INPUT_PARAMS, MONITOR_TYPES, SIGNS, STATE_DIMENSIONS, STORAGES, SYNAPSE_TYPES,
                         check_distribution, delay_problems, state_variables, weight_dimension, weight_problems)


# ------------------------------------------------------------------------------------------ specs
def _user_label(model: Any) -> str:
    """A user model (a mapping) in summaries: ``qif (user)``."""
    return f"{model.get('name', 'user') if isinstance(model, Mapping) else model} (user)"


@dataclass(frozen=True)
class PopulationSpec:
    """A population of ``size`` neurons of one ``model``: a name in :data:`braincore.neurons.MODELS`, or a user model
    mapping (``{equations: [...], params: {...}, state: {...}, threshold: ..., ...}``, see
    :func:`braincore.neurons.defined.user_model`; equal mappings share one class).

    ``params`` are overrides (units allowed) on top of the ``preset`` (if any) and the model defaults;
    ``init`` maps state variables to a value or a distribution mapping; ``region`` is the qualified name of
    the sub-assembly the population came from (``None`` at the top level).
    """

    name: str
    model: Any
    size: int
    params: dict = field(default_factory=dict)
    preset: Optional[str] = None
    method: Optional[str] = None
    init: dict = field(default_factory=dict)
    region: Optional[str] = None


@dataclass(frozen=True)
class ProjectionSpec:
    """A projection from population ``pre`` to ``post`` (qualified names, ports resolved).

    ``connector`` (``{type: fixed_probability, p: 0.02}``), ``weight`` (number, quantity or distribution),
    ``synapse`` (``{type: conductance, tau: 5 ms, E_rev: 0 mV}``), ``delay`` (``None``: one step) are raw;
    ``sign`` optionally declares the projection excitatory or inhibitory; ``storage`` picks dense or sparse
    weights (``auto``: by expected density); ``plasticity`` is kept raw for the plasticity rules.
    """

    name: str
    pre: str
    post: str
    connector: Any = field(default_factory=dict)  # raw: validation reports anything but a mapping
    weight: Any = None
    synapse: dict = field(default_factory=lambda: {"type": "instantaneous"})
    delay: Any = None
    sign: Optional[str] = None
    storage: str = "auto"
    plasticity: Optional[dict] = None


@dataclass(frozen=True)
class InputSpec:
    """An external input of ``type`` (see :data:`INPUT_PARAMS`) into population ``target``; ``params`` raw."""

    name: str
    type: str
    target: str
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class MonitorSpec:
    """A recorder on population ``target``: ``spikes`` (at most ``max_spikes`` events; 0 keeps only the
    per-neuron counts), ``state`` (the named ``variables``, default ``v``) or ``rate`` (population rate in bins
    of ``bin`` ms); ``neurons`` selects indices."""

    name: str
    type: str
    target: str
    variables: list = field(default_factory=list)
    neurons: Optional[list] = None
    max_spikes: Optional[int] = None
    bin: Optional[float] = None


@dataclass(frozen=True)
class RunSpec:
    """Run settings in canonical units: ``duration`` and ``dt`` in ms."""

    duration: float = 1000.0
    dt: float = 0.1
    seed: int = 0
    device: str = "cpu"
    dtype: str = "float32"
    batch: int = 1
    backend: str = "auto"
    #: threads of the native engine: an integer >= 1 or "auto" (the CPUs this process may use); None: the
    #: environment variable BRAINCORE_THREADS, else 1 (:func:`braincore.validation.resolve_threads`)
    threads: Any = None


# ------------------------------------------------------------------------------------------ helpers
def _quantity_or_raw(value: Any, dimension: str) -> Any:
    """Canonical float when ``value`` parses, else ``value`` unchanged (reported by validate)."""
    try:
        return parse_quantity(value, dimension)
    except UnitError:
        return value


def projection_sign(spec: ProjectionSpec) -> Optional[str]:
    """The declared sign, else one inferred from a conductance synapse's ``E_rev`` (>= -40 mV: excitatory) or
    the sign of a scalar current weight; ``None`` when unknown."""
    if spec.sign in SIGNS:
        return spec.sign
    synapse = spec.synapse if isinstance(spec.synapse, Mapping) else {}
    if synapse.get("type") == "conductance" and synapse.get("E_rev") is not None:
        try:
            return "excitatory" if parse_quantity(synapse["E_rev"], "voltage") >= -40.0 else "inhibitory"
        except UnitError:
            return None
    weight = spec.weight
    if isinstance(weight, Mapping):
        weight = weight.get("mean", weight.get("low"))
    if isinstance(weight, str):
        parts = weight.split()
        weight = parts[0] if parts else None
    try:
        number = float(weight)
    except (TypeError, ValueError):
        return None
    return "inhibitory" if number < 0 else "excitatory" if number > 0 else None


# ------------------------------------------------------------------------------------------ the assembly
class Assembly:
    """A spiking network: populations (nodes) and projections (edges) of :attr:`graph`, plus inputs, monitors,
    run settings and ports. See the module docstring."""

    def __init__(self, name: str = "assembly", run: Optional[RunSpec] = None, **run_settings: Any):
        self.name = name
        self.graph = nx.MultiDiGraph(name=name)
        self.inputs: list[InputSpec] = []
        self.monitors: list[MonitorSpec] = []
        self.modulators: dict[str, dict] = {}  # neuromodulator channels: name -> {tau, baseline, value}
        self.run = run if run is not None else RunSpec()
        self._projections: dict[str, ProjectionSpec] = {}
        self._unresolved: list[str] = []      # projections whose pre or post is not (yet) a population
        self._ports: dict[str, str] = {}      # own ports, as given
        self._aliases: dict[str, str] = {}    # qualified ports of included sub-assemblies -> populations
        self._region_names: list[str] = []    # prefixes of included sub-assemblies (nested: "bg.str")
        self._issues: list[Issue] = []        # found while building (duplicate names)
        if run_settings:
            self.set_run(**run_settings)

    # -------------------------------------------------------------------------------- building
    def set_run(self, duration: Any = None, dt: Any = None, seed: Optional[int] = None,
                device: Optional[str] = None, dtype: Optional[str] = None, batch: Optional[int] = None,
                backend: Optional[str] = None, threads: Any = None) -> RunSpec:
        """Change run settings (units allowed: ``dt="0.1 ms"``); unspecified ones are kept."""
        changes: dict[str, Any] = {}
        if duration is not None:
            changes["duration"] = _quantity_or_raw(duration, "time")
        if dt is not None:
            changes["dt"] = _quantity_or_raw(dt, "time")
        for key, value in (("seed", seed), ("device", device), ("dtype", dtype), ("batch", batch),
                           ("backend", backend), ("threads", threads)):
            if value is not None:
                changes[key] = value
        self.run = dataclasses.replace(self.run, **changes)
        return self.run

    def add_population(self, name: str, model: Any, size: int, params: Optional[Mapping] = None, *,
                       preset: Optional[str] = None, method: Optional[str] = None,
                       init: Optional[Mapping] = None, region: Optional[str] = None) -> PopulationSpec:
        """Add a population node; returns its spec. A duplicate name is reported by :meth:`validate`."""
        spec = PopulationSpec(name, model, size, copy.deepcopy(dict(params or {})), preset, method,
                              copy.deepcopy(dict(init or {})), region)
        return self._add_population_spec(spec)

    def _add_population_spec(self, spec: PopulationSpec) -> PopulationSpec:
        if spec.name in self.graph:
            self._issues.append(Issue("population", spec.name, (), "duplicate population name"))
            return spec
        self.graph.add_node(spec.name, spec=spec, kind="population", model=spec.model, size=spec.size,
                            region=spec.region)
        self._sync_edges()
        return spec

    def add_projection(self, pre: str, post: str, connector: Optional[Mapping] = None, weight: Any = None,
                       synapse: Optional[Mapping] = None, delay: Any = None, *, name: Optional[str] = None,
                       sign: Optional[str] = None, storage: str = "auto",
                       plasticity: Optional[Mapping] = None) -> ProjectionSpec:
        """Add a projection edge; ``pre``/``post`` may be populations or ports (resolved to populations).

        ``name`` defaults to ``"pre->post"`` (made unique with ``#2``, ``#3``...); ``synapse`` defaults to
        ``{type: instantaneous}``, ``delay`` to one time step.
        """
        if name is None:
            base = f"{pre}->{post}"
            name, count = base, 1
            while name in self._projections:
                count += 1
                name = f"{base}#{count}"
        elif name in self._projections:
            self._issues.append(Issue("projection", name, ("name",), "duplicate projection name"))
            return self._projections[name]
        spec = ProjectionSpec(
            name, pre, post,
            copy.deepcopy(dict(connector)) if isinstance(connector, Mapping) else connector,
            copy.deepcopy(dict(weight)) if isinstance(weight, Mapping) else weight,
            copy.deepcopy(dict(synapse)) if isinstance(synapse, Mapping) else (
                {"type": "instantaneous"} if synapse is None else synapse),
            copy.deepcopy(dict(delay)) if isinstance(delay, Mapping) else delay,
            sign, storage,
            copy.deepcopy(dict(plasticity) if isinstance(plasticity, Mapping) else plasticity))
        return self._add_projection_spec(spec)

    def _add_projection_spec(self, spec: ProjectionSpec) -> ProjectionSpec:
        self._projections[spec.name] = spec
        self._unresolved.append(spec.name)
        self._sync_edges()
        return self._projections[spec.name]

    def add_input(self, name: Optional[str], type: str, target: str, params: Optional[Mapping] = None,
                  **more_params: Any) -> InputSpec:
        """Add an external input (parameters in :data:`INPUT_PARAMS`), as a mapping or as keywords:
        ``a.add_input("drive", "poisson", "exc", rate="5 Hz", weight="0.5 mV", sources=100)``.
        ``name=None`` gives ``"type:target"``."""
        values = copy.deepcopy(dict(params or {}))
        values.update(copy.deepcopy(more_params))
        target = self.resolve(target) or target
        name = self._unique(name, f"{type}:{target}", {i.name for i in self.inputs}, "input")
        spec = InputSpec(name, type, target, values)
        self.inputs.append(spec)
        return spec

    def add_monitor(self, name: Optional[str], type: str, target: str, variables: Optional[Sequence[str]] = None,
                    *, neurons: Optional[Sequence[int]] = None, max_spikes: Optional[int] = None,
                    bin: Any = None) -> MonitorSpec:
        """Add a recorder: ``spikes`` (``max_spikes``), ``state`` (``variables``, default ``["v"]`` at run time) or
        ``rate`` (``bin``, units allowed): ``a.add_monitor("v_exc", "state", "exc", ["v"], neurons=[0, 1])``.
        ``name=None`` gives ``"type:target"``."""
        target = self.resolve(target) or target
        name = self._unique(name, f"{type}:{target}", {m.name for m in self.monitors}, "monitor")
        variables = [variables] if isinstance(variables, str) else list(variables or [])
        spec = MonitorSpec(name, type, target, variables, None if neurons is None else list(neurons), max_spikes,
                           None if bin is None else _quantity_or_raw(bin, "time"))
        self.monitors.append(spec)
        return spec

    def add_port(self, name: str, population: str) -> None:
        """Export ``population`` (a population or port name) as port ``name`` for use as a sub-assembly."""
        if name in self._ports:
            self._issues.append(Issue("port", name, (), "duplicate port name"))
            return
        self._ports[name] = self.resolve(population) or population
        self._sync_edges()

    def add_modulator(self, name: str, *, tau: Any = None, baseline: Any = 0.0, value: Any = None) -> dict:
        """Declare a neuromodulator channel (:mod:`braincore.modulators`) the simulator creates: its decay
        ``tau`` (units allowed; ``None``: it holds its value), resting level ``baseline`` and initial ``value``
        (default: the baseline). Channels are brain-wide: an included region's channels are not prefixed, and
        two declarations of one name must agree. Rules such as ``rstdp`` read them; tasks set and pulse them."""
        spec = {"tau": tau, "baseline": baseline, "value": value}
        old = self.modulators.get(name)
        if old is not None and old != spec:
            self._issues.append(Issue("modulator", name, (), f"declared twice with different settings "
                                                             f"({old} and {spec})"))
        self.modulators[name] = spec
        return spec

    def include(self, sub: "Assembly", prefix: str, *, ports: Optional[Mapping[str, str]] = None,
                connect: Optional[Sequence[Mapping]] = None) -> "Assembly":
        """Copy ``sub`` in under ``prefix``: names become ``prefix.name``, ports become aliases ``prefix.port``.

        ``ports`` adds or redirects ports of the included copy (``{port: population of sub}``); ``connect`` is a
        list of keyword mappings for :meth:`add_projection` added after the copy (they may name ``prefix.port``).
        The sub-assembly's run settings are ignored. Returns ``self``.
        """
        if prefix in self._region_names:
            self._issues.append(Issue("include", prefix, (), "prefix used by two includes"))
        q = lambda n: f"{prefix}.{n}"  # noqa: E731
        self._region_names.append(prefix)
        self._region_names.extend(q(r) for r in sub._region_names)
        for spec in sub.populations():
            region = q(spec.region) if spec.region else prefix
            self._add_population_spec(dataclasses.replace(spec, name=q(spec.name), region=region,
                                                          params=copy.deepcopy(spec.params),
                                                          init=copy.deepcopy(spec.init)))
        for alias, target in sub._aliases.items():
            self._aliases[q(alias)] = q(target)
        for port, target in sub._ports.items():
            self._aliases[q(port)] = q(target)
        for port, target in (ports or {}).items():
            self._aliases[q(port)] = q(sub.resolve(target) or target)
        for proj in sub._projections.values():
            pre, post = q(proj.pre), q(proj.post)
            if q(proj.name) in self._projections:
                self._issues.append(Issue("projection", q(proj.name), ("name",), "duplicate projection name"))
                continue
            self._add_projection_spec(copy.deepcopy(dataclasses.replace(proj, name=q(proj.name), pre=pre,
                                                                        post=post)))
        for inp in sub.inputs:
            self.inputs.append(copy.deepcopy(dataclasses.replace(inp, name=q(inp.name), target=q(inp.target))))
        for mon in sub.monitors:
            self.monitors.append(copy.deepcopy(dataclasses.replace(mon, name=q(mon.name), target=q(mon.target))))
        for name, modulator in sub.modulators.items():
            self.add_modulator(name, **modulator)
        for issue in sub._issues:
            self._issues.append(dataclasses.replace(issue, name=q(issue.name) if issue.name else issue.name))
        self._sync_edges()
        for kwargs in connect or ():
            self.add_projection(**dict(kwargs))
        return self

    def _unique(self, name: Optional[str], base: str, taken: set, kind: str) -> str:
        if name is not None:
            if name in taken:
                self._issues.append(Issue(kind, name, ("name",), f"duplicate {kind} name"))
            return name
        name, count = base, 1
        while name in taken:
            count += 1
            name = f"{base}#{count}"
        return name

    def _sync_edges(self) -> None:
        """Turn projections whose endpoints now resolve into edges (ports replaced by populations); resolve
        input and monitor targets that name ports."""
        lists: tuple[list[Any], ...] = (self.inputs, self.monitors)  # of InputSpec, of MonitorSpec
        for items in lists:
            for i, spec in enumerate(items):
                target = self.resolve(spec.target)
                if target is not None and target != spec.target:
                    items[i] = dataclasses.replace(spec, target=target)
        still = []
        for name in self._unresolved:
            spec = self._projections[name]
            pre, post = self.resolve(spec.pre), self.resolve(spec.post)
            if pre is None or post is None:
                still.append(name)
                continue
            spec = dataclasses.replace(spec, pre=pre, post=post)
            self._projections[name] = spec
            self.graph.add_edge(pre, post, key=name, spec=spec, kind="projection")
        self._unresolved = still

    # -------------------------------------------------------------------------------- reading
    def resolve(self, name: str) -> Optional[str]:
        """The population that ``name`` (a population, an own port or an included port ``prefix.port``) is."""
        seen = set()
        while isinstance(name, str) and name not in seen:
            seen.add(name)
            node = self.graph.nodes.get(name) if name in self.graph else None
            if node is not None and node.get("kind") == "population":
                return name
            if name in self._aliases:
                name = self._aliases[name]
            elif name in self._ports:
                name = self._ports[name]
            else:
                return None
        return None

    def population(self, name: str) -> PopulationSpec:
        """The spec of a population (or of the population behind a port); ``KeyError`` with a suggestion."""
        resolved = self.resolve(name)
        if resolved is None:
            raise KeyError(f"no population or port {name!r}{_suggest(name, self._names())}")
        return self.graph.nodes[resolved]["spec"]

    def resize(self, name: str, size: int) -> None:
        """Give population ``name`` (or the one behind a port) ``size`` neurons, before a simulator is built from
        this assembly: sizes that follow from outside it (an agent's observation and action spaces). Its
        projections keep their connectors, drawn for the new sizes when the network is built."""
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ValueError(f"resize {name!r}: size must be an integer >= 1, got {size!r}")
        resolved = self.resolve(name)
        if resolved is None:
            raise KeyError(f"no population or port {name!r}{_suggest(name, self._names())}")
        self.graph.nodes[resolved]["spec"] = dataclasses.replace(self.graph.nodes[resolved]["spec"], size=size)

    def populations(self) -> list[PopulationSpec]:
        return [data["spec"] for _, data in self.graph.nodes(data=True) if data.get("kind") == "population"]

    def projections(self) -> Iterator[ProjectionSpec]:
        """Every projection in the order added (including any whose endpoints do not resolve)."""
        return iter(list(self._projections.values()))

    def projection(self, name: str) -> ProjectionSpec:
        if name not in self._projections:
            raise KeyError(f"no projection {name!r}{_suggest(name, self._projections)}")
        return self._projections[name]

    @property
    def ports(self) -> dict[str, str]:
        """Port name -> qualified population name (as given when it does not resolve)."""
        return {port: self.resolve(target) or target for port, target in self._ports.items()}

    @property
    def aliases(self) -> dict[str, str]:
        """Qualified ports of included sub-assemblies (``bg.in``) -> populations."""
        return {alias: self.resolve(target) or target for alias, target in self._aliases.items()}

    @property
    def regions(self) -> dict[str, list[str]]:
        """Region (qualified include prefix, or an explicit ``region``) -> its populations, nested ones too."""
        names = list(dict.fromkeys(self._region_names + [p.region for p in self.populations() if p.region]))
        return {r: [p.name for p in self.populations() if p.region and (p.region == r or p.region.startswith(r + "."))]
                for r in names}

    def _names(self) -> list[str]:
        return [*self.graph.nodes, *self._aliases, *self._ports]

    def __len__(self) -> int:
        return self.graph.number_of_nodes()

    def __repr__(self) -> str:
        return (f"Assembly({self.name!r}: {self.graph.number_of_nodes()} populations, "
                f"{sum(p.size for p in self.populations() if isinstance(p.size, int))} neurons, "
                f"{len(self._projections)} projections)")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Assembly) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    # -------------------------------------------------------------------------------- summary
    def summary(self) -> dict:
        """Populations, neurons, projections with expected synapse counts (``None`` where not computable)."""
        pops = {p.name: {"model": p.model if isinstance(p.model, str) else _user_label(p.model), "size": p.size,
                         "region": p.region} for p in self.populations()}
        neurons = sum(p.size for p in self.populations() if isinstance(p.size, int) and not isinstance(p.size, bool))
        rows, total, complete = [], 0.0, True
        for spec in self.projections():
            n_pre = pops.get(spec.pre, {}).get("size")
            n_post = pops.get(spec.post, {}).get("size")
            count = None
            if isinstance(n_pre, int) and isinstance(n_post, int):
                count = expected_synapses(spec.connector, n_pre, n_post, spec.pre == spec.post)
            if count is None:
                complete = False
            else:
                total += count
            connector = spec.connector if isinstance(spec.connector, Mapping) else {}
            synapse = spec.synapse if isinstance(spec.synapse, Mapping) else {}
            rows.append({"name": spec.name, "pre": spec.pre, "post": spec.post,
                         "connector": connector.get("type"), "expected_synapses": count,
                         "synapse": synapse.get("type"),
                         "delay": "1 step" if spec.delay is None else spec.delay,
                         "sign": projection_sign(spec)})
        return {"name": self.name, "populations": pops, "n_populations": len(pops), "neurons": neurons,
                "projections": rows, "n_projections": len(rows), "synapses": total,
                "synapses_complete": complete, "inputs": len(self.inputs), "monitors": len(self.monitors),
                "regions": {r: len(members) for r, members in self.regions.items()},
                "run": dataclasses.asdict(self.run)}

    # -------------------------------------------------------------------------------- validation
    def validate(self) -> list[str]:
        """Every problem, one line each, naming its population/projection/input/monitor; ``[]`` when valid."""
        return [str(issue) for issue in self.issues()]

    def check(self) -> "Assembly":
        """Raise :class:`ConfigError` listing every problem (``.items`` holds the :class:`Issue` records)."""
        issues = self.issues()
        if issues:
            raise AssemblyError(self.name, issues)
        return self

    def issues(self) -> list[Issue]:
        """Every problem as :class:`Issue` records (see :meth:`validate` and :mod:`braincore.validation`)."""
        return assembly_issues(self)

    # -------------------------------------------------------------------------------- (de)serialising
    def to_dict(self) -> dict:
        """The flattened description (includes resolved, qualified names) as plain data.

        The layout is that of a ``kind: assembly`` YAML file (run settings at the top, ``populations`` a
        mapping, inputs with their parameters inline), plus ``aliases`` (ports of included sub-assemblies) and
        ``regions`` (include prefixes) when there are any; input parameters are under each input's ``params``.
        :meth:`from_dict` reads it back.
        """
        run = dataclasses.asdict(self.run)
        out: dict[str, Any] = {"kind": "assembly", "name": self.name, **run}
        out["populations"] = {p.name: _drop_none({"model": p.model, "size": p.size,
                                                  "params": copy.deepcopy(p.params) or None, "preset": p.preset,
                                                  "method": p.method, "init": copy.deepcopy(p.init) or None,
                                                  "region": p.region})
                              for p in self.populations()}
        out["projections"] = [_drop_none({"name": s.name, "pre": s.pre, "post": s.post,
                                          "connector": copy.deepcopy(s.connector), "weight": copy.deepcopy(s.weight),
                                          "synapse": copy.deepcopy(s.synapse), "delay": copy.deepcopy(s.delay),
                                          "sign": s.sign, "storage": None if s.storage == "auto" else s.storage,
                                          "plasticity": copy.deepcopy(s.plasticity)})
                              for s in self.projections()]
        out["inputs"] = [{"name": s.name, "type": s.type, "target": s.target, "params": copy.deepcopy(s.params)}
                         for s in self.inputs]
        out["monitors"] = [_drop_none({"name": s.name, "type": s.type, "target": s.target,
                                       "variables": list(s.variables) or None,
                                       "neurons": None if s.neurons is None else list(s.neurons),
                                       "max_spikes": s.max_spikes, "bin": s.bin}) for s in self.monitors]
        out["ports"] = dict(self._ports)
        if self.modulators:
            out["modulators"] = {name: _drop_none(dict(spec)) for name, spec in self.modulators.items()}
        if self._aliases:
            out["aliases"] = dict(self._aliases)
        if self._region_names:
            out["regions"] = list(self._region_names)
        return out

    @classmethod
    def from_dict(cls, data: Mapping) -> "Assembly":
        """Rebuild an assembly from :meth:`to_dict` output (no includes: names are already qualified)."""
        run_keys = {f.name for f in dataclasses.fields(RunSpec)}
        a = cls(data.get("name", "assembly"))
        a.set_run(**{k: data[k] for k in run_keys if data.get(k) is not None})
        a._region_names = list(data.get("regions") or [])
        a._aliases = dict(data.get("aliases") or {})
        for name, p in (data.get("populations") or {}).items():
            a.add_population(name, p.get("model"), p.get("size"), p.get("params"), preset=p.get("preset"),
                             method=p.get("method"), init=p.get("init"), region=p.get("region"))
        for port, target in (data.get("ports") or {}).items():
            a.add_port(port, target)
        for name, spec in (data.get("modulators") or {}).items():
            a.add_modulator(name, **dict(spec or {}))
        for s in data.get("projections") or []:
            a.add_projection(s.get("pre"), s.get("post"), s.get("connector"), s.get("weight"), s.get("synapse"),
                             s.get("delay"), name=s.get("name"), sign=s.get("sign"),
                             storage=s.get("storage") or "auto", plasticity=s.get("plasticity"))
        for s in data.get("inputs") or []:
            params = dict(s.get("params") or {})
            params.update({k: v for k, v in s.items() if k not in ("name", "type", "target", "params")})
            a.add_input(s.get("name"), s.get("type"), s.get("target"), params)
        for s in data.get("monitors") or []:
            a.add_monitor(s.get("name"), s.get("type"), s.get("target"), s.get("variables"),
                          neurons=s.get("neurons"), max_spikes=s.get("max_spikes"), bin=s.get("bin"))
        return a

    def copy(self) -> "Assembly":
        return Assembly.from_dict(self.to_dict())


def _drop_none(d: dict) -> dict:
    return {k: v for k, v in d.items() if v is not None}


__all__ = ["Assembly", "AssemblyError", "PopulationSpec", "ProjectionSpec", "InputSpec", "MonitorSpec", "RunSpec",
           "Issue",
           "expected_synapses", "weight_dimension", "state_variables", "projection_sign", "check_distribution",
           "SYNAPSE_TYPES", "CONNECTOR_TYPES", "INPUT_PARAMS", "MONITOR_TYPES"]
