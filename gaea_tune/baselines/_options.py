"""What each standalone baseline accepts, in live and tabular mode (plain Python, no torch/Ray).

Built from the constraints kept on the consumers: each searcher class's
``_parameter_constraints``, :data:`TRAINING_CONSTRAINTS` (read by the standalone trainable),
BOHB's live keys (Ray's ``TuneBOHB`` + ``HyperBandForBOHB``) and the tabular runner's ``style``.
``gaea_tune.config`` validates a YAML file with these same functions.
"""

from __future__ import annotations

from typing import Any

from gaea_tune._constraints import Interval, OneOf, validate_options
from gaea_tune.baselines._bohb import BOHBSearcher
from gaea_tune.baselines._registry import SEARCHERS

# Training settings of one standalone trial (the trainable's config keys besides the genotype).
TRAINING_CONSTRAINTS: dict[str, Any] = {
    "epochs": Interval(int, 1, 10_000),
    "batch_size": Interval(int, 1, 65_536),
    "lr": Interval(float, 1e-6, 10.0),
    "weight_decay": Interval(float, 0.0, 1.0),
}
# What a standalone trial trains with when the config does not say (SGD, Nesterov momentum 0.9,
# cosine lr over the trial's epochs: NB201's hp=12 schedule, lr 0.1, weight decay 5e-4).
TRAINING_DEFAULTS: dict[str, Any] = {
    "epochs": 12,
    "batch_size": 64,
    "lr": 0.1,
    "weight_decay": 5e-4,
}
# Read by the comparison runner: the most trials of the method training at once.
RUNNER_CONSTRAINTS: dict[str, Any] = {"max_concurrent": Interval(int, 1, 1024)}
# hpbandster settings that Ray's TuneBOHB passes on (``bohb_config``).
LIVE_BOHB_KEYS = (
    "num_samples", "random_fraction", "top_n_percent", "bandwidth_factor", "min_bandwidth",
    "min_points_in_model", "exclude_none",
)  # fmt: skip
LIVE_BOHB_ETA = 3
# The tabular runner's own BOHB option: ``paper`` = the NB201 paper's setting.
TABULAR_STYLE = OneOf(("table", "paper"))
# Fidelities are fixed by the table in tabular mode and by ``epochs`` in live mode.
_INTERNAL = ("min_fidelity", "max_fidelity", "fixed_fidelity")


def live_search_constraints(method: str) -> dict[str, Any]:
    """The search options (not training ones) ``method`` takes in a live comparison."""
    cls = _searcher_class(method)
    if method == "bohb":
        constraints = {"reduction_factor": Interval(int, 2, 100)}  # default LIVE_BOHB_ETA
        constraints.update({k: cls._parameter_constraints[k] for k in LIVE_BOHB_KEYS})
        return constraints
    return dict(cls._parameter_constraints)


def live_constraints(method: str) -> dict[str, Any]:
    """Every option ``method`` takes in a live comparison (training + search + runner)."""
    return {**TRAINING_CONSTRAINTS, **RUNNER_CONSTRAINTS, **live_search_constraints(method)}


def tabular_constraints(method: str) -> dict[str, Any]:
    """Every option ``method`` takes in tabular mode."""
    cls = _searcher_class(method)
    constraints = {k: v for k, v in cls._parameter_constraints.items() if k not in _INTERNAL}
    if method == "bohb":
        constraints["style"] = TABULAR_STYLE
    return constraints


def validate_live(where: str, method: str, options: dict[str, Any]) -> dict[str, Any]:
    """Check a live baseline's options, cross-option rules included."""
    checked = validate_options(where, options, live_constraints(method))
    search = {
        k: v for k, v in checked.items() if k in _searcher_class(method)._parameter_constraints
    }
    _searcher_class(method).validate_params(where, search)
    return checked


def validate_tabular(where: str, method: str, options: dict[str, Any]) -> dict[str, Any]:
    """Check a tabular baseline's options, cross-option rules included."""
    checked = validate_options(where, options, tabular_constraints(method))
    search = {k: v for k, v in checked.items() if k != "style"}
    _searcher_class(method).validate_params(where, search)
    return checked


def _searcher_class(method: str) -> type:
    if method not in SEARCHERS:
        raise ValueError(f"unknown baseline {method!r}; allowed: {', '.join(SEARCHERS)}")
    return SEARCHERS[method]


__all__ = [
    "BOHBSearcher",
    "LIVE_BOHB_KEYS",
    "RUNNER_CONSTRAINTS",
    "TRAINING_CONSTRAINTS",
    "live_constraints",
    "live_search_constraints",
    "tabular_constraints",
    "validate_live",
    "validate_tabular",
]
