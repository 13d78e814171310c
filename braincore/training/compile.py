"""Compile an :class:`~braincore.graph.Assembly` into a trainable multi-step module, and write it back.

``compile_assembly(assembly, inputs=["in"], outputs=["out"])`` turns the description into a
:class:`CompiledNetwork` (a ``torch.nn.Module``): ``forward({"in": spikes [T, B, N_in]})`` returns the spike
trains ``{"out": [T, B, N_out]}`` of the same network the :class:`~braincore.simulator.Simulator` runs, with one
trainable weight tensor ``[N_pre, N_post]`` per projection and surrogate gradients through every spike.
:func:`export_weights` writes the trained weights into a copy of the description (explicit connectors and
weight lists), so that the Simulator runs them, with plasticity if the projections declare it;
:meth:`CompiledNetwork.load_from_simulator` reads weights changed by a simulation back into the module. Neither
direction changes the assembly it is given (DESIGN.md, "description apart from execution").

Supported subset, and why
-------------------------
- **Populations**: models whose update is linear between spikes, a rule read from each model's definition
  (:func:`linear_form`): the membrane potential is the only state variable, its step under the population's
  method is affine in ``v`` and ``I`` with coefficients over parameters and ``dt``, the threshold is
  ``v >= parameter``, the reset ``v = parameter`` or ``v = v - (threshold - parameter)``, and the model has a
  refractory period. Of the built-in models ``lif`` (``exact`` or ``euler``) and ``if`` qualify
  (:data:`SUPPORTED_MODELS` is derived, not listed), and so does a user model written that way (e.g. a LIF in
  conductance form). Every parameter the simulator takes is honoured (reset to a value or by subtraction,
  refractory period), with the resting state or a constant ``init: {v: ...}`` (the same for every trial). Models
  with further state (Izhikevich, AdEx, ALIF, GIF, Hodgkin-Huxley) are refused naming the variables; train them
  with :class:`~braincore.training.DefinedLayer`. Random initial
  states are refused: the simulator draws them per trial from its seed, which a module fed arbitrary batches
  cannot reproduce.
- **Input populations** (``inputs``, default: the populations no projection targets) are spike sources: the
  caller gives their spikes, so their model, parameters and external inputs are not used. No projection may
  target one.
- **Projections**: current synapses ``instantaneous`` (a jump of ``w`` mV), ``exponential`` and ``alpha`` (a
  current in nA), from any connector; one delay for the whole projection (any whole number of steps >= 1);
  ``sign`` as the simulator applies it. ``conductance`` synapses are refused: their current
  ``g (E_rev - v)`` depends on the membrane potential, so they are not a linear filter of the spikes.
  Per-synapse (heterogeneous) delays are refused. ``plasticity`` is ignored by the module (training is by
  gradient) and kept in the description.
- **External inputs** onto simulated populations: ``constant_current``, ``step_current`` and
  ``time_varying_current`` are reproduced exactly; Poisson and spike-file inputs are random or filed spike
  sources the module does not hold, so they are refused unless named in ``ignore_inputs``.

Weights: the module's initial weights are those ``Simulator(assembly)`` builds (the compiler builds one, with
the assembly's seed, and reads its synapses), in the simulator's signed convention and in the unit of the
synapse (mV for instantaneous, nA for exponential and alpha). Each projection holds a dense parameter ``W``
``[N_pre, N_post]`` and, unless every pair is connected, a fixed boolean ``mask`` of its synapses; the weight
used is ``sign(W * mask)`` with the simulator's sign rule (``excitatory``: ``max(w, 0)``; ``inhibitory``:
``-|w|``; none: ``w``), so absent synapses stay absent through any optimiser step (their gradient is exactly 0)
and the weights trained are the ones the simulator will run. Repeated pairs (multapses) are summed into one.

The update rule (the simulator's schedule, :mod:`braincore.simulator`, step ``k``)
--------------------------------------------------------------------------------
Per post population and synaptic kernel, with ``d_p`` the delay of projection ``p`` in steps::

    arriving_k = sum_p s_pre[k - d_p] W_p                          (spikes of step k - d_p, sent at step k - d_p)
    instantaneous:  J_k = arriving_k                               (mV, added to v before the step)
    exponential:    x_k = x_{k-1} e^{-dt/tau} + arriving_k         (nA, drive of step k)
    alpha:          h_k = h_{k-1}' + e arriving_k, drive x_k, then x_{k+1} = (x_k + h_k dt/tau) e^{-dt/tau},
                    h_k' = h_k e^{-dt/tau}
    I_k = I_ext,k + sum of the exponential and alpha drives        (nA, held over the step)
    v'  = v_{k-1} + J_k                                            (refractory neurons too)
    v_k = a v' + (1 - a) v_rest + b I_k    if not refractory, else v'
          a, b and v_rest (the potential without input) are read from the model's generated step, e.g.
          lif exact: a = exp(-dt/tau_m), b = R_m (1 - a); lif euler: a = 1 - dt/tau_m, b = R_m dt/tau_m;
          if: a = 1, b = 1000 dt / C_m  (nA/pF in mV/ms)
    s_k = H(v_k - v_th) (non-refractory only), then reset: v_k <- v_reset, or v_k <- v_k - (v_th - v_reset)

Two execution paths, chosen per block of populations (below):

- **fused** (:func:`braincore.training.fused_lif.lif_sequence`, one autograd node for the whole sequence) when
  every population of the block resets by subtraction, has no refractory steps (``round(t_ref/dt) <= 1``) and
  every projection inside the block is instantaneous with a one-step delay. With ``w = v - v_reset`` the update
  above is exactly the fused discrete LIF::

      u_k = beta w_{k-1} + I'_k + s_{k-1} V^T,   s_k = H(u_k - theta),   w_k = u_k - theta s_k
      beta = a,  theta = v_th - v_reset,  V = diag(a) W^T (the block's own projections),
      I'_k = a J_k + b I_k + (1 - a)(v_rest - v_reset)  (+ a (v_init - v_reset) at k = 0, as fused starts at 0)

  where ``J`` and ``I`` come from outside the block, computed for all steps before the loop (one matrix product
  per projection over all ``T x B`` rows).
- **stepped** otherwise (reset to a value, refractoriness, recurrent exponential or alpha synapses, longer
  delays inside a block): the populations' own step function (:func:`braincore.neurons.lif.lif_step` with a
  surrogate spike function) in a loop over steps, autograd through time. Same equations, same order as the
  simulator.

Blocks: populations are ordered topologically (``networkx``); a block is a strongly connected component of the
projection graph (a population with its recurrent self-projection, or populations joined in a loop such as
E <-> I), stepped jointly; the input of a block from earlier blocks is computed for all ``T`` steps at once.

Agreement: spikes equal the simulator's exactly for the same input spikes; the arithmetic differs only in
summation order (dense products here, event-driven sums in the simulator), so membrane potentials agree to
rounding (about 1e-13 mV in float64), and a spike could differ only if a potential came within that of the
threshold. ``tests/test_compile.py`` checks spike rasters for equality in float64.

Feeding the simulator the same spikes: :func:`simulate_with_input_spikes` runs the Simulator on a copy of the
assembly in which each input population is replaced by a relay (a ``lif`` with reset to a value and no
refractory period, driven by a ``time_varying_current`` input strong enough that it fires at exactly the given
steps and silent otherwise; both the PyTorch and the native engine run that input, whereas the native engine
has no ``spike_file`` input), one simulation per trial (an assembly's inputs feed every trial the same values).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence, Union

import networkx as nx
import numpy as np
import torch
from torch import nn

from ..graph import Assembly
from ..neurons import get_model
from ..errors import ConfigError
from ..neurons.base import NeuronModel, refractory_steps
from ..surrogate import Surrogate, get_surrogate
from ..equations.parse import symbol as sympy_symbol
from .fused_lif import lif_sequence

Tensor = torch.Tensor

__all__ = ["compile_assembly", "CompiledNetwork", "export_weights", "simulate_with_input_spikes",
           "SUPPORTED_MODELS", "SUPPORTED_SYNAPSES", "LinearForm", "linear_form"]  # noqa: F822 (SUPPORTED_MODELS is derived on access: module __getattr__)

#: synaptic kernels the compiler maps
SUPPORTED_SYNAPSES = ("instantaneous", "exponential", "alpha")
#: deterministic external inputs reproduced exactly
CURRENT_INPUTS = ("constant_current", "step_current", "time_varying_current")
_DTYPES = {"float32": torch.float32, "float64": torch.float64}


# ------------------------------------------------------------------------------------------ what compiles
@dataclass(frozen=True)
class LinearForm:
    """What the compiler needs of a neuron model, read from its analysed program (one method and reset option):
    the step ``v_k = a v' + c + b I_k`` (``a``, ``b``, ``c`` sympy expressions over the program's parameters and
    per-step constants; ``rest``, the fixed point ``c / (1 - a)`` without input, or None where ``a = 1``), the
    threshold ``v >= threshold`` and the reset ``v <- reset_to`` (``subtract``: ``v <- v - (threshold -
    reset_to)``), and the refractory parameter."""

    a: Any
    b: Any
    rest: Any
    threshold: str
    reset_to: str
    subtract: bool
    refractory: str


def linear_form(defn: Any, method: str, option: Optional[str]) -> tuple[Optional[LinearForm], list[str]]:
    """``(form, [])`` when the model compiles, else ``(None, reasons)``.

    The rule: the model is its membrane potential alone (one state variable, plus the refractory counter), and
    under ``method`` its step is affine in ``v`` and ``I`` with coefficients over parameters and ``dt`` only (linear
    between spikes: the ``exact`` or ``euler`` LIF, the perfect integrator); the threshold is ``v >= p`` and the
    reset ``v = p'`` or ``v = v - (p - p')`` for parameters ``p``, ``p'``; the model has a refractory period and no
    after-step statement. This is what the fused sequence and the recurrent coupling ``diag(a) W^T`` assume."""
    import sympy

    from ..equations import NeuronDefinition
    from ..equations.parse import symbol

    if not isinstance(defn, NeuronDefinition):
        return None, ["it is not defined as equations"]
    program = defn.program(method, option)
    v = defn.voltage
    reasons = []
    others = [name for name in program.state if name != v]
    if others:
        reasons.append(f"besides {v} it has the state variable(s) {', '.join(others)}, so its step is not the "
                       f"one-variable linear update")
    if not program.refractory:
        reasons.append("it has no refractory period")
    if program.after:
        reasons.append("it has after-step statements")
    if program.distance is None:
        reasons.append("it has no threshold")
    if reasons:
        return None, reasons
    unhoist = {symbol(name): expr for name, expr in program.constants}
    params = {symbol(name) for name in program.params} | {symbol("dt")} | set(unhoist)
    f = dict(program.updates)[v]
    for name, expr in reversed(program.temporaries):
        f = f.xreplace({symbol(name): expr})
    vs, I = symbol(v), symbol("I")
    a, b = sympy.diff(f, vs), sympy.diff(f, I)
    c = sympy.expand(f).xreplace({vs: 0, I: 0})
    if not (a.free_symbols | b.free_symbols | c.free_symbols) <= params:
        reasons.append(f"under {method!r} its step is not linear in {v} and I with constant coefficients")
    distance = sympy.expand(program.distance.xreplace(unhoist))
    threshold = -(distance - vs)
    if program.strict or program.gates or not (threshold.is_Symbol and threshold.name in program.params):
        reasons.append(f"its threshold is not '{v} >= parameter'")
    resets = [st for st in program.resets if st.target == v]
    reset_to, subtract = None, False
    if len(program.resets) != 1 or len(resets) != 1 or resets[0].boolean:
        reasons.append(f"its reset is not '{v} = parameter' or '{v} = {v} - (threshold - parameter)' alone")
    elif resets[0].increment:
        target = sympy.expand(resets[0].expr.xreplace(unhoist) + threshold)
        subtract, reset_to = True, target
    else:
        reset_to = resets[0].expr.xreplace(unhoist)
    if reset_to is not None and not (reset_to.is_Symbol and reset_to.name in program.params):
        reasons.append(f"its reset is not '{v} = parameter' or '{v} = {v} - (threshold - parameter)'")
    if reasons:
        return None, reasons
    a_full, c_full = a.xreplace(unhoist), c.xreplace(unhoist)
    rest = None if sympy.simplify(a_full - 1) == 0 else sympy.simplify(sympy.cancel(c_full / (1 - a_full)))
    if rest is None and c != 0:
        return None, [f"its step is v + {c} without input and without leak"]
    return LinearForm(a, b, rest, threshold.name, reset_to.name, subtract, program.refractory), []


def _model_form(cls: type, method: Optional[str], option: Optional[str]) -> tuple[Optional[LinearForm], list[str]]:
    defn = getattr(cls, "definition", None)
    if defn is None:
        return None, ["it is not defined as equations"]
    return linear_form(defn, method or defn.methods[0], option)


def _supported_models() -> tuple:
    """The registry names whose definitions compile for every method and reset option (computed when asked: it
    analyses every registered model's programs, which are cached)."""
    from ..neurons import MODELS

    out = []
    for key, cls in MODELS.items():
        defn = getattr(cls, "definition", None)
        options = list(defn.reset) if defn is not None and isinstance(defn.reset, dict) else [None]
        if defn is not None and all(_model_form(cls, m, o)[0] is not None for m in defn.methods for o in options):
            out.append(key)
    return tuple(out)


def __getattr__(name: str) -> Any:
    """``SUPPORTED_MODELS``: the neuron models the compiler maps (registry names), derived from their definitions
    (:func:`linear_form`), not listed."""
    if name == "SUPPORTED_MODELS":
        return _supported_models()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _evaluate(expr: Any, K: Mapping[str, Any], n: int, dtype) -> Tensor:
    """A sympy expression over a model's parameters and constants, evaluated with its values ``K``, as ``[N]``."""
    from ..equations.printers import Printer
    from ..equations.torch_step import _ScalarOrTensor, _scalar_exprel

    namespace = {"torch": _ScalarOrTensor(), "_exprel": _scalar_exprel}
    namespace.update(K)
    value = eval(Printer("torch", lambda name: name)(expr), namespace)  # noqa: S307 - printed from the definition
    return _per_neuron(value, n, "cpu", dtype)


# ------------------------------------------------------------------------------------------ records
@dataclass
class _Population:
    """A simulated population: its model (with the surrogate), the coefficients of the linear update (from its
    :class:`LinearForm`), its initial potential ``v0 [N]`` (mV) and why it cannot be fused (``None`` if it can)."""

    name: str
    size: int
    model: NeuronModel
    a: Tensor  # [N] per-step decay of v
    b: Tensor  # [N] mV per nA held over a step
    v0: Tensor  # [N]
    not_fusable: Optional[str]
    rest: Optional[Tensor] = None  # [N] the potential without input (None: no leak, a = 1)
    v_reset: Optional[Tensor] = None  # [N]
    v_th: Optional[Tensor] = None  # [N]


@dataclass
class _Projection:
    name: str
    key: str  # the parameter's key (dots replaced)
    pre: str
    post: str
    kind: str
    tau: float  # ms (0 for instantaneous)
    delay: int  # steps >= 1
    sign: Optional[str]


@dataclass
class _ExternalCurrent:
    """A deterministic current input: ``amplitude`` from step ``start`` to ``stop`` or ``values [L, N|1]``."""

    name: str
    start: int = 0
    stop: Optional[int] = None
    amplitude: Optional[Tensor] = None
    values: Optional[Tensor] = None
    neurons: Optional[Tensor] = None


@dataclass
class _Block:
    populations: list
    internal: list = field(default_factory=list)  # projections with pre and post in the block
    external: list = field(default_factory=list)  # projections into the block from earlier blocks
    fused: bool = False
    reason: str = ""  # why it is stepped


# ------------------------------------------------------------------------------------------ the module
class CompiledNetwork(nn.Module):
    """A compiled assembly (module docstring). ``forward(inputs) -> {population: spikes [T, B, N]}``.

    Attributes: ``assembly`` (a copy of the description compiled), ``dt`` (ms), ``input_names``,
    ``output_names``, ``weights`` (``nn.ParameterDict`` of raw ``[N_pre, N_post]`` weights, keys are projection
    names with ``.`` written ``/``), ``schedule`` (per block: populations, ``"fused"`` or ``"stepped"``, why).
    Use :meth:`weight` for the effective (masked, signed) weights the network runs.
    """

    def __init__(self, assembly: Assembly, dt: float, inputs: Sequence[str], outputs: Sequence[str],
                 input_sizes: Mapping[str, int], populations: Mapping[str, _Population],
                 projections: Mapping[str, _Projection], blocks: Sequence[_Block],
                 weights: Mapping[str, Tensor], masks: Mapping[str, Optional[Tensor]],
                 currents: Mapping[str, list], surrogate: Surrogate):
        super().__init__()
        self.assembly = assembly
        self.dt = float(dt)
        self.input_names = list(inputs)
        self.output_names = list(outputs)
        self.input_sizes = dict(input_sizes)
        self._populations = dict(populations)
        self._projections = dict(projections)
        self._blocks = list(blocks)
        self._currents = dict(currents)
        self.surrogate = surrogate
        self.weights = nn.ParameterDict({p.key: nn.Parameter(weights[p.name]) for p in projections.values()})
        self.masks = nn.Module()
        for p in projections.values():
            self.masks.register_buffer(p.key, masks[p.name])

    # -- reading ------------------------------------------------------------------------------------------
    @property
    def projection_names(self) -> list[str]:
        return list(self._projections)

    @property
    def schedule(self) -> list[tuple[list[str], str, str]]:
        """Per block, in execution order: ``(populations, "fused" | "stepped", reason it is stepped)``."""
        return [(list(b.populations), "fused" if b.fused else "stepped", b.reason) for b in self._blocks]

    def size(self, population: str) -> int:
        if population in self._populations:
            return self._populations[population].size
        return self.input_sizes[population]

    def _proj(self, name: str) -> _Projection:
        if name not in self._projections:
            raise KeyError(f"no compiled projection {name!r}; projections: {', '.join(self._projections)}")
        return self._projections[name]

    def mask(self, name: str) -> Optional[Tensor]:
        """The fixed synapse mask ``[N_pre, N_post]`` (bool) of a projection, ``None`` when all pairs connect."""
        return getattr(self.masks, self._proj(name).key)

    def weight(self, name: str) -> Tensor:
        """The effective weights ``[N_pre, N_post]`` of projection ``name`` (mV for instantaneous synapses, nA for
        exponential and alpha ones): ``sign(W * mask)``, differentiable in ``W``."""
        p = self._proj(name)
        w = self.weights[p.key]
        mask = getattr(self.masks, p.key)
        if mask is not None:
            w = w * mask.to(w.dtype)
        if p.sign == "excitatory":
            w = torch.clamp(w, min=0.0)
        elif p.sign == "inhibitory":
            w = -w.abs()
        return w

    def synapses(self, name: str) -> dict[str, Tensor]:
        """The synapses of a projection as the simulator stores them: ``pre``, ``post`` (sorted by pre, then
        post) and their effective ``weight`` (signed), detached."""
        w = self.weight(name).detach()
        mask = self.mask(name)
        present = mask if mask is not None else torch.ones_like(w, dtype=torch.bool)
        pre, post = present.nonzero(as_tuple=True)
        return {"pre": pre, "post": post, "weight": w[pre, post]}

    # -- running -------------------------------------------------------------------------------------------
    def forward(self, inputs: Union[Tensor, Mapping[str, Tensor], None] = None, *, steps: Optional[int] = None,
                batch: Optional[int] = None) -> dict[str, Tensor]:
        """Spike trains ``{output population: [T, B, N]}`` for input spike trains ``{input population:
        [T, B, N_in]}`` (a tensor when there is one input population). ``steps`` and ``batch`` give ``T`` and
        ``B`` when there are no input populations."""
        given = self._check_inputs(inputs, steps, batch)
        ref = next(iter(self.weights.values())) if len(self.weights) else None
        dtype = ref.dtype if ref is not None else torch.float64
        device = ref.device if ref is not None else torch.device("cpu")
        if given:
            T, B = next(iter(given.values())).shape[:2]
        else:
            T, B = int(steps), int(batch)
        spikes: dict[str, Tensor] = {name: x.to(device=device, dtype=dtype) for name, x in given.items()}
        for block in self._blocks:
            if block.fused:
                spikes.update(self._run_fused(block, spikes, T, B, device, dtype))
            else:
                spikes.update(self._run_stepped(block, spikes, T, B, device, dtype))
        return {name: spikes[name] for name in self.output_names}

    def _check_inputs(self, inputs, steps, batch) -> dict[str, Tensor]:
        if isinstance(inputs, Tensor):
            if len(self.input_names) != 1:
                raise ValueError(f"give a mapping {{population: spikes}} for the {len(self.input_names)} input "
                                 f"populations {self.input_names}")
            inputs = {self.input_names[0]: inputs}
        inputs = dict(inputs or {})
        missing = [n for n in self.input_names if n not in inputs]
        extra = [n for n in inputs if n not in self.input_names]
        if missing or extra:
            raise ValueError(f"the input spikes must name exactly the input populations {self.input_names}; "
                             f"missing {missing}, unknown {extra}")
        if not self.input_names and (steps is None or batch is None):
            raise ValueError("this network has no input populations: give steps= and batch=")
        shape = None
        for name, x in inputs.items():
            n = self.input_sizes[name]
            if not isinstance(x, Tensor) or x.dim() != 3 or x.shape[-1] != n:
                raise ValueError(f"input {name!r}: spikes must be a tensor [T, B, {n}], got "
                                 f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}")
            if shape is not None and tuple(x.shape[:2]) != shape:
                raise ValueError(f"input {name!r}: [T, B] = {tuple(x.shape[:2])} differs from {shape}")
            shape = tuple(x.shape[:2])
        return inputs

    def _external(self, name: str, T: int, device, dtype) -> Optional[Tensor]:
        """The external current ``[T, 1, N]`` (nA) of a population, as the simulator adds it up."""
        entries = self._currents.get(name) or []
        if not entries:
            return None
        n = self._populations[name].size
        out = torch.zeros(T, n, device=device, dtype=dtype)
        for e in entries:
            idx = slice(None) if e.neurons is None else e.neurons.to(device)
            if e.values is None:
                k1 = T if e.stop is None else min(e.stop, T)
                if e.start < k1:
                    out[e.start:k1, idx] += e.amplitude.to(device=device, dtype=dtype)
            else:
                L = min(e.values.shape[0], T)
                out[:L, idx] += e.values[:L].to(device=device, dtype=dtype)
        return out[:, None, :]

    def _arriving(self, block: _Block, spikes: dict, T: int, B: int) -> dict[tuple, Tensor]:
        """Spikes from earlier blocks delivered to each ``(post, kind, tau)`` group, ``[T, B, N_post]``:
        ``s_pre[k - d] W`` for all steps in one product per projection."""
        out: dict[tuple, Tensor] = {}
        for name in block.external:
            p = self._projections[name]
            s = spikes[p.pre]
            shifted = torch.cat([s.new_zeros((min(p.delay, T),) + tuple(s.shape[1:])), s[:max(T - p.delay, 0)]])
            arr = (shifted.reshape(T * B, -1) @ self.weight(name)).reshape(T, B, -1)
            key = (p.post, p.kind, p.tau)
            out[key] = arr if key not in out else out[key] + arr
        return out

    def _filtered(self, block: _Block, spikes: dict, T: int, B: int, device, dtype) -> dict[str, tuple]:
        """Per population of the block: ``(drive [T, B, N] nA or None, jump [T, B, N] mV or None)`` from outside
        the block (external currents and earlier blocks), through each synaptic kernel."""
        arriving = self._arriving(block, spikes, T, B)
        out = {}
        for name in block.populations:
            drive = self._external(name, T, device, dtype)
            jump = None
            for (post, kind, tau), arr in arriving.items():
                if post != name:
                    continue
                if kind == "instantaneous":
                    jump = arr if jump is None else jump + arr
                else:
                    value = _kernel_sequence(kind, tau, self.dt, arr)
                    drive = value if drive is None else drive + value
            out[name] = (drive, jump)
        return out

    def _run_fused(self, block: _Block, spikes: dict, T: int, B: int, device, dtype) -> dict[str, Tensor]:
        pops = [self._populations[n] for n in block.populations]
        sizes = [p.size for p in pops]
        offset = dict(zip(block.populations, np.cumsum([0] + sizes[:-1]).tolist()))
        units = sum(sizes)
        outside = self._filtered(block, spikes, T, B, device, dtype)
        currents, betas, thetas = [], [], []
        for p in pops:
            a, b = p.a.to(device=device, dtype=dtype), p.b.to(device=device, dtype=dtype)
            v_reset, v_th = p.v_reset.to(device=device, dtype=dtype), p.v_th.to(device=device, dtype=dtype)
            v_rest = v_reset if p.rest is None else p.rest.to(device=device, dtype=dtype)  # (1 - a) = 0 if None
            drive, jump = outside[p.name]
            current = ((1.0 - a) * (v_rest - v_reset)).expand(T, B, p.size)
            if drive is not None:
                current = current + b * drive
            if jump is not None:
                current = current + a * jump
            first = a * (p.v0.to(device=device, dtype=dtype) - v_reset)  # the fused layer starts from w = 0
            current = torch.cat([(current[0] + first)[None], current[1:]])
            currents.append(current)
            betas.append(a)
            thetas.append(v_th - v_reset)
        recurrent = None
        if block.internal:
            recurrent = torch.zeros(units, units, device=device, dtype=dtype)
            for name in block.internal:
                proj = self._projections[name]
                a_post = self._populations[proj.post].a.to(device=device, dtype=dtype)
                rows = slice(offset[proj.post], offset[proj.post] + self._populations[proj.post].size)
                cols = slice(offset[proj.pre], offset[proj.pre] + self._populations[proj.pre].size)
                recurrent[rows, cols] = recurrent[rows, cols] + a_post[:, None] * self.weight(name).t()
        out = lif_sequence(torch.cat(currents, dim=-1), torch.cat(betas), torch.cat(thetas), recurrent,
                           self.surrogate)
        return {n: out[..., offset[n]:offset[n] + self._populations[n].size] for n in block.populations}

    def _run_stepped(self, block: _Block, spikes: dict, T: int, B: int, device, dtype) -> dict[str, Tensor]:
        outside = self._filtered(block, spikes, T, B, device, dtype)
        states = {}
        for n in block.populations:
            p = self._populations[n]
            v = p.v0.to(device=device, dtype=dtype).expand(B, p.size)
            states[n] = p.model.state_cls(v, torch.zeros_like(v))
        weights = {name: self.weight(name) for name in block.internal}
        groups: dict[tuple, dict] = {}  # (post, kind, tau) -> {"x": .., "h": ..} for the block's own projections
        for name in block.internal:
            p = self._projections[name]
            groups.setdefault((p.post, p.kind, p.tau), {"x": None, "h": None})
        history: dict[str, list] = {n: [] for n in block.populations}
        for k in range(T):
            arriving: dict[tuple, Tensor] = {}
            for name in block.internal:
                p = self._projections[name]
                if k - p.delay < 0:
                    continue
                arr = history[p.pre][k - p.delay] @ weights[name]
                key = (p.post, p.kind, p.tau)
                arriving[key] = arr if key not in arriving else arriving[key] + arr
            for key, g in groups.items():  # 1. deliver
                if key in arriving:
                    if key[1] == "alpha":
                        g["h"] = _add(g["h"], arriving[key] * math.e)
                    else:
                        g["x"] = _add(g["x"], arriving[key])
            fired = {}
            for n in block.populations:  # 2-3. synaptic input and the neuron step
                drive_seq, jump_seq = outside[n]
                drive = drive_seq[k] if drive_seq is not None else None
                jump = jump_seq[k] if jump_seq is not None else None
                for (post, kind, tau), g in groups.items():
                    if post != n or g["x"] is None:
                        continue
                    if kind == "instantaneous":
                        jump = _add(jump, g["x"])
                    else:
                        drive = _add(drive, g["x"])
                state = states[n]
                if jump is not None:
                    state = state._replace(v=state.v + jump)
                if drive is None:
                    drive = torch.zeros_like(state.v)
                elif drive.shape != state.v.shape:
                    drive = drive.expand_as(state.v)
                s, states[n] = self._populations[n].model.step(state, drive)
                fired[n] = s
            for key, g in groups.items():  # 5. decay (instantaneous: cleared)
                kind, tau = key[1], key[2]
                if kind == "instantaneous":
                    g["x"] = None
                elif kind == "exponential":
                    if g["x"] is not None:
                        g["x"] = g["x"] * math.exp(-self.dt / tau)
                elif g["h"] is not None:  # alpha
                    decay = math.exp(-self.dt / tau)
                    x = g["h"] * (self.dt / tau) if g["x"] is None else g["x"] + g["h"] * (self.dt / tau)
                    g["x"], g["h"] = x * decay, g["h"] * decay
            for n in block.populations:
                history[n].append(fired[n])
        return {n: torch.stack(history[n]) if T else torch.zeros(0, B, self._populations[n].size,
                                                                  device=device, dtype=dtype)
                for n in block.populations}

    # -- weights from a simulation ----------------------------------------------------------------------------
    @torch.no_grad()
    def load_from_simulator(self, simulator) -> "CompiledNetwork":
        """Copy the current weights of a :class:`~braincore.simulator.Simulator` (e.g. after a run with
        plasticity) into this module: ``W[pre, post] = sum of the synapses' weights``. Its synapses must lie
        inside this module's masks (a simulator of this assembly, or of one exported from this module)."""
        for name, p in self._projections.items():
            syn = simulator.weights(name)
            pre, post = torch.as_tensor(syn["pre"]), torch.as_tensor(syn["post"])
            w = self.weights[p.key]
            dense = torch.zeros(w.shape, dtype=w.dtype)
            dense.index_put_((pre, post), torch.as_tensor(syn["weight"], dtype=w.dtype), accumulate=True)
            mask = getattr(self.masks, p.key)
            if mask is not None and bool((~mask.cpu())[pre, post].any()):
                raise ConfigError(f"projection {name!r}: the simulator has synapses outside this module's "
                                  f"connectivity mask (a different assembly or seed?)")
            w.copy_(dense.to(w.device))
        return self

    def extra_repr(self) -> str:
        blocks = "; ".join(f"{'+'.join(b.populations)}: {'fused' if b.fused else 'stepped'}" for b in self._blocks)
        return f"dt={self.dt:g} ms, inputs={self.input_names}, outputs={self.output_names}, blocks=[{blocks}]"


def _add(a: Optional[Tensor], b: Tensor) -> Tensor:
    return b if a is None else a + b


def _per_neuron(value: Any, n: int, device, dtype) -> Tensor:
    """A float or tensor parameter as ``[N]``."""
    return torch.as_tensor(value, device=device, dtype=dtype).expand(n).clone() if not isinstance(value, Tensor) \
        else value.to(device=device, dtype=dtype).expand(n)


def _kernel_sequence(kind: str, tau: float, dt: float, arriving: Tensor) -> Tensor:
    """The drive ``[T, B, N]`` of an exponential or alpha current kernel fed ``arriving [T, B, N]`` (module
    docstring; the simulator's deliver / use / decay order)."""
    decay = math.exp(-dt / tau)
    out, x, h = [], None, None
    for k in range(arriving.shape[0]):
        if kind == "exponential":
            x = arriving[k] if x is None else x * decay + arriving[k]
            out.append(x)
        else:  # alpha
            h = arriving[k] * math.e if h is None else h + arriving[k] * math.e
            out.append(torch.zeros_like(arriving[k]) if x is None else x)
            x = h * (dt / tau) * decay if x is None else (x + h * (dt / tau)) * decay
            h = h * decay
    return torch.stack(out) if out else arriving.clone()


# ------------------------------------------------------------------------------------------ compiling
def _constant(value: Any) -> bool:
    if isinstance(value, Mapping):
        return value.get("dist", "constant") == "constant"
    return isinstance(value, (int, float, str)) and not isinstance(value, bool)


def _sanitise(name: str) -> str:
    return name.replace(".", "/")


def compile_assembly(assembly: Assembly, *, dt: Optional[float] = None, inputs: Optional[Sequence[str]] = None,
                     outputs: Optional[Sequence[str]] = None, dtype: Optional[str] = None,
                     surrogate: "str | Surrogate" = "fast_sigmoid", fused: Optional[bool] = None,
                     ignore_inputs: Sequence[str] = ()) -> CompiledNetwork:
    """Compile ``assembly`` into a :class:`CompiledNetwork` (module docstring: supported subset and equations).

    ``dt`` (ms; default the assembly's), ``inputs``: the populations whose spikes ``forward`` takes (default:
    those no projection targets), ``outputs``: the populations whose spikes it returns (default: every
    simulated one), ``dtype``: ``"float32"``/``"float64"`` of the weights (default the assembly's),
    ``surrogate``: the spike function's surrogate (:mod:`braincore.surrogate`; widths are in mV),
    ``fused``: ``None`` picks per block, ``True`` requires the fused path everywhere, ``False`` steps
    everything, ``ignore_inputs``: names of the assembly's Poisson or spike-file inputs onto simulated
    populations that the module leaves out. Raises :class:`ConfigError` naming each unsupported population,
    projection or input and why.
    """
    from ..simulator import Simulator

    assembly.check()
    dt = float(dt if dt is not None else assembly.run.dt)
    dtype = dtype if dtype is not None else assembly.run.dtype
    if dtype not in _DTYPES:
        raise ConfigError(f"dtype must be float32 or float64, got {dtype!r}")
    spike_fn = get_surrogate(surrogate)
    specs = {p.name: p for p in assembly.populations()}
    order = {name: i for i, name in enumerate(specs)}
    projections = list(assembly.projections())

    def resolve(names: Sequence[str], what: str) -> list[str]:
        out = []
        for name in names:
            resolved = assembly.resolve(name)
            if resolved is None:
                raise ConfigError(f"{what}: no population or port {name!r}; populations: {', '.join(specs)}")
            out.append(resolved)
        return out

    targeted = {p.post for p in projections}
    input_names = resolve(inputs, "inputs") if inputs is not None else [n for n in specs if n not in targeted]
    simulated = [n for n in specs if n not in input_names]
    output_names = resolve(outputs, "outputs") if outputs is not None else list(simulated)

    problems: list[str] = []
    for name in simulated:
        spec = specs[name]
        cls = get_model(spec.model)
        probe = cls.from_preset(spec.preset, 1, params=dict(spec.params), method=spec.method) if spec.preset \
            else cls(1, dict(spec.params), method=spec.method)
        _, why = _model_form(cls, probe.method, getattr(probe, "option", None))
        if why:
            from ..validation import model_label

            label = repr(spec.model) if isinstance(spec.model, str) else model_label(spec.model)
            problems.append(f"population {name!r}: model {label} is not supported: {'; '.join(why)} (the "
                            f"compiler maps models whose only state is the membrane potential, updated linearly "
                            f"between spikes, such as {' and '.join(_supported_models())}; give it as an input "
                            f"population if its spikes are given)")
        for var, value in (spec.init or {}).items():
            if var != "v":
                problems.append(f"population {name!r}: init of {var!r} is not supported (only a constant v)")
            elif not _constant(value):
                problems.append(f"population {name!r}: random initial state init.v = {value!r} is not supported "
                                f"(the simulator draws it per trial from its seed; the compiled module starts "
                                f"every trial from one state: use a constant)")
    for p in projections:
        kind = (p.synapse or {}).get("type", "instantaneous")
        if p.post in input_names:
            problems.append(f"projection {p.name!r}: targets the input population {p.post!r} (input populations "
                            f"are spike sources whose spikes the caller gives)")
        elif kind not in SUPPORTED_SYNAPSES:
            why = ("its current g (E_rev - v) depends on the membrane potential, so it is not a linear filter "
                   "of the spikes" if kind == "conductance" else "unknown kernel")
            problems.append(f"projection {p.name!r}: {kind} synapses are not supported ({why}; supported: "
                            f"{', '.join(SUPPORTED_SYNAPSES)})")
    currents: dict[str, list] = {n: [] for n in simulated}
    for inp in assembly.inputs:
        if inp.target in input_names or inp.name in ignore_inputs or inp.type in CURRENT_INPUTS:
            continue
        problems.append(f"input {inp.name!r}: a {inp.type} input onto the simulated population {inp.target!r} "
                        f"is not part of the module (it takes spikes only through its input populations); "
                        f"make {inp.target!r} an input, remove the input, or pass ignore_inputs=[{inp.name!r}]")
    if problems:
        raise ConfigError(f"compile_assembly({assembly.name!r}): unsupported:\n" + "\n".join(problems))

    # the simulator's own builder draws connectivity, weights, delays and the initial state
    sim = Simulator(assembly, batch=1, dt=dt, dtype=dtype, device="cpu", backend="torch")
    tdtype = _DTYPES[dtype]
    pops: dict[str, _Population] = {}
    for name in simulated:
        model_rt = sim.populations[name].model
        cls = get_model(specs[name].model)
        model = cls(specs[name].size, model_rt.params, method=model_rt.method, dt=dt, surrogate=spike_fn)
        form, _ = _model_form(cls, model.method, getattr(model, "option", None))
        n, K = specs[name].size, model.constants
        a, b = _evaluate(form.a, K, n, tdtype), _evaluate(form.b, K, n, tdtype)
        rest = None if form.rest is None else _evaluate(form.rest, K, n, tdtype)
        why = []
        if not form.subtract:
            why.append(f"{name}: reset to a value")
        ref = refractory_steps(getattr(model.params, form.refractory), dt)
        if ref > 1:
            why.append(f"{name}: refractory for {ref} steps")
        v0 = getattr(sim.populations[name].state, model.definition.voltage)[0].clone()
        pops[name] = _Population(name, n, model, a, b, v0, "; ".join(why) or None, rest,
                                 _evaluate(sympy_symbol(form.reset_to), K, n, tdtype),
                                 _evaluate(sympy_symbol(form.threshold), K, n, tdtype))

    projs: dict[str, _Projection] = {}
    weights: dict[str, Tensor] = {}
    masks: dict[str, Optional[Tensor]] = {}
    for rt, spec in zip(sim.projections, projections):
        kind = (spec.synapse or {}).get("type", "instantaneous")
        if rt.uniform_delay is None:
            problems.append(f"projection {spec.name!r}: its synapses have different delays (per-synapse delays "
                            f"are not supported; give one delay for the projection)")
            continue
        tau = sim.groups[rt.group].tau
        projs[spec.name] = _Projection(spec.name, _sanitise(spec.name), spec.pre, spec.post, kind, tau,
                                       int(rt.uniform_delay), spec.sign)
        counts = (rt.indptr[1:] - rt.indptr[:-1]).cpu()
        pre = torch.repeat_interleave(torch.arange(rt.n_pre), counts)
        post = rt.post_idx.cpu()
        dense = torch.zeros(rt.n_pre, rt.n_post, dtype=tdtype)
        dense.index_put_((pre, post), rt.weight.cpu().to(tdtype), accumulate=True)
        present = torch.zeros(rt.n_pre, rt.n_post, dtype=torch.bool)
        present[pre, post] = True
        weights[spec.name] = dense
        masks[spec.name] = None if bool(present.all()) else present
    if problems:
        raise ConfigError(f"compile_assembly({assembly.name!r}): unsupported:\n" + "\n".join(problems))

    for inp in sim.inputs:
        if inp.target in currents and inp.type in CURRENT_INPUTS:
            currents[inp.target].append(_ExternalCurrent(
                inp.name, inp.start, inp.stop, None if inp.amplitude is None else inp.amplitude.cpu(),
                None if inp.values is None else inp.values.cpu(),
                None if inp.neurons is None else inp.neurons.cpu()))

    blocks = _blocks(list(specs), input_names, projs, pops, order, fused)
    return CompiledNetwork(assembly.copy(), dt, input_names, output_names,
                           {n: specs[n].size for n in input_names}, pops, projs, blocks, weights, masks,
                           currents, spike_fn)


def _blocks(names: list[str], input_names: list[str], projs: Mapping[str, _Projection],
            pops: Mapping[str, _Population], order: Mapping[str, int], fused: Optional[bool]) -> list[_Block]:
    """Strongly connected components of the simulated populations, in topological order (ties: the order the
    populations were added), each fused or stepped."""
    graph = nx.DiGraph()
    graph.add_nodes_from(n for n in names if n not in input_names)
    graph.add_edges_from((p.pre, p.post) for p in projs.values() if p.pre not in input_names)
    condensed = nx.condensation(graph)
    members = {c: sorted(condensed.nodes[c]["members"], key=order.__getitem__) for c in condensed.nodes}
    ranked = nx.lexicographical_topological_sort(condensed, key=lambda c: order[members[c][0]])
    blocks, not_fused = [], []
    for c in ranked:
        block = _Block(members[c])
        inside = set(block.populations)
        for p in projs.values():
            if p.post in inside:
                (block.internal if p.pre in inside else block.external).append(p.name)
        why = [pops[n].not_fusable for n in block.populations if pops[n].not_fusable]
        why += [f"{p}: {projs[p].kind} synapse inside the block" for p in block.internal
                if projs[p].kind != "instantaneous"]
        why += [f"{p}: a delay of {projs[p].delay} steps inside the block" for p in block.internal
                if projs[p].delay != 1]
        block.fused = not why and fused is not False
        block.reason = "; ".join(why) if why else ("fused=False" if fused is False else "")
        if why and fused is True:
            not_fused.append(f"{'+'.join(block.populations)}: {block.reason}")
        blocks.append(block)
    if not_fused:
        raise ConfigError("fused=True, but these blocks cannot run on the fused LIF (it resets by subtraction, "
                          "has no refractory period and feeds its own spikes back instantaneously after one "
                          "step):\n" + "\n".join(not_fused))
    return blocks


# ------------------------------------------------------------------------------------------ exporting
def export_weights(module: CompiledNetwork, assembly: Optional[Assembly] = None) -> Assembly:
    """A copy of ``assembly`` (default: the one compiled) whose compiled projections carry the module's
    weights: an ``explicit`` connector listing the synapses (``all_to_all`` and ``one_to_one`` connectors are
    kept, their synapse order being the same) and an explicit ``weight`` list in that order. With a ``sign``,
    magnitudes are written (the simulator applies the sign again, which leaves the weights unchanged); without,
    the signed weights. Everything else (synapse, delay, sign, storage, plasticity, inputs, monitors, run) is
    kept, so ``Simulator(export_weights(module))`` runs exactly the weights the module runs. The given assembly
    is not changed."""
    assembly = module.assembly if assembly is None else assembly
    data = assembly.to_dict()
    names = {s["name"] for s in data["projections"]}
    missing = [n for n in module.projection_names if n not in names]
    if missing:
        raise ConfigError(f"export_weights: the assembly has no projections {missing} (compiled from another?)")
    for s in data["projections"]:
        if s["name"] not in module.projection_names:
            continue
        syn = module.synapses(s["name"])
        n_pre, n_post = module.size(s["pre"]), module.size(s["post"])
        if tuple(module.weight(s["name"]).shape) != (n_pre, n_post):
            raise ConfigError(f"export_weights: projection {s['name']!r} is {n_pre} x {n_post} in the assembly "
                              f"but {tuple(module.weight(s['name']).shape)} in the module")
        weight = syn["weight"].to(torch.float64)
        if s.get("sign") in ("excitatory", "inhibitory"):
            weight = weight.abs()
        connector = dict(s.get("connector") or {})
        kind = connector.get("type")
        complete = module.mask(s["name"]) is None
        diagonal = kind == "one_to_one" and bool((syn["pre"] == syn["post"]).all()) and len(syn["pre"]) == n_pre
        if not ((kind == "all_to_all" and (complete or connector.get("allow_self") is False)) or diagonal):
            connector = {"type": "explicit", "pre": syn["pre"].tolist(), "post": syn["post"].tolist()}
        s["connector"] = connector
        s["weight"] = weight.cpu().tolist()
    return Assembly.from_dict(data)


# ------------------------------------------------------------------------------------------ the reference run
def simulate_with_input_spikes(assembly: Assembly, inputs: Mapping[str, Tensor], *, dt: Optional[float] = None,
                               dtype: Optional[str] = None, backend: str = "torch") -> dict[str, Tensor]:
    """Run the :class:`~braincore.simulator.Simulator` on ``assembly`` with the given input populations' spike
    trains ``{population: [T, B, N]}``; returns every population's spikes ``[T, B, N]`` (on the CPU).

    Each input population is replaced, in a copy, by a relay: a ``lif`` with the default parameters, reset to a
    value and no refractory period, driven by a ``time_varying_current`` input (one row per step, which both
    engines run) of ``I = 2 (v_th - v_rest) / (R_m (1 - exp(-dt / tau_m)))`` nA at the steps of its spikes and 0
    otherwise: from rest or reset (``v_reset = v_rest``) such a step ends at ``v_rest + 2 (v_th - v_rest)``, above
    threshold, and without current the relay stays exactly at rest, so it fires at exactly the given steps. Other
    inputs onto the input populations are dropped. One simulation per trial, since an input of the assembly
    feeds every trial of a batch the same values.
    """
    from ..simulator import Simulator

    dt = float(dt if dt is not None else assembly.run.dt)
    dtype = dtype if dtype is not None else assembly.run.dtype
    names = {}
    for name in inputs:
        resolved = assembly.resolve(name)
        if resolved is None:
            raise ConfigError(f"simulate_with_input_spikes: no population {name!r}")
        names[name] = resolved
    for p in assembly.projections():
        if p.post in names.values():
            raise ConfigError(f"projection {p.name!r} targets the input population {p.post!r}, whose spikes are "
                              f"given")
    shapes = {tuple(x.shape[:2]) for x in inputs.values()}
    if len(shapes) != 1:
        raise ValueError(f"the input spike trains must share [T, B], got {sorted(shapes)}")
    T, B = shapes.pop()
    relay = {"reset": "value", "t_ref": 0.0}
    rp = get_model("lif")(1, relay, dt=dt).params
    drive = 2.0 * (rp.v_th - rp.v_rest) / (rp.R_m * (1.0 - math.exp(-dt / rp.tau_m)))
    rasters: dict[str, list] = {}
    for b in range(B):
        data = assembly.to_dict()
        data["inputs"] = [i for i in data["inputs"] if i["target"] not in names.values()]
        for given, pop in names.items():
            entry = data["populations"][pop]
            data["populations"][pop] = {"model": "lif", "size": entry["size"], "params": dict(relay),
                                        **({"region": entry["region"]} if entry.get("region") else {})}
            values = ((inputs[given][:, b] > 0).to(torch.float64) * drive).cpu().tolist()
            data["inputs"].append({"name": f"__relay__:{pop}", "type": "time_varying_current", "target": pop,
                                   "params": {"values": values}})
        data["monitors"] = list(data["monitors"]) + [
            {"name": f"__spikes__:{pop}", "type": "spikes", "target": pop} for pop in data["populations"]]
        sim = Simulator(Assembly.from_dict(data), batch=1, dt=dt, dtype=dtype, device="cpu", backend=backend)
        sim.run(T * dt)
        for pop, entry in data["populations"].items():
            m = sim.monitor(f"__spikes__:{pop}")
            raster = torch.zeros(T, entry["size"], dtype=_DTYPES[dtype])
            raster[torch.as_tensor(m["step"]), torch.as_tensor(m["neuron"])] = 1.0
            rasters.setdefault(pop, []).append(raster)
    return {pop: torch.stack(r, dim=1) for pop, r in rasters.items()}
