"""A neuron model defined once, as equations: :class:`NeuronDefinition`, and its analysis into a :class:`Program`.

A definition holds what a modeller writes (the GeNN / NESTML / Brian2 split of a model into its parts)::

    params      name -> (default, dimension, description)         values in canonical units, checked on input
    state       name -> (dimension, initial value expression)     e.g. {"v": ("voltage", "v_rest")}
    expressions name -> expression                                named sub-expressions (rates, currents)
    equations   ["dv/dt = (v_rest - v + R_m*I)/tau_m", ...]      one ODE per integrated state variable
    threshold   "v >= v_th" (conditions joined by 'and')          tested on the updated state
    reset       ["v = v_reset"] or {choice: [...]} (see reset_choice)
    after       ["above = v > v_spike"]                           after threshold and reset, for every neuron
    refractory  "t_ref" and clamped ("v",)                        clamped variables hold while refractory
    methods     ("exact", "euler")                                the first is the default

``I`` is the input (the synaptic and external drive, in ``input_unit``), ``dt`` the step in ms. The step
convention is :mod:`braincore.neurons.base`'s: refractory countdown, integration from the old values of all
variables, threshold on the updated state, reset of the spiking neurons, refractory counter restart.

:meth:`NeuronDefinition.program` analyses the text once per method and option (cached): every expression is
parsed and its dimensions checked (:mod:`.parse`), each ODE is integrated by the method (:mod:`.integrate`), and
every sub-expression that depends only on parameters and ``dt`` is hoisted into a per-step constant (NEST's
propagators): the :class:`Program` is the one description from which the PyTorch step (:mod:`.torch_step`) and
the native engine's C code (:mod:`.c_code`) are generated. What a definition supports follows from it:
``exact`` is offered where every ODE is linear in its own variable with a constant coefficient and uncoupled.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Optional, Union


from .dimensions import DIMENSIONS, Dim, dimension_named
from .integrate import METHODS, integrate
from .parse import EquationError, parse_expression, split_equation, symbol

#: names a model may not use for its own parameters or variables
RESERVED = {"I", "dt", "t", "refrac", "spikes", "active", "torch", "math"}


@dataclass(frozen=True)
class Statement:
    """``target = expr`` (``increment``: ``expr`` is what is added, ``target = target + expr``)."""

    target: str
    expr: Any
    increment: bool = False
    #: the expression is a condition, stored as 1.0 or 0.0
    boolean: bool = False


@dataclass(frozen=True)
class Program:
    """A definition analysed for one method and option set; the input of both code generators.

    - ``temporaries``: ``(name, expr)`` evaluated in order from the old state (Runge–Kutta stages);
    - ``updates``: ``(variable, expr)``, the new values, all from the old state and temporaries;
    - ``distance``, ``strict``: the threshold as ``distance >= 0`` (``> 0`` when strict); ``gates``: further
      conditions that must hold; all evaluated on the updated state (before reset);
    - ``resets`` (spiking neurons, in order) and ``after`` (every neuron) statements;
    - ``constants``: ``(name, expr over parameters and dt)``, computed once per population.
    """

    state: tuple
    params: tuple
    temporaries: tuple
    updates: tuple
    distance: Any
    strict: bool
    gates: tuple
    resets: tuple
    after: tuple
    constants: tuple
    refractory: Optional[str]
    clamped: tuple
    divisors: frozenset = frozenset()


def definition_error(kind: str, name: str, origin: dict, message: str, key: Optional[str]) -> EquationError:
    """An :class:`EquationError` for entry ``key`` of the ``kind`` (model or rule) ``name``, prefixed with the file
    and line the key was written at when ``origin`` knows it."""
    where = origin.get(key) if key else None
    prefix = f"{where}: " if where else ""
    return EquationError(f"{prefix}{kind} {name!r}: {key + ': ' if key else ''}{message}", key, message)


def _param_dimension(spec) -> str:
    return spec[1] if len(spec) > 1 else "dimensionless"


@dataclass(frozen=True, eq=False)
class NeuronDefinition:
    """One neuron model, written once (see the module docstring for the fields)."""

    name: str
    params: dict
    state: dict
    equations: tuple = ()
    threshold: Optional[str] = None
    reset: Union[tuple, dict] = ()
    reset_choice: Optional[str] = None
    after: tuple = ()
    expressions: dict = field(default_factory=dict)
    refractory: Optional[str] = None
    clamped: tuple = ()
    methods: tuple = ("euler",)
    input_unit: str = "nA"
    voltage: str = "v"
    choices: dict = field(default_factory=dict)
    checks: tuple = ()
    presets: dict = field(default_factory=dict)
    doc: str = ""
    #: where each key was written (``{key: "file:line"}``), for error messages of user models
    origin: dict = field(default_factory=dict)

    # -- names and dimensions --------------------------------------------------------------------------
    def fail(self, message: str, key: Optional[str]) -> EquationError:
        return definition_error("model", self.name, self.origin, message, key)

    def param_dims(self) -> dict[str, Dim]:
        out = {}
        for name, spec in self.params.items():
            if name in self.choices:
                continue
            try:
                out[name] = dimension_named(_param_dimension(spec))
            except KeyError:
                raise self.fail(f"unknown dimension or unit {_param_dimension(spec)!r}", f"params.{name}") from None
        return out

    def state_dims(self) -> dict[str, Dim]:
        out = {}
        for name, spec in self.state.items():
            try:
                out[name] = dimension_named(spec[0])
            except KeyError:
                raise self.fail(f"unknown dimension or unit {spec[0]!r}", f"state.{name}") from None
        return out

    def input_dim(self) -> Dim:
        try:
            return dimension_named(self.input_unit)
        except KeyError:
            raise self.fail(f"unknown input unit {self.input_unit!r}", "input_unit") from None

    def names(self) -> dict[str, Dim]:
        names = dict(self.param_dims())
        names.update(self.state_dims())
        names["I"] = self.input_dim()
        names["dt"] = DIMENSIONS["time"]
        return names

    @property
    def state_fields(self) -> tuple:
        """The fields of the state record: the state variables, then ``refrac`` where the model is refractory."""
        return tuple(self.state) + (("refrac",) if self.refractory else ())

    # -- analysis ------------------------------------------------------------------------------------------
    def check(self) -> None:
        """Analyse every method and option once: raises :class:`EquationError` naming the key at fault."""
        for method in self.methods:
            for option in (self.reset.keys() if isinstance(self.reset, dict) else [None]):
                self.program(method, option)

    def program(self, method: str, option: Optional[str] = None) -> Program:
        return _analyse(self, method, option)

    def expressions_parsed(self) -> dict[str, tuple]:
        """Named sub-expressions, each with every earlier one substituted: ``{name: (expr, Dim)}``."""
        names = self.names()
        done: dict[str, tuple] = {}
        for name, text in self.expressions.items():
            if name in names:
                raise self.fail(f"the expression name {name!r} is already a parameter or variable",
                                f"expressions.{name}")
            expr, dim = parse_expression(str(text), names, f"expressions.{name}")
            done[name] = (expr.xreplace({symbol(k): v for k, (v, _) in done.items()}), dim)
            names[name] = dim
        return done

    def parse(self, text: str, key: str, names: Optional[dict] = None):
        """Parse ``text`` with the sub-expressions substituted; errors carry the file and line of ``key``."""
        names = names if names is not None else self.names()
        subs = self.expressions_parsed()
        all_names = dict(names)
        all_names.update({k: d for k, (_, d) in subs.items()})
        try:
            expr, dim = parse_expression(text, all_names, key)
        except EquationError as err:
            raise self.fail(str(err), key) from None
        return expr.xreplace({symbol(k): v for k, (v, _) in subs.items()}), dim


def _statements(defn: NeuronDefinition, texts, key: str, state_dims: dict) -> list[Statement]:
    import sympy

    out = []
    for i, text in enumerate(texts):
        where = f"{key}[{i}]"
        target, rhs, is_ode = split_equation(text, where)
        if is_ode:
            raise defn.fail(f"{text!r}: a differential equation belongs under 'equations'", where)
        if target not in state_dims:
            raise defn.fail(f"{text!r} assigns {target!r}, which is not a state variable "
                            f"(state: {', '.join(state_dims)})", where)
        expr, dim = defn.parse(rhs, where)
        if expr.is_Relational or isinstance(expr, (sympy.And, sympy.Or, sympy.Not)):
            out.append(Statement(target, expr, False, True))
            continue
        if expr != 0 and not dim.same_dimension(state_dims[target]):
            raise defn.fail(f"{text!r}: the right-hand side is a {dim.describe()}, {target!r} a "
                            f"{state_dims[target].describe()}", where)
        else:
            from .parse import rescale

            expr = rescale(expr, dim, state_dims[target].scale)
        x = symbol(target)
        increment = isinstance(expr, sympy.Add) and x in expr.args
        out.append(Statement(target, expr - x if increment else expr, increment))
    return out


@lru_cache(maxsize=None)
def _analyse(defn: NeuronDefinition, method: str, option: Optional[str]) -> Program:
    import sympy

    if method not in defn.methods:
        raise defn.fail(f"unknown method {method!r}; choose one of {', '.join(defn.methods)}", "method")
    params = defn.param_dims()
    state_dims = defn.state_dims()
    for name in list(params) + list(state_dims):
        if name in RESERVED:
            raise defn.fail(f"{name!r} is reserved (I is the input, dt the step); rename it", name)
    overlap = set(params) & set(state_dims)
    if overlap:
        raise defn.fail(f"{sorted(overlap)} are both parameters and state variables", "state")

    # ODEs: dx/dt = rhs, rhs rescaled to the canonical unit of x per ms
    odes: dict[str, Any] = {}
    for i, text in enumerate(defn.equations):
        key = f"equations[{i}]"
        target, rhs, is_ode = split_equation(text, key)
        if not is_ode:
            raise defn.fail(f"{text!r} is not a differential equation 'dx/dt = ...' (statements belong under "
                            f"'reset' or 'after', named sub-expressions under 'expressions')", key)
        if target not in state_dims:
            raise defn.fail(f"{text!r}: {target!r} is not a state variable (state: {', '.join(state_dims)})", key)
        if target in odes:
            raise defn.fail(f"{target!r} has two differential equations", key)
        expr, dim = defn.parse(rhs, key)
        want = state_dims[target] / DIMENSIONS["time"]
        if expr != 0 and not dim.same_dimension(want):
            raise defn.fail(f"{text!r}: the right-hand side is a {dim.describe()}, but d{target}/dt must be a "
                            f"{want.describe()} ({target} per time)", key)
        from .parse import rescale

        odes[target] = rescale(expr, dim, want.scale)

    # threshold: first comparison is the distance, the rest gates
    distance, strict, gates = None, False, ()
    if defn.threshold:
        parts = [defn.parse(text, "threshold")[0] for text in _conjuncts(str(defn.threshold))]
        first = parts[0]
        if not getattr(first, "is_Relational", False) or isinstance(first, (sympy.Eq, sympy.Ne)):
            raise defn.fail(f"{defn.threshold!r}: the first condition must be a comparison such as 'v >= v_th'",
                            "threshold")
        if isinstance(first, (sympy.GreaterThan, sympy.StrictGreaterThan)):
            distance = first.lhs - first.rhs
        else:
            distance = first.rhs - first.lhs
        strict = isinstance(first, (sympy.StrictGreaterThan, sympy.StrictLessThan))
        gates = tuple(parts[1:])

    # reset (one option of a choice) and after-step statements
    if isinstance(defn.reset, dict):
        if option not in defn.reset:
            raise defn.fail(f"{defn.reset_choice} must be one of {', '.join(map(repr, defn.reset))}, got {option!r}",
                            defn.reset_choice)
        reset_texts, reset_key = defn.reset[option], f"reset.{option}"
    else:
        reset_texts, reset_key = defn.reset, "reset"
    resets = _statements(defn, reset_texts, reset_key, state_dims)
    after = _statements(defn, defn.after, "after", state_dims)
    if resets and not defn.threshold:
        raise defn.fail("a reset needs a threshold", "reset")

    # every state variable is changed somewhere
    changed = set(odes) | {s.target for s in resets} | {s.target for s in after}
    for name in state_dims:
        if name not in changed:
            raise defn.fail(f"the state variable {name!r} is never updated (give it an equation 'd{name}/dt = ...', "
                            f"a reset or an after-step statement, or make it a parameter)", f"state.{name}")
    if defn.refractory and defn.refractory not in params:
        raise defn.fail(f"refractory names {defn.refractory!r}, which is not a parameter", "refractory")
    for name in defn.clamped:
        if name not in odes:
            raise defn.fail(f"clamped variable {name!r} has no differential equation", "clamped")

    temporaries, updates = integrate(defn, method, odes, set(params))
    # constants: maximal sub-expressions of parameters and dt
    hoist = _Hoister(set(params) | {"dt"})
    temporaries, updates = _eliminate_common(tuple((n, hoist(e)) for n, e in temporaries),
                                             tuple((n, hoist(e)) for n, e in updates))
    if distance is not None:
        distance = hoist(distance)
        gates = tuple(hoist(g) for g in gates)
    resets = tuple(Statement(s.target, hoist(s.expr), s.increment, s.boolean) for s in resets)
    after = tuple(Statement(s.target, hoist(s.expr), s.increment, s.boolean) for s in after)
    divisors = _divisors([e for _, e in hoist.constants] + [e for _, e in temporaries] + [e for _, e in updates],
                         set(params))
    return Program(tuple(state_dims), tuple(params), temporaries, updates, distance, strict, gates, resets, after,
                   tuple(hoist.constants), defn.refractory, tuple(defn.clamped), divisors)


def _eliminate_common(temporaries: tuple, updates: tuple) -> tuple[tuple, tuple]:
    """Common sub-expressions (a rate function used by a gate's x_inf and its decay) computed once: each shared
    term becomes a temporary ``_sK``, placed just before the first statement that needs it. Updates write new
    values from old ones only, so every temporary may precede all of them."""
    import sympy

    statements = list(temporaries) + list(updates)
    if not statements:
        return temporaries, updates
    replacements, reduced = sympy.cse([e for _, e in statements], symbols=sympy.numbered_symbols("_s", real=True),
                                      order="none")
    pending = dict(replacements)
    order = [name for name, _ in replacements]
    temps: list = []

    def need(expr) -> None:
        for name in order:
            if name in pending and name in expr.free_symbols:
                value = pending.pop(name)
                need(value)
                temps.append((name.name, value))

    new_updates = []
    for i, ((name, _), expr) in enumerate(zip(statements, reduced)):
        need(expr)
        if i < len(temporaries):
            temps.append((name, expr))
        else:
            new_updates.append((name, expr))
    return tuple(temps), tuple(new_updates)


def _conjuncts(text: str) -> list[str]:
    """The conditions of ``a and b and c``, in their written order (``[text]`` without 'and')."""
    import ast

    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        return [text]
    if isinstance(tree, ast.BoolOp) and isinstance(tree.op, ast.And):
        return [ast.unparse(v) for v in tree.values]
    return [text]


def _divisors(exprs: list, params: set) -> frozenset:
    """The parameters that divide somewhere: a model checks their values are non-zero when it is built."""
    import sympy

    divisors = set()
    for expr in exprs:
        for pw in expr.atoms(sympy.Pow):
            if pw.exp.is_Number and pw.exp < 0:
                divisors |= {s.name for s in pw.base.free_symbols if s.name in params}
    return frozenset(divisors)


class _Hoister:
    """Replace every maximal sub-expression over ``allowed`` symbols (parameters, dt) by a constant ``_cK``."""

    def __init__(self, allowed: set):
        self.allowed = allowed
        self.constants: list[tuple[str, Any]] = []
        self.index: dict = {}

    def const_only(self, e) -> bool:
        return all(s.name in self.allowed for s in e.free_symbols) and not e.is_Relational

    def name_for(self, e):
        if e.is_Symbol or e.is_Number:
            return e
        if e not in self.index:
            self.index[e] = symbol(f"_c{len(self.constants)}")
            self.constants.append((self.index[e].name, e))
        return self.index[e]

    def __call__(self, e):
        import sympy

        if self.const_only(e):
            return self.name_for(e)
        if isinstance(e, (sympy.Add, sympy.Mul)):
            const = [a for a in e.args if self.const_only(a)]
            rest = [self(a) for a in e.args if not self.const_only(a)]
            if const:
                c = self.name_for(e.func(*const)) if len(const) > 1 else self.name_for(const[0])
                # the constant factor first (a Mul) or last (an Add), as the original order had it
                return e.func(c, *rest, evaluate=False) if isinstance(e, sympy.Mul) else \
                    e.func(*rest, c, evaluate=False)
            return e.func(*rest, evaluate=False)
        if e.args and not e.is_Atom:
            return e.func(*[self(a) for a in e.args], evaluate=False)
        return e


__all__ = ["NeuronDefinition", "Program", "Statement", "EquationError", "METHODS"]
