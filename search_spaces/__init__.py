"""Search spaces for gaea-tune: NAS-Bench-201 and the DARTS CNN space (torch and numpy only)."""

from __future__ import annotations

from search_spaces._base import ArchWeights, SearchSpace

SPACE_NAMES = ("nb201", "darts")


def get_space(name: str) -> SearchSpace:
    """The search space called ``name`` (one of :data:`SPACE_NAMES`)."""
    if name == "nb201":
        from search_spaces.nb201 import NB201Space

        return NB201Space()
    if name == "darts":
        from search_spaces.darts import DartsSpace

        return DartsSpace()
    raise ValueError(f"unknown search space {name!r}; allowed: {', '.join(SPACE_NAMES)}")


__all__ = ["SPACE_NAMES", "ArchWeights", "SearchSpace", "get_space"]
