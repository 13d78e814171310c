"""The counter-based random numbers, shared by every engine: see :mod:`braincore.counter_rng` (kept here under
its old name for the distributed engine's imports)."""
from ..counter_rng import *  # noqa: F401,F403
from ..counter_rng import _TWO_M53, _srl  # noqa: F401  (the engine's inlined Poisson draw)
from ..counter_rng import __all__  # noqa: F401
