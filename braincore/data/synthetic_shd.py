"""A synthetic stand-in for the Spiking Heidelberg Digits (SHD, Cramer et al. 2020), written in SHD's own HDF5
format so that synthetic and real data go through the same reader (:class:`braincore.data.events.SHDDataset`).

SHD holds spoken digits (20 classes: 0-9 in English and German) turned into spikes of 700 cochlear channels over
about one second. Each synthetic class imitates a word: ``formants`` (default 3) "formant" ridges, each a smooth
trajectory of the channel over time, ``c(tau) = c0 + s tau + q tau^2`` (``tau`` in s of the word), active in one
segment ``[on, off]`` of the word and emitting spikes at ``rate`` (spikes per ms) scattered ``width`` channels
(Gaussian s.d.) around the ridge. The class templates are drawn from ``template_seed`` and shared by all splits.
Every sample then varies its class template by a time warp (the word's duration ``duration`` s times a factor
uniform in ``[1 - warp, 1 + warp]``), an onset delay uniform in ``[0, onset]`` s, a channel shift uniform in
``[-shift, shift]``, per-spike time jitter (``jitter`` s s.d.) and uniform background noise spikes (``noise``
spikes per ms over all channels). Classes come in confusable pairs (:meth:`SyntheticSHD.templates`).
Times are in seconds, channels 0..699, as in SHD's ``spikes/times`` and
``spikes/units``; the defaults give about 2,000 to 3,000 spikes per sample.

Use :func:`write_synthetic_shd` (``shd_train.h5`` and ``shd_test.h5`` in a folder) and read the files with
:class:`~braincore.data.events.SHDDataset`. Seeded: the same arguments give the same files.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Tuple, Union

import numpy as np

from .events import write_shd_h5

__all__ = ["SyntheticSHD", "synthetic_shd_samples", "write_synthetic_shd"]

CLASS_NAMES = [f"{lang}-{d}" for lang in ("english", "german") for d in range(10)]


@dataclass(frozen=True)
class SyntheticSHD:
    """The generator's settings (module docstring); times in s, rates in spikes per ms."""

    classes: int = 20
    channels: int = 700
    formants: int = 3
    duration: float = 0.6
    rate: float = 2.0
    width: float = 10.0
    warp: float = 0.2
    onset: float = 0.2
    shift: int = 30
    jitter: float = 0.005
    noise: float = 1.0
    pair_spread: float = 25.0
    template_seed: int = 0

    def templates(self) -> np.ndarray:
        """``[classes, formants, 5]``: ``c0, s, q, on, off`` of every formant (channels, channels/s,
        channels/s^2, fractions of the word). Classes come in pairs (``2d`` and ``2d + 1``, like one digit
        spoken in two languages) that share a base template and differ by ``pair_spread`` (channels of ``c0``,
        and proportionally the other parameters), which makes the pairs the hard confusions."""
        rng = np.random.default_rng([self.template_seed, 7919])
        out = np.zeros((self.classes, self.formants, 5))
        margin = 60.0
        base = np.zeros((self.formants, 5))
        for c in range(self.classes):
            if c % 2 == 0:
                for f in range(self.formants):
                    on = rng.uniform(0.0, 0.5)
                    base[f] = (rng.uniform(margin, self.channels - margin), rng.uniform(-400.0, 400.0),
                               rng.uniform(-600.0, 600.0), on, rng.uniform(on + 0.3, 1.0))
            k = self.pair_spread / 60.0
            for f in range(self.formants):
                c0, s, q, on, off = base[f]
                if c % 2:
                    c0 += rng.normal(0.0, self.pair_spread)
                    s += rng.normal(0.0, 150.0 * k)
                    q += rng.normal(0.0, 250.0 * k)
                    on = float(np.clip(on + rng.normal(0.0, 0.1 * k), 0.0, 0.6))
                    off = float(np.clip(off + rng.normal(0.0, 0.1 * k), on + 0.25, 1.0))
                out[c, f] = (np.clip(c0, margin, self.channels - margin), s, q, on, off)
        return out


def synthetic_shd_samples(n: int, seed: int, spec: SyntheticSHD = SyntheticSHD()
                          ) -> Tuple[List[np.ndarray], List[np.ndarray], np.ndarray]:
    """``(times, units, labels)``: ``n`` samples (labels cycling through the classes in a seeded order), times
    in s (sorted, float32), units uint16 (module docstring)."""
    rng = np.random.default_rng([int(seed), 104729])
    tpl = spec.templates()
    labels = rng.permutation(np.arange(n) % spec.classes).astype(np.int64)
    times_out: List[np.ndarray] = []
    units_out: List[np.ndarray] = []
    for label in labels:
        length = spec.duration * rng.uniform(1.0 - spec.warp, 1.0 + spec.warp)
        start = rng.uniform(0.0, spec.onset)
        shift = rng.integers(-spec.shift, spec.shift + 1)
        ts, us = [], []
        for c0, s, q, on, off in tpl[label]:
            span = (off - on) * length                      # s
            k = rng.poisson(spec.rate * span * 1e3)
            tau = rng.uniform(on * length, off * length, k)  # s into the word
            u = tau / length                                # warped word time in [0, 1]
            centre = c0 + s * u * spec.duration + q * (u * spec.duration) ** 2 + shift
            ch = np.rint(centre + rng.normal(0.0, spec.width, k))
            ts.append(start + tau + rng.normal(0.0, spec.jitter, k))
            us.append(ch)
        total = start + length + spec.onset
        k = rng.poisson(spec.noise * total * 1e3)
        ts.append(rng.uniform(0.0, total, k))
        us.append(rng.integers(0, spec.channels, k).astype(np.float64))
        t, ch = np.concatenate(ts), np.concatenate(us)
        keep = (ch >= 0) & (ch < spec.channels) & (t >= 0)
        t, ch = t[keep], ch[keep]
        order = np.argsort(t, kind="stable")
        times_out.append(t[order].astype(np.float32))
        units_out.append(ch[order].astype(np.uint16))
    return times_out, units_out, labels


def write_synthetic_shd(folder: Union[str, Path], n_train: int = 2000, n_test: int = 500, seed: int = 0,
                        spec: SyntheticSHD = SyntheticSHD()) -> Tuple[Path, Path]:
    """Write ``shd_train.h5`` (seed ``[seed, 0]``) and ``shd_test.h5`` (``[seed, 1]``) in SHD's layout into
    ``folder`` (created); returns their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = CLASS_NAMES[:spec.classes] if spec.classes <= len(CLASS_NAMES) else None
    paths = []
    for split, n, offset in (("train", n_train, 0), ("test", n_test, 1)):
        times, units, labels = synthetic_shd_samples(n, seed * 2 + offset, spec)
        paths.append(write_shd_h5(folder / f"shd_{split}.h5", times, units, labels.tolist(), names))
    return paths[0], paths[1]
