"""Genotypes as flat dicts of categorical parameters, for model-based searchers (BOHB, TPE).

NB201: one parameter per edge, ``edge_<target>_<source>`` (``edge_1_0`` ... ``edge_3_2``),
choices the ops.
DARTS: per cell type and intermediate node ``k``, the pair of inputs (``normal_node2_inputs``,
choices like ``"0,3"``) and the op on each of the two (``normal_node2_op0``/``_op1``), in the
order of the sorted inputs.
"""

from __future__ import annotations

from typing import Any

ParamSpec = list[tuple[str, tuple[str, ...]]]


def _space_name(space: Any) -> str:
    name = getattr(space, "name", None)
    if name not in ("nb201", "darts"):
        raise ValueError(f"unsupported search space {name!r}; allowed: 'nb201', 'darts'")
    return name


def param_spec(space: Any, exclude_none: bool = False) -> ParamSpec:
    """(name, choices) of every categorical parameter describing a genotype of ``space``
    (the space's own encoding: :meth:`search_spaces.SearchSpace.param_spec`)."""
    _space_name(space)
    return list(space.param_spec(exclude_none))


def decode(space: Any, params: dict[str, Any]) -> Any:
    """The genotype that a full parameter dict describes; a ValueError names a missing or bad
    parameter."""
    spec = param_spec(space)
    missing = [name for name, _ in spec if name not in params]
    if missing:
        raise ValueError(f"parameters {missing!r} missing for space {space.name!r}")
    for name, choices in spec:
        if str(params[name]) not in choices:
            raise ValueError(f"parameter {name!r} got {params[name]!r}; allowed: {choices!r}")
    return space.decode_params({name: str(params[name]) for name, _ in spec})


def encode(space: Any, genotype: Any) -> dict[str, str]:
    """The parameter dict of a genotype (inverse of :func:`decode`)."""
    if isinstance(genotype, str):
        genotype = space.parse(genotype)
    _space_name(space)
    return space.encode_params(genotype)


class ParamDecoder:
    """:func:`decode` for one space, with the spec built once and the genotype of every distinct
    parameter dict kept (a search asks for the same cells again and again); same results and
    errors as :func:`decode`."""

    def __init__(self, space: Any, max_cached: int = 65_536) -> None:
        _space_name(space)
        self.space = space
        self._names = tuple(name for name, _ in param_spec(space))
        self._max_cached = int(max_cached)
        self._cache: dict[tuple[Any, ...], Any] = {}

    def __call__(self, params: dict[str, Any]) -> Any:
        key = tuple(params.get(name) for name in self._names)
        genotype = self._cache.get(key)
        if genotype is None:
            genotype = decode(self.space, params)
            if len(self._cache) >= self._max_cached:
                self._cache.clear()
            self._cache[key] = genotype
        return genotype
