"""The NAS-Bench-201 cell search space.

Genotypes and the space object load without torch; the networks (``NB201Network``,
``NB201Supernet``) import it on first use.
"""

from typing import Any

from search_spaces.nb201._genotype import (
    EDGES,
    NUM_CELLS,
    NUM_EDGES,
    NUM_NODES,
    OPS,
    NB201Genotype,
    all_genotypes,
    mutate,
    sample,
)
from search_spaces.nb201._space import NB201Space


def __getattr__(name: str) -> Any:
    if name in ("NB201Network", "NB201Supernet"):
        from search_spaces.nb201 import _networks

        return getattr(_networks, name)
    raise AttributeError(f"module 'search_spaces.nb201' has no attribute {name!r}")


__all__ = [
    "EDGES",
    "NUM_CELLS",
    "NUM_EDGES",
    "NUM_NODES",
    "OPS",
    "NB201Genotype",
    "NB201Network",
    "NB201Space",
    "NB201Supernet",
    "all_genotypes",
    "mutate",
    "sample",
]
