"""The interface every search space implements (see search_spaces.get_space)."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

# Architecture weights of a supernet: one [num_edges, num_ops] tensor per cell type
# (NB201: {"cell": ...}; DARTS: {"normal": ..., "reduce": ...}). Rows are mixing weights.
ArchWeights = dict[str, torch.Tensor]


class SearchSpace(Protocol):
    """A cell search space: genotypes, supernets, standalone networks."""

    name: str
    # Whether this space's supernets and networks train faster in channels_last (NHWC) than
    # in NCHW on the CPU, as measured with scripts/bench_supernet.py --variants fp32,fp32-cl:
    # what numerics.channels_last: null means on the CPU (on CUDA it is always NHWC).
    channels_last_on_cpu: bool

    def candidate_ops(self, exclude_none: bool) -> tuple[str, ...]:
        """Op names a supernet mixes, in column order of its architecture weights."""

    def arch_shapes(self, exclude_none: bool) -> dict[str, tuple[int, int]]:
        """``{cell_type: (num_edges, num_ops)}`` of the architecture weights."""

    def edge_groups(self) -> dict[str, list[list[int]]]:
        """Per cell type, the edge indices entering each intermediate node (PC-DARTS's betas)."""

    def parse(self, text: str) -> Any:
        """A genotype from its canonical text (NB201 arch string / DARTS ``Genotype(...)``)."""

    def sample(self, rng: np.random.Generator, exclude_none: bool = False) -> Any:
        """A uniformly random genotype (never ``none`` with ``exclude_none``)."""

    def mutate(self, genotype: Any, rng: np.random.Generator, exclude_none: bool = False) -> Any:
        """A copy of ``genotype`` with exactly one edge's choice changed."""

    def param_spec(self, exclude_none: bool = False) -> list[tuple[str, tuple[str, ...]]]:
        """``(name, choices)`` of every categorical parameter describing a genotype (the
        encoding model-based searchers such as BOHB and TPE search over)."""

    def encode_params(self, genotype: Any) -> dict[str, str]:
        """The parameter dict of ``genotype``."""

    def decode_params(self, params: dict[str, str]) -> Any:
        """The genotype a full parameter dict describes (inverse of :meth:`encode_params`)."""

    def discretize(self, weights: ArchWeights, ops: tuple[str, ...]) -> Any:
        """The genotype the architecture weights point at (NB201: argmax per edge; DARTS: top-2)."""

    def build_supernet(
        self, C: int, N: int, num_classes: int, exclude_none: bool, partial_k: int = 1
    ) -> nn.Module:
        """A supernet with ``forward(x, weights, mode="weighted", edge_weights=None) -> logits``."""

    def build_network(self, genotype: Any, C: int, N: int, num_classes: int) -> nn.Module:
        """A standalone network of ``genotype``; ``forward(x) -> logits``."""
