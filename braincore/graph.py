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
inside the item, which the YAML loader maps back to file lines. Connector, weight and delay option checks are
delegated to ``braincore.synapses`` (``check_connector``, ``check_weights``, ``check_delays``) when that package
is present; otherwise a small built-in check runs.
"""
from __future__ import annotations

import copy
import dataclasses
import difflib
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Optional, Sequence

import networkx as nx

from .errors import ConfigError
from .units import CANONICAL, UnitError, dimension_of, parse_quantity

# ------------------------------------------------------------------------------------------ vocabulary
SYNAPSE_TYPES: dict[str, tuple[str, ...]] = {
    # type -> the keys it takes besides "type" (all required)
    "instantaneous": (),
    "exponential": ("tau",),
    "alpha": ("tau",),
    "conductance": ("tau", "E_rev"),
}
#: connector types known without ``braincore.synapses`` (its ``CONNECTOR_OPTIONS`` registry wins when present)
CONNECTOR_TYPES = ("all_to_all", "one_to_one", "fixed_probability", "fixed_indegree", "fixed_outdegree",
                   "fixed_total", "explicit", "file")
SIGNS = ("excitatory", "inhibitory")
STORAGES = ("auto", "dense", "sparse")
DTYPES = ("float32", "float64")
#: ``auto``: the native CPU engine where it supports the network, else PyTorch (see braincore.native)
BACKENDS = ("auto", "native", "torch")
MONITOR_TYPES = ("spikes", "state", "rate")
#: distributions of weights (the fallback check; ``braincore.synapses.weights`` decides when present), each
#: with its required keys; every one also takes ``clip: [low, high]``; a mapping without ``dist`` is constant
DISTRIBUTIONS: dict[str, tuple[str, ...]] = {"constant": ("value",), "uniform": ("low", "high"),
                                             "normal": ("mean", "std"), "lognormal": ("mean", "std")}
#: distributions of initial state values (what the simulator draws)
INIT_DISTRIBUTIONS: dict[str, tuple[str, ...]] = {"constant": ("value",), "uniform": ("low", "high"),
                                                  "normal": ("mean", "std")}

#: input type -> {key: (kind of value, required)}. Kinds: a dimension; ``input`` (a number or quantity in the
#: target model's input unit); ``weight`` (the dimension its ``synapse`` implies, see :func:`weight_dimension`);
#: ``synapse`` (a synapse mapping, default ``{type: instantaneous}``); ``count`` (an integer >= 1);
#: ``neurons`` (indices into the target); ``values`` (numbers in the input unit, ``[T]`` or ``[T][N]``, one row per
#: step, or an ``.npy`` file); ``file`` (an existing file; relative paths are resolved by the YAML loader).
INPUT_PARAMS: dict[str, dict[str, tuple[str, bool]]] = {
    # `sources` independent Poisson trains of `rate` per target neuron, through a synapse
    # (only from `start` (default 0) until `stop` (default: the end), when given)
    "poisson": {"rate": ("frequency", True), "weight": ("weight", True), "synapse": ("synapse", False),
                "sources": ("count", False), "neurons": ("neurons", False), "start": ("time", False),
                "stop": ("time", False)},
    # a current of `amplitude` from `start` (default 0) until `stop` (default: the end)
    "constant_current": {"amplitude": ("input", True), "start": ("time", False), "stop": ("time", False),
                         "neurons": ("neurons", False)},
    # the same, meant as a pulse (`start` and `stop` given)
    "step_current": {"amplitude": ("input", True), "start": ("time", False), "stop": ("time", False),
                     "neurons": ("neurons", False)},
    # one value per step (row k from step k on; zero after the last row)
    "time_varying_current": {"values": ("values", True), "neurons": ("neurons", False)},
    # spikes read from an .npz file with arrays `times` (ms) and `neurons`, through a synapse
    "spike_file": {"path": ("file", True), "weight": ("weight", True), "synapse": ("synapse", False),
                   "neurons": ("neurons", False)},
}

#: physical dimension of the state variables that may be initialised (others: a bare number)
STATE_DIMENSIONS = {"v": "voltage", "w": "current", "u": "voltage"}

_DEVICE = re.compile(r"^(cpu|auto|mps|cuda(:\d+)?)$")


# ------------------------------------------------------------------------------------------ specs
@dataclass(frozen=True)
class PopulationSpec:
    """A population of ``size`` neurons of one ``model`` (a name in :data:`braincore.neurons.MODELS`).

    ``params`` are overrides (units allowed) on top of the ``preset`` (if any) and the model defaults;
    ``init`` maps state variables to a value or a distribution mapping; ``region`` is the qualified name of
    the sub-assembly the population came from (``None`` at the top level).
    """

    name: str
    model: str
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
    connector: dict = field(default_factory=dict)
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


@dataclass(frozen=True)
class Issue:
    """One problem of an assembly: the item (``kind``: population, projection, input, monitor, port, include,
    run), its ``name``, a key ``path`` inside the item (e.g. ``("synapse", "tau")``) and the ``message``."""

    kind: str
    name: Optional[str]
    path: tuple
    message: str

    def __str__(self) -> str:
        head = self.kind if self.name is None else f"{self.kind} {self.name!r}"
        if self.path:
            return f"{head}: {_keypath(self.path)}: {self.message}"
        return f"{head}: {self.message}"


def _keypath(path: Sequence) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class AssemblyError(ConfigError):
    """Raised by :meth:`Assembly.check`: every problem, one per line; ``.issues`` holds the :class:`Issue`
    records and ``.items`` the ``(None, line)`` pairs of :class:`ConfigError`."""

    def __init__(self, name: str, issues: Sequence[Issue]):
        self.issues = list(issues)
        super().__init__(f"assembly {name!r} has {len(self.issues)} problem(s):\n"
                         + "\n".join(str(i) for i in self.issues), [(None, str(i)) for i in self.issues])


# ------------------------------------------------------------------------------------------ helpers
def _quantity_or_raw(value: Any, dimension: str) -> Any:
    """Canonical float when ``value`` parses, else ``value`` unchanged (reported by validate)."""
    try:
        return parse_quantity(value, dimension)
    except UnitError:
        return value


def _number(value: Any) -> Optional[float]:
    try:
        return parse_quantity(value, "dimensionless")
    except UnitError:
        return None


def _suggest(name: str, known: Iterable[str]) -> str:
    near = difflib.get_close_matches(str(name), list(known), n=1)
    return f"; did you mean {near[0]!r}?" if near else ""


def _model_class(model: str):
    from .neurons import MODELS

    return MODELS.get(model)


_STATE_FIELDS: dict = {}


def state_variables(model: str) -> tuple[str, ...]:
    """The state variables of a model (``initial_state(1)._fields`` of a one-neuron instance)."""
    cls = _model_class(model)
    if cls is None:
        return ()
    if cls not in _STATE_FIELDS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _STATE_FIELDS[cls] = tuple(cls(1).initial_state(1)._fields)
    return _STATE_FIELDS[cls]


def weight_dimension(synapse_type: str, input_unit: str) -> Optional[str]:
    """The dimension of a weight of ``synapse_type`` onto a model whose input is in ``input_unit``:
    ``instantaneous``: a voltage jump (mV); ``conductance``: nS onto current-driven models (input in nA), mS/cm2
    onto Hodgkin–Huxley (input in uA/cm2); ``exponential`` and ``alpha``: the input unit itself.

    ``None`` when the combination is unsupported (conductance synapses onto a model with dimensionless input).
    """
    if synapse_type == "instantaneous":
        return "voltage"
    if synapse_type == "conductance":
        return {"nA": "conductance", "uA/cm2": "conductance_density"}.get(input_unit)
    try:
        return dimension_of(input_unit)
    except UnitError:
        return "dimensionless"


def _check_value(value: Any, dimension: Optional[str]) -> Optional[str]:
    """A message if ``value`` is not a number/quantity of ``dimension`` (any known unit when ``None``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return f"expected a number or a quantity, got {value!r}"
    if dimension is not None:
        try:
            parse_quantity(value, dimension)
        except UnitError as err:
            return str(err)
        return None
    if isinstance(value, str):
        parts = value.strip().split(None, 1)
        try:
            float(parts[0]) if parts else float("x")
        except ValueError:
            return f"cannot read {value!r} as a number with a unit"
        if len(parts) == 2:
            try:
                dimension_of(parts[1])
            except UnitError as err:
                return str(err)
    return None


def check_distribution(value: Any, dimension: Optional[str], *, positive: bool = False,
                       distributions: Mapping[str, tuple[str, ...]] = DISTRIBUTIONS) -> list[tuple]:
    """Problems ``(subpath, message)`` of a value that is a number/quantity of ``dimension`` or a distribution
    mapping ``{dist: uniform, low, high}`` / ``{dist: normal, mean, std}`` / ``{dist: constant, value}`` (the
    default ``dist``) with an optional ``clip: [low, high]`` where ``distributions`` has ``lognormal`` (weights).
    ``positive`` asks the values (``low``, ``mean``) to be > 0."""
    out: list[tuple] = []
    unit = "" if dimension is None or CANONICAL[dimension] == "1" else f" {CANONICAL[dimension]}"
    if isinstance(value, Mapping):
        dist = value.get("dist", "constant")
        if dist not in distributions:
            return [(("dist",), f"unknown distribution {dist!r}{_suggest(dist, distributions)} "
                                f"(expected one of: {', '.join(distributions)})")]
        keys = distributions[dist]
        allowed = ("dist",) + keys + (("clip",) if "lognormal" in distributions else ())
        for key in value:
            if key not in allowed:
                out.append(((key,), f"unknown key for a {dist} distribution{_suggest(key, allowed)} "
                                    f"(expected: {', '.join(allowed)})"))
        numbers = {}
        for key in keys:
            if value.get(key) is None:
                out.append(((), f"a {dist} distribution needs {key!r}"))
                continue
            message = _check_value(value[key], dimension)
            if message:
                out.append(((key,), message))
            elif dimension is not None:
                numbers[key] = parse_quantity(value[key], dimension)
        clip = value.get("clip")
        if clip is not None and "clip" in allowed:
            if not isinstance(clip, list) or len(clip) != 2:
                out.append((("clip",), f"expected [low, high] (either may be null), got {clip!r}"))
            else:
                for bound in clip:
                    message = None if bound is None else _check_value(bound, dimension)
                    if message:
                        out.append((("clip",), message))
        if dist == "uniform" and {"low", "high"} <= set(numbers) and numbers["high"] < numbers["low"]:
            out.append((("high",), f"must be >= low ({numbers['low']:g}{unit}), got {numbers['high']:g}{unit}"))
        if dist in ("normal", "lognormal") and "std" in numbers and numbers["std"] < 0:
            out.append((("std",), f"must be >= 0{unit}, got {numbers['std']:g}{unit}"))
        if dist == "lognormal" and "mean" in numbers and numbers["mean"] <= 0:
            out.append((("mean",), f"must be > 0{unit} (lognormal values are positive), got {numbers['mean']:g}{unit}"))
        lowest = {"constant": "value", "uniform": "low", "normal": "mean"}.get(dist)
        if positive and lowest in numbers and numbers[lowest] <= 0:
            out.append(((lowest,), f"must be > 0{unit}, got {numbers[lowest]:g}{unit}"))
        return out
    message = _check_value(value, dimension)
    if message:
        return [((), message)]
    if positive and dimension is not None and parse_quantity(value, dimension) <= 0:
        return [((), f"must be > 0{unit}, got {parse_quantity(value, dimension):g}{unit}")]
    return []


def _synapses_module(name: str):
    """``braincore.synapses.<name>`` or ``None`` while that package is not there yet."""
    import importlib

    try:
        return importlib.import_module(f"braincore.synapses.{name}")
    except ImportError as err:
        if getattr(err, "name", None) and not str(err.name).startswith("braincore.synapses"):
            raise
        return None


def _connector_types(module) -> tuple[str, ...]:
    registry = getattr(module, "CONNECTOR_OPTIONS", None) if module is not None else None
    return tuple(registry) if isinstance(registry, Mapping) and registry else CONNECTOR_TYPES


_MESSAGE_PREFIX = re.compile(r"^(?:weight|delay|connector|[a-z_]+)(?: [a-z_]+)?: ")


def _message_path(message: str, keys: Iterable[str]) -> tuple:
    """The key of ``keys`` that a checker's message is about: the word after a ``"<what>: "`` prefix
    (``"fixed_probability: p must be ..."``), or the first quoted key (``"unknown option 'stdd'"``)."""
    keys = {str(k) for k in keys}
    rest = _MESSAGE_PREFIX.sub("", message.strip(), count=1)
    first = re.split(r"[\s:=\[]", rest, maxsplit=1)[0].strip("'\"")
    if first in keys:
        return (first,)
    for quoted in re.findall(r"'([^']+)'", rest):
        if quoted in keys:
            return (quoted,)
    return ()


def _strip_what(message: str, what: str) -> str:
    """``"weight: '1 mV' is a voltage ..."`` -> ``"'1 mV' is a voltage ..."`` (the key path already says it)."""
    return message[len(what) + 2:] if message.startswith(what + ": ") else message


def weight_problems(value: Any, dimension: str, sign: Optional[str] = None) -> list[tuple]:
    """Problems ``(subpath, message)`` of a weight spec: ``braincore.synapses.weights.check_weights`` when that
    module is there, else :func:`check_distribution`."""
    module = _synapses_module("weights")
    if module is not None and callable(getattr(module, "check_weights", None)):
        try:
            messages = module.check_weights(value, dimension, sign=sign if sign in SIGNS else None)
        except TypeError:
            messages = module.check_weights(value, dimension)
        keys = value if isinstance(value, Mapping) else ()
        return [(_message_path(m, keys), _strip_what(m, "weight")) for m in messages or ()]
    return check_distribution(value, dimension)


def delay_problems(value: Any) -> list[tuple]:
    """Problems ``(subpath, message)`` of a delay spec (positive times or distributions of them):
    ``braincore.synapses.delays.check_delays`` when present, else :func:`check_distribution`."""
    module = _synapses_module("delays")
    if module is not None and callable(getattr(module, "check_delays", None)):
        keys = value if isinstance(value, Mapping) else ()
        return [(_message_path(m, keys), _strip_what(m, "delay")) for m in module.check_delays(value) or ()]
    return check_distribution(value, "time", positive=True,
                              distributions={k: v for k, v in DISTRIBUTIONS.items() if k != "lognormal"})


def expected_synapses(connector: Mapping, n_pre: int, n_post: int, same_population: bool = False) -> Optional[float]:
    """Expected number of synapses of a connector (``None`` when not computable without building it).

    all_to_all ``N_pre N_post``, one_to_one ``N``, fixed_probability ``p N_pre N_post``, fixed_indegree
    ``k N_post``, fixed_outdegree ``k N_pre``, fixed_total ``n``, explicit: the number of listed pairs (a
    ``file`` connector: ``None``). Within one population, ``allow_self: false`` removes the ``N``
    self-connections from all_to_all and fixed_probability.
    """
    if not isinstance(connector, Mapping):
        return None
    module = _synapses_module("connectors")
    if module is not None and callable(getattr(module, "expected_synapses", None)):
        try:
            value = module.expected_synapses(dict(connector), n_pre, n_post, same_population)
            return None if value is None else float(value)
        except Exception:  # noqa: BLE001 - fall back to the closed forms below
            pass
    kind = connector.get("type")
    no_self = same_population and connector.get("allow_self") is False
    if kind == "all_to_all":
        return float(n_pre * n_post - (min(n_pre, n_post) if no_self else 0))
    if kind == "one_to_one":
        return float(min(n_pre, n_post)) if not no_self else 0.0
    if kind == "fixed_probability":
        p = _number(connector.get("p"))
        if p is None:
            return None
        pairs = n_pre * n_post - (min(n_pre, n_post) if no_self else 0)
        return p * pairs
    if kind in ("fixed_indegree", "fixed_outdegree"):
        k = _number(connector.get("k"))
        return None if k is None else k * (n_post if kind == "fixed_indegree" else n_pre)
    if kind == "fixed_total":
        n = _number(connector.get("n"))
        return n
    if kind == "explicit" and isinstance(connector.get("pre"), (list, tuple)):
        return float(len(connector["pre"]))
    return None


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
                backend: Optional[str] = None) -> RunSpec:
        """Change run settings (units allowed: ``dt="0.1 ms"``); unspecified ones are kept."""
        changes: dict[str, Any] = {}
        if duration is not None:
            changes["duration"] = _quantity_or_raw(duration, "time")
        if dt is not None:
            changes["dt"] = _quantity_or_raw(dt, "time")
        for key, value in (("seed", seed), ("device", device), ("dtype", dtype), ("batch", batch),
                           ("backend", backend)):
            if value is not None:
                changes[key] = value
        self.run = dataclasses.replace(self.run, **changes)
        return self.run

    def add_population(self, name: str, model: str, size: int, params: Optional[Mapping] = None, *,
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
        for spec in sub._projections.values():
            pre, post = q(spec.pre), q(spec.post)
            if q(spec.name) in self._projections:
                self._issues.append(Issue("projection", q(spec.name), ("name",), "duplicate projection name"))
                continue
            self._add_projection_spec(copy.deepcopy(dataclasses.replace(spec, name=q(spec.name), pre=pre,
                                                                        post=post)))
        for spec in sub.inputs:
            self.inputs.append(copy.deepcopy(dataclasses.replace(spec, name=q(spec.name), target=q(spec.target))))
        for spec in sub.monitors:
            self.monitors.append(copy.deepcopy(dataclasses.replace(spec, name=q(spec.name),
                                                                   target=q(spec.target))))
        for name, spec in sub.modulators.items():
            self.add_modulator(name, **spec)
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
        for items in (self.inputs, self.monitors):
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
        pops = {p.name: {"model": p.model, "size": p.size, "region": p.region} for p in self.populations()}
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
    def _check_modulators(self) -> list[Issue]:
        out = []
        for name, spec in self.modulators.items():
            if not isinstance(name, str) or not name or "." in name:
                out.append(Issue("modulator", str(name), (), "a channel name is a non-empty string without dots"))
            if spec.get("tau") is not None:
                try:
                    tau = parse_quantity(spec["tau"], "time")
                    if not tau > 0:
                        out.append(Issue("modulator", name, ("tau",), f"must be > 0 ms, got {tau:g} ms"))
                except UnitError as err:
                    out.append(Issue("modulator", name, ("tau",), str(err)))
            for key in ("baseline", "value"):
                value = spec.get(key)
                if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                    out.append(Issue("modulator", name, (key,), f"expected a number, got {value!r}"))
        return out

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
        """Every problem as :class:`Issue` records (see :meth:`validate`)."""
        out: list[Issue] = list(self._issues)
        out += self._check_run()
        out += self._check_modulators()
        for spec in self.populations():
            out += self._check_population(spec)
        for port, target in self._ports.items():
            if self.resolve(target) is None:
                out.append(Issue("port", port, (), f"unknown population {target!r}{_suggest(target, self._names())}"))
            elif port in self.graph and self.resolve(target) != port:
                out.append(Issue("port", port, (), f"port name is also a population name (it points at "
                                                   f"{self.resolve(target)!r})"))
        for alias, target in self._aliases.items():
            if self.resolve(target) is None:
                out.append(Issue("port", alias, (), f"unknown population {target!r}"))
        for spec in self.projections():
            out += self._check_projection(spec)
        for spec in self.inputs:
            out += self._check_input(spec)
        for spec in self.monitors:
            out += self._check_monitor(spec)
        unique: dict[str, Issue] = {}
        for issue in out:
            unique.setdefault(str(issue), issue)
        return list(unique.values())

    def _check_run(self) -> list[Issue]:
        r, out = self.run, []

        def positive_time(key: str, value: Any) -> None:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                msg = _check_value(value, "time")
                out.append(Issue("run", None, (key,), msg or f"expected a time, got {value!r}"))
            elif not value > 0:
                out.append(Issue("run", None, (key,), f"must be > 0 ms, got {value:g} ms"))

        positive_time("dt", r.dt)
        positive_time("duration", r.duration)
        if isinstance(r.seed, bool) or not isinstance(r.seed, int):
            out.append(Issue("run", None, ("seed",), f"expected an integer, got {r.seed!r}"))
        if isinstance(r.batch, bool) or not isinstance(r.batch, int) or r.batch < 1:
            out.append(Issue("run", None, ("batch",), f"expected an integer >= 1, got {r.batch!r}"))
        if r.dtype not in DTYPES:
            out.append(Issue("run", None, ("dtype",), f"unknown dtype {r.dtype!r}{_suggest(r.dtype, DTYPES)} "
                                                      f"(expected one of: {', '.join(DTYPES)})"))
        if r.backend not in BACKENDS:
            out.append(Issue("run", None, ("backend",), f"unknown backend {r.backend!r}{_suggest(r.backend, BACKENDS)} "
                                                        f"(expected one of: {', '.join(BACKENDS)})"))
        if not isinstance(r.device, str) or not _DEVICE.match(r.device):
            out.append(Issue("run", None, ("device",), f"unknown device {r.device!r} (expected cpu, cuda, "
                                                       f"cuda:N, mps or auto)"))
        return out

    def _check_population(self, spec: PopulationSpec) -> list[Issue]:
        out: list[Issue] = []
        add = lambda path, msg: out.append(Issue("population", spec.name, path, msg))  # noqa: E731
        if isinstance(spec.size, bool) or not isinstance(spec.size, int) or spec.size <= 0:
            add(("size",), f"size must be a positive integer, got {spec.size!r}")
        from .neurons import get_model

        try:
            cls = get_model(spec.model)
        except ConfigError as err:
            add(("model",), str(err))
            return out
        values: dict = {}
        if spec.preset is not None:
            if spec.preset not in cls.presets:
                known = ", ".join(cls.presets) or "none"
                add(("preset",), f"unknown preset {spec.preset!r}{_suggest(spec.preset, cls.presets)} for "
                                 f"{spec.model} (known: {known})")
            else:
                values.update(cls.presets[spec.preset])
        if not isinstance(spec.params, Mapping):
            add(("params",), f"expected a mapping of parameters, got {spec.params!r}")
        else:
            values.update(spec.params)
            try:
                cls.params_cls.from_mapping(values)
            except ConfigError as err:
                for key, message in err.items:
                    if key is not None and key in spec.params:
                        add(("params", key), message)
                    elif key is not None and spec.preset:
                        add(("preset",), message)
                    else:
                        add(("params",), message)
        if spec.method is not None and spec.method not in cls.methods:
            add(("method",), f"unknown method {spec.method!r} for {spec.model} (expected one of: "
                             f"{', '.join(cls.methods)})")
        if not isinstance(spec.init, Mapping):
            add(("init",), f"expected a mapping of state variables, got {spec.init!r}")
            return out
        fields = state_variables(spec.model)
        for var, value in spec.init.items():
            if var not in fields:
                add(("init", var), f"{spec.model} has no state variable {var!r}{_suggest(var, fields)} "
                                   f"(state: {', '.join(fields)})")
                continue
            dim = STATE_DIMENSIONS.get(var, "dimensionless")
            for sub, message in check_distribution(value, dim, distributions=INIT_DISTRIBUTIONS):
                add(("init", var) + sub, message)
        return out

    def _check_projection(self, spec: ProjectionSpec) -> list[Issue]:
        out: list[Issue] = []
        add = lambda path, msg: out.append(Issue("projection", spec.name, path, msg))  # noqa: E731
        pops: dict[str, PopulationSpec] = {}
        for end in ("pre", "post"):
            target = getattr(spec, end)
            resolved = self.resolve(target)
            if resolved is None:
                add((end,), f"unknown population or port {target!r}{_suggest(target, self._names())}")
            else:
                pops[end] = self.graph.nodes[resolved]["spec"]
        sizes = {end: p.size for end, p in pops.items()
                 if isinstance(p.size, int) and not isinstance(p.size, bool) and p.size > 0}

        # connector
        connectors = _synapses_module("connectors")
        connector = spec.connector
        if connector is None or connector == {}:
            add(("connector",), "missing connector (e.g. {type: fixed_probability, p: 0.1})")
        elif not isinstance(connector, Mapping):
            add(("connector",), f"expected a mapping such as {{type: all_to_all}}, got {connector!r}")
        else:
            known = _connector_types(connectors)
            kind = connector.get("type")
            if kind not in known:
                what = "missing connector type" if kind is None else f"unknown connector type {kind!r}{_suggest(kind, known)}"
                add(("connector", "type"), f"{what} (expected one of: {', '.join(known)})")
            elif kind == "one_to_one" and len(sizes) == 2 and sizes["pre"] != sizes["post"]:
                add(("connector",), f"one_to_one needs populations of one size, got {spec.pre} "
                                    f"({sizes['pre']}) -> {spec.post} ({sizes['post']})")
            elif connectors is not None and callable(getattr(connectors, "check_connector", None)):
                # with a size unknown (reported elsewhere), the options alone are checked against huge sizes
                n_pre, n_post = (sizes["pre"], sizes["post"]) if len(sizes) == 2 else (2 ** 31, 2 ** 31)
                same = len(pops) == 2 and pops["pre"].name == pops["post"].name
                for message in connectors.check_connector(dict(connector), n_pre, n_post, same) or ():
                    add(("connector",) + _message_path(message, connector), _strip_what(message, "connector"))
            else:
                for path, message in _fallback_connector(connector, sizes.get("pre")):
                    add(("connector",) + path, message)

        # synapse, and the weight dimension it implies
        post_cls = _model_class(pops["post"].model) if "post" in pops else None
        synapse = spec.synapse
        syn_type = None
        if not isinstance(synapse, Mapping):
            add(("synapse",), f"expected a mapping such as {{type: exponential, tau: 5 ms}}, got {synapse!r}")
        else:
            syn_type = synapse.get("type")
            if syn_type not in SYNAPSE_TYPES:
                what = "missing synapse type" if syn_type is None else f"unknown synapse type {syn_type!r}{_suggest(syn_type, SYNAPSE_TYPES)}"
                add(("synapse", "type"), f"{what} (expected one of: {', '.join(SYNAPSE_TYPES)})")
                syn_type = None
            else:
                out += [Issue("projection", spec.name, ("synapse",) + i.path, i.message)
                        for i in _synapse_issues(synapse, syn_type)]
                if syn_type == "conductance" and post_cls is not None and \
                        weight_dimension("conductance", post_cls.input_unit) is None:
                    add(("synapse", "type"), f"conductance synapses are unsupported onto {pops['post'].model} "
                                             f"(its input is in {post_cls.input_unit!r}; conductances need a model "
                                             f"driven by a current in nA or a current density in uA/cm2)")
                    syn_type = None

        # weight
        if spec.weight is None:
            add(("weight",), "missing weight")
        elif syn_type is not None and post_cls is not None:
            dim = weight_dimension(syn_type, post_cls.input_unit)
            for path, message in weight_problems(spec.weight, dim, spec.sign):
                add(("weight",) + path, message)

        # delay (None: one step)
        if spec.delay is not None:
            for path, message in delay_problems(spec.delay):
                add(("delay",) + path, message)

        if spec.sign is not None and spec.sign not in SIGNS:
            add(("sign",), f"unknown sign {spec.sign!r}{_suggest(spec.sign, SIGNS)} (expected one of: "
                           f"{', '.join(SIGNS)})")
        if spec.storage not in STORAGES:
            add(("storage",), f"unknown storage {spec.storage!r}{_suggest(spec.storage, STORAGES)} (expected one "
                              f"of: {', '.join(STORAGES)})")
        if spec.plasticity is not None and not isinstance(spec.plasticity, (Mapping, list, tuple)):
            add(("plasticity",), f"expected a mapping such as {{rule: stdp, ...}} or a list of them, got "
                                 f"{spec.plasticity!r}")
        elif spec.plasticity is not None:
            from .plasticity import make_rule

            try:
                make_rule(spec.plasticity)
            except ConfigError as err:
                for key, message in (err.items or [((), str(err))]):
                    key_path = (key,) if isinstance(key, str) else tuple(key)
                    add(("plasticity", *key_path), message)
        return out

    def _target(self, kind: str, spec: Any, out: list) -> Optional[PopulationSpec]:
        resolved = self.resolve(spec.target)
        if resolved is None:
            out.append(Issue(kind, spec.name, ("target",), f"unknown population or port "
                                                           f"{spec.target!r}{_suggest(spec.target, self._names())}"))
            return None
        return self.graph.nodes[resolved]["spec"]

    def _check_input(self, spec: InputSpec) -> list[Issue]:
        out: list[Issue] = []
        add = lambda path, msg: out.append(Issue("input", spec.name, path, msg))  # noqa: E731
        pop = self._target("input", spec, out)
        if spec.type not in INPUT_PARAMS:
            add(("type",), f"unknown input type {spec.type!r}{_suggest(spec.type, INPUT_PARAMS)} (expected one "
                           f"of: {', '.join(INPUT_PARAMS)})")
            return out
        if not isinstance(spec.params, Mapping):
            add(("params",), f"expected a mapping of parameters, got {spec.params!r}")
            return out
        table, params = INPUT_PARAMS[spec.type], spec.params
        cls = _model_class(pop.model) if pop is not None else None
        input_dim = _input_dimension(cls.input_unit) if cls is not None else None
        for key in params:
            if key not in table:
                add((key,), f"unknown key for a {spec.type} input{_suggest(key, table)} (expected: "
                            f"{', '.join(table)})")
        for key, (what, required) in table.items():
            if params.get(key) is None:
                if required:
                    add((), f"a {spec.type} input needs {key!r}")
                continue
            value = params[key]
            if what in CANONICAL:
                message = _check_value(value, what)
                if message:
                    add((key,), message)
                elif parse_quantity(value, what) < 0:
                    add((key,), f"must be >= 0 {CANONICAL[what]}, got {parse_quantity(value, what):g}")
            elif what == "input" and cls is not None:
                message = _check_value(value, input_dim)
                if message:
                    add((key,), f"{message} (the input of {pop.model} is in {cls.input_unit})")
            elif what == "values":
                if isinstance(value, str):
                    if not Path(value).is_file():
                        add((key,), f"no such file {value!r}")
                elif not _numbers_table(value):
                    add((key,), f"expected a list of numbers in {cls.input_unit if cls else 'the input unit'} "
                                f"(one per step, or one row of N per step) or an .npy file, got {_short(value)}")
            elif what == "count":
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    add((key,), f"expected an integer >= 1, got {value!r}")
            elif what == "neurons":
                for message in _check_indices(value, pop.size if pop is not None else None):
                    add((key,), message)
            elif what == "file":
                if not isinstance(value, str):
                    add((key,), f"expected a file name, got {value!r}")
                elif not Path(value).is_file():
                    add((key,), f"no such file {value!r}")
            elif what == "synapse":
                t = value.get("type") if isinstance(value, Mapping) else value
                if not isinstance(value, Mapping) or t not in SYNAPSE_TYPES:
                    add((key, "type") if isinstance(value, Mapping) else (key,),
                        f"unknown synapse type {t!r}{_suggest(t, SYNAPSE_TYPES)} (expected one of: "
                        f"{', '.join(SYNAPSE_TYPES)})")
                else:
                    out += [Issue("input", spec.name, (key,) + i.path, i.message) for i in _synapse_issues(value, t)]
        # the weight's dimension follows from the input's synapse (default instantaneous) and the target
        if "weight" in table and params.get("weight") is not None and cls is not None:
            synapse = params.get("synapse") or {"type": "instantaneous"}
            syn_type = synapse.get("type") if isinstance(synapse, Mapping) else None
            if syn_type in SYNAPSE_TYPES:
                dim = weight_dimension(syn_type, cls.input_unit)
                if dim is None:
                    add(("synapse", "type"), f"conductance synapses are unsupported onto {pop.model} (its input "
                                             f"is in {cls.input_unit!r})")
                else:
                    for path, message in weight_problems(params["weight"], dim):
                        add(("weight",) + path, message)
        start, stop = params.get("start"), params.get("stop")
        if start is not None and stop is not None and _check_value(start, "time") is None and \
                _check_value(stop, "time") is None and parse_quantity(stop, "time") <= parse_quantity(start, "time"):
            add(("stop",), "must be after start")
        return out

    def _check_monitor(self, spec: MonitorSpec) -> list[Issue]:
        out: list[Issue] = []
        add = lambda path, msg: out.append(Issue("monitor", spec.name, path, msg))  # noqa: E731
        pop = self._target("monitor", spec, out)
        if spec.type not in MONITOR_TYPES:
            add(("type",), f"unknown monitor type {spec.type!r}{_suggest(spec.type, MONITOR_TYPES)} (expected "
                           f"one of: {', '.join(MONITOR_TYPES)})")
        if spec.type in ("spikes", "rate") and spec.variables:
            add(("variables",), f"a {spec.type} monitor records no state variables")
        if pop is not None and spec.variables and _model_class(pop.model) is not None:
            fields = state_variables(pop.model)
            for i, var in enumerate(spec.variables):
                if var not in fields:
                    add(("variables", i), f"{pop.model} has no state variable {var!r}{_suggest(var, fields)} "
                                          f"(state: {', '.join(fields)})")
        if spec.neurons is not None:
            for message in _check_indices(spec.neurons, pop.size if pop is not None else None):
                add(("neurons",), message)
        if spec.max_spikes is not None and (isinstance(spec.max_spikes, bool) or not isinstance(spec.max_spikes, int)
                                            or spec.max_spikes < 0):
            add(("max_spikes",), f"expected an integer >= 0 (0: spike counts only), got {spec.max_spikes!r}")
        if spec.max_spikes is not None and spec.type != "spikes":
            add(("max_spikes",), "only spike monitors take max_spikes")
        if spec.bin is not None:
            if spec.type != "rate":
                add(("bin",), "only rate monitors take a bin")
            elif isinstance(spec.bin, bool) or not isinstance(spec.bin, (int, float)):
                add(("bin",), _check_value(spec.bin, "time") or f"expected a time, got {spec.bin!r}")
            elif spec.bin <= 0:
                add(("bin",), f"must be > 0 ms, got {spec.bin:g} ms")
        return out

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


def _synapse_issues(synapse: Mapping, syn_type: str) -> list[Issue]:
    """Missing or unknown keys and units of a synapse mapping of a known type (paths inside the mapping)."""
    out: list[Issue] = []
    needs = SYNAPSE_TYPES[syn_type]
    for key in synapse:
        if key != "type" and key not in needs:
            allowed = ", ".join(needs) or "no other keys"
            out.append(Issue("synapse", None, (key,), f"{syn_type} synapses take {allowed}; unknown key "
                                                      f"{key!r}{_suggest(key, needs)}"))
    for key in needs:
        if synapse.get(key) is None:
            out.append(Issue("synapse", None, (key,), f"missing {key!r} ({syn_type} synapses need "
                                                      f"{' and '.join(needs)})"))
            continue
        dim = "time" if key == "tau" else "voltage"
        for path, message in check_distribution(synapse[key], dim, positive=(key == "tau")) \
                if not isinstance(synapse[key], Mapping) else [((), f"expected a {dim}, got {synapse[key]!r}")]:
            out.append(Issue("synapse", None, (key,) + path, message))
    return out


def _fallback_connector(connector: Mapping, n_pre: Optional[int]) -> list[tuple]:
    """Basic option checks used while ``braincore.synapses.connectors`` is not available."""
    kind, out = connector.get("type"), []
    if kind == "fixed_probability":
        p = connector.get("p")
        if p is None:
            out.append(((), "fixed_probability needs 'p'"))
        elif _number(p) is None or not 0.0 <= _number(p) <= 1.0:
            out.append((("p",), f"p must be a probability in [0, 1], got {p!r}"))
    elif kind in ("explicit", "file"):
        for key in (("pre", "post") if kind == "explicit" else ("path",)):
            if connector.get(key) is None:
                out.append(((), f"{kind} needs {key!r}"))
    elif kind in ("fixed_indegree", "fixed_outdegree", "fixed_total"):
        key = "n" if kind == "fixed_total" else "k"
        value = connector.get(key)
        if value is None:
            out.append(((), f"{kind} needs {key!r}"))
        elif isinstance(value, bool) or not isinstance(value, int) or value < 0:
            out.append(((key,), f"{key} must be an integer >= 0, got {value!r}"))
        elif kind == "fixed_indegree" and n_pre is not None and value > n_pre:
            out.append(((key,), f"k = {value} exceeds the {n_pre} presynaptic neurons"))
    return out


def _input_dimension(input_unit: str) -> str:
    try:
        return dimension_of(input_unit)
    except UnitError:
        return "dimensionless"


def _numbers_table(value: Any) -> bool:
    """A non-empty list of numbers, or of equally long lists of numbers."""
    number = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)  # noqa: E731
    if not isinstance(value, list) or not value:
        return False
    if all(number(v) for v in value):
        return True
    return all(isinstance(row, list) and len(row) == len(value[0]) and all(number(v) for v in row) for row in value)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_indices(value: Any, size: Optional[int]) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in value):
        return [f"expected a list of neuron indices, got {value!r}"]
    if size is not None and isinstance(size, int):
        bad = [i for i in value if not 0 <= i < size]
        if bad:
            return [f"indices out of range 0..{size - 1}: {bad[:5]}"]
    return []


__all__ = ["Assembly", "AssemblyError", "PopulationSpec", "ProjectionSpec", "InputSpec", "MonitorSpec", "RunSpec", "Issue",
           "expected_synapses", "weight_dimension", "state_variables", "projection_sign", "check_distribution",
           "SYNAPSE_TYPES", "CONNECTOR_TYPES", "INPUT_PARAMS", "MONITOR_TYPES"]
