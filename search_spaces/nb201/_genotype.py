"""NAS-Bench-201 cell genotypes: the arch-string codec, official indices, sampling and mutation."""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
NUM_NODES = 4
# Edges (target, source) in the order the arch string lists them: 1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2.
EDGES: tuple[tuple[int, int], ...] = tuple(
    (target, source) for target in range(1, NUM_NODES) for source in range(target)
)
NUM_EDGES = len(EDGES)
NUM_CELLS = len(OPS) ** NUM_EDGES


@dataclass(frozen=True)
class NB201Genotype:
    """One NB201 cell: the op on each of the 6 edges, in :data:`EDGES` order."""

    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.ops) != NUM_EDGES:
            raise ValueError(f"an NB201 cell has {NUM_EDGES} edges, got {len(self.ops)} ops")
        for op in self.ops:
            if op not in OPS:
                raise ValueError(f"unknown NB201 op {op!r}; allowed: {', '.join(OPS)}")

    @classmethod
    def from_string(cls, arch: str) -> NB201Genotype:
        """Parse an arch string as NB201 writes it: ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``."""
        nodes = arch.strip().split("+")
        if len(nodes) != NUM_NODES - 1:
            raise ValueError(
                f"malformed NB201 arch string {arch!r}: expected {NUM_NODES - 1} nodes "
                f"joined by '+', like '|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|...|'"
            )
        ops: list[str] = []
        for target, node in enumerate(nodes, start=1):
            if not (node.startswith("|") and node.endswith("|")):
                raise ValueError(
                    f"malformed NB201 arch string {arch!r}: node {node!r} must be |...|"
                )
            tokens = node[1:-1].split("|")
            if len(tokens) != target:
                raise ValueError(
                    f"malformed NB201 arch string {arch!r}: node {target} needs {target} inputs, "
                    f"got {len(tokens)}"
                )
            for source, token in enumerate(tokens):
                op, sep, src = token.partition("~")
                if sep != "~" or src != str(source):
                    raise ValueError(
                        f"malformed NB201 arch string {arch!r}: expected 'op~{source}', got {token!r}"
                    )
                ops.append(op)
        return cls(tuple(ops))

    def __str__(self) -> str:
        nodes = []
        for target in range(1, NUM_NODES):
            tokens = [f"{self.ops[EDGES.index((target, s))]}~{s}" for s in range(target)]
            nodes.append("|" + "|".join(tokens) + "|")
        return "+".join(nodes)

    @property
    def codes(self) -> tuple[int, ...]:
        """Op indices into :data:`OPS`, one per edge."""
        return tuple(OPS.index(op) for op in self.ops)

    @classmethod
    def from_codes(cls, codes: tuple[int, ...] | list[int] | np.ndarray) -> NB201Genotype:
        return cls(tuple(OPS[int(c)] for c in codes))

    @property
    def index(self) -> int:
        """This cell's index in the official NAS-Bench-201 order."""
        return _index_of_codes()[self.codes]

    @classmethod
    def from_index(cls, index: int) -> NB201Genotype:
        if not 0 <= int(index) < NUM_CELLS:
            raise ValueError(f"NB201 index must be in [0, {NUM_CELLS - 1}], got {index}")
        return cls.from_codes(_official_order()[int(index)])


@lru_cache(maxsize=1)
def _official_order() -> tuple[tuple[int, ...], ...]:
    data = resources.files("search_spaces").joinpath("data/nb201_order.txt.gz").read_bytes()
    lines = gzip.decompress(data).decode().split()
    return tuple(tuple(int(ch) for ch in line) for line in lines)


@lru_cache(maxsize=1)
def _index_of_codes() -> dict[tuple[int, ...], int]:
    return {codes: i for i, codes in enumerate(_official_order())}


def all_genotypes() -> list[NB201Genotype]:
    """All 15,625 cells in the official NAS-Bench-201 index order."""
    return [NB201Genotype.from_codes(codes) for codes in _official_order()]


def sample(rng: np.random.Generator, exclude_none: bool = False) -> NB201Genotype:
    """A uniformly random cell (optionally never using ``none``)."""
    choices = [op for op in OPS if not (exclude_none and op == "none")]
    return NB201Genotype(tuple(choices[i] for i in rng.integers(len(choices), size=NUM_EDGES)))


def mutate(
    genotype: NB201Genotype, rng: np.random.Generator, exclude_none: bool = False
) -> NB201Genotype:
    """Change the op on exactly one edge, chosen node first, then one of that node's inputs.

    As NAS-Bench-201's regularized evolution mutates a cell (D-X-Y/AutoDL-Projects,
    ``exps/NAS-Bench-201-algos/R_EA.py``, ``mutate_arch_func``, lines 136-146): a uniformly
    random node of 1..3, a uniformly random input ``j`` of that node, then a uniformly random op
    other than the current one. Edges are therefore not equally likely: ``1<-0`` is changed with
    probability 1/3, each input of node 2 with 1/6, each input of node 3 with 1/9. With
    ``exclude_none`` the new op is never ``none`` (the candidate list without it).
    """
    target = int(rng.integers(1, NUM_NODES))
    source = int(rng.integers(target))
    edge = EDGES.index((target, source))
    current = genotype.ops[edge]
    alternatives = [op for op in OPS if op != current and not (exclude_none and op == "none")]
    ops = list(genotype.ops)
    ops[edge] = alternatives[int(rng.integers(len(alternatives)))]
    return NB201Genotype(tuple(ops))
