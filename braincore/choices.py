"""The names the surrogate-gradient training accepts -- layer kinds (spiking, and the non-spiking recurrent cells
of the baselines), read-outs, losses, reductions over time, optimisers, learning-rate schedules and surrogate
functions -- in a module without PyTorch, so that a config's
schema can offer them as choices (``braincore validate`` under a second: issue 16) without importing the modules
that implement them (:mod:`braincore.training.models`, :mod:`~braincore.training.losses`,
:mod:`~braincore.training.trainer`, :mod:`braincore.surrogate`), which import these same tuples."""

#: spiking hidden layer kinds of :func:`braincore.training.models.build_classifier`
SPIKING_LAYER_KINDS = ("lif", "alif")
#: non-spiking recurrent layer kinds (:class:`braincore.training.baselines.RecurrentBaseline` cells), the
#: conventional networks the spiking ones are compared with
RECURRENT_CELL_KINDS = ("rnn", "gru", "lstm")
#: hidden layer kinds of :func:`braincore.training.models.build_classifier`
LAYER_KINDS = SPIKING_LAYER_KINDS + RECURRENT_CELL_KINDS
#: read-out kinds of :func:`braincore.training.models.build_classifier`
READOUT_KINDS = ("leaky", "lif")
#: losses of :class:`braincore.training.losses.ClassificationLoss`
LOSS_KINDS = ("membrane", "count_ce", "count_mse")
#: reductions of a membrane read-out over time (:func:`braincore.training.losses.reduce_time`)
REDUCTIONS = ("max", "mean", "last")
#: optimisers of :func:`braincore.training.trainer.make_optimizer`
OPTIMIZERS = ("adam", "adamw")
#: learning-rate schedules of :class:`braincore.training.trainer.LRSchedule`
SCHEDULES = ("none", "step", "cosine", "one_cycle")
#: the names of :data:`braincore.surrogate.SURROGATES`, in its order
SURROGATE_NAMES = ("heaviside", "fast_sigmoid", "atan", "triangle", "multi_gaussian")

__all__ = ["SPIKING_LAYER_KINDS", "RECURRENT_CELL_KINDS", "LAYER_KINDS", "READOUT_KINDS", "LOSS_KINDS", "REDUCTIONS",
           "OPTIMIZERS", "SCHEDULES", "SURROGATE_NAMES"]
