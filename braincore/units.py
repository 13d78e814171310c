"""Physical quantities in configs: ``"20 ms"``, ``"-65 mV"``, ``"5 Hz"``, ``"0.6 nS"``.

Every tensor inside braincore holds a number in one *canonical unit* per dimension, stated in each docstring:

=====================  ===========  ==================================================
dimension              canonical    also accepted
=====================  ===========  ==================================================
time                   ms           s, us
voltage                mV           V, uV
current                nA           A, mA, uA, pA
conductance            nS           S, mS, uS, pS
capacitance            pF           F, uF, nF
frequency              Hz           kHz
resistance             MOhm         Ohm, kOhm, GOhm (``Ω`` may replace ``Ohm``)
current_density        uA/cm2       mA/cm2, nA/cm2   (Hodgkin–Huxley)
conductance_density    mS/cm2       S/cm2, uS/cm2    (Hodgkin–Huxley)
capacitance_density    uF/cm2       nF/cm2           (Hodgkin–Huxley)
temperature            degC         C
dimensionless          1            (a bare number)
=====================  ===========  ==================================================

A bare number means the canonical unit of the expected dimension. Strings are parsed as
``<number> <unit>``; ``cm2``, ``cm^2`` and ``cm**2`` are the same. Values must be finite: ``NaN`` (YAML ``.nan``) is
always refused, and an infinity (``.inf``, or a string such as ``1e400 ms`` that overflows) too, unless the caller
passes ``allow_inf=True`` for a parameter whose documentation gives infinity a meaning (a time constant of
``inf``: no decay). The canonical units are mutually
consistent for the membrane equations used here: nS * mV / pF = mV/ms, MOhm * nA = mV, and
uA/cm2 / (uF/cm2) = mV/ms.
"""
from __future__ import annotations

import math
import re
from typing import TypeGuard, Union

Number = Union[int, float]

#: unit symbol -> (dimension, factor that converts a value in this unit to the canonical unit)
UNITS: dict[str, tuple[str, float]] = {
    # time (ms)
    "s": ("time", 1e3), "ms": ("time", 1.0), "us": ("time", 1e-3), "µs": ("time", 1e-3),
    # voltage (mV)
    "V": ("voltage", 1e3), "mV": ("voltage", 1.0), "uV": ("voltage", 1e-3), "µV": ("voltage", 1e-3),
    # current (nA)
    "A": ("current", 1e9), "mA": ("current", 1e6), "uA": ("current", 1e3), "µA": ("current", 1e3),
    "nA": ("current", 1.0), "pA": ("current", 1e-3),
    # conductance (nS)
    "S": ("conductance", 1e9), "mS": ("conductance", 1e6), "uS": ("conductance", 1e3),
    "µS": ("conductance", 1e3), "nS": ("conductance", 1.0), "pS": ("conductance", 1e-3),
    # capacitance (pF)
    "F": ("capacitance", 1e12), "uF": ("capacitance", 1e6), "µF": ("capacitance", 1e6),
    "nF": ("capacitance", 1e3), "pF": ("capacitance", 1.0),
    # frequency (Hz)
    "Hz": ("frequency", 1.0), "kHz": ("frequency", 1e3),
    # resistance (MOhm)
    "Ohm": ("resistance", 1e-6), "kOhm": ("resistance", 1e-3), "MOhm": ("resistance", 1.0),
    "GOhm": ("resistance", 1e3),
    # densities for Hodgkin–Huxley (per cm2)
    "uA/cm2": ("current_density", 1.0), "mA/cm2": ("current_density", 1e3), "nA/cm2": ("current_density", 1e-3),
    "mS/cm2": ("conductance_density", 1.0), "S/cm2": ("conductance_density", 1e3),
    "uS/cm2": ("conductance_density", 1e-3),
    "uF/cm2": ("capacitance_density", 1.0), "nF/cm2": ("capacitance_density", 1e-3),
    # conduction velocity (m/s = mm/ms: a tract length in mm over a velocity in m/s is a delay in ms)
    "m/s": ("velocity", 1.0), "mm/ms": ("velocity", 1.0), "mm/s": ("velocity", 1e-3), "cm/s": ("velocity", 1e-2),
    # temperature (degC)
    "degC": ("temperature", 1.0), "C": ("temperature", 1.0),
    # dimensionless
    "1": ("dimensionless", 1.0),
}

#: dimension -> its canonical unit symbol
CANONICAL: dict[str, str] = {
    "time": "ms", "voltage": "mV", "current": "nA", "conductance": "nS", "capacitance": "pF",
    "frequency": "Hz", "resistance": "MOhm", "current_density": "uA/cm2",
    "conductance_density": "mS/cm2", "capacitance_density": "uF/cm2", "temperature": "degC", "velocity": "m/s",
    "dimensionless": "1",
}

_QUANTITY = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(.*?)\s*$")


class UnitError(ValueError):
    """A quantity whose unit is unknown or of the wrong dimension."""


def _normalise_symbol(symbol: str) -> str:
    symbol = symbol.replace("Ω", "Ohm").replace("ohm", "Ohm").replace("µ", "u")
    symbol = re.sub(r"cm(\^|\*\*)?2$", "cm2", symbol.replace(" ", ""))
    return symbol


def dimension_of(unit: str) -> str:
    """The dimension of a unit symbol, e.g. ``dimension_of("mV") == "voltage"``."""
    symbol = _normalise_symbol(unit)
    if symbol not in UNITS:
        raise UnitError(f"unknown unit {unit!r}; known units: {', '.join(sorted(set(UNITS) - {'1'}))}")
    return UNITS[symbol][0]


def parse_quantity(value: Union[str, Number], dimension: str = "dimensionless", *, allow_inf: bool = False) -> float:
    """Convert ``value`` to a finite float in the canonical unit of ``dimension``.

    >>> parse_quantity("20 ms", "time")
    20.0
    >>> parse_quantity("0.5 s", "time")
    500.0
    >>> parse_quantity(-65, "voltage")   # bare numbers are canonical
    -65.0

    Raises :class:`UnitError` naming what was expected when the unit is unknown or of another dimension, and
    when the value is not finite: ``NaN`` always, ``inf`` / ``-inf`` unless ``allow_inf``.
    """
    if dimension not in CANONICAL:
        raise UnitError(f"unknown dimension {dimension!r}; known: {', '.join(CANONICAL)}")
    if isinstance(value, bool):
        raise UnitError(f"expected a {dimension} in {CANONICAL[dimension]}, got a boolean {value!r}")
    if isinstance(value, (int, float)):
        try:
            return _finite(float(value), value, dimension, allow_inf)
        except OverflowError:  # an int too large for a float
            raise UnitError(f"expected a finite number, got {_short(value)}, which is too large for a float") from None
    if not isinstance(value, str):
        raise UnitError(f"expected a {dimension} such as '1.5 {CANONICAL[dimension]}', got {value!r}")
    match = _QUANTITY.match(value)
    if match is None:
        raise UnitError(f"cannot read {value!r} as a {dimension}; write e.g. '1.5 {CANONICAL[dimension]}'")
    number, unit = float(match.group(1)), match.group(2)
    if unit == "":
        return _finite(number, value, dimension, allow_inf)
    symbol = _normalise_symbol(unit)
    if symbol not in UNITS:
        raise UnitError(
            f"unknown unit {unit!r} in {value!r}; expected a {dimension} such as "
            f"'{match.group(1)} {CANONICAL[dimension]}'"
        )
    found, factor = UNITS[symbol]
    if found != dimension:
        raise UnitError(
            f"{value!r} is a {found}, expected a {dimension} (canonical unit {CANONICAL[dimension]})"
        )
    return _finite(number * factor, value, dimension, allow_inf)


def _short(value: object, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _finite(number: float, value: object, dimension: str, allow_inf: bool) -> float:
    """``number`` when it is finite (or infinite and ``allow_inf``), else a :class:`UnitError`."""
    what = "a number" if dimension == "dimensionless" else f"a {dimension}"
    if math.isnan(number):
        raise UnitError(f"expected a finite number ({what}), got NaN")
    if math.isinf(number) and not allow_inf:
        if isinstance(value, float) and math.isinf(value):
            raise UnitError(f"expected a finite number ({what}), got {value}")
        raise UnitError(f"expected a finite number ({what}), got {_short(value)}, which overflows to infinity")
    return number


def is_finite_number(value: object) -> TypeGuard[Union[int, float]]:
    """Whether ``value`` is an int or float (not a bool) that is finite."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def format_quantity(value: float, dimension: str) -> str:
    """``format_quantity(20.0, "time") == "20 ms"``: a canonical value written with its unit."""
    unit = CANONICAL[dimension]
    return f"{value:g}" if unit == "1" else f"{value:g} {unit}"


def refractory_steps(t_ref: float, dt: float) -> int:
    """Whole steps of refractoriness, as Brian2's ``timestep(t_ref, dt)``: ``floor(t_ref/dt + 1e-3)``."""
    return int((float(t_ref) + 1e-3 * dt) / dt)
