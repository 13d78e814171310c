"""A plasticity rule defined once, as statements over spike traces: :class:`RuleDefinition` and its :class:`RuleProgram`.

A rule acts on the synapses ``i -> j`` of one projection. What a modeller writes (Brian2's ``on_pre`` /
``on_post`` split; Morrison, Diesmann & Gerstner 2008's trace formulation)::

    params      name -> (default, dimension, description)     e.g. {"tau_plus": (20.0, "time", "...")}
    traces      name -> (side, tau parameter)                  side: "pre" (one per presynaptic neuron),
                                                               "post" (per postsynaptic neuron) or "synapse"
    on_pre      ["w -= eta*A_minus*y"]                         for the synapses of each presynaptic spike
    on_post     ["w += eta*A_plus*x"]                          for the synapses onto each postsynaptic spike
    each_step   ["w += (dt/ms)*eta*sign*(M - baseline)*c"]     for every synapse, every step
    each_step_when  "M != baseline"                            skip each_step unless this holds in some trial
    clip        True                                           hold w in [w_min, w_max] after the step's changes
    variant     "weight_dependence"                            the choice that selects on_pre/on_post/clip
    pairing     "pairing"                                      the choice: all_to_all (a spike adds 1 to its
                                                               neuron's traces) or nearest (sets them to 1)
    modulator   "modulator"                                    the parameter naming the channel read as ``M``
    derived     name -> (function(params) -> float, doc)       numbers derived from choices (a receptor's sign)

Statements change ``w`` (the weight, shared by the ``B`` trials of a batch) or a synapse trace by increments,
``target += expr`` or ``target -= expr``. The names an expression may use: the parameters, derived values, the
traces, ``w``, ``M`` (the modulator's per-trial value) and ``dt`` (ms). Traces, ``w`` and ``M`` are dimensionless
(weights are in their own unit, which the rule's amplitudes share); parameters carry their dimensions, and sums
must agree (write ``dt/ms`` for the step as a number of ms).

**The step** (each step ``k``, after the neurons have spiked and the spikes have been propagated):

1. every trace decays exactly over the step, ``x <- x exp(-dt/tau)`` (``exp(-dt/tau)`` is a per-run constant);
2. ``on_pre`` runs for the outgoing synapses of every presynaptic neuron that spiked in some trial, reading the
   postsynaptic traces before this step's spikes (and the presynaptic ones before their increment);
3. the presynaptic traces take this step's spikes (``+= 1`` or ``= 1``, by ``pairing``);
4. ``on_post`` runs for the incoming synapses of every postsynaptic neuron that spiked, reading the presynaptic
   traces with this step's spikes: a pre and a post spike in the same step pair as ``dt = 0`` (potentiation);
5. the postsynaptic traces take this step's spikes;
6. ``each_step`` runs for every synapse when ``each_step_when`` holds in some trial (or always, without one);
7. with ``clip``, ``w <- min(max(w, w_min), w_max)``.

**Batches.** Each trial has its own traces; the weights are shared, so a statement on ``w`` adds the mean over the
``B`` trials of ``s_b * expr_b``, with ``s_b`` the event's spike in trial ``b`` (1 or 0; 1 for ``each_step``), all
trials reading the same ``w``. A statement on a synapse trace adds ``s_b * expr_b`` per trial.

:meth:`RuleDefinition.program` analyses the text once per variant (cached): every expression is parsed and its
dimensions checked (:mod:`.parse`), and every sub-expression of parameters and ``dt`` is hoisted into a per-run
constant (:class:`~.definition._Hoister`). The :class:`RuleProgram` is the one description from which the PyTorch
executor (:mod:`braincore.plasticity.defined`) and the native engine's C code (:mod:`.c_rule`) are generated, with
the same operations in the same order (:mod:`.printers`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Optional, Union


from .definition import Statement, _Hoister, _param_dimension, definition_error
from .dimensions import DIMENSIONS, ONE, Dim, dimension_named
from .parse import EquationError, parse_expression, rescale, symbol

TRACE_SIDES = ("pre", "post", "synapse")
PAIRINGS = ("all_to_all", "nearest")
#: names a rule may not use for its parameters or traces
RULE_RESERVED = {"w", "M", "dt", "t", "torch", "math"}


@dataclass(frozen=True)
class RuleProgram:
    """A rule analysed for one variant; the input of both code generators.

    - ``traces``: ``(name, side, decay constant name)`` in the definition's order;
    - ``on_pre``, ``on_post``, ``each_step``: increments ``Statement(target, expr, increment=True)``, target
      ``"w"`` or a synapse trace;
    - ``when``: the condition of ``each_step`` (or None); ``clip``: whether ``w`` is clipped;
    - ``params``: the numeric parameters and derived values, ``constants``: ``(name, expr over params and dt)``.
    """

    traces: tuple
    on_pre: tuple
    on_post: tuple
    each_step: tuple
    when: Any
    clip: bool
    params: tuple
    constants: tuple
    uses_modulator: bool

    def side(self, name: str) -> Optional[str]:
        return next((side for trace, side, _ in self.traces if trace == name), None)

    def names_of(self, side: str) -> list:
        return [trace for trace, s, _ in self.traces if s == side]


@dataclass(frozen=True, eq=False)
class RuleDefinition:
    """One plasticity rule, written once (see the module docstring for the fields)."""

    name: str
    params: dict
    traces: dict
    on_pre: Union[tuple, dict] = ()
    on_post: Union[tuple, dict] = ()
    each_step: tuple = ()
    each_step_when: Optional[str] = None
    clip: Union[bool, dict] = False
    variant: Optional[str] = None
    pairing: Optional[str] = "pairing"
    modulator: Optional[str] = None
    derived: dict = field(default_factory=dict)
    choices: dict = field(default_factory=dict)
    doc: str = ""
    origin: dict = field(default_factory=dict)

    def fail(self, message: str, key: Optional[str]) -> EquationError:
        return definition_error("rule", self.name, self.origin, message, key)

    def numeric_params(self) -> dict[str, Dim]:
        out = {}
        for name, spec in self.params.items():
            if name in self.choices or name == self.modulator:
                continue
            try:
                out[name] = dimension_named(_param_dimension(spec))
            except KeyError:
                raise self.fail(f"unknown dimension or unit {_param_dimension(spec)!r}", f"params.{name}") from None
        for name in self.derived:
            out[name] = ONE
        return out

    def names(self) -> dict[str, Dim]:
        names = dict(self.numeric_params())
        names.update({trace: ONE for trace in self.traces})
        names.update({"w": ONE, "dt": DIMENSIONS["time"]})
        if self.modulator:
            names["M"] = ONE
        return names

    def variants(self) -> list:
        return list(self.choices[self.variant]) if self.variant else [None]

    def check(self) -> None:
        """Analyse every variant once: raises :class:`EquationError` naming the key at fault."""
        for variant in self.variants():
            self.program(variant)

    def program(self, variant: Optional[str] = None) -> RuleProgram:
        return _analyse(self, variant)

    def pick(self, value: Any, variant: Optional[str], key: str) -> Any:
        """A field's value for ``variant`` (fields may be a mapping from the variant choice's values)."""
        if not isinstance(value, dict):
            return value
        if variant not in value:
            raise self.fail(f"no entry for {self.variant} = {variant!r} (entries: {', '.join(map(repr, value))})", key)
        return value[variant]


def _increments(defn: RuleDefinition, texts, key: str, names: dict, targets: set) -> tuple:
    out = []
    for i, text in enumerate(texts):
        where = f"{key}[{i}]"
        if not isinstance(text, str) or ("+=" not in text and "-=" not in text):
            raise defn.fail(f"{text!r}: a rule changes its targets by increments, 'w += ...' or 'w -= ...' (with "
                            f"a batch of trials the shared weight changes by the mean of the trials' increments)",
                            where)
        op = "+=" if "+=" in text else "-="
        target, rhs = (part.strip() for part in text.split(op, 1))
        if target not in targets:
            raise defn.fail(f"{text!r} changes {target!r}; a rule changes 'w' or a synapse trace "
                            f"({', '.join(sorted(targets))})", where)
        try:
            expr, dim = parse_expression(rhs, names, where)
        except EquationError as err:
            raise defn.fail(str(err), where) from None
        if expr != 0 and not dim.dimensionless:
            raise defn.fail(f"{text!r}: the increment is a {dim.describe()}, {target!r} is dimensionless (weights "
                            f"and traces are in their own units; write the step as dt/ms)", where)
        expr = rescale(expr, dim, 1.0)
        out.append(Statement(target, expr if op == "+=" else -expr, True))
    return tuple(out)


@lru_cache(maxsize=None)
def _analyse(defn: RuleDefinition, variant: Optional[str]) -> RuleProgram:
    import sympy

    params = defn.numeric_params()
    for name in list(params) + list(defn.traces):
        if name in RULE_RESERVED:
            raise defn.fail(f"{name!r} is reserved (w is the weight, M the modulator, dt the step); rename it", name)
    traces = []
    for name, spec in defn.traces.items():
        side, tau = spec
        if side not in TRACE_SIDES:
            raise defn.fail(f"side {side!r}; use one of {', '.join(TRACE_SIDES)}", f"traces.{name}")
        if tau not in params or not params[tau].same_dimension(DIMENSIONS["time"]):
            raise defn.fail(f"decays with {tau!r}, which is not a time parameter", f"traces.{name}")
        traces.append((name, side, tau))
    if defn.pairing and defn.pairing not in defn.choices:
        raise defn.fail(f"pairing names {defn.pairing!r}, which is not a choice parameter", "pairing")
    names = defn.names()
    targets = {"w"} | {name for name, side, _ in traces if side == "synapse"}
    on_pre = _increments(defn, defn.pick(defn.on_pre, variant, "on_pre"), "on_pre", names, targets)
    on_post = _increments(defn, defn.pick(defn.on_post, variant, "on_post"), "on_post", names, targets)
    each_step = _increments(defn, defn.each_step, "each_step", names, targets)
    when = None
    if defn.each_step_when:
        when, _ = parse_expression(defn.each_step_when, names, "each_step_when")
        if not (when.is_Relational or isinstance(when, (sympy.And, sympy.Not))):
            raise defn.fail(f"{defn.each_step_when!r} is not a condition", "each_step_when")
    clip = bool(defn.pick(defn.clip, variant, "clip"))
    if clip and not {"w_min", "w_max"} <= set(params):
        raise defn.fail("clip needs the parameters w_min and w_max", "clip")
    for name, side, _ in traces:  # each synapse trace must be changed by something
        if side == "synapse" and not any(s.target == name for s in on_pre + on_post + each_step):
            raise defn.fail(f"the synapse trace {name!r} is never changed (add 'on_pre'/'on_post' increments)",
                            f"traces.{name}")
    statements = on_pre + on_post + each_step
    uses_m = any(symbol("M") in s.expr.free_symbols for s in statements) or (
        when is not None and symbol("M") in when.free_symbols)

    hoist = _Hoister(set(params) | {"dt"})
    decay_names = {}
    for name, _, tau in traces:
        decay = hoist.name_for(sympy.exp(-symbol("dt") / symbol(tau)))
        decay_names[name] = decay.name
    traces = tuple((name, side, decay_names[name]) for name, side, _ in traces)

    def h(stmts):
        return tuple(Statement(s.target, hoist(s.expr), True) for s in stmts)

    on_pre, on_post, each_step = h(on_pre), h(on_post), h(each_step)
    if when is not None:
        when = hoist(when)
    return RuleProgram(traces, on_pre, on_post, each_step, when, clip, tuple(params), tuple(hoist.constants), uses_m)


def rule_constants(program: RuleProgram, values: dict, dt: float) -> dict:
    """The parameter and constant values of one program at step ``dt`` (ms), by name (floats)."""
    from .printers import Printer
    from .torch_step import _ScalarOrTensor, _scalar_exprel

    out: dict[str, Any] = {"dt": float(dt)}
    for name in program.params:
        out[name] = float(values[name])
    printer = Printer("torch", lambda n: n)
    for name, expr in program.constants:
        namespace = {"torch": _ScalarOrTensor(), "_exprel": _scalar_exprel}
        namespace.update(out)
        out[name] = float(eval(printer(expr), namespace))  # noqa: S307 - generated from a parsed, checked expression
    return out


__all__ = ["RuleDefinition", "RuleProgram", "rule_constants", "TRACE_SIDES", "PAIRINGS"]
