"""Shared machinery of the neuron models: parameter records with units, the step convention, the module wrapper.

The step convention (the same as Brian2's and NEST's clock-driven schedule)
---------------------------------------------------------------------------
One call ``step(state, current, params, dt)`` advances every neuron from ``t_k`` to ``t_k + dt``:

1. **Refractoriness.** A neuron is refractory while fewer than ``round(t_ref / dt)`` steps have passed since
   its last spike (Brian2's ``timestep(t - lastspike, dt) >= timestep(t_ref, dt)``); a refractory neuron's
   membrane potential is clamped (not integrated) during the step.
2. **Integration.** The input ``current[k]`` is held constant over ``[t_k, t_k + dt)`` and the state is
   integrated with the chosen method (``exact`` exponential integration where the model is linear between
   spikes, ``euler``, and for Hodgkin–Huxley ``exponential_euler`` or ``rk4``). Every variable is advanced from
   the old values of all the others (no Gauss–Seidel ordering).
3. **Threshold.** The threshold is tested on the *updated* state, only for neurons that are not refractory.
   A spike found in the update from ``t_k`` to ``t_k + dt`` is stamped at ``t_k`` (Brian2's ``t`` at that
   step).
4. **Reset.** Spiking neurons are reset (to a value, or by subtracting ``v_th - v_reset``), their refractory
   counter restarts, and spike-triggered jumps (adaptation) are applied.

So a run of ``T`` steps from ``t = 0`` stamps spikes on the grid ``0, dt, ..., (T-1) dt`` and records the
membrane potential *after* each step; ``v_trace[k]`` is the potential at ``t_{k+1}``, after any reset.

Data layout: state tensors are ``[B, N]`` (batch first), multi-step inputs ``[T, B, N]`` (time major).
Parameters may be Python floats (shared by all neurons) or tensors broadcastable to ``[N]``.
"""
from __future__ import annotations

import copyreg
import difflib
from typing import TYPE_CHECKING, Any, ClassVar, Mapping, NamedTuple, Optional, Sequence

from ..errors import ConfigError
from ..params import (FLOAT32, NeuronParams, ParamRecord, _any_le, _any_lt, _show, param,  # noqa: F401  (re-exported)
                      torch_dtype)
from ..units import parse_quantity, refractory_steps  # noqa: F401  (re-exported)

if TYPE_CHECKING:
    import torch
    from torch import Tensor
    from torch.nn import Module as _ModuleBase

    from ..surrogate import Surrogate
else:
    _ModuleBase = object


def countdown(counter: Tensor) -> tuple[Tensor, Tensor]:
    """Advance refractory counters one step: returns ``(counter', active)``.

    ``counter`` holds the refractory steps left; at a spike it is set to ``refractory_steps(t_ref, dt)``.
    At the start of each later step it drops by one (never below zero), and the neuron is active (integrates
    and may spike) when it has reached zero. With ``R`` refractory steps a neuron that spiked at step ``k`` is
    active again at step ``k + R``, exactly as in Brian2.
    """
    import torch

    counter = torch.clamp(counter - 1, min=0)
    return counter, counter == 0


def fire(distance: Tensor, active: Tensor, spike_fn=None) -> Tensor:
    """Spikes ``H(distance)`` (``distance = v - threshold``) of the active (non-refractory) neurons.

    ``spike_fn`` is a surrogate spike function (:mod:`braincore.surrogate`) for training, or ``None`` for a
    plain Heaviside. Spikes are in the dtype of ``distance`` (1.0 or 0.0).
    """
    spikes = spike_fn(distance) if spike_fn is not None else (distance >= 0).to(distance.dtype)
    return spikes * active


def filled(batch_size: int, size: int, value: Any, *, device=None, dtype: Any = FLOAT32) -> Tensor:
    """A ``[batch_size, size]`` tensor holding ``value`` (a float, or a tensor broadcastable to ``[size]``)."""
    import torch

    dtype = torch_dtype(dtype)
    out = torch.zeros((batch_size, size), device=device, dtype=dtype)
    return out + torch.as_tensor(value, device=device, dtype=dtype)


def reset_membrane(v: Tensor, spikes: Tensor, v_reset: Any, v_th: Any, mode: str) -> Tensor:
    """Reset the spiking neurons: ``mode="value"``: ``v <- v_reset``; ``"subtract"``: ``v <- v - (v_th - v_reset)``.

    Written as ``v - s * (...)`` so that surrogate gradients flow through the reset when ``s`` carries one.
    """
    if mode == "value":
        return v - spikes * (v - v_reset)
    if mode == "subtract":
        return v - spikes * (v_th - v_reset)
    raise ValueError(f"unknown reset mode {mode!r}; use 'value' or 'subtract'")


class RunResult(NamedTuple):
    """What :meth:`NeuronModel.run` returns: spikes ``[T, B, N]``, recorded variables ``{name: [T, B, N]}``
    (each after the step, after reset), and the final state."""

    spikes: Tensor
    traces: dict
    state: Any


#: the module class of each model class (:meth:`NeuronModel.__new__`)
_MODULE_CLASSES: dict[type, type] = {}


class NeuronModel(_ModuleBase):
    """Thin module around a pure step function. Subclasses set the class attributes below.

    A model class is a ``torch.nn.Module`` once instantiated, but defining one (and reading its name, parameter
    record, state record, methods, presets and definition) does not import PyTorch, so that ``braincore validate``
    and ``braincore models`` start without it: the class itself derives from ``object``, and
    :meth:`__new__` makes each instance one of a subclass of (the class, ``torch.nn.Module``), created once per
    class, with the same name and module (``isinstance(model, LIF)`` and ``isinstance(model, torch.nn.Module)``
    both hold).

    ``NeuronModel(size, params=None, method=None, dt=0.1, surrogate=None, **overrides)``:

    - ``size``: number of neurons ``N``;
    - ``params``: a parameter record, a mapping of values (unit strings allowed), or ``None`` for defaults;
      ``overrides`` (keyword values, unit strings allowed) replace single parameters;
    - ``method``: one of ``methods``; ``None`` picks ``default_method``;
    - ``dt``: the time step in ms (or a string such as ``"0.1 ms"``);
    - ``surrogate``: the spike function's surrogate gradient for training (see :mod:`braincore.surrogate`);
      ``None`` simulates with a plain Heaviside.
    """

    #: registry name, e.g. ``"lif"``
    name: ClassVar[str] = ""
    #: further registry names, e.g. ``("adaptive_lif",)``
    aliases: ClassVar[tuple[str, ...]] = ()
    params_cls: ClassVar[type[NeuronParams]] = NeuronParams
    state_cls: ClassVar[type] = tuple
    #: integration methods, the first being the default
    methods: ClassVar[tuple[str, ...]] = ("euler",)
    #: canonical unit of the injected current ``I`` of :meth:`step`
    input_unit: ClassVar[str] = "nA"
    #: named parameter sets, ``{name: {param: value}}``
    presets: ClassVar[dict[str, dict[str, Any]]] = {}

    def __init__(self, size: int, params: "NeuronParams | Mapping[str, Any] | None" = None, *,
                 method: Optional[str] = None, dt: "float | str" = 0.1,
                 surrogate: "str | Surrogate | None" = None, **overrides: Any):
        super().__init__()  # torch.nn.Module's: the instance's class is the one made by __new__
        self.params, self.method, self.dt = type(self).checked_arguments(size, params, method=method, dt=dt,
                                                                         **overrides)
        self.size = size
        from ..surrogate import get_surrogate

        self.spike_fn = get_surrogate(surrogate)

    def __new__(cls, *args: Any, **kwargs: Any):
        import torch

        if issubclass(cls, torch.nn.Module):
            return super().__new__(cls)
        module_cls = _MODULE_CLASSES.get(cls)
        if module_cls is None:
            made = type(cls)(cls.__name__, (cls, torch.nn.Module),
                             {"__module__": cls.__module__, "__qualname__": cls.__qualname__, "__doc__": cls.__doc__})
            module_cls = _MODULE_CLASSES.setdefault(cls, made)  # one per class, also when threads race here
        return super().__new__(module_cls)

    @classmethod
    def checked_arguments(cls, size: int, params: "NeuronParams | Mapping[str, Any] | None" = None, *,
                          method: Optional[str] = None, dt: "float | str" = 0.1,
                          **overrides: Any) -> tuple[NeuronParams, str, float]:
        """What the constructor checks of its arguments, without PyTorch: ``(parameter record, method, dt in
        ms)``, or the constructor's :class:`ConfigError`."""
        if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
            raise ConfigError(f"{cls.__name__}: size must be a positive integer, got {size!r}")
        if isinstance(params, NeuronParams):
            if not isinstance(params, cls.params_cls):
                raise ConfigError(f"{cls.__name__} expects {cls.params_cls.__name__}, "
                                  f"got {type(params).__name__}")
            base = params
            values: dict[str, Any] = {}
        else:
            base = None
            values = dict(params or {})
        values.update(overrides)
        record = cls.params_cls.from_mapping(values, base=base, where=cls.__name__)
        method = cls.methods[0] if method is None else method
        if method not in cls.methods:
            raise ConfigError(f"{cls.__name__}: unknown method {method!r}; "
                              f"choose one of {', '.join(cls.methods)}")
        step = parse_quantity(dt, "time")
        if step <= 0:
            raise ConfigError(f"{cls.__name__}: dt must be > 0 ms, got {step:g}")
        return record, method, step

    def __reduce_ex__(self, protocol):
        # pickle and copy name the model class (importable), whose __new__ gives the module class again
        reduced = super().__reduce_ex__(protocol)
        cls = type(self)
        if isinstance(reduced, tuple) and reduced[0] is copyreg.__newobj__ and reduced[1][0] is cls and \
                _MODULE_CLASSES.get(cls.__bases__[0]) is cls:
            reduced = (_new_model, (cls.__bases__[0], *reduced[1][1:]), *reduced[2:])
        return reduced

    @classmethod
    def from_preset(cls, preset: str, size: int, **kwargs: Any) -> "NeuronModel":
        """A model with a named parameter set from ``presets`` (keyword overrides still apply)."""
        values = cls.preset_values(preset, kwargs.pop("params", None))
        return cls(size, values, **kwargs)

    @classmethod
    def preset_values(cls, preset: str, params: "Mapping[str, Any] | None" = None) -> dict[str, Any]:
        """The values of the named parameter set updated with ``params`` (what :meth:`from_preset` builds the
        model with), or a :class:`ConfigError` naming the known presets."""
        if preset not in cls.presets:
            near = difflib.get_close_matches(preset, cls.presets, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            known = ", ".join(cls.presets) or "none"
            raise ConfigError(f"{cls.__name__}: unknown preset {preset!r}{hint}; known presets: {known}")
        values = dict(cls.presets[preset])
        values.update(params or {})
        return values

    # -- the pure parts, implemented by each model -------------------------------------------------------
    def initial_state(self, batch_size: int = 1, *, device: "torch.device | str | None" = None,
                      dtype: Any = FLOAT32) -> Any:
        """The resting state, tensors of shape ``[batch_size, size]``."""
        raise NotImplementedError

    def step(self, state: Any, current: Tensor) -> tuple[Tensor, Any]:
        """One step of ``dt`` under the held input ``current`` ``[B, N]`` (in :attr:`input_unit`)."""
        raise NotImplementedError

    # -- conveniences --------------------------------------------------------------------------------------
    def forward(self, current: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        """Single step: ``spikes, state = model(current, state)``; ``state=None`` starts from rest."""
        current = self._check_input(current, ndim=2)
        if state is None:
            state = self.initial_state(current.shape[0], device=current.device, dtype=current.dtype)
        return self.step(state, current)

    def run(self, currents: Tensor, state: Any = None, record: Sequence[str] = ("v",)) -> RunResult:
        """Multi-step run over ``currents`` ``[T, B, N]``; records the named state variables after each step."""
        currents = self._check_input(currents, ndim=3)
        if state is None:
            state = self.initial_state(currents.shape[1], device=currents.device, dtype=currents.dtype)
        unknown = [name for name in record if name not in state._fields]
        if unknown:
            raise ConfigError(f"{type(self).__name__}: cannot record {unknown}; state variables are "
                              f"{', '.join(state._fields)}")
        spikes, traces = [], {name: [] for name in record}
        for current in currents:
            s, state = self.step(state, current)
            spikes.append(s)
            for name in record:
                traces[name].append(getattr(state, name))
        import torch

        return RunResult(torch.stack(spikes), {k: torch.stack(v) for k, v in traces.items()}, state)

    def _check_input(self, x: Tensor, ndim: int) -> Tensor:
        import torch

        if not isinstance(x, torch.Tensor):
            x = torch.as_tensor(x, dtype=torch.float32)
        layout = "[B, N]" if ndim == 2 else "[T, B, N]"
        if x.ndim != ndim or x.shape[-1] != self.size:
            raise ConfigError(f"{type(self).__name__}: input must have shape {layout} with N = {self.size}, "
                              f"got {tuple(x.shape)}")
        if not x.is_floating_point():
            x = x.float()
        return x

    def extra_repr(self) -> str:
        return f"size={self.size}, method={self.method!r}, dt={self.dt:g} ms"


def _new_model(cls: type) -> Any:
    """An empty instance of model class ``cls`` (of its module class), for pickle and copy."""
    return cls.__new__(cls)
