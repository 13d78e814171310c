"""The native engine's per-run fast paths give what the general paths give: the blow-up check summed in C (and
skipped for weights a normalisation pass rewrote on the run's last step), the Poisson plan computed in C, and
bindings kept while the tensors are unchanged (``Simulator.rest`` works in place)."""
import math

import numpy as np
import pytest
import torch

from braincore.errors import NumericalError
from braincore.graph import Assembly
from braincore.simulator import Simulator

native = pytest.importorskip("braincore.native.build")
try:
    native.load_library("float64")
except native.NativeUnavailable as err:  # pragma: no cover - machines without a C compiler
    pytest.skip(f"native engine unavailable: {err}", allow_module_level=True)


def _normalised(every: int = 10, steps: int = 20) -> Simulator:
    """Poisson-driven relays -> LIF, all-to-all, STDP then normalisation every ``every`` steps."""
    a = Assembly("fast_paths", dt="0.5 ms", duration=f"{0.5 * steps} ms", seed=3)
    a.add_population("src", "lif", 12, {"tau_m": "20 ms", "R_m": "100 MOhm", "v_rest": "0 mV", "v_reset": "0 mV",
                                        "v_th": "0.5 mV", "t_ref": "0 ms"})
    a.add_input("drive", "poisson", "src", rate="200 Hz", weight="1 mV")
    a.add_population("dst", "lif", 5, {"tau_m": "10 ms", "v_th": "-60 mV"})
    rules = [{"rule": "stdp", "w_max": 5.0}, {"rule": "normalize", "total": 3.0, "every": every}]
    a.add_projection("src", "dst", {"type": "all_to_all"}, {"dist": "uniform", "low": 0.1, "high": 0.5},
                     {"type": "exponential", "tau": "5 ms"}, name="plastic", storage="sparse", plasticity=rules)
    return Simulator(a, backend="native", dtype="float64")


def test_a_run_ending_on_a_normalisation_step_skips_the_weights_and_still_catches_an_edit():
    sim = _normalised(every=10, steps=20)
    sim.run()  # ends on a normalisation step: the pass checked every weight
    engine = sim.native_engine()
    assert engine.weights_found_finite() == {"plastic"}
    sim.check_finite()
    with torch.no_grad():  # an edit after the run: the pass's note no longer holds
        sim.projections[0].weight[3] = math.nan
    assert engine.weights_found_finite() == set()
    with pytest.raises(NumericalError, match=r"projection 'plastic': weights became NaN \(1 of 60 values\)"):
        sim.check_finite()


def test_a_run_not_ending_on_a_normalisation_step_reads_the_weights():
    sim = _normalised(every=7, steps=20)
    sim.run()
    assert sim.native_engine().weights_found_finite() == set()
    sim.check_finite()


def test_the_normalisation_pass_notes_a_non_finite_weight():
    sim = _normalised(every=10, steps=20)
    sim.run(5.0)  # 10 steps: normalised on the last
    with torch.no_grad():
        sim.projections[0].weight[7] = math.nan  # kept by the clip of the first step (NaN compares false)
    # the next run normalises again on its last step: the NaN column sum leaves the NaN, and the pass notes it
    with pytest.raises(NumericalError, match=r"projection 'plastic': weights became NaN"):
        sim.run(5.0)
    assert sim.native_engine().weights_found_finite() == set()


def test_all_finite_sums_in_c_and_answers_none_for_tensors_it_cannot_read():
    engine = _normalised().native_engine()
    dtype = torch.float64
    finite = [torch.arange(n, dtype=dtype) for n in (0, 1, 7, 8, 9, 1000)]
    assert engine.all_finite(finite) is True
    for n, bad in ((1, math.nan), (9, math.inf), (1000, -math.inf)):
        t = torch.zeros(n, dtype=dtype)
        t[n - 1] = bad  # the last element: the tail after the 8-wide blocks
        assert engine.all_finite(finite + [t]) is False
    assert engine.all_finite([torch.zeros(4, 2).t()]) is None  # not contiguous
    assert engine.all_finite([torch.zeros(4, dtype=torch.float32)]) is None  # another dtype


def test_all_finite_in_float32():
    a = Assembly("f32", dt="0.1 ms", duration="1 ms")
    a.add_population("p", "lif", 3)
    sim = Simulator(a, backend="native", dtype="float32")
    sim.run()
    engine = sim.native_engine()
    assert engine.all_finite([torch.ones(17)]) is True
    big = torch.full((4,), 3e38)  # finite values whose float32 sum overflows: a false alarm the caller recounts
    assert engine.all_finite([big]) is False
    sim.check_finite()


def _numpy_plan(lam: np.ndarray):
    """The plan as written in numpy (the engine's former Python code)."""
    limits = np.exp(-lam)
    trial, index = np.nonzero(lam > 0)
    lam_max = np.where(np.isfinite(lam).all(axis=1), lam.max(axis=1, initial=0.0), np.inf)
    accept = lam[trial, index] / lam_max[trial]
    ptr = np.zeros(lam.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(trial, minlength=lam.shape[0]), out=ptr[1:])
    return limits, ptr, index, accept, lam_max


def test_the_poisson_plan_in_c_equals_the_numpy_plan():
    sim = _normalised()
    engine = sim.native_engine()
    gen = np.random.default_rng(0)
    lam = gen.uniform(0, 0.2, size=(3, 50)) * (gen.uniform(size=(3, 50)) < 0.4)
    lam[2] = 0.0  # a trial without any rate
    arrays = (np.empty(150), np.empty(4, dtype=np.int64), np.empty(150, dtype=np.int64), np.empty(150), np.empty(3))
    k = engine.lib.bc_poisson_plan(torch.from_numpy(lam).data_ptr(), 3, 50, *(a.ctypes.data for a in arrays))
    limits, ptr, index, accept, lam_max = _numpy_plan(lam)
    assert k == len(index) == ptr[-1]
    # libm's exp and numpy's may differ in the last bit
    np.testing.assert_allclose(arrays[0], limits.reshape(-1), rtol=1e-15)
    np.testing.assert_array_equal(arrays[1], ptr)
    np.testing.assert_array_equal(arrays[2][:k], index)
    np.testing.assert_array_equal(arrays[3][:k], accept)
    np.testing.assert_array_equal(arrays[4], lam_max)


def test_rest_in_place_keeps_the_bindings_and_equals_a_fresh_start():
    """rest() between presentations, as the Diehl & Cook protocol uses it: a rested run equals the same run
    from a new simulator with the same state and random stream."""
    sim = _normalised(every=1000, steps=40)
    sim.run()
    bound = [id(t) for t, _ in sim.native_engine()._bound]
    rng = sim.native_engine().rng_tensor()
    weights = sim.projections[0].weight.clone()
    sim.rest()
    sim.run()
    assert [id(t) for t, _ in sim.native_engine()._bound] == bound  # nothing rebound
    fresh = _normalised(every=1000, steps=40)
    fresh.native_engine().load_rng_tensor(rng)
    with torch.no_grad():
        fresh.projections[0].weight.copy_(weights)
    fresh.step_count = sim.step_count - 80
    fresh.run()
    for a, b in zip(sim.populations["dst"].state, fresh.populations["dst"].state):
        assert torch.equal(a, b)
    assert torch.equal(sim.projections[0].weight, fresh.projections[0].weight)
