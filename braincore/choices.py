"""The names the surrogate-gradient training accepts -- layer kinds, read-outs, losses, reductions over time,
optimisers, learning-rate schedules and surrogate functions -- in a module without PyTorch, so that a config's
schema can offer them as choices (``braincore validate`` under a second: issue 16) without importing the modules
that implement them (:mod:`braincore.training.models`, :mod:`~braincore.training.losses`,
:mod:`~braincore.training.trainer`, :mod:`braincore.surrogate`), which import these same tuples."""

#: hidden layer kinds of :func:`braincore.training.models.build_classifier`
LAYER_KINDS = ("lif", "alif")
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

__all__ = ["LAYER_KINDS", "READOUT_KINDS", "LOSS_KINDS", "REDUCTIONS", "OPTIMIZERS", "SCHEDULES", "SURROGATE_NAMES"]
