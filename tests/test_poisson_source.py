"""Poisson source populations (braincore/neurons/poisson.py): each neuron fires in a step with probability
1 - exp(-rate dt), at most once, on both engines; rates per population, per neuron and per trial; they drive
projections like any population; bad uses are refused before anything runs."""
import math

import numpy as np
import pytest
import torch

from braincore.assembly_config import assembly_from_text
from braincore.errors import ConfigError
from braincore.graph import Assembly
from braincore.simulator import Simulator

try:
    from braincore.native.build import load_library

    load_library("float64")
    ENGINES = ["native", "torch"]
except Exception:  # pragma: no cover - machines without a C compiler
    ENGINES = ["torch"]

DT = 0.5  # ms
#: rates (Hz) of four classes of 60 neurons: none, rare (the native thinning sampler), frequent, and above 0.1
#: expected counts per step (the native per-neuron sampler)
RATES = (0.0, 8.0, 90.0, 400.0)


def _network(steps: int = 2000, batch: int = 2) -> Simulator:
    a = Assembly("sources", dt=f"{DT} ms", duration=f"{DT * steps} ms", seed=7)
    a.add_population("src", "poisson", 240, {"rate": "10 Hz"})
    a.add_population("cells", "lif", 4, {"v_th": "-64.5 mV"})
    a.add_projection("src", "cells", {"type": "all_to_all"}, "0.02 nA", {"type": "exponential", "tau": "2 ms"})
    a.add_monitor("src_spikes", "spikes", "src")
    a.add_monitor("cell_spikes", "spikes", "cells")
    return a


@pytest.mark.parametrize("backend", ENGINES)
def test_each_neuron_fires_with_probability_one_minus_exp_of_minus_rate_dt(backend):
    steps, batch = 2000, 2
    sim = Simulator(_network(steps, batch), batch=batch, backend=backend, dtype="float64")
    assert sim.engine == backend
    rates = torch.tensor(RATES, dtype=torch.float64).repeat_interleave(60)
    per_trial = torch.stack([rates, rates.flip(0)])  # trial 1: the classes in reverse order
    sim.set_poisson_rate("src", per_trial)
    sim.run()
    data = sim.monitor("src_spikes")
    trial, neuron, step = (np.asarray(data[k]) for k in ("trial", "neuron", "step"))
    # at most one spike per neuron and step
    keys = (step.astype(np.int64) * batch + trial) * 240 + neuron
    assert len(np.unique(keys)) == len(keys)
    counts = np.zeros((batch, 240))
    np.add.at(counts, (trial, neuron), 1)
    for b in range(batch):
        for c in range(4):
            rate = per_trial[b, 60 * c].item()
            p = 1.0 - math.exp(-rate * DT / 1000.0)
            observed = counts[b, 60 * c:60 * (c + 1)].sum()
            n = 60 * steps
            if rate == 0:
                assert observed == 0
                continue
            z = (observed - n * p) / math.sqrt(n * p * (1 - p))
            assert abs(z) < 5, (backend, b, rate, observed, n * p)  # binomial count: 5 SD
    # the spikes drive the projection: the cells fire
    assert len(np.asarray(sim.monitor("cell_spikes")["neuron"])) > 0


@pytest.mark.parametrize("backend", ENGINES)
def test_one_rate_for_every_neuron_and_the_rate_parameter(backend):
    sim = Simulator(_network(4000, 1), batch=1, backend=backend, dtype="float32")
    sim.run()  # the population's parameter: 10 Hz
    n = len(np.asarray(sim.monitor("src_spikes")["neuron"]))
    p = 1.0 - math.exp(-10.0 * DT / 1000.0)
    assert abs(n - 240 * 4000 * p) < 5 * math.sqrt(240 * 4000 * p)
    sim.set_poisson_rate("src", "0 Hz")
    sim.run()
    assert len(np.asarray(sim.monitor("src_spikes")["neuron"])) == n  # silent at 0 Hz


@pytest.mark.skipif("native" not in ENGINES, reason="native engine unavailable")
def test_native_runs_are_reproducible_and_resume_exactly(tmp_path):
    def run(split: bool):
        sim = Simulator(_network(400, 2), batch=2, backend="native", dtype="float64")
        sim.set_poisson_rate("src", torch.linspace(0, 200, 240))
        if split:
            sim.run(100.0)
            sim.save(tmp_path / "half.pt")
            sim = Simulator(_network(400, 2), batch=2, backend="native", dtype="float64")
            sim.load(tmp_path / "half.pt")
            sim.set_poisson_rate("src", torch.linspace(0, 200, 240))  # rates are not checkpointed
            sim.run(100.0)
            return sim
        sim.run(200.0)
        return sim

    whole, resumed = run(False), run(True)
    for name in ("src_spikes", "cell_spikes"):
        a, b = whole.monitor(name), resumed.monitor(name)
        tail = np.asarray(a["step"]) >= 200
        for key in ("step", "trial", "neuron"):
            assert np.array_equal(np.asarray(a[key])[tail], np.asarray(b[key])[np.asarray(b["step"]) >= 200])
    assert torch.equal(whole.populations["cells"].state.v, resumed.populations["cells"].state.v)


def test_set_poisson_rate_names_the_sources_and_checks_shapes():
    sim = Simulator(_network(10, 2), batch=2, backend="torch")
    with pytest.raises(KeyError, match="Poisson source population named 'cells'.*src"):
        sim.set_poisson_rate("cells", "5 Hz")
    with pytest.raises(ValueError, match=r"\[240\] or \[2, 240\]"):
        sim.set_poisson_rate("src", torch.ones(3, 240))
    with pytest.raises(ValueError, match="finite and >= 0"):
        sim.set_poisson_rate("src", torch.full((240,), -1.0))


BAD = """\
kind: assembly
name: bad_sources
dt: 0.1 ms
duration: 10 ms
populations:
  stim: {size: 20, model: poisson, params: {rate: 50 Hz}}
  cells: {size: 5, model: lif}
projections:
  - {pre: cells, post: stim, connector: {type: all_to_all}, weight: 0.5 nA, synapse: {type: exponential, tau: 5 ms}}
inputs:
  - {name: drive, type: constant_current, target: stim, params: {amplitude: 1 nA}}
"""


def test_input_and_projections_onto_a_source_are_refused_with_their_line():
    from braincore.config import ConfigProblems

    with pytest.raises(ConfigProblems) as err:
        assembly_from_text(BAD, "bad.yaml")
    text = str(err.value)
    assert "bad.yaml:9: projections[0].post: population 'stim' is a Poisson source" in text
    assert "bad.yaml:11: inputs[0].target: population 'stim' is a Poisson source" in text
    a = Assembly("neg", dt="0.1 ms", duration="1 ms")
    a.add_population("stim", "poisson", 3, {"rate": "-2 Hz"})
    with pytest.raises(ConfigError, match="rate must be >= 0 Hz"):
        Simulator(a)


def test_the_distributed_engine_names_what_it_cannot_run():
    from braincore.distributed.support import check_supported

    lines = check_supported(_network())
    assert any("population 'src'" in line and "Poisson source" in line for line in lines)
