"""A Sequential-style spiking classifier: spiking layers, then a read-out; hidden spikes are exposed.

``SpikingClassifier(layers, readout)(x [T, B, n_in])`` runs ``x`` through the layers in order (each maps
``[T, B, n] -> [T, B, m]``: spikes, e.g. :class:`~braincore.training.layers.LIFLayer` or ``ALIFLayer``, or the
real-valued hidden state of a non-spiking recurrent cell, :class:`~braincore.training.baselines.RecurrentBaseline`,
kinds ``rnn``, ``gru``, ``lstm``: the conventional baselines trained by the same code) and the read-out (a
:class:`~braincore.training.layers.LeakyReadout` giving membrane traces, or a spiking layer giving output
spikes), and returns a :class:`ClassifierOutput` ``(output [T, B, C], hidden [spikes [T, B, n_l] per spiking
layer])``: the losses of :mod:`braincore.training.losses` take the output, the rate regulariser the hidden
spikes (a non-spiking layer's output is no spike train, so it is not among them).

:func:`build_classifier` makes one from plain layer descriptions (what a YAML config holds)::

    build_classifier(784, [{"kind": "lif", "size": 800, "tau": 10, "dropout": 0.2},
                           {"kind": "lif", "size": 800}], n_out=10, readout={"kind": "leaky", "tau": 10})

Time constants ``tau`` are in steps (``beta = exp(-1 / tau)``). Layer options: ``recurrent``, ``tau``,
``learn_tau``, ``threshold``, ``learn_threshold``, ``surrogate``, ``detach_reset``, ``dropout``,
``init_gain``, ``recurrent_gain``; ``alif`` layers take in addition every keyword of ``ALIFLayer`` that LIF
layers lack (e.g. ``tau_adapt``), passed through unchanged. ``rnn``, ``gru`` and ``lstm`` layers are recurrent by
construction and take only ``forget_bias`` (lstm); ``recurrent: false`` and ``dropout: 0`` (the config defaults)
are accepted and mean nothing for them.
"""
from __future__ import annotations

import inspect
from typing import Any, Mapping, NamedTuple, Optional, Sequence

import torch
from torch import nn

from ..choices import LAYER_KINDS, READOUT_KINDS, RECURRENT_CELL_KINDS  # the names, in a module without PyTorch
from .baselines import RecurrentBaseline
from .layers import ALIFLayer, LeakyReadout, LIFLayer

Tensor = torch.Tensor

__all__ = ["ClassifierOutput", "SpikingClassifier", "build_layer", "build_classifier", "is_spiking", "LAYER_KINDS",
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
            if is_spiking(layer):
                hidden.append(x)
        return ClassifierOutput(self.readout(x), hidden)


def is_spiking(layer: nn.Module) -> bool:
    """Whether ``layer``'s output is a spike train (every layer but a non-spiking recurrent cell)."""
    return not isinstance(layer, RecurrentBaseline)


def build_layer(kind: str, n_in: int, size: int, generator: Optional[torch.Generator] = None,
                **options: Any) -> nn.Module:
    """One layer ``n_in -> size`` of ``kind`` (``lif``, ``alif``, or a non-spiking ``rnn``, ``gru``, ``lstm``);
    options as in the module docstring.

    Options the layer class does not accept raise a :class:`ValueError` naming them.
    """
    if kind not in LAYER_KINDS:
        raise ValueError(f"unknown layer kind {kind!r}; choose one of {', '.join(LAYER_KINDS)}")
    if kind in RECURRENT_CELL_KINDS:
        return _recurrent_cell(kind, n_in, size, generator, options)
    cls: "type[LIFLayer] | type[ALIFLayer]" = LIFLayer if kind == "lif" else ALIFLayer
    kwargs = {_RENAMES.get(k, k): v for k, v in options.items() if v is not None}
    accepted = inspect.signature(cls.__init__).parameters
    unknown = sorted(k for k in kwargs if k not in accepted)
    if unknown:
        raise ValueError(f"{kind} layer: unknown option(s) {', '.join(unknown)} for {cls.__name__}")
    if "generator" in accepted:
        kwargs["generator"] = generator
    return cls(int(n_in), int(size), **kwargs)


def _recurrent_cell(kind: str, n_in: int, size: int, generator: Optional[torch.Generator],
                    options: Mapping[str, Any]) -> RecurrentBaseline:
    """A :class:`RecurrentBaseline` cell; the spiking-layer defaults ``recurrent: false`` and ``dropout: 0``
    are dropped, any other option but ``forget_bias`` (lstm) is an error."""
    kwargs = {k: v for k, v in options.items() if v is not None
              and not (k == "recurrent" and v is False) and not (k == "dropout" and v == 0)}
    accepted = {"forget_bias"} if kind == "lstm" else set()
    unknown = sorted(k for k in kwargs if k not in accepted)
    if unknown:
        raise ValueError(f"{kind} layer: unknown option(s) {', '.join(unknown)} for a non-spiking {kind} cell"
                         + (" (it takes forget_bias only)" if kind == "lstm" else " (it takes none)"))
    return RecurrentBaseline(int(n_in), int(size), cell=kind, generator=generator, **kwargs)


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
