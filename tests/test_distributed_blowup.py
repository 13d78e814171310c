"""The distributed engine stops a run that blows up (NaN or infinite state or weights) with the single-process
engines' NumericalError (one helper, braincore.finite), on every rank at the same step: one process, and two gloo
processes where only one rank's neurons diverge (the other must not be left waiting in a collective)."""
import pytest
import torch

from braincore.assembly_config import assembly_from_text
from braincore.distributed import DistributedSimulator
from braincore.distributed.launch import spawn_run
from braincore.errors import ConfigError, NumericalError

# g diverges (dv/dt = v / tau, euler: float64 overflows after ~7,100 steps, i.e. before step 8000); calm does not
DIVERGING = """
kind: assembly
name: diverging
dt: 0.1 ms
duration: 1 s
dtype: float64
populations:
  g:
    size: 6
    model:
      params: {tau: 1 ms}
      state: {v: {unit: mV, init: 1 mV}}
      equations: ["dv/dt = v / tau"]
      method: euler
  calm: {model: lif, size: 4}
projections:
  - {name: gc, pre: g, post: calm, connector: {type: all_to_all}, weight: 0 mV, delay: 1 ms}
monitors:
  - {name: s, type: spikes, target: calm}
"""


def _check(message: str) -> None:
    assert "the run of 'diverging' blew up between step 7000 and step 8000 (t = 700 to 800 ms)" in message, message
    assert "population 'g': state variable 'v' became infinite (6 of 6 values)" in message, message
    assert "dt = 0.1 ms too large" in message and "'euler'" in message
    assert "calm" not in message.split(":", 1)[1]


def test_one_process_stops_with_the_numerical_error():
    with pytest.raises(NumericalError) as err:
        spawn_run(assembly_from_text(DIVERGING), 1, {}, workdir=None)
    _check(str(err.value))
    assert err.value.step == 8000 and isinstance(err.value, ConfigError)


@pytest.mark.parametrize("partition", ["populations", "blocks"])
def test_two_gloo_processes_both_stop_with_the_counts_of_all_ranks(partition, tmp_path):
    import torch.multiprocessing as mp

    # populations: g on rank 1 only, calm on rank 0 (rank 0 stops although its own neurons are finite);
    # blocks: g's neurons 0-2 on rank 0, 3-5 on rank 1 (the message counts the 6 of both)
    with pytest.raises(mp.ProcessRaisedException) as err:
        spawn_run(assembly_from_text(DIVERGING), 2, {"partition": partition}, workdir=tmp_path)
    assert "NumericalError" in str(err.value)
    _check(str(err.value))


def test_non_finite_weights_are_reported_with_their_projection():
    sim = DistributedSimulator(assembly_from_text(DIVERGING.replace("dv/dt = v / tau", "dv/dt = -v / tau")))
    sim.run(5.0)
    sim.projections[0].weight[2] = float("nan")
    with pytest.raises(NumericalError, match=r"at step 51:\nprojection 'gc': weights became NaN \(1 of 24 values\)"):
        sim.run(0.1)
    assert torch.isnan(sim.projections[0].weight).sum() == 1
