"""Shared helpers of the region builders: parameter checks that collect every problem, LIF cells, drives.

Each builder checks its keyword parameters with a :class:`Checker` and calls :meth:`Checker.done`, which raises
one :class:`~braincore.errors.ConfigError` whose ``items`` are ``(parameter, message)`` pairs (the YAML
loader points each at ``include.<prefix>.params.<parameter>`` with its line).
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

from braincore.graph import Assembly
from braincore.errors import ConfigError
from braincore.units import CANONICAL, UnitError, parse_quantity

#: the cortical/basal-ganglia LIF used by every region: rest -70 mV, threshold -50 mV (theta = 20 mV above
#: rest), reset -60 mV; current-based voltage-jump synapses, so R_m plays no role
V_REST, V_TH, V_RESET = -70.0, -50.0, -60.0
THETA = V_TH - V_REST


class Checker:
    """Collects ``(parameter, message)`` problems of a region's keyword parameters; :meth:`done` raises them."""

    def __init__(self, region: str):
        self.region = region
        self.items: list[tuple[str, str]] = []

    def fail(self, name: str, message: str) -> None:
        self.items.append((name, message))

    def integer(self, name: str, value: Any, minimum: int = 1, maximum: Optional[int] = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(name, f"expected an integer >= {minimum}, got {value!r}")
            return minimum
        if value < minimum or (maximum is not None and value > maximum):
            bound = f">= {minimum}" if maximum is None else f"in {minimum}..{maximum}"
            self.fail(name, f"must be {bound}, got {value}")
            return minimum
        return value

    def quantity(self, name: str, value: Any, dimension: str, *, minimum: Optional[float] = None,
                 positive: bool = False, maximum: Optional[float] = None) -> float:
        """``value`` (a number in the canonical unit or a string with a unit) as a canonical float."""
        unit = CANONICAL[dimension]
        unit = "" if unit == "1" else f" {unit}"
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            self.fail(name, f"expected a number or a quantity{unit and ' in' + unit}, got {value!r}")
            return 0.0
        try:
            number = parse_quantity(value, dimension)
        except UnitError as err:
            self.fail(name, str(err))
            return 0.0
        if positive and not number > 0:
            self.fail(name, f"must be > 0{unit}, got {number:g}{unit}")
        elif minimum is not None and number < minimum:
            self.fail(name, f"must be >= {minimum:g}{unit}, got {number:g}{unit}")
        elif maximum is not None and number > maximum:
            self.fail(name, f"must be <= {maximum:g}{unit}, got {number:g}{unit}")
        return number

    def choice(self, name: str, value: Any, options: Sequence[str]) -> str:
        if value not in options:
            self.fail(name, f"unknown value {value!r}; use one of {', '.join(map(str, options))}")
            return options[0]
        return value

    def flag(self, name: str, value: Any) -> bool:
        if not isinstance(value, bool):
            self.fail(name, f"expected true or false, got {value!r}")
            return False
        return value

    def done(self) -> None:
        if self.items:
            lines = [f"{self.region}: {name}: {message}" for name, message in self.items]
            raise ConfigError("\n".join(lines), list(self.items))


def lif(tau_m: float, t_ref: float = 2.0) -> dict:
    """Parameters of the regions' LIF neuron with membrane time constant ``tau_m`` (ms)."""
    return {"tau_m": f"{tau_m:g} ms", "v_rest": f"{V_REST:g} mV", "v_reset": f"{V_RESET:g} mV",
            "v_th": f"{V_TH:g} mV", "t_ref": f"{t_ref:g} ms"}


#: initial membrane potentials spread between reset and threshold (no synchronous first volley)
INIT_V = {"v": {"dist": "uniform", "low": f"{V_RESET - 5:g} mV", "high": f"{V_TH - 2:g} mV"}}


def project(a: Assembly, pre: str, post: str, k: int, weight: float, delay: float, name: str,
            sign: str) -> None:
    """A voltage-jump projection with ``k`` presynaptic partners per post neuron (``weight`` mV magnitude)."""
    if weight <= 0 or k <= 0:
        return
    n_pre = a.population(pre).size
    a.add_projection(pre, post, {"type": "fixed_indegree", "k": min(int(k), n_pre), "allow_self": False},
                     f"{weight:g} mV", {"type": "instantaneous"}, f"{delay:g} ms", name=name, sign=sign)


def drive(a: Assembly, name: str, target: str, rate: float, weight: float, sources: int) -> None:
    """Tonic background: ``sources`` independent Poisson trains of ``rate`` Hz per neuron, jumps of ``weight`` mV
    (mean depolarisation ``weight * sources * rate * tau_m``)."""
    if rate > 0 and weight > 0:
        a.add_input(name, "poisson", target, rate=f"{rate:g} Hz", weight=f"{weight:g} mV", sources=int(sources))


def mean_drive(rate_hz: float, weight_mv: float, sources: int, tau_ms: float) -> float:
    """The mean depolarisation (mV above rest) of a Poisson drive: ``J K nu tau``."""
    return weight_mv * sources * rate_hz / 1000.0 * tau_ms


def rate_for(depolarisation_mv: float, weight_mv: float, sources: int, tau_ms: float) -> float:
    """The Poisson rate (Hz) per source that depolarises by ``depolarisation_mv`` on average."""
    return depolarisation_mv / (weight_mv * sources * tau_ms) * 1000.0
