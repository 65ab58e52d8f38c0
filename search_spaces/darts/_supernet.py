"""The DARTS search network: every cell edge is a MixedOp whose weights come from outside."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from search_spaces._mixed import MODES, MixedOp, hooked, sum_terms
from search_spaces.darts._genotype import CELL_TYPES
from search_spaces.darts._ops import PRIMITIVES, FactorizedReduce, ReLUConvBN, build_search_op

STEM_MULTIPLIER = 3


class SearchCell(nn.Module):
    """A cell of ``steps`` nodes; node ``k`` sums MixedOps from all ``k + 2`` earlier states."""

    def __init__(
        self,
        ops: tuple[str, ...],
        steps: int,
        multiplier: int,
        C_prev_prev: int,
        C_prev: int,
        C: int,
        reduction: bool,
        reduction_prev: bool,
        partial_k: int,
    ) -> None:
        super().__init__()
        self.reduction = reduction
        self.steps = steps
        self.multiplier = multiplier
        if reduction_prev:
            self.preprocess0: nn.Module = FactorizedReduce(C_prev_prev, C, affine=False)
        else:
            self.preprocess0 = ReLUConvBN(C_prev_prev, C, 1, 1, 0, affine=False)
        self.preprocess1 = ReLUConvBN(C_prev, C, 1, 1, 0, affine=False)
        C_op = C // partial_k
        self.edges = nn.ModuleList()
        for node in range(steps):
            for source in range(node + 2):
                stride = 2 if reduction and source < 2 else 1
                candidates = nn.ModuleList(build_search_op(op, C_op, stride) for op in ops)
                self.edges.append(MixedOp(candidates, stride=stride, partial_k=partial_k))

    def forward(
        self,
        s0: torch.Tensor,
        s1: torch.Tensor,
        weights: torch.Tensor,
        mode: str,
        edge_weights: torch.Tensor | None,
    ) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        # a weighted or hard MixedOp's output is a product, owned in the sense of sum_terms
        # unless a hook sees it; a single-path one may be the state itself (skip_connect)
        owned = mode in ("weighted", "hard")

        def edge_output(edge: int, h: torch.Tensor) -> tuple[torch.Tensor, bool]:
            module = self.edges[edge]
            out = module(h, weights[edge], mode)
            if edge_weights is not None:
                return edge_weights[edge] * out, True
            return out, owned and not hooked(module)

        first_edge = 0
        for _ in range(self.steps):
            inputs = list(enumerate(states, start=first_edge))
            states.append(sum_terms(edge_output(edge, h) for edge, h in inputs))
            first_edge += len(inputs)
        return torch.cat(states[-self.multiplier :], dim=1)


class DartsSupernet(nn.Module):
    """The DARTS search network (``C=16, layers=8`` as in DARTS's CIFAR search).

    ``forward(x, weights, mode="weighted", edge_weights=None) -> logits`` where
    ``weights = {"normal": [E, K], "reduce": [E, K]}`` (``E = 14`` for 4 steps, ``K = len(ops)``,
    columns in ``ops`` order) and ``mode`` is one of :data:`search_spaces._mixed.MODES`.
    ``edge_weights = {"normal": [E], "reduce": [E]}`` (PC-DARTS's edge normalisation) scales each
    edge's output before a node sums them. With ``partial_k > 1`` (PC-DARTS: 4) the ops work on
    ``C // partial_k`` channels and the network only runs in ``"partial"`` mode.
    """

    def __init__(
        self,
        C: int = 16,
        layers: int = 8,
        num_classes: int = 10,
        ops: Sequence[str] = PRIMITIVES,
        partial_k: int = 1,
        steps: int = 4,
        multiplier: int = 4,
    ) -> None:
        super().__init__()
        ops = tuple(ops)
        unknown = [op for op in ops if op not in PRIMITIVES]
        if not ops or unknown or len(set(ops)) != len(ops):
            raise ValueError(
                f"ops must be distinct DARTS ops, got {ops!r}; allowed: {', '.join(PRIMITIVES)}"
            )
        if partial_k < 1 or C % partial_k != 0:
            raise ValueError(f"partial_k must be >= 1 and divide C, got {partial_k=}, {C=}")
        if C < 1 or layers < 1 or num_classes < 1 or steps < 1:
            raise ValueError(
                f"C, layers, num_classes, steps must be >= 1, got {C=}, {layers=}, "
                f"{num_classes=}, {steps=}"
            )
        if not 1 <= multiplier <= steps:
            raise ValueError(f"multiplier must lie in 1..steps={steps}, got {multiplier!r}")
        self.ops = ops
        self.partial_k = partial_k
        self.steps = steps
        self.num_edges = sum(2 + k for k in range(steps))
        C_curr = STEM_MULTIPLIER * C
        self.stem = nn.Sequential(
            nn.Conv2d(3, C_curr, 3, padding=1, bias=False), nn.BatchNorm2d(C_curr)
        )
        C_prev_prev, C_prev, C_curr = C_curr, C_curr, C
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                C_curr *= 2
            cell = SearchCell(
                ops,
                steps,
                multiplier,
                C_prev_prev,
                C_prev,
                C_curr,
                reduction,
                reduction_prev,
                partial_k,
            )
            self.cells.append(cell)
            reduction_prev = reduction
            C_prev_prev, C_prev = C_prev, multiplier * C_curr
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_prev, num_classes)

    def _checked(
        self, name: str, given: Mapping[str, torch.Tensor] | None, shape: tuple[int, ...]
    ) -> dict[str, torch.Tensor] | None:
        if given is None:
            return None
        checked = {}
        for cell_type in CELL_TYPES:
            if cell_type not in given:
                raise ValueError(f"{name} needs keys {CELL_TYPES}, got {tuple(given)}")
            tensor = given[cell_type]
            if tuple(tensor.shape) != shape:
                raise ValueError(
                    f"{name}[{cell_type!r}] must have shape {shape}, got {tuple(tensor.shape)}"
                )
            checked[cell_type] = tensor
        return checked

    def forward(
        self,
        x: torch.Tensor,
        weights: Mapping[str, torch.Tensor],
        mode: str = "weighted",
        edge_weights: Mapping[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; allowed: {', '.join(MODES)}")
        if self.partial_k > 1 and mode != "partial":
            raise ValueError(
                f"a supernet built with partial_k={self.partial_k} runs only in 'partial' mode, "
                f"got {mode!r}"
            )
        if weights is None:
            raise ValueError(f"weights must map {CELL_TYPES} to [E, K] tensors, got None")
        arch = self._checked("weights", weights, (self.num_edges, len(self.ops)))
        betas = self._checked("edge_weights", edge_weights, (self.num_edges,))
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            cell_type = "reduce" if cell.reduction else "normal"
            cell_betas = None if betas is None else betas[cell_type]
            s0, s1 = s1, cell(s0, s1, arch[cell_type], mode, cell_betas)  # type: ignore[index]
        return self.classifier(self.global_pooling(s1).flatten(1))
