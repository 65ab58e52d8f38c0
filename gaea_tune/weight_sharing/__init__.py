"""Weight-sharing architecture search (GAEA, DARTS, GDAS, PC-DARTS, RS-WS) in plain torch.

The method table and :class:`SearchOptions` import without torch (configuration validation
reads them); the search itself, the architecture optimisers and parameters load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from gaea_tune.weight_sharing._options import (
    DEFAULT_PARTIAL_K,
    FORMULATIONS,
    GENOTYPE_FROM,
    METHODS,
    Method,
    SearchOptions,
    default_numerics,
    get_method,
)

_LAZY = {
    "GAEAOptimizer": "_arch_optim",
    "gumbel_softmax_hard": "_arch_optim",
    "gumbel_tau": "_arch_optim",
    "row_entropy": "_arch_optim",
    "simplex_init": "_arch_optim",
    "softmax_adam": "_arch_optim",
    "ArchParameters": "_methods",
    "SupernetSearch": "_search",
    "resolve_space": "_search",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_PARTIAL_K",
    "FORMULATIONS",
    "GENOTYPE_FROM",
    "METHODS",
    "ArchParameters",
    "GAEAOptimizer",
    "Method",
    "SearchOptions",
    "SupernetSearch",
    "default_numerics",
    "get_method",
    "gumbel_softmax_hard",
    "gumbel_tau",
    "resolve_space",
    "row_entropy",
    "simplex_init",
    "softmax_adam",
]
