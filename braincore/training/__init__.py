"""Gradient training of spiking networks: fused LIF and adaptive-LIF layers, a layer for any model defined as
equations (:class:`DefinedLayer`, e.g. GIF or AdEx) and read-outs (surrogate gradients),
exact event-based gradients (EventProp) as a second training mode, and the compiler between an Assembly and a
trainable module."""
from .compile import CompiledNetwork, compile_assembly, export_weights, simulate_with_input_spikes
from .defined_layer import DefinedLayer
from .eventprop import (EventLIFParams, EventPropNetwork, SpikeTrain, first_spike_times, lif_event_layer,
                        readout_event_layer, spike_train, ttfs_cross_entropy)
from .fused_alif import alif_sequence, alif_sequence_reference
from .fused_lif import lif_sequence, lif_sequence_reference
from .layers import ALIFLayer, LeakyReadout, LIFLayer
from .losses import (ClassificationLoss, RateRegularizer, membrane_cross_entropy, rate_regularizer,
                     spike_count_cross_entropy, spike_count_mse)
from .models import SpikingClassifier, build_classifier
from .trainer import IterableData, LRSchedule, TensorData, Trainer, make_optimizer, resolve_device

__all__ = ["lif_sequence", "lif_sequence_reference", "alif_sequence", "alif_sequence_reference", "LIFLayer",
           "ALIFLayer", "LeakyReadout", "DefinedLayer", "EventLIFParams", "EventPropNetwork", "SpikeTrain",
           "spike_train",
           "lif_event_layer", "readout_event_layer", "first_spike_times", "ttfs_cross_entropy", "CompiledNetwork",
           "compile_assembly", "export_weights", "simulate_with_input_spikes", "Trainer", "LRSchedule",
           "TensorData", "IterableData", "make_optimizer", "resolve_device", "ClassificationLoss", "RateRegularizer",
           "membrane_cross_entropy", "rate_regularizer", "spike_count_cross_entropy", "spike_count_mse",
           "SpikingClassifier", "build_classifier"]
