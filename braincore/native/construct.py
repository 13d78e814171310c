"""Network construction's hot loops in C (``construct.c``): the same numbers as the PyTorch code they replace.

:mod:`braincore.construction` asks here first and falls back to PyTorch when this returns ``None`` (no C
compiler, ``BRAINCORE_NO_NATIVE``, :data:`ENABLED` false, or arguments outside what the C code takes), so the
network is the same either way; only the build time and its temporary memory differ. Before its first use the
library is checked against the PyTorch functions on a few thousand keys and values (:func:`_agrees`): the
counter-based uniforms (:mod:`braincore.counter_rng`) are integer arithmetic and one exact conversion, but the
inverse normal CDF goes through the C library's ``log`` and the compiler's rounding, so ``torch.special.ndtri`` is
kept wherever the two differ in a single bit.

- :func:`uniform`: ``counter_rng.uniform(seed, *prefix, a, b, *tail)`` for integer tensors ``a`` and ``b``.
- :func:`ndtri`: ``torch.special.ndtri`` of a float64 tensor.
- :func:`truncated_normal`: ``truncated_normal_of`` of those uniforms (:mod:`braincore.synapses.weights`) in one
  pass.
- :func:`fixed_total`: a ``fixed_total`` connector with multapses, directly in CSR order (``indptr``, ``post``,
  ``slot``), int32 indices, without the int64 arrays and the two sorts of the PyTorch path.
"""
from __future__ import annotations

import ctypes
import math
from functools import lru_cache
from pathlib import Path
from typing import Optional

import torch

from .. import counter_rng as rng
from .build import NativeUnavailable, compile_and_load

SOURCE = Path(__file__).with_name("construct.c")
ABI = 1
#: set false to build with PyTorch alone (tests compare the two)
ENABLED = True
_U64 = (1 << 64) - 1
_VP, _I32, _I64, _U64T, _DP = ctypes.c_void_p, ctypes.c_int32, ctypes.c_int64, ctypes.c_uint64, ctypes.c_void_p


class _Lib:
    def __init__(self, cdll: ctypes.CDLL):
        self.cdll = cdll
        cdll.bc_construct_abi.restype = _I32
        cdll.bc_hash_uniform.restype = None
        cdll.bc_hash_uniform.argtypes = [_U64T, _VP, _VP, _I32, _I64, _I32, _VP, _VP]
        cdll.bc_ndtri.restype = None
        cdll.bc_ndtri.argtypes = [_VP, _I64, _VP]
        cdll.bc_truncated_normal.restype = None
        cdll.bc_truncated_normal.argtypes = [_U64T, _VP, _VP, _I32, _I64] + [ctypes.c_double] * 4 + \
            [_I32, ctypes.c_double, ctypes.c_double, _VP]
        cdll.bc_fixed_total.restype = None
        cdll.bc_fixed_total.argtypes = [_U64T, _I64, _I64, _I64, _I32, _I64, _VP, _VP, _VP, _VP, _VP]
        self.uniform_ok = self.ndtri_ok = self.truncated_ok = self.fixed_total_ok = False


def _prefix(seed: int, keys: tuple) -> int:
    return int(rng.hash_keys(seed, *keys)) & _U64


def _uniform(lib: _Lib, seed: int, prefix: tuple, a: torch.Tensor, b: Optional[torch.Tensor],
             tail: tuple) -> torch.Tensor:
    out = torch.empty(a.numel(), dtype=torch.float64)
    tail_arr = torch.tensor(list(tail) or [0], dtype=torch.int64)
    lib.cdll.bc_hash_uniform(_prefix(seed, prefix), a.data_ptr(), b.data_ptr() if b is not None else None,
                             int(a.dtype == torch.int64), a.numel(), len(tail), tail_arr.data_ptr(), out.data_ptr())
    return out


def _ndtri(lib: _Lib, p: torch.Tensor) -> torch.Tensor:
    out = torch.empty_like(p)
    lib.cdll.bc_ndtri(p.data_ptr(), p.numel(), out.data_ptr())
    return out


def _truncated(lib: _Lib, seed: int, prefix: tuple, a: torch.Tensor, b: torch.Tensor, mean: float, std: float,
               truncate: tuple) -> torch.Tensor:
    from ..synapses.weights import truncated_normal_setup

    lo, hi, mirror, pa, width = truncated_normal_setup(mean, std, truncate)
    out = torch.empty(a.numel(), dtype=torch.float64)
    lib.cdll.bc_truncated_normal(_prefix(seed, prefix), a.data_ptr(), b.data_ptr(), int(a.dtype == torch.int64),
                                 a.numel(), pa, width, lo, hi, int(mirror), mean, std, out.data_ptr())
    return out


def _agrees(lib: _Lib) -> None:
    """Check each function against PyTorch; sets the ``*_ok`` flags of those that agree bit for bit."""
    g = torch.Generator().manual_seed(12345)
    a = torch.randint(-(1 << 62), 1 << 62, (4096,), generator=g, dtype=torch.int64)
    a[:8] = torch.tensor([0, 1, -1, 2 ** 31 - 1, -(2 ** 31), 2 ** 63 - 1, -(2 ** 63), 7])
    b = torch.randint(0, 1 << 31, (4096,), generator=g, dtype=torch.int64)
    ok = True
    for seed, prefix, tail in ((0, (1,), ()), (55, (2 ** 32 - 1, 3), (0,)), (-5, (9,), (1, 2 ** 40))):
        ok &= torch.equal(_uniform(lib, seed, prefix, a, b, tail), rng.uniform(seed, *prefix, a, b, *tail))
        ok &= torch.equal(_uniform(lib, seed, prefix, a, None, tail), rng.uniform(seed, *prefix, a, *tail))
        a32, b32 = (a & 0x7FFFFFFF).to(torch.int32), b.to(torch.int32)
        ok &= torch.equal(_uniform(lib, seed, prefix, a32, b32, tail), rng.uniform(seed, *prefix, a32, b32, *tail))
    lib.uniform_ok = bool(ok)
    # ndtri: uniforms, both tails down to the smallest doubles, the branch points, and the edges of the domain
    u = rng.uniform(3, 1, torch.arange(1 << 15))
    tails = torch.logspace(-320, -0.5, 4000, dtype=torch.float64)
    marks = torch.tensor([0.0, 1.0, 0.5, math.exp(-2), 1 - math.exp(-2), math.exp(-32), 1e-300, 5e-324, 1 - 2 ** -53,
                          2 ** -53, -0.5, 1.5, math.nan], dtype=torch.float64)
    p = torch.cat([u, tails, 1.0 - tails, marks, torch.nextafter(marks[:6], torch.zeros(6)),
                   torch.nextafter(marks[:6], torch.ones(6))])
    lib.ndtri_ok = torch.equal(_ndtri(lib, p).nan_to_num(nan=7.0), torch.special.ndtri(p).nan_to_num(nan=7.0))
    # truncated normals (lower, upper, two-sided and mirrored bounds) against truncated_normal_of
    from ..synapses.weights import truncated_normal_of

    ok = lib.ndtri_ok and lib.uniform_ok
    for mean, std, truncate in ((0.35, 0.035, (0.0, None)), (1.6, 0.75, (0.2, None)), (-1.0, 2.0, (None, -3.0)),
                                (0.0, 1.0, (-0.5, 0.7)), (2.0, 0.5, (2.5, 9.0)), (1.0, 1e-3, (None, None))):
        ok &= torch.equal(_truncated(lib, 55, (77,), a, b, mean, std, truncate),
                          truncated_normal_of(rng.uniform(55, 77, a, b), mean, std, truncate,
                                              ndtri=torch.special.ndtri))
    lib.truncated_ok = bool(ok)
    # fixed_total against the PyTorch path it replaces (multapses; with and without excluding self-pairs)
    from ..construction import _fixed_total_torch

    ok = True
    for n_pre, n_post, n, exclude in ((37, 23, 3000, False), (50, 50, 4000, True), (1, 1, 5, False)):
        m = n_post - 1 if exclude else n_post
        fast = _fixed_total(lib, 9, 1234, n, n_pre, n_post, m, exclude)
        pre, post, slot = _fixed_total_torch(9, 1234, n, n_pre, n_post, m, exclude)
        counts = torch.bincount(pre, minlength=n_pre)
        ok &= torch.equal(fast[0], torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(counts, 0)]))
        ok &= torch.equal(fast[1].long(), post) and torch.equal(fast[2].long(), slot)
    lib.fixed_total_ok = bool(ok)


@lru_cache(maxsize=1)
def _load() -> Optional[_Lib]:
    try:
        cdll = compile_and_load(SOURCE, "construct")
    except NativeUnavailable:
        return None
    lib = _Lib(cdll)
    if cdll.bc_construct_abi() != ABI:
        return None
    _agrees(lib)
    return lib


def library() -> Optional[_Lib]:
    """The checked library, or ``None`` where it cannot be used (see the module docstring)."""
    return _load() if ENABLED else None


def _indices(t: Optional[torch.Tensor]) -> bool:
    return t is None or (t.device.type == "cpu" and t.dim() == 1 and t.is_contiguous()
                         and t.dtype in (torch.int32, torch.int64))


def uniform(seed: int, prefix: tuple, a: torch.Tensor, b: Optional[torch.Tensor] = None,
            tail: tuple = ()) -> Optional[torch.Tensor]:
    """``counter_rng.uniform(seed, *prefix, a, b, *tail)`` (``prefix``, ``tail``: integers; ``a``, ``b``: 1-D int32
    or int64 tensors of one dtype and length), or ``None`` where the C code cannot compute it."""
    lib = library()
    if lib is None or not lib.uniform_ok or not _indices(a) or not _indices(b) or \
            (b is not None and (b.dtype != a.dtype or b.numel() != a.numel())):
        return None
    return _uniform(lib, seed, prefix, a, b, tail)


def ndtri(p: torch.Tensor) -> torch.Tensor:
    """``torch.special.ndtri(p)``, in C where it was found to agree."""
    lib = library()
    if lib is None or not lib.ndtri_ok or p.dtype != torch.float64 or p.device.type != "cpu" \
            or not p.is_contiguous():
        return torch.special.ndtri(p)
    return _ndtri(lib, p)


def truncated_normal(seed: int, prefix: tuple, a: torch.Tensor, b: torch.Tensor, mean: float, std: float,
                     truncate: tuple) -> Optional[torch.Tensor]:
    """``truncated_normal_of(counter_rng.uniform(seed, *prefix, a, b), mean, std, truncate)`` in one pass (``std >
    0``), or ``None`` where the C code cannot compute it."""
    lib = library()
    if lib is None or not lib.truncated_ok or std <= 0 or not _indices(a) or not _indices(b) or \
            b.dtype != a.dtype or b.numel() != a.numel():
        return None
    return _truncated(lib, seed, prefix, a, b, mean, std, truncate)


def _fixed_total(lib: _Lib, seed: int, stream: int, n: int, n_pre: int, n_post: int, m: int,
                 exclude: bool) -> tuple:
    q = torch.empty(n, dtype=torch.int32)
    scratch = torch.empty(n, dtype=torch.int32)
    slot = torch.empty(n, dtype=torch.int32)
    indptr = torch.empty(n_pre + 1, dtype=torch.int64)
    row_count = torch.zeros(max(1, n_post), dtype=torch.int32)
    lib.cdll.bc_fixed_total(_prefix(seed, (stream, 0)), n, n_pre * m, m, int(exclude), n_pre, q.data_ptr(),
                            scratch.data_ptr(), slot.data_ptr(), indptr.data_ptr(), row_count.data_ptr())
    del scratch
    return indptr, q, slot


def fixed_total(seed: int, stream: int, n: int, n_pre: int, n_post: int, exclude: bool) -> Optional[tuple]:
    """A ``fixed_total`` connector with multapses (``n`` synapses; ``stream``: the id of ``conn-pick/<name>``) in
    CSR order: ``(indptr`` int64 ``[n_pre + 1]``, ``post`` int32, ``slot`` int32 ``)``, the synapses of
    :func:`braincore.construction.incoming` sorted by ``(pre, post, slot)``; ``None`` where the C code cannot build
    it (then ``n_pre m`` must stay below 2^32 and ``n_post`` below 2^31)."""
    lib = library()
    m = n_post - 1 if exclude else n_post
    if lib is None or not lib.fixed_total_ok or n <= 0 or m <= 0 or n_pre * m >= 1 << 32 or n_post >= 1 << 31:
        return None
    return _fixed_total(lib, seed, stream, n, n_pre, n_post, m, exclude)


__all__ = ["ENABLED", "library", "uniform", "ndtri", "truncated_normal", "fixed_total"]
