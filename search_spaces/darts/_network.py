"""The DARTS evaluation network: a stack of cells of one genotype, trained from scratch."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from search_spaces.darts._genotype import INPUTS_PER_NODE, DartsGenotype, parse_genotype
from search_spaces.darts._ops import FactorizedReduce, Identity, ReLUConvBN, build_op, drop_path

STEM_MULTIPLIER = 3


class EvalCell(nn.Module):
    """One discrete cell: 4 nodes summing 2 op outputs each, concat of the chosen states."""

    def __init__(
        self,
        pairs: tuple[tuple[str, int], ...],
        concat: tuple[int, ...],
        C_prev_prev: int,
        C_prev: int,
        C: int,
        reduction: bool,
        reduction_prev: bool,
    ) -> None:
        super().__init__()
        self.reduction = reduction
        if reduction_prev:
            self.preprocess0: nn.Module = FactorizedReduce(C_prev_prev, C)
        else:
            self.preprocess0 = ReLUConvBN(C_prev_prev, C, 1, 1, 0)
        self.preprocess1 = ReLUConvBN(C_prev, C, 1, 1, 0)
        self.sources = tuple(source for _, source in pairs)
        self.concat = concat
        self.multiplier = len(concat)
        self.ops = nn.ModuleList(
            build_op(op, C, 2 if reduction and source < 2 else 1, affine=True)
            for op, source in pairs
        )

    def forward(
        self,
        s0: torch.Tensor,
        s1: torch.Tensor,
        drop_prob: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for node in range(len(self.ops) // INPUTS_PER_NODE):
            total = 0
            for position in range(node * INPUTS_PER_NODE, (node + 1) * INPUTS_PER_NODE):
                op = self.ops[position]
                h = op(states[self.sources[position]])
                if self.training and drop_prob > 0.0 and not isinstance(op, Identity):
                    h = drop_path(h, drop_prob, generator)
                total = total + h
            states.append(total)
        return torch.cat([states[i] for i in self.concat], dim=1)


class AuxiliaryHead(nn.Module):
    """DARTS's CIFAR auxiliary classifier for 8x8 feature maps (2/3 of the depth at 32x32 input).

    Smaller maps (from inputs under 32x32) are average-pooled adaptively to 2x2 instead.
    """

    def __init__(self, C: int, num_classes: int) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(5, stride=3, padding=0, count_include_pad=False)
        self.features = nn.Sequential(
            nn.Conv2d(C, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False),
            nn.BatchNorm2d(768),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(x)
        x = self.pool(x) if min(x.shape[-2:]) >= 5 else F.adaptive_avg_pool2d(x, 2)
        x = self.features(x)
        return self.classifier(x.flatten(1))


class DartsNetwork(nn.Module):
    """The DARTS CIFAR evaluation network of ``genotype``.

    Stem conv 3x3 to ``3*C`` channels, ``layers`` cells with reduction cells (channels doubled)
    at ``layers//3`` and ``2*layers//3``, global average pooling, linear classifier. Drop-path
    (rate ``drop_path_prob``, mutable attribute, usually raised linearly over training) applies
    to non-identity ops in training mode; ``generator`` (optional attribute) seeds its masks.

    ``forward(x)`` returns logits, except in training mode with ``auxiliary=True``, where it
    returns ``(logits, aux_logits)`` as DARTS does. :meth:`forward_with_aux` always returns
    ``(logits, aux_logits_or_None)``.
    """

    def __init__(
        self,
        genotype: DartsGenotype | str,
        C: int = 36,
        layers: int = 20,
        num_classes: int = 10,
        auxiliary: bool = True,
        drop_path_prob: float = 0.0,
    ) -> None:
        super().__init__()
        if isinstance(genotype, str):
            genotype = parse_genotype(genotype)
        if not isinstance(genotype, DartsGenotype):
            raise ValueError(f"genotype must be a DartsGenotype or its text, got {genotype!r}")
        if C < 1 or layers < 1 or num_classes < 1:
            raise ValueError(
                f"C, layers, num_classes must be >= 1, got {C=}, {layers=}, {num_classes=}"
            )
        if not 0.0 <= drop_path_prob < 1.0:
            raise ValueError(f"drop_path_prob must lie in [0, 1), got {drop_path_prob!r}")
        self.genotype = genotype
        self.layers = layers
        self.auxiliary = auxiliary
        self.drop_path_prob = drop_path_prob
        self.generator: torch.Generator | None = None
        C_curr = STEM_MULTIPLIER * C
        self.stem = nn.Sequential(
            nn.Conv2d(3, C_curr, 3, padding=1, bias=False), nn.BatchNorm2d(C_curr)
        )
        C_prev_prev, C_prev, C_curr = C_curr, C_curr, C
        self.reduction_layers = (layers // 3, 2 * layers // 3)
        self.aux_layer = 2 * layers // 3
        self.cells = nn.ModuleList()
        reduction_prev = False
        C_aux = C_prev
        for i in range(layers):
            reduction = i in self.reduction_layers
            if reduction:
                C_curr *= 2
            cell_type = "reduce" if reduction else "normal"
            cell = EvalCell(
                genotype.cell(cell_type),
                genotype.concat(cell_type),
                C_prev_prev,
                C_prev,
                C_curr,
                reduction,
                reduction_prev,
            )
            self.cells.append(cell)
            reduction_prev = reduction
            C_prev_prev, C_prev = C_prev, cell.multiplier * C_curr
            if i == self.aux_layer:
                C_aux = C_prev
        self.auxiliary_head = AuxiliaryHead(C_aux, num_classes) if auxiliary else None
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_prev, num_classes)

    def forward_with_aux(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(logits, aux_logits)``; ``aux_logits`` is None unless training with the head."""
        s0 = s1 = self.stem(x)
        aux_logits = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob, self.generator)
            if i == self.aux_layer and self.auxiliary_head is not None and self.training:
                aux_logits = self.auxiliary_head(s1)
        logits = self.classifier(self.global_pooling(s1).flatten(1))
        return logits, aux_logits

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        logits, aux_logits = self.forward_with_aux(x)
        if aux_logits is not None:
            return logits, aux_logits
        return logits


def count_parameters(model: nn.Module, exclude_auxiliary: bool = True) -> int:
    """Number of parameters, by default without the auxiliary head (as papers count them)."""
    return sum(
        p.numel()
        for name, p in model.named_parameters()
        if not (exclude_auxiliary and "auxiliary" in name)
    )
