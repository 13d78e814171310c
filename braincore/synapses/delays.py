"""Synaptic (axonal + dendritic) transmission delays, in whole simulation steps.

A delay spec is a time (a bare number is in ms) or a mapping naming a distribution, as for weights
(:mod:`braincore.synapses.weights`)::

    delay: 1.5 ms                                       # constant
    delay: {dist: uniform, low: 1 ms, high: 3 ms}
    delay: {dist: normal, mean: 2 ms, std: 0.5 ms, clip: [0.5 ms, 5 ms]}

Conversion to steps. A spike emitted at step ``t`` with a delay of ``d`` steps arrives at step ``t + d``::

    steps = max(1, floor(delay / dt + 1/2))       # the nearest step, halves rounded up

computed in float64 with a tolerance of 1e-6 step, so that e.g. 0.15 ms at ``dt = 0.1 ms`` is 2 steps
(``0.15 / 0.1 = 1.4999999999999998`` in floating point). A positive delay shorter than half a step becomes 1
step: a spike can never arrive in the step it was emitted in (the minimum delay of NEST and Brian2's
event-driven pathways).

Errors. Delays must be positive: a constant ``<= 0``, a ``uniform`` range with ``low <= 0`` or a ``normal``
with ``mean <= 0`` is a :class:`~braincore.errors.ConfigError`. A ``normal`` distribution's draws in
its tail below half a step (below 0 included) are given the minimum of 1 step rather than raising, so that a
valid spec never fails by the luck of the seed; add ``clip: [low, high]`` to bound the draws explicitly, or
``truncate: [low, high]`` to redraw those outside (NEST's ``redraw``; see :mod:`braincore.synapses.weights`).

Random draws are float64 from the given CPU ``torch.Generator`` (see :mod:`braincore.synapses.weights`),
so a seed gives the same delays on every machine.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Optional, Union

from ..errors import ConfigError
from ..units import UnitError, parse_quantity
from .weights import _check_count, _check_generator, _parse_spec, _sample

if TYPE_CHECKING:
    import torch
    from torch import Tensor

DelaySpec = Union[int, float, str, Mapping[str, Any]]

#: delay distribution -> its parameters (all required, in ms unless a unit is given); ``clip`` is optional
DELAY_DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "constant": ("value",),
    "uniform": ("low", "high"),
    "normal": ("mean", "std"),
}

#: a delay within this fraction of a step below a half step rounds up (absorbs float rounding of delay / dt)
_ROUNDING_TOLERANCE = 1e-6


def _parse(spec: Any) -> tuple[Any, list]:
    parsed, problems = _parse_spec(spec, "time", what="delay", distributions=DELAY_DISTRIBUTIONS)
    if parsed is None:
        return None, problems
    dist = parsed["dist"]
    lowest = {"constant": "value", "uniform": "low", "normal": "mean"}[dist]
    if parsed[lowest] <= 0:
        what = "delay" if dist == "constant" else f"delay {dist}: {lowest}"
        problems.append((None if dist == "constant" else lowest,
                         f"{what} must be > 0 ms (a spike cannot arrive before it is sent), "
                         f"got {parsed[lowest]:g} ms"))
        return None, problems
    return parsed, problems


def delay_spec_problems(spec: DelaySpec) -> list[tuple[Optional[str], str]]:
    """The problems of :func:`check_delays` as ``(key, message)`` pairs: ``key`` is the key of a mapping spec
    that the message is about (``None`` when it is about the spec as a whole)."""
    _, problems = _parse(spec)
    return list(problems)


def check_delays(spec: DelaySpec) -> list[str]:
    """The problems of a delay spec (empty when valid), without drawing anything."""
    return [message for _, message in delay_spec_problems(spec)]


def delay_steps(delays_ms: Tensor, dt: float) -> Tensor:
    """Delays in ms (``Tensor``) to whole steps (``LongTensor``): ``max(1, floor(delay / dt + 1/2))``."""
    import torch

    steps = torch.floor(delays_ms.to(torch.float64) / dt + (0.5 + _ROUNDING_TOLERANCE))
    return torch.clamp(steps, min=1).long()


def init_delays(spec: DelaySpec, num: int, dt: Union[float, str], *, generator: torch.Generator) -> Tensor:
    """Delays of ``num`` synapses as whole steps of ``dt``: ``LongTensor[num]``, every entry ``>= 1``.

    ``spec``: a time (``1.5``, ``"1.5 ms"``) or ``{dist: constant, value}``, ``{dist: uniform, low, high}``,
    ``{dist: normal, mean, std}``, each with an optional ``clip: [low, high]`` (values in ms or with a time
    unit); ``dt``: the step in ms (or a time string). Steps are the nearest whole number of ``dt``, halves up,
    at least 1 (see the module docstring). A constant draws nothing from ``generator``. Raises
    :class:`ConfigError` listing every problem of the spec (non-positive delays included).
    """
    _check_count(num, "init_delays")
    _check_generator(generator)
    try:
        dt_ms = parse_quantity(dt, "time")
    except UnitError as err:
        raise ConfigError(f"init_delays: dt: {err}") from None
    if not dt_ms > 0:
        raise ConfigError(f"init_delays: dt must be > 0 ms, got {dt_ms:g} ms")
    parsed, problems = _parse(spec)
    if parsed is None:
        raise ConfigError("\n".join(message for _, message in problems), list(problems))
    return delay_steps(_sample(parsed, num, generator), dt_ms)
