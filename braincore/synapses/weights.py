"""Initial synaptic weights: constants and random distributions with units, clipping, and Dale's law.

A weight spec is either a constant or a mapping naming a distribution (values with units, parsed with
:func:`braincore.units.parse_quantity` for the weight's ``dimension``; a bare number is in the canonical unit,
e.g. nS for ``"conductance"``, nA for ``"current"``)::

    weight: 0.5 nS                                   # constant
    weight: {dist: constant, value: 0.5 nS}          # the same
    weight: {dist: uniform, low: 0.1 nS, high: 0.9 nS}
    weight: {dist: normal, mean: 0.5 nS, std: 0.1 nS, clip: [0 nS, 1 nS]}
    weight: {dist: lognormal, mean: 0.5 nS, std: 0.2 nS}

Distributions of ``w`` (``U`` uniform on ``[0, 1)``, ``Z`` standard normal):

``constant``   ``w = value``.
``uniform``    ``w = low + (high - low) U``, between ``low`` and ``high``; needs ``low <= high``.
``normal``     ``w = mean + std Z``; needs ``std >= 0``.
``lognormal``  ``w = exp(mu + sigma Z)`` with ``mean`` and ``std`` the mean and standard deviation of ``w``
               itself (not of ``log w``): from ``E[w] = exp(mu + sigma^2 / 2)`` and
               ``Var[w] = (exp(sigma^2) - 1) E[w]^2``,
               ``sigma^2 = ln(1 + std^2 / mean^2)`` and ``mu = ln(mean) - sigma^2 / 2``; needs ``mean > 0``,
               ``std >= 0``. All weights are positive.

``clip: [lo, hi]`` (optional, either bound may be ``null``) clamps the drawn weights to ``[lo, hi]``; note
that clipping changes the mean and standard deviation from the ones given.

``truncate: [lo, hi]`` (``normal`` only; either bound may be ``null``) draws from the normal distribution
truncated to ``[lo, hi]``: a draw outside is redrawn, as NEST's ``nest.math.redraw`` does, so no value piles up at
a bound. It is sampled exactly by inverse transform, ``w = mean + std Phi^-1(Phi(a) + U (Phi(b) - Phi(a)))`` with
``a, b`` the standardised bounds (mirrored into the lower tail when ``a > 0``, for precision), one uniform per
value. The interval must keep a probability of at least 1e-9 (with ``std = 0``: contain ``mean``).

Dale's law. A neuron's outgoing synapses all have one sign. Weights are stored as magnitudes ``>= 0`` for
both excitatory and inhibitory projections: :func:`apply_sign` clips negative draws (e.g. the tail of a
normal distribution) to 0 (it does *not* take the absolute value, which would fold the tail back and change
the distribution's shape above 0). The sign then comes from the synapse: a conductance synapse pulls towards
its reversal potential (e.g. ``E_inh = -80 mV``), while a current synapse of an inhibitory projection adds
``signed(w, "inhibitory") = -|w|``.

Reproducibility. Random values are drawn in float64 from the given CPU ``torch.Generator`` (``torch.rand``,
``torch.randn``) and rounded to ``dtype`` last: PyTorch's float32 normal sampler has a CPU-specific (AVX2)
vectorised path whose last bits differ from the generic one, while the float64 path is the same everywhere.
"""
from __future__ import annotations

import difflib
import math
from typing import TYPE_CHECKING, Any, Mapping, Optional, Union

import numpy as np

from ..errors import ConfigError
from ..params import torch_dtype
from ..units import CANONICAL, UnitError, parse_quantity

if TYPE_CHECKING:
    import torch
    from torch import Tensor

WeightSpec = Union[int, float, str, Mapping[str, Any]]

#: distribution -> its parameters (all required); every distribution also takes an optional ``clip``
WEIGHT_DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "constant": ("value",),
    "uniform": ("low", "high"),
    "normal": ("mean", "std"),
    "lognormal": ("mean", "std"),
}

#: the signs of Dale's law
SIGNS = ("excitatory", "inhibitory")


def _suggest(word: Any, choices) -> str:
    near = difflib.get_close_matches(str(word), list(choices), n=1)
    return f"; did you mean {near[0]!r}?" if near else ""


def _unit(dimension: str) -> str:
    unit = CANONICAL[dimension]
    return "" if unit == "1" else f" {unit}"


def _parse_spec(spec: Any, dimension: str, what: str = "weight",
                distributions: Mapping[str, tuple[str, ...]] = WEIGHT_DISTRIBUTIONS) -> tuple[Optional[dict], list]:
    """``({"dist", params..., "clip": (lo, hi) or None}, problems)``; values in canonical units.

    ``problems`` is a list of ``(key or None, message)``; the dict is ``None`` when anything is wrong.
    Shared by the weight and delay specs (``what`` names the quantity in messages, ``distributions`` the
    distributions accepted).
    """
    if dimension not in CANONICAL:
        raise ValueError(f"unknown dimension {dimension!r}; known: {', '.join(CANONICAL)}")
    problems: list[tuple[Optional[str], str]] = []
    unit = _unit(dimension)
    example = f"'0.5{unit}'" if unit else "0.5"
    if isinstance(spec, bool) or spec is None:
        return None, [(None, f"{what}: expected a {dimension} such as {example} or a mapping with 'dist' "
                             f"(one of: {', '.join(distributions)}), got {spec!r}")]
    if isinstance(spec, (list, tuple)) or hasattr(spec, "__array__"):
        return _parse_explicit(spec, what)
    if isinstance(spec, (int, float, str)):
        try:
            value = parse_quantity(spec, dimension)
        except UnitError as err:
            return None, [(None, f"{what}: {err}")]
        if not math.isfinite(value):
            return None, [(None, f"{what}: must be finite, got {spec!r}")]
        spec = {"dist": "constant", "value": value}
    if not isinstance(spec, Mapping):
        return None, [(None, f"{what}: expected a {dimension} such as {example} or a mapping with 'dist' "
                             f"(one of: {', '.join(distributions)}), got {spec!r}")]
    dist = spec.get("dist", "constant")
    if not isinstance(dist, str) or dist not in distributions:
        return None, [("dist", f"{what}: unknown distribution {dist!r}{_suggest(dist, distributions)} "
                               f"(expected one of: {', '.join(distributions)})")]
    names = distributions[dist]
    allowed = ("dist",) + names + ("clip",) + (("truncate",) if dist == "normal" else ())
    for key in spec:
        if key not in allowed:
            problems.append((key, f"{what} {dist}: unknown option {key!r}{_suggest(key, allowed)} "
                                  f"(expected {', '.join(allowed)})"))
    out: dict[str, Any] = {"dist": dist, "clip": None, "truncate": None}
    for name in names:
        if spec.get(name) is None:
            problems.append((name, f"{what} {dist}: missing {name!r} (a {dimension} such as {example})"))
            continue
        try:
            out[name] = parse_quantity(spec[name], dimension)
        except UnitError as err:
            problems.append((name, f"{what} {dist}: {name}: {err}"))
            continue
        if not math.isfinite(out[name]):
            problems.append((name, f"{what} {dist}: {name} must be finite, got {spec[name]!r}"))
    if "clip" in spec and spec["clip"] is not None:
        bounds = _bounds(spec["clip"], "clip", what, dist, dimension, unit, problems)
        if bounds is not None:
            lo, hi = bounds
            if lo is not None and hi is not None and lo > hi:
                problems.append(("clip", f"{what} {dist}: clip needs low <= high, got [{lo:g}{unit}, {hi:g}{unit}]"))
            out["clip"] = bounds
    if dist == "normal" and spec.get("truncate") is not None:
        bounds = _bounds(spec["truncate"], "truncate", what, dist, dimension, unit, problems)
        if bounds is not None:
            if bounds[0] is not None and bounds[1] is not None and not bounds[0] < bounds[1]:
                problems.append(("truncate", f"{what} {dist}: truncate needs low < high, got "
                                             f"[{bounds[0]:g}{unit}, {bounds[1]:g}{unit}]"))
            out["truncate"] = bounds
    if problems:
        return None, problems
    if out["truncate"] is not None and out["std"] >= 0:
        mass = truncated_mass(out["mean"], out["std"], *out["truncate"])
        if not mass >= 1e-9:
            problems.append(("truncate", f"{what} {dist}: truncate keeps a probability of {mass:.3g} of the "
                                         f"distribution (at least 1e-9 is needed; with std 0 the interval must "
                                         f"contain the mean)"))
    # range checks on values that parsed
    if dist == "uniform" and out["low"] > out["high"]:
        problems.append(("high", f"{what} uniform: needs low <= high, got low = {out['low']:g}{unit}, "
                                 f"high = {out['high']:g}{unit}"))
    if dist in ("normal", "lognormal") and out["std"] < 0:
        problems.append(("std", f"{what} {dist}: std must be >= 0{unit}, got {out['std']:g}{unit}"))
    if dist == "lognormal" and out["mean"] <= 0:
        problems.append(("mean", f"{what} lognormal: mean must be > 0{unit} (lognormal values are positive), "
                                 f"got {out['mean']:g}{unit}"))
    return (None if problems else out), problems


def _bounds(value: Any, key: str, what: str, dist: str, dimension: str, unit: str, problems: list):
    """``(lo, hi)`` (either may be ``None``) of a ``[low, high]`` list in ``dimension``, or ``None`` (problems
    appended)."""
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (list, tuple)) or len(value) != 2:
        problems.append((key, f"{what} {dist}: {key} must be a list [low, high] (either may be null), "
                              f"got {value!r}"))
        return None
    bounds = []
    for side, bound in zip(("low", "high"), value):
        if bound is None:
            bounds.append(None)
            continue
        try:
            bounds.append(parse_quantity(bound, dimension))
        except UnitError as err:
            problems.append((key, f"{what} {dist}: {key} {side} bound: {err}"))
            return None
    return tuple(bounds)


def truncated_mass(mean: float, std: float, lo: Optional[float], hi: Optional[float]) -> float:
    """The probability that ``N(mean, std^2)`` falls in ``[lo, hi]`` (``None``: unbounded on that side)."""
    if std == 0:
        return float((lo is None or lo <= mean) and (hi is None or mean <= hi))
    a = -math.inf if lo is None else (lo - mean) / std
    b = math.inf if hi is None else (hi - mean) / std
    if a > 0:  # upper tail: mirror for precision
        a, b = -b, -a
    return 0.5 * (math.erfc(-b / math.sqrt(2.0)) - math.erfc(-a / math.sqrt(2.0)))


def truncated_normal_setup(mean: float, std: float, truncate: tuple) -> tuple[float, float, bool, float, float]:
    """The constants of :func:`truncated_normal_of` for ``std > 0``: the standardised bounds ``(a, b)`` (mirrored to
    the lower tail when ``a > 0``), ``mirror``, ``pa = ndtr(a)`` and ``width = ndtr(b) - ndtr(a)`` (PyTorch's
    float64 ``ndtr``)."""
    import torch

    lo, hi = truncate
    a = -math.inf if lo is None else (lo - mean) / std
    b = math.inf if hi is None else (hi - mean) / std
    mirror = a > 0
    if mirror:
        a, b = -b, -a
    pa = torch.special.ndtr(torch.tensor(a, dtype=torch.float64))
    pb = torch.special.ndtr(torch.tensor(b, dtype=torch.float64))
    return a, b, mirror, float(pa), float(pb - pa)


def truncated_normal_of(u: Tensor, mean: float, std: float, truncate: tuple, ndtri=None) -> Tensor:
    """float64 values of ``N(mean, std^2)`` truncated to ``truncate = (lo, hi)`` (``None``: unbounded), one per
    uniform ``u`` in (0, 1), by inverse transform (see the module docstring):
    ``z = clamp(ndtri(pa + u width), a, b)``, ``mean + std z`` (:func:`truncated_normal_setup`). ``ndtri``: the
    inverse normal CDF (default :func:`braincore.native.construct.ndtri`, which is ``torch.special.ndtri``, in C
    where the two agree bit for bit)."""
    import torch

    if ndtri is None:
        from ..native.construct import ndtri
    if std == 0:
        return torch.full_like(u, mean, dtype=torch.float64)
    a, b, mirror, pa, width = truncated_normal_setup(mean, std, truncate)
    z = ndtri(pa + u.to(torch.float64) * width).clamp(min=a, max=b)
    return mean + std * (-z if mirror else z)


def lognormal_parameters(mean: float, std: float) -> tuple[float, float]:
    """``(mu, sigma)`` of the underlying normal such that ``exp(mu + sigma Z)`` has this ``mean`` and ``std``:
    ``sigma^2 = ln(1 + std^2 / mean^2)``, ``mu = ln(mean) - sigma^2 / 2`` (needs ``mean > 0``, ``std >= 0``)."""
    sigma2 = math.log1p((std / mean) ** 2)
    return math.log(mean) - 0.5 * sigma2, math.sqrt(sigma2)


def _parse_explicit(spec: Any, what: str) -> tuple[Optional[dict], list]:
    """Per-synapse values given as a list or array (canonical units), in the connector's synapse order."""
    import torch

    try:
        values = torch.as_tensor(np.asarray(spec, dtype=np.float64))
    except (TypeError, ValueError):
        return None, [(None, f"{what}: an explicit list must hold numbers in the canonical unit, got {spec!r}")]
    if values.dim() != 1:
        return None, [(None, f"{what}: explicit values must be one-dimensional (one per synapse), got shape "
                             f"{tuple(values.shape)}")]
    if not bool(torch.isfinite(values).all()):
        return None, [(None, f"{what}: explicit values must be finite")]
    return {"dist": "explicit", "values": values, "clip": None, "truncate": None}, []


def _sample(parsed: dict, num: int, generator: torch.Generator) -> Tensor:
    """float64 ``Tensor[num]`` drawn from a parsed spec (clip applied)."""
    import torch

    dist = parsed["dist"]
    if dist == "explicit":
        if parsed["values"].numel() != num:
            raise ConfigError(f"weight: {parsed['values'].numel()} explicit values for {num} synapses (one value "
                              f"per synapse, in the connector's order)")
        return parsed["values"].clone()
    if dist == "constant":
        values = torch.full((num,), parsed["value"], dtype=torch.float64)
    elif dist == "uniform":
        values = parsed["low"] + (parsed["high"] - parsed["low"]) * torch.rand(
            num, generator=generator, dtype=torch.float64)
    elif dist == "normal" and parsed.get("truncate") is not None:
        values = truncated_normal_of(torch.rand(num, generator=generator, dtype=torch.float64), parsed["mean"],
                                     parsed["std"], parsed["truncate"])
    elif dist == "normal":
        values = parsed["mean"] + parsed["std"] * torch.randn(num, generator=generator, dtype=torch.float64)
    else:  # lognormal
        mu, sigma = lognormal_parameters(parsed["mean"], parsed["std"])
        values = torch.exp(mu + sigma * torch.randn(num, generator=generator, dtype=torch.float64))
    if parsed["clip"] is not None:
        lo, hi = parsed["clip"]
        values = torch.clamp(values, min=lo, max=hi)
    return values


def _check_count(num: Any, what: str) -> None:
    if isinstance(num, bool) or not isinstance(num, int) or num < 0:
        raise ValueError(f"{what}: the number of synapses must be an integer >= 0, got {num!r}")


def _check_generator(generator: Any) -> None:
    import torch

    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator (e.g. torch.Generator().manual_seed(1)), "
                        f"got {type(generator).__name__}")
    if generator.device.type != "cpu":
        raise ValueError(f"generator must be a CPU torch.Generator, got one on {generator.device}")


def init_weights(spec: WeightSpec, num: int, *, generator: torch.Generator, dtype: "torch.dtype | str" = "float32",
                 dimension: str = "conductance") -> Tensor:
    """Initial weights ``Tensor[num]`` of ``dtype`` (CPU), in the canonical unit of ``dimension``.

    ``spec``: a constant (``0.5``, ``"0.5 nS"``) or a mapping ``{dist: constant | uniform | normal | lognormal,
    value | low, high | mean, std, clip: [lo, hi]}`` (see the module docstring); ``dimension``:
    ``"conductance"`` (nS) for conductance synapses, ``"current"`` (nA) for current synapses,
    ``"dimensionless"`` for abstract weights, or any other dimension of :mod:`braincore.units`. A constant
    draws nothing from ``generator``. Raises :class:`ConfigError` listing every problem of the spec.
    """
    _check_count(num, "init_weights")
    _check_generator(generator)
    parsed, problems = _parse_spec(spec, dimension)
    if parsed is None:
        raise ConfigError("\n".join(message for _, message in problems), list(problems))
    return _sample(parsed, num, generator).to(torch_dtype(dtype))


def weight_spec_problems(spec: WeightSpec, dimension: str = "conductance", *,
                         sign: Optional[str] = None) -> list[tuple[Optional[str], str]]:
    """The problems of :func:`check_weights` as ``(key, message)`` pairs: ``key`` is the key of a mapping
    spec that the message is about (``None`` when it is about the spec as a whole)."""
    parsed, problems = _parse_spec(spec, dimension)
    problems = list(problems)
    if sign is not None:
        if sign not in SIGNS:
            problems.append((None, f"unknown sign {sign!r}{_suggest(sign, SIGNS)} (expected one of: "
                                   f"{', '.join(SIGNS)})"))
        elif parsed is not None and parsed["dist"] == "explicit":
            if parsed["values"].numel() and bool((parsed["values"] < 0).all()):
                problems.append((None, f"weight explicit: all values are negative, but {sign} weights are "
                                       f"magnitudes >= 0 (the sign comes from the synapse)"))
        elif parsed is not None:
            dist = parsed["dist"]
            centre = {"constant": "value", "uniform": "high", "normal": "mean", "lognormal": "mean"}[dist]
            if parsed[centre] < 0:
                unit = _unit(dimension)
                problems.append((centre, f"weight {dist}: {centre} = {parsed[centre]:g}{unit} is negative, but "
                                         f"{sign} weights are magnitudes >= 0 (the sign comes from the synapse); "
                                         f"write {-parsed[centre]:g}{unit}"))
    return problems


def check_weights(spec: WeightSpec, dimension: str = "conductance", *, sign: Optional[str] = None) -> list[str]:
    """The problems of a weight spec (empty when valid), without drawing anything.

    With ``sign`` (``"excitatory"`` or ``"inhibitory"``) a spec whose values are all negative (a negative
    constant, a uniform range below 0, a normal with a negative mean) is reported too: under Dale's law
    weights are magnitudes and :func:`apply_sign` would set them all to 0.
    """
    return [message for _, message in weight_spec_problems(spec, dimension, sign=sign)]


def _check_sign(sign: Any) -> None:
    if sign not in SIGNS:
        raise ConfigError(f"unknown sign {sign!r}{_suggest(sign, SIGNS)} (expected one of: {', '.join(SIGNS)})")


def apply_sign(weights: Tensor, sign: str) -> Tensor:
    """Dale's law on stored weights: negative values are clipped to 0, for either ``sign``.

    ``sign`` is ``"excitatory"`` or ``"inhibitory"``; in both cases the stored weights are magnitudes
    ``>= 0`` (an inhibitory projection's effect is negative through its reversal potential, or through
    :func:`signed` for current synapses). Clipping rather than taking ``|w|`` keeps the drawn distribution
    unchanged above 0. Returns a new tensor of the same shape and dtype.
    """
    import torch

    _check_sign(sign)
    return torch.clamp(weights, min=0)


def signed(weights: Tensor, sign: str) -> Tensor:
    """The signed efficacy of weight magnitudes: ``|w|`` for ``"excitatory"``, ``-|w|`` for ``"inhibitory"``
    (what a current-based synapse adds to its target's input)."""
    _check_sign(sign)
    magnitude = weights.abs()
    return magnitude if sign == "excitatory" else -magnitude
