"""gaea-tune: budget-matched neural architecture search on Ray Tune, tracked in MLflow.

The public API (everything loads on first use; importing ``gaea_tune`` starts nothing and
changes no global state)::

    import gaea_tune as g
    config = g.load_config("tune_configs/quickstart.yaml", overrides={"budget.device_seconds": 30})
    result = g.compare(config)          # -> ComparisonResult
    result.results                      # pandas DataFrame, one row per method
    result.plot_incumbents()            # matplotlib Figure

Also: :class:`SupernetSearch` and :class:`SearchOptions` (one weight-sharing search in plain
torch), :func:`make_searcher` (the standalone baselines' ask/tell searchers), :func:`load_splits`
(datasets and their splits), :func:`load_table` (the NAS-Bench-201 table).
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("gaea-tune")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

_LAZY = {
    "load_config": "gaea_tune.config",
    "ConfigError": "gaea_tune.config",
    "ExperimentConfig": "gaea_tune.config",
    "compare": "gaea_tune.api",
    "ComparisonResult": "gaea_tune.api",
    "SupernetSearch": "gaea_tune.weight_sharing",
    "SearchOptions": "gaea_tune.weight_sharing",
    "make_searcher": "gaea_tune.baselines",
    "load_splits": "gaea_tune.data",
    "load_table": "gaea_tune.nb201_table",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'gaea_tune' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = ["__version__", *_LAZY]
