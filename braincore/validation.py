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
import math
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Optional, Sequence

from .config import Text
from .errors import ConfigError
from .neurons import MODELS, get_model
from .plasticity import make_rule
from .synapses.connectors import CONNECTOR_OPTIONS, connector_problems
from .synapses.delays import delay_spec_problems
from .synapses.weights import weight_spec_problems
from .units import CANONICAL, UnitError, dimension_of, is_finite_number, parse_quantity

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
#: the most steps one run may take (``duration / dt``): a run beyond it would not finish, and the step count must
#: stay exact in the float64 times ``k * dt``
MAX_STEPS = 10 ** 12


# ------------------------------------------------------------------------------------------ output names
def output_name_problem(name: Any, what: str = "a name", *, subfolders: bool = False) -> Optional[str]:
    """Why ``name`` cannot name a file inside the output folder (``None`` when it can): it is written as
    ``<out>/<name>...``, so it must not contain a path separator (unless ``subfolders``), ``..``, a NUL byte, or be
    absolute; the files a run writes stay inside the folder the user gave."""
    if not isinstance(name, str) or not name.strip():
        return f"expected {what} (a non-empty string), got {name!r}"
    if "\0" in name:
        return f"{what} may not contain a NUL byte, got {name!r}"
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or Path(name).is_absolute():
        return f"{what} must be relative to the output folder, got the absolute path {name!r}"
    parts = re.split(r"[/\\]", name)
    if not subfolders and len(parts) > 1:
        return (f"{what} may not contain a path separator ('/' or '\\'), got {name!r}: it names a file in the "
                f"output folder")
    if ".." in name:
        return f"{what} may not contain '..', got {name!r}: the files of a run stay in its output folder"
    return None


class OutputName(Text):
    """A config schema field for a name that becomes a file name in the output folder (a task's or an assembly's
    ``name``, a gallery's ``output``): a string that :func:`output_name_problem` accepts (``subfolders``: a
    relative path inside the folder, such as ``plots/gallery.png``)."""

    def __init__(self, default: Any = None, *, required: bool = False, subfolders: bool = False, doc: str = ""):
        super().__init__(default, required=required, doc=doc)
        self.subfolders = subfolders
        self.description = "a file name inside the output folder" if subfolders else \
            "a name without path separators (it names files in the output folder)"

    def check(self, value, doc, path, problems):
        value = super().check(value, doc, path, problems)
        if isinstance(value, str):
            message = output_name_problem(value, "the file name" if self.subfolders else "the name",
                                          subfolders=self.subfolders)
            if message:
                problems.append(doc.problem(path, message))
                return None
        return value


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
def _suggest(name: object, known: Iterable[str]) -> str:
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


def _is_source(model: Any) -> bool:
    """Whether ``model`` names a spike source (braincore.neurons.poisson), which takes no input."""
    from .neurons.poisson import is_spike_source

    return is_spike_source(model if isinstance(model, type) else _model_class(model))


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
    if getattr(cls, "definition", None) is not None or _is_source(cls):  # the record declares them
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


def required_weight_dimension(synapse_type: str, input_unit: str, where: str) -> str:
    """:func:`weight_dimension` for a network that validation accepted; a :class:`ConfigError` naming ``where``
    for the unsupported combination (which validation refuses first)."""
    dim = weight_dimension(synapse_type, input_unit)
    if dim is None:
        raise ConfigError(f"{where}: {synapse_type} synapses are unsupported onto a model whose input is in "
                          f"{input_unit!r}")
    return dim


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
            number = float(parts[0]) if parts else float("x")
        except ValueError:
            return f"cannot read {value!r} as a number with a unit"
        if not math.isfinite(number):
            return f"expected a finite number, got {value!r}"
        if len(parts) == 2:
            try:
                parse_quantity(value, dimension_of(parts[1]))
            except UnitError as err:
                return str(err)
    elif not is_finite_number(value):
        return f"expected a finite number, got {value!r}"
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


def _parsed_delay(value: Any) -> Optional[dict]:
    from .synapses.delays import _parse

    parsed, _ = _parse(value)
    return parsed


def delay_step_problems(value: Any, dt: float) -> list[tuple]:
    """Problems ``(subpath, message)`` of a valid delay spec at the time step ``dt`` (ms): a constant delay, a
    uniform ``low`` or a normal ``mean`` shorter than one step (a spike needs at least one step to arrive; the
    engines would silently lengthen it to one step)."""
    parsed = _parsed_delay(value)
    if parsed is None:
        return []
    key = {"constant": "value", "uniform": "low", "normal": "mean"}.get(parsed["dist"])
    if key is None or not parsed[key] < dt * (1.0 - 1e-9):
        return []
    what = "delay" if parsed["dist"] == "constant" else f"the {parsed['dist']} delay's {key}"
    path = (key,) if isinstance(value, Mapping) and key in value else ()
    return [(path, f"{what} ({parsed[key]:g} ms) is shorter than one time step (dt = {dt:g} ms): a spike needs at "
                   f"least one step to arrive; use a delay >= {dt:g} ms or a smaller dt")]


def _uniform_delay(value: Any, dt: Any) -> bool:
    """Whether a valid delay spec gives every synapse the same number of steps (what dense storage needs): a
    constant, or a distribution whose whole range rounds to one step at ``dt``."""
    parsed = _parsed_delay(value)
    if parsed is None or parsed["dist"] == "constant":
        return True
    if not (is_finite_number(dt) and dt > 0):
        return True  # the run's dt is reported elsewhere
    if parsed["dist"] == "uniform":
        low, high = parsed["low"], parsed["high"]
    else:
        if parsed["std"] == 0:
            return True
        low, high = parsed["mean"] - 8 * parsed["std"], parsed["mean"] + 8 * parsed["std"]
    if parsed.get("clip"):
        lo, hi = parsed["clip"]
        low, high = max(low, lo) if lo is not None else low, min(high, hi) if hi is not None else high
    step = lambda ms: max(1, math.floor(ms / dt + 0.5 + 1e-6))  # noqa: E731  (braincore.synapses.delay_steps)
    return step(low) == step(high)


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
    message = output_name_problem(assembly.name, "the assembly name")
    if message:  # a run writes <out>/<name>.npz and <out>/<name>_raster.png
        out.append(Issue("assembly", None, ("name",), message))
    out += check_run(assembly.run)
    out += check_modulators(assembly.modulators)
    for spec in assembly.populations():
        out += check_population(spec)
    out += check_ports(assembly)
    for proj in assembly.projections():
        out += check_projection(assembly, proj)
    for inp in assembly.inputs:
        out += check_input(assembly, inp)
    for mon in assembly.monitors:
        out += check_monitor(assembly, mon)
    if assembly.run.backend == "native":
        out += native_issues(assembly)
    out += resource_issues(assembly)
    unique: dict[str, Issue] = {}
    for issue in out:
        unique.setdefault(str(issue), issue)
    return list(unique.values())


def check_run(r: "RunSpec") -> list[Issue]:
    """Problems of the run settings (:class:`~braincore.graph.RunSpec`)."""
    out: list[Issue] = []

    def positive_time(key: str, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            msg = _check_value(value, "time")
            out.append(Issue("run", None, (key,), msg or f"expected a time, got {value!r}"))
        elif not is_finite_number(value):
            out.append(Issue("run", None, (key,), f"expected a finite time, got {value!r}"))
        elif not value > 0:
            out.append(Issue("run", None, (key,), f"must be > 0 ms, got {value:g} ms"))
        else:
            return True
        return False

    dt_ok = positive_time("dt", r.dt)
    duration_ok = positive_time("duration", r.duration)
    if dt_ok and duration_ok:
        if r.dt > r.duration:
            out.append(Issue("run", None, ("dt",), f"the time step ({r.dt:g} ms) is longer than the duration "
                                                   f"({r.duration:g} ms): the run would have no step"))
        elif r.duration / r.dt > MAX_STEPS:
            out.append(Issue("run", None, ("duration",), f"{r.duration:g} ms at dt = {r.dt:g} ms is more than "
                                                         f"the limit of {MAX_STEPS:.0e} steps for one run"))
    if isinstance(r.seed, bool) or not isinstance(r.seed, int):
        out.append(Issue("run", None, ("seed",), f"expected an integer, got {r.seed!r}"))
    elif not 0 <= r.seed < 2 ** 63:
        out.append(Issue("run", None, ("seed",), f"expected an integer from 0 to 2**63 - 1, got {r.seed}"))
    if isinstance(r.batch, bool) or not isinstance(r.batch, int) or r.batch < 1:
        out.append(Issue("run", None, ("batch",), f"expected an integer >= 1, got {r.batch!r}"))
    if r.dtype not in DTYPES:
        out.append(Issue("run", None, ("dtype",), f"unknown dtype {r.dtype!r}{_suggest(r.dtype, DTYPES)} "
                                                  f"(expected one of: {', '.join(DTYPES)})"))
    threads_problem = check_threads(r.threads)
    if threads_problem:
        out.append(Issue("run", None, ("threads",), threads_problem))
    if r.backend not in BACKENDS:
        out.append(Issue("run", None, ("backend",), f"unknown backend {r.backend!r}{_suggest(r.backend, BACKENDS)} "
                                                    f"(expected one of: {', '.join(BACKENDS)})"))
    if not isinstance(r.device, str) or not _DEVICE.match(r.device):
        out.append(Issue("run", None, ("device",), f"unknown device {r.device!r} (expected cpu, cuda, "
                                                   f"cuda:N, mps or auto)"))
    else:
        missing = device_unavailable(r.device)
        if missing:
            out.append(Issue("run", None, ("device",), missing))
    return out


#: the environment variable that gives the native engine's threads where neither the Simulator nor the run
#: settings do
THREADS_ENV = "BRAINCORE_THREADS"


def check_threads(value: Any) -> Optional[str]:
    """Why ``value`` is not a thread setting (``None``, an integer >= 1 or ``"auto"``); ``None`` when it is."""
    if value is None or value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        return None
    return f"expected an integer >= 1 or 'auto', got {value!r}"


def resolve_threads(value: Any = None) -> int:
    """The native engine's number of threads for the setting ``value``: an integer >= 1 as given; ``"auto"``: the
    CPUs this process may run on (its affinity mask, else ``os.cpu_count()``); ``None``: the environment variable
    ``BRAINCORE_THREADS`` (an integer or ``auto``) when set, else 1. Raises :class:`ValueError` for anything else."""
    source = "threads"
    if value is None:
        env = os.environ.get(THREADS_ENV, "").strip()
        if not env:
            return 1
        source, value = THREADS_ENV, env if env == "auto" else (int(env) if env.lstrip("-").isdigit() else env)
    problem = check_threads(value)
    if problem:
        raise ValueError(f"{source}: {problem}")
    if value == "auto":
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except (AttributeError, OSError):
            return max(1, os.cpu_count() or 1)
    return int(value)


def device_unavailable(device: str) -> Optional[str]:
    """Why ``device`` (``cuda``, ``cuda:N``, ``mps``) cannot be used on this machine; ``None`` when it can (and
    for ``cpu`` and ``auto``)."""
    if not (device.startswith("cuda") or device == "mps"):
        return None  # cpu and auto: always usable, known without importing PyTorch
    import torch

    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            return f"device {device!r} is not available: this machine has no CUDA GPU that torch can use (use cpu)"
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            return (f"device {device!r} is not available: this machine has {torch.cuda.device_count()} CUDA "
                    f"device(s), cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    if device == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            return "device 'mps' is not available on this machine (use cpu)"
    return None


def native_issues(assembly: "Assembly") -> list[Issue]:
    """What ``backend: native`` cannot run, known from the description (the run would refuse it): a device other
    than the CPU, models not written as equations, plasticity rules without a native form, plasticity on dense
    storage. (Per-neuron parameter arrays and a missing C compiler are found when the engine is built.)"""
    from .plasticity.defined import DefinedRule
    from .plasticity.homeostasis import Normalize, SynapticScaling

    out: list[Issue] = []
    if isinstance(assembly.run.device, str) and assembly.run.device not in ("cpu", "auto"):
        out.append(Issue("run", None, ("backend",), f"the native engine runs on the CPU, not on device "
                                                    f"{assembly.run.device!r} (use backend: torch, or device: cpu)"))
    for spec in assembly.populations():
        cls = _model_class(spec.model)
        if cls is not None and getattr(cls, "definition", None) is None and not _is_source(cls):
            out.append(Issue("population", spec.name, ("model",), f"backend native: {model_label(spec.model)} is not "
                                                                  f"defined as equations (use backend: auto or torch)"))
    for proj in assembly.projections():
        if not proj.plasticity:
            continue
        if proj.storage == "dense":
            out.append(Issue("projection", proj.name, ("storage",), "backend native: plasticity on dense storage "
                                                                    "(use storage: sparse or auto)"))
        try:
            rule = make_rule(proj.plasticity)
        except ConfigError:
            continue  # reported by check_projection
        for r in getattr(rule, "rules", None) or [rule]:
            if not isinstance(r, (DefinedRule, Normalize, SynapticScaling)):
                out.append(Issue("projection", proj.name, ("plasticity",), f"backend native: the rule "
                                                                           f"{getattr(r, 'name', r)!r} has no native "
                                                                           f"form (use backend: auto or torch)"))
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
                hint = " (leave tau out for a channel that does not decay)" if "finite" in str(err) else ""
                out.append(Issue("modulator", name, ("tau",), str(err) + hint))
        for key in ("baseline", "value"):
            value = spec.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                out.append(Issue("modulator", name, (key,), f"expected a number, got {value!r}"))
            elif value is not None and not is_finite_number(value):
                out.append(Issue("modulator", name, (key,), f"expected a finite number, got {value!r}"))
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
    # a user model's own parameter values (its defaults) must be finite numbers: NaN and infinity have no meaning
    # there (an infinite time constant is given as a population's parameter, where it means no decay)
    model_params = spec.model.get("params") if isinstance(spec.model, Mapping) else None
    model_params = model_params if isinstance(model_params, Mapping) else {}
    bad_defaults = set()
    for key, value in model_params.items():
        if isinstance(value, float) and not math.isfinite(value):
            add(("model", "params", key), f"expected a finite number, got {value}")
            bad_defaults.add(key)
    if not isinstance(spec.params, Mapping):
        add(("params",), f"expected a mapping of parameters, got {spec.params!r}")
    else:
        values.update(spec.params)
        try:
            record = cls.params_cls.from_mapping(values)
        except ConfigError as err:
            for key, message in err.items:
                if key is None and message.startswith(f"{cls.params_cls.__name__}: "):
                    # a range problem of a value not given here (a default): its field starts the message
                    field = message.split(": ", 1)[1].split(" ", 1)[0]
                    key = field if field in model_params else None
                if key is not None and key in spec.params:
                    add(("params", key), message)
                elif key in bad_defaults:
                    continue
                elif key is not None and spec.preset:
                    add(("preset",), message)
                elif key is not None and key in model_params:
                    add(("model", "params", key), message)
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
            zero: Sequence[tuple[Optional[str], str]] = zero_divisors(cls, record, spec.method)
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
    if "post" in pops and _is_source(pops["post"].model):
        add(("post",), f"population {pops['post'].name!r} is a Poisson source (model {pops['post'].model!r}): it "
                       f"takes no input; it fires at its own rate (set_poisson_rate)")

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
            what = "missing synapse type" if syn_type is None else \
                f"unknown synapse type {syn_type!r}{_suggest(syn_type, SYNAPSE_TYPES)}"
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
    elif syn_type is not None and post_cls is not None and \
            (dim := weight_dimension(syn_type, post_cls.input_unit)) is not None:  # None: reported above
        for path, message in weight_problems(spec.weight, dim, spec.sign):
            add(("weight",) + path, message)

    # delay (None: one step): valid on its own, at least one step of the run's dt, one value for dense storage
    if spec.delay is not None:
        problems = delay_problems(spec.delay)
        for path, message in problems:
            add(("delay",) + path, message)
        if not problems:
            dt = assembly.run.dt
            if is_finite_number(dt) and dt > 0:
                for path, message in delay_step_problems(spec.delay, float(dt)):
                    add(("delay",) + path, message)
            if spec.storage == "dense" and not _uniform_delay(spec.delay, dt):
                add(("storage",), "dense storage needs one delay for the whole projection, and this delay is a "
                                  "distribution (per-synapse delays); use storage: sparse or auto, or one delay")

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
    model = pop.model if pop is not None else None
    if pop is not None and _is_source(model):
        add(("target",), f"population {pop.name!r} is a Poisson source (model {model!r}): it takes no input; "
                         f"give it its rate (params: {{rate: ...}}) instead")
        return out
    cls = _model_class(model)
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
                add((key,), f"{message} (the input of {model_label(model)} is in {cls.input_unit})")
        elif what == "values":
            width = _input_width(params, pop)
            if isinstance(value, str):
                if not Path(value).is_file():
                    add((key,), f"no such file {value!r}")
                else:
                    message = _npy_values_problem(value, width)
                    if message:
                        add((key,), message)
            elif not _numbers_table(value):
                add((key,), f"expected a list of finite numbers in {cls.input_unit if cls else 'the input unit'} "
                            f"(one per step, or one row of N per step) or an .npy file, got {_short(value)}")
            elif isinstance(value[0], list) and width is not None and len(value[0]) not in (1, width):
                add((key,), f"rows of {len(value[0])} values, but the input drives {width} neurons (one value per "
                            f"neuron in each row, or a single column)")
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
            else:
                message = _spike_file_problem(value, pop.size if pop is not None else None)
                if message:
                    add((key,), message)
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
            add(("synapse", "type") if "synapse" in params else ("weight",), _needs_v(syn_type, model))
        elif syn_type in SYNAPSE_TYPES:
            dim = weight_dimension(syn_type, cls.input_unit)
            if dim is None:
                add(("synapse", "type"), f"conductance synapses are unsupported onto {model_label(model)} (its input "
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
    message = output_name_problem(spec.name, "a monitor name")
    if message:  # the name keys the monitor's arrays in <out>/<assembly>.npz
        add(("name",), message)
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
        elif not is_finite_number(spec.bin):
            add(("bin",), f"expected a finite time, got {spec.bin!r}")
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


def _input_width(params: Mapping, pop: Optional["PopulationSpec"]) -> Optional[int]:
    """How many neurons an input drives: its ``neurons`` list, else its target's size (``None`` when unknown)."""
    neurons = params.get("neurons")
    if isinstance(neurons, list):
        return len(neurons)
    size = pop.size if pop is not None else None
    return size if isinstance(size, int) and not isinstance(size, bool) else None


def _npy_values_problem(path: str, width: Optional[int]) -> Optional[str]:
    """Why an ``.npy`` file of per-step input values cannot drive ``width`` neurons (``None`` when it can): it must
    hold a finite numeric array ``[T]`` or ``[T, width]`` (or ``[T, 1]``)."""
    import numpy as np

    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        return f"cannot read {path!r} as an .npy array: {err}"
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "biuf" or array.ndim not in (1, 2) or \
            array.shape[0] == 0:
        shape = getattr(array, "shape", None)
        return f"{path!r} must hold a non-empty numeric array [T] or [T, N] (one row per step), got shape {shape}"
    if array.ndim == 2 and width is not None and array.shape[1] not in (1, width):
        return f"{path!r} has {array.shape[1]} columns, but the input drives {width} neurons"
    if array.dtype.kind == "f" and not bool(np.isfinite(array).all()):
        return f"{path!r} holds NaN or infinite values"
    return None


def _spike_file_problem(path: str, size: Optional[int]) -> Optional[str]:
    """Why a spike file cannot be read as input (``None`` when it can): an ``.npz`` with numeric arrays ``times``
    (ms, finite, >= 0) and ``neurons`` (integer indices below the target's ``size``) of one length."""
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [name for name in ("times", "neurons") if name not in data.files]
            if missing:
                return (f"{path!r} must be an .npz with arrays 'times' (ms) and 'neurons'; missing "
                        f"{', '.join(map(repr, missing))}")
            times, neurons = data["times"], data["neurons"]
    except (OSError, ValueError, EOFError, AttributeError) as err:
        return f"cannot read {path!r} as an .npz archive with arrays 'times' and 'neurons': {err}"
    if times.dtype.kind not in "biuf" or neurons.dtype.kind not in "biu" or times.ndim != 1 or neurons.ndim != 1:
        return f"{path!r}: 'times' must be a 1-D array of numbers and 'neurons' a 1-D array of integers"
    if times.shape != neurons.shape:
        return f"{path!r}: 'times' ({times.size}) and 'neurons' ({neurons.size}) differ in length"
    if times.size and (not bool(np.isfinite(times).all()) or float(times.min()) < 0):
        return f"{path!r}: spike times must be finite and >= 0 ms"
    if neurons.size and (int(neurons.min()) < 0 or (size is not None and int(neurons.max()) >= size)):
        return f"{path!r}: neuron indices must be in 0..{'N-1' if size is None else size - 1}"
    return None


def _input_dimension(input_unit: str) -> str:
    try:
        return dimension_of(input_unit)
    except UnitError:
        return "dimensionless"


def _numbers_table(value: Any) -> bool:
    """A non-empty list of finite numbers, or of equally long lists of finite numbers."""
    number = is_finite_number
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


# ------------------------------------------------------------------------------------------ resources
#: bytes per stored synapse besides its weight: an int32 post index and an int16 delay
#: (:func:`braincore.construction.build_compact`)
STORED_BYTES_PER_SYNAPSE = 6
#: bytes per synapse of the projection being built, on top of what is stored (index, slot, float64 weight and
#: delay arrays, the sort order): a generous bound of :func:`braincore.construction.build_projection`, counted once,
#: for the largest projection (projections are built one after the other)
BUILD_BYTES_PER_SYNAPSE = 64
#: bytes per stored spike of a spike monitor: an int64 ``(step, trial, neuron)`` triple
BYTES_PER_SPIKE = 24
#: the default share of the machine's memory a run may plan to use
MEMORY_FRACTION = 0.8
_FALLBACK_MEMORY = 16 * 10 ** 9
_SIZE_UNITS = {"": 1, "b": 1, "k": 10 ** 3, "kb": 10 ** 3, "m": 10 ** 6, "mb": 10 ** 6, "g": 10 ** 9, "gb": 10 ** 9,
               "t": 10 ** 12, "tb": 10 ** 12, "kib": 2 ** 10, "mib": 2 ** 20, "gib": 2 ** 30, "tib": 2 ** 40}


def format_bytes(n: float) -> str:
    """``3.2e12`` -> ``"3.2 TB"`` (decimal units)."""
    for unit, scale in (("PB", 1e15), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f} bytes"


def physical_memory() -> Optional[int]:
    """This machine's memory in bytes (the smaller of the physical memory and a cgroup limit), or ``None``."""
    total = None
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        try:
            with open("/proc/meminfo", encoding="ascii") as f:
                for line in f:
                    if line.startswith("MemTotal:"):
                        total = int(line.split()[1]) * 1024
                        break
        except (OSError, ValueError, IndexError):
            total = None
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path, encoding="ascii") as f:
                text = f.read().strip()
        except OSError:
            continue
        if text.isdigit() and 0 < int(text) < (total or 2 ** 62):
            total = int(text)
    return total if total and total > 0 else None


def memory_limit() -> tuple[Optional[float], str]:
    """``(bytes, how it was set)``: ``BRAINCORE_MEMORY_LIMIT`` (``16 GB``, ``512MiB``, ``2e10``, ``50%`` of the
    machine; ``0``, ``none`` or ``off``: no limit), else 80 % of the machine's memory (16 GB when unknown).
    ``(None, message)`` when the variable cannot be read."""
    text = os.environ.get("BRAINCORE_MEMORY_LIMIT", "").strip()
    machine = physical_memory()
    if text:
        if text.lower() in ("0", "none", "off", "inf", "unlimited"):
            return math.inf, "BRAINCORE_MEMORY_LIMIT"
        match = re.match(r"^([0-9.]+(?:[eE][-+]?[0-9]+)?)\s*(%|[A-Za-z]*)$", text)
        try:
            number = float(match.group(1)) if match else math.nan
        except ValueError:
            number = math.nan
        unit = match.group(2).lower() if match else ""
        if math.isfinite(number) and number > 0 and unit == "%":
            return number / 100 * (machine or _FALLBACK_MEMORY), f"BRAINCORE_MEMORY_LIMIT={text}"
        if math.isfinite(number) and number > 0 and unit in _SIZE_UNITS:
            return number * _SIZE_UNITS[unit], f"BRAINCORE_MEMORY_LIMIT={text}"
        return None, (f"BRAINCORE_MEMORY_LIMIT={text!r} is not a memory size (write e.g. 16GB, 512MiB, 2e10 bytes, "
                      f"50% or off)")
    if machine is None:
        return float(_FALLBACK_MEMORY), "the default when this machine's memory is unknown"
    share = f"{MEMORY_FRACTION:.0%}".replace("%", " %")
    return MEMORY_FRACTION * machine, f"{share} of this machine's {format_bytes(machine)} memory"


@dataclass(frozen=True)
class Need:
    """One planned allocation: the item it belongs to (as an :class:`Issue` would name it), bytes, and what."""

    kind: str
    name: Optional[str]
    path: tuple
    bytes: float
    what: str


def _count(value: float) -> str:
    return f"{value:.3g}" if value >= 1e6 else f"{int(value)}"


def _max_delay_ms(value: Any) -> Optional[float]:
    parsed = _parsed_delay(value)
    if parsed is None:
        return None
    if parsed["dist"] == "constant":
        return parsed["value"]
    high = parsed["high"] if parsed["dist"] == "uniform" else parsed["mean"] + 8 * parsed["std"]
    if parsed.get("clip") and parsed["clip"][1] is not None:
        high = min(high, parsed["clip"][1])
    return high


def _synapse_traces(plasticity: Any) -> int:
    """The number of per-synapse traces (eligibility ...) of a projection's plasticity (0 when unknown)."""
    try:
        rule = make_rule(plasticity)
    except Exception:  # noqa: BLE001 - reported by check_projection
        return 0
    count = 0
    for r in getattr(rule, "rules", None) or [rule]:
        for trace in getattr(getattr(r, "program", None), "traces", ()) or ():
            if isinstance(trace, (tuple, list)) and len(trace) > 1 and trace[1] == "synapse":
                count += 1
    return count


def memory_needs(assembly: "Assembly", batch: Optional[int] = None) -> list[Need]:
    """Estimate what running ``assembly`` (``batch`` trials, default its run's) allocates, item by item, from its
    description alone (nothing is built): neuron state, synapses, dense weight matrices, per-synapse plasticity
    traces, ring buffers of delayed spikes, synaptic variables and monitors. Items whose sizes are invalid are
    left out (they are reported by the other checks)."""
    from .synapses.connectors import expected_synapses

    run = assembly.run
    B = batch if batch is not None else run.batch
    if isinstance(B, bool) or not isinstance(B, int) or B < 1:
        B = 1
    nbytes = 8 if run.dtype == "float64" else 4
    dt = float(run.dt) if is_finite_number(run.dt) and run.dt > 0 else None
    steps = (float(run.duration) / dt if dt is not None and is_finite_number(run.duration) and run.duration > 0
             else 0.0)
    needs: list[Need] = []
    sizes: dict[str, int] = {}
    for spec in assembly.populations():
        if isinstance(spec.size, bool) or not isinstance(spec.size, int) or spec.size <= 0:
            continue
        sizes[spec.name] = spec.size
        n_vars = max(1, len(state_variables(spec.model)))
        # the state, its copy for Simulator.rest, the input current and its copy
        needs.append(Need("population", spec.name, ("size",), float(spec.size) * B * (2 * n_vars + 2) * nbytes,
                          f"{_count(spec.size)} neurons x {B} trial(s) x {n_vars} state variable(s)"))
    groups: dict[tuple, int] = {}
    longest: tuple[float, Optional[str]] = (0.0, None)
    largest: tuple[float, int] = (0.0, -1)  # synapses of the largest projection, the index of its need
    for proj in assembly.projections():
        pre, post = assembly.resolve(proj.pre), assembly.resolve(proj.post)
        if pre not in sizes or post not in sizes:
            continue
        n_pre, n_post = sizes[pre], sizes[post]
        try:
            count = expected_synapses(proj.connector, n_pre, n_post, pre == post)
        except Exception:  # noqa: BLE001 - bad options are reported by check_projection
            count = None
        if count is None or not math.isfinite(count) or count < 0:
            count = 0.0
        ctype = proj.connector.get("type") if isinstance(proj.connector, Mapping) else None
        total = count * (STORED_BYTES_PER_SYNAPSE + nbytes)
        what = f"{_count(count)} {ctype or ''} synapses ({_count(n_pre)} x {_count(n_post)} neurons)".replace("  ", " ")
        dense = proj.storage == "dense" or (proj.storage == "auto" and n_pre * n_post <= 4_000_000
                                            and count >= 0.2 * n_pre * n_post)
        if dense:
            total += float(n_pre) * n_post * nbytes
            what += ", stored as a dense matrix"
        traces = _synapse_traces(proj.plasticity) if proj.plasticity else 0
        if traces:
            total += traces * B * (float(n_pre) * n_post if dense else count) * nbytes
            what += f", {traces} per-synapse plasticity trace(s) x {B} trial(s)"
        if count > largest[0]:
            largest = (count, len(needs))
        needs.append(Need("projection", proj.name, ("connector",), total, what))
        synapse: Mapping = proj.synapse if isinstance(proj.synapse, Mapping) else {}
        key = (post, synapse.get("type"), str(synapse.get("tau")), str(synapse.get("E_rev")))
        groups[key] = n_post * (2 if synapse.get("type") == "alpha" else 1)
        if proj.delay is not None and dt is not None:
            high = _max_delay_ms(proj.delay)
            if high is not None and math.isfinite(high) and high / dt > longest[0]:
                longest = (high / dt, proj.name)
    if largest[1] >= 0:  # building it: the temporaries of the largest projection
        need = needs[largest[1]]
        needs[largest[1]] = Need(need.kind, need.name, need.path, need.bytes + largest[0] * BUILD_BYTES_PER_SYNAPSE,
                                 need.what)
    for inp in assembly.inputs:
        target = assembly.resolve(inp.target)
        if target in sizes and inp.type in ("poisson", "spike_file"):
            given = (inp.params or {}).get("synapse") if isinstance(inp.params, Mapping) else None
            synapse = given if isinstance(given, Mapping) else {"type": "instantaneous"}
            key = (target, synapse.get("type"), str(synapse.get("tau")), str(synapse.get("E_rev")))
            groups[key] = sizes[target] * (2 if synapse.get("type") == "alpha" else 1)
    if groups:
        slots = math.floor(longest[0] + 0.5 + 1e-6) + 1 if longest[1] is not None else 2
        neurons = float(sum(groups.values()))
        kind, name, path = ("projection", longest[1], ("delay",)) if longest[1] is not None else \
            ("run", None, ("batch",))
        needs.append(Need(kind, name, path, (slots + 1) * B * neurons * nbytes,
                          f"spike ring buffers: {_count(slots)} delay steps x {B} trial(s) x {_count(neurons)} "
                          f"synaptic variables"))
    for mon in assembly.monitors:
        target = assembly.resolve(mon.target)
        if target not in sizes:
            continue
        n = sizes[target]
        if mon.type == "state":
            selected = len(mon.neurons) if isinstance(mon.neurons, list) else n
            n_vars = max(1, len(mon.variables or ["v"]))
            needs.append(Need("monitor", mon.name, ("variables",) if mon.variables else ("target",),
                              steps * B * selected * n_vars * nbytes,
                              f"{_count(steps)} steps x {B} trial(s) x {_count(selected)} neurons x {n_vars} "
                              f"variable(s)"))
        elif mon.type == "spikes":
            cap = mon.max_spikes if isinstance(mon.max_spikes, int) and not isinstance(mon.max_spikes, bool) \
                else 10_000_000
            stored = min(float(max(cap, 0)), steps * B * n)
            needs.append(Need("monitor", mon.name, ("max_spikes",) if mon.max_spikes is not None else ("target",),
                              stored * BYTES_PER_SPIKE + 8.0 * B * n,
                              f"up to {_count(stored)} stored spikes (max_spikes {_count(cap)}) and "
                              f"{_count(B * n)} spike counts"))
        elif mon.type == "rate" and dt is not None:
            width = mon.bin if is_finite_number(mon.bin) and mon.bin > 0 else 1.0
            bins = steps * dt / max(width, dt)
            needs.append(Need("monitor", mon.name, ("bin",) if mon.bin is not None else ("target",),
                              bins * B * 8.0, f"{_count(bins)} bins x {B} trial(s)"))
    return needs


def resource_issues(assembly: "Assembly", batch: Optional[int] = None) -> list[Issue]:
    """An :class:`Issue` when the estimated memory of running ``assembly`` (:func:`memory_needs`) exceeds the
    limit (:func:`memory_limit`): one at each item that exceeds it alone, else one at the largest item naming the
    total; nothing is allocated to find out."""
    limit, how = memory_limit()
    if limit is None:
        return [Issue("resources", None, (), how)]
    needs = memory_needs(assembly, batch)
    total = sum(need.bytes for need in needs)
    if total <= limit:
        return []
    hint = (f"exceeds the limit {format_bytes(limit)} ({how}); set BRAINCORE_MEMORY_LIMIT=... (e.g. 64GB, or off) "
            f"to override")
    label = lambda need: need.kind if need.name is None else f"{need.kind} {need.name!r}"  # noqa: E731
    out = [Issue(need.kind, need.name, need.path, f"estimated memory {format_bytes(need.bytes)} for {label(need)} "
                                                  f"({need.what}) {hint}")
           for need in needs if need.bytes > limit]
    if not out:
        largest = max(needs, key=lambda need: need.bytes)
        out.append(Issue(largest.kind, largest.name, largest.path,
                         f"estimated memory {format_bytes(total)} for the whole run (the largest part: "
                         f"{format_bytes(largest.bytes)} for {label(largest)}, {largest.what}) {hint}"))
    return out


__all__ = ["Issue", "AssemblyError", "assembly_issues", "resource_issues", "memory_needs", "memory_limit",
           "output_name_problem", "OutputName", "delay_step_problems", "MAX_STEPS", "require_valid", "check_run",
           "check_modulators",
           "check_population", "check_ports", "check_projection", "check_input", "check_monitor",
           "check_distribution", "weight_problems", "delay_problems", "connector_problem_paths",
           "weight_dimension", "state_variables",
           "SYNAPSE_TYPES", "CONNECTOR_TYPES", "SIGNS", "STORAGES", "DTYPES", "BACKENDS", "MONITOR_TYPES",
           "DISTRIBUTIONS", "INIT_DISTRIBUTIONS", "INPUT_PARAMS", "STATE_DIMENSIONS",
           "check_threads", "resolve_threads", "THREADS_ENV"]
