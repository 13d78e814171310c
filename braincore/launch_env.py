"""The launcher's environment: what ``torchrun`` (or any launcher that follows its convention) tells a process.

One reader of ``WORLD_SIZE`` for the whole engine, shared by the distributed simulation
(:mod:`braincore.distributed`) and the data-parallel training (:mod:`braincore.training.distributed`). It sits
at the bottom of the import graph (standard library only) so that neither of those imports the other for it.
"""
from __future__ import annotations

import os


def environment_world_size() -> int:
    """``WORLD_SIZE`` as set by torchrun (1 when unset); a clear error when it is not a positive integer."""
    value = os.environ.get("WORLD_SIZE")
    if value is None:
        return 1
    try:
        n = int(value)
    except ValueError:
        raise ValueError(f"WORLD_SIZE={value!r} is not an integer (set by torchrun)") from None
    if n < 1:
        raise ValueError(f"WORLD_SIZE must be >= 1, got {n}")
    return n


__all__ = ["environment_world_size"]
