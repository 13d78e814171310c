"""The native engine on several threads: each thread updates one part of every population and delivers spikes only
into its own part, adding them in the order one thread does, so spikes, state, ring buffers, weights and traces are
bit for bit those of one thread for any number of threads (kernel.c's threads section)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from braincore.errors import ConfigError
from braincore.graph import Assembly
from braincore.simulator import Simulator

native = pytest.importorskip("braincore.native")
try:
    native.load_library("float64")
except native.NativeUnavailable as err:  # no C compiler on this machine
    pytest.skip(f"native engine unavailable: {err}", allow_module_level=True)

LIF = {"tau_m": "20 ms", "R_m": "100 MOhm", "v_rest": "-60 mV", "v_reset": "-60 mV", "v_th": "-50 mV", "t_ref": "2 ms"}
INIT = {"v": {"dist": "uniform", "low": "-60 mV", "high": "-50 mV"}}
AMPA = {"type": "conductance", "tau": "5 ms", "E_rev": "0 mV"}
GABA = {"type": "conductance", "tau": "10 ms", "E_rev": "-80 mV"}
DELAYS = {"dist": "uniform", "low": "0.1 ms", "high": "3 ms"}


def network(dtype: str = "float64", batch: int = 2) -> Assembly:
    """Odd population sizes (parts of 64 neurons: 333 splits in 2 or 3 parts, 3 and 40 are smaller than a part),
    every synaptic kernel, per-synapse and uniform delays, sparse, all-to-all and dense projections, Poisson inputs
    (one random stream), current inputs on all or listed neurons, a model calling exp (vector math), a state
    monitor (one step per call)."""
    a = Assembly(name="threads")
    a.add_population("exc", "lif", 333, LIF, init=INIT)
    a.add_population("inh", "lif", 130, dict(LIF, reset="subtract"), method="euler", init=INIT)
    a.add_population("tiny", "lif", 3, LIF, init=INIT)
    a.add_population("adex", "adex", 150, preset="adapting",
                     init={"v": {"dist": "uniform", "low": "-70 mV", "high": "-55 mV"}})
    a.add_population("integ", "if", 40, {"C_m": "200 pF", "v_rest": "-60 mV", "v_reset": "-60 mV",
                                         "v_th": "-50 mV", "t_ref": "1 ms"})
    a.add_projection("exc", "exc", {"type": "fixed_probability", "p": 0.1}, {"dist": "uniform", "low": "0.5 nS",
                     "high": "3 nS"}, AMPA, DELAYS, sign="excitatory")
    a.add_projection("exc", "inh", {"type": "fixed_indegree", "k": 30}, "0.4 nA", {"type": "exponential", "tau":
                     "3 ms"}, "1.5 ms")
    a.add_projection("inh", "exc", {"type": "fixed_probability", "p": 0.3}, "4 nS", GABA, "0.5 ms",
                     sign="inhibitory")
    a.add_projection("exc", "tiny", {"type": "all_to_all"}, "0.2 nA", {"type": "alpha", "tau": "2 ms"}, "1 ms",
                     storage="dense")
    a.add_projection("tiny", "inh", {"type": "all_to_all"}, "0.5 mV", None, "0.3 ms", storage="sparse")
    a.add_projection("inh", "adex", {"type": "fixed_probability", "p": 0.2}, "-0.05 nA",
                     {"type": "alpha", "tau": "3 ms"}, DELAYS)
    a.add_projection("exc", "adex", {"type": "all_to_all"}, {"dist": "normal", "mean": "0.2 nS", "std": "0.05 nS"},
                     {"type": "conductance", "tau": "4 ms", "E_rev": "0 mV"}, "1 ms", storage="sparse")
    a.add_projection("adex", "integ", {"type": "fixed_indegree", "k": 20}, "0.3 nA",
                     {"type": "exponential", "tau": "2 ms"}, DELAYS)
    a.add_projection("integ", "exc", {"type": "fixed_probability", "p": 0.2}, "1 mV", None, "0.2 ms")
    a.add_input("noise", "poisson", "exc", rate="12 Hz", weight="1.5 mV", sources=60)
    a.add_input("kick", "poisson", "tiny", rate="300 Hz", weight="0.4 nA",
                synapse={"type": "exponential", "tau": "2 ms"})
    a.add_input("bias", "constant_current", "inh", amplitude="0.1 nA")
    a.add_input("few", "constant_current", "exc", amplitude="0.2 nA", neurons=[0, 70, 200, 332, 70])
    a.add_input("pulse", "step_current", "adex", amplitude="0.6 nA", start="10 ms", stop="70 ms")
    a.add_input("ramp", "time_varying_current", "integ", values=list(np.linspace(0.0, 0.3, 1000)))
    for pop in ("exc", "inh", "tiny", "adex", "integ"):
        a.add_monitor(f"{pop}_spikes", "spikes", pop)
    a.add_monitor("exc_rate", "rate", "exc", bin="2 ms")
    a.set_run(duration=100.0, dt=0.1, seed=5, dtype=dtype, batch=batch, backend="native")
    return a


def assert_identical(a: Simulator, b: Simulator) -> None:
    """Monitors, state, synaptic variables and ring buffers, weights and traces, the random stream: all equal."""
    for monitor in a.monitors:
        ma, mb = a.monitor(monitor.name), b.monitor(monitor.name)
        assert set(ma) == set(mb)
        for key in ma:
            np.testing.assert_array_equal(ma[key], mb[key], err_msg=f"{monitor.name}/{key}")
    for name, pop in a.populations.items():
        for field in pop.state._fields:
            assert torch.equal(getattr(pop.state, field), getattr(b.populations[name].state, field)), (name, field)
    for ga, gb in zip(a.groups, b.groups):
        for key in ("x", "h", "ring"):
            ta, tb = getattr(ga, key), getattr(gb, key)
            assert (ta is None and tb is None) or torch.equal(ta, tb), key
    for pa, pb in zip(a.projections, b.projections):
        assert torch.equal(pa.weight, pb.weight), pa.name
        assert set(pa.rule_state or {}) == set(pb.rule_state or {})
        for key, value in (pa.rule_state or {}).items():
            assert torch.equal(value, pb.rule_state[key]), (pa.name, key)
    assert torch.equal(a.native_engine().rng_tensor(), b.native_engine().rng_tensor())


def run(assembly: Assembly, threads: int, pieces=(100.0,)) -> Simulator:
    sim = Simulator(assembly, threads=threads)
    for duration in pieces:
        sim.run(duration)
    assert sim.engine == "native" and sim.native_engine().threads == threads
    return sim


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_spikes_and_state_are_the_same_for_any_number_of_threads(dtype):
    one = run(network(dtype), 1)
    counts = one.spike_counts()
    assert all(c > 0 for c in counts.values()), counts  # every population takes part
    bounds = one.native_engine()._bounds
    assert all(len(b) == 2 for b in bounds)
    for threads in (2, 3):
        many = run(network(dtype), threads)
        engine = many.native_engine()
        parts = engine._bounds[0]  # exc: 333 neurons cut at multiples of 64 into parts (some empty)
        assert len(parts) == engine.parts + 1 == threads + 1 and (np.diff(parts) > 0).all(), parts
        assert all(bool(J.cuts) != bool(J.full) for J in engine.projs)  # sparse rows cut by part (sorted by post)
        assert_identical(one, many)


def test_several_parts_per_thread_give_the_same_results(monkeypatch):
    from braincore.native import engine

    one = run(network(), 1, (50.0,))
    monkeypatch.setattr(engine, "PARTS_PER_THREAD", 3)
    many = run(network(), 2, (50.0,))
    assert many.native_engine().parts == 6  # exc: 333 neurons, parts at multiples of 64, some empty
    assert_identical(one, many)


def test_several_trials_and_a_state_monitor_with_threads():
    def with_state(batch: int) -> Assembly:
        a = network(batch=batch)
        a.add_monitor("adex_v", "state", "adex", ["v", "w"], neurons=[0, 64, 149])
        a.set_run(duration=30.0)
        return a

    for batch in (1, 3):
        assert_identical(run(with_state(batch), 1, (30.0,)), run(with_state(batch), 2, (30.0,)))


def test_resume_from_a_checkpoint_with_another_number_of_threads(tmp_path):
    whole = run(network(), 1)
    first = run(network(), 3, (37.0,))
    path = first.save(tmp_path / "ckpt.pt")
    resumed = Simulator(network(), threads=2).load(path)
    resumed.run(63.0)
    first.run(63.0)
    for sim in (first, resumed):
        for name in whole.populations:
            for field in whole.populations[name].state._fields:
                assert torch.equal(getattr(whole.populations[name].state, field),
                                   getattr(sim.populations[name].state, field))
        for monitor in ("exc_spikes", "adex_spikes"):
            a, b = whole.monitor(monitor), sim.monitor(monitor)
            for key in ("step", "trial", "neuron"):
                np.testing.assert_array_equal(a[key][a["step"] >= 370], b[key][b["step"] >= 370])
    assert_identical(whole, first)


def plastic_network(batch: int = 2, all_to_all: bool = False) -> Assembly:
    a = Assembly(name="plastic")
    a.add_population("inp", "lif", 200, {"tau_m": "10 ms"},
                     init={"v": {"dist": "uniform", "low": "-70 mV", "high": "-52 mV"}})
    a.add_population("out", "lif", 150, {"t_ref": "2 ms"},
                     init={"v": {"dist": "uniform", "low": "-70 mV", "high": "-52 mV"}})
    a.add_input("drive", "constant_current", "inp", amplitude="0.3 nA")
    a.add_input("noise", "poisson", "inp", rate="40 Hz", weight="3 mV", sources=20)
    rule = [{"rule": "stdp", "A_plus": 0.05, "A_minus": 0.06, "w_max": 1.5},
            {"rule": "normalize", "total": 30.0, "every": 10}]
    a.add_projection("inp", "out", {"type": "all_to_all"} if all_to_all else {"type": "fixed_probability", "p": 0.3},
                     {"dist": "uniform", "low": 0.1, "high": 0.6}, {"type": "exponential", "tau": "5 ms"},
                     "1 ms" if all_to_all else DELAYS, plasticity=rule, storage="sparse")
    a.add_projection("out", "out", {"type": "fixed_probability", "p": 0.1}, "-0.5 mV")
    a.add_projection("out", "inp", {"type": "fixed_probability", "p": 0.1},
                     {"dist": "uniform", "low": 0.1, "high": 0.4}, None, DELAYS,
                     plasticity={"rule": "triplet_stdp", "A2_plus": 0.01, "A3_plus": 0.02, "w_max": 1.0},
                     storage="sparse")
    a.add_monitor("spikes", "spikes", "out")
    a.set_run(duration=100.0, dt=0.1, seed=3, dtype="float64", batch=batch, backend="native")
    return a


@pytest.mark.parametrize("all_to_all", [False, True])
def test_plastic_projections_learn_the_same_weights_on_threads(all_to_all, tmp_path):
    one = run(plastic_network(all_to_all=all_to_all), 1, (40.0, 60.0))
    assert len(one.monitor("spikes")["t"]) > 100
    untrained = Simulator(plastic_network(all_to_all=all_to_all)).projections[0].weight
    assert not torch.equal(one.projections[0].weight, untrained)  # it learned
    for threads in (2, 3):
        assert_identical(one, run(plastic_network(all_to_all=all_to_all), threads, (40.0, 60.0)))
    # a checkpoint written on 1 or 2 threads resumes on 1 or 3 as the uninterrupted run goes on (the step after a
    # normalisation clamps every weight, as the PyTorch engine does: without that, the resumed run clamped weights
    # the uninterrupted one did not)
    for before, after in ((1, 1), (2, 3)):
        path = run(plastic_network(all_to_all=all_to_all), before, (40.0,)).save(tmp_path / f"plastic{before}.pt")
        resumed = Simulator(plastic_network(all_to_all=all_to_all), threads=after).load(path)
        resumed.run(60.0)
        assert_identical(one, resumed)


def test_rows_not_sorted_by_post_neuron_are_filtered_with_the_same_results():
    """A projection whose rows list their post neurons out of order (a user's synapse list): no row cuts, each thread
    tests every synapse of a row; without repeated pairs the order within a row changes no sum."""
    def shuffled(threads: int) -> Simulator:
        sim = Simulator(network(), threads=threads)
        proj = sim.projections[0]  # exc -> exc, per-synapse delays
        indptr = proj.indptr.tolist()
        order = torch.cat([torch.arange(indptr[i], indptr[i + 1]).flip(0) for i in range(len(indptr) - 1)])
        proj.post_idx.copy_(proj.post_idx[order])
        proj.weight.data.copy_(proj.weight[order])
        proj.delay.copy_(proj.delay[order])
        sim.run(60.0)
        return sim

    reference = Simulator(network(), threads=1)
    reference.run(60.0)
    for threads in (1, 2):
        sim = shuffled(threads)
        assert not sim.native_engine().projs[0].cuts  # one part, or filtered rows
        for monitor in ("exc_spikes", "inh_spikes", "adex_spikes"):
            for key in ("step", "trial", "neuron"):
                np.testing.assert_array_equal(reference.monitor(monitor)[key], sim.monitor(monitor)[key])
        for name, pop in reference.populations.items():
            assert torch.equal(pop.state.v, sim.populations[name].state.v)


def test_spike_file_inputs_on_threads(tmp_path):
    rng = np.random.default_rng(4)
    path = tmp_path / "events.npz"
    np.savez(path, times=rng.uniform(0.0, 60.0, 3000), neurons=rng.integers(0, 250, 3000))

    def replay() -> Assembly:
        a = Assembly(name="replay")
        a.add_population("p", "lif", 250, LIF, init=INIT)
        a.add_input("file", "spike_file", "p", path=str(path), weight="2 nA",
                    synapse={"type": "exponential", "tau": "3 ms"})
        a.add_projection("p", "p", {"type": "fixed_probability", "p": 0.1}, "1 mV", None, DELAYS)
        a.add_monitor("spikes", "spikes", "p")
        a.set_run(duration=60.0, dt=0.1, seed=1, dtype="float64", batch=2, backend="native")
        return a

    one = run(replay(), 1, (23.3, 36.7))
    assert len(one.monitor("spikes")["t"]) > 100
    assert_identical(one, run(replay(), 2, (23.3, 36.7)))


def test_threads_setting_auto_environment_and_errors(monkeypatch, tmp_path):
    from braincore.assembly_config import load_assembly
    from braincore.validation import resolve_threads

    monkeypatch.delenv("BRAINCORE_THREADS", raising=False)
    assert Simulator(network()).threads == 1
    monkeypatch.setenv("BRAINCORE_THREADS", "3")
    assert Simulator(network()).threads == 3
    assert Simulator(network(), threads=2).threads == 2  # the argument first
    a = network()
    a.set_run(threads=1)
    assert Simulator(a).threads == 1  # then the run settings
    monkeypatch.setenv("BRAINCORE_THREADS", "auto")
    assert Simulator(network()).threads == resolve_threads("auto") >= 1
    monkeypatch.setenv("BRAINCORE_THREADS", "many")
    with pytest.raises(ConfigError, match="BRAINCORE_THREADS"):
        Simulator(network())
    monkeypatch.delenv("BRAINCORE_THREADS")
    with pytest.raises(ConfigError, match="threads"):
        Simulator(network(), threads=0)
    path = tmp_path / "net.yaml"
    path.write_text("kind: assembly\nthreads: auto\npopulations:\n  p: {model: lif, size: 10}\n")
    assert Simulator(load_assembly(path)).threads == resolve_threads("auto")
    path.write_text("kind: assembly\nbackend: native\nthreads: 0\npopulations:\n  p: {model: lif, size: 10}\n")
    with pytest.raises(ConfigError) as err:
        load_assembly(path)
    assert "net.yaml:3" in str(err.value) and "threads" in str(err.value)


def test_a_build_without_openmp_runs_one_thread_and_says_so(monkeypatch):
    from braincore.native import build

    monkeypatch.setenv("BRAINCORE_NO_OPENMP", "1")
    build.openmp_flags.cache_clear()
    build.load_generated.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match="one thread"):
            sim = Simulator(network(), threads=2)
            sim.run(20.0)
        assert sim.native_engine().threads == 1 and "OpenMP" in sim.native_engine().threads_note
    finally:
        monkeypatch.delenv("BRAINCORE_NO_OPENMP")
        build.openmp_flags.cache_clear()
        build.load_generated.cache_clear()
    reference = Simulator(network(), threads=2)
    reference.run(20.0)
    assert_identical(reference, sim)


def test_poisson_source_populations_on_threads():
    """A Poisson source population (drawn on the calling thread, in population order) feeding two populations
    through a sparse and an all-to-all projection, with STDP: the same results on 1, 2 and 3 threads."""
    a = Assembly("sources_threads")
    a.add_population("src", "poisson", 150, {"rate": "60 Hz"})
    a.add_population("exc", "lif", 333, {"tau_m": "10 ms", "v_th": "-55 mV"})
    a.add_population("inh", "lif", 70, {"tau_m": "10 ms", "v_th": "-55 mV"})
    a.add_projection("src", "exc", {"type": "fixed_probability", "p": 0.2}, "0.3 nA",
                     {"type": "exponential", "tau": "5 ms"}, name="src_exc")
    a.add_projection("src", "inh", {"type": "all_to_all"}, {"dist": "uniform", "low": 0.01, "high": 0.05},
                     {"type": "exponential", "tau": "5 ms"}, name="src_inh", storage="sparse",
                     plasticity=[{"rule": "stdp", "w_max": 0.1}])
    for pop in ("src", "exc", "inh"):
        a.add_monitor(f"{pop}_spikes", "spikes", pop)
    a.set_run(duration=100.0, dt=0.1, seed=9, dtype="float64", batch=2, backend="native")
    sims = [run(a, threads) for threads in (1, 2, 3)]
    assert len(sims[0].monitor("src_spikes")["neuron"]) > 100 and len(sims[0].monitor("exc_spikes")["neuron"]) > 0
    for other in sims[1:]:
        assert_identical(sims[0], other)
