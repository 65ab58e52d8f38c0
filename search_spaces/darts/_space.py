"""The DARTS CNN search space behind the :class:`search_spaces._base.SearchSpace` interface."""

from __future__ import annotations

from itertools import combinations

import numpy as np

from search_spaces._base import ArchWeights
from search_spaces.darts._genotype import (
    CELL_OPS,
    CELL_TYPES,
    EDGE_GROUPS,
    NUM_EDGES,
    STEPS,
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
    # search steps 0.88x (GAEA-DARTS) and 0.95x (GAEA-PC-DARTS) in NHWC at C=8, N=1, 16 px,
    # 2 threads, fp32: the depthwise separable ops run faster in NCHW on oneDNN's CPU kernels
    channels_last_on_cpu = False

    def candidate_ops(self, exclude_none: bool) -> tuple[str, ...]:
        return tuple(op for op in PRIMITIVES if not (exclude_none and op == "none"))

    def arch_shapes(self, exclude_none: bool) -> dict[str, tuple[int, int]]:
        k = len(self.candidate_ops(exclude_none))
        return {cell_type: (NUM_EDGES, k) for cell_type in CELL_TYPES}

    def edge_groups(self) -> dict[str, list[list[int]]]:
        return {cell_type: [list(group) for group in EDGE_GROUPS] for cell_type in CELL_TYPES}

    def parse(self, text: str) -> DartsGenotype:
        return parse_genotype(text)

    def sample(self, rng: np.random.Generator, exclude_none: bool = False) -> DartsGenotype:
        """A uniformly random genotype. ``exclude_none`` is accepted for a common signature: a
        DARTS genotype never holds ``none`` (its parse drops it), so it changes nothing."""
        del exclude_none
        return sample_genotype(rng)

    def mutate(
        self, genotype: DartsGenotype, rng: np.random.Generator, exclude_none: bool = False
    ) -> DartsGenotype:
        """One change: a cell, a node, then a new input or a new op (see ``mutate_genotype``)."""
        del exclude_none
        return mutate_genotype(genotype, rng)

    def param_spec(self, exclude_none: bool = False) -> list[tuple[str, tuple[str, ...]]]:
        """Per cell type and intermediate node ``k``: the pair of inputs
        (``normal_node2_inputs``, choices like ``"0,3"``) and the op on each of the two
        (``normal_node2_op0``/``_op1``), in the order of the sorted inputs."""
        del exclude_none  # genotypes never hold `none`
        spec: list[tuple[str, tuple[str, ...]]] = []
        for cell in CELL_TYPES:
            for k in range(STEPS):
                node = k + 2
                pairs = tuple(f"{a},{b}" for a, b in combinations(range(node), 2))
                spec.append((f"{cell}_node{node}_inputs", pairs))
                spec.append((f"{cell}_node{node}_op0", CELL_OPS))
                spec.append((f"{cell}_node{node}_op1", CELL_OPS))
        return spec

    def encode_params(self, genotype: DartsGenotype) -> dict[str, str]:
        """The parameter dict of ``genotype`` (inverse of :meth:`decode_params`)."""
        params: dict[str, str] = {}
        for cell in CELL_TYPES:
            pairs = genotype.cell(cell)
            for k in range(STEPS):
                node = k + 2
                (op0, a), (op1, b) = sorted(pairs[2 * k : 2 * k + 2], key=lambda pair: pair[1])
                params[f"{cell}_node{node}_inputs"] = f"{a},{b}"
                params[f"{cell}_node{node}_op0"] = op0
                params[f"{cell}_node{node}_op1"] = op1
        return params

    def decode_params(self, params: dict[str, str]) -> DartsGenotype:
        """The genotype a full parameter dict describes."""
        cells = {}
        for cell in CELL_TYPES:
            pairs: list[tuple[str, int]] = []
            for k in range(STEPS):
                node = k + 2
                a, b = (int(v) for v in str(params[f"{cell}_node{node}_inputs"]).split(","))
                pairs.append((str(params[f"{cell}_node{node}_op0"]), a))
                pairs.append((str(params[f"{cell}_node{node}_op1"]), b))
            cells[cell] = tuple(pairs)
        concat = tuple(range(2, 2 + STEPS))
        return DartsGenotype(cells["normal"], concat, cells["reduce"], concat)

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
