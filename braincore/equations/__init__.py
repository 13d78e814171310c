"""Models defined once, as equations with units; every engine's code generated from that one definition.

- :mod:`.dimensions`: dimensions and canonical scales for checking equations;
- :mod:`.parse`: expression text -> checked symbolic expression (:class:`EquationError` on bad input);
- :mod:`.definition`: :class:`NeuronDefinition` and its analysis into a :class:`Program`;
- :mod:`.integrate`: integration methods (exact, exponential Euler, Euler, RK4);
- :mod:`.printers`: one expression printed as PyTorch and as C with the same floating-point operations;
- :mod:`.torch_step`: the generated PyTorch step; :mod:`.c_code`: the generated native-engine C code.
"""
from .definition import NeuronDefinition, Program, Statement
from .integrate import METHODS
from .parse import EquationError

__all__ = ["NeuronDefinition", "Program", "Statement", "EquationError", "METHODS"]
