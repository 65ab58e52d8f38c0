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

__all__ = [
    "EDGES",
    "NUM_CELLS",
    "NUM_EDGES",
    "NUM_NODES",
    "OPS",
    "NB201Genotype",
    "all_genotypes",
    "mutate",
    "sample",
]
