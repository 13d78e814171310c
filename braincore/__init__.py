"""braincore: a brain-inspired cognitive engine on PyTorch.

Neuron models (:mod:`braincore.neurons`), surrogate spike functions (:mod:`braincore.surrogate`), encoders
(:mod:`braincore.encoding`), physical units (:mod:`braincore.units`), YAML configs (:mod:`braincore.config`)
and the ``braincore`` command (:mod:`braincore.cli`).

Importing the package is cheap: the names below and the subpackages are imported when first used (PyTorch
loads with :mod:`braincore.neurons`), so ``braincore --help`` answers without loading PyTorch.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: public name -> the submodule that defines it, imported on first access
_LAZY = {"MODELS": "neurons", "get_model": "neurons", "inject_current": "neurons", "parse_quantity": "units"}

__all__ = ["MODELS", "get_model", "inject_current", "parse_quantity", "__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    if not name.startswith("__"):  # a subpackage or module: braincore.neurons, braincore.training, ...
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as err:
            if err.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
