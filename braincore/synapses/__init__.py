"""Projections between populations: connectivity, initial weights and delays, and the CSR propagation layout.

Pure functions over tensors, every random draw from a given CPU ``torch.Generator`` (a seed gives the same
network on every machine), vectorised for large networks (no Python loop over neurons, and no
``N_pre x N_post`` matrix for the sparse connectors)::

    g = torch.Generator().manual_seed(1)
    conn = build_connectivity({"type": "fixed_indegree", "k": 80, "allow_self": False}, n, n,
                              generator=g, same_population=True)
    w = apply_sign(init_weights({"dist": "normal", "mean": "0.5 nS", "std": "0.1 nS"}, conn.num_synapses,
                                generator=g), "excitatory")
    d = init_delays("1.5 ms", conn.num_synapses, dt=0.1, generator=g)       # LongTensor of steps
    indptr = to_csr(conn.pre, conn.post, n)
    syn = outgoing(indptr, spiking)      # the synapses of the neurons that spiked

The engines do not draw their networks with these generator-based functions: they use the counter-based
construction of :mod:`braincore.construction` (the same network on every engine and number of processes), which
reuses the validation and parsing here. These stay a library for user code.

Modules: :mod:`~braincore.synapses.connectors`, :mod:`~braincore.synapses.weights`,
:mod:`~braincore.synapses.delays`, :mod:`~braincore.synapses.csr`.
"""
from .connectors import (CONNECTOR_OPTIONS, Connectivity, build_connectivity, check_connector, connector_names,
                         connector_problems, expected_synapses, load_connectivity_file)
from .csr import outgoing, to_csr
from .delays import DELAY_DISTRIBUTIONS, check_delays, delay_spec_problems, delay_steps, init_delays
from .weights import (SIGNS, WEIGHT_DISTRIBUTIONS, apply_sign, check_weights, init_weights, lognormal_parameters,
                      signed, weight_spec_problems)

__all__ = [
    "CONNECTOR_OPTIONS", "Connectivity", "build_connectivity", "check_connector", "connector_names",
    "connector_problems", "expected_synapses", "load_connectivity_file",
    "outgoing", "to_csr",
    "DELAY_DISTRIBUTIONS", "check_delays", "delay_spec_problems", "delay_steps", "init_delays",
    "SIGNS", "WEIGHT_DISTRIBUTIONS", "apply_sign", "check_weights", "init_weights", "lognormal_parameters",
    "signed", "weight_spec_problems",
]
