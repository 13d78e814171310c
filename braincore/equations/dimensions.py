"""Physical dimensions for equation checking: each of braincore's dimensions (:mod:`braincore.units`) as a vector
of SI base exponents and the SI value of its canonical unit.

A number held by braincore in the canonical unit of a dimension (``-65`` for -65 mV) stands for
``number * scale`` in SI (``-65 * 1e-3 V``). Equations are checked, and rescaled where their terms are in
different canonical units (``g_L * (E_L - v)`` is in nS * mV = pA, ``I`` in nA), with this table: two terms may be
added only when their dimension vectors agree, and the sum is taken in the scale of its first term.

Base order: metre, kilogram, second, ampere, kelvin.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

from ..units import UNITS

Vector = Tuple[float, float, float, float, float]


@dataclass(frozen=True)
class Dim:
    """A dimension vector ``vec`` (SI base exponents) and ``scale``: the SI value of one unit of the number held."""

    vec: Vector
    scale: float = 1.0

    def __mul__(self, other: "Dim") -> "Dim":
        return Dim(tuple(a + b for a, b in zip(self.vec, other.vec)), self.scale * other.scale)

    def __truediv__(self, other: "Dim") -> "Dim":
        return Dim(tuple(a - b for a, b in zip(self.vec, other.vec)), self.scale / other.scale)

    def __pow__(self, power: float) -> "Dim":
        return Dim(tuple(a * power for a in self.vec), self.scale ** power)

    @property
    def dimensionless(self) -> bool:
        return all(abs(a) < 1e-12 for a in self.vec)

    def same_dimension(self, other: "Dim") -> bool:
        return all(abs(a - b) < 1e-12 for a, b in zip(self.vec, other.vec))

    def describe(self) -> str:
        """A readable name: the braincore dimension if one matches, else the SI exponents."""
        for name, dim in DIMENSIONS.items():
            if dim.same_dimension(self):
                return name
        names = ("m", "kg", "s", "A", "K")
        parts = [f"{n}^{e:g}" if e != 1 else n for n, e in zip(names, self.vec) if abs(e) > 1e-12]
        return " ".join(parts) or "dimensionless"


ONE = Dim((0, 0, 0, 0, 0), 1.0)
_VOLT = (2, 1, -3, -1, 0)
_SIEMENS = (-2, -1, 3, 2, 0)
_FARAD = (-2, -1, 4, 2, 0)
_OHM = (2, 1, -3, -2, 0)

#: braincore dimension name -> Dim of its canonical unit
DIMENSIONS: dict[str, Dim] = {
    "dimensionless": ONE,
    "time": Dim((0, 0, 1, 0, 0), 1e-3),
    "voltage": Dim(_VOLT, 1e-3),
    "current": Dim((0, 0, 0, 1, 0), 1e-9),
    "conductance": Dim(_SIEMENS, 1e-9),
    "capacitance": Dim(_FARAD, 1e-12),
    "frequency": Dim((0, 0, -1, 0, 0), 1.0),
    "resistance": Dim(_OHM, 1e6),
    "current_density": Dim((-2, 0, 0, 1, 0), 1e-2),
    "conductance_density": Dim((-4, -1, 3, 2, 0), 10.0),
    "capacitance_density": Dim((-4, -1, 4, 2, 0), 1e-2),
    "temperature": Dim((0, 0, 0, 0, 1), 1.0),
}


def unit_dim(symbol: str) -> Dim:
    """The Dim of a unit symbol written in an equation (``mV``, ``ms``, ``nS``, ``uA/cm2`` is not a name)."""
    dimension, factor = UNITS[symbol]
    base = DIMENSIONS[dimension]
    return Dim(base.vec, base.scale * factor)


#: unit symbols that may appear as names in equations (``-20*mV``), with the SI value of one of them
UNIT_NAMES: dict[str, Dim] = {name: unit_dim(name) for name in UNITS
                              if name.isidentifier() and name not in ("C",)}
UNIT_NAMES.update({"cm": Dim((1, 0, 0, 0, 0), 1e-2), "cm2": Dim((2, 0, 0, 0, 0), 1e-4),
                   "um": Dim((1, 0, 0, 0, 0), 1e-6), "um2": Dim((2, 0, 0, 0, 0), 1e-12)})


def dimension_named(name: str) -> Dim:
    """The Dim of a braincore dimension name, or of a unit symbol (``"mV"``, ``"uA/cm2"``, ``"1"``)."""
    if name in DIMENSIONS:
        return DIMENSIONS[name]
    from ..units import _normalise_symbol

    symbol = _normalise_symbol(name)
    if symbol in UNITS:
        return unit_dim(symbol)
    if symbol in UNIT_NAMES:
        return UNIT_NAMES[symbol]
    raise KeyError(name)
