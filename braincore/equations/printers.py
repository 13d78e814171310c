"""Print one symbolic expression as PyTorch code and as C code with the same floating-point operations.

Both printers walk the same tree and parenthesise every binary operation, so ``a + b + c`` is ``((a + b) + c)`` in
either language: the operations and their order are the same, and in float64 the two engines round identically
(the C code is compiled with ``-ffp-contract=off``, so no multiply-add is fused). Transcendental functions
(``exp``, ``log``, ...) are the two libraries' own and may differ in the last bit; every per-step constant that
depends only on parameters and ``dt`` (propagators such as ``exp(-dt/tau)``) is computed once, in Python, and handed
to both engines, so the linear models need no transcendental function per step at all.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Callable


from .parse import custom_functions

_CUSTOM_TORCH = {"exprel": "_exprel", "expm1": "torch.expm1", "log1p": "torch.log1p"}
_CUSTOM_C = {"exprel": "bc_exprel", "expm1": "expm1", "log1p": "log1p"}


@lru_cache(maxsize=None)
def _tables() -> tuple[dict, dict, dict]:
    """The functions of each language and the relations, keyed by sympy class (made on first use: no sympy import
    before an expression is printed)."""
    import sympy

    torch_funcs = {sympy.exp: "torch.exp", sympy.log: "torch.log", sympy.sin: "torch.sin", sympy.cos: "torch.cos",
                   sympy.tanh: "torch.tanh", sympy.Abs: "torch.abs"}
    c_funcs = {sympy.exp: "exp", sympy.log: "log", sympy.sin: "sin", sympy.cos: "cos", sympy.tanh: "tanh",
               sympy.Abs: "fabs"}
    relations = {sympy.StrictGreaterThan: ">", sympy.GreaterThan: ">=", sympy.StrictLessThan: "<",
                 sympy.LessThan: "<=", sympy.Eq: "==", sympy.Ne: "!="}
    return torch_funcs, c_funcs, relations


def number(value: float) -> str:
    text = repr(float(value))
    return text if ("." in text or "e" in text or "n" in text) else text + ".0"


class Printer:
    """``Printer(lang, name_of)(expr)``: ``lang`` ``"torch"`` or ``"c"``; ``name_of(symbol_name) -> code``."""

    def __init__(self, lang: str, name_of: Callable[[str], str]):
        self.lang, self.name_of = lang, name_of

    def __call__(self, e) -> str:
        return self.p(e)

    def num(self, value) -> str:
        text = number(value)
        if self.lang == "c":
            return f"((REAL){text})"
        return f"({text})" if text.startswith("-") else text

    def p(self, e) -> str:
        import sympy

        if e.is_Number:
            return self.num(e)
        if e.is_Symbol:
            return self.name_of(e.name)
        if isinstance(e, sympy.Add):
            out = self.p(e.args[0])
            for a in e.args[1:]:
                negate, text = self.mul_parts(a) if isinstance(a, sympy.Mul) else (False, self.p(a))
                if negate and self.lang == "torch":  # x - y is x + (-y) exactly, one tensor operation instead of two
                    out = f"({out} - {text})"
                else:
                    out = f"({out} + {f'(-{text})' if negate else text})"
            return out
        if isinstance(e, sympy.Mul):
            return self.mul(e)
        if isinstance(e, sympy.Pow):
            return self.pow(e.base, e.exp)
        if isinstance(e, (sympy.Min, sympy.Max)):
            return self.minmax(e)
        torch_funcs, c_funcs, relations = _tables()
        if type(e) in relations:
            return f"({self.p(e.lhs)} {relations[type(e)]} {self.p(e.rhs)})"
        if isinstance(e, sympy.And):
            op = " & " if self.lang == "torch" else " && "
            return "(" + op.join(self.p(a) for a in e.args) + ")"
        if isinstance(e, sympy.Not):
            return f"({'~' if self.lang == 'torch' else '!'}{self.p(e.args[0])})"
        if isinstance(e, sympy.Function):
            name = type(e).__name__
            if name in custom_functions():
                table = _CUSTOM_TORCH if self.lang == "torch" else _CUSTOM_C
                return f"{table[name]}({self.p(e.args[0])})"
            table = torch_funcs if self.lang == "torch" else c_funcs
            if type(e) in table:
                return f"{table[type(e)]}({self.p(e.args[0])})"
        raise TypeError(f"cannot print {e!r} ({type(e).__name__})")

    def mul(self, e) -> str:
        negate, text = self.mul_parts(e)
        return f"(-{text})" if negate else text

    def mul_parts(self, e) -> tuple:
        """``(negate, text)``: a product printed without its leading factor ``-1`` and whether it had one."""
        import sympy

        numer, denom = [], []
        for a in e.args:
            if isinstance(a, sympy.Pow) and a.exp.is_Number and a.exp < 0:
                denom.append(self.pow(a.base, -a.exp) if a.exp != -1 else self.p(a.base))
            elif a.is_Rational and not a.is_Integer and a.p == 1:
                denom.append(self.num(a.q))
            else:
                numer.append(a)
        negate = False
        if numer and numer[0] == -1 and len(numer) > 1:
            negate, numer = True, numer[1:]
        out = self.p(numer[0]) if numer else self.num(1.0)
        for a in numer[1:]:
            out = f"({out} * {self.p(a)})"
        for d in denom:
            out = f"({out} / {d})"
        return negate, out

    def pow(self, base, exp) -> str:
        import sympy

        b = self.p(base)
        if exp.is_Integer and 0 < exp <= 8:
            out = b
            for _ in range(int(exp) - 1):
                out = f"({out} * {b})"
            return out
        if exp.is_Integer and -8 <= exp < 0:
            return f"({self.num(1.0)} / {self.pow(base, -exp)})"
        if exp == sympy.Rational(1, 2):
            return f"torch.sqrt({b})" if self.lang == "torch" else f"sqrt({b})"
        if self.lang == "torch":
            return f"torch.pow({b}, {self.p(exp)})"
        return f"pow({b}, {self.p(exp)})"

    def minmax(self, e) -> str:
        import sympy

        is_min = isinstance(e, sympy.Min)
        args = list(e.args)
        out = self.p(args[0])
        for a in args[1:]:
            other = self.p(a)
            if self.lang == "c":
                out = f"{'fmin' if is_min else 'fmax'}({out}, {other})"
            elif a.is_Number:
                out = f"torch.clamp({out}, {'max' if is_min else 'min'}={other})"
            elif args[0].is_Number:
                out = f"torch.clamp({other}, {'max' if is_min else 'min'}={out})"
            else:
                out = f"torch.{'minimum' if is_min else 'maximum'}({out}, {other})"
        return out
