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
                                       {"type": "all_to_all", "allow_self": False}, {"type": "one_to_one"}])
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


def test_same_floats_as_the_sequential_simulator_given_the_same_network():
    """With no Poisson input, the sequential Simulator fed this engine's synapses and initial state computes the
    same spikes and potentials: the two schedules are the same (only the random draws differ)."""
    from braincore.simulator import Simulator

    a = Assembly("coba_small")
    a.set_run(dt=0.1, duration=100.0, seed=2, dtype="float64", backend="torch")
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
    dsim = DistributedSimulator(a)
    ref = Simulator(a, backend="torch")
    for proj, mine in zip(ref.projections, dsim.projections):
        proj.indptr, proj.post_idx, proj.weight = mine.indptr, mine.post_local, mine.weight
        proj.delay = torch.full_like(mine.post_local, mine.delay)
        proj.uniform_delay = mine.delay
    for name, pop in ref.populations.items():
        pop.state = dsim.populations[name].state
    dsim.run()
    ref.run()
    got = dsim.gather_monitors()
    assert sum(len(ref.monitor(name)["step"]) for name in ("exc_spikes", "inh_spikes")) > 300
    for name in ("exc_spikes", "inh_spikes"):
        want = ref.monitor(name)
        assert np.array_equal(got[name]["step"], want["step"]) and np.array_equal(got[name]["neuron"], want["neuron"])
    assert torch.equal(dsim.populations["exc"].state.v, ref.populations["exc"].state.v)


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
    ({"model": "izhikevich"}, "model 'izhikevich' is not supported"),
    ({"connector": {"type": "fixed_outdegree", "k": 2}}, "connector 'fixed_outdegree' is not supported"),
    ({"delay": {"dist": "uniform", "low": "1 ms", "high": "2 ms"}}, "delay distributions are not supported"),
    ({"plasticity": {"rule": "stdp"}}, "plasticity is not supported"),
    ({"monitors": [("state", {"variables": ["v"]})]}, "only spike monitors are supported"),
    ({"run": {"batch": 2}}, "runs one trial (batch 1)"),
])
def test_unsupported_pieces_raise_a_clear_error(changes, message):
    with pytest.raises(ConfigError, match="distributed engine does not support") as err:
        DistributedSimulator(_small(**changes))
    assert message in str(err.value)


def test_partition_scheme_is_checked():
    with pytest.raises(ConfigError, match="unknown scheme 'stripes'"):
        DistributedSimulator(_small(), partition="stripes")
