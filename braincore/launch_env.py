"""The launcher's environment: what ``torchrun`` (or any launcher that follows its convention) tells a process, and
how a process leaves the process group.

One reader of ``WORLD_SIZE`` for the whole engine, shared by the distributed simulation
(:mod:`braincore.distributed`) and the data-parallel training (:mod:`braincore.training.distributed`). It sits
at the bottom of the import graph (standard library only; :func:`leave_process_group` imports
``torch.distributed`` when called) so that neither of those imports the other for it.
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


def leave_process_group(timeout_s: float = 300.0) -> None:
    """Wait until every rank has arrived here (at most ``timeout_s``), then destroy the default process group (a
    no-op without one).

    A rank that destroys its group while a peer still uses their connections makes gloo abort the peer ("terminate
    called without an active exception", SIGABRT), so ranks leave together. With gloo the wait is a
    ``monitored_barrier`` with a timeout: a rank that failed and left does not hang the others; they destroy their
    group anyway, and the failure is reported by the rank that failed."""
    import datetime

    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return
    try:
        if dist.get_world_size() > 1:
            if dist.get_backend() == "gloo":
                dist.monitored_barrier(timeout=datetime.timedelta(seconds=timeout_s))
            else:
                dist.barrier()
    except RuntimeError:
        pass  # a peer failed or left: nothing to wait for
    finally:
        dist.destroy_process_group()


__all__ = ["environment_world_size", "leave_process_group"]
