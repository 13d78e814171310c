"""The PyTorch step generated from a :class:`~.definition.Program`.

:func:`torch_step` writes a Python function ``step(state, I, K, spike_fn) -> (spikes, state)`` as source text and
compiles it once per (definition, method, option): ``state`` is the model's state record (``[B, N]`` tensors),
``I`` the input ``[B, N]``, ``K`` the values of the parameters and constants (:func:`constants`: floats, or
``[N]`` tensors for per-neuron parameters), ``spike_fn`` a surrogate spike function or ``None``. The function works
on any device and dtype, carries surrogate gradients through the threshold (and through resets written as
``x - s (x - x_reset)``), and its source is kept in ``step.source`` for inspection.
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Callable, Optional

from ..params import is_tensor
from .definition import NeuronDefinition, Program
from .printers import Printer

if TYPE_CHECKING:
    from torch import Tensor

#: below this |x|, exprel(x) = (exp(x) - 1)/x is evaluated by its series 1 + x/2 (as in the C engine)
EXPREL_SERIES_BOUND = 1e-6
#: the math functions that stand for PyTorch's on Python numbers (:class:`_ScalarOrTensor`)
_SCALAR_FUNCTIONS: dict[str, Callable] = {"exp": math.exp, "log": math.log, "expm1": math.expm1, "log1p": math.log1p,
                                          "sqrt": math.sqrt, "sin": math.sin, "cos": math.cos, "tanh": math.tanh,
                                          "abs": abs, "pow": math.pow}


def _exprel(x: Tensor) -> Tensor:
    import torch

    small = x.abs() < EXPREL_SERIES_BOUND
    safe = torch.where(small, torch.ones_like(x), x)
    return torch.where(small, 1.0 + 0.5 * x, torch.expm1(safe) / safe)


class _ScalarOrTensor:
    """``torch.exp`` and friends for constants, which may be Python floats (math) or tensors (torch). PyTorch is
    imported only where a tensor (or a function math does not have) is met."""

    def __getattr__(self, name: str) -> Callable:
        scalar = _SCALAR_FUNCTIONS.get(name)

        def call(*args, **kwargs):
            if scalar is not None and not any(is_tensor(a) for a in args):
                return scalar(*args)
            import torch

            fn = getattr(torch, name)
            return fn(*[torch.as_tensor(a) if not isinstance(a, torch.Tensor) else a for a in args], **kwargs)
        return call


def _scalar_exprel(x):
    if is_tensor(x):
        return _exprel(x)
    return 1.0 + 0.5 * x if abs(x) < EXPREL_SERIES_BOUND else math.expm1(x) / x


def _local(name: str) -> str:
    return name


@lru_cache(maxsize=None)
def constants_function(defn: NeuronDefinition, method: str, option: Optional[str]) -> Callable:
    """``K = f(params, dt)``: the values of the parameters and per-step constants of one program."""
    program = defn.program(method, option)
    printer = Printer("torch", _local)
    lines = ["def constants(P, dt):", "    K = {'dt': dt}"]
    for name in program.params:
        lines.append(f"    {name} = K[{name!r}] = P.{name}")
    for name, expr in program.constants:
        lines.append(f"    {name} = K[{name!r}] = {printer(expr)}")
    if program.refractory:
        lines.append(f"    K['_ref_steps'] = refractory_steps(P.{program.refractory}, dt)")
    lines.append("    return K")
    from ..units import refractory_steps

    namespace = {"torch": _ScalarOrTensor(), "_exprel": _scalar_exprel, "refractory_steps": refractory_steps}
    exec(compile("\n".join(lines), f"<constants of {defn.name}>", "exec"), namespace)
    return namespace["constants"]


def constants(defn: NeuronDefinition, method: str, option: Optional[str], params: Any, dt: float) -> dict:
    """The parameter and constant values of ``params`` at step ``dt`` (ms), by name."""
    return constants_function(defn, method, option)(params, float(dt))


def step_source(defn: NeuronDefinition, program: Program, state_name: str) -> str:
    """The Python source of the step function of ``program``."""
    printer = Printer("torch", _local)
    fields = defn.state_fields
    used = set()
    exprs = [e for _, e in program.temporaries] + [e for _, e in program.updates] + \
            [s.expr for s in program.resets] + [s.expr for s in program.after] + list(program.gates)
    if program.distance is not None:
        exprs.append(program.distance)
    for e in exprs:
        used |= {s.name for s in e.free_symbols}
    lines = ["def step(state, I, K, spike_fn=None):",
             f"    {', '.join(fields)}{',' if len(fields) == 1 else ''} = state",
             "    _dtype = state[0].dtype"]
    for name in ["dt"] + list(program.params) + [c for c, _ in program.constants]:
        if name in used:
            lines.append(f"    {name} = K[{name!r}]")
    if program.refractory:
        # logical_not(refrac) is refrac == 0 (NaN is not zero), in one cheaper operation
        lines += ["    refrac = torch.clamp(refrac - 1.0, min=0.0)", "    active = torch.logical_not(refrac)"]
    for name, expr in program.temporaries:
        lines.append(f"    {name} = {printer(expr)}")
    for name, expr in program.updates:
        lines.append(f"    _new_{name} = {printer(expr)}")
    for name, _ in program.updates:
        if program.refractory and name in program.clamped:
            lines.append(f"    {name} = torch.where(active, _new_{name}, {name})")
        else:
            lines.append(f"    {name} = _new_{name}")
    if program.distance is not None:
        d = printer(program.distance)
        lines.append(f"    _distance = {d}")
        # without a surrogate the spike is a boolean mask (``_fired``) until its one conversion to the dtype; with
        # one, a float carrying the surrogate gradient. Both give the same 0/1 values.
        lines.append("    if spike_fn is None:")
        lines.append(f"        _fired = _distance {'>' if program.strict else '>='} 0.0")
        for gate in program.gates:
            lines.append(f"        _fired = _fired & ({printer(gate)})")
        if program.refractory:
            lines.append("        _fired = _fired & active")
        lines.append("        spikes = _fired.to(_dtype)")
        lines.append("    else:")
        if program.strict:
            lines.append("        spikes = 1.0 - spike_fn(-_distance)")
        else:
            lines.append("        spikes = spike_fn(_distance)")
        for gate in program.gates:
            lines.append(f"        spikes = spikes * ({printer(gate)}).to(_dtype)")
        if program.refractory:
            lines.append("        spikes = spikes * active")
            lines.append("        _fired = spikes > 0")
        for s in program.resets:
            if s.boolean:
                lines.append(f"    {s.target} = {s.target} - spikes * ({s.target} - ({printer(s.expr)}).to(_dtype))")
            elif s.increment:
                lines.append(f"    {s.target} = {s.target} + spikes * {printer(s.expr)}")
            else:
                lines.append(f"    {s.target} = {s.target} - spikes * ({s.target} - {printer(s.expr)})")
        if program.refractory:
            lines.append("    refrac = torch.where(_fired, K['_ref_steps'], refrac)")
    else:
        lines.append(f"    spikes = torch.zeros_like({fields[0]})")
    for s in program.after:
        value = f"{s.target} + {printer(s.expr)}" if s.increment else printer(s.expr)
        if s.boolean:
            value = f"({value}).to(_dtype)"
        lines.append(f"    {s.target} = {value}")
    lines.append(f"    return spikes, {state_name}({', '.join(fields)})")
    return "\n".join(lines) + "\n"


@lru_cache(maxsize=None)
def torch_step(defn: NeuronDefinition, method: str, option: Optional[str], state_cls: type) -> Callable:
    """The compiled PyTorch step of ``defn`` for ``method`` and reset ``option`` (cached)."""
    import torch

    program = defn.program(method, option)
    source = step_source(defn, program, "State")
    namespace = {"torch": torch, "_exprel": _exprel, "State": state_cls}
    exec(compile(source, f"<{defn.name} step ({method})>", "exec"), namespace)
    fn = namespace["step"]
    fn.source = source
    return fn
