"""NAS-Bench-201 networks: the standalone network of one cell and the weight-sharing supernet.

Both share the NB201 skeleton: a 3x3 conv stem (C channels) + BN, three stages of N cells at
C, 2C and 4C channels with a stride-2 residual block between stages, BN-ReLU, global average
pooling and a linear classifier. In a cell, node ``i`` is the sum over ``j < i`` of
``op_{i<-j}(node_j)``; node 0 is the cell input and node 3 its output.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from search_spaces._mixed import MODES, MixedOp, _weighted_sum, hooked, sum_terms
from search_spaces.nb201._genotype import EDGES, NUM_EDGES, NUM_NODES, OPS, NB201Genotype
from search_spaces.nb201._ops import ResNetBasicBlock, make_op

# Per intermediate node, the indices (into EDGES) of its incoming edges and their source nodes.
_NODE_INPUTS: tuple[tuple[tuple[int, int], ...], ...] = tuple(
    tuple((e, source) for e, (t, source) in enumerate(EDGES) if t == target)
    for target in range(1, NUM_NODES)
)


def _relu_tail(op: nn.Module) -> list[nn.Module] | None:
    """The layers after ``op``'s leading out-of-place ReLU (a ReLU-Conv-BN op), else ``None``.

    Every ReLU-Conv-BN op reading the same node computes the same ``relu(node)``; the cells
    compute it once per node and run only the op's remaining layers on it. The values and
    gradients are those of running each op whole (the ReLU's backward is a 0/1 mask, so
    masking the summed gradient equals summing the masked ones); the cells save one ReLU
    output per node for the backward pass instead of one per op, and skip the repeated ReLUs.
    """
    if isinstance(op, nn.Sequential) and len(op) > 1:
        first = op[0]
        if type(first) is nn.ReLU and not first.inplace:
            return list(op)[1:]
    return None


def _run_tail(layers: list[nn.Module], x: torch.Tensor) -> torch.Tensor:
    for layer in layers:
        x = layer(x)
    return x


class _PerNode:
    """Per node of one cell's forward, what ops reading that node compute alike, computed on
    first use: ``relu(node)`` (the first layer of each ReLU-Conv-BN op) and the average pool
    of the node (the parameter-free ``avg_pool_3x3``, identical on every edge leaving the
    node). Values and gradients are those of running each op whole (up to float summation
    order): the ReLU's and the pool's backward are linear in the incoming gradient, so one
    backward of the summed gradients equals the sum of one per op."""

    __slots__ = ("nodes", "relus", "pools")

    def __init__(self, nodes: list[torch.Tensor]) -> None:
        self.nodes = nodes
        self.relus: dict[int, torch.Tensor] = {}
        self.pools: dict[tuple[Any, ...], torch.Tensor] = {}

    def __call__(self, source: int) -> torch.Tensor:
        out = self.relus.get(source)
        if out is None:
            out = self.relus[source] = F.relu(self.nodes[source])
        return out

    def apply(self, op: nn.Module, source: int) -> torch.Tensor:
        """``op(nodes[source])``, sharing the ReLU of a ReLU-Conv-BN op and the pool of a
        pooling op."""
        return self.apply_owned(op, source)[0]

    def apply_owned(self, op: nn.Module, source: int) -> tuple[torch.Tensor, bool]:
        """:meth:`apply`, and whether the result is owned in the sense of
        :func:`~search_spaces._mixed.sum_terms` (a ReLU-Conv-BN op's output is; a node itself
        (``skip_connect``) or a shared pool is not). An op with a hook runs whole and
        unshared, so the hook sees its own call (:func:`~search_spaces._mixed.hooked`)."""
        if hooked(op):
            return op(self.nodes[source]), False
        if isinstance(op, nn.AvgPool2d):
            key = (source, type(op), op.kernel_size, op.stride, op.padding, op.ceil_mode,
                   op.count_include_pad, op.divisor_override)  # fmt: skip
            out = self.pools.get(key)
            if out is None:
                out = self.pools[key] = op(self.nodes[source])
            return out, False
        tail = _relu_tail(op)
        if tail is None:
            return op(self.nodes[source]), False
        return _run_tail(tail, self(source)), not hooked(tail[-1])


def _check_sizes(C: int, N: int, num_classes: int) -> None:
    for name, value in (("C", C), ("N", N), ("num_classes", num_classes)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")


def _layout(C: int, N: int) -> Iterator[tuple[int, int, bool]]:
    """``(C_in, C_out, is_residual_block)`` for every layer after the stem."""
    C_prev = C
    for stage in range(3):
        C_curr = C * 2**stage
        if stage > 0:
            yield C_prev, C_curr, True
        for _ in range(N):
            yield C_curr, C_curr, False
        C_prev = C_curr


class _Skeleton(nn.Module):
    """Stem, the layers between, and the classifier head; subclasses build the cells."""

    def __init__(self, C: int, N: int, num_classes: int) -> None:
        super().__init__()
        _check_sizes(C, N, num_classes)
        self.C, self.N, self.num_classes = C, N, num_classes
        self.stem = nn.Sequential(
            nn.Conv2d(3, C, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(C)
        )
        self.cells = nn.ModuleList(
            ResNetBasicBlock(C_in, C_out, stride=2) if residual else self._make_cell(C_out)
            for C_in, C_out, residual in _layout(C, N)
        )
        C_last = 4 * C
        self.lastact = nn.Sequential(nn.BatchNorm2d(C_last), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_last, num_classes)

    def _make_cell(self, C: int) -> nn.Module:
        raise NotImplementedError

    def _head(self, x: torch.Tensor) -> torch.Tensor:
        x = self.global_pooling(self.lastact(x))
        return self.classifier(x.flatten(1))


class _InferCell(nn.Module):
    """A fixed NB201 cell; ``none`` edges are left out of the sums."""

    def __init__(self, genotype: NB201Genotype, C: int) -> None:
        super().__init__()
        self.edges = nn.ModuleList()
        inputs: list[list[tuple[int, int]]] = []
        for node_inputs in _NODE_INPUTS:
            kept = []
            for e, source in node_inputs:
                if genotype.ops[e] != "none":
                    kept.append((len(self.edges), source))
                    self.edges.append(make_op(genotype.ops[e], C, affine=True))
            inputs.append(kept)
        self._inputs = inputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        shared = _PerNode(nodes)
        for kept in self._inputs:
            if kept:
                total = sum_terms(shared.apply_owned(self.edges[k], s) for k, s in kept)
            else:
                total = torch.zeros_like(x)
            nodes.append(total)
        return nodes[-1]


class NB201Network(_Skeleton):
    """The standalone network of one NB201 cell (BN with affine parameters)."""

    def __init__(
        self, genotype: NB201Genotype | str, C: int = 16, N: int = 5, num_classes: int = 10
    ) -> None:
        if isinstance(genotype, str):
            genotype = NB201Genotype.from_string(genotype)
        if not isinstance(genotype, NB201Genotype):
            raise TypeError(f"genotype must be an NB201Genotype or arch string, got {genotype!r}")
        self.genotype = genotype
        super().__init__(C, N, num_classes)

    def _make_cell(self, C: int) -> nn.Module:
        return _InferCell(self.genotype, C)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x)
        return self._head(x)


class _SearchCell(nn.Module):
    """An NB201 cell whose every edge is a :class:`MixedOp` over the candidate ops.

    The ops run on ``C // partial_k`` channels (all of them unless PC-DARTS partial channels)
    and use BN without affine parameters, as in the NB201 search code.
    """

    def __init__(self, C: int, ops: tuple[str, ...], partial_k: int) -> None:
        super().__init__()
        C_op = C // partial_k
        self.edges = nn.ModuleList(
            MixedOp(
                nn.ModuleList(make_op(op, C_op, affine=False) for op in ops),
                stride=1,
                partial_k=partial_k,
            )
            for _ in range(NUM_EDGES)
        )

    def forward(
        self,
        x: torch.Tensor,
        rows: tuple[torch.Tensor, ...] | None,
        mode: str,
        edge_rows: tuple[torch.Tensor, ...] | None,
        chosen: list[int] | None,
        scales: tuple[torch.Tensor, ...] | None,
        offsets: tuple[torch.Tensor, ...] | None = None,
    ) -> torch.Tensor:
        nodes = [x]
        shared = _PerNode(nodes)

        def edge_output(e: int, source: int) -> tuple[torch.Tensor, bool]:
            """The edge's output, and whether it is owned (see ``sum_terms``)."""
            edge: MixedOp = self.edges[e]  # type: ignore[assignment]
            owned = True
            if chosen is None and mode == "weighted":
                # MixedOp's weighted sum, the ReLUs of the ReLU-Conv-BN ops shared per node
                row = rows[e]  # type: ignore[index]
                out = _weighted_sum(source, row, edge.candidates, shared.apply)
            elif chosen is None:
                out = edge(nodes[source], rows[e], mode)  # type: ignore[index]
                owned = False
            else:  # hard / single: the op index was computed once for all cells
                out = edge.candidates[chosen[e]](nodes[source])
                owned = scales is not None or offsets is not None
                if scales is not None:
                    out = out * scales[e]
                if offsets is not None:
                    out = out + offsets[e]
            if edge_rows is not None:
                out, owned = out * edge_rows[e], True
            return out, owned

        for node_inputs in _NODE_INPUTS:
            nodes.append(sum_terms(edge_output(e, source) for e, source in node_inputs))
        return nodes[-1]


class NB201Supernet(_Skeleton):
    """The NB201 weight-sharing supernet; architecture weights are passed to ``forward``.

    ``weights["cell"]`` is a ``[6, K]`` tensor (row ``e``: mixing weights of edge ``e`` in
    :data:`EDGES` order, over ``ops``), shared by all cells as in the NB201 search code.
    ``edge_weights["cell"]`` (optional) is a ``[6]`` tensor scaling each edge's output before
    a node sums them (PC-DARTS edge normalisation). A supernet built with ``partial_k > 1``
    runs only ``mode="partial"``.

    ``mode="hard"`` is NB201's GDAS forward (AutoDL-Projects
    xautodl/models/cell_searchs/search_cells.py lines 71-86, ``forward_gdas``; the same in
    GAEA's fork liamcli/AutoDL-Projects lib/models/cell_searchs/search_cells.py lines 65-76):
    with straight-through rows ``h`` (one-hot in value) and ``a`` the argmax of edge ``e``,
    the edge outputs ``h[a] * op_a(x) + sum(h[i] for i != a)``. Only the chosen op runs; the
    other entries add zero in value but pass the sum of the output's gradient back to their
    weight, so every op's weight gets a gradient (the chosen one ``<dL/dout, op_a(x)>``, the
    others ``sum(dL/dout)``), summed over the cells that share the row.
    """

    def __init__(
        self,
        C: int = 16,
        N: int = 5,
        num_classes: int = 10,
        ops: tuple[str, ...] = OPS,
        partial_k: int = 1,
    ) -> None:
        ops = tuple(ops)
        if not ops or len(set(ops)) != len(ops) or any(op not in OPS for op in ops):
            raise ValueError(
                f"ops must be distinct NB201 op names, got {ops!r}; allowed: {', '.join(OPS)}"
            )
        if isinstance(partial_k, bool) or not isinstance(partial_k, int) or partial_k < 1:
            raise ValueError(f"partial_k must be a positive int, got {partial_k!r}")
        if isinstance(C, int) and C % partial_k:
            raise ValueError(f"C must be divisible by partial_k, got C={C!r}, {partial_k=}")
        self.ops = ops
        self.partial_k = partial_k
        super().__init__(C, N, num_classes)

    def _make_cell(self, C: int) -> nn.Module:
        return _SearchCell(C, self.ops, self.partial_k)

    @property
    def arch_shape(self) -> tuple[int, int]:
        return NUM_EDGES, len(self.ops)

    def forward(
        self,
        x: torch.Tensor,
        weights: dict[str, torch.Tensor],
        mode: str = "weighted",
        edge_weights: dict[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        if mode not in MODES:
            raise ValueError(f"unknown mixed-op mode {mode!r}; allowed: {', '.join(MODES)}")
        if self.partial_k > 1 and mode != "partial":
            raise ValueError(
                f"this supernet was built with partial_k={self.partial_k} and runs only "
                f"mode='partial', got mode={mode!r}"
            )
        w = _get(weights, "weights", self.arch_shape)
        edge_rows = None
        if edge_weights is not None:
            edge_rows = _get(edge_weights, "edge_weights", (NUM_EDGES,)).unbind(0)
        rows = chosen = scales = offsets = None
        if mode in ("hard", "single"):
            index = w.detach().argmax(dim=1)
            chosen = index.tolist()
            if mode == "hard":  # GDAS's straight-through forward; see the class docstring
                picked = F.one_hot(index, w.shape[1]).to(w.dtype)
                scales = (w * picked).sum(dim=1).unbind(0)
                offsets = (w * (1 - picked)).sum(dim=1).unbind(0)
        else:
            rows = w.unbind(0)
            if self.partial_k == 1:
                mode = "weighted"  # partial channels with k=1 is the plain weighted sum

        x = self.stem(x)
        for cell in self.cells:
            if isinstance(cell, _SearchCell):
                x = cell(x, rows, mode, edge_rows, chosen, scales, offsets)
            else:
                x = cell(x)
        return self._head(x)


def _get(weights: dict[str, torch.Tensor], what: str, shape: tuple[int, ...]) -> torch.Tensor:
    if not isinstance(weights, dict) or "cell" not in weights:
        keys = list(weights) if isinstance(weights, dict) else type(weights).__name__
        raise ValueError(f"{what} must be a dict with key 'cell', got {keys!r}")
    tensor = weights["cell"]
    if tuple(tensor.shape) != shape:
        raise ValueError(f"{what}['cell'] must have shape {shape}, got {tuple(tensor.shape)}")
    return tensor
