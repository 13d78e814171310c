"""Plasticity rules attachable to any projection (``plasticity: {rule: stdp, ...}`` in YAML).

Rules: ``stdp`` (pair-based, all-to-all or nearest-spike, additive or multiplicative) and ``triplet_stdp``
(Pfister & Gerstner 2006); homeostasis (:mod:`.homeostasis`): ``normalize`` (Diehl & Cook 2015 weight
normalisation, incoming or outgoing sums held at ``total``) and ``synaptic_scaling`` (multiplicative scaling
towards a target rate, Turrigiano et al. 1998); three-factor (:mod:`.three_factor`): ``rstdp``
(reward-modulated pair STDP with eligibility traces gated by a neuromodulator channel of
:mod:`braincore.modulators`, Izhikevich 2007; Fremaux & Gerstner 2016). Each rule's module docstring gives
its equations, units, paper and the step convention (what happens when pre and post spike in the same step).
"""
from __future__ import annotations

from typing import Mapping

from ..neurons.base import ConfigError
from .base import Plasticity, SynapseView
from .stdp import STDP, TripletSTDP
from .three_factor import RSTDP
from .homeostasis import Normalize, SynapticScaling, diehl_cook_threshold_params

RULES: dict[str, type] = {"stdp": STDP, "triplet_stdp": TripletSTDP}
RULES["rstdp"] = RSTDP
RULES.update({"normalize": Normalize, "synaptic_scaling": SynapticScaling})


def make_rule(spec: Mapping) -> Plasticity:
    """A rule from ``{rule: name, <parameter>: value, ...}`` (values with units allowed)."""
    values = dict(spec)
    name = values.pop("rule", None)
    if name not in RULES:
        import difflib

        near = difflib.get_close_matches(str(name), RULES, n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise ConfigError(f"plasticity: unknown rule {name!r}{hint}; known rules: {', '.join(RULES)}")
    return RULES[name](values)


__all__ = ["Plasticity", "SynapseView", "STDP", "TripletSTDP", "RULES", "make_rule",
           "Normalize", "SynapticScaling", "diehl_cook_threshold_params", "RSTDP"]
