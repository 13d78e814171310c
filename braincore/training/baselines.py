"""Non-spiking recurrent layers (Elman RNN, GRU, LSTM): the conventional networks the spiking ones are compared with.

A spiking method's efficiency claim (Yin et al. 2021: synaptic operations of an SNN against the multiply-
accumulates of an RNN of the same accuracy; Voelker et al. 2020: the spiking LMU against an LSTM of the same
parameter count) needs the non-spiking network trained by the same code. :class:`RecurrentBaseline` is that
network's hidden layer with the spiking layers' interface: ``x [T, B, n_in] -> h [T, B, n_out]`` (time-major, the
hidden state of every step), so it stacks in a :class:`~braincore.training.models.SpikingClassifier` under the
same read-outs, losses and trainer: the layer kinds ``rnn``, ``gru`` and ``lstm`` of
:func:`~braincore.training.models.build_classifier` and of ``kind: spiking_classifier`` configs (e.g.
``configs/perception/psmnist_lstm.yaml``). :mod:`braincore.training.efficiency` counts their MACs with
:meth:`RecurrentBaseline.macs_per_step`.

Cells (PyTorch's cuDNN-compatible implementations, ``h_0 = c_0 = 0``; ``sigma`` the logistic function)::

    rnn:   h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)
    gru:   r_t = sigma(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr),  z_t = sigma(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)
           n_t = tanh(W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn)),  h_t = (1 - z_t) * n_t + z_t * h_{t-1}
    lstm:  (i, f, g, o)_t = (sigma, sigma, tanh, sigma)(W_i. x_t + b_i. + W_h. h_{t-1} + b_h.)
           c_t = f_t * c_{t-1} + i_t * g_t,  h_t = o_t * tanh(c_t)

:meth:`RecurrentBaseline.macs_per_step` is the multiply-accumulate count of one time step of one sample (the
matrix-vector products; gate nonlinearities and element-wise products not counted, as in Yin et al. 2021 and
Voelker et al. 2020): ``gates x (n_in + n_out) x n_out`` with 1, 3 and 4 gates.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

Tensor = torch.Tensor

__all__ = ["CELLS", "RecurrentBaseline"]

#: cell name -> (PyTorch module, number of gate blocks in its weight matrices)
CELLS = {"rnn": (nn.RNN, 1), "gru": (nn.GRU, 3), "lstm": (nn.LSTM, 4)}


class RecurrentBaseline(nn.Module):
    """One non-spiking recurrent layer ``[T, B, n_in] -> [T, B, n_out]`` (module docstring for the equations).

    ``cell``: ``"rnn"``, ``"gru"`` or ``"lstm"``. ``generator`` seeds the initialisation (PyTorch's uniform
    ``U(-1/sqrt(n_out), 1/sqrt(n_out))`` for every weight and bias), so a config's seed fixes the network.
    ``forget_bias``: LSTM only, added to the forget gate's bias (1.0 is the usual remedy for long sequences,
    Jozefowicz et al. 2015).
    """

    def __init__(self, n_in: int, n_out: int, *, cell: str = "lstm", forget_bias: float = 0.0,
                 generator: Optional[torch.Generator] = None):
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"unknown recurrent cell {cell!r}; choose one of {', '.join(CELLS)}")
        if int(n_in) < 1 or int(n_out) < 1:
            raise ValueError(f"RecurrentBaseline: sizes must be >= 1, got n_in={n_in}, n_out={n_out}")
        if forget_bias and cell != "lstm":
            raise ValueError(f"forget_bias is an LSTM option, not one of a {cell!r} cell")
        module, self.gates = CELLS[cell]
        self.cell, self.n_in, self.n_out = cell, int(n_in), int(n_out)
        self.rnn = module(self.n_in, self.n_out)
        bound = 1.0 / self.n_out ** 0.5
        with torch.no_grad():
            for p in self.rnn.parameters():
                p.copy_(torch.rand(p.shape, generator=generator) * (2 * bound) - bound)
            if forget_bias:
                for name in ("bias_ih_l0", "bias_hh_l0"):
                    getattr(self.rnn, name)[self.n_out:2 * self.n_out] += forget_bias / 2

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 3 or x.shape[-1] != self.n_in:
            raise ValueError(f"RecurrentBaseline: expected [T, B, {self.n_in}], got {tuple(x.shape)}")
        return self.rnn(x)[0]

    def macs_per_step(self) -> int:
        """Multiply-accumulates of one step of one sample: ``gates (n_in + n_out) n_out``."""
        return self.gates * (self.n_in + self.n_out) * self.n_out

    def extra_repr(self) -> str:
        return f"cell={self.cell}, n_in={self.n_in}, n_out={self.n_out}"
