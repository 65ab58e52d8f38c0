"""Ray Tune searchers for the standalone baselines.

Random search and REA are this package's ask/tell searchers behind :class:`AskTellSearcher`;
BOHB is Ray's TuneBOHB with HyperBandForBOHB (fidelity = training epochs, i.e. training
iterations); TPE is Ray's OptunaSearch. Metric and mode are left unset here: pass them once, in
``tune.TuneConfig(metric=..., mode=...)``, which hands them to the searcher and the scheduler.
"""

from __future__ import annotations

import math
import pickle
from typing import Any

from ray import tune
from ray.tune.schedulers import HyperBandForBOHB, TrialScheduler
from ray.tune.search import Searcher as TuneSearcher

from gaea_tune.baselines import Proposal, Searcher, make_searcher, param_spec, searcher_options

LIVE_METHODS = ("random", "rea", "bohb", "tpe")
_BOHB_CONFIG_KEYS = (
    "num_samples",
    "random_fraction",
    "top_n_percent",
    "bandwidth_factor",
    "min_bandwidth",
    "min_points_in_model",
)


class AskTellSearcher(TuneSearcher):
    """A :class:`gaea_tune.baselines.Searcher` as a Ray Tune searcher.

    Each trial gets ``{"genotype": text}`` (plus ``"epochs"`` when the proposal fixes a
    fidelity); when a trial ends, its last reported metric is told back (NaN when it failed or
    never reported, negated for ``mode="min"``).
    """

    def __init__(self, searcher: Searcher, metric: str | None = None, mode: str | None = None):
        super().__init__(metric=metric, mode=mode)
        self.ask_tell = searcher
        self._live: dict[str, Proposal] = {}

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any
    ) -> bool:
        if metric:
            self._metric = metric
        if mode:
            if mode not in ("min", "max"):
                raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
            self._mode = mode
        return True

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        proposal = self.ask_tell.ask()
        self._live[trial_id] = proposal
        suggestion: dict[str, Any] = {"genotype": str(proposal.genotype)}
        if proposal.fidelity is not None:
            suggestion["epochs"] = proposal.fidelity
        return suggestion

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        proposal = self._live.pop(trial_id, None)
        if proposal is None:
            return
        signal = math.nan
        if not error and result is not None and self._metric in result:
            try:
                signal = float(result[self._metric])
            except (TypeError, ValueError):
                signal = math.nan
            if self._mode == "min":
                signal = -signal
        self.ask_tell.tell(proposal, signal)

    def get_state(self) -> dict[str, Any]:
        return {
            "searcher": self.ask_tell.state_dict(),
            "live": {trial_id: p.id for trial_id, p in self._live.items()},
            "metric": self._metric,
            "mode": self._mode,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self.ask_tell.load_state_dict(state["searcher"])
        pending = {p.id: p for p in self.ask_tell.pending}
        self._live = {t: pending[i] for t, i in state["live"].items() if i in pending}
        self._metric, self._mode = state["metric"], state["mode"]

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as handle:
            pickle.dump(self.get_state(), handle)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as handle:
            self.set_state(pickle.load(handle))


def _split_options(
    method: str, options: dict[str, Any], allowed: tuple[str, ...] | None = None
) -> dict[str, Any]:
    """The search options of ``options``, after checking ALL of them (training, runner and
    search keys) with the same constraints the YAML validator uses."""
    from gaea_tune.baselines._options import live_search_constraints, validate_live

    checked = validate_live(method, method, options)
    search = live_search_constraints(method)
    return {k: v for k, v in checked.items() if k in search}


def _choices(space: Any, exclude_none: bool) -> dict[str, Any]:
    return {name: tune.choice(list(choices)) for name, choices in param_spec(space, exclude_none)}


def make_tune_components(
    method: str,
    space: Any,
    options: dict[str, Any],
    seed: int,
    max_epochs: int,
    metric: str = "search_signal",
    mode: str = "max",
) -> tuple[dict[str, Any], TuneSearcher, TrialScheduler | None]:
    """(param_space, search_alg, scheduler) of a live baseline over ``space``.

    ``param_space`` holds only the searched part ({"space": name} plus, for BOHB/TPE, one
    ``tune.choice`` per categorical parameter that the trainable decodes); merge it into the
    trial's base config. ``metric``/``mode`` are checked here but must be given to
    ``tune.TuneConfig``, which passes them on to the searcher and scheduler. Options:
    random/rea: the searcher's (``population_size``, ``sample_size``, ``exclude_none``);
    bohb: ``reduction_factor`` (eta, default 3), ``exclude_none`` and hpbandster's
    ``num_samples``, ``random_fraction``, ... ; tpe: ``n_startup_trials``, ``multivariate``,
    ``exclude_none``. Training keys (``epochs``, ``batch_size``, ...) are ignored here.
    """
    if method not in LIVE_METHODS:
        raise ValueError(f"unknown live method {method!r}; allowed: {', '.join(LIVE_METHODS)}")
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
    if not isinstance(metric, str) or not metric:
        raise ValueError(f"metric must be a non-empty string, got {metric!r}")
    if isinstance(max_epochs, bool) or not isinstance(max_epochs, int) or max_epochs < 1:
        raise ValueError(f"max_epochs must be a positive integer, got {max_epochs!r}")
    options = dict(options or {})
    param_space: dict[str, Any] = {"space": space.name}
    if method in ("random", "rea"):
        allowed = tuple(k for k in searcher_options(method) if k != "fidelity")
        search = _split_options(method, options, allowed)
        searcher = make_searcher(method, space, seed, **search)
        return param_space, AskTellSearcher(searcher), None
    if method == "bohb":
        from ray.tune.search.bohb import TuneBOHB

        allowed = ("reduction_factor", "exclude_none", *_BOHB_CONFIG_KEYS)
        search = _split_options(method, options, allowed)
        eta = float(search.pop("reduction_factor", 3))
        if not eta > 1:
            raise ValueError(f"reduction_factor must be > 1, got {eta!r}")
        param_space.update(_choices(space, bool(search.pop("exclude_none", False))))
        bohb_config = {k: search[k] for k in _BOHB_CONFIG_KEYS if k in search}
        search_alg = TuneBOHB(bohb_config=bohb_config or None, seed=seed)
        scheduler = HyperBandForBOHB(
            time_attr="training_iteration", max_t=max_epochs, reduction_factor=eta
        )
        return param_space, search_alg, scheduler
    from optuna.samplers import TPESampler
    from ray.tune.search.optuna import OptunaSearch

    search = _split_options(method, options, ("n_startup_trials", "multivariate", "exclude_none"))
    param_space.update(_choices(space, bool(search.pop("exclude_none", False))))
    sampler_kwargs: dict[str, Any] = {"seed": seed}
    if "n_startup_trials" in search:
        sampler_kwargs["n_startup_trials"] = int(search["n_startup_trials"])
    if "multivariate" in search:
        sampler_kwargs["multivariate"] = bool(search["multivariate"])
    return param_space, OptunaSearch(sampler=TPESampler(**sampler_kwargs)), None
