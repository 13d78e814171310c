"""Spike-train statistics, and the diffusion (mean-field) theory of sparse LIF networks to compare them with.

Spike data are two parallel numpy arrays: ``times`` (ms) and ``neurons`` (indices in ``[0, n_neurons)``), as a
spike monitor records them (``sim.monitor("exc_spikes")`` gives ``"t"``, ``"neuron"`` and ``"trial"``;
:func:`spikes_of` picks one trial and a time window). Durations and bins are in ms, rates in Hz.

Measures
--------
- :func:`mean_rate`, :func:`firing_rates`: spikes per neuron per second.
- :func:`isi_cv`: per neuron, the coefficient of variation of the interspike intervals,
  ``CV_i = std(ISI_i) / mean(ISI_i)``. A Poisson train has CV 1 (exponential intervals), a periodic one CV 0.
- :func:`population_rate`: the population rate in bins, ``r(t_b) = sum_i c_ib / (N * bin)`` (Hz), where
  ``c_ib`` is the number of spikes of neuron ``i`` in bin ``b``.
- :func:`population_fano`: the Fano factor of the population spike count per bin, ``F = Var_b[C_b] / E_b[C_b]``
  with ``C_b = sum_i c_ib``. Independent Poisson neurons give ``F = 1``; correlated firing gives ``F > 1``; a
  population firing all at once in one bin gives ``F ~ N``.
- :func:`synchrony_chi`: Golomb's synchrony measure (Golomb & Rinzel 1993, Physica D 72:259; Golomb 2007,
  Scholarpedia 2(1):1347) on binned spike counts::

      chi^2 = Var_b[ (1/N) sum_i c_ib ] / ( (1/N) sum_i Var_b[c_ib] )

  the variance of the population average over the mean variance of the single neurons. ``chi = 1`` when all
  neurons have the same train (full synchrony); for independent neurons ``Var[(1/N) sum_i c_i] = (1/N^2) sum_i
  Var[c_i]``, so ``chi^2 = 1/N`` exactly in expectation and ``chi ~ 1/sqrt(N)`` (asynchronous state). ``chi``
  depends on the bin: choose it near the time scale of the synchrony looked for (1-5 ms for the fast
  oscillations of spiking networks).

Theory (Brunel 2000, J Comput Neurosci 8:183; Amit & Brunel 1997)
-----------------------------------------------------------------
A LIF neuron (``tau dV/dt = -V + mu + sigma sqrt(tau) xi(t)``, threshold ``theta``, reset ``V_r``, refractory
``tau_rp``) under white noise fires at the Siegert rate :func:`lif_rate`::

    1/nu = tau_rp + tau sqrt(pi) int_{y_r}^{y_theta} e^{u^2} (1 + erf u) du,   y_x = (x - mu) / sigma

with the ISI CV of :func:`lif_cv` (Brunel 2000, eq. A.6)::

    CV^2 = 2 pi (nu tau)^2 int_{y_r}^{y_theta} e^{x^2} dx int_{-inf}^{x} e^{y^2} (1 + erf y)^2 dy

In Brunel's model A each neuron has ``C_E`` excitatory inputs of ``J``, ``C_I = gamma C_E`` inhibitory ones of
``-g J`` and ``C_E`` external Poisson inputs of ``J`` at ``nu_ext``; in the asynchronous state
(:func:`brunel_moments`)::

    mu = C_E J tau (nu_ext + nu (1 - g gamma)),   sigma^2 = C_E J^2 tau (nu_ext + nu (1 + g^2 gamma))

and the stationary rate solves ``nu = lif_rate(mu(nu), sigma(nu))`` (:func:`brunel_rate`).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

__all__ = ["spikes_of", "mean_rate", "firing_rates", "isi_cv", "population_rate", "population_fano",
           "synchrony_chi", "lif_rate", "lif_cv", "brunel_moments", "brunel_rate", "nu_threshold"]


# ------------------------------------------------------------------------------------------ helpers
def _arrays(times: Sequence[float], neurons: Optional[Sequence[int]] = None) -> tuple[np.ndarray, Optional[np.ndarray]]:
    t = np.asarray(times, dtype=float).ravel()
    if neurons is None:
        return t, None
    n = np.asarray(neurons).ravel()
    if n.shape != t.shape:
        raise ValueError(f"times and neurons differ in length ({t.size} and {n.size})")
    if n.size and not np.issubdtype(n.dtype, np.integer):
        if not np.all(np.equal(np.mod(n, 1), 0)):
            raise ValueError("neuron indices must be integers")
        n = n.astype(np.int64)
    return t, n.astype(np.int64, copy=False)


def _check_neurons(neurons: np.ndarray, n_neurons: int) -> None:
    if n_neurons <= 0:
        raise ValueError(f"n_neurons must be > 0, got {n_neurons}")
    if neurons.size and (neurons.min() < 0 or neurons.max() >= n_neurons):
        raise ValueError(f"neuron indices must lie in [0, {n_neurons}), got [{neurons.min()}, {neurons.max()}]")


def _bins(times: np.ndarray, duration: float, bin_ms: float) -> tuple[np.ndarray, int]:
    """Bin index of each spike (``-1`` outside ``[0, n_bins * bin_ms)``) and the number of whole bins."""
    if bin_ms <= 0:
        raise ValueError(f"bin_ms must be > 0, got {bin_ms}")
    n_bins = int(math.floor(duration / bin_ms + 1e-9))
    if n_bins < 1:
        raise ValueError(f"duration {duration} ms holds no whole bin of {bin_ms} ms")
    index = np.floor(times / bin_ms + 1e-9).astype(np.int64)
    index[(index < 0) | (index >= n_bins) | (times < 0)] = -1
    return index, n_bins


def spikes_of(data: dict, trial: int = 0, t_start: float = 0.0,
              t_stop: Optional[float] = None) -> tuple[np.ndarray, np.ndarray]:
    """``(times, neurons)`` of one trial of a spike monitor's data (``sim.monitor(name)``), keeping the spikes
    in ``[t_start, t_stop)`` with times shifted so that ``t_start`` becomes 0 (to drop a transient)."""
    t = np.asarray(data["t"], dtype=float)
    n = np.asarray(data["neuron"], dtype=np.int64)
    keep = t >= t_start
    if data.get("trial") is not None:
        keep &= np.asarray(data["trial"]) == trial
    if t_stop is not None:
        keep &= t < t_stop
    return t[keep] - t_start, n[keep]


# ------------------------------------------------------------------------------------------ rates
def mean_rate(times: Sequence[float], n_neurons: int, duration: float) -> float:
    """Mean firing rate (Hz) of a population of ``n_neurons``: ``len(times) / (n_neurons * duration / 1000)``."""
    if n_neurons <= 0 or duration <= 0:
        raise ValueError(f"n_neurons and duration must be > 0, got {n_neurons} and {duration}")
    return float(np.size(times)) / (n_neurons * duration / 1000.0)


def firing_rates(neurons: Sequence[int], n_neurons: int, duration: float) -> np.ndarray:
    """Rate (Hz) of each neuron, ``[n_neurons]``: its spike count over ``duration`` ms."""
    if duration <= 0:
        raise ValueError(f"duration must be > 0, got {duration}")
    n = np.asarray(neurons, dtype=np.int64).ravel()
    _check_neurons(n, n_neurons)
    return np.bincount(n, minlength=n_neurons).astype(float) / (duration / 1000.0)


def population_rate(times: Sequence[float], n_neurons: int, duration: float,
                    bin_ms: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Population rate (Hz) in bins: ``(t, rate)`` with ``t`` the bins' left edges (ms) and
    ``rate[b] = spikes in bin b / (n_neurons * bin_ms / 1000)``. Only whole bins in ``[0, duration)`` count."""
    if n_neurons <= 0:
        raise ValueError(f"n_neurons must be > 0, got {n_neurons}")
    t, _ = _arrays(times)
    index, n_bins = _bins(t, duration, bin_ms)
    counts = np.bincount(index[index >= 0], minlength=n_bins)
    return np.arange(n_bins) * bin_ms, counts / (n_neurons * bin_ms / 1000.0)


# ------------------------------------------------------------------------------------------ irregularity
def isi_cv(times: Sequence[float], neurons: Sequence[int], n_neurons: int, min_spikes: int = 3,
           ddof: int = 0) -> tuple[np.ndarray, float]:
    """Coefficient of variation of the interspike intervals of each neuron.

    Returns ``(cv, mean_cv)``: ``cv[i] = std(ISI_i) / mean(ISI_i)`` (``ddof`` as in ``numpy.std``) for every
    neuron with at least ``min_spikes`` spikes (so ``min_spikes - 1`` intervals), ``nan`` for the others; and
    the mean over the neurons that have one (``nan`` when none has). Spikes need not be sorted.

    For ``n`` intervals of a Poisson train the estimate scatters around 1 with a standard deviation of about
    ``1/sqrt(n)``; a periodic train gives 0.
    """
    if min_spikes < 2 + ddof:
        raise ValueError(f"min_spikes must be >= {2 + ddof} (at least {1 + ddof} interval(s)), got {min_spikes}")
    t, n = _arrays(times, neurons)
    _check_neurons(n, n_neurons)
    order = np.lexsort((t, n))
    t, n = t[order], n[order]
    same = n[1:] == n[:-1]
    isi = (t[1:] - t[:-1])[same]
    owner = n[1:][same]
    count = np.bincount(owner, minlength=n_neurons).astype(float)
    total = np.bincount(owner, weights=isi, minlength=n_neurons)
    cv = np.full(n_neurons, np.nan)
    ok = count >= max(min_spikes - 1, 1)
    mean = total[ok] / count[ok]
    # second moment about the neuron's own mean (two passes: no cancellation for long regular trains)
    dev = isi - (total / np.maximum(count, 1.0))[owner]
    ss = np.bincount(owner, weights=dev * dev, minlength=n_neurons)[ok]
    var = ss / np.maximum(count[ok] - ddof, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        cv[ok] = np.where(mean > 0, np.sqrt(var) / mean, np.nan)
    valid = np.isfinite(cv)
    return cv, float(cv[valid].mean()) if valid.any() else float("nan")


# ------------------------------------------------------------------------------------------ synchrony
def _bin_counts(times: np.ndarray, neurons: np.ndarray, duration: float, bin_ms: float, n_neurons: int):
    """Sparse spike counts: per-bin population counts ``[n_bins]``, per-neuron totals ``[n_neurons]`` and
    ``sum_{i,b} c_ib^2`` (without building the ``N x bins`` matrix)."""
    index, n_bins = _bins(times, duration, bin_ms)
    inside = index >= 0
    index, neurons = index[inside], neurons[inside]
    population = np.bincount(index, minlength=n_bins).astype(float)
    per_neuron = np.bincount(neurons, minlength=n_neurons).astype(float)
    _, c = np.unique(neurons * n_bins + index, return_counts=True)
    return population, per_neuron, float(np.sum(c.astype(float) ** 2)), n_bins


def population_fano(times: Sequence[float], duration: float, bin_ms: float = 1.0) -> float:
    """Fano factor ``Var_b[C_b] / E_b[C_b]`` of the population spike count ``C_b`` per bin of ``bin_ms`` over
    ``[0, duration)``: 1 for independent Poisson neurons, larger for synchronous firing (``nan`` without spikes)."""
    t, _ = _arrays(times)
    index, n_bins = _bins(t, duration, bin_ms)
    counts = np.bincount(index[index >= 0], minlength=n_bins).astype(float)
    mean = counts.mean()
    return float(counts.var() / mean) if mean > 0 else float("nan")


def synchrony_chi(times: Sequence[float], neurons: Sequence[int], n_neurons: int, duration: float,
                  bin_ms: float = 2.0) -> float:
    """Golomb's synchrony measure ``chi`` on spike counts in bins of ``bin_ms`` over ``[0, duration)``.

    ``chi^2 = Var_b[(1/N) sum_i c_ib] / ((1/N) sum_i Var_b[c_ib])`` with ``N = n_neurons`` (silent neurons
    included, as constant zero signals): 1 for identical trains, ``~1/sqrt(N)`` for independent ones (see the
    module docstring). Returns ``nan`` when no neuron fires. Variances are population variances over bins.
    """
    t, n = _arrays(times, neurons)
    _check_neurons(n, n_neurons)
    population, per_neuron, sum_sq, n_bins = _bin_counts(t, n, duration, bin_ms, n_neurons)
    var_mean = (population / n_neurons).var()
    # (1/N) sum_i Var_b[c_ib] = (1/N) sum_i (E_b[c_ib^2] - E_b[c_ib]^2)
    mean_var = (sum_sq / n_bins - float(np.sum((per_neuron / n_bins) ** 2))) / n_neurons
    if mean_var <= 0:
        return float("nan")
    return float(math.sqrt(max(var_mean, 0.0) / mean_var))


# ------------------------------------------------------------------------------------------ theory
def _erfcx(x: np.ndarray) -> np.ndarray:
    """The scaled complementary error function ``e^{x^2} erfc(x)`` (stable for large ``|x|``)."""
    import torch

    return torch.special.erfcx(torch.as_tensor(np.asarray(x, dtype=float), dtype=torch.float64)).numpy()


def _grid(a: float, b: float, per_unit: int = 2000) -> np.ndarray:
    return np.linspace(a, b, max(int(abs(b - a) * per_unit), 64) + 1)


def lif_rate(mu: float, sigma: float, tau: float = 20.0, theta: float = 20.0, v_reset: float = 10.0,
             t_ref: float = 2.0) -> float:
    """Stationary rate (Hz) of a LIF neuron under white noise of mean ``mu`` and s.d. ``sigma`` (mV), membrane
    ``tau`` and refractory ``t_ref`` in ms (Siegert / Amit & Brunel 1997; Brunel 2000 eq. 21)::

        1/nu = t_ref + tau sqrt(pi) int_{(V_r - mu)/sigma}^{(theta - mu)/sigma} e^{u^2} (1 + erf u) du

    (``e^{u^2} (1 + erf u) = erfcx(-u)``, integrated by the trapezoidal rule on a fine grid).
    """
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    y_r, y_th = (v_reset - mu) / sigma, (theta - mu) / sigma
    u = _grid(y_r, y_th)
    with np.errstate(over="ignore"):      # far below threshold e^{u^2} overflows: the rate is 0
        integral = float(np.trapezoid(_erfcx(-u), u))
    return 1000.0 / (t_ref + tau * math.sqrt(math.pi) * integral)


def lif_cv(mu: float, sigma: float, tau: float = 20.0, theta: float = 20.0, v_reset: float = 10.0,
           t_ref: float = 2.0) -> float:
    """ISI coefficient of variation of the LIF neuron of :func:`lif_rate` (Brunel 2000, eq. A.6)::

        CV^2 = 2 pi (nu tau)^2 int_{y_r}^{y_theta} e^{x^2} dx int_{-inf}^{x} e^{y^2} (1 + erf y)^2 dy
    """
    nu = lif_rate(mu, sigma, tau, theta, v_reset, t_ref) / 1000.0  # 1/ms
    if nu == 0.0:
        return float("nan")
    y_r, y_th = (v_reset - mu) / sigma, (theta - mu) / sigma
    # I(x) = e^{x^2} int_{-inf}^{x} e^{y^2} (1 + erf y)^2 dy = e^{x^2} int_{-inf}^{x} e^{-y^2} erfcx(-y)^2 dy, kept in
    # logarithms (cumulative log-sum-exp of the trapezoids): e^{x^2} overflows and the integral underflows for
    # strongly suprathreshold inputs (y of -100s), although their product is moderate (~1 / (2 pi |x|^3)).
    # The integrand is negligible 10 below min(y_r, 0).
    y = _grid(min(y_r, 0.0) - 10.0, y_th)
    log_g = -y * y + 2.0 * np.log(_erfcx(-y))
    log_segment = np.log(np.diff(y) / 2.0) + np.logaddexp(log_g[1:], log_g[:-1])
    log_cumulative = np.concatenate([[-np.inf], np.logaddexp.accumulate(log_segment)])
    outer = y >= y_r - 1e-12
    x = y[outer]
    integral = float(np.trapezoid(np.exp(x * x + log_cumulative[outer]), x))
    return math.sqrt(2.0 * math.pi * (nu * tau) ** 2 * integral)


def nu_threshold(theta: float = 20.0, J: float = 0.1, C_E: int = 1000, tau: float = 20.0) -> float:
    """Brunel's ``nu_thr = theta / (J C_E tau)`` (Hz): the external rate that brings the mean input of a free
    membrane to threshold."""
    return theta / (J * C_E * tau) * 1000.0


def brunel_moments(nu: float, g: float, nu_ext: float, J: float = 0.1, C_E: int = 1000, gamma: float = 0.25,
                   tau: float = 20.0) -> tuple[float, float]:
    """``(mu, sigma)`` in mV of the input of a neuron of Brunel's model A when every neuron fires at ``nu`` Hz and
    the external sources at ``nu_ext`` Hz (``C_E`` of them, weight ``J``; ``C_I = gamma C_E`` inhibitory inputs
    of ``-g J``)."""
    nu_ms, ext_ms = nu / 1000.0, nu_ext / 1000.0
    mu = C_E * J * tau * (ext_ms + nu_ms * (1.0 - g * gamma))
    sigma2 = C_E * J * J * tau * (ext_ms + nu_ms * (1.0 + g * g * gamma))
    return mu, math.sqrt(sigma2)


def brunel_rate(g: float, eta: float, J: float = 0.1, C_E: int = 1000, gamma: float = 0.25, tau: float = 20.0,
                theta: float = 20.0, v_reset: float = 10.0, t_ref: float = 2.0) -> dict:
    """The stationary (asynchronous-state) solution of Brunel's model A at ``(g, eta = nu_ext / nu_thr)``.

    Solves ``nu = lif_rate(mu(nu), sigma(nu))`` by bisection on ``[0, 1/t_ref)`` (the lowest root when there
    are several, as for ``g < 4``). Returns ``{"rate", "cv", "mu", "sigma", "nu_ext"}`` (Hz, mV).
    """
    nu_ext = eta * nu_threshold(theta, J, C_E, tau)

    def excess(nu: float) -> float:
        mu, sigma = brunel_moments(nu, g, nu_ext, J, C_E, gamma, tau)
        return lif_rate(mu, sigma, tau, theta, v_reset, t_ref) - nu

    top = 1000.0 / t_ref * (1 - 1e-9)
    grid = np.linspace(0.0, top, 201)
    values = [excess(v) for v in grid]
    lo = hi = None
    for a, b, fa, fb in zip(grid[:-1], grid[1:], values[:-1], values[1:]):
        if fa == 0:
            lo = hi = a
            break
        if fa > 0 >= fb:
            lo, hi = a, b
            break
    if lo is None:
        raise ValueError(f"no stationary rate found for g={g}, eta={eta}")
    for _ in range(60):
        if hi - lo < 1e-9:
            break
        mid = 0.5 * (lo + hi)
        if excess(mid) > 0:
            lo = mid
        else:
            hi = mid
    nu = float(0.5 * (lo + hi))
    mu, sigma = brunel_moments(nu, g, nu_ext, J, C_E, gamma, tau)
    return {"rate": nu, "cv": lif_cv(mu, sigma, tau, theta, v_reset, t_ref), "mu": mu, "sigma": sigma,
            "nu_ext": nu_ext}
