"""A trainable spiking layer for any neuron model defined as equations (``"gif"``, ``"adex"``, ``"lif"``, ...).

:class:`DefinedLayer` ``(n_in, n_out, model)``: ``x [T, B, n_in] -> spikes [T, B, n_out]``. The input current of
every step comes from one matrix product over all ``T x B`` rows (``I = x W^T + b``, in the model's input unit,
e.g. nA for GIF); with ``recurrent=True`` the spikes of step ``t - 1`` add ``s_{t-1} V^T``. Each step is the
model's own generated PyTorch step (:func:`braincore.equations.torch_step.torch_step`: the definition's
integration method, threshold, reset, spike-triggered jumps and refractoriness, the same code the PyTorch engine
runs), called with a surrogate spike function, so training follows the simulated dynamics exactly::

    I_t      = x_t W^T + b (+ s_{t-1} V^T)
    s_t, z_t = step_model(z_{t-1}, I_t)               s_t = H(distance to threshold) forward,
                                                      dH/dx replaced by the surrogate's sigma'(x) backward

Gradients are back-propagated through time by autograd through the whole loop, including the resets
(``x - s (x - x_reset)``) and jumps (``x + s q``), which carry the surrogate gradient of ``s``
(Neftci, Mostafa & Zenke 2019; Bellec et al. 2018). The refractory countdown and its ``active`` mask are integer
bookkeeping without gradient.

Parameters of the model may be learned per unit (``learn=("V_T_star", "tau_eta_1")``): the layer holds them as
``[n_out]`` tensors and recomputes the definition's per-step constants (``exp(-dt/tau)`` and the like, printed by
:func:`braincore.equations.torch_step.constants_function`) from them at every forward, so gradients reach them
through those constants. The refractory period (a whole number of steps) and choices cannot be learned.

Units and surrogate width: the threshold distance is in the model's own unit (mV for GIF, LIF, AdEx), so a
surrogate written for a unit threshold is far too narrow; ``surrogate_params`` sets its width (e.g.
``{"slope": 1.0}`` per mV for ``fast_sigmoid``). Weights start uniform in ``+-sqrt(1/n_in) * init_gain`` (input
unit per unit of ``x``), recurrent weights in ``+-sqrt(1/n_out) * recurrent_gain``.
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Mapping, Optional, Sequence

import torch
from torch import nn

from ..equations.torch_step import constants
from ..errors import ConfigError
from ..neurons import get_model
from ..neurons.defined import DefinedModel, initial_state
from ..surrogate import Surrogate, get_surrogate
from .layers import init_connections

Tensor = torch.Tensor

__all__ = ["DefinedLayer"]


class DefinedLayer(nn.Module):
    """Feed-forward or recurrent layer of any defined neuron model, trained by BPTT with a surrogate gradient.

    ``DefinedLayer(n_in, n_out, model="gif", params=None, method=None, dt=1.0, recurrent=False,
    surrogate="fast_sigmoid", surrogate_params=None, learn=(), bias=True, init_gain=1.0, recurrent_gain=1.0,
    generator=None, **overrides)``: ``model`` a registry name or a :class:`~braincore.neurons.defined.DefinedModel`
    class; ``params``/``overrides`` its parameters (unit strings allowed), ``method`` one of its methods, ``dt``
    the step in ms. See the module docstring for the equations.
    """

    def __init__(self, n_in: int, n_out: int, model: "str | type" = "gif", *,
                 params: "Mapping[str, Any] | None" = None, method: Optional[str] = None, dt: "float | str" = 1.0,
                 recurrent: bool = False, surrogate: "str | Surrogate" = "fast_sigmoid",
                 surrogate_params: Optional[Mapping[str, float]] = None, learn: Sequence[str] = (),
                 bias: bool = True, init_gain: float = 1.0, recurrent_gain: float = 1.0,
                 generator: Optional[torch.Generator] = None, **overrides: Any):
        super().__init__()
        if n_in < 1 or n_out < 1:
            raise ValueError(f"DefinedLayer sizes must be >= 1, got n_in={n_in}, n_out={n_out}")
        cls = get_model(model) if isinstance(model, str) else model
        if not (isinstance(cls, type) and issubclass(cls, DefinedModel)):
            raise ConfigError(f"DefinedLayer: model {model!r} is not defined as equations (a DefinedModel), so it has "
                              f"no generated step to train")
        spike_fn = surrogate if isinstance(surrogate, Surrogate) else get_surrogate(surrogate,
                                                                                   **dict(surrogate_params or {}))
        self.cell = cls(n_out, params, method=method, dt=dt, surrogate=spike_fn, **overrides)
        defn = self.cell.definition
        if defn.threshold is None:
            raise ConfigError(f"DefinedLayer: model {defn.name!r} has no threshold, so it emits no spikes")
        self.n_in, self.n_out = int(n_in), int(n_out)
        self.learn = tuple(learn)
        numeric = set(defn.param_dims())
        for name in self.learn:
            if name not in numeric:
                raise ConfigError(f"DefinedLayer: cannot learn {name!r}: not a numeric parameter of "
                                  f"{defn.name!r} ({', '.join(sorted(numeric))})")
            if name == defn.refractory:
                raise ConfigError(f"DefinedLayer: cannot learn {name!r}: the refractory period is a whole number "
                                  f"of steps (no gradient)")
        self.learned = nn.ParameterDict({
            name: nn.Parameter(torch.zeros(n_out) + torch.as_tensor(getattr(self.cell.params, name),
                                                                   dtype=torch.float32))
            for name in self.learn})
        init_connections(self, n_in, n_out, bias, recurrent, init_gain, recurrent_gain, generator)

    @property
    def definition(self):
        return self.cell.definition

    def _params(self, device, dtype) -> SimpleNamespace:
        """The parameter values, learned ones as ``[n_out]`` tensors, tensors moved to ``device``/``dtype``."""
        values = {}
        for name in self.definition.params:
            value = self.learned[name] if name in self.learned else getattr(self.cell.params, name)
            if isinstance(value, Tensor):
                value = value.to(device=device, dtype=dtype)
            values[name] = value
        return SimpleNamespace(**values)

    def initial_state(self, batch_size: int, *, device=None, dtype=torch.float32) -> Any:
        """The model's resting state (from its initial-value expressions), ``[batch_size, n_out]`` each."""
        return initial_state(self.definition, self._params(device, dtype), self.cell.state_cls, batch_size,
                             self.n_out, device, dtype)

    def run(self, x: Tensor, state: Any = None, record: Sequence[str] = ()) -> tuple[Tensor, dict, Any]:
        """``(spikes [T, B, n_out], {name: [T, B, n_out]} of the recorded state variables, final state)``."""
        if x.dim() != 3 or x.shape[-1] != self.n_in:
            raise ValueError(f"DefinedLayer: input must be [T, B, {self.n_in}], got {tuple(x.shape)}")
        fields = self.cell.state_cls._fields
        unknown = [name for name in record if name not in fields]
        if unknown:
            raise ValueError(f"DefinedLayer: cannot record {unknown}; state variables: {', '.join(fields)}")
        T, B, _ = x.shape
        device, dtype = x.device, x.dtype
        p = self._params(device, dtype)
        K = constants(self.definition, self.cell.method, self.cell.option, p, self.cell.dt)
        if state is None:
            state = self.initial_state(B, device=device, dtype=dtype)
        weight = self.weight.to(dtype)
        bias = None if self.bias is None else self.bias.to(dtype)
        current = nn.functional.linear(x.reshape(T * B, self.n_in), weight, bias).reshape(T, B, self.n_out)
        recurrent = None if self.recurrent is None else self.recurrent.to(dtype)
        step, spike_fn = self.cell._step, self.cell.spike_fn
        spikes, traces = [], {name: [] for name in record}
        s = None
        for t in range(T):
            drive = current[t] if (recurrent is None or s is None) else current[t] + s @ recurrent.t()
            s, state = step(state, drive, K, spike_fn)
            spikes.append(s)
            for name in record:
                traces[name].append(getattr(state, name))
        return torch.stack(spikes), {k: torch.stack(v) for k, v in traces.items()}, state

    def forward(self, x: Tensor, state: Any = None) -> Tensor:
        """``x [T, B, n_in] -> spikes [T, B, n_out]``."""
        return self.run(x, state)[0]

    def extra_repr(self) -> str:
        return (f"{self.n_in} -> {self.n_out}, model={self.definition.name!r}, method={self.cell.method!r}, "
                f"dt={self.cell.dt:g} ms, recurrent={self.recurrent is not None}, learn={list(self.learn)}")
