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
from functools import lru_cache
from collections import namedtuple
from typing import Any, Callable, Mapping, Optional

import torch

from ..equations import EquationError, NeuronDefinition
from ..equations.dimensions import DIMENSIONS
from ..equations.parse import rescale
from ..equations.torch_step import _ScalarOrTensor, _scalar_exprel, constants, torch_step
from ..equations.printers import Printer
from ..errors import ConfigError
from ..params import NeuronParams, param
from .base import NeuronModel, filled

Tensor = torch.Tensor


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
        super().__init__(size, params, **kwargs)
        defn = self.definition
        try:
            program = defn.program(self.method, self.option)
        except EquationError as err:
            raise ConfigError(str(err), [(err.key, str(err))]) from None
        zero = [f"{name} must be non-zero (the equations divide by it), got {getattr(self.params, name)}"
                for name in sorted(program.divisors) if bool((torch.as_tensor(getattr(self.params, name)) == 0).any())]
        if zero:
            raise ConfigError(f"{type(self).__name__}: " + "; ".join(zero))
        self._step = torch_step(defn, self.method, self.option, self.state_cls)
        self.constants = constants(defn, self.method, self.option, self.params, self.dt)

    @property
    def option(self) -> Optional[str]:
        """The value of the model's reset choice (e.g. ``"value"`` or ``"subtract"``), or None."""
        choice = self.definition.reset_choice
        return getattr(self.params, choice) if choice else None

    @property
    def program(self):
        return self.definition.program(self.method, self.option)

    def initial_state(self, batch_size: int = 1, *, device=None, dtype=torch.float32):
        return initial_state(self.definition, self.params, self.state_cls, batch_size, self.size, device, dtype)

    def step(self, state, current: Tensor):
        return self._step(state, current, self.constants, self.spike_fn)


def initial_state(defn: NeuronDefinition, params: Any, state_cls: type, batch_size: int, size: int,
                  device=None, dtype=torch.float32):
    """Each state variable from its initial-value expression (over parameters and earlier variables)."""
    printer = Printer("torch", lambda name: name)
    dims = defn.state_dims()
    values: dict[str, Any] = {name: getattr(params, name) for name in defn.param_dims()}
    out = {}
    for name, spec in defn.state.items():
        text = spec[1] if len(spec) > 1 else "0"
        expr, dim = defn.parse(str(text), f"state.{name}")
        if expr != 0 and not dim.same_dimension(dims[name]):
            raise ConfigError(f"model {defn.name!r}: state.{name}: the initial value is a {dim.describe()}, "
                              f"expected a {dims[name].describe()}")
        expr = rescale(expr, dim, dims[name].scale)
        namespace = {"torch": _ScalarOrTensor(), "_exprel": _scalar_exprel}
        namespace.update(values)
        value = eval(printer(expr), namespace)  # noqa: S307 - generated from a parsed, checked expression
        if isinstance(value, Tensor):
            value = value.to(device=device, dtype=dtype)
        tensor = filled(batch_size, size, value, device=device, dtype=dtype)
        out[name] = tensor
        values[name] = tensor
    if defn.refractory:
        out["refrac"] = torch.zeros(batch_size, size, device=device, dtype=dtype)
    return state_cls(**out)


@lru_cache(maxsize=None)
def expression_function(defn: NeuronDefinition, name: str) -> Callable:
    """A named sub-expression of ``defn`` as a function of its symbols (keywords; floats or tensors), in canonical
    units: e.g. a rate function ``alpha_m(v=...)``."""
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


def user_model(spec: Mapping[str, Any], name: str = "user", origin: Optional[Mapping[str, str]] = None) -> type:
    """A model class from a mapping written by a user (YAML ``model: {equations: ..., threshold: ...}``).

    Keys: ``equations`` (list), ``params`` (``{name: value with unit}``: the unit fixes the dimension, a bare number
    is dimensionless), ``state`` (``{name: "unit"}`` or ``{name: {unit: ..., init: ...}}``), ``threshold``,
    ``reset`` (list), ``after`` (list), ``expressions`` (mapping), ``refractory`` (a time, e.g. ``2 ms``),
    ``clamped`` (variables held while refractory; default the first state variable), ``method`` or ``methods``,
    ``input_unit`` (default nA), ``voltage`` (the membrane potential, default ``v``). Every problem raises
    :class:`~braincore.errors.ConfigError` naming the key (and, with ``origin``, its file and line).
    """
    from ..units import UnitError, parse_quantity

    known = {"equations", "params", "state", "threshold", "reset", "after", "expressions", "refractory", "clamped",
             "method", "methods", "input_unit", "voltage", "name"}
    origin = dict(origin or {})
    where = lambda key: f"{origin[key]}: " if key in origin else ""  # noqa: E731
    unknown = [k for k in spec if k not in known]
    if unknown:
        import difflib

        key = unknown[0]
        near = difflib.get_close_matches(str(key), sorted(known), n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise ConfigError(f"{where(key)}model: unknown key {key!r}{hint} (expected: {', '.join(sorted(known))})",
                          [(key, f"unknown key {key!r}")])
    params: dict[str, tuple] = {}
    for key, value in dict(spec.get("params") or {}).items():
        if isinstance(value, str):
            parts = value.strip().split(maxsplit=1)
            try:
                dim = _dimension_name(parts[1]) if len(parts) == 2 else "dimensionless"
                params[key] = (parse_quantity(value, dim), dim, "")
            except (UnitError, KeyError) as err:
                raise ConfigError(f"{where('params.' + key)}model: params.{key}: {err}",
                                  [(f"params.{key}", str(err))]) from None
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            params[key] = (float(value), "dimensionless", "")
        else:
            raise ConfigError(f"{where('params.' + key)}model: params.{key}: expected a number with a unit such as "
                              f"'10 ms', got {value!r}", [(f"params.{key}", "expected a quantity")])
    refractory = spec.get("refractory")
    if refractory is not None:
        try:
            params["t_ref"] = (parse_quantity(refractory, "time"), "time", "absolute refractory period")
        except UnitError as err:
            raise ConfigError(f"{where('refractory')}model: refractory: {err}", [("refractory", str(err))]) from None
    state: dict[str, tuple] = {}
    for key, value in dict(spec.get("state") or {}).items():
        if isinstance(value, Mapping):
            state[key] = (str(value.get("unit", "1")), str(value.get("init", 0)))
        else:
            state[key] = (str(value), "0")
    if not state:
        raise ConfigError(f"{where('state')}model: state: declare the state variables with their units, "
                          f"e.g. state: {{v: mV}}", [("state", "missing")])
    methods = spec.get("methods") or [spec.get("method", "euler")]
    voltage = spec.get("voltage", "v" if "v" in state else next(iter(state)))
    clamped = tuple(spec.get("clamped", [voltage] if refractory is not None else []))
    equations = spec.get("equations") or []
    if isinstance(equations, str):
        equations = [equations]
    defn = NeuronDefinition(
        name=str(spec.get("name", name)), params=params, state=state, equations=tuple(equations),
        threshold=spec.get("threshold"), reset=tuple(spec.get("reset") or ()), after=tuple(spec.get("after") or ()),
        expressions=dict(spec.get("expressions") or {}), refractory="t_ref" if refractory is not None else None,
        clamped=clamped, methods=tuple(methods), input_unit=str(spec.get("input_unit", "nA")), voltage=voltage,
        origin=origin)
    try:
        defn.check()
        initial_state(defn, params_class(defn, "P")(), state_class(defn, "S"), 1, 1)
    except EquationError as err:
        raise ConfigError(str(err), [(err.key, str(err))]) from None
    return define_model(defn, f"UserModel_{defn.name}", doc=f"User-defined model {defn.name!r}: "
                        + "; ".join(equations))
