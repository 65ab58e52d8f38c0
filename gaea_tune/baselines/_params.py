"""Genotypes as flat dicts of categorical parameters, for model-based searchers (BOHB, TPE).

NB201: one parameter per edge, ``edge_<target>_<source>`` (``edge_1_0`` ... ``edge_3_2``),
choices the ops.
DARTS: per cell type and intermediate node ``k``, the pair of inputs (``normal_node2_inputs``,
choices like ``"0,3"``) and the op on each of the two (``normal_node2_op0``/``_op1``), in the
order of the sorted inputs.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

ParamSpec = list[tuple[str, tuple[str, ...]]]


def _space_name(space: Any) -> str:
    name = getattr(space, "name", None)
    if name not in ("nb201", "darts"):
        raise ValueError(f"unsupported search space {name!r}; allowed: 'nb201', 'darts'")
    return name


def param_spec(space: Any, exclude_none: bool = False) -> ParamSpec:
    """(name, choices) of every categorical parameter describing a genotype of ``space``."""
    if _space_name(space) == "nb201":
        from search_spaces.nb201 import EDGES, OPS

        ops = tuple(op for op in OPS if not (exclude_none and op == "none"))
        return [(f"edge_{t}_{s}", ops) for t, s in EDGES]
    from search_spaces.darts._genotype import CELL_OPS, CELL_TYPES, STEPS

    spec: ParamSpec = []
    for cell in CELL_TYPES:
        for k in range(STEPS):
            node = k + 2
            pairs = tuple(f"{a},{b}" for a, b in combinations(range(node), 2))
            spec.append((f"{cell}_node{node}_inputs", pairs))
            spec.append((f"{cell}_node{node}_op0", CELL_OPS))
            spec.append((f"{cell}_node{node}_op1", CELL_OPS))
    return spec


def decode(space: Any, params: dict[str, Any]) -> Any:
    """The genotype that a full parameter dict describes."""
    spec = param_spec(space)
    missing = [name for name, _ in spec if name not in params]
    if missing:
        raise ValueError(f"parameters {missing!r} missing for space {space.name!r}")
    for name, choices in spec:
        if str(params[name]) not in choices:
            raise ValueError(f"parameter {name!r} got {params[name]!r}; allowed: {choices!r}")
    if space.name == "nb201":
        from search_spaces.nb201 import NB201Genotype

        return NB201Genotype(tuple(str(params[name]) for name, _ in spec))
    from search_spaces.darts._genotype import CELL_TYPES, STEPS, DartsGenotype

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


def encode(space: Any, genotype: Any) -> dict[str, str]:
    """The parameter dict of a genotype (inverse of :func:`decode`)."""
    if isinstance(genotype, str):
        genotype = space.parse(genotype)
    spec = param_spec(space)
    if space.name == "nb201":
        return {name: op for (name, _), op in zip(spec, genotype.ops)}
    from search_spaces.darts._genotype import CELL_TYPES, STEPS

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
