"""The NAS-Bench-201 search space behind the :class:`search_spaces._base.SearchSpace` protocol."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from search_spaces.nb201 import _genotype
from search_spaces.nb201._genotype import EDGES, NUM_EDGES, OPS, NB201Genotype

if TYPE_CHECKING:  # torch loads only with the first network or weights (not for table look-ups)
    from search_spaces._base import ArchWeights
    from search_spaces.nb201._networks import NB201Network, NB201Supernet


class NB201Space:
    """NAS-Bench-201: one cell type ``"cell"`` with 6 edges over 5 ops, shared by all cells."""

    name = "nb201"
    # search steps 1.26x (C=16, N=5, batch 64, 32 px) and 1.12x (C=8, N=1, 16 px), standalone
    # training of the best cell 1.23x (batch 64), 2 threads, fp32
    channels_last_on_cpu = True

    def candidate_ops(self, exclude_none: bool) -> tuple[str, ...]:
        return tuple(op for op in OPS if not (exclude_none and op == "none"))

    def arch_shapes(self, exclude_none: bool) -> dict[str, tuple[int, int]]:
        return {"cell": (NUM_EDGES, len(self.candidate_ops(exclude_none)))}

    def edge_groups(self) -> dict[str, list[list[int]]]:
        targets = sorted({t for t, _ in EDGES})
        return {
            "cell": [[e for e, (t, _) in enumerate(EDGES) if t == target] for target in targets]
        }

    def parse(self, text: str) -> NB201Genotype:
        if not isinstance(text, str):
            raise TypeError(f"an NB201 arch string is a str, got {text!r}")
        return NB201Genotype.from_string(text)

    def sample(self, rng: np.random.Generator, exclude_none: bool = False) -> NB201Genotype:
        return _genotype.sample(rng, exclude_none=exclude_none)

    def mutate(
        self, genotype: NB201Genotype, rng: np.random.Generator, exclude_none: bool = False
    ) -> NB201Genotype:
        """Change exactly one edge's op: node, then one of its inputs, then a different op
        (never ``none`` when ``exclude_none``); see :func:`search_spaces.nb201._genotype.mutate`.
        """
        return _genotype.mutate(genotype, rng, exclude_none=exclude_none)

    def param_spec(self, exclude_none: bool = False) -> list[tuple[str, tuple[str, ...]]]:
        """One categorical parameter per edge, ``edge_<target>_<source>``, choices the ops
        (the encoding BOHB and TPE search over)."""
        return [(f"edge_{t}_{s}", self.candidate_ops(exclude_none)) for t, s in EDGES]

    def encode_params(self, genotype: NB201Genotype) -> dict[str, str]:
        """The parameter dict of ``genotype`` (inverse of :meth:`decode_params`)."""
        return {name: op for (name, _), op in zip(self.param_spec(), genotype.ops)}

    def decode_params(self, params: dict[str, str]) -> NB201Genotype:
        """The genotype a full parameter dict describes."""
        return NB201Genotype(tuple(str(params[name]) for name, _ in self.param_spec()))

    def discretize(self, weights: ArchWeights, ops: tuple[str, ...]) -> NB201Genotype:
        """The cell taking, on every edge, the op with the largest weight."""
        if "cell" not in weights:
            raise ValueError(f"NB201 weights need key 'cell', got keys {list(weights)!r}")
        import torch

        w = torch.as_tensor(weights["cell"]).detach()
        if tuple(w.shape) != (NUM_EDGES, len(ops)):
            raise ValueError(
                f"weights['cell'] must have shape {(NUM_EDGES, len(ops))} for ops {ops!r}, "
                f"got {tuple(w.shape)}"
            )
        return NB201Genotype(tuple(ops[i] for i in w.argmax(dim=1).tolist()))

    def build_supernet(
        self, C: int, N: int, num_classes: int, exclude_none: bool, partial_k: int = 1
    ) -> NB201Supernet:
        from search_spaces.nb201._networks import NB201Supernet

        return NB201Supernet(C, N, num_classes, self.candidate_ops(exclude_none), partial_k)

    def build_network(
        self, genotype: NB201Genotype | str, C: int, N: int, num_classes: int
    ) -> NB201Network:
        from search_spaces.nb201._networks import NB201Network

        return NB201Network(genotype, C, N, num_classes)
