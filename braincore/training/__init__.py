"""Surrogate-gradient training of spiking networks: fused layers and read-outs (issue 5 in progress)."""
from .fused_lif import lif_sequence, lif_sequence_reference
from .layers import LeakyReadout, LIFLayer

__all__ = ["lif_sequence", "lif_sequence_reference", "LIFLayer", "LeakyReadout"]
