"""The blow-up check of every engine: NaN or infinite state variables and weights stop a run with a
:class:`~braincore.errors.NumericalError` naming the population or projection, the steps and the likely cause.

One helper, :func:`raise_if_not_finite`, used by :meth:`braincore.simulator.Simulator.check_finite` (PyTorch and
native engines) and :meth:`braincore.distributed.DistributedSimulator.check_finite`; the distributed engine passes
``gather``, which sums each rank's counts so that every rank raises the same error (none is left waiting in a
collective) and the counts are those of the whole population or projection.
"""
from __future__ import annotations

import math
from typing import Callable, Iterable, Optional

import torch
from torch import Tensor

from .errors import NumericalError

#: ``("projection", name, "")`` or ``("population", name, variable)``
Key = tuple[str, str, str]
#: NaN values, infinite values, all values
Counts = tuple[int, int, int]


def non_finite_counts(value: Tensor) -> Counts:
    """``(NaN values, infinite values, values)`` of a tensor (non-float tensors count as finite): one reduction
    when every value is finite, no copy of the tensor kept."""
    total = value.numel()
    if not value.is_floating_point() or total == 0:
        return 0, 0, total
    if math.isfinite(float(value.sum())):  # a NaN or an infinity makes the sum non-finite: one pass, no copy
        return 0, 0, total
    if bool(torch.isfinite(value).all()):  # the sum overflowed, the values are finite
        return 0, 0, total
    return int(torch.isnan(value).sum()), int(torch.isinf(value).sum()), total


def describe(counts: Counts) -> Optional[str]:
    """``"NaN (n of N values)"``, ``"infinite (...)"``, both joined by "and", or ``None`` when finite."""
    nan, inf, total = counts
    parts = ([f"NaN ({nan} of {total} values)"] if nan else []) + ([f"infinite ({inf} of {total} values)"]
                                                                   if inf else [])
    return " and ".join(parts) or None


def raise_if_not_finite(run_name: str, dt: float, since: int, now: int,
                        weights: Iterable[tuple[str, Tensor, bool]],
                        states: Iterable[tuple[str, str, Tensor, Optional[str]]],
                        gather: Optional[Callable[[dict[Key, Counts]], list[dict[Key, Counts]]]] = None) -> None:
    """Raise :class:`~braincore.errors.NumericalError` when a weight or state tensor holds NaN or infinite values.

    ``weights``: ``(projection, tensor, plastic)``; ``states``: ``(population, variable, tensor, method)``;
    ``since`` and ``now``: the step of the last check that passed and the current step. ``gather`` (a collective:
    every process passes its own counts, gets everyone's) merges the counts of the processes of a distributed run.
    Returns normally when every value is finite (everywhere)."""
    counts: dict[Key, Counts] = {}
    plastic: dict[str, bool] = {}
    methods: dict[str, Optional[str]] = {}
    for name, weight, is_plastic in weights:
        counts[("projection", name, "")] = non_finite_counts(weight)
        plastic[name] = is_plastic
    for name, var, value, method in states:
        counts[("population", name, var)] = non_finite_counts(value)
        methods[name] = method
    if gather is not None:
        merged: dict[Key, Counts] = {}
        for part in gather(counts):
            for key, (nan, inf, total) in part.items():
                a, b, c = merged.get(key, (0, 0, 0))
                merged[key] = (a + nan, b + inf, c + total)
        counts = merged
    problems = []
    for (kind, name, var), found in counts.items():
        bad = describe(found)
        if bad is None:
            continue
        if kind == "projection":
            cause = ("its plasticity rule let the weights grow without bound (lower the learning rate, or bound "
                     "them with w_max)" if plastic.get(name) else
                     "the weights were set to non-finite values (check the values given or assigned)")
            problems.append(f"projection {name!r}: weights became {bad}; likely cause: {cause}")
        else:
            method = methods.get(name)
            problems.append(
                f"population {name!r}: state variable {var!r} became {bad}; likely causes: weights or "
                f"inputs too large for the model, dt = {dt:g} ms too large for its integration "
                f"method{f' {method!r}' if isinstance(method, str) else ''}, or equations that diverge (try "
                f"smaller weights or dt, or a more stable method such as exponential_euler)")
    if problems:
        when = (f"at step {now}" if now - since <= 1 else f"between step {since} and step {now} "
                f"(t = {since * dt:g} to {now * dt:g} ms)")
        raise NumericalError(f"the run of {run_name!r} blew up {when}:\n" + "\n".join(problems), step=now)
