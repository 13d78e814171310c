"""The defaults of desire backpropagation (:mod:`.desire`), apart from its PyTorch code so that the network's
parameter record (:class:`braincore.networks.params.DesireParams`) imports without PyTorch."""

# defaults: the authors' desire_pytorch.py (final commit)
THETA_OUT = 0.30
THETA_HID = 0.05
ERROR_MARGIN = 4
LEARNING_RATE = 1e-5
