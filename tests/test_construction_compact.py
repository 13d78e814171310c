"""The compact construction (``build_compact``: CSR arrays with int32 post indices and int16 delays, the C fast path
of ``fixed_total`` with multapses, truncated normals and counter-based uniforms in C) builds the network of the
general path (``build_projection``) bit for bit, with and without the C code."""
from __future__ import annotations

import math

import pytest
import torch

from braincore import counter_rng as rng
from braincore.construction import build_compact, build_projection
from braincore.graph import Assembly
from braincore.native import construct
from braincore.synapses import to_csr

W_TRUNC = {"dist": "normal", "mean": 0.35, "std": 0.035, "truncate": [0.0, None]}
D_TRUNC = {"dist": "normal", "mean": 1.6, "std": 0.75, "truncate": [0.2, None]}
CASES = [  # (connector, weight, delay, sign)
    ({"type": "fixed_total", "n": 5000, "multapses": True, "allow_self": True}, W_TRUNC, D_TRUNC, "excitatory"),
    ({"type": "fixed_total", "n": 4000, "multapses": True}, W_TRUNC, D_TRUNC, "inhibitory"),
    ({"type": "fixed_total", "n": 3000, "multapses": True},
     {"dist": "uniform", "low": 0.1, "high": 0.5}, {"dist": "uniform", "low": 0.5, "high": 3.0}, None),
    ({"type": "fixed_total", "n": 3000, "multapses": True, "allow_self": True},
     {"dist": "normal", "mean": 0.2, "std": 0.1}, 1.5, "excitatory"),
    ({"type": "fixed_total", "n": 2000, "multapses": True},
     {"dist": "lognormal", "mean": 0.2, "std": 0.1, "clip": [0.0, 0.3]}, None, None),
    ({"type": "fixed_total", "n": 500, "multapses": False}, 0.3, D_TRUNC, None),
    ({"type": "fixed_probability", "p": 0.1}, W_TRUNC, D_TRUNC, "inhibitory"),
    ({"type": "fixed_indegree", "k": 7}, {"dist": "normal", "mean": 0.5, "std": 0.2, "truncate": [0.4, 0.9]},
     {"dist": "normal", "mean": 2.0, "std": 1.0, "truncate": [None, 2.5]}, None),
]


def _network(connector, weight, delay, sign) -> Assembly:
    a = Assembly(name="compact", dt=0.1)
    a.add_population("A", "lif", 60, {})
    a.add_population("B", "lif", 45, {})
    a.add_projection("A", "B", connector, weight, {"type": "exponential", "tau": 0.5}, delay, name="ab", sign=sign)
    a.add_projection("B", "B", connector, weight, {"type": "exponential", "tau": 0.5}, delay, name="bb", sign=sign)
    return a


def _general(spec, n_pre, n_post, dtype):
    conn = build_projection(spec, n_pre, n_post, kind="current", dimension="current", seed=55, dt=0.1)
    return to_csr(conn.pre, conn.post, n_pre), conn.post, conn.weight.to(dtype), conn.delay


@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("native", [True, False])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_compact_is_the_general_network(case, native, dtype, monkeypatch):
    monkeypatch.setattr(construct, "ENABLED", native)
    a = _network(*CASES[case])
    sizes = {"A": 60, "B": 45}
    for spec in a.projections():
        n_pre, n_post = sizes[spec.pre], sizes[spec.post]
        fast = build_compact(spec, n_pre, n_post, kind="current", dimension="current", seed=55, dt=0.1,
                             weight_dtype=dtype)
        monkeypatch.setattr(construct, "ENABLED", False)
        indptr, post, weight, delay = _general(spec, n_pre, n_post, dtype)
        monkeypatch.setattr(construct, "ENABLED", native)
        assert fast.post.dtype == torch.int32 and fast.delay.dtype == torch.int16 and fast.weight.dtype == dtype
        assert torch.equal(fast.indptr, indptr)
        assert torch.equal(fast.post.long(), post)
        assert torch.equal(fast.weight, weight)
        assert torch.equal(fast.delay.long(), delay)


def test_long_delays_are_stored_as_int32(monkeypatch):
    for native in (True, False):
        monkeypatch.setattr(construct, "ENABLED", native)
        a = _network({"type": "fixed_total", "n": 300, "multapses": True},
                     0.1, {"dist": "uniform", "low": 3000.0, "high": 4000.0}, None)
        spec = next(iter(a.projections()))
        fast = build_compact(spec, 60, 45, kind="current", dimension="current", seed=55, dt=0.1)
        monkeypatch.setattr(construct, "ENABLED", False)
        general = build_projection(spec, 60, 45, kind="current", dimension="current", seed=55, dt=0.1)
        assert fast.delay.dtype == torch.int32 and int(fast.delay.max()) > 32767
        assert torch.equal(fast.delay.long(), general.delay)


def test_the_c_functions_are_pytorchs():
    """Where the C library loads and passed its own check, its functions return PyTorch's numbers (else they are
    PyTorch's functions)."""
    u = rng.uniform(1, 2, torch.arange(200_000))
    p = torch.cat([u, torch.logspace(-300, -1, 1000, dtype=torch.float64), torch.tensor([math.exp(-2), 0.5])])
    assert torch.equal(construct.ndtri(p), torch.special.ndtri(p))
    post, slot = torch.randint(0, 1 << 20, (5000,)).int(), torch.randint(0, 5000, (5000,)).int()
    fast = construct.uniform(3, (4,), post, slot, (1,))
    if fast is not None:
        assert torch.equal(fast, rng.uniform(3, 4, post, slot, 1))


def test_the_simulator_stores_compact_arrays():
    from braincore.simulator import Simulator

    a = _network(*CASES[0])
    a.set_run(duration=1.0, dt=0.1, seed=55, dtype="float32", backend="torch")
    sim = Simulator(a)
    for proj in sim.projections:
        assert proj.post_idx.dtype == torch.int32 and proj.delay.dtype == torch.int16
        assert proj.weight.dtype == torch.float32 and proj.indptr.dtype == torch.int64
