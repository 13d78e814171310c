"""Neuron model classes derived from a :class:`~braincore.equations.NeuronDefinition`.

A model file (``lif.py``, ``gif.py``, ...) holds the definition and its documentation; :func:`define_model` turns it
into everything the rest of braincore uses: the parameter record (with units, ranges and choices), the state record,
the :class:`~braincore.neurons.base.NeuronModel` class with its generated PyTorch step, and a pure step function
``step(state, current, params, dt, method, spike_fn)``. The native engine generates its C code from the same
definition (:mod:`braincore.equations.c_code`). A user model written as equations (in Python or YAML,
:func:`user_model`) becomes the same kind of class.
"""
from __future__ import annotations

import dataclasses
import math
from functools import lru_cache
from collections import namedtuple
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional

from ..equations import EquationError, NeuronDefinition
from ..equations.dimensions import DIMENSIONS
from ..equations.parse import rescale
from ..equations.printers import Printer
from ..errors import ConfigError
from ..params import NeuronParams, _any_eq, param
from .base import FLOAT32, NeuronModel, filled

if TYPE_CHECKING:
    from torch import Tensor


def _dimension_name(spec: str) -> str:
    """A parameter's dimension: a braincore dimension name, or the dimension of a unit symbol."""
    if spec in DIMENSIONS:
        return spec
    from ..units import dimension_of

    return dimension_of(spec)


def params_class(defn: NeuronDefinition, class_name: str,
                 check: Optional[Callable[[Any], list]] = None) -> type:
    """The frozen parameter record of ``defn``: one field per parameter and choice (defaults, units, docs)."""
    fields = []
    for name, spec in defn.params.items():
        default, dim = spec[0], spec[1] if len(spec) > 1 else "dimensionless"
        doc = spec[2] if len(spec) > 2 else ""
        if name in defn.choices:
            fields.append((name, Any, param(default, "choice", doc, choices=tuple(defn.choices[name]))))
        elif dim == "choice":  # a free-form option, such as the name of a neuromodulator channel
            fields.append((name, Any, param(default, "choice", doc)))
        else:
            fields.append((name, Any, param(default, _dimension_name(dim), doc)))

    def check_values(self) -> list:
        problems = NeuronParams.check(self)
        if check is not None:
            problems += check(self)
        return problems

    cls = dataclasses.make_dataclass(class_name, fields, bases=(NeuronParams,), frozen=True,
                                     namespace={"check": check_values,
                                                "__doc__": f"Parameters of the {defn.name!r} model (canonical units)."})
    return cls


def state_class(defn: NeuronDefinition, class_name: str) -> type:
    """The state record: a NamedTuple of ``[B, N]`` tensors, the state variables then ``refrac``."""
    cls = namedtuple(class_name, defn.state_fields)
    cls.__doc__ = f"State of the {defn.name!r} model: {', '.join(defn.state_fields)}, each [B, N]."
    return cls


class DefinedModel(NeuronModel):
    """A :class:`NeuronModel` whose step is generated from :attr:`definition`."""

    definition: NeuronDefinition

    def __init__(self, size: int, params=None, **kwargs: Any):
        from ..equations.torch_step import constants, torch_step

        super().__init__(size, params, **kwargs)
        defn = self.definition
        type(self).check_definition(self.params, self.method)
        self._step = torch_step(defn, self.method, self.option, self.state_cls)
        self.constants = constants(defn, self.method, self.option, self.params, self.dt)

    @classmethod
    def check_definition(cls, params: Any, method: str) -> None:
        """What the constructor checks of the equations with a parameter record and method, without PyTorch: the
        program builds (an :class:`EquationError` becomes a :class:`ConfigError`) and no parameter it divides by
        is zero."""
        defn = cls.definition
        option = getattr(params, defn.reset_choice) if defn.reset_choice else None
        try:
            defn.program(method, option)
        except EquationError as err:
            raise ConfigError(str(err), [(err.key, str(err))]) from None
        zero = zero_divisors(cls, params, method)
        if zero:
            raise ConfigError(f"{cls.__name__}: " + "; ".join(m for _, m in zero), zero)

    @property
    def option(self) -> Optional[str]:
        """The value of the model's reset choice (e.g. ``"value"`` or ``"subtract"``), or None."""
        choice = self.definition.reset_choice
        return getattr(self.params, choice) if choice else None

    @property
    def program(self):
        return self.definition.program(self.method, self.option)

    def initial_state(self, batch_size: int = 1, *, device=None, dtype: Any = FLOAT32):
        return initial_state(self.definition, self.params, self.state_cls, batch_size, self.size, device, dtype)

    def step(self, state, current: Tensor):
        # without gradients the surrogate changes nothing but costs an autograd call: the plain threshold instead
        import torch

        spike_fn = self.spike_fn if torch.is_grad_enabled() else None
        return self._step(state, current, self.constants, spike_fn)


def _initial_values(defn: NeuronDefinition, params: Any, fill: Callable[[Any], Any]) -> dict[str, Any]:
    """Each state variable's value, ``fill`` applied to its initial-value expression (over parameters and earlier
    variables, these as filled), in order."""
    from ..equations.torch_step import _scalar_exprel, _ScalarOrTensor

    printer = Printer("torch", lambda name: name)
    dims = defn.state_dims()
    values: dict[str, Any] = {name: getattr(params, name) for name in defn.param_dims()}
    out = {}
    for name, spec in defn.state.items():
        text = spec[1] if len(spec) > 1 else "0"
        expr, dim = defn.parse(str(text), f"state.{name}")
        if expr != 0 and not dim.same_dimension(dims[name]):
            raise defn.fail(f"the initial value is a {dim.describe()}, expected a {dims[name].describe()}",
                            f"state.{name}")
        expr = rescale(expr, dim, dims[name].scale)
        namespace = {"torch": _ScalarOrTensor(), "_exprel": _scalar_exprel}
        namespace.update(values)
        value = fill(eval(printer(expr), namespace))  # noqa: S307 - generated from a parsed, checked expression
        out[name] = value
        values[name] = value
    return out


def initial_state(defn: NeuronDefinition, params: Any, state_cls: type, batch_size: int, size: int,
                  device=None, dtype: Any = FLOAT32):
    """Each state variable from its initial-value expression (over parameters and earlier variables)."""
    import torch

    from ..params import torch_dtype

    dtype = torch_dtype(dtype)

    def fill(value: Any) -> Tensor:
        if isinstance(value, torch.Tensor):
            value = value.to(device=device, dtype=dtype)
        return filled(batch_size, size, value, device=device, dtype=dtype)

    out = _initial_values(defn, params, fill)
    if defn.refractory:
        out["refrac"] = torch.zeros(batch_size, size, device=device, dtype=dtype)
    return state_cls(**out)


def check_initial_state(defn: NeuronDefinition, params: Any) -> None:
    """Raise what :func:`initial_state` raises for one neuron of ``defn`` with ``params`` (an
    :class:`~braincore.equations.EquationError` for an initial value of the wrong dimension), without PyTorch where
    Python numbers suffice: when every initial value evaluates to a finite real number, the state would be those
    numbers; otherwise the state is built as :func:`initial_state` builds it."""
    try:
        values = _initial_values(defn, params, lambda value: value)
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values.values()):
            return
    except EquationError:
        raise
    except Exception:  # noqa: BLE001 - where Python numbers differ from tensors (1/0, log(-1)): as initial_state
        pass
    initial_state(defn, params, state_class(defn, "S"), 1, 1)


@lru_cache(maxsize=None)
def expression_function(defn: NeuronDefinition, name: str) -> Callable:
    """A named sub-expression of ``defn`` as a function of its symbols (keywords; floats or tensors), in canonical
    units: e.g. a rate function ``alpha_m(v=...)``."""
    from ..equations.torch_step import _scalar_exprel, _ScalarOrTensor

    printer = Printer("torch", lambda symbol_name: symbol_name)
    expr, _ = defn.expressions_parsed()[name]
    code = compile(printer(expr), f"<{defn.name}.{name}>", "eval")

    def evaluate(**values):
        namespace = {"torch": _ScalarOrTensor(), "_exprel": _scalar_exprel}
        namespace.update(values)
        return eval(code, namespace)  # noqa: S307 - generated from a parsed, checked expression

    return evaluate


def pure_step(model_cls: type) -> Callable:
    """``step(state, current, params, dt, method=None, spike_fn=None) -> (spikes, state)`` of a defined model:
    the functional form (a parameter record and dt in, no module)."""
    defn = model_cls.definition

    def step(state, current: Tensor, p: Any, dt: float, method: Optional[str] = None, spike_fn=None):
        from ..equations.torch_step import constants, torch_step

        method = method or defn.methods[0]
        if method not in defn.methods:
            raise ValueError(f"{model_cls.__name__}: unknown method {method!r}; choose one of "
                             f"{', '.join(defn.methods)}")
        option = getattr(p, defn.reset_choice) if defn.reset_choice else None
        fn = torch_step(defn, method, option, model_cls.state_cls)
        return fn(state, current, constants(defn, method, option, p, dt), spike_fn)

    step.__name__ = f"{defn.name}_step"
    step.__doc__ = (f"Pure {defn.name} step from t_k to t_k + dt (generated from its definition): ``current`` "
                    f"[B, N] in {defn.input_unit}; returns ``(spikes, state)``.")
    return step


def define_model(defn: NeuronDefinition, class_name: str, *, params_name: Optional[str] = None,
                 state_name: Optional[str] = None, check: Optional[Callable[[Any], list]] = None,
                 doc: str = "", base: type = DefinedModel, aliases: tuple = ()) -> type:
    """The model class of ``defn`` (with its generated parameter and state records).

    ``aliases``: further registry names. A module of :mod:`braincore.neurons` that holds a definition and the
    class made from it here is registered automatically (under ``defn.name`` and ``aliases``)."""
    params_cls = params_class(defn, params_name or f"{class_name}Params", check)
    state_cls = state_class(defn, state_name or f"{class_name}State")
    attrs = {"definition": defn, "name": defn.name, "params_cls": params_cls, "state_cls": state_cls,
             "methods": tuple(defn.methods), "input_unit": defn.input_unit, "presets": dict(defn.presets),
             "aliases": tuple(aliases),
             "__doc__": doc or defn.doc, "__module__": base.__module__}
    return type(class_name, (base,), attrs)


#: the keys of a user model's mapping
USER_KEYS = ("equations", "params", "state", "threshold", "reset", "after", "expressions", "refractory", "clamped",
             "method", "methods", "input_unit", "voltage", "name")
_USER_MODELS: dict[str, type] = {}


def user_model(spec: Mapping[str, Any], name: str = "user", origin: Optional[Mapping[str, str]] = None) -> type:
    """A model class from a mapping written by a user (YAML ``model: {equations: ..., threshold: ...}``).

    Keys (:data:`USER_KEYS`): ``equations`` (list of ``dx/dt = ...``), ``params`` (``{name: value with unit}``: the
    unit fixes the dimension, a bare number is dimensionless), ``state`` (``{name: unit}``, ``{name: initial value
    with unit}`` such as ``-65 mV`` or ``0``, or ``{name: {unit: ..., init: expression}}``), ``threshold``, ``reset``
    (list), ``after`` (list), ``expressions`` (mapping of named sub-expressions), ``refractory`` (a time, e.g.
    ``2 ms``), ``clamped`` (variables held while refractory; default the voltage when ``refractory`` is given;
    ``[]`` for none, as Brian2's refractoriness without ``(unless refractory)``), ``method`` or ``methods`` (the
    first is the default), ``input_unit`` (default nA), ``voltage`` (the membrane potential, default ``v``),
    ``name``.

    Every value is held in the canonical unit of its dimension (mV for any voltage, nS for any conductance, ...),
    as every braincore model does, so initial values, monitors and synapses read it without conversion.

    The class is cached: equal mappings (same name, same text, same ``origin``) give the same class, so populations
    with one definition share its generated PyTorch step and its compiled C code. Every problem raises
    :class:`~braincore.errors.ConfigError` whose ``items`` are ``(key, message)`` pairs, ``key`` the entry of the
    mapping at fault (``equations[0]``, ``params.tau``, ``state.w``, ``threshold``, ``method`` ...), so that a
    config loader can point at its line; with ``origin`` (``{key: "file:line"}``) the message names it too.
    """
    import json

    if not isinstance(spec, Mapping):
        raise ConfigError(f"a user model is a mapping with equations, params, state ... ; got {spec!r}",
                          [(None, "expected a mapping")])
    try:
        cache_key = json.dumps([dict(spec), name, dict(origin or {})], sort_keys=True, default=repr)
    except TypeError:  # keys that are not strings: reported by the build below
        cache_key = None
    if cache_key is not None and cache_key in _USER_MODELS:
        return _USER_MODELS[cache_key]
    cls = _build_user_model(spec, name, origin)
    if cache_key is not None:
        _USER_MODELS[cache_key] = cls
    return cls


def _quantity_text(value: Any) -> Optional[tuple[str, str]]:
    """``("-65.0*mV", "voltage")`` for a quantity such as ``-65 mV`` (a number: dimensionless); None otherwise."""
    from ..equations.dimensions import UNIT_NAMES
    from ..units import CANONICAL, UnitError, parse_quantity

    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return repr(float(value)), "dimensionless"
    parts = str(value).strip().split(maxsplit=1)
    try:
        float(parts[0])
    except (ValueError, IndexError):
        return None
    if len(parts) == 1:
        return repr(float(parts[0])), "dimensionless"
    try:
        dim = _dimension_name(parts[1])
        number = parse_quantity(value, dim)
    except (UnitError, KeyError, ValueError):
        return None
    unit = CANONICAL[dim]
    if dim == "dimensionless":
        return repr(number), dim
    if unit not in UNIT_NAMES:
        return None
    return f"({number!r})*{unit}", dim


def unknown_keys(spec: Mapping[str, Any], known: tuple, what: str, problem: Callable[[str, str], None]) -> None:
    """Report each key of ``spec`` not in ``known`` as ``problem(key, message)``, with the nearest known key."""
    import difflib

    for key in spec:
        if key not in known:
            near = difflib.get_close_matches(str(key), known, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            problem(str(key), f"unknown key {key!r} of {what}{hint} (expected: {', '.join(known)})")


def user_params(raw: Any, problem: Callable[[str, str], None]) -> dict[str, tuple]:
    """``{name: (value, dimension, "")}`` from a user's ``params:`` mapping (``{tau: "10 ms", a: 0.02}``: the unit
    fixes the dimension, a bare number is dimensionless); each problem is reported as ``problem(key, message)``.
    Shared by user models and user plasticity rules."""
    from ..units import UnitError, parse_quantity

    params: dict[str, tuple] = {}
    raw = raw or {}
    if not isinstance(raw, Mapping):
        problem("params", f"expected a mapping {{name: value with unit}}, got {raw!r}")
        return params
    for key, value in raw.items():
        if isinstance(value, str):
            parts = value.strip().split(maxsplit=1)
            try:
                dim = _dimension_name(parts[1]) if len(parts) == 2 else "dimensionless"
                params[key] = (parse_quantity(value, dim), dim, "")
            except (UnitError, KeyError, IndexError) as err:
                problem(f"params.{key}", str(err).strip("'\""))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            params[key] = (float(value), "dimensionless", "")
        else:
            problem(f"params.{key}", f"expected a number with a unit such as '10 ms', got {value!r}")
    return params


def _build_user_model(spec: Mapping[str, Any], name: str, origin: Optional[Mapping[str, str]]) -> type:
    from ..equations.integrate import METHODS
    from ..units import UnitError, parse_quantity

    origin = dict(origin or {})
    problems: list[tuple[str, str]] = []

    def problem(key: str, message: str) -> None:
        problems.append((key, message))

    unknown_keys(spec, USER_KEYS, "a user model", problem)
    params = user_params(spec.get("params"), problem)
    refractory = spec.get("refractory")
    if refractory is not None:
        try:
            params["t_ref"] = (parse_quantity(refractory, "time"), "time", "absolute refractory period")
        except UnitError as err:
            problem("refractory", str(err))
    state: dict[str, tuple] = {}
    raw_state = spec.get("state") or {}
    if not isinstance(raw_state, Mapping):
        problem("state", f"expected a mapping {{variable: unit or initial value}}, got {raw_state!r}")
        raw_state = {}
    for key, value in raw_state.items():
        if isinstance(value, Mapping):
            unit = value.get("unit", "1")
            init = value.get("init", 0)
            unknown = [k for k in value if k not in ("unit", "init")]
            if unknown:
                problem(f"state.{key}", f"unknown key {unknown[0]!r} (a state variable takes unit and init)")
            try:
                dim = _dimension_name(str(unit)) if str(unit) != "1" else "dimensionless"
            except UnitError:
                dim = str(unit)  # reported by the analysis as an unknown unit, naming state.<key>
            quantity = _quantity_text(init)
            state[key] = (dim, quantity[0] if quantity is not None else str(init))
        else:
            quantity = _quantity_text(value)
            if quantity is not None:  # an initial value with its unit: -65 mV, 0
                state[key] = (quantity[1], quantity[0])
            else:  # a unit alone: mV
                try:
                    state[key] = (_dimension_name(str(value)), "0")
                except UnitError:
                    state[key] = (str(value), "0")
    if not state and "state" not in [k for k, _ in problems]:
        problem("state", "declare the state variables with their units, e.g. state: {v: mV}")
    methods = spec.get("methods") or [spec.get("method", "euler")]
    method_key = "methods" if "methods" in spec else "method"
    if isinstance(methods, str):
        methods = [methods]
    for i, method in enumerate(methods):
        if method not in METHODS:
            problem(method_key + (f"[{i}]" if method_key == "methods" else ""),
                    f"unknown method {method!r}; braincore integrates with {', '.join(METHODS)}")
    voltage = spec.get("voltage", "v" if "v" in state else next(iter(state), "v"))
    clamped = spec.get("clamped", [voltage] if refractory is not None else [])
    equations = spec.get("equations") or []
    if isinstance(equations, str):
        equations = [equations]
    for key in ("reset", "after"):
        if isinstance(spec.get(key), str):
            problem(key, f"expected a list of statements such as ['v = v_reset'], got {spec[key]!r}")
    if problems:
        raise _user_error(spec.get("name", name), problems, origin)
    defn = NeuronDefinition(
        name=str(spec.get("name", name)), params=params, state=state, equations=tuple(equations),
        threshold=spec.get("threshold"), reset=tuple(spec.get("reset") or ()), after=tuple(spec.get("after") or ()),
        expressions=dict(spec.get("expressions") or {}), refractory="t_ref" if refractory is not None else None,
        clamped=tuple(clamped), methods=tuple(methods), input_unit=str(spec.get("input_unit", "nA")),
        voltage=voltage, origin=origin)
    try:
        if voltage not in state:
            raise defn.fail(f"{voltage!r} is not a state variable (state: {', '.join(state)})", "voltage")
        defn.check()
        check_initial_state(defn, params_class(defn, "P")())
    except EquationError as err:
        key = err.key
        if key == "method" and method_key == "methods":
            key = "methods"
        raise _user_error(defn.name, [(key, err.detail)], origin) from None
    cls = define_model(defn, f"UserModel_{defn.name}", doc=f"User-defined model {defn.name!r}: "
                       + "; ".join(equations))
    cls.user_defined = True
    cls.spec = dict(spec)
    return cls


def _user_error(name: str, problems: list, origin: Mapping[str, str]) -> ConfigError:
    lines = [f"{origin[key] + ': ' if key in origin else ''}model {name!r}: {key}: {message}"
             for key, message in problems]
    return ConfigError("\n".join(lines), list(problems))


def key_path(key: Optional[str]) -> tuple:
    """A user model's error key as a key path: ``"equations[0]"`` -> ``("equations", 0)``, ``"params.tau"`` ->
    ``("params", "tau")``, ``"reset.value[1]"`` -> ``("reset", "value", 1)``."""
    import re

    if not key:
        return ()
    out: list = []
    for part in str(key).split("."):
        m = re.fullmatch(r"([^\[]*)((?:\[\d+\])*)", part)
        if m is None:
            out.append(part)
            continue
        if m.group(1):
            out.append(m.group(1))
        out += [int(i) for i in re.findall(r"\[(\d+)\]", m.group(2))]
    return tuple(out)


def zero_divisors(cls: type, params: Any, method: Optional[str] = None) -> list[tuple[str, str]]:
    """``(parameter, message)`` for each parameter of ``params`` that divides in the equations of ``cls`` and is zero
    (for some neuron, where it is per-neuron)."""
    defn = cls.definition
    option = getattr(params, defn.reset_choice) if defn.reset_choice else None
    program = defn.program(method or defn.methods[0], option)
    return [(name, f"{name} must be non-zero (the equations divide by it), got {getattr(params, name)}")
            for name in sorted(program.divisors) if _any_eq(getattr(params, name), 0.0)]
