"""The native engine's C code for a plasticity rule, generated from its :class:`~.rule.RuleProgram`.

For each rule of a network the engine asks for :func:`rule_function`, a C function that runs one step of the rule on
one projection (the schedule of :mod:`.rule`)::

    static void rule_K(Net *net, Rule *R)

It decays every trace, marks this step's spikes per trial, runs ``on_pre`` over the outgoing synapses (CSR) of the
presynaptic neurons that spiked in some trial, bumps the presynaptic traces, runs ``on_post`` over the incoming
synapses (the by-post order) of the postsynaptic neurons that spiked, bumps the postsynaptic traces, runs
``each_step`` when its condition holds in some trial, and clips the weights it changed. A statement on ``w`` adds
``(sum_b s_b expr_b) * (1/B)`` (the PyTorch executor's mean over trials: for one trial the same operations exactly);
one on a synapse trace adds ``expr_b`` in each trial ``b`` that spiked. Expressions are printed by :mod:`.printers`
from the same tree as the PyTorch executor (:mod:`braincore.plasticity.defined`), so in float64 both engines perform
the same operations in the same order for ``B = 1``; with more trials the mean's summation order may differ in the
last bit.

Values: ``R->K`` holds ``dt``, the parameters and the hoisted constants (doubles, cast to ``REAL``), in the order of
:func:`rule_constant_names`; ``R->traces[k]`` the trace arrays in the definition's order (``[B * N_pre]``,
``[B * N_post]`` or ``[B * S]``); ``M`` the modulator channel's ``[B]`` values (zeros when the channel is unset).
"""
from __future__ import annotations

from .rule import RuleDefinition, RuleProgram
from .printers import Printer


def rule_constant_names(program: RuleProgram) -> list:
    """The names of ``R->K``, in order: ``dt``, the parameters and derived values, the hoisted constants."""
    return ["dt"] + list(program.params) + [name for name, _ in program.constants]


def _c_name(name: str) -> str:
    if name.startswith("_c"):
        return "c" + name
    return "p_" + name


def rule_function(defn: RuleDefinition, program: RuleProgram, function_name: str, nearest: bool) -> str:
    """The C source of one rule's step (see the module docstring)."""
    traces = [name for name, _, _ in program.traces]
    side = {name: s for name, s, _ in program.traces}

    def name_of(name: str) -> str:
        if name in side:
            return f"v_{name}"
        if name == "w":
            return "v_w"
        if name == "M":
            return "v_M"
        return _c_name(name)

    printer = Printer("c", name_of)
    L = [f"static void {function_name}(Net *net, Rule *R) {{",
         "    const Proj *J = &net->projs[R->proj];",
         "    const Pop *Pa = &net->pops[J->pre], *Pb = &net->pops[net->groups[J->group].post];",
         "    const int32_t B = net->B, na = Pa->n, nb = Pb->n;",
         "    const int64_t S = J->indptr[na];",
         "    REAL *restrict w = (REAL *)J->w;",
         "    const REAL invB = (REAL)(1.0 / (double)B);",
         "    const REAL *Mv = R->modulator >= 0 ? (const REAL *)net->chans[R->modulator].value : NULL;",
         "    (void)S; (void)invB; (void)Mv; (void)w;"]
    for j, name in enumerate(rule_constant_names(program)):
        L.append(f"    const REAL {_c_name(name)} = (REAL)R->K[{j}]; (void){_c_name(name)};")
    for j, name in enumerate(traces):
        L.append(f"    REAL *restrict T_{name} = (REAL *)R->traces[{j}];")
    # 1. decay
    for name, s, decay in program.traces:
        size = {"pre": "(int64_t)B * na", "post": "(int64_t)B * nb", "synapse": "(int64_t)B * S"}[s]
        L.append(f"    for (int64_t q = 0; q < {size}; q++) T_{name}[q] = T_{name}[q] * {_c_name(decay)};")
    L.append("    mark_spikes(net, Pa, R->flag_pre, R->act_pre, R->seen_pre, &R->n_act_pre);")
    L.append("    mark_spikes(net, Pb, R->flag_post, R->act_post, R->seen_post, &R->n_act_post);")

    def loads(exprs, s_var: str, i_var: str, j_var: str) -> list:
        used = set()
        for e in exprs:
            used |= {sym.name for sym in e.free_symbols}
        out = []
        for name in traces:
            if name not in used:
                continue
            index = {"pre": f"(int64_t)b * na + {i_var}", "post": f"(int64_t)b * nb + {j_var}",
                     "synapse": f"(int64_t)b * S + {s_var}"}[side[name]]
            out.append(f"const REAL v_{name} = T_{name}[{index}];")
        if "M" in used:
            out.append("const REAL v_M = Mv ? Mv[b] : (REAL)0;")
        return out

    def statements(stmts, s_var: str, i_var: str, j_var: str, spiked: str, indent: str,
                   single: bool = False) -> list:
        """Each statement for synapse ``s_var``: one trial without a loop (the union of spikes is that trial's
        spikes, and ``(0 + 1 * e) * 1`` is ``e``), several trials accumulated in trial order. ``single``: the
        one-trial form only (the caller checked ``B == 1``)."""
        out = []
        for st in stmts:
            load = loads([st.expr], s_var, i_var, j_var)
            if st.target == "w":
                one = [f"{{ const int32_t b = 0; const REAL v_w = w[{s_var}]; (void)b;"] + \
                    [f"  {line}" for line in load] + [f"  w[{s_var}] = v_w + {printer(st.expr)}; }}"]
                if single:
                    out += [indent + line for line in one]
                    continue
                out.append(f"{indent}if (B == 1) {one[0]}")
                out += [indent + line for line in one[1:]]
                out.append(f"{indent}else {{ const REAL v_w = w[{s_var}]; REAL acc = 0;")
                out.append(f"{indent}  for (int32_t b = 0; b < B; b++) {{")
                out.append(f"{indent}    const REAL spk = {spiked} ? (REAL)1 : (REAL)0;")
                for line in load:
                    out.append(f"{indent}    {line}")
                out.append(f"{indent}    acc = acc + spk * {printer(st.expr)};")
                out.append(f"{indent}  }}")
                out.append(f"{indent}  w[{s_var}] = v_w + acc * invB; }}")
            else:
                out.append(f"{indent}for (int32_t b = 0; b < B; b++) {{")
                out.append(f"{indent}  if (!({spiked})) continue;")
                out.append(f"{indent}  const REAL v_w = w[{s_var}]; (void)v_w;")
                for line in load:
                    out.append(f"{indent}  {line}")
                out.append(f"{indent}  T_{st.target}[(int64_t)b * S + {s_var}] = "
                           f"T_{st.target}[(int64_t)b * S + {s_var}] + {printer(st.expr)};")
                out.append(f"{indent}}}")
        return out

    clip_events = program.clip and any(s.target == "w" for s in program.on_pre + program.on_post)
    clip_line = "w[s] = bc_clip(w[s], p_w_min, p_w_max);"

    def bump(s: str, n: str) -> None:
        names = [name for name in traces if side[name] == s]
        if not names:
            return
        L.append("    for (int32_t b = 0; b < B; b++) {")
        L.append(f"        const int32_t *fired = {'Pa' if s == 'pre' else 'Pb'}->fired + (int64_t)b * {n};")
        L.append(f"        for (int32_t f = 0; f < {'Pa' if s == 'pre' else 'Pb'}->n_fired[b]; f++) {{")
        L.append(f"            const int64_t q = (int64_t)b * {n} + fired[f];")
        for name in names:
            L.append(f"            T_{name}[q] = {'(REAL)1' if nearest else f'T_{name}[q] + (REAL)1'};")
        L.append("        }")
        L.append("    }")

    def weights_only(stmts) -> bool:
        """Statements that write only ``w`` and read no synapse trace: the all-to-all form below applies."""
        used = set()
        for st in stmts:
            used |= {sym.name for sym in st.expr.free_symbols}
        return all(st.target == "w" for st in stmts) and not any(side.get(n) == "synapse" for n in used)

    # 2. on_pre over the outgoing synapses of the presynaptic neurons that spiked. An all-to-all projection in
    # order (J->full: synapse s of pre i is post s - indptr[i]) with one trial runs the same operations on
    # each element without the index arrays, in loops the compiler vectorises; the clip of a synapse whose post
    # neuron also spiked waits for on_post (a select, not a branch).
    if program.on_pre:
        pre_clips = clip_events and any(st.target == "w" for st in program.on_pre)
        post_writes = bool(program.on_post) and any(st.target == "w" for st in program.on_post)
        if weights_only(program.on_pre):
            def pre_rows(clip: str) -> None:
                L.append("        for (int32_t a = 0; a < R->n_act_pre; a++) {")
                L.append("            const int32_t i = R->act_pre[a];")
                L.append("            const int64_t base = J->indptr[i];")
                L.append("            for (int32_t j = 0; j < nb; j++) {")
                L.append("                const int64_t s = base + j;")
                L.extend(statements(program.on_pre, "s", "i", "j", "", "                ", single=True))
                if clip:
                    L.append(f"                {clip}")
                L.append("            }")
                L.append("        }")

            L.append("    if (J->full && B == 1) {")
            if pre_clips and post_writes:  # the select only in steps with a post spike (it stops vectorising)
                L.append("        if (R->n_act_post == 0) {")
                pre_rows(clip_line)
                L.append("        } else {")
                L.append("        const uint8_t *restrict later = R->seen_post;")
                pre_rows("if (!later[j]) " + clip_line)
                L.append("        }")
            else:
                pre_rows(clip_line if pre_clips else "")
            L.append("    } else")
        L.append("    for (int32_t a = 0; a < R->n_act_pre; a++) {")
        L.append("        const int32_t i = R->act_pre[a];")
        L.append("        for (int64_t s = J->indptr[i]; s < J->indptr[i + 1]; s++) {")
        L.append("            const int32_t j = J->post[s]; (void)j;")
        L += statements(program.on_pre, "s", "i", "j", "R->flag_pre[(int64_t)b * na + i]", "            ")
        if clip_events and any(st.target == "w" for st in program.on_pre):
            if program.on_post and any(st.target == "w" for st in program.on_post):
                L.append(f"            if (!R->seen_post[j]) {clip_line}  /* else on_post clips after both */")
            else:
                L.append(f"            {clip_line}")
        L.append("        }")
        L.append("    }")
    bump("pre", "na")
    # 4. on_post over the incoming synapses of the postsynaptic neurons that spiked
    if program.on_post:
        if weights_only(program.on_post):  # all-to-all, one trial: the synapses of post j at stride nb
            L.append("    if (J->full && B == 1) {")
            L.append("        for (int32_t a = 0; a < R->n_act_post; a++) {")
            L.append("            const int32_t j = R->act_post[a];")
            L.append("            for (int32_t i = 0; i < na; i++) {")
            L.append("                const int64_t s = (int64_t)i * nb + j;")
            L += statements(program.on_post, "s", "i", "j", "", "                ", single=True)
            if clip_events:
                L.append(f"                {clip_line}")
            L.append("            }")
            L.append("        }")
            L.append("    } else")
        L.append("    for (int32_t a = 0; a < R->n_act_post; a++) {")
        L.append("        const int32_t j = R->act_post[a];")
        L.append("        for (int64_t q = R->indptr_post[j]; q < R->indptr_post[j + 1]; q++) {")
        L.append("            const int64_t s = R->by_post[q];")
        L.append("            const int32_t i = R->pre_of[s]; (void)i;")
        L += statements(program.on_post, "s", "i", "j", "R->flag_post[(int64_t)b * nb + j]", "            ")
        if clip_events:
            L.append(f"            {clip_line}")
        L.append("        }")
        L.append("    }")
    bump("post", "nb")
    # 6. each_step, when its condition holds in some trial
    if program.each_step:
        if program.when is not None:
            L.append("    int due = 0;")
            L.append("    for (int32_t b = 0; b < B; b++) {")
            if "M" in {sym.name for sym in program.when.free_symbols}:
                L.append("        const REAL v_M = Mv ? Mv[b] : (REAL)0;")
            L.append(f"        if ({printer(program.when)}) {{ due = 1; break; }}")
            L.append("    }")
        else:
            L.append("    const int due = 1;")
        L.append("    if (due) {")
        L.append("        for (int64_t s = 0; s < S; s++) {")
        L.append("            const int32_t i = R->pre_of[s], j = J->post[s]; (void)i; (void)j;")
        L += statements(program.each_step, "s", "i", "j", "1", "            ")
        L.append("        }")
        if program.clip:
            L.append(f"        for (int64_t s = 0; s < S; s++) {clip_line}")
        L.append("    }")
    # 7. the events clipped what they changed (a synapse with both a pre and a post spike after both updates,
    # as the PyTorch executor clips once per step); on the first step of a run everything is clipped, as the
    # weights may have been set out of bounds from Python, and so on the step after a normalisation of the
    # projection scaled them (R->first, set by the kernel's builtin_rule)
    if clip_events:
        L.append("    if (R->first) {")
        L.append(f"        for (int64_t s = 0; s < S; s++) {clip_line}")
        L.append("    }")
    L.append("    unmark_spikes(net, Pa, R->flag_pre, R->act_pre, R->seen_pre, R->n_act_pre);")
    L.append("    unmark_spikes(net, Pb, R->flag_post, R->act_post, R->seen_post, R->n_act_post);")
    L.append("}")
    return "\n".join(L) + "\n"


def rule_dispatch(names: list) -> str:
    """``step_rule``: calls the generated function of ``R->kind`` (negative kinds are the engine's own rules)."""
    cases = "\n".join(f"    case {k}: {name}(net, R); return;" for k, name in enumerate(names))
    return ("static void step_rule(Net *net, Rule *R) {\n"
            "    if (R->kind < 0) { builtin_rule(net, R); return; }\n"
            f"    switch (R->kind) {{\n{cases}\n    default: return;\n    }}\n}}\n")


__all__ = ["rule_function", "rule_dispatch", "rule_constant_names"]
