"""Surrogate-gradient training of spiking networks: fused layers (the start of issue 5)."""
from .fused_lif import lif_sequence, lif_sequence_reference

__all__ = ["lif_sequence", "lif_sequence_reference"]
