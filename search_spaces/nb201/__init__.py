"""The NAS-Bench-201 cell search space."""

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
from search_spaces.nb201._networks import NB201Network, NB201Supernet
from search_spaces.nb201._space import NB201Space

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
