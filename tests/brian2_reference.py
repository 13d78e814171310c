"""Run one Brian2 NeuronGroup under an injected current: the independent simulator our models are checked
against. Tests that use it carry ``@pytest.mark.reference`` and skip when Brian2 is not installed.

Alignment with braincore: the current ``I`` is set from a TimedArray at the start of each step (held over the
step), the state is recorded at the *end* of each step (after threshold and reset), so ``v[k]`` here is
braincore's ``v[k]``; Brian2 stamps a spike found in step ``k`` at ``t_k``, as braincore does.
"""
from __future__ import annotations

import numpy as np
import pytest

brian2 = pytest.importorskip("brian2")


def run_brian2(equations: str, current: np.ndarray, dt_ms: float, *, current_unit: str, threshold: str,
               reset: str, refractory=False, method: str, init: dict, namespace: dict,
               record: tuple = ("v",)) -> tuple[dict, list]:
    """Simulate ``current`` (``[T, N]``, numbers in ``current_unit``, a Brian2 unit name such as ``"nA"``).

    ``equations`` must declare ``I`` as a parameter (``I : amp`` or similar). Returns ``({var: [T, N] in
    Brian2's base SI numbers divided by the unit of init}, spike_times_ms per neuron)``.
    """
    b2 = brian2
    b2.prefs.codegen.target = "numpy"
    b2.start_scope()
    current = np.atleast_2d(np.asarray(current, dtype=float).T).T
    T, N = current.shape
    dt = dt_ms * b2.ms
    unit = getattr(b2, current_unit) if current_unit != "1" else 1
    I_arr = b2.TimedArray(current * unit, dt=dt)
    group = b2.NeuronGroup(N, equations, threshold=threshold, reset=reset, refractory=refractory,
                           method=method, dt=dt, namespace={**namespace, "I_arr": I_arr})
    for name, value in init.items():
        setattr(group, name, value)  # a Brian2 quantity, e.g. -65 * mV
    group.run_regularly("I = I_arr(t, i)", when="start")
    state = b2.StateMonitor(group, list(record), record=True, when="end")
    spikes = b2.SpikeMonitor(group)
    net = b2.Network(group, state, spikes)
    net.run(T * dt, namespace={})
    traces = {name: np.asarray(getattr(state, name + "_")).T for name in record}
    trains = spikes.spike_trains()
    times = [np.asarray(trains[i] / b2.ms) for i in range(N)]
    return traces, times
