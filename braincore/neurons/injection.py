"""Current clamp: simulate any neuron model under an injected current, to compare against other simulators.

``inject_current(model, current, dt)`` follows the convention of :mod:`braincore.neurons.base` (and of Brian2
and NEST): ``current[k]`` is held over ``[t_k, t_k + dt)``, the state is integrated, the threshold is tested on
the updated state and a spike found in that update is stamped at ``t_k = k dt``. The returned ``v[k]`` is the
membrane potential at ``t_{k+1}`` after any reset, which is what Brian2's ``StateMonitor`` records at ``t_{k+1}``
(its recording at ``t_k`` happens before the update of step ``k``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple, Optional, Union

from ..errors import ConfigError
from .base import NeuronModel

if TYPE_CHECKING:
    import numpy as np
    import torch


class ClampResult(NamedTuple):
    """``t`` ``[T]`` step start times (ms); ``v`` ``[T, N]`` membrane potential after each step (mV);
    ``spikes`` ``[T, N]`` (bool); ``spike_times`` one array of times (ms) per neuron; ``traces`` every
    recorded state variable ``{name: [T, N]}``."""

    t: np.ndarray
    v: np.ndarray
    spikes: np.ndarray
    spike_times: list
    traces: dict


def inject_current(model: Union[NeuronModel, str], current: Any, dt: Optional[float] = None, *,
                   preset: Optional[str] = None, params: Optional[dict] = None, method: Optional[str] = None,
                   dtype: "torch.dtype | str" = "float64", record: Optional[tuple] = None) -> ClampResult:
    """Simulate ``model`` under ``current`` (``[T]`` for one neuron, or ``[T, N]``; in ``model.input_unit``).

    ``model`` is a :class:`NeuronModel` instance (its ``dt`` is used unless ``dt`` is given) or a registry
    name such as ``"lif"`` / ``"izhikevich"`` (then ``preset``, ``params`` and ``method`` configure it and ``dt``
    defaults to 0.1 ms). Runs in float64 by default, for comparison against reference integrators.
    """
    import numpy as np
    import torch

    from ..params import torch_dtype

    dtype = torch_dtype(dtype)
    current = torch.as_tensor(np.asarray(current), dtype=dtype)
    if current.ndim == 1:
        current = current[:, None]
    if current.ndim != 2:
        raise ConfigError(f"current must have shape [T] or [T, N], got {tuple(current.shape)}")
    n = current.shape[1]
    if isinstance(model, str):
        from . import get_model

        cls = get_model(model)
        kwargs: dict[str, Any] = {"dt": 0.1 if dt is None else dt, "method": method}
        model = cls.from_preset(preset, n, params=params, **kwargs) if preset else cls(n, params, **kwargs)
    elif dt is not None and float(dt) != model.dt:
        model = type(model)(model.size, model.params, method=model.method, dt=dt)
    if model.size != n:
        raise ConfigError(f"model has {model.size} neurons but the current has {n} columns")
    state = model.initial_state(1, dtype=dtype)
    names = tuple(record) if record is not None else tuple(state._fields)
    with torch.no_grad():
        result = model.run(current[:, None, :], state=state, record=names)
    spikes = result.spikes[:, 0, :].cpu().numpy() > 0
    t = np.arange(current.shape[0]) * model.dt
    traces = {name: tr[:, 0, :].cpu().numpy() for name, tr in result.traces.items()}
    v = traces["v"] if "v" in traces else result.traces[names[0]][:, 0, :].cpu().numpy()
    spike_times = [t[spikes[:, i]] for i in range(n)]
    return ClampResult(t, v, spikes, spike_times, traces)
