"""The exception types shared by the whole engine.

:class:`ConfigError` is the one user-facing configuration error: every module that checks a parameter, a
config file, a graph or a command-line option raises it (a ``ValueError`` subclass), so callers catch a single
type; :class:`NumericalError` is the one a run raises when its numbers blow up (NaN or infinite state or
weights). They live here, at the bottom of the import graph, so that any module may raise it without importing the
neuron models.
"""
from __future__ import annotations

from typing import Optional


class ConfigError(ValueError):
    """A user-facing configuration problem: names what is wrong and what was expected.

    ``items`` optionally lists ``(key, message)`` pairs, so that a config loader can point each message at
    the line of its key.
    """

    def __init__(self, message: str, items: Optional[list] = None):
        super().__init__(message)
        self.items = items or []


class CheckpointError(ConfigError):
    """A checkpoint that cannot be used: missing, not a braincore checkpoint (empty, truncated, another file
    type, refused pickled code), of another format version, or written by a different network or config. The
    message names the file and what to do (:func:`braincore.checkpoint.load_checkpoint`)."""



class NumericalError(ConfigError):
    """A run blew up: a state variable or a weight became NaN or infinite. The message names the population (or
    projection), the variable, the steps between which it happened and the likely cause (weights or inputs too
    large, ``dt`` too large for the integration method, a plasticity rule without bounds). A
    :class:`ConfigError` (a ``ValueError``), since the remedy is in the configuration."""

    def __init__(self, message: str, items: Optional[list] = None, *, step: Optional[int] = None):
        super().__init__(message, items)
        self.step = step


__all__ = ["ConfigError", "CheckpointError", "NumericalError"]
