"""What the distributed engine (:mod:`.simulator`) runs and what it refuses, checked without PyTorch: the
``distributed`` config kind (:mod:`.config`) lists the refused parts of an assembly when a config is validated
(``braincore validate`` under a second: issue 16), and :class:`~.simulator.DistributedSimulator` refuses them
when it is built.
"""
from __future__ import annotations

from typing import Any, Optional

from ..errors import ConfigError
from ..neurons import get_model

SUPPORTED_INPUTS = ("poisson", "constant_current", "step_current")


def partition_hazards(program) -> list[str]:
    """The per-neuron operations of a model's analysed program (:class:`braincore.equations.definition.Program`)
    whose last bit may depend on the partition: powers ``b ** e`` other than integers up to 8 and 1/2, which the
    PyTorch printer (:mod:`braincore.equations.printers`) turns into ``torch.pow`` -- a binary kernel whose SIMD
    body and scalar tail round differently, so a neuron's result depends on its position in the rank's tensor.
    Elementwise ``+ - * /``, comparisons, ``min``/``max`` and the unary functions (``exp``, ``log``, ``sin``,
    ``cos``, ``tanh``, ``sqrt``, ``expm1``, ``log1p``: PyTorch's vectorised map treats the tail with the SIMD
    kernel) give the same bits wherever the neuron sits (``tests/test_distributed.py`` checks this)."""
    import sympy

    exprs = [e for _, e in program.temporaries] + [e for _, e in program.updates] + [program.distance]
    exprs += list(program.gates) + [st.expr for st in tuple(program.resets) + tuple(program.after)]
    found = []
    for expr in exprs:
        if not isinstance(expr, sympy.Basic):
            continue
        for node in sympy.preorder_traversal(expr):
            if isinstance(node, sympy.Pow):
                e = node.exp
                if (e.is_Integer and 0 < abs(int(e)) <= 8) or e == sympy.Rational(1, 2) or e == -1:
                    continue
                text = f"{node}"
                if text not in found:
                    found.append(text)
    return found


def _checked_program(cls: Any, spec: Any, dt: float) -> Any:
    """The analysed program of a one-neuron model of population ``spec``, after the checks its constructor makes
    (raising what the constructor raises). A model class built on :class:`~braincore.neurons.defined.DefinedModel`
    that adds nothing to its constructor is checked without PyTorch -- the arguments, the program and the zero
    divisors as its constructor checks them, and its constants evaluated -- so that ``braincore validate`` of a
    ``kind: distributed`` config does not import it; any other class is built (with PyTorch) and asked."""
    from ..neurons.defined import DefinedModel

    kwargs = {"dt": dt, "method": spec.method}
    if not (isinstance(cls, type) and issubclass(cls, DefinedModel) and cls.__init__ is DefinedModel.__init__):
        model = (cls.from_preset(spec.preset, 1, params=spec.params, **kwargs) if spec.preset
                 else cls(1, spec.params, **kwargs))
        return model.program
    from ..equations.torch_step import constants

    values = cls.preset_values(spec.preset, spec.params) if spec.preset else spec.params
    params, method, step = cls.checked_arguments(1, values, **kwargs)
    cls.check_definition(params, method)
    defn = cls.definition
    option = getattr(params, defn.reset_choice) if defn.reset_choice else None
    constants(defn, method, option, params, step)  # as the constructor computes them (a bad value raises here)
    return defn.program(method, option)


def model_problems(spec, dt: float) -> list[str]:
    """Why the distributed engine cannot run a population's model (empty when it can), derived from the model's
    definition: every defined model steps with its generated ``model.step``; refused are models without a
    definition (a hand-written step the engine cannot check), per-neuron operations whose bits depend on the
    partition (:func:`partition_hazards`), and parameters that cannot be built."""
    try:
        cls = get_model(spec.model)
    except ConfigError as err:
        return [str(err)]
    if getattr(cls, "spike_source", False):
        return [f"model {spec.model!r} (a Poisson source) is not run by the distributed engine yet: its spikes would "
                f"need the engine's partition-independent Poisson stream; drive relay neurons with a poisson input "
                f"instead (braincore.neurons.poisson)"]
    definition = getattr(cls, "definition", None)
    if definition is None:
        return [f"model {spec.model!r} has no equation definition (a hand-written step): the distributed engine "
                f"runs defined models only, whose per-neuron operations it can check"]
    try:
        hazards = partition_hazards(_checked_program(cls, spec, float(dt)))
    except (ConfigError, ValueError, TypeError) as err:
        return [f"model {spec.model!r}: {err}"]
    if hazards:
        return [f"model {spec.model!r} is not supported: its step computes {', '.join(hazards)} per neuron "
                f"(torch.pow, whose last bit depends on the neuron's position in the tensor, i.e. on the partition)"]
    return []


def check_supported(assembly, dtype: Optional[str] = None) -> list[str]:
    """Every part of ``assembly`` the distributed engine does not run, one line each with the reason."""
    out = []
    run = assembly.run
    if run.batch != 1:
        out.append(f"batch {run.batch}: the distributed engine runs one trial (batch 1)")
    if str(run.device) not in ("cpu", "auto"):
        out.append(f"device {run.device!r}: the distributed engine runs on CPU tensors (gloo); on GPUs the "
                   f"atomic index_add_ would break the fixed summation order")
    for spec in assembly.populations():
        out.extend(f"population {spec.name!r}: {line}" for line in model_problems(spec, run.dt))
        for key, value in (spec.params or {}).items():
            if isinstance(value, (list, tuple, dict)):
                out.append(f"population {spec.name!r}: parameter {key!r}: per-neuron parameters are not supported "
                           f"(scalars only)")
    for spec in assembly.projections():
        if spec.plasticity:
            out.append(f"projection {spec.name!r}: plasticity is not supported by the distributed engine")
    for spec in assembly.inputs:
        if spec.type not in SUPPORTED_INPUTS:
            out.append(f"input {spec.name!r}: type {spec.type!r} is not supported (supported: "
                       f"{', '.join(SUPPORTED_INPUTS)})")
    for spec in assembly.monitors:
        if spec.type != "spikes":
            out.append(f"monitor {spec.name!r}: only spike monitors are supported (got {spec.type!r}); use "
                       f"gather_state() for a final state")
        elif spec.neurons is not None:
            out.append(f"monitor {spec.name!r}: 'neurons' is not supported (spike monitors record the population)")
    return out


__all__ = ["SUPPORTED_INPUTS", "check_supported", "model_problems", "partition_hazards"]
