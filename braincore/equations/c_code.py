"""The native engine's C code for a neuron model, generated from its :class:`~.definition.Program`.

For each model in a network the engine asks for :func:`model_function`: a C function that advances one trial of one
population by one step and returns the number of spikes::

    static int32_t model_K(Net *net, const Pop *P, int32_t b, const REAL *restrict drive,
                           int32_t *restrict fired, int32_t lo, int32_t hi)

It updates the neurons ``lo`` to ``hi - 1`` (one part of the population, see the threads section of kernel.c; every
neuron with one thread) and lists their spikes in ascending order in ``fired`` (which points at the part's own
stretch of the population's list). Its first loop is branch-free (vectorisable): refractory countdown, then every temporary and update of the program
from the old values, and the clamped variables held where refractory. The second loop tests the threshold on the
updated state, applies the resets of the spiking neurons in order, restarts their refractory counters, records
their indices in ``fired``, and runs the after-step statements for every neuron. The expressions are printed by
:mod:`.printers` from the same tree as the PyTorch step, so in float64 both engines perform the same operations
in the same order (:mod:`.printers` says where the libraries' own transcendental functions may differ).

Scalar parameters and constants come from ``P->K`` (doubles, cast to ``REAL``); per-neuron ones (a parameter given
as an ``[N]`` tensor, and every constant derived from one) from ``P->arrays``. State arrays are ``P->state[j]`` in
the order of the model's state record (``refrac`` last where the model is refractory).
"""
from __future__ import annotations

from typing import Iterable, Optional

from .definition import NeuronDefinition, Program
from .printers import Printer


def _c_name(name: str) -> str:
    """C identifiers for the model's names: prefixed, so that no name can clash with C or the engine."""
    if name == "I":
        return "in_I"
    if name.startswith("_c"):
        return "c" + name
    if name.startswith(("_s", "_inf_", "_k", "_y")):
        return "t" + name
    return "p_" + name


def constant_names(program: Program) -> list:
    """Every name of the step's value table (``dt``, parameters, constants, refractory steps), in a fixed order:
    the engine splits it into the scalars of ``P->K`` and the per-neuron ``P->arrays``."""
    names = ["dt"] + list(program.params) + [c for c, _ in program.constants]
    return names + (["_ref_steps"] if program.refractory else [])


#: the synaptic kernels a population step takes in its first loop (the names of braincore.synapses)
GROUP_KINDS = ("instantaneous", "exponential", "alpha", "conductance")


def _group_terms(groups: tuple, voltage: str) -> tuple:
    """Declarations and per-neuron statements that take each synaptic group's input into ``in_I`` (or, for
    instantaneous jumps, into the membrane voltage before the update) and decay the group over the step, in
    group order: the operations of the PyTorch engine's ``synaptic_drive`` and decay, element by element.

    ``groups``: ``(kind, deliver)`` per entry of ``P->groups``; ``deliver``: the group takes this step's
    ring-buffer slot here (a group fed by Poisson inputs took it, and the Poisson counts, before the step)."""
    decls, body = [], []
    for k, (kind, deliver) in enumerate(groups):
        if kind not in GROUP_KINDS:
            raise ValueError(f"no C form for synaptic kernel {kind!r}")
        decls.append(f"    Group *G{k} = &net->groups[P->groups[{k}]];")
        decls.append(f"    REAL *restrict X{k} = (REAL *)G{k}->x + off;")
        decls.append(f"    const REAL d{k} = (REAL)G{k}->decay; (void)d{k};")
        if deliver:
            decls.append(f"    REAL *restrict R{k} = ring_row(net, G{k}, b);")
        take = f" + R{k}[i]; R{k}[i] = 0" if deliver else ""
        if kind == "conductance":
            decls.append(f"    const REAL E{k} = (REAL)G{k}->E_rev, f{k} = (REAL)G{k}->factor;")
            body += [f"        const REAL g{k} = X{k}[i]{take};",
                     f"        in_I = in_I + g{k} * (E{k} - v_now) * f{k};",
                     f"        X{k}[i] = g{k} * d{k};"]
        elif kind == "exponential":
            body += [f"        const REAL g{k} = X{k}[i]{take};",
                     f"        in_I = in_I + g{k};",
                     f"        X{k}[i] = g{k} * d{k};"]
        elif kind == "instantaneous":
            body += [f"        const REAL g{k} = X{k}[i]{take};",
                     f"        v_now = v_now + g{k};",
                     f"        X{k}[i] = 0;"]
        else:  # alpha: deliveries go to h (times e), x rises from h
            decls.append(f"    REAL *restrict H{k} = (REAL *)G{k}->h + off;")
            decls.append(f"    const REAL c{k} = (REAL)G{k}->dt_over_tau;")
            if deliver:
                body.append(f"        H{k}[i] += R{k}[i] * (REAL)2.718281828459045235360287; R{k}[i] = 0;")
            body += [f"        in_I = in_I + X{k}[i];",
                     f"        X{k}[i] = (X{k}[i] + c{k} * H{k}[i]) * d{k};",
                     f"        H{k}[i] = H{k}[i] * d{k};"]
    return decls, body


def model_function(defn: NeuronDefinition, method: str, option: Optional[str], function_name: str,
                   scalars: list, arrays: list, groups: tuple = (), external: bool = True) -> str:
    """The C source of one population's step (see the module docstring). ``scalars`` and ``arrays`` name the
    entries of ``P->K`` and ``P->arrays`` (parameters, constants and ``dt``), in order.

    The first loop also takes the population's synaptic input, fused: ``groups`` (``(kind, deliver)`` per entry of
    ``P->groups``, see :func:`_group_terms`) are read, added to the input and decayed in the same pass over the
    neurons that integrates them; ``external``: the step starts from ``drive`` (external currents, summed before),
    else from zero. One pass instead of one per group and one for the drive: in float64 the same operations in the
    same order as the PyTorch engine's separate tensor operations."""
    program: Program = defn.program(method, option)
    state = list(program.state)

    def name_of(name: str) -> str:
        if name in state:
            return f"x_{name}"
        return _c_name(name)

    printer = Printer("c", name_of)
    fields = list(defn.state_fields)
    lines = [f"static int32_t {function_name}(Net *net, const Pop *P, int32_t b, const REAL *restrict drive, "
             f"int32_t *restrict fired, int32_t lo, int32_t hi) {{",
             "    const int32_t n = P->n;", "    const int64_t off = (int64_t)b * n;", "    (void)net;"]
    group_decls, group_body = _group_terms(tuple(groups), defn.voltage)
    lines += group_decls
    for j, f in enumerate(fields):
        lines.append(f"    REAL *restrict S_{f} = (REAL *)P->state[{j}] + off;")
    for j, name in enumerate(scalars):
        lines.append(f"    const REAL {_c_name(name)} = (REAL)P->K[{j}];")
    for j, name in enumerate(arrays):
        lines.append(f"    const REAL *restrict A_{_c_name(name)} = (const REAL *)P->arrays[{j}];")
    lines.append("    (void)drive;")

    def load_arrays(body: list, exprs: Iterable) -> None:
        used = set()
        for e in exprs:
            used |= {s.name for s in e.free_symbols}
        for name in arrays:
            if name in used:
                body.append(f"        const REAL {_c_name(name)} = A_{_c_name(name)}[i];")

    # the threshold: on the updated state (loop 2 reads it back, x_ names; loop 1 holds it, u_ names)
    cond = cond_now = None
    if program.distance is not None:
        printer_now = Printer("c", lambda name: f"u_{name}" if name in state else _c_name(name))
        cond = f"({printer(program.distance)} {'>' if program.strict else '>='} 0)"
        cond_now = f"({printer_now(program.distance)} {'>' if program.strict else '>='} 0)"
        for gate in program.gates:
            cond += f" & ({printer(gate)})"
            cond_now += f" & ({printer_now(gate)})"
        if program.refractory:
            cond = f"(S_refrac[i] == 0) & {cond}"
            cond_now = f"(S_refrac[i] == 0) & {cond_now}"  # read back: GCC then vectorises the loop (not with r)
    # Spikes are rare: loop 1 runs over blocks of 64 neurons and notes, branch-free, whether any neuron of the
    # block crossed the threshold; loop 2 (the per-neuron test, reset and spike list) runs only in blocks with a
    # crossing. A per-neuron test of `refractory && above` mispredicts on the random set of refractory neurons
    # and dominated the step of large networks; a separate scan would read the state once more.
    blocked = cond is not None and not program.after

    # loop 1: integration
    updates = [e for _, e in program.temporaries] + [e for _, e in program.updates]
    cond_exprs = list(program.gates) + ([program.distance] if program.distance is not None else [])
    lines.append("    int32_t count = 0;")
    if blocked:
        lines.append("    for (int32_t i0 = lo; i0 < hi; i0 += 64) {")
        lines.append("    const int32_t i1 = i0 + 64 < hi ? i0 + 64 : hi;")
        lines.append("    int hit = 0;")
    lines.append("    BC_INDEPENDENT")
    lines.append(f"    for (int32_t i = {'i0' if blocked else 'lo'}; i < {'i1' if blocked else 'hi'}; i++) {{")
    if program.refractory:
        lines.append("        REAL r = S_refrac[i] - 1; r = r < 0 ? 0 : r; S_refrac[i] = r;")
    lines.append(f"        REAL in_I = {'drive[i]' if external else '(REAL)0'}; (void)in_I;")
    lines.append(f"        REAL v_now = S_{defn.voltage}[i]; (void)v_now;")
    lines += group_body
    if any(kind == "instantaneous" for kind, _ in groups) and defn.voltage not in dict(program.updates):
        lines.append(f"        S_{defn.voltage}[i] = v_now;")  # the jumps, where no update writes the voltage
    for name in state:
        source = "v_now" if name == defn.voltage else f"S_{name}[i]"
        lines.append(f"        const REAL x_{name} = {source}; (void)x_{name};")
    load_arrays(lines, updates + (cond_exprs if blocked else []))
    for name, expr in program.temporaries:
        lines.append(f"        const REAL {_c_name(name)} = {printer(expr)};")
    for name, expr in program.updates:
        lines.append(f"        const REAL new_{name} = {printer(expr)};")
    updated = dict(program.updates)
    for name in state:
        if name not in updated:
            stored = f"x_{name}"
        elif program.refractory and name in program.clamped:
            stored = f"r == 0 ? new_{name} : x_{name}"
        else:
            stored = f"new_{name}"
        lines.append(f"        const REAL u_{name} = {stored}; (void)u_{name};")
        if name in updated:
            lines.append(f"        S_{name}[i] = u_{name};")
    if blocked:
        lines.append(f"        hit |= {cond_now};")
    lines.append("    }")

    # loop 2: threshold, reset, after-step statements
    post = list(program.gates) + [s.expr for s in program.resets] + [s.expr for s in program.after]
    if program.distance is not None:
        post.append(program.distance)
    if blocked:
        lines.append("    if (!hit) continue;")
    if program.distance is not None or program.after:
        lines.append(f"    for (int32_t i = {'i0' if blocked else 'lo'}; i < {'i1' if blocked else 'hi'}; i++) {{")
        for name in state:
            lines.append(f"        REAL x_{name} = S_{name}[i]; (void)x_{name};")
        load_arrays(lines, post)
        if cond is not None:
            lines.append(f"        if ({cond}) {{")
            for s in program.resets:
                if s.boolean:
                    value = f"(x_{s.target} - (x_{s.target} - (({printer(s.expr)}) ? (REAL)1 : (REAL)0)))"
                elif s.increment:
                    value = f"(x_{s.target} + {printer(s.expr)})"
                else:
                    value = f"(x_{s.target} - (x_{s.target} - {printer(s.expr)}))"
                lines.append(f"            x_{s.target} = {value};")
                lines.append(f"            S_{s.target}[i] = x_{s.target};")
            if program.refractory:
                lines.append("            S_refrac[i] = (REAL)P->ref_steps;")
            lines.append("            fired[count++] = i;")
            lines.append("        }")
        for s in program.after:
            value = printer(s.expr)
            if s.boolean:
                value = f"(({value}) ? (REAL)1 : (REAL)0)"
            elif s.increment:
                value = f"(x_{s.target} + {value})"
            lines.append(f"        x_{s.target} = {value};")
            lines.append(f"        S_{s.target}[i] = x_{s.target};")
        lines.append("    }")
    if blocked:
        lines.append("    }")
    lines.append("    return count;")
    lines.append("}")
    return "\n".join(lines) + "\n"


def dispatch_function(names: list) -> str:
    """``step_model``: calls the generated function of ``P->model``."""
    cases = "\n".join(f"    case {k}: return {name}(net, P, b, drive, fired, lo, hi);"
                      for k, name in enumerate(names))
    return ("static int32_t step_model(Net *net, const Pop *P, int32_t b, const REAL *restrict drive, "
            "int32_t *restrict fired, int32_t lo, int32_t hi) {\n"
            f"    switch (P->model) {{\n{cases}\n    default: return 0;\n    }}\n}}\n")
