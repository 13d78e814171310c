"""Expressions and equations as text -> symbolic expressions in canonical units, checked for dimensions.

An expression is Python syntax over the model's names (parameters, state variables, the input ``I``, ``dt``, named
sub-expressions), numbers, unit names (``-20*mV``, ``0.1/ms``) and the functions in :data:`FUNCTIONS`. Each name
stands for a number in its canonical unit (:mod:`braincore.units`); the parser computes the dimension of every
sub-expression and refuses sums, comparisons and function arguments whose dimensions disagree, naming both. Where
the dimensions agree but the canonical units differ (``g_L * (E_L - v)`` is in nS * mV = pA, ``I`` in nA) the term
is rescaled by the power of ten between them, so equations may be written in any consistent physical form::

    dv/dt = (g_L*(E_L - v) + I) / C        # nS, mV, nA, pF: the parser inserts the factor 1000 on I

The result is a :mod:`sympy` expression (symbols are real) together with its :class:`~.dimensions.Dim`.
Comparisons (``v >= v_th``) are allowed where a condition is expected; ``and`` joins conditions.
"""
from __future__ import annotations

import ast
import difflib
import math
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Optional


from .dimensions import ONE, UNIT_NAMES, Dim

if TYPE_CHECKING:
    import sympy

@lru_cache(maxsize=None)
def functions() -> dict[str, tuple]:
    """The functions an expression may call: name -> (sympy constructor, how arguments are checked). Built on first
    use, so that importing the model definitions does not import sympy (``braincore models``)."""
    import sympy

    return {
        "exp": (sympy.exp, "dimensionless"), "log": (sympy.log, "dimensionless"),
        "expm1": (sympy.Function("expm1"), "dimensionless"), "log1p": (sympy.Function("log1p"), "dimensionless"),
        # (exp(x) - 1) / x, continuous at 0 (Brian2's exprel)
        "exprel": (sympy.Function("exprel"), "dimensionless"), "sin": (sympy.sin, "dimensionless"),
        "cos": (sympy.cos, "dimensionless"), "tanh": (sympy.tanh, "dimensionless"),
        "sqrt": (sympy.sqrt, "sqrt"), "abs": (sympy.Abs, "same"),
        "min": (sympy.Min, "same"), "max": (sympy.Max, "same"), "clip": (None, "same"),
    }


def custom_functions() -> dict[str, Any]:
    """The functions of :func:`functions` that sympy does not know (printed by name): ``exprel``, ``expm1``,
    ``log1p``."""
    return {name: functions()[name][0] for name in ("exprel", "expm1", "log1p")}


def __getattr__(name: str) -> Any:
    # FUNCTIONS and CUSTOM_FUNCTIONS, as module attributes, made on first use
    if name == "FUNCTIONS":
        return functions()
    if name == "CUSTOM_FUNCTIONS":
        return custom_functions()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class EquationError(ValueError):
    """A bad equation or expression; ``key`` names the entry of the model definition it came from (``equations[0]``,
    ``params.tau``, ``state.v``, ``threshold``, ``method`` ...) and ``detail`` is the message without the model's
    name and the key (what a config loader prints after the file, line and key path)."""

    def __init__(self, message: str, key: Optional[str] = None, detail: Optional[str] = None):
        super().__init__(message)
        self.key = key
        self.detail = detail if detail is not None else message


def symbol(name: str) -> sympy.Symbol:
    import sympy

    return sympy.Symbol(name, real=True)


def _factor(ratio: float) -> float:
    """A unit conversion factor rounded to 12 digits (1e-9 / 1e-12 is 1000.0000000000001 in floating point)."""
    return float(f"{ratio:.12g}")


def rescale(expr: sympy.Expr, dim: Dim, target_scale: float) -> sympy.Expr:
    """``expr`` (numbers in ``dim.scale``) as numbers in ``target_scale``."""
    import sympy

    factor = _factor(dim.scale / target_scale)
    return expr if factor == 1.0 else sympy.Float(factor) * expr


class _Parser:
    def __init__(self, names: dict[str, Dim], text: str, key: Optional[str]):
        self.names, self.text, self.key = names, text, key

    def fail(self, message: str) -> EquationError:
        return EquationError(f"{message} (in {self.text!r})", self.key)

    def visit(self, node: ast.AST):
        method = getattr(self, f"visit_{type(node).__name__}", None)
        if method is None:
            raise self.fail(f"{type(node).__name__} is not allowed in an equation")
        return method(node)

    def visit_Expression(self, node):
        return self.visit(node.body)

    def visit_Constant(self, node):
        import sympy

        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise self.fail(f"{node.value!r} is not a number")
        value = sympy.Integer(node.value) if isinstance(node.value, int) else sympy.Float(node.value)
        return value, ONE

    def visit_Name(self, node):
        import sympy

        name = node.id
        if name in self.names:
            return symbol(name), self.names[name]
        if name in UNIT_NAMES:
            return sympy.Integer(1), UNIT_NAMES[name]
        if name in ("pi", "e"):
            return sympy.Float(math.pi if name == "pi" else math.e), ONE
        near = difflib.get_close_matches(name, list(self.names), n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        known = ", ".join(sorted(self.names))
        raise self.fail(f"unknown symbol {name!r}{hint} (known: {known}, unit names such as mV, and "
                        f"functions {', '.join(functions())})")

    def visit_UnaryOp(self, node):
        import sympy

        expr, dim = self.visit(node.operand)
        if isinstance(node.op, ast.USub):
            return -expr, dim
        if isinstance(node.op, ast.UAdd):
            return expr, dim
        if isinstance(node.op, ast.Not):
            return sympy.Not(expr), ONE
        raise self.fail(f"operator {type(node.op).__name__} is not allowed")

    def _same(self, a, b, what: str):
        (ea, da), (eb, db) = a, b
        if eb == 0:
            return ea, eb, da
        if ea == 0:
            return ea, eb, db
        if not da.same_dimension(db):
            raise self.fail(f"cannot {what} a {da.describe()} and a {db.describe()}")
        return ea, rescale(eb, db, da.scale), da

    def visit_BinOp(self, node):
        import sympy

        a, b = self.visit(node.left), self.visit(node.right)
        op = node.op
        if isinstance(op, (ast.Add, ast.Sub)):
            ea, eb, dim = self._same(a, b, "add" if isinstance(op, ast.Add) else "subtract")
            return (ea + eb if isinstance(op, ast.Add) else ea - eb), dim
        if isinstance(op, ast.Mult):
            return a[0] * b[0], a[1] * b[1]
        if isinstance(op, ast.Div):
            return a[0] / b[0], a[1] / b[1]
        if isinstance(op, ast.Pow):
            exponent, edim = b
            if not edim.dimensionless:
                raise self.fail(f"an exponent must be dimensionless, got a {edim.describe()}")
            if exponent.free_symbols:  # a variable exponent: only of a dimensionless base
                if not a[1].dimensionless:
                    raise self.fail("a variable exponent needs a dimensionless base")
                return rescale(a[0], a[1], 1.0) ** exponent, ONE
            power = float(exponent)
            if power.is_integer():
                exponent = sympy.Integer(int(power))
            return a[0] ** exponent, a[1] ** power
        raise self.fail(f"operator {type(op).__name__} is not allowed")

    def visit_Compare(self, node):
        import sympy

        if len(node.ops) != 1:
            raise self.fail("chained comparisons are not allowed; join them with 'and'")
        ea, eb, _ = self._same(self.visit(node.left), self.visit(node.comparators[0]), "compare")
        ops = {ast.Gt: sympy.StrictGreaterThan, ast.GtE: sympy.GreaterThan, ast.Lt: sympy.StrictLessThan,
               ast.LtE: sympy.LessThan, ast.Eq: sympy.Eq, ast.NotEq: sympy.Ne}
        op = ops.get(type(node.ops[0]))
        if op is None:
            raise self.fail(f"comparison {type(node.ops[0]).__name__} is not allowed")
        return op(ea, eb, evaluate=False), ONE

    def visit_BoolOp(self, node):
        import sympy

        if not isinstance(node.op, ast.And):
            raise self.fail("only 'and' may join conditions")
        return sympy.And(*[self.visit(v)[0] for v in node.values], evaluate=False), ONE

    def visit_Call(self, node):
        import sympy

        known = functions()
        if not isinstance(node.func, ast.Name) or node.func.id not in known or node.keywords:
            name = getattr(node.func, "id", "?")
            raise self.fail(f"unknown function {name!r}; use one of {', '.join(known)}")
        name = node.func.id
        build, rule = known[name]
        args = [self.visit(a) for a in node.args]
        wanted = {"clip": 3, "min": 2, "max": 2}.get(name, 1)
        if len(args) != wanted:
            raise self.fail(f"{name}() takes {wanted} argument{'s' if wanted > 1 else ''}, got {len(args)}")
        if rule == "dimensionless":
            expr, dim = args[0]
            if not dim.dimensionless:
                raise self.fail(f"the argument of {name}() must be dimensionless, got a {dim.describe()}")
            return build(rescale(expr, dim, 1.0)), ONE
        if rule == "sqrt":
            return sympy.sqrt(args[0][0]), args[0][1] ** 0.5
        first = args[0]
        rest = [self._same(first, other, f"{name}() together")[1] for other in args[1:]]
        if name == "abs":
            return sympy.Abs(first[0]), first[1]
        if name == "clip":
            return sympy.Min(sympy.Max(first[0], rest[0]), rest[1]), first[1]
        return build(first[0], rest[0]), first[1]


def parse_expression(text: str, names: dict[str, Dim], key: Optional[str] = None):
    """``(sympy expression, Dim)`` of ``text`` over ``names`` (name -> Dim of its canonical unit)."""
    if not isinstance(text, str) or not text.strip():
        raise EquationError(f"expected an expression, got {text!r}", key)
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as err:
        raise EquationError(f"cannot parse {text!r}: {err.msg}", key) from None
    return _Parser(names, text, key).visit(tree)


def split_equation(text: str, key: Optional[str] = None) -> tuple[str, str, bool]:
    """``"dv/dt = rhs"`` -> ``("v", "rhs", True)``; ``"x = rhs"`` -> ``("x", "rhs", False)``."""
    if not isinstance(text, str) or "=" not in text:
        raise EquationError(f"expected an equation 'dx/dt = ...' or a statement 'x = ...', got {text!r}", key)
    lhs, rhs = text.split("=", 1)
    if rhs.startswith("=") or lhs.endswith(("<", ">", "!")):
        raise EquationError(f"expected an equation 'dx/dt = ...' or a statement 'x = ...', got {text!r}", key)
    lhs = lhs.replace(" ", "")
    if lhs.startswith("d") and lhs.endswith("/dt") and lhs[1:-3].isidentifier():
        return lhs[1:-3], rhs.strip(), True
    for op in ("+", "-", "*", "/"):
        if lhs.endswith(op) and lhs[:-1].isidentifier():  # x += e
            return lhs[:-1], f"{lhs[:-1]} {op} ({rhs.strip()})", False
    if not lhs.isidentifier():
        raise EquationError(f"the left-hand side of {text!r} must be 'dx/dt' or a variable name", key)
    return lhs, rhs.strip(), False
