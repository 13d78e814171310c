"""braincore's library of brain areas, built only from braincore.

Each module defines region builders ``build(**params) -> braincore.graph.Assembly`` with named input and
output ports, documents the anatomy, equations, parameters and references, and registers its types with
:func:`braincore.region_types.register_region`; pyproject.toml lists the modules under the
``braincore.regions`` entry points so that YAML can include a region by its type name::

    include:
      bg: {region: basal_ganglia, params: {channels: 3}}

``braincore regions`` lists the registered types and their parameters.
"""
