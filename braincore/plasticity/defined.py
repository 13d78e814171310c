"""Plasticity rules derived from a :class:`~braincore.equations.rule.RuleDefinition`: the PyTorch executor.

A rule file (``stdp.py``, ``three_factor.py``) holds the definition and its documentation; :func:`define_rule` turns
it into a :class:`~braincore.plasticity.base.Plasticity` class whose step follows the definition's schedule
(:mod:`braincore.equations.rule`): its statements are printed once as PyTorch expressions (:mod:`.printers`, the
same operations in the same order as the native engine's generated C, :mod:`braincore.equations.c_rule`) and
evaluated on the synapses an event touches:

- sparse projections: the outgoing synapses of the presynaptic neurons that spiked in some trial (CSR), or the
  incoming synapses of the postsynaptic ones (the view's by-post order); traces are gathered per synapse,
  ``[B, S_event]``; ``w[syn]`` is ``[S_event]``;
- dense projections: rows or columns of the ``[N_pre, N_post]`` matrix, traces broadcast (``[B, rows, 1]``,
  ``[B, 1, N_post]``), changes multiplied by the connectivity mask so absent synapses stay zero.

State keys are the definition's trace names (``[B, N_pre]``, ``[B, N_post]``, and ``[B, S]`` or
``[B, N_pre, N_post]`` for synapse traces), so checkpoints hold them by name.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional

from ..equations import EquationError
from ..equations.printers import Printer
from ..equations.rule import RuleDefinition, RuleProgram, rule_constants
from ..errors import ConfigError
from ..neurons.defined import params_class
from ..synapses.csr import outgoing
from .base import Plasticity, SynapseView

if TYPE_CHECKING:
    from torch import Tensor

def _compile(expr, what: str) -> Any:
    return compile(Printer("torch", lambda name: name)(expr), f"<{what}>", "eval")


class DefinedRule(Plasticity):
    """A :class:`Plasticity` rule whose step is derived from :attr:`definition` (see the module docstring)."""

    definition: RuleDefinition

    def __init__(self, params: Optional[dict] = None, **overrides: Any):
        super().__init__(params, **overrides)
        defn = self.definition
        try:
            self.program: RuleProgram = defn.program(self.variant)
        except EquationError as err:
            raise ConfigError(str(err), [(err.key, str(err))]) from None
        self._values = {name: getattr(self.params, name) for name in defn.numeric_params() if name not in defn.derived}
        self._values.update({name: fn(self.params) for name, (fn, _) in defn.derived.items()})
        self._constants: dict[float, dict] = {}
        p = self.program
        self._code = {key: [(s.target, _compile(s.expr, f"{defn.name}.{key}")) for s in getattr(p, key)]
                      for key in ("on_pre", "on_post", "each_step")}
        self._when = _compile(p.when, f"{defn.name}.each_step_when") if p.when is not None else None
        #: whether on_pre / on_post change the weights (then they are clipped every step, as in c_rule)
        self._events_change_w = any(s.target == "w" for s in p.on_pre + p.on_post)
        self.modulators = None  # a braincore.modulators.Modulators, set by the simulator for modulated rules

    @property
    def uses_modulators(self) -> bool:
        return self.program.uses_modulator

    @property
    def variant(self) -> Optional[str]:
        choice = self.definition.variant
        return getattr(self.params, choice) if choice else None

    @property
    def nearest(self) -> bool:
        choice = self.definition.pairing
        return bool(choice) and getattr(self.params, choice) == "nearest"

    @property
    def modulator_name(self) -> Optional[str]:
        return getattr(self.params, self.definition.modulator) if self.definition.modulator else None

    def constants(self, dt: float) -> dict:
        """Parameters, derived values and per-step constants (trace decays, products of parameters) at ``dt``."""
        if dt not in self._constants:
            self._constants[dt] = rule_constants(self.program, self._values, dt)
        return self._constants[dt]

    # -- state ------------------------------------------------------------------------------------------
    def init_state(self, view: SynapseView, batch: int, device, dtype) -> dict:
        import torch

        out = {}
        for name, side, _ in self.program.traces:
            if side == "pre":
                shape = (batch, view.n_pre)
            elif side == "post":
                shape = (batch, view.n_post)
            else:
                shape = (batch, view.n_pre, view.n_post) if view.dense else (batch, int(view.proj.post_idx.numel()))
            out[name] = torch.zeros(shape, device=device, dtype=dtype)
        return out

    # -- the step -----------------------------------------------------------------------------------------
    def step(self, view: SynapseView, state: dict, pre: Tensor, post: Tensor, dt: float) -> None:
        p, K = self.program, self.constants(dt)
        m = self._modulator(state) if p.uses_modulator else None
        for name, _, decay in p.traces:
            state[name] = state[name] * K[decay]
        if p.on_pre:
            self._events(view, state, K, m, pre, "pre", self._code["on_pre"])
        self._bump(state, "pre", pre)
        if p.on_post:
            self._events(view, state, K, m, post, "post", self._code["on_post"])
        self._bump(state, "post", post)
        changed = self._events_change_w
        if p.each_step and self._due(view, state, K, m):
            self._everywhere(view, state, K, m, self._code["each_step"])
            changed = True
        if p.clip and changed:
            view.clip_(K["w_min"], K["w_max"])

    def _modulator(self, state: dict) -> Tensor:
        if self.modulators is None:
            raise RuntimeError(f"{self.definition.name}: no modulators: the Simulator sets rule.modulators; to call "
                               f"step() directly, set rule.modulators = braincore.modulators.Modulators(batch) first")
        m = self.modulators.value(self.modulator_name)
        batch = next(iter(state.values())).shape[0]
        if m.shape[0] != batch:
            raise RuntimeError(f"{self.definition.name}: modulator {self.modulator_name!r} has {m.shape[0]} trial "
                               f"values, the projection {batch} trials")
        return m

    def _bump(self, state: dict, side: str, spikes: Tensor) -> None:
        import torch

        for name in self.program.names_of(side):
            trace = state[name]
            state[name] = torch.where(spikes > 0, torch.ones_like(trace), trace) if self.nearest else trace + spikes

    def _namespace(self, K: dict, m: Optional[Tensor], m_shape: tuple) -> dict:
        import torch

        from ..equations.torch_step import _exprel

        namespace = dict(K)
        namespace.update(torch=torch, _exprel=_exprel)
        if m is not None:
            namespace["M"] = m.view(m_shape)
        return namespace

    def _events(self, view: SynapseView, state: dict, K: dict, m: Optional[Tensor], spikes: Tensor, side: str,
                code: list) -> None:
        """The statements of ``on_pre`` (``side="pre"``) or ``on_post`` for the synapses of this step's spikes."""
        p = self.program
        active = (spikes != 0).any(dim=0).nonzero().squeeze(1)
        if active.numel() == 0:
            return
        if view.dense:
            if side == "pre":
                sel, spk = (active, slice(None)), spikes[:, active, None]
                gather = {"pre": lambda t: t[:, active, None], "post": lambda t: t[:, None, :]}
            else:
                sel, spk = (slice(None), active), spikes[:, None, active]
                gather = {"pre": lambda t: t[:, :, None], "post": lambda t: t[:, None, active]}
            mask = view.mask[sel]
            namespace = self._namespace(K, m, (-1, 1, 1))
            syn_of: Callable = lambda t: t[(slice(None),) + sel]  # noqa: E731
            put: Callable = lambda t, v: t.__setitem__((slice(None),) + sel, v)  # noqa: E731
            w_sel = sel
        else:
            if side == "pre":
                syn = outgoing(view.proj.indptr, active)
                spk = spikes[:, view.pre_of[syn]]
            else:
                syn = view.by_post[outgoing(view.indptr_post, active)]
                spk = spikes[:, view.proj.post_idx[syn]]
            pre_of, post_of = view.pre_of[syn], view.proj.post_idx[syn]
            gather = {"pre": lambda t: t[:, pre_of], "post": lambda t: t[:, post_of]}
            mask = None
            namespace = self._namespace(K, m, (-1, 1))
            syn_of = lambda t: t[:, syn]  # noqa: E731
            put = lambda t, v: t.__setitem__((slice(None), syn), v)  # noqa: E731
            w_sel = syn
        for name, side_of, _ in p.traces:
            namespace[name] = gather[side_of](state[name]) if side_of != "synapse" else syn_of(state[name])
        w = view.weight
        for target, compiled in code:
            namespace["w"] = w[w_sel]
            change = spk * eval(compiled, namespace)  # noqa: S307 - generated from a parsed, checked expression
            if target == "w":
                mean = change.mean(dim=0)
                w[w_sel] = namespace["w"] + (mean * mask if mask is not None else mean)
            else:
                value = namespace[target] + (change * mask if mask is not None else change)
                put(state[target], value)
                namespace[target] = value

    def _everywhere_namespace(self, view: SynapseView, state: dict, K: dict, m: Optional[Tensor]) -> dict:
        namespace = self._namespace(K, m, (-1, 1, 1) if view.dense else (-1, 1))
        for name, side, _ in self.program.traces:
            t = state[name]
            if side == "synapse":
                namespace[name] = t
            elif view.dense:
                namespace[name] = t[:, :, None] if side == "pre" else t[:, None, :]
            else:
                namespace[name] = t[:, view.pre_of] if side == "pre" else t[:, view.proj.post_idx]
        return namespace

    def _due(self, view: SynapseView, state: dict, K: dict, m: Optional[Tensor]) -> bool:
        import torch

        if self._when is None:
            return True
        namespace = self._namespace(K, m, (-1,))
        return bool(torch.as_tensor(eval(self._when, namespace)).any())  # noqa: S307

    def _everywhere(self, view: SynapseView, state: dict, K: dict, m: Optional[Tensor], code: list) -> None:
        namespace = self._everywhere_namespace(view, state, K, m)
        w = view.weight
        for target, compiled in code:
            namespace["w"] = w
            change = eval(compiled, namespace)  # noqa: S307 - generated from a parsed, checked expression
            if target == "w":
                mean = change.mean(dim=0)
                w.copy_(namespace["w"] + (mean * view.mask if view.dense else mean))
            else:
                state[target] = namespace[target] + (change * view.mask if view.dense else change)
                namespace[target] = state[target]


def define_rule(defn: RuleDefinition, class_name: str, *, params_name: Optional[str] = None,
                check: Optional[Callable[[Any], list]] = None, doc: str = "") -> type:
    """The :class:`DefinedRule` class of ``defn`` (with its generated parameter record)."""
    params_cls = params_class(defn, params_name or f"{class_name}Params", check)
    attrs = {"definition": defn, "name": defn.name, "params_cls": params_cls, "__doc__": doc or defn.doc,
             "__module__": DefinedRule.__module__}
    return type(class_name, (DefinedRule,), attrs)


#: the keys of a user rule mapping (YAML ``plasticity: {rule: {traces: ..., on_pre: ...}}``)
USER_RULE_KEYS = ("name", "params", "traces", "on_pre", "on_post", "each_step", "each_step_when", "clip", "pairing",
                  "modulator")
_USER_RULES: dict[str, type] = {}


def user_rule(spec: Mapping[str, Any]) -> type:
    """A rule class from a mapping written by a user, e.g. in YAML::

        plasticity:
          rule:
            name: my_stdp
            params: {tau_x: 20 ms, tau_y: 20 ms, a: 0.01, w_min: 0, w_max: 1}
            traces: {x: [pre, tau_x], y: [post, tau_y]}      # side and decay parameter
            on_pre: ["w -= a*y"]
            on_post: ["w += a*x"]
            clip: true
          a: 0.02                                            # parameters may be overridden beside it

    Keys (:data:`USER_RULE_KEYS`): ``params`` (``{name: value with unit}``), ``traces``, ``on_pre``, ``on_post``,
    ``each_step`` (lists of ``target += expr`` / ``target -= expr``), ``each_step_when``, ``clip``, ``pairing``
    (``all_to_all``, the default, or ``nearest``), ``modulator`` (a channel name, read as ``M``), ``name``. The
    meaning of each is :mod:`braincore.equations.rule`'s. Equal mappings give the same class (one generated C
    function). Every problem is a :class:`~braincore.errors.ConfigError` whose items name the key at fault.
    """
    import json

    if not isinstance(spec, Mapping):
        raise ConfigError(f"a user rule is a mapping with params, traces, on_pre, on_post ...; got {spec!r}",
                          [(None, "expected a mapping")])
    key = json.dumps(dict(spec), sort_keys=True, default=repr)
    if key not in _USER_RULES:
        _USER_RULES[key] = _build_user_rule(spec)
    return _USER_RULES[key]


def _build_user_rule(spec: Mapping[str, Any]) -> type:
    from ..equations.rule import PAIRINGS
    from ..neurons.defined import unknown_keys, user_params

    problems: list[tuple[str, str]] = []

    def problem(key: str, message: str) -> None:
        problems.append((key, message))

    unknown_keys(spec, USER_RULE_KEYS, "a user rule", problem)
    params = user_params(spec.get("params"), problem)
    traces = {}
    for name, value in dict(spec.get("traces") or {}).items():
        if isinstance(value, Mapping):
            value = (value.get("side"), value.get("tau"))
        if not (isinstance(value, (list, tuple)) and len(value) == 2):
            problem(f"traces.{name}", f"expected [side, tau parameter] such as [pre, tau_x], got {value!r}")
            continue
        traces[name] = tuple(value)
    choices = {}
    pairing = spec.get("pairing", "all_to_all")
    if pairing not in PAIRINGS:
        problem("pairing", f"expected one of {', '.join(PAIRINGS)}, got {pairing!r}")
    else:
        params["pairing"] = (pairing, "choice", "how a spike enters its neuron's traces")
        choices["pairing"] = PAIRINGS
    modulator = spec.get("modulator")
    if modulator is not None:
        params["modulator"] = (str(modulator), "choice", "the neuromodulator channel read as M")
    lists = {}
    for field_name in ("on_pre", "on_post", "each_step"):
        value = spec.get(field_name) or []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)):
            problem(field_name, f"expected a list of statements such as ['w += a*x'], got {value!r}")
            value = []
        lists[field_name] = tuple(value)
    if problems:
        raise ConfigError("\n".join(f"user rule: {key}: {message}" for key, message in problems), problems)
    defn = RuleDefinition(name=str(spec.get("name", "user_rule")), params=params, traces=traces,
                          on_pre=lists["on_pre"], on_post=lists["on_post"], each_step=lists["each_step"],
                          each_step_when=spec.get("each_step_when"), clip=bool(spec.get("clip", False)),
                          pairing="pairing", modulator="modulator" if modulator is not None else None,
                          choices=choices)
    try:
        defn.check()
    except EquationError as err:
        raise ConfigError(str(err), [(err.key, str(err))]) from None
    return define_rule(defn, "UserRule")


__all__ = ["DefinedRule", "define_rule", "user_rule", "USER_RULE_KEYS"]
