"""Post-synaptically aligned construction: a rank builds the incoming synapses of the neurons it owns, and only
those, from the shared seed (NEST's scheme: a connection lives on the process of its target).

The construction itself is shared by every engine and lives in :mod:`braincore.construction` (one description,
one network: the single-process Simulator builds the same synapses). Connectors of :data:`POST_ALIGNED` draw
only the owned rows; the others (``fixed_outdegree``, ``fixed_total``, ``explicit``, ``file``) are drawn whole on
every rank, which then keeps its rows.
"""
from ..construction import POST_ALIGNED, WHOLE_PROJECTION, Incoming, connector_options, distinct_per_row, incoming

#: connectors the distributed engine builds (all of them; the first four post-synaptically aligned)
DISTRIBUTED_CONNECTORS = POST_ALIGNED + WHOLE_PROJECTION

__all__ = ["DISTRIBUTED_CONNECTORS", "POST_ALIGNED", "WHOLE_PROJECTION", "Incoming", "connector_options",
           "distinct_per_row", "incoming"]
