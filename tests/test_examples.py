"""The scripts in examples/ run end to end (short durations) and write what they promise."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_brain_simulation_example_runs_and_writes_its_outputs(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "cortex"
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "brain_simulation.py"), "--duration", "200",
                           "--out", str(out), "--no-progress"], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "validation: ok" in done.stdout
    assert "shortest path v1.inh -> v2.inh: v1.inh -> v1.exc -> v2.inh" in done.stdout
    for name in ("cortex_spikes.npz", "cortex_raster.png", "cortex_graph.png", "summary.json"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["simulated_ms"] == pytest.approx(200.0)
    assert summary["graph"]["populations"] == 4 and summary["graph"]["projections"] == 11
    assert set(summary["graph"]["inter_area"]) == {"feedforward", "feedforward_inh", "feedback"}
    rates = {pop: s["rate_hz"] for pop, s in summary["populations"].items()}
    assert set(rates) == {"v1.exc", "v1.inh", "v2.exc", "v2.inh"}
    assert all(0.0 < r < 200.0 for r in rates.values()), rates
    # the driven area fires faster than the one it feeds (15 vs 7.5 Hz in the 1 s run)
    assert rates["v1.exc"] > rates["v2.exc"]
    data = np.load(out / "cortex_spikes.npz")
    assert data["v1.exc_spikes/t"].size == data["v1.exc_spikes/neuron"].size > 0


def test_gif_example_runs_and_writes_its_outputs(tmp_path):
    pytest.importorskip("matplotlib")
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "gif.py"), "--iterations", "3", "--out",
                           str(tmp_path)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "GIF under 0.2 nA: 10 spikes" in done.stdout
    assert (tmp_path / "gif.png").stat().st_size > 0
    result = json.loads((tmp_path / "gif.json").read_text())
    assert len(result["losses"]) == 3 and result["losses"][-1] < result["losses"][0]
    isi = np.diff(result["spike_times_ms"])
    assert isi[-1] > 2 * isi[0]  # adaptation
