"""Neuron models. Each model lives in its own module: its definition as equations
(:class:`~braincore.equations.NeuronDefinition`) and the class :func:`~braincore.neurons.defined.define_model` makes
from it. :data:`MODELS` maps registry names (used in YAML ``model:`` keys and on the command line) to the classes.

Adding a model takes one file: every module of this package that holds a definition together with the class made
from it is found and registered when the package is imported (:func:`_discover`), under the definition's name and
the class's ``aliases``. :func:`register` adds classes defined elsewhere."""
from __future__ import annotations

import difflib
import importlib
import pkgutil

from ..equations import NeuronDefinition
from ..errors import ConfigError
from ..params import NeuronParams
from .base import NeuronModel, RunResult
from .adex import AdEx, AdExParams, AdExState, adex_step
from .alif import ALIF, ALIFParams, ALIFState, alif_step
from .hodgkin_huxley import HHParams, HHState, HodgkinHuxley, hh_step
from .izhikevich import Izhikevich, IzhikevichParams, IzhikevichState, izhikevich_step
from .lif import IF, LIF, LIFParams, LIFState, IFParams, if_step, lif_step

MODELS: dict[str, type[NeuronModel]] = {}

#: modules of this package that hold machinery, not models
_NOT_MODELS = ("base", "defined", "injection")


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


def _discover() -> None:
    """Register the model classes of every module in this package (modules in name order): a class counts when
    the module also holds its definition (``cls.definition``), so a class one model file imports from another is
    registered once, by its own file. Two models claiming one registry name are an error."""
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name in _NOT_MODELS or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        definitions = [v for v in vars(module).values() if isinstance(v, NeuronDefinition)]
        for value in list(vars(module).values()):
            if not (isinstance(value, type) and issubclass(value, NeuronModel)):
                continue
            if not any(getattr(value, "definition", None) is d for d in definitions):
                continue
            for key in (value.name, *value.aliases):
                if key in MODELS and MODELS[key] is not value:
                    raise ConfigError(f"neuron model name {key!r} is claimed by both {MODELS[key].__name__} and "
                                      f"{value.__name__} (braincore.neurons.{info.name})")
            register(value, *value.aliases)


_discover()

from .poisson import PoissonSource  # noqa: E402  (a spike source, not an equation model: registered by hand)

register(PoissonSource, *PoissonSource.aliases)

from .injection import ClampResult, inject_current  # noqa: E402

__all__ = ["MODELS", "register", "get_model", "NeuronModel", "NeuronParams", "RunResult", "ConfigError",
           "IF", "LIF", "ALIF", "ALIFParams", "ALIFState", "alif_step",
           "Izhikevich", "IzhikevichParams", "IzhikevichState", "izhikevich_step",
           "AdEx", "AdExParams", "AdExState", "adex_step",
           "HodgkinHuxley", "HHParams", "HHState", "hh_step", "LIFParams", "IFParams", "LIFState", "lif_step",
           "if_step", "inject_current",
           "ClampResult"]
