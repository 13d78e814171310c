"""Validation of assemblies: every check that an :class:`~braincore.graph.Assembly` is complete and consistent.

:func:`assembly_issues` returns *every* problem of an assembly at once as :class:`Issue` records, each naming
its item (population, projection, input, monitor, port, modulator or the run settings) and a key path inside
it; :meth:`Assembly.validate() <braincore.graph.Assembly.validate>`, :meth:`~braincore.graph.Assembly.issues`
and :meth:`~braincore.graph.Assembly.check` (which raises :class:`AssemblyError`) are the public entry points
and call it. The YAML loader (:mod:`braincore.assembly_config`) maps each issue's key path back to a file line.

This module holds:

- the vocabulary an assembly is checked against (:data:`SYNAPSE_TYPES`, :data:`INPUT_PARAMS`,
  :data:`MONITOR_TYPES`, :data:`BACKENDS` ...) and :func:`weight_dimension`, the dimension a projection's
  weight has for its synapse type and post model;
- the checks of each part: :func:`check_run`, :func:`check_modulators`, :func:`check_population`,
  :func:`check_ports`, :func:`check_projection`, :func:`check_input`, :func:`check_monitor`;
- value checks shared by them: :func:`check_distribution`, :func:`weight_problems`, :func:`delay_problems`.

Connector, weight and delay options are checked by :mod:`braincore.synapses` (``connector_problems``,
``weight_spec_problems``, ``delay_spec_problems``), whose ``(key, message)`` pairs give the key path; neuron
parameters by the models' parameter records; plasticity rules by :func:`braincore.plasticity.make_rule`.

The module reads an assembly only through its public methods and a few of its private fields (the ports as
given, the issues found while building); it never imports :mod:`braincore.graph` at run time, which imports it.
"""
from __future__ import annotations

import difflib
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Optional, Sequence

from .errors import ConfigError
from .neurons import MODELS, get_model
from .plasticity import make_rule
from .synapses.connectors import CONNECTOR_OPTIONS, connector_problems
from .synapses.delays import delay_spec_problems
from .synapses.weights import weight_spec_problems
from .units import CANONICAL, UnitError, dimension_of, parse_quantity

if TYPE_CHECKING:  # only for annotations: graph imports this module
    from .graph import Assembly, InputSpec, MonitorSpec, PopulationSpec, ProjectionSpec, RunSpec

# ------------------------------------------------------------------------------------------ vocabulary
SYNAPSE_TYPES: dict[str, tuple[str, ...]] = {
    # type -> the keys it takes besides "type" (all required)
    "instantaneous": (),
    "exponential": ("tau",),
    "alpha": ("tau",),
    "conductance": ("tau", "E_rev"),
}
#: connector types (the options of each are in :data:`braincore.synapses.connectors.CONNECTOR_OPTIONS`)
CONNECTOR_TYPES = tuple(CONNECTOR_OPTIONS)
SIGNS = ("excitatory", "inhibitory")
STORAGES = ("auto", "dense", "sparse")
DTYPES = ("float32", "float64")
#: ``auto``: the native CPU engine where it supports the network, else PyTorch (see braincore.native)
BACKENDS = ("auto", "native", "torch")
MONITOR_TYPES = ("spikes", "state", "rate")
#: distributions of values checked by :func:`check_distribution` (weights themselves are checked by
#: ``braincore.synapses.weights``), each with its required keys; every one also takes ``clip: [low, high]``; a
#: mapping without ``dist`` is constant
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


# ------------------------------------------------------------------------------------------ issues
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
def _suggest(name: str, known: Iterable[str]) -> str:
    near = difflib.get_close_matches(str(name), list(known), n=1)
    return f"; did you mean {near[0]!r}?" if near else ""


def _model_class(model: Any):
    """The class of a registered model name or of a user model mapping; ``None`` when there is none (the problem
    is reported by :func:`check_population`)."""
    if isinstance(model, Mapping):
        try:
            return get_model(model)
        except ConfigError:
            return None
    return MODELS.get(model) if isinstance(model, str) else None


def model_label(model: Any) -> str:
    """How messages name a model: its registry name, or ``user model 'name'`` for a mapping."""
    if isinstance(model, Mapping):
        return f"user model {str(model.get('name', 'user'))!r}"
    return str(model)


def user_model_issues(model: Mapping) -> list[tuple[tuple, str]]:
    """Problems ``(key path inside the mapping, message)`` of a user model mapping (every problem of its keys and
    values, then the first one of its equations), ``[]`` when it builds."""
    try:
        get_model(model)
    except ConfigError as err:
        from .neurons.defined import key_path

        return [(key_path(key), message) for key, message in (err.items or [(None, str(err))])]
    return []


def state_dimension(cls: Any, var: str) -> str:
    """The dimension of state variable ``var`` of model class ``cls``: a user model's declared dimension, else
    :data:`STATE_DIMENSIONS` (``dimensionless`` for the others)."""
    if getattr(cls, "user_defined", False) and var in cls.definition.state:
        dim = cls.definition.state[var][0]
        return dim if dim in CANONICAL else "dimensionless"
    return STATE_DIMENSIONS.get(var, "dimensionless")


_STATE_FIELDS: dict = {}


def state_variables(model: Any) -> tuple[str, ...]:
    """The state variables of a model (``initial_state(1)._fields`` of a one-neuron instance)."""
    cls = _model_class(model)
    if cls is None:
        return ()
    if getattr(cls, "definition", None) is not None:
        return tuple(cls.state_cls._fields)
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


def _key_path(key: Any, spec: Any) -> tuple:
    """The key path of a checker's ``(key, message)`` pair inside ``spec``: ``(key,)`` when ``spec`` is a mapping
    that holds ``key``, else ``()`` (the message is about the value as a whole)."""
    return (key,) if isinstance(key, str) and isinstance(spec, Mapping) and key in spec else ()


def _strip_what(message: str, what: str) -> str:
    """``"weight: '1 mV' is a voltage ..."`` -> ``"'1 mV' is a voltage ..."`` (the key path already says it)."""
    return message[len(what) + 2:] if message.startswith(what + ": ") else message


def weight_problems(value: Any, dimension: str, sign: Optional[str] = None) -> list[tuple]:
    """Problems ``(subpath, message)`` of a weight spec of ``dimension`` (see
    :func:`braincore.synapses.weights.check_weights`); with a declared ``sign``, weights that are all negative
    too."""
    return [(_key_path(key, value), _strip_what(message, "weight"))
            for key, message in weight_spec_problems(value, dimension, sign=sign if sign in SIGNS else None)]


def delay_problems(value: Any) -> list[tuple]:
    """Problems ``(subpath, message)`` of a delay spec (positive times or distributions of them, see
    :func:`braincore.synapses.delays.check_delays`)."""
    return [(_key_path(key, value), _strip_what(message, "delay")) for key, message in delay_spec_problems(value)]


def connector_problem_paths(connector: Mapping, n_pre: int, n_post: int, same: bool) -> list[tuple]:
    """Problems ``(subpath, message)`` of a connector's options (see
    :func:`braincore.synapses.connectors.check_connector`)."""
    return [(_key_path(key, connector), _strip_what(message, "connector"))
            for key, message in connector_problems(dict(connector), n_pre, n_post, same)]


# ------------------------------------------------------------------------------------------ the checks
def require_valid(assembly: "Assembly") -> None:
    """Raise :class:`ConfigError` with every problem of ``assembly``, one per line, unless it is valid (what the
    simulators check before building anything)."""
    problems = assembly.validate()
    if problems:
        raise ConfigError("\n".join(problems))


def assembly_issues(assembly: "Assembly") -> list[Issue]:
    """Every problem of ``assembly`` as :class:`Issue` records, each reported once, in a fixed order: those found
    while building (duplicate names), the run settings, the modulators, then every population, port,
    projection, input and monitor. :meth:`Assembly.issues <braincore.graph.Assembly.issues>` returns this."""
    out: list[Issue] = list(assembly._issues)
    out += check_run(assembly.run)
    out += check_modulators(assembly.modulators)
    for spec in assembly.populations():
        out += check_population(spec)
    out += check_ports(assembly)
    for spec in assembly.projections():
        out += check_projection(assembly, spec)
    for spec in assembly.inputs:
        out += check_input(assembly, spec)
    for spec in assembly.monitors:
        out += check_monitor(assembly, spec)
    unique: dict[str, Issue] = {}
    for issue in out:
        unique.setdefault(str(issue), issue)
    return list(unique.values())


def check_run(r: "RunSpec") -> list[Issue]:
    """Problems of the run settings (:class:`~braincore.graph.RunSpec`)."""
    out: list[Issue] = []

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


def check_modulators(modulators: Mapping[str, Mapping]) -> list[Issue]:
    """Problems of the neuromodulator channels ``{name: {tau, baseline, value}}``."""
    out = []
    for name, spec in modulators.items():
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


def check_population(spec: "PopulationSpec") -> list[Issue]:
    """Problems of a population: size, model, preset, parameters, method and initial values."""
    out: list[Issue] = []
    add = lambda path, msg: out.append(Issue("population", spec.name, path, msg))  # noqa: E731
    if isinstance(spec.size, bool) or not isinstance(spec.size, int) or spec.size <= 0:
        add(("size",), f"size must be a positive integer, got {spec.size!r}")
    if isinstance(spec.model, Mapping):
        problems = user_model_issues(spec.model)
        for path, message in problems:
            add(("model",) + path, message)
        if problems:
            return out
    elif not isinstance(spec.model, str):
        add(("model",), f"expected a registered model name or a mapping {{equations: [...], params: ..., "
                        f"state: ...}}, got {spec.model!r}")
        return out
    try:
        cls = get_model(spec.model)
    except ConfigError as err:
        add(("model",), str(err))
        return out
    label = model_label(spec.model)
    values: dict = {}
    if spec.preset is not None:
        if spec.preset not in cls.presets:
            known = ", ".join(cls.presets) or "none"
            add(("preset",), f"unknown preset {spec.preset!r}{_suggest(spec.preset, cls.presets)} for "
                             f"{label} (known: {known})")
        else:
            values.update(cls.presets[spec.preset])
    record = None
    if not isinstance(spec.params, Mapping):
        add(("params",), f"expected a mapping of parameters, got {spec.params!r}")
    else:
        values.update(spec.params)
        try:
            record = cls.params_cls.from_mapping(values)
        except ConfigError as err:
            for key, message in err.items:
                if key is not None and key in spec.params:
                    add(("params", key), message)
                elif key is not None and spec.preset:
                    add(("preset",), message)
                else:
                    add(("params",), message)
    method_ok = spec.method is None or spec.method in cls.methods
    if not method_ok:
        add(("method",), f"unknown method {spec.method!r} for {label} (expected one of: "
                         f"{', '.join(cls.methods)})")
    if record is not None and method_ok and getattr(cls, "definition", None) is not None:
        # a parameter the equations divide by must not be zero (its own line, or the model's default)
        from .neurons.defined import zero_divisors

        try:
            zero = zero_divisors(cls, record, spec.method)
        except Exception as err:  # noqa: BLE001 - an analysis error of a registered model: report it, don't crash
            zero = [(None, str(err))]
        for key, message in zero:
            if key is not None and key in spec.params:
                add(("params", key), message)
            elif key is not None and isinstance(spec.model, Mapping) and key in (spec.model.get("params") or {}):
                add(("model", "params", key), message)
            elif key == "t_ref" and isinstance(spec.model, Mapping) and "refractory" in spec.model:
                add(("model", "refractory"), message)
            else:
                add(("params",) if spec.params else ("model",), message)
    if not isinstance(spec.init, Mapping):
        add(("init",), f"expected a mapping of state variables, got {spec.init!r}")
        return out
    fields = state_variables(spec.model)
    for var, value in spec.init.items():
        if var not in fields:
            add(("init", var), f"{label} has no state variable {var!r}{_suggest(var, fields)} "
                               f"(state: {', '.join(fields)})")
            continue
        dim = state_dimension(cls, var)
        for sub, message in check_distribution(value, dim, distributions=INIT_DISTRIBUTIONS):
            add(("init", var) + sub, message)
    return out


def check_ports(assembly: "Assembly") -> list[Issue]:
    """Problems of the assembly's own ports (as given) and of the ports of its included sub-assemblies."""
    out: list[Issue] = []
    for port, target in assembly._ports.items():
        if assembly.resolve(target) is None:
            out.append(Issue("port", port, (), f"unknown population {target!r}{_suggest(target, assembly._names())}"))
        elif port in assembly.graph and assembly.resolve(target) != port:
            out.append(Issue("port", port, (), f"port name is also a population name (it points at "
                                               f"{assembly.resolve(target)!r})"))
    for alias, target in assembly._aliases.items():
        if assembly.resolve(target) is None:
            out.append(Issue("port", alias, (), f"unknown population {target!r}"))
    return out


def check_projection(assembly: "Assembly", spec: "ProjectionSpec") -> list[Issue]:
    """Problems of a projection: its ends, connector, synapse, weight, delay, sign, storage and plasticity."""
    out: list[Issue] = []
    add = lambda path, msg: out.append(Issue("projection", spec.name, path, msg))  # noqa: E731
    pops: dict[str, "PopulationSpec"] = {}
    for end in ("pre", "post"):
        target = getattr(spec, end)
        resolved = assembly.resolve(target)
        if resolved is None:
            add((end,), f"unknown population or port {target!r}{_suggest(target, assembly._names())}")
        else:
            pops[end] = assembly.graph.nodes[resolved]["spec"]
    sizes = {end: p.size for end, p in pops.items()
             if isinstance(p.size, int) and not isinstance(p.size, bool) and p.size > 0}

    # connector
    connector = spec.connector
    if connector is None or connector == {}:
        add(("connector",), "missing connector (e.g. {type: fixed_probability, p: 0.1})")
    elif not isinstance(connector, Mapping):
        add(("connector",), f"expected a mapping such as {{type: all_to_all}}, got {connector!r}")
    else:
        kind = connector.get("type")
        if kind not in CONNECTOR_TYPES:
            what = "missing connector type" if kind is None else \
                f"unknown connector type {kind!r}{_suggest(kind, CONNECTOR_TYPES)}"
            add(("connector", "type"), f"{what} (expected one of: {', '.join(CONNECTOR_TYPES)})")
        elif kind == "one_to_one" and len(sizes) == 2 and sizes["pre"] != sizes["post"]:
            add(("connector",), f"one_to_one needs populations of one size, got {spec.pre} "
                                f"({sizes['pre']}) -> {spec.post} ({sizes['post']})")
        else:
            # with a size unknown (reported elsewhere), the options alone are checked against huge sizes
            n_pre, n_post = (sizes["pre"], sizes["post"]) if len(sizes) == 2 else (2 ** 31, 2 ** 31)
            same = len(pops) == 2 and pops["pre"].name == pops["post"].name
            for path, message in connector_problem_paths(connector, n_pre, n_post, same):
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
                add(("synapse", "type"), f"conductance synapses are unsupported onto {model_label(pops['post'].model)} "
                                         f"(its input is in {post_cls.input_unit!r}; conductances need a model "
                                         f"driven by a current in nA or a current density in uA/cm2)")
                syn_type = None

    if syn_type in ("instantaneous", "conductance") and post_cls is not None and \
            "v" not in getattr(post_cls.state_cls, "_fields", ("v",)):
        add(("synapse", "type"), _needs_v(syn_type, pops["post"].model))
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
        try:
            make_rule(spec.plasticity)
        except ConfigError as err:
            for key, message in (err.items or [((), str(err))]):
                key_path = (key,) if isinstance(key, str) else tuple(key)
                add(("plasticity", *key_path), message)
    return out


def _target(assembly: "Assembly", kind: str, spec: Any, out: list) -> Optional["PopulationSpec"]:
    """The population an input or monitor targets; an issue in ``out`` when it names none."""
    resolved = assembly.resolve(spec.target)
    if resolved is None:
        out.append(Issue(kind, spec.name, ("target",), f"unknown population or port "
                                                       f"{spec.target!r}{_suggest(spec.target, assembly._names())}"))
        return None
    return assembly.graph.nodes[resolved]["spec"]


def check_input(assembly: "Assembly", spec: "InputSpec") -> list[Issue]:
    """Problems of an external input: its target, type and the parameters of :data:`INPUT_PARAMS`."""
    out: list[Issue] = []
    add = lambda path, msg: out.append(Issue("input", spec.name, path, msg))  # noqa: E731
    pop = _target(assembly, "input", spec, out)
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
                add((key,), f"{message} (the input of {model_label(pop.model)} is in {cls.input_unit})")
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
        if syn_type in ("instantaneous", "conductance") and "v" not in getattr(cls.state_cls, "_fields", ("v",)):
            add(("synapse", "type") if "synapse" in params else ("weight",), _needs_v(syn_type, pop.model))
        elif syn_type in SYNAPSE_TYPES:
            dim = weight_dimension(syn_type, cls.input_unit)
            if dim is None:
                add(("synapse", "type"), f"conductance synapses are unsupported onto {model_label(pop.model)} (its input "
                                         f"is in {cls.input_unit!r})")
            else:
                for path, message in weight_problems(params["weight"], dim):
                    add(("weight",) + path, message)
    start, stop = params.get("start"), params.get("stop")
    if start is not None and stop is not None and _check_value(start, "time") is None and \
            _check_value(stop, "time") is None and parse_quantity(stop, "time") <= parse_quantity(start, "time"):
        add(("stop",), "must be after start")
    return out


def check_monitor(assembly: "Assembly", spec: "MonitorSpec") -> list[Issue]:
    """Problems of a monitor: its target, type, variables, neurons, max_spikes and bin."""
    out: list[Issue] = []
    add = lambda path, msg: out.append(Issue("monitor", spec.name, path, msg))  # noqa: E731
    pop = _target(assembly, "monitor", spec, out)
    if spec.type not in MONITOR_TYPES:
        add(("type",), f"unknown monitor type {spec.type!r}{_suggest(spec.type, MONITOR_TYPES)} (expected "
                       f"one of: {', '.join(MONITOR_TYPES)})")
    if spec.type in ("spikes", "rate") and spec.variables:
        add(("variables",), f"a {spec.type} monitor records no state variables")
    if pop is not None and spec.variables and _model_class(pop.model) is not None:
        fields = state_variables(pop.model)
        for i, var in enumerate(spec.variables):
            if var not in fields:
                add(("variables", i), f"{model_label(pop.model)} has no state variable {var!r}{_suggest(var, fields)} "
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


def _needs_v(syn_type: str, model: Any) -> str:
    return (f"{syn_type} synapses act on the membrane potential 'v', and {model_label(model)} has no state "
            f"variable 'v' (name its membrane potential v, or use exponential or alpha synapses, which drive I)")


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


__all__ = ["Issue", "AssemblyError", "assembly_issues", "require_valid", "check_run", "check_modulators",
           "check_population", "check_ports", "check_projection", "check_input", "check_monitor",
           "check_distribution", "weight_problems", "delay_problems", "connector_problem_paths",
           "weight_dimension", "state_variables",
           "SYNAPSE_TYPES", "CONNECTOR_TYPES", "SIGNS", "STORAGES", "DTYPES", "BACKENDS", "MONITOR_TYPES",
           "DISTRIBUTIONS", "INIT_DISTRIBUTIONS", "INPUT_PARAMS", "STATE_DIMENSIONS"]
