"""Distributed simulation: an assembly's neurons partitioned over processes (``torch.distributed``), NEST's
scheme -- post-synaptic alignment, counter-based randomness keyed by global indices, one all-gather of spikes per
minimum-delay interval. Results are bit-identical for every number of processes (see :mod:`.simulator`).

    import torch.distributed as dist
    from braincore.distributed import DistributedSimulator
    dist.init_process_group("gloo")                 # under torchrun; without it: one rank
    sim = DistributedSimulator(load_assembly("configs/brunel.yaml"), partition="blocks")
    sim.run(100.0)
    spikes = sim.gather_monitors()                  # rank 0: {monitor: {t, step, neuron, counts}}

Modules: :mod:`.rng` (counter-based draws), :mod:`.partition`, :mod:`.connectivity`, :mod:`.simulator`,
:mod:`.config` (the ``distributed`` config kind, registered on import). Usage, measurements and the cost model: the
README, "Scale-out".
"""
from typing import Any

from .partition import PARTITION_SCHEMES, partition_table
from .support import check_supported
from .config import launched_world_size, run_assembly_distributed, run_distributed  # registers kind: distributed

#: names of :mod:`.simulator` (which imports PyTorch), imported on first use: validating a ``kind: distributed``
#: config loads this package without PyTorch
_FROM_SIMULATOR = ("DistributedSimulator", "ExchangeStats")


def __getattr__(name: str) -> Any:
    if name in _FROM_SIMULATOR:
        from . import simulator

        return getattr(simulator, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = ["DistributedSimulator", "ExchangeStats", "check_supported", "PARTITION_SCHEMES", "partition_table",
           "launched_world_size", "run_distributed", "run_assembly_distributed"]
