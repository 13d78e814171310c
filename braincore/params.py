"""The generic parameter record: typed fields with physical units, defaults, descriptions and range checks.

:func:`param` declares one field (its default, its physical dimension from :mod:`braincore.units`, a
description and, for options, the allowed choices); :class:`NeuronParams` is the frozen dataclass base that
parses a mapping such as ``{"tau_m": "20 ms"}`` into canonical units, rejects unknown keys with a suggestion and
reports every range problem at once in one :class:`~braincore.errors.ConfigError`.

Every numeric value must be finite (:meth:`NeuronParams.check`): ``NaN`` never is accepted, and an infinity only
where it has a documented meaning (:func:`infinity_allowed`): a time constant (``tau`` or ``tau_*``) of ``+inf``
means no decay (Diehl & Cook's frozen ``tau_theta``, ``alif``'s ``tau_a`` in
:func:`~braincore.plasticity.homeostasis.diehl_cook_threshold_params`), a field whose default is infinite (an
unbounded ``w_max``), or a field declared with ``param(..., allow_inf=True)``.

Despite its historical name the record is not specific to neurons: neuron models, synapse and network
configurations and plasticity rules all declare their parameters with it. :data:`ParamRecord` is the neutral
alias to use in new code.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Optional

from .errors import ConfigError
from .units import CANONICAL, UnitError, parse_quantity

if TYPE_CHECKING:
    import torch


def is_tensor(value: Any) -> bool:
    """Whether ``value`` is a ``torch.Tensor``, without importing PyTorch: no value can be a tensor before PyTorch
    is imported, so the parameter records, model definitions and ``braincore validate`` run without it."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def param(default: Any, dimension: str = "dimensionless", doc: str = "",
          choices: Optional[tuple] = None, allow_inf: bool = False) -> Any:
    """A parameter field: its default, its physical dimension (see :mod:`braincore.units`) and a description.

    ``dimension="choice"`` marks an option (such as ``reset``) that is passed through unparsed; with
    ``choices`` :meth:`NeuronParams.check` rejects any other value. ``allow_inf`` lets the value be infinite (say
    what infinity means in ``doc``); see :func:`infinity_allowed` for the fields that may be without it.
    """
    return field(default=default, metadata={"dimension": dimension, "doc": doc, "choices": choices,
                                            "allow_inf": allow_inf})


def infinity_allowed(f: "dataclasses.Field") -> bool:
    """Whether parameter field ``f`` may hold an infinity: declared with ``allow_inf``, a default that is itself
    infinite (an unbounded ``w_max``), or a time constant (``tau``, ``tau_*`` of dimension time), where ``inf``
    means no decay (``exp(-dt / inf) = 1``). ``NaN`` is never allowed."""
    if f.metadata.get("allow_inf"):
        return True
    default = f.default
    if isinstance(default, float) and math.isinf(default):
        return True
    return f.metadata.get("dimension") == "time" and (f.name == "tau" or f.name.startswith("tau_"))


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
            if is_tensor(raw):
                parsed[key] = raw
                continue
            try:
                parsed[key] = parse_quantity(raw, dim, allow_inf=infinity_allowed(known[key]))
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
            if dim != "choice":
                bad = _non_finite(value, infinity_allowed(f))
                if bad:
                    problems.append(f"{f.name} must be a finite number, got {bad}")
                    continue
            positive = f.name.startswith("tau") or dim in ("capacitance", "capacitance_density")
            if positive and _any_le(value, 0.0):
                unit = CANONICAL.get(dim or "", "")
                problems.append(f"{f.name} must be > 0 {unit}, got {_show(value)}".replace(" ,", ","))
            if f.name == "t_ref" and _any_lt(value, 0.0):
                problems.append(f"t_ref must be >= 0 ms, got {_show(value)}")
            choices = f.metadata.get("choices")
            if choices and value not in choices:
                listed = " or ".join(", ".join(repr(c) for c in choices).rsplit(", ", 1))
                problems.append(f"{f.name} must be {listed}, got {value!r}")
        return problems

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def _non_finite(value: Any, allow_inf: bool) -> Optional[str]:
    """``"NaN"`` / ``"inf"`` / ``"-inf"`` when a number (or any entry of a tensor) is not finite (infinities pass
    with ``allow_inf``); ``None`` when it is, or is no number at all."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value)
        if math.isnan(number):
            return "NaN"
        return None if allow_inf or math.isfinite(number) else repr(number)
    if is_tensor(value) and value.is_floating_point():
        import torch

        if bool(torch.isnan(value).any()):
            return "NaN"
        if not allow_inf and bool(torch.isinf(value).any()):
            return "inf"
    return None


#: the default ``dtype`` of neuron states, by name (``torch.float32``, named without importing PyTorch)
FLOAT32 = "float32"


def torch_dtype(dtype: Any) -> Any:
    """``dtype`` as PyTorch's: a name such as :data:`FLOAT32` or ``"float64"`` becomes ``torch.float32`` or
    ``torch.float64``; anything else (a ``torch.dtype``, ``None``) passes unchanged."""
    if isinstance(dtype, str):
        import torch

        return getattr(torch, dtype)
    return dtype


def _as_tensor(value: Any) -> "torch.Tensor":
    import torch

    return torch.as_tensor(value)


def _numeric(value: Any) -> Any:
    """A number as it is (Python arithmetic, no PyTorch), anything else (a tensor, a sequence) as a tensor."""
    return value if isinstance(value, (int, float)) else _as_tensor(value)


def _any_eq(value: Any, bound: float) -> bool:
    """Whether ``value`` (a number, or any entry of a tensor or sequence) equals ``bound``."""
    if isinstance(value, (int, float)):
        return bool(value == bound)
    return bool((_as_tensor(value) == bound).any())


def _any_le(value: Any, bound: float) -> bool:
    """Whether ``value`` (a number, or any entry of a tensor or sequence) is ``<= bound``."""
    if isinstance(value, (int, float)):
        return bool(value <= bound)
    return bool((_as_tensor(value) <= bound).any())


def _any_lt(value: Any, bound: float) -> bool:
    """Whether ``value`` (a number, or any entry of a tensor or sequence) is ``< bound``."""
    if isinstance(value, (int, float)):
        return bool(value < bound)
    return bool((_as_tensor(value) < bound).any())


def _show(value: Any) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)


#: The parameter record used by neurons, synapses and plasticity rules alike (the same class as
#: :class:`NeuronParams`, under a name that does not suggest neurons only).
ParamRecord = NeuronParams

__all__ = ["param", "NeuronParams", "ParamRecord"]
