"""The generic parameter record: typed fields with physical units, defaults, descriptions and range checks.

:func:`param` declares one field (its default, its physical dimension from :mod:`braincore.units`, a
description and, for options, the allowed choices); :class:`NeuronParams` is the frozen dataclass base that
parses a mapping such as ``{"tau_m": "20 ms"}`` into canonical units, rejects unknown keys with a suggestion and
reports every range problem at once in one :class:`~braincore.errors.ConfigError`.

Despite its historical name the record is not specific to neurons: neuron models, synapse and network
configurations and plasticity rules all declare their parameters with it. :data:`ParamRecord` is the neutral
alias to use in new code.
"""
from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

import torch

from .errors import ConfigError
from .units import CANONICAL, UnitError, parse_quantity

Tensor = torch.Tensor


def param(default: Any, dimension: str = "dimensionless", doc: str = "",
          choices: Optional[tuple] = None) -> Any:
    """A parameter field: its default, its physical dimension (see :mod:`braincore.units`) and a description.

    ``dimension="choice"`` marks an option (such as ``reset``) that is passed through unparsed; with
    ``choices`` :meth:`NeuronParams.check` rejects any other value.
    """
    return field(default=default, metadata={"dimension": dimension, "doc": doc, "choices": choices})


@dataclass(frozen=True)
class NeuronParams:
    """Base of every model's parameter record. Values are canonical units (see :mod:`braincore.units`)."""

    @classmethod
    def describe(cls) -> list[tuple[str, Any, str, str]]:
        """Rows ``(name, default, canonical unit, description)`` for help texts and docs."""
        rows = []
        for f in dataclasses.fields(cls):
            dim = f.metadata.get("dimension", "dimensionless")
            unit = CANONICAL.get(dim, dim)
            rows.append((f.name, f.default, unit, f.metadata.get("doc", "")))
        return rows

    @classmethod
    def from_mapping(cls, values: Optional[Mapping[str, Any]] = None, base: Optional["NeuronParams"] = None,
                     where: str = "") -> "NeuronParams":
        """Build from ``{"tau_m": "20 ms", ...}``: units parsed, unknown keys rejected with a suggestion.

        ``base`` supplies the values not given (default: the class defaults). Every problem is reported at
        once in one :class:`ConfigError`; ``where`` prefixes each message (e.g. a file and key path).
        """
        values = dict(values or {})
        known = {f.name: f for f in dataclasses.fields(cls)}
        problems: list[tuple[Optional[str], str]] = []
        parsed: dict[str, Any] = {}
        prefix = f"{where}: " if where else ""
        for key, raw in values.items():
            if key not in known:
                near = difflib.get_close_matches(str(key), known, n=1)
                hint = f"; did you mean {near[0]!r}?" if near else ""
                problems.append((key, f"unknown parameter {key!r} for {cls.__name__}{hint} "
                                      f"(expected one of: {', '.join(known)})"))
                continue
            dim = known[key].metadata.get("dimension", "dimensionless")
            if dim == "choice":
                parsed[key] = raw
                continue
            if isinstance(raw, Tensor):
                parsed[key] = raw
                continue
            try:
                parsed[key] = parse_quantity(raw, dim)
            except UnitError as err:
                problems.append((key, f"parameter {key!r}: {err}"))
        # range checks on every value that parsed, so that all problems are reported at once
        result = dataclasses.replace(base if base is not None else cls(), **parsed)
        reported = {key for key, _ in problems}
        for msg in result.check():
            key = msg.split(" ", 1)[0]
            if key not in reported:
                problems.append((key, f"{cls.__name__}: {msg}"))
        if problems:
            raise ConfigError("\n".join(prefix + msg for _, msg in problems),
                              [(key if key in values else None, msg) for key, msg in problems])
        return result

    def check(self) -> list[str]:
        """Problems with these values (empty when valid). Subclasses add model-specific checks."""
        problems = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            dim = f.metadata.get("dimension")
            positive = f.name.startswith("tau") or dim in ("capacitance", "capacitance_density")
            if positive and _any_le(value, 0.0):
                problems.append(f"{f.name} must be > 0 {CANONICAL.get(dim, '')}, got {_show(value)}".replace(" ,", ","))
            if f.name == "t_ref" and _any_lt(value, 0.0):
                problems.append(f"t_ref must be >= 0 ms, got {_show(value)}")
            choices = f.metadata.get("choices")
            if choices and value not in choices:
                listed = " or ".join(", ".join(repr(c) for c in choices).rsplit(", ", 1))
                problems.append(f"{f.name} must be {listed}, got {value!r}")
        return problems

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def _any_le(value: Any, bound: float) -> bool:
    return bool((torch.as_tensor(value) <= bound).any())


def _any_lt(value: Any, bound: float) -> bool:
    return bool((torch.as_tensor(value) < bound).any())


def _show(value: Any) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)


#: The parameter record used by neurons, synapses and plasticity rules alike (the same class as
#: :class:`NeuronParams`, under a name that does not suggest neurons only).
ParamRecord = NeuronParams

__all__ = ["param", "NeuronParams", "ParamRecord"]
