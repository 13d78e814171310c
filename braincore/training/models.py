"""A Sequential-style spiking classifier: spiking layers, then a read-out; hidden spikes are exposed.

``SpikingClassifier(layers, readout)(x [T, B, n_in])`` runs ``x`` through the layers in order (each maps
``[T, B, n] -> [T, B, m]`` spikes, e.g. :class:`~braincore.training.layers.LIFLayer` or ``ALIFLayer``) and the
read-out (a :class:`~braincore.training.layers.LeakyReadout` giving membrane traces, or a spiking layer giving
output spikes), and returns a :class:`ClassifierOutput` ``(output [T, B, C], hidden [spikes [T, B, n_l] per
layer])``: the losses of :mod:`braincore.training.losses` take the output, the rate regulariser the hidden
spikes.

:func:`build_classifier` makes one from plain layer descriptions (what a YAML config holds)::

    build_classifier(784, [{"kind": "lif", "size": 800, "tau": 10, "dropout": 0.2},
                           {"kind": "lif", "size": 800}], n_out=10, readout={"kind": "leaky", "tau": 10})

Time constants ``tau`` are in steps (``beta = exp(-1 / tau)``). Layer options: ``recurrent``, ``tau``,
``learn_tau``, ``threshold``, ``learn_threshold``, ``surrogate``, ``detach_reset``, ``dropout``,
``init_gain``, ``recurrent_gain``; ``alif`` layers take in addition every keyword of ``ALIFLayer`` that LIF
layers lack (e.g. ``tau_adapt``), passed through unchanged.
"""
from __future__ import annotations

import inspect
from typing import Any, Mapping, NamedTuple, Optional, Sequence

import torch
from torch import nn

from ..choices import LAYER_KINDS, READOUT_KINDS  # the names, in a module without PyTorch
from .layers import LeakyReadout, LIFLayer

Tensor = torch.Tensor

__all__ = ["ClassifierOutput", "SpikingClassifier", "build_layer", "build_classifier", "LAYER_KINDS",
           "READOUT_KINDS"]

# config name -> LIFLayer keyword
_RENAMES = {"tau": "tau_m"}


class ClassifierOutput(NamedTuple):
    """``output [T, B, C]`` (read-out membrane or spikes) and ``hidden``, the spikes of every hidden layer."""

    output: Tensor
    hidden: list


class SpikingClassifier(nn.Module):
    """Spiking layers in sequence, then a read-out (module docstring)."""

    def __init__(self, layers: Sequence[nn.Module], readout: nn.Module):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.readout = readout

    def forward(self, x: Tensor) -> ClassifierOutput:
        if x.dim() != 3:
            raise ValueError(f"SpikingClassifier: input must be time-major [T, B, N], got {tuple(x.shape)}")
        hidden = []
        for layer in self.layers:
            x = layer(x)
            hidden.append(x)
        return ClassifierOutput(self.readout(x), hidden)


def _alif_class():
    try:
        from .layers import ALIFLayer  # type: ignore[attr-defined]
    except ImportError:
        raise ValueError("layer kind 'alif' needs braincore.training.layers.ALIFLayer, which this checkout "
                         "does not provide") from None
    return ALIFLayer


def build_layer(kind: str, n_in: int, size: int, generator: Optional[torch.Generator] = None,
                **options: Any) -> nn.Module:
    """One spiking layer ``n_in -> size`` of ``kind`` (``lif`` or ``alif``); options as in the module docstring.

    Options the layer class does not accept raise a :class:`ValueError` naming them.
    """
    if kind not in LAYER_KINDS:
        raise ValueError(f"unknown layer kind {kind!r}; choose one of {', '.join(LAYER_KINDS)}")
    cls = LIFLayer if kind == "lif" else _alif_class()
    kwargs = {_RENAMES.get(k, k): v for k, v in options.items() if v is not None}
    accepted = inspect.signature(cls.__init__).parameters
    unknown = sorted(k for k in kwargs if k not in accepted)
    if unknown:
        raise ValueError(f"{kind} layer: unknown option(s) {', '.join(unknown)} for {cls.__name__}")
    if "generator" in accepted:
        kwargs["generator"] = generator
    return cls(int(n_in), int(size), **kwargs)


def build_classifier(n_in: int, layers: Sequence[Mapping[str, Any]], n_out: int,
                     readout: Optional[Mapping[str, Any]] = None,
                     generator: Optional[torch.Generator] = None) -> SpikingClassifier:
    """A :class:`SpikingClassifier` from layer descriptions ``{"kind", "size", ...options}``.

    ``readout``: ``{"kind": "leaky", "tau": steps}`` (default) for membrane losses, or ``{"kind": "lif",
    ...layer options}`` for spike-count losses. ``generator`` seeds the weight initialisation of the spiking
    layers (the leaky read-out uses PyTorch's default initialisation from the global RNG).
    """
    if not layers:
        raise ValueError("build_classifier: at least one hidden layer is needed")
    built, width = [], int(n_in)
    for i, spec in enumerate(layers):
        spec = dict(spec)
        if "size" not in spec:
            raise ValueError(f"build_classifier: layers[{i}] has no 'size'")
        kind, size = spec.pop("kind", "lif"), int(spec.pop("size"))
        try:
            built.append(build_layer(kind, width, size, generator, **spec))
        except ValueError as err:
            raise ValueError(f"layers[{i}]: {err}") from None
        width = size
    spec = dict(readout or {"kind": "leaky"})
    kind = spec.pop("kind", "leaky")
    if kind not in READOUT_KINDS:
        raise ValueError(f"unknown readout kind {kind!r}; choose one of {', '.join(READOUT_KINDS)}")
    if kind == "leaky":
        unknown = sorted(set(spec) - {"tau", "bias"})
        if unknown:
            raise ValueError(f"leaky readout: unknown option(s) {', '.join(unknown)} (expected tau, bias)")
        out: nn.Module = LeakyReadout(width, int(n_out), **{k: v for k, v in spec.items() if v is not None})
    else:
        try:
            out = build_layer("lif", width, n_out, generator, **spec)
        except ValueError as err:
            raise ValueError(f"readout: {err}") from None
    return SpikingClassifier(built, out)
