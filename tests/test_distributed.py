"""The distributed engine: counter-based draws, partitions, post-synaptic construction, bit-identical spikes and
states on 1, 2 and 3 processes (gloo over a file:// rendezvous on this machine), exact resume from per-rank
checkpoints, YAML configs and the refusal of what it does not support."""
import json

import numpy as np
import pytest
import torch

from braincore.assembly_config import assembly_from_text
from braincore.distributed import DistributedSimulator, partition_table, rng
from braincore.distributed.connectivity import connector_options, incoming
from braincore.distributed.launch import spawn_run
from braincore.graph import Assembly
from braincore.errors import ConfigError

# A small Brunel-like E/I network in float64: current-based LIF, voltage-jump synapses with delays of 1.5 and
# 2 ms at dt = 0.1 ms (minimum delay 15 steps: spikes are exchanged once every 15 steps), Poisson drive.
BRUNEL_LIKE = """
kind: assembly
name: ei
dt: 0.1 ms
duration: 100 ms
seed: 3
dtype: float64
populations:
  exc: {model: lif, size: 320, params: &c {tau_m: 20 ms, R_m: 100 MOhm, v_rest: 0 mV, v_reset: 10 mV, v_th: 20 mV,
                                           t_ref: 2 ms},
        init: {v: {dist: uniform, low: 0 mV, high: 20 mV}}}
  inh: {model: lif, size: 80, params: *c, init: {v: {dist: normal, mean: 10 mV, std: 3 mV}}}
projections:
  - {name: ee, pre: exc, post: exc, connector: {type: fixed_indegree, k: 32, allow_self: false}, weight: 0.2 mV,
     delay: 1.5 ms, sign: excitatory}
  - {name: ei, pre: exc, post: inh, connector: {type: fixed_probability, p: 0.1},
     weight: {dist: normal, mean: 0.2 mV, std: 0.05 mV}, delay: 1.5 ms, sign: excitatory}
  - {name: ie, pre: inh, post: exc, connector: {type: fixed_indegree, k: 8}, weight: 1.0 mV, delay: 2 ms,
     sign: inhibitory}
  - {name: ii, pre: inh, post: inh, connector: {type: fixed_probability, p: 0.1, allow_self: false},
     weight: {dist: uniform, low: 0.5 mV, high: 1.5 mV}, delay: 1.5 ms, sign: inhibitory}
inputs:
  - {name: ext_e, type: poisson, target: exc, params: {rate: 20 Hz, sources: 1000, weight: 0.1 mV}}
  - {name: ext_i, type: poisson, target: inh, params: {rate: 20 Hz, sources: 1000, weight: 0.1 mV}}
monitors:
  - {name: exc_spikes, type: spikes, target: exc}
  - {name: inh_spikes, type: spikes, target: inh}
"""
STATES = [("exc", "v"), ("inh", "v"), ("exc", "refrac")]


@pytest.fixture(scope="module")
def network():
    return assembly_from_text(BRUNEL_LIKE)


@pytest.fixture(scope="module")
def single(network):
    """The one-process run (this process, no torch.distributed): the reference."""
    return spawn_run(network, 1, {"states": STATES}, workdir=None)


@pytest.fixture(scope="module")
def two_ranks(network, tmp_path_factory):
    return spawn_run(network, 2, {"partition": "blocks", "states": STATES},
                     workdir=tmp_path_factory.mktemp("two"))


def assert_same_run(a: dict, b: dict) -> None:
    for name in a["monitors"]:
        for key in ("step", "neuron", "counts"):
            assert np.array_equal(a["monitors"][name][key], b["monitors"][name][key]), (name, key)
    for key in a["states"]:
        assert a["states"][key].dtype == torch.float64
        assert torch.equal(a["states"][key], b["states"][key]), key  # bit for bit


# ------------------------------------------------------------------------------------------ draws
def _splitmix_reference(seed: int, *keys: int) -> int:
    mask = (1 << 64) - 1

    def mix(z):
        z = (z + 0x9E3779B97F4A7C15) & mask
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        return z ^ (z >> 31)

    h = mix(seed & mask)
    for k in keys:
        h = mix(h ^ (k & mask))
    return h


def test_hash_is_splitmix64_with_wrapping_int64():
    keys = torch.tensor([0, 1, 2, 12345, 2 ** 40 + 7, -1, -(2 ** 63), 2 ** 63 - 1])
    got = rng.hash_keys(11, 5, keys, 9)
    for value, key in zip(got.tolist(), keys.tolist()):
        assert value & ((1 << 64) - 1) == _splitmix_reference(11, 5, key, 9)
    u = rng.uniform(1, 2, torch.arange(100_000))
    assert float(u.min()) > 0.0 and float(u.max()) < 1.0 and abs(float(u.mean()) - 0.5) < 0.005


def test_inverse_cdf_draws_have_the_right_law():
    u = rng.uniform(4, 1, torch.arange(200_000))
    poisson = rng.inverse_cdf(rng.cdf_table_poisson(2.0), u).double()
    assert abs(float(poisson.mean()) - 2.0) < 0.02 and abs(float(poisson.var()) - 2.0) < 0.04
    binom = rng.inverse_cdf(rng.cdf_table_binomial(3200, 0.02), u).double()
    assert abs(float(binom.mean()) - 64.0) < 0.1 and abs(float(binom.var()) - 62.72) < 1.5
    z = rng.normal(4, 2, torch.arange(200_000))
    assert abs(float(z.mean())) < 0.01 and abs(float(z.std()) - 1.0) < 0.01


# ------------------------------------------------------------------------------------------ partitions
@pytest.mark.parametrize("scheme", ["blocks", "round_robin", "populations"])
def test_every_neuron_has_exactly_one_owner(scheme):
    sizes = {"a": 10, "b": 7, "big": 101}
    for world in (1, 2, 3, 4):
        table = partition_table(sizes, world, scheme)
        for name, n in sizes.items():
            owned = torch.cat([table[r][name] for r in range(world)])
            assert torch.equal(torch.sort(owned).values, torch.arange(n))
            assert all(bool((table[r][name][1:] > table[r][name][:-1]).all()) for r in range(world))
        loads = [sum(int(t.numel()) for t in table[r].values()) for r in range(world)]
        assert max(loads) - min(loads) <= (3 if scheme != "populations" else 30)


@pytest.mark.parametrize("connector", [{"type": "fixed_indegree", "k": 30, "allow_self": False},
                                       {"type": "fixed_indegree", "k": 150},   # dense selection (k > m/4)
                                       {"type": "fixed_probability", "p": 0.05, "allow_self": False},
                                       {"type": "fixed_probability", "p": 0.4},  # Bernoulli per pair
                                       {"type": "all_to_all", "allow_self": False}, {"type": "one_to_one"},
                                       {"type": "fixed_outdegree", "k": 20, "allow_self": False},  # drawn whole
                                       {"type": "fixed_total", "n": 4000}])
def test_incoming_synapses_do_not_depend_on_the_partition(connector):
    n = 300
    opts = connector_options(connector, n, n, True, "test")
    whole = incoming(opts, n, torch.arange(n), 7, "p")
    pieces = [incoming(opts, n, posts, 7, "p") for posts in (torch.arange(0, n, 3), torch.arange(1, n, 3),
                                                             torch.arange(2, n, 3))]
    pre = torch.cat([p.pre for p in pieces])
    post = torch.cat([p.post for p in pieces])
    slot = torch.cat([p.slot for p in pieces])
    order = torch.sort(post * n + pre).indices
    assert torch.equal(pre[order], whole.pre) and torch.equal(post[order], whole.post)
    assert torch.equal(slot[order], whole.slot)
    key = whole.post * n + whole.pre
    assert bool((key[1:] > key[:-1]).all())  # rows ascending, no multapses
    if not opts.get("exclude_self", False) or connector["type"] == "one_to_one":
        return
    assert not bool((whole.pre == whole.post).any())
    counts = torch.bincount(whole.post, minlength=n).double()
    if connector["type"] == "fixed_indegree":
        assert bool((counts == connector["k"]).all())
    elif connector["type"] == "fixed_probability":
        assert abs(float(counts.mean()) - 0.05 * (n - 1)) < 0.5


# ------------------------------------------------------------------------------------------ runs
def test_one_two_and_three_processes_give_identical_spikes_and_states(network, single, two_ranks, tmp_path):
    three = spawn_run(network, 3, {"partition": "round_robin", "states": STATES}, workdir=tmp_path)
    spikes = {name: len(m["step"]) for name, m in single["monitors"].items()}
    assert spikes["exc_spikes"] > 1000 and spikes["inh_spikes"] > 200, spikes  # a non-trivial raster
    assert len(np.unique(single["monitors"]["exc_spikes"]["neuron"])) > 300
    assert single["min_delay"] == 15 and single["steps"] == 1000
    assert_same_run(single, two_ranks)
    assert_same_run(single, three)
    # each rank holds only its own post neurons' synapses; together they are the whole network
    total = single["local_synapses"][0]
    for run in (two_ranks, three):
        per_rank = run["local_synapses"]
        assert len(per_rank) == run["world_size"]
        for name, count in total.items():
            assert sum(r[name] for r in per_rank) == count
            assert all(r[name] < count for r in per_rank)
    # spikes really crossed process boundaries, once per 15-step interval
    stats = three["stats"]
    assert all(s["intervals"] == 1000 // 15 for s in stats)
    exchanged = sum(int((m["step"] < 66 * 15).sum()) for m in single["monitors"].values())
    assert sum(s["spikes_sent"] for s in stats) == exchanged  # the last 10 steps' spikes wait for step 1005
    assert all(s["spikes_received"] > 0 and s["bytes_wire"] > 0 for s in stats)


def test_resume_from_per_rank_checkpoints_is_exact(network, single, tmp_path):
    # 50.3 ms is step 503, inside a 15-step interval: the buffered spikes go through the checkpoint too
    ckpt = tmp_path / "ckpt" / "ei"
    spawn_run(network, 2, {"partition": "populations", "run": [50.3], "save": str(ckpt)}, workdir=tmp_path)
    assert sorted(p.name for p in ckpt.parent.iterdir()) == ["ei.rank0-of-2", "ei.rank1-of-2"]
    resumed = spawn_run(network, 2, {"partition": "populations", "load": str(ckpt), "run": [49.7],
                                     "states": STATES}, workdir=tmp_path)
    assert resumed["steps"] == 1000
    assert_same_run(single, resumed)
    # and the wrong world size is refused with a clear message
    sim = DistributedSimulator(network, partition="populations")
    with pytest.raises(ConfigError, match="resume with the world size that wrote it"):
        sim.load(ckpt)


def test_run_segments_and_one_process_resume_are_exact(network, single, tmp_path):
    sim = DistributedSimulator(network)
    sim.run(33.3)
    sim.save(tmp_path / "a")
    other = DistributedSimulator(network).load(tmp_path / "a")
    other.run(66.7)
    sim.run(66.7)
    for s in (sim, other):
        got = s.gather_monitors()
        for name, ref in single["monitors"].items():
            assert np.array_equal(got[name]["step"], ref["step"]) and np.array_equal(got[name]["neuron"], ref["neuron"])
        assert torch.equal(s.gather_state("exc", "v"), single["states"]["exc.v"])


def _coba_small() -> Assembly:
    """COBA-like (conductance LIF, 240 + 60 neurons, p = 0.1), driven by a constant current: no Poisson input."""
    a = Assembly("coba_small")
    a.set_run(dt=0.1, duration=150.0, seed=2, dtype="float64")
    cell = {"tau_m": "20 ms", "R_m": "100 MOhm", "v_rest": "-60 mV", "v_reset": "-60 mV", "v_th": "-50 mV",
            "t_ref": "5 ms"}
    a.add_population("exc", "lif", 240, params=cell, init={"v": {"dist": "normal", "mean": "-55 mV", "std": "5 mV"}})
    a.add_population("inh", "lif", 60, params=cell, init={"v": {"dist": "uniform", "low": "-60 mV", "high": "-50 mV"}})
    ampa = {"type": "conductance", "tau": "5 ms", "E_rev": "0 mV"}
    gaba = {"type": "conductance", "tau": "10 ms", "E_rev": "-80 mV"}
    for pre, post, syn, w in (("exc", "exc", ampa, "6 nS"), ("exc", "inh", ampa, "6 nS"),
                              ("inh", "exc", gaba, "67 nS"), ("inh", "inh", gaba, "67 nS")):
        a.add_projection(pre, post, connector={"type": "fixed_probability", "p": 0.1}, weight=w, synapse=syn,
                         delay="0.5 ms", name=pre[0] + post[0], sign="excitatory" if pre == "exc" else "inhibitory",
                         storage="sparse")
    a.add_input("drive_e", "constant_current", "exc", params={"amplitude": "0.25 nA"})
    a.add_input("drive_i", "constant_current", "inh", params={"amplitude": "0.25 nA"})
    a.add_monitor("exc_spikes", "spikes", "exc")
    a.add_monitor("inh_spikes", "spikes", "inh")
    return a


def _mixed() -> Assembly:
    """Every other construction path: AdEx and Izhikevich populations (exp and v**2 in their steps), the
    whole-projection connectors (fixed_outdegree, fixed_total), fixed_indegree, all_to_all with an explicit weight
    list, lognormal / normal-with-clip / uniform weights, uniform and normal delay distributions (so projections of
    different delays feed one synaptic variable), exponential and alpha kernels; constant-current drive."""
    a = Assembly("mixed")
    a.set_run(dt=0.1, duration=150.0, seed=5, dtype="float64")
    a.add_population("exc", "adex", 160, init={"v": {"dist": "uniform", "low": "-70 mV", "high": "-55 mV"}})
    a.add_population("inh", "izhikevich", 40, preset="fast_spiking",
                     init={"v": {"dist": "normal", "mean": "-65 mV", "std": "3 mV"}})
    fast, slow = {"type": "exponential", "tau": "5 ms"}, {"type": "exponential", "tau": "10 ms"}
    a.add_projection("exc", "exc", connector={"type": "fixed_outdegree", "k": 8, "allow_self": False},
                     weight={"dist": "lognormal", "mean": "0.05 nA", "std": "0.02 nA"}, synapse=fast,
                     delay={"dist": "uniform", "low": "0.5 ms", "high": "2 ms"}, name="ee", sign="excitatory")
    a.add_projection("exc", "inh", connector={"type": "fixed_total", "n": 600},
                     weight={"dist": "normal", "mean": 1.0, "std": 0.3, "clip": [0, None]},
                     synapse={"type": "alpha", "tau": "3 ms"}, name="ei", sign="excitatory",
                     delay={"dist": "normal", "mean": "1 ms", "std": "0.3 ms", "clip": ["0.3 ms", "3 ms"]})
    a.add_projection("inh", "exc", connector={"type": "fixed_indegree", "k": 10},
                     weight={"dist": "uniform", "low": "0.05 nA", "high": "0.15 nA"}, synapse=slow, delay="1 ms",
                     name="ie", sign="inhibitory")
    a.add_projection("exc", "exc", connector={"type": "fixed_probability", "p": 0.05}, weight="0.02 nA",
                     synapse=fast, delay="0.7 ms", name="ee2", sign="excitatory")
    a.add_projection("inh", "inh", connector={"type": "all_to_all", "allow_self": False},
                     weight=[0.5 + 0.001 * i for i in range(40 * 39)], synapse=slow, delay="0.8 ms", name="ii",
                     sign="inhibitory")
    a.add_input("drive_e", "constant_current", "exc", params={"amplitude": "0.8 nA"})
    a.add_input("drive_i", "constant_current", "inh", params={"amplitude": 5})
    a.add_monitor("exc_spikes", "spikes", "exc")
    a.add_monitor("inh_spikes", "spikes", "inh")
    return a


def _gif() -> Assembly:
    """GIF neurons (braincore/neurons/gif.py: spike-triggered current and moving threshold, exponential Euler) with a
    LIF inhibitory population: a model added as one file runs on every engine."""
    a = Assembly("gif_net")
    a.set_run(dt=0.1, duration=150.0, seed=7, dtype="float64")
    a.add_population("exc", "gif", 160, init={"v": {"dist": "uniform", "low": "-70 mV", "high": "-55 mV"}})
    a.add_population("inh", "lif", 40, init={"v": {"dist": "uniform", "low": "-70 mV", "high": "-52 mV"}})
    a.add_projection("exc", "exc", connector={"type": "fixed_probability", "p": 0.1}, weight="0.02 nA",
                     synapse={"type": "exponential", "tau": "5 ms"}, delay="1 ms", name="ee", sign="excitatory")
    a.add_projection("exc", "inh", connector={"type": "fixed_indegree", "k": 20}, weight="1 mV", delay="0.5 ms",
                     name="ei", sign="excitatory")
    a.add_projection("inh", "exc", connector={"type": "fixed_indegree", "k": 10}, weight="0.05 nA",
                     synapse={"type": "exponential", "tau": "10 ms"}, delay="1 ms", name="ie", sign="inhibitory")
    a.add_input("drive_e", "constant_current", "exc", params={"amplitude": "0.4 nA"})
    a.add_input("drive_i", "constant_current", "inh", params={"amplitude": "0.05 nA"})
    a.add_monitor("exc_spikes", "spikes", "exc")
    a.add_monitor("inh_spikes", "spikes", "inh")
    return a


def _native_available() -> bool:
    try:
        from braincore import native

        native.load_library("float64")
        return True
    except Exception:  # no C compiler on this machine
        return False


@pytest.mark.parametrize("build", [_coba_small, _mixed, _gif], ids=["coba_small", "mixed", "gif"])
def test_one_network_on_every_engine(build, tmp_path):
    """One description, one network: the Simulator (PyTorch and native engines) and the distributed engine on 1 and
    2 processes build the same synapses and initial state (counter-based draws) and, with no Poisson input,
    compute the same spikes and membrane potentials in float64, bit for bit."""
    from braincore.simulator import Simulator

    network = build()
    backends = ["torch"] + (["native"] if _native_available() else [])
    runs = {}
    for backend in backends:
        sim = Simulator(network, backend=backend)
        assert sim.engine == backend
        sim.run()
        runs[backend] = ({n: (np.asarray(sim.monitor(n)["step"]), np.asarray(sim.monitor(n)["neuron"]))
                          for n in ("exc_spikes", "inh_spikes")}, sim.populations["exc"].state.v[0].clone())
    for world in (1, 2):
        got = spawn_run(network, world, {"states": [("exc", "v")]}, workdir=tmp_path / str(world))
        runs[f"distributed x{world}"] = ({n: (m["step"], m["neuron"]) for n, m in got["monitors"].items()},
                                         got["states"]["exc.v"])
    spikes, v = runs["torch"]
    assert len(spikes["exc_spikes"][0]) > 200 and len(spikes["inh_spikes"][0]) > 50, {
        n: len(s[0]) for n, s in spikes.items()}
    for engine, (other, other_v) in runs.items():
        for name in spikes:
            assert np.array_equal(other[name][0], spikes[name][0]), (engine, name, "step")
            assert np.array_equal(other[name][1], spikes[name][1]), (engine, name, "neuron")
        assert other_v.dtype == torch.float64 and torch.equal(other_v, v), engine


def test_the_simulator_holds_the_union_of_the_ranks_synapses():
    """The Simulator's synapses are the distributed engine's, slice for slice (same pre, post, weight, delay)."""
    from braincore.construction import build_projection
    from braincore.simulator import Simulator

    network = _mixed()
    sim = Simulator(network, backend="torch")
    for spec, proj in zip(network.projections(), sim.projections):
        n_pre, n_post = proj.n_pre, proj.n_post
        kind = sim.groups[proj.group].kind
        from braincore.validation import weight_dimension

        dim = weight_dimension(kind, sim.populations[spec.post].model.input_unit)
        pieces = [build_projection(spec, n_pre, n_post, kind=kind, dimension=dim, seed=sim.seed, dt=sim.dt,
                                   posts=torch.arange(r, n_post, 3)) for r in range(3)]
        pre = torch.cat([p.pre for p in pieces])
        post = torch.cat([p.post for p in pieces])
        order = torch.sort(pre * n_post + post, stable=True).indices
        counts = torch.bincount(pre, minlength=n_pre)
        assert torch.equal(proj.indptr[1:] - proj.indptr[:-1], counts)
        assert torch.equal(post[order], proj.post_idx)
        assert torch.equal(torch.cat([p.weight for p in pieces])[order], proj.weight)
        assert torch.equal(torch.cat([p.delay for p in pieces])[order], proj.delay)


def test_connectivity_statistics():
    """fixed_probability: fan-in ~ Binomial(m, p) (mean and variance), every pair equally likely; fixed_indegree,
    fixed_outdegree, fixed_total: exact counts, no repeated pair, no self-connection when excluded."""
    from braincore.construction import connector_options, incoming

    n, p = 2000, 0.02
    m = n - 1
    opts = connector_options({"type": "fixed_probability", "p": p, "allow_self": False}, n, n, True, "t")
    syn = incoming(opts, n, torch.arange(n), 11, "fp")
    fan_in = torch.bincount(syn.post, minlength=n).double()
    mean, var = m * p, m * p * (1 - p)
    # the sample mean of n fan-ins has sd sqrt(var / n) = 0.14; the sample variance's sd is about var sqrt(2 / n)
    assert abs(float(fan_in.mean()) - mean) < 4 * (var / n) ** 0.5
    assert abs(float(fan_in.var()) - var) < 4 * var * (2 / n) ** 0.5
    fan_out = torch.bincount(syn.pre, minlength=n).double()
    assert abs(float(fan_out.mean()) - mean) < 4 * (var / n) ** 0.5
    assert not bool((syn.pre == syn.post).any())
    assert torch.unique(syn.post * n + syn.pre).numel() == syn.pre.numel()
    # pre neurons are uniform within a row: the chosen indices' mean is (m - 1) / 2 (+ self-skip shift)
    assert abs(float(syn.pre.double().mean()) - (n - 1) / 2) < 4 * (n / (12 ** 0.5)) / syn.pre.numel() ** 0.5
    # dense Bernoulli regime (p > 1/4)
    opts = connector_options({"type": "fixed_probability", "p": 0.4}, 300, 200, False, "t")
    fan_in = torch.bincount(incoming(opts, 300, torch.arange(200), 3, "fpd").post, minlength=200).double()
    assert abs(float(fan_in.mean()) - 120) < 4 * (72 / 200) ** 0.5
    assert abs(float(fan_in.var()) - 72) < 4 * 72 * (2 / 200) ** 0.5
    for spec, check in (
            ({"type": "fixed_indegree", "k": 25, "allow_self": False},
             lambda s: bool((torch.bincount(s.post, minlength=n) == 25).all())),
            ({"type": "fixed_indegree", "k": 900},
             lambda s: bool((torch.bincount(s.post, minlength=n) == 900).all())),
            ({"type": "fixed_outdegree", "k": 30, "allow_self": False},
             lambda s: bool((torch.bincount(s.pre, minlength=n) == 30).all())),
            ({"type": "fixed_total", "n": 12345, "allow_self": False}, lambda s: s.pre.numel() == 12345),
            ({"type": "fixed_total", "n": 3_000_000}, lambda s: s.pre.numel() == 3_000_000)):
        opts = connector_options(spec, n, n, True, "t")
        syn = incoming(opts, n, torch.arange(n), 5, "x")
        assert check(syn), spec
        assert torch.unique(syn.post * n + syn.pre).numel() == syn.pre.numel(), spec
        if spec.get("allow_self") is False:
            assert not bool((syn.pre == syn.post).any()), spec
    opts = connector_options({"type": "fixed_total", "n": 5000, "multapses": True}, 30, 30, True, "t")
    syn = incoming(opts, 30, torch.arange(30), 5, "x")
    assert syn.pre.numel() == 5000 and torch.unique(syn.post * 30 + syn.pre).numel() < 900


def test_unary_functions_give_the_same_bits_wherever_the_neuron_sits():
    """What partition_hazards relies on: exp, log, ... of a neuron do not depend on its position in the tensor."""
    x = torch.linspace(-3.0, 3.0, 10007, dtype=torch.float64)
    for f in (torch.exp, torch.expm1, torch.tanh, torch.sin, torch.cos, lambda z: torch.log(z.abs() + 0.1),
              lambda z: torch.log1p(z.abs()), lambda z: torch.sqrt(z.abs())):
        whole = f(x)
        for lo, n in ((0, 1), (1, 3), (3, 5), (5, 7), (7, 9), (1, 17), (2, 33), (5, 1001)):
            assert torch.equal(f(x[lo:lo + n].clone()), whole[lo:lo + n])


# ------------------------------------------------------------------------------------------ configs, errors
def test_distributed_config_runs_from_yaml_on_one_process(tmp_path, capsys):
    from braincore.cli import main

    (tmp_path / "net.yaml").write_text(BRUNEL_LIKE)
    (tmp_path / "run.yaml").write_text("kind: distributed\nname: ei_small\nassembly: net.yaml\n"
                                       "partition: {scheme: round_robin}\nduration: 20 ms\n")
    assert main(["run", str(tmp_path / "run.yaml"), "--out", str(tmp_path / "out"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["ok"] and summary["engine"] == "distributed" and summary["world_size"] == 1
    assert summary["steps"] == 200 and summary["min_delay_steps"] == 15 and summary["partition"] == "round_robin"
    data = np.load(summary["npz"])
    assert data["exc_spikes/counts"].sum() == summary["spikes"]["exc"] > 0
    # the bundled configs validate (kind: distributed registered by the CLI)
    assert main(["validate", "configs/distributed/coba.yaml"]) == 0
    assert main(["validate", "configs/distributed/brunel.yaml"]) == 0


def test_bad_distributed_config_names_the_problem(tmp_path, capsys):
    from braincore.cli import main

    (tmp_path / "net.yaml").write_text(BRUNEL_LIKE.replace("type: spikes, target: inh", "type: rate, target: inh"))
    (tmp_path / "run.yaml").write_text("kind: distributed\nassembly: net.yaml\npartition: {scheme: stripes}\n")
    assert main(["validate", str(tmp_path / "run.yaml")]) == 1
    out = capsys.readouterr().out
    assert "unknown scheme 'stripes'" in out and "only spike monitors are supported" in out


def _small(**changes) -> Assembly:
    a = Assembly("bad")
    a.set_run(**changes.pop("run", {}))
    a.add_population("a", changes.pop("model", "lif"), 20)
    a.add_projection("a", "a", connector=changes.pop("connector", {"type": "fixed_indegree", "k": 2}),
                     weight="0.1 mV", delay=changes.pop("delay", "1 ms"), name="aa",
                     plasticity=changes.pop("plasticity", None))
    for kind, kwargs in changes.pop("monitors", []):
        a.add_monitor(kind + "_mon", kind, "a", **kwargs)
    return a


@pytest.mark.parametrize("changes,message", [
    ({"model": "pow_cell"}, "model 'pow_cell' is not supported: its step computes"),
    ({"plasticity": {"rule": "stdp"}}, "plasticity is not supported"),
    ({"monitors": [("state", {"variables": ["v"]})]}, "only spike monitors are supported"),
    ({"run": {"batch": 2}}, "runs one trial (batch 1)"),
])
def test_unsupported_pieces_raise_a_clear_error(changes, message, monkeypatch):
    from braincore.neurons import MODELS
    from braincore.neurons.defined import user_model

    # a model whose step raises v to a non-integer power (torch.pow: its bits depend on the partition)
    monkeypatch.setitem(MODELS, "pow_cell", user_model({
        "params": {"tau_m": "20 ms", "v_th": "1", "k": "0.1"}, "state": {"v": {"unit": "1", "init": "0"}},
        "equations": ["dv/dt = (I - k*abs(v)**1.5) / tau_m"], "threshold": "v >= v_th", "reset": ["v = 0"],
        "input_unit": "1"}, name="pow_cell"))
    with pytest.raises(ConfigError, match="distributed engine does not support") as err:
        DistributedSimulator(_small(**changes))
    assert message in str(err.value)


def test_partition_scheme_is_checked():
    with pytest.raises(ConfigError, match="unknown scheme 'stripes'"):
        DistributedSimulator(_small(), partition="stripes")


@pytest.mark.parametrize("n_keys", [7, 40_000, 70_000])
def test_stable_order_is_the_stable_sorting_permutation(n_keys):
    """construction.stable_order (radix sort for keys below 2^16, else torch's stable sort) equals
    torch.sort(stable=True) on keys with many ties: the network's synapse order does not depend on the path."""
    from braincore.construction import stable_order

    keys = torch.randint(0, n_keys, (50_000,), generator=torch.Generator().manual_seed(n_keys))
    order = stable_order(keys, n_keys)
    assert order.dtype == torch.int64
    assert torch.equal(order, torch.sort(keys, stable=True).indices)
