"""braincore: a brain-inspired cognitive engine on PyTorch.

Neuron models (:mod:`braincore.neurons`), surrogate spike functions (:mod:`braincore.surrogate`), encoders
(:mod:`braincore.encoding`), physical units (:mod:`braincore.units`), YAML configs (:mod:`braincore.config`)
and the ``braincore`` command (:mod:`braincore.cli`).
"""
from .neurons import MODELS, get_model, inject_current
from .units import parse_quantity

__version__ = "0.1.0"

__all__ = ["MODELS", "get_model", "inject_current", "parse_quantity", "__version__"]
