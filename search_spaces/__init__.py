"""Search spaces for gaea-tune: NAS-Bench-201 and the DARTS CNN space (torch and numpy only).

:data:`SPACES` is the one catalogue of spaces: adding a space is one entry here plus its
package. Importing this package does not import torch (the space modules load on first use),
so configuration code can read :data:`SPACE_NAMES` cheaply.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from search_spaces._base import ArchWeights, SearchSpace

# name -> "module:class" of a class implementing the SearchSpace protocol (search_spaces._base)
SPACES = {
    "nb201": "search_spaces.nb201:NB201Space",
    "darts": "search_spaces.darts:DartsSpace",
}
SPACE_NAMES = tuple(SPACES)


def get_space(name: str) -> SearchSpace:
    """The search space called ``name`` (one of :data:`SPACE_NAMES`); ValueError otherwise."""
    if name not in SPACES:
        raise ValueError(f"unknown search space {name!r}; allowed: {', '.join(SPACE_NAMES)}")
    module, _, cls = SPACES[name].partition(":")
    return getattr(importlib.import_module(module), cls)()


def __getattr__(name: str) -> Any:  # ArchWeights, SearchSpace: imported (with torch) on use
    if name in ("ArchWeights", "SearchSpace"):
        from search_spaces import _base

        return getattr(_base, name)
    raise AttributeError(f"module 'search_spaces' has no attribute {name!r}")


__all__ = ["SPACES", "SPACE_NAMES", "ArchWeights", "SearchSpace", "get_space"]
