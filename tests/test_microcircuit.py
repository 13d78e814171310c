"""The Potjans & Diesmann (2014) microcircuit (regions/microcircuit.py, tasks/brain/microcircuit.py).

(a) construction against closed forms at small scale: sizes, synapse numbers per pair, weights, delays, initial
potentials, DC compensation, background; the truncated normal (NEST's redraw) that weights and delays use;
(b) the discretisation: one neuron and one synapse give NEST's iaf_psc_exp membrane potential to 1e-10 mV;
(c) the network against NEST 3.10 at 10 % scale, two seeds each (skipped without ``nest``);
(d) the config kind end to end (small), and a full-scale run against the published NEST rates (slow).
"""
from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from braincore.errors import ConfigError
from braincore.simulator import Simulator
from braincore.synapses.weights import _parse_spec, truncated_normal_of
from regions.microcircuit import (CONN_PROBS, FULL_MEAN_RATES, FULL_NUM_NEURONS, K_EXT, POPULATIONS, PUBLISHED_RATES,
                                  V0, derive, microcircuit, nest_weight_factor)

ROOT = Path(__file__).resolve().parent.parent
scipy_stats = pytest.importorskip("scipy.stats")

try:  # NEST prints a banner on import; the comparison tests skip without it
    import nest  # noqa: F401
    HAVE_NEST = True
except Exception:  # noqa: BLE001
    HAVE_NEST = False

C_M, TAU_M, TAU_SYN, DT = 250.0, 10.0, 0.5, 0.1


def _bench():
    spec = importlib.util.spec_from_file_location("microcircuit_bench", ROOT / "benchmarks" / "microcircuit.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _psc_for_psp(psp: float) -> float:
    """pA of an exponential PSC whose PSP peaks at ``psp`` mV: the PSP is J tau_s tau_m / (C (tau_m - tau_s))
    (e^{-t/tau_m} - e^{-t/tau_s}), whose maximum is at t* = ln(tau_m / tau_s) tau_m tau_s / (tau_m - tau_s)."""
    t = math.log(TAU_M / TAU_SYN) * TAU_M * TAU_SYN / (TAU_M - TAU_SYN)
    unit = TAU_SYN * TAU_M / (C_M * (TAU_M - TAU_SYN)) * (math.exp(-t / TAU_M) - math.exp(-t / TAU_SYN))
    return psp / unit


# ------------------------------------------------------------------------------------------ the truncated normal
def test_truncated_normal_is_the_redrawn_normal():
    u = torch.rand(400_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for mean, std, lo, hi in ((0.75, 0.375, 0.1, None), (1.5, 0.75, 0.1, None), (-351.2, 35.1, None, 0.0),
                              (0.0, 1.0, 4.0, None), (0.0, 1.0, -0.5, 0.25)):
        x = truncated_normal_of(u, mean, std, (lo, hi)).numpy()
        a = -np.inf if lo is None else (lo - mean) / std
        b = np.inf if hi is None else (hi - mean) / std
        ref = scipy_stats.truncnorm(a, b, loc=mean, scale=std)
        assert (lo is None or x.min() >= lo) and (hi is None or x.max() <= hi)
        assert scipy_stats.kstest(x, ref.cdf).pvalue > 1e-3
        assert abs(x.mean() - ref.mean()) < 5 * ref.std() / math.sqrt(x.size)


def test_truncate_option_is_checked():
    ok, problems = _parse_spec({"dist": "normal", "mean": "1.5 ms", "std": "0.75 ms", "truncate": ["0.1 ms", None]},
                               "time", what="delay")
    assert problems == [] and ok["truncate"] == (0.1, None)
    for spec, words in (({"dist": "normal", "mean": 1, "std": 1, "truncate": [2, 1]}, "low < high"),
                        ({"dist": "normal", "mean": 0, "std": 0.01, "truncate": [5, None]}, "probability"),
                        ({"dist": "uniform", "low": 0, "high": 1, "truncate": [0, 1]}, "unknown option"),
                        ({"dist": "normal", "mean": 0, "std": 1, "truncate": 3}, "must be a list")):
        parsed, problems = _parse_spec(spec, "current")
        assert parsed is None and any(words in m for _, m in problems), problems


# ------------------------------------------------------------------------------------------ construction
SCALE = 0.05


@pytest.fixture(scope="module")
def small():
    a = microcircuit(scale=SCALE)
    a.set_run(dtype="float64", seed=7)
    return a, Simulator(a, backend="torch")


def test_published_numbers():
    full = np.log(1 - CONN_PROBS) / np.log(1 - 1 / np.outer(FULL_NUM_NEURONS, FULL_NUM_NEURONS).astype(float))
    assert FULL_NUM_NEURONS.sum() == 77169
    assert abs(full.sum() - 2.9888e8) < 1e4                       # ~2.99e8 synapses at full scale
    d = derive(1.0, 1.0)
    np.testing.assert_array_equal(d.K, np.round(full).astype(int))
    assert d.weight_mean[0, 0] == pytest.approx(_psc_for_psp(0.15), rel=1e-12)      # 87.81 pA
    assert d.weight_mean[0, 0] == pytest.approx(87.81, abs=0.01)
    assert d.weight_mean[0, 2] == pytest.approx(2 * d.weight_mean[0, 0])             # L4E -> L2/3E doubled
    assert d.weight_mean[3, 1] == pytest.approx(-4 * d.weight_mean[0, 0])            # g = -4
    assert (d.dc == 0).all() and list(d.ext_indegree) == list(K_EXT)
    # DC background: the Poisson input's mean, nu K_ext J tau_syn
    np.testing.assert_allclose(derive(1.0, 1.0, poisson_input=False).dc, 8.0 * K_EXT * _psc_for_psp(0.15) * 0.5e-3)


def test_sizes_synapse_numbers_and_background(small):
    a, sim = small
    n_expected = np.round(FULL_NUM_NEURONS * SCALE).astype(int)
    full = np.log(1 - CONN_PROBS) / np.log(1 - 1 / np.outer(FULL_NUM_NEURONS, FULL_NUM_NEURONS).astype(float))
    for i, pop in enumerate(POPULATIONS):
        assert sim.populations[pop].model.size == n_expected[i]
    counted = {p.name: int(p.post_idx.numel()) for p in sim.projections}
    for i, target in enumerate(POPULATIONS):
        for j, source in enumerate(POPULATIONS):
            k = int(round(full[i, j] * SCALE * SCALE))
            assert counted.get(f"{source}_to_{target}", 0) == k, (source, target)
    # background: round(K_ext K_scaling) Poisson sources at 8 Hz; weights / sqrt(K_scaling), NEST's factor on top
    w_ext = _psc_for_psp(0.15) / math.sqrt(SCALE) * nest_weight_factor(DT) / 1000.0
    for i, pop in enumerate(POPULATIONS):
        spec = next(s for s in a.inputs if s.name == f"background_{pop}")
        assert spec.params["sources"] == round(K_EXT[i] * SCALE) and spec.params["rate"] == 8.0
        assert spec.params["weight"] == pytest.approx(w_ext, rel=1e-12)


def test_dc_compensation_closed_form(small):
    a, _ = small
    full = np.log(1 - CONN_PROBS) / np.log(1 - 1 / np.outer(FULL_NUM_NEURONS, FULL_NUM_NEURONS).astype(float))
    J = _psc_for_psp(0.15)
    for i, pop in enumerate(POPULATIONS):
        mean_input = 0.0  # pA ms / ms: sum over sources of J_ij K_ij / N_i nu_j, plus the Poisson background
        for j in range(8):
            jij = J * (1 if j % 2 == 0 else -4) * (2 if (i, j) == (0, 2) else 1)
            mean_input += jij * full[i, j] / FULL_NUM_NEURONS[i] * FULL_MEAN_RATES[j]
        mean_input += J * K_EXT[i] * 8.0
        expected = 1e-3 * TAU_SYN * (1 - math.sqrt(SCALE)) * mean_input / 1000.0  # nA
        spec = next(s for s in a.inputs if s.name == f"dc_{pop}")
        assert spec.params["amplitude"] == pytest.approx(expected, rel=1e-12)


def test_weights_delays_and_multapses(small):
    _, sim = small
    factor = nest_weight_factor(DT)
    J = _psc_for_psp(0.15) / math.sqrt(SCALE) * factor / 1000.0
    delays = {"E": [], "I": []}
    repeats = observed_repeats = 0.0
    for proj in sim.projections:
        source, target = proj.name.split("_to_")
        i, j = POPULATIONS.index(target), POPULATIONS.index(source)
        w = sim.weights(proj.name)
        n = w["weight"].size
        mean = J * (1 if j % 2 == 0 else -4) * (2 if (i, j) == (0, 2) else 1)
        assert (np.sign(w["weight"]) == np.sign(mean)).all()                   # the sign is kept
        sd = abs(mean) * 0.1
        assert abs(w["weight"].mean() - mean) < 5 * sd / math.sqrt(n)
        assert abs(w["weight"].std() - sd) < 5 * sd / math.sqrt(2 * n) + 1e-12
        delays["E" if j % 2 == 0 else "I"].append(w["delay"])
        # multapses: pairs drawn with replacement, so repeated pairs appear as often as in n draws from M pairs
        m = float(proj.n_pre) * proj.n_post
        repeats += n - m * (1 - (1 - 1 / m) ** n)
        observed_repeats += n - np.unique(w["pre"].astype(np.int64) * proj.n_post + w["post"]).size
    assert abs(observed_repeats - repeats) < 5 * math.sqrt(repeats) + 1
    # delays: NEST's normal redrawn below one step, rounded to steps, plus one step (match_nest)
    for kind, mean in (("E", 1.5), ("I", 0.75)):
        steps = np.concatenate(delays[kind])
        dist = scipy_stats.truncnorm((DT - mean) / (0.5 * mean), np.inf, loc=mean, scale=0.5 * mean)
        top = int(steps.max())
        edges = (np.arange(1, top + 1) + 0.5) * DT                           # NEST step s + 1 <- [s - 1/2, s + 1/2) dt
        p = np.diff(np.concatenate([[0.0], dist.cdf(edges)[:-1], [1.0]]))
        values = np.arange(2, top + 2)
        observed = np.array([(steps == v).sum() for v in values])
        assert steps.min() >= 2                                                # at least one NEST step, plus one
        keep = p * steps.size >= 5
        chi2 = ((observed[keep] - p[keep] * steps.size) ** 2 / (p[keep] * steps.size)).sum()
        assert scipy_stats.chi2.sf(chi2, keep.sum() - 1) > 1e-3, (kind, observed[:6], (p * steps.size)[:6])


def test_initial_potentials_and_neuron(small):
    _, sim = small
    mean, std = V0["optimized"]
    for i, pop in enumerate(POPULATIONS):
        v = sim.populations[pop].state.v[0].numpy()
        assert abs(v.mean() - mean[i]) < 5 * std[i] / math.sqrt(v.size)
        assert abs(v.std() - std[i]) < 5 * std[i] / math.sqrt(2 * v.size)
    params = sim.assembly.population("L4E").params
    assert params["R_m"] == pytest.approx(TAU_M / C_M * 1000.0) and params["t_ref"] == pytest.approx(2.0 + DT)
    plain = microcircuit(scale=0.02, match_nest=False, V0_type="original", background="dc")
    assert plain.population("L4E").params["t_ref"] == 2.0
    assert plain.population("L4E").init["v"] == {"dist": "normal", "mean": -58.0, "std": 10.0}
    assert not [s for s in plain.inputs if s.type == "poisson"]


def test_bad_parameters_are_named():
    with pytest.raises(ConfigError) as err:
        microcircuit(scale=2.0, background="noise", V0_type="x", g=1.0)
    names = {name for name, _ in err.value.items}
    assert {"scale", "background", "V0_type", "g"} <= names
    from braincore.region_types import build_region

    a = build_region("microcircuit", {"scale": 0.02, "thalamic_input": True})
    assert "TC" in a.ports and a.population("TC").size == 902
    d = derive(0.02, 0.02)
    th = [p for p in a.projections() if p.pre == "TC"]
    assert {p.post for p in th} == {"L4E", "L4I", "L6E", "L6I"}
    assert sorted(p.connector["n"] for p in th) == sorted(int(k) for k in d.K_th if k > 0)


# ------------------------------------------------------------------------------------------ NEST's discretisation
@pytest.mark.skipif(not HAVE_NEST, reason="NEST (pip install nest-simulator) is not installed")
def test_one_synapse_gives_nests_membrane_potential():
    """A neuron driven to spike by a DC and one synapse (87.8 pA, 1.5 ms) onto a second: with the conversions of
    ``match_nest`` braincore's potential equals NEST's iaf_psc_exp at every step, and the spikes agree."""
    import nest

    from braincore.graph import Assembly

    J, delay = 87.8, 1.5
    nest.ResetKernel()
    nest.resolution = DT
    cell = dict(C_m=C_M, tau_m=TAU_M, tau_syn_ex=TAU_SYN, tau_syn_in=TAU_SYN, E_L=-65.0, V_reset=-65.0, V_th=-50.0,
                t_ref=2.0, V_m=-65.0)
    src = nest.Create("iaf_psc_exp", params=dict(cell, I_e=500.0))
    dst = nest.Create("iaf_psc_exp", params=cell)
    nest.Connect(src, dst, syn_spec={"weight": J, "delay": delay})
    rec = nest.Create("spike_recorder")
    nest.Connect(src, rec)
    vm = nest.Create("voltmeter", params={"interval": DT})
    nest.Connect(vm, dst)
    nest.Simulate(80.0)
    ref = vm.get("events")
    ref_t, ref_v = np.round(np.asarray(ref["times"]) / DT).astype(int), np.asarray(ref["V_m"])

    region = microcircuit(scale=0.02)  # its cell and the conversions
    cell_bc = region.population("L4E").params
    a = Assembly("pair", dt=DT, duration=80.0, dtype="float64", seed=1)
    a.add_population("src", "lif", 1, cell_bc, init={"v": -65.0})
    a.add_population("dst", "lif", 1, cell_bc, init={"v": -65.0})
    a.add_projection("src", "dst", {"type": "all_to_all"}, J * nest_weight_factor(DT) / 1000.0,
                     {"type": "exponential", "tau": TAU_SYN}, delay + DT)
    a.add_input("dc", "constant_current", "src", amplitude=0.5)
    a.add_monitor("s", "spikes", "src")
    a.add_monitor("v", "state", "dst", variables=["v"])
    sim = Simulator(a).run()
    v = np.asarray(sim.monitor("v")["v"]).reshape(-1)                 # v[k]: the potential at (k + 1) dt
    steps = np.arange(1, v.size + 1)
    common, i_bc, i_ref = np.intersect1d(steps, ref_t, return_indices=True)
    assert common.size > 700 and ref_v.max() > -64.9                  # the PSPs are in there
    assert np.abs(v[i_bc] - ref_v[i_ref]).max() < 1e-10
    spikes_bc = np.round(np.asarray(sim.monitor("s")["t"]) / DT).astype(int)
    spikes_ref = np.round(np.asarray(rec.get("events")["times"]) / DT).astype(int) - 1
    np.testing.assert_array_equal(spikes_bc, spikes_ref)


# ------------------------------------------------------------------------------------------ against NEST, 10 %
#: Seeds of the comparison; each simulator runs its own network realisation per seed.
SEEDS = (1, 2)
#: Seed-to-seed SD (Hz) of a population's mean rate at 10 % scale (500 ms discarded, 1 s recorded), pooled over
#: NEST 3.10 (seeds 1-8) and braincore (seeds 1-8): sqrt((s_nest^2 + s_braincore^2) / 2), measured once.
SEED_SD = {"L23E": 0.021, "L23I": 0.046, "L4E": 0.052, "L4I": 0.035, "L5E": 0.248, "L5I": 0.044, "L6E": 0.028,
           "L6I": 0.053}


@pytest.fixture(scope="module")
def against_nest():
    if not HAVE_NEST:
        pytest.skip("NEST (pip install nest-simulator) is not installed")
    from tasks.brain.microcircuit import population_statistics

    bench = _bench()
    out = {}
    for name, runner in (("braincore", bench.braincore_microcircuit), ("nest", bench.nest_microcircuit)):
        runs = [runner(0.1, seed, 500.0, 1000.0) for seed in SEEDS]
        out[name] = [population_statistics(r["spikes"], r["sizes"], 500.0, 1500.0) for r in runs]
    return out


@pytest.mark.reference
@pytest.mark.parametrize("pop", POPULATIONS)
def test_rates_irregularity_and_correlations_match_nest(against_nest, pop):
    """Per population, two seeds each: (1) the two-seed mean rates differ by less than 4 standard deviations of
    that difference (SEED_SD: the difference of two two-seed means has SD ``SEED_SD``; 4 SD: p ~ 6e-5 per
    population if both simulate the same model), at least 0.02 Hz; (2) the per-neuron rates (pooled over the
    seeds) and (3) the per-neuron CVs of ISIs pass a two-sample Kolmogorov-Smirnov test at p > 1e-3 (NEST against
    NEST, disjoint seed pairs out of 1-8, gave p >= 0.013 for rates and >= 0.007 for CVs; the network realisation
    shared by a population's neurons makes the test a little anti-conservative, hence 1e-3 rather than 0.05); (4) the
    mean pairwise count correlations (5 ms bins, 200 neurons) agree within 0.01 (they are 0.000-0.017)."""
    bc, ref = against_nest["braincore"], against_nest["nest"]
    rate_bc = np.mean([s[pop]["rate_mean"] for s in bc])
    rate_ref = np.mean([s[pop]["rate_mean"] for s in ref])
    assert abs(rate_bc - rate_ref) < max(4 * SEED_SD[pop], 0.02), (pop, rate_bc, rate_ref)
    rates = scipy_stats.ks_2samp(np.concatenate([s[pop]["rates"] for s in bc]),
                                 np.concatenate([s[pop]["rates"] for s in ref]))
    assert rates.pvalue > 1e-3, (pop, rates)
    cvs = scipy_stats.ks_2samp(np.concatenate([s[pop]["cvs"] for s in bc]),
                               np.concatenate([s[pop]["cvs"] for s in ref]))
    assert cvs.pvalue > 1e-3, (pop, cvs)
    corr_bc = np.mean([s[pop]["corr_mean"] for s in bc])
    corr_ref = np.mean([s[pop]["corr_mean"] for s in ref])
    assert abs(corr_bc - corr_ref) < 0.01, (pop, corr_bc, corr_ref)


# ------------------------------------------------------------------------------------------ the config kind
def test_config_kind_runs_and_reports(tmp_path):
    import tasks.brain.microcircuit  # noqa: F401  (registers the kind, as the entry point does once installed)
    from braincore.config import ConfigProblems, load_config

    text = (ROOT / "configs" / "brain" / "microcircuit.yaml").read_text()
    small = text.replace("scale: 0.1 ", "scale: 0.02 ").replace("presim: 500 ms", "presim: 100 ms") \
                .replace("duration: 1000 ms", "duration: 300 ms")
    path = tmp_path / "mc.yaml"
    path.write_text(small)
    kind, config = load_config(path)
    assert config["scale"] == 0.02 and config["presim"] == 100.0
    lines = []
    summary = kind.runner(config, {"out": str(tmp_path), "print": lines.append, "no_progress": True})
    last = json.loads(lines[-1])
    assert last["kind"] == "microcircuit" and last["neurons"] == int(np.round(FULL_NUM_NEURONS * 0.02).sum())
    assert set(last["rates_hz"]) == set(POPULATIONS) and all(v > 0 for v in last["rates_hz"].values())
    assert last["build_s"] > 0 and last["simulate_s"] > 0 and last["peak_memory_mb"] > 0
    for key in ("npz", "raster", "rates"):
        assert Path(summary["files"][key]).is_file()
    data = np.load(summary["files"]["npz"])
    assert data["t_start"] == 100.0 and data["times_L4E"].size > 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("scale: 0.1 ", "scale: 3 ").replace("V0_type: optimized", "V0_type: optimised"))
    with pytest.raises(ConfigProblems) as err:
        load_config(bad)
    message = str(err.value)
    assert "scale: must be <= 1" in message and "V0_type" in message and "did you mean 'optimized'" in message


def test_thalamic_pulse_drives_layer_4():
    """902 thalamic relays fire at 120 Hz for 10 ms (from 700 ms, plus NEST's 1 ms generator delay): about 1,082
    spikes, and L4E fires far above its background rate during the pulse."""
    a = microcircuit(scale=0.05, thalamic_input=True)
    a.set_run(duration=760.0, seed=3, dtype="float64")
    sim = Simulator(a).run()
    tc = np.asarray(sim.monitor("spikes_TC")["t"])
    expected = 902 * 120.0 * 0.010
    assert tc.min() >= 701.0 and tc.max() < 711.0 and abs(tc.size - expected) < 5 * math.sqrt(expected)
    t = np.asarray(sim.monitor("spikes_L4E")["t"])
    n = sim.populations["L4E"].model.size
    background = ((t >= 500) & (t < 700)).sum() / n / 0.2
    pulse = ((t >= 702) & (t < 722)).sum() / n / 0.02
    assert pulse > 4 * background and background > 1.0, (background, pulse)


def test_statistics_closed_forms():
    from tasks.brain.microcircuit import cv_isi, spike_count_correlation

    # a regular train has CV 0; intervals 1, 3 have CV 0.5; neurons under 3 spikes are left out
    times = np.array([0.0, 10.0, 20.0, 30.0, 0.0, 1.0, 4.0, 7.0, 5.0, 6.0])
    senders = np.array([0, 0, 0, 0, 1, 1, 1, 2, 3, 3])
    np.testing.assert_allclose(sorted(cv_isi(times, senders, 3)), [0.0, 0.5], atol=1e-12)
    # identical trains correlate perfectly, a silent neuron is left out
    t = np.array([1.0, 7.0, 13.0, 1.5, 7.5, 13.5])
    s = np.array([0, 0, 0, 1, 1, 1])
    corr, used = spike_count_correlation(t, s, 3, 0.0, 20.0, 5.0)
    assert corr == pytest.approx(1.0) and used == 2


# ------------------------------------------------------------------------------------------ full scale (slow)
def _available_gb() -> float:
    try:
        with open("/proc/meminfo") as f:
            info = dict(line.split(":", 1) for line in f)
        return int(info["MemAvailable"].split()[0]) / 2 ** 20
    except (OSError, KeyError, ValueError):
        return 0.0


@pytest.mark.slow
def test_full_scale_rates_near_published_nest():
    """The full network (77,169 neurons, 2.99e8 synapses, float32), 500 ms discarded, 1 s recorded: every
    population's mean rate within 15 % (at least 0.2 Hz) of the full-scale NEST rates quoted in issue 17 (one
    seed; NEST's own seed-to-seed spread at 10 % scale is up to 7 %, and the quoted rates come from other seeds and
    runs; measured: within 4 %). Needs ~9 GB of memory (peak 8.4 GB) and ~7 minutes on one core."""
    if _available_gb() < 11:
        pytest.skip(f"needs ~11 GB of available memory, {_available_gb():.1f} GB here")
    from tasks.brain.microcircuit import SCHEMA, population_statistics, simulate

    config = {name: spec.default for name, spec in SCHEMA.fields.items()}
    config.update({"scale": 1.0, "seed": 55, "dtype": "float32", "progress": False})
    _, spikes, sizes, _ = simulate(config, say=lambda *_: None)
    stats = population_statistics(spikes, sizes, 500.0, 1500.0)
    for pop in POPULATIONS:
        reference = PUBLISHED_RATES[pop]
        assert abs(stats[pop]["rate_mean"] - reference) < max(0.15 * reference, 0.2), (pop, stats[pop]["rate_mean"])


@pytest.mark.skipif(not HAVE_NEST, reason="NEST (pip install nest-simulator) is not installed")
def test_small_network_spikes_equal_nests():
    """An E/I network of the microcircuit's neurons (80 E, 20 I, in-degrees 8 and 2, the microcircuit's PSCs, two
    delays, suprathreshold DC, random initial potentials) with NEST's connectivity given to braincore: the spike
    trains are identical, spike for spike, until the chaotic network first separates the two float roundings, and
    that is not before 150 ms (recurrent excitation, inhibition, multiple arrivals and refractoriness together; on
    the machine that wrote this test all 1,331 spikes of the 300 ms were identical)."""
    import nest

    from braincore.graph import Assembly

    J = _psc_for_psp(0.15) * 4.0  # strong enough for the network to matter
    n_e, n_i, steps = 80, 20, 3000
    nest.ResetKernel()
    nest.resolution = DT
    nest.rng_seed = 3
    cell = dict(C_m=C_M, tau_m=TAU_M, tau_syn_ex=TAU_SYN, tau_syn_in=TAU_SYN, E_L=-65.0, V_reset=-65.0, V_th=-50.0,
                t_ref=2.0, I_e=420.0)
    pop = nest.Create("iaf_psc_exp", n_e + n_i, params=cell)
    v0 = np.random.default_rng(0).uniform(-65.0, -50.0, n_e + n_i)
    pop.set(V_m=v0.tolist())
    nest.Connect(pop[:n_e], pop, {"rule": "fixed_indegree", "indegree": 8}, {"weight": J, "delay": 1.5})
    nest.Connect(pop[n_e:], pop, {"rule": "fixed_indegree", "indegree": 2}, {"weight": -4 * J, "delay": 0.8})
    rec = nest.Create("spike_recorder")
    nest.Connect(pop, rec)
    nest.Simulate(steps * DT)
    first = int(pop[0].global_id)
    ref = rec.get("events")
    ref = sorted(zip(np.round(np.asarray(ref["times"]) / DT).astype(int) - 1, np.asarray(ref["senders"]) - first))

    cell_bc = microcircuit(scale=0.02).population("L4E").params
    f = nest_weight_factor(DT)
    a = Assembly("ei", dt=DT, duration=steps * DT, dtype="float64", seed=1)
    a.add_population("all", "lif", n_e + n_i, cell_bc)
    for source, sign, delay in ((pop[:n_e], 1, 1.5), (pop[n_e:], -1, 0.8)):
        conns = nest.GetConnections(source, pop).get(["source", "target"])
        a.add_projection("all", "all", {"type": "explicit", "pre": (np.asarray(conns["source"]) - first).tolist(),
                                        "post": (np.asarray(conns["target"]) - first).tolist()},
                         abs(J) * 4 ** (sign < 0) * f / 1000.0, {"type": "exponential", "tau": TAU_SYN}, delay + DT,
                         sign="excitatory" if sign > 0 else "inhibitory", name="exc" if sign > 0 else "inh")
    a.add_input("dc", "constant_current", "all", amplitude=0.42)
    a.add_monitor("s", "spikes", "all")
    sim = Simulator(a)
    state = sim.populations["all"].state
    sim.populations["all"].state = state._replace(v=torch.as_tensor(v0, dtype=torch.float64)[None, :].clone())
    sim.run()
    data = sim.monitor("s")
    ours = sorted(zip(np.round(np.asarray(data["t"]) / DT).astype(int), np.asarray(data["neuron"])))
    assert len(ref) > 500
    same = 0
    while same < min(len(ref), len(ours)) and ref[same] == ours[same]:
        same += 1
    first_difference = ref[same][0] * DT if same < len(ref) else steps * DT
    assert first_difference >= 150.0, (same, len(ref), len(ours), ref[same:same + 3], ours[same:same + 3])
    assert abs(len(ours) - len(ref)) < 0.05 * len(ref)


def test_two_distributed_processes_give_the_spikes_of_one(tmp_path):
    """Issue 17: the distributed engine runs the microcircuit on 2 processes with the same spikes as on 1
    (partition-independent construction, counter-based Poisson background); 2 % scale, 200 ms."""
    from braincore.distributed.launch import spawn_run

    a = microcircuit(scale=0.02, background="poisson")
    runs = [spawn_run(a, ws, {"run": [200.0], "partition": "blocks"}, workdir=tmp_path)["monitors"] for ws in (1, 2)]
    total = 0
    for name, one in runs[0].items():
        two = runs[1][name]
        assert np.array_equal(np.asarray(one["step"]), np.asarray(two["step"])), name
        assert np.array_equal(np.asarray(one["neuron"]), np.asarray(two["neuron"])), name
        total += len(np.asarray(one["neuron"]))
    assert total > 100  # enough activity for the comparison to mean something
