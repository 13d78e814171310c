"""Spike functions: a Heaviside step forward, a surrogate derivative backward.

A spiking neuron emits ``s = H(x)`` with ``x = v - v_th`` (the distance of the membrane potential above the
threshold, in the membrane's unit) and ``H(x) = 1 if x >= 0 else 0``. ``H`` has a zero derivative almost
everywhere, so gradient training replaces ``dH/dx`` in the backward pass by a smooth *surrogate*
``sigma'(x)`` (Neftci, Mostafa & Zenke 2019). Each surrogate here keeps the exact Heaviside forward and
defines only its backward:

==================  ================================================================  ==================
name                surrogate derivative sigma'(x)                                    reference
==================  ================================================================  ==================
``fast_sigmoid``    ``1 / (1 + slope * |x|)**2``                                      Zenke & Ganguli 2018 (SuperSpike)
``atan``            ``(alpha / 2) / (1 + (pi / 2 * alpha * x)**2)``                   Fang et al. 2021 (SpikingJelly)
``triangle``        ``gamma * max(0, 1 - |x| / width)``                               Bellec et al. 2018
``multi_gaussian``  ``gamma * [(1 + h) N(x; 0, sigma) - h N(x; sigma, s*sigma)``      Yin, Corradi & Bohté 2021
                    ``- h N(x; -sigma, s*sigma)]``
``heaviside``       none: the gradient is zero (simulation only)
==================  ================================================================  ==================

``N(x; mu, sd)`` is the normal density. The defaults (slope 25, alpha 2, gamma 0.3 and width 1, and
sigma 0.5, h 0.15, s 6, gamma 0.5 for the multi-Gaussian) are those of snnTorch, SpikingJelly, Bellec et al.
and Yin et al. respectively. ``x`` has the unit of the membrane potential, so widths written for a unit
threshold (dimensionless training networks) should be scaled when a model works in mV.
"""
from __future__ import annotations

import difflib
import math
from typing import Callable

import torch

Tensor = torch.Tensor


def heaviside(x: Tensor) -> Tensor:
    """``H(x)``: 1.0 where ``x >= 0``, else 0.0, in the dtype of ``x``. No gradient."""
    return (x >= 0).to(x.dtype)


class _SurrogateSpikeFn(torch.autograd.Function):
    """Heaviside forward; ``grad * derivative(x)`` backward. ``derivative`` is a pure tensor function."""

    @staticmethod
    def forward(ctx, x: Tensor, surrogate: "Surrogate") -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        return heaviside(x)

    @staticmethod
    def backward(ctx, grad_output: Tensor):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad_output * ctx.surrogate.derivative(x), None


class Surrogate:
    """Base class: ``surrogate(x)`` gives spikes ``H(x)`` whose gradient is ``derivative(x)``."""

    name = "surrogate"

    def derivative(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, x: Tensor) -> Tensor:
        if not x.requires_grad:
            return heaviside(x)
        return _SurrogateSpikeFn.apply(x, self)

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"


class Heaviside(Surrogate):
    """No surrogate: zero gradient. For pure simulation."""

    name = "heaviside"

    def derivative(self, x: Tensor) -> Tensor:
        return torch.zeros_like(x)


class FastSigmoid(Surrogate):
    """SuperSpike fast sigmoid: ``sigma'(x) = 1 / (1 + slope |x|)^2`` (Zenke & Ganguli 2018)."""

    name = "fast_sigmoid"

    def __init__(self, slope: float = 25.0):
        if slope <= 0:
            raise ValueError(f"fast_sigmoid slope must be > 0, got {slope}")
        self.slope = float(slope)

    def derivative(self, x: Tensor) -> Tensor:
        return 1.0 / (1.0 + self.slope * x.abs()) ** 2


class ATan(Surrogate):
    """Arctangent: ``sigma'(x) = (alpha/2) / (1 + (pi/2 alpha x)^2)`` (Fang et al. 2021)."""

    name = "atan"

    def __init__(self, alpha: float = 2.0):
        if alpha <= 0:
            raise ValueError(f"atan alpha must be > 0, got {alpha}")
        self.alpha = float(alpha)

    def derivative(self, x: Tensor) -> Tensor:
        return (self.alpha / 2.0) / (1.0 + (math.pi / 2.0 * self.alpha * x) ** 2)


class Triangle(Surrogate):
    """Piecewise linear: ``sigma'(x) = gamma max(0, 1 - |x|/width)`` (Bellec et al. 2018, gamma = 0.3)."""

    name = "triangle"

    def __init__(self, gamma: float = 0.3, width: float = 1.0):
        if width <= 0 or gamma <= 0:
            raise ValueError(f"triangle needs gamma > 0 and width > 0, got gamma={gamma}, width={width}")
        self.gamma, self.width = float(gamma), float(width)

    def derivative(self, x: Tensor) -> Tensor:
        return self.gamma * torch.clamp(1.0 - x.abs() / self.width, min=0.0)


def _normal_pdf(x: Tensor, mu: float, sd: float) -> Tensor:
    return torch.exp(-0.5 * ((x - mu) / sd) ** 2) / (sd * math.sqrt(2.0 * math.pi))


class MultiGaussian(Surrogate):
    """Multi-Gaussian of Yin, Corradi & Bohté (2021):

    ``sigma'(x) = gamma [(1 + h) N(x; 0, sigma) - h N(x; sigma, s sigma) - h N(x; -sigma, s sigma)]``
    with ``sigma = 0.5, h = 0.15, s = 6, gamma = 0.5`` as in the paper's code.
    """

    name = "multi_gaussian"

    def __init__(self, sigma: float = 0.5, h: float = 0.15, s: float = 6.0, gamma: float = 0.5):
        if sigma <= 0 or s <= 0:
            raise ValueError(f"multi_gaussian needs sigma > 0 and s > 0, got sigma={sigma}, s={s}")
        self.sigma, self.h, self.s, self.gamma = float(sigma), float(h), float(s), float(gamma)

    def derivative(self, x: Tensor) -> Tensor:
        wide = self.s * self.sigma
        return self.gamma * (
            (1.0 + self.h) * _normal_pdf(x, 0.0, self.sigma)
            - self.h * _normal_pdf(x, self.sigma, wide)
            - self.h * _normal_pdf(x, -self.sigma, wide)
        )


SURROGATES: dict[str, Callable[..., Surrogate]] = {
    cls.name: cls for cls in (Heaviside, FastSigmoid, ATan, Triangle, MultiGaussian)
}


def get_surrogate(spec: "str | Surrogate | None" = "fast_sigmoid", **params: float) -> Surrogate:
    """A surrogate by name (``"atan"``) with optional width parameters, or pass one through.

    ``None`` and ``"heaviside"`` give the gradient-free :class:`Heaviside`.
    """
    if spec is None:
        return Heaviside()
    if isinstance(spec, Surrogate):
        if params:
            raise ValueError("parameters can only be given with a surrogate name, not an instance")
        return spec
    if spec not in SURROGATES:
        near = difflib.get_close_matches(str(spec), SURROGATES, n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise ValueError(f"unknown surrogate {spec!r}{hint}; choose one of {', '.join(SURROGATES)}")
    try:
        return SURROGATES[spec](**params)
    except TypeError as err:
        raise ValueError(f"bad parameters for surrogate {spec!r}: {err}") from None
