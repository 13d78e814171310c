"""``device: auto`` means "cuda when torch sees a GPU, else cpu" everywhere a device is accepted (issue 16)."""
from __future__ import annotations

import pytest
import torch

from braincore.cli import main
from braincore.devices import auto_device, resolve_device
from braincore.errors import ConfigError
from braincore.graph import Assembly

EXPECTED = "cuda" if torch.cuda.is_available() else "cpu"

AUTO = """\
kind: assembly
name: auto
duration: 5 ms
device: auto
populations:
  a: {model: lif, size: 8}
inputs:
  - {type: constant_current, target: a, amplitude: 0.5 nA}
monitors:
  - {name: spikes, type: spikes, target: a}
"""


def test_auto_is_cuda_when_available_else_cpu_and_cpu_for_the_native_engine():
    assert auto_device() == EXPECTED and resolve_device("auto").type == EXPECTED
    assert resolve_device(None).type == EXPECTED
    assert resolve_device("auto", native=True) == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="'gpu' is not a torch device"):
        resolve_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            resolve_device("cuda")


def test_a_single_process_simulator_runs_with_device_auto():
    from braincore.simulator import Simulator

    a = Assembly("auto")
    a.add_population("a", "lif", 4)
    a.set_run(device="auto", duration="5 ms")
    sim = Simulator(a)
    assert sim.device.type == ("cpu" if sim.backend == "native" else EXPECTED)
    sim.run()
    assert sim.step_count == 50
    assert Simulator(a, device="auto", backend="native").device.type == "cpu"
    assert Simulator(a, device="auto", backend="torch").device.type == EXPECTED


def test_braincore_run_accepts_device_auto(tmp_path, capsys):
    file = tmp_path / "auto.yaml"
    file.write_text(AUTO)
    assert main(["validate", str(file)]) == 0
    assert main(["run", str(file), "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert (tmp_path / "out" / "auto.npz").exists()


def test_the_trainer_and_the_layer_wise_networks_accept_auto():
    from braincore.networks.desire_mlp import DesireMLP, DesireParams
    from braincore.networks.spiking_pc import BackpropMLP, SpikingPCNetwork
    from braincore.training import resolve_device as trainer_device

    assert trainer_device("auto").type == EXPECTED
    assert DesireMLP(DesireParams(n_in=4, hidden=(3,), n_out=2), device="auto").device.type == EXPECTED
    assert SpikingPCNetwork([4, 3, 2], device="auto").device.type == EXPECTED
    assert BackpropMLP([4, 3, 2], device="auto").device.type == EXPECTED
