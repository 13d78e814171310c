"""Integration methods: a set of ODEs ``dx/dt = f(x, ...)`` -> update statements for one step of ``dt``.

The input ``I`` and every variable without an equation are held over the step; each update reads the old values
of all variables (no Gauss–Seidel ordering).

- ``euler``: ``x <- x + dt f``.
- ``exponential_euler`` (Brian2's): each equation must be linear in its own variable,
  ``f = A x + B`` with ``A``, ``B`` evaluated at the old state and held; then
  ``x <- x_inf + (x - x_inf) exp(A dt)``, ``x_inf = -B/A`` (``x + dt B`` where ``A = 0``).
- ``exact``: the same formula, offered only where it is exact: ``A`` depends on parameters alone and ``B`` on no
  other integrated variable (an uncoupled linear system under a held input). ``exp(A dt)`` is then a
  per-population constant, so the step has no transcendental function.
- ``rk4``: the classic four-stage Runge–Kutta method on the whole system.
"""
from __future__ import annotations


from .parse import symbol

METHODS = ("exact", "exponential_euler", "euler", "rk4")


def _linear(defn, x: str, f, method: str):
    import sympy

    xs = symbol(x)
    A = sympy.diff(f, xs)
    if xs in A.free_symbols:
        raise defn.fail(f"d{x}/dt is not linear in {x}, so the {method!r} method cannot integrate it; use "
                        f"'euler' or 'rk4'", "method")
    B = f.subs(xs, 0)
    return A, B


def integrate(defn, method: str, odes: dict, params: set) -> tuple[list, list]:
    """``(temporaries, updates)`` for ``odes`` (``{variable: rhs}``) by ``method``."""
    import sympy

    dt = symbol("dt")
    if method == "euler":
        return [], [(x, symbol(x) + dt * f) for x, f in odes.items()]
    if method in ("exact", "exponential_euler"):
        temps, updates = [], []
        for x, f in odes.items():
            A, B = _linear(defn, x, f, method)
            if method == "exact":
                if not all(s.name in params for s in A.free_symbols):
                    raise defn.fail(f"d{x}/dt has a coefficient of {x} that changes with the state, so 'exact' does "
                                    f"not apply; use 'exponential_euler'", "method")
                coupled = [y for y in odes if y != x and symbol(y) in B.free_symbols]
                if coupled:
                    raise defn.fail(f"d{x}/dt depends on {', '.join(coupled)}, which are integrated too: 'exact' "
                                    f"does not apply to this coupled system; use 'exponential_euler'", "method")
            xs = symbol(x)
            if A == 0:
                updates.append((x, xs + dt * B))
                continue
            x_inf = -B / A
            if not (x_inf.is_Symbol or x_inf.is_Number):  # computed once, used twice
                temps.append((f"_inf_{x}", x_inf))
                x_inf = symbol(f"_inf_{x}")
            updates.append((x, x_inf + (xs - x_inf) * sympy.exp(A * dt)))
        return temps, updates
    if method == "rk4":
        names = list(odes)
        temps: list = []
        stage_state = {x: symbol(x) for x in names}
        ks = []
        for stage, weight in enumerate((None, 0.5, 0.5, 1.0)):
            if weight is not None:
                stage_state = {}
                for x in names:
                    t = f"_y{stage + 1}_{x}"
                    temps.append((t, symbol(x) + sympy.Float(weight) * dt * ks[-1][x]))
                    stage_state[x] = symbol(t)
            k = {}
            subs = {symbol(x): v for x, v in stage_state.items()}
            for x in names:
                t = f"_k{stage + 1}_{x}"
                temps.append((t, odes[x].xreplace(subs)))
                k[x] = symbol(t)
            ks.append(k)
        updates = [(x, symbol(x) + dt / 6 * (ks[0][x] + 2 * ks[1][x] + 2 * ks[2][x] + ks[3][x])) for x in names]
        return temps, updates
    raise defn.fail(f"unknown method {method!r}; braincore integrates with {', '.join(METHODS)}", "method")
