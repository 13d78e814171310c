"""Counter-based random numbers: every draw is a pure function of its key, never of a generator's history.

A sequential generator (``torch.Generator``) hands out numbers in the order they are asked for, so the numbers a
neuron gets depend on how many were drawn before it, i.e. on the partition of the network over processes. Here
a number is a hash of its *key* instead (Salmon et al. 2011, "Parallel random numbers: as easy as 1, 2, 3", the
idea behind Philox and NEST's per-thread seeding), so rank ``r`` draws exactly the numbers of the neurons it owns,
and any partition (1, 2, 3 ... processes) draws the same number for the same neuron::

    h = mix64(seed);  for each further key component c:  h = mix64(h XOR c)          (int64 tensors, wrapping)
    mix64(z) = splitmix64's finaliser (Steele, Lea & Flood 2014):
        z += 0x9E3779B97F4A7C15;  z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EB;  return z ^ (z >>> 31)
    uniform = ((h >>> 11) + 1/2) * 2^-53          in (0, 1), float64, 53 random bits

``>>>`` is a logical shift (emulated on int64 as ``(z >> s) & (2^(64-s) - 1)``); the products wrap modulo 2^64,
which is what PyTorch's int64 multiplication does on every platform it supports (checked against a pure-Python
reference in ``tests/test_distributed.py``).

Keys are ``(seed, stream, i, j, ...)``: ``stream`` names the purpose (:func:`stream_id`: a CRC32 of a string such
as ``"conn-pick/ee"``, so adding a projection changes nobody else's numbers) and the rest are integers such as a
global post-neuron index, a synapse slot, a time step. Draws derived from uniforms (Bernoulli, binomial and
Poisson counts by inverse CDF, normals by Box–Muller) are built so that their result for one element depends on
that element's key only, and on tables that every process computes identically.

Transcendental functions: PyTorch's CPU kernels compute the body of a tensor with SIMD code (Sleef, about 1 ulp)
and its tail with the scalar libm function, so ``torch.exp(x)[i]`` may differ in the last bit with ``x``'s length
or ``i``'s position in it, i.e. with the partition. The normal and lognormal draws therefore go through NumPy on
whole arrays (whose SIMD loops treat the tail with the same kernel) -- see :func:`normal`; nothing in the
simulation loop calls a transcendental function per element.
"""
from __future__ import annotations

import math
import zlib
from typing import Union

import numpy as np
import torch

Tensor = torch.Tensor
IntLike = Union[int, Tensor]


def _signed(c: int) -> int:
    """A 64-bit constant as the int64 with the same bits."""
    return c - (1 << 64) if c >= (1 << 63) else c


_GOLDEN = _signed(0x9E3779B97F4A7C15)
_M1 = _signed(0xBF58476D1CE4E5B9)
_M2 = _signed(0x94D049BB133111EB)
_TWO_M53 = 2.0 ** -53


def _srl(z: Tensor, s: int) -> Tensor:
    """Logical right shift of int64 bits."""
    return (z >> s) & ((1 << (64 - s)) - 1)


def mix64(z: Tensor) -> Tensor:
    """splitmix64's output function on an int64 tensor (bijective on 64-bit words)."""
    z = z + _GOLDEN  # a new tensor: the steps below work in place on it
    if z.dim() == 0:
        z = (z ^ _srl(z, 30)) * _M1
        z = (z ^ _srl(z, 27)) * _M2
        return z ^ _srl(z, 31)
    for shift, mult in ((30, _M1), (27, _M2)):
        z ^= _srl(z, shift)
        z *= mult
    z ^= _srl(z, 31)
    return z


def extend_hash(h: Tensor, *keys: IntLike) -> Tensor:
    """``hash_keys(seed, *a, *keys)`` from ``h = hash_keys(seed, *a)`` (the chain goes on): lets a caller hash the
    shared part of many keys once, e.g. per row, and extend it per element."""
    for key in keys:
        k = key.to(torch.int64) if isinstance(key, Tensor) else torch.tensor(int(key), dtype=torch.int64)
        h = mix64(h ^ k)
    return h


def uniform_of(h: Tensor) -> Tensor:
    """The float64 uniform in (0, 1) of a hash (what :func:`uniform` returns for its keys)."""
    return (_srl(h, 11).to(torch.float64) + 0.5) * _TWO_M53


def stream_id(name: str) -> int:
    """A stable 32-bit id for a purpose string (CRC32), e.g. ``stream_id("poisson/ext_e")``."""
    return zlib.crc32(name.encode("utf-8"))


def hash_keys(seed: int, *keys: IntLike) -> Tensor:
    """int64 hash of ``(seed, *keys)``; tensor keys broadcast together (the result has their shape)."""
    h = mix64(torch.tensor(int(seed), dtype=torch.int64))
    for key in keys:
        k = key.to(torch.int64) if isinstance(key, Tensor) else torch.tensor(int(key), dtype=torch.int64)
        h = mix64(h ^ k)
    return h


def uniform(seed: int, *keys: IntLike) -> Tensor:
    """float64 uniforms in the open interval (0, 1), one per broadcast key."""
    return (_srl(hash_keys(seed, *keys), 11).to(torch.float64) + 0.5) * _TWO_M53


def randint(seed: int, m: int, *keys: IntLike) -> Tensor:
    """Integers uniform in ``[0, m)`` (``floor(u m)``; the bias is below ``m / 2^53``), int64."""
    return torch.clamp((uniform(seed, *keys) * m).to(torch.int64), max=m - 1)


def normal(seed: int, *keys: IntLike) -> Tensor:
    """Standard normals by Box–Muller, ``sqrt(-2 ln u1) cos(2 pi u2)``, ``u1, u2`` keyed ``(*keys, 0)`` and
    ``(*keys, 1)``. The logarithm and cosine are NumPy's (see the module docstring), float64."""
    u1 = uniform(seed, *keys, 0).numpy()
    u2 = uniform(seed, *keys, 1).numpy()
    return torch.from_numpy(np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * math.pi * u2))


def lognormal_exp(z: Tensor) -> Tensor:
    """``exp`` through NumPy (partition-independent, see the module docstring)."""
    return torch.from_numpy(np.exp(z.numpy()))


def cdf_table_binomial(n: int, p: float) -> Tensor:
    """The CDF of Binomial(n, p) at ``0..K`` (float64; the last entry forced to 1), computed in Python floats
    (``math.lgamma``), identical on every process; ``K = min(n, np + 40 sd + 50)`` (the mass beyond is far below
    2^-53). Used by :func:`inverse_cdf`."""
    if p <= 0.0 or n == 0:
        return torch.ones(n + 1, dtype=torch.float64)
    if p >= 1.0:
        table = torch.zeros(n + 1, dtype=torch.float64)
        table[-1] = 1.0
        return table
    lp, lq = math.log(p), math.log1p(-p)
    lg = math.lgamma(n + 1)
    acc, out = 0.0, []
    last = min(n, int(n * p + 40.0 * math.sqrt(n * p * (1.0 - p)) + 50))
    for k in range(last + 1):
        acc += math.exp(lg - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * lp + (n - k) * lq)
        out.append(min(acc, 1.0))
    out[-1] = 1.0
    return torch.tensor(out, dtype=torch.float64)


def cdf_table_poisson(lam: float, tail: float = 1e-17) -> Tensor:
    """The CDF of Poisson(lam) at ``0..K`` with ``K`` the first count whose remaining mass is below ``tail``
    (float64, the last entry forced to 1; Python floats, identical on every process)."""
    if lam <= 0.0:
        return torch.ones(1, dtype=torch.float64)
    out, acc, k = [], 0.0, 0
    log_lam = math.log(lam)
    while True:
        acc += math.exp(k * log_lam - lam - math.lgamma(k + 1))
        out.append(min(acc, 1.0))
        if (1.0 - acc < tail and k > lam) or k > lam + 50.0 * math.sqrt(lam) + 50:
            break
        k += 1
    out[-1] = 1.0
    return torch.tensor(out, dtype=torch.float64)


def inverse_cdf(table: Tensor, u: Tensor) -> Tensor:
    """Counts ``k`` with ``table[k-1] < u <= table[k]`` (the smallest ``k`` with ``u <= CDF(k)``), int64."""
    return torch.searchsorted(table, u, right=False)


__all__ = ["mix64", "extend_hash", "uniform_of", "stream_id", "hash_keys", "uniform", "randint", "normal",
           "lognormal_exp",
           "cdf_table_binomial", "cdf_table_poisson", "inverse_cdf"]
