"""The DARTS CNN search space behind the :class:`search_spaces._base.SearchSpace` interface."""

from __future__ import annotations

import numpy as np

from search_spaces._base import ArchWeights
from search_spaces.darts._genotype import (
    CELL_TYPES,
    EDGE_GROUPS,
    NUM_EDGES,
    DartsGenotype,
    discretize,
    mutate_genotype,
    parse_genotype,
    sample_genotype,
)
from search_spaces.darts._network import DartsNetwork
from search_spaces.darts._ops import PRIMITIVES
from search_spaces.darts._supernet import DartsSupernet


class DartsSpace:
    """DARTS's CNN cell space: a normal and a reduction cell, 4 nodes, 14 edges, 8 ops."""

    name = "darts"

    def candidate_ops(self, exclude_none: bool) -> tuple[str, ...]:
        return tuple(op for op in PRIMITIVES if not (exclude_none and op == "none"))

    def arch_shapes(self, exclude_none: bool) -> dict[str, tuple[int, int]]:
        k = len(self.candidate_ops(exclude_none))
        return {cell_type: (NUM_EDGES, k) for cell_type in CELL_TYPES}

    def edge_groups(self) -> dict[str, list[list[int]]]:
        return {cell_type: [list(group) for group in EDGE_GROUPS] for cell_type in CELL_TYPES}

    def parse(self, text: str) -> DartsGenotype:
        return parse_genotype(text)

    def sample(self, rng: np.random.Generator) -> DartsGenotype:
        return sample_genotype(rng)

    def mutate(self, genotype: DartsGenotype, rng: np.random.Generator) -> DartsGenotype:
        return mutate_genotype(genotype, rng)

    def discretize(self, weights: ArchWeights, ops: tuple[str, ...]) -> DartsGenotype:
        missing = [c for c in CELL_TYPES if c not in weights]
        if missing:
            raise ValueError(f"weights need keys {CELL_TYPES}, missing {missing}")
        return discretize(weights["normal"], weights["reduce"], ops)

    def build_supernet(
        self, C: int, N: int, num_classes: int, exclude_none: bool, partial_k: int = 1
    ) -> DartsSupernet:
        """A :class:`DartsSupernet` of ``N`` cells (DARTS's search: ``C=16, N=8``)."""
        return DartsSupernet(
            C=C,
            layers=N,
            num_classes=num_classes,
            ops=self.candidate_ops(exclude_none),
            partial_k=partial_k,
        )

    def build_network(
        self,
        genotype: DartsGenotype | str,
        C: int,
        N: int,
        num_classes: int,
        auxiliary: bool = False,
        drop_path_prob: float = 0.0,
    ) -> DartsNetwork:
        """A :class:`DartsNetwork` of ``N`` cells (DARTS's evaluation: ``C=36, N=20``).

        The auxiliary head is off by default so that ``forward(x)`` always returns logits, as the
        interface promises; pass ``auxiliary=True`` and use ``forward_with_aux`` to train with it.
        """
        return DartsNetwork(
            genotype,
            C=C,
            layers=N,
            num_classes=num_classes,
            auxiliary=auxiliary,
            drop_path_prob=drop_path_prob,
        )
