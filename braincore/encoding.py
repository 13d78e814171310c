"""Spike encoders (values -> spike trains) and decoders (spike trains -> values).

Every encoder returns a *time-major* tensor ``[T, *input_shape]`` (for a batch ``[B, N]`` that is
``[T, B, N]``, the layout of :meth:`braincore.neurons.base.NeuronModel.run`) of spikes 1.0 / 0.0 in ``dtype``
(float32 by default), on the device of the input. Inputs may be tensors, NumPy arrays or nested lists;
integer and boolean inputs are read as float32. The encoders are not differentiable (they sample or
threshold).

Stochastic encoders draw from a :class:`torch.Generator` when one is given (it must live on the input's
device), so ``generator=torch.Generator().manual_seed(s)`` reproduces a spike train exactly; ``None`` uses the
global RNG (``torch.manual_seed``). All ``T`` steps are drawn at once, in the working precision of the input
(float64 for float64 inputs, float32 otherwise), so equal seeds give equal trains for equal shapes and
precision.

==================  ==========================================================================================
encoder             code
==================  ==========================================================================================
:func:`rate`        Bernoulli rate code, ``P(spike at step k) = x`` (snnTorch's ``spikegen.rate``)
:func:`poisson`     Poisson-like rate code in physical units: ``P(spike) = x max_rate dt / 1000``
:func:`latency`     time to first spike: one spike, earlier for larger ``x`` (linear or RC/log mapping)
:func:`population`  Gaussian receptive fields over a range, for continuous observations (Bohte et al. 2002)
:func:`delta`       ON/OFF change (delta-modulation) events of a time series
==================  ==========================================================================================

Decoders: :func:`rate_decode` (mean over time), :func:`first_spike_time` (first spike index),
:func:`population_decode` (spike-count-weighted centre of the receptive fields).

References: Heeger, *Poisson model of spike generation* (2000); Eshraghian et al., *Training spiking neural
networks using lessons from deep learning*, Proc. IEEE 2023 (snnTorch ``spikegen``); Bohte, Kok & La Poutré,
*Error-backpropagation in temporally encoded networks of spiking neurons*, Neurocomputing 2002; Gerstner et
al., *Neuronal Dynamics* 2014, ch. 7 (rate and latency codes).
"""
from __future__ import annotations

import math
import operator
from typing import Any, Optional, Sequence, Union

import torch

Tensor = torch.Tensor
ArrayLike = Union[Tensor, float, Sequence[float], Any]

#: default ratio ``spacing / sigma`` of the population code's receptive fields (Bohte et al.'s beta = 1.5)
POPULATION_BETA = 1.5

__all__ = [
    "rate", "poisson", "latency", "population", "population_rates", "population_centres", "delta",
    "rate_decode", "first_spike_time", "population_decode", "POPULATION_BETA",
]


# --------------------------------------------------------------------------------------------------------------
# argument checks
# --------------------------------------------------------------------------------------------------------------
def _as_float(x: ArrayLike, fn: str, name: str = "x") -> Tensor:
    """``x`` as a floating tensor on its own device: float64 stays float64, everything else becomes float32."""
    if not isinstance(x, Tensor):
        try:
            x = torch.as_tensor(x)
        except (TypeError, ValueError, RuntimeError) as err:
            raise ValueError(f"{fn}: {name} must be a tensor, array or number, got {type(x).__name__}: {err}") from None
    if x.dtype != torch.float64:
        x = x.to(torch.float32)
    if torch.isnan(x).any():
        raise ValueError(f"{fn}: {name} contains NaN")
    return x


def _check_unit_interval(x: Tensor, fn: str) -> None:
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise ValueError(f"{fn}: x must lie in [0, 1] (normalised intensities), got values in "
                         f"[{x.min().item():g}, {x.max().item():g}]; rescale first, e.g. (x - lo) / (hi - lo)")


def _check_steps(num_steps: Any, fn: str) -> int:
    if isinstance(num_steps, bool):
        raise ValueError(f"{fn}: num_steps must be a positive integer, got {num_steps!r}")
    try:
        steps = operator.index(num_steps)
    except TypeError:
        raise ValueError(f"{fn}: num_steps must be a positive integer, got {num_steps!r}") from None
    if steps <= 0:
        raise ValueError(f"{fn}: num_steps must be a positive integer, got {steps}")
    return steps


def _check_positive(value: Any, fn: str, name: str, unit: str = "") -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{fn}: {name} must be a positive number{unit and ' (' + unit + ')'}, got {value!r}") from None
    if not (v > 0) or math.isinf(v):
        raise ValueError(f"{fn}: {name} must be a positive finite number{unit and ' in ' + unit}, got {value!r}")
    return v


def _check_generator(generator: Optional[torch.Generator], device: torch.device, fn: str) -> None:
    if generator is None:
        return
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"{fn}: generator must be a torch.Generator or None, got {type(generator).__name__}")
    if generator.device.type != device.type:
        raise ValueError(f"{fn}: generator is on {generator.device} but the input is on {device}; "
                         f"create it with torch.Generator(device={str(device)!r})")


def _bernoulli_train(p: Tensor, num_steps: int, generator: Optional[torch.Generator], dtype: torch.dtype) -> Tensor:
    """``[T, *p.shape]`` independent Bernoulli(p) draws: spike where a uniform draw ``u in [0, 1)`` is ``< p``.

    ``p = 0`` never spikes and ``p = 1`` always does, exactly.
    """
    u = torch.rand((num_steps, *p.shape), generator=generator, device=p.device, dtype=p.dtype)
    return (u < p).to(dtype)


# --------------------------------------------------------------------------------------------------------------
# rate codes
# --------------------------------------------------------------------------------------------------------------
def rate(x: ArrayLike, num_steps: int, *, generator: Optional[torch.Generator] = None,
         dtype: torch.dtype = torch.float32) -> Tensor:
    """Bernoulli rate code: at every one of ``num_steps`` steps each element spikes with probability ``x``.

    ``x`` (any shape, values in ``[0, 1]``) is a spike probability per *step*, as in snnTorch's
    ``spikegen.rate``; the spike count over ``T`` steps is ``Binomial(T, x)``, with mean ``T x`` and the
    firing rate ``x / dt``. For a rate in Hz independent of the step size use :func:`poisson`;
    ``rate(x, T)`` equals ``poisson(x, T, dt=1.0, max_rate=1000.0)`` draw for draw.

    Returns spikes ``[num_steps, *x.shape]`` in ``dtype`` on ``x``'s device. Raises :class:`ValueError` for
    ``x`` outside ``[0, 1]`` (it is not clipped) or a non-positive ``num_steps``.
    """
    x = _as_float(x, "rate")
    steps = _check_steps(num_steps, "rate")
    _check_unit_interval(x, "rate")
    _check_generator(generator, x.device, "rate")
    return _bernoulli_train(x, steps, generator, dtype)


def poisson(x: ArrayLike, num_steps: int, *, dt: float = 1.0, max_rate: float = 100.0,
            generator: Optional[torch.Generator] = None, dtype: torch.dtype = torch.float32) -> Tensor:
    """Poisson rate code: element ``i`` fires at ``x_i * max_rate`` Hz, discretised on steps of ``dt`` ms.

    Each step is an independent Bernoulli trial with

        p = x * max_rate * dt / 1000          (x in [0, 1], max_rate in Hz, dt in ms)

    the discrete-time approximation of a homogeneous Poisson process of rate ``lambda = x * max_rate``
    (Heeger 2000): at most one spike per step, spike counts ``Binomial(T, p)`` with mean
    ``lambda T dt / 1000``; the approximation to Poisson counts is good while ``p << 1``.

    Args:
        x: intensities in ``[0, 1]``, any shape (a clear error otherwise; values are not clipped).
        num_steps: ``T``, the number of time steps.
        dt: step size in ms (> 0).
        max_rate: the rate in Hz of an input ``x = 1`` (> 0). ``max_rate * dt / 1000`` must be ``<= 1``,
            otherwise a :class:`ValueError` (a step cannot hold more than one spike).
        generator: a seeded :class:`torch.Generator` on ``x``'s device for reproducible trains, or ``None``.
        dtype: the dtype of the returned spikes.

    Returns:
        spikes ``[num_steps, *x.shape]`` (``[T, B, N]`` for ``x`` of shape ``[B, N]``).
    """
    x = _as_float(x, "poisson")
    steps = _check_steps(num_steps, "poisson")
    dt = _check_positive(dt, "poisson", "dt", "ms")
    max_rate = _check_positive(max_rate, "poisson", "max_rate", "Hz")
    p_max = max_rate * dt / 1000.0
    if p_max > 1.0:
        raise ValueError(f"poisson: the spike probability per step max_rate * dt / 1000 = {max_rate:g} Hz * "
                         f"{dt:g} ms / 1000 = {p_max:g} exceeds 1; expected <= 1: lower max_rate "
                         f"(<= {1000.0 / dt:g} Hz at this dt) or dt (<= {1000.0 / max_rate:g} ms at this rate)")
    _check_unit_interval(x, "poisson")
    _check_generator(generator, x.device, "poisson")
    return _bernoulli_train(x * p_max, steps, generator, dtype)


# --------------------------------------------------------------------------------------------------------------
# latency code
# --------------------------------------------------------------------------------------------------------------
def latency(x: ArrayLike, num_steps: int, *, tau: float = 5.0, threshold: float = 0.01, linear: bool = False,
            normalize: Optional[bool] = None, epsilon: float = 1e-7, dtype: torch.dtype = torch.float32) -> Tensor:
    """Time-to-first-spike code: each input above ``threshold`` spikes exactly once, larger inputs earlier.

    An input ``x`` in ``[0, 1]`` is given the spike time ``t`` (in steps):

    - ``linear=True``: ``t = tau (1 - x)``; with ``normalize`` (the default in this mode) ``tau = T - 1``, i.e.
      ``t = (1 - x)(T - 1)``: ``x = 1`` spikes at step 0 and ``x -> 0`` at step ``T - 1``.
    - ``linear=False`` (RC model, as snnTorch's ``spikegen.latency``): the input is a constant current
      charging an RC membrane from 0 towards ``x`` with time constant ``tau`` (in steps); it reaches the
      threshold ``theta`` at

          t = tau ln(x / (x - theta))          (x > theta)

      With ``normalize=True`` ``tau`` is replaced by ``(T - 1) / ln((theta + epsilon) / epsilon)`` so that
      ``x = theta + epsilon`` maps to the last step (snnTorch's normalisation); the default here is
      ``normalize=False`` (``tau`` as given). The log mapping is steep only near ``theta``: with
      ``theta = 0.01``, ``x = 0.5`` gives ``t = 0.02 tau``, so most inputs spike within the first steps unless
      ``tau`` is large; use the linear mapping for an even spread over the window.

    The spike falls on step ``k = floor(t + 1/2)`` (nearest step, halves later), clipped to the window
    ``[0, T - 1]``: an input whose time lies after the window spikes on the last step. Inputs with
    ``x <= threshold`` never spike. So the output has exactly one spike along time for every element with
    ``x > threshold`` and none otherwise, and ``k`` is non-increasing in ``x``.

    Args:
        x: intensities in ``[0, 1]``, any shape.
        num_steps: ``T``.
        tau: time constant of the mapping in *steps* (> 0; multiply by ``dt`` for ms); unused when normalised.
        threshold: ``theta``, in ``[0, 1)``; must be ``> 0`` for the log mapping.
        linear: linear instead of the RC (log) mapping.
        normalize: stretch the mapping over the window (see above); ``None``: True if ``linear`` else False.
        epsilon: the offset above ``theta`` that the normalised log mapping sends to the last step (> 0).
        dtype: dtype of the returned spikes.

    Returns:
        spikes ``[num_steps, *x.shape]``; :func:`first_spike_time` recovers ``k``.
    """
    x = _as_float(x, "latency")
    steps = _check_steps(num_steps, "latency")
    _check_unit_interval(x, "latency")
    threshold = float(threshold)
    if not 0.0 <= threshold < 1.0:
        raise ValueError(f"latency: threshold must lie in [0, 1), got {threshold:g}")
    if not linear and threshold <= 0.0:
        raise ValueError("latency: the log (RC) mapping needs threshold > 0 (t = tau ln(x / (x - threshold))); "
                         f"got {threshold:g}; use linear=True for a zero threshold")
    if normalize is None:
        normalize = bool(linear)
    if normalize:
        if linear:
            tau = float(steps - 1)
        else:
            epsilon = _check_positive(epsilon, "latency", "epsilon")
            tau = (steps - 1) / math.log((threshold + epsilon) / epsilon)
    else:
        tau = _check_positive(tau, "latency", "tau", "steps")

    fires = x > threshold
    if linear:
        t = tau * (1.0 - x)
    else:
        safe = torch.where(fires, x, torch.ones_like(x))  # keep log() finite where nothing fires
        t = tau * torch.log(safe / (safe - threshold))
    k = torch.clamp(torch.floor(t + 0.5), 0, steps - 1).to(torch.long)
    grid = torch.arange(steps, device=x.device).view(steps, *([1] * x.ndim))
    return ((grid == k.unsqueeze(0)) & fires.unsqueeze(0)).to(dtype)


# --------------------------------------------------------------------------------------------------------------
# population code
# --------------------------------------------------------------------------------------------------------------
def _per_dimension(value: ArrayLike, dims: int, fn: str, name: str, like: Tensor) -> Tensor:
    """``value`` (a scalar or ``dims`` values) as a ``[dims]`` tensor in ``like``'s dtype and device."""
    try:
        t = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"{fn}: {name} must be a number or {dims} numbers, got {value!r} ({err})") from None
    if t.ndim == 0:
        t = t.expand(dims)
    elif t.ndim != 1 or t.shape[0] not in (1, dims):
        raise ValueError(f"{fn}: {name} must be a scalar or have shape [{dims}] (one value per input dimension D = "
                         f"{dims}), got shape {tuple(t.shape)}")
    else:
        t = t.expand(dims)
    if not torch.isfinite(t).all():
        raise ValueError(f"{fn}: {name} must be finite, got {value!r}")
    return t


def _check_neurons(num_neurons: Any, fn: str) -> int:
    if isinstance(num_neurons, bool):
        raise ValueError(f"{fn}: num_neurons must be an integer >= 2, got {num_neurons!r}")
    try:
        m = operator.index(num_neurons)
    except TypeError:
        raise ValueError(f"{fn}: num_neurons must be an integer >= 2, got {num_neurons!r}") from None
    if m < 2:
        raise ValueError(f"{fn}: num_neurons must be an integer >= 2 (centres are spaced over [low, high]), got {m}")
    return m


def _grid(num_neurons: int, low: ArrayLike, high: ArrayLike, dims: int, like: Tensor,
          fn: str) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(low [D], high [D], centres [D, m], spacing [D])`` of the population code."""
    lo = _per_dimension(low, dims, fn, "low", like)
    hi = _per_dimension(high, dims, fn, "high", like)
    if not (lo < hi).all():
        bad = int(torch.nonzero(~(lo < hi))[0])
        raise ValueError(f"{fn}: need low < high in every dimension, got low={lo[bad].item():g}, "
                         f"high={hi[bad].item():g} in dimension {bad}")
    spacing = (hi - lo) / (num_neurons - 1)
    j = torch.arange(num_neurons, dtype=like.dtype, device=like.device)
    centres = lo.unsqueeze(-1) + spacing.unsqueeze(-1) * j
    centres[:, -1] = hi  # exact upper edge despite rounding
    return lo, hi, centres, spacing


def population_centres(num_neurons: int, low: ArrayLike, high: ArrayLike, dims: Optional[int] = None, *,
                       dtype: torch.dtype = torch.float32, device: "torch.device | str | None" = None) -> Tensor:
    """The receptive-field centres ``c_{d,j} = low_d + j (high_d - low_d) / (m - 1)``, shape ``[D, m]``.

    ``dims`` (``D``) is needed only when ``low`` and ``high`` are both scalars (default 1).
    """
    if dims is None:
        sizes = [torch.as_tensor(v).numel() for v in (low, high)]
        dims = max(sizes)
    m = _check_neurons(num_neurons, "population_centres")
    like = torch.empty(0, dtype=dtype, device=device)
    return _grid(m, low, high, dims, like, "population_centres")[2]


def population_rates(x: ArrayLike, num_neurons: int, low: ArrayLike, high: ArrayLike, *,
                     sigma: Optional[ArrayLike] = None) -> Tensor:
    """Deterministic Gaussian receptive-field intensities in ``[0, 1]`` (Bohte, Kok & La Poutré 2002 style).

    Each of the ``D`` input dimensions (the last axis of ``x``) is covered by ``m = num_neurons`` neurons whose
    centres are evenly spaced over ``[low_d, high_d]``, edges included::

        c_{d,j} = low_d + j * s_d,     s_d = (high_d - low_d) / (m - 1),     j = 0 .. m - 1
        r_{d,j}(x) = exp(-(clip(x_d, low_d, high_d) - c_{d,j})^2 / (2 sigma_d^2))

    ``sigma`` defaults to ``s_d / 1.5`` (Bohte et al.'s ``beta = 1.5``, :data:`POPULATION_BETA`), so neighbouring
    fields cross at ``exp(-9/32) ~ 0.75``. Values outside ``[low, high]`` are clipped to the nearest edge (they
    drive the edge neuron maximally), so out-of-range observations, e.g. an unbounded ``Box`` component, stay
    encodable. (Bohte et al. place the centres partly outside the range instead; here they lie on it so that
    :func:`population_decode` recovers the edges.)

    Args:
        x: values ``[..., D]``, e.g. a batch of RL observations ``[B, D]``.
        num_neurons: ``m >= 2`` neurons per dimension.
        low, high: the range, scalars or ``D`` values (``low < high``).
        sigma: field width in the units of ``x``, a scalar or ``D`` values (> 0); ``None`` for ``s_d / 1.5``.

    Returns:
        intensities ``[..., D * m]``; neuron ``d * m + j`` belongs to dimension ``d`` and centre ``j``.
    """
    x = _as_float(x, "population_rates")
    if x.ndim == 0:
        raise ValueError("population_rates: x must have shape [..., D] (e.g. [B, D]), got a scalar")
    m = _check_neurons(num_neurons, "population_rates")
    dims = x.shape[-1]
    lo, hi, centres, spacing = _grid(m, low, high, dims, x, "population_rates")
    if sigma is None:
        sd = spacing / POPULATION_BETA
    else:
        sd = _per_dimension(sigma, dims, "population_rates", "sigma", x)
        if not (sd > 0).all():
            raise ValueError(f"population_rates: sigma must be > 0, got {sigma!r}")
    xc = torch.minimum(torch.maximum(x, lo), hi)
    r = torch.exp(-((xc.unsqueeze(-1) - centres) ** 2) / (2.0 * sd.unsqueeze(-1) ** 2))
    return r.reshape(*x.shape[:-1], dims * m)


def population(x: ArrayLike, num_neurons: int, low: ArrayLike, high: ArrayLike, num_steps: int, *,
               sigma: Optional[ArrayLike] = None, max_rate: float = 100.0, dt: float = 1.0,
               generator: Optional[torch.Generator] = None, dtype: torch.dtype = torch.float32) -> Tensor:
    """Stochastic population code: Gaussian receptive fields driving Poisson neurons.

    The intensities ``r`` of :func:`population_rates` set each neuron's spike probability per step

        p = r * p_max,        p_max = max_rate * dt / 1000       (max_rate in Hz, dt in ms; p_max <= 1)

    i.e. ``population(x, ...) == poisson(population_rates(x, ...), num_steps, dt=dt, max_rate=max_rate)``.
    A batch of observations ``[B, D]`` becomes ``[T, B, D * num_neurons]`` (in general ``[..., D]`` ->
    ``[T, ..., D * num_neurons]``, neuron ``d * m + j`` for dimension ``d``, centre ``j``). Values outside
    ``[low, high]`` are clipped to the edges. Decode with :func:`population_decode`.
    """
    r = population_rates(x, num_neurons, low, high, sigma=sigma)
    return poisson(r, num_steps, dt=dt, max_rate=max_rate, generator=generator, dtype=dtype)


# --------------------------------------------------------------------------------------------------------------
# delta modulation
# --------------------------------------------------------------------------------------------------------------
def delta(x_seq: ArrayLike, threshold: float, off_spikes: bool = True, *, dtype: torch.dtype = torch.float32) -> Tensor:
    """Delta (change) modulation of a time series ``[T, B, N]`` (any ``[T, ..., N]``).

    A reference ``r`` starts at the first sample ``x[0]`` (step 0 never spikes). At each later step ``k``:

    - ON spike where ``x[k] - r >= threshold``,
    - OFF spike where ``r - x[k] >= threshold``,

    and where either fires the reference moves to the current sample, ``r <- x[k]``. So a slow drift is
    accumulated until it amounts to ``threshold``, and a channel emits at most one event per step (a jump of
    several thresholds gives one event, not several). The reference is updated on falls also when
    ``off_spikes=False``; only the OFF events are dropped.

    Returns ``[T, ..., 2N]`` with the ON channels first (``0 .. N-1``) and the OFF channels after
    (``N .. 2N-1``) when ``off_spikes`` is true, otherwise the ON channels ``[T, ..., N]``.
    """
    x = _as_float(x_seq, "delta", "x_seq")
    if x.ndim < 2:
        raise ValueError(f"delta: x_seq must be a time series [T, B, N] (time first, at least 2-D), "
                         f"got shape {tuple(x.shape)}")
    threshold = _check_positive(threshold, "delta", "threshold")
    ref = x[0].clone()
    on = torch.zeros_like(x, dtype=torch.bool)
    off = torch.zeros_like(x, dtype=torch.bool)
    for k in range(1, x.shape[0]):
        change = x[k] - ref
        on[k] = change >= threshold
        off[k] = -change >= threshold
        ref = torch.where(on[k] | off[k], x[k], ref)
    out = torch.cat([on, off], dim=-1) if off_spikes else on
    return out.to(dtype)


# --------------------------------------------------------------------------------------------------------------
# decoders
# --------------------------------------------------------------------------------------------------------------
def _as_spikes(spikes: ArrayLike, fn: str) -> Tensor:
    if not isinstance(spikes, Tensor):
        spikes = torch.as_tensor(spikes)
    if spikes.ndim < 1 or spikes.shape[0] == 0:
        raise ValueError(f"{fn}: spikes must be time-major [T, ...] with T >= 1, got shape {tuple(spikes.shape)}")
    return spikes


def rate_decode(spikes: ArrayLike) -> Tensor:
    """Mean over time of spikes ``[T, ...]``: the spike probability per step, shape ``[...]``.

    Floating inputs keep their dtype; others give float32. Divide by ``dt / 1000`` for a rate in Hz.
    """
    s = _as_spikes(spikes, "rate_decode")
    if not s.is_floating_point():
        s = s.to(torch.float32)
    return s.mean(dim=0)


def first_spike_time(spikes: ArrayLike) -> Tensor:
    """Index of the first nonzero step of spikes ``[T, ...]``, ``T`` where there is none; int64 ``[...]``.

    The inverse of :func:`latency` for its spiking elements.
    """
    s = _as_spikes(spikes, "first_spike_time")
    steps = s.shape[0]
    grid = torch.arange(steps, device=s.device).view(steps, *([1] * (s.ndim - 1)))
    return torch.where(s != 0, grid, torch.full_like(grid, steps)).amin(dim=0)


def population_decode(spikes: ArrayLike, low: ArrayLike, high: ArrayLike, num_neurons: int) -> Tensor:
    """Estimate the encoded values from population spikes ``[T, ..., D * m]``: shape ``[..., D]``.

    The estimate of dimension ``d`` is the spike-count-weighted mean of its neurons' centres,
    ``sum_j n_{d,j} c_{d,j} / sum_j n_{d,j}`` (``n`` = spike counts over time), with the centres of
    :func:`population_rates` for the same ``low``, ``high`` and ``num_neurons``. It is NaN where a dimension
    received no spike. Near the range edges the estimate is pulled inwards (the fields are one-sided there) by
    at most about a quarter spacing with the default width. To decode deterministic intensities ``r`` pass
    ``r.unsqueeze(0)``.
    """
    s = _as_spikes(spikes, "population_decode")
    if s.ndim < 2:
        raise ValueError(f"population_decode: spikes must be [T, ..., D * num_neurons], got shape {tuple(s.shape)}")
    m = _check_neurons(num_neurons, "population_decode")
    if s.shape[-1] % m:
        raise ValueError(f"population_decode: the last axis ({s.shape[-1]}) must be D * num_neurons with "
                         f"num_neurons = {m}; got a size not divisible by {m}")
    counts = s.to(torch.float64 if s.dtype == torch.float64 else torch.float32).sum(dim=0)
    dims = s.shape[-1] // m
    counts = counts.reshape(*counts.shape[:-1], dims, m)
    centres = _grid(m, low, high, dims, counts, "population_decode")[2]
    total = counts.sum(dim=-1)
    return (counts * centres).sum(dim=-1) / total
