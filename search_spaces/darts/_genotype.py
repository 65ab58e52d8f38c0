"""DARTS cell genotypes in DARTS's own text form, published cells, discretisation, sampling.

A cell has 2 input states (0: the cell before last, 1: the last cell) and 4 intermediate nodes
(states 2..5). Intermediate node ``k`` (0-based) takes exactly 2 inputs, each from a state in
``0..k+1`` through one op. The supernet has one edge per (node, possible input): node 0 owns
edges 0-1, node 1 edges 2-4, node 2 edges 5-8, node 3 edges 9-13.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from search_spaces.darts._ops import PRIMITIVES

STEPS = 4  # intermediate nodes per cell
INPUTS_PER_NODE = 2
NUM_EDGES = sum(2 + k for k in range(STEPS))  # 14
CELL_TYPES: tuple[str, ...] = ("normal", "reduce")
# Edge indices entering each intermediate node: [[0, 1], [2, 3, 4], [5, 6, 7, 8], [9, ..., 13]].
EDGE_GROUPS: tuple[tuple[int, ...], ...] = tuple(
    tuple(range(sum(2 + j for j in range(k)), sum(2 + j for j in range(k + 1))))
    for k in range(STEPS)
)
# Ops a discrete cell may use (``none`` only exists in the supernet).
CELL_OPS: tuple[str, ...] = tuple(op for op in PRIMITIVES if op != "none")
_DEFAULT_CONCAT: tuple[int, ...] = tuple(range(2, 2 + STEPS))
_FIELDS = ("normal", "normal_concat", "reduce", "reduce_concat")

Cell = tuple[tuple[str, int], ...]


def _check_cell(name: str, cell: object) -> Cell:
    if not isinstance(cell, (list, tuple)):
        raise ValueError(
            f"DARTS genotype {name!r} must be a list of (op, input) pairs, got {cell!r}"
        )
    if len(cell) != STEPS * INPUTS_PER_NODE:
        raise ValueError(
            f"DARTS genotype {name!r} needs {STEPS * INPUTS_PER_NODE} (op, input) pairs "
            f"({INPUTS_PER_NODE} per node, {STEPS} nodes), got {len(cell)}: {cell!r}"
        )
    pairs: list[tuple[str, int]] = []
    for position, pair in enumerate(cell):
        node = position // INPUTS_PER_NODE
        where = f"DARTS genotype {name!r} node {node} (pair {position})"
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
            raise ValueError(f"{where}: expected an (op, input) pair, got {pair!r}")
        op, source = pair
        if op not in CELL_OPS:
            raise ValueError(f"{where}: unknown op {op!r}; allowed: {', '.join(CELL_OPS)}")
        if isinstance(source, bool) or not isinstance(source, (int, np.integer)):
            raise ValueError(f"{where}: input must be an integer, got {source!r}")
        if not 0 <= int(source) <= node + 1:
            raise ValueError(
                f"{where}: bad input index {source!r}; node {node} may take inputs 0..{node + 1}"
            )
        pairs.append((str(op), int(source)))
    return tuple(pairs)


def _check_concat(name: str, concat: object) -> tuple[int, ...]:
    if not isinstance(concat, (list, tuple, range)):
        raise ValueError(f"DARTS genotype {name!r} must be a list or range, got {concat!r}")
    values = tuple(concat)
    allowed = range(2 + STEPS)
    if (
        not values
        or len(set(values)) != len(values)
        or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in values)
        or any(int(v) not in allowed for v in values)
    ):
        raise ValueError(
            f"DARTS genotype {name!r} must list distinct state indices in 0..{1 + STEPS}, "
            f"got {concat!r}"
        )
    return tuple(int(v) for v in values)


def _format_concat(concat: tuple[int, ...]) -> str:
    start = concat[0]
    if len(concat) > 1 and concat == tuple(range(start, start + len(concat))):
        return f"range({start}, {start + len(concat)})"
    return "[" + ", ".join(str(v) for v in concat) + "]"


@dataclass(frozen=True)
class DartsGenotype:
    """A DARTS cell pair: per cell type 8 ``(op, input)`` pairs (2 per node) and the concat list.

    ``str()`` gives DARTS's text (``Genotype(normal=[...], normal_concat=range(2, 6), ...)``),
    which :func:`parse_genotype` reads back. Lists and ranges are accepted and stored as tuples.
    """

    normal: Cell
    normal_concat: tuple[int, ...]
    reduce: Cell
    reduce_concat: tuple[int, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "normal", _check_cell("normal", self.normal))
        object.__setattr__(self, "reduce", _check_cell("reduce", self.reduce))
        object.__setattr__(
            self, "normal_concat", _check_concat("normal_concat", self.normal_concat)
        )
        object.__setattr__(
            self, "reduce_concat", _check_concat("reduce_concat", self.reduce_concat)
        )

    def __str__(self) -> str:
        def cell(pairs: Cell) -> str:
            return "[" + ", ".join(f"({op!r}, {source})" for op, source in pairs) + "]"

        return (
            f"Genotype(normal={cell(self.normal)}, "
            f"normal_concat={_format_concat(self.normal_concat)}, "
            f"reduce={cell(self.reduce)}, "
            f"reduce_concat={_format_concat(self.reduce_concat)})"
        )

    __repr__ = __str__

    def cell(self, cell_type: str) -> Cell:
        """The pairs of ``"normal"`` or ``"reduce"``."""
        if cell_type not in CELL_TYPES:
            raise ValueError(f"unknown cell type {cell_type!r}; allowed: {', '.join(CELL_TYPES)}")
        return self.normal if cell_type == "normal" else self.reduce

    def concat(self, cell_type: str) -> tuple[int, ...]:
        """The concatenated states of ``"normal"`` or ``"reduce"``."""
        self.cell(cell_type)
        return self.normal_concat if cell_type == "normal" else self.reduce_concat

    def replace_cell(self, cell_type: str, pairs: Iterable[tuple[str, int]]) -> DartsGenotype:
        """A copy with the pairs of one cell type replaced."""
        self.cell(cell_type)
        pairs = tuple(pairs)
        return DartsGenotype(
            normal=pairs if cell_type == "normal" else self.normal,
            normal_concat=self.normal_concat,
            reduce=pairs if cell_type == "reduce" else self.reduce,
            reduce_concat=self.reduce_concat,
        )


# --------------------------------------------------------------------------- parsing


def _literal(field: str, node: ast.expr, text: str) -> object:
    if field.endswith("_concat") and isinstance(node, ast.Call):
        if not (isinstance(node.func, ast.Name) and node.func.id == "range") or node.keywords:
            raise ValueError(
                f"malformed DARTS genotype: {field}= must be a list or range(a, b), "
                f"got {ast.get_source_segment(text, node)!r}"
            )
        try:
            args = [ast.literal_eval(arg) for arg in node.args]
        except ValueError:
            args = []
        if not 1 <= len(args) <= 2 or not all(type(a) is int for a in args):
            raise ValueError(
                f"malformed DARTS genotype: {field}= must be range(a, b) with integer bounds, "
                f"got {ast.get_source_segment(text, node)!r}"
            )
        return range(*args)
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as error:
        raise ValueError(
            f"malformed DARTS genotype: {field}= is not a literal: "
            f"{ast.get_source_segment(text, node)!r}"
        ) from error


def parse_genotype(text: str) -> DartsGenotype:
    """Parse DARTS's text ``Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=...)``.

    Nothing is evaluated: the text is parsed into a syntax tree whose parts are read with
    ``ast.literal_eval``; ``range(a, b)`` is recognised explicitly for the concat fields.
    An optional ``NAME = `` prefix (as in DARTS's ``genotypes.py``) is ignored.
    """
    if not isinstance(text, str):
        raise ValueError(f"a DARTS genotype must be given as text, got {text!r}")
    stripped = text.strip()
    head, sep, rest = stripped.partition("=")
    if sep and head.strip().isidentifier() and rest.lstrip().startswith(("Genotype", "Darts")):
        stripped = rest.strip()
    example = "Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=range(2, 6), reduce=..."
    try:
        tree = ast.parse(stripped, mode="eval")
    except SyntaxError as error:
        raise ValueError(
            f"malformed DARTS genotype {text!r}: not valid syntax ({error.msg}); expected {example}"
        ) from error
    call = tree.body
    if not (
        isinstance(call, ast.Call)
        and isinstance(call.func, ast.Name)
        and call.func.id in ("Genotype", "DartsGenotype")
    ):
        raise ValueError(f"malformed DARTS genotype {text!r}: expected {example}")
    if len(call.args) > len(_FIELDS) or any(isinstance(a, ast.Starred) for a in call.args):
        raise ValueError(f"malformed DARTS genotype {text!r}: too many positional arguments")
    values: dict[str, object] = {}
    for field, node in zip(_FIELDS, call.args):
        values[field] = _literal(field, node, stripped)
    for keyword in call.keywords:
        if keyword.arg not in _FIELDS:
            raise ValueError(
                f"malformed DARTS genotype: unknown field {keyword.arg!r}; "
                f"allowed: {', '.join(_FIELDS)}"
            )
        if keyword.arg in values:
            raise ValueError(f"malformed DARTS genotype: field {keyword.arg!r} given twice")
        values[keyword.arg] = _literal(keyword.arg, keyword.value, stripped)
    missing = [f for f in ("normal", "reduce") if f not in values]
    if missing:
        raise ValueError(f"malformed DARTS genotype {text!r}: missing {', '.join(missing)}")
    return DartsGenotype(
        normal=values["normal"],  # type: ignore[arg-type]
        normal_concat=values.get("normal_concat", _DEFAULT_CONCAT),  # type: ignore[arg-type]
        reduce=values["reduce"],  # type: ignore[arg-type]
        reduce_concat=values.get("reduce_concat", _DEFAULT_CONCAT),  # type: ignore[arg-type]
    )


# --------------------------------------------------------------------------- published cells

# DARTS (first order), Liu et al. 2019.
DARTS_V1 = parse_genotype(
    "Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 0), "
    "('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
    "('skip_connect', 2)], normal_concat=[2, 3, 4, 5], "
    "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
    "('max_pool_3x3', 0), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), "
    "('avg_pool_3x3', 0)], reduce_concat=[2, 3, 4, 5])"
)
# DARTS (second order), the cell of the paper's CIFAR-10 results (2.76% test error, 3.3M params).
DARTS_V2 = parse_genotype(
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
    "('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), "
    "('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], "
    "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
    "('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), "
    "('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])"
)
# PC-DARTS's CIFAR-10 cell, Xu et al. 2020.
PC_DARTS = parse_genotype(
    "Genotype(normal=[('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 0), "
    "('dil_conv_3x3', 1), ('sep_conv_5x5', 0), ('sep_conv_3x3', 1), ('avg_pool_3x3', 0), "
    "('dil_conv_3x3', 1)], normal_concat=range(2, 6), "
    "reduce=[('sep_conv_5x5', 1), ('max_pool_3x3', 0), ('sep_conv_5x5', 1), "
    "('sep_conv_5x5', 2), ('sep_conv_3x3', 0), ('sep_conv_3x3', 3), ('sep_conv_3x3', 1), "
    "('sep_conv_3x3', 2)], reduce_concat=range(2, 6))"
)


# --------------------------------------------------------------------------- discretisation


def _discretize_cell(name: str, weights: torch.Tensor | np.ndarray, ops: Sequence[str]) -> Cell:
    if isinstance(weights, torch.Tensor):
        w = weights.detach().to("cpu", torch.float64).numpy()
    else:
        w = np.asarray(weights, dtype=np.float64)
    if w.shape != (NUM_EDGES, len(ops)):
        raise ValueError(
            f"{name} weights must have shape ({NUM_EDGES}, {len(ops)}) for ops {tuple(ops)}, "
            f"got {tuple(w.shape)}"
        )
    columns = [k for k, op in enumerate(ops) if op != "none"]
    if not columns:
        raise ValueError(f"ops must contain at least one op besides 'none', got {tuple(ops)}")
    pairs: list[tuple[str, int]] = []
    for edges in EDGE_GROUPS:
        candidates = []
        for source, edge in enumerate(edges):
            best = columns[int(np.argmax(w[edge, columns]))]  # first maximum, as DARTS
            candidates.append((-w[edge, best], source, ops[best]))
        candidates.sort(key=lambda c: (c[0], c[1]))  # strongest first, ties to the lower input
        pairs.extend((op, source) for _, source, op in candidates[:INPUTS_PER_NODE])
    return tuple(pairs)


def discretize(
    normal_weights: torch.Tensor | np.ndarray,
    reduce_weights: torch.Tensor | np.ndarray,
    ops: Sequence[str],
) -> DartsGenotype:
    """DARTS's parse: per node, the 2 incoming edges with the strongest non-``none`` weight,
    each with its strongest non-``none`` op (listed strongest edge first).

    ``*_weights`` are ``[14, len(ops)]``; column ``k`` belongs to ``ops[k]``.
    """
    ops = tuple(ops)
    unknown = [op for op in ops if op not in PRIMITIVES]
    if unknown or len(set(ops)) != len(ops):
        raise ValueError(
            f"ops must be distinct DARTS ops, got {ops!r}; allowed: {', '.join(PRIMITIVES)}"
        )
    return DartsGenotype(
        normal=_discretize_cell("normal", normal_weights, ops),
        normal_concat=_DEFAULT_CONCAT,
        reduce=_discretize_cell("reduce", reduce_weights, ops),
        reduce_concat=_DEFAULT_CONCAT,
    )


# --------------------------------------------------------------------------- sampling


def _sample_cell(rng: np.random.Generator) -> Cell:
    pairs: list[tuple[str, int]] = []
    for node in range(STEPS):
        sources = rng.choice(node + 2, size=INPUTS_PER_NODE, replace=False)
        for source in sources:
            pairs.append((CELL_OPS[int(rng.integers(len(CELL_OPS)))], int(source)))
    return tuple(pairs)


def sample_genotype(rng: np.random.Generator) -> DartsGenotype:
    """Uniform: per node of each cell, 2 distinct inputs, each with a uniform non-``none`` op."""
    return DartsGenotype(
        normal=_sample_cell(rng),
        normal_concat=_DEFAULT_CONCAT,
        reduce=_sample_cell(rng),
        reduce_concat=_DEFAULT_CONCAT,
    )


def mutate_genotype(genotype: DartsGenotype, rng: np.random.Generator) -> DartsGenotype:
    """Change exactly one choice: the op or the input of one pair, in one cell.

    The analogue of the NB201 mutation (node, then one of its inputs, then the change): a
    uniformly random cell type, then a uniformly random pair of the 8 (equivalently a uniform
    node, then one of its 2 inputs), then, with probability 1/2 each, a new input (Real et al.'s
    hidden-state mutation) or a new op (their op mutation). This is the scheme of NASLib's DARTS
    space (automl/NASLib, ``naslib/search_spaces/darts/graph.py``, ``mutate``), except that the
    new value is drawn among the ones that differ, so one draw always changes the cell, where
    NASLib redraws until something changed. A new input is drawn among the node's inputs used by
    neither of its pairs, so the node keeps two distinct inputs (node 0, whose only inputs are 0
    and 1, can only change an op).
    """
    cell_type = CELL_TYPES[int(rng.integers(len(CELL_TYPES)))]
    pairs = list(genotype.cell(cell_type))
    position = int(rng.integers(len(pairs)))
    node = position // INPUTS_PER_NODE
    op, source = pairs[position]
    node_sources = {s for _, s in pairs[node * INPUTS_PER_NODE : (node + 1) * INPUTS_PER_NODE]}
    free_sources = [s for s in range(node + 2) if s not in node_sources]
    if free_sources and rng.random() < 0.5:
        pairs[position] = (op, free_sources[int(rng.integers(len(free_sources)))])
    else:
        other_ops = [o for o in CELL_OPS if o != op]
        pairs[position] = (other_ops[int(rng.integers(len(other_ops)))], source)
    return genotype.replace_cell(cell_type, pairs)
