"""Plasticity rules attachable to any projection (``plasticity: {rule: stdp, ...}`` in YAML).

Rules: ``stdp`` (pair-based, all-to-all or nearest-spike, additive or multiplicative) and ``triplet_stdp``
(Pfister & Gerstner 2006); homeostasis (:mod:`.homeostasis`): ``normalize`` (Diehl & Cook 2015 weight
normalisation, incoming or outgoing sums held at ``total``) and ``synaptic_scaling`` (multiplicative scaling
towards a target rate, Turrigiano et al. 1998); three-factor (:mod:`.three_factor`): ``rstdp``
(reward-modulated pair STDP with eligibility traces gated by a neuromodulator channel of
:mod:`braincore.modulators`, Izhikevich 2007; Fremaux & Gerstner 2016). Each rule's module docstring gives
its equations, units, paper and the step convention (what happens when pre and post spike in the same step).

A rule may also be written in place as equations, ``plasticity: {rule: {params: ..., traces: ..., on_pre: ...,
on_post: ...}}`` (:func:`.defined.user_rule`; the language: :mod:`braincore.equations.rule`); it runs on both engines.

Several rules on one projection (say STDP with weight normalisation, as in Diehl & Cook 2015) are a list,
``plasticity: [{rule: stdp, ...}, {rule: normalize, total: 78}]``: each step they run in the listed order
(:class:`RuleChain`).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence, Union

from ..errors import ConfigError
from .base import Plasticity, SynapseView
from .stdp import STDP, TripletSTDP
from .three_factor import RSTDP
from .defined import user_rule
from .homeostasis import Normalize, SynapticScaling, diehl_cook_threshold_params

RULES: dict[str, type] = {"stdp": STDP, "triplet_stdp": TripletSTDP}
RULES["rstdp"] = RSTDP
RULES.update({"normalize": Normalize, "synaptic_scaling": SynapticScaling})


class RuleChain(Plasticity):
    """A rule may also be written in place as equations, ``plasticity: {rule: {params: ..., traces: ..., on_pre: ...,
on_post: ...}}`` (:func:`.defined.user_rule`; the language: :mod:`braincore.equations.rule`); it runs on both engines.

Several rules on one projection, stepped in order; each keeps its own state (keys ``"<i>.<name>"``)."""

    name = "chain"

    def __init__(self, rules: Sequence[Plasticity]):
        self.rules = list(rules)
        self.uses_modulators = any(getattr(r, "uses_modulators", False) for r in self.rules)

    @property
    def modulators(self) -> Any:
        return next((r.modulators for r in self.rules if getattr(r, "uses_modulators", False)), None)

    @modulators.setter
    def modulators(self, value: Any) -> None:
        for rule in self.rules:
            if getattr(rule, "uses_modulators", False):
                rule.modulators = value

    def init_state(self, view, batch, device, dtype) -> dict:
        return {f"{i}.{key}": value for i, rule in enumerate(self.rules)
                for key, value in rule.init_state(view, batch, device, dtype).items()}

    def step(self, view, state, pre, post, dt) -> None:
        for i, rule in enumerate(self.rules):
            prefix = f"{i}."
            own = {key[len(prefix):]: value for key, value in state.items() if key.startswith(prefix)}
            rule.step(view, own, pre, post, dt)
            state.update({prefix + key: value for key, value in own.items()})


def _key_path(key: str) -> tuple:
    """``"on_pre[0]"`` -> ``("on_pre", 0)``, ``"traces.x"`` -> ``("traces", "x")``: a key of a rule definition as
    a path into the YAML mapping (so the config loader finds its line)."""
    import re

    return tuple(int(part) if part.isdigit() else part for part in re.findall(r"[^.\[\]]+", str(key)))


def _make_one(spec: Mapping) -> Plasticity:
    values = dict(spec)
    name = values.pop("rule", None)
    if isinstance(name, Mapping):  # a rule written by the user as equations
        try:
            cls = user_rule(name)
        except ConfigError as err:
            raise ConfigError(str(err), [(("rule", *_key_path(key)) if key else "rule", message)
                                         for key, message in (err.items or [(None, str(err))])]) from None
        return cls(values)
    if name not in RULES:
        import difflib

        near = difflib.get_close_matches(str(name), RULES, n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise ConfigError(f"plasticity: unknown rule {name!r}{hint}; known rules: {', '.join(RULES)}",
                          [("rule", f"unknown rule {name!r}{hint}; known rules: {', '.join(RULES)}")])
    return RULES[name](values)


def make_rule(spec: Union[Mapping, Sequence[Mapping]]) -> Plasticity:
    """A rule from ``{rule: name, <parameter>: value, ...}`` (values with units allowed), or a
    :class:`RuleChain` from a list of such mappings. Problems of list items are reported under their index."""
    if isinstance(spec, Mapping):
        return _make_one(spec)
    if isinstance(spec, (list, tuple)) and spec:
        rules, items = [], []
        for i, item in enumerate(spec):
            if not isinstance(item, Mapping):
                items.append(((i,), f"expected a mapping such as {{rule: stdp, ...}}, got {item!r}"))
                continue
            try:
                rules.append(_make_one(item))
            except ConfigError as err:
                for key, message in (err.items or [((), str(err))]):
                    items.append(((i, *((key,) if isinstance(key, str) else tuple(key or ()))), message))
        if items:
            raise ConfigError("\n".join(f"plasticity[{path[0]}]: {m}" for path, m in items), items)
        return RuleChain(rules)
    raise ConfigError(f"plasticity: expected a mapping such as {{rule: stdp, ...}} or a non-empty list of them, "
                      f"got {spec!r}")


__all__ = ["Plasticity", "SynapseView", "STDP", "TripletSTDP", "RULES", "make_rule", "RuleChain",
           "Normalize", "SynapticScaling", "diehl_cook_threshold_params", "RSTDP"]
