"""Searchers by name."""

from __future__ import annotations

import inspect
from typing import Any

from gaea_tune.baselines._bohb import BOHBSearcher
from gaea_tune.baselines._evolution import RandomSearcher, REASearcher
from gaea_tune.baselines._searcher import Searcher
from gaea_tune.baselines._tpe import TPESearcher

SEARCHERS: dict[str, type[Searcher]] = {
    "random": RandomSearcher,
    "rea": REASearcher,
    "bohb": BOHBSearcher,
    "tpe": TPESearcher,
}


def searcher_options(name: str) -> tuple[str, ...]:
    """The option names a searcher's constructor takes (besides ``space`` and ``seed``)."""
    cls = _searcher_class(name)
    params = inspect.signature(cls.__init__).parameters
    return tuple(p for p in params if p not in ("self", "space", "seed"))


def _searcher_class(name: str) -> type[Searcher]:
    if name not in SEARCHERS:
        raise ValueError(f"unknown searcher {name!r}; allowed: {', '.join(SEARCHERS)}")
    return SEARCHERS[name]


def make_searcher(name: str, space: Any, seed: int, **options: Any) -> Searcher:
    """A new searcher ``name`` ("random", "rea", "bohb", "tpe") over ``space``, seeded."""
    cls = _searcher_class(name)
    allowed = searcher_options(name)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(
            f"unknown option(s) {unknown!r} for searcher {name!r}; allowed: {', '.join(allowed)}"
        )
    return cls(space, seed, **options)
