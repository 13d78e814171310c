"""From events (:class:`~braincore.data.events.Events`) to the dense spike tensors a network steps through, and
the augmentations event datasets are trained with.

Binning
-------
:func:`bin_events` turns one sample into a ``[T, C]`` array: ``T`` time bins, ``C = width * height *
polarities`` channels (the ``units`` of SHD/SSC, whose sensor is ``(700, 1, 1)``). The channel of an event is

.. math::  c = (p \\cdot H + y) \\cdot W + x,

so ``out.reshape(T, P, H, W)`` is the usual ``[T, polarity, row, column]`` frame stack. The bin of an event at
time ``t`` (µs) is :math:`k = \\lfloor (t - t_0) / w \\rfloor` with ``t0 = t_start_us`` (default 0) and bin width
``w``:

* ``bin_ms`` given: ``w = 1000 * bin_ms`` µs; ``T = n_bins`` if given, else ``ceil(duration_us / w)`` if given,
  else just enough bins for the last event, ``floor((t_max - t0) / w) + 1``.
* only ``n_bins`` given: the window ``[t0, t0 + D]`` (``D = duration_us``, default ``t_max - t0``) is cut into
  ``n_bins`` equal bins, ``w = D / n_bins``; an event exactly at ``t0 + D`` goes into the last bin.

Events before ``t0`` or past the last bin are dropped. ``mode="count"`` gives the number of events per bin and
channel; ``mode="binary"`` gives ``min(count, 1)``. ``downsample = (s_x, s_y)`` (or one integer for both; for SHD
use ``(s, 1)``) first maps ``x -> x // s_x``, ``y -> y // s_y`` on a ``ceil(W / s_x) x ceil(H / s_y)`` sensor
(:func:`downsample_events`), summing the counts of the pooled pixels.

:func:`collate_events` (or the picklable :class:`EventCollate`, for a ``torch.utils.data.DataLoader`` with
workers) bins a batch of ``(Events, label)`` pairs and stacks them time-major: a ``float32`` tensor
``[T, B, C]`` (samples with fewer bins are zero-padded at the end) and ``int64`` labels ``[B]``.

Augmentations
-------------
Each takes the events and (where random) a ``numpy.random.Generator``, and returns new :class:`Events`; the same
generator state gives the same result.

* :func:`time_jitter`: :math:`t' = t + \\sigma \\varepsilon`, :math:`\\varepsilon \\sim \\mathcal N(0, 1)` per
  event (``sigma_us`` in µs); events pushed before 0 are dropped (``clip_negative``), the rest re-sorted by time.
* :func:`channel_shift`: one integer shift :math:`s \\sim \\mathcal U\\{-m, \\dots, m\\}` per sample added to
  ``x`` (or ``y``), events shifted off the sensor dropped: the random channel shift used for SHD
  (Cramer et al. 2020).
* :func:`drop_events`: removes exactly ``round(fraction * n)`` events chosen uniformly without replacement.
* :func:`time_stretch`: :math:`t' = a t` (``a > 1`` slows the sample down); :func:`random_time_stretch` draws
  :math:`a \\sim \\mathcal U[\\text{low}, \\text{high})`.
"""
from __future__ import annotations

import math
from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import ConfigError
from .events import Events

__all__ = [
    "EventCollate",
    "bin_events",
    "channel_shift",
    "collate_events",
    "downsample_events",
    "drop_events",
    "random_time_stretch",
    "time_jitter",
    "time_stretch",
]

Downsample = Union[int, Tuple[int, int]]


def _factors(downsample: Downsample) -> Tuple[int, int]:
    if isinstance(downsample, (int, np.integer)):
        sx = sy = int(downsample)
    else:
        sx, sy = (int(v) for v in downsample)
    if sx < 1 or sy < 1:
        raise ConfigError(f"downsample factors must be >= 1, got {downsample!r}")
    return sx, sy


def downsample_events(events: Events, downsample: Downsample) -> Events:
    """Pool pixels: ``x // s_x``, ``y // s_y`` on a ``ceil(W / s_x) x ceil(H / s_y)`` sensor (polarities kept).

    ``downsample`` is ``(s_x, s_y)`` or one integer for both; on 1-D data (height 1, e.g. SHD) an integer pools
    channels only (``s_y = 1``)."""
    w, h, npol = events.sensor_size
    sx, sy = _factors(downsample)
    if h == 1 and isinstance(downsample, (int, np.integer)):
        sy = 1
    if sx == sy == 1:
        return events
    return events.replace(x=events.x // sx, y=events.y // sy,
                          sensor_size=(math.ceil(w / sx), math.ceil(h / sy), npol))


def _check_on_sensor(events: Events) -> None:
    w, h, npol = events.sensor_size
    for name, arr, hi in (("x", events.x, w), ("y", events.y, h), ("p", events.p, npol)):
        if arr.size and (int(arr.min()) < 0 or int(arr.max()) >= hi):
            raise ConfigError(f"bin_events: {name} must lie in 0..{hi - 1} on the {w}x{h}x{npol} sensor, got "
                              f"{int(arr.min())}..{int(arr.max())}")


def bin_events(events: Events, *, n_bins: Optional[int] = None, bin_ms: Optional[float] = None,
               t_start_us: Optional[float] = 0.0, duration_us: Optional[float] = None, mode: str = "count",
               downsample: Downsample = 1, dtype: Any = np.float32) -> np.ndarray:
    """Bin one sample into a dense ``[T, C]`` array (see the module docstring for the bin rule).

    Args:
        events: the sample.
        n_bins: the number of time bins ``T``.
        bin_ms: the bin width in ms (at least one of ``n_bins`` and ``bin_ms`` is required).
        t_start_us: ``t0``, the start of the first bin, µs; ``None`` = the first event's time.
        duration_us: the window length, µs (defaults: see the module docstring).
        mode: ``"count"`` (events per bin and channel) or ``"binary"`` (0/1).
        downsample: spatial pooling factor(s), see :func:`downsample_events`.
        dtype: the output dtype.

    Returns:
        ``[T, C]`` with ``C = W * H * P`` of the (downsampled) sensor and channel ``(p * H + y) * W + x``.

    Raises:
        ConfigError: neither ``n_bins`` nor ``bin_ms``, non-positive sizes, an unknown ``mode``, or events off the
            sensor.
    """
    if mode not in ("count", "binary"):
        raise ConfigError(f"bin_events: mode must be 'count' or 'binary', got {mode!r}")
    if n_bins is None and bin_ms is None:
        raise ConfigError("bin_events: give n_bins (number of time bins) or bin_ms (bin width in ms), or both")
    if n_bins is not None and int(n_bins) < 1:
        raise ConfigError(f"bin_events: n_bins must be >= 1, got {n_bins}")
    if bin_ms is not None and not bin_ms > 0:
        raise ConfigError(f"bin_events: bin_ms must be > 0, got {bin_ms}")
    if duration_us is not None and not duration_us >= 0:
        raise ConfigError(f"bin_events: duration_us must be >= 0, got {duration_us}")
    events = downsample_events(events, downsample)
    _check_on_sensor(events)
    n_ch = events.num_channels
    t = events.t
    t0 = (float(t.min()) if t.size else 0.0) if t_start_us is None else float(t_start_us)
    rel = t - t0
    if bin_ms is not None:
        width = 1000.0 * float(bin_ms)
        if n_bins is not None:
            T = int(n_bins)
        elif duration_us is not None:
            T = max(1, math.ceil(float(duration_us) / width))
        else:
            T = int(np.floor(rel.max() / width)) + 1 if rel.size and rel.max() >= 0 else 0
        k = np.floor(rel / width).astype(np.int64)
        keep = (rel >= 0) & (k < T)
    else:
        assert n_bins is not None
        T = int(n_bins)
        span = float(duration_us) if duration_us is not None else (float(rel.max()) if rel.size else 0.0)
        if span > 0:
            k = np.floor(rel * (T / span)).astype(np.int64)
            keep = (rel >= 0) & (rel <= span)
            k = np.minimum(k, T - 1)
        else:  # a zero-length window: everything at t0 goes into the first bin
            k = np.zeros(rel.size, dtype=np.int64)
            keep = rel == 0
    w, h, _ = events.sensor_size
    ch = (events.p[keep].astype(np.int64) * h + events.y[keep]) * w + events.x[keep]
    counts = np.bincount(k[keep] * n_ch + ch, minlength=T * n_ch).reshape(T, n_ch)
    if mode == "binary":
        counts = np.minimum(counts, 1)
    return counts.astype(dtype, copy=False)


def collate_events(batch: Sequence[Any], *, n_bins: Optional[int] = None, bin_ms: Optional[float] = None,
                   t_start_us: Optional[float] = 0.0, duration_us: Optional[float] = None, mode: str = "count",
                   downsample: Downsample = 1):
    """Bin a batch and stack it time-major.

    Args:
        batch: ``(Events, label)`` pairs (what the dataset classes of :mod:`braincore.data.events` return) or
            :class:`Events` carrying their ``label``.
        others: as in :func:`bin_events`.

    Returns:
        ``(spikes, labels)``: a ``torch.float32`` tensor ``[T, B, C]`` (``T`` the longest sample's bins, shorter
        ones zero-padded at the end) and a ``torch.int64`` tensor ``[B]`` (``-1`` for samples without a label).
    """
    import torch

    frames: List[np.ndarray] = []
    labels: List[int] = []
    for item in batch:
        if isinstance(item, Events):
            ev, lab = item, item.label
        else:
            ev, lab = item
        frames.append(bin_events(ev, n_bins=n_bins, bin_ms=bin_ms, t_start_us=t_start_us, duration_us=duration_us,
                                 mode=mode, downsample=downsample))
        labels.append(-1 if lab is None else int(lab))
    if not frames:
        raise ConfigError("collate_events: empty batch")
    widths = {f.shape[1] for f in frames}
    if len(widths) != 1:
        raise ConfigError(f"collate_events: samples have different channel counts {sorted(widths)} (different "
                          f"sensors?)")
    T = max(f.shape[0] for f in frames)
    out = np.zeros((T, len(frames), frames[0].shape[1]), dtype=np.float32)
    for b, f in enumerate(frames):
        out[: f.shape[0], b] = f
    return torch.from_numpy(out), torch.as_tensor(labels, dtype=torch.int64)


class EventCollate:
    """:func:`collate_events` with fixed binning arguments, as a picklable callable for
    ``DataLoader(..., collate_fn=EventCollate(n_bins=100, bin_ms=10))``."""

    def __init__(self, **kwargs: Any):
        bin_events(Events.empty(), **{k: v for k, v in kwargs.items()})  # check the arguments now
        self.kwargs = kwargs

    def __call__(self, batch: Sequence[Any]):
        return collate_events(batch, **self.kwargs)

    def __repr__(self) -> str:
        return f"EventCollate({', '.join(f'{k}={v!r}' for k, v in self.kwargs.items())})"


# ----------------------------------------------------------------------------------------------------------------
# augmentations


def time_jitter(events: Events, sigma_us: float, rng: np.random.Generator, *, clip_negative: bool = True,
                sort: bool = True) -> Events:
    """Add independent Gaussian noise to each time: ``t' = t + sigma_us * rng.standard_normal(n)`` (µs).

    With ``clip_negative`` events pushed before 0 µs are dropped; with ``sort`` the result is in time order."""
    if sigma_us < 0:
        raise ConfigError(f"time_jitter: sigma_us must be >= 0, got {sigma_us}")
    t = events.t + float(sigma_us) * rng.standard_normal(len(events))
    out = events.replace(t=t)
    if clip_negative:
        out = out.select(t >= 0)
    return out.sorted() if sort else out


def channel_shift(events: Events, max_shift: int, rng: np.random.Generator, *, axis: str = "x") -> Events:
    """Shift every event of the sample by one integer ``s = rng.integers(-max_shift, max_shift + 1)`` along
    ``axis`` (``"x"``: the channel of 1-D data, the column of a camera; ``"y"``: the row); events shifted off the
    sensor (outside ``0..W-1`` or ``0..H-1``) are dropped."""
    if max_shift < 0:
        raise ConfigError(f"channel_shift: max_shift must be >= 0, got {max_shift}")
    if axis not in ("x", "y"):
        raise ConfigError(f"channel_shift: axis must be 'x' or 'y', got {axis!r}")
    s = int(rng.integers(-int(max_shift), int(max_shift) + 1))
    w, h, _ = events.sensor_size
    arr = (events.x if axis == "x" else events.y).astype(np.int64) + s
    keep = (arr >= 0) & (arr < (w if axis == "x" else h))
    return events.replace(**{axis: arr}).select(keep)


def drop_events(events: Events, fraction: float, rng: np.random.Generator) -> Events:
    """Remove exactly ``round(fraction * n)`` of the ``n`` events, chosen uniformly without replacement
    (``rng.choice``); the others keep their order."""
    if not 0.0 <= fraction <= 1.0:
        raise ConfigError(f"drop_events: fraction must be in [0, 1], got {fraction}")
    n = len(events)
    n_drop = int(round(fraction * n))
    keep = np.ones(n, dtype=bool)
    if n_drop:
        keep[rng.choice(n, size=n_drop, replace=False)] = False
    return events.select(keep)


def time_stretch(events: Events, factor: float) -> Events:
    """Scale every time by ``factor`` (``t' = factor * t``; > 1 slows the sample down, < 1 speeds it up)."""
    if not factor > 0:
        raise ConfigError(f"time_stretch: factor must be > 0, got {factor}")
    return events.replace(t=events.t * float(factor))


def random_time_stretch(events: Events, rng: np.random.Generator, low: float = 0.8, high: float = 1.2) -> Events:
    """:func:`time_stretch` by a factor ``rng.uniform(low, high)``."""
    if not 0 < low <= high:
        raise ConfigError(f"random_time_stretch: need 0 < low <= high, got {low}, {high}")
    return time_stretch(events, float(rng.uniform(low, high)))
