"""An offline event-camera dataset made from MNIST images by simulated saccades, the way N-MNIST was recorded.

N-MNIST (Orchard, Jayawant, Cohen & Thakor 2015, "Converting static image datasets to spiking neuromorphic
datasets using saccades", Front. Neurosci. 9:437) was recorded by an ATIS camera on a pan-tilt unit looking at
each MNIST digit on a monitor while the camera made three saccades, linear motions along the sides of a
triangle, about 100 ms each (300 ms in all); the digits appear on a 34 x 34 pixel window. This module simulates
that recording:

1. **Motion.** The 28 x 28 image moves over a 34 x 34 sensor along the triangle with corners (pixels, the
   offset of the image's top-left corner) ``A = (1, 5)``, ``B = (3, 1)``, ``C = (5, 5)`` (scaled by
   ``amplitude``; the default keeps the digit inside the sensor): ``A -> B`` in the first ``saccade_ms``,
   ``B -> C`` in the second, ``C -> A`` in the third, at constant speed. Frames are rendered every ``dt_us``
   µs (default 1000), the image moved by sub-pixel amounts with bilinear interpolation; outside the image is
   black (0).
2. **Pixels.** Each sensor pixel sees the intensity ``I`` in ``[0, 1]`` (``uint8 / 255``) and responds to its
   log-intensity ``L = log(I + eps)`` (``eps`` default 0.1, the dark level). Like a DVS/ATIS pixel (Lichtsteiner,
   Posch & Delbruck 2008) it keeps the level ``L_ref`` of its last event (initially ``L`` at ``t = 0``) and emits
   an **ON** event each time ``L`` has risen by the contrast threshold ``C`` above it and an **OFF** event each
   time it has fallen by ``C`` below it, moving ``L_ref`` by ``C`` per event; a change of ``k C`` between two
   frames gives ``k`` events. With ``threshold_sigma > 0`` each pixel gets its own fixed threshold
   ``C_ij = max(C + threshold_sigma * N(0, 1), C / 10)`` (threshold mismatch, from the seeded ``rng``).
3. **Times.** ``L`` is taken to vary linearly between frames, so the ``j``-th crossing between frames at
   ``t_f`` and ``t_{f+1}`` is timestamped ``t_f + dt_us * (L_ref + j C - L_f) / (L_{f+1} - L_f)`` µs (for ON;
   mirrored for OFF). All times lie in ``[0, 3 * saccade_ms * 1000]`` µs.

Because the path returns to its start, ``L`` at 300 ms equals ``L`` at 0, and each pixel emits as many ON as OFF
events. A blank image gives no events.

:func:`saccade_events` converts ``uint8 [N, 28, 28]`` images into a list of
:class:`~braincore.data.events.Events` (vectorised over images and pixels, in chunks);
:func:`write_saccade_dataset` writes them as N-MNIST ``.bin`` files in the ``Train/<digit>/<id>.bin`` layout that
:class:`~braincore.data.events.NMNISTDataset` reads (times rounded to whole µs).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional, Sequence, Union

import numpy as np

from ..errors import ConfigError
from .events import NMNIST_SENSOR, Events, write_nmnist_bin

__all__ = ["SACCADE_CORNERS", "SENSOR", "saccade_events", "saccade_offsets", "write_saccade_dataset"]

PathLike = Union[str, "os.PathLike[str]"]

#: the sensor: 34 x 34 pixels, 2 polarities (as N-MNIST)
SENSOR = NMNIST_SENSOR
#: the corners of the saccade triangle: offsets (x, y) in pixels of the image's top-left corner on the sensor
SACCADE_CORNERS = ((1.0, 5.0), (3.0, 1.0), (5.0, 5.0))


def saccade_offsets(times_us: np.ndarray, saccade_ms: float = 100.0, amplitude: float = 1.0) -> np.ndarray:
    """The image's offset ``[len(times), 2]`` (x, y pixels) at ``times_us`` along the three saccades.

    The corners are :data:`SACCADE_CORNERS` scaled about the centre ``(3, 3)`` by ``amplitude``; saccade ``s``
    (0, 1, 2) runs from corner ``s`` to corner ``s + 1 (mod 3)`` during ``[s, s + 1) * saccade_ms`` ms."""
    corners = np.asarray(SACCADE_CORNERS, dtype=np.float64)
    corners = 3.0 + float(amplitude) * (corners - 3.0)
    u = np.clip(np.asarray(times_us, dtype=np.float64) / (1000.0 * saccade_ms), 0.0, 3.0)
    seg = np.minimum(np.floor(u).astype(np.int64), 2)
    frac = (u - seg)[:, None]
    return corners[seg] + frac * (corners[(seg + 1) % 3] - corners[seg])


def _render(images: np.ndarray, dx: float, dy: float, size: int) -> np.ndarray:
    """The ``[N, size, size]`` sensor view of ``images`` ``[N, h, w]`` moved by ``(dx, dy)`` px (bilinear)."""
    n, h, w = images.shape
    ix, iy = int(np.floor(dx)), int(np.floor(dy))
    fx, fy = dx - ix, dy - iy
    out = np.zeros((n, size, size), dtype=np.float32)
    for ox, oy, weight in ((ix, iy, (1 - fx) * (1 - fy)), (ix + 1, iy, fx * (1 - fy)),
                           (ix, iy + 1, (1 - fx) * fy), (ix + 1, iy + 1, fx * fy)):
        if weight <= 0.0:
            continue
        # the image placed with its top-left corner at (ox, oy), clipped to the sensor
        x0, y0 = max(ox, 0), max(oy, 0)
        x1, y1 = min(ox + w, size), min(oy + h, size)
        if x1 <= x0 or y1 <= y0:
            continue
        out[:, y0:y1, x0:x1] += np.float32(weight) * images[:, y0 - oy:y1 - oy, x0 - ox:x1 - ox]
    return out


def _crossings(k: np.ndarray, l_ref: np.ndarray, l_prev: np.ndarray, l_new: np.ndarray, thr: np.ndarray,
               sign: int, t_prev: float, dt: float):
    """Flat pixel indices and times of the ``k`` threshold crossings of each pixel between two frames."""
    flat = np.flatnonzero(k)
    if flat.size == 0:
        return flat, np.zeros(0)
    counts = k.reshape(-1)[flat]
    rep = np.repeat(flat, counts)
    starts = np.cumsum(counts) - counts
    j = np.arange(rep.size) - np.repeat(starts, counts) + 1  # 1..k per pixel
    ref = l_ref.reshape(-1)[rep].astype(np.float64)
    c = thr.reshape(-1)[rep].astype(np.float64)
    lp = l_prev.reshape(-1)[rep].astype(np.float64)
    ln = l_new.reshape(-1)[rep].astype(np.float64)
    level = ref + sign * j * c
    frac = np.clip((level - lp) / (ln - lp), 0.0, 1.0)
    return rep, t_prev + dt * frac


def saccade_events(images: np.ndarray, labels: Optional[Sequence[int]] = None, *, threshold: float = 0.3,
                   threshold_sigma: float = 0.0, eps: float = 0.1, saccade_ms: float = 100.0,
                   dt_us: float = 1000.0, amplitude: float = 1.0, rng: Optional[np.random.Generator] = None,
                   chunk: int = 256) -> List[Events]:
    """Convert images to event streams by simulated saccades (see the module docstring for the model).

    Args:
        images: ``uint8 [N, 28, 28]`` intensities 0..255 (any ``[N, h, w]`` with ``h, w <= 28`` works; other
            dtypes are taken as intensities in 0..255 too), or one ``[h, w]`` image.
        labels: optional class per image, stored as each :class:`Events`' ``label``.
        threshold: the contrast threshold ``C`` (change of ``ln(I + eps)`` per event); the default 0.3 gives
            about 4,300 events per MNIST digit (mean over 200 training images); N-MNIST samples hold a few
            thousand.
        threshold_sigma: the standard deviation of the per-pixel threshold mismatch (0 = none); needs ``rng``
            (or uses ``numpy.random.default_rng(0)``).
        eps: the dark level added before the log, in units of full scale.
        saccade_ms: the duration of each of the three saccades, ms (300 ms in all by default).
        dt_us: the time between rendered frames, µs.
        amplitude: scale of the saccade triangle (1 = :data:`SACCADE_CORNERS`; at most 1.2 keeps a 28 x 28
            image inside the sensor).
        rng: the generator of the threshold mismatch (drawn once, one fixed pattern for all images).
        chunk: images processed together (memory: about ``chunk * 34 * 34 * 40`` bytes).

    Returns:
        One :class:`Events` per image, in time order, ``t`` in µs (float64) within
        ``[0, 3000 * saccade_ms]``, ``x``, ``y`` in ``0..33``, ``p`` 1 = ON / 0 = OFF, sensor ``(34, 34, 2)``.
    """
    imgs = np.asarray(images)
    if imgs.ndim == 2:
        imgs = imgs[None]
    if imgs.ndim != 3 or imgs.shape[1] > SENSOR[1] or imgs.shape[2] > SENSOR[0]:
        raise ConfigError(f"saccade_events: images must be [N, h, w] with h, w <= 28, got shape {imgs.shape}")
    if labels is not None and len(labels) != imgs.shape[0]:
        raise ConfigError(f"saccade_events: {len(labels)} labels for {imgs.shape[0]} images")
    if not threshold > 0 or threshold_sigma < 0 or not eps > 0 or not saccade_ms > 0 or not dt_us > 0:
        raise ConfigError("saccade_events: threshold, eps, saccade_ms and dt_us must be > 0 and threshold_sigma "
                          ">= 0")
    if not 0 <= amplitude <= 1.2:
        raise ConfigError(f"saccade_events: amplitude must be in [0, 1.2] (larger moves the digit off the "
                          f"sensor), got {amplitude}")
    size = SENSOR[0]
    thr = np.full((size, size), threshold, dtype=np.float32)
    if threshold_sigma > 0:
        gen = rng if rng is not None else np.random.default_rng(0)
        thr = np.maximum(threshold + threshold_sigma * gen.standard_normal((size, size)),
                         threshold / 10).astype(np.float32)
    total_us = 3000.0 * saccade_ms
    n_frames = int(np.ceil(total_us / dt_us))
    frame_t = np.minimum(np.arange(n_frames + 1) * float(dt_us), total_us)
    offsets = saccade_offsets(frame_t, saccade_ms, amplitude)
    out: List[Events] = []
    for lo in range(0, imgs.shape[0], max(1, int(chunk))):
        block = imgs[lo:lo + chunk].astype(np.float32) / np.float32(255.0)
        n = block.shape[0]
        l_prev = np.log(_render(block, offsets[0, 0], offsets[0, 1], size) + np.float32(eps))
        l_ref = l_prev.copy()
        parts_i, parts_t, parts_p = [], [], []
        for f in range(1, n_frames + 1):
            l_new = np.log(_render(block, offsets[f, 0], offsets[f, 1], size) + np.float32(eps))
            d = l_new - l_ref
            k_on = np.floor(np.maximum(d, 0) / thr).astype(np.int64)
            k_off = np.floor(np.maximum(-d, 0) / thr).astype(np.int64)
            t_prev, dt = frame_t[f - 1], frame_t[f] - frame_t[f - 1]
            for k, sign in ((k_on, 1), (k_off, -1)):
                idx, t = _crossings(k, l_ref, l_prev, l_new, np.broadcast_to(thr, k.shape), sign, t_prev, dt)
                if idx.size:
                    parts_i.append(idx)
                    parts_t.append(t)
                    parts_p.append(np.full(idx.size, 1 if sign > 0 else 0, dtype=np.int8))
            l_ref += (k_on - k_off).astype(np.float32) * thr
            l_prev = l_new
        if parts_i:
            flat = np.concatenate(parts_i)
            t = np.concatenate(parts_t)
            p = np.concatenate(parts_p)
        else:
            flat, t, p = np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int8)
        img, pix = np.divmod(flat, size * size)
        y, x = np.divmod(pix, size)
        order = np.lexsort((t, img))  # by image, then time (stable for equal times)
        img, t, x, y, p = img[order], t[order], x[order], y[order], p[order]
        bounds = np.searchsorted(img, np.arange(n + 1))
        for b in range(n):
            s = slice(bounds[b], bounds[b + 1])
            lab = None if labels is None else int(labels[lo + b])
            out.append(Events(t[s], x[s], y[s], p[s], SENSOR, lab))
    return out


def write_saccade_dataset(root: PathLike, events: Sequence[Events], labels: Optional[Sequence[int]] = None, *,
                          split: str = "Train", start_id: int = 1) -> List[Path]:
    """Write event streams as N-MNIST ``.bin`` files in the published layout ``<root>/<split>/<label>/<id>.bin``
    (ids ``start_id, start_id + 1, ...`` as five digits, like ``00001.bin``), readable by
    :class:`~braincore.data.events.NMNISTDataset`. Times are rounded to whole µs (23-bit, below 8.39 s).

    Args:
        root: the dataset folder (created).
        events: the samples (e.g. from :func:`saccade_events`).
        labels: the class of each sample; default each :class:`Events`' own ``label``.
        split: the split folder name, ``"Train"`` or ``"Test"``.

    Returns:
        The paths written, in the order of ``events``.
    """
    if labels is not None and len(labels) != len(events):
        raise ConfigError(f"write_saccade_dataset: {len(labels)} labels for {len(events)} samples")
    base = Path(root) / split
    paths = []
    for i, ev in enumerate(events):
        lab = labels[i] if labels is not None else ev.label
        if lab is None:
            raise ConfigError(f"write_saccade_dataset: sample {i} has no label (pass labels=)")
        folder = base / str(int(lab))
        folder.mkdir(parents=True, exist_ok=True)
        paths.append(write_nmnist_bin(folder / f"{start_id + i:05d}.bin", ev))
    return paths
