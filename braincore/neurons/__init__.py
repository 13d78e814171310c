"""Neuron models. Each family lives in its own module with a parameter record, a state record, a pure step
function and a thin :class:`~braincore.neurons.base.NeuronModel` wrapper; :data:`MODELS` maps registry names
(used in YAML ``model:`` keys and on the command line) to the classes."""
from __future__ import annotations

import difflib

from ..errors import ConfigError
from ..params import NeuronParams
from .base import NeuronModel, RunResult
from .adex import AdEx, AdExParams, AdExState, adex_step
from .alif import ALIF, ALIFParams, ALIFState, alif_step
from .hodgkin_huxley import HHParams, HHState, HodgkinHuxley, hh_step
from .izhikevich import Izhikevich, IzhikevichParams, IzhikevichState, izhikevich_step
from .lif import IF, LIF, LIFParams, LIFState, IFParams, if_step, lif_step

MODELS: dict[str, type[NeuronModel]] = {}


def register(cls: type[NeuronModel], *aliases: str) -> type[NeuronModel]:
    """Add a model class to the registry under ``cls.name`` and any aliases."""
    for key in (cls.name, *aliases):
        MODELS[key] = cls
    return cls


def get_model(name) -> type[NeuronModel]:
    """The model class registered as ``name``, or built from a user model mapping (``{equations: [...], params:
    {...}, state: {...}, ...}``, :func:`braincore.neurons.defined.user_model`; equal mappings give one class); a
    clear error with a suggestion otherwise."""
    from collections.abc import Mapping

    if isinstance(name, Mapping):
        from .defined import user_model

        return user_model(name)
    if not isinstance(name, str) or name not in MODELS:
        near = difflib.get_close_matches(str(name), MODELS, n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise ConfigError(f"unknown neuron model {name!r}{hint}; known models: {', '.join(sorted(MODELS))}")
    return MODELS[name]


register(IF)
register(LIF)
register(ALIF, "adaptive_lif")
register(Izhikevich)
register(AdEx)
register(HodgkinHuxley, "hodgkin_huxley")

from .injection import ClampResult, inject_current  # noqa: E402

__all__ = ["MODELS", "register", "get_model", "NeuronModel", "NeuronParams", "RunResult", "ConfigError",
           "IF", "LIF", "ALIF", "ALIFParams", "ALIFState", "alif_step",
           "Izhikevich", "IzhikevichParams", "IzhikevichState", "izhikevich_step",
           "AdEx", "AdExParams", "AdExState", "adex_step",
           "HodgkinHuxley", "HHParams", "HHState", "hh_step", "LIFParams", "IFParams", "LIFState", "lif_step", "if_step", "inject_current",
           "ClampResult"]
