"""Classification losses for spiking networks, and firing-rate regularisers on hidden spikes.

Shapes are time-major: a read-out gives ``[T, B, C]`` (membrane traces of a leaky read-out, or spikes of a
spiking output layer), labels are ``int64 [B]`` class indices in ``0..C-1``.

**Membrane losses** (non-spiking leaky read-out, e.g. :class:`~braincore.training.layers.LeakyReadout`; Zenke &
Ganguli 2018, Cramer et al. 2022): the trace ``y [T, B, C]`` is reduced over time to scores ``z [B, C]`` ::

    max:   z_bc = max_t y_tbc            mean:  z_bc = (1/T) sum_t y_tbc            last:  z_bc = y_Tbc

and trained with softmax cross-entropy ``L = -(1/B) sum_b log softmax(z_b)_{label_b}`` (optionally with label
smoothing). The prediction is ``argmax_c z_bc``.

**Spike-count losses** (spiking output layer): counts ``n_bc = sum_t s_tbc``.

- ``count_ce``: cross-entropy on the counts as logits, ``L = CE(n_b, label_b)`` (snnTorch's ``ce_count_loss``);
- ``count_mse``: squared error against target counts, ``L = (1/(B C)) sum_bc (n_bc - T r_bc)^2`` with
  ``r_bc = correct_rate`` for the label and ``incorrect_rate`` otherwise (snnTorch's ``mse_count_loss``).

The prediction is ``argmax_c n_bc`` (ties go to the lowest class index).

**Firing-rate regularisers** (Zenke & Vogels 2021, "The remarkable robustness of surrogate gradient learning",
Neural Comput.; Cramer et al. 2022): with ``r_bi = (1/T) sum_t s_tbi`` the rate of hidden unit ``i`` for
sample ``b`` in spikes per step (``[0, 1]``)::

    lower bound (per unit, silent units revived):   L_low = (1/N) sum_i relu(r_low - mean_b r_bi)^2
    upper bound (per sample, population activity):  L_up  = (1/B) sum_b relu(mean_i r_bi - r_up)^2
    L_reg = strength_low * L_low + strength_up * L_up,  summed over the hidden layers

so ``dL_reg / ds`` is ``<= 0`` for units under the lower bound (gradient descent adds spikes) and ``>= 0`` for
samples whose population rate exceeds the upper bound (it removes spikes), and zero between the bounds.

References: F. Zenke and S. Ganguli, "SuperSpike", Neural Comput. 30 (2018); F. Zenke and T. P. Vogels,
Neural Comput. 33 (2021); B. Cramer, Y. Stradmann, J. Schemmel and F. Zenke, "The Heidelberg spiking data sets
for the systematic evaluation of spiking neural networks", IEEE TNNLS 33 (2022); J. K. Eshraghian et al.,
"Training spiking neural networks using lessons from deep learning", Proc. IEEE 111 (2023) (snnTorch losses).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Optional, Sequence

import torch
from torch.nn import functional as F

# the reductions of a membrane trace over time and the kinds of ClassificationLoss: in a module without PyTorch
from ..choices import LOSS_KINDS, REDUCTIONS

Tensor = torch.Tensor

__all__ = [
    "REDUCTIONS", "LOSS_KINDS", "reduce_time", "membrane_cross_entropy", "spike_count_cross_entropy",
    "spike_count_mse", "RateRegularizer", "rate_regularizer", "LossResult", "ClassificationLoss",
]


def _check_output(output: Tensor, labels: Tensor, who: str) -> None:
    if not isinstance(output, Tensor) or output.dim() != 3:
        shape = tuple(output.shape) if isinstance(output, Tensor) else type(output).__name__
        raise ValueError(f"{who}: output must be a time-major [T, B, C] tensor, got {shape}")
    if not isinstance(labels, Tensor) or labels.dim() != 1 or labels.shape[0] != output.shape[1]:
        shape = tuple(labels.shape) if isinstance(labels, Tensor) else type(labels).__name__
        raise ValueError(f"{who}: labels must be [B] = [{output.shape[1]}] class indices, got {shape}")
    if labels.dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64) or labels.dtype == torch.bool:
        raise ValueError(f"{who}: labels must be integer class indices, got dtype {labels.dtype}")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= output.shape[2]):
        raise ValueError(f"{who}: labels must lie in 0..{output.shape[2] - 1} (C = {output.shape[2]} outputs), "
                         f"got values in [{int(labels.min())}, {int(labels.max())}]")


def reduce_time(trace: Tensor, reduce: str) -> Tensor:
    """``[T, B, C] -> [B, C]`` by ``max``, ``mean`` or ``last`` over time (module docstring)."""
    if reduce not in REDUCTIONS:
        raise ValueError(f"unknown reduction {reduce!r}; choose one of {', '.join(REDUCTIONS)}")
    if trace.dim() != 3:
        raise ValueError(f"reduce_time: trace must be [T, B, C], got {tuple(trace.shape)}")
    if reduce == "max":
        return trace.amax(dim=0)
    if reduce == "mean":
        return trace.mean(dim=0)
    return trace[-1]


def membrane_cross_entropy(trace: Tensor, labels: Tensor, reduce: str = "max",
                           label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy of the time-reduced read-out membrane ``trace [T, B, C]`` (module docstring); a scalar."""
    _check_output(trace, labels, "membrane_cross_entropy")
    return F.cross_entropy(reduce_time(trace, reduce), labels, label_smoothing=label_smoothing)


def spike_count_cross_entropy(spikes: Tensor, labels: Tensor) -> Tensor:
    """Cross-entropy with the spike counts ``sum_t spikes [T, B, C]`` as logits; a scalar."""
    _check_output(spikes, labels, "spike_count_cross_entropy")
    return F.cross_entropy(spikes.sum(dim=0), labels)


def spike_count_mse(spikes: Tensor, labels: Tensor, correct_rate: float = 0.8,
                    incorrect_rate: float = 0.2) -> Tensor:
    """Mean squared error of the counts ``sum_t spikes [T, B, C]`` against ``T * rate`` targets; a scalar.

    The label's output should fire on a fraction ``correct_rate`` of the ``T`` steps, the others on
    ``incorrect_rate`` (both in ``[0, 1]``).
    """
    _check_output(spikes, labels, "spike_count_mse")
    for name, value in (("correct_rate", correct_rate), ("incorrect_rate", incorrect_rate)):
        if not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"spike_count_mse: {name} must lie in [0, 1] (spikes per step), got {value}")
    T = spikes.shape[0]
    target = torch.full_like(spikes[0], float(incorrect_rate) * T)
    target.scatter_(1, labels.view(-1, 1), float(correct_rate) * T)
    return F.mse_loss(spikes.sum(dim=0), target)


@dataclass(frozen=True)
class RateRegularizer:
    """Lower (per unit) and upper (per sample, population) bounds on hidden rates in spikes per step.

    ``lower`` / ``upper``: the bounds ``r_low`` / ``r_up`` in ``[0, 1]``, ``None`` to switch one off;
    ``lower_strength`` / ``upper_strength``: their weights (>= 0). Equations in the module docstring.
    """

    lower: Optional[float] = None
    upper: Optional[float] = None
    lower_strength: float = 1.0
    upper_strength: float = 1.0

    def __post_init__(self) -> None:
        for name in ("lower", "upper"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"RateRegularizer: {name} must lie in [0, 1] spikes per step, got {value}")
        for name in ("lower_strength", "upper_strength"):
            if not float(getattr(self, name)) >= 0.0:
                raise ValueError(f"RateRegularizer: {name} must be >= 0, got {getattr(self, name)}")
        if self.lower is not None and self.upper is not None and float(self.lower) > float(self.upper):
            raise ValueError(f"RateRegularizer: lower bound {self.lower} exceeds the upper bound {self.upper}")

    @property
    def active(self) -> bool:
        return (self.lower is not None and self.lower_strength > 0) or \
            (self.upper is not None and self.upper_strength > 0)

    def __call__(self, hidden: Sequence[Tensor]) -> Tensor:
        return rate_regularizer(hidden, self.lower, self.upper, self.lower_strength, self.upper_strength)


def rate_regularizer(hidden: Sequence[Tensor], lower: Optional[float] = None, upper: Optional[float] = None,
                     lower_strength: float = 1.0, upper_strength: float = 1.0) -> Tensor:
    """``L_reg`` of the module docstring over the hidden spike tensors ``[T, B, N_l]``, summed over layers."""
    if isinstance(hidden, Tensor):
        hidden = [hidden]
    if not hidden:
        raise ValueError("rate_regularizer: no hidden spike tensors given (the model must expose them)")
    total: Optional[Tensor] = None
    for i, s in enumerate(hidden):
        if not isinstance(s, Tensor) or s.dim() != 3:
            shape = tuple(s.shape) if isinstance(s, Tensor) else type(s).__name__
            raise ValueError(f"rate_regularizer: hidden[{i}] must be spikes [T, B, N], got {shape}")
        rate = s.mean(dim=0)  # [B, N] spikes per step
        term = rate.new_zeros(())
        if lower is not None and lower_strength > 0:
            term = term + lower_strength * F.relu(float(lower) - rate.mean(dim=0)).pow(2).mean()
        if upper is not None and upper_strength > 0:
            term = term + upper_strength * F.relu(rate.mean(dim=1) - float(upper)).pow(2).mean()
        total = term if total is None else total + term
    assert total is not None
    return total


class LossResult(NamedTuple):
    """``loss`` (scalar, what is minimised) = ``task`` + ``regularizer``; ``scores [B, C]`` for argmax."""

    loss: Tensor
    task: Tensor
    regularizer: Tensor
    scores: Tensor


class ClassificationLoss:
    """A classification loss on a read-out ``[T, B, C]`` plus an optional hidden-rate regulariser.

    ``kind``: ``"membrane"`` (cross-entropy on the ``reduce``-d leaky read-out), ``"count_ce"`` or
    ``"count_mse"`` (spike counts of a spiking output layer); see the module docstring. Call it with
    ``(output, labels, hidden)`` where ``hidden`` is the list of hidden spike tensors (may be empty when no
    regulariser is set).
    """

    def __init__(self, kind: str = "membrane", *, reduce: str = "max", label_smoothing: float = 0.0,
                 correct_rate: float = 0.8, incorrect_rate: float = 0.2,
                 regularizer: Optional[RateRegularizer] = None):
        if kind not in LOSS_KINDS:
            raise ValueError(f"unknown loss kind {kind!r}; choose one of {', '.join(LOSS_KINDS)}")
        if reduce not in REDUCTIONS:
            raise ValueError(f"unknown reduction {reduce!r}; choose one of {', '.join(REDUCTIONS)}")
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must lie in [0, 1), got {label_smoothing}")
        self.kind, self.reduce, self.label_smoothing = kind, reduce, float(label_smoothing)
        self.correct_rate, self.incorrect_rate = float(correct_rate), float(incorrect_rate)
        self.regularizer = regularizer

    def scores(self, output: Tensor) -> Tensor:
        """``[B, C]`` scores whose argmax is the prediction."""
        return reduce_time(output, self.reduce) if self.kind == "membrane" else output.sum(dim=0)

    def __call__(self, output: Tensor, labels: Tensor, hidden: Sequence[Tensor] = ()) -> LossResult:
        if self.kind == "membrane":
            task = membrane_cross_entropy(output, labels, self.reduce, self.label_smoothing)
        elif self.kind == "count_ce":
            task = spike_count_cross_entropy(output, labels)
        else:
            task = spike_count_mse(output, labels, self.correct_rate, self.incorrect_rate)
        if self.regularizer is not None and self.regularizer.active:
            reg = self.regularizer(hidden)
        else:
            reg = task.new_zeros(())
        return LossResult(task + reg, task.detach(), reg.detach(), self.scores(output).detach())

    def __repr__(self) -> str:
        extra = f", reduce={self.reduce!r}" if self.kind == "membrane" else ""
        return f"ClassificationLoss({self.kind!r}{extra}, regularizer={self.regularizer})"
