"""Non-weight-sharing baselines: ask/tell searchers (random, REA, BOHB, TPE), the tabular
NAS-Bench-201 simulation and the standalone training loop (all Ray-free)."""

from gaea_tune.baselines._bohb import PAPER_BOHB, BOHBSearcher, hyperband_budgets
from gaea_tune.baselines._evolution import RandomSearcher, REASearcher
from gaea_tune.baselines._params import decode, encode, param_spec
from gaea_tune.baselines._registry import SEARCHERS, make_searcher, searcher_options
from gaea_tune.baselines._searcher import Observation, Proposal, Searcher, finite_or_nan
from gaea_tune.baselines._tabular import (
    TABULAR_DATASETS,
    TabularBenchmark,
    TabularResult,
    simulate,
    simulate_many,
    summarize,
    tabular_benchmark,
    tabular_options,
)
from gaea_tune.baselines._tpe import TPESearcher

__all__ = [
    "PAPER_BOHB",
    "SEARCHERS",
    "TABULAR_DATASETS",
    "BOHBSearcher",
    "Observation",
    "Proposal",
    "REASearcher",
    "RandomSearcher",
    "Searcher",
    "TPESearcher",
    "TabularBenchmark",
    "TabularResult",
    "decode",
    "encode",
    "finite_or_nan",
    "hyperband_budgets",
    "make_searcher",
    "param_spec",
    "searcher_options",
    "simulate",
    "simulate_many",
    "summarize",
    "tabular_benchmark",
    "tabular_options",
]
