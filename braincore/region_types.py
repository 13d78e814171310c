"""Region types: named builders of sub-assemblies (brain areas) that YAML includes by type name.

A region type is a function ``build(**params) -> Assembly`` whose assembly declares input and output ports
(:meth:`braincore.graph.Assembly.add_port`), registered under a name with :func:`register_region`. The
``regions`` package (built only from braincore) registers its areas through the ``braincore.regions`` entry
points of pyproject.toml, so the engine finds them without importing that package itself. In YAML::

    include:
      bg: {region: basal_ganglia, params: {channels: 3}}       # a region type, built with these parameters
      ctx: {file: cortex_column.yaml, ports: {out: exc}}       # or a region file

and in Python: ``a.include(build_region("basal_ganglia", {"channels": 3}), "bg")`` (or call the builder in
``regions.basal_ganglia`` directly). Parameters are validated by the builder: a misspelt or mistyped
parameter raises :class:`~braincore.errors.ConfigError` whose ``items`` name the parameter, which the YAML
loader points at ``include.<prefix>.params.<name>`` with its line.
"""
from __future__ import annotations

import difflib
import inspect
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

from .errors import ConfigError

ENTRY_POINT_GROUP = "braincore.regions"


@dataclass(frozen=True)
class RegionType:
    """A registered region type: its name, builder and one-line description (the builder's docstring holds the
    anatomy, equations, parameters and references)."""

    name: str
    build: Callable[..., Any]
    description: str = ""

    def parameters(self) -> dict[str, Any]:
        """The builder's keyword parameters and their defaults."""
        return {p.name: p.default for p in inspect.signature(self.build).parameters.values()
                if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}


REGION_TYPES: dict[str, RegionType] = {}
_loaded = False


def register_region(name: str, build: Callable[..., Any], description: str = "") -> RegionType:
    """Register ``build(**params) -> Assembly`` under ``name`` (a later registration replaces an earlier one)."""
    doc = description or (inspect.getdoc(build) or "").split("\n")[0]
    REGION_TYPES[name] = RegionType(name, build, doc)
    return REGION_TYPES[name]


def region_types() -> dict[str, RegionType]:
    """Every registered region type (importing the entry-point modules once)."""
    global _loaded
    if not _loaded:
        _loaded = True
        from .config import load_entry_point, plugin_entry_points

        for name, value in plugin_entry_points(ENTRY_POINT_GROUP).items():
            try:
                load_entry_point(value)
            except Exception as err:  # one broken region must not hide the others
                warnings.warn(f"braincore: region {name!r} ({value}) failed to load: {err}")
    return REGION_TYPES


def build_region(type_name: str, params: Optional[Mapping[str, Any]] = None):
    """The assembly of region ``type_name`` built with ``params``; :class:`ConfigError` for an unknown type or
    unknown parameters (with suggestions), or whatever the builder reports."""
    types = region_types()
    if type_name not in types:
        near = difflib.get_close_matches(str(type_name), types, n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        known = ", ".join(sorted(types)) or "none registered"
        raise ConfigError(f"unknown region type {type_name!r}{hint}; known: {known}",
                          [("region", f"unknown region type {type_name!r}{hint}; known: {known}")])
    region = types[type_name]
    params = dict(params or {})
    known = region.parameters()
    unknown = [k for k in params if k not in known]
    if unknown:
        items = []
        for key in unknown:
            near = difflib.get_close_matches(str(key), known, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            items.append((("params", key), f"unknown parameter of region {type_name!r}{hint} (expected one of: "
                                           f"{', '.join(known)})"))
        raise ConfigError("\n".join(f"{'.'.join(map(str, k))}: {m}" for k, m in items), items)
    try:
        return region.build(**params)
    except ConfigError as err:
        items = [((("params",) + ((key,) if isinstance(key, str) else tuple(key or ()))), message)
                 for key, message in (err.items or [((), str(err))])]
        raise ConfigError(str(err), items) from None


__all__ = ["RegionType", "REGION_TYPES", "register_region", "region_types", "build_region", "ENTRY_POINT_GROUP"]
