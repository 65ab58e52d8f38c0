"""Weight-sharing architecture search (GAEA, DARTS, GDAS, PC-DARTS, RS-WS) in plain torch."""

from gaea_tune.weight_sharing._arch_optim import (
    GAEAOptimizer,
    gumbel_softmax_hard,
    gumbel_tau,
    row_entropy,
    simplex_init,
    softmax_adam,
)
from gaea_tune.weight_sharing._methods import METHODS, ArchParameters, Method, get_method
from gaea_tune.weight_sharing._search import (
    DEFAULT_PARTIAL_K,
    FORMULATIONS,
    GENOTYPE_FROM,
    SearchOptions,
    SupernetSearch,
    resolve_space,
)

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
    "get_method",
    "gumbel_softmax_hard",
    "gumbel_tau",
    "resolve_space",
    "row_entropy",
    "simplex_init",
    "softmax_adam",
]
